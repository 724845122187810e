"""Builds the embedded sample ``data/imdb_sample.npz`` from the tutorial's ``imdb.pkl``.

    python -m ports.theano_imdb.sample /path/to/imdb.pkl [--out ports/theano_imdb/data/imdb_sample.npz]

Kept: every train review shorter than ``--train-maxlen`` words (100, the tutorial's maxlen; file order,
so the default run splits and trains on the same reviews as with the full file) and ``--n-test`` test
reviews drawn with ``numpy.random.RandomState(--seed)``. Stored as flat int32 word ids, int64 offsets
and int8 labels per split (readable with ``allow_pickle=False``).
"""
from __future__ import annotations

import argparse

import numpy as np

from compat.atomic import atomic_path
from ports.theano_imdb.data import EMBEDDED_PATH
from ports.theano_imdb.unpickler import load_data_pickles


def _pack(xs, ys, index):
    seqs = [xs[k] for k in index]
    ids = np.array([w for s in seqs for w in s], dtype=np.int32)
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in seqs])
    return ids, offsets, np.array([ys[k] for k in index], dtype=np.int8), np.array(index, dtype=np.int32)


def build_sample(pkl_path, out_path=EMBEDDED_PATH, train_maxlen: int = 100, n_test: int = 1000,
                 seed: int = 20150101) -> None:
    (train_x, train_y), (test_x, test_y) = load_data_pickles(pkl_path)
    keep = [k for k, s in enumerate(train_x) if len(s) < train_maxlen]
    rs = np.random.RandomState(seed)
    test_keep = np.sort(rs.choice(len(test_x), min(n_test, len(test_x)), replace=False)).tolist()
    tr = _pack(train_x, train_y, keep)
    te = _pack(test_x, test_y, test_keep)
    description = (
        "IMDB sample in the Theano tutorial's imdb.pkl format, from the Stanford aclImdb reviews (Maas et al. "
        f"2011): every train review shorter than {train_maxlen} words (file order) and {len(test_keep)} test "
        f"reviews drawn with numpy RandomState({seed}); word ids are frequency ranks (1 = UNK). "
        "*_source_index: positions in the full imdb.pkl.")
    with atomic_path(out_path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, train_ids=tr[0], train_offsets=tr[1], train_labels=tr[2], train_source_index=tr[3],
                            test_ids=te[0], test_offsets=te[1], test_labels=te[2], test_source_index=te[3],
                            description=np.array(description))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pkl", help="the tutorial's imdb.pkl to sample from")
    ap.add_argument("--out", default=str(EMBEDDED_PATH), help="output .npz (default: the package's embedded sample)")
    ap.add_argument("--train-maxlen", type=int, default=100, help="keep train reviews shorter than this")
    ap.add_argument("--n-test", type=int, default=1000, help="number of test reviews to draw")
    ap.add_argument("--seed", type=int, default=20150101, help="seed of the test draw")
    a = ap.parse_args(argv)
    build_sample(a.pkl, a.out, a.train_maxlen, a.n_test, a.seed)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
