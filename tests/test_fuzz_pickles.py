"""Hostile pickles against every pickle loader: the IMDB data set (imdb.pkl, imdb.pkl.gz), the tutorial's
options pickle (read_options, --reload_model's .npz.pkl) and the Shakespeare recipe's vocab.pkl.

Each case runs in a forked child (tests.fuzzing.run_isolated: 5 s, 1 GB above the parent) and must end in
a project InputError naming the file, or load when the mutation left a valid file: never a crash (the
deep-tuple key segfaults CPython without the opcode scan), a hang, an allocation past the cap, or another
exception.
"""
from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest

from compat.errors import InputError
from compat.formats import pickles
from ports.tf_shakespeare.data import load_vocab_file
from ports.theano_imdb.unpickler import dumps_options, load_data_pickles, read_options
from tests.fuzzing import run_isolated
from tests.hostile_files import Tally, fuzz_bytes, special_files, write_sparse

# A tuple nested 10^6 deep used as a dict key: hashing it overflows CPython's C stack (exit 139).
DEEP_KEY = b"\x80\x02})" + b"\x85" * 10 ** 6 + b"Ns."
DEEP_SET = b"\x80\x04\x8f(" + b")" + b"\x85" * 10 ** 6 + b"\x90."


def _shared_list_pickle(refs: int = 300_000, ids: int = 20_000) -> bytes:
    """(x, y) where x is ``refs`` references to one list of ``ids`` word ids: 1 MB on disk, 48 GB copied."""
    body = b"".join(b"J" + i.to_bytes(4, "little") for i in range(ids))
    return (b"\x80\x02]q\x00(" + body + b"eq\x01]q\x02(" + b"h\x01" * refs + b"e]q\x03(" + b"K\x00" * refs
            + b"e\x86q\x04.")


def _imdb(train_x, train_y, test=([[1, 2]], [0]), protocol=2) -> bytes:
    return pickle.dumps((train_x, train_y), protocol=protocol) + pickle.dumps(test, protocol=protocol)


HOSTILE_DATA = {
    "deep tuple as dict key": DEEP_KEY + DEEP_KEY,
    "deep tuple in a set": DEEP_SET + DEEP_SET,
    "deep list": b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".",
    "memo index 2^32 - 1": b"\x80\x02Nr\xff\xff\xff\xff.",
    "300,000 references to one 20,000-id list": _shared_list_pickle() + pickle.dumps(([[1]], [0])),
    "a list containing itself": b"\x80\x02]q\x00h\x00a.",
    "BINUNICODE8 of 2^62 bytes": b"\x80\x04\x8d" + (2 ** 62).to_bytes(8, "little") + b"x.",
    "BINBYTES of 4 GB": b"\x80\x03B\xff\xff\xff\xffx.",
    "FRAME past the end": b"\x80\x04\x95" + (2 ** 40).to_bytes(8, "little") + b"N.",
    "os.system by REDUCE": b"cos\nsystem\n(S'true'\ntR.",
    "builtins.eval by STACK_GLOBAL": b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.",
    "persistent id": b"\x80\x02X\x01\x00\x00\x00xQ.",
    "copyreg extension": b"\x80\x02\x82\x01.",
    "label -1": _imdb([[1, 2]], [-1]),
    "label 1e12": _imdb([[1, 2]], [10 ** 12]),
    "label nested 30 deep": _imdb([[1, 2]], [[[[[[[[[[1]]]]]]]]]]),
    "label 6 deep in lists (within the depth cap)": _imdb([[1, 2]], [[[[[1]]]]]),
    "word id 2^70": _imdb([[1, 2 ** 70]], [0]),
    "word id -3": _imdb([[1, -3]], [0]),
    "float word id": _imdb([[1, 2.5]], [0]),
    "bool label": _imdb([[1]], [True]),
    "string label of 100 kB": _imdb([[1]], ["x" * 100_000]),
    "int of 100,000 digits (protocol 0)": b"(lp0\n(lp1\nI" + b"7" * 100_000 + b"\na.",
    "long of 1 MB": b"\x80\x02\x8b" + (1 << 20).to_bytes(4, "little") + b"\x07" * (1 << 20) + b".",
    "x is a dict": _imdb({"a": 1}, [0]),
    "empty": b"",
    "one split only": pickle.dumps(([[1]], [0]), protocol=2),
}


