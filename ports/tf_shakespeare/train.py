"""The recipe's training loop (03_implementing_lstm.py, "Train model"), resumable.

Per epoch: shuffle the batch list in place (Python ``random.shuffle``; the port seeds its own
``random.Random``), roll the targets, reset the LSTM state to zeros, then for every batch run cost,
final state and the train op together: the state carried to the next batch is the one computed with
the weights *before* that step's update, even though consecutive batches are unrelated text after the
shuffle (a quirk the port keeps). The train op is ``tf.clip_by_global_norm(tf.gradients(cost,
tf.trainable_variables()), 4.5)`` then ``AdamOptimizer(0.001).apply_gradients``: the embedding's
gradient is IndexedSlices (its global-norm term counts every token occurrence separately, and Adam takes
its sparse path), the others are dense. :class:`compat.tf1.TFAdam` is TF's Adam, not
``torch.optim.Adam``: TF folds the bias corrections into the step size and adds epsilon to ``sqrt(v)``
afterwards (``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``; ``var -= lr_t * m / (sqrt(v) + eps)``),
where torch divides by ``sqrt(v / (1 - beta2^t)) + eps``; the two differ most in the first steps and for
rarely seen words' embedding rows.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch

from compat import checkpoint
from compat.atomic import atomic_write_text
from compat.checkpoint import CheckpointError, Fields
from compat.errors import FileFormatError, TrainingDiverged
from compat.progress import Progress
from compat.step_graph import DeviceLog, capture_reason, copy_into, step_runner
from compat.tf1 import TFAdam, clip_by_global_norm_, tf1_cell_variables
from compat.token_ids import check_token_ids
from ports.tf_shakespeare.config import DTYPES, TrainConfig
from ports.tf_shakespeare.data import load_corpus, make_batches, targets_of, vocab_size_of, vocab_to_json
from ports.tf_shakespeare.model import LSTMModel

CHECKPOINT_FORMAT = "tf_shakespeare.checkpoint"
CHECKPOINT_NAME = "model"  # model.json and model.<digest>.safetensors (compat.checkpoint)
VOCAB_NAME = "vocab.json"
PLOT_NAME = "loss.png"
# Caps on a checkpoint's sizes that no tensor bounds (docs/security.md): batches are
# [batch_size, training_seq_len]; the carried state [batch_size, rnn_size].
MAX_BATCH_SIZE = 1 << 16
MAX_SEQ_LEN = 1 << 16
MAX_BATCH_WORDS = 1 << 24
MAX_COUNT = 1 << 40
MAX_EPOCHS = 1_000_000
MAX_PRIME_TEXTS = 100
#: Iterations between read-backs of a captured run's losses where nothing shows or saves them sooner.
READBACK_STEPS = 100


def build_model(config: TrainConfig, vocab_size: int, device: str = "cpu",
                generator: Optional[torch.Generator] = None) -> LSTMModel:
    return LSTMModel(config.rnn_size, vocab_size, config.batch_size, config.training_seq_len,
                     forget_bias=config.forget_bias, dtype=DTYPES[config.dtype], device=device,
                     generator=generator)


def make_optimizer(model: LSTMModel, learning_rate: float) -> TFAdam:
    """TF's AdamOptimizer over the recipe's trainable variables; the embedding on TF's sparse path."""
    return TFAdam([{"params": [model.W, model.b, model.cell.kernel, model.cell.bias]},
                   {"params": [model.embedding_mat], "sparse": True}], lr=learning_rate)


def train_step(model: LSTMModel, optimizer: TFAdam, x, y, state, clip_norm: float):
    """One ``sess.run([cost, final_state, train_op])``: returns ``(cost, final_state, global_norm)``."""
    x = model._check_ids(x, "x_data")
    cost, final_state, norm = _update(model, optimizer, x, y, state, clip_norm, check_ids=True)
    final_state = type(final_state)(*(t.detach() for t in final_state))
    return cost, final_state, norm


