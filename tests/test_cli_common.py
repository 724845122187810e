"""What the ports' command lines share: the progress bar's ETA, help with defaults, one-line errors,
plots that never break a run, the closing list of files."""
from __future__ import annotations

import argparse
import io

import pytest

from compat import cli, plots, progress
from compat.errors import InputError


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_eta_leaves_out_the_warm_up_step_and_follows_the_rate(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    bar = progress.Progress(total=1000, stream=io.StringIO())
    clock.now += 30.0  # the first step pays for warm-up
    bar.update(1)
    assert bar.eta() == pytest.approx(999 * 30.0)  # one measurement: all there is
    for _ in range(9):
        clock.now += 1.0
        bar.update(1)
    # Steps 2-10 took 1 s each: the warm-up no longer counts (elapsed / count would say 3.9 s a step).
    assert bar.eta() == pytest.approx(990 * 1.0)
    for _ in range(200):
        clock.now += 2.0
        bar.update(1)
    # A rate that changes is followed: after 200 steps of 2 s the smoothed time per step is ~2 s.
    assert bar.seconds_per_step() == pytest.approx(2.0, rel=1e-3)
    assert "ETA 26:20" in bar.line()  # 790 steps left at 2 s
    clock.now += 20.0
    bar.update(10)  # an update of several steps counts per step
    assert bar.seconds_per_step() == pytest.approx(2.0, rel=1e-3)


def test_help_shows_defaults():
    p = argparse.ArgumentParser(formatter_class=cli.HelpFormatter)
    p.add_argument("--epochs", type=int, default=13, help="epochs to train")
    p.add_argument("--lr", type=float, default=1.0, help="learning rate (default 1.0, the original's)")
    p.add_argument("--out", default=None, help="output folder")
    p.add_argument("--no-plot", action="store_true", help="no PNG")
    text = p.format_help()
    assert "epochs to train (default: 13)" in text
    assert "(default 1.0, the original's)" in text and "(default: 1.0)" not in text
    assert "output folder\n" in text and "no PNG\n" in text


def test_input_errors_are_one_line_and_status_2(capsys):
    def main(argv):
        raise InputError("data.pkl: field 'x' is not a list")

    assert cli.run_cli(main, []) == 2
    err = capsys.readouterr().err
    assert err == "error: data.pkl: field 'x' is not a list\n"

    def bug(argv):
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        cli.run_cli(bug, [])


def test_a_failing_plot_is_a_warning(tmp_path, capsys):
    target = tmp_path / "not-a-folder"
    target.write_text("a file where a folder should be")
    assert plots.save_curves(target / "curve.png", {"loss": ([1, 2], [3.0, 2.0])}) is False
    assert "warning: plot" in capsys.readouterr().err
    with pytest.raises(OSError):
        plots.save_curves(target / "curve.png", {"loss": ([1, 2], [3.0, 2.0])}, strict=True)
    assert plots.save_curves(tmp_path / "curve.png", {"loss": ([1, 2], [3.0, 2.0])}) is True
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_files_list_names_what_exists(tmp_path):
    a = tmp_path / "model.npz"
    a.write_bytes(b"x")
    out = io.StringIO()
    cli.print_files([(a, "the best parameters"), (tmp_path / "missing.png", "a plot")], stream=out)
    assert out.getvalue() == f"Files written:\n  {a}  the best parameters\n"


def test_check_device_names_a_missing_gpu_and_keeps_float32_exact_on_cuda(monkeypatch):
    import torch

    assert cli.check_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match=r"--device cuda:1: no CUDA device"):
        cli.check_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        assert cli.check_device("cuda") == "cuda"
        assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
