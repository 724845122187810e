"""``tf.train.load_checkpoint`` and friends without TensorFlow: one reader over V2 bundles and V1 files."""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from compat.formats.tf import bundle
from compat.formats.tf.errors import TensorNotFoundError
from compat.formats.tf.state import resolve_checkpoint
from compat.formats.tf.tensors import TensorInfo
from compat.formats.tf.v1 import V1Reader


class CheckpointReader:
    """Metadata at once, tensors on demand; ``path`` is a prefix, a ``.index``/``.data-*`` file, a V1 file
    or a directory with a ``checkpoint`` state file."""

    def __init__(self, path):
        self.kind, self.location = resolve_checkpoint(path)
        if self.kind == "v2":
            self.index_path = self.location + ".index"
            self.num_shards, self._tensors = bundle.read_index(self.location)
            self._v1 = None
        else:
            self.index_path = self.location
            self._v1 = V1Reader(self.location)
            self._tensors = self._v1.tensors

    def tensor_info(self, name: str) -> TensorInfo:
        try:
            return self._tensors[name]
        except KeyError:
            raise TensorNotFoundError(self.location, f"no tensor named {name!r} in the checkpoint "
                                                     f"({len(self._tensors)} tensors, e.g. {sorted(self._tensors)[:5]})") from None

    def has_tensor(self, name: str) -> bool:
        return name in self._tensors

    def get_variable_to_shape_map(self) -> Dict[str, List[int]]:
        return {name: list(info.shape) for name, info in self._tensors.items()}

    def get_variable_to_dtype_map(self) -> Dict[str, str]:
        return {name: info.dtype for name, info in self._tensors.items()}

    def get_tensor(self, name: str) -> np.ndarray:
        info = self.tensor_info(name)
        if self._v1 is not None:
            return self._v1.read(info)
        return bundle.read_tensor(self.location, self.num_shards, info)

    def names(self) -> List[str]:
        return sorted(self._tensors)


def list_variables(path) -> List[Tuple[str, List[int]]]:
    """``[(name, shape)]`` sorted by name, as ``tf.train.list_variables``."""
    reader = CheckpointReader(path)
    shapes = reader.get_variable_to_shape_map()
    return [(name, shapes[name]) for name in sorted(shapes)]


def load_variable(path, name: str) -> np.ndarray:
    """One tensor, as ``tf.train.load_variable`` (a trailing ``:0`` is accepted and dropped)."""
    if name.endswith(":0"):
        name = name[:-2]
    return CheckpointReader(path).get_tensor(name)


def load_checkpoint(path) -> Dict[str, np.ndarray]:
    """Every tensor of the checkpoint by name."""
    reader = CheckpointReader(path)
    return {name: reader.get_tensor(name) for name in reader.names()}
