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
imported, no lambda or custom object deserialised, duplicate keys refused). The HDF5 part is read through
:mod:`compat.formats.hdf5` (pyfive in this process where that is bounded, else h5py in a forked child under
a memory limit and a deadline), with its checks of links, storage, filters and sizes; here, besides: every
layer's weights are read (those not converted are carried), the loops over layers, weights and groups are
capped, and an LSTM weight's shape is compared with its layer's ``units`` (a last axis of H, 4H or 8H)
before any of it is read. A dataset that is not numbers is listed as not read (``unread``). ``.keras``
members are checked before they are inflated and inflated in bounded chunks (:mod:`compat.formats.zips`).
"""
from __future__ import annotations

import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Dict, Iterator, List, Optional, Tuple

import numpy as np

from compat.errors import FileFormatError
from compat.formats import zips
from compat.formats.files import GiB, MiB, file_size, open_regular
from compat.formats.hdf5 import Tree, read_hdf5
from compat.formats.jsons import JSONError, loads
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES, format_shape

MAX_CONFIG_BYTES = 64 * MiB         # model_config, config.json, metadata.json
MAX_TENSOR_BYTES = DEFAULT_MAX_TENSOR_BYTES  # the ceiling on one weight (--max-tensor-bytes)
MAX_WEIGHTS_BYTES = 16 * GiB        # a .keras archive's model.weights.h5, inflated
MAX_JSON_DEPTH = 200
MAX_NAMES = 100_000                 # entries of layer_names, of one weight_names
MAX_OBJECTS = 1_000_000             # groups and datasets visited in a .keras weights file
MAX_H5_DEPTH = 64
SPOOL_BYTES = 64 * MiB              # a .keras weights member above this is inflated to a temporary file
LSTM_CLASSES = ("LSTM", "CuDNNLSTM")
# .keras paths of the layers the converter reads: the snake-case keys of LSTM, CuDNNLSTM, Bidirectional.
_KERAS_LSTM_KEY = re.compile(r"(lstm|cu_dnnlstm|bidirectional)(_\d+)?")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

class KerasFileError(FileFormatError):
    """A Keras file that cannot be read; the message names the file and the field."""


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


def lstm_units(config: Optional[dict]) -> Tuple[Dict[str, int], bool]:
    """(units by name of every LSTM, CuDNNLSTM and Bidirectional(LSTM) layer of ``config``; whether some
    Bidirectional wraps another kind): the ``units`` the LSTM weights' shapes must fit."""
    units: Dict[str, int] = {}
    other_wrappers = False
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
            inner_cls = inner.get("class_name") if isinstance(inner, dict) else None
            source = inner.get("config") if isinstance(inner, dict) else cfg
            h = source.get("units", source.get("output_dim")) if isinstance(source, dict) else None
            lstm = cls in LSTM_CLASSES or (cls == "Bidirectional" and inner_cls in LSTM_CLASSES)
            other_wrappers = other_wrappers or (cls == "Bidirectional" and not lstm)
            if isinstance(name, str) and lstm and type(h) is int and h > 0:
                units[name] = h
        stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
    return units, other_wrappers


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
    # datasets not read (not numbers), by "<layer>/<weight name>" (h5) or path (.keras) -> why
    unread: Dict[str, str] = field(default_factory=dict)
    version_note: str = ""              # how the version was told where the file states none

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


# ------------------------------------------------------------------------------------ the HDF5 walks
class _Limits:
    """What every dataset is checked against before it is read."""

    def __init__(self, path: str, size: int, max_tensor_bytes: int, units: Dict[str, int], layered: bool):
        self.path, self.size, self.max_tensor_bytes, self.units = path, size, max_tensor_bytes, units
        self.layered = layered  # names are "<layer>/<weight name>" (.h5), not paths (.keras)
        self.all_units = sorted(set(units.values()))

    def where(self, name: str) -> str:
        layer, _, weight = name.partition("/")
        return f"{self.path}: layer {layer!r}, weight {weight!r}" if self.layered else f"{self.path}: weight {name!r}"


