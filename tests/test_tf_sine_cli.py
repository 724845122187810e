"""The ``python -m ports.tf_sine`` CLI: the book's printed lines and plot, the model directory's resume (a
second run trains as many steps again), a stopped run finished exactly, and one ``error:`` line for bad input."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ports.tf_sine import Config, Estimator, book_data, load_checkpoint
from ports.tf_sine.cli import build_parser, main
from tests.tolerances import assert_close

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--hidden-size", "6", "--training-examples", "300", "--testing-examples", "60", "--batch-size", "8",
         "--no-progress"]
LOSS_LINE = re.compile(r"^loss = (\S+), step = (\d+)$")
RMSE_LINE = re.compile(r"^Mean Square Error is: (\d+\.\d{6})$")


def run(capsys, *argv) -> tuple:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_help_gives_every_default():
    text = build_parser().format_help().split("\noptions:\n", 1)[1]
    for flag, default in (("--model-dir", "runs/tf_sine"), ("--steps", "3000"), ("--batch-size", "32"),
                          ("--learning-rate", "0.1"), ("--input-layout", "features"), ("--hidden-size", "30"),
                          ("--num-layers", "2"), ("--timesteps", "10"), ("--training-examples", "10000"),
                          ("--testing-examples", "1000"), ("--sample-gap", "0.01"), ("--dtype", "float32"),
                          ("--seed", "0"), ("--device", "cpu"), ("--save-every", "1000")):
        section = text.split(flag, 1)[1].split("\n  --", 1)[0]
        assert f"(default: {default})" in " ".join(section.split()), flag
    threads = " ".join(text.split("--threads", 1)[1].split("\n  --", 1)[0].split())
    assert "OMP_NUM_THREADS if set, else 1: the model's products" in threads, threads
    assert "MODEL_DIR/sin.png" in text


def test_a_run_prints_the_books_lines_and_writes_its_files(tmp_path, capsys):
    model_dir = tmp_path / "Models" / "model_2"
    rc, out, err = run(capsys, "--model-dir", str(model_dir), "--steps", "250", *SMALL)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("ports.tf_sine: the TF book's sine LSTM (2 x 6, one time step of 10 features")
    logged = [LOSS_LINE.match(line) for line in lines if LOSS_LINE.match(line)]
    assert [int(m.group(2)) for m in logged] == [1, 101, 201]  # LoggingTensorHook, every 100 steps of the fit
    ck = load_checkpoint(model_dir / "model")
    assert [float(m.group(1)) for m in logged] == [float("%g" % ck["losses"][k]) for k in (0, 100, 200)]
    assert f"Loss for final step: {ck['losses'][-1]:g}." in lines
    printed = [RMSE_LINE.match(line) for line in lines if RMSE_LINE.match(line)]
    assert len(printed) == 1
    results = json.loads((model_dir / "sin.json").read_text())
    assert printed[0].group(1) == "%f" % results["rmse"] and results["global_step"] == 250
    assert len(results["predicted"]) == len(results["real_sin"]) == 60 - 11
    for name in ("sin.png", "loss.png"):
        assert (model_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.split("Files written:\n", 1)[1].count(str(model_dir)) == 4
    # the printed RMSE is the model directory's model's
    config = Config(hidden_size=6, training_examples=300, testing_examples=60, batch_size=8)
    estimator = Estimator(config, model_dir)
    data = book_data(config)
    from ports.tf_sine import rmse
    assert rmse(estimator.predict(data.test_X), data.test_y) == results["rmse"]

    rc, out, _ = run(capsys, "--model-dir", str(tmp_path / "quiet"), "--steps", "3", "--no-plot", *SMALL)
    assert rc == 0 and not list((tmp_path / "quiet").glob("*.png"))


def test_a_second_run_trains_as_many_steps_again_on_the_same_batches(tmp_path, capsys):
    """contrib.learn's fit(steps=N) on a restored model_dir: N more steps, from a new data feeder."""
    model_dir = tmp_path / "m"
    for _ in range(2):
        rc, out, err = run(capsys, "--model-dir", str(model_dir), "--steps", "30", *SMALL)
        assert rc == 0, err
    assert "Restored " in out and "at global step 30" in out and "step = 31" in out
    twice = load_checkpoint(model_dir / "model")
    assert twice["global_step"] == 60 and len(twice["losses"]) == 60
    config = Config(hidden_size=6, training_examples=300, testing_examples=60, batch_size=8)
    by_hand = Estimator(config, tmp_path / "by_hand", generator=torch.Generator().manual_seed(0))
    data = book_data(config)
    quiet = dict(progress=False, log=lambda line: None)
    by_hand.fit(data, 30, **quiet)
    by_hand.fit(data, 30, **quiet)  # a new feeder: the first run's batches again
    assert by_hand.losses == twice["losses"]
    for key, value in by_hand.model.state_dict().items():
        assert torch.equal(value, twice["model"][key]), key


