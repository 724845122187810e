"""Hostile .npz archives and text files: the tutorial's parameter npz (load_params, --reload_model), the
--dataset npz of the embedded sample's format, the imdb.pkl.sha256 digest, the Shakespeare corpus and
vocab.json, and the PTB text files.

Every case runs in a forked child (5 s, 1 GB above the parent) and must end in a project InputError
naming the file, or load when the mutation left a valid file.
"""
from __future__ import annotations

import io
import json
import zlib

import numpy as np
import pytest

from compat.formats.npz import read_npz
from ports.tf_ptb.data import read_words
from ports.tf_shakespeare.data import load_corpus, load_vocab_file
from ports.theano_imdb import data as D
from ports.theano_imdb.model import init_params
from ports.theano_imdb.params_io import load_checkpoint, load_params, save_params
from tests.fuzzing import run_isolated
from tests.hostile_files import (Tally, deflated_zeros, fuzz_bytes, npz_members, special_files, write_sparse,
                                 zip64_archive)


def _npy_header(shape, descr="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


BLOCK = 1 << 22


def _bomb(prefix: bytes, zeros: int) -> bytes:
    return deflated_zeros(prefix, zeros - zeros % BLOCK)


@pytest.fixture(scope="module")
def params_npz(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("npz")
    return save_params(tmp / "lstm_model.npz", init_params(30, 4, 2), history_errs=[[0.5, 0.4]])


def test_an_extra_member_of_4_8_gb_is_never_read(tmp_path):
    """4.8 GB of deflated zeros in a 5 MB archive: load_params never touches the member; asking for it is a
    clear error before reading."""
    header = _npy_header((600_000_000,))
    stream = _bomb(header, 4_800_000_000)
    size = len(header) + 4_800_000_000 - 4_800_000_000 % BLOCK
    path = zip64_archive(tmp_path / "bomb.npz", npz_members(init_params(30, 4, 2)) + [("junk.npy", stream, 8, size, 0)])
    assert path.stat().st_size < 6_000_000
    out = run_isolated(load_params, path)
    assert out.kind == "ok" and out.seconds < 5, out
    out = run_isolated(read_npz, path)
    assert out.kind == "input_error" and "'junk'" in out.message and "the cap is" in out.message, out


def _wemb(header: bytes, zeros: int, declared=None):
    """A deflated Wemb member; its CRC is right for small members and for a declared prefix (a member of
    gigabytes is refused before its end, where zip checks the CRC)."""
    if zeros >= BLOCK:
        stream, size = _bomb(header, zeros), len(header) + zeros - zeros % BLOCK
        crc = 0 if declared is None else zlib.crc32(header + bytes(declared - len(header)))
    else:
        stream, size = deflated_zeros(header + bytes(zeros), 0), len(header) + zeros
        crc = zlib.crc32(header + bytes(zeros))
    return ("Wemb.npy", stream, 8, size if declared is None else declared, crc)


HOSTILE_MEMBERS = {
    "Wemb with a header of shape (10^12,)": lambda: _wemb(_npy_header((10 ** 12,)), 800),
    "Wemb with a header of shape (0, 2^62, 2^62)": lambda: _wemb(_npy_header((0, 2 ** 62, 2 ** 62)), 8),
    "Wemb of rank 100": lambda: _wemb(_npy_header((1,) * 100), 8),
    "Wemb of dtype object": lambda: _wemb(_npy_header((1,), "|O"), 8),
    "Wemb of a structured dtype": lambda: _wemb(_npy_header((1,), [("a", "<f8")]), 8),
    "Wemb holding less data than its header says": lambda: _wemb(_npy_header((100,)), 80),
    "Wemb of 2 GB of zeros": lambda: _wemb(_npy_header((250_000_000,)), 2_000_000_000),
    "Wemb with a header of 20 kB": lambda: _wemb(b"\x93NUMPY\x01\x00" + (20_000).to_bytes(2, "little"), 20_000),
    "Wemb with a header nested 4,900 deep": lambda: _wemb(_raw_header(b"{'descr': " + b"(" * 4900 + b")" * 4900 + b"}"), 8),
}


def _raw_header(text: bytes) -> bytes:
    text = text + b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def test_hostile_and_fuzzed_parameter_npz(tmp_path, params_npz):
    tally = Tally("load_params .npz (hostile constructions, truncations, byte flips)")
    params = init_params(30, 4, 2)
    others = npz_members({k: v for k, v in params.items() if k != "Wemb"})
    for k, (name, member) in enumerate(HOSTILE_MEMBERS.items()):
        path = zip64_archive(tmp_path / f"case{k}.npz", others + [member()])
        out = tally.run(name, load_params, path)
        assert f"case{k}.npz" in out.message and "CRC" not in out.message, out
    # a member declaring 928 bytes whose stream would inflate to 2 GB: only the declared bytes are read
    header = _npy_header((100,))
    path = zip64_archive(tmp_path / "lying.npz", others + [_wemb(header, 2_000_000_000, declared=len(header) + 800)])
    out = tally.run("Wemb declaring 928 bytes, its stream inflating to 2 GB", load_params, path, allowed=("ok",))
    assert out.seconds < 5
    np.savez(tmp_path / "nan.npz", **dict(params, lstm_U=np.full_like(params["lstm_U"], np.nan)))
    tally.run("NaN in lstm_U", load_params, tmp_path / "nan.npz")
    for name, special in special_files(tmp_path):
        tally.run(name, load_params, special)
    tally.run("a sparse file of 5 GB", load_params, write_sparse(tmp_path / "sparse.npz", 5 << 30))
    fuzz_bytes(tally, load_params, params_npz.read_bytes(), tmp_path / "fuzzed.npz")
    fuzz_bytes(tally, load_checkpoint, params_npz.read_bytes(), tmp_path / "fuzzed2.npz", seed=5)
    tally.check()


def _sample_npz(path, **override):
    arrays = {"train_ids": np.array([3, 4, 5, 6, 7], np.int32), "train_offsets": np.array([0, 2, 5], np.int64),
              "train_labels": np.array([1, 0], np.int64), "test_ids": np.array([8, 9], np.int32),
              "test_offsets": np.array([0, 1, 2], np.int64), "test_labels": np.array([0, 1], np.int64)}
    arrays.update(override)
    np.savez_compressed(path, **arrays)
    return path


def test_hostile_and_fuzzed_dataset_npz(tmp_path):
    good = _sample_npz(tmp_path / "ok.npz")
    assert D.read_dataset(good)[0] == ([[3, 4], [5, 6, 7]], [1, 0])
    tally = Tally("--dataset .npz (hostile constructions, truncations, byte flips)")
    cases = {
        "offsets not monotonic": dict(train_offsets=np.array([0, 4, 2, 5]), train_labels=np.array([1, 0, 1])),
        "float ids": dict(train_ids=np.array([3.5, 4, 5, 6, 7])),
        "negative id": dict(train_ids=np.array([3, -4, 5, 6, 7], np.int32)),
        "id 2^40": dict(train_ids=np.array([3, 2 ** 40, 5, 6, 7], np.int64)),
        "label -1": dict(train_labels=np.array([-1, 0])),
        "label 10^12": dict(train_labels=np.array([10 ** 12, 0])),
        "offsets past the ids": dict(train_offsets=np.array([0, 2, 50])),
        "offsets not from 0": dict(train_offsets=np.array([1, 2, 5])),
        "2-D ids": dict(train_ids=np.zeros((5, 1), np.int32)),
        "object labels": dict(train_labels=np.array([None, 1], dtype=object)),
    }
    for k, (name, override) in enumerate(cases.items()):
        path = tmp_path / f"case{k}.npz"
        if name == "object labels":
            np.savez(path, **dict(np.load(good), train_labels=override["train_labels"]))
        else:
            _sample_npz(path, **override)
        out = tally.run(name, D.read_dataset, path)
        assert f"case{k}.npz" in out.message, out
    fuzz_bytes(tally, D.read_dataset, good.read_bytes(), tmp_path / "fuzzed.npz")
    tally.check()


def test_digest_files(tmp_path, monkeypatch):
    data = tmp_path / "imdb.pkl"
    data.write_bytes(b"whatever")
    digest = tmp_path / "imdb.pkl.sha256"
    tally = Tally("imdb.pkl.sha256")
    for name, blob in {"empty": b"", "not UTF-8": b"\xff\xfe", "not hexadecimal": b"xyz  imdb.pkl\n",
                       "too short": b"abc123  imdb.pkl\n", "whitespace only": b"   \n\n"}.items():
        digest.write_bytes(blob)
        out = tally.run(name, D.verify_cached, data)
        assert "imdb.pkl.sha256" in out.message, out
    digest.unlink()
    for name, special in special_files(tmp_path):
        digest.symlink_to(special)
        tally.run(f"a {name}", D.verify_cached, data)
        digest.unlink()
    write_sparse(digest, 1 << 30)
    tally.run("a sparse file of 1 GB", D.verify_cached, data)
    tally.check()


def test_vocab_json(tmp_path):
    tally = Tally("vocab.json")
    path = tmp_path / "vocab.json"
    valid = json.dumps({"format": "tf_shakespeare.vocab", "version": 1,
                        "vocab2ix": {"unknown": 0, "thou": 1, "art": 2}}).encode()
    assert load_vocab_file(_write(path, valid))[1]["art"] == 2
    for name, blob in {"nested 200,000 deep": b"[" * 200_000 + b"]" * 200_000, "not UTF-8": b'{"\xff": 0}',
                       "an integer of 100,000 digits": b'{"vocab2ix": {"a": ' + b"9" * 100_000 + b"}}",
                       "ids as strings": b'{"vocab2ix": {"a": "0"}}', "a list": b"[1, 2]"}.items():
        out = tally.run(name, load_vocab_file, _write(path, blob))
        assert "vocab.json" in out.message, out
    for name, special in special_files(tmp_path):
        tally.run(name, load_vocab_file, special)
    tally.run("a sparse file of 100 MB", load_vocab_file, write_sparse(tmp_path / "big.json", 100 << 20))
    fuzz_bytes(tally, load_vocab_file, valid, path)
    tally.check()


def _write(path, blob):
    path.write_bytes(blob)
    return path


def test_text_corpora(tmp_path):
    tally = Tally("Shakespeare corpus and PTB files")
    text = "to be or not to be " * 20
    valid = (tmp_path / "corpus.txt")
    valid.write_text(text)
    assert len(load_corpus(valid, 0, 0)[0]) == 120
    for loader in (lambda p: load_corpus(p, 0, 0), read_words):
        for name, special in special_files(tmp_path):
            tally.run(name, loader, special)
        tally.run("a sparse file of 300 MB", loader, write_sparse(tmp_path / "big.txt", 300 << 20))
        tally.run("not UTF-8", loader, _write(tmp_path / "latin1.txt", b"caf\xe9 " * 10))
        tally.run("missing", loader, tmp_path / "missing.txt")
        fuzz_bytes(tally, loader, text.encode(), tmp_path / "fuzzed.txt", n=8)
    tally.check()
