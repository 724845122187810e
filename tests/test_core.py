"""Properties of the LSTM core (compat/lstm.py).

- the core == torch.nn.LSTM on the canonical layout (outputs, final states, every gradient);
- the step loop == the fused kernel, with ``cont`` (segments, restarts at t=0) and right-padded masks
  (the packed path, zero-length columns); arbitrary masks run in the loop only;
- float64 ``gradcheck`` of the step loop with ``cont`` and with ``mask``;
- dropout placement in training, the legacy quirk options, shape errors, the module's state dict;
- every test on the CPU and, when present, CUDA (and CPU == CUDA).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from compat.lstm import LSTM, LayerWeights, LSTMShapeError, lstm, weights_from_torch
from reference import onnx_lstm
from tests.strategies import (
    arbitrary_masks, as_tensor, canonical_weights, conts, dtypes, initial_states, inputs, lstm_sizes,
    right_padded_masks, states_as_tensors, weights_as_tensors,
)
from tests.tolerances import assert_close, cudnn_float32

# ``device`` is a plain string parameter (no state to reset between examples).
with_device = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                              HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------- helpers
def leaves(weights, state, x):
    """Every tensor that requires grad, with a name (for messages)."""
    named = [("x", x)]
    if state is not None:
        named += [("h0", state[0]), ("c0", state[1])]
    for k, w in enumerate(weights):
        for field in LayerWeights._fields:
            t = getattr(w, field)
            if t is not None:
                named.append((f"layer {k} {field}", t))
    return [(n, t) for n, t in named if t.requires_grad]


def random_functional(out, state, seed: int):
    """A random linear functional of the output and the final states (its gradient reaches everything)."""
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for t in (out, state[0], state[1]):
        total = total + (t * torch.randn(t.shape, generator=g, dtype=torch.float64).to(t)).sum()
    return total


def grads_of(out, state, named, seed: int):
    loss = random_functional(out, state, seed)
    if not loss.requires_grad:  # nothing reached (test_all_empty_batch_keeps_the_graph): zero gradients
        return {n: torch.zeros_like(t) for n, t in named}
    gs = torch.autograd.grad(loss, [t for _, t in named], allow_unused=True)
    return {n: (torch.zeros_like(t) if g is None else g) for (n, t), g in zip(named, gs)}


def assert_same_run(a, b, *, msg="", **kw):
    """Compare two ``(output, (h_n, c_n))`` results."""
    assert_close(a[0], b[0], msg=f"{msg} output", **kw)
    assert_close(a[1][0], b[1][0], msg=f"{msg} h_n", **kw)
    assert_close(a[1][1], b[1][1], msg=f"{msg} c_n", **kw)


def assert_same_grads(ga, gb, *, msg="", **kw):
    """Gradients compared per tensor; a loosened (float32) bound scales with the tensor's largest value: the
    two runs sum the same terms in another order, so their difference follows the largest terms of the sum,
    not the element (seen: 1.3e-4 on an element of 0.26 in a gradient whose largest element is above 1)."""
    assert ga.keys() == gb.keys()
    for name in ga:
        scaled = dict(kw)
        if "loosen" in kw:
            scaled["loosen"] = kw["loosen"] * max(1.0, float(gb[name].abs().max()))
        assert_close(ga[name], gb[name], msg=f"{msg} gradient of {name}", **scaled)


def problem(sizes, x, state, weights, dtype, device, requires_grad=True):
    xt = as_tensor(x, dtype, device, requires_grad)
    hx = states_as_tensors(state, dtype, device, requires_grad)
    ws = weights_as_tensors(weights, dtype, device, requires_grad)
    return xt, hx, ws


def torch_lstm_like(weights, dtype, device, batch_first=False) -> torch.nn.LSTM:
    """A torch.nn.LSTM holding the same canonical weights (a missing bias_hh becomes zeros)."""
    has_bias = weights[0].bias_ih is not None or weights[0].bias_hh is not None
    n_in, hidden = weights[0].weight_ih.shape[1], weights[0].weight_hh.shape[1]
    mod = torch.nn.LSTM(n_in, hidden, len(weights), bias=has_bias, batch_first=batch_first).to(device, dtype)
    with torch.no_grad():
        for k, w in enumerate(weights):
            getattr(mod, f"weight_ih_l{k}").copy_(torch.as_tensor(w.weight_ih))
            getattr(mod, f"weight_hh_l{k}").copy_(torch.as_tensor(w.weight_hh))
            if has_bias:
                for name in ("bias_ih", "bias_hh"):
                    b = getattr(w, name)
                    getattr(mod, f"{name}_l{k}").copy_(torch.zeros(4 * hidden) if b is None else torch.as_tensor(b))
    return mod


def grad_tolerance(dtype) -> dict:
    """Gradients in float32 get 10x the table's tolerance: backpropagation through up to 12 steps and 3
    layers of weights up to 2 in magnitude amplifies float32 rounding (seen: 1.8e-5 relative)."""
    if dtype == torch.float32:
        return dict(loosen=10, reason="float32 rounding amplified by backpropagation through time")
    return {}


seeds = st.integers(0, 2 ** 31 - 1)
loop_or_auto = st.sampled_from(["auto", "loop"])


# ----------------------------------------------------------------------- core == torch.nn.LSTM (canonical)
@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(), weights=canonical_weights(), dtype=dtypes,
       batch_first=st.booleans(), kernel=st.sampled_from(["auto", "fused", "loop"]), seed=seeds)
def test_core_matches_torch_nn_lstm(device, sizes, x, state, weights, dtype, batch_first, kernel, seed):
    event(f"kernel={kernel}")
    xt, hx, ws = problem(sizes, x, state, weights, dtype, device)
    inp = xt.transpose(0, 1) if batch_first else xt
    ours = lstm(inp, ws, hx, batch_first=batch_first, kernel=kernel)

    # the reference runs in float64: a float32 core is held to the float32 tolerance against the truth
    mod = torch_lstm_like(weights, torch.float64, device, batch_first)
    x_ref = as_tensor(x, torch.float64, device, True)
    hx_ref = states_as_tensors(state, torch.float64, device, True)
    theirs = mod(x_ref.transpose(0, 1) if batch_first else x_ref, hx_ref)
    assert_same_run(ours, theirs, msg=f"{kernel} vs nn.LSTM", dtype=dtype)

    g_ours = grads_of(ours[0], ours[1], leaves(ws, hx, xt), seed)
    ref_named = [("x", x_ref)] + ([] if hx_ref is None else [("h0", hx_ref[0]), ("c0", hx_ref[1])])
    g_ref_inputs = grads_of(theirs[0], theirs[1], ref_named + [(n, p) for n, p in mod.named_parameters()], seed)
    tol = grad_tolerance(dtype)
    for name in ("x", "h0", "c0"):
        if name in g_ours:
            assert_close(g_ours[name], g_ref_inputs[name], msg=f"gradient of {name}", **tol)
    for k, w in enumerate(ws):
        for field in LayerWeights._fields:
            if getattr(w, field) is not None:
                assert_close(g_ours[f"layer {k} {field}"], g_ref_inputs[f"{field}_l{k}"],
                             msg=f"gradient of layer {k} {field}", **tol)
        if w.bias_ih is not None and w.bias_hh is None:
            # one bias: nn.LSTM's (zero) bias_hh gets the same gradient as bias_ih
            assert_close(g_ours[f"layer {k} bias_ih"], g_ref_inputs[f"bias_hh_l{k}"], msg=f"layer {k} one-bias gradient",
                         **tol)


# ------------------------------------------------------------------------------ loop == fused: cont
@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(), weights=canonical_weights(), cont=conts(),
       dtype=dtypes, batch_first=st.booleans(), seed=seeds)
def test_loop_equals_fused_with_cont(device, sizes, x, state, weights, cont, dtype, batch_first, seed):
    xt, hx, ws = problem(sizes, x, state, weights, dtype, device)
    ct = as_tensor(cont, dtype, device)
    inp = xt.transpose(0, 1) if batch_first else xt
    c_in = ct.t() if batch_first else ct
    runs = {k: lstm(inp, ws, hx, cont=c_in, batch_first=batch_first, kernel=k) for k in ("loop", "segments", "auto")}
    named = leaves(ws, hx, xt)
    g_loop = grads_of(*runs["loop"], named, seed)
    for b in ("segments", "auto"):
        assert_same_run(runs[b], runs["loop"], msg=f"{b} vs loop", **cudnn_float32(device, dtype))
        assert_same_grads(grads_of(*runs[b], named, seed), g_loop, msg=f"{b} vs loop", **grad_tolerance(dtype))


@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(allow_none=False), weights=canonical_weights(),
       dtype=dtypes, kernel=loop_or_auto)
def test_cont_semantics(device, sizes, x, state, weights, dtype, kernel):
    """cont = 1 everywhere is no cont; cont = 0 everywhere makes every step a fresh sequence from zeros;
    cont = 0 at t=0 only is a zero initial state."""
    xt, hx, ws = problem(sizes, x, state, weights, dtype, device, requires_grad=False)
    T, B = sizes.time, sizes.batch
    ones = torch.ones(T, B, dtype=dtype, device=device)
    assert_same_run(lstm(xt, ws, hx, cont=ones, kernel=kernel), lstm(xt, ws, hx, kernel=kernel), msg="cont=1")
    first = ones.clone()
    first[0] = 0
    assert_same_run(lstm(xt, ws, hx, cont=first, kernel=kernel), lstm(xt, ws, None, kernel=kernel),
                    msg="cont=0 at t=0")
    out, (h_n, c_n) = lstm(xt, ws, hx, cont=torch.zeros_like(ones), kernel=kernel)
    for t in range(T):
        step_out, (h_t, c_t) = lstm(xt[t:t + 1], ws, None, kernel=kernel)
        assert_close(out[t], step_out[0], msg=f"cont=0 everywhere, step {t}")
    assert_close(h_n, h_t, msg="h_n")
    assert_close(c_n, c_t, msg="c_n")


# ------------------------------------------------------------------------------ loop == fused: masks
@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(), weights=canonical_weights(),
       mask=right_padded_masks(), dtype=dtypes, batch_first=st.booleans(), seed=seeds)
def test_loop_equals_packed_with_right_padded_mask(device, sizes, x, state, weights, mask, dtype, batch_first, seed):
    lengths = mask.sum(0).astype(int)
    event(f"zero-length columns: {int((lengths == 0).sum()) > 0}")
    xt, hx, ws = problem(sizes, x, state, weights, dtype, device)
    mt = as_tensor(mask, dtype, device)
    inp = xt.transpose(0, 1) if batch_first else xt
    m_in = mt.t() if batch_first else mt
    # every column empty: the packed kernel refuses (it would cut the graph), the selection runs the loop
    packed = "packed" if lengths.any() else "loop"
    runs = {k: lstm(inp, ws, hx, mask=m_in, batch_first=batch_first, kernel=packed if k == "packed" else k)
            for k in ("loop", "packed", "auto")}
    named = leaves(ws, hx, xt)
    g_loop = grads_of(*runs["loop"], named, seed)
    for b in ("packed", "auto"):
        assert_same_run(runs[b], runs["loop"], msg=f"{b} vs loop")
        assert_same_grads(grads_of(*runs[b], named, seed), g_loop, msg=f"{b} vs loop", **grad_tolerance(dtype))
    # padding carries the last h: output past a column's length is its final h
    out = runs["packed"][0]
    out = out.transpose(0, 1) if batch_first else out
    h_n = runs["packed"][1][0]
    for b_, n in enumerate(lengths):
        if n < sizes.time:
            assert torch.equal(out[n:, b_], h_n[-1, b_].expand(sizes.time - n, -1)), f"column {b_} past length {n}"


def test_all_empty_batch_keeps_the_graph(device):
    """Every column masked: the packed kernel refuses (it would have nothing to run and would cut the graph at
    h0); the selection runs the loop, whose output keeps the weights' (zero) gradients."""
    ws = [LayerWeights(torch.randn(8, 3, dtype=torch.float64, device=device, requires_grad=True),
                       torch.randn(8, 2, dtype=torch.float64, device=device, requires_grad=True))]
    x = torch.randn(4, 2, 3, dtype=torch.float64, device=device)
    mask = torch.zeros(4, 2, dtype=torch.float64, device=device)
    with pytest.raises(ValueError, match="every sequence is empty"):
        lstm(x, ws, mask=mask, kernel="packed")
    out, _ = lstm(x, ws, mask=mask)
    assert out.requires_grad
    out.sum().backward()
    assert torch.equal(ws[0].weight_ih.grad, torch.zeros_like(ws[0].weight_ih))


