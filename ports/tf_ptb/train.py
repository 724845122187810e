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

from compat.progress import Progress
from compat.tf1 import GradientDescent, clip_by_global_norm_

from .data import ptb_iterator
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
    params = list(model.parameters())
    for p in params:
        p.grad = None
    targets = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    slices = model.config.embedding_norm == "indexed_slices"
    cost, final, lookup = model.training_cost(inputs, targets, _detach(state), embedding_slices=slices)
    cost.backward()
    indexed = None
    if slices:
        indexed = {model.embedding: lookup.rows.grad.reshape(-1, lookup.rows.shape[-1])}
    # With the slices the embedding has no .grad: the clip scales the slices' values in place instead.
    norm = clip_by_global_norm_(params, model.config.max_grad_norm, indexed_slices=indexed)
    optimizer = optimizer if optimizer is not None else make_optimizer(model, lr)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    if slices and model.embedding.grad is None:
        apply_embedding_slices(model.embedding, lookup.ids, indexed[model.embedding], lr)
    return float(cost.detach()), _detach(final), float(norm)


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


def run_epoch(model: PTBModel, data, batch_size: int, num_steps: int, *, lr: Optional[float] = None,
              verbose: bool = False, progress: bool = True, desc: str = "", max_steps: Optional[int] = None,
              stream=None, on_step: Optional[Callable[[], None]] = None) -> float:
    """ptb_word_lm.py ``run_epoch``: perplexity ``exp(costs / iters)`` over one pass of ``data``.

    Trains (one :func:`train_step` per batch) when ``lr`` is given, else evaluates without dropout. The
    state starts at zeros and is carried from batch to batch; ``iters`` grows by ``num_steps`` a step, so
    with cost = sum / batch_size the ratio is the mean per-token cross-entropy. ``verbose`` prints the
    original's ten progress lines; ``max_steps`` stops early (smoke runs); ``on_step`` is called after each
    step (the CLI follows the machine's load there). A perplexity too large for a float is inf; evaluation
    reports a non-finite cost as an inf (or NaN) perplexity, training stops with FloatingPointError.
    """
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
                    raise FloatingPointError(f"{desc or 'epoch'}: the cost became {cost} at step {step} "
                                             f"(the learning rate {lr} may be too high)")
                bar.update(1, items=batch_size * num_steps, perplexity=f"{perplexity(costs, iters):.2f}")
                if on_step is not None:
                    on_step()
                if verbose and epoch_size >= 10 and step % (epoch_size // 10) == 10:
                    print("%.3f perplexity: %.3f speed: %.0f wps" % (
                        step * 1.0 / epoch_size, perplexity(costs, iters),
                        iters * batch_size / (time.time() - start)), file=stream, flush=True)
    finally:
        bar.close()
        model.train(was_training)
    return perplexity(costs, iters) if not math.isnan(costs) else math.nan
