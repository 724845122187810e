"""The errors of the TF checkpoint reader and writer: each names the file and the field or tensor at fault."""
from __future__ import annotations

from compat.errors import FileFormatError


class CheckpointError(FileFormatError):
    """A checkpoint file is missing, malformed, corrupt, over a cap, or uses a feature this reader lacks."""

    def __init__(self, path, message: str):
        self.path = str(path)
        self.detail = message
        super().__init__(f"{path}: {message}")


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint at the given path."""


class TensorNotFoundError(CheckpointError, KeyError):
    """The checkpoint has no tensor of the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]
