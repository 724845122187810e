"""TF1 training semantics the TF ports share: global-norm clipping as TF computes it, TF's SGD, Adam and
Adagrad, and BasicLSTMCell variable names across TF generations (from
:mod:`compat.frameworks.tf.names`, the one table of TF variable names).

Global norm and IndexedSlices. ``tf.gradients`` of a loss through ``tf.nn.embedding_lookup`` returns the
embedding's gradient as ``IndexedSlices``: one row of values per looked-up token, duplicates not summed.
``clip_by_global_norm`` (tensorflow/python/ops/clip_ops.py ``global_norm``) takes the norm of those
*values*, so a token id that occurs k times contributes k separate squared rows instead of the square of
their sum. The dense PyTorch gradient of the same embedding sums the duplicates first; its norm differs
whenever an id repeats in a batch, and so does the clipping scale. To reproduce TF, look the embedding up
as ``emb = F.embedding(ids, weight); emb.retain_grad()`` and pass ``indexed_slices={weight: emb.grad}``.
The scaled update itself is the same either way (the optimizer scatter-adds the duplicate rows).
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from compat.frameworks.tf.names import KERNEL_BIAS, basic_lstm_cell_variables
from compat.optim import FlatSlot, PerParameterOptimizer


def global_norm(tensors: Iterable[Optional[Tensor]]) -> Tensor:
    """sqrt(sum of squares of every element), skipping None: clip_ops.py ``global_norm``."""
    squares = [(t.detach() * t.detach()).sum() for t in tensors if t is not None]
    if not squares:
        raise ValueError("global_norm needs at least one tensor")
    return torch.sqrt(torch.stack(squares).sum())


def clip_scale(norm: Tensor, clip_norm: float) -> Tensor:
    """TF's scale ``clip_norm * min(1 / norm, 1 / clip_norm)``, NaN when the norm is not finite.

    Literally TF's expression, not ``clip_norm / max(norm, clip_norm)``: below the threshold the scale is
    ``clip_norm * (1 / clip_norm)``, which in float32 can differ from 1 by an ulp, as in TF.
    """
    one = torch.ones((), dtype=norm.dtype, device=norm.device)
    # Filled on the device (a copy of a host number would wait for the device and cannot be captured).
    clip = torch.full((), clip_norm, dtype=norm.dtype, device=norm.device)
    scale = clip * torch.minimum(one / norm, one / clip)
    # clip_ops.py (TF >= 1.12): NaN or inf norms make every clipped value NaN.
    return scale + (norm - norm)


def clip_by_global_norm_(params: Sequence[torch.nn.Parameter], clip_norm: float, *,
                         indexed_slices: Optional[Mapping[Tensor, Tensor]] = None) -> Tensor:
    """Clip the ``.grad`` of ``params`` in place as ``tf.clip_by_global_norm(tf.gradients(...))`` does.

    ``indexed_slices`` maps a parameter to the per-occurrence gradient values TF would hold for it as
    IndexedSlices (the gradient of its embedding lookup's output); those values, not the parameter's dense
    gradient, enter the norm. Where such a parameter has no ``.grad`` (its gradient is kept only as the
    slices), the slices' values are clipped in place. Returns the global norm before clipping.
    """
    slices: Dict[int, Tensor] = {id(p): v for p, v in (indexed_slices or {}).items()}
    for p in (indexed_slices or {}):
        if not any(p is q for q in params):
            raise ValueError("indexed_slices names a tensor that is not among the clipped parameters")
    norm_terms = []
    for p in params:
        if id(p) in slices:
            if slices[id(p)] is None:
                raise ValueError("indexed_slices holds None: call retain_grad() on the embedding lookup's output")
            norm_terms.append(slices[id(p)])
        else:
            norm_terms.append(p.grad)
    norm = global_norm(norm_terms)
    scale = clip_scale(norm, clip_norm)
    grads = [p.grad for p in params if p.grad is not None]
    # A parameter whose gradient is held only as slices (no dense .grad): TF clips the slices' values.
    grads += [slices[id(p)] for p in params if p.grad is None and id(p) in slices]
    if len({(g.device, g.dtype) for g in grads}) == 1:
        torch._foreach_mul_(grads, scale)
    else:
        for g in grads:
            g.mul_(scale)
    return norm


class GradientDescent(PerParameterOptimizer):
    """``tf.train.GradientDescentOptimizer``: ``var -= lr * grad`` (training_ops ApplyGradientDescent)."""

    def __init__(self, params, lr: float, foreach: bool = True):
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        super().__init__(params, dict(lr=lr), foreach=foreach)

    def update(self, p, grad, state, group):
        p.sub_(grad * group["lr"])

    def update_group(self, params, grads, states, group):
        torch._foreach_sub_(params, torch._foreach_mul(grads, group["lr"]))


def _as_float32(x: float) -> float:
    """A Python float rounded through float32, as TF holds its optimizer hyperparameters (numpy's scalar:
    a tenth of the cost of a torch tensor, paid by every optimizer step)."""
    return float(np.float32(x))


class TFAdam(PerParameterOptimizer):
    """``tf.train.AdamOptimizer`` (TF1 training/adam.py and the ApplyAdam kernel).

    Per step t (from 1), with beta powers kept as running products like TF's ``beta1_power`` variables::

        lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
        m += (g - m) * (1 - beta1)
        v += (g * g - v) * (1 - beta2)
        var -= m * lr_t / (sqrt(v) + epsilon)

    It differs from ``torch.optim.Adam``: epsilon is added to sqrt(v) *after* the bias correction has
    moved into the step size (torch divides by ``sqrt(v / (1 - beta2^t)) + eps``), so TF's effective
    epsilon is ``eps * sqrt(1 - beta2^t)``-scaled relative to torch's, which matters early in training and
    for rarely updated rows. A parameter group with ``sparse=True`` uses the IndexedSlices path
    (``_apply_sparse_shared``: ``m = m * beta1 + g * (1 - beta1)``, the same value with TF's other
    rounding), as TF does for embeddings. As in TF, the hyperparameters and the beta powers are float32
    even for float64 variables.

    TF keeps one ``beta1_power`` / ``beta2_power`` pair per optimizer (adam.py ``_create_slots``:
    ``_create_non_slot_variable``), advanced in ``_finish`` after every ``apply_gradients`` whichever variables
    had a gradient; a variable without one that step keeps its slots and misses its update, and uses the advanced
    pair when it next has one. Here every parameter's state holds a copy of the pair (its checkpoints' layout):
    at the first step with any gradient every parameter's state is created, and every copy advances at every
    such step. A step where no parameter has a gradient does nothing (TF refuses it: "No gradients provided for
    any variable").
    """

    def __init__(self, params, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, sparse: bool = False, foreach: bool = True):
        super().__init__(params, dict(lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon, sparse=sparse),
                         foreach=foreach)

    @staticmethod
    def _init_state(p, state, group, powers=None) -> None:
        """A parameter's slots, zero, and its copy of the beta powers: ``powers`` (the pair as it stands), or
        the pair's initial values."""
        state["step"] = 0
        state["m"] = torch.zeros_like(p)
        state["v"] = torch.zeros_like(p)
        for name, beta in (("beta1_power", group["beta1"]), ("beta2_power", group["beta2"])):
            state[name] = (powers[name].detach().clone().to(p.device) if powers is not None
                           else torch.tensor(beta, dtype=torch.float32, device=p.device))

    def prepare(self) -> None:
        # Every parameter's state exists from the first step on; one first met now (in a group added later)
        # starts from the pair as it stands, as a TF variable's first update reads the optimizer's one pair.
        for group in self.param_groups:
            betas = (group["beta1"], group["beta2"])
            ref = next((self.state[q] for g in self.param_groups for q in g["params"]
                        if self.state[q] and (g["beta1"], g["beta2"]) == betas), None)
            for p in group["params"]:
                if not self.state[p]:
                    self._init_state(p, self.state[p], group, ref)

    def finish(self) -> None:
        # adam.py _finish: the float32 beta powers advance after every variable is updated, all of them.
        for group in self.param_groups:
            for name, beta in (("beta1_power", group["beta1"]), ("beta2_power", group["beta2"])):
                beta = torch.tensor(beta, dtype=torch.float32)
                for p in group["params"]:
                    self.state[p][name].mul_(beta)

    def update(self, p, g, state, group):
        # adam.py _prepare / _create_slots: lr, beta1, beta2, epsilon and the beta1_power /
        # beta2_power accumulators are float32 tensors whatever the variables' dtype; _apply_dense
        # casts them to the variable's dtype. A float64 model therefore steps with float32-rounded
        # hyperparameters.
        b1, b2, eps, lr = (_as_float32(group[k]) for k in ("beta1", "beta2", "epsilon", "lr"))
        state["step"] += 1  # (the state exists: prepare() creates every parameter's)
        b1p, b2p = state["beta1_power"].to(p.dtype), state["beta2_power"].to(p.dtype)
        m, v = state["m"], state["v"]
        lr_t = lr * torch.sqrt(1 - b2p) / (1 - b1p)
        if group["sparse"]:
            m.mul_(b1).add_(g * (1 - b1))
            v.mul_(b2).add_((g * g) * (1 - b2))
            p.sub_(lr_t * m / (torch.sqrt(v) + eps))
        else:
            m.add_((g - m) * (1 - b1))
            v.add_((g * g - v) * (1 - b2))
            p.sub_((m * lr_t) / (torch.sqrt(v) + eps))

    def update_group(self, params, grads, states, group):
        """:meth:`update` over the group's parameters at once (torch._foreach_*, the same operations)."""
        if group["sparse"]:
            return super().update_group(params, grads, states, group)  # per parameter: the reference form
        b1, b2, eps, lr = (_as_float32(group[k]) for k in ("beta1", "beta2", "epsilon", "lr"))
        for state in states:
            state["step"] += 1
        # Every parameter's copy of the beta powers holds the optimizer's one pair: one lr_t serves them all.
        b1p, b2p = states[0]["beta1_power"].to(params[0].dtype), states[0]["beta2_power"].to(params[0].dtype)
        lr_t = lr * torch.sqrt(1 - b2p) / (1 - b1p)
        ms, vs = [s["m"] for s in states], [s["v"] for s in states]
        d = torch._foreach_sub(grads, ms)                       # m.add_((g - m) * (1 - b1))
        torch._foreach_mul_(d, 1 - b1)
        torch._foreach_add_(ms, d)
        d = torch._foreach_mul(grads, grads)                    # v.add_((g * g - v) * (1 - b2))
        torch._foreach_sub_(d, vs)
        torch._foreach_mul_(d, 1 - b2)
        torch._foreach_add_(vs, d)
        num = torch._foreach_mul(ms, lr_t)                      # p.sub_((m * lr_t) / (sqrt(v) + eps))
        den = torch._foreach_sqrt(vs)
        torch._foreach_add_(den, eps)
        torch._foreach_div_(num, den)
        torch._foreach_sub_(params, num)


class TFAdagrad(PerParameterOptimizer):
    """``tf.train.AdagradOptimizer(learning_rate, initial_accumulator_value=0.1)`` (TF1 training/adagrad.py
    and the ApplyAdagrad kernel, core/kernels/training_ops.cc)::

        accumulator = initial_accumulator_value          # one slot per variable, _create_slots
        accumulator += grad * grad
        var -= grad * lr * rsqrt(accumulator)

    It differs from ``torch.optim.Adagrad`` in its defaults, not its rule: torch starts the accumulator at
    0 (the first step then moves every weight by ``lr * sign(grad)``; TF's by ``lr * grad / sqrt(0.1 +
    grad^2)``) and divides by ``sqrt(accumulator) + 1e-10``. As in TF the learning rate is a float32
    tensor cast to the variable's dtype (``_prepare`` / ``_apply_dense``), and the accumulator starts at
    ``initial_accumulator_value`` in the variable's own dtype (``constant_initializer(value, dtype)``).
    The accumulators are the optimizer's state (``state["accumulator"]``), created at the first step.
    """

    def __init__(self, params, lr: float, initial_accumulator_value: float = 0.1, foreach: bool = True):
        if not lr >= 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        if not initial_accumulator_value > 0:  # adagrad.py __init__
            raise ValueError(f"initial_accumulator_value must be positive: {initial_accumulator_value}")
        super().__init__(params, dict(lr=lr, initial_accumulator_value=initial_accumulator_value),
                         foreach=foreach)
        self._flat_slots: Dict[int, FlatSlot] = {}  # per param group: the accumulators as one buffer

    @staticmethod
    def _accumulator(p, state, group) -> Tensor:
        if "accumulator" not in state:
            state["accumulator"] = torch.full_like(p, group["initial_accumulator_value"])
        return state["accumulator"]

    def update(self, p, grad, state, group):
        acc = self._accumulator(p, state, group)
        acc.add_(grad * grad)
        # training_ops.cc ApplyAdagrad: var -= grad * lr() * accum.rsqrt(), evaluated left to right.
        p.sub_(grad * _as_float32(group["lr"]) * acc.rsqrt())

    def update_group(self, params, grads, states, group):
        """:meth:`update` over the group's parameters at once, the same operations: the accumulators are
        views of one flat buffer (:class:`compat.optim.FlatSlot`) and the rule runs on it and on the
        gradients laid end to end, the step subtracted from each parameter."""
        slot = self._flat_slots.setdefault(id(group), FlatSlot("accumulator"))
        acc = slot.buffer(params, states, group["initial_accumulator_value"])
        g = torch.cat([t.reshape(-1) for t in grads])
        acc.add_(g * g)
        step = torch.mul(g, _as_float32(group["lr"]), out=slot.scratch)
        step.mul_(acc.rsqrt())
        torch._foreach_sub_(params, slot.scratch_views)


# BasicLSTMCell's variable names across TF generations live in the one TF names table.
CELL_VARIABLE_NAMES: Tuple[Tuple[str, str], ...] = KERNEL_BIAS[:3]
tf1_cell_variables = basic_lstm_cell_variables


def lr_decay_schedule(learning_rate: float, lr_decay: float, max_epoch: int, epoch: int) -> float:
    """ptb_word_lm.py main(): ``lr * lr_decay ** max(i + 1 - max_epoch, 0.0)`` for epoch i from 0."""
    return learning_rate * lr_decay ** max(epoch + 1 - max_epoch, 0.0)


__all__ = ["global_norm", "clip_scale", "clip_by_global_norm_", "GradientDescent", "TFAdam", "TFAdagrad",
           "CELL_VARIABLE_NAMES", "tf1_cell_variables", "lr_decay_schedule"]
