"""Throughput of the recurrent core (compat.lstm.lstm, compat.gru.gru, compat.simple_rnn.simple_rnn) against
torch.nn.LSTM / GRU / RNN at the programs' sizes.

    python benchmarks/bench_core.py --device cpu --repeats 5
    python benchmarks/bench_core.py --device cuda --repeats 20
    python benchmarks/bench_core.py --quick            # small repeat count, PTB large left out

Every case times one training step of the recurrence (forward and backward) and prints the median
tokens/s over ``--repeats`` timed runs (after warm-up runs), the ratio to the baseline measured in the
same process, and the spread (min-max) so that noise is visible. The implementations of a case run in
interleaved rounds, one call each, the order reversed every other round (none always runs first):

- ``ptb-small`` / ``ptb-medium`` / ``ptb-large`` (TF PTB tutorial configs): batch 20, 2 layers, 20 steps
  hidden 200 / 35 steps 650 / 35 steps 1500; ``--full-model`` adds embedding + softmax over 10000 words
  with the cross entropy (the whole model step). Baseline: torch.nn.LSTM on the same weights.
- ``imdb`` (Theano tutorial classifier): batch 16, 100 steps, hidden 128 (input 128), right-padded masks
  with lengths drawn uniformly from 10..100 (the tutorial drops reviews longer than maxlen 100), the
  outputs pooled through the mask. Tokens are the real (unpadded) tokens. Baseline: torch.nn.LSTM over
  pack_padded_sequence. ``core`` calls the core as ports/theano_imdb does (the lengths on the host,
  ``past_end="unread"``: the padded steps computed, never read); ``core mask carried past end`` gives it
  the mask, whose semantics carry h past each end (the packed kernel and the carry).
- ``gru-ptb-small`` / ``gru-ptb-medium`` / ``gru-ptb-large`` / ``gru-imdb`` and the same with ``rnn-``: the
  same shapes for PyTorch's GRU (the reset gate after the product) and the tanh RNN, against torch.nn.GRU /
  torch.nn.RNN (the reset-before GRU, on the step loop: benchmarks/gru_speed.py).
- ``caffe-stream`` (Caffe sequence example): T 320, batch 1, hidden 50, 3 layers, input 1, cont = 0
  every 40 steps. Baselines: torch.nn.LSTM over the 8 segments between resets, and a naive per-step
  Python loop of three torch.nn.LSTMCell (state multiplied by cont). On the CPU a row for the compiled
  step loop (``kernel="compiled"``, one call per layer) follows.

Where the core has a second kernel, its ``kernel="loop"`` row is printed too, for reference.

- ``ptb-train-step`` (not in the default list): ports.tf_ptb's whole training step at the small preset
  (embedding, 2 x 200 LSTM, softmax over 10000 words, TF's global-norm clip, SGD, the state carried).
  Baseline: today's eager ``train_step`` (it reads the cost and the norm back every step); then the
  sync-free step (``SyncFreeStep``) run eagerly, and on CUDA the same step captured in one CUDA graph
  (compat.step_graph). On the CPU the captured row is left out with the reason:

      python benchmarks/bench_core.py --device cuda --repeats 20 --cases ptb-train-step

- ``ptb-eval-step`` (not in the default list): ports.tf_ptb's test pass at the small preset (the eval
  config: batch 1 x 1 step, no gradient), 100 steps per timed call from batches already on the device.
  Baseline: the eager evaluation (``model(x, state)``, then ``float`` of the cost at every step); then the
  sync-free evaluation step (``SyncFreeEvalStep``) run eagerly with its costs read back once per call, and
  on CUDA the same step captured in one CUDA graph:

      python benchmarks/bench_core.py --device cuda --repeats 20 --cases ptb-eval-step
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from compat import fastloop  # noqa: E402
from compat.gru import gru  # noqa: E402
from compat.lstm import lstm, weights_from_torch  # noqa: E402
from compat.recurrent.frontend import weights_from_torch as one_state_weights  # noqa: E402
from compat.simple_rnn import simple_rnn  # noqa: E402

PTB_CONFIGS = {  # name: (num_steps, hidden_size)
    "ptb-small": (20, 200),
    "ptb-medium": (35, 650),
    "ptb-large": (35, 1500),
}
PTB_BATCH, PTB_LAYERS, PTB_VOCAB = 20, 2, 10000


class Family:
    """One recurrent family as the cases build it: torch's module, the core's function, the weights of the one
    for the other, and the initial state (the LSTM's (h, c), the others' h)."""

    def __init__(self, module, core, weights, pair_state: bool):
        self.module, self.core, self.weights, self.pair_state = module, core, weights, pair_state

    def state(self, layers: int, batch: int, hidden: int, device):
        h0 = torch.zeros(layers, batch, hidden, device=device)
        return (h0, h0.clone()) if self.pair_state else h0


FAMILIES = {  # case prefix: the family (PyTorch's semantics: the GRU's reset after the product, the tanh RNN)
    "": Family(nn.LSTM, lstm, weights_from_torch, True),
    "gru-": Family(nn.GRU, gru, one_state_weights, False),
    "rnn-": Family(nn.RNN, simple_rnn, one_state_weights, False),
}
CASES = [f"{prefix}{name}" for prefix in FAMILIES for name in (*PTB_CONFIGS, "imdb")] + ["caffe-stream"]
QUICK_LEFT_OUT = [c for c in CASES if c.endswith("ptb-large")]
KNOWN_CASES = CASES + ["ptb-train-step", "ptb-eval-step"]  # the default list, and the cases run only when named


def family_of(case: str) -> Tuple[Family, str]:
    """The family of a case and the case's shape name (``gru-imdb``: the GRU, ``imdb``)."""
    for prefix in ("gru-", "rnn-"):
        if case.startswith(prefix):
            return FAMILIES[prefix], case[len(prefix):]
    return FAMILIES[""], case


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(runs: Dict[str, Callable[[], None]], device: torch.device, repeats: int,
                      warmup: int) -> Dict[str, List[float]]:
    """Seconds per call of every implementation: warm-up calls first, then ``repeats`` rounds of one timed
    call each, the order of the implementations reversed every other round (so that none always runs
    first, right after another's allocations, or last)."""
    names = list(runs)
    for name in names:
        for _ in range(warmup):
            runs[name]()
    synchronize(device)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            runs[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def backward_step(forward: Callable[[], torch.Tensor], params: List[torch.Tensor]) -> Callable[[], None]:
    """A step: forward, a sum loss, backward, gradients cleared (no optimizer update: the LSTM only)."""
    def step():
        for p in params:
            p.grad = None
        loss = forward()
        loss.backward()
    return step


# ------------------------------------------------------------------------------------------------ cases
def ptb_case(name: str, device: torch.device, full_model: bool, family: Family = FAMILIES[""]
             ) -> Tuple[int, Dict[str, Callable]]:
    T, H = PTB_CONFIGS[name]
    torch.manual_seed(0)
    ref = family.module(H, H, PTB_LAYERS).to(device)
    ws = family.weights(ref)
    params = list(ref.parameters())
    hx = family.state(PTB_LAYERS, PTB_BATCH, H, device)
    if full_model:
        emb = nn.Embedding(PTB_VOCAB, H).to(device)
        softmax = nn.Linear(H, PTB_VOCAB).to(device)
        ids = torch.randint(0, PTB_VOCAB, (T, PTB_BATCH), device=device)
        targets = torch.randint(0, PTB_VOCAB, (T * PTB_BATCH,), device=device)
        params += list(emb.parameters()) + list(softmax.parameters())

        def head(out):
            return F.cross_entropy(softmax(out.reshape(-1, H)), targets)

        def inp():
            return emb(ids)
    else:
        x = torch.randn(T, PTB_BATCH, H, device=device, requires_grad=True)
        params.append(x)

        def head(out):
            return out.sum()

        def inp():
            return x
    runs = {
        f"nn.{family.module.__name__}": backward_step(lambda: head(ref(inp(), hx)[0]), params),
        "core": backward_step(lambda: head(family.core(inp(), ws, hx)[0]), params),
    }
    return T * PTB_BATCH, runs


def ptb_train_step_case(device: torch.device) -> Tuple[int, Dict[str, Callable]]:
    """ports.tf_ptb's training step at the small preset: eager train_step, the sync-free step, and (CUDA)
    the sync-free step captured in a CUDA graph."""
    from compat.step_graph import CapturedStep, capture_reason
    from ports.tf_ptb import Config, PTBModel, make_optimizer, train_step
    from ports.tf_ptb.train import SyncFreeStep

    config = Config.preset("small")
    B, T = config.batch_size, config.num_steps
    ids = torch.randint(0, config.vocab_size, (B, T + 1), device=device)
    x, y = ids[:, :T].contiguous(), ids[:, 1:].contiguous()

    def model():
        m = PTBModel(config, is_training=True)
        m.reset_parameters(torch.Generator().manual_seed(0))
        return m.to(device)

    eager_model = model()
    optimizer = make_optimizer(eager_model)
    carried = {"state": None}

    def eager():
        _, carried["state"], _ = train_step(eager_model, x, y, carried["state"], 1.0, optimizer)

    free = SyncFreeStep(model(), B, T)
    free.load(x, y)
    free.set_lr(1.0)
    runs = {"train_step (eager)": eager, "sync-free step (eager)": free}
    reason = capture_reason("auto", device)
    if reason is None:
        graphed = SyncFreeStep(model(), B, T)
        graphed.load(x, y)
        graphed.set_lr(1.0)
        runs["sync-free step (CUDA graph)"] = CapturedStep(graphed)
    else:
        print(f"# ptb-train-step: no captured row ({reason})")
    return B * T, runs


#: Steps per timed call of ``ptb-eval-step`` (the captured pass reads its costs back every 100 steps).
EVAL_STEPS = 100


def ptb_eval_step_case(device: torch.device) -> Tuple[int, Dict[str, Callable]]:
    """ports.tf_ptb's test pass (eval config, small preset), EVAL_STEPS steps per call: the eager evaluation,
    the sync-free evaluation step, and (CUDA) that step captured in a CUDA graph."""
    from compat.step_graph import CapturedStep, DeviceLog, capture_reason
    from ports.tf_ptb import Config, PTBModel
    from ports.tf_ptb.train import SyncFreeEvalStep

    config = Config.preset("small")
    B, T = config.eval_config().batch_size, config.eval_config().num_steps
    words = torch.randint(0, config.vocab_size, (B, EVAL_STEPS * T + 1), device=device)
    batches = [(words[:, i * T:(i + 1) * T], words[:, i * T + 1:(i + 1) * T + 1]) for i in range(EVAL_STEPS)]
    model = PTBModel(config, is_training=False)
    model.reset_parameters(torch.Generator().manual_seed(0))
    model = model.to(device).eval()
    carried = {"state": None}

    def eager():
        with torch.no_grad():
            for x, y in batches:
                logits, carried["state"] = model(x, carried["state"])
                float(model.cost(logits, y))

    def sync_free(step: SyncFreeEvalStep, run: Callable) -> Callable[[], None]:
        log = DeviceLog(EVAL_STEPS, model.embedding.dtype, device)

        def block():
            for x, y in batches:
                step.load(x, y)
                log.append(run())
            log.read()
        return block

    free = SyncFreeEvalStep(model, B, T)
    runs = {"evaluation (eager)": eager, "sync-free eval (eager)": sync_free(free, free)}
    reason = capture_reason("auto", device)
    if reason is None:
        graphed = SyncFreeEvalStep(model, B, T)
        runs["sync-free eval (CUDA graph)"] = sync_free(graphed, CapturedStep(graphed))
    else:
        print(f"# ptb-eval-step: no captured row ({reason})")
    return B * T * EVAL_STEPS, runs


def imdb_case(device: torch.device, family: Family = FAMILIES[""]) -> Tuple[int, Dict[str, Callable]]:
    T, B, H = 100, 16, 128
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, T + 1, (B,), generator=g)  # on the host, as the port's batches make them
    mask = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).float().to(device)
    torch.manual_seed(0)
    ref = family.module(H, H, 1).to(device)
    ws = family.weights(ref)
    x = torch.randn(T, B, H, device=device, requires_grad=True)
    params = list(ref.parameters()) + [x]
    core = family.core

    def pooled(out):  # the port's pooling reads every output through the mask
        return (out * mask.unsqueeze(2)).sum()

    def baseline():
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, _ = pad_packed_sequence(ref(packed)[0], total_length=T)
        return pooled(out)

    runs = {
        f"nn.{family.module.__name__} packed": backward_step(baseline, params),
        "core": backward_step(lambda: pooled(core(x, ws, lengths=lengths, past_end="unread")[0]), params),
        "core mask carried past end": backward_step(lambda: pooled(core(x, ws, mask=mask)[0]), params),
        "core loop": backward_step(lambda: pooled(core(x, ws, mask=mask, kernel="loop")[0]), params),
    }
    return int(lengths.sum()), runs


