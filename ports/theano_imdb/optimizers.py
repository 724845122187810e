"""The tutorial's optimizers (DeepLearningTutorials ``code/lstm.py`` ``adadelta``, ``rmsprop``, ``sgd``).

In the tutorial each optimizer is a pair of compiled Theano functions: ``f_grad_shared(x, mask, y)``
computes the cost and updates the "shared" gradient statistics, then ``f_update(lr)`` moves the
parameters. Theano applies all updates of one function from the values *before* that call, so
within ``f_update`` the step uses the old ``running_up2`` / ``updir``. ``step()`` here performs both
halves in that order for the gradients in ``.grad``.

Adadelta and this RMSprop ignore the learning rate (``f_update(lrate)`` is compiled with
``on_unused_input='ignore'``); their constants (rho 0.95, epsilon 1e-6; RMSprop's 0.95 averages,
momentum 0.9, step 1e-4 and 1e-4 inside the square root) are hard-coded in the tutorial and are
the defaults here.
"""
from __future__ import annotations

import torch

from compat.optim import PerParameterOptimizer


def _complement(rho: float) -> float:
    """1 - rho as the decimal the tutorial writes (0.05, not 1 - 0.95 = 0.050000000000000044)."""
    return round(1.0 - rho, 12)


class Adadelta(PerParameterOptimizer):
    """lstm.py ``adadelta`` (Zeiler 2012) exactly::

        rg2  = rho * rg2 + (1 - rho) * g**2                     # f_grad_shared
        step = -sqrt(ru2 + eps) / sqrt(rg2 + eps) * g           # f_update, from the old ru2
        ru2  = rho * ru2 + (1 - rho) * step**2
        p    = p + step

    ``lr`` is accepted and ignored, as in the tutorial.
    """

    tutorial_name = "adadelta"

    def __init__(self, params, lr: float = 0.0, rho: float = 0.95, eps: float = 1e-6, foreach: bool = True):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps), foreach=foreach)

    def update(self, p, g, st, group):
        rho, eps = group["rho"], group["eps"]
        if not st:
            st["running_grads2"] = torch.zeros_like(p)
            st["running_up2"] = torch.zeros_like(p)
        rg2, ru2 = st["running_grads2"], st["running_up2"]
        # In-place forms of the same expressions (fewer passes over the large embedding).
        rg2.mul_(rho).addcmul_(g, g, value=_complement(rho))
        updir = torch.sqrt(ru2 + eps).div_(torch.sqrt(rg2 + eps)).mul_(g).neg_()
        ru2.mul_(rho).addcmul_(updir, updir, value=_complement(rho))
        p.add_(updir)

    def update_group(self, params, grads, states, group):
        """:meth:`update` over every parameter at once (torch._foreach_*, the same operations)."""
        rho, eps, c = group["rho"], group["eps"], _complement(group["rho"])
        for p, st in zip(params, states):
            if not st:
                st["running_grads2"] = torch.zeros_like(p)
                st["running_up2"] = torch.zeros_like(p)
        rg2 = [st["running_grads2"] for st in states]
        ru2 = [st["running_up2"] for st in states]
        torch._foreach_mul_(rg2, rho)
        torch._foreach_addcmul_(rg2, grads, grads, value=c)
        updir = torch._foreach_add(ru2, eps)
        torch._foreach_sqrt_(updir)
        den = torch._foreach_add(rg2, eps)
        torch._foreach_sqrt_(den)
        torch._foreach_div_(updir, den)
        torch._foreach_mul_(updir, grads)
        torch._foreach_neg_(updir)
        torch._foreach_mul_(ru2, rho)
        torch._foreach_addcmul_(ru2, updir, updir, value=c)
        torch._foreach_add_(params, updir)


class RMSprop(PerParameterOptimizer):
    """lstm.py ``rmsprop`` (centred, with momentum; the tutorial cites Hinton's lecture 6a) exactly::

        rg    = 0.95 * rg  + 0.05 * g                           # f_grad_shared
        rg2   = 0.95 * rg2 + 0.05 * g**2
        updir = 0.9 * updir - 1e-4 * g / sqrt(rg2 - rg**2 + 1e-4)   # f_update
        p     = p + updir                                       # the new updir

    ``lr`` is accepted and ignored, as in the tutorial (the step size 1e-4 is ``step_size``).
    """

    tutorial_name = "rmsprop"

    def __init__(self, params, lr: float = 0.0, rho: float = 0.95, momentum: float = 0.9, step_size: float = 1e-4,
                 eps: float = 1e-4, foreach: bool = True):
        super().__init__(params, dict(lr=lr, rho=rho, momentum=momentum, step_size=step_size, eps=eps),
                         foreach=foreach)

    def update(self, p, g, st, group):
        rho, mom, step_size, eps = group["rho"], group["momentum"], group["step_size"], group["eps"]
        if not st:
            st["running_grads"] = torch.zeros_like(p)
            st["running_grads2"] = torch.zeros_like(p)
            st["updir"] = torch.zeros_like(p)
        rg, rg2, ud = st["running_grads"], st["running_grads2"], st["updir"]
        rg.mul_(rho).add_(g, alpha=_complement(rho))
        rg2.mul_(rho).addcmul_(g, g, value=_complement(rho))
        ud.mul_(mom).sub_(step_size * g / torch.sqrt(rg2 - rg ** 2 + eps))
        p.add_(ud)


class SGD(PerParameterOptimizer):
    """lstm.py ``sgd``: ``p = p - lr * g`` (the tutorial calls it very hard to use)."""

    tutorial_name = "sgd"

    def __init__(self, params, lr: float = 0.0001, foreach: bool = True):
        super().__init__(params, dict(lr=lr), foreach=foreach)

    def update(self, p, g, st, group):
        p.sub_(group["lr"] * g)


OPTIMIZERS = {"adadelta": Adadelta, "rmsprop": RMSprop, "sgd": SGD}


def make_optimizer(name: str, params, lrate: float) -> PerParameterOptimizer:
    """The optimizer the tutorial's ``optimizer=`` names, with ``lrate`` (used by sgd only)."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; the tutorial has {sorted(OPTIMIZERS)}") from None
    return cls(params, lr=lrate)