def test_hostile_imdb_pickles(tmp_path):
    tally = Tally("imdb.pkl (hostile constructions)")
    for name, blob in HOSTILE_DATA.items():
        path = tmp_path / "imdb.pkl"
        path.write_bytes(blob)
        out = tally.run(name, load_data_pickles, path)
        if out.kind == "input_error":
            assert str(path) in out.message, (name, out.message)
    for name, special in special_files(tmp_path):
        tally.run(name, load_data_pickles, special)
    tally.run("a sparse file of 300 MB", load_data_pickles, write_sparse(tmp_path / "big.pkl", 300 << 20))
    tally.check()


def test_the_deep_tuple_key_crashes_the_plain_unpickler(tmp_path):
    """The construction the scan guards against really kills an unguarded reader (so the test above means
    something): pickle.loads dies of a signal."""
    path = tmp_path / "deep.pkl"
    path.write_bytes(DEEP_KEY)
    def unguarded(p):
        import faulthandler

        faulthandler.disable()  # no stack dump from the child
        pickle.loads(p.read_bytes())

    out = run_isolated(unguarded, path, timeout=10)
    assert out.kind == "crash", out


def test_shared_references_are_counted_before_copying(tmp_path):
    """300,000 references to one 20,000-id list: refused by the expanded-size bound in milliseconds."""
    path = tmp_path / "imdb.pkl"
    path.write_bytes(HOSTILE_DATA["300,000 references to one 20,000-id list"])
    out = run_isolated(load_data_pickles, path, timeout=5, memory_mb=1024)
    assert out.kind == "input_error" and "shared reference" in out.message, out
    assert out.seconds < 5


def test_gzip_bomb_is_stopped_at_the_cap(tmp_path):
    """4,300 gzip members of 1 MiB of zeros each (4.5 GB decompressed, 4 MB on disk): refused while
    streaming, never decompressed in memory."""
    member = gzip.compress(bytes(1 << 20), compresslevel=9)
    path = tmp_path / "imdb.pkl.gz"
    path.write_bytes(member * 4300)
    out = run_isolated(load_data_pickles, path, timeout=5, memory_mb=1024)
    assert out.kind == "input_error" and "decompresses to more than" in out.message, out


def test_fuzzed_imdb_pickles(tmp_path):
    valid = _imdb([[5, 6, 7], [8, 9], [10] * 40], [1, 0, 1], ([[2, 3]] * 3, [0, 1, 0]))
    assert load_data_pickles(_write(tmp_path / "ok.pkl", valid))
    tally = Tally("imdb.pkl (truncations, byte flips)")
    fuzz_bytes(tally, load_data_pickles, valid, tmp_path / "imdb.pkl")
    fuzz_bytes(tally, load_data_pickles, gzip.compress(valid), tmp_path / "imdb.pkl.gz", seed=2)
    # protocol 0 (text opcodes) too
    fuzz_bytes(tally, load_data_pickles, _imdb([[5, 6], [7]], [1, 0], protocol=0), tmp_path / "p0.pkl", seed=3)
    tally.check()


def _write(path, blob):
    path.write_bytes(blob)
    return path


OPTIONS_HOSTILE = {
    "deep tuple as dict key": DEEP_KEY,
    "memo index 2^32 - 1": b"\x80\x02Nr\xff\xff\xff\xff.",
    "os.system": b"cos\nsystem\n(S'true'\ntR.",
    "numpy object dtype": pickle.dumps({"ydim": np.array([None], dtype=object)}, protocol=2),
    "a list as an option": pickle.dumps({"dim_proj": [1, 2]}, protocol=2),
    "nested option": pickle.dumps({"dim_proj": {"a": {"b": 1}}}, protocol=2),
    "not a dict": pickle.dumps([1, 2], protocol=2),
    "a 2 MB options file": pickle.dumps({"saveto": "x" * (2 << 20)}, protocol=2),
}


