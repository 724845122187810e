"""The lstm_sequence example: target data, Caffe's SGD, loss smoothing, the trainer's fused path, the CLI
(train, checkpoint and resume, .caffemodel out and in)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from compat import checkpoint
from compat.formats.caffemodel import read_caffemodel
from compat.formats.prototxt import parse_prototxt
from ports.caffe_sequence.__main__ import main
from ports.caffe_sequence.example import (CHECKPOINT_FORMAT, RunConfig, Trainer, f_x, smoothed_update,
                                          target_sequence)
from ports.caffe_sequence.solver import CaffeSGD
from tests.tolerances import assert_close


def test_target_sequence_follows_lstm_sequence_cpp():
    for total in (320, 960):
        seq = target_sequence(total)
        assert seq.dtype == np.float32 and seq.shape == (total,)
        t = np.arange(total) * 0.01
        raw = 0.5 * np.sin(2 * t) - 0.05 * np.cos(17 * t + 0.8) + 0.05 * np.sin(25 * t + 10) - 0.02 * np.cos(45 * t + 0.3)
        expected = raw / np.abs(raw).max()
        expected -= expected.mean()
        assert_close(seq, expected, loosen=10, reason="float32 arithmetic of the original against float64 here")
    assert abs(float(target_sequence(320).mean())) < 1e-6
    assert f_x(np.array([0.0], np.float32))[0] == np.float32(-0.05 * np.cos(0.8) + 0.05 * np.sin(10) - 0.02 * np.cos(0.3))


# The target column of the original's examples/lstm_sequence/result.log (junhyukoh/caffe-lstm commit b193dfb),
# lines 1-8, 20, 90 and 91 as printed by the C++ stream.
ORIGINAL_TARGET_LINES = {0: "-0.138645", 1: "-0.119378", 2: "-0.0900504", 3: "-0.0527345", 4: "-0.0102955",
                         5: "0.0341745", 6: "0.0779234", 7: "0.118993", 19: "0.457067", 89: "0.989229", 90: "0.997203"}


def test_target_column_matches_the_original_result_log():
    seq = target_sequence(320)
    for i, text in ORIGINAL_TARGET_LINES.items():
        assert f"{seq[i]:.6g}" == text, (i, seq[i], text)


@given(st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=40), st.integers(1, 7))
def test_smoothed_loss_is_the_mean_of_the_last_average_loss(losses, window):
    buf, smoothed = [], 0.0
    for k, loss in enumerate(losses):
        smoothed = smoothed_update(buf, smoothed, loss, k, window)
        assert smoothed == pytest.approx(np.mean(losses[max(0, k + 1 - window):k + 1]), rel=1e-9, abs=1e-9)


def test_caffe_sgd_momentum_weight_decay_and_lr_mult():
    solver = parse_prototxt("base_lr: 0.1 momentum: 0.9 weight_decay: 0.01 lr_policy: 'step' gamma: 0.5 stepsize: 2")
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([0.5], dtype=torch.float64))
    sgd = CaffeSGD([("w", w, 1.0, 1.0), ("b", b, 2.0, 0.0)], solver)
    hw, hb = np.zeros(2), np.zeros(1)
    ew, eb = np.array([1.0, -2.0]), np.array([0.5])
    rng = np.random.default_rng(0)
    for it in range(5):
        gw, gb = rng.normal(size=2), rng.normal(size=1)
        w.grad, b.grad = torch.tensor(gw), torch.tensor(gb)
        rate = 0.1 * 0.5 ** (it // 2)
        hw = 0.9 * hw + rate * 1.0 * (gw + 0.01 * ew)
        hb = 0.9 * hb + rate * 2.0 * gb
        ew, eb = ew - hw, eb - hb
        sgd.step(it)
        assert_close(w, ew)
        assert_close(b, eb)


def test_trainer_fused_probe_path_equals_the_step_loop(tmp_path):
    """A few iterations with the verified fused path (and its fallbacks) give the step loop's weights."""
    results = []
    for backend in ("probe", "auto"):
        trainer = Trainer(RunConfig("deep_short", tmp_path / backend, iters=3, seed=3, backend=backend, progress=False))
        trainer.train()
        if backend == "probe":
            assert trainer.state.fallbacks >= 1, "this seed's first iteration needs the clamp (covers the fallback)"
        results.append({k: v.clone() for k, v in trainer.net.state_dict().items()})
    for k in results[0]:
        assert_close(results[0][k], results[1][k], loosen=10,
                     reason="float32 gradients summed in another order by the fused kernel", msg=k)


