"""ports.theano_imdb data, files and locations: imdb.py semantics, the restricted unpickler, the tutorial's
npz/pkl files, the download and the embedded sample."""
from __future__ import annotations

import gzip
import io
import os
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.strategies import composite

from ports.theano_imdb import (DataFileError, UnsafePickleError, get_minibatches_idx, init_params, load_data,
                               load_options, load_params, prepare_data, save_options, save_params)
from ports.theano_imdb import data as D
from ports.theano_imdb.params_io import load_checkpoint
from ports.theano_imdb.unpickler import load_data_pickles, read_options

TUTORIAL_NPZ_KEYS = {"Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b", "history_errs", "train_err", "valid_err", "test_err"}


@composite
def datasets(draw):
    """A small imdb.pkl-shaped data set: lists of int word ids (some >= n_words) and 0/1 labels."""
    seed = draw(st.integers(0, 2 ** 32 - 1), label="seed")
    rs = np.random.RandomState(seed)
    n_train = draw(st.integers(1, 40), label="n_train")
    n_test = draw(st.integers(1, 15), label="n_test")
    max_len = draw(st.integers(1, 20), label="max_len")

    def split(n):
        xs = [[int(w) for w in rs.randint(0, 60, size=rs.randint(1, max_len + 1))] for _ in range(n)]
        return xs, [int(v) for v in rs.randint(0, 2, size=n)]

    return split(n_train), split(n_test)


def _write_pkl(path: Path, train, test, protocol=2, compress=False) -> Path:
    blob = pickle.dumps(train, protocol=protocol) + pickle.dumps(test, protocol=protocol)
    path.write_bytes(gzip.compress(blob) if compress else blob)
    return path


# ------------------------------------------------------------------------------ imdb.py semantics
@given(data=datasets(), n_words=st.integers(2, 70), valid_portion=st.sampled_from([0.0, 0.1, 0.05, 0.5]),
       maxlen=st.sampled_from([None, 1, 3, 8, 25]), sort_by_len=st.booleans(), protocol=st.sampled_from([0, 2]),
       rng_seed=st.integers(0, 1000))
def test_load_data_is_imdb_py(tmp_path_factory, data, n_words, valid_portion, maxlen, sort_by_len, protocol, rng_seed):
    (tx, ty), (sx, sy) = data
    path = _write_pkl(tmp_path_factory.mktemp("d") / "imdb.pkl", (tx, ty), (sx, sy), protocol=protocol)
    train, valid, test = load_data(path, n_words=n_words, valid_portion=valid_portion, maxlen=maxlen,
                                   sort_by_len=sort_by_len, rng=np.random.RandomState(rng_seed))
    # Spec, from imdb.py: filter train by len < maxlen, permute, split, UNK-map, stable sort by length.
    keep = [k for k in range(len(tx)) if not maxlen or len(tx[k]) < maxlen]
    fx, fy = [tx[k] for k in keep], [ty[k] for k in keep]
    sidx = np.random.RandomState(rng_seed).permutation(len(fx))
    n_train = int(np.round(len(fx) * (1. - valid_portion)))
    note(f"kept {len(fx)} of {len(tx)}; n_train {n_train}")

    def unk(s):
        return [1 if w >= n_words else w for w in s]

    def expect(xs, ys):
        pairs = [(unk(x), y) for x, y in zip(xs, ys)]
        if sort_by_len:
            pairs = sorted(pairs, key=lambda p: len(p[0]))
        return [p[0] for p in pairs], [p[1] for p in pairs]

    assert train == expect([fx[s] for s in sidx[:n_train]], [fy[s] for s in sidx[:n_train]])
    assert valid == expect([fx[s] for s in sidx[n_train:]], [fy[s] for s in sidx[n_train:]])
    assert test == expect(sx, sy)  # the test set is never filtered by maxlen
    assert all(len(s) < maxlen for s in train[0] + valid[0]) if maxlen else True
    assert all(max(s, default=0) < n_words for s in train[0] + valid[0] + test[0])


