"""``SKCompat(learn.Estimator(model_fn=lstm_model, model_dir=...))``: training, the model directory, predict.

One training step is one ``mon_sess.run([train_op, loss])`` of contrib.learn's ``Estimator._train_model``
with the data feeder's batch fed (:mod:`ports.tf_sine.data`). The train op is what
``tf.contrib.layers.optimize_loss(loss, global_step, optimizer="Adagrad", learning_rate=0.1)`` builds with
its defaults (contrib/layers/python/layers/optimizers.py): the gradients of the loss with respect to every
trainable variable, *no* gradient noise, multipliers, clipping or learning-rate decay
(``colocate_gradients_with_ops`` only places ops on devices), a float32 variable
``OptimizeLoss/learning_rate`` initialised to 0.1, ``AdagradOptimizer(lr)`` (:class:`compat.tf1.TFAdagrad`:
accumulators start at 0.1) and the global step advanced by one. The loss it returns was computed before
the update. Every 100 steps of a fit ``LoggingTensorHook`` logs ``loss = L, step = S`` (S counted after
the step); ``fit`` ends with ``Loss for final step: L.``.

The model directory. An Estimator restores the latest checkpoint of its ``model_dir`` before it trains,
and ``fit(steps=3000)`` trains 3,000 steps *more* (``StopAtStepHook(num_steps)``): running the program twice
trains 6,000 steps, the second time on the same batch order (a new DataFeeder) from the first run's weights
and Adagrad accumulators. The learning rate is a variable saved in the checkpoint too, so a second run
keeps the first run's rate whatever the code now says. This port's model directory holds ``model.json``
and its ``.safetensors`` file (:mod:`compat.checkpoint`): the variables, the accumulators, the global step,
the learning rate and every step's loss. Checkpoints are written every ``save_every`` steps, at the end
of a fit and on Ctrl-C; a fit that was stopped before its last step records how far it got, and the next
run finishes it on the same batches (TF's Estimator, which checkpoints every 10 minutes, would instead
start a new fit of ``steps`` from its last checkpoint).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from compat import checkpoint, threads
from compat.checkpoint import CheckpointError, Fields
from compat.errors import FileFormatError
from compat.progress import Progress
from compat.tf1 import TFAdagrad

from .config import MODEL_FIELDS, Config
from .data import SineData, batch_indices, predict_slices
from .model import SineLSTM

CHECKPOINT_FORMAT = "ports.tf_sine"
CHECKPOINT_NAME = "model"  # MODEL_DIR/model.json and MODEL_DIR/model.<digest>.safetensors
LOG_EVERY = 100  # estimator.py: LoggingTensorHook({'loss': loss, 'step': global_step}, every_n_iter=100)
MAX_STEPS = 10 ** 8  # a cap on the global step and the loss history a checkpoint may claim


def tf_float(value: float) -> str:
    """A loss as the book's log prints it (``loss = 0.491647``, ``8.82684e-05``): TF's hooks print the str()
    of a numpy float32, which numpy before 1.14 wrote with six significant digits, as ``%g`` does."""
    return "%g" % value


def make_optimizer(model: SineLSTM, learning_rate: float, initial_accumulator_value: float) -> TFAdagrad:
    """``AdagradOptimizer(learning_rate)`` over ``tf.trainable_variables()``."""
    return TFAdagrad(model.parameters(), lr=learning_rate, initial_accumulator_value=initial_accumulator_value)


def train_step(model: SineLSTM, optimizer: TFAdagrad, X: torch.Tensor, y: torch.Tensor) -> float:
    """One ``run([train_op, loss])``: the loss before the update, then one Adagrad step on its gradients."""
    optimizer.zero_grad(set_to_none=True)
    loss = model.loss(X, y)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def rmse(predicted: np.ndarray, test_y: np.ndarray) -> float:
    """The book's ``np.sqrt(((predicted - test_y) ** 2).mean(axis=0))[0]`` with ``predicted = [[pred] for
    pred in regressor.predict(test_X)]``: float32 arithmetic, as numpy does it on float32 arrays. The
    program prints it as "Mean Square Error" although it is the root of it."""
    column = np.asarray(predicted, dtype=np.float32).reshape(-1, 1)
    return float(np.sqrt(((column - test_y) ** 2).mean(axis=0))[0])


class Estimator:
    """The model directory, the model, its optimizer and the global step.

    ``Estimator(config, model_dir)`` restores ``model_dir``'s checkpoint when there is one (its variables
    must fit ``config``'s model: :data:`ports.tf_sine.config.MODEL_FIELDS`), else builds the model with
    initial weights drawn from ``generator``.
    """

    def __init__(self, config: Config, model_dir, *, device="cpu", generator: Optional[torch.Generator] = None):
        self.model_dir = Path(model_dir)
        self.path = self.model_dir / CHECKPOINT_NAME
        self.device = torch.device(device)
        self.global_step = 0
        self.learning_rate = config.learning_rate
        self.losses: List[float] = []  # every step's loss, index global_step - 1
        self.unfinished: Optional[dict] = None  # {"target_step", "batches_fed", "run_config"} of a stopped fit
        self.restored = checkpoint.manifest_path(self.path).exists()
        if self.restored:
            state = load_checkpoint(self.path)
            stored = Config.from_dict(state["config"])
            differ = [f"{name} {getattr(stored, name)!r} (this run: {getattr(config, name)!r})"
                      for name in MODEL_FIELDS if getattr(stored, name) != getattr(config, name)]
            if differ:
                raise CheckpointError(f"{checkpoint.manifest_path(self.path)} holds another model: "
                                      f"{'; '.join(differ)}. Use another --model-dir, or delete this one to start over")
            self.config = stored
            self.model = SineLSTM(stored, device=self.device)
            self.model.load_state_dict(state["model"])
            self.optimizer = make_optimizer(self.model, state["learning_rate"], stored.initial_accumulator_value)
            self.optimizer.load_state_dict(state["optimizer"])
            self.global_step, self.learning_rate = state["global_step"], state["learning_rate"]
            self.losses, self.unfinished = state["losses"], state["unfinished"]
        else:
            self.config = config
            self.model = SineLSTM(config, device=self.device, generator=generator)
            self.optimizer = make_optimizer(self.model, config.learning_rate, config.initial_accumulator_value)

    # -- checkpoints -----------------------------------------------------------------------------
    def save(self) -> Path:
        """Write the model directory's checkpoint (atomically; the previous one stays valid until then)."""
        return checkpoint.save(self.path, CHECKPOINT_FORMAT, {
            "config": self.config.to_dict(), "global_step": self.global_step, "learning_rate": self.learning_rate,
            "model": {k: v.detach() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(), "losses": list(self.losses), "unfinished": self.unfinished})

    # -- training --------------------------------------------------------------------------------
    def fit(self, data: SineData, run: Config, *, target_step: int, skip: int = 0, stop_after: Optional[int] = None,
            save_every: int = 1000, progress: bool = True, log: Callable[[str], None] = print) -> Optional[float]:
        """Train from the global step up to ``target_step`` on ``data`` with ``run``'s batch size and feeder
        seed, the feeder's first ``skip`` batches already fed (a stopped fit, continued). ``stop_after``
        steps end this call early, checkpointed. Returns the last step's loss (None without a step)."""
        model, optimizer = self.model, self.optimizer
        dtype = next(model.parameters()).dtype
        X = torch.as_tensor(data.train_X, dtype=dtype, device=self.device)
        y = torch.as_tensor(data.train_y, dtype=dtype, device=self.device)
        order = batch_indices(len(X), run.batch_size, run.feeder_seed, skip=skip)
        first_step = self.global_step + 1 - skip  # the fit's first step (logged, as every 100th after it)
        self.unfinished = {"target_step": target_step, "batches_fed": skip, "run_config": run.to_dict()}
        for group in optimizer.param_groups:
            group["lr"] = self.learning_rate
        bar = Progress(total=target_step - first_step + 1, desc="fit", unit="steps/s", enabled=progress)
        bar.count = skip
        loss, done = None, 0
        model.train()
        try:
            with threads.single_threaded():  # products of at most [32, 70] x [70, 120]: one thread is fastest
                while self.global_step < target_step and (stop_after is None or done < stop_after):
                    idx = torch.from_numpy(next(order)).to(self.device)
                    loss = train_step(model, optimizer, X[idx], y[idx])
                    if not math.isfinite(loss):  # NanTensorHook stops training on a NaN loss
                        raise FloatingPointError(f"the loss became {loss} at step {self.global_step + 1}")
                    self.global_step += 1
                    self.unfinished["batches_fed"] += 1
                    self.losses.append(loss)
                    done += 1
                    bar.update(1, loss=tf_float(loss))
                    if (self.global_step - first_step) % LOG_EVERY == 0:
                        log(f"loss = {tf_float(loss)}, step = {self.global_step}")
                    if self.global_step % save_every == 0 and self.global_step < target_step:
                        self.save()
        except KeyboardInterrupt:
            bar.close()
            self.save()
            log(f"Stopped at step {self.global_step}; {checkpoint.manifest_path(self.path)} holds it (run again to "
                f"finish the fit)")
            raise
        bar.close()
        if self.global_step >= target_step:
            self.unfinished = None
        self.save()
        return loss

    # -- prediction ------------------------------------------------------------------------------
    def predict(self, X: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """``SKCompat.predict(X)``: the predictions [N] (float32 for a float32 model), in batches."""
        model = self.model
        dtype = next(model.parameters()).dtype
        model.eval()
        parts = []
        with torch.no_grad():
            for rows in predict_slices(len(X), batch_size):
                parts.append(model(torch.as_tensor(X[rows], dtype=dtype, device=self.device)).cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


# ---------------------------------------------------------------------------------------- checkpoint
def load_checkpoint(path, *, allow_nonfinite: bool = False) -> dict:
    """A checkpoint written by :meth:`Estimator.save`, checked before anything is allocated: the config's
    types and ranges, every tensor's name and shape against the model that config builds, the optimizer's
    accumulators against the parameters, the global step against the loss history. Weights holding NaN or
    infinite values are refused by name unless ``allow_nonfinite``."""
    try:
        ck = checkpoint.read(path, CHECKPOINT_FORMAT)
    except CheckpointError:
        raise
    except FileFormatError as exc:
        raise CheckpointError(str(exc)) from None
    f = Fields(ck)
    content = f.dict(ck.content, "content", keys=("config", "global_step", "learning_rate", "model", "optimizer",
                                                  "losses", "unfinished"))
    config = _read_config(f, content["config"], "config")
    expected = checkpoint.expected_shapes(lambda: SineLSTM(config))
    dtypes = (getattr(torch, config.dtype),)
    f.state_dict(content["model"], "model", expected, dtypes=dtypes)
    _check_optimizer(f, content["optimizer"], list(expected.values()), dtypes)
    global_step = f.int(content["global_step"], "global_step", 0, MAX_STEPS)
    learning_rate = f.float(content["learning_rate"], "learning_rate", 0.0)
    losses = f.floats(content["losses"], "losses", MAX_STEPS)
    if len(losses) != global_step:
        raise f.error("losses", f"{len(losses):,} losses for global step {global_step:,}")
    unfinished = content["unfinished"]
    if unfinished is not None:
        u = f.dict(unfinished, "unfinished", keys=("target_step", "batches_fed", "run_config"))
        target = f.int(u["target_step"], "unfinished/target_step", global_step, MAX_STEPS)
        fed = f.int(u["batches_fed"], "unfinished/batches_fed", 0, global_step)
        run = _read_config(f, u["run_config"], "unfinished/run_config")
        unfinished = {"target_step": target, "batches_fed": fed, "run_config": run.to_dict()}
    tensors = ck.materialize(allow_nonfinite, {"model": content["model"], "optimizer": content["optimizer"]})
    return {"config": config.to_dict(), "global_step": global_step, "learning_rate": learning_rate,
            "model": tensors["model"], "optimizer": tensors["optimizer"], "losses": losses,
            "unfinished": unfinished}


# Caps on the sizes a checkpoint's config may ask for (docs/security.md): the model's tensors bound the
# rest, but not the data a run would generate.
MAX_HIDDEN, MAX_LAYERS, MAX_EXAMPLES = 1 << 14, 256, 1 << 27


def _read_config(f: Fields, obj, field: str) -> Config:
    import dataclasses

    values = f.dict(obj, field, keys=[x.name for x in dataclasses.fields(Config)])
    for x in dataclasses.fields(Config):
        name = f"{field}/{x.name}"
        if isinstance(x.default, int):
            f.int(values[x.name], name, 0, 2 ** 32)
        elif isinstance(x.default, float):
            f.float(values[x.name], name)
        else:
            f.str(values[x.name], name, max_length=100)
    f.int(values["hidden_size"], f"{field}/hidden_size", 1, MAX_HIDDEN)
    f.int(values["num_layers"], f"{field}/num_layers", 1, MAX_LAYERS)
    for name in ("timesteps", "training_examples", "testing_examples", "batch_size", "predict_batch_size"):
        f.int(values[name], f"{field}/{name}", 1, MAX_EXAMPLES)
    try:
        return Config.from_dict(dict(values))
    except (TypeError, ValueError) as exc:
        raise f.error(field, str(exc)) from None


def _check_optimizer(f: Fields, obj, shapes: List[tuple], dtypes) -> None:
    """TFAdagrad's state dict: one group over every parameter, an accumulator of each one's shape."""
    opt = f.dict(obj, "optimizer", keys=("state", "param_groups"))
    groups = f.list(opt["param_groups"], "optimizer/param_groups", length=1)
    group = f.dict(groups[0], "optimizer/param_groups/0",
                   keys=("lr", "initial_accumulator_value", "params"), optional=("foreach",))
    params = f.list(group["params"], "optimizer/param_groups/0/params", length=len(shapes))
    if params != list(range(len(shapes))):
        raise f.error("optimizer/param_groups/0/params", f"expected {list(range(len(shapes)))}")
    f.float(group["lr"], "optimizer/param_groups/0/lr", 0.0)
    f.float(group["initial_accumulator_value"], "optimizer/param_groups/0/initial_accumulator_value", 0.0)
    state = f.dict(opt["state"], "optimizer/state")
    for k, entry in state.items():
        if type(k) is not int or not 0 <= k < len(shapes):
            raise f.error("optimizer/state", f"state for parameter {k!r}, which does not exist")
        entry = f.dict(entry, f"optimizer/state/{k}", keys=("accumulator",))
        f.tensor(entry["accumulator"], f"optimizer/state/{k}/accumulator", shape=shapes[k], dtypes=dtypes)


def history_plot_data(losses: List[float]) -> Dict[str, tuple]:
    """The loss curve (global step, loss) of every step trained in the model directory."""
    return {"loss": (list(range(1, len(losses) + 1)), list(losses))}