@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(allow_none=False), weights=canonical_weights(),
       mask=arbitrary_masks(), dtype=dtypes)
def test_arbitrary_mask_carries_state(device, sizes, x, state, weights, mask, dtype):
    """Masked steps repeat the previous h exactly (output and state); all-masked columns keep (h0, c0)."""
    xt, hx, ws = problem(sizes, x, state, weights, dtype, device, requires_grad=False)
    mt = as_tensor(mask, dtype, device)
    out, (h_n, c_n) = lstm(xt, ws, hx, mask=mt)
    assert_same_run((out, (h_n, c_n)), lstm(xt, ws, hx, mask=mt, kernel="loop"), msg="auto vs loop")
    prev = hx[0][-1]
    for t in range(sizes.time):
        for b in range(sizes.batch):
            if mask[t, b] == 0:
                assert torch.equal(out[t, b], prev[b]), f"masked step t={t} column {b} changed the output"
        prev = out[t]
    for b in range(sizes.batch):
        if not mask[:, b].any():
            assert torch.equal(h_n[:, b], hx[0][:, b]) and torch.equal(c_n[:, b], hx[1][:, b]), f"column {b}"


@with_device
@given(sizes=lstm_sizes(), x=inputs(), weights=canonical_weights(), dtype=dtypes, data=st.data())
def test_fused_refuses_masks_that_are_not_right_padding(device, sizes, x, weights, dtype, data):
    assume(sizes.time >= 2)
    mask = data.draw(arbitrary_masks(not_right_padded=True), label="mask")
    xt, _, ws = problem(sizes, x, None, weights, dtype, device, requires_grad=False)
    with pytest.raises(ValueError, match="right padding"):
        lstm(xt, ws, mask=as_tensor(mask, dtype, device), kernel="packed")


