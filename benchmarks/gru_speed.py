"""The GRU core (compat.gru) beside torch.nn.GRU of the same shapes: the reset-after GRU (torch's fused
kernel through the core) and the reset-before GRU (TF1 GRUCell, Keras reset_after=False, ONNX
linear_before_reset=0: the step loop, since torch has no kernel for it).

    python benchmarks/gru_speed.py --threads 1 --repeats 15
    python benchmarks/gru_speed.py --device cuda --repeats 30
    python benchmarks/gru_speed.py --quick

Cases (time-major input, CPU by default):

- ``ptb-200`` / ``ptb-650``: the TF PTB tutorial's shapes, batch 20, 35 steps, 2 layers, input = hidden 200 / 650;
- ``imdb-128``: the Theano IMDB tutorial's shapes, batch 16, 100 steps, 1 layer, input = hidden 128.

Rows per case, for the forward pass alone (``no_grad``) and for forward + backward (a sum loss): torch.nn.GRU
(the baseline), the core's reset-after GRU (``compat.gru.GRU``, the selection's kernel: torch's fused GRU), and
the core's reset-before GRU on the same weights. The implementations run in interleaved rounds, one call
each, the order rotated every round (each in every position equally often); the table prints the median time per call, its spread
(min-max), and two ratios of throughput: reset-after / torch.nn.GRU, reset-before / the fused reset-after.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from compat.gru import GRU  # noqa: E402

CASES = {  # name: (batch, steps, hidden = input, layers)
    "ptb-200": (20, 35, 200, 2),
    "ptb-650": (20, 35, 650, 2),
    "imdb-128": (16, 100, 128, 1),
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(runs: Dict[str, Callable[[], None]], device: torch.device, repeats: int, warmup: int
                ) -> Dict[str, List[float]]:
    """Seconds per call of each implementation, interleaved rounds, the order rotated every round."""
    names = list(runs)
    for name in names:
        for _ in range(warmup):
            runs[name]()
    synchronize(device)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(repeats):
        # every implementation in every position equally often (rotated, and reversed every other cycle):
        # which one runs right after another's allocations shifts a median by up to 15% on a shared machine
        rotated = names[r % len(names):] + names[:r % len(names)]
        for name in (rotated if (r // len(names)) % 2 == 0 else rotated[::-1]):
            start = time.perf_counter()
            runs[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def step(module: torch.nn.Module, x: torch.Tensor, backward: bool) -> Callable[[], None]:
    def forward_only():
        with torch.no_grad():
            module(x)

    def forward_backward():
        out, h_n = module(x)
        (out.sum() + h_n.sum()).backward()
        for p in module.parameters():
            p.grad = None

    return forward_backward if backward else forward_only


def measure(case: str, device: torch.device, repeats: int, warmup: int, backward: bool) -> Dict[str, List[float]]:
    batch, steps, hidden, layers = CASES[case]
    torch.manual_seed(0)
    baseline = torch.nn.GRU(hidden, hidden, layers).to(device)
    after = GRU(hidden, hidden, layers).to(device)
    before = GRU(hidden, hidden, layers, reset_after=False).to(device)
    after.load_state_dict(baseline.state_dict())
    before.load_state_dict(baseline.state_dict())
    x = torch.randn(steps, batch, hidden, device=device)
    assert after.which_kernel(x).name == "fused" and before.which_kernel(x).name == "loop"
    runs = {"torch.nn.GRU": step(baseline, x, backward), "core reset-after": step(after, x, backward),
            "core reset-before": step(before, x, backward)}
    return interleaved(runs, device, repeats, warmup)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch's intra-op threads (CPU)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--quick", action="store_true", help="5 repeats, 1 warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 5, 1
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {device} ({name}), {torch.get_num_threads()} thread(s), "
          f"{args.repeats} interleaved rounds, medians (min-max) in ms per call")
    print()
    print("| case | pass | torch.nn.GRU | core reset-after | core reset-before | after / torch | before / after |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases:
        for backward in (False, True):
            times = measure(case, device, args.repeats, args.warmup, backward)
            med = {k: statistics.median(v) for k, v in times.items()}
            cells = [f"{1e3 * med[k]:.2f} ({1e3 * min(v):.2f}-{1e3 * max(v):.2f})" for k, v in times.items()]
            ratio_after = med["torch.nn.GRU"] / med["core reset-after"]
            ratio_before = med["core reset-after"] / med["core reset-before"]
            print(f"| {case} | {'fwd+bwd' if backward else 'fwd'} | {' | '.join(cells)} | {ratio_after:.2f}x | "
                  f"{ratio_before:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
