"""The command line of ``python -m ports.tf_ptb``: ptb_word_lm.py's main() with checkpoints, resume and a
perplexity plot.

Prints the original's lines ("Epoch: %d Learning rate: %.3f", "Epoch: %d Train Perplexity: %.3f",
"Epoch: %d Valid Perplexity: %.3f", "Test Perplexity: %.3f"). Validation runs with the training
config's batch and steps, the test set with the eval config (batch 1, steps 1), as in the original.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from typing import List, Optional

import torch

from compat import checkpoint, threads
from compat.atomic import atomic_write_text
from compat.checkpoint import CheckpointError, Fields
from compat.cli import ArgumentParser, Device, InputDir, InputPath, Int, OutputFile, check_device, print_files, run_cli
from compat.cli import fail
from compat.errors import FileFormatError, InputError
from compat.step_graph import add_cuda_graph_argument

from .config import PRESETS, Config
from .model import PTBModel
from .data import ptb_raw_data
from .train import run_epoch

CHECKPOINT_FORMAT = "ports.tf_ptb"
PUBLISHED = {"small": (37.99, 121.39, 115.91), "medium": (48.45, 86.16, 82.07), "large": (37.87, 82.62, 78.29)}
# Caps on a resumed config's sizes that no tensor of the checkpoint bounds (docs/security.md): the
# state is [batch_size, hidden_size] per layer, the logits [batch_size * num_steps, vocab_size].
MAX_BATCH_SIZE = 1 << 16
MAX_NUM_STEPS = 1 << 16
MAX_LOGITS = 1 << 28
MAX_EPOCHS = 1_000_000
MAX_LAYERS = 1024
HISTORY_LISTS = ("epochs", "learning_rate", "train_perplexity", "valid_perplexity", "epoch_seconds")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ports.tf_ptb", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small", choices=sorted(PRESETS),
                   help="configuration preset (ptb_word_lm's small/medium/large/test, or book)")
    p.add_argument("--data-path", "--data_path", dest="data_path", required=True, type=InputDir(),
                   help="directory holding ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    p.add_argument("--save", "--save_path", dest="save", default=None, type=OutputFile(),
                   help="checkpoint NAME, written atomically after every epoch: NAME.json (the config and history) "
                        "and NAME.<digest>.safetensors; the metrics go to NAME.metrics.json, the plot to NAME.png")
    p.add_argument("--resume", default=None, type=InputPath(suffixes=(".json",)),
                   help="checkpoint to resume training from (the NAME given to --save, or NAME.json; its config "
                        "is used)")
    p.add_argument("--load-tf", default=None, type=InputPath(suffixes=(".index",)),
                   help="initialise from a TF1 checkpoint (path or .npz of TF-named arrays) before training")
    p.add_argument("--shared-cell-weights", action="store_true",
                   help="one LSTM weight set for every layer, as MultiRNNCell([cell] * n) in TF >= 1.1")
    p.add_argument("--seed", type=Int(minimum=0), default=0, help="random seed for initialisation and dropout")
    p.add_argument("--device", type=Device(), default="cpu", help="torch device: cpu or cuda[:N]")
    add_cuda_graph_argument(p)
    threads.add_threads_argument(p)
    p.add_argument("--max-max-epoch", type=Int(minimum=0, maximum=MAX_EPOCHS), default=None,
                   help="override the preset's number of training epochs (0: evaluate only)")
    p.add_argument("--max-steps", type=Int(minimum=1), default=None,
                   help="stop every pass after this many steps (smoke runs; perplexities are then partial)")
    p.add_argument("--plot", default=None, type=OutputFile(),
                   help="PNG of the perplexity curves (default: NAME.png beside --save NAME, if given)")
    p.add_argument("--no-plot", action="store_true", help="write no plot")
    p.add_argument("--metrics", default=None, type=OutputFile(),
                   help="JSON file of the per-epoch figures (default: NAME.metrics.json beside --save NAME)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no intermediate perplexity lines within an epoch")
    return p


def save_checkpoint(path, model: PTBModel, config: Config, preset: str, epoch: int, history: dict) -> None:
    """The run as checkpoint ``path`` (``path.json`` and a ``.safetensors`` file beside it, no pickle).

    ``torch_rng``: torch's CPU generator (the dropout's draws on the CPU). A model on a CUDA device draws its
    dropout from that device's generator, kept as ``cuda_rng`` too (absent from a CPU run's checkpoint)."""
    content = {"preset": preset, "config": config.to_dict(), "epoch": epoch, "history": history,
               "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "torch_rng": torch.get_rng_state()}
    device = model.embedding.device
    if device.type == "cuda":
        content["cuda_rng"] = torch.cuda.get_rng_state(device)
    checkpoint.save(path, CHECKPOINT_FORMAT, content)


def restart_cudnn_dropout(device: torch.device) -> None:
    """Make cuDNN's dropout state a function of the CUDA generator's state now (call it where a checkpoint's
    epoch starts).

    cuDNN's dropout between LSTM layers keeps its own random state, a process-wide buffer that it draws
    afresh from the CUDA generator only after that generator's state was set (aten/src/ATen/native/cudnn/
    RNN.cpp ``get_dropout_state``, ``CUDAGeneratorImpl::reset_rnn_state``); otherwise the buffer runs on from
    earlier epochs, which no checkpoint can hold. Setting the generator to its own state here makes the
    next training call draw the buffer from the state a checkpoint keeps, in an uninterrupted run and in a
    resumed one alike. Nothing to do on the CPU."""
    if device.type == "cuda":
        torch.cuda.set_rng_state(torch.cuda.get_rng_state(device), device)


def _read_config(fields: Fields, obj) -> Config:
    values = fields.dict(obj, "config", keys=[f.name for f in dataclasses.fields(Config)])
    for f in dataclasses.fields(Config):
        v, name = values[f.name], f"config/{f.name}"
        if isinstance(f.default, bool):
            fields.bool(v, name)
        elif isinstance(f.default, int):
            fields.int(v, name, 0, MAX_EPOCHS)
        elif isinstance(f.default, float):
            fields.float(v, name)
        else:
            fields.str(v, name, max_length=100)
    fields.int(values["batch_size"], "config/batch_size", 1, MAX_BATCH_SIZE)
    fields.int(values["num_steps"], "config/num_steps", 1, MAX_NUM_STEPS)
    fields.int(values["num_layers"], "config/num_layers", 1, MAX_LAYERS)
    try:
        config = Config.from_dict(dict(values))
    except (ValueError, TypeError) as exc:
        raise fields.error("config", str(exc)) from None
    if config.batch_size * config.num_steps * config.vocab_size > MAX_LOGITS:
        raise fields.error("config", f"batch_size x num_steps x vocab_size = "
                                     f"{config.batch_size * config.num_steps * config.vocab_size:,} logits per step; the "
                                     f"cap is {MAX_LOGITS:,}")
    return config


def _read_history(fields: Fields, obj) -> dict:
    history = fields.dict(obj, "history", keys=HISTORY_LISTS + ("device", "test_perplexity"))
    out = {name: fields.floats(history[name], f"history/{name}", MAX_EPOCHS) for name in HISTORY_LISTS}
    out["epochs"] = [fields.int(v, f"history/epochs/{i}", 0, MAX_EPOCHS) for i, v in enumerate(history["epochs"])]
    if len({len(v) for v in out.values()}) > 1:
        raise fields.error("history", f"its lists have different lengths {[len(v) for v in out.values()]}")
    out["device"] = fields.str(history["device"], "history/device", max_length=100)
    test = history["test_perplexity"]
    out["test_perplexity"] = None if test is None else fields.float(test, "history/test_perplexity", finite=False)
    return out


def load_checkpoint(path, *, allow_nonfinite: bool = False) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, checked before anything is allocated: the config's
    types, ranges and caps, the tensors' names and shapes against the model that config builds (a config
    asking for more than the tensor file holds is refused), the history, the epoch and the RNG states
    (``cuda_rng`` where a CUDA run wrote one).
    Weights holding NaN or infinite values are refused by name unless ``allow_nonfinite``."""
    try:
        ck = checkpoint.read(path, CHECKPOINT_FORMAT)
    except CheckpointError:
        raise
    except FileFormatError as exc:
        raise CheckpointError(str(exc)) from None
    fields = Fields(ck)
    content = fields.dict(ck.content, "content", keys=("preset", "config", "epoch", "history", "model", "torch_rng"),
                          optional=("cuda_rng",))
    config = _read_config(fields, content["config"])
    expected = checkpoint.expected_shapes(lambda: PTBModel(config))
    fields.state_dict(content["model"], "model", expected)
    checkpoint.check_torch_rng_state(fields, content["torch_rng"], "torch_rng")
    rngs = {"torch_rng": content["torch_rng"]}
    if "cuda_rng" in content:
        rngs["cuda_rng"] = checkpoint.check_cuda_rng_state(fields, content["cuda_rng"], "cuda_rng")
    result = {"format": CHECKPOINT_FORMAT, "preset": fields.str(content["preset"], "preset", max_length=100),
              "config": config.to_dict(), "epoch": fields.int(content["epoch"], "epoch", 0, MAX_EPOCHS),
              "history": _read_history(fields, content["history"])}
    tensors = ck.materialize(allow_nonfinite, {"model": content["model"], **rngs})
    result["model"] = tensors["model"]
    result["torch_rng"] = checkpoint.checked_torch_rng_state(fields, tensors["torch_rng"], "torch_rng")
    if "cuda_rng" in tensors:
        result["cuda_rng"] = checkpoint.checked_cuda_rng_state(fields, tensors["cuda_rng"], "cuda_rng")
    return result


