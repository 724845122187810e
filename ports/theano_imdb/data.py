"""The IMDB data as DeepLearningTutorials ``code/imdb.py``: loading, splitting, padding, and finding it.

Where the data comes from (:func:`locate_dataset`), in order:

1. an explicit path (``--dataset PATH``, ``train_lstm(dataset=PATH)``) to an ``imdb.pkl`` (or ``.pkl.gz``);
2. the directory named by the environment variable ``THEANO_IMDB_DATA`` (it must hold ``imdb.pkl``);
3. ``imdb.pkl`` in the cache directory (``THEANO_IMDB_CACHE``, else ``$XDG_CACHE_HOME/legacy-lstm/theano_imdb``,
   else ``~/.cache/legacy-lstm/theano_imdb``), downloaded there on first use from the tutorial's URL over
   https (plain http is refused) with a progress bar; the file must read as the tutorial's two pickles
   before it is kept; its SHA-256 is recorded beside it and checked on every later use
   (``THEANO_IMDB_SHA256`` pins the expected digest; ``THEANO_IMDB_OFFLINE=1`` skips the download);
4. the embedded sample shipped in this package (``data/imdb_sample.npz``), with a printed notice.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from compat.atomic import atomic_path, atomic_write_text
from compat.progress import Progress
from compat.errors import FileFormatError
from compat.formats.files import MiB, open_regular, read_text
from compat.formats.npz import read_npz
from ports.theano_imdb.unpickler import (MAX_LABEL, MAX_WORD_ID, DataFileError, UnsafePickleError,
                                         load_data_pickles)

# The tutorial's imdb.py fetches http://www.iro.umontreal.ca/~lisa/deep/data/imdb.pkl; the same file over https.
TUTORIAL_URL = "https://www.iro.umontreal.ca/~lisa/deep/data/imdb.pkl"
DOWNLOAD_SCHEMES = ("https", "file")  # plain http is refused: the file would arrive unauthenticated
DATA_FILE = "imdb.pkl"
ENV_DATA_DIR = "THEANO_IMDB_DATA"
ENV_CACHE_DIR = "THEANO_IMDB_CACHE"
ENV_SHA256 = "THEANO_IMDB_SHA256"
ENV_OFFLINE = "THEANO_IMDB_OFFLINE"
EMBEDDED = "embedded"
EMBEDDED_PATH = Path(__file__).resolve().parent / "data" / "imdb_sample.npz"

Split = Tuple[List[List[int]], List[int]]
DATASET_MEMBER_CAP = 512 * MiB  # one array of a --dataset .npz (the full data set's ids are about 60 MB)
DIGEST_FILE_CAP = 4096


class DownloadError(RuntimeError):
    """The data set could not be downloaded (no network, bad status, size or checksum)."""


# --------------------------------------------------------------------------------------- loading
def _split_from_arrays(path, split: str, ids: np.ndarray, offsets: np.ndarray, labels: np.ndarray) -> Split:
    """One split of the flat sample format, checked: integer arrays, offsets from 0 rising to len(ids),
    ids in [0, MAX_WORD_ID], labels in [0, MAX_LABEL]."""
    for name, a in (("ids", ids), ("offsets", offsets), ("labels", labels)):
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise DataFileError(f"{path}: {split}_{name} must be a one-dimensional integer array; got "
                                f"{a.dtype} of shape {list(a.shape)}")
    if len(offsets) != len(labels) + 1 or int(offsets[0]) != 0 or int(offsets[-1]) != len(ids):
        raise DataFileError(f"{path}: {split}_offsets must run from 0 to len({split}_ids) = {len(ids)} with one "
                            f"entry per label plus one")
    if len(offsets) > 1 and (np.diff(offsets.astype(np.int64)) < 0).any():
        k = int(np.argmax(np.diff(offsets.astype(np.int64)) < 0))
        raise DataFileError(f"{path}: {split}_offsets decreases at entry {k + 1}: the offsets must not decrease")
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) > MAX_WORD_ID):
        bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
        raise DataFileError(f"{path}: {split}_ids holds word id {bad}; ids must lie in [0, {MAX_WORD_ID}]")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) > MAX_LABEL):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise DataFileError(f"{path}: {split}_labels holds {bad}; labels are class numbers in [0, {MAX_LABEL}]")
    flat = ids.tolist()
    offs = offsets.tolist()
    return [flat[offs[k]:offs[k + 1]] for k in range(len(labels))], labels.tolist()


def _load_embedded(path: Path = EMBEDDED_PATH) -> Tuple[Split, Split]:
    """The embedded sample's format: flat integer ids + offsets + labels per split, each member checked
    before it is read (:mod:`compat.formats.npz`); other members are not read."""
    names = [f"{split}_{part}" for split in ("train", "test") for part in ("ids", "offsets", "labels")]
    try:
        z = read_npz(path, names, what="data set archive", max_member_bytes=DATASET_MEMBER_CAP)
    except FileFormatError as e:
        raise DataFileError(str(e)) from None
    return tuple(_split_from_arrays(path, split, z[f"{split}_ids"], z[f"{split}_offsets"], z[f"{split}_labels"])
                 for split in ("train", "test"))


def read_dataset(path: Union[str, os.PathLike]) -> Tuple[Split, Split]:
    """``(train, test)`` from an ``imdb.pkl`` (restricted unpickler) or the embedded marker."""
    if str(path) == EMBEDDED:
        return _load_embedded()
    if str(path).endswith(".npz"):
        return _load_embedded(Path(path))
    return load_data_pickles(path)


def load_data(path: Union[str, os.PathLike] = DATA_FILE, n_words: int = 100000, valid_portion: float = 0.1,
              maxlen: Optional[int] = None, sort_by_len: bool = True,
              rng: Optional[np.random.RandomState] = None, verbose: bool = True) -> Tuple[Split, Split, Split]:
    """``(train, valid, test)``, each ``(x, y)``, exactly as imdb.py ``load_data``.

    ``path``: an ``imdb.pkl``; ``"imdb.pkl"`` / ``"imdb"`` when no such file exists here searches the
    locations of :func:`locate_dataset`; ``"embedded"`` the embedded sample. ``rng`` draws the
    validation split (``numpy.random`` itself when None, as the tutorial).
    """
    if str(path) in (DATA_FILE, "imdb") and not Path(path).is_file():
        path = locate_dataset("imdb", log=print if verbose else (lambda *a, **k: None)).path
    (train_x, train_y), (test_x, test_y) = read_dataset(path)
    rng = np.random if rng is None else rng
    if maxlen:
        # imdb.py: only the train set is filtered, keeping sequences strictly shorter than maxlen.
        keep = [k for k, s in enumerate(train_x) if len(s) < maxlen]
        train_x = [train_x[k] for k in keep]
        train_y = [train_y[k] for k in keep]
    n_samples = len(train_x)
    sidx = rng.permutation(n_samples)
    n_train = int(np.round(n_samples * (1. - valid_portion)))
    valid_x = [train_x[s] for s in sidx[n_train:]]
    valid_y = [train_y[s] for s in sidx[n_train:]]
    train_x = [train_x[s] for s in sidx[:n_train]]
    train_y = [train_y[s] for s in sidx[:n_train]]

    def remove_unk(xs):
        # [[1 if w >= n_words else w for w in sen] for sen in xs], through one flat array.
        lengths = [len(s) for s in xs]
        flat = np.fromiter(itertools.chain.from_iterable(xs), dtype=np.int64, count=sum(lengths))
        flat[flat >= n_words] = 1
        flat = flat.tolist()
        bounds = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).tolist()
        return [flat[bounds[k]:bounds[k + 1]] for k in range(len(xs))]

    train_x, valid_x, test_x = remove_unk(train_x), remove_unk(valid_x), remove_unk(test_x)

    if sort_by_len:
        # sorted() is stable: ties keep their order, as in the tutorial's len_argsort.
        def by_len(xs, ys):
            order = sorted(range(len(xs)), key=lambda k: len(xs[k]))
            return [xs[k] for k in order], [ys[k] for k in order]

        test_x, test_y = by_len(test_x, test_y)
        valid_x, valid_y = by_len(valid_x, valid_y)
        train_x, train_y = by_len(train_x, train_y)
    return (train_x, list(train_y)), (valid_x, list(valid_y)), (test_x, list(test_y))


def prepare_data(seqs: Sequence[Sequence[int]], labels: Sequence[int], maxlen: Optional[int] = None,
                 dtype="float64"):
    """``(x [maxlen, n] int64, mask [maxlen, n] dtype, labels)`` as imdb.py ``prepare_data``.

    Right-padded with 0, time-major. With ``maxlen``, sequences of length >= maxlen are dropped (not
    cut), and ``(None, None, None)`` is returned when none is left. ``dtype`` is Theano's floatX.
    """
    lengths = [len(s) for s in seqs]
    labels = list(labels)
    if len(lengths) != len(labels):
        raise ValueError(f"prepare_data: {len(lengths)} sequences but {len(labels)} labels")
    if maxlen is not None:
        keep = [k for k, n in enumerate(lengths) if n < maxlen]
        seqs = [seqs[k] for k in keep]
        labels = [labels[k] for k in keep]
        lengths = [lengths[k] for k in keep]
        if len(lengths) < 1:
            return None, None, None
    if len(lengths) == 0:
        raise ValueError("prepare_data: no sequences")
    n_samples = len(seqs)
    longest = int(np.max(lengths))
    x = np.zeros((longest, n_samples), dtype=np.int64)
    x_mask = np.zeros((longest, n_samples), dtype=dtype)
    for idx, s in enumerate(seqs):
        x[:lengths[idx], idx] = s
        x_mask[:lengths[idx], idx] = 1.
    return x, x_mask, labels


def get_minibatches_idx(n: int, minibatch_size: int, shuffle: bool = False,
                        rng: Optional[np.random.RandomState] = None) -> List[Tuple[int, np.ndarray]]:
    """lstm.py ``get_minibatches_idx``: consecutive index slices, the remainder kept as a last batch."""
    idx_list = np.arange(n, dtype="int32")
    if shuffle:
        (np.random if rng is None else rng).shuffle(idx_list)
    minibatches = []
    start = 0
    for _ in range(n // minibatch_size):
        minibatches.append(idx_list[start:start + minibatch_size])
        start += minibatch_size
    if start != n:
        minibatches.append(idx_list[start:])
    return list(enumerate(minibatches))


# -------------------------------------------------------------------------------------- locating
@dataclass(frozen=True)
class DatasetSource:
    """Where the data came from: ``kind`` is path, env, cache, download or embedded."""

    kind: str
    path: str


def cache_dir() -> Path:
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "legacy-lstm" / "theano_imdb"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open_regular(path, "data file") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _check_digest(text: str, where: str) -> str:
    digest = text.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise DataFileError(f"{where}: expected a SHA-256 digest (64 hexadecimal digits); got {text[:80]!r}")
    return digest


def read_digest_file(path: Path) -> str:
    """The digest in a ``*.sha256`` file (``<hex digest>  <name>``, as sha256sum writes it)."""
    text = read_text(path, DIGEST_FILE_CAP, "digest file")
    fields = text.split()
    if not fields:
        raise DataFileError(f"{path}: the digest file is empty; delete it (and the data file beside it) to "
                            f"download again")
    return _check_digest(fields[0], str(path))


def verify_cached(path: Path) -> None:
    """Check a cached download against the digest recorded at download time (and ``THEANO_IMDB_SHA256``)."""
    expected = os.environ.get(ENV_SHA256)
    if expected:
        expected = _check_digest(expected, ENV_SHA256)
    recorded = _digest_path(path)
    if recorded.exists() or recorded.is_symlink():
        try:
            expected = expected or read_digest_file(recorded)
        except FileFormatError as e:
            raise DataFileError(str(e)) from None
    digest = _sha256_file(path)
    if expected and digest != expected.lower():
        raise DataFileError(f"{path}: SHA-256 {digest} does not match the expected {expected}; the cached file is "
                            f"corrupt or was replaced: delete it to download it again")


def download(url: str, dest: Union[str, os.PathLike], *, sha256: Optional[str] = None,
             opener: Optional[Callable] = None, timeout: float = 30.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically, with a progress bar, a size check and a SHA-256 check.

    The digest is written beside the file (``dest.sha256``) so later uses can verify it. The file
    must also read as the tutorial's two-pickle data set (restricted unpickler), or it is discarded.
    """
    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in DOWNLOAD_SCHEMES:
        raise DownloadError(f"refusing to download {url}: only {' and '.join(DOWNLOAD_SCHEMES)} URLs (plain "
                            f"{scheme or 'scheme-less'} gives no assurance the file is the one asked for)")
    opener = opener or urllib.request.urlopen
    try:
        response = opener(url, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"could not download {url}: {reason}") from None
    h = hashlib.sha256()
    received = 0
    with response:
        status = getattr(response, "status", None) or getattr(response, "code", None)
        if status is not None and status >= 400:
            raise DownloadError(f"could not download {url}: HTTP status {status}")
        length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
        total = int(length) if length else None
        bar = Progress(total=total, desc=f"downloading {dest.name}", unit="B/s", enabled=progress)
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
                while True:
                    try:
                        chunk = response.read(1 << 20)
                    except (OSError, urllib.error.URLError) as e:
                        raise DownloadError(f"download of {url} interrupted after {received} bytes: {e}") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk), items=len(chunk))
            bar.close()
            if total is not None and received != total:
                raise DownloadError(f"download of {url} is truncated: {received} of {total} bytes")
            digest = h.hexdigest()
            if sha256 and digest != sha256.lower():
                raise DownloadError(f"download of {url} has SHA-256 {digest}; expected {sha256}")
            try:
                load_data_pickles(tmp)
            except (DataFileError, UnsafePickleError) as e:
                raise DownloadError(f"download of {url} is not the tutorial's data set: {e}") from None
            # The digest goes first: an interruption now leaves no data file, never one without its digest.
            atomic_write_text(_digest_path(dest), f"{digest}  {dest.name}\n")
    return dest


