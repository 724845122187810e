"""Hostile files against the protobuf-based and text readers of compat.formats: TF V2 (index and data),
TF V1, the TF ``checkpoint`` state file, prototxt, caffemodel, and a caffemodel loaded into a net.

Every case runs in a forked child (tests/fuzzing.py) with 1 GB of memory above what the test process
uses and a 5-second limit. Two kinds of case:

* **mutations** of valid files (seeded truncations, bit flips, overwritten, inserted and deleted runs,
  0xff runs that make long varints, stray text tokens): the reader must refuse the file with an
  :class:`compat.errors.InputError` naming it, or read it (a byte nobody checks, a comment changed);
* **constructions**: the hostile files of docs/security.md (prefix-compression bombs, slices claiming
  huge tensors, 80,000-axis blobs, backtracking bait for the text parsers, /dev/zero and FIFOs, ...):
  the reader must refuse each one.

Never an exception of another type, a crash, a timeout or the memory cap. The default run takes about
30 seconds; ``FUZZ_CASES=N`` sets the mutations per reader (default 40, 400 under
``HYPOTHESIS_PROFILE=thorough``, which also adds the files that sit just under each size cap) and
``FUZZ_SEED`` the seed. ``python -m tests.test_fuzz_formats`` runs everything and prints the counts of
cases and outcomes per reader.
"""
from __future__ import annotations

import collections
import functools
import os
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple, Union

import numpy as np
import pytest

from compat.formats import prototxt as prototxt_module
from compat.formats.caffemodel import caffemodel_bytes, read_caffemodel
from compat.formats.protobuf_wire import Writer, encode_varint
from compat.formats.prototxt import read_prototxt
from compat.formats.tf import load_checkpoint, save_checkpoint
from compat.formats.tf.bundle import HEADER, encode_entry
from compat.formats.tf.crc32c import crc32c, mask
from compat.formats.tf.table import FOOTER_SIZE, TABLE_MAGIC, build_block, build_table
from tests.fuzzing import Outcome, run_isolated

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "tf_checkpoint"
CONFIGS = REPO / "ports" / "caffe_sequence" / "configs"
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
CASES = int(os.environ.get("FUZZ_CASES", 400 if THOROUGH else 40))
SEED = int(os.environ.get("FUZZ_SEED", 0))
TIME_LIMIT = 5.0
MEMORY_MB = 1024
MiB = 1 << 20

# A file's content: bytes, or a special file: ("symlink", target), ("fifo",), ("dir",).
Content = Union[bytes, Tuple[str, ...]]


@dataclass
class Case:
    loader: str
    name: str
    files: Dict[str, Content]
    target: str                      # the path, relative to the case's folder, handed to the loader
    must_refuse: bool = True         # constructions must be refused; mutations may stay valid
    category: str = "construction"


@dataclass
class Result:
    case: Case
    outcome: Outcome
    folder: str

    @property
    def failed(self) -> str:
        o = self.outcome
        if o.kind not in ("input_error", "ok"):
            return f"{o.kind}"
        if o.kind == "ok" and self.case.must_refuse:
            return "accepted"
        if o.kind == "input_error" and self.folder not in o.message:
            return "error does not name the file"
        if o.seconds > TIME_LIMIT:
            return f"took {o.seconds:.1f} s"
        return ""


# ------------------------------------------------------------------------------------------- loaders

@functools.lru_cache(maxsize=1)
def _lstm_short_net():
    import torch

    from ports.caffe_sequence.model import CaffeNet

    return CaffeNet(read_prototxt(CONFIGS / "lstm_short.prototxt"), "TEST", generator=torch.Generator().manual_seed(0))


def _caffemodel_into_net(path):
    net = _lstm_short_net()
    return net.copy_trained_layers_from(read_caffemodel(path), str(path))


LOADERS: Dict[str, Callable] = {
    "tf_v2": load_checkpoint,
    "tf_v1": load_checkpoint,
    "tf_state": load_checkpoint,
    "prototxt": read_prototxt,
    "caffemodel": read_caffemodel,
    "caffemodel_into_net": _caffemodel_into_net,
}


