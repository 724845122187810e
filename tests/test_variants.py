"""Properties of the LSTM core's cell variants and directions (compat/lstm.py, compat/recurrent/loop.py).

Each variant against the numpy reference of the framework that defines it, through the layout that
reads that framework's tensors and attributes (``compat.layouts.convert``):

- TF ``LSTMCell`` (peepholes, ``cell_clip``, ``num_proj``, ``proj_clip``, ``forget_bias``) under
  ``dynamic_rnn`` with ``sequence_length`` and ``bidirectional_dynamic_rnn``: ``reference/tf_lstm.py``;
- the ONNX ``LSTM`` operator with every attribute (P, clip, input_forget, activations with alpha / beta,
  forward / reverse / bidirectional, sequence_lens, layout): ``reference/onnx_lstm.py``;
- Keras ``LSTM`` (use_bias=False, go_backwards, masks, hard_sigmoid of Keras 2 and 3) and
  ``Bidirectional(LSTM)``: ``reference/keras_lstm.py``;
- ``torch.nn.LSTM`` (proj_size, bidirectional, PackedSequence): ``torch.nn.LSTM`` itself (outputs,
  states, every gradient) and ``reference/torch_lstm.py``;

then the fused kernel == the step loop wherever both run (projections, reverse and bidirectional
stacks, lengths), float64 ``gradcheck`` of the step loop for every variant, the named activations,
the errors, and the module.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence

from compat.frameworks.onnx.layout import onnx_activations
from compat.layouts import LayoutError, convert
from compat.lstm import ACTIVATIONS, LSTM, LayerWeights, LSTMShapeError, lstm, weights_from_torch
from compat.lstm_activations import ActivationError, activation
from reference import keras_lstm, onnx_lstm, tf_lstm, torch_lstm
from tests.strategies import (
    arbitrary_masks, as_tensor, dtypes, inputs, lstm_sizes, projection_sizes, right_padded_masks, sequence_lengths,
    variant_states, variant_weights, variant_weights_as_tensors,
)
from tests.tolerances import assert_close

with_device = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                              HealthCheck.data_too_large])
seeds = st.integers(0, 2 ** 31 - 1)
loop_or_auto = st.sampled_from(["auto", "loop"])
forget_biases = st.sampled_from([0.0, 1.0, -0.5])


# --------------------------------------------------------------------------------------------- helpers
def named_leaves(ws, hx, x):
    """Every tensor that requires grad, named."""
    named = [("x", x)]
    if hx is not None:
        named += [("h0", hx[0]), ("c0", hx[1])]
    for k, entry in enumerate(ws):
        dirs = (entry,) if isinstance(entry, LayerWeights) else entry
        for d, w in enumerate(dirs):
            for field in LayerWeights._fields:
                t = getattr(w, field)
                if t is not None:
                    named.append((f"layer {k}.{d} {field}", t))
    return [(n, t) for n, t in named if t.requires_grad]


def grads(out, state, named, seed):
    g = torch.Generator().manual_seed(seed)
    loss = 0.0
    for t in (out, state[0], state[1]):
        loss = loss + (t * torch.randn(t.shape, generator=g, dtype=torch.float64).to(t)).sum()
    if not loss.requires_grad:
        return {n: torch.zeros_like(t) for n, t in named}
    gs = torch.autograd.grad(loss, [t for _, t in named], allow_unused=True)
    return {n: torch.zeros_like(t) if gr is None else gr for (n, t), gr in zip(named, gs)}


def assert_runs_equal(a, b, msg="", **kw):
    assert_close(a[0], b[0], msg=f"{msg} output", **kw)
    assert_close(a[1][0], b[1][0], msg=f"{msg} h_n", **kw)
    assert_close(a[1][1], b[1][1], msg=f"{msg} c_n", **kw)


def assert_grads_equal(ga, gb, msg="", **kw):
    assert ga.keys() == gb.keys()
    for name in ga:
        assert_close(ga[name], gb[name], msg=f"{msg} gradient of {name}", **kw)


def grad_tol(dtype):
    if dtype == torch.float32:
        return dict(loosen=10, reason="float32 rounding amplified by backpropagation through time")
    return {}


def tensors(params: dict, dtype, device) -> dict:
    return {k: as_tensor(v, dtype, device) for k, v in params.items()}


# ------------------------------------------------------------------------------- TF LSTMCell variants
def tf_cell_params(rng, n_in, hidden, proj, peepholes, scale):
    """One LSTMCell's variables (LSTMCell.build's names and shapes)."""
    p = {"kernel": rng.uniform(-scale, scale, (n_in + (proj or hidden), 4 * hidden)),
         "bias": rng.uniform(-scale, scale, 4 * hidden)}
    if peepholes:
        for name in ("w_i_diag", "w_f_diag", "w_o_diag"):
            p[name] = rng.uniform(-scale, scale, hidden)
    if proj:
        p["projection/kernel"] = rng.uniform(-scale, scale, (hidden, proj))
    return p


def tf_reference_cell(p, forget_bias, cell_clip, proj_clip):
    def cell(x, state):
        return tf_lstm.lstm_cell(x, state, p["kernel"], p["bias"], forget_bias, w_i_diag=p.get("w_i_diag"),
                                 w_f_diag=p.get("w_f_diag"), w_o_diag=p.get("w_o_diag"), cell_clip=cell_clip,
                                 proj_kernel=p.get("projection/kernel"), proj_clip=proj_clip)
    return cell


@st.composite
def tf_problems(draw, num_layers=None):
    sizes = draw(lstm_sizes())
    L = sizes.num_layers if num_layers is None else num_layers
    proj = draw(projection_sizes())
    peepholes = draw(st.booleans(), label="use_peepholes")
    attrs = {"use_peepholes": peepholes, "num_units": sizes.hidden_size,
             "forget_bias": draw(forget_biases, label="forget_bias"),
             "cell_clip": draw(st.sampled_from([None, 0.3, 1.5]), label="cell_clip")}
    if proj:
        attrs["num_proj"] = proj
        attrs["proj_clip"] = draw(st.sampled_from([None, 0.2, 1.0]), label="proj_clip")
    rng = np.random.default_rng(draw(seeds, label="tf seed"))
    scale = draw(st.sampled_from([0.5, 1.0]), label="scale")
    out = proj or sizes.hidden_size
    layers = [tf_cell_params(rng, sizes.input_size if k == 0 else out, sizes.hidden_size, proj, peepholes, scale)
              for k in range(L)]
    note(f"tf attributes {attrs}")
    return sizes, L, proj, attrs, layers


@with_device
@given(prob=tf_problems(), x=inputs(), lengths=st.none() | sequence_lengths(), data=st.data(), dtype=dtypes,
       kernel=loop_or_auto)
def test_tf_lstm_cell_variants_match_tf_reference(device, prob, x, lengths, data, dtype, kernel):
    """MultiRNNCell of LSTMCells under dynamic_rnn (zero outputs past sequence_length, states copied through)."""
    sizes, L, proj, attrs, layers = prob
    state = data.draw(variant_states(L, 1, proj, allow_none=False), label="state")
    event(f"proj={bool(proj)} peepholes={attrs['use_peepholes']} clips={attrs['cell_clip'] is not None}")
    cells = [tf_reference_cell(p, attrs["forget_bias"], attrs["cell_clip"], attrs.get("proj_clip")) for p in layers]
    h0, c0 = state
    ref_out, ref_states = tf_lstm.dynamic_rnn(tf_lstm.multi_cell(cells), x, [(c0[k], h0[k]) for k in range(L)], lengths)
    converted = [convert("tf", tensors(p, dtype, device), attrs) for p in layers]
    assert all(c.options == converted[0].options for c in converted)
    out, (h_n, c_n) = lstm(as_tensor(x, dtype, device), [c.weights for c in converted],
                           (as_tensor(h0, dtype, device), as_tensor(c0, dtype, device)), lengths=lengths,
                           kernel=kernel, **converted[0].options)
    assert_close(out, ref_out, dtype=dtype, msg="outputs")
    assert_close(h_n, np.stack([h for c, h in ref_states]), dtype=dtype, msg="h_n")
    assert_close(c_n, np.stack([c for c, h in ref_states]), dtype=dtype, msg="c_n")


@with_device
@given(prob=tf_problems(num_layers=1), x=inputs(), lengths=st.none() | sequence_lengths(), data=st.data(),
       dtype=dtypes, kernel=loop_or_auto)
def test_tf_bidirectional_dynamic_rnn_matches_tf_reference(device, prob, x, lengths, data, dtype, kernel):
    """bidirectional_dynamic_rnn: the backward cell reads reverse_sequence(inputs, sequence_length)."""
    sizes, _, proj, attrs, (fw,) = prob
    rng = np.random.default_rng(data.draw(seeds, label="bw seed"))
    bw = tf_cell_params(rng, sizes.input_size, sizes.hidden_size, proj, attrs["use_peepholes"], 1.0)
    h0, c0 = data.draw(variant_states(1, 2, proj, allow_none=False), label="state")
    fb, cc, pc = attrs["forget_bias"], attrs["cell_clip"], attrs.get("proj_clip")
    (out_fw, out_bw), (st_fw, st_bw) = tf_lstm.bidirectional_dynamic_rnn(
        tf_reference_cell(fw, fb, cc, pc), tf_reference_cell(bw, fb, cc, pc), x, (c0[0], h0[0]), (c0[1], h0[1]), lengths)
    cf, cb = (convert("tf", tensors(p, dtype, device), attrs) for p in (fw, bw))
    out, (h_n, c_n) = lstm(as_tensor(x, dtype, device), [(cf.weights, cb.weights)],
                           (as_tensor(h0, dtype, device), as_tensor(c0, dtype, device)), lengths=lengths,
                           direction="bidirectional", kernel=kernel, **cf.options)
    assert_close(out, np.concatenate([out_fw, out_bw], axis=2), dtype=dtype, msg="concat(fw, bw)")
    assert_close(h_n, np.stack([st_fw[1], st_bw[1]]), dtype=dtype, msg="h_n")
    assert_close(c_n, np.stack([st_fw[0], st_bw[0]]), dtype=dtype, msg="c_n")


# ---------------------------------------------------------------------------------- ONNX, every attribute
BOUNDED_ACTIVATIONS = [None, ["Sigmoid", "Tanh", "Tanh"], ["HardSigmoid", "Tanh", "Tanh"], ["Sigmoid", "Softsign", "Tanh"],
                       ["Sigmoid", "ScaledTanh", "Softsign"]]
UNBOUNDED_ACTIVATIONS = [["Sigmoid", "Relu", "Relu"], ["LeakyRelu", "Elu", "Softplus"], ["Sigmoid", "Affine", "Tanh"],
                         ["ThresholdedRelu", "Tanh", "Softplus"]]


@st.composite
def onnx_problems(draw, dtype):
    sizes = draw(lstm_sizes(max_layers=1))
    T, B, n_in, H = sizes.time, sizes.batch, sizes.input_size, sizes.hidden_size
    direction = draw(st.sampled_from(["forward", "reverse", "bidirectional"]), label="direction")
    D = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(draw(seeds, label="onnx seed"))
    s = draw(st.sampled_from([0.5, 1.0]), label="scale")
    p = {"W": rng.uniform(-s, s, (D, 4 * H, n_in)), "R": rng.uniform(-s, s, (D, 4 * H, H))}
    if draw(st.booleans(), label="B"):
        p["B"] = rng.uniform(-s, s, (D, 8 * H))
    if draw(st.booleans(), label="P"):
        p["P"] = rng.uniform(-s, s, (D, 3 * H))
    attrs = {"hidden_size": H, "direction": direction}
    clip = draw(st.sampled_from([None, 0.4, 1.5]), label="clip")
    if clip is not None:
        attrs["clip"] = clip
    if draw(st.booleans(), label="input_forget"):
        attrs["input_forget"] = 1
    pool = BOUNDED_ACTIVATIONS + (UNBOUNDED_ACTIVATIONS if dtype == torch.float64 else [])
    acts = draw(st.sampled_from(pool), label="activations")
    if acts is not None:
        attrs["activations"] = acts * D
        alphas = rng.uniform(0.1, 1.5, draw(st.integers(0, 4))).round(3).tolist()
        betas = rng.uniform(0.1, 1.5, draw(st.integers(0, 4))).round(3).tolist()
        # only as many values as the functions take (the layout refuses left-overs)
        takes = {"Affine": 2, "LeakyRelu": 1, "ThresholdedRelu": 1, "ScaledTanh": 2, "HardSigmoid": 2, "Elu": 1}
        n_alpha = sum(1 for a in acts * D if a in takes)
        n_beta = sum(1 for a in acts * D if takes.get(a) == 2)
        if alphas[:n_alpha]:
            attrs["activation_alpha"] = alphas[:n_alpha]
        if betas[:n_beta]:
            attrs["activation_beta"] = betas[:n_beta]
    lens = draw(st.none() | sequence_lengths(), label="sequence_lens")
    init = None
    if draw(st.booleans(), label="initial state"):
        init = (rng.uniform(-1, 1, (D, B, H)), rng.uniform(-1, 1, (D, B, H)))
    layout = draw(st.sampled_from([0, 0, 1]), label="layout")
    if layout:
        attrs["layout"] = 1
    note(f"onnx attributes {attrs}, tensors {sorted(p)}")
    return sizes, D, p, attrs, lens, init


@with_device
@given(data=st.data(), x=inputs(), dtype=dtypes, kernel=loop_or_auto)
def test_onnx_lstm_attributes_match_onnx_reference(device, data, x, dtype, kernel):
    sizes, D, p, attrs, lens, init = data.draw(onnx_problems(dtype), label="problem")
    T, B, H = sizes.time, sizes.batch, sizes.hidden_size
    batch_first = attrs.get("layout") == 1
    X = x.transpose(1, 0, 2) if batch_first else x
    ref_kw = {k: attrs[k] for k in ("clip", "input_forget", "activations", "activation_alpha", "activation_beta",
                                     "direction", "layout") if k in attrs}
    init_ref = (None, None) if init is None else tuple(s.transpose(1, 0, 2) if batch_first else s for s in init)
    with np.errstate(all="ignore"):
        Y, Y_h, Y_c = onnx_lstm.lstm(X, p["W"], p["R"], p.get("B"), lens, init_ref[0], init_ref[1], p.get("P"), **ref_kw)
    # unbounded gate and cell activations (Relu, LeakyRelu, Softplus, ...) can grow without limit over the steps
    assume(np.all(np.abs(Y_c) < 1e6))
    per_direction = onnx_activations(attrs.get("activations"), attrs.get("activation_alpha", ()),
                                     attrs.get("activation_beta", ()), D)
    if len(set(per_direction)) > 1:
        event("activations differ between the directions: refused")
        with pytest.raises(LayoutError, match="differ between the directions"):
            convert("onnx", tensors(p, dtype, device), attrs)
        return
    conv = convert("onnx", tensors(p, dtype, device), attrs)
    event(f"options: {sorted(conv.options)}")
    hx = None if init is None else tuple(as_tensor(s, dtype, device) for s in init)
    out, (h_n, c_n) = lstm(as_tensor(X, dtype, device), [conv.weights], hx, lengths=lens, kernel=kernel,
                           **conv.options)
    if batch_first:  # Y [B, T, D, H], Y_h [B, D, H]
        Y, Y_h, Y_c = Y.reshape(B, T, D * H), Y_h.transpose(1, 0, 2), Y_c.transpose(1, 0, 2)
    else:  # Y [T, D, B, H]
        Y = Y.transpose(0, 2, 1, 3).reshape(T, B, D * H)
    assert_close(out, Y, dtype=dtype, msg="Y")
    live = np.ones(B, bool) if lens is None else lens > 0  # onnxruntime zeroes Y_h / Y_c at length 0
    assert_close(h_n.cpu()[:, torch.as_tensor(live)], Y_h[:, live], dtype=dtype, msg="Y_h")
    assert_close(c_n.cpu()[:, torch.as_tensor(live)], Y_c[:, live], dtype=dtype, msg="Y_c")


# --------------------------------------------------------------------------------------------- Keras
@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(scale=2.0), data=st.data(), dtype=dtypes, kernel=loop_or_auto)
def test_keras_lstm_variants_match_keras_reference(device, sizes, x, data, dtype, kernel):
    """use_bias=False, go_backwards (outputs in reading order), masks, hard_sigmoid of Keras 2 and 3."""
    rng = np.random.default_rng(data.draw(seeds, label="keras seed"))
    H, n_in = sizes.hidden_size, sizes.input_size
    p = {"kernel": rng.uniform(-1, 1, (n_in, 4 * H)), "recurrent_kernel": rng.uniform(-1, 1, (H, 4 * H))}
    use_bias = data.draw(st.booleans(), label="use_bias")
    if use_bias:
        p["bias"] = rng.uniform(-1, 1, 4 * H)
    version = data.draw(st.sampled_from([2, 3]), label="keras_version")
    rec = data.draw(st.sampled_from(["sigmoid", "hard_sigmoid"]), label="recurrent_activation")
    act = data.draw(st.sampled_from(["tanh", "tanh", "relu", "softsign"]), label="activation")
    go_backwards = data.draw(st.booleans(), label="go_backwards")
    mask = data.draw(st.none() | right_padded_masks() | arbitrary_masks(), label="mask")
    state = data.draw(variant_states(1, 1, 0), label="state")
    attrs = {"units": H, "use_bias": use_bias, "recurrent_activation": rec, "activation": act,
             "go_backwards": go_backwards, "keras_version": version, "return_sequences": True,
             "kernel_initializer": "glorot_uniform"}
    ref_rec = {"hard_sigmoid": "hard_sigmoid" if version == 2 else "hard_sigmoid_keras3"}.get(rec, rec)
    # the float64 oracle gets the numbers the core sees: a relu cell grows without bound, and float32 rounding of
    # its inputs alone, carried through the steps, exceeds the float32 tolerance
    seen = np.float32 if dtype == torch.float32 else np.float64
    x, p = x.astype(seen).astype(np.float64), {k: v.astype(seen).astype(np.float64) for k, v in p.items()}
    if state is not None:
        state = tuple(np.asarray(s).astype(seen).astype(np.float64) for s in state)
    init = None if state is None else (state[0][0], state[1][0])
    # the core's mask semantics (the previous h at a masked step) are Keras 2's "previous_h"
    ref_out, ref_h, ref_c = keras_lstm.lstm_layer(x.transpose(1, 0, 2), p["kernel"], p["recurrent_kernel"], p.get("bias"),
                                                  init, None if mask is None else mask.T, ref_rec, act,
                                                  go_backwards=go_backwards, masked_output="previous_h")
    conv = convert("keras", tensors(p, dtype, device), attrs)
    assert conv.not_applied == (("kernel_initializer", "initialisation, regularisation or bookkeeping"),)
    hx = None if state is None else tuple(as_tensor(s, dtype, device) for s in state)
    out, (h_n, c_n) = lstm(as_tensor(x, dtype, device).transpose(0, 1), [conv.weights], hx, batch_first=True,
                           mask=None if mask is None else as_tensor(mask.T, dtype, device), kernel=kernel,
                           **conv.options)
    if go_backwards:
        out = out.flip(1)  # Keras returns a go_backwards layer's outputs in reading order
    assert_close(out, ref_out, dtype=dtype, msg="outputs")
    assert_close(h_n[0], ref_h, dtype=dtype, msg="h_T")
    assert_close(c_n[0], ref_c, dtype=dtype, msg="c_T")


@with_device
@given(sizes=lstm_sizes(max_layers=1), x=inputs(), data=st.data(), dtype=dtypes, kernel=loop_or_auto)
def test_keras_bidirectional_matches_keras_reference(device, sizes, x, data, dtype, kernel):
    """Bidirectional(LSTM(return_sequences=True)): zeros at masked steps (forced by Bidirectional)."""
    rng = np.random.default_rng(data.draw(seeds, label="keras seed"))
    H, n_in = sizes.hidden_size, sizes.input_size
    fw, bw = ({"kernel": rng.uniform(-1, 1, (n_in, 4 * H)), "recurrent_kernel": rng.uniform(-1, 1, (H, 4 * H)),
               "bias": rng.uniform(-1, 1, 4 * H)} for _ in range(2))
    mask = data.draw(st.none() | right_padded_masks() | arbitrary_masks(), label="mask")
    ref = keras_lstm.bidirectional_layer(x.transpose(1, 0, 2), fw, bw, mask=None if mask is None else mask.T)
    weights = [tuple(convert("keras", tensors(p, dtype, device)).weights for p in (fw, bw))]
    m = None if mask is None else as_tensor(mask, dtype, device)
    out, (h_n, c_n) = lstm(as_tensor(x, dtype, device), weights, mask=m, direction="bidirectional", kernel=kernel)
    if m is not None:
        out = out * m.unsqueeze(2)
    assert_close(out.transpose(0, 1), ref[0], dtype=dtype, msg="outputs")
    assert_close(h_n, np.stack([ref[1], ref[3]]), dtype=dtype, msg="h_n")
    assert_close(c_n, np.stack([ref[2], ref[4]]), dtype=dtype, msg="c_n")


# ------------------------------------------------------------------------------------- torch.nn.LSTM
def torch_module(weights, bidirectional, batch_first, device):
    """A float64 torch.nn.LSTM holding the variant weights (missing biases become zeros)."""
    first = weights[0][0] if bidirectional else weights[0]
    H = first.weight_hh.shape[0] // 4
    P = 0 if first.weight_hr is None else first.weight_hr.shape[0]
    has_bias = first.bias_ih is not None or first.bias_hh is not None
    mod = torch.nn.LSTM(first.weight_ih.shape[1], H, len(weights), bias=has_bias, batch_first=batch_first,
                        proj_size=P, bidirectional=bidirectional).to(device, torch.float64)
    with torch.no_grad():
        for k, entry in enumerate(weights):
            for d, w in enumerate(entry if bidirectional else (entry,)):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                for f in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
                    v = getattr(w, f)
                    if v is None and not (has_bias and f.startswith("bias")):
                        continue
                    getattr(mod, f + sfx).copy_(torch.zeros(4 * H) if v is None else torch.as_tensor(v))
    return mod


@with_device
@given(sizes=lstm_sizes(), x=inputs(), data=st.data(), dtype=dtypes, batch_first=st.booleans(),
       kernel=st.sampled_from(["auto", "fused", "loop"]), seed=seeds)
def test_projection_and_bidirectional_match_torch_nn_lstm(device, sizes, x, data, dtype, batch_first, kernel, seed):
    """proj_size and bidirectional, padded or packed input: outputs, states and every gradient."""
    bidirectional = data.draw(st.booleans(), label="bidirectional")
    D = 2 if bidirectional else 1
    proj = data.draw(projection_sizes(narrower=True), label="proj")
    weights = data.draw(variant_weights(D, proj=proj, peepholes=False, max_scale=1.0 if dtype == torch.float32 else 2.0),
                        label="weights")
    state = data.draw(variant_states(sizes.num_layers, D, proj), label="state")
    lengths = data.draw(st.none() | sequence_lengths(min_length=1), label="packed lengths")
    event(f"bidirectional={bidirectional} proj={bool(proj)} packed={lengths is not None}")
    mod = torch_module(weights, bidirectional, batch_first, device)
    x_ref = as_tensor(x, torch.float64, device, True)
    hx_ref = None if state is None else tuple(as_tensor(s, torch.float64, device, True) for s in state)
    xt = as_tensor(x, dtype, device, True)
    hx = None if state is None else tuple(as_tensor(s, dtype, device, True) for s in state)
    ws = variant_weights_as_tensors(weights, dtype, device, requires_grad=True)
    if lengths is not None:
        packed_ref = pack_padded_sequence(x_ref, torch.as_tensor(lengths), enforce_sorted=False)
        theirs = mod(packed_ref, hx_ref)
        packed = pack_padded_sequence(xt, torch.as_tensor(lengths), enforce_sorted=False)
        ours = lstm(packed, ws, hx, direction="bidirectional" if bidirectional else "forward",
                    kernel="packed" if kernel == "fused" else kernel)
        assert torch.equal(ours[0].batch_sizes, theirs[0].batch_sizes)
        assert torch.equal(ours[0].sorted_indices, theirs[0].sorted_indices)
        theirs, ours = (theirs[0].data, theirs[1]), (ours[0].data, ours[1])
    else:
        theirs = mod(x_ref.transpose(0, 1) if batch_first else x_ref, hx_ref)
        ours = lstm(xt.transpose(0, 1) if batch_first else xt, ws, hx, batch_first=batch_first, kernel=kernel,
                    direction="bidirectional" if bidirectional else "forward")
    assert_runs_equal(ours, theirs, msg=f"{kernel} vs nn.LSTM", dtype=dtype)
    g_ours = grads(*ours, named_leaves(ws, hx, xt), seed)
    ref_named = [("x", x_ref)] + ([] if hx_ref is None else [("h0", hx_ref[0]), ("c0", hx_ref[1])])
    ref_named += [(n, p_) for n, p_ in mod.named_parameters()]
    g_ref = grads(*theirs, ref_named, seed)
    for name in ("x", "h0", "c0"):
        if name in g_ours:
            assert_close(g_ours[name], g_ref[name], msg=f"gradient of {name}", **grad_tol(dtype))
    for k, entry in enumerate(ws):
        for d, w in enumerate(entry if bidirectional else (entry,)):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            for f in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
                if getattr(w, f) is not None:
                    assert_close(g_ours[f"layer {k}.{d} {f}"], g_ref[f + sfx], msg=f"gradient of {f}{sfx}",
                                 **grad_tol(dtype))


@with_device
@given(sizes=lstm_sizes(), x=inputs(), data=st.data(), kernel=loop_or_auto)
def test_core_matches_torch_semantics_reference_with_any_projection(device, sizes, x, data, kernel):
    """reference/torch_lstm.py: projections of any width (TF's num_proj may exceed H), zero lengths."""
    bidirectional = data.draw(st.booleans(), label="bidirectional")
    D = 2 if bidirectional else 1
    proj = data.draw(projection_sizes(), label="proj")
    weights = data.draw(variant_weights(D, proj=proj, peepholes=False), label="weights")
    state = data.draw(variant_states(sizes.num_layers, D, proj), label="state")
    lengths = data.draw(st.none() | sequence_lengths(), label="lengths")
    as_dict = [[dict(w._asdict()) for w in (entry if bidirectional else (entry,))] for entry in weights]
    ref_out, (ref_h, ref_c) = torch_lstm.lstm(x, [e if bidirectional else e[0] for e in as_dict], state, lengths,
                                              bidirectional)
    ours = lstm(as_tensor(x, torch.float64, device), variant_weights_as_tensors(weights, torch.float64, device),
                None if state is None else tuple(as_tensor(s, torch.float64, device) for s in state),
                lengths=lengths, direction="bidirectional" if bidirectional else "forward", kernel=kernel)
    assert_runs_equal(ours, (ref_out, (ref_h, ref_c)), msg="torch_lstm reference")


# ------------------------------------------------------------------------------------ fused == loop
@with_device
@given(sizes=lstm_sizes(), x=inputs(), data=st.data(), dtype=dtypes, seed=seeds)
def test_fused_equals_loop_for_directions_projections_and_lengths(device, sizes, x, data, dtype, seed):
    direction = data.draw(st.sampled_from(["forward", "reverse", "bidirectional"]), label="direction")
    D = 2 if direction == "bidirectional" else 1
    proj = data.draw(projection_sizes(narrower=True), label="proj")
    weights = data.draw(variant_weights(D, proj=proj, peepholes=False, max_scale=1.0 if dtype == torch.float32 else 2.0),
                        label="weights")
    state = data.draw(variant_states(sizes.num_layers, D, proj), label="state")
    lengths = data.draw(st.none() | sequence_lengths(), label="lengths")
    event(f"{direction} proj={bool(proj)} lengths={lengths is not None}")
    xt = as_tensor(x, dtype, device, True)
    hx = None if state is None else tuple(as_tensor(s, dtype, device, True) for s in state)
    ws = variant_weights_as_tensors(weights, dtype, device, requires_grad=True)
    # torch's kernel: dense, or packed with lengths (which refuses an all-empty batch: the loop runs that)
    fused = "fused" if lengths is None else "packed" if lengths.any() else "loop"
    runs = {k: lstm(xt, ws, hx, lengths=lengths, direction=direction, kernel=fused if k == "fused" else k)
            for k in ("loop", "fused", "auto")}
    named = named_leaves(ws, hx, xt)
    g_loop = grads(*runs["loop"], named, seed)
    for b in ("fused", "auto"):
        assert_runs_equal(runs[b], runs["loop"], msg=f"{b} vs loop")
        assert_grads_equal(grads(*runs[b], named, seed), g_loop, msg=f"{b} vs loop", **grad_tol(dtype))
    if lengths is not None:  # zeros past each sequence's end
        out = runs["fused"][0]
        for b_, n in enumerate(lengths):
            assert not out[n:, b_].any(), f"column {b_} past its length {n}"


@with_device
@given(sizes=lstm_sizes(), x=inputs(), data=st.data(), kernel=loop_or_auto)
def test_reverse_stack_reads_each_valid_prefix_backwards(device, sizes, x, data, kernel):
    """direction='reverse' == the forward stack on each column's reversed valid prefix, reversed back."""
    weights = data.draw(variant_weights(1, proj=0, peepholes=False), label="weights")
    lengths = data.draw(sequence_lengths(), label="lengths")
    ws = variant_weights_as_tensors(weights, torch.float64, device)
    xt = as_tensor(x, torch.float64, device)
    out, (h_n, c_n) = lstm(xt, ws, lengths=lengths, direction="reverse", kernel=kernel)
    for b, n in enumerate(lengths):
        if n == 0:
            assert not out[:, b].any() and not h_n[:, b].any()
            continue
        col = xt[:n, b:b + 1].flip(0)
        ref_out, (ref_h, ref_c) = lstm(col, ws, kernel="loop")
        assert_close(out[:n, b], ref_out[:, 0].flip(0), msg=f"column {b}")
        assert_close(h_n[:, b], ref_h[:, 0], msg=f"h_n column {b}")
        assert_close(c_n[:, b], ref_c[:, 0], msg=f"c_n column {b}")


# ----------------------------------------------------------------------------------------- gradcheck
VARIANT_KINDS = ("peepholes", "projection", "proj_clip", "cell_clip", "preact_clip", "input_forget", "activations",
                 "reverse", "bidirectional", "lengths")


@st.composite
def tiny_variant_problems(draw):
    """T <= 3, B <= 2, in, H <= 2, P <= 3, one or two layers; one or two variants at once."""
    kinds = draw(st.lists(st.sampled_from(VARIANT_KINDS), min_size=1, max_size=2, unique=True), label="variants")
    T, B = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    n_in, H, L = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    P = draw(st.integers(1, 3)) if {"projection", "proj_clip"} & set(kinds) else 0
    D = 2 if "bidirectional" in kinds else 1
    rng = np.random.default_rng(draw(seeds))
    u = lambda *shape: rng.uniform(-1, 1, shape)  # noqa: E731
    flat, layout = [], []
    for k in range(L):
        for _ in range(D):
            fan_in = n_in if k == 0 else D * (P or H)
            parts = [u(4 * H, fan_in), u(4 * H, P or H), u(4 * H), u(4 * H), u(P, H) if P else None,
                     u(3, H) if "peepholes" in kinds else None]
            layout.append([p is not None for p in parts])
            flat += [p for p in parts if p is not None]
    kw = {}
    if "proj_clip" in kinds:
        kw["proj_clip"] = 0.3
    if "cell_clip" in kinds:
        kw["cell_clip"] = 0.4
    if "preact_clip" in kinds:
        kw["preact_clip"] = 0.5
    if "input_forget" in kinds:
        kw["input_forget"] = True
    if "activations" in kinds:
        kw["activations"] = draw(st.sampled_from([("hard_sigmoid_keras3", "softsign", "tanh"),
                                                  (("LeakyRelu", 0.3), "Elu", "Softplus"),
                                                  (("HardSigmoid", 0.3, 0.4), ("ScaledTanh", 1.2, 0.7), "tanh")]))
    if D == 2:
        kw["direction"] = "bidirectional"
    elif "reverse" in kinds:
        kw["direction"] = "reverse"
    if "lengths" in kinds:
        kw["lengths"] = rng.integers(0, T + 1, B)
    note(f"variants {kinds}: T={T} B={B} in={n_in} H={H} P={P} L={L} options={kw}")
    return u(T, B, n_in), u(L * D, B, P or H), u(L * D, B, H), flat, layout, L, D, kw


@with_device
@given(prob=tiny_variant_problems())
def test_gradcheck_variant_loop(device, prob):
    x, h0, c0, flat, layout, L, D, kw = prob
    leaves = [as_tensor(a, torch.float64, device, True) for a in [x, h0, c0] + flat]

    def fn(x, h0, c0, *flat):
        it = iter(flat)
        dirs = [LayerWeights(*(next(it) if present else None for present in has)) for has in layout]
        ws = [dirs[k] if D == 1 else (dirs[2 * k], dirs[2 * k + 1]) for k in range(L)]
        out, (h_n, c_n) = lstm(x, ws, (h0, c0), kernel="loop", **kw)
        return out, h_n, c_n

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7, rtol=1e-5)