def caffe_case(device: torch.device) -> Tuple[int, Dict[str, Callable]]:
    T, B, H, L, n_in, every = 320, 1, 50, 3, 1, 40
    torch.manual_seed(0)
    ref = nn.LSTM(n_in, H, L).to(device)
    ws = weights_from_torch(ref)
    cells = nn.ModuleList([nn.LSTMCell(n_in if k == 0 else H, H) for k in range(L)]).to(device)
    with torch.no_grad():  # the same weights in the cells
        for k, cell in enumerate(cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(ref, f"{name}_l{k}"))
    x = torch.randn(T, B, n_in, device=device, requires_grad=True)
    cont = torch.ones(T, B, device=device)
    cont[::every] = 0
    starts = list(range(0, T, every))
    params = list(ref.parameters()) + list(cells.parameters()) + [x]

    def segments():
        outs = [ref(x[s:s + every])[0] for s in starts]  # cont = 0 at each start: a zero state
        return torch.cat(outs).sum()

    def naive_cells():
        h = [torch.zeros(B, H, device=device) for _ in range(L)]
        c = [torch.zeros(B, H, device=device) for _ in range(L)]
        total = 0.0
        for t in range(T):
            inp = x[t]
            scale = cont[t].unsqueeze(1)
            for k, cell in enumerate(cells):
                h[k], c[k] = cell(inp, (h[k] * scale, c[k] * scale))
                inp = h[k]
            total = total + inp.sum()
        return total

    runs = {
        "nn.LSTMCell loop": backward_step(naive_cells, params),
        "nn.LSTM segments": backward_step(segments, params),
        "core": backward_step(lambda: lstm(x, ws, cont=cont)[0].sum(), params),
        "core loop": backward_step(lambda: lstm(x, ws, cont=cont, kernel="loop")[0].sum(), params),
    }
    if device.type == "cpu" and fastloop.available():
        runs["core compiled"] = backward_step(lambda: lstm(x, ws, cont=cont, kernel="compiled")[0].sum(), params)
    return T * B, runs


