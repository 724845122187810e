"""compat.formats.tf (and its crc32c): TF1 checkpoints read and written without TensorFlow.

The oracle for the reader is TensorFlow itself: tests/golden/tf_checkpoint holds a V2 and a V1
checkpoint written by TF's Saver and ``expected.npz``, the values TF's own reader returned for them
(regenerate with ``legacy/record_tf_checkpoint.py``). The writer is checked by round trips here and
against live TensorFlow in tests/legacy/test_live_tf_checkpoint.py.
"""
from __future__ import annotations

import os
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, note, strategies as st
from hypothesis.strategies import composite

from compat.formats.protobuf_wire import Reader, encode_varint, put_varint
from compat.formats.tf import bundle, snappy, table
from compat.formats.tf import crc32c as crc_module
from compat.formats.tf.crc32c import crc32c, crc32c_numpy, mask, unmask
from compat.formats.tf import (CheckpointError, CheckpointNotFoundError, latest_checkpoint, list_variables,
                                  load_checkpoint, load_variable, save_checkpoint)

GOLDEN = Path(__file__).resolve().parent / "golden" / "tf_checkpoint"


def _expected():
    with np.load(GOLDEN / "expected.npz", allow_pickle=False) as z:
        names = [str(n) for n in z["names"]]
        return names, {n: z[f"value/{n}"] for n in names}


def _same(actual: np.ndarray, expected: np.ndarray) -> bool:
    if actual.dtype == object:
        actual = actual.astype("S")
    return actual.dtype == expected.dtype and actual.shape == expected.shape and np.array_equal(actual, expected)


# --------------------------------------------------------------------------------------------- crc32c

@pytest.mark.parametrize("data, expected", [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),           # the CRC-32C check value
    (bytes(32), 0x8A9136AA),              # RFC 3720 B.4 test vectors
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
])
@pytest.mark.parametrize("implementation", ["numpy", "google-crc32c"])
def test_crc32c_known_vectors(data, expected, implementation):
    assert _implementation(implementation)(data) == expected


def _implementation(name: str):
    """The numpy code, or crc32c() on google-crc32c (the test extra installs it; missing, it fails under CI)."""
    if name == "numpy":
        return crc32c_numpy
    if crc_module.BACKEND != name:
        message = "google-crc32c's C extension is not installed (pip install -e '.[fast-crc32c]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return crc32c


@pytest.mark.parametrize("implementation", ["numpy", "google-crc32c"])
def test_crc32c_takes_any_buffer(implementation):
    crc = _implementation(implementation)
    data = np.arange(3000, dtype=np.float32)
    expected = _crc32c_bitwise(data.tobytes())
    assert crc(data) == crc(memoryview(data)) == crc(bytearray(data.tobytes())) == expected
    assert crc(data[::2]) == _crc32c_bitwise(data[::2].tobytes())  # a strided view: its elements in order


def _crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize("implementation", ["numpy", "google-crc32c"])
@given(head=st.binary(min_size=0, max_size=300), extra=st.integers(0, 20000), seed=st.integers(0, 2**32 - 1))
def test_crc32c_vectorized_path_equals_bitwise_definition(implementation, head, extra, seed):
    crc32c = _implementation(implementation)
    data = head + np.random.default_rng(seed).integers(0, 256, extra, dtype=np.uint8).tobytes()
    note(f"len={len(data)}")
    assert crc32c(data) == _crc32c_bitwise(data)
    cut = len(data) // 3
    assert crc32c(data[cut:], crc32c(data[:cut])) == crc32c(data)  # Extend, as crc32c::Extend


@given(st.integers(0, 2**32 - 1))
def test_crc_mask_roundtrip_and_differs(value):
    assert unmask(mask(value)) == value
    assert mask(0) == 0xA282EAD8  # crc32c.h: rotate right by 15, add the constant


# ------------------------------------------------------------------------- real TF-written checkpoints

@pytest.mark.parametrize("form", ["directory", "prefix", "index_file", "data_file"])
def test_reads_tf_written_v2_checkpoint_in_every_path_form(form):
    names, expected = _expected()
    prefix = GOLDEN / "v2" / "model.ckpt-3"
    path = {"directory": GOLDEN / "v2", "prefix": prefix, "index_file": Path(f"{prefix}.index"),
            "data_file": Path(f"{prefix}.data-00000-of-00001")}[form]
    listed = list_variables(path)
    assert [n for n, _ in listed] == names
    assert all(shape == list(expected[n].shape) for n, shape in listed)
    got = load_checkpoint(path)
    for n in names:
        assert _same(got[n], expected[n]), n


