"""The command line of ``python -m ports.caffe_sequence --config lstm_short|lstm_long|deep_short|deep_long``.

Trains as examples/lstm_sequence/lstm_sequence.cpp does, then generates the whole sequence with a
one-step net sharing the weights; writes under --out the train log, <config>_result.log ("target
prediction" lines), a .caffemodel of the trained net and summary.json, then the PNGs of target vs
generated and of the loss curve.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from compat import threads
from compat.cli import HelpFormatter, add_kernel_argument, check_device, check_positive, fail, print_files, run_cli
from compat.errors import InputError
from ports.caffe_sequence.config import CONFIGS, RunConfig
from ports.caffe_sequence.train import output_files, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ports.caffe_sequence", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--config", required=True, choices=sorted(CONFIGS),
                   help="which lstm_sequence net and solver to run (test_<config>.sh of the original)")
    p.add_argument("--iters", type=int, default=None, help="training iterations (default: the solver's max_iter, 100000)")
    p.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    threads.add_threads_argument(p)
    p.add_argument("--seed", type=int, default=1701, help="seed of the fillers' random numbers")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/caffe_sequence/<config>)")
    p.add_argument("--save", type=Path, default=None,
                   help="checkpoint written atomically every --checkpoint-every iterations and at the end: NAME.json "
                        "and a .safetensors file beside it (default <out>/checkpoint)")
    p.add_argument("--checkpoint-every", type=int, default=5000, help="iterations between checkpoints (0: only at the end)")
    p.add_argument("--resume", type=Path, default=None, help="continue from this checkpoint (same --config)")
    p.add_argument("--caffemodel", type=Path, default=None,
                   help="load a trained .caffemodel of the fork's net (layers matched by name) and only generate")
    p.add_argument("--generate-only", action="store_true", help="skip training (use with --resume or --caffemodel)")
    p.add_argument("--no-dwh-defect", action="store_true",
                   help="train with the true dW_h gradient instead of the fork's (which accumulates dW_h where clip is 0)")
    add_kernel_argument(p)
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    p.add_argument("--no-progress", action="store_true", help="do not print the progress bar")
    return p


def _main(argv=None, owns_process: bool = False) -> int:
    args = build_parser().parse_args(argv)
    check_positive(iters=args.iters)
    if args.checkpoint_every < 0:
        fail(f"--checkpoint-every must be at least 0; got {args.checkpoint_every}")
    check_device(args.device)
    n_threads = threads.configure_threads(args.threads, owns_process=owns_process)
    out = args.out or Path("runs") / "caffe_sequence" / args.config
    save = args.save or out / "checkpoint"
    if args.caffemodel is not None and not args.caffemodel.is_file():
        fail(f"--caffemodel {args.caffemodel}: no such file")
    cfg = RunConfig(config=args.config, out_dir=out, iters=args.iters, device=args.device, seed=args.seed,
                    resume=args.resume, save=save, checkpoint_every=args.checkpoint_every,
                    dwh_defect=not args.no_dwh_defect, kernel=args.kernel, progress=not args.no_progress,
                    plot=not args.no_plot)
    solver, length = CONFIGS[args.config]
    if args.generate_only or args.caffemodel:
        training = "generation only"
    else:
        training = f"{args.iters} iterations" if args.iters is not None else "the solver's max_iter iterations"
    print(f"ports.caffe_sequence: caffe-lstm's lstm_sequence example, --config {args.config} ({solver}, "
          f"sequence length {length}), {training}, {args.device}, {n_threads}; files go to {out}/",
          flush=True)
    try:
        summary = run(cfg, caffemodel_in=args.caffemodel, generate_only=args.generate_only, on_step=n_threads.check)
    except (ValueError, FileNotFoundError) as exc:
        if isinstance(exc, InputError):
            raise
        fail(str(exc))
    print(json.dumps(summary, indent=2))
    print_files(output_files(out, args.config, summary["iterations"], save))
    return 0


def main(argv=None, *, owns_process: bool = False) -> int:
    """The program; ``owns_process``: run as ``python -m`` (it may then choose the thread count)."""
    return run_cli(lambda a: _main(a, owns_process), argv)
