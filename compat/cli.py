"""What every ``python -m ports.<name>`` and ``python -m compat.convert`` share: the parser, flag domains,
help that shows defaults, one-line errors, ``--version``, the files list.

    def build_parser() -> ArgumentParser:
        p = ArgumentParser(prog="python -m ports.x", description=...)
        p.add_argument("--epochs", type=Int(minimum=1), default=13, help="epochs to train")
        ...
    def main(argv=None) -> int:
        return run_cli(_main, argv, build_parser)

Every flag that takes a value declares its domain: ``choices``, or a type from this module (:class:`Int`,
:class:`Float`, :class:`Text`, :class:`Device`, :class:`InputFile`, :class:`InputDir`, :class:`InputPath`,
:class:`OutputFile`, :class:`OutputDir`), so that a bad value is refused while the command line is read,
with one line naming the flag as the user typed it (the tests draw bad values from these domains for every
flag of every program). A failure the user caused later (a malformed file: :class:`compat.errors.InputError`)
prints ``error: <message>`` on one line, prefixed by the flag whose file it names, and exits with status 2,
as argparse does for its own errors; Ctrl-C exits with status 130 after the run's own cleanup. Anything
else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

from compat import __version__
from compat.errors import InputError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """argparse's ``ArgumentDefaultsHelpFormatter`` (``(default: X)`` after every option that has one) that keeps
    the description's line breaks and leaves out the default where the help already says it, or where there
    is none to say (a switch, ``None``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default is None or action.default is False or \
                action.default == argparse.SUPPRESS or action.required:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction,
                               argparse._VersionAction, argparse._HelpAction)):
            return text
        return super()._get_help_string(action)


# ------------------------------------------------------------------------------------------ flag domains
class Domain:
    """A flag's set of accepted values, as argparse's ``type``: called on the text typed, returns the value or
    raises ``argparse.ArgumentTypeError`` saying why (argparse prefixes the flag)."""

    def __call__(self, text: str):
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


class Int(Domain):
    """An integer of at least ``minimum`` (and at most ``maximum``), or one of ``also`` (say -1: once per epoch)."""

    def __init__(self, minimum: Optional[int] = None, maximum: Optional[int] = None, also: Sequence[int] = ()):
        self.minimum, self.maximum, self.also = minimum, maximum, tuple(also)

    def describe(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f"at least {self.minimum}")
        if self.maximum is not None:
            parts.append(f"at most {self.maximum}")
        text = "an integer" + (f" {' and '.join(parts)}" if parts else "")
        return text + "".join(f", or {v}" for v in self.also)

    def __call__(self, text: str) -> int:
        try:
            value = int(text, 10)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not {self.describe()}") from None
        if value in self.also:
            return value
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}; got {value}")
        return value


class Float(Domain):
    """A finite number, above (or at least) ``minimum`` and at most ``maximum`` where given."""

    def __init__(self, minimum: Optional[float] = None, maximum: Optional[float] = None, *, above: bool = False):
        self.minimum, self.maximum, self.above = minimum, maximum, above

    def describe(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f"{'above' if self.above else 'at least'} {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"at most {self.maximum:g}")
        return "a finite number" + (f" {' and '.join(parts)}" if parts else "")

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not {self.describe()}") from None
        low = self.minimum is not None and (value <= self.minimum if self.above else value < self.minimum)
        if not math.isfinite(value) or low or (self.maximum is not None and value > self.maximum):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}; got {text[:40]}")
        return value


class Text(Domain):
    """Free text, not empty unless ``empty`` (``--saveto ''``: none)."""

    def __init__(self, empty: bool = False):
        self.empty = empty

    def __call__(self, text: str) -> str:
        if not text and not self.empty:
            raise argparse.ArgumentTypeError("must not be empty")
        return text


class Device(Domain):
    """A torch device name (``cpu``, ``cuda``, ``cuda:N``); a CUDA device must exist on this machine."""

    def __call__(self, text: str) -> str:
        import torch

        try:
            device = torch.device(text)
        except (RuntimeError, ValueError, TypeError):
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a torch device (cpu, cuda or cuda:N)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: no CUDA device is available on this machine")
        if device.type not in ("cpu", "cuda"):
            raise argparse.ArgumentTypeError(f"{text}: only cpu and cuda devices are supported")
        return text


class ByteSize(Domain):
    """A size in bytes: ``4294967296``, ``4G``, ``512M``, ``1.5T`` (powers of 1024), at least one byte."""

    def __call__(self, text: str) -> int:
        m = re.fullmatch(r"\s*(\d{1,15}(?:\.\d{1,6})?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
        if not m:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a size (bytes, or a number with K, M, G or T)")
        value = int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))
        if value < 1:
            raise argparse.ArgumentTypeError(f"{text[:40]!r}: the size must be at least one byte")
        return value