@given(data=datasets(), maxlen=st.sampled_from([None, 1, 2, 5, 30]), dtype=st.sampled_from(["float64", "float32"]))
def test_prepare_data_is_imdb_py(data, maxlen, dtype):
    (xs, ys), _ = data
    x, mask, labels = prepare_data(xs, ys, maxlen=maxlen, dtype=dtype)
    kept = [k for k in range(len(xs)) if maxlen is None or len(xs[k]) < maxlen]
    if not kept:
        assert (x, mask, labels) == (None, None, None)
        return
    longest = max(len(xs[k]) for k in kept)
    assert x.dtype == np.int64 and mask.dtype == np.dtype(dtype)
    assert x.shape == mask.shape == (longest, len(kept))
    assert labels == [ys[k] for k in kept]
    for col, k in enumerate(kept):
        n = len(xs[k])
        assert x[:n, col].tolist() == xs[k]  # long sequences are dropped, never cut
        assert not x[n:, col].any()
        assert mask[:n, col].tolist() == [1.0] * n and not mask[n:, col].any()


@given(n=st.integers(0, 60), size=st.integers(1, 20), seed=st.integers(0, 100))
def test_get_minibatches_idx_keeps_the_remainder(n, size, seed):
    batches = get_minibatches_idx(n, size, shuffle=True, rng=np.random.RandomState(seed))
    order = np.arange(n, dtype="int32")
    np.random.RandomState(seed).shuffle(order)
    assert [k for k, _ in batches] == list(range(len(batches)))
    assert np.concatenate([b for _, b in batches] or [np.zeros(0, "int32")]).tolist() == order.tolist()
    assert [len(b) for _, b in batches] == [size] * (n // size) + ([n % size] if n % size else [])


def test_prepare_data_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="labels"):
        prepare_data([[1, 2]], [0, 1])


def test_gzipped_pickle_and_python2_protocols(tmp_path):
    train, test = ([[3, 4, 5], [6]], [1, 0]), ([[7, 8]], [1])
    for protocol in (0, 1, 2):
        for compress in (False, True):
            path = _write_pkl(tmp_path / f"imdb{protocol}.pkl{'.gz' if compress else ''}", train, test, protocol, compress)
            got_train, got_test = load_data_pickles(path)
            assert (got_train, got_test) == ((list(train[0]), list(train[1])), (list(test[0]), list(test[1])))


# ------------------------------------------------------------------------------ restricted unpickler
class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "imdb.pkl"
    path.write_bytes(pickle.dumps(([[1, 2]], [_RunsCode(marker)]), protocol=2) + pickle.dumps(([[1]], [0])))
    with pytest.raises(UnsafePickleError, match=r"refused to load global (posix|os|nt)\.system"):
        load_data(path)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        read_options(path)  # the options reader allows only the tutorial's optimizer names and numpy scalars
    assert not marker.exists()


def test_malformed_truncated_and_missing_files_get_clear_errors(tmp_path):
    good = pickle.dumps(([[1, 2]], [0]), protocol=2)
    cases = {
        "missing.pkl": None,
        "empty.pkl": b"",
        "one_split.pkl": good,
        "truncated.pkl": (good + good)[:-7],
        "garbage.pkl": b"this is not a pickle at all",
        "dict.pkl": pickle.dumps({"x": 1}) + good,
        "floats.pkl": pickle.dumps(([[1.5]], [0])) + good,
        "labels.pkl": pickle.dumps(([[1]], [0, 1])) + good,
    }
    messages = {"missing.pkl": "no such file", "empty.pkl": "truncated or empty", "one_split.pkl": "second",
                "truncated.pkl": "truncated", "garbage.pkl": "not a readable pickle", "dict.pkl": "pair",
                "floats.pkl": "not a list of ints", "labels.pkl": "1 sequences but 2 labels"}
    for name, blob in cases.items():
        path = tmp_path / name
        if blob is not None:
            path.write_bytes(blob)
        with pytest.raises(DataFileError, match=messages[name]) as info:
            load_data(path)
        assert name in str(info.value)


