"""Keras model files read without Keras: the model's configuration and its LSTMs' weights, never its code.

Formats:

* ``.h5`` (HDF5, via ``h5py``): Keras 1 and 2 ``model.save`` / ``save_weights`` files, and the legacy
  HDF5 format Keras 3 still writes. Root attributes ``keras_version``, ``backend``, ``model_config``
  (the architecture as JSON); the weights under ``model_weights/`` (or the root, for ``save_weights``),
  one group per layer listed in the ``layer_names`` attribute, whose ``weight_names`` attribute lists its
  datasets in the layer's weight order (keras/engine/saving.py ``save_weights_to_hdf5_group``).
* ``.keras`` (a zip, Keras >= 2.13 and 3): ``config.json``, ``metadata.json`` (``keras_version``) and
  ``model.weights.h5``, where a layer's variables are ``layers/<key>/.../vars/0, 1, ...`` in creation
  order (keras/src/saving/saving_lib.py). ``<key>`` is the snake-case class name made unique with
  ``_1, _2, ...`` in layer order; Keras 3 also stores the layer's name in the ``vars`` group's ``name``
  attribute.

Hostile files (docs/security.md): the configuration is parsed as JSON data only (no class named in it is
imported, no lambda or custom object deserialised, duplicate keys refused). The HDF5 C library, which
h5py wraps, can segfault, loop or allocate without bound on a damaged file, so every HDF5 read happens in a
forked child process under a memory limit and a deadline (:mod:`compat.formats.isolated`); its death is
one error naming the file. Inside it: only the LSTM layers' weights (and those of models nesting them) are
read; the loops over layers, weights and groups are capped; external links, soft links, external storage,
virtual datasets and filters other than deflate, shuffle and fletcher32 are refused by name (they read
other files or run plugins); each dataset's declared size is compared with the ceiling, with the bytes
the file stores for it, and with the layer's ``units`` (an LSTM weight's last axis is H, 4H or 8H) before
any of it is read. ``.keras`` members are checked before they are inflated and inflated in bounded chunks
(:mod:`compat.formats.zips`).
"""
from __future__ import annotations

import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Dict, Iterator, List, Optional, Set, Tuple

import numpy as np

from compat.errors import FileFormatError
from compat.formats import zips
from compat.formats.files import GiB, MiB, file_size, open_regular
from compat.formats.isolated import run_isolated
from compat.formats.jsons import JSONError, loads
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES, checked_count, format_shape

MAX_CONFIG_BYTES = 64 * MiB         # model_config, config.json, metadata.json
MAX_TENSOR_BYTES = DEFAULT_MAX_TENSOR_BYTES  # the ceiling on one weight (--max-tensor-bytes)
MAX_WEIGHTS_BYTES = 16 * GiB        # a .keras archive's model.weights.h5, inflated
MAX_JSON_DEPTH = 200
MAX_NAMES = 100_000                 # entries of layer_names, of one weight_names, links of one group
MAX_OBJECTS = 1_000_000             # groups and datasets visited in a .keras weights file
MAX_H5_DEPTH = 64
MAX_ITEMSIZE = 16
SPOOL_BYTES = 64 * MiB              # a .keras weights member above this is inflated to a temporary file
READ_TIMEOUT = 10.0                 # seconds for the HDF5 child, plus READ_SECONDS_PER_GIB per GiB of file
READ_SECONDS_PER_GIB = 60.0
READ_MEMORY = 512 * MiB             # the HDF5 child's memory, plus 3 x the file's size

# HDF5's built-in lossless filters (H5Zpublic.h); any other id would make the library look for a plugin.
FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32"}
LSTM_CLASSES = ("LSTM", "CuDNNLSTM")
MODEL_CLASSES = ("Sequential", "Model", "Functional")
# .keras paths of the layers the converter reads: the snake-case keys of LSTM, CuDNNLSTM, Bidirectional.
_KERAS_LSTM_KEY = re.compile(r"(lstm|cu_dnnlstm|bidirectional)(_\d+)?")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

MISSING_H5PY = "reading Keras files needs h5py: pip install legacy-lstm[keras]"