def _update(model: LSTMModel, optimizer: TFAdam, x, y, state, clip_norm: float, check_ids: bool):
    """The step's computation: ``(cost, final state, global norm)`` as tensors."""
    optimizer.zero_grad(set_to_none=True)
    embedded = model.embed(x)
    embedded.retain_grad()
    cost, final_state = model.cost(x, y, state, embedded=embedded, check_ids=check_ids)
    cost.backward()
    norm = clip_by_global_norm_(model.trainable_variables(), clip_norm,
                                indexed_slices={model.embedding_mat: embedded.grad})
    optimizer.step()
    return cost.detach(), final_state, norm


class SyncFreeStep:
    """:func:`train_step` that reads nothing back from the device, on static buffers: the form a CUDA graph
    captures (:mod:`compat.step_graph`). ``x`` / ``y`` [batch_size, training_seq_len] and the carried
    ``state`` (``LSTMStateTuple(c, h)``) are buffers kept for the object's life (:meth:`load`,
    :meth:`set_state`); a step copies its final state back into ``state`` and returns ``(cost,
    global_norm)`` as 0-dim device tensors, the numbers :func:`train_step` gives. Check the ids on the host
    (:func:`compat.token_ids.check_token_ids`). :meth:`count_step` is what the step does on the host besides its kernels:
    TFAdam's Python step counters (saved in checkpoints), advanced again after each replay of a graph."""

    def __init__(self, model: LSTMModel, optimizer: TFAdam, batch_size: int, seq_len: int, clip_norm: float):
        device = model.W.device
        self.model, self.optimizer, self.clip_norm = model, optimizer, clip_norm
        self.x = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
        self.y = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
        self.state = model.zero_state(batch_size)

    def load(self, x, y) -> None:
        copy_into((self.x, self.y), (torch.as_tensor(x), torch.as_tensor(y)))

    def set_state(self, state) -> None:
        """The carried state replaced by ``state`` ((c, h)); None: zeros."""
        if state is None:
            with torch.no_grad():
                for t in self.state:
                    t.zero_()
            return
        copy_into(self.state, state)

    def count_step(self) -> None:
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                slots = self.optimizer.state.get(p)
                if slots and "step" in slots:
                    slots["step"] += 1

    def __call__(self):
        cost, final_state, norm = _update(self.model, self.optimizer, self.x, self.y, self.state, self.clip_norm,
                                          check_ids=False)
        copy_into(self.state, (t.detach() for t in final_state))
        return cost, norm


def _read_config(f: Fields, obj) -> TrainConfig:
    values = f.dict(obj, "config", keys=[fl.name for fl in dataclasses.fields(TrainConfig)])
    defaults = TrainConfig()
    for fl in dataclasses.fields(TrainConfig):
        v, name, default = values[fl.name], f"config/{fl.name}", getattr(defaults, fl.name)
        if isinstance(default, bool):
            f.bool(v, name)
        elif isinstance(default, int):
            f.int(v, name, 0, MAX_COUNT)
        elif isinstance(default, float):
            f.float(v, name)
        elif isinstance(default, str):
            f.str(v, name, choices=sorted(DTYPES))
        else:
            for k, text in enumerate(f.list(v, name, max_length=MAX_PRIME_TEXTS)):
                f.str(text, f"{name}/{k}", max_length=10_000)
    for name in ("rnn_size", "epochs", "save_every", "eval_every", "print_every"):
        f.int(values[name], f"config/{name}", 1, MAX_EPOCHS if name == "epochs" else MAX_COUNT)
    f.int(values["batch_size"], "config/batch_size", 1, MAX_BATCH_SIZE)
    f.int(values["training_seq_len"], "config/training_seq_len", 1, MAX_SEQ_LEN)
    f.int(values["seed"], "config/seed", 0, (1 << 63) - 1)
    f.float(values["learning_rate"], "config/learning_rate", lo=0.0)
    f.float(values["clip_norm"], "config/clip_norm", lo=0.0)
    if values["batch_size"] * values["training_seq_len"] > MAX_BATCH_WORDS:
        raise f.error("config", f"batches of {values['batch_size']} x {values['training_seq_len']} words; the cap is "
                                f"{MAX_BATCH_WORDS:,} words")
    return TrainConfig.from_json(values)


