"""The base of the ports' legacy optimizers: a torch Optimizer that updates each parameter on its own."""
from __future__ import annotations

import torch


class PerParameterOptimizer(torch.optim.Optimizer):
    """``step(closure)`` as torch.optim does it, calling ``update(p, grad, state, group)`` for every
    parameter that has a gradient. ``state`` is the parameter's (initially empty) state dict."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, p.grad, self.state[p], group)
        return loss

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError
