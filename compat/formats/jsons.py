"""JSON as every reader of this project parses it: a key given twice is an error, not "the last one wins".

``json.loads`` keeps the last of two equal keys, so ``{"epoch": 1, "epoch": 7}`` reads as epoch 7 while a
tool that keeps the first (or a reviewer reading the file) sees epoch 1: a file can mean two things.
:func:`loads` refuses such a document by naming the key; it also turns the other ways ``json`` fails
(malformed text, nesting deep enough for a RecursionError, an integer of more than 4,300 digits) into
:class:`JSONError`, which the callers wrap in their own error naming the file.
"""
from __future__ import annotations

import json
from typing import Any, List, Tuple, Union


class JSONError(ValueError):
    """Text that is not one unambiguous JSON document; the message says where."""


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            shown = key if len(key) <= 80 else key[:80] + "..."
            raise JSONError(f"the key {shown!r} appears twice in one object")
        out[key] = value
    return out


def loads(text: Union[str, bytes]) -> Any:
    """``json.loads(text)`` refusing duplicate keys; every failure is a :class:`JSONError`."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except JSONError:
        raise
    except RecursionError:
        raise JSONError("nested too deeply") from None
    except UnicodeDecodeError as e:
        raise JSONError(f"not UTF-8 (byte {e.start})") from None
    except ValueError as e:  # JSONDecodeError, and int() of more than 4,300 digits
        message = str(e)
        raise JSONError(message if len(message) <= 200 else message[:200] + "...") from None