def _tutorial_options_pickle(module="__main__", name="adadelta") -> bytes:
    """What lstm.py's ``pkl.dump(model_options, f, -1)`` writes under Python 2: protocol 2, the optimizer
    function as a GLOBAL reference and ydim as a numpy int64 scalar."""
    options = dict(dim_proj=128, patience=10, max_epochs=100, dispFreq=10, decay_c=0., lrate=0.0001, n_words=10000,
                   optimizer="@@OPTIMIZER@@", encoder="lstm", saveto="lstm_model.npz", validFreq=370,
                   saveFreq=1110, maxlen=100, batch_size=16, valid_batch_size=64, dataset="imdb", noise_std=0.,
                   use_dropout=True, reload_model=None, test_size=500, ydim=np.int64(2))
    blob = pickle.dumps(options, protocol=2)
    placeholder = pickle.dumps("@@OPTIMIZER@@", protocol=2)[2:-1]  # the BINUNICODE opcode and its payload
    placeholder = placeholder[:placeholder.index(b"@@") + len("@@OPTIMIZER@@")]
    assert blob.count(placeholder) == 1
    return blob.replace(placeholder, f"c{module}\n{name}\n".encode())


# Hand-written Python 2 form (protocol 2, str as SHORT_BINSTRING): {'optimizer': <__main__.adadelta>,
# 'ydim': numpy.int64(2), 'dim_proj': 128}, as cPickle writes it.
PY2_OPTIONS = (b"\x80\x02}q\x00(U\toptimizerq\x01c__main__\nadadelta\nq\x02U\x04ydimq\x03"
               b"cnumpy.core.multiarray\nscalar\nq\x04cnumpy\ndtype\nq\x05U\x02i8K\x00K\x01\x87Rq\x06"
               b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbU\x08\x02\x00\x00\x00\x00\x00\x00\x00"
               b"\x86Rq\x07U\x08dim_projK\x80u.")


def test_a_python2_options_pickle_is_read(tmp_path):
    path = tmp_path / "lstm_model.npz.pkl"
    path.write_bytes(PY2_OPTIONS)
    assert load_options(path) == {"optimizer": "adadelta", "ydim": 2, "dim_proj": 128}
    path.write_bytes(PY2_OPTIONS.replace(b"i8", b"O8"))
    with pytest.raises((UnsafePickleError, DataFileError)):
        load_options(path)


@pytest.mark.parametrize("module", ["__main__", "lstm"])
@pytest.mark.parametrize("name", ["adadelta", "rmsprop", "sgd"])
def test_the_tutorials_options_pickle_is_read_with_the_optimizer_by_name(tmp_path, module, name):
    path = tmp_path / "lstm_model.npz.pkl"
    path.write_bytes(_tutorial_options_pickle(module, name))
    options = load_options(path)
    assert options["optimizer"] == name and type(options["optimizer"]) is str
    assert options["ydim"] == 2 and type(options["ydim"]) is int
    assert options["dim_proj"] == 128 and options["reload_model"] is None and options["use_dropout"] is True


