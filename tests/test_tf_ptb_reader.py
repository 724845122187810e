"""ports.tf_ptb.data against hand-computed batches and reader.py's rules."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from ports.tf_ptb import PTBDataError, epoch_size, ptb_iterator, ptb_producer, ptb_raw_data
from ports.tf_ptb.data import build_vocab


def test_batches_by_hand():
    # 20 words, batch_size 3: batch_len 6, rows 0-5, 6-11, 12-17 (18, 19 never seen); epoch_size (6-1)//2 = 2.
    batches = list(ptb_iterator(list(range(20)), 3, 2))
    assert len(batches) == 2 == epoch_size(20, 3, 2)
    (x0, y0), (x1, y1) = batches
    np.testing.assert_array_equal(x0, [[0, 1], [6, 7], [12, 13]])
    np.testing.assert_array_equal(y0, [[1, 2], [7, 8], [13, 14]])
    np.testing.assert_array_equal(x1, [[2, 3], [8, 9], [14, 15]])
    np.testing.assert_array_equal(y1, [[3, 4], [9, 10], [15, 16]])
    assert x0.dtype == np.int64


def test_last_step_uses_the_final_column_as_target_only():
    # batch_len 7, num_steps 3: epoch_size (7-1)//3 = 2, the second step's targets end at column 6.
    batches = list(ptb_iterator(list(range(14)), 2, 3))
    np.testing.assert_array_equal(batches[-1][0], [[3, 4, 5], [10, 11, 12]])
    np.testing.assert_array_equal(batches[-1][1], [[4, 5, 6], [11, 12, 13]])


@given(st.integers(1, 300), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2 ** 31))
def test_iterator_matches_index_formula(n, batch_size, num_steps, seed):
    data = np.random.default_rng(seed).integers(0, 50, n).tolist()
    batch_len = n // batch_size
    steps = (batch_len - 1) // num_steps
    note(f"n={n} batch_size={batch_size} num_steps={num_steps} batch_len={batch_len} epoch_size={steps}")
    if steps < 1:
        with pytest.raises(PTBDataError, match="epoch_size == 0"):
            ptb_iterator(data, batch_size, num_steps)
        return
    batches = list(ptb_producer(data, batch_size, num_steps))
    assert len(batches) == steps == epoch_size(n, batch_size, num_steps)
    for i, (x, y) in enumerate(batches):
        for b in range(batch_size):
            for t in range(num_steps):
                assert x[b, t] == data[b * batch_len + i * num_steps + t]
                assert y[b, t] == data[b * batch_len + i * num_steps + t + 1]


def _write(tmp_path, train, valid="a b\n", test="b a\n"):
    for name, text in (("ptb.train.txt", train), ("ptb.valid.txt", valid), ("ptb.test.txt", test)):
        (tmp_path / name).write_text(text, encoding="utf-8")


def test_raw_data_vocabulary_order_eos_and_oov(tmp_path):
    # PTB's files put a space before every newline (" w1 w2 \n"), so "<eos>" stands apart.
    _write(tmp_path, " b a c \n a b \n a \n", valid=" a z b \n", test=" c \n")
    train, valid, test, vocab = ptb_raw_data(tmp_path)
    # counts: a 3, <eos> 3, b 2, c 1 -> sorted by (-count, word): <eos> (3) before a (3) since '<' < 'a'.
    assert build_vocab(tmp_path / "ptb.train.txt") == {"<eos>": 0, "a": 1, "b": 2, "c": 3}
    assert vocab == 4
    assert train == [2, 1, 3, 0, 1, 2, 0, 1, 0]
    assert valid == [1, 2, 0]  # 'z' is out of vocabulary and dropped
    assert test == [3, 0]


def test_newline_without_space_glues_eos_to_the_word_as_in_reader_py(tmp_path):
    """reader.py replaces "\\n" by "<eos>" before splitting: a line without a trailing space runs into the next line's words."""
    _write(tmp_path, "a c\na\n", valid=" a \n", test=" a \n")
    assert build_vocab(tmp_path / "ptb.train.txt") == {"a": 0, "c<eos>a<eos>": 1}


def test_raw_data_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ptb_raw_data(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="ptb.train.txt"):
        ptb_raw_data(tmp_path)
    _write(tmp_path, "  ")
    with pytest.raises(PTBDataError, match="ptb.train.txt.* is empty"):
        ptb_raw_data(tmp_path)
    _write(tmp_path, "a b\n", valid="zzz\n")
    with pytest.raises(PTBDataError, match="ptb.valid.txt.* no word of the training vocabulary"):
        ptb_raw_data(tmp_path)
    (tmp_path / "ptb.test.txt").unlink()
    _write(tmp_path, "a b\n")
    (tmp_path / "ptb.test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="ptb.test.txt"):
        ptb_raw_data(tmp_path)
    with pytest.raises(PTBDataError, match="needs at least 63 words"):
        ptb_iterator(list(range(40)), 3, 20)


@pytest.mark.shared_data
def test_real_ptb_counts(shared_data):
    path = shared_data("ptb", "ptb.train.txt").parent
    train, valid, test, vocab = ptb_raw_data(path)
    assert (len(train), len(valid), len(test), vocab) == (929589, 73760, 82430, 10000)
    assert epoch_size(len(train), 20, 20) == 2323
    assert epoch_size(len(train), 20, 35) == 1327
