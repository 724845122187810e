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

Both go through :mod:`compat.formats.pickles`: the file is read under a size cap (``.gz`` decompressed
as a stream under the same cap) and each pickle's opcodes are scanned and bounded (nesting, memo,
containers, expanded size) before it is unpickled. The data set's ids and labels are then checked, and
the total of ids counted through shared references, before any list is copied. Python 2 pickles store
``str`` as bytes; they are decoded as latin-1 (what numpy does for its own Python 2 pickles), which is
lossless.
"""
from __future__ import annotations

import os
import pickle
from typing import Any, Dict, Tuple, Union

import numpy as np

from compat.errors import FileFormatError
from compat.formats import pickles
from compat.formats.files import MiB
from compat.formats.pickles import PickleLimits, UnsafePickleError, describe

PathLike = Union[str, os.PathLike]

OPTIMIZER_NAMES = ("adadelta", "rmsprop", "sgd")
# Modules under which the tutorial's optimizer functions were pickled: the script run as __main__,
# or imported as lstm (code/lstm.py), or from a package copy of the tutorial.
_OPTIMIZER_MODULES = ("__main__", "lstm", "code.lstm")
_NUMPY_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}
_NUMPY_DTYPE = {("numpy", "dtype")}

# Caps (docs/security.md). The tutorial's imdb.pkl is 33 MB holding about 7 million word ids per split.
DATA_PICKLE_CAP = 128 * MiB           # imdb.pkl, or what imdb.pkl.gz decompresses to
MAX_IDS_PER_SPLIT = 32_000_000        # word ids in one split, counted through shared references
MAX_WORD_ID = 2 ** 31 - 1             # ids index the embedding: int32 range
MAX_LABEL = 65_535                    # labels are classes 0 .. ydim - 1; U is [dim_proj, ydim]
OPTIONS_PICKLE_CAP = 1 * MiB
DATA_LIMITS = PickleLimits(max_bytes=DATA_PICKLE_CAP, max_depth=8, max_containers=1 << 22,
                           max_expanded=2 * DATA_PICKLE_CAP)
OPTIONS_LIMITS = PickleLimits(max_bytes=OPTIONS_PICKLE_CAP, max_depth=8, max_containers=10_000,
                              max_expanded=4 * OPTIONS_PICKLE_CAP)
_DATA_HINT = "this file may only hold lists, tuples, ints and strings"
_OPTIONS_HINT = "this file may only hold plain options (numbers, strings, the optimizer's name)"


class DataFileError(FileFormatError):
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
        raise UnsafePickleError(f"refused numpy scalar of dtype {describe(dtype)}: only numeric scalars are accepted")
    if isinstance(data, str):
        data = data.encode("latin-1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise UnsafePickleError(f"malformed numpy scalar payload for dtype {dtype}")
    return np.frombuffer(bytes(data), dtype=dtype)[0].item()


def _latin1_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {describe(encoding)}: only latin-1 text is "
                                "accepted")
    return text.encode("latin-1")


# The tutorial's options pickle: the optimizer function by reference (it becomes its name), numeric numpy
# scalars rebuilt from their raw bytes, and Python 3's spelling of those bytes.
OPTIONS_GLOBALS: Dict[Tuple[str, str], Any] = {
    **{(m, n): _OptimizerRef(n) for m in _OPTIMIZER_MODULES for n in OPTIMIZER_NAMES},
    **{key: _safe_scalar for key in _NUMPY_SCALAR},
    **{key: _safe_dtype for key in _NUMPY_DTYPE},
    ("_codecs", "encode"): _latin1_encode,
}


def _load_one(data: bytes, start: int, source: str, what: str, allow_options_globals: bool):
    allowed, hint, limits = ((OPTIONS_GLOBALS, _OPTIONS_HINT, OPTIONS_LIMITS) if allow_options_globals
                             else (None, _DATA_HINT, DATA_LIMITS))
    try:
        return pickles.load(data, start, source=source, what=what, limits=limits, allowed_globals=allowed,
                            refusal_hint=hint)
    except UnsafePickleError:
        raise
    except FileFormatError as e:
        raise DataFileError(str(e)) from None


def _check_ids(xs, source: str, which: str) -> int:
    """Every x is a list of word ids in [0, MAX_WORD_ID]; returns the total, counted through shared
    references before anything is copied (a list referred to 300,000 times counts 300,000 times)."""
    total = 0
    for k, s in enumerate(xs):
        if type(s) is not list and type(s) is not tuple:
            raise DataFileError(f"{source}: {which} x[{k}] is {describe(s)}, not a list of word ids")
        total += len(s)
        if total > MAX_IDS_PER_SPLIT:
            raise DataFileError(f"{source}: the {which} set holds more than {MAX_IDS_PER_SPLIT:,} word ids "
                                f"(counting every reference to a shared list)")
    checked = set()
    for k, s in enumerate(xs):
        if id(s) in checked or not s:
            continue
        checked.add(id(s))
        if set(map(type, s)) != {int}:
            bad = next(w for w in s if type(w) is not int)
            raise DataFileError(f"{source}: {which} x[{k}] is not a list of ints: it holds {describe(bad)}")
        lo, hi = min(s), max(s)
        if lo < 0 or hi > MAX_WORD_ID:
            raise DataFileError(f"{source}: {which} x[{k}] holds word id {describe(lo if lo < 0 else hi)}; ids "
                                f"must lie in [0, {MAX_WORD_ID}]")
    return total


def _check_split(obj, source: str, which: str):
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise DataFileError(f"{source}: the {which} pickle must be a pair (x, y); got {describe(obj)}")
    xs, ys = obj
    if not isinstance(xs, (list, tuple)) or not isinstance(ys, (list, tuple)):
        raise DataFileError(f"{source}: the {which} pickle's x and y must be lists")
    if len(xs) != len(ys):
        raise DataFileError(f"{source}: the {which} set has {len(xs)} sequences but {len(ys)} labels")
    _check_ids(xs, source, which)
    for k, label in enumerate(ys):
        if type(label) is not int:
            raise DataFileError(f"{source}: {which} y[{k}] is {describe(label)}; labels must be ints")
        if not 0 <= label <= MAX_LABEL:
            raise DataFileError(f"{source}: {which} y[{k}] is {describe(label)}; labels are class numbers in "
                                f"[0, {MAX_LABEL}]")
    return [list(s) for s in xs], list(ys)


def load_data_pickles(path: PathLike, *, cap: int = DATA_PICKLE_CAP):
    """``(train, test)``, each ``(x, y)``, from the tutorial's two-pickle ``imdb.pkl`` (``.gz`` too).

    The file is read with a size cap (``.gz`` decompressed as a stream under the same cap); each pickle
    is scanned before it is unpickled; ids and labels are checked before any list is copied.
    """
    source = str(path)
    try:
        data = pickles.read_pickle_bytes(path, cap, "file")
    except FileFormatError as e:
        raise DataFileError(str(e)) from None
    train_obj, end = _load_one(data, 0, source, "the first (train) pickle", False)
    train = _check_split(train_obj, source, "train")
    del train_obj
    test_obj, _ = _load_one(data, end, source, "the second (test) pickle", False)
    test = _check_split(test_obj, source, "test")
    return train, test


def read_options(path: PathLike) -> Dict[str, Any]:
    """The run options from a ``<saveto>.pkl``, the tutorial's or this port's.

    ``options["optimizer"]`` is the optimizer's name; numpy scalars are Python numbers.
    """
    source = str(path)
    try:
        data = pickles.read_pickle_bytes(path, OPTIONS_PICKLE_CAP, "file")
    except FileFormatError as e:
        raise DataFileError(str(e)) from None
    obj, _ = _load_one(data, 0, source, "the options pickle", True)
    if not isinstance(obj, dict):
        raise DataFileError(f"{source}: the options pickle must hold a dict; got {describe(obj)}")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise DataFileError(f"{source}: option key {describe(k)} is not a string")
        if isinstance(v, _OptimizerRef):
            v = str(v)
        elif not isinstance(v, (str, int, float, bool, type(None))):
            raise DataFileError(f"{source}: option {describe(k)} is {describe(v)}; options are numbers, strings or None")
        out[k] = v
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
