"""``python -m ports.tf_sine``: the TF book's sine-curve LSTM regressor, as the program runs it.

Trains the book's model (two BasicLSTMCells of 30 units under dynamic_rnn, fully_connected, mean squared
error, optimize_loss with Adagrad 0.1) for 3,000 steps of 32 examples in the feeder's order, on the model
directory's weights when it holds some (a second run trains 6,000 steps in all), prints the Estimator's
"loss = L, step = S" lines and the program's "Mean Square Error is: %f" (the root of the mean squared
error on the test curve), and plots the predictions against the real sine.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from compat import checkpoint, threads
from compat.atomic import atomic_write_text
from compat.cli import HelpFormatter, check_device, check_positive, fail, print_files, run_cli

from .config import DTYPES, INPUT_LAYOUTS, Config
from .data import book_data
from .train import Estimator, rmse, tf_float

PLOT_NAME = "sin.png"
# The program's own thread count (no --threads, no OMP_NUM_THREADS): one.
ONE_THREAD_WHY = ("the model's products, at most [32, 70] x [70, 120], are too small to split; a second thread only "
                  "adds wake-ups, docs/performance.md")
LOSS_PLOT_NAME = "loss.png"
RESULTS_NAME = "sin.json"


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (an unknown flag, a value that is not a number, a choice not offered) as the
    one ``error:`` line and status 2 of every other bad value, without the usage block."""

    def error(self, message):
        fail(f"{message} (python -m ports.tf_sine --help lists the options)")


# The program's settings as flags (--steps is TRAINING_STEPS), each described by its Config field.
CONFIG_FLAGS = {"--steps": "training_steps", "--batch-size": "batch_size", "--learning-rate": "learning_rate",
                "--input-layout": "input_layout", "--hidden-size": "hidden_size", "--num-layers": "num_layers",
                "--timesteps": "timesteps", "--training-examples": "training_examples",
                "--testing-examples": "testing_examples", "--sample-gap": "sample_gap", "--dtype": "dtype"}
CHOICES = {"input_layout": INPUT_LAYOUTS, "dtype": DTYPES}


