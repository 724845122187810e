"""The ptb_word_lm command line on the real PTB files (test preset, a few steps per pass)."""
from __future__ import annotations

import json
import re

import pytest
import torch

from ports.tf_ptb.cli import load_checkpoint, main
from tests.conftest import NO_CUDA_REASON


@pytest.mark.shared_data
def test_cli_smoke_run_checkpoint_and_resume(shared_data, tmp_path, capsys):
    data = shared_data("ptb", "ptb.train.txt").parent
    save = tmp_path / "ptb_test.pt"
    args = ["--model", "test", "--data-path", str(data), "--save", str(save), "--max-steps", "30",
            "--no-progress", "--seed", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"^Epoch: 1 Learning rate: 1\.000$", out, re.M)
    train = float(re.search(r"^Epoch: 1 Train Perplexity: ([\d.]+)$", out, re.M).group(1))
    valid = float(re.search(r"^Epoch: 1 Valid Perplexity: ([\d.]+)$", out, re.M).group(1))
    test = float(re.search(r"^Test Perplexity: ([\d.]+)$", out, re.M).group(1))
    # 30 steps of SGD from uniform +-0.1 weights: below the uniform 10000 but far from trained.
    assert 100 < train < 10000 and 100 < valid < 10000 and 100 < test < 10000
    ckpt = load_checkpoint(save)
    assert ckpt["config"]["hidden_size"] == 2 and ckpt["epoch"] == 1 and ckpt["preset"] == "test"
    metrics = json.loads((tmp_path / "ptb_test.pt.metrics.json").read_text())
    assert metrics["train_perplexity"] == [pytest.approx(train, abs=1e-3)]
    assert metrics["test_perplexity"] == pytest.approx(test, abs=1e-3)
    assert (tmp_path / "ptb_test.pt.png").read_bytes()[:4] == b"\x89PNG"

    # Resume for a second epoch: the learning rate decays (max_epoch 1, lr_decay 0.5).
    assert main(args + ["--resume", str(save), "--max-max-epoch", "2"]) == 0
    out = capsys.readouterr().out
    assert "Resumed from" in out and re.search(r"^Epoch: 2 Learning rate: 0\.500$", out, re.M)
    assert "Epoch: 1 " not in out
    ckpt2 = load_checkpoint(save)
    assert ckpt2["epoch"] == 2 and len(ckpt2["history"]["train_perplexity"]) == 2
    assert not torch.equal(ckpt["model"]["embedding"], ckpt2["model"]["embedding"])


@pytest.mark.shared_data
def test_resume_continues_exactly(shared_data, tmp_path, capsys):
    """Two epochs in one run equal one epoch, a stop, and --resume: same weights and perplexities, dropout
    included (the "book" preset: keep_prob 0.5, so the checkpoint's torch random state matters)."""
    data = shared_data("ptb", "ptb.train.txt").parent
    common = ["--model", "book", "--data-path", str(data), "--max-steps", "3", "--no-progress", "--quiet",
              "--seed", "5"]
    straight, split = tmp_path / "straight.pt", tmp_path / "split.pt"
    assert main(common + ["--save", str(straight)]) == 0
    assert main(common + ["--save", str(split), "--max-max-epoch", "1"]) == 0
    assert main(common + ["--save", str(split), "--resume", str(split), "--max-max-epoch", "2"]) == 0
    capsys.readouterr()
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for key in ("train_perplexity", "valid_perplexity"):
        assert a["history"][key] == b["history"][key]
    assert a["history"]["test_perplexity"] == b["history"]["test_perplexity"]


def test_the_run_files_are_named_after_the_checkpoint(tmp_path):
    """--save NAME: NAME.json (the checkpoint, with its .safetensors), NAME.metrics.json and NAME.png, each
    named in the header; no file is named that is never written."""
    from ports.tf_ptb.cli import _output_paths, build_parser

    for name in ("small.pt", "runs/small", "runs/small.json"):
        args = build_parser().parse_args(["--data-path", str(tmp_path), "--save", str(tmp_path / name)])
        stem = str(tmp_path / name).removesuffix(".json")
        assert _output_paths(args) == (stem + ".png", stem + ".metrics.json")


def test_cli_errors(tmp_path, capsys):
    assert main(["--data-path", str(tmp_path / "missing")]) == 2
    assert "--data-path: " in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "ptb.train.txt").write_text(" a b \n")
    (tmp_path / "ptb.valid.txt").write_text(" a b \n")
    (tmp_path / "ptb.test.txt").write_text(" a b \n")
    assert main(["--data-path", str(tmp_path), "--resume", str(tmp_path / "bad.pt")]) == 2
    assert "not a checkpoint" in capsys.readouterr().err
    assert main(["--data-path", str(tmp_path)]) == 2
    assert "vocabulary has 3 words" in capsys.readouterr().err