def read_tf_npz(path) -> dict:
    """The arrays of a ``--load-tf`` ``.npz`` (TF variable name -> array), each checked before it is read."""
    from compat.formats.npz import read_npz

    try:
        return read_npz(path, what="TF variable archive")
    except FileFormatError as exc:
        raise CheckpointError(str(exc)) from None


def _output_paths(args):
    """(plot, metrics): given, or NAME.png and NAME.metrics.json beside checkpoint NAME (--save NAME writes
    NAME.json: one name, three files that cannot be confused)."""
    name = str(checkpoint.checkpoint_name(args.save)) if args.save else None
    plot = None if args.no_plot else args.plot or (name + ".png" if name else None)
    metrics = args.metrics or (name + ".metrics.json" if name else None)
    return plot, metrics


def _write_outputs(args, preset: str, config: Config, history: dict) -> None:
    plot, metrics = _output_paths(args)
    if metrics:
        atomic_write_text(metrics, json.dumps({"preset": preset, "config": config.to_dict(), **history}, indent=1))
    if plot and history["epochs"]:
        from compat.plots import save_curves

        xs = history["epochs"]
        hlines = {}
        if preset in PUBLISHED and config.max_max_epoch == PRESETS[preset].max_max_epoch:
            train, valid, test = PUBLISHED[preset]
            hlines = {f"published train {train}": train, f"published valid {valid}": valid}
        save_curves(plot, {"train": (xs, history["train_perplexity"]), "valid": (xs, history["valid_perplexity"])},
                    title=f"ports.tf_ptb {preset}: perplexity per epoch", xlabel="epoch", ylabel="perplexity",
                    logy=True, hlines=hlines)


def main(argv: Optional[List[str]] = None, *, owns_process: bool = False) -> int:
    """The program; ``owns_process``: run as ``python -m`` (it may then choose the thread count)."""
    return run_cli(lambda a: _main(a, owns_process), argv, build_parser)


def _main(args: argparse.Namespace, owns_process: bool = False) -> int:
    check_device(args.device)
    n_threads = threads.configure_threads(args.threads, owns_process=owns_process)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    try:
        train_data, valid_data, test_data, vocab = ptb_raw_data(args.data_path)
    except (OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        fail(str(exc))

    history = {"epochs": [], "learning_rate": [], "train_perplexity": [], "valid_perplexity": [],
               "epoch_seconds": [], "device": str(device), "test_perplexity": None}
    start_epoch = 0
    preset = args.model
    if args.resume:
        try:
            ckpt = load_checkpoint(args.resume)
            config = Config.from_dict(dict(ckpt["config"]))
        except (CheckpointError, ValueError) as exc:
            fail(f"--resume {args.resume}: {exc}" if args.resume not in str(exc) else str(exc))
        preset = ckpt.get("preset", preset)
        history.update(ckpt["history"])
        history["device"] = str(device)
        start_epoch = int(ckpt["epoch"])
    else:
        config = Config.preset(preset)
        if args.shared_cell_weights:
            config = dataclasses.replace(config, shared_cell_weights=True)
    if args.max_max_epoch is not None:
        config = dataclasses.replace(config, max_max_epoch=args.max_max_epoch)
    if vocab != config.vocab_size:
        fail(f"--data-path {args.data_path}: the data's vocabulary has {vocab} words; config {preset} expects "
             f"vocab_size {config.vocab_size}")
    eval_config = config.eval_config()
    plot, metrics = _output_paths(args)
    kept = [str(p) for p in (args.save and checkpoint.manifest_path(args.save), metrics, plot) if p]
    print(f"ports.tf_ptb: ptb_word_lm.py's {preset} model ({config.num_layers} x {config.hidden_size}, "
          f"{config.max_max_epoch} epochs) on {args.data_path}, {device}, {n_threads}; "
          + (f"files: {', '.join(kept)}" if kept else "no files written (--save PATH keeps a checkpoint, "
                                                       "metrics and a plot)"), flush=True)

    model = PTBModel(config, is_training=True).to(device)
    if args.resume:
        model.load_state_dict(ckpt["model"])
        if "torch_rng" in ckpt:
            torch.set_rng_state(ckpt["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in ckpt:
            torch.cuda.set_rng_state(ckpt["cuda_rng"], device)
        elif device.type == "cuda":
            print(f"{args.resume} keeps no CUDA generator state: the dropout draws from --seed {args.seed} "
                  f"from here", flush=True)
        print(f"Resumed from {args.resume} after epoch {start_epoch}", flush=True)
    elif args.load_tf:
        source = args.load_tf
        try:
            if str(source).endswith(".npz"):
                source = read_tf_npz(source)
            used = model.load_tf1_variables(source)
        except (KeyError, ValueError, OSError) as exc:
            hint = (" (run with --shared-cell-weights)" if "one LSTM cell" in str(exc) else "")
            fail(f"--load-tf {args.load_tf}: {str(exc).strip(chr(34))}{hint}")
        print(f"Loaded {len(set(used.values()))} TF variables from {args.load_tf}", flush=True)

    progress = not args.no_progress
    for i in range(start_epoch, config.max_max_epoch):
        lr = config.learning_rate_at(i)
        print("Epoch: %d Learning rate: %.3f" % (i + 1, lr), flush=True)
        restart_cudnn_dropout(device)
        t0 = time.time()
        train_ppl = run_epoch(model, train_data, config.batch_size, config.num_steps, lr=lr, verbose=not args.quiet,
                              progress=progress, desc=f"epoch {i + 1} train", max_steps=args.max_steps,
                              on_step=n_threads.check, cuda_graph=args.cuda_graph)
        seconds = time.time() - t0
        print("Epoch: %d Train Perplexity: %.3f" % (i + 1, train_ppl), flush=True)
        valid_ppl = run_epoch(model, valid_data, config.batch_size, config.num_steps, progress=progress,
                              desc=f"epoch {i + 1} valid", max_steps=args.max_steps, cuda_graph=args.cuda_graph)
        print("Epoch: %d Valid Perplexity: %.3f" % (i + 1, valid_ppl), flush=True)
        for key, value in (("epochs", i + 1), ("learning_rate", lr), ("train_perplexity", train_ppl),
                           ("valid_perplexity", valid_ppl), ("epoch_seconds", seconds)):
            history[key].append(value)
        if args.save:
            save_checkpoint(args.save, model, config, preset, i + 1, history)
        _write_outputs(args, preset, config, history)

    test_ppl = run_epoch(model, test_data, eval_config.batch_size, eval_config.num_steps, progress=progress,
                         desc="test", max_steps=args.max_steps, cuda_graph=args.cuda_graph)
    print("Test Perplexity: %.3f" % test_ppl, flush=True)
    history["test_perplexity"] = test_ppl if math.isfinite(test_ppl) else None
    if args.save:
        save_checkpoint(args.save, model, config, preset, config.max_max_epoch, history)
        print("Saving model to %s." % args.save, flush=True)
    _write_outputs(args, preset, config, history)
    print_files([(args.save and checkpoint.manifest_path(args.save),
                  "checkpoint (with the .safetensors file beside it): weights, config, history; --resume reads it"),
                 (metrics, "per-epoch perplexities and timings (JSON)"), (plot, "perplexity per epoch (PNG)")])
    return 0