def test_a_diverging_run_is_one_error_line_and_keeps_its_last_checkpoint(tmp_path, capsys):
    d = tmp_path / "m"
    rc, out, err = run(capsys, "--model-dir", str(d), "--steps", "20", "--learning-rate", "1e38", "--save-every", "1",
                       *SMALL)
    assert rc == 2 and "Traceback" not in err, err
    line = re.fullmatch(r"error: the loss became (inf|nan) at step (\d+) \(the learning rate 1e\+38 may be too "
                        r"high\)\n", err)
    assert line, err
    saved = load_checkpoint(d / "model")  # the last step saved before it, every value finite
    assert saved["global_step"] == int(line.group(2)) - 1
    assert all(np.isfinite(v.numpy()).all() for v in saved["model"].values())


def test_a_stopped_run_is_finished_exactly_by_the_next(tmp_path, capsys):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run(capsys, "--model-dir", str(whole), "--steps", "40", *SMALL)[0] == 0
    rc, out, _ = run(capsys, "--model-dir", str(parts), "--steps", "40", "--stop-after", "15", "--save-every", "4",
                     *SMALL)
    assert rc == 0 and "Stopped after 15 steps, at step 15 of 40" in out and "Mean Square Error" not in out
    rc, out, _ = run(capsys, "--model-dir", str(parts), "--steps", "99", *SMALL)
    assert rc == 0 and "Finishing the fit stopped at step 15 (of 40)" in out
    a, b = load_checkpoint(whole / "model"), load_checkpoint(parts / "model")
    assert a["losses"] == b["losses"] and b["global_step"] == 40 and b["unfinished"] is None
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert (json.loads((whole / "sin.json").read_text())["rmse"] ==
            json.loads((parts / "sin.json").read_text())["rmse"])


