"""The ``checkpoint`` state file of a checkpoint directory, and where a path given by a user points.

The state file is a text-format ``CheckpointState`` (tensorflow/python/training/checkpoint_state.proto):
``model_checkpoint_path`` (the newest prefix), ``all_model_checkpoint_paths``,
``all_model_checkpoint_timestamps``, ``last_preserved_timestamp``. Paths are relative to the directory
unless absolute, as ``tf.train.latest_checkpoint`` resolves them (checkpoint_management.py).

It is read with :mod:`compat.formats.prototxt` (linear-time tokenizer, size-capped): a file of 60,000
spaces between a field and its value costs 60,000 steps, not their square. A path must be a quoted
string whose bytes are UTF-8 and contain no NUL; anything else is a :class:`CheckpointError` naming
the file and the field.
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Iterable, Optional, Tuple

from compat.atomic import atomic_write_text
from compat.errors import FileFormatError
from compat.formats.files import MiB, read_text
from compat.formats.prototxt import Identifier, PrototxtError, parse_prototxt
from compat.formats.tf.errors import CheckpointError, CheckpointNotFoundError

MAX_STATE_BYTES = 1 * MiB
_PATH_FIELDS = ("model_checkpoint_path", "all_model_checkpoint_paths")
_TIME_FIELDS = ("all_model_checkpoint_timestamps", "last_preserved_timestamp")


def _path_value(state_path, name: str, value) -> str:
    if isinstance(value, bytes):
        raise CheckpointError(state_path, f"{name} is not valid UTF-8 ({value[:80]!r})")
    if not isinstance(value, str) or isinstance(value, Identifier):
        raise CheckpointError(state_path, f"{name} must be a quoted string, found {str(value)[:80]!r}")
    if "\x00" in value:
        raise CheckpointError(state_path, f"{name} contains a NUL byte")
    return value


def read_checkpoint_state(directory, latest_filename: str = "checkpoint") -> Optional[dict]:
    """The directory's CheckpointState as a dict (``model_checkpoint_path``, ``all_model_checkpoint_paths``,
    ...), with relative paths joined to the directory as TF does; None when there is no state file."""
    state_path = Path(directory) / latest_filename
    if not os.path.lexists(state_path):
        return None
    try:
        text = read_text(state_path, MAX_STATE_BYTES, "checkpoint state file")
        msg = parse_prototxt(text, str(state_path))
    except PrototxtError as exc:
        where = str(exc).removeprefix(f"{state_path}:")
        raise CheckpointError(state_path, f"line {where} (not a text-format CheckpointState)") from None
    except FileFormatError as exc:
        raise CheckpointError(state_path, str(exc).removeprefix(f"{state_path}: ")) from None
    state: dict = {"all_model_checkpoint_paths": [], "all_model_checkpoint_timestamps": []}
    for name, value in msg:
        if name in _PATH_FIELDS:
            value = _path_value(state_path, name, value)
        elif name in _TIME_FIELDS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CheckpointError(state_path, f"{name} must be a number, found {str(value)[:80]!r}")
            value = float(value)
        else:
            raise CheckpointError(state_path, f"unknown CheckpointState field {name!r}")
        if name.startswith("all_"):
            state[name].append(value)
        else:
            state[name] = value
    if "model_checkpoint_path" not in state:
        raise CheckpointError(state_path, "checkpoint state has no model_checkpoint_path")

    def absolute(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(str(directory), p)

    state["model_checkpoint_path"] = absolute(state["model_checkpoint_path"])
    state["all_model_checkpoint_paths"] = [absolute(p) for p in state["all_model_checkpoint_paths"]]
    return state


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_checkpoint_state(directory, model_checkpoint_path: str,
                           all_model_checkpoint_paths: Optional[Iterable[str]] = None,
                           latest_filename: str = "checkpoint") -> Path:
    """Write the ``checkpoint`` state file atomically, as ``tf.train.update_checkpoint_state`` does (paths
    relative to the directory when they lie inside it)."""
    directory = Path(directory)

    def rel(p: str) -> str:
        p = os.fspath(p)
        try:
            r = os.path.relpath(p, directory)
        except ValueError:
            return p
        return p if r.startswith("..") else r

    paths = list(all_model_checkpoint_paths or [])
    if model_checkpoint_path not in paths:
        paths.append(model_checkpoint_path)
    lines = [f"model_checkpoint_path: {_quote(rel(model_checkpoint_path))}"]
    lines += [f"all_model_checkpoint_paths: {_quote(rel(p))}" for p in paths]
    target = directory / latest_filename
    atomic_write_text(target, "\n".join(lines) + "\n")
    return target


def v1_files(prefix: str) -> list:
    if os.path.isfile(prefix):
        return [prefix]
    return sorted(glob.glob(glob.escape(prefix) + "-?????-of-?????"))


def latest_checkpoint(directory, latest_filename: str = "checkpoint") -> Optional[str]:
    """As ``tf.train.latest_checkpoint``: the newest prefix named by the state file, if its files exist."""
    state = read_checkpoint_state(directory, latest_filename)
    if state is None:
        return None
    prefix = state["model_checkpoint_path"]
    if os.path.isfile(prefix + ".index") or v1_files(prefix):
        return prefix
    return None


def resolve_checkpoint(path) -> Tuple[str, str]:
    """``(kind, location)``: ``("v2", prefix)`` or ``("v1", file)`` for a prefix, a ``.index`` or
    ``.data-*`` file, a V1 file, or a directory holding a ``checkpoint`` state file."""
    p = os.fspath(path)
    if "\x00" in p:
        raise CheckpointNotFoundError(repr(p), "a path cannot contain a NUL byte")
    if os.path.isdir(p):
        state = read_checkpoint_state(p)
        if state is None:
            raise CheckpointNotFoundError(p, "directory has no 'checkpoint' state file")
        prefix = state["model_checkpoint_path"]
        if os.path.lexists(prefix + ".index"):
            return "v2", prefix
        v1 = v1_files(prefix)
        if len(v1) == 1:
            return "v1", v1[0]
        if v1:
            raise CheckpointError(p, f"sharded V1 checkpoint {prefix} ({len(v1)} files) is not supported")
        raise CheckpointNotFoundError(p, f"the state file names {prefix!r}, which has no files")
    # lexists, not isfile: a FIFO or a link to a device is then refused by the reader with a clear error
    if p.endswith(".index") and os.path.lexists(p):
        return "v2", p[: -len(".index")]
    m = re.fullmatch(r"(.*)\.data-\d{5}-of-\d{5}", p, re.DOTALL)
    if m and os.path.lexists(m.group(1) + ".index"):
        return "v2", m.group(1)
    if os.path.lexists(p + ".index"):
        return "v2", p
    if os.path.lexists(p):
        return "v1", p
    raise CheckpointNotFoundError(p, "no checkpoint here (no PREFIX.index, V1 file or directory with a "
                                     "'checkpoint' state file)")