def _expect_units(units: Optional[List[int]]):
    """The check of an LSTM weight's shape against its layer's units (None: not an LSTM weight)."""
    if units is None:
        return None

    def expect(shape) -> Optional[str]:
        if 1 <= len(shape) <= 2 and any(shape[-1] in (h, 4 * h, 8 * h) for h in units):
            return None
        expected = "; ".join(f"{h}, {4 * h} or {8 * h}" for h in units)
        return (f"units={'/'.join(map(str, units))} does not match the weight's shape {format_shape(shape)} (an LSTM "
                f"weight has rank 1 or 2 and a last axis of {expected})")
    return expect


def _read_weight(tree: Tree, ds, limits: _Limits, name: str, units: Optional[List[int]], out: dict,
                 unread: dict) -> None:
    """``out[name]`` = the dataset's values, or ``unread[name]`` = why a dataset that is not numbers is not."""
    shape, dtype = tree.describe(ds)
    if dtype.kind not in "biuf" or dtype.fields is not None:
        if units is not None:
            tree.fail(f"{limits.where(name)}: has dtype {dtype}; an LSTM weight is floating point")
        unread[name] = f"an HDF5 dataset of dtype {dtype}, not numbers"
        return
    out[name] = tree.dataset(ds, limits.where(name), limits.size, limits.max_tensor_bytes, _expect_units(units))


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _names(tree: Tree, obj, name: str, where: str) -> List[str]:
    value = tree.attr(obj, name, where, MAX_CONFIG_BYTES)
    if value is None:
        return []
    items = [value] if isinstance(value, (bytes, str)) else np.asarray(value, dtype=object).ravel()
    if len(items) > MAX_NAMES:
        raise KerasFileError(f"{where}: attribute {name!r} lists {len(items):,} names; the cap is {MAX_NAMES:,}")
    return [_text(v) for v in items]


def _h5_units(limits: _Limits, lname: str, wname: str) -> Optional[List[int]]:
    if lname in limits.units:
        return [limits.units[lname]]
    hits = [limits.units[p] for p in wname.split("/") if p in limits.units]
    return hits or None


def _read_h5_tree(tree: Tree, f, path: str, size: int, max_tensor_bytes: int, given: Optional[dict] = None) -> dict:
    """The root attributes and every listed layer's weights of a Keras HDF5 file (``given``: the model's
    configuration from elsewhere, for a ``save_weights`` file read with its ``to_json``)."""
    version = _text(tree.attr(f, "keras_version", path, MAX_CONFIG_BYTES) or b"")
    weights_group = f
    if "model_weights" in tree.keys(f, path):
        weights_group = tree.member(f, "model_weights", path)
        if not tree.is_group(weights_group):
            raise KerasFileError(f"{path}: 'model_weights' is not an HDF5 group")
    if not version and weights_group is not f:
        version = _text(tree.attr(weights_group, "keras_version", path, MAX_CONFIG_BYTES) or b"")
    backend = _text(tree.attr(f, "backend", path, MAX_CONFIG_BYTES) or b"")
    config_text = None if given is not None else tree.attr(f, "model_config", path, MAX_CONFIG_BYTES)
    config = given if given is not None else None if config_text is None else parse_config(_text(config_text), path)
    out = {"keras_version": version[:200], "backend": backend[:200], "model_config": config,
           "layer_weights": {}, "unread": {}}
    if config is None:
        return out  # weights only: nothing to convert without the configuration
    units, _ = lstm_units(config)
    limits = _Limits(path, size, max_tensor_bytes, units, layered=True)
    where = f"{path}: {'model_weights' if weights_group is not f else 'the root'}"
    if tree.attr(weights_group, "layer_names", where, MAX_CONFIG_BYTES) is None:
        raise KerasFileError(f"{path}: no 'layer_names' attribute in {where.split(': ')[1]}; not a Keras HDF5 "
                             "weights file")
    for lname in _names(tree, weights_group, "layer_names", where):
        g = tree.member(weights_group, lname, f"{path}: layer {lname!r}")
        if g is None:
            raise KerasFileError(f"{path}: layer {lname!r} is listed in layer_names but has no group")
        if not tree.is_group(g):
            raise KerasFileError(f"{path}: layer {lname!r} is not an HDF5 group")
        weights, values = [], {}
        for wname in _names(tree, g, "weight_names", f"{path}: layer {lname!r}"):
            ds = _dataset_at(tree, g, wname, f"{path}: layer {lname!r}")
            if ds is None:
                raise KerasFileError(f"{path}: layer {lname!r} lists weight {wname!r} but the file has no such "
                                     "dataset")
            _read_weight(tree, ds, limits, f"{lname}/{wname}", _h5_units(limits, lname, wname), values, out["unread"])
            if f"{lname}/{wname}" in values:
                weights.append([wname, values[f"{lname}/{wname}"]])
        out["layer_weights"][lname] = weights
    return out


