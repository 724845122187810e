"""The lstm_sequence example: target data, Caffe's SGD, loss smoothing, the trainer on each kernel the core
chooses for it, the CLI (train, checkpoint and resume, .caffemodel out and in)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from compat import checkpoint, fastloop
from compat.formats.caffemodel import read_caffemodel
from compat.formats.prototxt import parse_prototxt
from ports.caffe_sequence.cli import main
from ports.caffe_sequence.config import RunConfig
from ports.caffe_sequence.data import f_x, target_sequence
from ports.caffe_sequence.train import CHECKPOINT_FORMAT, Trainer, smoothed_update
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


@pytest.mark.parametrize("regularization", ["L2", "L1"])
def test_caffe_sgd_grouped_update_equals_the_per_parameter_loop(regularization):
    """step() (torch._foreach_* over parameters grouped by lr_mult and decay_mult) gives exactly the
    numbers of step_per_parameter() (SGDSolver::ComputeUpdateValue's loop), float32, a missing gradient
    included."""
    solver = parse_prototxt(f"base_lr: 0.05 momentum: 0.95 weight_decay: 0.003 regularization_type: '{regularization}'")
    g = torch.Generator().manual_seed(0)
    shapes = [(8, 3), (8,), (8, 2), (5,), (4, 4)]
    mults = [(1.0, 1.0), (2.0, 0.0), (1.0, 1.0), (1.0, 2.0), (2.0, 0.0)]
    runs = []
    for method in ("step", "step_per_parameter"):
        params = [torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(k))) for k, s in enumerate(shapes)]
        sgd = CaffeSGD([(f"p{k}", p, lr, dm) for k, (p, (lr, dm)) in enumerate(zip(params, mults))], solver)
        g.manual_seed(1)
        for it in range(4):
            for k, p in enumerate(params):
                p.grad = None if (k == 3 and it == 1) else torch.randn(p.shape, generator=g)
            getattr(sgd, method)(it)
        runs.append([p.detach().clone() for p in params] + [h.clone() for h in sgd.history])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("config", ["lstm_short", "deep_long"])
def test_trainer_starts_every_lstm_forget_bias_at_five(tmp_path, config):
    """lstm_sequence.cpp after building the net: ``caffe_set(h, Dtype(5.), bias + h)`` on every Lstm layer's
    bias, whose blocks lstm_layer.cpp reads as i, f, o, g: the second block 5, the other three as the
    prototxt's constant bias_filler leaves them (0)."""
    trainer = Trainer(RunConfig(config, tmp_path, iters=1, seed=3, progress=False))
    lstm_biases = {name: list(m.parameters())[2].detach() for name, m in trainer.net.layer_modules.items()
                   if type(m).__name__ == "JunhyukohLSTM"}
    assert len(lstm_biases) == {"lstm_short": 1, "deep_long": 3}[config]
    for name, b in lstm_biases.items():
        H = b.numel() // 4
        expected = torch.zeros(4, H)
        expected[1] = 5.0
        assert torch.equal(b.reshape(4, H), expected), name


def test_trainer_checked_fused_kernel_equals_the_step_loop(tmp_path):
    """A few iterations on the checked fused kernel (the clamp acts in this seed's first iteration, where it
    recomputes on the step loop) give the step loop's weights."""
    results = []
    for kernel in ("checked", "loop"):
        trainer = Trainer(RunConfig("deep_short", tmp_path / kernel, iters=3, seed=3, kernel=kernel, progress=False))
        trainer.train()
        results.append({k: v.clone() for k, v in trainer.net.state_dict().items()})
    for k in results[0]:
        assert_close(results[0][k], results[1][k], loosen=10,
                     reason="float32 gradients summed in another order by the fused kernel", msg=k)


@pytest.mark.parametrize("config", ["lstm_short", "deep_short"])
def test_trainer_default_kernel_equals_the_step_loop(tmp_path, config):
    """The trainer's default (the core's choice: on the CPU the compiled loop, clamp and dW_h defect inside)
    gives the core step loop's losses and weights, iteration by iteration, including the clamped first
    iterations."""
    if not fastloop.available():
        pytest.skip(f"compat.fastloop is unavailable here: {fastloop.unavailable_reason()}")
    fast = Trainer(RunConfig(config, tmp_path / "fast", iters=4, seed=3, progress=False))
    loop = Trainer(RunConfig(config, tmp_path / "loop", iters=4, seed=3, kernel="loop", progress=False))
    for it in range(4):
        assert_close(fast.train_step(it), loop.train_step(it), dtype=torch.float32, loosen=10,
                     reason="float32 sums in another order over 320 steps", msg=f"loss at iteration {it}")
    for k, v in loop.net.state_dict().items():
        assert_close(fast.net.state_dict()[k], v, loosen=10, reason="float32 sums in another order", msg=k)


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
