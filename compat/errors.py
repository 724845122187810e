"""The one base class of every failure a user can cause with a file or a flag.

A loader that meets a missing, truncated, malformed, oversized or hostile file raises a subclass of
:class:`InputError` whose message names the file (and the field, tensor or line at fault). The command
lines catch it, print ``error: <message>`` on one line and exit with status 2; anything else is a bug.
"""
from __future__ import annotations


class InputError(Exception):
    """A bad file or flag value; the message says which and why."""


class FileFormatError(InputError, ValueError):
    """A file that is missing, unreadable, malformed, over a size cap, or not what it claims to be."""
