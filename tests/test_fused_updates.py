"""The optimizers' grouped updates (torch._foreach_*, or one flat buffer) give exactly the numbers of their
per-parameter reference form, step after step: TF's SGD, Adam (dense and sparse groups) and Adagrad, the
Theano tutorial's adadelta, rmsprop and sgd, and TF's global-norm clipping; Adagrad's flat accumulators
look like per-parameter ones from outside."""
from __future__ import annotations

import pytest
import torch

from compat.tf1 import GradientDescent, TFAdagrad, TFAdam, clip_by_global_norm_
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
    "tf-adagrad": lambda ps, fe: TFAdagrad(ps, lr=0.1, foreach=fe),
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


def test_adagrad_flat_accumulators_are_per_parameter_state_and_load_back():
    """TF's Adagrad keeps its accumulators as views of one buffer: each is a tensor of its parameter's shape
    in ``state``, saved by ``state_dict``; accumulators loaded with ``load_state_dict`` (or set by hand) are
    the ones the next step updates, and a run resumed from a state_dict continues bit for bit."""
    def fresh():
        return [torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(k)))
                for k, s in enumerate(SHAPES)]

    def grads(params, it):
        g = torch.Generator().manual_seed(100 + it)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)

    params = fresh()
    opt = TFAdagrad(params, lr=0.1)
    for it in range(3):
        grads(params, it)
        opt.step()
    saved = {k: v.clone() for k, v in zip(range(len(params)), params)}
    state = opt.state_dict()
    for k, p in enumerate(params):
        acc = state["state"][k]["accumulator"]
        assert acc.shape == p.shape and acc is opt.state[p]["accumulator"]
    # another optimizer of the same parameters' values, loaded from the state_dict, then both step on
    again = fresh()
    with torch.no_grad():
        for k, p in enumerate(again):
            p.copy_(saved[k])
    other = TFAdagrad(again, lr=0.1)
    other.load_state_dict({"state": {k: {"accumulator": v["accumulator"].clone()} for k, v in state["state"].items()},
                           "param_groups": state["param_groups"]})
    for it in range(3, 5):
        grads(params, it)
        grads(again, it)
        opt.step()
        other.step()
    for a, b in zip(params, again):
        assert torch.equal(a, b)
    for a, b in zip(params, again):
        assert torch.equal(opt.state[a]["accumulator"], other.state[b]["accumulator"])
    # an accumulator replaced by hand is the one the next step reads
    p0 = params[0]
    opt.state[p0]["accumulator"] = torch.full_like(p0, 1e6)
    grads(params, 9)
    before = p0.detach().clone()
    g0 = p0.grad.clone()
    opt.step()
    expected = torch.full_like(p0, 1e6)
    expected.add_(g0 * g0)
    assert torch.equal(p0.detach(), before - g0 * float(torch.tensor(0.1, dtype=torch.float32)) * expected.rsqrt())
    assert torch.equal(opt.state[p0]["accumulator"], expected)