# ----------------------------------------------------------------------------------------- activations
GRID = np.linspace(-7.0, 7.0, 57)


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n[0].isupper()])
def test_onnx_named_activations_match_the_operator_list(name):
    alpha, beta = 0.7, 0.3
    takes = {"Affine": 2, "LeakyRelu": 1, "ThresholdedRelu": 1, "ScaledTanh": 2, "HardSigmoid": 2, "Elu": 1}.get(name, 0)
    spec = (name, alpha, beta)[:1 + takes] if takes else name
    (_, ref), = onnx_lstm.resolve_activations([name], [alpha] if takes else [], [beta] if takes == 2 else [])
    assert_close(activation(spec)(torch.tensor(GRID)), ref(GRID), msg=name)


@pytest.mark.parametrize("name,ref", [("sigmoid", keras_lstm.sigmoid), ("tanh", np.tanh),
                                      ("hard_sigmoid_keras2", keras_lstm.hard_sigmoid),
                                      ("hard_sigmoid_keras3", keras_lstm.hard_sigmoid_keras3),
                                      ("relu", lambda v: np.maximum(v, 0.0)), ("linear", lambda v: v),
                                      ("softsign", lambda v: v / (1 + np.abs(v))), ("softplus", lambda v: np.logaddexp(0, v)),
                                      ("caffe_tanh", np.tanh)])
def test_keras_and_caffe_named_activations(name, ref):
    assert_close(activation(name)(torch.tensor(GRID)), ref(GRID), msg=name)


def test_keras_hard_sigmoids_differ_and_plain_hard_sigmoid_is_refused():
    v = torch.tensor([-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0], dtype=torch.float64)
    k2, k3 = activation("hard_sigmoid_keras2")(v), activation("hard_sigmoid_keras3")(v)
    assert torch.equal(k2, torch.tensor([0.0, 0.0, 0.3, 0.5, 0.7, 1.0, 1.0], dtype=torch.float64))
    assert_close(k3, [0.0, 1 / 12, 1 / 3, 0.5, 2 / 3, 11 / 12, 1.0])
    with pytest.raises(ActivationError, match="hard_sigmoid_keras2"):
        activation("hard_sigmoid")
    with pytest.raises(ActivationError, match="needs"):
        activation("Affine")
    with pytest.raises(ActivationError, match="unknown activation"):
        activation("swish")


# -------------------------------------------------------------------------------------------- errors
def _variant_error_cases():
    T, B, n_in, H = 3, 2, 4, 5
    z = torch.zeros
    x = z(T, B, n_in)
    w = LayerWeights(z(4 * H, n_in), z(4 * H, H), z(4 * H), z(4 * H))
    w2 = LayerWeights(z(4 * H, H), z(4 * H, H))
    return {
        "pair without bidirectional": (lambda: lstm(x, [(w, w)]), LSTMShapeError, "direction='bidirectional'"),
        "bidirectional without pair": (lambda: lstm(x, [w], direction="bidirectional"), LSTMShapeError, "pair"),
        "direction": (lambda: lstm(x, [w], direction="backward"), ValueError, "direction"),
        "peephole shape": (lambda: lstm(x, [w._replace(peephole=z(4, H))]), LSTMShapeError, "layer 0 peephole"),
        "weight_hr shape": (lambda: lstm(x, [w._replace(weight_hr=z(3, H + 1))]), LSTMShapeError, "layer 0 weight_hr"),
        "weight_hh with projection": (lambda: lstm(x, [w._replace(weight_hr=z(3, H))]), LSTMShapeError,
                                      r"weight_hh has shape \[20, 5\]; expected \[4H, P\]"),
        "projection in some layers": (lambda: lstm(x, [w._replace(weight_hh=z(4 * H, 3), weight_hr=z(3, H)), w2]),
                                      LSTMShapeError, "layer 1 lacks a projection"),
        "peepholes in some layers": (lambda: lstm(x, [w._replace(peephole=z(3, H)), w2]), LSTMShapeError, "peephole"),
        "backward input size": (lambda: lstm(x, [(w, w), (w2, w2)], direction="bidirectional"), LSTMShapeError,
                                "layer 1 forward weight_ih"),
        "proj_clip without projection": (lambda: lstm(x, [w], proj_clip=1.0), ValueError, "proj_clip"),
        "cell_clip 0": (lambda: lstm(x, [w], cell_clip=0.0), ValueError, "cell_clip must be > 0"),
        "cont reverse": (lambda: lstm(x, [w], cont=torch.ones(T, B), direction="reverse"), ValueError, "forward only"),
        "lengths and mask": (lambda: lstm(x, [w], lengths=[1, 2], mask=torch.ones(T, B)), ValueError, "lengths"),
        "lengths shape": (lambda: lstm(x, [w], lengths=[1, 2, 3]), LSTMShapeError, r"lengths has shape \[3\]"),
        "lengths range": (lambda: lstm(x, [w], lengths=[1, 4]), LSTMShapeError, r"\[0, T=3\]"),
        "lengths float": (lambda: lstm(x, [w], lengths=torch.tensor([1.0, 2.0])), LSTMShapeError, "integers"),
        "h0 projection": (lambda: lstm(x, [w._replace(weight_hh=z(4 * H, 3), weight_hr=z(3, H))],
                                       (z(1, B, H), z(1, B, H))), LSTMShapeError, r"h0 has shape \[1, 2, 5\]"),
        "activations and tanh": (lambda: lstm(x, [w], activations=("sigmoid", "tanh", "relu"), tanh=torch.tanh),
                                 ValueError, "not both"),
        "activations arity": (lambda: lstm(x, [w], activations=("sigmoid", "tanh")), ActivationError, "triple"),
        "fused peepholes": (lambda: lstm(x, [w._replace(peephole=z(3, H))], kernel="fused"), ValueError, "fused"),
        "fused wide projection": (lambda: lstm(x, [w._replace(weight_hh=z(4 * H, 6), weight_hr=z(6, H))],
                                               kernel="fused"), ValueError, "fused"),
        "packed with lengths": (lambda: lstm(pack_padded_sequence(x, [3, 2]), [w], lengths=[3, 2]), ValueError,
                                "PackedSequence"),
        "module semantics": (lambda: LSTM(2, 3, cell_clipping=1.0), TypeError, "cell_clip"),
        "module proj_clip": (lambda: LSTM(2, 3, proj_clip=1.0), ValueError, "proj_size"),
        "module direction": (lambda: LSTM(2, 3, bidirectional=True, direction="reverse"), ValueError, "direction"),
    }