def test_ctrl_c_checkpoints_and_the_next_run_finishes(tmp_path, capsys, monkeypatch):
    from ports.tf_sine import train

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run(capsys, "--model-dir", str(whole), "--steps", "25", *SMALL)[0] == 0
    real_step, calls = train.train_step, {"n": 0}

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(train, "train_step", interrupted)
    rc, out, err = run(capsys, "--model-dir", str(parts), "--steps", "25", *SMALL)
    assert rc == 130 and "Stopped at step 11" in out and "interrupted" in err
    monkeypatch.setattr(train, "train_step", real_step)
    assert run(capsys, "--model-dir", str(parts), "--steps", "25", *SMALL)[0] == 0
    a, b = load_checkpoint(whole / "model"), load_checkpoint(parts / "model")
    assert a["losses"] == b["losses"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_the_ten_step_reading_and_float64(tmp_path, capsys):
    rc, out, err = run(capsys, "--model-dir", str(tmp_path / "s"), "--steps", "5", "--input-layout", "steps",
                       "--dtype", "float64", *SMALL)
    assert rc == 0, err
    assert "10 time steps of one feature" in out.splitlines()[0]
    ck = load_checkpoint(tmp_path / "s" / "model")
    assert ck["model"]["lstm.weight_ih_l0"].shape == (24, 1) and ck["model"]["lstm.weight_ih_l0"].dtype == torch.float64


def test_a_restored_learning_rate_wins_as_in_tf(tmp_path, capsys):
    model_dir = str(tmp_path / "m")
    assert run(capsys, "--model-dir", model_dir, "--steps", "2", "--learning-rate", "0.05", *SMALL)[0] == 0
    rc, out, _ = run(capsys, "--model-dir", model_dir, "--steps", "2", *SMALL)
    assert rc == 0 and "learning rate 0.05 is used, not --learning-rate 0.1" in out
    assert load_checkpoint(tmp_path / "m" / "model")["learning_rate"] == float(np.float32(0.05))  # a float32 variable


def _one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("argv, fragments", [
    (["--steps", "0"], ["--steps: must be an integer at least 1; got 0"]),
    (["--steps", "x"], ["--steps: 'x' is not an integer"]),
    (["--batch-size", "-3"], ["--batch-size: must be an integer at least 1; got -3"]),
    (["--hidden-size", "0"], ["--hidden-size"]),
    (["--threads", "0"], ["--threads: must be an integer at least 1"]),
    (["--save-every", "0"], ["--save-every"]),
    (["--stop-after", "0"], ["--stop-after"]),
    (["--learning-rate", "nan"], ["--learning-rate: must be a finite number"]),
    (["--learning-rate", "-1"], ["--learning-rate"]),
    (["--sample-gap", "0"], ["--sample-gap: must be a finite number above 0"]),
    (["--sample-gap", "inf"], ["--sample-gap"]),
    (["--training-examples", "11"], ["--training-examples must be at least --timesteps + 2 = 12"]),
    (["--testing-examples", "3", "--timesteps", "2"], ["--testing-examples must be at least --timesteps + 2 = 4"]),
    (["--input-layout", "rows"], ["--input-layout", "invalid choice"]),
    (["--dtype", "float16"], ["--dtype"]),
    (["--bogus"], ["unrecognized arguments: --bogus"]),
    (["--training-examples", "100000000"], ["x timesteps = 1,000,010,000 values of data; the cap is"]),
    (["--hidden-size", "100000"], ["LSTM weights; the cap is"]),
])
def test_bad_flags_are_one_error_line(argv, fragments, tmp_path, capsys):
    rc, out, err = run(capsys, "--model-dir", str(tmp_path / "m"), *argv)
    assert rc == 2
    _one_error_line(err, *fragments)
    assert not (tmp_path / "m").exists()


def test_a_missing_gpu_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, _, err = run(capsys, "--model-dir", str(tmp_path / "m"), "--device", "cuda:1")
    assert rc == 2
    _one_error_line(err, "--device: cuda:1: no CUDA device")


def test_bad_model_directories_are_one_error_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    rc, _, err = run(capsys, "--model-dir", str(a_file), *SMALL)
    assert rc == 2
    _one_error_line(err, "--model-dir: ", "is a file, not a directory")

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "model.json").write_text("{not json")
    rc, _, err = run(capsys, "--model-dir", str(damaged), *SMALL)
    assert rc == 2
    _one_error_line(err, "model.json: the manifest is not valid JSON")

    other = tmp_path / "other"
    assert run(capsys, "--model-dir", str(other), "--steps", "1", *SMALL)[0] == 0
    rc, _, err = run(capsys, "--model-dir", str(other), "--steps", "1", *SMALL[:-1], "--hidden-size", "7")
    assert rc == 2
    _one_error_line(err, "holds another model: hidden_size 6 (this run: 7)", "Use another --model-dir")

    tf_dir = tmp_path / "tf"
    tf_dir.mkdir()
    (tf_dir / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-3000"\n')
    rc, _, err = run(capsys, "--model-dir", str(tf_dir), *SMALL)
    assert rc == 2
    _one_error_line(err, str(tf_dir))


def test_a_tampered_checkpoint_is_refused(tmp_path, capsys):
    model_dir = tmp_path / "m"
    assert run(capsys, "--model-dir", str(model_dir), "--steps", "2", *SMALL)[0] == 0
    manifest = json.loads((model_dir / "model.json").read_text())
    manifest["content"]["global_step"] = 7  # the loss history says 2
    (model_dir / "model.json").write_text(json.dumps(manifest))
    rc, _, err = run(capsys, "--model-dir", str(model_dir), *SMALL)
    assert rc == 2  # the tensor file seals the settings: an edited manifest never reaches the model
    _one_error_line(err, "model.json", "digest sealed in the tensor file")
    manifest["content"]["global_step"] = 2
    manifest["content"]["config"]["hidden_size"] = 10 ** 9
    (model_dir / "model.json").write_text(json.dumps(manifest))
    rc, _, err = run(capsys, "--model-dir", str(model_dir), *SMALL)
    assert rc == 2
    _one_error_line(err, "model.json", "digest sealed in the tensor file")


def test_the_books_program_from_the_shell(tmp_path):
    """``python -m ports.tf_sine`` as the book runs it: 3,000 steps, its lines, the plot."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "ports.tf_sine", "--model-dir", str(tmp_path / "Models" / "model_2"),
                           "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(bool(LOSS_LINE.match(line)) for line in lines) == 30
    assert "loss = " in lines[1] and lines[1].endswith(", step = 1")
    printed = RMSE_LINE.match([line for line in lines if RMSE_LINE.match(line)][0]).group(1)
    assert float(printed) < 0.05  # the book printed 0.009076 after its 3,000 steps; untrained, it is about 0.7
    assert (tmp_path / "Models" / "model_2" / "sin.png").stat().st_size > 10000
    results = json.loads((tmp_path / "Models" / "model_2" / "sin.json").read_text())
    assert results["global_step"] == 3000 and printed == "%f" % results["rmse"]
    predicted, real = np.array(results["predicted"]), np.array(results["real_sin"])
    assert_close(np.sqrt(np.mean((predicted - real) ** 2)), results["rmse"], dtype=torch.float32)