def _read_optimizer(f: Fields, obj, config: TrainConfig, vocab_size: int) -> dict:
    """A TFAdam state_dict of :func:`make_optimizer`'s groups: hyperparameters and slot shapes checked."""
    reference = make_optimizer(build_model(config, vocab_size, device="meta"), config.learning_rate)
    shapes = {}
    for group in reference.param_groups:
        for p in group["params"]:
            shapes[len(shapes)] = tuple(p.shape)
    expected_groups = reference.state_dict()["param_groups"]
    obj = f.dict(obj, "optimizer", keys=("state", "param_groups"))
    groups = f.list(obj["param_groups"], "optimizer/param_groups", length=len(expected_groups))
    for k, (group, ref) in enumerate(zip(groups, expected_groups)):
        where = f"optimizer/param_groups/{k}"
        f.dict(group, where, keys=ref.keys())
        if group["params"] != ref["params"] or group["sparse"] != ref["sparse"]:
            raise f.error(where, f"params {describe_list(group['params'])} / sparse {group['sparse']!r}; this model's "
                                 f"optimizer has {ref['params']} / {ref['sparse']}")
        f.float(group["lr"], f"{where}/lr", lo=0.0)
        f.float(group["beta1"], f"{where}/beta1", lo=0.0, hi=1.0)
        f.float(group["beta2"], f"{where}/beta2", lo=0.0, hi=1.0)
        f.float(group["epsilon"], f"{where}/epsilon", lo=0.0)
    state = f.dict(obj["state"], "optimizer/state")
    dtype = DTYPES[config.dtype]
    for index, slots in state.items():
        where = f"optimizer/state/{index}"
        if index not in shapes:
            raise f.error(where, f"no parameter {index} (the optimizer has {len(shapes)})")
        f.dict(slots, where, keys=("step", "m", "v", "beta1_power", "beta2_power"))
        f.int(slots["step"], f"{where}/step", 0, MAX_COUNT)
        for name in ("m", "v"):
            f.tensor(slots[name], f"{where}/{name}", shape=shapes[index], dtypes=(dtype,))
        for name in ("beta1_power", "beta2_power"):
            f.tensor(slots[name], f"{where}/{name}", shape=(), dtypes=(torch.float32,))
    return obj


def describe_list(value) -> str:
    return repr(value) if isinstance(value, list) and len(value) < 10 else "(not a short list)"


def _read_rng_state(f: Fields, obj) -> list:
    """Python ``random.getstate()`` as a list: [3, 625 ints (624 words, then the position 0..624), gauss]."""
    obj = f.list(obj, "progress/rng_state", length=3)
    f.int(obj[0], "progress/rng_state/0", 3, 3)
    words = f.list(obj[1], "progress/rng_state/1", length=625)
    for k, w in enumerate(words[:624]):
        f.int(w, f"progress/rng_state/1/{k}", 0, (1 << 32) - 1)
    f.int(words[624], "progress/rng_state/1/624", 0, 624)
    if obj[2] is not None:
        f.float(obj[2], "progress/rng_state/2")
    return obj


