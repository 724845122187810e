"""compat.checkpoint: the round trip of every storable value, names, digests, and the conversion of the
earlier torch.save format (the ports' resume tests cover the ports' own contents)."""
from __future__ import annotations

import json

import pytest
import torch

from compat import checkpoint
from compat.checkpoint import CheckpointError


def _content():
    torch.manual_seed(0)
    return {"config": {"rnn_size": 8, "lr": 1e-3, "name": "x", "flag": True, "none": None,
                       "curve": [1.5, float("inf"), float("nan")]},
            "model": {"w": torch.randn(3, 4), "b": torch.zeros(4, dtype=torch.float64)},
            "optimizer": {"state": {0: {"step": 3, "m": torch.ones(2), "p": torch.tensor(0.9)}},
                          "param_groups": [{"lr": 0.1, "params": [0]}]},
            "rng": torch.get_rng_state(), "pair": (torch.arange(3), torch.tensor([True, False])),
            "half": torch.ones(2, dtype=torch.bfloat16), "empty": torch.zeros(0, 5)}


def test_round_trip(tmp_path):
    content = _content()
    manifest = checkpoint.save(tmp_path / "run.pt", "test", content)
    assert manifest == tmp_path / "run.pt.json"
    tensor_files = list(tmp_path.glob("run.pt.*.safetensors"))
    assert len(tensor_files) == 1
    back = checkpoint.load(tmp_path / "run.pt", "test", allow_nonfinite=True)
    assert back["config"]["curve"][:2] == [1.5, float("inf")] and back["config"]["curve"][2] != back["config"]["curve"][2]
    assert back["optimizer"]["state"][0]["step"] == 3 and list(back["optimizer"]["state"]) == [0]
    for got, want in ((back["model"]["w"], content["model"]["w"]), (back["model"]["b"], content["model"]["b"]),
                      (back["rng"], content["rng"]), (back["pair"][1], content["pair"][1]),
                      (back["half"], content["half"]), (back["empty"], content["empty"])):
        assert got.dtype == want.dtype and torch.equal(got, want)
    # the same name given as the manifest's path; the tensor file is plain safetensors
    assert checkpoint.read(manifest, "test").refs["model/w"].shape == (3, 4)
    from safetensors.torch import load_file

    assert torch.equal(load_file(tensor_files[0])["model/w"], content["model"]["w"])


def test_the_digest_names_the_tensor_file_and_old_ones_go(tmp_path):
    content = _content()
    checkpoint.save(tmp_path / "c", "test", content)
    first = sorted(p.name for p in tmp_path.iterdir())
    checkpoint.save(tmp_path / "c", "test", content)
    assert sorted(p.name for p in tmp_path.iterdir()) == first  # same tensors, same file
    content["model"]["w"] += 1
    checkpoint.save(tmp_path / "c", "test", content)
    now = sorted(p.name for p in tmp_path.iterdir())
    assert len(now) == 2 and now != first
    obj = json.loads((tmp_path / "c.json").read_text())
    assert obj["tensor_file"] in now and obj["tensor_file"].startswith("c." + obj["tensor_sha256"][:16])


def test_non_finite_tensors_are_named(tmp_path):
    content = _content()
    content["model"]["w"][1, 1] = float("nan")
    checkpoint.save(tmp_path / "c", "test", content)
    with pytest.raises(CheckpointError, match=r"c\.json: tensor 'model/w': 1 of its 12 values are NaN"):
        checkpoint.load(tmp_path / "c", "test")


def test_unstorable_content_is_refused_at_save(tmp_path):
    with pytest.raises(TypeError, match="object is not storable"):
        checkpoint.save(tmp_path / "c", "test", {"x": object()})
    with pytest.raises(TypeError, match="dict keys"):
        checkpoint.save(tmp_path / "c", "test", {"x": {1: 2, "a": 3}})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("old_format,kind,old_name,new_name", [
    ("ports.tf_ptb/1", "ports.tf_ptb", "ptb.pt", "ptb.pt.json"),
    ("ports.caffe_sequence checkpoint 1", "ports.caffe_sequence", "checkpoint.pt", "checkpoint.json"),
    ("tf_shakespeare.checkpoint", "tf_shakespeare.checkpoint", "model.pt", "model.json"),
])
def test_the_earlier_format_is_refused_and_converts(tmp_path, old_format, kind, old_name, new_name):
    payload = {"format": old_format, "version": 1, "epoch": 2, "model": {"w": torch.randn(2, 3)},
               "state": {0: {"m": torch.ones(3)}}}
    torch.save(payload, tmp_path / old_name)
    with pytest.raises(CheckpointError, match=f"earlier format .* python -m compat.checkpoint convert .*{old_name}"):
        checkpoint.read(tmp_path / old_name, kind)
    assert checkpoint.main(["convert", str(tmp_path / old_name)]) == 0
    back = checkpoint.load(tmp_path / new_name, kind)
    assert back["epoch"] == 2 and torch.equal(back["model"]["w"], payload["model"]["w"])
    assert torch.equal(back["state"][0]["m"], torch.ones(3)) and "format" not in back


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothing\.json: no such checkpoint"):
        checkpoint.read(tmp_path / "nothing", "test")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes\.txt: not a checkpoint"):
        checkpoint.read(tmp_path / "notes.txt", "test")
    checkpoint.save(tmp_path / "c", "test", _content())
    with pytest.raises(CheckpointError, match=r"not a other checkpoint \(format 'test'\)"):
        checkpoint.read(tmp_path / "c", "other")
    tensor_file = next(tmp_path.glob("c.*.safetensors"))
    tensor_file.unlink()
    with pytest.raises(CheckpointError, match="its tensor file .* is missing"):
        checkpoint.read(tmp_path / "c", "test")


def test_one_error_class_for_every_unreadable_checkpoint(tmp_path):
    """This project's checkpoints and TF's raise the same CheckpointError (one ``except`` catches both), and the
    TF ports raise one TFVariableError (the Shakespeare port's TF1VariableError is that class under its old name)."""
    from compat.errors import TFVariableError
    from compat.formats import tf as tf_format
    from ports.tf_ptb import TFVariableError as ptb_error
    from ports.tf_shakespeare import TF1VariableError

    assert tf_format.CheckpointError is CheckpointError
    assert issubclass(tf_format.CheckpointNotFoundError, CheckpointError)
    assert ptb_error is TFVariableError and TF1VariableError is TFVariableError
    (tmp_path / "bad.index").write_bytes(b"\0" * 64)
    for read in (lambda: checkpoint.read(tmp_path / "missing", "test"), lambda: tf_format.CheckpointReader(tmp_path / "bad")):
        with pytest.raises(CheckpointError, match=str(tmp_path)) as caught:
            read()
        assert str(tmp_path) in str(caught.value)
    with pytest.raises(CheckpointError) as caught:
        tf_format.CheckpointReader(tmp_path / "bad")
    assert caught.value.path is not None and caught.value.path.startswith(str(tmp_path))
