"""Properties of the legacy gate layouts (compat/layouts.py).

For every layout in ``compat.layouts.LAYOUTS``:
- exact (bit-for-bit) round trips, numpy and torch, legacy -> canonical -> legacy and back;
- shape errors that name the tensor; missing tensors named;
- the core run in that layout == that framework's numpy reference, float64 (1e-10) and float32 (1e-5),
  and gradients against the hand-derived backward passes where a reference has one (Theano, Caffe,
  junhyukoh caffe-lstm including its gradient clipping and dW_h defect);
- a one-bias layout's canonical ``bias_hh`` is None or a constant that nothing trains; the TF forget bias
  folds in and out exactly;
- strictness: unknown or misspelt tensor names and attributes are errors; every attribute is either
  honoured (``convert`` returns it as an ``lstm()`` option, checked against the reference) or refused;
  the optional tensors (TF peepholes and projection, ONNX ``P`` and ``B``, Keras's bias, torch's
  ``weight_hr``) round-trip exactly.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from compat.frameworks.onnx.layout import onnx_activations, onnx_directions, onnx_stack_directions
from compat.layouts import LAYOUTS, LayoutError, convert, from_canonical, permute_gates, to_canonical
from compat.lstm import LayerWeights, lstm
from reference import caffe_lstm, keras_lstm, onnx_lstm, tf_lstm, theano_lstm
from tests.strategies import (
    LAYOUT_NAMES, arbitrary_masks, as_tensor, canonical_weights, conts, dtypes, fractional_masks, initial_states, inputs,
    layout_params, layout_shapes, layout_stacks, lstm_sizes, right_padded_masks,
)
from tests.tolerances import assert_close, cudnn_float32

with_device = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                              HealthCheck.data_too_large])

ONE_BIAS_LAYOUTS = ("tf", "keras", "theano", "caffe", "junhyukoh")
TWO_BIAS_LAYOUTS = ("keras_cudnn", "torch", "onnx")
#: per layout and tensor, the axis that holds the four gate blocks (corrupting it must be an error)
GATE_AXIS = {
    "tf": {"kernel": 1, "bias": 0},
    "keras": {"kernel": 1, "recurrent_kernel": 1, "bias": 0},
    "keras_cudnn": {"kernel": 1, "recurrent_kernel": 1, "bias": 0},
    "torch": {"weight_ih": 0, "weight_hh": 0, "bias_ih": 0, "bias_hh": 0},
    "theano": {"W": 1, "U": 1, "b": 0},
    "caffe": {"W_xc": 0, "b_c": 0, "W_hc": 0},
    "junhyukoh": {"W_x": 0, "W_h": 0, "b": 0},
    "onnx": {"W": 1, "R": 1, "B": 1},
}
forget_biases = st.sampled_from([0.0, 1.0, 0.5, -0.25])


def tensors_of(params: dict, dtype=torch.float64, device="cpu", requires_grad=False) -> dict:
    return {k: as_tensor(v, dtype, device, requires_grad) for k, v in params.items()}


# The tf layout's run-time forget bias has no default (checkpoints do not store it): the tests name one.
FB = {"tf": 0.0}


def _equal(a, b) -> bool:
    """Exactly equal, numpy or torch (the layouts return torch for either)."""
    if a is None or b is None:
        return a is None and b is None
    a, b = (torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x for x in (a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def test_every_layout_is_covered():
    assert set(LAYOUTS) == set(LAYOUT_NAMES) == set(GATE_AXIS)


# ------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("layout", LAYOUT_NAMES)
@given(data=st.data(), forget_bias=forget_biases, as_torch=st.booleans(), dtype=dtypes)
def test_legacy_round_trip_is_exact(layout, data, forget_bias, as_torch, dtype):
    params = data.draw(layout_params(layout), label="params")
    if layout in TWO_BIAS_LAYOUTS:
        forget_bias = 0.0
    if as_torch:
        legacy = tensors_of(params, dtype)
    else:
        legacy = {k: v.astype(torch.empty(0, dtype=dtype).numpy().dtype) for k, v in params.items()}
    canon = to_canonical(layout, legacy, forget_bias=forget_bias)
    back = from_canonical(layout, canon, forget_bias=forget_bias)
    assert set(back) == set(legacy)
    for name in legacy:
        assert _equal(back[name], legacy[name]), f"{layout} {name} changed in the round trip"


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
@given(sizes=lstm_sizes(max_layers=1), data=st.data(), as_torch=st.booleans(), dtype=dtypes)
def test_canonical_round_trip_is_exact(layout, sizes, data, as_torch, dtype):
    biases = "two" if layout in TWO_BIAS_LAYOUTS else "one"
    (w,) = data.draw(canonical_weights(biases=biases, num_layers=1), label="weights")
    if as_torch:
        canon = LayerWeights(*(as_tensor(a, dtype) for a in w))
    else:
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        canon = LayerWeights(*(None if a is None else a.astype(np_dtype) for a in w))
    back = to_canonical(layout, from_canonical(layout, canon, forget_bias=FB.get(layout)), forget_bias=FB.get(layout))
    for field in LayerWeights._fields:
        assert _equal(getattr(back, field), getattr(canon, field)), f"{layout} canonical {field}"


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_gate_permutation_puts_each_gate_where_canonical_expects_it(layout):
    """Fill each legacy gate block with its gate's letter code; the canonical blocks must read i, f, g, o."""
    code = {"i": 1.0, "f": 2.0, "g": 3.0, "c": 3.0, "j": 3.0, "o": 4.0}
    spec = LAYOUTS[layout]
    H, n_in = 3, 2
    params = {}
    for name, shape in layout_shapes(layout, n_in, H).items():
        axis = GATE_AXIS[layout][name]
        blocks = shape[axis] // H  # 4, or 8 for ONNX B = [Wb, Rb]
        vals = np.array([code[spec.gate_order[k % 4]] for k in range(blocks)]).repeat(H)
        shape_b = [1] * len(shape)
        shape_b[axis] = shape[axis]
        params[name] = np.broadcast_to(vals.reshape(shape_b), shape).copy()
    w = to_canonical(layout, params, forget_bias=FB.get(layout))
    expected = np.array([1.0, 2.0, 3.0, 4.0]).repeat(H)
    assert np.array_equal(w.weight_ih[:, 0], expected) and np.array_equal(w.weight_hh[:, 0], expected)
    assert np.array_equal(w.bias_ih, expected)
    if w.bias_hh is not None:
        assert np.array_equal(w.bias_hh, expected)


