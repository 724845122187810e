"""compat.projected_xent against the unfused cross-entropy of the projection, and the Shakespeare
model's training cost on it against the recipe's graph order (logits, then sequence_loss_by_example)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from compat.projected_xent import BufferPool, onednn_available, projected_cross_entropy
from ports.tf_shakespeare.model import LSTMModel
from tests.tolerances import assert_close


def _leaves(seed, N, H, V, dtype, bias=True):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(N, H, generator=g, dtype=torch.float64) * 2).to(dtype).requires_grad_()
    w = torch.randn(H, V, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    b = torch.randn(V, generator=g, dtype=torch.float64).to(dtype).requires_grad_() if bias else None
    labels = torch.randint(0, V, (N,), generator=g)
    upstream = torch.randn(N, generator=g, dtype=torch.float64).to(dtype)
    return x, w, b, labels, upstream


needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN (mkldnn)")
# "auto" at these few rows: torch.mm's forward, oneDNN's backward; "onednn": oneDNN throughout.
MATMUL_CASES = [(torch.float64, "aten"), (torch.float32, "aten"), (torch.float32, "auto"),
                 pytest.param(torch.float32, "onednn", marks=needs_onednn)]


@pytest.mark.parametrize("dtype, matmul", MATMUL_CASES)
@given(N=st.integers(1, 9), H=st.integers(1, 6), V=st.integers(2, 12), bias=st.booleans(),
       seed=st.integers(0, 2 ** 31 - 1))
def test_equals_cross_entropy_of_the_projection(dtype, matmul, N, H, V, bias, seed):
    x, w, b, labels, up = _leaves(seed, N, H, V, dtype, bias)
    pool = BufferPool(1)
    for _ in range(2):  # the second pass reuses the pooled buffer
        loss = projected_cross_entropy(x, w, b, labels, pool, matmul=matmul)
        (loss * up).sum().backward()
        got = [loss.detach()] + [t.grad.clone() for t in (x, w, b) if t is not None]
        for t in (x, w, b):
            if t is not None:
                t.grad = None
    logits = x @ w if b is None else torch.addmm(b, x, w)
    ref = F.cross_entropy(logits, labels, reduction="none")
    (ref * up).sum().backward()
    expected = [ref.detach()] + [t.grad for t in (x, w, b) if t is not None]
    for a, e, name in zip(got, expected, ("loss", "x", "weight", "bias")):
        assert_close(a, e, msg=name)


def test_graphs_alive_together_keep_their_own_buffers():
    """Two forwards before either backward: the second takes a new buffer, both gradients are right."""
    x, w, b, labels, up = _leaves(0, 5, 3, 7, torch.float64)
    pool = BufferPool(1)
    l1 = projected_cross_entropy(x, w, b, labels, pool)
    l2 = projected_cross_entropy(x * 2, w, b, labels, pool)
    (l1 * up).sum().backward(retain_graph=False)
    g1 = w.grad.clone()
    w.grad = None
    (l2 * up).sum().backward()
    g2 = w.grad.clone()
    for scale, g in ((1, g1), (2, g2)):
        wr = w.detach().clone().requires_grad_()
        (F.cross_entropy(torch.addmm(b.detach(), x.detach() * scale, wr), labels, reduction="none") * up).sum().backward()
        assert_close(g, wr.grad)


def test_bad_shapes_are_named():
    x, w, b, labels, _ = _leaves(0, 4, 3, 5, torch.float64)
    with pytest.raises(ValueError, match="do not multiply"):
        projected_cross_entropy(x, w.t(), b, labels)
    with pytest.raises(ValueError, match="bias has shape"):
        projected_cross_entropy(x, w, b[:-1], labels)
    with pytest.raises(ValueError, match="labels have shape"):
        projected_cross_entropy(x, w, b, labels[:-1])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_shakespeare_training_cost_equals_the_recipe_order(dtype):
    model = LSTMModel(8, 30, 3, 5, dtype=dtype, generator=torch.Generator().manual_seed(1))
    x = torch.randint(0, 30, (3, 5), generator=torch.Generator().manual_seed(2))
    y = torch.roll(x, -1, 1)
    results = []
    for fused in (True, False):
        model.fused_loss = fused
        for p in model.parameters():
            p.grad = None
        cost, _ = model.cost(x, y)
        cost.backward()
        results.append([cost.detach()] + [p.grad.clone() for p in model.parameters()])
    for a, e in zip(*results):
        assert_close(a, e)


@pytest.mark.parametrize("dtype, matmul", MATMUL_CASES)
def test_row_blocks_of_the_forward(monkeypatch, dtype, matmul):
    """Logits larger than one block: product, softmax and loss run block by block, with the same result."""
    import compat.projected_xent as px

    monkeypatch.setattr(px, "_BLOCK_ELEMENTS", 10)
    x, w, b, labels, up = _leaves(3, 11, 4, 6, dtype)
    loss = projected_cross_entropy(x, w, b, labels, matmul=matmul)
    (loss * up).sum().backward()
    ref = F.cross_entropy(torch.addmm(b, x, w), labels, reduction="none")
    assert_close(loss, ref)
    wr = w.detach().clone().requires_grad_()
    (F.cross_entropy(torch.addmm(b.detach(), x.detach(), wr), labels, reduction="none") * up).sum().backward()
    assert_close(w.grad, wr.grad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ptb_training_cost_equals_cost_of_the_logits(dtype):
    from ports.tf_ptb.config import Config
    from ports.tf_ptb.model import PTBModel

    cfg = Config(num_layers=2, num_steps=4, hidden_size=6, batch_size=3, vocab_size=11)
    model = PTBModel(cfg, is_training=True, dtype=dtype)
    model.reset_parameters(torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(5)
    x, y = torch.randint(0, 11, (3, 4), generator=g), torch.randint(0, 11, (3, 4), generator=g)
    results = []
    for fused in (True, False):
        for p in model.parameters():
            p.grad = None
        if fused:
            cost, final, _ = model.training_cost(x, y)
        else:
            logits, final = model(x)
            cost = model.cost(logits, y)
        cost.backward()
        results.append([cost.detach()] + [t.detach() for pair in final for t in pair] +
                       [p.grad.clone() for p in model.parameters()])
    for a, e in zip(*results):
        assert_close(a, e)


@pytest.mark.parametrize("dtype, matmul", MATMUL_CASES)
def test_far_below_the_maximum(dtype, matmul):
    """Labels whose probability underflows (logits 150 apart): the loss is still log-sum-exp - z[label],
    finite and exact, as TF computes it, not -log(0)."""
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=dtype, requires_grad=True)
    w = torch.tensor([[150.0, 0.0, -5.0], [0.0, 150.0, 2.0]], dtype=dtype, requires_grad=True)
    labels = torch.tensor([1, 0, 2])
    loss = projected_cross_entropy(x, w, None, labels, matmul=matmul)
    assert torch.isfinite(loss).all()
    assert_close(loss, F.cross_entropy((x @ w).detach().double(), labels, reduction="none").to(dtype))
    assert_close(loss[:2], torch.full((2,), 150.0, dtype=dtype))


@pytest.mark.parametrize("dtype, matmul", MATMUL_CASES)
def test_non_finite_logits_give_nan_rows(dtype, matmul):
    """A NaN or inf logit makes its row's loss NaN (TF's kernel: exp(inf - inf) for inf)."""
    x = torch.tensor([[1.0, 0.5], [0.2, -0.3]], dtype=dtype)
    w = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], dtype=dtype)
    labels = torch.tensor([2, 0])
    for bad in (float("nan"), float("inf")):
        b = torch.tensor([0.0, bad, 0.0], dtype=dtype)  # in every row's logits
        loss = projected_cross_entropy(x, w, b, labels, matmul=matmul)
        assert torch.isnan(loss).all()
    b = torch.zeros(3, dtype=dtype)
    loss = projected_cross_entropy(x, w, b, labels, matmul=matmul)
    assert_close(loss, F.cross_entropy(torch.addmm(b, x, w), labels, reduction="none"))


def test_auto_takes_onednn_for_float32_on_the_cpu():
    import compat.projected_xent as px

    x32, x64 = torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64)
    assert px._use_onednn("auto", x32) is onednn_available()
    assert px._use_onednn("auto", x64) is False and px._use_onednn("aten", x32) is False
    with pytest.raises(RuntimeError, match="float32 CPU"):
        px._use_onednn("onednn", x64)
    with pytest.raises(ValueError, match="matmul must be one of"):
        projected_cross_entropy(x32, torch.zeros(3, 4), None, torch.zeros(2, dtype=torch.long), matmul="mkl")


def test_second_backward_is_refused():
    x, w, b, labels, up = _leaves(0, 4, 3, 5, torch.float64)
    loss = projected_cross_entropy(x, w, b, labels).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward ran twice"):
        loss.backward()
