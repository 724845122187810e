"""The converter's readers as an attacker tries them: every family of input, mutated and crafted, through
``python -m compat.convert`` (or ``compat.convert.load`` for its output, the ports' loaders for theirs).

Each case runs in a forked child (tests/fuzzing.py: 1 GB of memory above the parent, a time limit) and is
classified:

``read, same``          converted (or loaded) to exactly what the valid file gives (a byte nobody reads)
``silently different``  converted without a word to something else (fatal where the format has checksums
                        or a seal: TF1, .keras, Theano .npz, the converter's output, the ports' checkpoints;
                        counted where it has none: a weight's bytes in HDF5, ONNX and Caffe files)
``clean error``         exit 2 with exactly one ``error:`` line naming the file (an InputError)
``exit 1``              a file that converts and does not verify (counted: a mutation can make a valid file
                        whose extreme weights the float32 check cannot follow)
``traceback``, ``hang``, ``memory``, ``crash``: failures, always.

Seeds are the golden fixtures (tests/golden/convert/, files the real frameworks wrote) and files written
here; the crafted cases are the hostile files of docs/security.md. The default run (tox) gives each family
a few mutations, a few seconds each; ``python -m tests.test_fuzz_convert --cases 300`` (or
``FUZZ_CASES=300 pytest tests/test_fuzz_convert.py``) is the long run, and prints the counts per family.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import pytest

from compat.errors import InputError
from tests.fuzzing import run_isolated
from tests.hostile_files import SEED, THOROUGH, deflated_zeros, mutations, special_files

GOLDEN = Path(__file__).resolve().parent / "golden"
CONVERT = GOLDEN / "convert"

CASES = int(os.environ.get("FUZZ_CASES") or (200 if THOROUGH else 6))
CASE_SECONDS = 20.0
HDF5_SECONDS = 3.0     # the HDF5 child's deadline inside a case (its default is 10 s)
FATAL = ("traceback", "hang", "memory", "crash")
CHECKSUMMED = ("tf1", "keras", "theano", "output", "ports")


# ------------------------------------------------------------------------------------------- running
def _digest_of_output(out: Path) -> str:
    """What a conversion produced, without the source's path: its settings and tensors."""
    from safetensors.numpy import load_file

    obj = json.loads(out.with_suffix(".json").read_text())
    h = hashlib.sha256(json.dumps(dict(obj["content"], source=None), sort_keys=True).encode())
    for k, v in sorted(load_file(str(out.parent / obj["tensor_file"])).items()):
        h.update(k.encode() + v.tobytes())
    return h.hexdigest()


def convert_cli(path: Path, out: Path, *extra: str) -> str:
    """The command line on ``path``: a digest of the output (exit 0), InputError (exit 2 with one error
    line naming the file), AssertionError for anything else it prints or returns."""
    import compat.formats.hdf5 as hdf5_reader
    from compat.convert.__main__ import main

    hdf5_reader.CHILD_TIMEOUT = HDF5_SECONDS
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main([str(path), "--to", str(out), *extra])
    lines = [ln for ln in err.getvalue().splitlines() if ln and not ln.startswith("warning: ")]
    if rc == 2:
        if len(lines) != 1 or not lines[0].startswith("error: "):
            raise AssertionError(f"exit 2 without exactly one error line: {lines[:5]}")
        if path.name not in lines[0] and not any(p.name in lines[0] for p in path.parent.iterdir()):
            raise AssertionError(f"the error does not name the file: {lines[0][:300]}")
        raise InputError(lines[0])
    if rc == 1:
        return "exit 1"
    assert rc == 0, rc
    return _digest_of_output(out)


def load_output(path: Path) -> str:
    """A digest of everything a conversion loads as: its modules and its carried tensors."""
    from compat.convert import load, load_carried

    modules = load(path)
    h = hashlib.sha256()
    for name, m in sorted(modules.items()):
        h.update(name.encode() + json.dumps(m.conversion, sort_keys=True).encode())
        for k, v in sorted(m.state_dict().items()):
            h.update(k.encode() + v.detach().numpy().tobytes())
    for name, v in sorted(load_carried(path).items()):
        h.update(name.encode() + str(v.dtype).encode() + str(tuple(v.shape)).encode() + v.numpy().tobytes())
    return h.hexdigest()


class Family:
    """One reader family: its cases' outcomes, classified; :meth:`check` fails on a fatal one."""

    def __init__(self, name: str, fatal_different: bool):
        self.name, self.fatal_different = name, fatal_different
        self.counts: Dict[str, int] = collections.Counter()
        self.bad: List[str] = []
        self.slowest = 0.0

    def run(self, case: str, fn: Callable, path, *args, baseline: Optional[str] = None,
            must_refuse: bool = False, accept: Tuple[str, ...] = ()) -> str:
        """``must_refuse``: only a clean error passes; ``accept``: only these kinds pass."""
        out = run_isolated(fn, path, *args, timeout=CASE_SECONDS)
        self.slowest = max(self.slowest, out.seconds)
        kind = {"input_error": "clean error", "exception": "traceback", "timeout": "hang"}.get(out.kind, out.kind)
        if kind == "ok":
            kind = ("exit 1" if out.message == "exit 1" else
                    "read, same" if baseline is None or out.message == baseline else "silently different")
        self.counts[kind] += 1
        if kind in FATAL or (kind == "silently different" and self.fatal_different) or \
                (must_refuse and kind != "clean error") or (accept and kind not in accept):
            self.bad.append(f"{case}: {kind}: {out.message[:600]}")
        return kind

    def check(self) -> None:
        print(f"fuzz {self.name}: {sum(self.counts.values())} cases: {dict(self.counts)}; slowest "
              f"{self.slowest:.1f} s")
        assert not self.bad, f"{self.name}: {len(self.bad)} cases failed:\n" + "\n".join(self.bad[:15])


