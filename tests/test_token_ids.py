"""compat.token_ids.check_token_ids: the one range check of every model's token ids, on the host and on
the device, against numpy's reading of the rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from compat.token_ids import check_token_ids

from tests.host_sync import META, run_without_host_sync

ID_ARRAYS = arrays(np.int64, st.tuples(st.integers(0, 4), st.integers(0, 5)), elements=st.integers(-3, 12))


@given(ids=ID_ARRAYS, vocab_size=st.integers(1, 10), as_tensor=st.booleans())
def test_refuses_exactly_the_ids_outside_the_vocabulary_and_names_one(ids, vocab_size, as_tensor):
    outside = ids[(ids < 0) | (ids >= vocab_size)]
    given_ids = torch.from_numpy(ids) if as_tensor else ids
    if outside.size == 0:
        check_token_ids(given_ids, vocab_size, "the batch")
        return
    named = ids.min() if ids.min() < 0 else ids.max()  # the lowest if one is negative, else the highest
    with pytest.raises(ValueError) as err:
        check_token_ids(given_ids, vocab_size, "the batch", hint="a hint")
    assert str(err.value) == (f"word id {named} in the batch is outside the vocabulary [0, {vocab_size}) "
                              "(a hint)")


def test_host_ids_cost_the_device_nothing_and_device_ids_are_read():
    run_without_host_sync(lambda: check_token_ids(np.array([[0, 4]]), 5, "x"), "a host check")
    with pytest.raises(AssertionError, match="reads a device tensor"):
        run_without_host_sync(lambda: check_token_ids(torch.zeros(2, 3, dtype=torch.long, device=META), 5, "x"),
                              "a device check")