def test_hostile_and_fuzzed_options_pickles(tmp_path):
    tally = Tally("options .npz.pkl")
    path = tmp_path / "lstm_model.npz.pkl"
    for name, blob in OPTIONS_HOSTILE.items():
        path.write_bytes(blob)
        tally.run(name, read_options, path)
    for name, special in special_files(tmp_path):
        tally.run(name, read_options, special)
    valid = dumps_options({"dim_proj": 128, "optimizer": "adadelta", "ydim": 2, "decay_c": 0.0, "reload_model": None})
    assert read_options(_write(path, valid))["ydim"] == 2
    fuzz_bytes(tally, read_options, valid, path)
    tally.check()


VOCAB_HOSTILE = {
    "deep tuple as dict key": DEEP_KEY,
    "a class reference": pickle.dumps([{"a": 1}, {1: os.getcwd}], protocol=2),
    "ids that are strings": pickle.dumps([{"a": "1"}, {}], protocol=2),
    "id 2^70": pickle.dumps([{"a": 2 ** 70}, {}], protocol=2),
    "negative id": pickle.dumps([{"a": -1}, {}], protocol=2),
    "a key that is a tuple": pickle.dumps([{(1, 2): 3}, {}], protocol=2),
    "two words, one id": pickle.dumps([{"a": 1, "b": 1}, {}], protocol=2),
    "one dict only": pickle.dumps({"a": 1}, protocol=2),
}


def test_hostile_and_fuzzed_vocab_pickles(tmp_path):
    tally = Tally("vocab.pkl")
    path = tmp_path / "vocab.pkl"
    for name, blob in VOCAB_HOSTILE.items():
        path.write_bytes(blob)
        tally.run(name, load_vocab_file, path)
    for name, special in special_files(tmp_path):
        tally.run(name, load_vocab_file, special)
    tally.run("a sparse file of 100 MB", load_vocab_file, write_sparse(tmp_path / "big.pkl", 100 << 20))
    vocab2ix = {w: k + 1 for k, w in enumerate(["thou", "art", "more", "than", "fair"])}
    vocab2ix["unknown"] = 0
    valid = pickle.dumps([vocab2ix, {v: k for k, v in vocab2ix.items()}])
    assert load_vocab_file(_write(path, valid))[1] == vocab2ix
    fuzz_bytes(tally, load_vocab_file, valid, path)
    tally.check()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_the_scan_accepts_what_pickle_writes(protocol):
    """Plain data of every protocol loads through the scan exactly as pickle.loads gives it."""
    values = [0, -1, 2 ** 70, 1.5, "x" * 300, None, True, [1, 2, 3], (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4),
              {"a": [1, (2, 3)], 5: [6]}, [[k] * 3 for k in range(300)], [["a"] * 5] * 3, list(range(2000)),
              {(1, (2, (3,))): "nested key"}]
    if protocol >= 3:
        values.append(b"bytes")
    if protocol >= 4:
        values += [{frozenset({1, 2}): {3}}, set(range(50))]
    for value in values:
        blob = pickle.dumps(value, protocol=protocol)
        got, end = pickles.load(blob)
        assert got == value and end == len(blob)


def test_errors_are_input_errors_naming_the_file(tmp_path):
    path = tmp_path / "imdb.pkl"
    path.write_bytes(HOSTILE_DATA["label 1e12"])
    with pytest.raises(InputError, match=r"imdb\.pkl: train y\[0\] is 1000000000000; labels are class numbers"):
        load_data_pickles(path)
    path.write_bytes(HOSTILE_DATA["word id 2^70"])
    with pytest.raises(InputError, match=r"imdb\.pkl: train x\[0\] holds word id an integer of 71 bits"):
        load_data_pickles(path)
    path.write_bytes(HOSTILE_DATA["deep tuple as dict key"])
    with pytest.raises(InputError, match=r"imdb\.pkl: the first \(train\) pickle .* nested more than 8 deep"):
        load_data_pickles(path)