VARIANT_ERROR_CASES = _variant_error_cases()


@pytest.mark.parametrize("case", sorted(VARIANT_ERROR_CASES))
def test_variant_errors_name_the_problem(case):
    call, exc, match = VARIANT_ERROR_CASES[case]
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------------------------------- module
@with_device
@given(sizes=lstm_sizes(), x=inputs(), data=st.data(), batch_first=st.booleans(), dtype=dtypes)
def test_module_with_projection_and_both_directions_interchanges_with_torch_nn_lstm(device, sizes, x, data,
                                                                                     batch_first, dtype):
    bidirectional = data.draw(st.booleans(), label="bidirectional")
    proj = data.draw(projection_sizes(narrower=True), label="proj")
    torch.manual_seed(data.draw(st.integers(0, 1000), label="torch seed"))
    args = (sizes.input_size, sizes.hidden_size, sizes.num_layers)
    kw = dict(batch_first=batch_first, proj_size=proj, bidirectional=bidirectional)
    theirs = torch.nn.LSTM(*args, **kw).to(device, dtype)
    ours = LSTM(*args, **kw, device=device, dtype=dtype)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    xt = as_tensor(x, dtype, device)
    inp = xt.transpose(0, 1) if batch_first else xt
    assert_runs_equal(ours(inp), theirs(inp), msg="nn.LSTM weights in LSTM")
    direction = "bidirectional" if bidirectional else "forward"
    assert_runs_equal(lstm(inp, weights_from_torch(theirs), batch_first=batch_first, direction=direction),
                      theirs(inp), msg="weights_from_torch")


