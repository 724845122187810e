"""The ports' sync-free training steps (ports.tf_ptb / ports.tf_shakespeare ``SyncFreeStep``) and their capture
in one CUDA graph (compat.step_graph).

On the CPU: the sync-free step gives today's eager ``train_step``'s numbers bit for bit over consecutive steps
(carried state, active clipping, changing learning rates, TF's IndexedSlices norm and the dense one, dropout
from a fixed seed), and it reads no device value on the host (tests/host_sync.py: run on torch's meta device).
On CUDA: the captured step against the eager one, a learning-rate change without recapture, dropout redrawn at
every replay, and whole short runs of both ports with capture on.
"""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import torch

from compat.step_graph import CapturedStep, DeviceLog, capture_reason, step_runner
from ports.tf_ptb import Config, PTBModel, train_step
from ports.tf_ptb.train import SyncFreeEvalStep, SyncFreeStep, run_epoch
from ports.tf_shakespeare.model import LSTMModel
from tests.conftest import NO_CUDA_REASON
from tests.host_sync import META, run_without_host_sync
from tests.tolerances import assert_close, cudnn_float32

shakespeare = importlib.import_module("ports.tf_shakespeare.train")  # the module (the package exports train())

cuda = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA_REASON)]

LRS = (1.0, 0.5, 0.25, 0.7, 0.7)  # changed between steps, as the schedule does between epochs


# ------------------------------------------------------------------------------------------------ PTB
def ptb_config(**changes) -> Config:
    base = dict(hidden_size=6, vocab_size=11, num_layers=2, num_steps=4, batch_size=3, max_grad_norm=0.05)
    base.update(changes)
    return dataclasses.replace(Config.preset("small"), **base)