def test_cli_trains_resumes_writes_and_loads(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--config", "lstm_short", "--iters", "4", "--out", str(out), "--no-progress", "--seed", "5"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 4 and np.isfinite(summary["generation_mse"])
    lines = (out / "lstm_short_result.log").read_text().splitlines()
    assert len(lines) == 320 and len(lines[0].split()) == 2
    target = np.array([float(l.split()[0]) for l in lines])
    assert_close(target, target_sequence(320), loosen=100, reason="result file prints 6 significant digits")
    assert (out / "lstm_short_generation.png").stat().st_size > 0
    model = read_caffemodel(out / "lstm_short_iter_4.caffemodel")
    assert model["lstm1"][0] == "Lstm" and [b.shape for b in model["lstm1"][1]] == [(60, 1), (60, 15), (60,)]
    preds = np.array([float(l.split()[1]) for l in lines])

    # 2 iterations, then resume to 4: the same weights as 4 straight iterations
    out2 = tmp_path / "resumed"
    assert main(["--config", "lstm_short", "--iters", "2", "--out", str(out2), "--no-progress", "--seed", "5"]) == 0
    assert main(["--config", "lstm_short", "--iters", "4", "--out", str(out2), "--no-progress", "--seed", "5",
                 "--resume", str(out2 / "checkpoint")]) == 0
    a = checkpoint.load(out / "checkpoint", CHECKPOINT_FORMAT)
    b = checkpoint.load(out2 / "checkpoint.json", CHECKPOINT_FORMAT)
    for k in a["params"]:
        torch.testing.assert_close(a["params"][k], b["params"][k], rtol=0, atol=0)
    assert a["losses"] == b["losses"]

    # generate from the written .caffemodel alone
    out3 = tmp_path / "from_caffemodel"
    assert main(["--config", "lstm_short", "--out", str(out3), "--no-progress",
                 "--caffemodel", str(out / "lstm_short_iter_4.caffemodel")]) == 0
    preds3 = np.array([float(l.split()[1]) for l in (out3 / "lstm_short_result.log").read_text().splitlines()])
    np.testing.assert_array_equal(preds3, preds)


def test_cli_errors_are_clear(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["--config", "lstm_short", "--iters", "1", "--out", str(tmp_path), "--no-progress",
                 "--resume", str(bad)]) == 2
    assert "not a checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("split", [1, 57, 319])
def test_split_window_fallback_equals_one_step_loop_window(tmp_path, split):
    """Steps [0, split) on the step loop and the rest fused, state attached between them: the same loss and
    gradients as the whole window on the step loop (thresholds made unreachable so the comparison is about the split;
    the dW_h defect and a carried state are on)."""
    trainer = Trainer(RunConfig("deep_short", tmp_path, iters=0, seed=4, progress=False))
    layers = trainer.net.lstm_layers()
    gen = torch.Generator().manual_seed(9)
    for m in layers:
        m.clipping_threshold = 1e30  # the loop path, never clamping (at init h = 0 and gradients explode)
        m.set_state((torch.randn(1, 1, m.hidden_size, generator=gen), torch.randn(1, 1, m.hidden_size, generator=gen)))
    saved = [m.state for m in layers]
    clip = torch.ones(320, 1)
    clip[0] = 0
    label = torch.as_tensor(target_sequence(320)).reshape(-1, 1)
    params = [p for _, p, _, _ in trainer.net.learnable_params()]
    trainer.solver.zero_grad()
    loss_loop = trainer._forward_backward(clip, label, "auto")
    grads_loop = [p.grad.clone() for p in params]
    state_loop = [m.state for m in layers]
    for m, s in zip(layers, saved):
        m.set_state(s)
    trainer.solver.zero_grad()
    loss_split = trainer._split_forward_backward(clip, label, split)
    assert loss_split == pytest.approx(loss_loop, rel=1e-6)
    for (name, _, _, _), a, p in zip(trainer.net.learnable_params(), grads_loop, params):
        assert_close(p.grad, a, loosen=10, reason="float32 sums in another order", msg=name)
    for s, m in zip(state_loop, layers):
        assert not m.state[0].requires_grad
        assert_close(m.state[1], s[1])