def test_options_pickle_refuses_other_globals(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(_tutorial_options_pickle("__main__", "train_lstm"))
    with pytest.raises(UnsafePickleError, match="__main__.train_lstm"):
        load_options(path)
    path.write_bytes(pickle.dumps({"ydim": np.array([object()], dtype=object)}, protocol=2))
    with pytest.raises(UnsafePickleError):
        load_options(path)


def test_options_round_trip(tmp_path):
    from ports.theano_imdb import Adadelta

    save_options(tmp_path / "m.npz", {"optimizer": Adadelta, "ydim": np.int64(2), "decay_c": 0.0, "reload_model": None})
    assert load_options(tmp_path / "m.npz.pkl") == {"optimizer": "adadelta", "ydim": 2, "decay_c": 0.0,
                                                    "reload_model": None}


# ------------------------------------------------------------------------------ npz files
def test_npz_round_trip_with_the_tutorials_keys(tmp_path):
    params = init_params(30, 4, 2)
    history = [[0.5, 0.45], [0.3, 0.35]]
    path = save_params(tmp_path / "lstm_model", params, history_errs=history, train_err=0.1, valid_err=0.3,
                       test_err=0.35)
    assert path.name == "lstm_model.npz"  # numpy.savez appends .npz
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == TUTORIAL_NPZ_KEYS
    loaded = load_params(path)
    assert list(loaded) == ["Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b"]
    for k, v in params.items():
        np.testing.assert_array_equal(loaded[k], v)
    ck = load_checkpoint(path)
    np.testing.assert_array_equal(ck["history_errs"], history)
    assert float(ck["test_err"]) == 0.35
    # An old (pre-May-2015) checkpoint: lstm_b doubled on request.
    np.testing.assert_array_equal(load_params(path, doubled_bias=True)["lstm_b"], 2 * params["lstm_b"])
    # The tutorial's load_params(path, params) form fills the given keys.
    target = {"U": None, "b": None}
    assert set(load_params(path, target)) == {"U", "b"} and target["U"] is not None


def test_bad_npz_files_get_clear_errors(tmp_path):
    params = init_params(10, 2, 2)
    path = save_params(tmp_path / "m.npz", params)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFileError, match="truncated.npz"):
        load_params(truncated)
    with pytest.raises(DataFileError, match="no such"):
        load_params(tmp_path / "absent.npz")
    partial = save_params(tmp_path / "partial.npz", {k: v for k, v in params.items() if k != "lstm_U"})
    with pytest.raises(DataFileError, match="lstm_U is not in the archive"):
        load_params(partial)
    objects = tmp_path / "objects.npz"
    np.savez(objects, **dict(params, Wemb=np.array([{"a": 1}], dtype=object)))
    with pytest.raises(DataFileError, match="pickled"):
        load_params(objects)


# ------------------------------------------------------------------------------ locating and downloading
@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    for var in (D.ENV_DATA_DIR, D.ENV_SHA256, D.ENV_OFFLINE):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(D.ENV_CACHE_DIR, str(tmp_path / "cache"))
    return tmp_path


def _small_pkl(path: Path) -> Path:
    return _write_pkl(path, ([[2, 3, 4], [5, 6]], [1, 0]), ([[7]], [1]))


def test_download_from_a_file_url_with_checksum_and_sidecar(isolated_env):
    src = _small_pkl(isolated_env / "served.pkl")
    url = src.as_uri()
    got = D.locate_dataset("imdb", url=url, log=lambda *a, **k: None)
    assert got.kind == "download" and Path(got.path) == isolated_env / "cache" / "imdb.pkl"
    assert Path(got.path).read_bytes() == src.read_bytes()
    import hashlib

    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert (isolated_env / "cache" / "imdb.pkl.sha256").read_text().split()[0] == digest
    # Later uses come from the cache and are verified against the recorded digest.
    assert D.locate_dataset("imdb", url="http://unused.invalid/").kind == "cache"
    Path(got.path).write_bytes(src.read_bytes() + b"x")
    with pytest.raises(DataFileError, match="SHA-256"):
        D.locate_dataset("imdb")


def test_download_failures_are_clear(isolated_env):
    src = _small_pkl(isolated_env / "served.pkl")
    with pytest.raises(D.DownloadError, match="expected"):
        D.download(src.as_uri(), isolated_env / "a" / "imdb.pkl", sha256="0" * 64, progress=False)
    assert not (isolated_env / "a" / "imdb.pkl").exists()

    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(D.DownloadError, match="could not download .*Name or service not known"):
        D.download(D.TUTORIAL_URL, isolated_env / "b" / "imdb.pkl", opener=offline)

    class Truncated(io.BytesIO):
        headers = {"Content-Length": "1000"}
        status = 200

    with pytest.raises(D.DownloadError, match="truncated: 5 of 1000"):
        D.download("https://x/", isolated_env / "c" / "imdb.pkl", opener=lambda u, timeout: Truncated(b"12345"),
                   progress=False)
    not_data = isolated_env / "notdata.pkl"
    not_data.write_bytes(b"<html>moved</html>")
    with pytest.raises(D.DownloadError, match="not the tutorial's data set"):
        D.download(not_data.as_uri(), isolated_env / "d" / "imdb.pkl", progress=False)
    assert not (isolated_env / "d" / "imdb.pkl").exists()