def _mutate_files(family: Family, fn: Callable, files: Dict[str, bytes], folder: Path, target: str,
                  victims: List[str], baseline: Optional[str], n: int, args: Tuple = (),
                  out_arg: bool = True) -> None:
    """Each mutation of one of ``victims`` with the other files intact, through ``fn``."""
    per = max(1, n // len(victims))
    for victim in victims:
        for k, (what, blob) in enumerate(mutations(files[victim], per, SEED + len(victim))):
            case = folder / f"{victim.replace('/', '_')}-{k}"
            shutil.rmtree(case, ignore_errors=True)
            for name, data in files.items():
                (case / name).parent.mkdir(parents=True, exist_ok=True)
                (case / name).write_bytes(blob if name == victim else data)
            extra = (case / "out",) if out_arg else ()
            family.run(f"{victim}: {what}", fn, case / target, *extra, *args, baseline=baseline)
            shutil.rmtree(case, ignore_errors=True)


def _baseline(fn: Callable, path: Path, *args) -> str:
    out = run_isolated(fn, path, *args, timeout=60)
    assert out.kind == "ok" and out.message not in ("", "exit 1"), out
    return out.message


def _fuzz_seeds(family: Family, seeds, tmp: Path, n: int, fn: Callable = None, args: Tuple = ()) -> None:
    """Mutations of each one-file seed (a path under tests/golden/convert or a Path) through the command."""
    fn = fn or convert_cli
    for seed in seeds:
        src = seed if isinstance(seed, Path) else CONVERT / seed
        name = "m" + src.suffix
        base = _baseline(fn, src, tmp / "base", *args)
        _mutate_files(family, fn, {name: src.read_bytes()}, tmp / "mut", name, [name], base, n, args)


def _flip(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for i, v in edits:
        b[i] = v
    return bytes(b)


# ------------------------------------------------------------------------------------------- HDF5
def _write_h5(path: Path, kernel=None, **dataset_kw) -> Path:
    """A Keras 2 .h5 with one LSTM (units 2, input 3); ``kernel``/``dataset_kw`` replace its kernel."""
    import h5py

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "LSTM", "config": {"name": "lstm", "units": 2, "activation": "tanh",
                                              "recurrent_activation": "sigmoid"}}]}}).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"lstm"]
        lg = g.create_group("lstm")
        lg.attrs["weight_names"] = [b"lstm/kernel:0", b"lstm/recurrent_kernel:0", b"lstm/bias:0"]
        if kernel is not None or dataset_kw:
            lg.create_dataset("lstm/kernel:0", **dict(dict(data=kernel) if kernel is not None else {}, **dataset_kw))
        else:
            lg.create_dataset("lstm/kernel:0", data=rng.uniform(-1, 1, (3, 8)).astype(np.float32))
        lg.create_dataset("lstm/recurrent_kernel:0", data=rng.uniform(-1, 1, (2, 8)).astype(np.float32))
        lg.create_dataset("lstm/bias:0", data=np.zeros(8, np.float32))
    return path


def _write_h5_mixed(path: Path) -> Path:
    """A Keras 2 .h5 with an Embedding, a GRU, an LSTM and a Dense layer: the LSTM converts, the rest is carried
    (the GRU makes the conversion partial: ``--partial``)."""
    import h5py

    rng = np.random.default_rng(1)
    u = lambda *shape: rng.uniform(-1, 1, shape).astype(np.float32)  # noqa: E731
    layers = {"embedding": ("Embedding", {"input_dim": 10, "output_dim": 3}, {"embeddings:0": u(10, 3)}),
              "gru": ("GRU", {"units": 3, "return_sequences": True},
                      {"kernel:0": u(3, 9), "recurrent_kernel:0": u(3, 9), "bias:0": u(9)}),
              "lstm": ("LSTM", {"units": 2, "activation": "tanh", "recurrent_activation": "sigmoid"},
                       {"kernel:0": u(3, 8), "recurrent_kernel:0": u(2, 8), "bias:0": u(8)}),
              "dense": ("Dense", {"units": 4}, {"kernel:0": u(2, 4), "bias:0": u(4)})}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": [
            {"class_name": cls, "config": dict(cfg, name=name)} for name, (cls, cfg, _) in layers.items()]}}).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [name.encode() for name in layers]
        for name, (_, _, weights) in layers.items():
            lg = g.create_group(name)
            lg.attrs["weight_names"] = [f"{name}/{w}".encode() for w in weights]
            for w, value in weights.items():
                lg.create_dataset(f"{name}/{w}", data=value)
    return path


