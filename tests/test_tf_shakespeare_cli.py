"""The ``python -m ports.tf_shakespeare`` CLI: a smoke run on tiny Shakespeare, sampling, resume and errors."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ports.tf_shakespeare.cli import main
from ports.tf_shakespeare.config import TrainConfig
from ports.tf_shakespeare.data import load_corpus
from ports.tf_shakespeare.train import load_checkpoint_file, load_trained, train

REPO = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^Iteration: (\d+), Epoch: (\d+), Batch: (\d+) out of (\d+), Loss: (\d+\.\d\d)$")
SMALL = ["--batch-size", "20", "--seq-len", "10", "--rnn-size", "16", "--no-progress", "--seed", "1"]


@pytest.mark.shared_data
def test_cli_trains_on_tiny_shakespeare_and_samples(shared_data, tmp_path, capsys):
    data = shared_data("shakespeare", "tinyshakespeare_input.txt")
    save = tmp_path / "run"
    rc = main(["train", "--data-path", str(data), "--save-dir", str(save), "--max-iterations", "4",
               "--eval-every", "2", "--save-every", "3", "--print-every", "1", *SMALL])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "Vocabulary Length = 2688" in out
    lines = [LINE.match(l) for l in out.splitlines() if l.startswith("Iteration:")]
    assert [int(m.group(1)) for m in lines] == [1, 2, 3, 4]
    ids, _, _ = load_corpus(data, 5)
    assert {int(m.group(4)) for m in lines} == {int(len(ids) / 200) + 1}
    samples = [l for l in out.splitlines() if l.startswith(("thou art more", "to be or not to", "wherefore art thou"))]
    assert len(samples) == 6  # three prime texts at iterations 2 and 4
    for name in ("model.json", "vocab.json", "loss.png"):
        assert (save / name).exists(), name
    assert len(list(save.glob("model.*.safetensors"))) == 1
    ckpt = load_checkpoint_file(save)
    assert ckpt["progress"]["iteration_count"] == 5 and len(ckpt["train_loss"]) == 4
    vocab = json.loads((save / "vocab.json").read_text())
    assert vocab["vocab2ix"]["unknown"] == 0 and len(vocab["vocab2ix"]) == 2687

    rc = main(["sample", "--model", str(save), "--prime", "thou art more", "--prime", "to be or not to"])
    greedy = capsys.readouterr().out.splitlines()
    assert rc == 0 and greedy[0].startswith("thou art more") and greedy[1].startswith("to be or not to")
    model, ix2vocab, vocab2ix, _ = load_trained(save)
    assert greedy[0] == model.sample("thou art more", ix2vocab, vocab2ix, num=10)
    runs = []
    for _ in range(2):
        assert main(["sample", "--model", str(save / "model.json"), "--prime", "thou", "--temperature", "1.5",
                     "--top-k", "50", "--seed", "3", "--num", "20"]) == 0
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1] and runs[0].startswith("thou")
    assert main(["sample", "--model", str(save), "--prime", "zyzzyva thou"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --prime 'zyzzyva thou': the word 'zyzzyva' is not in the vocabulary") and \
        err.rstrip().endswith("--unknown zero maps it to id 0") and "unknown='zero'" not in err, err

    assert main(["report", "--save-dir", str(save), "--plot", str(tmp_path / "curve.png")]) == 0
    report = capsys.readouterr().out
    assert "vocabulary 2688" in report and "4 iterations" in report
    assert f"iteration     1: loss {ckpt['train_loss'][0]:.4f}" in report
    assert greedy[0] in report and (tmp_path / "curve.png").stat().st_size > 1000


def _corpus(tmp_path) -> Path:
    words = ("to be or not to be that is the question whether tis nobler in the mind to suffer "
             "the slings and arrows of outrageous fortune or to take arms against a sea of troubles ").split()
    text = " ".join(words * 12)
    path = tmp_path / "corpus.txt"
    path.write_text(text.replace(" the ", "\r\nthe "), encoding="utf-8")
    return path


def test_resume_continues_exactly(tmp_path):
    """Stopping mid-epoch and resuming gives the weights and losses of the uninterrupted run."""
    data = _corpus(tmp_path)
    cfg = dict(min_word_freq=2, rnn_size=8, epochs=3, batch_size=4, training_seq_len=5, skip_chars=0,
               save_every=1000, eval_every=1000, seed=4)
    quiet = dict(progress=False, plot=False, log=lambda line: None)
    full = train(data, tmp_path / "a", TrainConfig(**cfg), **quiet)
    assert full["num_batches"] == 19 and full["iterations"] == 57
    part = train(data, tmp_path / "b", TrainConfig(**cfg), max_iterations=30, **quiet)
    assert part["stopped_early"] and part["iterations"] == 30
    part = train(data, tmp_path / "b", TrainConfig(**cfg), resume=True, max_iterations=8, **quiet)
    assert part["iterations"] == 38  # exactly two epochs: stops at an epoch boundary
    rest = train(data, tmp_path / "b", TrainConfig(**cfg), resume=True, **quiet)
    assert rest["train_loss"] == full["train_loss"]
    a, *_ = load_trained(tmp_path / "a")
    b, *_ = load_trained(tmp_path / "b")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--data-path", str(tmp_path / "missing.txt"), "--save-dir", str(tmp_path / "r"), *SMALL]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err
    (tmp_path / "bogus.json").write_bytes(b"not a checkpoint")
    assert main(["sample", "--model", str(tmp_path / "bogus.json"), "--prime", "thou"]) == 2
    assert "bogus.json: the manifest is not valid JSON" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"format": "other"}')
    assert main(["sample", "--model", str(tmp_path / "other.json"), "--prime", "thou"]) == 2
    assert "not a tf_shakespeare.checkpoint checkpoint" in capsys.readouterr().err
    # a checkpoint of the earlier torch.save format is refused with the conversion command, not unpickled
    torch.save({"format": "tf_shakespeare.checkpoint"}, tmp_path / "model.pt")
    assert main(["sample", "--model", str(tmp_path), "--prime", "thou"]) == 2
    assert "python -m compat.checkpoint convert" in capsys.readouterr().err


def test_a_diverging_run_is_one_error_line(tmp_path, capsys):
    rc = main(["train", "--data-path", str(_corpus(tmp_path)), "--save-dir", str(tmp_path / "m"), "--skip-chars", "0",
               "--min-word-freq", "2", "--batch-size", "4", "--seq-len", "5", "--rnn-size", "8", "--learning-rate",
               "1e38", "--no-progress", "--no-plot"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert re.fullmatch(r"error: the loss became (inf|nan) at iteration \d+ \(the learning rate 1e\+38 may be too "
                        r"high\)\n", err), err


def test_module_entry_point_runs(tmp_path):
    data = _corpus(tmp_path)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "ports.tf_shakespeare", "train", "--data-path", str(data), "--save-dir",
           str(tmp_path / "m"), "--skip-chars", "0", "--min-word-freq", "2", "--max-iterations", "2",
           "--print-every", "1", "--recipe-batch-count", "--batch-size", "4", "--seq-len", "5", "--rnn-size", "8",
           "--no-progress", "--no-plot"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # the recipe's log line prints num_batches + 1 (19 batches -> "out of 20")
    assert "Iteration: 2, Epoch: 1, Batch: 2 out of 20, Loss: " in done.stdout


def test_sample_from_the_recipes_tf_checkpoint_and_vocab_pickle(tmp_path, capsys):
    import pickle

    from compat.formats.tf import save_checkpoint
    from ports.tf_shakespeare import LSTMModel

    torch.manual_seed(0)
    model = LSTMModel(6, 5, 1, 1)
    save_checkpoint(tmp_path / "model-500", {k: v.detach().numpy() for k, v in model.tf1_variables().items()})
    vocab2ix = {"thou": 1, "art": 2, "more": 3, "than": 4, "unknown": 0}
    with open(tmp_path / "vocab.pkl", "wb") as fh:
        pickle.dump([vocab2ix, {v: k for k, v in vocab2ix.items()}], fh)
    assert main(["sample", "--tf-checkpoint", str(tmp_path), "--vocab", str(tmp_path / "vocab.pkl"),
                 "--prime", "thou art"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == model.sample("thou art", {v: k for k, v in vocab2ix.items()}, vocab2ix)
    # a pickle that references any class is refused without running it
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump([vocab2ix, {0: os.getcwd}], fh)
    assert main(["sample", "--tf-checkpoint", str(tmp_path), "--vocab", str(tmp_path / "evil.pkl"),
                 "--prime", "thou"]) == 2
    assert "refused to load global" in capsys.readouterr().err
