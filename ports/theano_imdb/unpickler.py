"""Reading the tutorial's pickles without executing anything they contain.

Two kinds of pickle come from the Theano tutorial:

* ``imdb.pkl`` (DeepLearningTutorials ``code/imdb_preprocess.py``; read by ``code/imdb.py``
  ``load_data``): two pickles written one after the other, ``(train_x, train_y)`` then
  ``(test_x, test_y)``, each a tuple of lists of lists of ints. Such a pickle needs no global at all,
  whichever protocol (0, 1 or 2) and whichever Python wrote it, so :func:`load_data_pickles` refuses
  every global: a pickle that names one is not a data set, and may be an attempt to run code.
* ``<saveto>.pkl`` (``code/lstm.py`` ``train_lstm``: ``pkl.dump(model_options, ..., -1)``): a plain
  dict of the run's options, except that two values are not plain: ``optimizer`` is the optimizer
  *function* itself (pickled as a global reference such as ``lstm.adadelta`` or ``__main__.adadelta``)
  and ``ydim`` is a numpy integer (``numpy.max(train[1]) + 1``), pickled through
  ``numpy.core.multiarray.scalar`` and ``numpy.dtype``. :func:`read_options` accepts exactly these:
  the optimizer reference becomes its name (``"adadelta"``, ``"rmsprop"`` or ``"sgd"``), and numeric
  numpy scalars become Python numbers, rebuilt from their raw bytes without calling numpy's pickle
  machinery (Python 3 pickles spell those bytes ``_codecs.encode(text, 'latin1')``, also accepted).
  Everything else is refused.

Python 2 pickles store ``str`` as bytes; they are decoded as latin-1 (what numpy does for its own
Python 2 pickles), which is lossless.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Dict, Union

import numpy as np

PathLike = Union[str, os.PathLike]

OPTIMIZER_NAMES = ("adadelta", "rmsprop", "sgd")
# Modules under which the tutorial's optimizer functions were pickled: the script run as __main__,
# or imported as lstm (code/lstm.py), or from a package copy of the tutorial.
_OPTIMIZER_MODULES = ("__main__", "lstm", "code.lstm")
_NUMPY_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}
_NUMPY_DTYPE = {("numpy", "dtype")}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that names a global this reader does not allow (it could run code)."""


class DataFileError(ValueError):
    """A data, parameter or options file that is missing, truncated or not in the expected format."""


class _OptimizerRef(str):
    """The name of a pickled optimizer function (a str subclass so it compares equal to the name)."""


def _safe_dtype(spec, align=0, copy=0):
    dt = np.dtype(spec if not isinstance(spec, bytes) else spec.decode("latin-1"))
    if dt.kind not in "biufc":
        raise UnsafePickleError(f"refused numpy dtype {dt!r}: only numeric dtypes are accepted")
    return dt