# ---------------------------------------------------------------------------------------- gradcheck
@st.composite
def tiny_problems(draw, seq: str):
    """Sizes small enough for finite differences: T <= 3, B <= 2, in, H <= 2, layers <= 2; float64.

    ``seq``: "cont" (values in {0, 0.5, 1, 1.3}, used as numbers) or "mask" (0/1, any pattern).
    """
    T, B = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    n_in, H, L = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(seeds))
    x = rng.uniform(-1, 1, (T, B, n_in))
    h0, c0 = rng.uniform(-1, 1, (L, B, H)), rng.uniform(-1, 1, (L, B, H))
    flat = []
    for k in range(L):
        fan_in = n_in if k == 0 else H
        flat += [rng.uniform(-1, 1, (4 * H, fan_in)), rng.uniform(-1, 1, (4 * H, H)),
                 rng.uniform(-1, 1, 4 * H), rng.uniform(-1, 1, 4 * H)]
    if seq == "cont":
        s = rng.choice([0.0, 0.5, 1.0, 1.3], size=(T, B))
    else:
        s = rng.choice([0.0, 1.0], size=(T, B))
    note(f"T={T} B={B} in={n_in} H={H} L={L} {seq}=\n{s}")
    return x, h0, c0, s, flat, L


@with_device
@given(prob=tiny_problems("cont"))
def test_gradcheck_loop_with_cont(device, prob):
    _gradcheck(device, prob, "cont")