def test_reads_tf_written_v1_checkpoint():
    names, expected = _expected()
    got = load_checkpoint(GOLDEN / "v1" / "model.ckpt-3")
    assert sorted(got) == names
    for n in names:
        assert _same(got[n], expected[n]), n


def test_latest_checkpoint_resolves_relative_state_path():
    assert latest_checkpoint(GOLDEN / "v2") == os.path.join(str(GOLDEN / "v2"), "model.ckpt-3")


def test_load_variable_accepts_tensor_suffix_and_names_missing():
    _names, expected = _expected()
    assert _same(load_variable(GOLDEN / "v2", "Model/embedding:0"), expected["Model/embedding"])
    with pytest.raises(KeyError, match="Model/nope"):
        load_variable(GOLDEN / "v2", "Model/nope")


# ------------------------------------------------------------------------------------ writer round trip

_DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.int8, np.uint8, np.int16, np.uint16,
           np.bool_, np.complex64, np.uint32]


@composite
def variable_sets(draw):
    n = draw(st.integers(1, 6))
    names = draw(st.lists(st.text(st.sampled_from("abcAB_/0:-é"), min_size=1, max_size=12), min_size=n,
                          max_size=n, unique=True))
    out = {}
    for name in names:
        kind = draw(st.sampled_from(_DTYPES + ["string"]))
        shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
        seed = draw(st.integers(0, 2**31))
        rng = np.random.default_rng(seed)
        if kind == "string":
            arr = np.empty(shape, dtype=object)
            for idx in np.ndindex(*shape):
                arr[idx] = bytes(rng.integers(0, 256, int(rng.integers(0, 6)), dtype=np.uint8))
        else:
            arr = (rng.standard_normal(shape) * 100).astype(kind)
        out[name] = arr
    return out


@given(variable_sets(), st.sampled_from([64, 262144]))
def test_save_then_load_roundtrip(tmp_path_factory, variables, block_size):
    d = tmp_path_factory.mktemp("rt")
    note({k: (v.dtype, v.shape) for k, v in variables.items()})
    prefix = save_checkpoint(d / "model.ckpt-1", variables, block_size=block_size)
    assert latest_checkpoint(d) == str(d / "model.ckpt-1")
    got = load_checkpoint(d)
    assert sorted(got) == sorted(variables)
    for k, v in variables.items():
        assert got[k].shape == v.shape and got[k].dtype == v.dtype, k
        assert np.array_equal(got[k], v), k
    assert dict(list_variables(prefix)) == {k: list(v.shape) for k, v in variables.items()}