def load_checkpoint_file(path, map_location="cpu", *, allow_nonfinite: bool = False) -> dict:
    """A port checkpoint (``model.json`` and its tensor file; ``path`` may be the run's folder), every field
    checked before anything is allocated: the config's types, ranges and caps, the tensors' names, shapes and
    dtypes against the model and optimizer that config and the recorded vocabulary size build (a config
    asking for more than the tensor file holds is refused), the progress, the random state. Weights holding
    NaN or infinite values are refused by name unless ``allow_nonfinite``. Tensors are returned on the CPU."""
    try:
        ck = checkpoint.read(path, CHECKPOINT_FORMAT, default_name=CHECKPOINT_NAME)
    except CheckpointError:
        raise
    except FileFormatError as e:
        raise CheckpointError(str(e)) from None
    f = Fields(ck)
    c = f.dict(ck.content, "content", keys=("config", "data", "model", "optimizer", "progress", "lstm_state",
                                            "train_loss", "epoch_seconds"))
    config = _read_config(f, c["config"])
    data = f.dict(c["data"], "data", keys=("vocab_size", "num_words", "num_batches"))
    vocab_size = f.int(data["vocab_size"], "data/vocab_size", 2, MAX_COUNT)
    f.int(data["num_words"], "data/num_words", 1, MAX_COUNT)
    num_batches = f.int(data["num_batches"], "data/num_batches", 1, MAX_COUNT)
    dtype = DTYPES[config.dtype]
    expected = checkpoint.expected_shapes(lambda: build_model(config, vocab_size, device="meta"))
    f.state_dict(c["model"], "model", expected, dtypes=(dtype,))
    _read_optimizer(f, c["optimizer"], config, vocab_size)
    prog = f.dict(c["progress"], "progress", keys=("iteration_count", "epoch", "batch_index", "order", "rng_state"))
    f.int(prog["iteration_count"], "progress/iteration_count", 1, MAX_COUNT)
    f.int(prog["epoch"], "progress/epoch", 0, MAX_EPOCHS)
    f.int(prog["batch_index"], "progress/batch_index", 0, num_batches - 1)
    order = f.list(prog["order"], "progress/order", length=num_batches)
    if sorted(f.int(v, f"progress/order/{k}", 0, num_batches - 1) for k, v in enumerate(order)) != \
            list(range(num_batches)):
        raise f.error("progress/order", f"not a permutation of the {num_batches} batches")
    _read_rng_state(f, prog["rng_state"])
    if c["lstm_state"] is not None:
        for k, ref in enumerate(f.list(c["lstm_state"], "lstm_state", length=2)):
            f.tensor(ref, f"lstm_state/{k}", shape=(config.batch_size, config.rnn_size), dtypes=(dtype,))
    f.floats(c["train_loss"], "train_loss", MAX_COUNT)
    f.floats(c["epoch_seconds"], "epoch_seconds", MAX_EPOCHS)
    out = ck.materialize(allow_nonfinite)
    out["format"] = CHECKPOINT_FORMAT
    out["manifest"] = str(ck.manifest)
    return out


def _rng_state_to_list(state) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_state_from_list(obj) -> tuple:
    version, internal, gauss = obj
    return (int(version), tuple(int(v) for v in internal), gauss)


def _epoch_summary(losses: Sequence[float]) -> float:
    return float(np.mean(losses)) if len(losses) else float("nan")