def test_module_peepholes_clips_and_reverse_run_the_functional_core():
    torch.manual_seed(0)
    mod = LSTM(3, 4, 2, proj_size=5, peepholes=True, cell_clip=0.5, proj_clip=0.7, direction="reverse",
               activations=("hard_sigmoid_keras2", "tanh", "tanh")).double()
    names = [n for n, _ in mod.named_parameters()]
    assert names[:6] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0", "peephole_l0"]
    assert mod.peephole_l0.shape == (3, 4) and mod.weight_hh_l1.shape == (16, 5) and mod.weight_ih_l1.shape == (16, 5)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 3])
    expected = lstm(x, mod.layer_weights(), lengths=lengths, direction="reverse", cell_clip=0.5, proj_clip=0.7,
                    activations=("hard_sigmoid_keras2", "tanh", "tanh"), kernel="loop")
    assert_runs_equal(mod(x, lengths=lengths), expected, msg="module")
    assert mod(x)[0].abs().max() <= 0.7
    assert "peepholes=True" in repr(mod) and "direction='reverse'" in repr(mod) and "cell_clip=0.5" in repr(mod)


@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_packed_sequence_through_the_step_loop_keeps_the_packing(enforce_sorted, direction):
    """A variant the fused kernel lacks (peepholes) on a PackedSequence: same packing back, zeros never leak."""
    torch.manual_seed(1)
    H = 3

    def layer():
        return LayerWeights(torch.randn(4 * H, 2, dtype=torch.float64), torch.randn(4 * H, H, dtype=torch.float64),
                            peephole=torch.randn(3, H, dtype=torch.float64))

    weights = [(layer(), layer())] if direction == "bidirectional" else [layer()]
    x = torch.randn(5, 3, 2, dtype=torch.float64)
    lengths = torch.tensor([5, 3, 2] if enforce_sorted else [2, 5, 3])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    D = 2 if direction == "bidirectional" else 1
    hx = (torch.randn(D, 3, H, dtype=torch.float64), torch.randn(D, 3, H, dtype=torch.float64))
    out, (h_n, c_n) = lstm(packed, weights, hx, direction=direction)
    padded, (h_p, c_p) = lstm(x, weights, hx, lengths=lengths, kernel="loop", direction=direction)
    expected = pack_padded_sequence(padded, lengths, enforce_sorted=enforce_sorted)
    assert torch.equal(out.batch_sizes, packed.batch_sizes)
    assert (out.unsorted_indices is None) == enforce_sorted
    assert_close(out.data, expected.data)
    assert_close(h_n, h_p)
    assert_close(c_n, c_p)


