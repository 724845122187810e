"""TF1 checkpoints with their ``.meta`` graph against live TensorFlow 2.21 (``tox -e legacy-convert``).

legacy/record_convert_tf_meta.py runs in its own process, building, running and saving every case afresh
(the cells with their run-time settings, and the language models whose graph around the cells converts
whole, or is refused by name with the cells converted alone: among them contrib's
stack_bidirectional_dynamic_rnn, built op for op as contrib's source builds it, bidirectional_dynamic_rnn of two
MultiRNNCells, static_bidirectional_rnn of two MultiRNNCells (with sequence_length refused by name), a constant
sequence_length, and MultiRNNCell(state_is_tuple=False) stacks, their state one tensor);
each is then converted and compared as
tests/test_convert_tf_meta.py compares the recordings in tests/golden.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.test_convert_tf_meta import (cases, check_cells, check_constant_state, check_final, check_static_lengths,
                                        check_unrecognised, check_whole)

from .conftest import LEGACY


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("live_tf_meta") / "tf_meta"
    proc = subprocess.run([sys.executable, str(LEGACY / "record_convert_tf_meta.py"), "--out", str(out)], cwd=LEGACY,
                          env={**os.environ, "TF_USE_LEGACY_KERAS": "1"}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"record_convert_tf_meta.py failed:\n{proc.stderr[-4000:]}"
    return out


def test_live_cells_settle_their_settings_from_the_graph(recorded, tmp_path):
    found = cases(recorded)
    names = [n for n in found if not n.startswith("whole_")]
    assert len(names) >= 9
    for name in names:
        (tmp_path / name).mkdir()
        check_cells(recorded, name, *found[name], tmp_path / name)


def test_live_language_models_convert_whole(recorded, tmp_path):
    found = cases(recorded)
    names = [n for n in found if n.startswith("whole_") and found[n][1]["whole"]]
    assert len(names) >= 4 and {"whole_while_v2", "whole_sequence_length", "whole_bidirectional",
                                "whole_static_initial_state", "whole_unrolled_gru", "whole_stack_bidirectional",
                                "whole_stack_bidirectional_gru", "whole_stack_constant_lengths",
                                "whole_bidirectional_initial_state", "whole_constant_lengths",
                                "whole_bidirectional_multi", "whole_bidirectional_multi_gru",
                                "whole_bidirectional_multi_state", "whole_not_tuple_lstm", "whole_not_tuple_lstm_state",
                                "whole_not_tuple_gru_state", "whole_not_tuple_rnn_static",
                                "whole_not_tuple_static_state", "whole_static_bidirectional_multi",
                                "whole_static_bidirectional_multi_gru", "whole_bidirectional_not_tuple",
                                "whole_static_bidirectional_cells"} <= set(names)
    for name in names:
        (tmp_path / name).mkdir()
        check_whole(recorded, name, *found[name], tmp_path / name)
        if name.startswith("whole_not_tuple"):     # MultiRNNCell(state_is_tuple=False): TF's concatenated final state
            (tmp_path / name / "final").mkdir()
            check_final(recorded, *found[name], tmp_path / name / "final")
    (tmp_path / "unrecognised").mkdir()
    check_unrecognised(recorded, *found["whole_unrecognised_op"], tmp_path / "unrecognised")
    (tmp_path / "constant_state").mkdir()
    check_constant_state(recorded, *found["whole_static_constant_state"], tmp_path / "constant_state")
    (tmp_path / "static_lengths").mkdir()
    check_static_lengths(recorded, *found["whole_static_bidirectional_lengths"], tmp_path / "static_lengths")
