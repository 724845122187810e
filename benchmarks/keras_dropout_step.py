"""A converted Keras layer's training step with its dropout (forward + backward, the masks fixed), this tree
against a baseline tree's ``compat/frameworks/keras/dropout.py`` ``run``, in one process, interleaved.

    mkdir -p /tmp/baseline && git archive fce65cd | tar -x -C /tmp/baseline   # the last tree with run()
    python benchmarks/keras_dropout_step.py --baseline /tmp/baseline --threads 1 --rounds 15

The baseline's ``run(module, family, spec, x, hx, mask, masks)`` (a tree whose Keras dropout ran its own step
loop) is loaded from its file under another name and called on this tree's module, its output put through
Keras's output rules as the module's forward does; this tree's side is the module's forward
(``module(x, mask=..., dropout_masks=...)``: the masks handed to the core). Both sides get the same masks,
drawn once per case. Per round every case runs each side once (the order flipping every round), after one
warm-up call each. Printed per case: each side's median time per step (ms), and the median of the rounds'
ratios baseline / this (above 1: this tree is faster), with its min-max; the largest difference of the
outputs of the two sides (they compute the same function in another order of the sums).

Cases (batch-first [B, T, in], float32, Keras's sizes of a small text model: B 32, T 50, in 32, H 64):
``lstm-per_gate`` (implementation=1, recurrent_dropout set: one input and one recurrent mask per gate),
``lstm-shared`` (implementation=2), ``lstm-per_step`` (tf-keras's fused path: a new input mask per step),
``bilstm-per_step`` (its ``Bidirectional``), ``gru-per_gate`` (reset_after), ``gru-shared-dropped_h`` (Keras
2.0-2.3, reset before, ``update_uses_dropped_h``), ``simple_rnn-shared``; ``--mask`` adds a padding mask.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

from compat.convert.modules import KerasGRU, KerasLSTM, KerasSimpleRNN, _keras_output  # noqa: E402
from compat.frameworks.keras import dropout as kd  # noqa: E402
from compat.frameworks.keras.dropout import KerasDropout  # noqa: E402

CASES = {  # name: (module class, family, options, KerasDropout arguments, bidirectional)
    "lstm-per_gate": (KerasLSTM, "lstm", {}, (0.2, 0.3, "per_gate"), False),
    "lstm-shared": (KerasLSTM, "lstm", {}, (0.2, 0.3, "shared"), False),
    "lstm-per_step": (KerasLSTM, "lstm", {}, (0.2, 0.0, "per_step"), False),
    "bilstm-per_step": (KerasLSTM, "lstm", {}, (0.2, 0.0, "per_step"), True),
    "gru-per_gate": (KerasGRU, "gru", {"reset_after": True}, (0.2, 0.3, "per_gate"), False),
    "gru-shared-dropped_h": (KerasGRU, "gru", {"reset_after": False}, (0.2, 0.3, "shared", True), False),
    "simple_rnn-shared": (KerasSimpleRNN, "rnn", {}, (0.2, 0.3, "shared"), False),
}


def load_baseline(tree: Path):
    path = tree / "compat" / "frameworks" / "keras" / "dropout.py"
    spec = importlib.util.spec_from_file_location("baseline_keras_dropout", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    if not hasattr(module, "run"):
        raise SystemExit(f"error: --baseline: {path} has no run(): not a tree whose Keras dropout ran its own loop")
    return module


def build(name: str, B: int, T: int, n_in: int, H: int, masked: bool):
    cls, family, options, drop, bidirectional = CASES[name]
    torch.manual_seed(0)
    m = cls(n_in, H, bidirectional=bidirectional, keras_dropout=KerasDropout(*drop), **options).train()
    x = torch.randn(B, T, n_in)
    mask = None
    if masked:
        lengths = torch.randint(T // 2, T + 1, (B,), generator=torch.Generator().manual_seed(1))
        mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).float()
    masks = kd.draw(m.keras_dropout, family, B, T, n_in, H, x, 2 if bidirectional else 1,
                    torch.Generator().manual_seed(2))
    return m, family, x, mask, masks


def step_this(m, family, x, mask, masks):
    y, _ = m(x, mask=mask, dropout_masks=masks)
    y.square().mean().backward()
    return y


def step_baseline(old, m, family, x, mask, masks):
    y, _ = old.run(m, family, m.keras_dropout, x, None, mask, masks)
    y = _keras_output(m, y, mask, True)
    y.square().mean().backward()
    return y


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", type=Path, required=True, help="a tree to compare with (its Keras dropout's run())")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--input", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--mask", action="store_true", help="a right-padding Keras mask on every case")
    p.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    old = load_baseline(args.baseline)
    print(f"torch {torch.__version__}, {args.threads} thread(s), B {args.batch} T {args.steps} in {args.input} "
          f"H {args.hidden}, mask {args.mask}, {args.rounds} rounds; baseline {args.baseline}")
    print(f"{'case':<22}{'baseline ms':>12}{'this ms':>10}{'ratio':>8}  {'(min-max)':<14}{'max |diff|':>11}")
    ratios_all = []
    for name in args.cases:
        m, family, x, mask, masks = build(name, args.batch, args.steps, args.input, args.hidden, args.mask)
        this = lambda: step_this(m, family, x, mask, masks)  # noqa: E731
        base = lambda: step_baseline(old, m, family, x, mask, masks)  # noqa: E731
        with torch.no_grad():
            diff = float((m(x, mask=mask, dropout_masks=masks)[0]
                          - _keras_output(m, old.run(m, family, m.keras_dropout, x, None, mask, masks)[0], mask,
                                          True)).abs().max())
        this(), base()
        times = {"this": [], "base": []}
        ratios = []
        for r in range(args.rounds):
            order = (("this", this), ("base", base)) if r % 2 == 0 else (("base", base), ("this", this))
            got = {}
            for side, fn in order:
                m.zero_grad(set_to_none=True)
                got[side] = timed(fn)
                times[side].append(got[side])
            ratios.append(got["base"] / got["this"])
        ratios_all.append(statistics.median(ratios))
        base_ms, this_ms = (statistics.median(times[side]) * 1e3 for side in ("base", "this"))
        print(f"{name:<22}{base_ms:>12.2f}{this_ms:>10.2f}{statistics.median(ratios):>8.2f}  "
              f"({min(ratios):.2f}-{max(ratios):.2f}){'':<3}{diff:>11.2e}")
    geo = statistics.geometric_mean(ratios_all)
    print(f"geometric mean of the median ratios baseline / this: {geo:.2f}")


if __name__ == "__main__":
    main()