# --------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("layout,name", [(lay, n) for lay in LAYOUT_NAMES for n in GATE_AXIS[lay]])
@pytest.mark.parametrize("as_torch", [False, True], ids=["numpy", "torch"])
def test_wrong_shape_error_names_the_tensor(layout, name, as_torch):
    shapes = layout_shapes(layout, 3, 2)
    params = {n: np.zeros(s) for n, s in shapes.items()}
    shape = list(shapes[name])
    shape[GATE_AXIS[layout][name]] += 1
    params[name] = np.zeros(shape)
    if as_torch:
        params = tensors_of(params)
    with pytest.raises(LayoutError, match=f"{layout} tensor '{name}' has shape {shape}".replace("[", r"\[")):
        to_canonical(layout, params, forget_bias=FB.get(layout))
    params[name] = (torch.zeros if as_torch else np.zeros)(tuple(shapes[name]) + (1,))  # one axis too many
    with pytest.raises(LayoutError, match=f"'{name}'"):
        to_canonical(layout, params, forget_bias=FB.get(layout))


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_missing_tensor_is_named(layout):
    shapes = layout_shapes(layout, 3, 2)
    first = LAYOUTS[layout].tensor_names[0]
    params = {n: np.zeros(s) for n, s in shapes.items() if n != first}
    with pytest.raises(LayoutError, match=f"missing \\['{first}'\\]"):
        to_canonical(layout, params, forget_bias=FB.get(layout))


def test_unknown_layout_and_run_time_forget_bias_on_two_bias_layouts():
    with pytest.raises(LayoutError, match="unknown layout 'mxnet'"):
        to_canonical("mxnet", {})
    with pytest.raises(LayoutError, match="unknown layout"):
        from_canonical("mxnet", LayerWeights(np.zeros((8, 1)), np.zeros((8, 2))))
    for layout in TWO_BIAS_LAYOUTS:
        params = {n: np.zeros(s) for n, s in layout_shapes(layout, 3, 2).items()}
        with pytest.raises(LayoutError, match="forget bias"):
            to_canonical(layout, params, forget_bias=1.0)


# --------------------------------------------------------------------------------- one bias, forget bias
@pytest.mark.parametrize("layout", ONE_BIAS_LAYOUTS)
@given(params=st.data(), forget_bias=forget_biases)
def test_one_bias_layout_has_no_trainable_second_bias(layout, params, forget_bias):
    legacy = tensors_of(params.draw(layout_params(layout)), requires_grad=True)
    w = to_canonical(layout, legacy, forget_bias=forget_bias)
    trainable = [f for f in LayerWeights._fields if getattr(w, f) is not None and getattr(w, f).requires_grad]
    assert trainable == ["weight_ih", "weight_hh", "bias_ih"], trainable
    if forget_bias == 0.0:
        assert w.bias_hh is None
    else:
        H = w.hidden_size
        expected = torch.zeros(4 * H, dtype=torch.float64)
        expected[H:2 * H] = forget_bias
        assert torch.equal(w.bias_hh, expected), "the forget bias sits on the canonical f block only"
    # global-norm clipping over the legacy tensors sees each canonical parameter once: same squared norm
    for t in (w.weight_ih, w.weight_hh, w.bias_ih):
        t.retain_grad()
    x = torch.randn(2, 3, w.input_size, dtype=torch.float64)
    out, (h_n, c_n) = lstm(x, [w])
    (out.sum() + c_n.sum()).backward()
    legacy_sq = sum(float((p.grad ** 2).sum()) for p in legacy.values())
    canon_sq = sum(float((t.grad ** 2).sum()) for t in (w.weight_ih, w.weight_hh, w.bias_ih))
    assert legacy_sq > 0
    assert abs(legacy_sq - canon_sq) <= 1e-12 * canon_sq, (legacy_sq, canon_sq)
    bias_name = {"tf": "bias", "keras": "bias", "theano": "b", "caffe": "b_c", "junhyukoh": "b"}[layout]
    assert torch.equal(legacy[bias_name].grad, permute_gates(w.bias_ih.grad, "ifgo", LAYOUTS[layout].gate_order))


@given(params=layout_params("tf"), forget_bias=forget_biases.filter(bool), as_torch=st.booleans())
def test_tf_forget_bias_folds_and_unfolds_exactly(params, forget_bias, as_torch):
    legacy = tensors_of(params) if as_torch else params
    w = to_canonical("tf", legacy, forget_bias=forget_bias)
    assert _equal(from_canonical("tf", w, forget_bias=forget_bias)["bias"], legacy["bias"])
    # without its forget bias the checkpoint's bias is not what the model ran with
    unfolded = from_canonical("tf", w, forget_bias=0.0)["bias"]
    H = w.hidden_size
    diff = np.asarray(unfolded) - np.asarray(legacy["bias"])
    assert np.allclose(diff[2 * H:3 * H], forget_bias) and np.allclose(np.delete(diff, np.s_[2 * H:3 * H]), 0)
    with pytest.raises(LayoutError, match="forget_bias"):
        from_canonical("tf", w._replace(bias_hh=None), forget_bias=forget_bias)