def _dataset_at(tree: Tree, group, name: str, where: str):
    """The dataset at the relative path ``name`` (``"lstm/kernel:0"``), every link on the way checked."""
    obj = group
    parts = [p for p in name.split("/") if p]
    if not parts or len(parts) > MAX_H5_DEPTH:
        return None
    for part in parts:
        if not tree.is_group(obj):
            return None
        obj = tree.member(obj, part, where)
        if obj is None:
            return None
    return obj if tree.is_dataset(obj) else None


def _walk(tree: Tree, root, path: str) -> Iterator[Tuple[str, object]]:
    """Every (path, object) below ``root``, depth-first, links checked, at most MAX_OBJECTS of them."""
    stack = [("", root, 0)]
    seen = 0
    while stack:
        prefix, group, depth = stack.pop()
        for name in tree.keys(group, f"{path}: group {prefix or '/'!r}"):
            seen += 1
            if seen > MAX_OBJECTS:
                raise KerasFileError(f"{path}: more than {MAX_OBJECTS:,} HDF5 objects")
            full = f"{prefix}/{name}" if prefix else name
            obj = tree.member(group, name, f"{path}: {prefix or '/'}")
            yield full, obj
            if tree.is_group(obj):
                if depth >= MAX_H5_DEPTH:
                    raise KerasFileError(f"{path}: groups nest deeper than {MAX_H5_DEPTH} at {full!r}")
                stack.append((full, obj, depth + 1))


def _keras_path_units(limits: _Limits, segments: List[str], other_wrappers: bool) -> Optional[List[int]]:
    """The units an LSTM weight at this .keras path must fit, or None when it is not an LSTM's."""
    if not limits.all_units:
        return None
    for s in segments:
        m = _KERAS_LSTM_KEY.fullmatch(s)
        if m and (m.group(1) != "bidirectional" or not other_wrappers):
            return limits.all_units
    return None


def _read_keras_weights_tree(tree: Tree, f, path: str, size: int, max_tensor_bytes: int,
                             units: Dict[str, int], other_wrappers: bool) -> dict:
    """Every variable of a .keras archive's model.weights.h5, and the layer names Keras 3 records."""
    where = f"{path}: model.weights.h5"
    limits = _Limits(where, size, max_tensor_bytes, units, layered=False)
    vars_by_path: Dict[str, np.ndarray] = {}
    unread: Dict[str, str] = {}
    names: Dict[str, str] = {}
    for full, obj in _walk(tree, f, where):
        if tree.is_dataset(obj):
            _read_weight(tree, obj, limits, full, _keras_path_units(limits, full.split("/"), other_wrappers),
                         vars_by_path, unread)
        elif tree.is_group(obj) and full.endswith("/vars"):
            name = tree.attr(obj, "name", where, 1 << 16)
            if name is not None:
                names[full[:-len("/vars")]] = _text(name)
    return {"vars": vars_by_path, "names": names, "unread": unread}


