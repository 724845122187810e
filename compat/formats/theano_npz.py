"""The Theano LSTM tutorial's parameter archive (``numpy.savez``) read without pickles.

DeepLearningTutorials ``code/lstm.py`` ``train_lstm`` saves ``numpy.savez(saveto, history_errs=...,
**params)``; each LSTM layer built by ``param_init_lstm(options, params, prefix)`` contributes
``<prefix>_W`` [in, 4H], ``<prefix>_U`` [H, 4H] and ``<prefix>_b`` [4H] (gate blocks i, f, o, c; the
tutorial's prefix is ``lstm``). The archive is read with ``allow_pickle=False``; object arrays (pickles)
are refused when asked for, never loaded.
"""
from __future__ import annotations

import zipfile
from typing import Dict

import numpy as np

from compat.errors import FileFormatError
from compat.formats.files import GiB, file_size, open_regular

MAX_NPZ_BYTES = 4 * GiB


class NpzFileError(FileFormatError):
    """An archive that is not a readable numpy .npz of plain numeric arrays."""


def read_npz(path) -> Dict[str, np.ndarray]:
    """Every numeric array of the archive by name; any pickled (object) member is an error naming it."""
    fh = open_regular(path, ".npz archive")
    try:
        if file_size(fh) > MAX_NPZ_BYTES:
            raise NpzFileError(f"{path}: {file_size(fh):,} bytes; the cap is {MAX_NPZ_BYTES:,}")
        try:
            with np.load(fh, allow_pickle=False) as z:
                if not hasattr(z, "files"):
                    raise NpzFileError(f"{path}: a single .npy array, not an .npz archive of named arrays")
                out = {}
                for name in z.files:
                    try:
                        out[name] = z[name]
                    except ValueError as e:
                        raise NpzFileError(f"{path}: member {name!r} is a pickled object array, which is refused "
                                           f"({e})") from None
                return out
        except NpzFileError:
            raise
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
            raise NpzFileError(f"{path}: not a readable .npz archive ({e})") from None
    finally:
        fh.close()