# ----------------------------------------------------------------------- core in a layout == its reference
def legacy_and_canonical(layer_params, layout, dtype, device, forget_bias=0.0, requires_grad=False):
    """Per layer: the legacy tensors (as leaves) and their canonical view."""
    legacy = [tensors_of(p, dtype, device, requires_grad) for p in layer_params]
    ws = [to_canonical(layout, p, forget_bias=forget_bias) for p in legacy]
    return legacy, ws


@with_device
@given(sizes=lstm_sizes(), x=inputs(), stack=layout_stacks("tf"), state=initial_states(allow_none=False),
       forget_bias=forget_biases, dtype=dtypes)
def test_tf_layout_matches_tf_reference(device, sizes, x, stack, state, forget_bias, dtype):
    h0, c0 = state
    ref_out, ref_states = tf_lstm.static_rnn(x, [(c0[k], h0[k]) for k in range(sizes.num_layers)],
                                             [(p["kernel"], p["bias"]) for p in stack], forget_bias=forget_bias)
    _, ws = legacy_and_canonical(stack, "tf", dtype, device, forget_bias)
    out, (h_n, c_n) = lstm(as_tensor(x, dtype, device), ws, (as_tensor(h0, dtype, device), as_tensor(c0, dtype, device)))
    assert_close(out, ref_out, dtype=dtype, msg="outputs")
    assert_close(h_n, np.stack([h for c, h in ref_states]), dtype=dtype, msg="h_n")
    assert_close(c_n, np.stack([c for c, h in ref_states]), dtype=dtype, msg="c_n")


@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(), params=layout_params("keras"),
       state=initial_states(num_layers=1), mask=st.none() | right_padded_masks() | arbitrary_masks(), dtype=dtypes)
def test_keras_layout_matches_keras_reference(device, sizes, x, params, state, mask, dtype):
    event(f"mask: {mask is not None}")
    init = None if state is None else (state[0][0], state[1][0])
    ref_out, ref_h, ref_c = keras_lstm.lstm_layer(
        x.transpose(1, 0, 2), params["kernel"], params["recurrent_kernel"], params["bias"], initial_state=init,
        mask=None if mask is None else mask.T, recurrent_activation="sigmoid")
    _, ws = legacy_and_canonical([params], "keras", dtype, device)
    hx = None if state is None else tuple(as_tensor(s, dtype, device) for s in state)
    out, (h_n, c_n) = lstm(as_tensor(x, dtype, device).transpose(0, 1), ws, hx, batch_first=True,
                           mask=None if mask is None else as_tensor(mask.T, dtype, device))
    assert_close(out, ref_out, dtype=dtype, msg="outputs")
    assert_close(h_n[0], ref_h, dtype=dtype, msg="h_T")
    assert_close(c_n[0], ref_c, dtype=dtype, msg="c_T")


@with_device
@given(sizes=lstm_sizes(), x=inputs(), state=initial_states(), weights=canonical_weights(), dtype=dtypes)
def test_torch_layout_matches_torch_nn_lstm(device, sizes, x, state, weights, dtype):
    stack = [{"weight_ih": w.weight_ih, "weight_hh": w.weight_hh, "bias_ih": w.bias_ih, "bias_hh": w.bias_hh}
             for w in weights]
    has_bias = weights[0].bias_ih is not None
    mod = torch.nn.LSTM(sizes.input_size, sizes.hidden_size, sizes.num_layers, bias=has_bias).to(device, torch.float64)
    with torch.no_grad():
        for k, w in enumerate(weights):
            for f in w._fields:
                if getattr(w, f) is not None or (has_bias and f.startswith("bias")):
                    v = getattr(w, f)
                    getattr(mod, f"{f}_l{k}").copy_(torch.zeros(4 * sizes.hidden_size) if v is None else torch.as_tensor(v))
    hx64 = None if state is None else tuple(as_tensor(s, torch.float64, device) for s in state)
    ref_out, (ref_h, ref_c) = mod(as_tensor(x, torch.float64, device), hx64)
    ws = [to_canonical("torch", {k: as_tensor(v, dtype, device) for k, v in p.items()}) for p in stack]
    hx = None if state is None else tuple(as_tensor(s, dtype, device) for s in state)
    out, (h_n, c_n) = lstm(as_tensor(x, dtype, device), ws, hx)
    cudnn = cudnn_float32(device, dtype)
    assert_close(out, ref_out, dtype=dtype, **cudnn)
    assert_close(h_n, ref_h, dtype=dtype, **cudnn)
    assert_close(c_n, ref_c, dtype=dtype, **cudnn)


def grad_of(t):
    """``t.grad``, zeros when nothing reached it (e.g. every sequence empty: the packed path skips them)."""
    return torch.zeros_like(t) if t.grad is None else t.grad


def _random_grad(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(), params=layout_params("theano"),
       state=initial_states(num_layers=1), mask=right_padded_masks() | arbitrary_masks() | fractional_masks(),
       dtype=dtypes,
       seed=st.integers(0, 2 ** 31 - 1))
