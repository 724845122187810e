"""Keras model files read without Keras: the model's configuration and its weights, never its code.

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

The configuration is parsed as JSON data only: no class named in it is imported, no lambda or custom
object is deserialised. Sizes are bounded: zip members are checked before they are decompressed.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from compat.errors import FileFormatError
from compat.formats.files import GiB, MiB, file_size, open_regular

MAX_CONFIG_BYTES = 64 * MiB
MAX_WEIGHTS_BYTES = 4 * GiB
MAX_JSON_DEPTH = 200

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
    """A model configuration JSON document as plain data."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise KerasFileError(f"{path}: {what} is not UTF-8 (byte {e.start})") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise KerasFileError(f"{path}: {what} has {len(text):,} characters; the cap is {MAX_CONFIG_BYTES:,}")
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise KerasFileError(f"{path}: {what} is not valid JSON ({e})") from None
    _depth(config, MAX_JSON_DEPTH, path)
    if not isinstance(config, dict):
        raise KerasFileError(f"{path}: {what} is a JSON {type(config).__name__}, not an object")
    return config


@dataclass
class KerasFile:
    """What a Keras file holds: version, backend, configuration and every layer's weights by layer name."""

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
    def major(self) -> int:
        m = re.match(r"\s*(\d+)", self.keras_version or "")
        return int(m.group(1)) if m else 0

    def keras_vars(self, path: str) -> List[np.ndarray]:
        """``path/vars/0, 1, ...`` of a .keras weights file, in order."""
        out = []
        k = 0
        while f"{path}/vars/{k}" in self.vars_by_path:
            out.append(self.vars_by_path[f"{path}/vars/{k}"])
            k += 1
        return out


def _attr_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _attr_text(value.item())
    return str(value)


def _attr_list(value) -> List[str]:
    if value is None:
        return []
    return [_attr_text(v) for v in np.asarray(value).ravel()]


def _read_dataset(ds, path: str, name: str) -> np.ndarray:
    if ds.dtype.kind not in "fiu":
        raise KerasFileError(f"{path}: weight {name!r} has dtype {ds.dtype}; expected numbers")
    if ds.size * ds.dtype.itemsize > MAX_WEIGHTS_BYTES:
        raise KerasFileError(f"{path}: weight {name!r} has {ds.size:,} elements; over the cap")
    return np.asarray(ds[()])


def _read_h5_groups(f, path: str) -> Dict[str, List[Tuple[str, np.ndarray]]]:
    group = f["model_weights"] if "model_weights" in f else f
    if "layer_names" not in group.attrs:
        raise KerasFileError(f"{path}: no 'layer_names' attribute in {'model_weights' if group is not f else 'the root'}; "
                             "not a Keras HDF5 weights file")
    out: Dict[str, List[Tuple[str, np.ndarray]]] = {}
    for lname in _attr_list(group.attrs["layer_names"]):
        if lname not in group:
            raise KerasFileError(f"{path}: layer {lname!r} is listed in layer_names but has no group")
        g = group[lname]
        weights = []
        for wname in _attr_list(g.attrs.get("weight_names")):
            if wname not in g:
                raise KerasFileError(f"{path}: layer {lname!r} lists weight {wname!r} but the file has no such dataset")
            weights.append((wname, _read_dataset(g[wname], path, f"{lname}/{wname}")))
        out[lname] = weights
    return out


def _read_h5(path: Path) -> KerasFile:
    h5py = _h5py()
    fh = open_regular(path, "Keras HDF5 file")
    try:
        head = fh.read(8)
        fh.seek(0)
        if head != b"\x89HDF\r\n\x1a\n":
            raise KerasFileError(f"{path}: not an HDF5 file (no HDF5 signature)")
        try:
            with h5py.File(fh, "r") as f:
                attrs = f.attrs
                version = _attr_text(attrs.get("keras_version", b""))
                if not version and "model_weights" in f:
                    version = _attr_text(f["model_weights"].attrs.get("keras_version", b""))
                backend = _attr_text(attrs.get("backend", b""))
                config = parse_config(attrs["model_config"], str(path)) if "model_config" in attrs else None
                weights = _read_h5_groups(f, str(path))
        except KerasFileError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise KerasFileError(f"{path}: cannot read the HDF5 file: {e}") from None
    finally:
        fh.close()
    return KerasFile(str(path), "h5", version, backend, config, layer_weights=weights)


def _zip_member(z: zipfile.ZipFile, name: str, cap: int, path: Path) -> bytes:
    try:
        info = z.getinfo(name)
    except KeyError:
        raise KerasFileError(f"{path}: the .keras archive has no {name!r}") from None
    if info.file_size > cap:
        raise KerasFileError(f"{path}: {name!r} unpacks to {info.file_size:,} bytes; the cap is {cap:,}")
    with z.open(info) as member:
        data = member.read(cap + 1)
    if len(data) > cap:
        raise KerasFileError(f"{path}: {name!r} is larger than it claims")
    return data


def _read_keras_zip(path: Path) -> KerasFile:
    fh = open_regular(path, ".keras file")
    try:
        try:
            z = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError) as e:
            raise KerasFileError(f"{path}: not a .keras archive (zip): {e}") from None
        with z:
            config = parse_config(_zip_member(z, "config.json", MAX_CONFIG_BYTES, path), str(path), "config.json")
            meta = {}
            if "metadata.json" in z.namelist():
                meta = parse_config(_zip_member(z, "metadata.json", MAX_CONFIG_BYTES, path), str(path), "metadata.json")
            weights_bytes = _zip_member(z, "model.weights.h5", MAX_WEIGHTS_BYTES, path)
    except zipfile.BadZipFile as e:
        raise KerasFileError(f"{path}: damaged .keras archive: {e}") from None
    finally:
        fh.close()
    h5py = _h5py()
    vars_by_path: Dict[str, np.ndarray] = {}
    names: Dict[str, str] = {}
    try:
        with h5py.File(io.BytesIO(weights_bytes), "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    vars_by_path[name] = _read_dataset(obj, str(path), name)
                elif name.endswith("/vars") and "name" in obj.attrs:
                    names[name[:-len("/vars")]] = _attr_text(obj.attrs["name"])
            f.visititems(visit)
    except KerasFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise KerasFileError(f"{path}: cannot read model.weights.h5 inside the archive: {e}") from None
    version = str(meta.get("keras_version", ""))
    return KerasFile(str(path), "keras", version, "", config, vars_by_path=vars_by_path, names_by_path=names)


def read_keras(path) -> KerasFile:
    """A Keras ``.h5`` or ``.keras`` file (told apart by content, not by name)."""
    p = Path(path)
    with open_regular(p, "Keras file") as fh:
        head = fh.read(8)
        if file_size(fh) == 0:
            raise KerasFileError(f"{p}: empty file")
    if head.startswith(b"PK"):
        return _read_keras_zip(p)
    if head == b"\x89HDF\r\n\x1a\n":
        return _read_h5(p)
    raise KerasFileError(f"{p}: neither an HDF5 (.h5) nor a zip (.keras) Keras file")
