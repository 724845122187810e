"""Training and evaluation as ptb_word_lm.py's ``run_epoch`` and train op do them.

One training step (``PTBModel.__init__`` when ``is_training``)::

    grads, _ = tf.clip_by_global_norm(tf.gradients(cost, tvars), max_grad_norm)
    GradientDescentOptimizer(lr).apply_gradients(zip(grads, tvars))

``tf.gradients`` returns the embedding's gradient as IndexedSlices (one row per looked-up token), and
``global_norm`` takes the norm of those rows: a word occurring k times in the batch adds k squared rows,
not the square of their sum. :func:`train_step` reproduces that through ``compat.tf1``.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch

from compat.errors import TrainingDiverged
from compat.progress import Progress
from compat.step_graph import DeviceLog, capture_reason, copy_into, step_runner
from compat.tf1 import GradientDescent, clip_by_global_norm_
from compat.token_ids import check_token_ids

from .data import batch_matrix, ptb_iterator
from .model import PTBModel, StateTuple


def make_optimizer(model: PTBModel, lr: float = 1.0) -> GradientDescent:
    """The train op's ``GradientDescentOptimizer(lr)`` over the model's variables (its lr set at every step)."""
    return GradientDescent(list(model.parameters()), lr=lr)


def _detach(state: Optional[Sequence]) -> Optional[StateTuple]:
    if state is None:
        return None
    return tuple((torch.as_tensor(c).detach(), torch.as_tensor(h).detach()) for c, h in state)


def train_step(model: PTBModel, inputs, targets, state, lr: float, optimizer: Optional[GradientDescent] = None
               ) -> Tuple[float, StateTuple, float]:
    """One TF training step: cost, gradients, ``clip_by_global_norm(max_grad_norm)``, ``var -= lr * grad``.

    Returns ``(cost, final_state, global_norm)``: the cost before the update (sum of cross-entropies /
    batch_size), the final (c, h) per layer (detached), and the global norm before clipping.
    ``Config.embedding_norm="dense"`` takes the dense embedding gradient's norm instead of TF's.
    ``optimizer``: :func:`make_optimizer`'s, kept by the caller across steps (a new one when None).
    """
    targets = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    optimizer = optimizer if optimizer is not None else make_optimizer(model, lr)
    cost, final, norm = _update(model, inputs, targets, _detach(state), lr, optimizer, check_ids=True)
    return float(cost), _detach(final), float(norm)


def _update(model: PTBModel, inputs, targets, state, lr, optimizer: GradientDescent, check_ids: bool):
    """The step's computation: ``(cost, final state, global norm)`` as tensors; ``lr`` a number or a tensor."""
    params = list(model.parameters())
    for p in params:
        p.grad = None
    slices = model.config.embedding_norm == "indexed_slices"
    cost, final, lookup = model.training_cost(inputs, targets, state, embedding_slices=slices, check_ids=check_ids)
    cost.backward()
    indexed = None
    if slices:
        indexed = {model.embedding: lookup.rows.grad.reshape(-1, lookup.rows.shape[-1])}
    # With the slices the embedding has no .grad: the clip scales the slices' values in place instead.
    norm = clip_by_global_norm_(params, model.config.max_grad_norm, indexed_slices=indexed)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    if slices and model.embedding.grad is None:
        apply_embedding_slices(model.embedding, lookup.ids, indexed[model.embedding], lr)
    return cost.detach(), final, norm


class StaticBatch:
    """The static buffers of a sync-free step (the form a CUDA graph captures, :mod:`compat.step_graph`):
    ``inputs`` / ``targets`` [batch_size, num_steps] and the carried ``state`` (per layer (c, h)), kept for
    the object's life. :meth:`load` copies a batch in; a step copies its final state back into ``state``.
    The inputs' range is not checked here: check it on the host (:func:`compat.token_ids.check_token_ids`)."""

    def __init__(self, model: PTBModel, batch_size: int, num_steps: int):
        p = model.embedding
        self.model = model
        self.inputs = torch.zeros(batch_size, num_steps, dtype=torch.long, device=p.device)
        self.targets = torch.zeros(batch_size, num_steps, dtype=torch.long, device=p.device)
        self.state: StateTuple = model.initial_state(batch_size)

    def load(self, inputs, targets) -> None:
        """Copy a batch (tensors of the buffers' shape, on any device) into the input buffers."""
        copy_into((self.inputs, self.targets), (torch.as_tensor(inputs), torch.as_tensor(targets)))

    def set_state(self, state: Optional[Sequence]) -> None:
        """The carried state replaced by ``state`` (per layer (c, h)); None: zeros."""
        if state is None:
            with torch.no_grad():
                for t in self._state_tensors():
                    t.zero_()
            return
        copy_into(self._state_tensors(), (torch.as_tensor(t) for pair in state for t in pair))

    def _state_tensors(self):
        return [t for pair in self.state for t in pair]

    def _carry(self, final: Sequence) -> None:
        copy_into(self._state_tensors(), (t.detach() for pair in final for t in pair))