class KerasFileError(FileFormatError):
    """A Keras file that cannot be read; the message names the file and the field."""


def _h5py():
    try:
        import h5py
    except ImportError:
        raise KerasFileError(MISSING_H5PY) from None
    return h5py


def _depth(obj, limit: int, path: str) -> None:
    stack = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            raise KerasFileError(f"{path}: the model configuration nests deeper than {limit} levels")
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)


def parse_config(text, path: str, what: str = "model_config") -> dict:
    """A model configuration JSON document as plain data (duplicate keys refused)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise KerasFileError(f"{path}: {what} is not UTF-8 (byte {e.start})") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise KerasFileError(f"{path}: {what} has {len(text):,} characters; the cap is {MAX_CONFIG_BYTES:,}")
    try:
        config = loads(text)
    except JSONError as e:
        raise KerasFileError(f"{path}: {what} is not valid JSON ({e})") from None
    _depth(config, MAX_JSON_DEPTH, path)
    if not isinstance(config, dict):
        raise KerasFileError(f"{path}: {what} is a JSON {type(config).__name__}, not an object")
    return config


def lstm_units(config: Optional[dict]) -> Tuple[Dict[str, int], Set[str]]:
    """(units by name of every LSTM, CuDNNLSTM and Bidirectional layer of ``config``, names of the nested
    models): the weights the converter reads, and the ``units`` their shapes must fit."""
    units: Dict[str, int] = {}
    models: Set[str] = set()
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        cls, cfg = node.get("class_name"), node.get("config")
        if isinstance(cfg, dict):
            name = cfg.get("name")
            inner = cfg.get("layer") if cls == "Bidirectional" else None
            source = inner.get("config") if isinstance(inner, dict) else cfg
            h = source.get("units", source.get("output_dim")) if isinstance(source, dict) else None
            if isinstance(name, str) and (cls in LSTM_CLASSES or cls == "Bidirectional") and \
                    type(h) is int and h > 0:
                units[name] = h
            if isinstance(name, str) and cls in MODEL_CLASSES:
                models.add(name)
        stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
    return units, models


@dataclass
class KerasFile:
    """What a Keras file holds: version, backend, configuration and the LSTM layers' weights by layer name."""

    path: str
    container: str                      # "h5" or "keras"
    keras_version: str
    backend: str
    config: Optional[dict]
    # layer name -> [(weight name, array)] in the layer's weight order (h5); for .keras files the
    # weights are looked up by path with :meth:`keras_vars`.
    layer_weights: Dict[str, List[Tuple[str, np.ndarray]]] = field(default_factory=dict)
    vars_by_path: Dict[str, np.ndarray] = field(default_factory=dict)
    names_by_path: Dict[str, str] = field(default_factory=dict)   # .keras path -> layer name (Keras 3)

    @property
    def version(self) -> Optional[Tuple[int, int]]:
        """(major, minor) of ``keras_version``, or None when the file does not say it readably."""
        return parse_version(self.keras_version)

    @property
    def major(self) -> int:
        v = self.version
        return v[0] if v else 0

    def keras_vars(self, path: str) -> List[np.ndarray]:
        """``path/vars/0, 1, ...`` of a .keras weights file, in order."""
        out = []
        k = 0
        while f"{path}/vars/{k}" in self.vars_by_path:
            out.append(self.vars_by_path[f"{path}/vars/{k}"])
            k += 1
        return out


