"""The errors of the TF checkpoint reader and writer: each names the file and the field or tensor at fault."""
from __future__ import annotations

from compat.errors import CheckpointError  # the one class of every unreadable checkpoint, raised as (path, message)


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint at the given path."""


class TensorNotFoundError(CheckpointError, KeyError):
    """The checkpoint has no tensor of the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]