def _safe_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc":
        raise UnsafePickleError(f"refused numpy scalar of dtype {dtype!r}: only numeric scalars are accepted")
    if isinstance(data, str):
        data = data.encode("latin-1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise UnsafePickleError(f"malformed numpy scalar payload for dtype {dtype}")
    return np.frombuffer(bytes(data), dtype=dtype)[0].item()


def _latin1_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {encoding!r}: only latin-1 text is accepted")
    return text.encode("latin-1")


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` allows nothing, or only the tutorial's options globals.

    ``allow_options_globals=False``: lists, tuples, dicts, ints, floats, strings, bytes, None and bools
    (the opcodes for these never call ``find_class``); any global is refused.
    ``allow_options_globals=True``: also the optimizer function references and numeric numpy scalars
    of the tutorial's options pickle (see the module docstring).
    """

    def __init__(self, file: BinaryIO, *, source: str = "<pickle>", allow_options_globals: bool = False):
        super().__init__(file, encoding="latin-1")
        self.source = source
        self.allow_options_globals = allow_options_globals

    def find_class(self, module: str, name: str):
        if self.allow_options_globals:
            if module in _OPTIMIZER_MODULES and name in OPTIMIZER_NAMES:
                # GLOBAL pushes find_class's return value: the function becomes its name.
                return _OptimizerRef(name)
            if (module, name) in _NUMPY_SCALAR:
                return _safe_scalar
            if (module, name) in _NUMPY_DTYPE:
                return _safe_dtype
            if (module, name) == ("_codecs", "encode"):
                # Python 3 pickles (protocol 2) store a numpy scalar's bytes as _codecs.encode(text, 'latin1').
                return _latin1_encode
        raise UnsafePickleError(
            f"{self.source}: refused to load global {module}.{name}: this file may only hold "
            + ("plain options (numbers, strings, the optimizer's name)" if self.allow_options_globals
               else "lists, tuples, ints and strings")
            + "; a pickle that names other globals can run arbitrary code when loaded")


def _open_bytes(path: PathLike) -> bytes:
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{p}: no such file")
    if p.is_dir():
        raise DataFileError(f"{p} is a directory; expected a pickle file")
    data = p.read_bytes()
    if str(p).endswith(".gz"):
        import gzip

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataFileError(f"{p}: not a readable gzip file ({e})") from None
    return data


def _load_one(fh: io.BytesIO, source: str, what: str, allow_options_globals: bool):
    try:
        return RestrictedUnpickler(fh, source=source, allow_options_globals=allow_options_globals).load()
    except UnsafePickleError:
        raise
    except EOFError:
        raise DataFileError(f"{source}: the file ends before {what} (truncated or empty)") from None
    except (pickle.UnpicklingError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            UnicodeDecodeError, OverflowError, MemoryError) as e:
        raise DataFileError(f"{source}: {what} is not a readable pickle ({type(e).__name__}: {e})") from None


def _check_split(obj, source: str, which: str):
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise DataFileError(f"{source}: the {which} pickle must be a pair (x, y); got {type(obj).__name__}"
                            + (f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else ""))
    xs, ys = obj
    if not isinstance(xs, (list, tuple)) or not isinstance(ys, (list, tuple)):
        raise DataFileError(f"{source}: the {which} pickle's x and y must be lists")
    if len(xs) != len(ys):
        raise DataFileError(f"{source}: the {which} set has {len(xs)} sequences but {len(ys)} labels")
    seen = set()
    for s in xs:
        if type(s) is not list and type(s) is not tuple:
            seen.add(None)
            break
        seen.update(map(type, s))
    if seen - {int}:
        for k, s in enumerate(xs):
            if not isinstance(s, (list, tuple)) or not all(type(w) is int for w in s):
                raise DataFileError(f"{source}: {which} x[{k}] is not a list of ints")
    for k, label in enumerate(ys):
        if type(label) is not int:
            raise DataFileError(f"{source}: {which} y[{k}] is {label!r}; labels must be ints")
    return [list(s) for s in xs], list(ys)


def load_data_pickles(path: PathLike):
    """``(train, test)``, each ``(x, y)``, from the tutorial's two-pickle ``imdb.pkl`` (``.gz`` too)."""
    source = str(path)
    fh = io.BytesIO(_open_bytes(path))
    train = _check_split(_load_one(fh, source, "the first (train) pickle", False), source, "train")
    test = _check_split(_load_one(fh, source, "the second (test) pickle", False), source, "test")
    return train, test


def loads_data_pickle(data: bytes, source: str = "<bytes>"):
    """One restricted pickle from bytes (no globals allowed)."""
    return _load_one(io.BytesIO(data), source, "the pickle", False)


def read_options(path: PathLike) -> Dict[str, Any]:
    """The run options from a ``<saveto>.pkl``, the tutorial's or this port's.

    ``options["optimizer"]`` is the optimizer's name; numpy scalars are Python numbers.
    """
    source = str(path)
    obj = _load_one(io.BytesIO(_open_bytes(path)), source, "the options pickle", True)
    if not isinstance(obj, dict):
        raise DataFileError(f"{source}: the options pickle must hold a dict; got {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise DataFileError(f"{source}: option key {k!r} is not a string")
        out[k] = str(v) if isinstance(v, _OptimizerRef) else v
    return out


_PLAIN = (str, int, float, bool, type(None))


def dumps_options(options: Dict[str, Any]) -> bytes:
    """A pickle of ``options`` as plain values (protocol 2), readable by :func:`read_options`.

    The optimizer is stored by name, not as a function: the tutorial's loader
    (``pkl.load`` in Python 2) reads it back as a string.
    """
    plain = {}
    for k, v in options.items():
        if callable(v):
            v = getattr(v, "tutorial_name", getattr(v, "__name__", str(v)))
        if isinstance(v, np.generic):
            v = v.item()
        if not isinstance(v, _PLAIN):
            raise TypeError(f"option {k!r} has a value of type {type(v).__name__}; only str/int/float/bool/None are saved")
        plain[k] = v
    return pickle.dumps(plain, protocol=2)