def ptb_batches(config: Config, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (config.batch_size, config.num_steps)
    return [(torch.from_numpy(rng.integers(0, config.vocab_size, shape)),
             torch.from_numpy(rng.integers(0, config.vocab_size, shape))) for _ in range(n)]


def ptb_pair(config: Config, device="cpu", seed: int = 3):
    """Two models with the same weights."""
    models = []
    for _ in range(2):
        model = PTBModel(config, is_training=True)
        model.reset_parameters(torch.Generator().manual_seed(seed))
        models.append(model.to(device))
    return models


def eager_ptb_run(model: PTBModel, batches, lrs, seed: int):
    """Today's loop: train_step per batch, the state carried, one optimizer."""
    from ports.tf_ptb.train import make_optimizer

    torch.manual_seed(seed)
    optimizer, state, out = make_optimizer(model), None, []
    for (x, y), lr in zip(batches, lrs):
        cost, state, norm = train_step(model, x, y, state, lr, optimizer)
        out.append((cost, norm, [t.clone() for pair in state for t in pair]))
    return out


def sync_free_ptb_run(model: PTBModel, batches, lrs, seed: int, run=None, step=None):
    torch.manual_seed(seed)
    step = step or SyncFreeStep(model, model.config.batch_size, model.config.num_steps)
    run = run or step
    out = []
    for (x, y), lr in zip(batches, lrs):
        step.load(x, y)
        step.set_lr(lr)
        cost, norm = run()
        out.append((cost.item(), norm.item(), [t.clone() for pair in step.state for t in pair]))
    return out


@pytest.mark.parametrize("embedding_norm", ["indexed_slices", "dense"])
@pytest.mark.parametrize("keep_prob", [1.0, 0.5])
def test_ptb_sync_free_step_equals_train_step_bit_for_bit(embedding_norm, keep_prob):
    config = ptb_config(embedding_norm=embedding_norm, keep_prob=keep_prob)
    batches = ptb_batches(config, len(LRS))
    batches[0][0][0, :2] = 4  # a repeated id: TF's IndexedSlices norm differs from the dense one
    a, b = ptb_pair(config)
    eager = eager_ptb_run(a, batches, LRS, seed=7)
    free = sync_free_ptb_run(b, batches, LRS, seed=7)
    assert eager[0][1] > config.max_grad_norm, "clipping is active"
    for k, ((cost, norm, state), (f_cost, f_norm, f_state)) in enumerate(zip(eager, free)):
        assert (cost, norm) == (f_cost, f_norm), f"step {k}"
        assert all(torch.equal(s, t) for s, t in zip(state, f_state)), f"step {k}: the carried state"
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name


def test_ptb_sync_free_step_reads_nothing_on_the_host():
    for embedding_norm in ("indexed_slices", "dense"):
        config = ptb_config(embedding_norm=embedding_norm, keep_prob=0.5)
        model = PTBModel(config, device=META)
        step = SyncFreeStep(model, config.batch_size, config.num_steps)
        step.set_lr(0.5)
        cost, norm = run_without_host_sync(step, f"the PTB step ({embedding_norm})")
        assert cost.device == norm.device == META and cost.shape == norm.shape == ()
    x = torch.zeros(config.batch_size, config.num_steps, dtype=torch.long, device=META)
    with pytest.raises(AssertionError, match="reads a device tensor"):  # today's step does read
        run_without_host_sync(lambda: train_step(model, x, x, None, 1.0))


# ------------------------------------------------------------------------------------------ Shakespeare
def shakespeare_setup(device="cpu", seed: int = 2):
    model = LSTMModel(5, 13, batch_size=3, training_seq_len=4, generator=torch.Generator().manual_seed(seed))
    model = model.to(device)
    return model, shakespeare.make_optimizer(model, 0.01)


def shakespeare_batches(n: int, device="cpu"):
    rng = np.random.default_rng(1)
    return [(torch.from_numpy(rng.integers(0, 13, (3, 4))).to(device),
             torch.from_numpy(rng.integers(0, 13, (3, 4))).to(device)) for _ in range(n)]


def eager_shakespeare_run(model, optimizer, batches, clip_norm):
    state, out = model.zero_state(), []
    for x, y in batches:
        cost, state, norm = shakespeare.train_step(model, optimizer, x, y, state, clip_norm)
        out.append((cost.item(), norm.item(), [t.clone() for t in state]))
    return out


def sync_free_shakespeare_run(step, run, batches):
    out = []
    for x, y in batches:
        step.load(x, y)
        cost, norm = run()
        out.append((cost.item(), norm.item(), [t.clone() for t in step.state]))
    return out


def test_shakespeare_sync_free_step_equals_train_step_bit_for_bit():
    batches = shakespeare_batches(5)
    (a, opt_a), (b, opt_b) = shakespeare_setup(), shakespeare_setup()
    eager = eager_shakespeare_run(a, opt_a, batches, clip_norm=0.5)
    step = shakespeare.SyncFreeStep(b, opt_b, 3, 4, clip_norm=0.5)
    free = sync_free_shakespeare_run(step, step, batches)
    assert eager[0][1] > 0.5, "clipping is active"
    for k, (e, f) in enumerate(zip(eager, free)):
        assert e[:2] == f[:2], f"step {k}"
        assert all(torch.equal(s, t) for s, t in zip(e[2], f[2])), f"step {k}: the carried state"
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    assert opt_a.state_dict()["state"].keys() == opt_b.state_dict()["state"].keys()
    for slot_a, slot_b in zip(opt_a.state_dict()["state"].values(), opt_b.state_dict()["state"].values()):
        assert slot_a["step"] == slot_b["step"] == len(batches)
        assert all(torch.equal(slot_a[k], slot_b[k]) for k in ("m", "v", "beta1_power", "beta2_power"))


def test_shakespeare_sync_free_step_reads_nothing_on_the_host():
    model = LSTMModel(5, 13, batch_size=3, training_seq_len=4, device=META)
    step = shakespeare.SyncFreeStep(model, shakespeare.make_optimizer(model, 0.01), 3, 4, clip_norm=0.5)
    for _ in range(2):  # the first step creates Adam's slots; the second is the one a graph would capture
        cost, norm = run_without_host_sync(step, "the Shakespeare step")
    assert cost.device == norm.device == META


def test_shakespeare_count_step_is_the_steps_host_side():
    """What a replay repeats only on the host: one more step on every Adam slot's counter."""
    model, optimizer = shakespeare_setup()
    step = shakespeare.SyncFreeStep(model, optimizer, 3, 4, clip_norm=0.5)
    step.load(*shakespeare_batches(1)[0])
    step()
    step.count_step()
    assert sorted({s["step"] for s in optimizer.state.values()}) == [2]


# ------------------------------------------------------------------------------------------ the capture
def test_capture_reason_says_why_not():
    assert capture_reason("off", "cpu") == "capture switched off (cuda_graph='off')"
    assert "need a CUDA device; the step runs on cpu" in capture_reason("auto", "cpu")
    with pytest.raises(ValueError, match="cuda_graph must be one of"):
        capture_reason("on", "cpu")
    if torch.cuda.is_available():
        assert capture_reason("auto", "cuda") is None
        assert "shapes change" in capture_reason("auto", "cuda", static_shapes=False)
        assert capture_reason("auto", "cuda", blockers=("a reason",)) == "a reason"
    else:
        assert capture_reason("auto", "cuda") == "no CUDA device is available"


def test_step_runner_on_the_cpu_is_the_step_itself():
    step = SyncFreeStep(PTBModel(ptb_config()), 3, 4)
    assert step_runner(step, "auto", "cpu") is step


def test_run_epoch_with_capture_asked_for_on_the_cpu_is_the_eager_epoch():
    config = ptb_config(num_layers=1)
    data = np.random.default_rng(0).integers(0, config.vocab_size, 3 * (3 * 4 + 1)).tolist()
    a, b = ptb_pair(config)
    assert run_epoch(a, data, 3, 4, lr=0.5, progress=False) == run_epoch(b, data, 3, 4, lr=0.5, progress=False,
                                                                         cuda_graph="auto")


def test_device_log_reads_back_in_order_and_empties():
    log = DeviceLog(3, torch.float32, "cpu")
    for v in (1.5, float("nan"), 2.0):
        log.append(torch.tensor(v))
    assert log.full and len(log) == 3
    values = log.read()
    assert values[0] == 1.5 and np.isnan(values[1]) and values[2] == 2.0
    assert len(log) == 0 and log.read() == []
    with pytest.raises(RuntimeError, match="full"):
        for _ in range(4):
            log.append(torch.tensor(0.0))


# ------------------------------------------------------------------------------------------------ CUDA
@pytest.mark.parametrize("embedding_norm", ["indexed_slices", "dense"])
@pytest.mark.parametrize("_", [pytest.param("cuda", marks=cuda)])
def test_ptb_captured_step_equals_eager_step_cuda(embedding_norm, _):
    config = ptb_config(embedding_norm=embedding_norm, hidden_size=16, vocab_size=50)
    batches = [(x.cuda(), y.cuda()) for x, y in ptb_batches(config, 7)]
    lrs = (1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25)  # the lr changes after the capture (call 4)
    a, b = ptb_pair(config, "cuda")
    eager = eager_ptb_run(a, batches, lrs, seed=1)
    step = SyncFreeStep(b, config.batch_size, config.num_steps)
    run = CapturedStep(step)
    free = sync_free_ptb_run(b, batches, lrs, seed=1, run=run, step=step)
    assert run.captured and run.calls == len(batches)
    tol = cudnn_float32("cuda", torch.float32)
    for k, ((cost, norm, state), (f_cost, f_norm, f_state)) in enumerate(zip(eager, free)):
        assert_close(torch.tensor([cost, norm]), torch.tensor([f_cost, f_norm]), msg=f"step {k}", **tol)
        for s, t in zip(state, f_state):
            assert_close(t, s, msg=f"step {k}: the carried state", **tol)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert_close(q, p, msg=name, **tol)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("_", [pytest.param("cuda", marks=cuda)])
def test_ptb_captured_dropout_is_redrawn_at_every_replay_cuda(layers, _):
    """keep_prob 0.5: torch's dropout on the embedding and the top output (and, with 2 layers, cuDNN's between
    them) draws new masks at every replay: the same batch, state and weights (lr 0) give different costs."""
    config = ptb_config(keep_prob=0.5, num_layers=layers, hidden_size=16, vocab_size=50)
    model = ptb_pair(config, "cuda")[0]
    step = SyncFreeStep(model, config.batch_size, config.num_steps)
    run = CapturedStep(step)
    x, y = ptb_batches(config, 1)[0]
    step.load(x.cuda(), y.cuda())
    costs = []
    for _ in range(6):
        step.set_state(None)
        costs.append(run()[0].item())
    assert run.captured and len(set(costs[3:])) == 3, costs


@pytest.mark.parametrize("_", [pytest.param("cuda", marks=cuda)])
def test_shakespeare_captured_step_equals_eager_step_cuda(_):
    batches = shakespeare_batches(6, "cuda")
    (a, opt_a), (b, opt_b) = shakespeare_setup("cuda"), shakespeare_setup("cuda")
    eager = eager_shakespeare_run(a, opt_a, batches, clip_norm=0.5)
    step = shakespeare.SyncFreeStep(b, opt_b, 3, 4, clip_norm=0.5)
    run = CapturedStep(step, host_effects=step.count_step)
    free = sync_free_shakespeare_run(step, run, batches)
    assert run.captured
    tol = cudnn_float32("cuda", torch.float32)
    for k, (e, f) in enumerate(zip(eager, free)):
        assert_close(torch.tensor(f[:2]), torch.tensor(e[:2]), msg=f"step {k}", **tol)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert_close(q, p, msg=name, **tol)
    assert {s["step"] for s in opt_b.state.values()} == {len(batches)}


@pytest.mark.parametrize("_", [pytest.param("cuda", marks=cuda)])
def test_ptb_run_epoch_captured_matches_eager_cuda(_):
    config = ptb_config(hidden_size=16, vocab_size=50)
    data = np.random.default_rng(0).integers(0, config.vocab_size, 3 * (12 * 4 + 1)).tolist()
    a, b = ptb_pair(config, "cuda")
    eager = run_epoch(a, data, 3, 4, lr=0.5, progress=False, cuda_graph="off")
    captured = run_epoch(b, data, 3, 4, lr=0.5, progress=False, cuda_graph="auto")
    tol = cudnn_float32("cuda", torch.float32)
    assert_close(torch.tensor(captured), torch.tensor(eager), **tol)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert_close(q, p, msg=name, **tol)


@pytest.mark.parametrize("_", [pytest.param("cuda", marks=cuda)])
def test_shakespeare_port_run_captured_matches_eager_cuda(tmp_path, _):
    """The port's whole training run (a stop and a resume in the middle) with --cuda-graph auto and off."""
    from ports.tf_shakespeare.config import TrainConfig

    words = " ".join(["thou art more lovely and more temperate"] * 12 + ["to be or not to be"] * 9)
    data = tmp_path / "tiny.txt"
    data.write_text(words)
    cfg = dict(min_word_freq=1, rnn_size=8, epochs=2, batch_size=2, training_seq_len=4, skip_chars=0,
               save_every=1000, eval_every=1000, print_every=3, seed=4)
    quiet = dict(progress=False, plot=False, log=lambda line: None, device="cuda")
    off = shakespeare.train(data, tmp_path / "off", TrainConfig(**cfg), cuda_graph="off", **quiet)
    part = shakespeare.train(data, tmp_path / "on", TrainConfig(**cfg), cuda_graph="auto", max_iterations=7, **quiet)
    assert part["stopped_early"]
    on = shakespeare.train(data, tmp_path / "on", TrainConfig(**cfg), cuda_graph="auto", resume=True, **quiet)
    assert on["iterations"] == off["iterations"] > 7
    assert_close(torch.tensor(on["train_loss"]), torch.tensor(off["train_loss"]),
                 **cudnn_float32("cuda", torch.float32))
    a = shakespeare.load_checkpoint_file(tmp_path / "off")
    b = shakespeare.load_checkpoint_file(tmp_path / "on")
    assert [s["step"] for s in a["optimizer"]["state"].values()] == [s["step"] for s in b["optimizer"]["state"].values()]


# ------------------------------------------------- the captured loops' read-back, run on the CPU without a graph
def test_ptb_epoch_with_deferred_read_back_equals_the_eager_epoch(monkeypatch):
    """The captured epoch's loop (batches on the device, costs read back in blocks) with the step run eagerly:
    the same perplexity, verbose lines' perplexities and weights; a non-finite cost names its step."""
    import io
    import re

    from ports.tf_ptb import train as ptb_train

    config = ptb_config(keep_prob=0.5, batch_size=2, num_steps=2)
    # 120 steps: ptb_word_lm's verbose lines come at step % (epoch_size // 10) == 10.
    data = np.random.default_rng(0).integers(0, config.vocab_size, 2 * (120 * 2 + 1)).tolist()
    monkeypatch.setattr(ptb_train, "READBACK_STEPS", 7)
    outputs = []
    for deferred in (False, True):
        monkeypatch.setattr(ptb_train, "capture_reason", (lambda *a, **k: None) if deferred else capture_reason)
        model = ptb_pair(config)[0]
        torch.manual_seed(5)
        stream = io.StringIO()
        ppl = run_epoch(model, data, 2, 2, lr=0.5, progress=False, verbose=True, stream=stream, cuda_graph="auto")
        lines = re.findall(r"perplexity: ([\d.]+)", stream.getvalue())
        outputs.append((ppl, lines, [p.detach().clone() for p in model.parameters()]))
        with torch.no_grad():
            model.softmax_b[0] = float("inf")
        with pytest.raises(FloatingPointError, match=r"the cost became (inf|nan) at step 0 "):
            run_epoch(model, data, 2, 2, lr=0.5, progress=False, cuda_graph="auto")
    (ppl, lines, params), (d_ppl, d_lines, d_params) = outputs
    assert ppl == d_ppl and lines == d_lines and len(lines) == 10
    assert all(torch.equal(p, q) for p, q in zip(params, d_params))


def test_shakespeare_run_with_deferred_read_back_equals_the_eager_run(monkeypatch, tmp_path):
    """The captured run's loop (losses read back at the print, save and stop points) with the step run eagerly:
    the same log lines, losses, weights and Adam step counters, a stop and a resume included."""
    from ports.tf_shakespeare.config import TrainConfig

    words = " ".join(["thou art more lovely and more temperate"] * 12 + ["to be or not to be"] * 9)
    data = tmp_path / "tiny.txt"
    data.write_text(words)
    cfg = dict(min_word_freq=1, rnn_size=6, epochs=2, batch_size=2, training_seq_len=4, skip_chars=0,
               save_every=5, eval_every=1000, print_every=3, seed=4)
    monkeypatch.setattr(shakespeare, "READBACK_STEPS", 4)
    runs = []
    for deferred in (False, True):
        monkeypatch.setattr(shakespeare, "capture_reason", (lambda *a, **k: None) if deferred else capture_reason)
        lines = []
        quiet = dict(progress=False, plot=False, log=lines.append, cuda_graph="auto")
        out = tmp_path / f"run{deferred}"
        shakespeare.train(data, out, TrainConfig(**cfg), max_iterations=7, **quiet)
        summary = shakespeare.train(data, out, TrainConfig(**cfg), resume=True, **quiet)
        runs.append((summary["train_loss"], [line.replace(str(out), "RUN") for line in lines if "done in" not in line],
                     shakespeare.load_checkpoint_file(out)))
    (loss, lines, ck), (d_loss, d_lines, d_ck) = runs
    assert loss == d_loss and len(loss) > 7
    assert lines == d_lines
    assert all(torch.equal(ck["model"][k], d_ck["model"][k]) for k in ck["model"])
    assert ck["optimizer"]["state"].keys() == d_ck["optimizer"]["state"].keys()
    assert all(a["step"] == b["step"] for a, b in zip(ck["optimizer"]["state"].values(),
                                                      d_ck["optimizer"]["state"].values()))


# ------------------------------------------------------------------------------------------ evaluation
def eager_ptb_eval(model: PTBModel, batches):
    """run_epoch's eager evaluation: model(x, state), then float(model.cost) per step."""
    model.eval()
    state, out = None, []
    with torch.no_grad():
        for x, y in batches:
            logits, state = model(x, state)
            out.append((float(model.cost(logits, y)), [t.clone() for pair in state for t in pair]))
    return out


def sync_free_ptb_eval(model: PTBModel, batches, run=None, step=None):
    model.eval()
    step = step or SyncFreeEvalStep(model, *batches[0][0].shape)
    run = run or step
    out = []
    for x, y in batches:
        step.load(x, y)
        out.append((run().item(), [t.clone() for pair in step.state for t in pair]))
    return out


@pytest.mark.parametrize("shape", [(3, 4), (1, 1)], ids=["valid-shape", "test-pass-shape"])
def test_ptb_sync_free_eval_step_equals_the_eager_evaluation_bit_for_bit(shape):
    """Batch 1 x 1 step is the test pass's (the eval config): on the CPU both run the compiled loop there."""
    config = ptb_config(batch_size=shape[0], num_steps=shape[1], keep_prob=0.5)
    batches = ptb_batches(config, 6)
    a, b = ptb_pair(config)
    eager, free = eager_ptb_eval(a, batches), sync_free_ptb_eval(b, batches)
    assert len({cost for cost, _ in eager}) > 1
    for k, ((cost, state), (f_cost, f_state)) in enumerate(zip(eager, free)):
        assert cost == f_cost, f"step {k}"
        assert all(torch.equal(s, t) for s, t in zip(state, f_state)), f"step {k}: the carried state"


def test_ptb_sync_free_eval_step_reads_nothing_on_the_host():
    for shape in ((3, 4), (1, 1)):
        config = ptb_config(batch_size=shape[0], num_steps=shape[1])
        model = PTBModel(config, device=META).eval()
        step = SyncFreeEvalStep(model, *shape)
        cost = run_without_host_sync(step, f"the PTB evaluation step {shape}")
        assert cost.device == META and cost.shape == ()
    x = torch.zeros(*shape, dtype=torch.long, device=META)
    with pytest.raises(AssertionError, match="reads a device tensor"):  # the eager evaluation checks the ids
        run_without_host_sync(lambda: float(model.cost(model(x)[0], x)))


@pytest.mark.parametrize("shape", [(2, 2), (1, 1)])
def test_ptb_eval_epoch_with_deferred_read_back_equals_the_eager_epoch(monkeypatch, shape):
    """The captured loop evaluating (SyncFreeEvalStep, costs read back in blocks) with the step run eagerly on
    the CPU: the same perplexity and verbose lines as the eager evaluation, bit for bit; weights that make
    the cost infinite give the same inf perplexity (evaluation reports it, it does not stop)."""
    import io
    import re

    from ports.tf_ptb import train as ptb_train

    B, T = shape
    config = ptb_config(batch_size=B, num_steps=T)
    data = np.random.default_rng(1).integers(0, config.vocab_size, B * (120 * T + 1)).tolist()
    monkeypatch.setattr(ptb_train, "READBACK_STEPS", 7)
    outputs = []
    for deferred in (False, True):
        monkeypatch.setattr(ptb_train, "capture_reason", (lambda *a, **k: None) if deferred else capture_reason)
        model = ptb_pair(config)[0]
        stream = io.StringIO()
        ppl = run_epoch(model, data, B, T, progress=False, verbose=True, stream=stream, cuda_graph="auto")
        lines = re.findall(r"perplexity: ([\d.]+)", stream.getvalue())
        assert model.training, "the model's mode is restored"
        with torch.no_grad():
            model.softmax_b[0] = float("inf")
        outputs.append((ppl, lines, run_epoch(model, data, B, T, progress=False, max_steps=9, cuda_graph="auto")))
    (ppl, lines, bad), (d_ppl, d_lines, d_bad) = outputs
    assert ppl == d_ppl and lines == d_lines and len(lines) == 10
    assert np.isnan(bad) and np.isnan(d_bad) or bad == d_bad


@pytest.mark.parametrize("shape", [(3, 4), (1, 1)], ids=["valid-shape", "test-pass-shape"])
@pytest.mark.parametrize("_", [pytest.param("cuda", marks=cuda)])
def test_ptb_captured_eval_equals_eager_eval_cuda(shape, _):
    """The evaluation step captured (per step: the costs and the carried state) and the whole evaluation pass
    with --cuda-graph auto and off."""
    B, T = shape
    config = ptb_config(batch_size=B, num_steps=T, keep_prob=0.5, hidden_size=16, vocab_size=50)
    batches = [(x.cuda(), y.cuda()) for x, y in ptb_batches(config, 8)]
    a, b = ptb_pair(config, "cuda")
    eager = eager_ptb_eval(a, batches)
    step = SyncFreeEvalStep(b, B, T)
    run = CapturedStep(step)
    free = sync_free_ptb_eval(b, batches, run=run, step=step)
    assert run.captured and run.calls == len(batches)
    tol = cudnn_float32("cuda", torch.float32)
    for k, ((cost, state), (f_cost, f_state)) in enumerate(zip(eager, free)):
        assert_close(torch.tensor(f_cost), torch.tensor(cost), msg=f"step {k}", **tol)
        for s, t in zip(state, f_state):
            assert_close(t, s, msg=f"step {k}: the carried state", **tol)
    data = np.random.default_rng(0).integers(0, config.vocab_size, B * (30 * T + 1)).tolist()
    a.train(), b.train()
    off = run_epoch(a, data, B, T, progress=False, cuda_graph="off")
    on = run_epoch(b, data, B, T, progress=False, cuda_graph="auto")
    assert_close(torch.tensor(on), torch.tensor(off), **tol)
    assert b.training


@pytest.mark.parametrize("_", [pytest.param("cuda", marks=cuda)])
def test_ptb_replays_advance_the_cuda_generator_as_eager_steps_do_cuda(_):
    """torch.cuda.get_rng_state() after N captured steps with dropout (two layers: torch's dropout and cuDNN's)
    equals its value after N eager steps from the same state: what a checkpoint keeps for a resume."""
    config = ptb_config(keep_prob=0.5, hidden_size=16, vocab_size=50)
    batches = [(x.cuda(), y.cuda()) for x, y in ptb_batches(config, 7)]
    states = []
    for captured in (False, True):
        model = ptb_pair(config, "cuda")[0]
        step = SyncFreeStep(model, config.batch_size, config.num_steps)
        step.set_lr(0.5)
        run = CapturedStep(step) if captured else step
        torch.cuda.manual_seed(11)
        before = torch.cuda.get_rng_state()
        for x, y in batches:
            step.load(x, y)
            run()
        torch.cuda.synchronize()
        states.append((before, torch.cuda.get_rng_state()))
        assert not captured or run.captured
    (before, eager), (_, graphed) = states
    assert not torch.equal(before, eager), "dropout drew from the CUDA generator"
    assert torch.equal(eager, graphed)