@pytest.mark.parametrize("kernel", ["auto", "loop"])
def test_dropout_placement_with_both_directions(kernel):
    """'output': each layer's concatenated output is dropped, states are not; 'between' leaves the last one."""
    torch.manual_seed(2)
    H, p = 8, 0.25

    def layer(n_in):
        return LayerWeights(*(0.3 * torch.randn(s, dtype=torch.float64) for s in [(4 * H, n_in), (4 * H, H), (4 * H,)]))

    ws = [(layer(4), layer(4)), (layer(2 * H), layer(2 * H))]
    x = torch.randn(6, 16, 4, dtype=torch.float64)
    ref_out, (ref_h, ref_c) = lstm(x, ws, direction="bidirectional", kernel=kernel)
    out, (h_n, c_n) = lstm(x, ws, direction="bidirectional", dropout=p, dropout_placement="output", training=True,
                           kernel=kernel)
    dropped = out == 0
    assert 0.15 < dropped.double().mean().item() < 0.35
    assert torch.equal(h_n[:2], ref_h[:2]) and torch.equal(c_n[:2], ref_c[:2]), "layer 0's states are not dropped"
    assert not torch.allclose(h_n[2:], ref_h[2:]), "layer 1 reads layer 0's dropped output"
    out, (h_n, _) = lstm(x, ws, direction="bidirectional", dropout=p, dropout_placement="between", training=True,
                         kernel=kernel)
    assert (out != 0).all()
    assert_close(out[-1, :, :H], h_n[2], msg="the last layer's output is its state, undropped")
