"""Real checkpoints both ways: TF trains a few steps and saves with Saver; the port loads the checkpoint
through compat.formats.tf (no TensorFlow) and gives TF's logits; the port exports a checkpoint with
save_checkpoint and TF's Saver restores it into a fresh graph with the same logits again."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compat.formats.tf import save_checkpoint
from record_checkpoints import (PTB_CONFIG, SHAKESPEARE_CONFIG, ptb_restore_logits, ptb_train_and_save,
                                shakespeare_restore_logits, shakespeare_train_and_save)
from tests.port_runners import ptb_model, shakespeare_model
from tests.tolerances import assert_close


@pytest.mark.parametrize("seed", [0, 1])
def test_ptb_checkpoint_round_trip(tf, tmp_path, seed):
    rec = ptb_train_and_save(tf, tmp_path / "tf", seed=seed)
    model = ptb_model(PTB_CONFIG, rec["prefix"])  # a checkpoint path: read without TensorFlow
    model.eval()
    with torch.no_grad():
        logits, _ = model(torch.as_tensor(rec["inputs"]))
    assert_close(logits, rec["logits"], msg="port logits from TF's checkpoint")
    prefix = save_checkpoint(tmp_path / "port" / "model.ckpt-1", model.export_tf1_variables())
    again = ptb_restore_logits(tf, prefix, rec["inputs"])
    assert_close(torch.as_tensor(again), rec["logits"], msg="TF logits from the port's checkpoint")


@pytest.mark.parametrize("seed", [1, 2])
def test_shakespeare_checkpoint_round_trip(tf, tmp_path, seed):
    rec = shakespeare_train_and_save(tf, tmp_path / "tf", seed=seed)
    model = shakespeare_model(SHAKESPEARE_CONFIG, tmp_path / "tf")  # the directory form, as latest_checkpoint
    with torch.no_grad():
        logits = model(torch.as_tensor(rec["inputs"])).logits
    assert_close(logits, rec["logits"], msg="port logits from TF's checkpoint")
    exported = {k: v.detach().numpy() for k, v in model.tf1_variables().items()}
    prefix = save_checkpoint(tmp_path / "port" / "model-1", exported)
    again = shakespeare_restore_logits(tf, prefix, rec["inputs"])
    assert_close(torch.as_tensor(again), rec["logits"], msg="TF logits from the port's checkpoint")
    assert np.isfinite(again).all()