# --------------------------------------------------------------------------------------------- driver
def describe_machine(device: torch.device) -> str:
    parts = [f"torch {torch.__version__}", f"python {platform.python_version()}", platform.machine(),
             f"{os.cpu_count()} CPUs", f"torch threads {torch.get_num_threads()}",
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"]
    if device.type == "cuda":
        parts.append(torch.cuda.get_device_name(device))
        parts.append(f"cuDNN {torch.backends.cudnn.version()}")
    try:
        parts.append(f"load average {os.getloadavg()[0]:.1f}")
    except OSError:
        pass
    return ", ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default cpu)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row; the median is reported")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing each row")
    parser.add_argument("--quick", action="store_true", help="2 repeats, 1 warm-up, PTB large left out")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases to run (default: all)")
    parser.add_argument("--full-model", action="store_true",
                        help="PTB: time the whole model step (embedding, LSTM, softmax over 10000, loss)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (weights and inputs)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device(args.device)
    repeats, warmup = (2, 1) if args.quick else (args.repeats, args.warmup)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if args.quick:
        cases = [c for c in cases if c not in QUICK_LEFT_OUT]
    unknown = [c for c in cases if c not in KNOWN_CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {KNOWN_CASES}")
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    print(f"# {describe_machine(device)}; repeats {repeats}, warm-up {warmup}; forward + backward per step")
    print(f"{'case':<16} {'implementation':<28} {'tokens/s (median)':>18} {'min-max':>21} {'ratio':>7}")
    for case in cases:
        family, shape = family_of(case)
        if case == "ptb-train-step":
            tokens, runs = ptb_train_step_case(device)
        elif case == "ptb-eval-step":
            tokens, runs = ptb_eval_step_case(device)
        elif shape in PTB_CONFIGS:
            tokens, runs = ptb_case(shape, device, args.full_model, family)
        elif shape == "imdb":
            tokens, runs = imdb_case(device, family)
        else:
            tokens, runs = caffe_case(device)
        baseline = None
        all_times = interleaved_times(runs, device, repeats, warmup)
        for impl in runs:
            rates = sorted(tokens / t for t in all_times[impl])
            median = statistics.median(rates)
            if baseline is None:
                baseline = median
            print(f"{case:<16} {impl:<28} {median:>18,.0f} {f'{rates[0]:,.0f}-{rates[-1]:,.0f}':>21} "
                  f"{median / baseline:>7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
