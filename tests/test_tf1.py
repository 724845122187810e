"""compat.tf1 against the numpy references of TF's clip_ops, GradientDescent and Adam."""
from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, note

from compat.tf1 import (CELL_VARIABLE_NAMES, GradientDescent, TFAdam, clip_by_global_norm_, global_norm,
                        lr_decay_schedule, tf1_cell_variables)
from reference import tf_ptb as ref_ptb
from reference import tf_seq2seq as ref_s2s
from tests.tolerances import assert_close


@st.composite
def embedding_gradients(draw):
    """An embedding [V, D] looked up at ids with repeats, per-occurrence gradients and one dense tensor."""
    vocab = draw(st.integers(1, 6))
    dim = draw(st.integers(1, 5))
    n = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=n)
    values = rng.normal(size=(n, dim)) * scale
    dense = rng.normal(size=(dim, 3)) * scale
    clip = draw(st.sampled_from([0.1, 1.0, 5.0, 1e3]))
    return ids, values, dense, vocab, dim, clip


@given(embedding_gradients())
def test_clip_by_global_norm_counts_indexed_slices_per_occurrence(case):
    ids, values, dense, vocab, dim, clip = case
    note(f"ids={ids.tolist()} clip={clip}")
    emb = torch.nn.Parameter(torch.zeros(vocab, dim, dtype=torch.float64))
    other = torch.nn.Parameter(torch.zeros(dim, 3, dtype=torch.float64))
    slice_values = torch.tensor(values)
    emb.grad = torch.zeros(vocab, dim, dtype=torch.float64).index_add_(0, torch.tensor(ids), slice_values)
    other.grad = torch.tensor(dense)
    norm = clip_by_global_norm_([emb, other], clip, indexed_slices={emb: slice_values})

    slices = ref_ptb.IndexedSlices(values, ids, (vocab, dim))
    (clipped_slices, clipped_dense), ref_norm = ref_ptb.clip_by_global_norm([slices, dense], clip)
    assert_close(norm, ref_norm)
    assert_close(emb.grad, ref_ptb.to_dense(clipped_slices))
    assert_close(other.grad, clipped_dense)


@given(embedding_gradients())
def test_slices_without_a_dense_gradient_are_clipped_in_place(case):
    """The embedding's gradient held only as IndexedSlices (no .grad): the slices' values are clipped."""
    ids, values, dense, vocab, dim, clip = case
    emb = torch.nn.Parameter(torch.zeros(vocab, dim, dtype=torch.float64))
    other = torch.nn.Parameter(torch.zeros(dim, 3, dtype=torch.float64))
    slice_values = torch.tensor(values)
    other.grad = torch.tensor(dense)
    norm = clip_by_global_norm_([emb, other], clip, indexed_slices={emb: slice_values})
    slices = ref_ptb.IndexedSlices(values, ids, (vocab, dim))
    (clipped_slices, clipped_dense), ref_norm = ref_ptb.clip_by_global_norm([slices, dense], clip)
    assert emb.grad is None
    assert_close(norm, ref_norm)
    assert_close(slice_values, clipped_slices.values)
    assert_close(other.grad, clipped_dense)


def test_indexed_slices_norm_differs_from_dense_norm_when_ids_repeat():
    values = torch.ones(3, 2, dtype=torch.float64)
    dense = torch.zeros(4, 2, dtype=torch.float64).index_add_(0, torch.tensor([1, 1, 1]), values)
    assert_close(global_norm([values]), math.sqrt(6.0))
    assert_close(global_norm([dense]), math.sqrt(18.0))


def test_clip_scale_is_nan_for_a_non_finite_norm():
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([float("inf"), 1.0])
    clip_by_global_norm_([p], 1.0)
    assert torch.isnan(p.grad).all()


def test_clip_rejects_slices_of_an_unclipped_tensor():
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.ones(2)
    with pytest.raises(ValueError, match="not among the clipped"):
        clip_by_global_norm_([p], 1.0, indexed_slices={q: torch.ones(1, 2)})


@given(st.integers(0, 2 ** 31 - 1), st.sampled_from([0.01, 1.0]))
def test_gradient_descent_matches_tf(seed, lr):
    rng = np.random.default_rng(seed)
    var, grad = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    p = torch.nn.Parameter(torch.tensor(var))
    p.grad = torch.tensor(grad)
    GradientDescent([p], lr=lr).step()
    assert_close(p, ref_ptb.sgd_apply(var, grad, lr))


