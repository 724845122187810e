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

from compat import checkpoint
from compat.checkpoint import CheckpointError, Fields
from compat.errors import FileFormatError, TrainingDiverged
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
    return TFAdagrad(model.trainable_parameters(), lr=learning_rate,
                     initial_accumulator_value=initial_accumulator_value)


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
    column = np.asarray(predicted).reshape(-1, 1)
    return float(np.sqrt(((column - test_y) ** 2).mean(axis=0))[0])


class Estimator:
    """The model directory, the model, its optimizer and the global step.

    ``Estimator(config, model_dir)`` restores what ``model_dir`` holds, as contrib.learn's Estimator does:
    this port's checkpoint (``model.json``), else a TF checkpoint of the book's program (the ``checkpoint``
    file and ``model.ckpt-N.*`` that its Estimator wrote, read without TensorFlow: the variables, their
    Adagrad accumulators, ``global_step`` and ``OptimizeLoss/learning_rate``), else nothing: a new model with
    initial weights drawn from ``generator``. A restored model must be ``config``'s
    (:data:`ports.tf_sine.config.MODEL_FIELDS`); ``restored`` says what was restored (None, "port" or "tf").
    """

    def __init__(self, config: Config, model_dir, *, device="cpu", generator: Optional[torch.Generator] = None):
        self.model_dir = Path(model_dir)
        self.path = self.model_dir / CHECKPOINT_NAME
        self.device = torch.device(device)
        self.config = config
        self.global_step = 0
        self.learning_rate = float(np.float32(config.learning_rate))  # OptimizeLoss/learning_rate: a float32 variable
        self.losses: List[float] = []  # the losses of steps first_loss_step, first_loss_step + 1, ...
        self.first_loss_step = 1
        self.unfinished: Optional[dict] = None  # {"target_step", "batches_fed", "run_config"} of a stopped fit
        self.restored: Optional[str] = None
        if checkpoint.manifest_path(self.path).exists():
            self._restore_port(config)
        elif (self.model_dir / "checkpoint").is_file():
            self._restore_tf(config)
        else:
            self.model = SineLSTM(config, device=self.device, generator=generator)
            self.optimizer = make_optimizer(self.model, config.learning_rate, config.initial_accumulator_value)

    def _restore_port(self, config: Config) -> None:
        state = load_checkpoint(self.path)
        stored = Config(**state["config"])
        differ = [f"{name} {getattr(stored, name)!r} (this run: {getattr(config, name)!r})"
                  for name in MODEL_FIELDS if getattr(stored, name) != getattr(config, name)]
        if differ:
            raise CheckpointError(f"{checkpoint.manifest_path(self.path)} holds another model: {'; '.join(differ)}. "
                                  f"Use another --model-dir, or delete this one to start over")
        self.config, self.restored = stored, "port"
        self.model = SineLSTM(stored, device=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer = make_optimizer(self.model, state["learning_rate"], stored.initial_accumulator_value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.global_step, self.learning_rate = state["global_step"], state["learning_rate"]
        self.losses, self.first_loss_step = state["losses"], state["first_loss_step"]
        self.unfinished = state["unfinished"]

    def _restore_tf(self, config: Config) -> None:
        """The newest TF checkpoint of the directory: the model's variables (TF >= 1.2 or 1.0 names), each
        one's ``OptimizeLoss/<name>/Adagrad`` slot, ``global_step`` and ``OptimizeLoss/learning_rate``."""
        from compat.formats.tf import load_checkpoint as load_tf_checkpoint

        where = str(self.model_dir)
        try:
            variables = load_tf_checkpoint(self.model_dir)
        except FileFormatError as exc:
            raise CheckpointError(f"--model-dir {where}: {exc}") from None
        self.model = SineLSTM(config, device=self.device)
        try:
            self.model.load_tf_variables(variables)
        except FileFormatError as exc:
            raise CheckpointError(f"{where}: the TF checkpoint does not hold this model ({exc})") from None
        for name in ("global_step", "OptimizeLoss/learning_rate"):
            if name not in variables or np.shape(variables[name]) != ():
                raise CheckpointError(f"{where}: the TF checkpoint has no scalar {name!r}")
        self.global_step = int(variables["global_step"])
        self.learning_rate = float(variables["OptimizeLoss/learning_rate"])
        if not 0 <= self.global_step <= MAX_STEPS or not math.isfinite(self.learning_rate) or self.learning_rate < 0:
            raise CheckpointError(f"{where}: global_step {self.global_step} or OptimizeLoss/learning_rate "
                                  f"{self.learning_rate} is out of range")
        self.optimizer = make_optimizer(self.model, self.learning_rate, config.initial_accumulator_value)
        # optimize_loss applies the gradients inside variable_scope("OptimizeLoss"), where the optimizer
        # creates its slots (slot_creator.py): OptimizeLoss/<variable>/Adagrad.
        slots = {name[len("OptimizeLoss/"):]: value for name, value in variables.items()
                 if name.startswith("OptimizeLoss/")}
        try:
            accumulators, _ = self.model.from_tf_layout(slots, what="Adagrad accumulator", suffix="/Adagrad")
        except FileFormatError as exc:
            raise CheckpointError(f"{where}: the TF checkpoint's OptimizeLoss/.../Adagrad slots do not fit ({exc})") \
                from None
        names = [name for name, p in self.model.named_parameters() if p.requires_grad]
        state = {k: {"accumulator": accumulators[name].to(dtype=self.model.dtype, device=self.device)}
                 for k, name in enumerate(names)}
        self.optimizer.load_state_dict({"state": state, "param_groups": self.optimizer.state_dict()["param_groups"]})
        self.first_loss_step = self.global_step + 1  # TF keeps no losses
        self.restored = "tf"

    # -- checkpoints -----------------------------------------------------------------------------
    def save(self) -> Path:
        """Write the model directory's checkpoint (atomically; the previous one stays valid until then)."""
        return checkpoint.save(self.path, CHECKPOINT_FORMAT, {
            "config": self.config.to_dict(), "global_step": self.global_step, "learning_rate": self.learning_rate,
            "model": {k: v.detach() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(), "losses": list(self.losses),
            "first_loss_step": self.first_loss_step, "unfinished": self.unfinished})

    def tf_accumulators(self, generation: str = "1.2") -> Dict[str, torch.Tensor]:
        """Adagrad's accumulators under their variables' TF names, in TF's layout (the slots TF saves as
        ``OptimizeLoss/<name>/Adagrad``); a variable not stepped yet has its initial value."""
        initial = self.optimizer.defaults["initial_accumulator_value"]
        values = {name: self.optimizer.state[p]["accumulator"] if "accumulator" in self.optimizer.state[p]
                  else torch.full_like(p, initial).detach()
                  for name, p in self.model.named_parameters() if p.requires_grad}
        return self.model.to_tf_layout(values, generation)

    def export_tf_checkpoint(self, directory) -> str:
        """Write the model directory as the book's TF program keeps it: ``directory/model.ckpt-<global
        step>`` (a V2 checkpoint of the variables, their ``OptimizeLoss/<name>/Adagrad`` slots, ``global_step``
        and ``OptimizeLoss/learning_rate``) and the ``checkpoint`` file naming it, which TF's Saver restores
        and an Estimator continues from. Returns the prefix."""
        from compat.formats.tf import save_checkpoint as save_tf_checkpoint

        variables = {name: v.detach().cpu().numpy() for name, v in self.model.tf_variables().items()}
        variables.update({f"OptimizeLoss/{name}/Adagrad": v.detach().cpu().numpy()
                          for name, v in self.tf_accumulators().items()})
        variables["global_step"] = np.asarray(self.global_step, dtype=np.int64)
        variables["OptimizeLoss/learning_rate"] = np.asarray(self.learning_rate, dtype=np.float32)
        return save_tf_checkpoint(Path(directory) / f"model.ckpt-{self.global_step}", variables)

    # -- training --------------------------------------------------------------------------------
    def fit(self, data: SineData, steps: Optional[int] = None, *, run: Optional[Config] = None,
            target_step: Optional[int] = None, skip: int = 0, stop_after: Optional[int] = None, save_every: int = 1000,
            progress: bool = True, log: Callable[[str], None] = print) -> Optional[float]:
        """``SKCompat.fit(train_X, train_y, batch_size, steps)``: ``steps`` more steps (default
        ``run.training_steps``), or up to the global step ``target_step`` (the Estimator's ``max_steps``),
        on ``data`` with ``run``'s batch size and feeder seed (``run`` defaults to the model's config). A
        new data feeder starts, unless ``skip`` says how many of its batches a stopped fit already fed.
        ``stop_after`` steps end this call early, checkpointed. Returns the last step's loss (None without
        a step)."""
        run = self.config if run is None else run
        if steps is not None and target_step is not None:
            raise ValueError("give steps or target_step, not both")
        if target_step is None:
            target_step = self.global_step + (run.training_steps if steps is None else steps)
        model, optimizer = self.model, self.optimizer
        dtype = model.dtype
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
            while self.global_step < target_step and (stop_after is None or done < stop_after):
                idx = torch.from_numpy(next(order)).to(self.device)
                loss = train_step(model, optimizer, X[idx], y[idx])
                if not math.isfinite(loss):  # NanTensorHook stops training on a NaN loss
                    raise TrainingDiverged(f"the loss became {loss} at step {self.global_step + 1} (the "
                                           f"learning rate {self.learning_rate:g} may be too high)")
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
        dtype = model.dtype
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
    ck = checkpoint.read(path, CHECKPOINT_FORMAT)
    f = Fields(ck)
    content = f.dict(ck.content, "content", keys=("config", "global_step", "learning_rate", "model", "optimizer",
                                                  "losses", "first_loss_step", "unfinished"))
    config = _read_config(f, content["config"], "config")
    with torch.device("meta"):
        meta = SineLSTM(config)
    expected = {k: tuple(v.shape) for k, v in meta.state_dict().items()}
    dtypes = (getattr(torch, config.dtype),)
    f.state_dict(content["model"], "model", expected, dtypes=dtypes)
    _check_optimizer(f, content["optimizer"], [tuple(p.shape) for p in meta.trainable_parameters()], dtypes)
    global_step = f.int(content["global_step"], "global_step", 0, MAX_STEPS)
    learning_rate = f.float(content["learning_rate"], "learning_rate", 0.0)
    losses = f.floats(content["losses"], "losses", MAX_STEPS)
    first_loss_step = f.int(content["first_loss_step"], "first_loss_step", 1, MAX_STEPS)
    if first_loss_step - 1 + len(losses) != global_step:
        raise f.error("losses", f"{len(losses):,} losses from step {first_loss_step:,} do not end at global step "
                                f"{global_step:,}")
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
            "first_loss_step": first_loss_step, "unfinished": unfinished}


# Caps on the sizes a checkpoint's config may ask for (docs/security.md): the model's tensors bound the
# rest, but not the data a run would generate.
MAX_HIDDEN, MAX_LAYERS, MAX_EXAMPLES = 1 << 14, 256, 1 << 27


def _read_config(f: Fields, obj, field: str) -> Config:
    import dataclasses

    values = f.dict(obj, field, keys=[x.name for x in dataclasses.fields(Config)])
    for x in dataclasses.fields(Config):
        name = f"{field}/{x.name}"
        if isinstance(x.default, bool):
            f.bool(values[x.name], name)
        elif isinstance(x.default, int):
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
        return Config(**values)
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
