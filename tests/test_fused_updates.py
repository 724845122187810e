"""The optimizers' grouped updates (torch._foreach_*) give exactly the numbers of their per-parameter
reference form, step after step: TF's SGD and Adam (dense and sparse groups), the Theano tutorial's
adadelta, rmsprop and sgd, and TF's global-norm clipping."""
from __future__ import annotations

import pytest
import torch

from compat.tf1 import GradientDescent, TFAdam, clip_by_global_norm_
from ports.theano_imdb.optimizers import SGD, Adadelta, RMSprop

SHAPES = [(6, 4), (4,), (3, 5, 2), (7,)]


def _run(make, foreach: bool, dtype, steps: int = 4, clip: bool = False):
    params = [torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(k), dtype=dtype))
              for k, s in enumerate(SHAPES)]
    opt = make(params, foreach)
    g = torch.Generator().manual_seed(99)
    for it in range(steps):
        for k, p in enumerate(params):
            # one parameter without a gradient in one step (its state must not advance)
            p.grad = None if (k == 1 and it == 2) else torch.randn(p.shape, generator=g, dtype=dtype) * 3
        if clip:
            live = [p for p in params if p.grad is not None]
            clip_by_global_norm_(live, 2.0)
        opt.step()
    out = [p.detach().clone() for p in params]
    for p in params:
        for v in opt.state[p].values():
            if isinstance(v, torch.Tensor):
                out.append(v.clone())
    return out


OPTIMIZERS = {
    "tf-sgd": lambda ps, fe: GradientDescent(ps, lr=0.3, foreach=fe),
    "tf-adam": lambda ps, fe: TFAdam([{"params": ps[:3]}, {"params": ps[3:], "sparse": True}], lr=0.01, foreach=fe),
    "tf-adam-dense": lambda ps, fe: TFAdam(ps, lr=0.01, foreach=fe),
    "adadelta": lambda ps, fe: Adadelta(ps, foreach=fe),
    "rmsprop": lambda ps, fe: RMSprop(ps, foreach=fe),
    "sgd": lambda ps, fe: SGD(ps, lr=0.01, foreach=fe),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_grouped_update_equals_the_per_parameter_update(name, dtype):
    grouped = _run(OPTIMIZERS[name], True, dtype, clip=name.startswith("tf"))
    reference = _run(OPTIMIZERS[name], False, dtype, clip=name.startswith("tf"))
    assert len(grouped) == len(reference)
    for a, b in zip(grouped, reference):
        assert torch.equal(a, b)


def test_grouped_update_changes_the_parameters():
    """The comparison above is not vacuous: an update moves every parameter that has a gradient."""
    for name, make in OPTIMIZERS.items():
        before = _run(make, True, torch.float64, steps=0)
        after = _run(make, True, torch.float64, steps=1)
        for a, b in zip(before[:len(SHAPES)], after[:len(SHAPES)]):
            assert not torch.equal(a, b), name