def test_theano_layout_matches_theano_reference_with_gradients(device, sizes, x, params, state, mask, dtype, seed):
    h0, c0 = (None, None) if state is None else (state[0][0], state[1][0])
    ref_h, ref_c = theano_lstm.lstm_layer(x, mask, params["W"], params["U"], params["b"], h0, c0)
    legacy, ws = legacy_and_canonical([params], "theano", dtype, device, requires_grad=True)
    xt = as_tensor(x, dtype, device, True)
    hx = None if state is None else tuple(as_tensor(s, dtype, device, True) for s in state)
    out, (h_n, c_n) = lstm(xt, ws, hx, mask=as_tensor(mask, dtype, device))
    assert_close(out, ref_h, dtype=dtype, msg="h")
    assert_close(h_n[0], ref_h[-1], dtype=dtype, msg="h_T")
    assert_close(c_n[0], ref_c[-1], dtype=dtype, msg="c_T")
    # gradients of <gy, h> + <gc, c_T> against the hand-derived backward
    T, B, H = ref_h.shape
    gy, gc = _random_grad((T, B, H), seed), _random_grad((B, H), seed + 1)
    dc = np.zeros((T, B, H))
    dc[-1] = gc
    ref_g = theano_lstm.lstm_layer_backward(gy, x, mask, params["W"], params["U"], params["b"], h0, c0, dc=dc)
    loss = (out * as_tensor(gy, dtype, device)).sum().add((c_n[0] * as_tensor(gc, dtype, device)).sum())
    if loss.requires_grad:  # see test_core.test_all_empty_batch_keeps_the_graph
        loss.backward()
    loosen = dict(loosen=10, reason="gradients sum T*B terms in float32") if dtype == torch.float32 else {}
    for name in ("W", "U", "b"):
        assert_close(grad_of(legacy[0][name]), ref_g[name], dtype=dtype, msg=f"d{name}", **loosen)
    assert_close(grad_of(xt), ref_g["state_below"], dtype=dtype, msg="dx", **loosen)
    if hx is not None:
        assert_close(grad_of(hx[0])[0], ref_g["h0"], dtype=dtype, msg="dh0", **loosen)
        assert_close(grad_of(hx[1])[0], ref_g["c0"], dtype=dtype, msg="dc0", **loosen)


def caffe_tanh_torch(v):
    """lstm_unit_layer.cpp's tanh: 2 * sigmoid(2x) - 1."""
    return 2 * torch.sigmoid(2 * v) - 1


@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(), params=layout_params("caffe"),
       state=initial_states(num_layers=1), cont=conts(), dtype=dtypes, use_caffe_tanh=st.booleans(),
       seed=st.integers(0, 2 ** 31 - 1))
def test_caffe_layout_matches_caffe_reference_with_gradients(device, sizes, x, params, state, cont, dtype,
                                                            use_caffe_tanh, seed):
    h0, c0 = (None, None) if state is None else (state[0][0], state[1][0])
    ref_h, ref_hT, ref_cT, cache = caffe_lstm.lstm_forward(x, cont, params["W_xc"], params["b_c"], params["W_hc"],
                                                           h0, c0, caffe_tanh=use_caffe_tanh)
    legacy, ws = legacy_and_canonical([params], "caffe", dtype, device, requires_grad=True)
    xt = as_tensor(x, dtype, device, True)
    hx = None if state is None else tuple(as_tensor(s, dtype, device, True) for s in state)
    out, (h_n, c_n) = lstm(xt, ws, hx, cont=as_tensor(cont, dtype, device),
                           tanh=caffe_tanh_torch if use_caffe_tanh else None)
    assert_close(out, ref_h, dtype=dtype, msg="h")
    assert_close(h_n[0], ref_hT, dtype=dtype, msg="h_T")
    assert_close(c_n[0], ref_cT, dtype=dtype, msg="c_T")
    T, B, H = ref_h.shape
    gy, gh, gc = _random_grad((T, B, H), seed), _random_grad((B, H), seed + 1), _random_grad((B, H), seed + 2)
    ref_g = caffe_lstm.lstm_backward(gy, cache, dh_T=gh, dc_T=gc)
    loss = ((out * as_tensor(gy, dtype, device)).sum() + (h_n[0] * as_tensor(gh, dtype, device)).sum()
            + (c_n[0] * as_tensor(gc, dtype, device)).sum())
    loss.backward()
    loosen = dict(loosen=10, reason="gradients sum T*B terms in float32") if dtype == torch.float32 else {}
    for name in ("W_xc", "b_c", "W_hc"):
        assert_close(grad_of(legacy[0][name]), ref_g[name], dtype=dtype, msg=f"d{name}", **loosen)
    assert_close(grad_of(xt), ref_g["x"], dtype=dtype, msg="dx", **loosen)
    if hx is not None:
        assert_close(grad_of(hx[0])[0], ref_g["h0"], dtype=dtype, msg="dh0", **loosen)
        assert_close(grad_of(hx[1])[0], ref_g["c0"], dtype=dtype, msg="dc0", **loosen)


