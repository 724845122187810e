"""The ports' own training checkpoints: tensors in safetensors, everything else in JSON, no pickle.

A checkpoint named ``NAME`` (a path; a trailing ``.json`` or ``.safetensors`` is dropped) is two files::

    NAME.json                          the manifest: format, content, and the tensor file's name, size, SHA-256
    NAME.<16 hex digits>.safetensors   every tensor of the content, under its path in the content

The content is a tree of dicts, lists, numbers, strings, None and tensors; a tensor appears in the JSON as
``{"$tensor": "model/embedding"}`` and a dict with integer keys (an optimizer's state) as
``{"$int_keys": [[0, ...], ...]}``. JSON holds floats as Python writes them (``NaN`` and ``Infinity`` too).

:func:`save` writes the tensor file under a name derived from its digest, then the manifest, each
atomically: an interruption at any point leaves the previous manifest and the tensor file it names in
place, so the previous checkpoint stays loadable; older tensor files and temporary files of interrupted
saves of the same checkpoint are removed once the new manifest is in place (one writer per checkpoint).

:func:`read` checks, before allocating anything for tensor data: the manifest (size cap, UTF-8, JSON,
nesting, format, version), the tensor file (a regular file of the recorded size, its SHA-256 streamed and
compared with the manifest's), and the safetensors header (dtypes, ranks, shapes against byte ranges that
tile the data exactly, every tensor the content refers to present). The caller then checks the content
(config sizes against caps and against the tensors' shapes, which the file itself bounds) and only then
calls :meth:`Checkpoint.materialize`, which reads each tensor into its own buffer and reports NaN or
infinite values by tensor name unless allowed.

Checkpoints of the earlier format (``torch.save`` pickles, ``*.pt``) are refused with a message; convert
one once with ``python -m compat.checkpoint convert OLD.pt``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from compat.formats import jsons
from compat.atomic import atomic_write_bytes, atomic_write_text
from compat.errors import FileFormatError
from compat.errors import CheckpointError  # the one class of every unreadable checkpoint (compat.errors)
from compat.formats.files import GiB, MiB, file_size, open_regular, read_bytes
from compat.formats.pickles import describe

PathLike = Union[str, os.PathLike]

FORMAT_VERSION = 2  # version 1 was a torch.save pickle
MANIFEST_SUFFIX = ".json"
TENSOR_SUFFIX = ".safetensors"

# Caps (docs/security.md).
MAX_MANIFEST_BYTES = 64 * MiB
MAX_TENSOR_FILE_BYTES = 64 * GiB
MAX_HEADER_BYTES = 16 * MiB
MAX_TENSORS = 100_000
MAX_RANK = 8
MAX_CONTENT_DEPTH = 32
SEAL_KEY = "content_sha256"   # the tensor file's metadata: the digest of the manifest's content

DTYPES: Dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}

# Earlier formats, by the "format" field of their torch.save payload: (kind now, how the name is derived).
LEGACY_KINDS = {
    "ports.tf_ptb/1": ("ports.tf_ptb", "same"),
    "ports.caffe_sequence checkpoint 1": ("ports.caffe_sequence", "stem"),
    "tf_shakespeare.checkpoint": ("tf_shakespeare.checkpoint", "model"),
}


# ------------------------------------------------------------------------------------------------ names
def checkpoint_name(path: PathLike) -> Path:
    """The checkpoint's name: ``path`` without a trailing ``.json`` or ``.safetensors``."""
    p = Path(path)
    for suffix in (MANIFEST_SUFFIX, TENSOR_SUFFIX):
        if p.name.endswith(suffix) and len(p.name) > len(suffix):
            return p.with_name(p.name[:-len(suffix)])
    return p


def manifest_path(path: PathLike) -> Path:
    name = checkpoint_name(path)
    return name.with_name(name.name + MANIFEST_SUFFIX)


def _tensor_file_re(name: str) -> "re.Pattern":
    return re.compile(re.escape(name) + r"\.[0-9a-f]{16}" + re.escape(TENSOR_SUFFIX))


def _temp_file_re(name: str) -> "re.Pattern":
    # compat.atomic's temporary files: ".<target name>.<random>.tmp"
    return re.compile(r"\." + re.escape(name) + r"\.(?:json|[0-9a-f]{16}\.safetensors)\.[^/]+\.tmp")