@pytest.mark.shared_data
def test_cli_evaluates_tf_weights(shared_data, tmp_path, capsys):
    """--load-tf with --max-max-epoch 0: the test perplexity of given TF weights, equal to run_epoch's."""
    import dataclasses

    import numpy as np

    from ports.tf_ptb import Config, PTBModel, ptb_raw_data, run_epoch

    data = shared_data("ptb", "ptb.train.txt").parent
    config = Config.preset("test")
    torch.manual_seed(7)
    model = PTBModel(config, is_training=False)
    np.savez(tmp_path / "weights.npz", **model.export_tf1_variables(scope="language_model", generation="0.12"))
    assert main(["--model", "test", "--data-path", str(data), "--load-tf", str(tmp_path / "weights.npz"),
                 "--max-max-epoch", "0", "--max-steps", "200", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Loaded 5 TF variables" in out
    reported = float(re.search(r"^Test Perplexity: ([\d.]+)$", out, re.M).group(1))
    _, _, test, _ = ptb_raw_data(data)
    ev = config.eval_config()
    expected = run_epoch(model, test, ev.batch_size, ev.num_steps, progress=False, max_steps=200)
    assert reported == pytest.approx(expected, abs=1e-3)
    # A one-cell (shared) checkpoint of the two-layer small model needs --shared-cell-weights.
    small = Config.preset("small")
    shared = PTBModel(dataclasses.replace(small, shared_cell_weights=True))
    np.savez(tmp_path / "shared.npz", **shared.export_tf1_variables())
    corpus = tmp_path / "corpus"  # a tiny corpus with the presets' vocabulary size: 9,999 words and <eos>
    corpus.mkdir()
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        (corpus / name).write_text(" " + " ".join(f"w{i}" for i in range(9999)) + " \n")
    args = ["--model", "small", "--data-path", str(corpus), "--load-tf", str(tmp_path / "shared.npz"),
            "--max-max-epoch", "0", "--max-steps", "3", "--no-progress"]
    assert main(args) == 2
    assert "one LSTM cell" in capsys.readouterr().err
    assert main(args + ["--shared-cell-weights"]) == 0
    assert "Test Perplexity" in capsys.readouterr().out


@pytest.mark.cuda
@pytest.mark.shared_data
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA_REASON)
def test_resume_continues_exactly_cuda(shared_data, tmp_path, capsys):
    """On CUDA with capture (--cuda-graph auto) and dropout (the book preset: two layers, keep_prob 0.5, so
    torch's dropout and cuDNN's between the layers): two epochs in one run equal one epoch, a stop and
    --resume, within cuDNN's float32 rounding. The same resume from the checkpoint without its CUDA generator
    state draws other masks, and differs: the check can tell."""
    from compat import checkpoint
    from ports.tf_ptb.cli import CHECKPOINT_FORMAT
    from tests.tolerances import assert_close, cudnn_float32

    data = shared_data("ptb", "ptb.train.txt").parent
    common = ["--model", "book", "--data-path", str(data), "--max-steps", "8", "--no-progress", "--quiet",
              "--seed", "5", "--device", "cuda", "--cuda-graph", "auto"]
    straight, split, seeded = tmp_path / "straight", tmp_path / "split", tmp_path / "seeded"
    assert main(common + ["--save", str(straight)]) == 0
    assert main(common + ["--save", str(split), "--max-max-epoch", "1"]) == 0
    content = checkpoint.load(split, CHECKPOINT_FORMAT)
    assert content["cuda_rng"].shape == (16,)
    del content["cuda_rng"]
    checkpoint.save(seeded, CHECKPOINT_FORMAT, content)
    assert main(common + ["--save", str(split), "--resume", str(split), "--max-max-epoch", "2"]) == 0
    assert main(common + ["--save", str(seeded), "--resume", str(seeded), "--max-max-epoch", "2"]) == 0
    assert "keeps no CUDA generator state" in capsys.readouterr().out
    a, b, c = load_checkpoint(straight), load_checkpoint(split), load_checkpoint(seeded)
    assert a["epoch"] == b["epoch"] == c["epoch"] == 2
    tol = cudnn_float32("cuda", torch.float32)
    for name in a["model"]:
        assert_close(b["model"][name], a["model"][name], msg=name, **tol)
    assert_close(torch.tensor(b["history"]["train_perplexity"] + b["history"]["valid_perplexity"]),
                 torch.tensor(a["history"]["train_perplexity"] + a["history"]["valid_perplexity"]), **tol)
    with pytest.raises(AssertionError):
        for name in a["model"]:
            assert_close(c["model"][name], a["model"][name], msg=name, **tol)