@with_device
@given(prob=tiny_problems("mask"))
def test_gradcheck_loop_with_mask(device, prob):
    _gradcheck(device, prob, "mask")


def _gradcheck(device, prob, seq_name):
    x, h0, c0, seq, flat, L = prob
    tensors = [as_tensor(a, torch.float64, device, True) for a in [x, h0, c0, seq] + flat]

    def fn(x, h0, c0, seq, *flat):
        ws = [LayerWeights(*flat[4 * k:4 * k + 4]) for k in range(L)]
        out, (h_n, c_n) = lstm(x, ws, (h0, c0), kernel="loop", **{seq_name: seq})
        return out, h_n, c_n

    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-7, rtol=1e-5)


# ------------------------------------------------------------------------------------------ dropout
def dropout_problem(device, layers, seed=0):
    g = torch.Generator().manual_seed(seed)
    T, B, n_in, H = 6, 16, 8, 32
    x = torch.randn(T, B, n_in, generator=g, dtype=torch.float64).to(device)
    ws = [LayerWeights(*(0.3 * torch.randn(shape, generator=g, dtype=torch.float64).to(device) for shape in
                         [(4 * H, n_in if k == 0 else H), (4 * H, H), (4 * H,), (4 * H,)])) for k in range(layers)]
    return x, ws


P_DROP = 0.25  # a drop probability (keep 0.75): kept values scale by 4/3, a keep_prob mix-up would show


@pytest.mark.parametrize("kernel", ["auto", "loop"])
@pytest.mark.parametrize("placement", ["none", "between", "output"])
def test_dropout_does_nothing_in_eval_or_with_placement_none(device, kernel, placement):
    x, ws = dropout_problem(device, 2)
    plain = lstm(x, ws, kernel=kernel)
    assert_same_run(lstm(x, ws, dropout=P_DROP, dropout_placement=placement, training=False, kernel=kernel), plain,
                    msg="eval")
    if placement == "none":
        torch.manual_seed(1)
        assert_same_run(lstm(x, ws, dropout=P_DROP, dropout_placement="none", training=True, kernel=kernel), plain,
                        msg="placement none in training")


@pytest.mark.parametrize("kernel", ["auto", "loop", "fused"])  # auto: the compiled loop (float64, one thread)
def test_dropout_output_placement_one_layer(device, kernel):
    """TF DropoutWrapper(output_keep_prob): the output is dropped (fresh mask per step), the state is not."""
    x, ws = dropout_problem(device, 1)
    ref_out, (ref_h, ref_c) = lstm(x, ws, kernel=kernel)
    torch.manual_seed(2)
    out, (h_n, c_n) = lstm(x, ws, dropout=P_DROP, dropout_placement="output", training=True, kernel=kernel)
    dropped = out == 0
    assert (ref_out[dropped] != 0).all(), "zeros in the output must come from dropout"
    assert_close(out[~dropped], ref_out[~dropped] / (1 - P_DROP), msg="kept values scale by 1/(1-p)")
    frac = dropped.double().mean().item()
    assert abs(frac - P_DROP) < 0.05, f"fraction dropped {frac}, drop probability {P_DROP}"
    assert not torch.equal(dropped[0], dropped[1]), "a fresh mask every step"
    assert torch.equal(h_n, ref_h) and torch.equal(c_n, ref_c), "the recurrent state is not dropped"