def locate_dataset(dataset: Optional[str] = "imdb", *, allow_download: Optional[bool] = None,
                   url: str = TUTORIAL_URL, opener: Optional[Callable] = None,
                   log: Callable[..., None] = print, embedded_notice: bool = True) -> DatasetSource:
    """Resolve ``dataset`` (a path, ``"imdb"`` or ``"embedded"``) by the order in the module docstring.

    ``embedded_notice=False``: the caller prints its own notice when the search ends at the embedded sample.
    """
    if dataset not in (None, "imdb", DATA_FILE, EMBEDDED):
        p = Path(dataset)
        if p.is_dir():
            p = p / DATA_FILE
        if not p.is_file():
            raise DataFileError(f"{dataset}: no such data file (expected the tutorial's imdb.pkl)")
        return DatasetSource("path", str(p))
    if dataset == EMBEDDED:
        return DatasetSource("embedded", EMBEDDED)
    env_dir = os.environ.get(ENV_DATA_DIR)
    if env_dir:
        p = Path(env_dir) / DATA_FILE
        if not p.is_file():
            raise DataFileError(f"{ENV_DATA_DIR}={env_dir}: no {DATA_FILE} in that directory")
        return DatasetSource("env", str(p))
    cached = cache_dir() / DATA_FILE
    if cached.is_file():
        verify_cached(cached)
        return DatasetSource("cache", str(cached))
    if allow_download is None:
        allow_download = os.environ.get(ENV_OFFLINE, "") in ("", "0")
    if allow_download:
        log(f"Downloading data from {url} into {cached}")
        try:
            download(url, cached, sha256=os.environ.get(ENV_SHA256), opener=opener)
            return DatasetSource("download", str(cached))
        except DownloadError as e:
            log(f"{e}", file=sys.stderr)
    if embedded_notice:
        log(f"NOTICE: using the embedded IMDB sample ({EMBEDDED_PATH.name}: every train review shorter than 100 "
            f"words and 1,000 random test reviews of the full data set). For the full data pass --dataset PATH "
            f"to the tutorial's imdb.pkl or set {ENV_DATA_DIR} to a directory holding it.", file=sys.stderr)
    return DatasetSource("embedded", EMBEDDED)
