"""The tutorial's files: ``lstm_model.npz`` (parameters and error history) and ``lstm_model.npz.pkl`` (options).

lstm.py ``train_lstm`` writes ``numpy.savez(saveto, history_errs=..., **params)`` at every ``saveFreq``
updates and, at the end, the same plus ``train_err``, ``valid_err``, ``test_err``; beside it
``saveto + '.pkl'`` holds ``model_options``. Both are written here atomically; the npz is read member by
member with :mod:`compat.formats.npz` (no pickle, each member's size and header checked before its data is
read, members other than the tutorial's never read) and the options pickle with the restricted unpickler.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Mapping, MutableMapping, Optional, Union

import numpy as np

from compat.atomic import atomic_path, atomic_write_bytes
from compat.errors import FileFormatError
from compat.formats.npz import read_npz
from ports.theano_imdb.model import PARAM_NAMES
from ports.theano_imdb.unpickler import DataFileError, dumps_options, read_options

PathLike = Union[str, os.PathLike]


def npz_path(saveto: PathLike) -> Path:
    """Where ``numpy.savez(saveto, ...)`` writes: it appends ``.npz`` when the name lacks it."""
    s = str(saveto)
    return Path(s if s.endswith(".npz") else s + ".npz")


def options_path(saveto: PathLike) -> Path:
    """lstm.py: ``open('%s.pkl' % saveto, 'wb')`` (the name as given, plus ``.pkl``)."""
    return Path(str(saveto) + ".pkl")


# The arrays lstm.py's numpy.savez writes besides the parameters; any other member is ignored unread.
HISTORY_KEYS = ("history_errs", "train_err", "valid_err", "test_err")


def _read_npz(path: PathLike, names, *, required: bool) -> Dict[str, np.ndarray]:
    """The members ``names`` of a parameter ``.npz``, each checked (declared size, .npy header, dtype)
    before it is read; members not named are never decompressed."""
    try:
        return read_npz(path, names, what="archive", required=required)
    except FileFormatError as e:
        raise DataFileError(str(e)) from None


def load_params(path: PathLike, params: Optional[MutableMapping[str, np.ndarray]] = None, *,
                doubled_bias: bool = False, allow_nonfinite: bool = False) -> "OrderedDict[str, np.ndarray]":
    """The six parameters from a tutorial-format ``.npz`` (no pickle; other members are not read).

    ``params``: as lstm.py ``load_params(path, params)``, fill (and return) this mapping's keys from the
    archive, failing on a key it lacks. ``doubled_bias=True``: the file was trained by lstm.py before
    May 2015, whose ``lstm_layer._step`` added ``lstm_b`` twice; the returned ``lstm_b`` is doubled so
    that the current computation gives that checkpoint's predictions. A parameter holding NaN or infinite
    values is refused by name unless ``allow_nonfinite``.
    """
    keys = list(params.keys()) if params is not None else list(PARAM_NAMES)
    archive = _read_npz(path, keys, required=True)
    out = params if params is not None else OrderedDict()
    for k in keys:
        v = archive[k]
        if v.dtype.kind not in "fiu":
            raise DataFileError(f"{path}: {k} has dtype {v.dtype}; expected a numeric array")
        if params is not None and isinstance(params[k], np.ndarray) and params[k].shape != v.shape:
            raise DataFileError(f"{path}: {k} has shape {list(v.shape)}; the model needs {list(params[k].shape)}")
        if not allow_nonfinite and v.dtype.kind == "f" and not np.isfinite(v).all():
            raise DataFileError(f"{path}: {k} holds NaN or infinite values (allow_nonfinite=True loads them)")
        out[k] = v
    if doubled_bias and "lstm_b" in out:
        out["lstm_b"] = 2 * out["lstm_b"]
    return out


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """The parameters, ``history_errs`` and any final errors of a tutorial-format ``.npz``."""
    archive = _read_npz(path, list(PARAM_NAMES) + list(HISTORY_KEYS), required=False)
    missing = [k for k in PARAM_NAMES if k not in archive]
    if missing:
        raise DataFileError(f"{path}: parameters {missing} are not in the archive")
    return archive


def save_params(saveto: PathLike, params: Mapping[str, np.ndarray], **extra) -> Path:
    """``numpy.savez(saveto, **extra, **params)`` atomically (the tutorial's keys and layout)."""
    target = npz_path(saveto)
    arrays = {k: np.asarray(v) for k, v in extra.items()}
    arrays.update({k: np.asarray(v) for k, v in params.items()})
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return target


def save_options(saveto: PathLike, options: Mapping[str, Any]) -> Path:
    """The options pickle beside the npz (plain values; the optimizer by name)."""
    target = options_path(saveto)
    atomic_write_bytes(target, dumps_options(dict(options)))
    return target


def load_options(path: PathLike) -> Dict[str, Any]:
    """A ``<saveto>.pkl`` from the tutorial or this port (restricted unpickler)."""
    return read_options(path)