# ------------------------------------------------------------------------------------------- valid seeds

def _files_under(folder: Path) -> Dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@functools.lru_cache(maxsize=1)
def _own_v2_checkpoint() -> Dict[str, bytes]:
    """The writer's output: many tensors (several index blocks), strings, float16, int64, a scalar."""
    rng = np.random.default_rng(5)
    variables = {f"layer_{i:02d}/kernel": rng.standard_normal((3, 4)).astype(np.float32) for i in range(24)}
    variables.update({"words": np.array([b"thou", b"", b"art"], dtype=object), "step": np.int64(7),
                      "half": np.arange(3, dtype=np.float16)})
    with tempfile.TemporaryDirectory() as d:
        save_checkpoint(Path(d) / "own.ckpt-1", variables, block_size=256)
        return _files_under(Path(d))


@functools.lru_cache(maxsize=1)
def _seeds() -> Dict[str, List[Tuple[Dict[str, bytes], str, List[str]]]]:
    """Per reader: (files, target, names of the files worth mutating)."""
    v2_golden = _files_under(GOLDEN / "v2")
    v2_own = _own_v2_checkpoint()
    v1 = {"model.ckpt-3": (GOLDEN / "v1" / "model.ckpt-3").read_bytes()}
    model = _caffemodel_seed()
    return {
        "tf_v2": [(v2_golden, "model.ckpt-3", ["model.ckpt-3.index", "model.ckpt-3.data-00000-of-00001"]),
                  (v2_own, "own.ckpt-1", ["own.ckpt-1.index", "own.ckpt-1.data-00000-of-00001"])],
        "tf_v1": [(v1, "model.ckpt-3", ["model.ckpt-3"])],
        "tf_state": [(v2_golden, ".", ["checkpoint"]), (v2_own, ".", ["checkpoint"])],
        "prototxt": [({n: (CONFIGS / n).read_bytes()}, n, [n])
                     for n in ("lstm_short.prototxt", "deep_long.prototxt", "deep_long_solver.prototxt")],
        "caffemodel": [({"m.caffemodel": model}, "m.caffemodel", ["m.caffemodel"]),
                       ({"v1.caffemodel": _caffemodel_seed(legacy_v1=True)}, "v1.caffemodel", ["v1.caffemodel"])],
        "caffemodel_into_net": [({"m.caffemodel": model}, "m.caffemodel", ["m.caffemodel"])],
    }


@functools.lru_cache(maxsize=2)
def _caffemodel_seed(legacy_v1: bool = False) -> bytes:
    net = _lstm_short_net()
    blobs = net.blobs_by_layer()
    if legacy_v1:  # V1 LayerParameter has no Lstm type: the InnerProduct layer alone, with 4-D blobs
        blobs = {"ip1": blobs["ip1"]}
    return caffemodel_bytes(blobs, net.name, legacy_v1=legacy_v1)


# ------------------------------------------------------------------------------------------- mutations

_TEXT_TOKENS = [b"{", b"}", b":", b'"', b"'", b"\\", b"#", b"\n", b"[", b"]", b"<", b"-", b"1e999", b"0x",
                b"9" * 40, b"\xff", b"\x00", b"\\377", b"a { b { c {"]


