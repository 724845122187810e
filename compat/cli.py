"""What every ``python -m ports.<name>`` shares: help that shows defaults, one-line errors, the files list.

    parser = argparse.ArgumentParser(prog=..., formatter_class=HelpFormatter)
    ...
    def main(argv=None) -> int:
        return run_cli(_main, argv)

A failure the user caused (a missing or malformed file, a bad flag value: :class:`compat.errors.InputError`)
prints ``error: <message>`` on one line and exits with status 2, as argparse does for its own errors;
Ctrl-C exits with status 130 after the run's own cleanup. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

from compat.errors import InputError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends ``(default: X)`` to every option that has one and
    does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, argparse.SUPPRESS) or action.required:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return text
        if isinstance(action, argparse.BooleanOptionalAction):
            return text
        return f"{text} (default: {action.default})" if text else f"(default: {action.default})"


def fail(message: str) -> None:
    """Raise the one-line error of a bad flag value (the CLIs exit with status 2)."""
    raise InputError(message)


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Call ``main(argv)``; an InputError becomes one line on stderr and status 2, Ctrl-C status 130."""
    try:
        return main(argv)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def check_positive(**values: Union[int, float, None]) -> None:
    """``--name`` must be >= 1 for every given int (None: not set)."""
    for name, value in values.items():
        if value is not None and value < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1; got {value}")


def check_device(name: str) -> str:
    """``--device``: a CUDA device must exist. On CUDA, float32 products are made exact float32: torch lets
    cuDNN (and may let cuBLAS) round their inputs to TF32's 10-bit mantissa on Ampere and later GPUs, which
    TF1, Theano and Caffe never did, and which moves results by about 1e-3."""
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            fail(f"--device {name}: no CUDA device is available on this machine")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return name


def add_kernel_argument(parser: argparse.ArgumentParser) -> None:
    """``--kernel``: the LSTM core's kernel, "auto" (the core's choice) or one named (benchmarks, checks)."""
    from compat.recurrent import KERNELS

    parser.add_argument("--kernel", default="auto", choices=["auto", *KERNELS],
                        help="the LSTM core's kernel: auto, the core's choice (compat.recurrent.select), or one forced "
                             "(benchmarks); every kernel gives the same numbers")


FileList = List[Tuple[Union[str, Path], str]]


def print_files(files: Iterable[Tuple[Union[str, Path], str]], stream=None) -> None:
    """The closing lines: every file the run wrote, with what it holds (files that do not exist are left out)."""
    stream = stream if stream is not None else sys.stdout
    rows = [(str(p), what) for p, what in files if p is not None and Path(p).exists()]
    if not rows:
        return
    print("Files written:", file=stream)
    width = max(len(p) for p, _ in rows)
    for p, what in rows:
        print(f"  {p:<{width}}  {what}", file=stream)
    stream.flush()