@pytest.mark.parametrize("kernel", ["auto", "loop", "fused"])  # auto: the compiled loop (float64, one thread)
def test_dropout_output_placement_two_layers(device, kernel):
    x, ws = dropout_problem(device, 2)
    _, (ref_h, ref_c) = lstm(x, ws, kernel=kernel)
    torch.manual_seed(3)
    out, (h_n, c_n) = lstm(x, ws, dropout=P_DROP, dropout_placement="output", training=True, kernel=kernel)
    assert torch.equal(h_n[0], ref_h[0]) and torch.equal(c_n[0], ref_c[0]), "layer 0's state is not dropped"
    assert not torch.equal(h_n[1], ref_h[1]), "layer 1 sees layer 0's dropped output"
    last = out[-1]
    kept = last != 0
    assert 0 < kept.double().mean().item() < 1
    assert_close(last[kept], h_n[1][kept] / (1 - P_DROP), msg="the last layer's output is dropped, its state not")


@pytest.mark.parametrize("kernel", ["auto", "loop"])
def test_dropout_between_placement(device, kernel):
    """cuDNN placement: between layers only; the last layer's output is untouched; one layer: no dropout."""
    x, ws = dropout_problem(device, 2)
    ref_out, (ref_h, ref_c) = lstm(x, ws, kernel=kernel)
    torch.manual_seed(4)
    out, (h_n, c_n) = lstm(x, ws, dropout=P_DROP, dropout_placement="between", training=True, kernel=kernel)
    assert (out != 0).all(), "no dropout on the last layer's output"
    assert torch.equal(out[-1], h_n[-1]), "the output is the last layer's state"
    assert torch.equal(h_n[0], ref_h[0]) and torch.equal(c_n[0], ref_c[0]), "layer 0 untouched"
    assert not torch.allclose(out, ref_out), "layer 1 got a dropped input"
    x1, ws1 = dropout_problem(device, 1)
    assert_same_run(lstm(x1, ws1, dropout=P_DROP, dropout_placement="between", training=True, kernel=kernel),
                    lstm(x1, ws1, kernel=kernel), msg="one layer: nothing between")


def test_dropout_module_uses_training_flag(device):
    torch.manual_seed(5)
    mod = LSTM(8, 32, 2, dropout=P_DROP, dropout_placement="output").to(device, torch.float64)
    x = torch.randn(6, 16, 8, dtype=torch.float64, device=device)
    mod.eval()
    a, b = mod(x), mod(x)
    assert_same_run(a, b, msg="eval is deterministic")
    mod.train()
    assert (mod(x)[0] == 0).any(), "training drops"


# ------------------------------------------------------------------------------------- quirk options
def softsign_torch(v):
    return v / (1 + v.abs())


def _canonical_to_onnx(w):
    """Canonical numpy weights (gates i, f, g, o) -> ONNX W, R, B (gates i, o, f, c); written out here."""
    H = w.weight_hh.shape[1]
    rows = np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 3, 1, 2)])
    b_ih = np.zeros(4 * H) if w.bias_ih is None else w.bias_ih
    b_hh = np.zeros(4 * H) if w.bias_hh is None else w.bias_hh
    return w.weight_ih[rows][None], w.weight_hh[rows][None], np.concatenate([b_ih[rows], b_hh[rows]])[None]


@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(), state=initial_states(num_layers=1),
       weights=canonical_weights(num_layers=1), dtype=dtypes)
def test_custom_tanh_matches_onnx_reference_with_those_activations(device, sizes, x, state, weights, dtype):
    """``tanh=`` replaces the cell-input and cell-output activations (ONNX's g and h)."""
    xt, hx, ws = problem(sizes, x, state, weights, dtype, device, requires_grad=False)
    out, (h_n, c_n) = lstm(xt, ws, hx, tanh=softsign_torch)
    W, R, B = _canonical_to_onnx(weights[0])
    init = {} if state is None else {"initial_h": state[0], "initial_c": state[1]}
    Y, Y_h, Y_c = onnx_lstm.lstm(x, W, R, B, **init, activations=("Sigmoid", "Softsign", "Softsign"))
    assert_close(out, Y[:, 0], dtype=dtype)
    assert_close(h_n[0], Y_h[0], dtype=dtype)
    assert_close(c_n[0], Y_c[0], dtype=dtype)
    with pytest.raises(ValueError, match="fused"):
        lstm(xt, ws, hx, tanh=softsign_torch, kernel="fused")


def _single_step_slices(x, state):
    return x[:1, :1], (state[0][:, :1], state[1][:, :1])


