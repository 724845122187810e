"""Caffe's SGD solver (src/caffe/solver.cpp ``SGDSolver::ComputeUpdateValue`` and ``GetLearningRate``).

Per parameter, each iteration (all in the parameter's dtype, float32 as in Caffe)::

    local_rate  = rate * lr_mult                  local_decay = weight_decay * decay_mult
    diff       += local_decay * w                 (L2; L1 adds local_decay * sign(w))
    history     = momentum * history + local_rate * diff
    w          -= history                         (Blob::Update: data -= diff, diff = history)

Not torch.optim.SGD: torch keeps ``buf = momentum * buf + grad`` and steps ``lr * buf``, which differs from
Caffe whenever the learning rate changes, and applies weight decay the same way but not lr_mult.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
from torch import nn

from compat.formats.prototxt import TextMessage

LR_POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


class CaffeSGD:
    """``CaffeSGD(params, solver_param)`` with params as (name, parameter, lr_mult, decay_mult)."""

    def __init__(self, params: Sequence[Tuple[str, nn.Parameter, float, float]], solver: TextMessage):
        self.params = list(params)
        self.base_lr = float(solver.get("base_lr", 0.0))
        self.momentum = float(solver.get("momentum", 0.0))
        self.weight_decay = float(solver.get("weight_decay", 0.0))
        self.regularization = str(solver.get("regularization_type", "L2"))
        self.lr_policy = str(solver.get("lr_policy", "fixed"))
        self.gamma = float(solver.get("gamma", 0.0))
        self.power = float(solver.get("power", 0.0))
        self.stepsize = int(solver.get("stepsize", 1))
        self.stepvalues = [int(v) for v in solver.getall("stepvalue")]
        self.max_iter = int(solver.get("max_iter", 0))
        solver_type = str(solver.get("type", solver.get("solver_type", "SGD")))
        if solver_type not in ("SGD", "0"):
            raise ValueError(f"solver type {solver_type!r}: only SGD is implemented (the lstm_sequence solvers use it)")
        if self.lr_policy not in LR_POLICIES:
            raise ValueError(f"unknown lr_policy {self.lr_policy!r}; Caffe has {LR_POLICIES}")
        if self.regularization not in ("L1", "L2"):
            raise ValueError(f"unknown regularization_type {self.regularization!r}")
        if float(solver.get("clip_gradients", -1)) >= 0:
            raise ValueError("clip_gradients is not implemented (the lstm_sequence solvers do not set it)")
        self.current_step = 0
        self.history: List[torch.Tensor] = [torch.zeros_like(p) for _, p, _, _ in self.params]
        # [((lr_mult, decay_mult), params, histories)]: the parameters :meth:`step` updates together (same
        # multipliers, device and dtype); fixed with the parameters and their histories.
        groups: dict = {}
        for (_, p, lr, dm), h in zip(self.params, self.history):
            entry = groups.setdefault((lr, dm, p.device, p.dtype), ((lr, dm), [], []))
            entry[1].append(p)
            entry[2].append(h)
        self.groups = list(groups.values())

    def learning_rate(self, it: int) -> float:
        """SGDSolver::GetLearningRate at iteration ``it``."""
        p = self.lr_policy
        if p == "fixed":
            return self.base_lr
        if p == "step":
            self.current_step = it // self.stepsize
            return self.base_lr * self.gamma ** self.current_step
        if p == "exp":
            return self.base_lr * self.gamma ** it
        if p == "inv":
            return self.base_lr * (1.0 + self.gamma * it) ** (-self.power)
        if p == "multistep":
            if self.current_step < len(self.stepvalues) and it >= self.stepvalues[self.current_step]:
                self.current_step += 1
            return self.base_lr * self.gamma ** self.current_step
        if p == "poly":
            return self.base_lr * (1.0 - it / self.max_iter) ** self.power
        return self.base_lr * (1.0 / (1.0 + math.exp(-self.gamma * (it - self.stepsize))))

    @torch.no_grad()
    def step(self, it: int) -> None:
        """One update. Parameters that share (lr_mult, decay_mult), device and dtype are updated together
        with ``torch._foreach_*`` (the same operations in the same order as :meth:`step_per_parameter`,
        so the same numbers)."""
        rate = self.learning_rate(it)
        for (lr_mult, decay_mult), params, hists in self.groups:
            diffs = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            local_decay = self.weight_decay * decay_mult
            if local_decay:
                reg = params if self.regularization == "L2" else torch._foreach_sign(params)
                diffs = torch._foreach_add(diffs, torch._foreach_mul(reg, local_decay))
            torch._foreach_mul_(hists, self.momentum)
            torch._foreach_add_(hists, diffs, alpha=rate * lr_mult)
            torch._foreach_sub_(params, hists)

    @torch.no_grad()
    def step_per_parameter(self, it: int) -> None:
        """:meth:`step` one parameter at a time (SGDSolver::ComputeUpdateValue's loop as written)."""
        rate = self.learning_rate(it)
        for (name, p, lr_mult, decay_mult), hist in zip(self.params, self.history):
            diff = p.grad if p.grad is not None else torch.zeros_like(p)
            local_decay = self.weight_decay * decay_mult
            if local_decay:
                diff = diff + local_decay * (p if self.regularization == "L2" else torch.sign(p))
            hist.mul_(self.momentum).add_(diff, alpha=rate * lr_mult)
            p.sub_(hist)

    def zero_grad(self) -> None:
        for _, p, _, _ in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"history": [h.clone() for h in self.history], "current_step": self.current_step}

    def load_state_dict(self, state: dict) -> None:
        if len(state["history"]) != len(self.history):
            raise ValueError(f"solver state has {len(state['history'])} history blobs; the net has {len(self.history)}")
        for h, s in zip(self.history, state["history"]):
            if h.shape != s.shape:
                raise ValueError(f"solver history blob of shape {list(s.shape)} does not fit {list(h.shape)}")
            h.copy_(s)
        self.current_step = int(state["current_step"])