# ------------------------------------------------------------------------------------------ the parent
def _read_h5(path: Path, max_tensor_bytes: int) -> KerasFile:
    with open_regular(path, "Keras HDF5 file") as fh:
        if fh.read(8) != HDF5_SIGNATURE:
            raise KerasFileError(f"{path}: not an HDF5 file (no HDF5 signature)")
        fh.seek(0)
        size = file_size(fh)
        got = read_hdf5(fh, size, str(path), lambda tree, root: _read_h5_tree(tree, root, str(path), size,
                                                                              max_tensor_bytes),
                        error=KerasFileError)
    config = got["model_config"]
    weights = {lname: [(w, a) for w, a in ws] for lname, ws in got["layer_weights"].items()}
    return KerasFile(str(path), "h5", got["keras_version"], got["backend"], config, layer_weights=weights,
                     unread=got["unread"])


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
        units, other_wrappers = lstm_units(config)
        got = read_hdf5(spool, size, f"{path}: model.weights.h5",
                        lambda tree, root: _read_keras_weights_tree(tree, root, str(path), size, max_tensor_bytes,
                                                                    units, other_wrappers),
                        error=KerasFileError)
    finally:
        spool.close()
    version = meta.get("keras_version", "")
    return KerasFile(str(path), "keras", version if isinstance(version, str) else "", "", config,
                     vars_by_path=got["vars"], names_by_path=got["names"], unread=got["unread"])


def read_keras_pair(config_path, weights_path, *, max_tensor_bytes: int = MAX_TENSOR_BYTES) -> KerasFile:
    """A model saved as ``model.to_json()`` (``config_path``) beside ``model.save_weights()`` (``weights_path``:
    Keras 1/2 and tf.keras ``.h5`` with ``layer_names`` at its root, or Keras 3 ``.weights.h5`` with
    ``layers/.../vars``). The version is the JSON's ``keras_version`` or the weights file's; a Keras 3 JSON states
    none (see :attr:`KerasFile.keras_version`, empty then)."""
    from compat.formats.files import read_bytes

    cpath, wpath = Path(config_path), Path(weights_path)
    config = parse_config(read_bytes(cpath, MAX_CONFIG_BYTES, "Keras model JSON"), str(cpath), "the model JSON")
    version = config.get("keras_version") if isinstance(config.get("keras_version"), str) else ""
    backend = config.get("backend") if isinstance(config.get("backend"), str) else ""
    with open_regular(wpath, "Keras weights file") as fh:
        if fh.read(8) != HDF5_SIGNATURE:
            raise KerasFileError(f"{wpath}: not an HDF5 weights file (no HDF5 signature)")
        fh.seek(0)
        size = file_size(fh)

        def read(tree: Tree, root):
            if tree.attr(root, "layer_names", str(wpath), MAX_CONFIG_BYTES) is not None:
                return "h5", _read_h5_tree(tree, root, str(wpath), size, max_tensor_bytes, given=config)
            units, other = lstm_units(config)
            return "keras", _read_keras_weights_tree(tree, root, str(wpath), size, max_tensor_bytes, units, other)

        container, got = read_hdf5(fh, size, str(wpath), read, error=KerasFileError)
    if container == "h5":
        weights = {lname: [(w, a) for w, a in ws] for lname, ws in got["layer_weights"].items()}
        return KerasFile(str(cpath), "h5", version or got["keras_version"], backend or got["backend"], config,
                         layer_weights=weights, unread=got["unread"])
    return KerasFile(str(cpath), "keras", version, backend, config, vars_by_path=got["vars"],
                     names_by_path=got["names"], unread=got["unread"])


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