@given(st.integers(0, 2 ** 31 - 1), st.integers(1, 5), st.booleans())
def test_tf_adam_matches_tf_dense_and_sparse_updates(seed, steps, sparse):
    rng = np.random.default_rng(seed)
    vocab, dim = 5, 3
    var = rng.normal(size=(vocab, dim))
    p = torch.nn.Parameter(torch.tensor(var))
    opt = TFAdam([p], lr=0.01, sparse=sparse)
    m, v = np.zeros_like(var), np.zeros_like(var)
    # TF holds the hyperparameters and the beta powers in float32 even for float64 variables.
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    lr, b1, b2, eps = f32(0.01), f32(0.9), f32(0.999), f32(1e-8)
    b1p, b2p = np.float32(0.9), np.float32(0.999)
    for step in range(steps):
        ids = rng.integers(0, vocab, size=4)
        values = rng.normal(size=(4, dim))
        dense = np.zeros_like(var)
        np.add.at(dense, ids, values)
        p.grad = torch.tensor(dense)
        opt.step()
        if sparse:
            var, m, v = ref_s2s.adam_sparse(var, m, v, values, ids, float(b1p), float(b2p), lr, b1, b2, eps)
        else:
            var, m, v = ref_s2s.adam_dense(var, m, v, dense, float(b1p), float(b2p), lr, b1, b2, eps)
        b1p, b2p = b1p * np.float32(0.9), b2p * np.float32(0.999)
        note(f"step {step}: ids={ids.tolist()}")
        assert_close(p, var)


@given(st.integers(0, 2 ** 31 - 1), st.lists(st.sets(st.sampled_from("abc")), min_size=1, max_size=6),
       st.integers(0, 5), st.booleans())
def test_tf_adam_keeps_one_beta_power_pair_for_the_optimizer(seed, have_grads, c_joins, foreach):
    """adam.py: one beta1_power / beta2_power pair per optimizer, advanced at every apply_gradients whichever
    variables had a gradient; a variable without one keeps its slots and misses the update; a variable added
    later (here in a group added after some steps) reads the pair as it stands. Against the ApplyAdam reference
    with that one pair, the variables having a gradient at each step drawn."""
    rng = np.random.default_rng(seed)
    shapes = {"a": (2,), "b": (3, 2), "c": (4,)}
    ref = {k: rng.normal(size=shape) for k, shape in shapes.items()}
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in ref.items()}
    opt = TFAdam([params["a"], params["b"]], lr=0.05, foreach=foreach)
    m = {k: np.zeros_like(v) for k, v in ref.items()}
    vv = {k: np.zeros_like(v) for k, v in ref.items()}
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    lr, b1, b2, eps = f32(0.05), f32(0.9), f32(0.999), f32(1e-8)
    b1p, b2p = np.float32(0.9), np.float32(0.999)
    members = {"a", "b"}
    for step, names in enumerate(have_grads):
        if step == c_joins:
            opt.add_param_group({"params": [params["c"]]})
            members.add("c")
        names = names & members
        for k, p in params.items():
            g = rng.normal(size=shapes[k])
            p.grad = torch.tensor(g) if k in names else None
            if k in names:
                ref[k], m[k], vv[k] = ref_s2s.adam_dense(ref[k], m[k], vv[k], g, float(b1p), float(b2p), lr, b1,
                                                         b2, eps)
        opt.step()
        if names:  # a step without any gradient does nothing (TF refuses it)
            b1p, b2p = b1p * np.float32(0.9), b2p * np.float32(0.999)
        note(f"step {step}: gradients for {sorted(names)}")
        for k, p in params.items():
            assert_close(p, ref[k])
        for k in members & set(params):
            state = opt.state[params[k]]
            if state:
                assert float(state["beta1_power"]) == float(b1p) and float(state["beta2_power"]) == float(b2p)


def test_tf_adam_differs_from_torch_adam_early():
    """TF adds epsilon after moving the bias correction into the step size; torch does not."""
    g = torch.tensor([1e-9, 1.0], dtype=torch.float64)
    a = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    a.grad, b.grad = g.clone(), g.clone()
    TFAdam([a], lr=0.1).step()
    torch.optim.Adam([b], lr=0.1, eps=1e-8).step()
    assert not torch.allclose(a[0], b[0], rtol=1e-3, atol=0)
    assert_close(a[1], b[1], loosen=1e4, reason="both are ~lr for a large gradient; they differ by eps terms only")


@pytest.mark.parametrize("kernel_name,bias_name", CELL_VARIABLE_NAMES)
def test_cell_variables_in_every_tf_generation(kernel_name, bias_name):
    scope = "Model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell"
    variables = {f"{scope}/{kernel_name}": np.zeros((3, 8)), f"{scope}/{bias_name}": np.ones(8),
                 "Model/global_step": np.int64(3)}
    kernel, bias, names = tf1_cell_variables(variables, scope + "/")
    assert names == (f"{scope}/{kernel_name}", f"{scope}/{bias_name}")
    assert kernel.shape == (3, 8) and bias.shape == (8,)


def test_cell_variables_missing_names_what_was_tried():
    with pytest.raises(KeyError, match="Linear/Matrix"):
        tf1_cell_variables({"Model/rnn/cell/kernal": 0}, "Model/rnn/cell")


def test_lr_decay_schedule_as_ptb_word_lm():
    # small config: lr 1.0, decay 0.5, max_epoch 4 -> 1, 1, 1, 1, 0.5, 0.25, ...
    got = [lr_decay_schedule(1.0, 0.5, 4, i) for i in range(7)]
    assert got == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]