def _path_text(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    if "\0" in text:
        raise argparse.ArgumentTypeError("a path with a NUL character")
    return text


class InputFile(Domain):
    """An existing file (or, with ``keywords``, one of those words). Its format is checked by its reader."""

    def __init__(self, keywords: Sequence[str] = ()):
        self.keywords = tuple(keywords)

    def __call__(self, text: str) -> str:
        if text in self.keywords:
            return text
        p = Path(_path_text(text))
        if p.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
        if not p.is_file():
            raise argparse.ArgumentTypeError(f"{text}: no such file")
        return text


class InputDir(Domain):
    """An existing directory."""

    def __call__(self, text: str) -> str:
        p = Path(_path_text(text))
        if p.exists() and not p.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: not a directory")
        if not p.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: no such directory")
        return text


class InputPath(Domain):
    """An existing file or directory, or a path ``PATH`` for which ``PATH<suffix>`` exists for one of
    ``suffixes`` (a TF checkpoint's prefix: ``PATH.index``), or one of ``keywords``."""

    def __init__(self, suffixes: Sequence[str] = (), keywords: Sequence[str] = ()):
        self.suffixes, self.keywords = tuple(suffixes), tuple(keywords)

    def __call__(self, text: str) -> str:
        if text in self.keywords:
            return text
        p = Path(_path_text(text))
        if not (p.exists() or any(Path(text + s).is_file() for s in self.suffixes)):
            raise argparse.ArgumentTypeError(f"{text}: no such file or directory")
        return text


def _writable_below(p: Path, text: str) -> None:
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {parent} is not a directory")
            return


class OutputFile(Domain):
    """A file to write: not an existing directory, and no file where one of its folders should be
    (``empty``: the empty text, for none)."""

    def __init__(self, empty: bool = False):
        self.empty = empty

    def __call__(self, text: str) -> str:
        if text == "" and self.empty:
            return text
        p = Path(_path_text(text))
        if p.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
        _writable_below(p, text)
        return text


class OutputDir(Domain):
    """A folder to write into (created when missing): not an existing file, nor below one."""

    def __call__(self, text: str) -> Path:
        p = Path(_path_text(text))
        if p.exists() and not p.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: is a file, not a directory")
        _writable_below(p, text)
        return p


PATH_DOMAINS = (InputFile, InputDir, InputPath, OutputFile, OutputDir)


# ----------------------------------------------------------------------------------------------- the parser
class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with this project's contract: help with defaults (:class:`HelpFormatter`), ``--version``
    (top-level parsers), and every error one line, ``error: <message>`` naming the flag as typed, and status 2
    (raised as :class:`InputError`, which :func:`run_cli` prints). Its subcommands' parsers are of this class too."""

    def __init__(self, *args, version: bool = True, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self._typed: List[str] = []
        if version:
            self.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", lambda **kw: type(self)(version=False, **kw))
        return super().add_subparsers(**kwargs)

    def parse_known_args(self, args=None, namespace=None):
        self._typed = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def _get_values(self, action, arg_strings):
        # Python 3.11's argparse drops a "--" given as an option's value (--epochs=--), leaving the option a
        # list ([]) that no type checked; later Pythons keep it as the value. Refused here as a bad value.
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            raise argparse.ArgumentError(action, "'--' is not a value")
        return super()._get_values(action, arg_strings)

    def typed_flag(self, names: Sequence[str]) -> str:
        """Which of ``names`` (one flag's option strings) the command line used (abbreviations included);
        the first name when none."""
        for token in reversed(self._typed):
            flag = token.split("=", 1)[0]
            if flag in names:
                return flag
        for token in reversed(self._typed):
            flag = token.split("=", 1)[0]
            if flag.startswith("--") and len(flag) > 2 and any(n.startswith(flag) for n in names):
                return flag
        return names[0]

    def error(self, message: str):
        """One line: argparse's ``argument --a/--b: ...`` names the flag as typed."""
        m = re.match(r"argument (\S+): ", message)
        if m:
            name = m.group(1)
            message = f"{self.typed_flag(name.split('/')) if name.startswith('-') else name}: {message[m.end():]}"
        message = " ".join(message.split())
        raise InputError(f"{message} ({self.prog} --help lists the options)")

    def path_actions(self) -> List[argparse.Action]:
        """The flags (and positionals) whose values are paths, subcommands' included."""
        found = []
        for action in self._actions:
            if isinstance(action.type, PATH_DOMAINS):
                found.append(action)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += sub.path_actions()
        return found

    def blame(self, args: argparse.Namespace, message: str) -> str:
        """``message`` (a reader's error naming a file) prefixed with the flag that gave that file, as typed."""
        if message.startswith("-"):
            return message
        for action in self.path_actions():
            value = getattr(args, action.dest, None)
            if value in (None, "") or not isinstance(value, (str, os.PathLike)) or str(value) not in message:
                continue
            if value in getattr(action.type, "keywords", ()):  # --dataset embedded: a word, not a file
                continue
            if not action.option_strings:
                return message
            flag = self.typed_flag(action.option_strings)
            return message if flag in message else f"{flag}: {message}"
        return message


def fail(message: str) -> None:
    """Raise the one-line error of a bad flag value (the CLIs exit with status 2)."""
    raise InputError(message)


def run_cli(main: Callable, argv: Optional[Sequence[str]] = None,
            build_parser: Optional[Callable[[], ArgumentParser]] = None) -> int:
    """Call ``main(argv)``, or, with ``build_parser``, ``main(args)`` on the parsed command line; an InputError
    becomes one line on stderr (naming the flag whose file is at fault) and status 2, Ctrl-C status 130."""
    parser = args = None
    try:
        if build_parser is None:
            return main(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        return main(args)
    except InputError as e:
        message = " ".join(str(e).splitlines())
        if parser is not None and args is not None:
            message = parser.blame(args, message)
        print(f"error: {message}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def check_device(name: str) -> str:
    """``--device`` (a :class:`Device` value): a CUDA device must exist. On CUDA, float32 products are made
    exact float32: torch lets cuDNN (and may let cuBLAS) round their inputs to TF32's 10-bit mantissa on Ampere
    and later GPUs, which TF1, Theano and Caffe never did, and which moves results by about 1e-3."""
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
