"""The safetensors format written and read with numpy alone (no pickles, no code).

Layout (huggingface/safetensors docs): an 8-byte little-endian header length N, N bytes of JSON
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}}``
(padded with spaces to a multiple of 8), then the tensors' little-endian bytes, each at its offsets
relative to the end of the header, in one contiguous run without gaps or overlaps.
"""
from __future__ import annotations

import json
import struct
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from compat.atomic import atomic_write_bytes
from compat.errors import FileFormatError
from compat.formats.files import GiB, MiB, file_size, open_regular

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
          "U8": "u1", "BOOL": "?"}
NAMES = {np.dtype(v).str: k for k, v in DTYPES.items()}
MAX_HEADER_BYTES = 100 * MiB
MAX_FILE_BYTES = 64 * GiB


class SafetensorsError(FileFormatError):
    """A file that is not valid safetensors; the message names the file and the entry."""


def dumps(tensors: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]] = None) -> bytes:
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        le = a.astype(a.dtype.newbyteorder("<"), copy=False)
        key = np.dtype(le.dtype).str if le.dtype.itemsize > 1 else le.dtype.str
        if key not in NAMES:
            raise ValueError(f"tensor {name!r}: dtype {a.dtype} has no safetensors name")
        raw = le.tobytes()
        header[name] = {"dtype": NAMES[key], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def save(path, tensors: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write atomically."""
    atomic_write_bytes(path, dumps(tensors, metadata))


def load(path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """(tensors by name, metadata) of a safetensors file; every offset checked before it is used."""
    with open_regular(path, "safetensors file") as fh:
        size = file_size(fh)
        if size > MAX_FILE_BYTES:
            raise SafetensorsError(f"{path}: {size:,} bytes; the cap is {MAX_FILE_BYTES:,}")
        head = fh.read(8)
        if len(head) < 8:
            raise SafetensorsError(f"{path}: too short for a safetensors header")
        n = struct.unpack("<Q", head)[0]
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise SafetensorsError(f"{path}: header length {n:,} does not fit the file ({size:,} bytes)")
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise SafetensorsError(f"{path}: the header is not valid JSON ({e})") from None
        if not isinstance(header, dict):
            raise SafetensorsError(f"{path}: the header is not a JSON object")
        data = fh.read(size - 8 - n)
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict):
        raise SafetensorsError(f"{path}: __metadata__ is not an object")
    out = {}
    spans = []
    for name, entry in header.items():
        try:
            dtype = np.dtype(DTYPES[entry["dtype"]])
            shape = [int(d) for d in entry["shape"]]
            begin, end = (int(v) for v in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor {name!r} has a malformed header entry {entry!r}") from None
        count = 1
        for d in shape:
            if d < 0:
                raise SafetensorsError(f"{path}: tensor {name!r} has a negative dimension {shape}")
            count *= d
        if not 0 <= begin <= end <= len(data) or end - begin != count * dtype.itemsize:
            raise SafetensorsError(f"{path}: tensor {name!r} offsets {[begin, end]} do not fit shape {shape} "
                                   f"{entry['dtype']} within {len(data):,} data bytes")
        spans.append((begin, end, name))
        out[name] = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape).copy()
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise SafetensorsError(f"{path}: tensor {name!r} starts at {begin}, not {pos}: gaps or overlaps")
        pos = end
    if pos != len(data):
        raise SafetensorsError(f"{path}: {len(data) - pos} bytes after the last tensor")
    return out, {str(k): str(v) for k, v in metadata.items()}
