"""What each of the sine regressor's speed-ups gives its training step, in one process, interleaved.

    python benchmarks/sine_step_parts.py [--rounds 12] [--steps 400]

Three copies of the port's training step (``ports.tf_sine``, one thread, the book's batches): as the
selection runs it (the first-step kernel, TF's Adagrad on one flat buffer); with the first-step kernel
refused (the step loop runs the LSTM); with TF's Adagrad as one ``torch._foreach_*`` operation per rule
term over the variables (the update before the flat buffer, the same numbers). Rounds alternate in order
(A B C, then C B A); printed: each side's median rate and the median of the pairwise ratios.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from ports.tf_sine import Config, SineLSTM, make_optimizer, train_step  # noqa: E402
from workload_data import sine_batches  # noqa: E402

from compat.recurrent.first import FIRST  # noqa: E402
from compat.tf1 import TFAdagrad, _as_float32  # noqa: E402


class ForeachAdagrad(TFAdagrad):
    """TF's Adagrad as one torch._foreach_* operation per term over the group's variables."""

    def update_group(self, params, grads, states, group):
        accs = [self._accumulator(p, s, group) for p, s in zip(params, states)]
        torch._foreach_add_(accs, torch._foreach_mul(grads, grads))
        step = torch._foreach_mul(grads, _as_float32(group["lr"]))
        torch._foreach_mul_(step, torch._foreach_rsqrt(accs))
        torch._foreach_sub_(params, step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Config()
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in sine_batches(0)]
    sides = {}
    for name in ("as selected", "step loop", "foreach Adagrad"):
        model = SineLSTM(config, generator=torch.Generator().manual_seed(0))
        if name == "foreach Adagrad":
            opt = ForeachAdagrad(model.trainable_parameters(), lr=config.learning_rate,
                                 initial_accumulator_value=config.initial_accumulator_value)
        else:
            opt = make_optimizer(model, config.learning_rate, config.initial_accumulator_value)
        sides[name] = (model, opt)

    def run(name: str, n: int) -> float:
        model, opt = sides[name]
        if name == "step loop":
            FIRST.supports = lambda call: "refused for the comparison"
        try:
            start = time.perf_counter()
            for k in range(n):
                x, y = batches[k % len(batches)]
                train_step(model, opt, x, y)
            return n / (time.perf_counter() - start)
        finally:
            FIRST.__dict__.pop("supports", None)

    names = list(sides)
    for name in names:
        run(name, args.steps // 4)
    rates = {name: [] for name in names}
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            rates[name].append(run(name, args.steps))
    print(f"# sine-train parts, 1 thread, {args.rounds} rounds x {args.steps} steps")
    for name in names:
        print(f"{name:<16} {statistics.median(rates[name]):>10,.1f} steps/s")
    for name in names[1:]:
        ratios = [a / b for a, b in zip(rates[names[0]], rates[name])]
        print(f"as selected / {name}: median of the pairwise ratios {statistics.median(ratios):.3f} "
              f"(min-max {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