def _h5_crafted(tmp: Path) -> Iterator[Tuple[str, Path]]:
    import h5py

    secret = tmp / "secret.bin"
    secret.write_bytes(np.arange(24, dtype=np.float32).tobytes())
    yield "kernel in external storage (any local file)", _write_h5(
        tmp / "external.h5", shape=(3, 8), dtype="f4", external=[(str(secret), 0, 96)])
    yield "kernel in external storage naming /dev/zero", _write_h5(
        tmp / "devzero.h5", shape=(3, 8), dtype="f4", external=[("/dev/zero", 0, 96)])
    yield "kernel compressed with the lzf plugin filter", _write_h5(
        tmp / "lzf.h5", kernel=np.ones((3, 8), np.float32), chunks=(3, 8), compression="lzf")
    yield "kernel of shape (3, 250000000) never written", _write_h5(
        tmp / "unwritten.h5", shape=(3, 250_000_000), dtype="f4", chunks=(1, 1 << 20))
    yield "kernel of shape (3, 16) never written", _write_h5(
        tmp / "unwritten_small.h5", shape=(3, 16), dtype="f4", chunks=(3, 16))
    path = _write_h5(tmp / "vds.h5")
    with h5py.File(path, "r+") as f:
        layout = h5py.VirtualLayout(shape=(3, 8), dtype="f4")
        layout[:] = h5py.VirtualSource(str(tmp / "external.h5"), "model_weights/lstm/lstm/kernel:0", shape=(3, 8))
        del f["model_weights/lstm/lstm/kernel:0"]
        f["model_weights/lstm"].create_virtual_dataset("lstm/kernel:0", layout)
    yield "kernel a virtual dataset", path
    path = _write_h5(tmp / "extlink.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights/lstm/lstm/kernel:0"]
        f["model_weights/lstm/lstm/kernel:0"] = h5py.ExternalLink(str(tmp / "external.h5"),
                                                                   "model_weights/lstm/lstm/kernel:0")
    yield "kernel an external link", path
    path = _write_h5(tmp / "softlink.h5")
    with h5py.File(path, "r+") as f:
        f["model_weights/lstm/lstm/loop"] = h5py.SoftLink("/model_weights/lstm/lstm/loop")
        f["model_weights/lstm"].attrs["weight_names"] = [b"lstm/loop", b"lstm/recurrent_kernel:0", b"lstm/bias:0"]
    yield "a weight that is a soft link to itself", path
    for name, version in (("version of 5,000 digits", b"9" * 5000), ("no version", None),
                          ("version 4.0", b"4.0.0")):
        path = _write_h5(tmp / f"version{len(name)}.h5")
        with h5py.File(path, "r+") as f:
            if version is None:
                del f.attrs["keras_version"]
            else:
                f.attrs["keras_version"] = version
        yield f"keras_version: {name}", path
    path = _write_h5(tmp / "dupkey.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = f.attrs["model_config"].replace('"units": 2', '"units": 2, "units": 3')
    yield "model_config with a duplicate key", path
    for name, special in special_files(tmp):
        link = tmp / f"{special.name}.h5"
        if not link.exists():
            link.symlink_to(special)
        yield name, link


# Flips that crashed, hung or raised inside the HDF5 C library: a clean error, or (pyfive reads around a byte
# h5py trips on) exactly what the intact file gives.
KNOWN_H5_FLIPS = (("keras3/model.h5", 1817, 0x09, "a segfault in HDF5"), ("tf_keras/model.h5", 44873, 0x05, "a segfault"),
                  ("keras3/model.h5", 16096, 0xFF, "a hang"), ("keras3/model.h5", 31026, 0xFF, "a hang"),
                  ("keras3/model.h5", 838, 0x0A, "a RuntimeError"))


def convert_cli_h5py(path: Path, out: Path, *extra: str) -> str:
    """:func:`convert_cli` with every HDF5 file read by h5py in the child (the path for files pyfive cannot
    read or that are too large for it), so that both readers meet every case."""
    import compat.formats.hdf5 as hdf5_reader

    hdf5_reader.IN_PROCESS_MAX_BYTES = -1
    return convert_cli(path, out, *extra)


@pytest.mark.parametrize("reader", [convert_cli, convert_cli_h5py], ids=["pyfive", "h5py-child"])
def test_fuzz_hdf5(tmp_path, reader):
    pytest.importorskip("h5py", reason="h5py is in the test extra")
    if reader is convert_cli:
        pytest.importorskip("pyfive", reason="pyfive is in the keras extra and tox's environments")
    family = Family(f"Keras .h5 ({'pyfive' if reader is convert_cli else 'h5py in the child'})", fatal_different=False)
    for name, path in _h5_crafted(tmp_path):
        family.run(name, reader, path, tmp_path / "out", must_refuse=True)
    mixed = _write_h5_mixed(tmp_path / "mixed.h5")
    family.run("the carried embedding (120 bytes) above --max-tensor-bytes 100", reader, mixed, tmp_path / "out",
               "--partial", "--max-tensor-bytes", "100", must_refuse=True)
    _fuzz_seeds(family, (mixed,), tmp_path, max(2, CASES // 3), reader, ("--partial",))
    for source, at, value, what in KNOWN_H5_FLIPS:
        data = (CONVERT / source).read_bytes()
        path = _write_bytes(tmp_path / f"known{at}.h5", _flip(data, [(at, value)]))
        family.run(f"{source} byte {at} -> {value:#04x} ({what})", reader, path, tmp_path / "out",
                   baseline=_baseline(reader, CONVERT / source, tmp_path / "base"), accept=("clean error", "read, same"))
    _fuzz_seeds(family, ("keras3/model.h5", "tf_keras/model.h5", "tf_keras/keras1_lstm.h5"), tmp_path,
                max(2, CASES // 3), reader)
    family.check()


def test_external_storage_is_refused_naming_the_dataset(tmp_path):
    """The outside file's bytes never reach the output: the dataset is refused by name."""
    pytest.importorskip("h5py", reason="h5py is in the test extra")
    from compat.convert import discover

    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(24, dtype=np.float32).tobytes())
    path = _write_h5(tmp_path / "e.h5", shape=(3, 8), dtype="f4", external=[(str(secret), 0, 96)])
    with pytest.raises(InputError, match=r"e\.h5: layer 'lstm', weight 'lstm/kernel:0': is stored in an external "
                                         r"file"):
        discover(path)
    with pytest.raises(InputError, match="--keras-version"):
        discover(_write_h5(tmp_path / "ok.h5"), keras_version="x")
    assert len(discover(_write_h5(tmp_path / "ok.h5")).specs) == 1


# ------------------------------------------------------------------------------------------- .keras
def _zip(path: Path, members: Dict[str, bytes], raw: Dict[str, Tuple[bytes, int, int]] = ()) -> Path:
    """A .keras archive; ``raw`` members are (stream, method, declared size) written by hand."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    if raw:
        from tests.hostile_files import zip64_archive

        kept = [(n, d, 0, len(d), zlib.crc32(d)) for n, d in members.items()]
        zip64_archive(path, kept + [(n, s, m, size, 0) for n, (s, m, size) in raw.items()])
    return path


def _keras_crafted(tmp: Path) -> Iterator[Tuple[str, Path, Tuple[str, ...]]]:
    src = zipfile.ZipFile(CONVERT / "keras3" / "model.keras")
    members = {n: src.read(n) for n in src.namelist()}
    weights = members["model.weights.h5"]
    yield ("metadata.json renamed metadata.jqon (the version lost)",
           _zip(tmp / "nometa.keras", {("metadata.jqon" if n == "metadata.json" else n): d for n, d in members.items()}),
           ())
    bomb = deflated_zeros(weights, 3 * (1 << 30), block=1 << 22)
    yield ("model.weights.h5 followed by 3 GiB of deflated zeros",
           _zip(tmp / "bomb.keras", {n: d for n, d in members.items() if n != "model.weights.h5"},
                {"model.weights.h5": (bomb, 8, len(weights) + 3 * (1 << 30))}), ())
    yield ("model.weights.h5 declaring 1,000 times its deflated size",
           _zip(tmp / "ratio.keras", {n: d for n, d in members.items() if n != "model.weights.h5"},
                {"model.weights.h5": (zlib.compress(weights)[2:-4], 8, 10_000 * len(weights))}), ())
    yield ("model.weights.h5 in bzip2", _zip(tmp / "bz.keras", {n: d for n, d in members.items()
                                                               if n != "model.weights.h5"},
                                             {"model.weights.h5": (b"BZh9", 12, len(weights))}), ())
    yield ("config.json with a duplicate key",
           _zip(tmp / "dup.keras", dict(members, **{"config.json": members["config.json"].replace(
               b'"units": 4', b'"units": 4, "units": 5', 1)})), ())
    external = _write_h5(tmp / "ext_in_keras.h5", shape=(3, 8), dtype="f4", external=[("/etc/hostname", 0, 96)])
    yield ("model.weights.h5 that is a Keras 2 .h5 with external storage",
           _zip(tmp / "ext.keras", dict(members, **{"model.weights.h5": external.read_bytes()})), ())
    yield ("byte 12626 -> 0xff (a bare EOFError or OSError from zipfile)",
           _write_bytes(tmp / "b12626.keras", _flip((CONVERT / "keras3" / "model.keras").read_bytes(), [(12626, 0xFF)])),
           ())


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_fuzz_keras_archives(tmp_path):
    pytest.importorskip("h5py", reason="h5py is in the test extra")
    family = Family("Keras .keras", fatal_different=True)
    for name, path, extra in _keras_crafted(tmp_path):
        family.run(name, convert_cli, path, tmp_path / "out", *extra, must_refuse=True)
    # the version named by the user: the same archive converts
    nometa = tmp_path / "nometa.keras"
    assert family.run("metadata.json lost, --keras-version 3.15.1", convert_cli, nometa, tmp_path / "out",
                      "--keras-version", "3.15.1") == "read, same"
    _fuzz_seeds(family, ("keras3/model.keras", "tf_keras/model.keras"), tmp_path, max(2, CASES // 2))
    family.check()


# ------------------------------------------------------------------------------------------- ONNX
def _onnx_crafted(tmp: Path) -> Iterator[Tuple[str, Path]]:
    from onnx import helper, numpy_helper, save

    def model(name, W, R, B=None, extra_init=(), node_name="lstm"):
        inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")]
        inputs = ["X", "W", "R"]
        if B is not None:
            inits.append(numpy_helper.from_array(B, "B"))
            inputs.append("B")
        node = helper.make_node("LSTM", inputs, ["Y"], name=node_name, hidden_size=2)
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", 1, [3, 1, 3])],
                              [helper.make_tensor_value_info("Y", 1, None)], initializer=inits + list(extra_init))
        path = tmp / f"{name}.onnx"
        save(helper.make_model(g), str(path))
        return path

    rng = np.random.default_rng(0)
    W, R = rng.uniform(-1, 1, (1, 8, 3)).astype(np.float32), rng.uniform(-1, 1, (1, 8, 2)).astype(np.float32)
    B = np.zeros((1, 16), np.float32)
    yield "W holding 3.28e38", model("huge", np.full_like(W, 3.28e38), R, B)
    yield "W float16 beside float32 R and B", model("mixed", W.astype(np.float16), R, B)
    yield "two initializers named R", model("dup", W, R, B, extra_init=[numpy_helper.from_array(R, "R")])
    yield "W with NaN", model("nan", np.full_like(W, np.nan), R, B)
    neg = numpy_helper.from_array(W, "W")
    neg.dims[1] = -8
    path = model("neg", W, R, B)
    import onnx

    m = onnx.load(str(path))
    m.graph.initializer[0].CopyFrom(neg)
    onnx.save(m, str(path))
    yield "W with a negative dim", path
    data = bytearray((CONVERT / "onnx" / "activations_more.onnx").read_bytes())
    data[49] = 0xF2
    yield "a node name that is not UTF-8", _write_bytes(tmp / "name.onnx", bytes(data))
    # W folded from a Concat chain that doubles a 96-byte initializer 40 times (2^40 x 96 bytes)
    nodes, last = [], "W0"
    for k in range(40):
        nodes.append(helper.make_node("Concat", [last, last], [f"W{k + 1}"], axis=0))
        last = f"W{k + 1}"
    nodes.append(helper.make_node("LSTM", ["X", last, "R"], ["Y"], name="lstm", hidden_size=2))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", 1, [3, 1, 3])],
                          [helper.make_tensor_value_info("Y", 1, None)],
                          initializer=[numpy_helper.from_array(W, "W0"), numpy_helper.from_array(R, "R")])
    save(helper.make_model(g), str(tmp / "doubling.onnx"))
    yield "W folded from a Concat chain that would make 2^40 times 96 bytes", tmp / "doubling.onnx"
    indices = onnx.TensorProto(name="I", data_type=onnx.TensorProto.INT64, dims=[1 << 40])  # no data at all
    nodes = [helper.make_node("Gather", ["W0", "I"], ["W1"], axis=1),
             helper.make_node("LSTM", ["X", "W1", "R"], ["Y"], name="lstm", hidden_size=2)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", 1, [3, 1, 3])],
                          [helper.make_tensor_value_info("Y", 1, None)],
                          initializer=[numpy_helper.from_array(W, "W0"), numpy_helper.from_array(R, "R"),
                                       indices])
    save(helper.make_model(g), str(tmp / "gather.onnx"))
    yield "W gathered with 2^40 indices declared in 0 bytes", tmp / "gather.onnx"


def test_fuzz_onnx(tmp_path):
    pytest.importorskip("onnx", reason="onnx is in the test extra")
    family = Family("ONNX", fatal_different=False)
    for name, path in _onnx_crafted(tmp_path):
        family.run(name, convert_cli, path, tmp_path / "out", must_refuse=True)
    _fuzz_seeds(family, ("onnx/peepholes.onnx", "onnx/bidirectional_lengths.onnx"), tmp_path, max(2, CASES // 2))
    # weights folded from initializers (PyTorch <= 1.4 exports), with a carried initializer beside them
    import onnx
    import torch
    from onnx import numpy_helper

    from tests.test_convert_real_files import _torch14_lstm_onnx

    torch.manual_seed(0)
    folded = _torch14_lstm_onnx(tmp_path / "folded.onnx", torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True), 10)
    model = onnx.load(str(folded))
    model.graph.initializer.append(numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(16, 4), "fc.weight"))
    onnx.save(model, str(folded))
    family.run("a carried initializer (256 bytes) above --max-tensor-bytes 200", convert_cli, folded, tmp_path / "out",
               "--max-tensor-bytes", "200", must_refuse=True)
    _fuzz_seeds(family, (folded,), tmp_path, max(2, CASES // 2))
    family.check()


# ------------------------------------------------------------------------------------------- TF1
def test_fuzz_tf1(tmp_path):
    from compat.formats.tf import load_checkpoint, save_checkpoint

    family = Family("TF1 checkpoints", fatal_different=True)
    variables = load_checkpoint(CONVERT / "tf1" / "basic" / "model.ckpt")
    kernel = "basic/rnn/basic_lstm_cell/kernel"
    for name, change in (("kernel float16 beside a float32 bias", lambda v: v[kernel].astype(np.float16)),
                         ("NaN in the kernel", lambda v: np.full_like(v[kernel], np.nan)),
                         ("kernel holding 3e38", lambda v: np.full_like(v[kernel], 3e38))):
        folder = tmp_path / f"c{len(name)}"
        save_checkpoint(folder / "model.ckpt", dict(variables, **{kernel: change(variables)}))
        family.run(name, convert_cli, folder / "model.ckpt", tmp_path / "out", "--forget-bias", "1",
                   must_refuse=True)
    for seed in ("basic", "lstmcell_peepholes_proj_clips"):
        folder = CONVERT / "tf1" / seed
        files = {p.name: p.read_bytes() for p in folder.iterdir()}
        args = ("--forget-bias", "1") if seed == "basic" else ("--forget-bias", "1", "--cell-clip", "3",
                                                                 "--proj-clip", "2")
        base = _baseline(convert_cli, folder / "model.ckpt", tmp_path / "base", *args)
        _mutate_files(family, convert_cli, files, tmp_path / "mut", "model.ckpt", sorted(files), base,
                      max(2, CASES // 2), args)
    # a GRU, an attention-wrapped LSTM, an embedding, Adam slots (TF's own checkpoint): carried, the
    # conversion partial
    prefix = _mixed_checkpoint(tmp_path / "mixed")
    args = ("--partial",)  # its one LSTM is inside the attention wrapper: no layer takes --forget-bias
    wide = dict(load_checkpoint(prefix), embedding=np.zeros((100, 4), np.float32))  # 1,600 bytes
    save_checkpoint(tmp_path / "wide" / "model.ckpt", wide)
    family.run("a carried embedding (1,600 bytes) above --max-tensor-bytes 1000 (every LSTM tensor below it)",
               convert_cli, tmp_path / "wide" / "model.ckpt", tmp_path / "out", *args, "--max-tensor-bytes", "1000",
               must_refuse=True)
    files = {p.name: p.read_bytes() for p in (tmp_path / "mixed").iterdir()}
    base = _baseline(convert_cli, prefix, tmp_path / "base", *args)
    _mutate_files(family, convert_cli, files, tmp_path / "mut", "model.ckpt", sorted(files), base,
                  max(2, CASES // 2), args)
    family.check()


def test_fuzz_tf1_meta(tmp_path):
    """The .meta graph beside a TF1 checkpoint (tests/golden/convert/tf_meta): damaged protobuf is one error
    naming the file and the field; mutations never crash, hang or exhaust memory (a mutation may change a
    setting the graph states: the graph is then read as it says)."""
    from compat.formats.protobuf_wire import Writer

    family = Family("TF1 .meta graphs", fatal_different=False)
    folder = CONVERT / "tf_meta" / "lstm_cell_clips"
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    node = Writer().string(1, "rnn/while/lstm_cell/add/y").string(2, "Const").message(5, Writer().string(1, "value")
        .message(2, Writer().message(8, Writer().varint(1, 1).message(2, Writer()).length_delimited(4, b"\x00\x00")))).bytes()
    for k, (name, meta) in enumerate((("a length beyond the end", b"\x12\xff\xff\xff\x0f"),
                       ("graph_def as a varint", b"\x10\x01"),
                       ("a node's name as a varint", Writer().message(2, Writer().varint(1, 5)).bytes()),
                       ("a scalar Const of 2 bytes", Writer().message(2, Writer().length_delimited(1, node)).bytes()),
                       ("wire type 7", b"\x17"))):
        case = tmp_path / f"c{k}"
        case.mkdir()
        for f, data in files.items():
            (case / f).write_bytes(meta if f.endswith(".meta") else data)
        family.run(name, convert_cli, case / "model.ckpt", tmp_path / "out", must_refuse=True)
    base = _baseline(convert_cli, folder / "model.ckpt", tmp_path / "base")
    _mutate_files(family, convert_cli, files, tmp_path / "mut", "model.ckpt", ["model.ckpt.meta"], base,
                  max(2, CASES), ())
    family.check()


def test_tf1_meta_size_is_capped_before_reading(tmp_path):
    from compat.errors import InputError
    from compat.formats.tf import meta_graph

    big = tmp_path / "model.ckpt.meta"
    with open(big, "wb") as fh:               # sparse: nothing is written but the size
        fh.truncate(meta_graph.MAX_FILE_BYTES + 1)
    with pytest.raises(InputError, match="model.ckpt.meta.*the cap is"):
        meta_graph.read_meta_graph(big)


def _mixed_checkpoint(folder: Path) -> Path:
    """A copy of TF's recorded checkpoint with a GRU encoder, an attention-wrapped LSTM, an embedding and Adam
    slots (tests/golden/convert/tf_models/seq2seq); returns its prefix."""
    folder.mkdir(parents=True)
    for p in (CONVERT / "tf_models" / "seq2seq").iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    return folder / "model.ckpt"


# ------------------------------------------------------------------------------------------- Caffe
def test_fuzz_caffe(tmp_path):
    from compat.formats.caffemodel import write_caffemodel

    family = Family("Caffe", fatal_different=False)
    rng = np.random.default_rng(3)
    H, n = 3, 2
    blobs = [rng.uniform(-1, 1, (4 * H, n)).astype(np.float32), rng.uniform(-1, 1, 4 * H).astype(np.float32),
             rng.uniform(-1, 1, (4 * H, H)).astype(np.float32)]
    model = tmp_path / "net.caffemodel"
    write_caffemodel(model, {"lstm1": ("LSTM", blobs)})
    for value in ("nan", '"abc"', "{ }", "1000000000000", "-4"):
        proto = tmp_path / f"p{len(value)}.prototxt"
        proto.write_text('layer { name: "lstm1" type: "LSTM" recurrent_param { num_output: %s } }\n' % value)
        family.run(f"--prototxt num_output: {value}", convert_cli, model, tmp_path / "out", "--prototxt", str(proto),
                   must_refuse=True)
    nan = tmp_path / "nan.caffemodel"
    write_caffemodel(nan, {"lstm1": ("LSTM", [np.full_like(blobs[0], np.nan), *blobs[1:]])})
    family.run("NaN blob", convert_cli, nan, tmp_path / "out", must_refuse=True)
    (tmp_path / "empty.caffemodel").write_bytes(b"")
    family.run("empty .caffemodel", convert_cli, tmp_path / "empty.caffemodel", tmp_path / "out", must_refuse=True)
    mixed = tmp_path / "mixed.caffemodel"
    write_caffemodel(mixed, {"lstm1": ("LSTM", blobs), "fc": ("InnerProduct", [rng.uniform(-1, 1, (8, 3)).astype(
        np.float32)])})
    family.run("the carried InnerProduct blob (96 bytes) above --max-tensor-bytes 80", convert_cli, mixed,
               tmp_path / "out", "--max-tensor-bytes", "80", must_refuse=True)
    _fuzz_seeds(family, (model, mixed), tmp_path, CASES)
    family.check()


def test_caffe_net_sizes_are_checked_before_allocating(tmp_path):
    """CaffeNet(read_prototxt(p)) with num_output 10^12 or an input dim of 10^11: refused, nothing allocated."""
    from compat.formats.prototxt import read_prototxt
    from ports.caffe_sequence.model import CaffeNet

    family = Family("Caffe prototxt into a net", fatal_different=False)
    for name, text in (("num_output 10^12", 'input: "x" input_dim: 1 input_dim: 1 input_dim: 10 input_dim: 1\n'
                                            'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                                            'inner_product_param { num_output: 1000000000000 } }'),
                       ("input dim 10^11", 'input: "x" input_dim: 1 input_dim: 1 input_dim: 100000000000 input_dim: 1\n'
                                           'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                                           'inner_product_param { num_output: 10 } }'),
                       ("weights of 2^31 values", 'input: "x" input_dim: 1 input_dim: 65536 input_dim: 1 input_dim: 1\n'
                                                  'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                                                  'inner_product_param { num_output: 65536 } }'),
                       ("num_output nan", 'input: "x" input_dim: 1 input_dim: 1 input_dim: 10 input_dim: 1\n'
                                          'layer { name: "l" type: "Lstm" bottom: "x" top: "y" '
                                          'lstm_param { num_output: nan } }')):
        path = tmp_path / f"n{len(name)}.prototxt"
        path.write_text(text)
        family.run(name, lambda p: CaffeNet(read_prototxt(p), "TEST", source=str(p)), path, must_refuse=True)
    (tmp_path / "empty.caffemodel").write_bytes(b"")
    family.run("CaffeNet.from_files with an empty .caffemodel",
               lambda p: CaffeNet.from_files(GOLDEN.parent.parent / "ports" / "caffe_sequence" / "configs" /
                                             "lstm_short.prototxt", p), tmp_path / "empty.caffemodel",
               must_refuse=True)
    family.check()


# ------------------------------------------------------------------------------------------- Theano
def test_fuzz_theano(tmp_path):
    from ports.theano_imdb.params_io import load_options, save_options
    from tests.hostile_files import npz_members, zip64_archive

    family = Family("Theano .npz / .pkl", fatal_different=True)
    src = GOLDEN / "checkpoints" / "theano_imdb_pytensor" / "saveto_lstm_model.npz"
    params = dict(np.load(src))
    mixed = tmp_path / "mixed.npz"
    np.savez(mixed, **dict(params, lstm_W=params["lstm_W"].astype(np.float16)))
    family.run("lstm_W float16 beside float64 lstm_U", convert_cli, mixed, tmp_path / "out", must_refuse=True)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (112_500_000,)})
    header = buf.getvalue()
    others = npz_members({k: v for k, v in params.items() if k != "lstm_W"})
    stream = deflated_zeros(header, 900_000_000 - 900_000_000 % (1 << 22))
    size = len(header) + 900_000_000 - 900_000_000 % (1 << 22)
    bomb = zip64_archive(tmp_path / "bomb.npz", others + [("lstm_W.npy", stream, 8, size, 0)])
    family.run("lstm_W inflating to 900 MB (rank 1)", convert_cli, bomb, tmp_path / "out", must_refuse=True)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12, 4)})
    lying = zip64_archive(tmp_path / "lying.npz", others + [("lstm_W.npy", deflated_zeros(buf.getvalue(), 0), 8,
                                                             len(buf.getvalue()) + 8 * 4 * 10 ** 12, 0)])
    family.run("lstm_W declaring 32 TB in 200 bytes", convert_cli, lying, tmp_path / "out", must_refuse=True)
    family.run(f"the carried Wemb ({params['Wemb'].nbytes:,} bytes) above --max-tensor-bytes", convert_cli, src,
               tmp_path / "out", "--max-tensor-bytes", str(params["Wemb"].nbytes - 1), must_refuse=True)
    _fuzz_seeds(family, (src,), tmp_path, CASES)
    family.check()
    # the options pickle beside it: no checksum in the format, so a changed value reads as changed
    pickles = Family("Theano options .pkl", fatal_different=False)
    options = save_options(tmp_path / "opts" / "lstm_model.npz", {"dim_proj": 128, "lrate": 0.0001, "optimizer": "adadelta",
                                                                   "encoder": "lstm", "validFreq": 370})
    pkl_base = _baseline(lambda p: json.dumps(load_options(p), sort_keys=True, default=str), options)
    _mutate_files(pickles, lambda p: json.dumps(load_options(p), sort_keys=True, default=str),
                  {"o.pkl": options.read_bytes()}, tmp_path / "pkl", "o.pkl", ["o.pkl"], pkl_base, CASES,
                  out_arg=False)
    pickles.check()


# ------------------------------------------------------------------------------------------- the output
def test_fuzz_converter_output(tmp_path):
    from compat.convert import convert

    family = Family("the converter's output", fatal_different=True)
    # TF's recorded seq2seq checkpoint: its GRUCell encoder converted, the attention-wrapped LSTM and the rest carried
    prefix = next((CONVERT / "tf_models" / "seq2seq").glob("*.index")).with_suffix("")
    conversion = convert(prefix, tmp_path / "conv", partial=True)
    assert conversion.specs and any(i.tensors for i in conversion.items)  # a converted layer and carried tensors
    manifest = tmp_path / "conv.json"
    good = json.loads(manifest.read_text())
    tensor_file = good["tensor_file"]
    files = {"conv.json": manifest.read_bytes(), tensor_file: (tmp_path / tensor_file).read_bytes()}
    base = _baseline(load_output, manifest)
    for name, edit in (("batch_first flipped", lambda e: e.update(batch_first=not e["batch_first"])),
                       ("cell_clip NaN", lambda e: e["options"].update(clip=float("nan")) or
                        e["options"].update(cell_clip=float("nan"))),
                       ("direction reverse", lambda e: e["options"].update(direction="reverse"))):
        obj = json.loads(json.dumps(good))
        edit(obj["content"]["lstms"][0])
        case = tmp_path / f"e{len(name)}"
        case.mkdir()
        (case / "conv.json").write_text(json.dumps(obj))
        (case / tensor_file).write_bytes(files[tensor_file])
        family.run(name, load_output, case / "conv.json", must_refuse=True)
    carried_item = next(i for i, it in enumerate(good["content"]["items"]) if it["carried"])
    for name, edit in (("a carried tensor's listed shape changed",
                        lambda c: c["items"][carried_item]["shapes"].update(
                            {k: [1] for k in c["items"][carried_item]["carried"]})),
                       ("an item's reason rewritten", lambda c: c["items"][carried_item].update(reason="converted")),
                       ("a carried tensor dropped from its item",
                        lambda c: c["items"][carried_item].update(carried=[])),
                       ("a recurrent item marked not recurrent",
                        lambda c: [it.update(recurrent=False) for it in c["items"]])):
        obj = json.loads(json.dumps(good))
        edit(obj["content"])
        case = tmp_path / f"i{len(name)}"
        case.mkdir()
        (case / "conv.json").write_text(json.dumps(obj))
        (case / tensor_file).write_bytes(files[tensor_file])
        family.run(name, load_output, case / "conv.json", must_refuse=True)
    case = tmp_path / "dup"
    case.mkdir()
    (case / "conv.json").write_text(manifest.read_text().replace('"checkpoint_version": 2,',
                                                                  '"checkpoint_version": 2, "checkpoint_version": 2,'))
    (case / tensor_file).write_bytes(files[tensor_file])
    family.run("a duplicate key in the manifest", load_output, case / "conv.json", must_refuse=True)
    _mutate_files(family, load_output, files, tmp_path / "mut", "conv.json", sorted(files), base, CASES,
                  out_arg=False)
    family.check()


# ------------------------------------------------------------------------------------------- the ports
def test_fuzz_port_checkpoints(tmp_path):
    import torch

    from ports.tf_ptb import Config, PTBModel
    from ports.tf_ptb.cli import load_checkpoint, read_tf_npz, save_checkpoint

    family = Family("the ports' checkpoints", fatal_different=True)
    torch.manual_seed(0)
    cfg = Config.preset("test")
    model = PTBModel(cfg)
    history = {"epochs": [1], "learning_rate": [1.0], "train_perplexity": [900.0], "valid_perplexity": [950.0],
               "epoch_seconds": [1.5], "device": "cpu", "test_perplexity": None}
    save_checkpoint(tmp_path / "ptb.pt", model, cfg, "test", 1, history)

    def load(path):
        ck = load_checkpoint(path)
        h = hashlib.sha256(json.dumps({k: v for k, v in ck.items() if k not in ("model", "torch_rng")},
                                      sort_keys=True, default=str).encode())
        for k, v in sorted(ck["model"].items()):
            h.update(k.encode() + v.numpy().tobytes())
        return h.hexdigest()

    manifest = tmp_path / "ptb.pt.json"
    tensor_file = json.loads(manifest.read_text())["tensor_file"]
    files = {"ptb.pt.json": manifest.read_bytes(), tensor_file: (tmp_path / tensor_file).read_bytes()}
    base = _baseline(load, tmp_path / "ptb.pt")
    case = tmp_path / "dup"
    case.mkdir()
    (case / "ptb.pt.json").write_text(manifest.read_text().replace('"epoch": 1', '"epoch": 1, "epoch": 7'))
    (case / tensor_file).write_bytes(files[tensor_file])
    family.run('"epoch": 1, "epoch": 7', load, case / "ptb.pt", must_refuse=True)
    variables = model.export_tf1_variables()
    nan_npz = tmp_path / "nan.npz"
    name = next(k for k in variables if k.endswith("kernel"))
    np.savez(nan_npz, **dict(variables, **{name: np.full_like(variables[name], np.nan)}))
    family.run("--load-tf with a NaN kernel", lambda p: PTBModel(cfg).load_tf1_variables(read_tf_npz(p)), nan_npz,
               must_refuse=True)
    _mutate_files(family, load, files, tmp_path / "mut", "ptb.pt", sorted(files), base, CASES, out_arg=False)
    family.check()


# ------------------------------------------------------------------------------------------- the long run
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.test_fuzz_convert",
                                     description="The converter's fuzz suite, long: prints the counts per family.")
    parser.add_argument("--cases", type=int, default=200, help="mutations per family (FUZZ_SEED sets the seed)")
    args = parser.parse_args(argv)
    os.environ["FUZZ_CASES"] = str(args.cases)
    t0 = time.perf_counter()
    code = pytest.main(["-q", "-s", "-p", "no:cacheprovider", __file__, "-k", "fuzz"])
    print(f"{time.perf_counter() - t0:.0f} s (--cases {args.cases}, FUZZ_SEED {SEED})")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