class SyncFreeStep(StaticBatch):
    """:func:`train_step` that reads nothing back from the device, on :class:`StaticBatch`'s buffers.

    ``lr`` is a 0-dim tensor in the parameters' dtype (TF's ``lr`` variable, float32 in the original), set
    by :meth:`set_lr` without recapture. Calling the object runs one step and returns ``(cost, global_norm)``
    as 0-dim device tensors: the same numbers as :func:`train_step` given the same batch, state and lr
    (tests/test_step_graph.py compares them bit for bit)."""

    def __init__(self, model: PTBModel, batch_size: int, num_steps: int,
                 optimizer: Optional[GradientDescent] = None):
        super().__init__(model, batch_size, num_steps)
        p = model.embedding
        self.lr = torch.zeros((), dtype=p.dtype, device=p.device)
        self.optimizer = optimizer if optimizer is not None else make_optimizer(model)

    def set_lr(self, lr: float) -> None:
        self.lr.fill_(lr)

    def __call__(self) -> Tuple[torch.Tensor, torch.Tensor]:
        cost, final, norm = _update(self.model, self.inputs, self.targets, self.state, self.lr, self.optimizer,
                                    check_ids=False)
        self._carry(final)
        return cost, norm


class SyncFreeEvalStep(StaticBatch):
    """:func:`run_epoch`'s evaluation step (``model(x, state)``, then ``model.cost``, without a gradient) that
    reads nothing back from the device, on :class:`StaticBatch`'s buffers. Calling the object runs one step
    and returns the cost as a 0-dim device tensor: the eager evaluation's number bit for bit (the same
    operations; tests/test_step_graph.py). The model's mode (eval: no dropout) is the caller's."""

    def __call__(self) -> torch.Tensor:
        with torch.no_grad():
            logits, final = self.model(self.inputs, self.state, check_ids=False)
            cost = self.model.cost(logits, self.targets)
            self._carry(final)
        return cost


def apply_embedding_slices(embedding: torch.nn.Parameter, ids: torch.Tensor, values: torch.Tensor, lr: float) -> None:
    """GradientDescentOptimizer on the embedding's IndexedSlices, as TF applies them
    (gradient_descent.py ``_apply_sparse_duplicate_indices``: ``var.scatter_sub(values * lr)``): each
    looked-up row subtracts its own ``value * lr``, a repeated id once per occurrence in order, never the
    dense sum of the occurrences (the same value up to rounding)."""
    with torch.no_grad():
        embedding.index_add_(0, ids, values * -lr)


def perplexity(costs: float, iters: int) -> float:
    """``exp(costs / iters)``, inf where that overflows a float (weights that make the cost huge give an
    infinite perplexity, not an OverflowError)."""
    mean = costs / iters
    return math.exp(mean) if mean < 709.0 else math.inf


#: Steps between read-backs of a captured epoch's costs (the progress bar's perplexity, the non-finite check).
READBACK_STEPS = 100