@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(), state=initial_states(allow_none=False, num_layers=1),
       weights=canonical_weights(biases="two", num_layers=1), fraction=st.sampled_from([0.1, 0.5, 0.9]), seed=seeds)
def test_preact_grad_clip_one_step_against_hand_gradients(device, sizes, x, state, weights, fraction, seed):
    """T = 1, B = 1: every parameter's gradient is an outer product of the clamped gate gradient dz."""
    x1, st1 = _single_step_slices(x, state)
    xt, hx, ws = problem(sizes, x1, st1, weights, torch.float64, device)
    named = leaves(ws, hx, xt)
    plain = grads_of(*lstm(xt, ws, hx, kernel="loop"), named, seed)
    dz = plain["layer 0 bias_ih"]
    assume(dz.abs().max() > 0)
    clip = fraction * dz.abs().max().item()
    clipped = grads_of(*lstm(xt, ws, hx, preact_grad_clip=clip), named, seed)
    cz = dz.clamp(-clip, clip)
    w = ws[0]
    expected = {
        "layer 0 bias_ih": cz, "layer 0 bias_hh": cz,
        "layer 0 weight_ih": torch.outer(cz, xt[0, 0]), "layer 0 weight_hh": torch.outer(cz, hx[0][0, 0]),
        "x": (cz @ w.weight_ih).view(1, 1, -1), "h0": (cz @ w.weight_hh).view(1, 1, -1),
        "c0": plain["c0"],  # c0 reaches the loss through f * c, not through the pre-activations
    }
    assert_same_grads(clipped, expected, msg=f"clip={clip}")


def _chained(xt, ws, hx, **kw):
    """The same run as T calls of one step each (state handed on): per-step options must compose."""
    outs = []
    cont = kw.pop("cont", None)
    for t in range(xt.shape[0]):
        step_kw = dict(kw)
        if cont is not None:
            step_kw["cont"] = cont[t:t + 1]
        out, hx = lstm(xt[t:t + 1], ws, hx, **step_kw)
        outs.append(out)
    return torch.cat(outs), hx


@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(allow_none=False), weights=canonical_weights(),
       cont=conts(), seed=seeds)
def test_per_step_quirks_compose_over_time(device, sizes, x, state, weights, cont, seed):
    """preact_grad_clip and the dW_h quirk over T steps == T single steps (checked by hand above)."""
    xt, hx, ws = problem(sizes, x, state, weights, torch.float64, device)
    ct = as_tensor(cont, torch.float64, device)
    named = leaves(ws, hx, xt)
    for kw in (dict(preact_grad_clip=0.05), dict(recurrent_weight_grad_ignores_cont=True, cont=ct),
               dict(preact_grad_clip=0.05, recurrent_weight_grad_ignores_cont=True, cont=ct)):
        whole = lstm(xt, ws, hx, **kw)
        steps = _chained(xt, ws, hx, **kw)
        assert_same_run(whole, steps, msg=str(kw.keys()))
        assert_same_grads(grads_of(*whole, named, seed), grads_of(*steps, named, seed), msg=str(kw.keys()))


@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(allow_none=False), weights=canonical_weights(), seed=seeds)
def test_preact_grad_clip_above_every_gradient_changes_nothing(device, sizes, x, state, weights, seed):
    xt, hx, ws = problem(sizes, x, state, weights, torch.float64, device)
    named = leaves(ws, hx, xt)
    assert_same_grads(grads_of(*lstm(xt, ws, hx, preact_grad_clip=1e30), named, seed),
                      grads_of(*lstm(xt, ws, hx), named, seed))


@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(), state=initial_states(allow_none=False, num_layers=1),
       weights=canonical_weights(biases="two", num_layers=1), cont_value=st.sampled_from([0.0, 0.5, 1.0, 1.3]),
       seed=seeds)
def test_recurrent_weight_grad_ignores_cont_one_step(device, sizes, x, state, weights, cont_value, seed):
    """junhyukoh caffe-lstm: dW_h = dz^T h_{t-1} with the raw h even where cont scales it; nothing else changes."""
    x1, st1 = _single_step_slices(x, state)
    xt, hx, ws = problem(sizes, x1, st1, weights, torch.float64, device)
    cont = torch.full((1, 1), cont_value, dtype=torch.float64, device=device)
    named = leaves(ws, hx, xt)
    normal_run = lstm(xt, ws, hx, cont=cont)
    quirk_run = lstm(xt, ws, hx, cont=cont, recurrent_weight_grad_ignores_cont=True)
    assert_same_run(quirk_run, normal_run, msg="forward unchanged")
    normal = grads_of(*normal_run, named, seed)
    quirk = grads_of(*quirk_run, named, seed)
    dz = normal["layer 0 bias_ih"]
    h_raw = hx[0][0, 0]
    assert_close(normal["layer 0 weight_hh"], torch.outer(dz, cont_value * h_raw), msg="normal dW_hh")
    assert_close(quirk["layer 0 weight_hh"], torch.outer(dz, h_raw), msg="quirk dW_hh")
    for name in normal:
        if name != "layer 0 weight_hh":
            assert_close(quirk[name], normal[name], msg=f"gradient of {name}")