def _mutate(data: bytes, rng: np.random.Generator, text: bool) -> Tuple[str, bytes]:
    kinds = ["truncate", "flip", "set", "insert", "delete", "ff_run", "zero_run"] + (["token"] * 3 if text else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    n = len(data)
    i = int(rng.integers(max(n, 1)))
    run = int(rng.integers(1, 17))
    if kind == "truncate":
        return f"truncate at {i}", data[:i]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(int(rng.integers(1, 5))):
            j = int(rng.integers(n))
            out[j] ^= 1 << int(rng.integers(8))
        return "flip bits", bytes(out)
    if kind == "set":
        return f"set {run} bytes at {i}", data[:i] + rng.bytes(run) + data[i + run:]
    if kind == "insert":
        return f"insert {run} bytes at {i}", data[:i] + rng.bytes(run) + data[i:]
    if kind == "delete":
        return f"delete {run} bytes at {i}", data[:i] + data[i + run:]
    if kind == "ff_run":
        return f"0xff x{run} at {i}", data[:i] + b"\xff" * run + data[i + run:]
    if kind == "zero_run":
        return f"0x00 x{run} at {i}", data[:i] + b"\x00" * run + data[i + run:]
    tok = _TEXT_TOKENS[int(rng.integers(len(_TEXT_TOKENS)))]
    return f"token {tok[:8]!r} at {i}", data[:i] + tok + data[i:]


def mutation_cases(loader: str, count: int = CASES, seed: int = SEED) -> Iterator[Case]:
    rng = np.random.default_rng([seed, sorted(LOADERS).index(loader)])
    seeds = _seeds()[loader]
    text = loader in ("prototxt", "tf_state")
    for k in range(count):
        files, target, mutable = seeds[k % len(seeds)]
        victim = mutable[int(rng.integers(len(mutable)))]
        what, data = _mutate(files[victim], rng, text)
        yield Case(loader, f"{victim}: {what}", {**files, victim: data}, target, must_refuse=False,
                   category="mutation")


# ------------------------------------------------------------------------------------------- constructions

def _raw_table(block: bytes, last_key: bytes) -> bytes:
    """A table around one raw data block (entries + restart array), with valid checksums."""
    out = bytearray()

    def emit(contents: bytes) -> Tuple[int, int]:
        offset = len(out)
        out.extend(contents + b"\x00" + struct.pack("<I", mask(crc32c(contents + b"\x00"))))
        return offset, len(contents)

    data_handle = emit(block)
    meta_handle = emit(build_block([], 16))
    index_handle = emit(build_block([(last_key, encode_varint(data_handle[0]) + encode_varint(data_handle[1]))], 1))
    footer = b"".join(encode_varint(v) for v in (*meta_handle, *index_handle))
    return bytes(out) + footer.ljust(FOOTER_SIZE - 8, b"\x00") + struct.pack("<Q", TABLE_MAGIC)


def _prefix_bomb_index(prefix_bytes: int = 100_000, file_bytes: int = 220_000) -> bytes:
    """Keys that each extend the previous one (100 KB at first) by one byte: tiny on disk, huge in memory."""
    entries = bytearray()
    entries += b"\x00\x00" + encode_varint(len(HEADER)) + HEADER          # the empty key: the header
    first = b"w" * prefix_bytes
    value = encode_entry(1, (1,), 0, 4, 0)
    entries += b"\x00" + encode_varint(len(first)) + encode_varint(len(value)) + first + value
    key_len = len(first)
    while len(entries) < file_bytes - 100:
        entries += encode_varint(key_len) + b"\x01" + encode_varint(len(value)) + b"x" + value
        key_len += 1
    block = bytes(entries) + struct.pack("<I", 0) + struct.pack("<I", 1)
    return _raw_table(block, b"z")


def _v2(entries: List[Tuple[bytes, bytes]], data: bytes = b"", name: str = "m") -> Dict[str, Content]:
    return {f"{name}.index": build_table([(b"", HEADER)] + entries),
            f"{name}.data-00000-of-00001": data}


def _field(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return encode_varint(number << 3) + encode_varint(value & (2 ** 64 - 1))


def _v1(name: str, shape, dtype_enum: int, slices, tensor_field: int = 5, values_dtype: str = "<f4") -> bytes:
    """A V1 table: '' -> SavedTensorSlices{meta}, then one key per SavedSlice (extents, values)."""
    shape_msg = b"".join(_field(2, _int_field(1, d)) for d in shape)

    def slice_msg(extents):
        return b"".join(_field(1, _int_field(1, s) + (_int_field(2, n) if n >= 0 else b"")) for s, n in extents)

    meta = _field(1, _field(1, name.encode()) + _field(2, shape_msg) + _int_field(3, dtype_enum))
    entries = [(b"", _field(1, meta))]
    for k, (extents, values) in enumerate(slices):
        if tensor_field in (7, 10, 11, 13):
            payload = b"".join(encode_varint(int(v)) for v in values)
        else:
            payload = np.asarray(values, values_dtype).tobytes()
        tensor = _int_field(1, dtype_enum) + _field(tensor_field, payload)
        saved = _field(1, name.encode()) + _field(2, slice_msg(extents)) + _field(3, tensor)
        entries.append((b"\x00" + name.encode() + struct.pack(">I", k), _field(2, saved)))
    return build_table(entries)


def _blob_layer(blob: Writer, name: str = "ip1") -> bytes:
    return Writer().message(100, Writer().string(1, name).string(2, "InnerProduct").message(7, blob)).bytes()


def construction_cases(loader: str) -> Iterator[Case]:
    def case(name, files, target, must_refuse=True):
        return Case(loader, name, files, target, must_refuse)

    ok_v2 = _files_under(GOLDEN / "v2")
    raw = np.arange(2, dtype=np.float32).tobytes()
    if loader == "tf_v2":
        yield case("index keys extending a 100 KB shared prefix (220 KB file)",
                   {"m.index": _prefix_bomb_index(), "m.data-00000-of-00001": b""}, "m")
        yield case("index keys extending a 60 KB shared prefix (220 KB file)",
                   {"m.index": _prefix_bomb_index(60_000), "m.data-00000-of-00001": b""}, "m")
        yield case("rank 254 tensor", _v2([(b"w", encode_entry(1, (1,) * 254, 0, 4, mask(crc32c(raw[:4]))))],
                                          raw[:4]), "m")
        yield case("shape [0, 2**62, 2**62]", _v2([(b"w", encode_entry(1, (0, 2 ** 62, 2 ** 62), 0, 0, 0))]), "m")
        yield case("shape [2**40, 2**40] for 8 bytes", _v2([(b"w", encode_entry(1, (2 ** 40, 2 ** 40), 0, 8, 0))],
                                                           raw), "m")
        yield case("size 2**62 past the shard", _v2([(b"w", encode_entry(1, (2 ** 60,), 0, 2 ** 62, 0))], raw), "m")
        yield case("data checksum mismatch", _v2([(b"w", encode_entry(1, (2,), 0, 8, 12345))], raw), "m")
        yield case("string tensor of 2**40 strings in 8 bytes",
                   _v2([(b"s", encode_entry(7, (2 ** 40,), 0, 8, 0))], raw), "m")
        yield case("255 dimensions", _v2([(b"w", encode_entry(1, (1,) * 255, 0, 4, 0))], raw), "m")
        yield case("non-UTF-8 tensor name", _v2([(b"\xff\xfe", encode_entry(1, (2,), 0, 8, mask(crc32c(raw))))],
                                               raw), "m")
        yield case("index is a symlink to /dev/zero", {"m.index": ("symlink", "/dev/zero")}, "m.index")
        yield case("index is a FIFO", {"m.index": ("fifo",)}, "m.index")
        yield case("data shard is a symlink to /dev/zero",
                   {**_v2([(b"w", encode_entry(1, (2,), 0, 8, mask(crc32c(raw))))]),
                    "m.data-00000-of-00001": ("symlink", "/dev/zero")}, "m")
        yield case("data shard is a FIFO", {**_v2([(b"w", encode_entry(1, (2,), 0, 8, mask(crc32c(raw))))]),
                                            "m.data-00000-of-00001": ("fifo",)}, "m")
        yield case("snappy block declaring 4 GB", {"m.index": _snappy_bomb_index(), "m.data-00000-of-00001": b""},
                   "m")
    elif loader == "tf_v1":
        many = [([], [1.0])] * 10_000  # each slice claims the whole 3.3M-element tensor
        yield case("10,000 slices each covering a 3.3M-element tensor", {"v1": _v1("w", (1820, 1820), 1, many)}, "v1")
        yield case("rank 254 tensor", {"v1": _v1("w", (1,) * 254, 1, [([], [1.0])])}, "v1")
        yield case("shape [0, 2**62, 2**62]", {"v1": _v1("w", (0, 2 ** 62, 2 ** 62), 1, [([], [])])}, "v1")
        yield case("float_val in an int32 tensor", {"v1": _v1("w", (2,), 3, [([], [1.7, 2.0])])}, "v1")
        yield case("int8 value 300 in int_val", {"v1": _v1("w", (2,), 6, [([], [300, 1])], tensor_field=7)}, "v1")
        yield case("overlapping slices", {"v1": _v1("w", (4,), 1, [([(0, 3)], [1, 2, 3]), ([(2, 2)], [4, 5])])},
                   "v1")
        yield case("slices with a hole", {"v1": _v1("w", (4,), 1, [([(0, 2)], [1, 2])])}, "v1")
        yield case("slice outside the tensor", {"v1": _v1("w", (4,), 1, [([(3, 2)], [1, 2])])}, "v1")
        yield case("V1 file is a symlink to /dev/zero", {"v1": ("symlink", "/dev/zero")}, "v1")
        yield case("V1 file is a FIFO", {"v1": ("fifo",)}, "v1")
    elif loader == "tf_state":
        def state(text: bytes) -> Dict[str, Content]:
            return {**ok_v2, "checkpoint": text}

        yield case("model_checkpoint_path + 60,000 spaces + 'b c'",
                   state(b"model_checkpoint_path" + b" " * 60_000 + b"b c"), ".")
        yield case("a non-UTF-8 byte in the path", state(b'model_checkpoint_path: "model.ckpt-\xff3"\n'), ".")
        yield case("an escape that is not UTF-8", state(b'model_checkpoint_path: "model.ckpt-\\3773"\n'), ".")
        yield case("a NUL byte in the path", state(b'model_checkpoint_path: "model\\000.ckpt-3"\n'), ".")
        yield case("the path names /dev/zero", state(b'model_checkpoint_path: "/dev/zero"\n'), ".")
        yield case("a 30,000-digit timestamp",
                   state(b'model_checkpoint_path: "model.ckpt-3"\nlast_preserved_timestamp: ' + b"9" * 30_000 + b"x"),
                   ".")
        yield case("an unquoted path", state(b"model_checkpoint_path: model\n"), ".")
        yield case("state file of 2 MiB", state(b"# " + b"x" * (2 * MiB) + b"\n"), ".")
        yield case("state file is a symlink to /dev/zero", {**ok_v2, "checkpoint": ("symlink", "/dev/zero")}, ".")
        yield case("state file is a FIFO", {**ok_v2, "checkpoint": ("fifo",)}, ".")
        yield case("state file is a directory", {**ok_v2, "checkpoint": ("dir",)}, ".")
    elif loader == "prototxt":
        yield case("a: + 30,000 digits + x", {"p": b"a: " + b"1" * 30_000 + b"x"}, "p")
        yield case("a: + 30,000 digits (an integer over 64 bits)", {"p": b"a: " + b"1" * 30_000 + b"\n"}, "p")
        yield case("60 MB of 'a:1 '", {"p": b"a:1 " * (15 * MiB)}, "p")
        yield case("1 MB of 'a{}' and a stray '}'", {"p": b"a{}" * (MiB // 3) + b"}"}, "p")
        yield case("nesting 100,000 deep", {"p": b"a{" * 100_000 + b"}" * 100_000}, "p")
        yield case("unterminated 1 MB string", {"p": b'a: "' + b"x" * MiB}, "p")
        yield case("1 MB string of escapes, unterminated", {"p": b'a: "' + b"\\x41" * (MiB // 4)}, "p")
        yield case("octal escape above \\377", {"p": b'a: "\\777"'}, "p")
        yield case("leading-zero number with 9", {"p": b"a: 09"}, "p")
        yield case("not UTF-8", {"p": b"a: 1 \xff\xfe"}, "p")
        yield case("file is a symlink to /dev/zero", {"p": ("symlink", "/dev/zero")}, "p")
        yield case("file is a FIFO", {"p": ("fifo",)}, "p")
        yield case("file is a directory", {"p": ("dir",)}, "p")
        if THOROUGH:
            cap = prototxt_module.MAX_BYTES
            yield case("4 MiB of 'a:1 ' (the value cap)", {"p": b"a:1 " * (cap // 4)}, "p")
            yield case("4 MiB of 'a:[]'", {"p": b"a:[]" * (cap // 4)}, "p")
            yield case("4 MiB of '#\\n' comments and a stray '}'", {"p": b"#\n" * (cap // 2 - 1) + b"}"}, "p")
            yield case("4 MiB string of escapes, unterminated", {"p": b'a: "' + b"\\x41" * (cap // 4 - 2)}, "p")
    elif loader == "caffemodel":
        dims = Writer().packed_varints(1, [2 ** 62] * 80_000)
        yield case("BlobShape with 80,000 dims of 2**62 (720 KB)",
                   {"m.caffemodel": _blob_layer(Writer().message(7, dims))}, "m.caffemodel")
        yield case("rank 100 blob", {"m.caffemodel": _blob_layer(Writer().message(7, Writer().packed_varints(1, [1] * 100))
                                                                 .packed_floats(5, [1.0]))}, "m.caffemodel")
        yield case("blob of 2**40 values holding 1",
                   {"m.caffemodel": _blob_layer(Writer().message(7, Writer().packed_varints(1, [2 ** 20, 2 ** 20]))
                                                .packed_floats(5, [1.0]))}, "m.caffemodel")
        yield case("legacy dims of -1", {"m.caffemodel": _blob_layer(Writer().varint(1, -1).varint(2, 3))}, "m.caffemodel")
        yield case("length 2**62 declared", {"m.caffemodel": b"\xa2\x06" + encode_varint(2 ** 62) + b"\x00" * 4},
                   "m.caffemodel")
        empty_blob = Writer().message(7, Writer().message(7, Writer().packed_varints(1, [0]))).bytes()
        yield case("one layer of 200,000 empty blobs",
                   {"m.caffemodel": Writer().length_delimited(100, Writer().string(1, "x").bytes()
                                                              + empty_blob * 200_000).bytes()}, "m.caffemodel")
        yield case("200,000 layers", {"m.caffemodel": Writer().message(100, Writer().string(1, "x")).bytes() * 200_000},
                   "m.caffemodel")
        yield case("a text prototxt", {"m.caffemodel": b'name: "x"\nlayer { }\n'}, "m.caffemodel")
        yield case("file is a symlink to /dev/zero", {"m.caffemodel": ("symlink", "/dev/zero")}, "m.caffemodel")
        yield case("file is a FIFO", {"m.caffemodel": ("fifo",)}, "m.caffemodel")
        yield case("file is a directory", {"m.caffemodel": ("dir",)}, "m.caffemodel")
    elif loader == "caffemodel_into_net":
        net = _lstm_short_net()
        blobs = net.blobs_by_layer()
        w, b = blobs["ip1"][1]
        yield case("InnerProduct weight stored transposed (same count)", {"m.caffemodel": caffemodel_bytes(
            {"ip1": ("InnerProduct", [w.T.copy(), b])})}, "m.caffemodel")
        yield case("one blob too many", {"m.caffemodel": caffemodel_bytes(
            {"ip1": ("InnerProduct", [w, b, b])})}, "m.caffemodel")
        yield case("LSTM blobs of the wrong hidden size", {"m.caffemodel": caffemodel_bytes(
            {"lstm1": ("Lstm", [np.zeros((8, 1), np.float32), np.zeros((8, 2), np.float32),
                                np.zeros(8, np.float32)])})}, "m.caffemodel")
        yield case("NaN weights", {"m.caffemodel": caffemodel_bytes(
            {"ip1": ("InnerProduct", [np.full_like(w, np.nan), b])})}, "m.caffemodel")


def _snappy_bomb_index() -> bytes:
    """A table whose data block is snappy, declaring 4 GB of output in a few bytes."""
    stream = encode_varint(2 ** 32 - 1) + b"\x00a"
    out = bytearray(stream + b"\x01" + struct.pack("<I", mask(crc32c(stream + b"\x01"))))
    meta = build_block([], 16)
    meta_off = len(out)
    out += meta + b"\x00" + struct.pack("<I", mask(crc32c(meta + b"\x00")))
    index = build_block([(b"w", encode_varint(0) + encode_varint(len(stream)))], 1)
    index_off = len(out)
    out += index + b"\x00" + struct.pack("<I", mask(crc32c(index + b"\x00")))
    footer = b"".join(encode_varint(v) for v in (meta_off, len(meta), index_off, len(index)))
    return bytes(out) + footer.ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)


# ------------------------------------------------------------------------------------------- running

def _materialize(case: Case, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, content in case.files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content[0] == "symlink":
            os.symlink(content[1], path)
        elif content[0] == "fifo":
            os.mkfifo(path)
        else:
            path.mkdir()
    return folder / case.target


def run_case(case: Case, root: Path, index: int) -> Result:
    folder = root / f"{case.loader}-{index}"
    path = _materialize(case, folder)
    outcome = run_isolated(LOADERS[case.loader], path, timeout=TIME_LIMIT * 2, memory_mb=MEMORY_MB)
    shutil.rmtree(folder, ignore_errors=True)
    return Result(case, outcome, str(folder))


TALLY: Dict[Tuple[str, str, str], int] = collections.Counter()
SLOWEST: Dict[str, float] = collections.defaultdict(float)


def _run_all(cases, root: Path) -> List[Result]:
    results = []
    for i, c in enumerate(cases):
        r = run_case(c, root, i)
        TALLY[(c.loader, c.category, r.outcome.kind)] += 1
        SLOWEST[c.loader] = max(SLOWEST[c.loader], r.outcome.seconds)
        results.append(r)
    return results


def _report(results: List[Result]) -> str:
    bad = [r for r in results if r.failed]
    return "\n".join(f"{r.case.name}: {r.failed}: {r.outcome}" for r in bad)


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and TALLY:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for line in summary_lines():
                reporter.write_line(line)


def summary_lines() -> List[str]:
    lines = [f"{'reader':22s} {'category':13s} " + " ".join(f"{k:>11s}" for k in ("ok", "input_error", "other"))
             + "  slowest"]
    for loader in LOADERS:
        for category in ("mutation", "construction"):
            counts = {k: n for (ld, cat, k), n in TALLY.items() if ld == loader and cat == category}
            if not counts:
                continue
            other = sum(n for k, n in counts.items() if k not in ("ok", "input_error"))
            lines.append(f"{loader:22s} {category:13s} {counts.get('ok', 0):11d} {counts.get('input_error', 0):11d} "
                         f"{other:11d}  {SLOWEST[loader]:.2f} s")
    return lines


@pytest.mark.parametrize("loader", list(LOADERS))
def test_mutated_files_are_read_or_refused_cleanly(loader, tmp_path):
    results = _run_all(mutation_cases(loader), tmp_path)
    assert not _report(results), _report(results)


@pytest.mark.parametrize("loader", list(LOADERS))
def test_hostile_constructions_are_refused_quickly(loader, tmp_path):
    results = _run_all(construction_cases(loader), tmp_path)
    assert results
    assert not _report(results), _report(results)


def main() -> int:
    t0 = time.perf_counter()
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for loader in LOADERS:
            for kind, cases in (("mutation", mutation_cases(loader)), ("construction", construction_cases(loader))):
                results = _run_all(cases, Path(d))
                for r in results:
                    if r.failed or kind == "construction":
                        print(f"{'FAIL' if r.failed else 'ok  '} {loader:20s} {r.case.name[:70]:70s} "
                              f"{r.outcome.kind:11s} {r.outcome.seconds:5.2f} s  {r.outcome.message[:150]!r}")
                    failures += bool(r.failed)
    print()
    print("\n".join(summary_lines()))
    print(f"{sum(TALLY.values())} cases, {failures} failures, {time.perf_counter() - t0:.0f} s "
          f"(FUZZ_CASES={CASES}, FUZZ_SEED={SEED})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