def run_epoch(model: PTBModel, data, batch_size: int, num_steps: int, *, lr: Optional[float] = None,
              verbose: bool = False, progress: bool = True, desc: str = "", max_steps: Optional[int] = None,
              stream=None, on_step: Optional[Callable[[], None]] = None, cuda_graph: str = "off") -> float:
    """ptb_word_lm.py ``run_epoch``: perplexity ``exp(costs / iters)`` over one pass of ``data``.

    Trains (one :func:`train_step` per batch) when ``lr`` is given, else evaluates without dropout. The
    state starts at zeros and is carried from batch to batch; ``iters`` grows by ``num_steps`` a step, so
    with cost = sum / batch_size the ratio is the mean per-token cross-entropy. ``verbose`` prints the
    original's ten progress lines; ``max_steps`` stops early (smoke runs); ``on_step`` is called after each
    step (the CLI follows the machine's load there). A perplexity too large for a float is inf; evaluation
    reports a non-finite cost as an inf (or NaN) perplexity, training stops with
    :class:`compat.errors.TrainingDiverged` (a FloatingPointError).

    ``cuda_graph``: "auto" runs each step captured in one CUDA graph where
    :func:`compat.step_graph.capture_reason` allows it (a CUDA device): :class:`SyncFreeStep` when training,
    :class:`SyncFreeEvalStep` when evaluating; "off" (or no CUDA) runs the eager loop below (on the CPU the
    evaluation's batch-1 x 1-step test pass runs the compiled loop there). A captured epoch reads its costs
    back every :data:`READBACK_STEPS` steps, at the verbose lines and at the end, not every step: the same
    sums in the same order, so the same perplexities; a non-finite cost still stops training naming its
    step, up to READBACK_STEPS - 1 steps after it was computed.
    """
    if capture_reason(cuda_graph, model.embedding.device) is None:
        return _run_captured_epoch(model, data, batch_size, num_steps, lr=lr, verbose=verbose, progress=progress,
                                   desc=desc, max_steps=max_steps, stream=stream, on_step=on_step)
    stream = stream if stream is not None else sys.stdout
    training = lr is not None
    was_training = model.training
    model.train(training)
    batches = ptb_iterator(data, batch_size, num_steps)
    epoch_size = ((len(data) // batch_size) - 1) // num_steps
    total = epoch_size if max_steps is None else min(epoch_size, max_steps)
    bar = Progress(total=total, desc=desc, unit="wps", enabled=progress)
    device = model.embedding.device
    costs, iters = 0.0, 0
    state = model.initial_state(batch_size)
    optimizer = make_optimizer(model) if training else None
    start = time.time()
    try:
        with torch.set_grad_enabled(training):
            for step, (x, y) in enumerate(batches):
                if step >= total:
                    break
                x = torch.from_numpy(x).to(device)
                y = torch.from_numpy(y).to(device)
                if training:
                    cost, state, _ = train_step(model, x, y, state, lr, optimizer)
                else:
                    logits, state = model(x, state)
                    cost = float(model.cost(logits, y))
                costs += cost
                iters += num_steps
                if training and not math.isfinite(costs):
                    raise _nonfinite(desc, cost, step, lr)
                bar.update(1, items=batch_size * num_steps, perplexity=f"{perplexity(costs, iters):.2f}")
                if on_step is not None:
                    on_step()
                if _verbose_line(verbose, epoch_size, step):
                    _print_progress(step, epoch_size, costs, iters, batch_size, start, stream)
    finally:
        bar.close()
        model.train(was_training)
    return perplexity(costs, iters) if not math.isnan(costs) else math.nan


def _nonfinite(desc: str, cost: float, step: int, lr: float) -> TrainingDiverged:
    return TrainingDiverged(f"{desc or 'epoch'}: the cost became {cost} at step {step} "
                              f"(the learning rate {lr} may be too high)")


def _verbose_line(verbose: bool, epoch_size: int, step: int) -> bool:
    """Where ptb_word_lm's run_epoch prints: ``verbose and step % (epoch_size // 10) == 10``."""
    return verbose and epoch_size >= 10 and step % (epoch_size // 10) == 10


def _print_progress(step: int, epoch_size: int, costs: float, iters: int, batch_size: int, start: float,
                    stream) -> None:
    print("%.3f perplexity: %.3f speed: %.0f wps" % (
        step * 1.0 / epoch_size, perplexity(costs, iters), iters * batch_size / (time.time() - start)),
        file=stream, flush=True)


def _run_captured_epoch(model: PTBModel, data, batch_size: int, num_steps: int, *, lr: Optional[float],
                        verbose: bool, progress: bool, desc: str, max_steps: Optional[int], stream,
                        on_step: Optional[Callable[[], None]]) -> float:
    """:func:`run_epoch`'s pass (training when ``lr`` is given, else evaluation) with the step captured in a
    CUDA graph: the epoch's batches go to the device once (their range checked on the host first), each step
    copies its batch into the step's buffers on the device and replays the graph; the costs stay on the
    device in a :class:`DeviceLog` until a read-back point."""
    stream = stream if stream is not None else sys.stdout
    training = lr is not None
    was_training = model.training
    model.train(training)
    matrix = batch_matrix(data, batch_size, num_steps)
    check_token_ids(matrix, model.config.vocab_size, desc or "the epoch's data")
    epoch_size = (matrix.shape[1] - 1) // num_steps
    total = epoch_size if max_steps is None else min(epoch_size, max_steps)
    device = model.embedding.device
    words = torch.from_numpy(matrix[:, :total * num_steps + 1]).to(device)
    if training:
        step_fn = SyncFreeStep(model, batch_size, num_steps)
        step_fn.set_lr(lr)
    else:
        step_fn = SyncFreeEvalStep(model, batch_size, num_steps)
    run = step_runner(step_fn, "auto", device)
    log = DeviceLog(READBACK_STEPS, model.embedding.dtype, device)
    bar = Progress(total=total, desc=desc, unit="wps", enabled=progress)
    costs, iters = 0.0, 0
    start = time.time()

    try:
        for step in range(total):
            i = step * num_steps
            step_fn.load(words[:, i:i + num_steps], words[:, i + 1:i + num_steps + 1])
            out = run()
            log.append(out[0] if training else out)
            if log.full or step + 1 == total or _verbose_line(verbose, epoch_size, step):
                # The steps since the last read-back, in order: the eager loop's sum, checked as it grows.
                first = step + 1 - len(log)
                for k, value in enumerate(log.read(), start=first):
                    costs += value
                    iters += num_steps
                    if training and not math.isfinite(costs):
                        raise _nonfinite(desc, value, k, lr)
                bar.fields["perplexity"] = f"{perplexity(costs, iters):.2f}"
            bar.update(1, items=batch_size * num_steps)
            if on_step is not None:
                on_step()
            if _verbose_line(verbose, epoch_size, step):
                _print_progress(step, epoch_size, costs, iters, batch_size, start, stream)
    finally:
        bar.close()
        model.train(was_training)
    return perplexity(costs, iters) if not math.isnan(costs) else math.nan
