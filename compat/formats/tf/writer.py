"""V2 checkpoints written as TF's Saver writes them, committed so that a crash never loses the previous one.

A V2 checkpoint is two files (``PREFIX.index``, ``PREFIX.data-00000-of-00001``); no rename can replace
both at once. The ``checkpoint`` state file is therefore the commit point, as for TF's Saver (which
writes each step under a new prefix, then updates the state file):

1. the new data and index are written under a temporary prefix ``.<name>.<pid>.<random>.tmp`` in the
   same folder and synced;
2. if ``PREFIX`` already exists, its files are hard-linked (copied where links are impossible) to a
   backup prefix ``.<name>.<pid>.<random>.prev``, and if the state file names ``PREFIX`` it is pointed at
   the backup, which stays intact while ``PREFIX`` is replaced;
3. the new files are renamed onto ``PREFIX``, data then index, and the folder is synced;
4. the state file is pointed at ``PREFIX`` (an atomic rename), and the backup is removed.

A crash (``kill -9``, power loss) at any point leaves a state file that names a complete checkpoint:
the previous one until step 4, the new one after. An exception rolls back: ``PREFIX`` and the state
file are restored from the backup and no temporary file remains. A killed process cannot clean up: its
``.tmp``/``.prev`` files stay, and the next save to the same prefix removes them (except a backup the
state file still names, which it removes once its own commit is done). Without the state file
(``write_state=False``) there is no commit point: a crash between the two renames of step 3 leaves
``PREFIX`` inconsistent (reads then fail their checksums; they never return wrong values), so save each
step under a new prefix as the Saver does.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from typing import Mapping, Optional

import numpy as np

from compat.atomic import atomic_write_bytes, fsync_directory, in_flight, is_stale, leftover_pid, temp_name
from compat.errors import FileFormatError
from compat.formats.files import read_bytes
from compat.formats.tf.bundle import HEADER, encode_entry, encode_string_tensor
from compat.formats.tf.crc32c import crc32c, mask
from compat.formats.tf.errors import CheckpointError
from compat.formats.tf.state import MAX_STATE_BYTES, read_checkpoint_state, write_checkpoint_state
from compat.formats.tf.table import build_table
from compat.formats.tf.tensors import DT_STRING, FROM_NUMPY

DATA_SUFFIX = ".data-00000-of-00001"
INDEX_SUFFIX = ".index"
_SUFFIXES = (DATA_SUFFIX, INDEX_SUFFIX)
_LEFTOVER_REST = r"(?:\.index|\.data-\d{5}-of-\d{5})"


def encode_bundle(variables: Mapping[str, object], block_size: int = 262144) -> tuple:
    """``(data, index)`` bytes of a one-shard V2 bundle holding ``variables`` (name -> array-like)."""
    entries = []
    data = bytearray()
    for name in sorted(variables, key=lambda n: n.encode("utf-8") if isinstance(n, str) else b""):
        if not isinstance(name, str) or not name:
            raise ValueError(f"save_checkpoint: variable names must be non-empty strings, got {name!r}")
        value = variables[name]
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if arr.dtype.kind in "OUS":
            raw, crc = encode_string_tensor(arr)
            dtype_enum = DT_STRING
        else:
            dt = arr.dtype.newbyteorder("=") if arr.dtype.byteorder == ">" else arr.dtype
            dtype_enum = FROM_NUMPY.get(np.dtype(dt))
            if dtype_enum is None:
                raise ValueError(f"save_checkpoint: variable {name!r} has dtype {arr.dtype}, which has no "
                                 "TensorFlow equivalent")
            raw = np.ascontiguousarray(arr, dtype=np.dtype(dt).newbyteorder("<")).tobytes()
            crc = crc32c(raw)
        entries.append((name.encode("utf-8"), encode_entry(dtype_enum, arr.shape, len(data), len(raw), mask(crc))))
        data += raw
    return bytes(data), build_table([(b"", HEADER)] + entries, block_size=block_size)


def _write_synced(path: str, payload: bytes) -> None:
    with open(path, "xb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copyfile(src, dst)
        with open(dst, "rb+") as fh:
            os.fsync(fh.fileno())


def _remove(*paths: str) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


def _state_prefix(directory: str) -> Optional[str]:
    """The prefix the state file names now (None if there is none or it cannot be read)."""
    try:
        state = read_checkpoint_state(directory)
    except CheckpointError:
        return None
    return None if state is None else os.path.normpath(state["model_checkpoint_path"])


def remove_leftovers(prefix: str, keep: Optional[str] = None) -> list:
    """Remove the ``.tmp``/``.prev`` files that killed saves to ``prefix`` left, except those of ``keep``."""
    directory = os.path.dirname(prefix) or "."
    base = os.path.basename(prefix)
    removed = []
    for name in os.listdir(directory):
        pid = leftover_pid(name, base, ("tmp", "prev"), _LEFTOVER_REST)
        if pid is None:
            continue
        path = os.path.join(directory, name)
        stem = re.sub(_LEFTOVER_REST + "$", "", path)
        if keep is not None and os.path.normpath(stem) == keep:
            continue
        if is_stale(stem, pid):
            _remove(path)
            removed.append(path)
    return removed


def save_checkpoint(path_prefix, variables: Mapping[str, object], *, write_state: bool = True,
                    block_size: int = 262144) -> str:
    """Write ``variables`` (name -> array-like) as a V2 checkpoint at ``path_prefix`` that
    ``tf.compat.v1.train.Saver.restore`` and ``tf.train.load_checkpoint`` read; returns the prefix.

    With ``write_state`` the directory's ``checkpoint`` file is then updated to name this prefix, so
    ``tf.train.latest_checkpoint(directory)`` finds it. The commit is crash-safe (see the module's
    docstring). ``block_size`` is the index table's target block size (TF's default).
    """
    prefix = os.fspath(path_prefix)
    if not prefix or prefix.endswith(("/", os.sep)):
        raise ValueError(f"save_checkpoint: {prefix!r} is not a file prefix")
    data, index = encode_bundle(variables, block_size)
    directory = os.path.dirname(prefix) or "."
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(prefix)
    state_file = os.path.join(directory, "checkpoint")
    live = _state_prefix(directory)
    remove_leftovers(prefix, keep=live)
    state_before = None
    if write_state and os.path.lexists(state_file):
        try:
            state_before = read_bytes(state_file, MAX_STATE_BYTES, "checkpoint state file")
        except FileFormatError as exc:
            raise CheckpointError(state_file, f"cannot save beside it: {str(exc).removeprefix(f'{state_file}: ')}") from None

    new = os.path.join(directory, temp_name(base, "tmp"))
    backup = os.path.join(directory, temp_name(base, "prev"))
    existed = {s: os.path.lexists(prefix + s) for s in _SUFFIXES}
    installed = []
    state_written = False
    with in_flight(new, backup):
        try:
            _write_synced(new + DATA_SUFFIX, data)
            _write_synced(new + INDEX_SUFFIX, index)
            fsync_directory(directory)
            if any(existed.values()):
                for s in _SUFFIXES:
                    if existed[s]:
                        _link_or_copy(prefix + s, backup + s)
                fsync_directory(directory)
                if write_state and live == os.path.normpath(prefix):
                    state_written = True
                    write_checkpoint_state(directory, backup)
            for s in _SUFFIXES:  # data first, then the index that points into it, as TF's BundleWriter
                os.replace(new + s, prefix + s)
                installed.append(s)
            fsync_directory(directory)
            if write_state:
                state_written = True
                write_checkpoint_state(directory, prefix)
        except BaseException:
            _roll_back(prefix, backup, existed, installed, state_file if state_written else None, state_before)
            _remove(*(new + s for s in _SUFFIXES), *(backup + s for s in _SUFFIXES))
            raise
        _remove(*(backup + s for s in _SUFFIXES))
    if write_state:
        remove_leftovers(prefix)  # a backup the state file named before this commit is no longer needed
    return prefix


def _roll_back(prefix: str, backup: str, existed: dict, installed: list, state_file: Optional[str],
               state_before: Optional[bytes]) -> None:
    """Put ``prefix`` and the state file back as they were before a failed save."""
    for s in installed:
        if existed[s]:
            os.replace(backup + s, prefix + s)
        else:
            _remove(prefix + s)
    if state_file is not None:
        if state_before is None:
            _remove(state_file)
        else:
            atomic_write_bytes(state_file, state_before)