@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(allow_none=False), weights=canonical_weights(), seed=seeds)
def test_recurrent_weight_grad_quirk_is_invisible_without_resets(device, sizes, x, state, weights, seed):
    xt, hx, ws = problem(sizes, x, state, weights, torch.float64, device)
    ones = torch.ones(sizes.time, sizes.batch, dtype=torch.float64, device=device)
    named = leaves(ws, hx, xt)
    assert_same_grads(grads_of(*lstm(xt, ws, hx, cont=ones, recurrent_weight_grad_ignores_cont=True), named, seed),
                      grads_of(*lstm(xt, ws, hx, cont=ones), named, seed))


# -------------------------------------------------------------------------------------------- errors
def _error_cases():
    T, B, n_in, H = 3, 2, 4, 5

    def w(n_in=n_in, H=H, bias=True, rows=None):
        rows = 4 * H if rows is None else rows
        return LayerWeights(torch.zeros(rows, n_in), torch.zeros(4 * H, H),
                            torch.zeros(4 * H) if bias else None, torch.zeros(4 * H) if bias else None)

    x = torch.zeros(T, B, n_in)
    good = [w(), w(n_in=H)]
    hx = (torch.zeros(2, B, H), torch.zeros(2, B, H))
    return {
        "x 2-D": (lambda: lstm(x[0], good), LSTMShapeError, r"input x has shape \[2, 4\]"),
        "x batch_first": (lambda: lstm(x[0], good, batch_first=True), LSTMShapeError, r"\[B, T, in\]"),
        "input size": (lambda: lstm(torch.zeros(T, B, 3), good), LSTMShapeError, "layer 0 weight_ih"),
        "weight_ih rows": (lambda: lstm(x, [w(rows=7)]), LSTMShapeError, "layer 0 weight_ih"),
        "weight_hh": (lambda: lstm(x, [LayerWeights(torch.zeros(20, 4), torch.zeros(20, 4))]), LSTMShapeError,
                      "layer 0 weight_hh"),
        "layer 1 input": (lambda: lstm(x, [w(), w(n_in=3)]), LSTMShapeError, "layer 1 weight_ih"),
        "layer 1 hidden": (lambda: lstm(x, [w(), w(n_in=H, H=6)]), LSTMShapeError, "layer 1 weight_hh"),
        "bias_ih": (lambda: lstm(x, [w()._replace(bias_ih=torch.zeros(3))]), LSTMShapeError, "layer 0 bias_ih"),
        "bias_hh": (lambda: lstm(x, [w()._replace(bias_hh=torch.zeros(3))]), LSTMShapeError, "layer 0 bias_hh"),
        "no layers": (lambda: lstm(x, []), LSTMShapeError, "at least one layer"),
        "h0": (lambda: lstm(x, good, (torch.zeros(1, B, H), hx[1])), LSTMShapeError, "h0 has shape"),
        "c0": (lambda: lstm(x, good, (hx[0], torch.zeros(2, B + 1, H))), LSTMShapeError, "c0 has shape"),
        "cont": (lambda: lstm(x, good, cont=torch.ones(T + 1, B)), LSTMShapeError, "cont has shape"),
        "cont batch_first": (lambda: lstm(x.transpose(0, 1), good, cont=torch.ones(T, B), batch_first=True),
                             LSTMShapeError, r"cont has shape \[3, 2\]; expected \[B, T\]"),
        "mask": (lambda: lstm(x, good, mask=torch.ones(T, B, 1)), LSTMShapeError, "mask has shape"),
        "cont and mask": (lambda: lstm(x, good, cont=torch.ones(T, B), mask=torch.ones(T, B)), ValueError, "cont"),
        "placement": (lambda: lstm(x, good, dropout_placement="after"), ValueError, "dropout_placement"),
        "kernel": (lambda: lstm(x, good, kernel="cudnn"), ValueError, "kernel"),
        "dropout": (lambda: lstm(x, good, dropout=1.0), ValueError, "drop probability"),
        "fused quirk": (lambda: lstm(x.requires_grad_(), good, preact_grad_clip=1.0, kernel="fused"), ValueError,
                        "gradient quirks"),
        "module placement": (lambda: LSTM(2, 3, dropout_placement="cell"), ValueError, "dropout_placement"),
    }


