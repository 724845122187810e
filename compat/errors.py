"""The one base class of every failure a user can cause with a file or a flag.

A loader that meets a missing, truncated, malformed, oversized or hostile file raises a subclass of
:class:`InputError` whose message names the file (and the field, tensor or line at fault). The command
lines catch it, print ``error: <message>`` on one line and exit with status 2; anything else is a bug.
"""
from __future__ import annotations


class InputError(Exception):
    """A bad file or flag value; the message says which and why."""


class TrainingDiverged(InputError, FloatingPointError):
    """A training run whose loss became NaN or infinite: the run stops at that step (what it saved before is
    left as it was) and the message names the step and the setting to lower. A run's settings cause it (a
    learning rate too high for the model), so the command lines report it as they report a bad flag."""


class FileFormatError(InputError, ValueError):
    """A file that is missing, unreadable, malformed, over a size cap, or not what it claims to be."""


class CheckpointError(FileFormatError):
    """A checkpoint that is missing, damaged, over a cap, of another format or model, or that needs a feature
    its reader lacks: this project's own checkpoints (:mod:`compat.checkpoint`) and TensorFlow's
    (:mod:`compat.formats.tf`) alike, so that one ``except CheckpointError`` covers both.

    ``CheckpointError(message)``, or ``CheckpointError(path, message)``: the message then starts with the path,
    which ``.path`` keeps (None when not given).
    """

    def __init__(self, *args):
        self.path = None
        if len(args) == 2:
            self.path = str(args[0])
            args = (f"{args[0]}: {args[1]}",)
        super().__init__(*args)


class TFVariableError(FileFormatError, KeyError):
    """A TF variable that a model needs is missing from a TF checkpoint or does not fit the model (the TF ports'
    loaders raise it, naming the variable)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
