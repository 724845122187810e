"""compat.formats.hdf5: pyfive in the process where that is bounded, h5py in the child for the rest.

Both readers must give the same values, the in-process one must be the one that reads the golden files
(no fork: the speed the converter's benchmark measures), and every way out of it must land in the child.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compat.convert import convert, load_carried
from compat.errors import InputError
from compat.formats import hdf5
from compat.formats.keras import KerasFileError, read_keras

h5py = pytest.importorskip("h5py", reason="h5py is in the test extra")
pytest.importorskip("pyfive", reason="pyfive is in the keras extra and tox's environments")

GOLDEN = Path(__file__).resolve().parent / "golden" / "convert"
KERAS_FILES = sorted(GOLDEN.glob("*/*.h5")) + sorted(GOLDEN.glob("*/*.keras"))


def _no_child(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the h5py child was started")
    monkeypatch.setattr(hdf5, "run_isolated", refuse)


def _children(monkeypatch) -> list:
    started = []
    real = hdf5.run_isolated

    def counting(reader, **kwargs):
        started.append(kwargs["where"])
        return real(reader, **kwargs)
    monkeypatch.setattr(hdf5, "run_isolated", counting)
    return started


def _same(a, b) -> None:
    assert (a.keras_version, a.backend, a.config, a.names_by_path, a.unread) == \
           (b.keras_version, b.backend, b.config, b.names_by_path, b.unread)
    assert list(a.layer_weights) == list(b.layer_weights)
    for layer, weights in a.layer_weights.items():
        assert [w for w, _ in weights] == [w for w, _ in b.layer_weights[layer]]
        for (_, x), (_, y) in zip(weights, b.layer_weights[layer]):
            assert x.dtype == y.dtype and np.array_equal(x, y)
    assert sorted(a.vars_by_path) == sorted(b.vars_by_path)
    for k, x in a.vars_by_path.items():
        assert x.dtype == b.vars_by_path[k].dtype and np.array_equal(x, b.vars_by_path[k])


@pytest.mark.parametrize("path", KERAS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_golden_files_are_read_in_the_process_as_h5py_reads_them(path, monkeypatch):
    with monkeypatch.context() as m:
        _no_child(m)
        fast = read_keras(path)
    started = _children(monkeypatch)
    monkeypatch.setattr(hdf5, "IN_PROCESS_MAX_BYTES", -1)
    slow = read_keras(path)
    assert len(started) == 1
    _same(fast, slow)
    assert fast.layer_weights or fast.vars_by_path


def _model(path: Path, **kernel_kw) -> Path:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "LSTM", "config": {"name": "lstm", "units": 2}},
            {"class_name": "Dense", "config": {"name": "dense", "units": 1}}]}}).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"lstm", b"dense"]
        lg = g.create_group("lstm")
        lg.attrs["weight_names"] = [b"lstm/kernel:0", b"lstm/recurrent_kernel:0", b"lstm/bias:0"]
        lg.create_dataset("lstm/kernel:0", data=rng.uniform(-1, 1, (3, 8)).astype(np.float32), **kernel_kw)
        lg.create_dataset("lstm/recurrent_kernel:0", data=rng.uniform(-1, 1, (2, 8)).astype(np.float32))
        lg.create_dataset("lstm/bias:0", data=np.zeros(8, np.float32))
        dg = g.create_group("dense")
        dg.attrs["weight_names"] = [b"dense/kernel:0", b"dense/labels:0"]
        dg.create_dataset("dense/kernel:0", data=np.arange(2, dtype=np.float32).reshape(2, 1))
        dg.create_dataset("dense/labels:0", data=np.array([b"yes", b"no"], dtype=h5py.string_dtype()))
    return path


def test_a_compressed_dataset_is_read_by_the_child(tmp_path, monkeypatch):
    """A deflate stream can expand a thousandfold: only the child's memory limit bounds it."""
    started = _children(monkeypatch)
    kf = read_keras(_model(tmp_path / "gzip.h5", chunks=(3, 8), compression="gzip"))
    assert len(started) == 1
    plain = read_keras(_model(tmp_path / "plain.h5"))
    assert len(started) == 1
    _same(kf, plain)


