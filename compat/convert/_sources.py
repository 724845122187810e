"""The converter's one door to the project's readers of TF checkpoints and Caffe files.

Every import of those readers goes through here, and every error they raise leaves here as a
:class:`compat.errors.FileFormatError` naming the file, so that the rest of the converter sees one
interface whatever module implements it.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from compat.errors import FileFormatError, InputError


def _as_input_error(exc: Exception, path) -> FileFormatError:
    message = str(exc)
    if str(path) not in message:
        message = f"{path}: {message}"
    return FileFormatError(message)


class TFCheckpoint:
    """Names and shapes of a TF checkpoint's tensors at once, values on demand."""

    def __init__(self, path):
        from compat.tf_checkpoint import CheckpointReader

        self.path = str(path)
        try:
            self._reader = CheckpointReader(path)
            self.shapes: Dict[str, Tuple[int, ...]] = {
                n: tuple(s) for n, s in self._reader.get_variable_to_shape_map().items()}
            self.dtypes: Dict[str, str] = self._reader.get_variable_to_dtype_map()
        except InputError:
            raise
        except (ValueError, KeyError, OSError) as exc:
            raise _as_input_error(exc, path) from None
        self.location = getattr(self._reader, "location", self.path)

    def tensor(self, name: str) -> np.ndarray:
        try:
            return np.asarray(self._reader.get_tensor(name))
        except InputError:
            raise
        except (ValueError, KeyError, OSError) as exc:
            raise _as_input_error(exc, self.location) from None


def is_tf_checkpoint(path) -> bool:
    """Whether ``path`` names a TF checkpoint (prefix, .index / .data file, V1 file or directory)."""
    from compat.tf_checkpoint import resolve_checkpoint

    try:
        resolve_checkpoint(path)
    except (ValueError, OSError):
        return False
    return True


def read_caffemodel(path) -> Dict[str, Tuple[str, List[np.ndarray]]]:
    """{layer name: (type, blobs)} of a binary .caffemodel."""
    from ports.caffe_sequence.caffemodel import read_caffemodel as _read

    try:
        return _read(path)
    except InputError:
        raise
    except (ValueError, OSError) as exc:
        raise _as_input_error(exc, path) from None


def read_prototxt(path):
    """The parsed text-format message of a .prototxt (compat.prototxt.TextMessage)."""
    from compat.prototxt import read_prototxt as _read

    try:
        return _read(path)
    except InputError:
        raise
    except (ValueError, OSError) as exc:
        raise _as_input_error(exc, path) from None