@pytest.mark.parametrize("implementation", ["numpy", "google-crc32c"])
@pytest.mark.parametrize("chunk", [1, 7, 40])
def test_tensors_read_in_chunks_give_tensorflows_values_and_check_every_chunk(tmp_path, monkeypatch, chunk,
                                                                               implementation):
    """A tensor is read, checksummed and copied in chunks of bundle.READ_CHUNK bytes: the values TF wrote, at
    any chunk size, and a byte changed in any chunk (the last one's included) fails the tensor's CRC-32C."""
    if implementation == "numpy":
        monkeypatch.setattr(crc_module, "_FAST_EXTEND", None)
    elif crc_module._FAST_EXTEND is None:
        pytest.fail("google-crc32c is in the test extra; install it to test that path")
    monkeypatch.setattr(bundle, "READ_CHUNK", chunk)
    names, expected = _expected()
    got = load_checkpoint(GOLDEN / "v2")
    assert sorted(got) == names
    for n in names:
        assert _same(got[n], expected[n]), n
    shutil.copytree(GOLDEN / "v2", tmp_path / "v2")
    prefix = str(tmp_path / "v2" / "model.ckpt-3")
    info = max((i for i in bundle.read_index(prefix)[1].values() if i.dtype_enum != bundle.DT_STRING),
               key=lambda i: i.size)
    assert info.size > 2 * chunk  # several chunks
    data = Path(bundle.data_path(prefix, info.shard_id, 1))
    original = data.read_bytes()
    for at in (info.offset, info.offset + info.size // 2, info.offset + info.size - 1):
        spoiled = bytearray(original)
        spoiled[at] ^= 0x10
        data.write_bytes(bytes(spoiled))
        with pytest.raises(CheckpointError, match=f"tensor {info.name!r}: checksum mismatch"):
            load_checkpoint(prefix)
    data.write_bytes(original)


def test_multi_block_index_is_read_through_its_index_block(tmp_path):
    variables = {f"layer_{i:03d}/kernel": np.full((2,), i, np.float32) for i in range(200)}
    save_checkpoint(tmp_path / "m", variables, block_size=128)
    buf = (tmp_path / "m.index").read_bytes()
    index_block = table._read_block(buf, *_index_handle(buf), "x", "index", [len(buf)])
    assert len(list(table._block_entries(index_block, "x", "i", table._Limits(len(buf))))) > 5
    got = load_checkpoint(tmp_path / "m")
    assert all(np.array_equal(got[k], v) for k, v in variables.items())


def test_torch_tensors_and_state_file_forms(tmp_path):
    torch = pytest.importorskip("torch")
    save_checkpoint(tmp_path / "sub" / "a", {"w": torch.arange(3.0)}, write_state=False)
    assert not (tmp_path / "sub" / "checkpoint").exists()
    np.testing.assert_array_equal(load_variable(tmp_path / "sub" / "a", "w"), np.arange(3.0, dtype=np.float32))
    (tmp_path / "sub" / "checkpoint").write_text(
        f'model_checkpoint_path: "{tmp_path}/sub/a"  # absolute, as Saver writes it by default\n'
        'all_model_checkpoint_paths: "a"\n')
    assert latest_checkpoint(tmp_path / "sub") == f"{tmp_path}/sub/a"
    (tmp_path / "sub" / "checkpoint").write_text("model_checkpoint_path: 'we\\151rd\\\"name'\n")
    assert latest_checkpoint(tmp_path / "sub") is None  # named prefix has no files: TF returns None too
    save_checkpoint(tmp_path / "sub" / 'we\x69rd"name', {"x": np.zeros(1)}, write_state=False)
    assert latest_checkpoint(tmp_path / "sub") == str(tmp_path / "sub" / 'weird"name')


def test_writer_rejects_unrepresentable_input(tmp_path):
    with pytest.raises(ValueError, match="'v'.*dtype"):
        save_checkpoint(tmp_path / "m", {"v": np.array([np.datetime64("2020-01-01")])})
    with pytest.raises(ValueError, match="non-empty"):
        save_checkpoint(tmp_path / "m", {"": np.zeros(1)})


# ---------------------------------------------------------------------------------- hand-built tables

def _index_handle(buf: bytes) -> tuple[int, int]:
    cur = Reader(buf[-48:-8])
    cur.varint(), cur.varint()
    return cur.varint(), cur.varint()


def _write_bundle(tmp_path, entries, data=b"", header=b"\x08\x01\x1a\x02\x08\x01", name="m"):
    index = table.build_table([(b"", header)] + entries) if header is not None else table.build_table(entries)
    (tmp_path / f"{name}.index").write_bytes(index)
    (tmp_path / f"{name}.data-00000-of-00001").write_bytes(data)
    return tmp_path / name


def _entry(dtype=1, shape=(2,), offset=0, size=8, crc=None, data=b"", extra=b""):
    if crc is None:
        crc = mask(crc32c(data))
    return bundle.encode_entry(dtype, shape, offset, size, crc) + extra


def test_bfloat16_is_read_as_float32(tmp_path):
    values = np.array([1.5, -2.0, 3.140625], np.float32)
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = _write_bundle(tmp_path, [(b"b", _entry(14, (3,), 0, 6, data=raw))], raw)
    np.testing.assert_array_equal(load_variable(path, "b"), values)


def _snappy_compress_literal_and_copy(data: bytes) -> bytes:
    """A valid snappy stream: the first 8 bytes as a literal, the rest as 1-byte-offset copies when it
    repeats with period 8, else one literal."""
    out = bytearray()
    put_varint(out, len(data))
    if len(data) > 12 and all(data[i] == data[i - 8] for i in range(8, len(data))):
        out += bytes([(8 - 1) << 2]) + data[:8]
        rest = len(data) - 8
        while rest:
            n = min(rest, 11) if rest - min(rest, 11) == 0 or rest - min(rest, 11) >= 4 else rest - 4
            out += bytes([1 | ((n - 4) << 2)]) + bytes([8])
            rest -= n
    else:
        n = len(data) - 1
        if n < 60:
            out += bytes([n << 2])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += data
    return bytes(out)


def _retype_block(buf: bytes, offset: int, size: int, new_contents: bytes, kind: int) -> bytes:
    """Replace the block at (offset, size), fix the handles of a one-data-block table."""
    block = new_contents + bytes([kind])
    trailer = struct.pack("<I", mask(crc32c(block)))
    return buf[:offset] + block + trailer + buf[offset + size + 5:]


def test_snappy_compressed_block_is_decompressed(tmp_path):
    raw = np.arange(4, dtype=np.float32).tobytes()
    entries = [(b"", b"\x08\x01\x1a\x02\x08\x01")] + [(f"v{i:02d}".encode(), _entry(1, (4,), 0, 16, data=raw))
                                                        for i in range(6)]
    block = table.build_block(entries, 16)
    assert snappy.decompress(_snappy_compress_literal_and_copy(block), "x", "t") == block
    periodic = bytes(range(8)) * 5
    assert snappy.decompress(_snappy_compress_literal_and_copy(periodic), "x", "t") == periodic
    # Assemble a table whose single data block is snappy-compressed.
    compressed = _snappy_compress_literal_and_copy(block)
    out = bytearray(compressed + b"\x01" + struct.pack("<I", mask(crc32c(compressed + b"\x01"))))
    meta = table.build_block([], 16)
    meta_off = len(out)
    out += meta + b"\x00" + struct.pack("<I", mask(crc32c(meta + b"\x00")))
    handle = bytearray()
    put_varint(handle, 0)
    put_varint(handle, len(compressed))
    index = table.build_block([(b"v05", bytes(handle))], 1)
    index_off = len(out)
    out += index + b"\x00" + struct.pack("<I", mask(crc32c(index + b"\x00")))
    footer = bytearray()
    for v in (meta_off, len(meta), index_off, len(index)):
        put_varint(footer, v)
    out += bytes(footer) + b"\x00" * (40 - len(footer)) + struct.pack("<Q", table.TABLE_MAGIC)
    (tmp_path / "s.index").write_bytes(bytes(out))
    (tmp_path / "s.data-00000-of-00001").write_bytes(raw)
    got = load_checkpoint(tmp_path / "s")
    assert sorted(got) == [f"v{i:02d}" for i in range(6)]
    np.testing.assert_array_equal(got["v03"], np.arange(4, dtype=np.float32))


@pytest.mark.parametrize("stream, message", [
    (b"\x05\x00a", "produced 1 bytes, declared 5"),
    (b"\xff\xff\xff\xff\x0f\x00a", "impossible"),
    (b"\x08\x04ab\x05\x05", "copy offset"),
    (b"\x02\x0cab", "output exceeds the declared length 2"),
    (b"\x05\x00a\x0c", "literal declares 4 bytes but only 0 remain"),
])
def test_malformed_snappy_streams(stream, message):
    with pytest.raises(CheckpointError, match=message):
        snappy.decompress(stream, "f.index", "block")


@pytest.mark.parametrize("case, message", [
    ("empty", "too short for a table footer"),
    ("bad_magic", "bad table magic"),
    ("truncated", "bad table magic"),
    ("handle_past_eof", "outside the file"),
    ("block_crc", "checksum mismatch"),
    ("unknown_compression", "checksum mismatch|compression type"),
    ("restarts_too_many", "restart points do not fit"),
])
def test_corrupt_table_structure(tmp_path, case, message):
    raw = np.zeros(2, np.float32).tobytes()
    path = _write_bundle(tmp_path, [(b"v", _entry(1, (2,), 0, 8, data=raw))], raw)
    index = Path(f"{path}.index")
    buf = bytearray(index.read_bytes())
    if case == "empty":
        buf = bytearray()
    elif case == "bad_magic":
        buf[-1] ^= 0xFF
    elif case == "truncated":
        buf = buf[:-3]
    elif case == "handle_past_eof":
        footer = bytearray()
        put_varint(footer, 0)
        put_varint(footer, 1)
        put_varint(footer, 10**12)
        put_varint(footer, 10**12)
        buf[-48:-8] = bytes(footer) + b"\x00" * (40 - len(footer))
    elif case == "block_crc":
        buf[3] ^= 0x10
    elif case == "unknown_compression":
        off, size = _index_handle(bytes(buf))
        buf = bytearray(_retype_block(bytes(buf), off, size, bytes(buf[off:off + size]), 7))
    elif case == "restarts_too_many":
        off, size = _index_handle(bytes(buf))
        block = bytes(buf[off:off + size - 4]) + struct.pack("<I", 10**6)
        buf = bytearray(_retype_block(bytes(buf), off, size, block, 0))
    index.write_bytes(bytes(buf))
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(index) in str(info.value)


@pytest.mark.parametrize("case, message", [
    ("varint_overflow", "varint longer than 10 bytes"),
    ("varint_truncated", "truncated varint"),
    ("length_past_end", "declares 65535 bytes but only 0 remain"),
    ("group_wire_type", "unsupported wire type 3"),
    ("negative_dim", "dimension 0 has size -1"),
    ("too_many_dims", "more than 254 dimensions"),
    ("unknown_rank", "unknown rank"),
    ("huge_shape", r"needs more than 2\*\*63 - 1 bytes"),
    ("wrong_size", "needs 4398046511104 bytes, the entry says 8"),
    ("rank_100", "has 100 axes; at most 64 are supported"),
    ("empty_but_huge", r"shape \[0, 4611686018427387904, 4611686018427387904\] needs more than"),
    ("huge_size", "past the end of the shard"),
    ("negative_offset", "negative offset"),
    ("data_crc", "checksum mismatch"),
    ("variant_dtype", "dtype variant"),
    ("partitioned", "partitioned variable"),
    ("shard_id", "shard_id 3 but the header declares 1"),
])
def test_hostile_entries_raise_clear_errors(tmp_path, case, message):
    raw = np.arange(2, dtype=np.float32).tobytes()
    value = _entry(1, (2,), 0, 8, data=raw)
    if case == "varint_overflow":
        value = b"\x08" + b"\xff" * 11 + b"\x01"
    elif case == "varint_truncated":
        value = b"\x08\xff"
    elif case == "length_past_end":
        value = b"\x12\xff\xff\x03"
    elif case == "group_wire_type":
        value = b"\x0b\x0c"
    elif case == "negative_dim":
        value = b"\x08\x01\x12\x0d\x12\x0b\x08" + b"\xff" * 9 + b"\x01"
    elif case == "too_many_dims":
        value = b"\x08\x01\x12" + _varint(255 * 4) + b"\x12\x02\x08\x01" * 255
    elif case == "unknown_rank":
        value = b"\x08\x01\x12\x02\x18\x01"
    elif case == "huge_shape":
        value = _entry(1, (2**40, 2**40), 0, 8, data=raw)
    elif case == "wrong_size":
        value = _entry(1, (2**20, 2**20), 0, 8, data=raw)
    elif case == "rank_100":
        value = _entry(1, (1,) * 100, 0, 4, data=raw[:4])
    elif case == "empty_but_huge":
        value = _entry(1, (0, 2**62, 2**62), 0, 0, data=b"")
    elif case == "huge_size":
        value = _entry(1, (2**40,), 0, 2**42, data=raw)
    elif case == "negative_offset":
        value = b"\x08\x01\x20" + b"\xff" * 9 + b"\x01" + b"\x28\x08"
    elif case == "data_crc":
        value = _entry(1, (2,), 0, 8, crc=mask(crc32c(raw) ^ 1))
    elif case == "variant_dtype":
        value = _entry(21, (2,), 0, 8, data=raw)
    elif case == "partitioned":
        value = _entry(1, (2,), 0, 8, data=raw, extra=b"\x3a\x00")
    elif case == "shard_id":
        value = _entry(1, (2,), 0, 8, data=raw, extra=b"\x18\x03")
    path = _write_bundle(tmp_path, [(b"v", value)], raw)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert time.perf_counter() - t0 < 5
    assert str(path) in str(info.value)


def _varint(v: int) -> bytes:
    return encode_varint(v)


@pytest.mark.parametrize("header, message", [
    (None, "BundleHeaderProto entry .* is missing"),
    (b"\x08\x00", "declares 0 shards"),
    (b"\x08\x01\x10\x01", "big-endian"),
    (b"\x08\x01\x1a\x02\x10\x05", "newer than this reader"),
    # wrong wire types under valid checksums: an error naming the field, not a crash
    (b"\x0a\x01x", "field num_shards has wire type length-delimited; expected varint in bundle header"),
    (b"\x1a\x03\x0a\x01x", "field producer has wire type length-delimited; expected varint in bundle header.version"),
])
def test_bad_bundle_headers(tmp_path, header, message):
    raw = np.zeros(2, np.float32).tobytes()
    path = _write_bundle(tmp_path, [(b"v", _entry(data=raw))], raw, header=header)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_keys_out_of_order_are_corruption(tmp_path):
    raw = np.zeros(2, np.float32).tobytes()
    entries = [(b"", b"\x08\x01"), (b"b", _entry(data=raw)), (b"a", _entry(data=raw))]
    (tmp_path / "m.index").write_bytes(table.build_table(entries))
    (tmp_path / "m.data-00000-of-00001").write_bytes(raw)
    with pytest.raises(CheckpointError, match="keys out of order"):
        load_checkpoint(tmp_path / "m")


def test_missing_files_and_directories(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint here"):
        load_checkpoint(tmp_path / "nothing")
    with pytest.raises(CheckpointNotFoundError, match="no 'checkpoint' state file"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "gone"\n')
    with pytest.raises(CheckpointNotFoundError, match="names .*gone.*no files"):
        load_checkpoint(tmp_path)
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoint").write_text("model_checkpoint_path = [\n")
    with pytest.raises(CheckpointError, match="line 1:23: unexpected character '='"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint").write_text('all_model_checkpoint_paths: "a"\n')
    with pytest.raises(CheckpointError, match="no model_checkpoint_path"):
        latest_checkpoint(tmp_path)
    raw = np.zeros(2, np.float32).tobytes()
    path = _write_bundle(tmp_path, [(b"v", _entry(data=raw))], raw)
    os.remove(f"{path}.data-00000-of-00001")
    with pytest.raises(CheckpointNotFoundError, match="data shard for tensor 'v' is missing"):
        load_checkpoint(path)
    assert list_variables(path) == [("v", [2])]  # metadata needs only the index, as in TF


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    (tmp_path / "junk").write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="bad table magic"):
        load_checkpoint(tmp_path / "junk")


# ------------------------------------------------------------ mutation of real TF-written checkpoint bytes

@composite
def mutations(draw):
    target = draw(st.sampled_from(["index", "data", "v1"]))
    kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "big_varint"]))
    position = draw(st.floats(0, 1, exclude_max=True))
    value = draw(st.integers(0, 255))
    length = draw(st.integers(1, 16))
    return target, kind, position, value, length


def _mutate(buf: bytes, kind: str, position: float, value: int, length: int) -> bytes:
    i = int(position * len(buf))
    if kind == "flip":
        return buf[:i] + bytes([buf[i] ^ (1 << (value % 8))]) + buf[i + 1:]
    if kind == "set":
        return buf[:i] + bytes([value]) * length + buf[i + length:]
    if kind == "truncate":
        return buf[:i]
    if kind == "insert":
        return buf[:i] + bytes([value]) * length + buf[i:]
    if kind == "delete":
        return buf[:i] + buf[i + length:]
    return buf[:i] + b"\xff" * 9 + b"\x7f" + buf[i + 10:]


@given(mutations())
def test_mutated_real_checkpoints_fail_cleanly_or_read_identically(tmp_path_factory, mutation):
    """Any change to a real TF checkpoint either raises CheckpointError or (bytes nobody checks, such
    as the footer's padding) leaves every value exactly as TensorFlow read it: never garbage, never a
    crash, a hang or a huge allocation."""
    target, kind, position, value, length = mutation
    names, expected = _expected()
    d = tmp_path_factory.mktemp("mut")
    shutil.copytree(GOLDEN / "v2", d / "v2")
    shutil.copytree(GOLDEN / "v1", d / "v1")
    file = {"index": d / "v2" / "model.ckpt-3.index", "data": d / "v2" / "model.ckpt-3.data-00000-of-00001",
            "v1": d / "v1" / "model.ckpt-3"}[target]
    original = file.read_bytes()
    mutated = _mutate(original, kind, position, value, length)
    note(f"{target} {kind} at {int(position * len(original))} ({value}, {length}); changed={mutated != original}")
    file.write_bytes(mutated)
    t0 = time.perf_counter()
    try:
        got = load_checkpoint(d / "v2" if target != "v1" else file)
    except CheckpointError as exc:
        assert str(file.name) in str(exc) or "model.ckpt-3" in str(exc)
    else:
        assert sorted(got) == names
        for n in names:
            assert _same(got[n], expected[n]), n
    assert time.perf_counter() - t0 < 5


# ------------------------------------------------------------------------------------ V1, hand-built

def _msg(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value & (2**64 - 1))


def _v1_table(path: Path, name: str, shape, dtype_enum: int, slices) -> None:
    """A V1 table (tensor_slice_writer.h): '' -> SavedTensorSlices{meta}, one key per SavedSlice."""
    shape_msg = b"".join(_msg(2, _int_field(1, d)) for d in shape)

    def slice_msg(extents):
        return b"".join(_msg(1, _int_field(1, s) + (_int_field(2, n) if n >= 0 else b"")) for s, n in extents)

    meta = _msg(1, _msg(1, name.encode()) + _msg(2, shape_msg) + _int_field(3, dtype_enum)
                + b"".join(_msg(4, slice_msg(e)) for e, _ in slices))
    entries = [(b"", _msg(1, meta))]
    for k, (extents, values) in enumerate(slices):
        tensor = _int_field(1, dtype_enum) + _msg(5, np.asarray(values, "<f4").tobytes())
        saved = _msg(1, name.encode()) + _msg(2, slice_msg(extents)) + _msg(3, tensor)
        entries.append((b"\x00slice" + bytes([k]), _msg(2, saved)))
    path.write_bytes(table.build_table(sorted(entries)))


def test_v1_tensor_saved_in_slices_is_assembled(tmp_path):
    full = np.arange(12, dtype=np.float32).reshape(4, 3)
    _v1_table(tmp_path / "v1", "part/w", (4, 3), 1,
              [([(0, 2), (0, -1)], full[:2].ravel()), ([(2, 2), (0, -1)], full[2:].ravel())])
    assert list_variables(tmp_path / "v1") == [("part/w", [4, 3])]
    np.testing.assert_array_equal(load_variable(tmp_path / "v1", "part/w"), full)


def test_v1_slices_that_leave_holes_or_overflow_are_errors(tmp_path):
    _v1_table(tmp_path / "holes", "w", (4, 3), 1, [([(0, 2), (0, -1)], np.zeros(6))])
    with pytest.raises(CheckpointError, match="do not cover the whole tensor"):
        load_checkpoint(tmp_path / "holes")
    _v1_table(tmp_path / "outside", "w", (4, 3), 1, [([(3, 2), (0, -1)], np.zeros(6))])
    with pytest.raises(CheckpointError, match=r"slice \[3, 5\) outside dimension 0"):
        load_checkpoint(tmp_path / "outside")
    _v1_table(tmp_path / "count", "w", (4, 3), 1, [([], np.zeros(5))])
    with pytest.raises(CheckpointError, match="more elements than its 24 bytes of values can hold"):
        load_checkpoint(tmp_path / "count")
    _v1_table(tmp_path / "extra", "w", (4, 3), 1, [([], np.zeros(13))])
    with pytest.raises(CheckpointError, match="13 values for a slice of 12 elements"):
        load_checkpoint(tmp_path / "extra")
    _v1_table(tmp_path / "huge", "w", (2**40, 2**40), 1, [([], np.zeros(1))])
    with pytest.raises(CheckpointError, match="more elements than its"):
        load_checkpoint(tmp_path / "huge")


@composite
def hostile_protos(draw):
    """Random, well-checksummed tables whose entry values are arbitrary protobuf-ish bytes."""
    fields = draw(st.lists(st.tuples(st.integers(1, 8), st.sampled_from([0, 1, 2, 5]), st.binary(max_size=12),
                                     st.integers(0, 2**70)), max_size=6))
    out = bytearray()
    for number, wire, payload, value in fields:
        out += _varint(number << 3 | wire)
        if wire == 0:
            out += _varint(value)
        elif wire == 1:
            out += payload[:8].ljust(8, b"\0")
        elif wire == 5:
            out += payload[:4].ljust(4, b"\0")
        else:
            out += _varint(len(payload)) + payload
    return bytes(out)


@given(hostile_protos(), hostile_protos(), st.booleans())
def test_arbitrary_entry_and_header_protos_never_crash(tmp_path_factory, header, value, v1):
    d = tmp_path_factory.mktemp("proto")
    note((header, value, v1))
    if v1:
        (d / "v1").write_bytes(table.build_table([(b"", header), (b"\x00a", value)]))
        path = d / "v1"
    else:
        path = _write_bundle(d, [(b"v", value)], os.urandom(64), header=header)
    try:
        load_checkpoint(path)
    except CheckpointError:
        pass