@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(), params=layout_params("junhyukoh"),
       state=initial_states(allow_none=False, num_layers=1), cont=conts(kind="random"), dtype=dtypes,
       clip=st.sampled_from([0.0, 0.01, 0.1]), dwh_defect=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_junhyukoh_layout_matches_reference_with_clipping_and_dwh_defect(device, sizes, x, params, state, cont, dtype,
                                                                       clip, dwh_defect, seed):
    """The core's ``preact_grad_clip`` and ``recurrent_weight_grad_ignores_cont`` == caffe-lstm's Backward_cpu."""
    T, B = cont.shape
    h0, c0 = state[0][0], state[1][0]
    data = x.reshape(T * B, -1)
    ref_h, ref_hT, ref_cT, cache = caffe_lstm.junhyukoh_forward(data, params["W_x"], params["W_h"], params["b"],
                                                                batch_size=B, clip=cont.reshape(-1), h0=h0, c0=c0)
    legacy, ws = legacy_and_canonical([params], "junhyukoh", dtype, device, requires_grad=True)
    xt = as_tensor(x, dtype, device, True)
    hx = tuple(as_tensor(s, dtype, device) for s in state)  # the carried state gets no gradient in caffe-lstm
    out, (h_n, c_n) = lstm(xt, ws, hx, cont=as_tensor(cont, dtype, device),
                           preact_grad_clip=clip or None, recurrent_weight_grad_ignores_cont=dwh_defect)
    assert_close(out.reshape(T * B, -1), ref_h, dtype=dtype, msg="h")
    assert_close(h_n[0], ref_hT, dtype=dtype, msg="h_T")
    assert_close(c_n[0], ref_cT, dtype=dtype, msg="c_T")
    gy = _random_grad(ref_h.shape, seed)
    ref_g = caffe_lstm.junhyukoh_backward(gy, cache, clipping_threshold=clip, dwh_defect=dwh_defect)
    (out.reshape(T * B, -1) * as_tensor(gy, dtype, device)).sum().backward()
    loosen = dict(loosen=10, reason="gradients sum T*B terms in float32") if dtype == torch.float32 else {}
    for name in ("W_x", "W_h", "b"):
        assert_close(grad_of(legacy[0][name]), ref_g[name], dtype=dtype, msg=f"d{name}", **loosen)
    assert_close(grad_of(xt).reshape(T * B, -1), ref_g["data"], dtype=dtype, msg="ddata", **loosen)


@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(), params=layout_params("onnx"),
       state=initial_states(num_layers=1), mask=st.none() | right_padded_masks(), dtype=dtypes)
def test_onnx_layout_matches_onnx_reference(device, sizes, x, params, state, mask, dtype):
    init = {} if state is None else {"initial_h": state[0], "initial_c": state[1]}
    lens = None if mask is None else mask.sum(0).astype(np.int64)
    Y, Y_h, Y_c = onnx_lstm.lstm(x, params["W"], params["R"], params["B"], sequence_lens=lens, **init)
    _, ws = legacy_and_canonical([params], "onnx", dtype, device)
    hx = None if state is None else tuple(as_tensor(s, dtype, device) for s in state)
    out, (h_n, c_n) = lstm(as_tensor(x, dtype, device), ws, hx, lengths=lens)
    assert_close(out, Y[:, 0], dtype=dtype, msg="Y (zeros past each length)")
    # onnxruntime zeroes Y_h / Y_c of a length-0 sequence; the core keeps its initial state there
    live = np.ones(x.shape[1], bool) if lens is None else lens > 0
    assert_close(h_n.cpu()[:, torch.as_tensor(live)], Y_h[:, live], dtype=dtype, msg="Y_h")
    assert_close(c_n.cpu()[:, torch.as_tensor(live)], Y_c[:, live], dtype=dtype, msg="Y_c")


# ----------------------------------------------------------------------------------- the references themselves
def test_keras_hard_sigmoid_is_the_keras2_backend_formula():
    v = np.array([-3.0, -2.5, 0.0, 1.0, 2.5, 3.0])
    assert np.array_equal(keras_lstm.hard_sigmoid(v), np.clip(0.2 * v + 0.5, 0, 1))
    assert np.array_equal(keras_lstm.hard_sigmoid(v)[[0, 1, 4, 5]], [0.0, 0.0, 1.0, 1.0])
    assert keras_lstm.hard_sigmoid_keras3(np.array([3.0]))[0] == 1.0 and keras_lstm.hard_sigmoid(np.array([2.0]))[0] == 0.9


def test_keras_reference_activation_choice_matters():
    rng = np.random.default_rng(0)
    x, k, r, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 8)), rng.normal(size=(2, 8)), rng.normal(size=8)
    a = keras_lstm.lstm_layer(x, k, r, b, recurrent_activation="sigmoid")[0]
    h = keras_lstm.lstm_layer(x, k, r, b, recurrent_activation="hard_sigmoid")[0]
    assert not np.allclose(a, h)
    with pytest.raises(ValueError, match="unknown activation"):
        keras_lstm.lstm_layer(x, k, r, b, recurrent_activation="hardsigmoid")
    with pytest.raises(ValueError, match="kernel has shape"):
        keras_lstm.lstm_layer(x, k[:3], r, b)


@given(seed=st.integers(0, 2 ** 31 - 1), batch=st.integers(1, 4), time=st.integers(1, 6),
       n_in=st.integers(1, 5), hidden=st.integers(1, 5))