def train(data_path, save_dir, config: Optional[TrainConfig] = None, *, resume: bool = False,
          max_iterations: Optional[int] = None, device: str = "cpu", progress: bool = True,
          plot: bool = True, log: Callable[[str], None] = print, on_step: Optional[Callable[[], None]] = None,
          cuda_graph: str = "off") -> dict:
    """Train as the recipe, writing ``model.json`` (and its tensor file), ``vocab.json`` and ``loss.png``
    under ``save_dir``.

    ``resume`` continues from ``save_dir/model.json`` (its stored config wins over ``config``, except
    ``epochs`` when given larger). ``max_iterations`` stops after that many iterations in this call (a
    checkpoint is written on stopping). ``on_step`` is called after every iteration (the CLI follows the
    machine's load there). Returns a summary dict.

    ``cuda_graph``: "auto" runs the step as one captured CUDA graph (:class:`SyncFreeStep`,
    :mod:`compat.step_graph`) where :func:`compat.step_graph.capture_reason` allows it (a CUDA device);
    "off" (or no CUDA) runs it eagerly. A captured run keeps the losses on the device and reads them back
    where they are shown or saved (the print and save iterations, the end of an epoch or of the
    call, every :data:`READBACK_STEPS` iterations otherwise): the same losses, a non-finite one still named
    by its iteration.
    """
    save_dir = Path(save_dir)
    ckpt_path = save_dir / CHECKPOINT_NAME
    ckpt = None
    if resume and (checkpoint.manifest_path(ckpt_path).exists() or (save_dir / "model.pt").exists()):
        ckpt = load_checkpoint_file(save_dir, map_location=device)
        stored = TrainConfig.from_json(ckpt["config"])
        if config is not None and config.epochs > stored.epochs:
            stored.epochs = config.epochs
        config = stored
        log(f"Resuming from {ckpt_path} (iteration {ckpt['progress']['iteration_count'] - 1})")
    config = config or TrainConfig()

    log("Loading Shakespeare Data")
    ids, ix2vocab, vocab2ix = load_corpus(data_path, config.min_word_freq, config.skip_chars)
    vocab_size = vocab_size_of(ix2vocab)
    log("Cleaning Text")
    log("Building Shakespeare Vocab")
    log(f"Vocabulary Length = {vocab_size}")
    batches = make_batches(ids, config.batch_size, config.training_seq_len)
    num_batches = len(batches)

    torch.manual_seed(config.seed)
    init_gen = torch.Generator().manual_seed(config.seed)
    model = build_model(config, vocab_size, "cpu", generator=init_gen).to(device)
    optimizer = make_optimizer(model, config.learning_rate)
    rng = random.Random(config.seed)
    order = list(range(num_batches))
    iteration_count, start_epoch, batch_index = 1, 0, 0
    state = None
    train_loss: List[float] = []
    epoch_seconds: List[float] = []
    if ckpt is not None:
        meta = ckpt["data"]
        if meta["vocab_size"] != vocab_size or meta["num_words"] != len(ids) or meta["num_batches"] != num_batches:
            raise CheckpointError(
                f"{ckpt_path} was trained on other data (vocab {meta['vocab_size']}, {meta['num_words']} words, "
                f"{meta['num_batches']} batches); {data_path} gives vocab {vocab_size}, {len(ids)} words, "
                f"{num_batches} batches")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        prog = ckpt["progress"]
        iteration_count, start_epoch, batch_index = prog["iteration_count"], prog["epoch"], prog["batch_index"]
        order = [int(k) for k in prog["order"]]
        rng.setstate(_rng_state_from_list(prog["rng_state"]))
        if ckpt.get("lstm_state") is not None:
            state = tuple(t.to(device) for t in ckpt["lstm_state"])
        train_loss = [float(v) for v in ckpt["train_loss"]]
        epoch_seconds = [float(v) for v in ckpt.get("epoch_seconds", [])]

    infer_model = model.infer_model()
    captured = capture_reason(cuda_graph, device) is None
    if captured:
        all_x = np.stack(batches)
        check_token_ids(all_x, vocab_size, "x_data")
        device_x = torch.from_numpy(all_x).to(device)
        device_y = torch.from_numpy(np.stack([targets_of(b) for b in batches])).to(device)
        step_fn = SyncFreeStep(model, optimizer, config.batch_size, config.training_seq_len, config.clip_norm)
        run_step = step_runner(step_fn, "auto", device, host_effects=step_fn.count_step)
        losses = DeviceLog(READBACK_STEPS, model.W.dtype, device)
        unread: List[int] = []  # the iterations whose losses are in ``losses``
    shown_batches = num_batches + 1 if config.recipe_batch_count else num_batches

    def save(epoch: int, next_batch: int, lstm_state, next_iteration: int) -> None:
        """Checkpoint the position "before batch ``next_batch`` of ``epoch``" (0: before its shuffle)."""
        payload = {
            "config": config.to_json(),
            "data": {"vocab_size": vocab_size, "num_words": int(len(ids)), "num_batches": num_batches},
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "progress": {"iteration_count": next_iteration, "epoch": epoch, "batch_index": next_batch,
                         "order": list(order), "rng_state": _rng_state_to_list(rng.getstate())},
            "lstm_state": None if next_batch == 0 else [t.detach().cpu() for t in lstm_state],
            "train_loss": list(train_loss), "epoch_seconds": list(epoch_seconds),
        }
        checkpoint.save(ckpt_path, CHECKPOINT_FORMAT, payload)
        atomic_write_text(save_dir / VOCAB_NAME, json.dumps(vocab_to_json(vocab2ix)))

    def write_plot() -> None:
        if plot and train_loss:
            from compat.plots import save_curves

            save_curves(save_dir / PLOT_NAME, {"train": (list(range(1, len(train_loss) + 1)), train_loss)},
                        title="Sequence to Sequence Loss", xlabel="Generation", ylabel="Loss")

    total_iterations = config.epochs * num_batches
    done_before = iteration_count - 1
    bar = Progress(total=total_iterations, desc="train", unit="words/s", enabled=progress)
    bar.count = done_before
    iterations_this_call = 0
    stopped_early = False

    def limit_reached() -> bool:
        return max_iterations is not None and iterations_this_call >= max_iterations

    for epoch in range(start_epoch, config.epochs):
        if limit_reached():
            stopped_early = True
            save(epoch, batch_index, state, iteration_count)
            break
        if batch_index == 0:
            rng.shuffle(order)
            state = model.zero_state()
        log(f"Starting Epoch #{epoch + 1} of {config.epochs}.")
        epoch_start = time.perf_counter()
        epoch_losses: List[float] = []

        def record(iteration: int, loss: float) -> None:
            if not math.isfinite(loss):
                raise TrainingDiverged(f"the loss became {loss} at iteration {iteration} (the learning rate "
                                       f"{config.learning_rate:g} may be too high)")
            train_loss.append(loss)
            epoch_losses.append(loss)
            bar.fields["loss"] = f"{loss:.3f}"

        def read_back() -> None:
            for iteration, loss in zip(unread, losses.read()):
                record(iteration, loss)
            unread.clear()

        if captured:
            step_fn.set_state(state)
            state = step_fn.state
        for ix in range(batch_index, num_batches):
            if captured:
                step_fn.load(device_x[order[ix]], device_y[order[ix]])
                cost, _ = run_step()
                losses.append(cost)
                unread.append(iteration_count)
                if (losses.full or ix + 1 == num_batches or iteration_count % config.print_every == 0
                        or iteration_count % config.save_every == 0 or iterations_this_call + 1 == max_iterations):
                    read_back()
            else:
                batch = batches[order[ix]]
                x = torch.as_tensor(batch, device=device)
                y = torch.as_tensor(targets_of(batch), device=device)
                cost, state, _ = train_step(model, optimizer, x, y, state, config.clip_norm)
                record(iteration_count, float(cost))
            iterations_this_call += 1
            bar.update(1, items=config.batch_size * config.training_seq_len)
            if iteration_count % config.print_every == 0:
                log(f"Iteration: {iteration_count}, Epoch: {epoch + 1}, Batch: {ix + 1} out of {shown_batches}, "
                    f"Loss: {train_loss[-1]:.2f}")
            if iteration_count % config.save_every == 0:
                save(epoch, (ix + 1) % num_batches, state, iteration_count + 1) if ix + 1 < num_batches else \
                    save(epoch + 1, 0, None, iteration_count + 1)
                log(f"Model Saved To: {checkpoint.manifest_path(ckpt_path)}")
                write_plot()
            if iteration_count % config.eval_every == 0:
                for prime in config.prime_texts:
                    log(infer_model.sample(prime, ix2vocab, vocab2ix, num=10, unknown="zero"))
            iteration_count += 1
            if on_step is not None:
                on_step()
            if limit_reached() and ix + 1 < num_batches:
                stopped_early = True
                save(epoch, ix + 1, state, iteration_count)
                break
        if stopped_early:
            break
        seconds = time.perf_counter() - epoch_start
        if batch_index == 0:
            epoch_seconds.append(seconds)
        log(f"Epoch {epoch + 1} done in {seconds:.1f} s, mean loss {_epoch_summary(epoch_losses):.4f}")
        batch_index = 0
        save(epoch + 1, 0, None, iteration_count)
    bar.close()
    if not stopped_early:
        log(f"Model Saved To: {checkpoint.manifest_path(ckpt_path)}")
    write_plot()
    return {"vocab_size": vocab_size, "num_batches": num_batches, "iterations": iteration_count - 1,
            "train_loss": train_loss, "epoch_seconds": epoch_seconds, "stopped_early": stopped_early,
            "checkpoint": str(checkpoint.manifest_path(ckpt_path))}