def test_downloads_are_https_and_checked_before_use(isolated_env):
    """The tutorial's file over https through an opener (a stand-in for the network): its digest checked, and
    plain http refused before anything is fetched."""
    import hashlib

    assert D.TUTORIAL_URL.startswith("https://")
    served = _small_pkl(isolated_env / "served.pkl").read_bytes()
    asked = []

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(served))}
        status = 200

    def opener(url, timeout):
        asked.append(url)
        return Response(served)

    digest = hashlib.sha256(served).hexdigest()
    got = D.download(D.TUTORIAL_URL, isolated_env / "ok" / "imdb.pkl", sha256=digest, opener=opener, progress=False)
    assert got.read_bytes() == served and asked == [D.TUTORIAL_URL]
    with pytest.raises(D.DownloadError, match="SHA-256"):
        D.download(D.TUTORIAL_URL, isolated_env / "bad" / "imdb.pkl", sha256="1" * 64, opener=opener, progress=False)
    assert not (isolated_env / "bad" / "imdb.pkl").exists()
    with pytest.raises(D.DownloadError, match="only https and file URLs"):
        D.download("http://www.iro.umontreal.ca/~lisa/deep/data/imdb.pkl", isolated_env / "h" / "imdb.pkl",
                   opener=opener, progress=False)
    assert asked == [D.TUTORIAL_URL] * 2  # the http URL was never opened


def test_location_order(isolated_env, monkeypatch, capsys):
    explicit = _small_pkl(isolated_env / "mine.pkl")
    env_dir = isolated_env / "envdir"
    env_dir.mkdir()
    _small_pkl(env_dir / "imdb.pkl")
    monkeypatch.setenv(D.ENV_DATA_DIR, str(env_dir))
    assert D.locate_dataset(str(explicit)) == D.DatasetSource("path", str(explicit))
    assert D.locate_dataset(str(isolated_env / "envdir")).kind == "path"  # a directory holding imdb.pkl
    assert D.locate_dataset("imdb") == D.DatasetSource("env", str(env_dir / "imdb.pkl"))
    with pytest.raises(DataFileError, match="no such data file"):
        D.locate_dataset(str(isolated_env / "absent.pkl"))
    monkeypatch.setenv(D.ENV_DATA_DIR, str(isolated_env))
    with pytest.raises(DataFileError, match=D.ENV_DATA_DIR):
        D.locate_dataset("imdb")
    monkeypatch.delenv(D.ENV_DATA_DIR)

    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    got = D.locate_dataset("imdb", opener=offline)
    assert got == D.DatasetSource("embedded", "embedded")
    err = capsys.readouterr().err
    assert "no network" in err and "NOTICE: using the embedded IMDB sample" in err
    monkeypatch.setenv(D.ENV_OFFLINE, "1")
    assert D.locate_dataset("imdb", opener=offline).kind == "embedded"
    assert "could not download" not in capsys.readouterr().err


def test_embedded_sample_is_small_and_well_formed():
    assert D.EMBEDDED_PATH.stat().st_size < 3_000_000
    (tx, ty), (sx, sy) = D.read_dataset("embedded")
    assert len(tx) == 2105 and all(len(s) < 100 for s in tx)
    assert len(sx) == 1000 and max(len(s) for s in sx) >= 100
    assert set(ty) == set(sy) == {0, 1}
    train, valid, test = load_data("embedded", n_words=10000, valid_portion=0.05, maxlen=100,
                                   rng=np.random.RandomState(123))
    assert (len(train[0]), len(valid[0]), len(test[0])) == (2000, 105, 1000)