def test_a_large_file_is_read_by_the_child(tmp_path, monkeypatch):
    started = _children(monkeypatch)
    path = _model(tmp_path / "m.h5")
    monkeypatch.setattr(hdf5, "IN_PROCESS_MAX_BYTES", path.stat().st_size - 1)
    read_keras(path)
    assert started == [str(path)]


def test_a_dataset_of_text_is_listed_not_read_and_the_rest_carried(tmp_path):
    path = _model(tmp_path / "m.h5")
    conversion = convert(path, tmp_path / "out")
    items = {i.name: i for i in conversion.items}
    assert items["dense/dense/labels:0"].not_carried == {"dense/dense/labels:0": "an HDF5 dataset of dtype object, "
                                                                                  "not numbers"}
    assert np.array_equal(load_carried(tmp_path / "out")["dense/dense/kernel:0"].numpy(), [[0.0], [1.0]])


def test_a_structure_read_over_and_over_ends_in_the_child(tmp_path, monkeypatch):
    """A budget of reads stops pyfive in a loop over the file's own structures; the child decides."""
    started = _children(monkeypatch)
    monkeypatch.setattr(hdf5, "READ_CALLS", 5)
    monkeypatch.setattr(hdf5, "READ_CALL_BYTES", 1 << 40)
    path = _model(tmp_path / "m.h5")
    read_keras(path)
    assert started == [str(path)]


def test_the_bounded_file_ends_at_the_end_and_counts():
    f = hdf5.BoundedFile(b"0123456789", budget=12, calls=10, label="x")
    f.seek(8)
    assert f.read(100) == b"89" and f.read(5) == b""
    f.seek(0)
    assert f.read() == b"0123456789"
    with pytest.raises(hdf5.UseChild):
        f.seek(0)
        f.read(5)
    f = hdf5.BoundedFile(b"0123", budget=100, calls=2, label="x")
    f.read(1), f.read(1)
    with pytest.raises(hdf5.UseChild):
        f.read(1)


@pytest.mark.parametrize("in_process", [True, False], ids=["pyfive", "h5py-child"])
def test_every_refusal_is_the_same_in_both_readers(in_process, tmp_path, monkeypatch):
    if not in_process:
        monkeypatch.setattr(hdf5, "IN_PROCESS_MAX_BYTES", -1)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(24, dtype=np.float32).tobytes())
    path = tmp_path / "ext.h5"
    _model(path)
    with h5py.File(path, "r+") as f:
        del f["model_weights/lstm/lstm/kernel:0"]
        f["model_weights/lstm"].create_dataset("lstm/kernel:0", shape=(3, 8), dtype="f4",
                                               external=[(str(secret), 0, 96)])
    with pytest.raises(KerasFileError, match=r"ext\.h5: layer 'lstm', weight 'lstm/kernel:0': is stored in an "
                                             r"external file"):
        read_keras(path)
    path = _model(tmp_path / "soft.h5")
    with h5py.File(path, "r+") as f:
        f["model_weights/dense/dense/loop"] = h5py.SoftLink("/model_weights/dense/dense/loop")
        f["model_weights/dense"].attrs["weight_names"] = [b"dense/loop"]
    with pytest.raises(KerasFileError, match=r"soft\.h5: layer 'dense': 'loop' is an HDF5 soft link"):
        read_keras(path)
    path = _model(tmp_path / "units.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights/lstm/lstm/kernel:0"]
        f["model_weights/lstm"].create_dataset("lstm/kernel:0", data=np.zeros((3, 7), np.float32))
    with pytest.raises(InputError, match=r"weight 'lstm/kernel:0': units=2 does not match the weight's shape"):
        read_keras(path)
    with pytest.raises(InputError, match=r"weight 'lstm/kernel:0': has 96 bytes; the ceiling is 95"):
        read_keras(_model(tmp_path / "ceiling.h5"), max_tensor_bytes=95)