def test_core_runs_keras_hard_sigmoid_models(seed, batch, time, n_in, hidden):
    """Keras 1/2 LSTMs default to hard_sigmoid gates; the core's gate_activation reproduces them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, time, n_in)) * 2
    k, r, b = rng.normal(size=(n_in, 4 * hidden)), rng.normal(size=(hidden, 4 * hidden)), rng.normal(size=4 * hidden)
    expected, h_T, c_T = keras_lstm.lstm_layer(x, k, r, b, recurrent_activation="hard_sigmoid")
    w = to_canonical("keras", {"kernel": torch.tensor(k), "recurrent_kernel": torch.tensor(r), "bias": torch.tensor(b)})

    def hard_sigmoid(t):
        return torch.clamp(0.2 * t + 0.5, 0.0, 1.0)

    out, (h_n, c_n) = lstm(torch.tensor(x), [w], batch_first=True, gate_activation=hard_sigmoid)
    assert_close(out, expected)
    assert_close(h_n[0], h_T)
    assert_close(c_n[0], c_T)


def test_onnx_reference_options_and_errors():
    rng = np.random.default_rng(1)
    T, B, n_in, H = 4, 2, 3, 2
    X, W, R = rng.normal(size=(T, B, n_in)), rng.normal(size=(1, 4 * H, n_in)), rng.normal(size=(1, 4 * H, H))
    Bias = rng.normal(size=(1, 8 * H))
    Y, Y_h, Y_c = onnx_lstm.lstm(X, W, R, Bias)
    assert Y.shape == (T, 1, B, H) and np.array_equal(Y[-1], Y_h)
    # peepholes of zero are no peepholes; clip at infinity is no clip
    Yp = onnx_lstm.lstm(X, W, R, Bias, P=np.zeros((1, 3 * H)), clip=np.inf)[0]
    assert np.array_equal(Yp, Y)
    assert not np.allclose(onnx_lstm.lstm(X, W, R, Bias, P=np.ones((1, 3 * H)))[0], Y)
    assert not np.allclose(onnx_lstm.lstm(X, W, R, Bias, input_forget=1)[0], Y)
    Yz, Yz_h, _ = onnx_lstm.lstm(X, W, R, Bias, sequence_lens=np.array([0, 2]))
    assert np.array_equal(Yz_h[0, 0], np.zeros(H)) and np.array_equal(Yz[2:, 0, 1], np.zeros((2, H)))
    with pytest.raises(ValueError, match="input B"):
        onnx_lstm.lstm(X, W, R, Bias[:, :4 * H])
    with pytest.raises(ValueError, match="input W"):
        onnx_lstm.lstm(X, W[:, :, :2], R)


# ------------------------------------------------------------------------------------------- strictness
def _zeros(layout, n_in=3, hidden=2):
    return {n: np.zeros(s) for n, s in layout_shapes(layout, n_in, hidden).items()}


def _random(shapes: dict, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {n: rng.uniform(-1, 1, s) for n, s in shapes.items()}


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_unknown_tensor_names_are_refused(layout):
    params = _zeros(layout)
    params["extra"] = np.zeros(3)
    with pytest.raises(LayoutError, match=r"does not know tensors \['extra'\]"):
        to_canonical(layout, params, forget_bias=FB.get(layout))


@pytest.mark.parametrize("layout,good,bad", [("onnx", "B", "b"), ("torch", "bias_ih", "b_ih"), ("torch", "bias_hh", "bias"),
                                             ("keras", "bias", "b"), ("tf", "bias", "biases")])
def test_a_misspelt_bias_is_an_error_not_no_bias(layout, good, bad):
    params = _zeros(layout)
    params[bad] = params.pop(good)
    with pytest.raises(LayoutError, match=f"'{bad}'"):
        to_canonical(layout, params, forget_bias=FB.get(layout))


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_unknown_attributes_are_refused(layout):
    with pytest.raises(LayoutError, match="not understood"):
        to_canonical(layout, _zeros(layout), attributes={"peepholes_please": True}, forget_bias=FB.get(layout))


def test_onnx_peepholes_are_honoured():
    """P [1, 3H] (blocks i, o, f) becomes the canonical peephole (rows i, f, o) and changes the outputs as the
    operator says; it used to be dropped."""
    rng = np.random.default_rng(3)
    T, B, n_in, H = 5, 2, 3, 4
    p = _random(layout_shapes("onnx", n_in, H), seed=4)
    p["P"] = rng.uniform(-1, 1, (1, 3 * H))
    w = to_canonical("onnx", p)
    assert w.peephole is not None
    assert np.array_equal(w.peephole, np.stack([p["P"][0, :H], p["P"][0, 2 * H:], p["P"][0, H:2 * H]]))
    x = rng.uniform(-1, 1, (T, B, n_in))
    Y, Y_h, Y_c = onnx_lstm.lstm(x, p["W"], p["R"], p["B"], P=p["P"])
    out, (h_n, c_n) = lstm(torch.tensor(x), [LayerWeights(*(None if t is None else torch.as_tensor(t) for t in w))])
    assert_close(out, Y[:, 0])
    assert_close(h_n, Y_h)
    assert_close(c_n, Y_c)
    assert not np.allclose(Y, onnx_lstm.lstm(x, p["W"], p["R"], p["B"])[0], atol=1e-3)
    assert _same(from_canonical("onnx", w)["P"], p["P"])


def _same(a, b) -> bool:
    return a.shape == b.shape and np.array_equal(np.asarray(a), np.asarray(b))


def test_onnx_reverse_direction_runs_in_reverse_or_is_refused():
    rng = np.random.default_rng(5)
    T, B, n_in, H = 6, 3, 2, 3
    p = _random(layout_shapes("onnx", n_in, H), seed=6)
    x = rng.uniform(-1, 1, (T, B, n_in))
    lens = np.array([6, 0, 4])
    with pytest.raises(LayoutError, match="convert"):
        to_canonical("onnx", p, attributes={"direction": "reverse"})
    conv = convert("onnx", {k: torch.tensor(v) for k, v in p.items()}, {"direction": "reverse", "hidden_size": H})
    assert conv.options == {"direction": "reverse"}
    Y, Y_h, Y_c = onnx_lstm.lstm(x, p["W"], p["R"], p["B"], sequence_lens=lens, direction="reverse")
    out, (h_n, c_n) = lstm(torch.tensor(x), [conv.weights], lengths=lens, **conv.options)
    assert_close(out, Y[:, 0])
    assert_close(h_n[:, [0, 2]], Y_h[:, [0, 2]])
    forwards = onnx_lstm.lstm(x, p["W"], p["R"], p["B"], sequence_lens=lens)[0]
    assert not np.allclose(forwards, Y, atol=1e-2), "reverse must not run forwards"


@pytest.mark.parametrize("attributes,options", [
    ({"clip": 0.5}, {"preact_clip": 0.5}),
    ({"input_forget": 1}, {"input_forget": True}),
    ({"activations": ["HardSigmoid", "Tanh", "Softsign"], "activation_alpha": [0.3]},
     {"activations": (("HardSigmoid", 0.3, 0.5), "Tanh", "Softsign")}),
    ({"layout": 1}, {"batch_first": True}),
])
def test_onnx_run_time_attributes_become_options_or_are_refused(attributes, options):
    p = _zeros("onnx")
    with pytest.raises(LayoutError, match="run-time options"):
        to_canonical("onnx", p, attributes=attributes)
    assert convert("onnx", p, attributes).options == options


def test_onnx_attribute_errors():
    p = _zeros("onnx")
    cases = [({"direction": "sideways"}, "direction"), ({"direction": "bidirectional"}, "num_directions = 2"),
             ({"hidden_size": 3}, "hidden_size=3"), ({"clip": -1.0}, "clip"), ({"input_forget": 2}, "input_forget"),
             ({"activations": ["Sigmoid", "Tanh"]}, "expected 3"), ({"activations": ["Swish", "Tanh", "Tanh"]}, "Swish"),
             ({"activations": ["Sigmoid", "Tanh", "Tanh"], "activation_alpha": [1.0]}, "left over"),
             ({"activation_alpha": [1.0]}, "without activations"), ({"layout": 2}, "layout")]
    for attributes, match in cases:
        with pytest.raises(LayoutError, match=match):
            convert("onnx", p, attributes)


def test_onnx_activation_lists_are_consumed_in_order():
    """onnxruntime rnn_helpers.cc: each function that takes alpha / beta takes the next one; defaults after."""
    got = onnx_activations(["LeakyRelu", "tanh", "HardSigmoid", "Affine", "Sigmoid", "Elu"], [0.5, 0.3], [0.7], 2)
    assert got == [(("LeakyRelu", 0.5), "Tanh", ("HardSigmoid", 0.3, 0.7)), (("Affine", 0.0, 0.0), "Sigmoid", ("Elu", 1.0))]
    assert onnx_activations(None) == [("Sigmoid", "Tanh", "Tanh")]


def test_onnx_bidirectional_tensors_split_and_stack():
    p = {"W": np.arange(2 * 8 * 3.0).reshape(2, 8, 3), "R": np.zeros((2, 8, 2)), "P": np.ones((2, 6))}
    parts = onnx_directions(p)
    assert len(parts) == 2 and parts[1]["W"].shape == (1, 8, 3) and np.array_equal(parts[1]["W"][0], p["W"][1])
    back = onnx_stack_directions(parts)
    assert all(np.array_equal(back[k], p[k]) for k in p)
    conv = convert("onnx", p, {"direction": "bidirectional"})
    assert conv.options == {"direction": "bidirectional"}
    fw, bw = conv.weights
    assert np.array_equal(bw.weight_ih, permute_gates(p["W"][1], "iofc", "ifgo"))
    with pytest.raises(LayoutError, match="leading axis"):
        onnx_directions({"W": p["W"], "R": p["R"][:1]})


def test_keras_without_bias_works():
    """use_bias=False: no bias tensor (absent, or None as a reader may pass it)."""
    rng = np.random.default_rng(7)
    T, B, n_in, H = 4, 2, 3, 5
    k, r = rng.uniform(-1, 1, (n_in, 4 * H)), rng.uniform(-1, 1, (H, 4 * H))
    x = rng.uniform(-1, 1, (B, T, n_in))
    expected, h_T, c_T = keras_lstm.lstm_layer(x, k, r, None)
    for params in ({"kernel": k, "recurrent_kernel": r}, {"kernel": k, "recurrent_kernel": r, "bias": None}):
        w = to_canonical("keras", {n: None if v is None else torch.tensor(v) for n, v in params.items()})
        assert w.bias_ih is None and w.bias_hh is None
        out, (h_n, c_n) = lstm(torch.tensor(x), [w], batch_first=True)
        assert_close(out, expected)
        assert_close(h_n[0], h_T)
        assert_close(c_n[0], c_T)
    assert set(from_canonical("keras", to_canonical("keras", {"kernel": k, "recurrent_kernel": r}))) == {
        "kernel", "recurrent_kernel"}
    with pytest.raises(LayoutError, match="use_bias=True"):
        convert("keras", {"kernel": k, "recurrent_kernel": r}, {"use_bias": True})


def test_keras_attributes():
    p = _zeros("keras")
    assert convert("keras", p, {"recurrent_activation": "hard_sigmoid", "keras_version": 2}).options == {
        "activations": ("hard_sigmoid_keras2", "tanh", "tanh")}
    assert convert("keras", p, {"inner_activation": "hard_sigmoid", "keras_version": 1}).options == {
        "activations": ("hard_sigmoid_keras2", "tanh", "tanh")}
    assert convert("keras", p, {"recurrent_activation": "hard_sigmoid", "keras_version": 3}).options == {
        "activations": ("hard_sigmoid_keras3", "tanh", "tanh")}
    assert convert("keras", p, {"activation": "relu"}).options == {"activations": ("sigmoid", "relu", "relu")}
    assert convert("keras", p, {"go_backwards": True}).options == {"direction": "reverse"}
    conv = convert("keras", p, {"recurrent_dropout": 0.2, "dropout": 0.0, "unit_forget_bias": True, "units": 2,
                                "return_sequences": True, "kernel_regularizer": None})
    assert conv.options == {} and dict(conv.not_applied) == {
        "recurrent_dropout": "dropout acts in training only", "unit_forget_bias": "initialisation, regularisation or bookkeeping"}
    for attributes, match in [({"recurrent_activation": "hard_sigmoid"}, "keras_version"), ({"units": 3}, "units=3"),
                              ({"activation": "gelu"}, "gelu"), ({"keras_version": 4}, "keras_version")]:
        with pytest.raises(LayoutError, match=match):
            convert("keras", p, attributes)


def test_tf_lstm_cell_extras_and_attributes():
    rng = np.random.default_rng(8)
    n_in, H, P = 3, 4, 6
    p = {"kernel": rng.uniform(-1, 1, (n_in + P, 4 * H)), "bias": rng.uniform(-1, 1, 4 * H),
         "w_i_diag": rng.uniform(-1, 1, H), "w_f_diag": rng.uniform(-1, 1, H), "w_o_diag": rng.uniform(-1, 1, H),
         "projection/kernel": rng.uniform(-1, 1, (H, P))}
    conv = convert("tf", p, {"use_peepholes": True, "num_proj": P, "cell_clip": 3.0, "proj_clip": 0.5,
                             "forget_bias": 1.0, "num_units": H, "state_is_tuple": True, "initializer": None})
    w = conv.weights
    assert conv.options == {"cell_clip": 3.0, "proj_clip": 0.5}
    assert np.array_equal(w.peephole, np.stack([p["w_i_diag"], p["w_f_diag"], p["w_o_diag"]]))
    assert np.array_equal(w.weight_hr, p["projection/kernel"].T) and w.weight_hh.shape == (4 * H, P)
    back = from_canonical("tf", w, forget_bias=1.0)
    assert set(back) == set(p) and all(np.array_equal(back[k], p[k]) for k in p)
    with pytest.raises(LayoutError, match="run-time options"):
        to_canonical("tf", p, attributes={"cell_clip": 3.0}, forget_bias=1.0)
    bare = {"kernel": p["kernel"][:n_in + H], "bias": p["bias"]}
    for params, attributes, match in [
        (bare, {"use_peepholes": True}, "use_peepholes"), (bare, {"num_proj": 2}, "num_proj"),
        (bare, {"proj_clip": 1.0}, "proj_clip"), (bare, {"num_units": H + 1}, "num_units"),
        (bare, {"num_unit_shards": 2}, "sharded"), (dict(bare, w_i_diag=p["w_i_diag"]), {}, "w_f_diag"),
        (bare, {"activation": "hard_sigmoid"}, None),
    ]:
        if match is None:
            assert convert("tf", params, attributes, forget_bias=1.0).options == {"activations": ("sigmoid", "hard_sigmoid_keras2",
                                                                                 "hard_sigmoid_keras2")}
            continue
        with pytest.raises(LayoutError, match=match):
            convert("tf", params, attributes, forget_bias=1.0)
    with pytest.raises(LayoutError, match="given twice"):
        convert("tf", bare, {"forget_bias": 1.0}, forget_bias=0.5)
    assert torch.equal(torch.as_tensor(convert("tf", bare, {"forget_bias": 1.0}).weights.bias_hh),
                       torch.as_tensor(to_canonical("tf", bare, forget_bias=1.0).bias_hh))


def test_torch_projection_round_trip_and_attributes():
    rng = np.random.default_rng(9)
    H, P, n_in = 5, 3, 2
    p = {"weight_ih": rng.uniform(-1, 1, (4 * H, n_in)), "weight_hh": rng.uniform(-1, 1, (4 * H, P)),
         "bias_ih": rng.uniform(-1, 1, 4 * H), "weight_hr": rng.uniform(-1, 1, (P, H))}
    w = to_canonical("torch", p, attributes={"hidden_size": H, "proj_size": P, "input_size": n_in, "bias": True})
    back = from_canonical("torch", w)
    assert back["bias_hh"] is None and all(np.array_equal(back[k], p[k]) for k in p)
    for attributes, match in [({"proj_size": 2}, "proj_size"), ({"bias": False}, "bias"), ({"hidden_size": 4}, "hidden_size")]:
        with pytest.raises(LayoutError, match=match):
            to_canonical("torch", p, attributes=attributes)
    with pytest.raises(LayoutError, match="weight_hh"):
        to_canonical("torch", dict(p, weight_hh=rng.uniform(-1, 1, (4 * H, H))))


@pytest.mark.parametrize("layout", ["keras", "keras_cudnn", "theano", "caffe", "junhyukoh"])
def test_layouts_without_room_for_extras_refuse_them(layout):
    w = LayerWeights(np.zeros((8, 3)), np.zeros((8, 2)), np.zeros(8), None, None, np.zeros((3, 2)))
    with pytest.raises(LayoutError, match="peephole"):
        from_canonical(layout, w, forget_bias=FB.get(layout))


def test_caffe_and_junhyukoh_attributes():
    assert convert("caffe", _zeros("caffe"), {"num_output": 2, "expose_hidden": True}).options == {}
    assert convert("caffe", _zeros("caffe"), {"caffe_tanh": True}).options == {
        "activations": ("sigmoid", "caffe_tanh", "caffe_tanh")}
    assert convert("junhyukoh", _zeros("junhyukoh"), {"clipping_threshold": 0.1}).options == {"preact_grad_clip": 0.1}
    assert convert("theano", _zeros("theano"), {"dim_proj": 2}).options == {}
    with pytest.raises(LayoutError, match="num_output"):
        convert("caffe", _zeros("caffe"), {"num_output": 3})
    with pytest.raises(LayoutError, match="W_xc_static"):
        to_canonical("caffe", dict(_zeros("caffe"), W_xc_static=np.zeros((8, 3))))
