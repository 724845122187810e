"""TensorFlow 1 checkpoints read and written without TensorFlow (numpy only).

* **V2** (``tf.train.Saver`` default since TF 1.0, and ``tf.train.Checkpoint``): ``PREFIX.index``, a sorted
  table (:mod:`.table`) of ``BundleEntryProto`` entries, and ``PREFIX.data-NNNNN-of-MMMMM`` (:mod:`.bundle`).
* **V1** (``Saver(write_version=V1)``, TF 0.x): one table of ``SavedTensorSlices`` (:mod:`.v1`).
* The **directory form**: a ``checkpoint`` state file naming the newest prefix (:mod:`.state`).
* Writing V2 with a crash-safe commit (:mod:`.writer`); CRC-32C (:mod:`.crc32c`), snappy (:mod:`.snappy`).

Every length, offset, size, count and shape read from a file is checked against the file's real size
and the caps of docs/security.md before anything is allocated; every checksum is verified. Anything
wrong raises :class:`CheckpointError` (a :class:`compat.errors.InputError`) naming the file and the field
or tensor at fault.

Not supported (a clear error says so): partitioned variables (entries with ``slices``, written by
``tf.compat.v1.get_variable(partitioner=...)``), ``DT_VARIANT`` and resource tensors, big-endian bundles,
sharded V1 files (``PREFIX-?????-of-?????``), tensors of more than 64 axes (numpy's limit). bfloat16
tensors are returned as float32 (numpy has no bfloat16); strings as object arrays of bytes.
"""
from compat.formats.tf.errors import CheckpointError, CheckpointNotFoundError, TensorNotFoundError
from compat.formats.tf.reader import CheckpointReader, list_variables, load_checkpoint, load_variable
from compat.formats.tf.state import (latest_checkpoint, read_checkpoint_state, resolve_checkpoint,
                                     write_checkpoint_state)
from compat.formats.tf.tensors import TensorInfo
from compat.formats.tf.writer import save_checkpoint

__all__ = [
    "CheckpointError", "CheckpointNotFoundError", "TensorNotFoundError", "CheckpointReader", "TensorInfo",
    "latest_checkpoint", "read_checkpoint_state", "resolve_checkpoint", "list_variables", "load_variable",
    "load_checkpoint", "save_checkpoint", "write_checkpoint_state",
]
