"""The book's sine data and the order in which ``tf.contrib.learn`` fed it.

Data (the program's ``generate_data`` and the lines that call it)::

    test_start = TRAINING_EXAMPLES * SAMPLE_GAP;  test_end = (TRAINING_EXAMPLES + TESTING_EXAMPLES) * SAMPLE_GAP
    train_X, train_y = generate_data(np.sin(np.linspace(0, test_start, TRAINING_EXAMPLES, dtype=np.float32)))
    test_X, test_y = generate_data(np.sin(np.linspace(test_start, test_end, TESTING_EXAMPLES, dtype=np.float32)))
    X.append([seq[i: i + TIMESTEPS]]);  y.append([seq[i + TIMESTEPS]])   for i in range(len(seq) - TIMESTEPS - 1)

X is ``[N, 1, TIMESTEPS]`` (the brackets around the slice), y ``[N, 1]``; N = 9,989 training and 989 test
examples. The last window of each sequence is never used (``- 1``), the train curve's last point (x = 100)
is also the test curve's first, and the points are 100 / 9,999 apart, not SAMPLE_GAP.

Batches. ``SKCompat.fit(train_X, train_y, batch_size=32, steps=3000)`` feeds every step from
``tensorflow/contrib/learn/python/learn/learn_io/data_feeder.py`` ``DataFeeder`` (shuffle=True,
epochs=None, random_state=None): ``np.random.RandomState(42)`` draws a permutation of the rows; each step
takes the next ``batch_size`` of them; the epoch's last batch is what is left (9,989 = 312 x 32 + 5: every
313th step trains on 5 examples), then a new permutation is drawn from the same generator. ``fit`` builds
a new DataFeeder every time it is called, so a second run of the program (which resumes the model from
its ``model_dir``) trains on the same batch order again. :func:`batch_indices` yields that order.
"""
from __future__ import annotations

import itertools
from typing import Iterator, NamedTuple, Sequence, Tuple

import numpy as np

from .config import Config


class SineData(NamedTuple):
    train_X: np.ndarray  # [N, 1, TIMESTEPS] float32
    train_y: np.ndarray  # [N, 1] float32
    test_X: np.ndarray
    test_y: np.ndarray


def generate_data(seq: Sequence[float], timesteps: int) -> Tuple[np.ndarray, np.ndarray]:
    """The book's ``generate_data``: windows of ``timesteps`` values as ``[N, 1, timesteps]`` float32 and
    the value after each as ``[N, 1]``, for N = len(seq) - timesteps - 1 windows."""
    seq = np.asarray(seq)
    n = len(seq) - timesteps - 1
    if n < 1:
        raise ValueError(f"a sequence of {len(seq)} values gives no window of {timesteps} (it needs at least "
                         f"{timesteps + 2})")
    starts = np.arange(n)
    X = seq[starts[:, None] + np.arange(timesteps)][:, None, :]
    y = seq[starts + timesteps][:, None]
    return X.astype(np.float32), y.astype(np.float32)


def sine_curve(start: float, stop: float, count: int) -> np.ndarray:
    """``np.sin(np.linspace(start, stop, count, dtype=np.float32))``: float32 points, float32 sine."""
    return np.sin(np.linspace(start, stop, count, dtype=np.float32))


def book_data(config: Config) -> SineData:
    """The program's train and test sets for ``config``'s sizes."""
    test_start = config.training_examples * config.sample_gap
    test_end = (config.training_examples + config.testing_examples) * config.sample_gap
    train = generate_data(sine_curve(0, test_start, config.training_examples), config.timesteps)
    test = generate_data(sine_curve(test_start, test_end, config.testing_examples), config.timesteps)
    return SineData(*train, *test)


def batch_indices(rows: int, batch_size: int, seed: int = 42, skip: int = 0) -> Iterator[np.ndarray]:
    """The rows DataFeeder feeds at each step, endlessly: a permutation of ``range(rows)`` from
    ``RandomState(seed)`` cut into ``batch_size`` pieces (the last one short), then the next permutation.
    ``skip`` steps are drawn and dropped first (to continue a fit that stopped after that many steps)."""
    if rows < 1 or batch_size < 1:
        raise ValueError(f"rows and batch_size must be at least 1; got {rows}, {batch_size}")

    def endless():
        rng = np.random.RandomState(seed)
        while True:
            order = rng.permutation(rows)
            for start in range(0, rows, batch_size):
                yield order[start:start + batch_size]

    return itertools.islice(endless(), skip, None)


def predict_slices(rows: int, batch_size: int) -> Iterator[slice]:
    """``SKCompat.predict``'s batches: the rows in order, ``batch_size`` at a time."""
    return (slice(start, min(rows, start + batch_size)) for start in range(0, rows, batch_size))
