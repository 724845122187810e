"""BVLC Caffe's layers around recurrent layers (compat.layers.caffe) against the numpy oracle
reference/caffe_layers.py: Embed, InnerProduct on any axis (and transposed), Softmax on any axis, Reshape (0,
-1, axis, num_axes), Slice (slice points or even), Concat, Eltwise (SUM with coeff, PROD, MAX), Dropout (TEST
identity, TRAIN scaling), Split, on random shapes and settings in float64 and float32; and the settings Caffe
stops on, refused naming the field.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.strategies import composite

from compat.layers import caffe as L
from reference import caffe_layers as ref
from tests.tolerances import assert_close

DTYPES = (torch.float64, torch.float32)


@composite
def shapes(draw, min_rank=1, max_rank=4):
    return [draw(st.integers(1, 4)) for _ in range(draw(st.integers(min_rank, max_rank)))]


def _rand(rng, shape, dtype):
    return torch.as_tensor(rng.uniform(-2, 2, shape), dtype=dtype)


@given(shape=shapes(), K=st.integers(1, 12), N=st.integers(1, 5), bias=st.booleans(), seed=st.integers(0, 2 ** 16),
       dtype=st.sampled_from(DTYPES), floats=st.booleans())
def test_embed(shape, K, N, bias, seed, dtype, floats):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, K, shape)
    m = L.Embed(K, N, bias).to(dtype)
    with torch.no_grad():
        m.weight.copy_(_rand(rng, (K, N), dtype))
        if bias:
            m.bias.copy_(_rand(rng, (N,), dtype))
    # Caffe's blobs hold ids as floats (static_cast<int> truncates); integer tensors are the ids themselves
    x = torch.as_tensor(ids + (0.25 if floats else 0)) if floats else torch.as_tensor(ids)
    got = m(x)
    want = ref.embed(ids + (0.25 if floats else 0), m.weight.detach().double().numpy(),
                     m.bias.detach().double().numpy() if bias else None)
    assert list(got.shape) == shape + [N]
    assert_close(got, want, dtype=dtype)


def test_embed_refuses_ids_outside_the_vocabulary():
    m = L.Embed(5, 2)
    for bad in (5, -1):
        with pytest.raises(L.CaffeLayerShapeError, match=r"outside \[0, 5\).*input_dim"):
            m(torch.tensor([[0, bad]]))


@given(shape=shapes(2, 4), N=st.integers(1, 5), bias=st.booleans(), transpose=st.booleans(),
       seed=st.integers(0, 2 ** 16), dtype=st.sampled_from(DTYPES), data=st.data())
def test_inner_product_any_axis(shape, N, bias, transpose, seed, dtype, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = axis % len(shape)
    K = int(np.prod(shape[a:]))
    rng = np.random.default_rng(seed)
    m = L.InnerProduct(K, N, bias, axis, transpose).to(dtype)
    with torch.no_grad():
        m.weight.copy_(_rand(rng, (K, N) if transpose else (N, K), dtype))
        if bias:
            m.bias.copy_(_rand(rng, (N,), dtype))
    x = _rand(rng, shape, dtype)
    got = m(x)
    want = ref.inner_product(x.double().numpy(), m.weight.detach().double().numpy(),
                             m.bias.detach().double().numpy() if bias else None, axis, transpose)
    assert list(got.shape) == shape[:a] + [N]
    assert_close(got, want, dtype=dtype)


def test_inner_product_refuses_a_bottom_of_other_width():
    with pytest.raises(L.CaffeLayerShapeError, match="expects 6"):
        L.InnerProduct(6, 2, axis=2)(torch.zeros(2, 3, 4))


@given(shape=shapes(), seed=st.integers(0, 2 ** 16), dtype=st.sampled_from(DTYPES), data=st.data())
def test_softmax_any_axis(shape, seed, dtype, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = _rand(np.random.default_rng(seed), shape, dtype) * 20   # large values: the max subtraction matters
    assert_close(L.Softmax(axis)(x), ref.softmax(x.double().numpy(), axis), dtype=dtype)


@composite
def reshapes(draw):
    bottom = draw(shapes(1, 4))
    n = len(bottom)
    start = draw(st.integers(0, n))
    end = draw(st.integers(start, n))
    axis = draw(st.sampled_from([start, start - n - 1]))
    num_axes = -1 if end == n and draw(st.booleans()) else end - start
    # new dims for the replaced block: some copied (0), one inferred (-1), the rest its factorisation
    block = bottom[start:end]
    count = int(np.prod(block)) if block else 1
    dims = []
    for i, d in enumerate(block):
        dims.append(draw(st.sampled_from([0, d])))
    if draw(st.booleans()):
        dims.append(1)
    if dims and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    if not dims and count == 1 and draw(st.booleans()):
        dims = [1, -1]
    return bottom, dims, axis, num_axes


@given(case=reshapes(), dtype=st.sampled_from(DTYPES))
def test_reshape(case, dtype):
    bottom, dims, axis, num_axes = case
    x = torch.arange(float(np.prod(bottom)), dtype=dtype).reshape(bottom)
    got = L.Reshape(dims, axis, num_axes)(x)
    want = ref.reshape(x.double().numpy(), dims, axis, num_axes)
    assert list(got.shape) == list(want.shape)
    assert_close(got, want, dtype=dtype)


@pytest.mark.parametrize("bottom, dims, axis, num_axes, match", [
    ([2, 3], [-1, -1], 0, -1, "multiple -1"),
    ([2, 3], [0, 0, 0], 0, -1, "no bottom axis 2 to copy"),
    ([2, 3], [4, -1], 0, -1, "not divisible"),
    ([2, 3], [5], 0, -1, "differs from the input count"),
    ([2, 3], [6], 3, -1, "axis 3 is out of range"),
    ([2, 3], [6], 0, 3, r"axis \+ num_axes = 3"),
    ([2, 3], [6], 0, -2, "num_axes -2"),
])
def test_reshape_refusals(bottom, dims, axis, num_axes, match):
    with pytest.raises(L.CaffeLayerShapeError, match=match):
        L.reshape_top_shape(bottom, dims, axis, num_axes)


@given(shape=shapes(1, 4), tops=st.integers(1, 4), seed=st.integers(0, 2 ** 16), dtype=st.sampled_from(DTYPES),
       data=st.data())
def test_slice(shape, tops, seed, dtype, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = axis % len(shape)
    length = shape[a] * tops if data.draw(st.booleans()) else max(shape[a], tops)
    shape = shape[:a] + [length] + shape[a + 1:]
    points = sorted(data.draw(st.sets(st.integers(1, length - 1), min_size=tops - 1, max_size=tops - 1))) \
        if tops > 1 and (length % tops or data.draw(st.booleans())) else []
    x = _rand(np.random.default_rng(seed), shape, dtype)
    got = L.Slice(tops, axis, points)(x)
    want = ref.slice_(x.double().numpy(), axis, points, tops)
    assert len(got) == len(want) == tops
    for g, w in zip(got, want):
        assert list(g.shape) == list(w.shape)
        assert_close(g, w, dtype=dtype)


@pytest.mark.parametrize("length, points, tops, match", [
    (5, [], 2, "do not evenly divide"), (5, [3], 3, "one fewer"), (5, [3, 2], 3, "strictly increasing"),
    (5, [5], 2, "beyond the axis"), (2, [1, 1], 3, "3 tops from an axis of 2")])
def test_slice_refusals(length, points, tops, match):
    with pytest.raises(L.CaffeLayerShapeError, match=match):
        L.slice_sizes(length, points, tops)


@given(shape=shapes(1, 4), n=st.integers(1, 4), seed=st.integers(0, 2 ** 16), dtype=st.sampled_from(DTYPES),
       data=st.data())
def test_concat(shape, n, seed, dtype, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = axis % len(shape)
    rng = np.random.default_rng(seed)
    xs = [_rand(rng, shape[:a] + [data.draw(st.integers(1, 3))] + shape[a + 1:], dtype) for _ in range(n)]
    assert_close(L.Concat(axis)(xs), ref.concat([x.double().numpy() for x in xs], axis), dtype=dtype)


def test_concat_refuses_other_axes_that_differ():
    with pytest.raises(L.CaffeLayerShapeError, match="all axes but 1 must agree"):
        L.Concat(1)([torch.zeros(2, 3), torch.zeros(3, 3)])


@given(shape=shapes(), n=st.integers(2, 4), op=st.sampled_from(L.ELTWISE_OPS), coeff=st.booleans(),
       seed=st.integers(0, 2 ** 16), dtype=st.sampled_from(DTYPES))
def test_eltwise(shape, n, op, coeff, seed, dtype):
    rng = np.random.default_rng(seed)
    xs = [_rand(rng, shape, dtype) for _ in range(n)]
    coeffs = [float(c) for c in rng.uniform(-2, 2, n)] if coeff and op == "SUM" else None
    got = L.Eltwise(op, coeffs)(xs)
    assert_close(got, ref.eltwise([x.double().numpy() for x in xs], op, coeffs or ()), dtype=dtype)


def test_eltwise_refusals():
    with pytest.raises(L.CaffeLayerShapeError, match="2 coeffs for 3 bottoms"):
        L.Eltwise("SUM", [1, 2])([torch.zeros(2)] * 3)
    with pytest.raises(L.CaffeLayerShapeError, match="bottom 1 has shape"):
        L.Eltwise("PROD")([torch.zeros(2), torch.zeros(3)])


@given(shape=shapes(), ratio=st.sampled_from([0.0, 0.1, 0.5, 0.9]), seed=st.integers(0, 2 ** 16),
       dtype=st.sampled_from(DTYPES))
def test_dropout_test_identity_and_train_scaling(shape, ratio, seed, dtype):
    x = _rand(np.random.default_rng(seed), shape, dtype)
    m = L.Dropout(ratio).eval()
    assert_close(m(x), ref.dropout(x.double().numpy(), ratio, train=False), dtype=dtype)
    m.train()
    gen_state = torch.random.get_rng_state()
    got = m(x)
    torch.random.set_rng_state(gen_state)
    uniform = torch.rand_like(x).double().numpy()       # the draws the layer made
    assert_close(got, ref.dropout(x.double().numpy(), ratio, train=True, uniform=uniform), dtype=dtype)


def test_dropout_keeps_one_minus_ratio_on_average():
    torch.manual_seed(0)
    y = L.Dropout(0.3).train()(torch.ones(200_000, dtype=torch.float64))
    kept = y != 0
    assert_close(y[kept], torch.full((int(kept.sum()),), 1 / 0.7, dtype=torch.float64), dtype=torch.float64)
    assert abs(float(kept.double().mean()) - 0.7) < 0.005   # 5 standard deviations of the binomial


@given(shape=shapes(), tops=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_split(shape, tops, seed):
    x = _rand(np.random.default_rng(seed), shape, torch.float64)
    got = L.Split(tops)(x)
    want = ref.split(x.numpy(), tops)
    assert len(got) == tops
    for g, w in zip(got, want):
        assert_close(g, w, dtype=torch.float64)