def parse_version(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """``"2.2.4"`` -> (2, 2); None for anything that does not start with two short numbers."""
    m = re.match(r"\s*(\d{1,4})\.(\d{1,4})(?!\d)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


# ------------------------------------------------------------------------------------ inside the child
class _Limits:
    """What the child checks every dataset against before reading it."""

    def __init__(self, path: str, size: int, max_tensor_bytes: int, units: Dict[str, int], layered: bool):
        self.path, self.size, self.max_tensor_bytes, self.units = path, size, max_tensor_bytes, units
        self.layered = layered  # names are "<layer>/<weight name>" (.h5), not paths (.keras)
        self.all_units = sorted(set(units.values()))

    def fail(self, name: str, message: str):
        layer, _, weight = name.partition("/")
        label = f"layer {layer!r}, weight {weight!r}" if self.layered else f"weight {name!r}"
        raise KerasFileError(f"{self.path}: {label}: {message}")


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _attr(h5py, obj, name: str, where: str, cap: int = MAX_CONFIG_BYTES):
    """Attribute ``name`` of ``obj`` (None when absent), its declared size checked before it is read (a
    variable-length string's bytes live in the file's heap: the child's memory limit bounds those)."""
    if not obj.attrs.__contains__(name):
        return None
    aid = h5py.h5a.open(obj.id, name.encode())
    shape = aid.shape
    count = 1 if shape == () else (shape[0] if shape is not None and len(shape) == 1 else -1)
    if count < 0 or count > MAX_NAMES or count * aid.dtype.itemsize > cap:
        raise KerasFileError(f"{where}: attribute {name!r} of shape {shape} and dtype {aid.dtype}; expected text or "
                             f"a list of at most {MAX_NAMES:,} names under {cap:,} bytes")
    return obj.attrs[name]


def _names(h5py, obj, name: str, where: str) -> List[str]:
    value = _attr(h5py, obj, name, where)
    if value is None:
        return []
    items = np.asarray(value).ravel()
    if items.size > MAX_NAMES:
        raise KerasFileError(f"{where}: attribute {name!r} lists {items.size:,} names; the cap is {MAX_NAMES:,}")
    return [_text(v) for v in items]


def _member(h5py, group, name: str, where: str):
    """``group[name]`` after checking that the link is an ordinary (hard) link inside this file."""
    link = group.get(name, getlink=True)
    if link is None:
        return None
    if isinstance(link, h5py.ExternalLink):
        raise KerasFileError(f"{where}: {name!r} is an HDF5 external link to {link.filename!r}: refused (it would "
                             "read another file)")
    if isinstance(link, h5py.SoftLink):
        raise KerasFileError(f"{where}: {name!r} is an HDF5 soft link to {link.path!r}; Keras writes none: refused")
    if not isinstance(link, h5py.HardLink):
        raise KerasFileError(f"{where}: {name!r} is a user-defined HDF5 link: refused")
    return group[name]


def _read_dataset(h5py, ds, limits: _Limits, name: str, units: Optional[List[int]]) -> np.ndarray:
    """The dataset's values, after every check of the module docstring."""
    h5d = h5py.h5d
    dcpl = ds.id.get_create_plist()
    layout = dcpl.get_layout()
    if layout == getattr(h5d, "VIRTUAL", 3):
        limits.fail(name, "is an HDF5 virtual dataset (its values would come from other files): refused")
    if dcpl.get_external_count():
        limits.fail(name, "is stored in an external file (HDF5 external storage), which could be any file on this "
                          "machine: refused")
    filtered = False
    for i in range(min(dcpl.get_nfilters(), 32)):
        code = dcpl.get_filter(i)[0]
        if code not in FILTERS:
            limits.fail(name, f"is compressed with HDF5 filter {code}, not one of the built-in {sorted(FILTERS.values())}: "
                              "refused (it would load a plugin)")
        filtered = filtered or FILTERS[code] == "deflate"
    dtype = ds.dtype
    if dtype.kind not in "fiu" or dtype.itemsize > MAX_ITEMSIZE or dtype.fields is not None:
        limits.fail(name, f"has dtype {dtype}; expected numbers")
    shape = tuple(int(d) for d in ds.shape) if ds.shape is not None else None
    if shape is None:
        limits.fail(name, "has no shape (an HDF5 null dataspace)")
    count = checked_count(shape, dtype.itemsize, lambda m: limits.fail(name, m), max_rank=32)
    nbytes = count * dtype.itemsize
    if units is not None and (not 1 <= len(shape) <= 2 or not any(shape[-1] in (h, 4 * h, 8 * h) for h in units)):
        expected = "; ".join(f"{h}, {4 * h} or {8 * h}" for h in units)
        limits.fail(name, f"units={'/'.join(map(str, units))} does not match the weight's shape {format_shape(shape)} "
                          f"(an LSTM weight has rank 1 or 2 and a last axis of {expected})")
    if nbytes > limits.max_tensor_bytes:
        limits.fail(name, f"has {nbytes:,} bytes; the ceiling is {limits.max_tensor_bytes:,} "
                          "(--max-tensor-bytes raises it)")
    if nbytes:
        stored = ds.id.get_storage_size()
        if stored > limits.size:
            limits.fail(name, f"claims {stored:,} stored bytes in a file of {limits.size:,}")
        if layout == h5d.CONTIGUOUS:
            offset = ds.id.get_offset()
            if stored != nbytes or offset is None or offset + nbytes > limits.size:
                limits.fail(name, f"declares {nbytes:,} bytes but the file stores {stored:,} at byte "
                                  f"{offset} of {limits.size:,} (never written, or truncated)")
        elif layout == h5d.CHUNKED:
            if not filtered and stored < nbytes:
                limits.fail(name, f"declares {nbytes:,} bytes but its chunks store {stored:,} (never written, or "
                                  "truncated)")
            if filtered and nbytes > stored * zips.DEFLATE_MAX_RATIO + MiB:
                limits.fail(name, f"declares {nbytes:,} bytes, more than its {stored:,} compressed bytes can hold")
        elif layout != h5d.COMPACT:
            limits.fail(name, f"has an unknown HDF5 storage layout {layout}")
    return np.asarray(ds[()])


def _h5_units(limits: _Limits, lname: str, wname: str) -> Optional[List[int]]:
    if lname in limits.units:
        return [limits.units[lname]]
    hits = [limits.units[p] for p in wname.split("/") if p in limits.units]
    return hits or None


def _read_h5_child(fh: BinaryIO, path: str, size: int, max_tensor_bytes: int) -> dict:
    """The root attributes and the LSTM layers' weights of a Keras HDF5 file (runs in the child)."""
    h5py = _h5py()
    with h5py.File(fh, "r") as f:
        version = _text(_attr(h5py, f, "keras_version", path) or b"")
        weights_group = _member(h5py, f, "model_weights", path) if "model_weights" in f else f
        if not version and weights_group is not f:
            version = _text(_attr(h5py, weights_group, "keras_version", path) or b"")
        backend = _text(_attr(h5py, f, "backend", path) or b"")
        config_text = _attr(h5py, f, "model_config", path)
        config_text = None if config_text is None else _text(config_text)
        out = {"keras_version": version[:200], "backend": backend[:200], "model_config": config_text,
               "layer_weights": {}}
        if config_text is None:
            return out  # weights only: nothing to convert without the configuration
        units, models = lstm_units(parse_config(config_text, path))
        limits = _Limits(path, size, max_tensor_bytes, units, layered=True)
        where = f"{path}: {'model_weights' if weights_group is not f else 'the root'}"
        if _attr(h5py, weights_group, "layer_names", path) is None:
            raise KerasFileError(f"{path}: no 'layer_names' attribute in {where.split(': ')[1]}; not a Keras HDF5 "
                                 "weights file")
        for lname in _names(h5py, weights_group, "layer_names", where):
            if lname not in units and lname not in models:
                continue
            g = _member(h5py, weights_group, lname, f"{path}: layer {lname!r}")
            if g is None:
                raise KerasFileError(f"{path}: layer {lname!r} is listed in layer_names but has no group")
            if not isinstance(g, h5py.Group):
                raise KerasFileError(f"{path}: layer {lname!r} is not an HDF5 group")
            weights = []
            for wname in _names(h5py, g, "weight_names", f"{path}: layer {lname!r}"):
                layer_units = _h5_units(limits, lname, wname)
                if lname in models and layer_units is None:
                    continue  # a nested model's non-LSTM weight
                ds = _dataset_at(h5py, g, wname, f"{path}: layer {lname!r}")
                if ds is None:
                    raise KerasFileError(f"{path}: layer {lname!r} lists weight {wname!r} but the file has no such "
                                         "dataset")
                weights.append([wname, _read_dataset(h5py, ds, limits, f"{lname}/{wname}", layer_units)])
            out["layer_weights"][lname] = weights
    return out


def _dataset_at(h5py, group, name: str, where: str):
    """The dataset at the relative path ``name`` (``"lstm/kernel:0"``), every link on the way checked."""
    obj = group
    parts = [p for p in name.split("/") if p]
    if not parts or len(parts) > MAX_H5_DEPTH:
        return None
    for part in parts:
        if not isinstance(obj, h5py.Group):
            return None
        obj = _member(h5py, obj, part, where)
        if obj is None:
            return None
    return obj if isinstance(obj, h5py.Dataset) else None


def _walk(h5py, root, path: str) -> Iterator[Tuple[str, object]]:
    """Every (path, object) below ``root``, depth-first, links checked, at most MAX_OBJECTS of them."""
    stack = [("", root, 0)]
    seen = 0
    while stack:
        prefix, group, depth = stack.pop()
        if len(group) > MAX_NAMES:
            raise KerasFileError(f"{path}: group {prefix or '/'!r} has {len(group):,} members; the cap is {MAX_NAMES:,}")
        for name in list(group):
            seen += 1
            if seen > MAX_OBJECTS:
                raise KerasFileError(f"{path}: more than {MAX_OBJECTS:,} HDF5 objects")
            full = f"{prefix}/{name}" if prefix else name
            obj = _member(h5py, group, name, f"{path}: {prefix or '/'}")
            yield full, obj
            if isinstance(obj, h5py.Group):
                if depth >= MAX_H5_DEPTH:
                    raise KerasFileError(f"{path}: groups nest deeper than {MAX_H5_DEPTH} at {full!r}")
                stack.append((full, obj, depth + 1))


def _read_keras_weights_child(fh: BinaryIO, path: str, size: int, max_tensor_bytes: int,
                              units: Dict[str, int]) -> dict:
    """The LSTM layers' variables of a .keras archive's model.weights.h5 (runs in the child)."""
    h5py = _h5py()
    where = f"{path}: model.weights.h5"
    limits = _Limits(where, size, max_tensor_bytes, units, layered=False)
    vars_by_path: Dict[str, np.ndarray] = {}
    names: Dict[str, str] = {}
    with h5py.File(fh, "r") as f:
        for full, obj in _walk(h5py, f, where):
            segments = full.split("/")
            if not any(_KERAS_LSTM_KEY.fullmatch(s) for s in segments):
                continue
            if isinstance(obj, h5py.Dataset):
                vars_by_path[full] = _read_dataset(h5py, obj, limits, full, limits.all_units or None)
            elif isinstance(obj, h5py.Group) and full.endswith("/vars"):
                name = _attr(h5py, obj, "name", where, cap=1 << 16)
                if name is not None:
                    names[full[:-len("/vars")]] = _text(name)
    return {"vars": vars_by_path, "names": names}


# ------------------------------------------------------------------------------------------ the parent
def _isolated(reader, where: str, size: int):
    return run_isolated(reader, where=where, what="HDF5 file", error=KerasFileError,
                        timeout=READ_TIMEOUT + READ_SECONDS_PER_GIB * size / GiB, memory_bytes=READ_MEMORY + 3 * size)


def _read_h5(path: Path, max_tensor_bytes: int) -> KerasFile:
    _h5py()
    with open_regular(path, "Keras HDF5 file") as fh:
        if fh.read(8) != HDF5_SIGNATURE:
            raise KerasFileError(f"{path}: not an HDF5 file (no HDF5 signature)")
        fh.seek(0)
        size = file_size(fh)
        got = _isolated(lambda: _read_h5_child(fh, str(path), size, max_tensor_bytes), str(path), size)
    config = None if got["model_config"] is None else parse_config(got["model_config"], str(path))
    weights = {lname: [(w, a) for w, a in ws] for lname, ws in got["layer_weights"].items()}
    return KerasFile(str(path), "h5", got["keras_version"], got["backend"], config, layer_weights=weights)


def _zip_text(z: zipfile.ZipFile, name: str, path: Path) -> Optional[bytes]:
    try:
        info = z.getinfo(name)
    except KeyError:
        return None

    def fail(message: str):
        raise KerasFileError(f"{path}: {name!r} {message}")

    size = zips.check_member(info, MAX_CONFIG_BYTES, fail)
    buf = bytearray(size)
    with z.open(info) as member:
        zips.read_into(member, memoryview(buf), fail)
    return bytes(buf)


def _hdf5_end(first: bytes) -> Optional[int]:
    """The end-of-file address an HDF5 superblock at byte 0 records (h5py writes the file's size)."""
    if not first.startswith(HDF5_SIGNATURE) or len(first) < 16:
        return None
    version = first[8]
    if version in (0, 1):
        offsets = first[13]
        at = 24 + (4 if version == 1 else 0) + 2 * offsets
    elif version in (2, 3):
        offsets = first[9]
        at = 12 + 2 * offsets
    else:
        return None
    if offsets not in (2, 4, 8) or len(first) < at + offsets:
        return None
    return int.from_bytes(first[at:at + offsets], "little")


def _inflate_weights(z: zipfile.ZipFile, path: Path, spool: BinaryIO) -> int:
    name = "model.weights.h5"
    try:
        info = z.getinfo(name)
    except KeyError:
        raise KerasFileError(f"{path}: the .keras archive has no {name!r}") from None

    def fail(message: str):
        raise KerasFileError(f"{path}: {name!r} {message}")

    size = zips.check_member(info, MAX_WEIGHTS_BYTES, fail)

    def superblock(first: bytes) -> None:
        # The HDF5 file inside records where it ends: a member declaring more (gigabytes of zeros after the
        # real file, say) is refused before the rest is inflated.
        if not first.startswith(HDF5_SIGNATURE):
            fail("is not an HDF5 file (no HDF5 signature)")
        end = _hdf5_end(first)
        if end is not None and end != size:
            fail(f"declares {size:,} bytes but the HDF5 file in it ends at byte {end:,}")

    with z.open(info) as member:
        zips.copy_member(member, spool, size, fail, first=superblock)
    spool.seek(0)
    return size


def _read_keras_zip(path: Path, max_tensor_bytes: int) -> KerasFile:
    _h5py()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        with open_regular(path, ".keras file") as fh:
            try:
                z = zipfile.ZipFile(fh)
                with z:
                    config_bytes = _zip_text(z, "config.json", path)
                    if config_bytes is None:
                        raise KerasFileError(f"{path}: the .keras archive has no 'config.json'")
                    config = parse_config(config_bytes, str(path), "config.json")
                    meta_bytes = _zip_text(z, "metadata.json", path)
                    meta = {} if meta_bytes is None else parse_config(meta_bytes, str(path), "metadata.json")
                    size = _inflate_weights(z, path, spool)
            except KerasFileError:
                raise
            except zips.ZIP_ERRORS as e:
                raise KerasFileError(f"{path}: not a readable .keras archive (zip): {type(e).__name__}: {e}") from None
        units, _ = lstm_units(config)
        got = _isolated(lambda: _read_keras_weights_child(spool, str(path), size, max_tensor_bytes, units),
                        f"{path}: model.weights.h5", size)
    finally:
        spool.close()
    version = meta.get("keras_version", "")
    return KerasFile(str(path), "keras", version if isinstance(version, str) else "", "", config,
                     vars_by_path=got["vars"], names_by_path=got["names"])


def read_keras(path, *, max_tensor_bytes: int = MAX_TENSOR_BYTES) -> KerasFile:
    """A Keras ``.h5`` or ``.keras`` file (told apart by content, not by name).

    ``max_tensor_bytes``: the ceiling on one weight, checked before it is read.
    """
    p = Path(path)
    with open_regular(p, "Keras file") as fh:
        head = fh.read(8)
        if file_size(fh) == 0:
            raise KerasFileError(f"{p}: empty file")
    if head.startswith(b"PK"):
        return _read_keras_zip(p, max_tensor_bytes)
    if head == HDF5_SIGNATURE:
        return _read_h5(p, max_tensor_bytes)
    raise KerasFileError(f"{p}: neither an HDF5 (.h5) nor a zip (.keras) Keras file")