ERROR_CASES = _error_cases()


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_bad_input_errors_name_the_tensor(case):
    call, exc, match = ERROR_CASES[case]
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("kernel", ["auto", "loop"])
def test_mixed_dtypes_get_a_clear_error(kernel):
    ws = [LayerWeights(torch.zeros(8, 3, dtype=torch.float64), torch.zeros(8, 2, dtype=torch.float64))]
    with pytest.raises((LSTMShapeError, TypeError, ValueError), match="dtype"):
        lstm(torch.zeros(4, 2, 3, dtype=torch.float32), ws, kernel=kernel)


@pytest.mark.parametrize("kernel", ["auto", "loop"])
def test_zero_time_steps_get_a_clear_error(kernel):
    ws = [LayerWeights(torch.zeros(8, 3), torch.zeros(8, 2))]
    with pytest.raises(LSTMShapeError, match="input x"):
        lstm(torch.zeros(0, 2, 3), ws, kernel=kernel)


def test_preact_grad_clip_zero_is_refused():
    ws = [LayerWeights(torch.zeros(8, 3), torch.zeros(8, 2))]
    with pytest.raises(ValueError, match="preact_grad_clip"):
        lstm(torch.zeros(3, 2, 3), ws, preact_grad_clip=0.0)


# ------------------------------------------------------------------------------------ the LSTM module
@with_device
@given(sizes=lstm_sizes(), x=inputs(), bias=st.booleans(), batch_first=st.booleans(), dtype=dtypes,
       seed=st.integers(0, 1000))
def test_module_state_dict_interchanges_with_torch_nn_lstm(device, sizes, x, bias, batch_first, dtype, seed):
    torch.manual_seed(seed)
    args = (sizes.input_size, sizes.hidden_size, sizes.num_layers)
    theirs = torch.nn.LSTM(*args, bias=bias, batch_first=batch_first).to(device, dtype)
    ours = LSTM(*args, bias=bias, batch_first=batch_first, device=device, dtype=dtype)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    xt = as_tensor(x, dtype, device)
    inp = xt.transpose(0, 1) if batch_first else xt
    assert_same_run(ours(inp), theirs(inp), msg="nn.LSTM weights in LSTM")
    # and back: fresh weights in ours, loaded into a fresh nn.LSTM
    ours.reset_parameters()
    bound = 1 / sizes.hidden_size ** 0.5
    assert all(p.abs().max() <= bound for p in ours.parameters())
    back = torch.nn.LSTM(*args, bias=bias, batch_first=batch_first).to(device, dtype)
    back.load_state_dict(ours.state_dict())
    assert_same_run(back(inp), ours(inp), msg="LSTM weights in nn.LSTM")
    assert_same_run(lstm(inp, weights_from_torch(back), batch_first=batch_first), ours(inp), msg="weights_from_torch")


def test_module_takes_cont_and_mask(device):
    torch.manual_seed(0)
    mod = LSTM(3, 4, 2).to(device, torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64, device=device)
    cont = torch.tensor([[0, 0], [1, 1], [1, 0], [1, 1], [0, 1]], dtype=torch.float64, device=device)
    mask = torch.tensor([[1, 1], [1, 1], [1, 0], [1, 0], [0, 0]], dtype=torch.float64, device=device)
    ws = mod.layer_weights()
    assert_same_run(mod(x, cont=cont), lstm(x, ws, cont=cont, kernel="loop"), msg="module cont")
    assert_same_run(mod(x, mask=mask), lstm(x, ws, mask=mask, kernel="loop"), msg="module mask")
    assert "dropout_placement='between'" in repr(mod)


# ---------------------------------------------------------------------------------------- CPU == CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: CPU vs CUDA needs one")
@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(), weights=canonical_weights(), cont=conts(),
       mask=right_padded_masks(), dtype=dtypes, kernel=st.sampled_from(["auto", "loop"]), which=st.sampled_from(
           ["plain", "cont", "mask"]), seed=seeds)
def test_cpu_equals_cuda(sizes, x, state, weights, cont, mask, dtype, kernel, which, seed):
    results = {}
    for dev in ("cpu", "cuda"):
        xt, hx, ws = problem(sizes, x, state, weights, dtype, dev)
        kw = {} if which == "plain" else {which: as_tensor(cont if which == "cont" else mask, dtype, dev)}
        run = lstm(xt, ws, hx, kernel=kernel, **kw)
        results[dev] = (run, grads_of(*run, leaves(ws, hx, xt), seed))
    assert_same_run(results["cuda"][0], results["cpu"][0], msg="CUDA vs CPU",
                    loosen=10, reason="cuDNN and the CPU kernel sum in different orders (TF32 off)")
    assert_same_grads(results["cuda"][1], results["cpu"][1], msg="CUDA vs CPU",
                      loosen=10, reason="cuDNN and the CPU kernel sum in different orders (TF32 off)")
