"""PTB text to word ids and (inputs, targets) batches, as tutorials/rnn/ptb/reader.py does it.

``ptb_raw_data``: every newline becomes the token ``<eos>``, the text is split on whitespace, the
vocabulary is the training file's words sorted by (-count, word) and numbered from 0; words of the
valid/test files missing from it are dropped (``_file_to_word_ids``).

``ptb_iterator`` (the pre-1.0 reader) and ``ptb_producer`` (its queue-based successor) batch identically:
``batch_len = len(data) // batch_size``, row b is the contiguous slice ``data[b*batch_len:(b+1)*batch_len]``,
``epoch_size = (batch_len - 1) // num_steps``, and step i yields columns ``[i*num_steps, (i+1)*num_steps)``
with targets the same columns shifted by one. The tail that does not fill a batch is never seen.
"""
from __future__ import annotations

import collections
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from compat.errors import FileFormatError
from compat.formats.files import MiB, read_text

SPLITS = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")


# ptb.train.txt is 5 MB; a file is read whole, at most this many bytes (docs/security.md).
PTB_FILE_CAP = 256 * MiB


class PTBDataError(FileFormatError):
    """A PTB file or data set that cannot be read or batched."""


class PTBFileNotFoundError(PTBDataError, FileNotFoundError):
    """A PTB file or directory that does not exist."""


def read_words(filename) -> List[str]:
    """reader.py ``_read_words``: UTF-8 text, newlines replaced by ``<eos>``, split on whitespace.
    Regular files only, at most ``PTB_FILE_CAP`` bytes."""
    path = Path(filename)
    if not path.exists() and not path.is_symlink():
        raise PTBFileNotFoundError(f"PTB file {str(path)!r} does not exist (expected {', '.join(SPLITS)} "
                                   f"in the data directory)")
    try:
        text = read_text(path, PTB_FILE_CAP, "PTB file")
    except FileFormatError as exc:
        raise PTBDataError(str(exc)) from None
    words = text.replace("\n", "<eos>").split()
    if not words:
        raise PTBDataError(f"PTB file {str(path)!r} is empty (no words)")
    return words


def vocab_from_words(words: Sequence[str]) -> Dict[str, int]:
    """word -> id, ids by descending count, ties by the word itself."""
    counter = collections.Counter(words)
    pairs = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return {word: i for i, (word, _) in enumerate(pairs)}


def build_vocab(filename) -> Dict[str, int]:
    """reader.py ``_build_vocab``: the vocabulary of one file."""
    return vocab_from_words(read_words(filename))


def words_to_ids(words: Sequence[str], word_to_id: Dict[str, int]) -> List[int]:
    """Ids of ``words``; out-of-vocabulary words are dropped."""
    return [word_to_id[w] for w in words if w in word_to_id]


def file_to_word_ids(filename, word_to_id: Dict[str, int]) -> List[int]:
    """reader.py ``_file_to_word_ids``: ids of the file's words; out-of-vocabulary words are dropped."""
    return words_to_ids(read_words(filename), word_to_id)


def ptb_raw_data(data_path) -> Tuple[List[int], List[int], List[int], int]:
    """``(train_ids, valid_ids, test_ids, vocabulary_size)`` from ``data_path``/ptb.{train,valid,test}.txt."""
    if data_path is None:
        raise ValueError("Must set data_path to the PTB data directory")
    root = Path(data_path)
    if not root.is_dir():
        raise PTBFileNotFoundError(f"PTB data directory {str(root)!r} does not exist")
    train_path, valid_path, test_path = (root / name for name in SPLITS)
    train_words = read_words(train_path)  # read once for both the vocabulary and the ids
    word_to_id = vocab_from_words(train_words)
    train = words_to_ids(train_words, word_to_id)
    valid = file_to_word_ids(valid_path, word_to_id)
    test = file_to_word_ids(test_path, word_to_id)
    for name, ids in (("ptb.valid.txt", valid), ("ptb.test.txt", test)):
        if not ids:
            raise PTBDataError(f"PTB file {str(root / name)!r} has no word of the training vocabulary")
    return train, valid, test, len(word_to_id)


def ptb_vocabulary(data_path) -> Dict[str, int]:
    """The word -> id mapping ``ptb_raw_data`` uses (built from ptb.train.txt)."""
    return build_vocab(Path(data_path) / SPLITS[0])


def epoch_size(data_len: int, batch_size: int, num_steps: int) -> int:
    """Steps per epoch: ``((data_len // batch_size) - 1) // num_steps`` (ptb_word_lm.py PTBInput)."""
    return ((data_len // batch_size) - 1) // num_steps


def batch_matrix(raw_data: Sequence[int], batch_size: int, num_steps: int) -> np.ndarray:
    """The [batch_size, batch_len] matrix both readers slice; errors if no step fits."""
    if batch_size < 1 or num_steps < 1:
        raise ValueError(f"batch_size and num_steps must be positive, got {batch_size} and {num_steps}")
    data = np.asarray(raw_data, dtype=np.int64)
    if data.ndim != 1:
        raise PTBDataError(f"raw_data must be a flat sequence of word ids, got shape {list(data.shape)}")
    batch_len = len(data) // batch_size
    if (batch_len - 1) // num_steps < 1:
        need = batch_size * (num_steps + 1)
        raise PTBDataError(f"epoch_size == 0, decrease batch_size or num_steps: {len(data)} words give "
                           f"batch_len {batch_len} for batch_size {batch_size}; one step of num_steps "
                           f"{num_steps} needs at least {need} words")
    return data[:batch_size * batch_len].reshape(batch_size, batch_len)


def ptb_iterator(raw_data: Sequence[int], batch_size: int, num_steps: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """One epoch of (x, y) int64 arrays [batch_size, num_steps]; y is x shifted by one word.

    Validates eagerly (a ``PTBDataError`` at the call, not at the first ``next``).
    """
    data = batch_matrix(raw_data, batch_size, num_steps)
    steps = (data.shape[1] - 1) // num_steps

    def batches():
        for i in range(steps):
            x = data[:, i * num_steps:(i + 1) * num_steps]
            y = data[:, i * num_steps + 1:(i + 1) * num_steps + 1]
            yield x, y

    return batches()


def ptb_producer(raw_data: Sequence[int], batch_size: int, num_steps: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """reader.py ``ptb_producer`` without the queue: its range_input_producer(epoch_size, shuffle=False)
    dequeues 0, 1, ..., epoch_size - 1 in order, which run_epoch consumes exactly once per epoch, so
    one epoch of it equals :func:`ptb_iterator`."""
    return ptb_iterator(raw_data, batch_size, num_steps)


__all__ = ["read_words", "build_vocab", "file_to_word_ids", "ptb_raw_data", "ptb_vocabulary", "epoch_size",
           "batch_matrix", "ptb_iterator", "ptb_producer", "PTBDataError", "PTBFileNotFoundError"]