def _remove_matching(folder: Path, pattern: "re.Pattern", keep: Optional[str] = None) -> None:
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if entry != keep and pattern.fullmatch(entry):
            try:
                os.unlink(folder / entry)
            except OSError:
                pass


# -------------------------------------------------------------------------------------------- encoding
def _encode(obj: Any, path: List[str], tensors: Dict[str, torch.Tensor], depth: int) -> Any:
    if depth > MAX_CONTENT_DEPTH:
        raise TypeError(f"checkpoint content nested more than {MAX_CONTENT_DEPTH} deep at {'/'.join(path)}")
    if isinstance(obj, torch.Tensor):
        key = "/".join(path) or "tensor"
        if key in tensors:
            raise TypeError(f"two tensors of the checkpoint content would be stored as {key!r}")
        tensors[key] = obj
        return {"$tensor": key}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _encode(v, path + [k], tensors, depth + 1) for k, v in obj.items()}
        if all(type(k) is int for k in obj):
            return {"$int_keys": [[k, _encode(v, path + [str(k)], tensors, depth + 1)] for k, v in obj.items()]}
        raise TypeError(f"checkpoint content at {'/'.join(path) or 'the top'}: dict keys must be all strings "
                        f"(not starting with $) or all ints")
    if isinstance(obj, (list, tuple)):
        return [_encode(v, path + [str(i)], tensors, depth + 1) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy scalars
        return obj.item()
    raise TypeError(f"checkpoint content at {'/'.join(path)}: {type(obj).__name__} is not storable "
                    f"(tensors, dicts, lists, numbers, strings and None are)")


def _prepare(tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out, seen = {}, set()
    for key, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        if t.numel() and t.untyped_storage().data_ptr() in seen:
            t = t.clone()
        if t.numel():
            seen.add(t.untyped_storage().data_ptr())
        if t.dtype not in DTYPES.values():
            raise TypeError(f"tensor {key!r} has dtype {t.dtype}, which checkpoints do not store")
        out[key] = t
    return out


def save(path: PathLike, kind: str, content: Any) -> Path:
    """Write ``content`` as checkpoint ``path`` (see the module docstring); returns the manifest's path."""
    from safetensors.torch import save as safetensors_bytes

    name = checkpoint_name(path)
    folder = name.parent
    folder.mkdir(parents=True, exist_ok=True)
    tensors: Dict[str, torch.Tensor] = {}
    encoded = _encode(content, [], tensors, 0)
    data = _with_metadata(safetensors_bytes(_prepare(tensors)), {"format": kind, SEAL_KEY: content_digest(encoded)})
    digest = hashlib.sha256(data).hexdigest()
    tensor_file = f"{name.name}.{digest[:16]}{TENSOR_SUFFIX}"
    tensor_path = folder / tensor_file
    _remove_matching(folder, _temp_file_re(name.name))
    existed = tensor_path.exists()
    atomic_write_bytes(tensor_path, data)
    manifest = {"format": kind, "checkpoint_version": FORMAT_VERSION, "tensor_file": tensor_file,
                "tensor_sha256": digest, "tensor_bytes": len(data), "content": encoded}
    target = manifest_path(name)
    try:
        atomic_write_text(target, json.dumps(manifest, indent=1, allow_nan=True) + "\n")
    except BaseException:
        if not existed:
            tensor_path.unlink(missing_ok=True)
        raise
    _remove_matching(folder, _tensor_file_re(name.name), keep=tensor_file)
    return target


def _with_metadata(data: bytes, metadata: Dict[str, str]) -> bytes:
    """safetensors bytes with ``metadata`` in a fixed key order (safetensors writes its metadata from a hash
    map, in an order that varies from call to call: equal checkpoints must be equal bytes)."""
    n = int.from_bytes(data[:8], "little")
    header = {"__metadata__": dict(sorted(metadata.items()))}
    header.update((k, v) for k, v in json.loads(data[8:8 + n]).items() if k != "__metadata__")
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + data[8 + n:]


def content_digest(encoded: Any) -> str:
    """SHA-256 of the manifest's content in one canonical JSON form (sorted keys, no spaces): the tensor
    file's metadata records it, so the tensor file's digest covers the settings as well as the tensors."""
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), allow_nan=True, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# --------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class TensorRef:
    """A tensor of a checkpoint that has been checked but not yet read."""

    key: str
    dtype: torch.dtype
    shape: Tuple[int, ...]
    begin: int  # absolute byte offsets in the tensor file
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def _old_format_message(path: Path) -> Optional[str]:
    try:
        with open_regular(path, "checkpoint") as fh:
            head = fh.read(4)
    except FileFormatError:
        return None
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return (f"{path} is a checkpoint in the earlier format (a torch.save pickle), which is no longer read "
                f"because loading a pickle can run code or crash; checkpoints are now a .json manifest and a "
                f".safetensors file. If you wrote it yourself, convert it once with: python -m compat.checkpoint "
                f"convert {path}")
    return None


def _locate(path: PathLike, default_name: Optional[str]) -> Path:
    p = Path(path)
    if default_name is not None and p.is_dir():
        p = p / default_name
    target = manifest_path(p)
    if target.exists() or target.is_symlink():
        return target
    for candidate in (p, p.with_suffix(".pt") if default_name and not p.suffix else None):
        if candidate is not None and candidate.is_file():
            message = _old_format_message(candidate)
            if message:
                raise CheckpointError(message)
    if p.exists() and p != target:
        raise CheckpointError(f"{p}: not a checkpoint (expected its manifest {target} beside its .safetensors "
                              f"tensor file)")
    raise CheckpointError(f"{target}: no such checkpoint")


class Checkpoint:
    """A checked checkpoint: ``content`` with :class:`TensorRef` leaves; :meth:`materialize` reads them."""

    def __init__(self, manifest: Path, kind: str, content: Any, tensor_path: Path, refs: Dict[str, TensorRef]):
        self.manifest, self.kind, self.content = manifest, kind, content
        self.tensor_path, self.refs = tensor_path, refs

    def __str__(self) -> str:
        return str(self.manifest)

    def error(self, field: str, message: str) -> CheckpointError:
        return CheckpointError(f"{self.manifest}: {field}: {message}")

    def materialize(self, allow_nonfinite: bool = False, content: Any = None,
                    allow_infinite: Collection[str] = ()) -> Any:
        """``content`` (default: the whole content) with every TensorRef replaced by its tensor, each read
        into its own buffer; NaN or infinite values are an error naming the tensor unless allowed: every tensor's
        by ``allow_nonfinite``, ±inf (never NaN) in the tensors whose keys ``allow_infinite`` names."""
        content = self.content if content is None else content
        with open_regular(self.tensor_path, "tensor file") as fh:
            def build(ref: TensorRef) -> torch.Tensor:
                if ref.numel == 0:
                    return torch.empty(ref.shape, dtype=ref.dtype)
                buf = bytearray(ref.end - ref.begin)
                fh.seek(ref.begin)
                if fh.readinto(buf) != len(buf):
                    raise self.error(f"tensor {ref.key!r}", "the tensor file is shorter than when it was checked")
                t = torch.frombuffer(buf, dtype=ref.dtype).reshape(ref.shape)
                if ref.dtype == torch.bool and bool((t.view(torch.uint8) > 1).any()):
                    raise self.error(f"tensor {ref.key!r}", "a bool tensor holds bytes other than 0 and 1")
                if t.is_floating_point() and not allow_nonfinite and ref.key in allow_infinite:
                    bad = int(torch.isnan(t).sum())
                    if bad:
                        raise self.error(f"tensor {ref.key!r}", f"{bad:,} of its {ref.numel:,} values are NaN (it "
                                                                f"may hold infinities, never NaN)")
                elif t.is_floating_point() and not allow_nonfinite:
                    bad = int((~torch.isfinite(t)).sum())
                    if bad:
                        raise self.error(f"tensor {ref.key!r}", f"{bad:,} of its {ref.numel:,} values are NaN or "
                                                                f"infinite (where a loader offers allow_nonfinite=True, "
                                                                "it loads them anyway)")
                return t

            return _map_refs(content, build)


def _map_refs(obj: Any, fn) -> Any:
    if isinstance(obj, TensorRef):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_refs(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_refs(v, fn) for v in obj]
    return obj


def _decode(obj: Any, refs: Dict[str, TensorRef], used: set, where: str, field: str, depth: int) -> Any:
    if depth > MAX_CONTENT_DEPTH:
        raise CheckpointError(f"{where}: content nested more than {MAX_CONTENT_DEPTH} deep at {field or 'the top'}")
    if isinstance(obj, dict):
        if "$tensor" in obj:
            key = obj["$tensor"]
            if len(obj) != 1 or not isinstance(key, str):
                raise CheckpointError(f"{where}: {field}: a malformed tensor reference")
            if key not in refs:
                raise CheckpointError(f"{where}: {field}: tensor {describe(key)} is not in the tensor file")
            if key in used:
                raise CheckpointError(f"{where}: {field}: tensor {describe(key)} is referred to twice")
            used.add(key)
            return refs[key]
        if "$int_keys" in obj:
            pairs = obj["$int_keys"]
            if len(obj) != 1 or not isinstance(pairs, list) or not all(
                    isinstance(p, list) and len(p) == 2 and type(p[0]) is int for p in pairs):
                raise CheckpointError(f"{where}: {field}: a malformed integer-keyed dict")
            out = {}
            for k, v in pairs:
                if k in out:
                    raise CheckpointError(f"{where}: {field}: key {describe(k)} appears twice")
                out[k] = _decode(v, refs, used, where, f"{field}/{k}", depth + 1)
            return out
        for k in obj:
            if k.startswith("$"):
                raise CheckpointError(f"{where}: {field}: unknown key {describe(k)}")
        return {k: _decode(v, refs, used, where, f"{field}/{k}" if field else k, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, refs, used, where, f"{field}/{i}", depth + 1) for i, v in enumerate(obj)]
    return obj


def _read_manifest(target: Path, kind: str) -> dict:
    try:
        text = read_bytes(target, MAX_MANIFEST_BYTES, "checkpoint manifest").decode("utf-8")
        manifest = jsons.loads(text)
    except FileFormatError as e:
        raise CheckpointError(str(e)) from None
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{target}: the manifest is not UTF-8 (byte {e.start})") from None
    except ValueError as e:
        raise CheckpointError(f"{target}: the manifest is not valid JSON ({describe(str(e))[1:-1]})") from None
    except RecursionError:
        raise CheckpointError(f"{target}: the manifest is nested too deeply") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{target}: the manifest must be a JSON object")
    if manifest.get("format") != kind:
        raise CheckpointError(f"{target}: not a {kind} checkpoint (format {describe(manifest.get('format'))})")
    if manifest.get("checkpoint_version") != FORMAT_VERSION:
        raise CheckpointError(f"{target}: checkpoint_version {describe(manifest.get('checkpoint_version'))}; this "
                              f"version reads {FORMAT_VERSION}")
    expected = {"format", "checkpoint_version", "tensor_file", "tensor_sha256", "tensor_bytes", "content"}
    if set(manifest) != expected:
        raise CheckpointError(f"{target}: the manifest's fields are {sorted(map(str, manifest))[:10]}; expected "
                              f"{sorted(expected)}")
    tensor_file, digest, size = manifest["tensor_file"], manifest["tensor_sha256"], manifest["tensor_bytes"]
    if not isinstance(tensor_file, str) or not tensor_file.endswith(TENSOR_SUFFIX) or "/" in tensor_file or \
            "\\" in tensor_file or tensor_file.startswith(".") or "\x00" in tensor_file:
        raise CheckpointError(f"{target}: tensor_file must be the name of a .safetensors file in the same folder")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise CheckpointError(f"{target}: tensor_sha256 is not a SHA-256 digest")
    if type(size) is not int or not 8 <= size <= MAX_TENSOR_FILE_BYTES:
        raise CheckpointError(f"{target}: tensor_bytes must be an integer in [8, {MAX_TENSOR_FILE_BYTES:,}]")
    return manifest


def _read_tensor_header(fh: BinaryIO, tensor_path: Path, size: int,
                        digest: str) -> Tuple[Dict[str, TensorRef], Optional[str]]:
    h = hashlib.sha256()
    head = b""
    while True:
        chunk = fh.read(4 * MiB)
        if not chunk:
            break
        if len(head) < MAX_HEADER_BYTES + 8:
            head += chunk[:MAX_HEADER_BYTES + 8 - len(head)]
        h.update(chunk)
    if h.hexdigest() != digest:
        raise CheckpointError(f"{tensor_path}: the tensor file does not match the SHA-256 recorded in its manifest "
                              f"(it was changed or damaged after it was written)")
    where = str(tensor_path)
    n = int.from_bytes(head[:8], "little")
    if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
        raise CheckpointError(f"{where}: a safetensors header of {n:,} bytes does not fit the file or the cap")
    try:
        header = jsons.loads(head[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{where}: the safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: the safetensors header must be a JSON object")
    metadata = header.pop("__metadata__", None)
    seal = metadata.get(SEAL_KEY) if isinstance(metadata, dict) else None
    if seal is not None and (not isinstance(seal, str) or not re.fullmatch(r"[0-9a-f]{64}", seal)):
        raise CheckpointError(f"{where}: the safetensors metadata's {SEAL_KEY} is not a SHA-256 digest")
    if len(header) > MAX_TENSORS:
        raise CheckpointError(f"{where}: {len(header):,} tensors; the cap is {MAX_TENSORS:,}")
    data_start, data_len = 8 + n, size - 8 - n
    refs, spans = {}, []
    itemsize = {d: torch.empty((), dtype=t).element_size() for d, t in DTYPES.items()}
    for key, entry in header.items():
        label = f"{where}: tensor {describe(key)}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{label}: a header entry must hold dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPES:
            raise CheckpointError(f"{label}: dtype {describe(dtype)} is not one of {sorted(DTYPES)}")
        if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"{label}: shape must be a list of at most {MAX_RANK} non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_len):
            raise CheckpointError(f"{label}: data_offsets do not lie within the file's {data_len:,} data bytes")
        nbytes = offsets[1] - offsets[0]
        count = 1
        for d in shape:
            count *= d
            if count * itemsize[dtype] > nbytes:
                break
        if count * itemsize[dtype] != nbytes:
            raise CheckpointError(f"{label}: shape {describe(shape) if len(shape) > 4 else shape} of {dtype} does "
                                  f"not match its {nbytes:,} bytes")
        refs[key] = TensorRef(key, DTYPES[dtype], tuple(shape), data_start + offsets[0], data_start + offsets[1])
        spans.append((offsets[0], offsets[1]))
    spans.sort()
    at = 0
    for b, e in spans:
        if b != at:
            raise CheckpointError(f"{where}: the tensors' byte ranges overlap or leave a gap at byte {data_start + at:,}")
        at = e
    if at != data_len:
        raise CheckpointError(f"{where}: {data_len - at:,} bytes after the last tensor belong to none")
    return refs, seal


def read(path: PathLike, kind: str, *, default_name: Optional[str] = None, require_seal: bool = False) -> Checkpoint:
    """Check checkpoint ``path`` of format ``kind`` without reading its tensor data (see the module docstring).

    ``default_name``: when ``path`` is a folder, the checkpoint ``path/default_name``. The manifest's content
    must match the digest sealed in the tensor file's metadata (:func:`content_digest`) where there is one;
    ``require_seal``: there must be one (checkpoints written before the seal have none).
    """
    target = _locate(path, default_name)
    manifest = _read_manifest(target, kind)
    tensor_path = target.parent / manifest["tensor_file"]
    if not tensor_path.exists() and not tensor_path.is_symlink():
        raise CheckpointError(f"{target}: its tensor file {tensor_path.name} is missing")
    try:
        with open_regular(tensor_path, "tensor file") as fh:
            size = file_size(fh)
            if size != manifest["tensor_bytes"]:
                raise CheckpointError(f"{tensor_path}: {size:,} bytes; the manifest records {manifest['tensor_bytes']:,}")
            refs, seal = _read_tensor_header(fh, tensor_path, size, manifest["tensor_sha256"])
    except CheckpointError:
        raise
    except FileFormatError as e:
        raise CheckpointError(str(e)) from None
    if seal is None and require_seal:
        raise CheckpointError(f"{tensor_path}: the tensor file seals no settings (no {SEAL_KEY} in its metadata); "
                              "convert the source again")
    if seal is not None and content_digest(manifest["content"]) != seal:
        raise CheckpointError(f"{target}: the settings do not match the digest sealed in the tensor file (the "
                              "manifest was changed after it was written)")
    used: set = set()
    content = _decode(manifest["content"], refs, used, str(target), "", 0)
    unused = sorted(set(refs) - used)
    if unused:
        raise CheckpointError(f"{tensor_path}: tensors {unused[:5]} are not referred to by the manifest")
    return Checkpoint(target, kind, content, tensor_path, refs)


def load(path: PathLike, kind: str, *, default_name: Optional[str] = None, allow_nonfinite: bool = False) -> Any:
    """:func:`read` and :meth:`Checkpoint.materialize` in one call (for content that needs no checks)."""
    return read(path, kind, default_name=default_name).materialize(allow_nonfinite)


# ------------------------------------------------------------------------------------- content checks
class Fields:
    """Type and range checks of a checkpoint's content, each error naming the manifest and the field."""

    def __init__(self, where: Union[str, Checkpoint]):
        self.where = str(where)

    def error(self, field: str, message: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: {field}: {message}")

    def dict(self, obj: Any, field: str, keys: Optional[Iterable[str]] = None, optional: Iterable[str] = ()) -> dict:
        if not isinstance(obj, dict):
            raise self.error(field, f"expected an object, got {describe(obj)}")
        if keys is not None:
            keys, optional = set(keys), set(optional)
            missing = sorted(keys - set(obj))
            unknown = sorted(str(k) for k in set(obj) - keys - optional)
            if missing or unknown:
                raise self.error(field, f"missing fields {missing}" if missing else f"unknown fields {unknown[:10]}")
        return obj

    def list(self, obj: Any, field: str, length: Optional[int] = None, max_length: Optional[int] = None) -> list:
        if not isinstance(obj, list):
            raise self.error(field, f"expected a list, got {describe(obj)}")
        if length is not None and len(obj) != length:
            raise self.error(field, f"expected {length} items, got {len(obj)}")
        if max_length is not None and len(obj) > max_length:
            raise self.error(field, f"{len(obj):,} items; at most {max_length:,} are allowed")
        return obj

    def int(self, obj: Any, field: str, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
        if type(obj) is not int:
            raise self.error(field, f"expected an integer, got {describe(obj)}")
        if (lo is not None and obj < lo) or (hi is not None and obj > hi):
            raise self.error(field, f"{describe(obj)} is outside [{lo if lo is not None else '-inf'}, "
                                    f"{hi if hi is not None else 'inf'}]")
        return obj

    def float(self, obj: Any, field: str, lo: Optional[float] = None, hi: Optional[float] = None,
              finite: bool = True) -> float:
        if type(obj) not in (int, float):
            raise self.error(field, f"expected a number, got {describe(obj)}")
        value = float(obj)
        if finite and not math.isfinite(value):
            raise self.error(field, f"{value} is not finite")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(field, f"{value} is outside [{lo}, {hi}]")
        return value

    def floats(self, obj: Any, field: str, max_length: int, finite: bool = False) -> List[float]:
        return [self.float(v, f"{field}/{i}", finite=finite) for i, v in
                enumerate(self.list(obj, field, max_length=max_length))]

    def bool(self, obj: Any, field: str) -> bool:
        if type(obj) is not bool:
            raise self.error(field, f"expected true or false, got {describe(obj)}")
        return obj

    def str(self, obj: Any, field: str, max_length: int = 1 << 20, choices: Optional[Sequence[str]] = None) -> str:
        if not isinstance(obj, str):
            raise self.error(field, f"expected a string, got {describe(obj)}")
        if len(obj) > max_length:
            raise self.error(field, f"a string of {len(obj):,} characters; at most {max_length:,} are allowed")
        if choices is not None and obj not in choices:
            raise self.error(field, f"{describe(obj)} is not one of {list(choices)}")
        return obj

    def tensor(self, obj: Any, field: str, shape: Optional[Sequence[int]] = None,
               dtypes: Optional[Sequence[torch.dtype]] = None, floating: bool = False) -> TensorRef:
        if not isinstance(obj, TensorRef):
            raise self.error(field, f"expected a tensor, got {describe(obj)}")
        if shape is not None and tuple(obj.shape) != tuple(shape):
            raise self.error(field, f"tensor of shape {list(obj.shape)}; expected {list(shape)}")
        if dtypes is not None and obj.dtype not in dtypes:
            raise self.error(field, f"tensor of dtype {obj.dtype}; expected {' or '.join(map(str, dtypes))}")
        if floating and not obj.dtype.is_floating_point:
            raise self.error(field, f"tensor of dtype {obj.dtype}; expected a floating-point tensor")
        return obj

    def state_dict(self, obj: Any, field: str, expected: Mapping[str, Sequence[int]],
                   dtypes: Optional[Sequence[torch.dtype]] = None) -> Dict[str, TensorRef]:
        """A module's parameters: exactly ``expected``'s names, each of its shape, floating point."""
        obj = self.dict(obj, field)
        missing = sorted(set(expected) - set(obj))
        unknown = sorted(set(obj) - set(expected))
        if missing or unknown:
            raise self.error(field, (f"missing tensors {missing[:10]}" if missing else "")
                             + ("; " if missing and unknown else "")
                             + (f"unexpected tensors {unknown[:10]}" if unknown else ""))
        return {k: self.tensor(obj[k], f"{field}/{k}", shape=expected[k], dtypes=dtypes, floating=True)
                for k in expected}


def expected_shapes(build) -> Dict[str, Tuple[int, ...]]:
    """The state_dict shapes of the module ``build()`` returns, built on the meta device (no memory)."""
    with torch.device("meta"):
        module = build()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# -------------------------------------------------------------------------------------------- RNG state
TORCH_RNG_STATE_BYTES = 5056  # torch.get_rng_state(): aten's CPUGeneratorImplState


def check_torch_rng_state(fields: Fields, obj: Any, field: str) -> TensorRef:
    """A ``torch.get_rng_state()`` tensor; its content is checked by :func:`checked_torch_rng_state`."""
    return fields.tensor(obj, field, shape=(TORCH_RNG_STATE_BYTES,), dtypes=(torch.uint8,))


def checked_torch_rng_state(fields: Fields, state: torch.Tensor, field: str) -> torch.Tensor:
    """``state`` after torch's own validation on a throwaway generator (not the global one)."""
    try:
        torch.Generator().set_state(state)
    except (RuntimeError, TypeError, ValueError) as e:
        raise fields.error(field, f"not a torch CPU random generator state ({e})") from None
    return state


#: torch.cuda.get_rng_state(): aten's CUDAGeneratorImpl::get_state, the seed (uint64) then the Philox offset
#: (int64), little-endian on every platform torch builds CUDA for.
CUDA_RNG_STATE_BYTES = 16


def check_cuda_rng_state(fields: Fields, obj: Any, field: str) -> TensorRef:
    """A ``torch.cuda.get_rng_state()`` tensor; its content is checked by :func:`checked_cuda_rng_state`."""
    return fields.tensor(obj, field, shape=(CUDA_RNG_STATE_BYTES,), dtypes=(torch.uint8,))


def checked_cuda_rng_state(fields: Fields, state: torch.Tensor, field: str) -> torch.Tensor:
    """``state`` checked as aten's ``CUDAGeneratorImpl::set_state`` would take it, without a CUDA device (the
    check must run where the file is read): any seed, and a Philox offset that is a multiple of 4
    (``set_philox_offset_per_thread``); a negative offset, which torch would take as a huge unsigned one and
    no run ever writes, is refused too."""
    offset = int.from_bytes(bytes(state[8:].tolist()), "little", signed=True)
    if offset < 0 or offset % 4:
        raise fields.error(field, f"not a torch CUDA random generator state (its Philox offset {offset} is not a "
                                  f"non-negative multiple of 4)")
    return state


# ----------------------------------------------------------------------------------------- conversion
def convert(old: PathLike, new: Optional[PathLike] = None) -> Path:
    """Rewrite a checkpoint of the earlier format (``torch.save``, read with ``weights_only=True``) in this
    format; returns the new manifest. Only for files you wrote yourself: ``torch.load`` cannot run code with
    ``weights_only=True`` but a hostile pickle can still crash it."""
    old = Path(old)
    try:
        payload = torch.load(old, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - the one place that still reads the old format
        raise CheckpointError(f"{old}: not a readable checkpoint of the earlier format ({type(e).__name__}: {e})") from None
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt not in LEGACY_KINDS:
        raise CheckpointError(f"{old}: not a checkpoint of this project's earlier format (format {describe(fmt)})")
    kind, naming = LEGACY_KINDS[fmt]
    content = {k: v for k, v in payload.items() if k not in ("format", "version")}
    if new is None:
        new = {"same": old, "stem": old.with_suffix(""), "model": old.parent / "model"}[naming]
    return save(new, kind, content)


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m compat.checkpoint",
                                     description="Convert a checkpoint of the earlier torch.save format.")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="rewrite OLD (a .pt you wrote yourself) as a .json + .safetensors pair")
    c.add_argument("old")
    c.add_argument("new", nargs="?", default=None, help="the new checkpoint's name (default: derived from OLD)")
    args = parser.parse_args(argv)
    try:
        target = convert(args.old, args.new)
    except (CheckpointError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