def load_trained(path, device: str = "cpu", *, allow_nonfinite: bool = False):
    """``(model, ix2vocab, vocab2ix, config)`` from a saved checkpoint (``model.json``, or the run's folder)
    and the ``vocab.json`` beside it; every size is checked before the model is built."""
    from ports.tf_shakespeare.data import read_vocab_json

    ckpt = load_checkpoint_file(path, map_location=device, allow_nonfinite=allow_nonfinite)
    config = TrainConfig.from_json(ckpt["config"])
    vocab_file = Path(ckpt["manifest"]).parent / VOCAB_NAME
    if not vocab_file.exists() and not vocab_file.is_symlink():
        raise CheckpointError(f"{vocab_file}: the vocabulary saved with {ckpt['manifest']} is missing")
    ix2vocab, vocab2ix = read_vocab_json(vocab_file)
    vocab_size = ckpt["data"]["vocab_size"]
    if max(ix2vocab) >= vocab_size:
        raise CheckpointError(f"{vocab_file}: word id {max(ix2vocab)} does not fit the checkpoint's vocabulary "
                              f"size {vocab_size}")
    model = build_model(config, vocab_size, device)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ix2vocab, vocab2ix, config


def load_tf1_model(checkpoint, vocab_path, device: str = "cpu", scope: str = "lstm_model"):
    """``(model, ix2vocab, vocab2ix)`` from the recipe's own TF1 checkpoint and vocabulary
    (``temp/shakespeare_model/model-N`` and ``vocab.pkl``); sizes come from the checkpoint's W and every
    variable's shape is checked against them before the model is built."""
    from compat.formats.tf import load_checkpoint
    from ports.tf_shakespeare.data import DataError, load_vocab_file

    if vocab_path is None:
        raise DataError("--tf-checkpoint needs --vocab (the recipe's vocab.pkl or a vocab.json)")
    ix2vocab, vocab2ix = load_vocab_file(vocab_path)
    variables = load_checkpoint(checkpoint)
    w_name = f"{scope}/lstm_vars/W"
    if w_name not in variables:
        raise CheckpointError(f"{checkpoint}: no variable {w_name!r}; is this the recipe's checkpoint?")
    w_shape = tuple(int(n) for n in np.shape(variables[w_name]))
    if len(w_shape) != 2 or min(w_shape) < 1:
        raise CheckpointError(f"{checkpoint}: {w_name} has shape {list(w_shape)}; the recipe's W is "
                              f"[rnn_size, vocab_size], both at least 1")
    rnn_size, vocab_size = w_shape
    if vocab_size < 2:
        raise CheckpointError(f"{checkpoint}: {w_name} has shape {list(w_shape)}: a vocabulary of {vocab_size} word")
    # Every variable's shape before anything is allocated: W alone cannot vouch for the cell's [2H, 4H].
    names = {(k[:-2] if k.endswith(":0") else k): v for k, v in variables.items()}
    H, V = rnn_size, vocab_size
    expected = {w_name: (H, V), f"{scope}/lstm_vars/b": (V,), f"{scope}/lstm_vars/embedding_mat": (V, H)}
    for cell_scope in ("basic_lstm_cell", "BasicLSTMCell"):
        try:
            _, _, (kernel_name, bias_name) = tf1_cell_variables(names, f"{scope}/rnn_decoder/{cell_scope}")
        except KeyError:
            continue
        expected.update({kernel_name: (2 * H, 4 * H), bias_name: (4 * H,)})
        break
    else:
        raise CheckpointError(f"{checkpoint}: no BasicLSTMCell variables under {scope}/rnn_decoder")
    for name, shape in expected.items():
        if name not in names:
            raise CheckpointError(f"{checkpoint}: no variable {name!r}")
        got = tuple(int(n) for n in np.shape(names[name]))
        if got != shape:
            raise CheckpointError(f"{checkpoint}: variable {name!r} has shape {list(got)}; with W of shape "
                                  f"{list(w_shape)} it must be {list(shape)}")
    if ix2vocab and max(ix2vocab) >= vocab_size:
        raise DataError(f"{vocab_path}: word id {max(ix2vocab)} does not fit the checkpoint's vocabulary "
                        f"size {vocab_size}")
    model = LSTMModel(rnn_size, vocab_size, 1, 1, device=device)
    model.load_tf1_variables(variables, scope=scope)
    model.eval()
    return model, ix2vocab, vocab2ix


