"""The base of the ports' legacy optimizers: a torch Optimizer whose update rule is written per parameter
and, for speed, once more over lists of parameters with ``torch._foreach_*`` (the same operations in the
same order, so the same numbers: tests compare the two bit for bit)."""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor


class PerParameterOptimizer(torch.optim.Optimizer):
    """``step(closure)`` as torch.optim does it. Subclasses write ``update(p, grad, state, group)`` for one
    parameter (the reference form) and may write ``update_group(params, grads, states, group)`` for the
    parameters of one group that have a gradient, with ``torch._foreach_*``. ``foreach=False`` (or
    parameters on different devices or of different dtypes in one group) runs ``update`` per parameter.
    ``state`` is the parameter's (initially empty) state dict."""

    def __init__(self, params, defaults: dict, foreach: bool = True):
        super().__init__(params, defaults)
        self.foreach = foreach

    # torch.optim.Optimizer wraps these four in torch._disable_dynamo, whose first call imports
    # torch._dynamo: about 2 seconds of a program's start-up on a 2-core machine. These optimizers are never
    # run under torch.compile, so they call the methods themselves (functools.wraps keeps them as
    # __wrapped__; a torch without the wrapper keeps its own).
    add_param_group = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__",
                              torch.optim.Optimizer.add_param_group)
    zero_grad = getattr(torch.optim.Optimizer.zero_grad, "__wrapped__", torch.optim.Optimizer.zero_grad)
    state_dict = getattr(torch.optim.Optimizer.state_dict, "__wrapped__", torch.optim.Optimizer.state_dict)
    load_state_dict = getattr(torch.optim.Optimizer.load_state_dict, "__wrapped__",
                              torch.optim.Optimizer.load_state_dict)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stepped = [(group, [p for p in group["params"] if p.grad is not None]) for group in self.param_groups]
        if not any(params for _, params in stepped):
            return loss
        self.prepare()
        for group, params in stepped:
            if not params:
                continue
            uniform = len({(p.device, p.dtype) for p in params}) == 1
            if self.foreach and uniform and type(self).update_group is not PerParameterOptimizer.update_group:
                self.update_group(params, [p.grad for p in params], [self.state[p] for p in params], group)
            else:
                for p in params:
                    self.update(p, p.grad, self.state[p], group)
        self.finish()
        return loss

    def prepare(self) -> None:
        """Before the updates of a step where some parameter has a gradient (TF's ``Optimizer._prepare``)."""

    def finish(self) -> None:
        """After them (TF's ``Optimizer._finish``: Adam advances its beta powers there)."""

    def update(self, p: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    def update_group(self, params: List[Tensor], grads: List[Tensor], states: List[dict], group: dict) -> None:
        for p, g, s in zip(params, grads, states):
            self.update(p, g, s, group)


class FlatSlot:
    """One state slot (such as Adagrad's ``"accumulator"``) of a group's parameters kept as views of one flat
    buffer, so that an element-wise rule runs on the whole group in a few operations instead of a few per
    parameter. What users see is unchanged: ``state[p][name]`` is a tensor of ``p``'s shape (a view), saved
    and loaded as any other; a slot replaced from outside (``load_state_dict``) is copied back into the
    buffer at the next :meth:`buffer` call. ``scratch``: a second flat buffer of the same size with views in
    the parameters' shapes (``scratch_views``), for a per-step result applied parameter by parameter."""

    def __init__(self, name: str):
        self.name = name
        self._params: tuple = ()
        self._views: list = []
        self.flat = self.scratch = None
        self.scratch_views: list = []

    def buffer(self, params: List[Tensor], states: List[dict], initial: float) -> Tensor:
        """The flat buffer holding ``states[k][name]`` of every parameter (created filled with ``initial``)."""
        if (len(params) == len(self._params) and all(p is q for p, q in zip(params, self._params))
                and all(s.get(self.name) is v for s, v in zip(states, self._views))):
            return self.flat
        p0 = params[0]
        total = sum(p.numel() for p in params)
        flat = torch.empty(total, dtype=p0.dtype, device=p0.device)
        scratch = torch.empty_like(flat)
        views, scratch_views, at = [], [], 0
        for p, s in zip(params, states):
            view = flat[at:at + p.numel()].view_as(p)
            if self.name in s:
                view.copy_(s[self.name])
            else:
                view.fill_(initial)
            s[self.name] = view
            views.append(view)
            scratch_views.append(scratch[at:at + p.numel()].view_as(p))
            at += p.numel()
        self._params, self._views = tuple(params), views
        self.flat, self.scratch, self.scratch_views = flat, scratch, scratch_views
        return flat