def build_parser() -> argparse.ArgumentParser:
    defaults = Config()
    p = _Parser(prog="python -m ports.tf_sine", description=__doc__.split("\n\n")[1],
                formatter_class=HelpFormatter)
    p.add_argument("--model-dir", default="runs/tf_sine",
                   help="the Estimator's model_dir: restored when it holds a checkpoint, written during and after "
                        "training (the book: Models/model_2)")
    for flag, field in CONFIG_FLAGS.items():
        default = getattr(defaults, field)
        kind = dict(choices=CHOICES[field]) if field in CHOICES else dict(type=type(default))
        p.add_argument(flag, dest=field, default=default, help=Config.describe(field), **kind)
    p.add_argument("--seed", type=int, default=0,
                   help="seed of a new model's initial weights (TF's Estimator draws them unseeded)")
    p.add_argument("--device", default="cpu", help="torch device: cpu or cuda[:N]")
    threads.add_threads_argument(p, at_most=1, why=ONE_THREAD_WHY)
    p.add_argument("--save-every", type=int, default=1000,
                   help="checkpoint every N steps (and at the end, and on Ctrl-C)")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop this run after N steps, checkpointed; the next run finishes the fit on the same batches")
    p.add_argument("--plot", default=None,
                   help=f"the predictions against the real sine (PNG; default MODEL_DIR/{PLOT_NAME})")
    p.add_argument("--no-plot", action="store_true", help="write no plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _config(args) -> Config:
    """The run's Config from the flags, each bad value one error naming its flag."""
    check_positive(steps=args.training_steps, batch_size=args.batch_size, hidden_size=args.hidden_size,
                   num_layers=args.num_layers, timesteps=args.timesteps, training_examples=args.training_examples,
                   testing_examples=args.testing_examples, save_every=args.save_every, stop_after=args.stop_after,
                   threads=args.threads)
    if not (math.isfinite(args.sample_gap) and args.sample_gap > 0):
        fail(f"--sample-gap must be a finite number above 0; got {args.sample_gap}")
    if not (math.isfinite(args.learning_rate) and args.learning_rate >= 0):
        fail(f"--learning-rate must be a finite number of at least 0; got {args.learning_rate}")
    for flag, value in (("--training-examples", args.training_examples), ("--testing-examples", args.testing_examples)):
        if value < args.timesteps + 2:
            fail(f"{flag} must be at least --timesteps + 2 = {args.timesteps + 2} (generate_data makes len(seq) - "
                 f"TIMESTEPS - 1 examples); got {value}")
    try:
        return Config(**{field: getattr(args, field) for field in CONFIG_FLAGS.values()})
    except ValueError as exc:  # the caps on the data and the weights
        fail(f"the flags ask for too much: {exc}")


def main(argv: Optional[List[str]] = None, *, owns_process: bool = False) -> int:
    """The program; ``owns_process``: run as ``python -m`` (it may then choose the thread count)."""
    return run_cli(lambda a: _main(a, owns_process), argv)


def _main(argv: Optional[List[str]] = None, owns_process: bool = False) -> int:
    args = build_parser().parse_args(argv)
    config = _config(args)
    device = check_device(args.device)
    n_threads = threads.configure_threads(args.threads, owns_process=owns_process, at_most=1)
    model_dir = Path(args.model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        fail(f"--model-dir {model_dir}: not a folder")
    reading = ("one time step of %d features" if config.input_layout == "features" else "%d time steps of one feature")
    print(f"ports.tf_sine: the TF book's sine LSTM ({config.num_layers} x {config.hidden_size}, "
          f"{reading % config.timesteps}, Adagrad {config.learning_rate:g}) on {device}, {n_threads}; model directory {model_dir}/", flush=True)

    estimator = Estimator(config, model_dir, device=device, generator=torch.Generator().manual_seed(args.seed))
    run, skip = config, 0
    if estimator.restored:
        source = checkpoint.manifest_path(estimator.path) if estimator.restored == "port" else \
            f"TF's checkpoint in {model_dir}"
        print(f"Restored {source} at global step {estimator.global_step}", flush=True)
        if estimator.learning_rate != float(np.float32(config.learning_rate)):
            print(f"note: the model directory's learning rate {estimator.learning_rate:g} is used, not "
                  f"--learning-rate {config.learning_rate:g} (TF restores OptimizeLoss/learning_rate)", flush=True)
    if estimator.unfinished is not None:
        run = Config(**estimator.unfinished["run_config"])
        skip, target = estimator.unfinished["batches_fed"], estimator.unfinished["target_step"]
        print(f"Finishing the fit stopped at step {estimator.global_step} (of {target}), on its batches", flush=True)
    else:
        target = estimator.global_step + config.training_steps
    data = book_data(run)
    loss = estimator.fit(data, run=run, target_step=target, skip=skip, stop_after=args.stop_after,
                         save_every=args.save_every, progress=not args.no_progress,
                         log=lambda line: print(line, flush=True))
    if loss is not None:
        print(f"Loss for final step: {tf_float(loss)}.", flush=True)
    files = [(checkpoint.manifest_path(estimator.path), "the model directory's checkpoint (with the .safetensors "
                                                        "file beside it): weights, Adagrad accumulators, global step, "
                                                        "every step's loss; the next run continues from it")]
    if estimator.unfinished is not None:
        print(f"Stopped after {args.stop_after} steps, at step {estimator.global_step} of {target}", flush=True)
        print_files(files)
        return 0

    plots = None if args.no_plot else (Path(args.plot or model_dir / PLOT_NAME), model_dir / LOSS_PLOT_NAME)
    print_files(files + _evaluate(estimator, data, model_dir, plots))
    return 0


def _evaluate(estimator: Estimator, data, model_dir: Path, plots) -> list:
    """The program's ending: predict the test curve, print its line, keep the predictions, plot them against
    the real sine (and the loss per step). Returns the files written, for the closing list."""
    predicted = estimator.predict(data.test_X, estimator.config.predict_batch_size)
    real = data.test_y.reshape(-1)
    error = rmse(predicted, data.test_y)
    print("Mean Square Error is: %f" % error, flush=True)
    results = model_dir / RESULTS_NAME
    atomic_write_text(results, json.dumps({
        "global_step": estimator.global_step, "rmse": error, "config": estimator.config.to_dict(),
        "predicted": [float(v) for v in predicted], "real_sin": [float(v) for v in real]}) + "\n")
    files = [(results, "the test curve's predictions, the real sine and the RMSE (JSON)")]
    if plots is not None:
        from compat.plots import save_curves

        plot, loss_plot = plots
        xs = list(range(len(predicted)))
        save_curves(plot, {"predicted": (xs, predicted.tolist()), "real_sin": (xs, real.tolist())},
                    title=f"ports.tf_sine: test curve after {estimator.global_step} steps (RMSE {error:.6f})",
                    xlabel="test example", ylabel="sin")
        steps = list(range(estimator.first_loss_step, estimator.first_loss_step + len(estimator.losses)))
        save_curves(loss_plot, {"training loss (mean squared error)": (steps, estimator.losses)},
                    title="ports.tf_sine: loss per step", xlabel="global step", ylabel="loss", logy=True)
        files += [(plot, "predicted against real_sin (PNG)"), (loss_plot, "every step's loss (PNG)")]
    return files


__all__ = ["main", "build_parser"]