PUBLISHED_LOSS = {"recipe start ~9.9": 9.9, "recipe after 10 epochs ~5.5-6.0": 5.75}


def report(save_dir, plot_path=None, device: str = "cpu", log: Callable[[str], None] = print) -> dict:
    """Summarise a run from its ``model.json``: losses at landmarks, per-epoch means and seconds, the
    prime texts' greedy samples; optionally plot the loss curve beside the recipe's published levels."""
    path = Path(save_dir)
    ckpt = load_checkpoint_file(path, map_location=device)
    config = TrainConfig.from_json(ckpt["config"])
    losses = [float(v) for v in ckpt["train_loss"]]
    nb = ckpt["data"]["num_batches"]
    model, ix2vocab, vocab2ix, _ = load_trained(path, device)
    summary = {"vocab_size": ckpt["data"]["vocab_size"], "num_batches": nb, "iterations": len(losses),
               "epochs_done": len(losses) // nb, "epoch_seconds": [float(s) for s in ckpt.get("epoch_seconds", [])]}
    log(f"vocabulary {summary['vocab_size']}, {nb} batches of {config.batch_size}x{config.training_seq_len}, "
        f"{len(losses)} iterations ({len(losses) / nb:.2f} epochs)")
    marks = [i for i in (1, 10, 50, 100, 250, 500, 1000, 1500) if i <= len(losses)]
    marks += [e * nb for e in range(1, len(losses) // nb + 1) if e * nb not in marks]
    summary["landmarks"] = {i: losses[i - 1] for i in sorted(marks)}
    for i in sorted(marks):
        log(f"  iteration {i:5d}: loss {losses[i - 1]:.4f}")
    summary["epoch_means"] = [float(np.mean(losses[e * nb:(e + 1) * nb])) for e in range(len(losses) // nb)]
    for e, (m, s) in enumerate(zip(summary["epoch_means"], summary["epoch_seconds"] + [float("nan")] * 99), 1):
        log(f"  epoch {e}: mean loss {m:.4f}, {s:.0f} s")
    summary["samples"] = [model.infer_model().sample(p, ix2vocab, vocab2ix, num=10, unknown="zero")
                          for p in config.prime_texts]
    for s in summary["samples"]:
        log(f"  {s}")
    if plot_path is not None and losses:
        from compat.plots import save_curves

        save_curves(plot_path, {"port (train loss per batch)": (list(range(1, len(losses) + 1)), losses)},
                    title="tf_shakespeare: Sequence to Sequence Loss (pg100.txt)", xlabel="Generation",
                    ylabel="Loss", hlines=PUBLISHED_LOSS)
        log(f"plot written to {plot_path}")
    return summary
