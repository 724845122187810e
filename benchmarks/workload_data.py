"""Inputs shared by every side of benchmarks/vs_legacy.py, so that each does the same work.

Random word ids for the TF language models (the cost of a step does not depend on which words), the
Theano tutorial's real batches from the embedded IMDB sample, and the tutorial's initial weights.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

# The workloads of vs_legacy.py and ab_trees.py, their steps per round by default, their rate's unit.
WORKLOADS = ("ptb-train", "ptb-test", "shakespeare-train", "imdb-f64", "imdb-f32",
             "caffe-lstm_short", "caffe-lstm_long", "caffe-deep_short", "caffe-deep_long", "sine-train")
DEFAULT_STEPS = {"ptb-train": 40, "ptb-test": 400, "shakespeare-train": 6, "imdb-f64": 40, "imdb-f32": 40,
                 "caffe-lstm_short": 200, "caffe-lstm_long": 100, "caffe-deep_short": 200, "caffe-deep_long": 100,
                 "sine-train": 300}
UNITS = {"ptb-test": "tokens/s"}

PTB_VOCAB = 10000
SHAKESPEARE = (8009, 128, 100, 50)  # vocabulary (pg100.txt, min_word_freq 5), rnn_size, batch, seq
IMDB = (10000, 128, 2, 16, 100)  # n_words, dim_proj, ydim, batch_size, maxlen


@lru_cache(None)
def ptb_batches(batch: int, steps: int, seed: int, count: int = 8):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, PTB_VOCAB, (batch, steps)).astype(np.int64),
             rng.integers(0, PTB_VOCAB, (batch, steps)).astype(np.int64)) for _ in range(count)]


@lru_cache(None)
def ptb_tokens(seed: int, count: int = 20000):
    return np.random.default_rng(seed + 1).integers(0, PTB_VOCAB, count).astype(np.int64)


@lru_cache(None)
def shakespeare_batches(seed: int, count: int = 4):
    V, _, B, T = SHAKESPEARE
    rng = np.random.default_rng(seed + 2)
    out = []
    for _ in range(count):
        x = rng.integers(0, V, (B, T)).astype(np.int64)
        out.append((x, np.roll(x, -1, axis=1)))  # the recipe's targets
    return out


@lru_cache(None)
def imdb_batches(floatX: str, seed: int, count: int = 32):
    """The tutorial's training batches (prepare_data of 16 shuffled reviews shorter than maxlen 100)."""
    from ports.theano_imdb.data import get_minibatches_idx, load_data, locate_dataset, prepare_data

    n_words, _, _, batch, maxlen = IMDB
    rng = np.random.RandomState(seed)
    train, _, _ = load_data(locate_dataset("embedded").path, n_words=n_words, valid_portion=0.05, maxlen=maxlen,
                            rng=rng, verbose=False)
    out = []
    for _, index in get_minibatches_idx(len(train[0]), batch, shuffle=True, rng=rng)[:count]:
        x, mask, y = prepare_data([train[0][t] for t in index], [train[1][t] for t in index], dtype=floatX)
        out.append((x, mask, np.asarray(y, dtype=np.int64)))
    return out


@lru_cache(None)
def imdb_params(floatX: str, seed: int):
    from ports.theano_imdb.model import init_params

    n_words, dim, ydim, _, _ = IMDB
    return init_params(n_words, dim, ydim, np.random.RandomState(seed + 3), floatX=floatX)


@lru_cache(None)
def sine_batches(seed: int, count: int = 32):
    """The sine program's first training batches, in the data feeder's order (the TF book's program)."""
    from ports.tf_sine import Config, batch_indices, book_data

    sine = book_data(Config())
    order = batch_indices(len(sine.train_X), 32, 42 + seed)
    return [(sine.train_X[rows], sine.train_y[rows]) for rows in (next(order) for _ in range(count))]


def dispatch(side, workload: str, args):
    """``side``'s runner for ``workload``: port_runners and plain_models name their builders after the
    workloads (``ptb_train``, ``ptb_test``, ``shakespeare_train``, ``imdb(args, floatX)``,
    ``caffe(args, config)``)."""
    if workload in ("ptb-train", "ptb-test", "shakespeare-train"):
        return getattr(side, workload.replace("-", "_"))(args)
    if workload in ("imdb-f64", "imdb-f32"):
        return side.imdb(args, {"imdb-f64": "float64", "imdb-f32": "float32"}[workload])
    if workload.startswith("caffe-"):
        return side.caffe(args, workload[len("caffe-"):])
    if workload == "sine-train":
        return side.sine_train(args)
    raise ValueError(f"unknown workload {workload!r}")
