"""The GRU and simple-RNN oracles (reference/keras_rnn.py, reference/cudnn_params.py, reference/caffe_rnn.py)
against torch.nn.GRU / torch.nn.RNN, a separately written implementation of the reset-after GRU and the
simple RNN, and against each other where the frameworks' semantics coincide; the reset-before GRU differs."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from reference import caffe_rnn, cudnn_params, keras_rnn
from tests.tolerances import assert_close

SIZES = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31))


def _torch_gru_from_keras(kernel, recurrent_kernel, bias):
    """torch.nn.GRU's parameters from Keras's reset-after weights: gates z, r, h -> r, z, n, transposed."""
    H = recurrent_kernel.shape[0]
    perm = np.concatenate([np.arange(H, 2 * H), np.arange(H), np.arange(2 * H, 3 * H)])
    m = torch.nn.GRU(kernel.shape[0], H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(kernel.T[perm]))
        m.weight_hh_l0.copy_(torch.from_numpy(recurrent_kernel.T[perm]))
        m.bias_ih_l0.copy_(torch.from_numpy(bias[0][perm]))
        m.bias_hh_l0.copy_(torch.from_numpy(bias[1][perm]))
    return m


@settings(max_examples=25, deadline=None)
@given(SIZES)
def test_keras_reset_after_gru_is_torch_gru(sizes):
    B, T, n_in, H, seed = sizes
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (B, T, n_in))
    k, rk, b = rng.normal(size=(n_in, 3 * H)), rng.normal(size=(H, 3 * H)), rng.normal(size=(2, 3 * H))
    h0 = rng.uniform(-1, 1, (B, H))
    y, h = keras_rnn.gru_layer(x, k, rk, b, h0, reset_after=True)
    with torch.no_grad():
        ty, th = _torch_gru_from_keras(k, rk, b)(torch.from_numpy(x), torch.from_numpy(h0)[None])
    assert_close(y, ty, dtype=torch.float64)
    assert_close(h, th[0], dtype=torch.float64)
    # the reset-before GRU with the same numbers is another function (the pitfall); one bias: b_in + b_rec would
    # not make them equal either, the reset multiplies R_h h + b_rh in one and not in the other
    y_before, _ = keras_rnn.gru_layer(x, k, rk, b[0] + b[1], h0, reset_after=False)
    assert np.max(np.abs(y_before - y)) > 1e-6


@settings(max_examples=25, deadline=None)
@given(SIZES)
def test_keras1_per_gate_weights_and_cudnn_gru(sizes):
    B, T, n_in, H, seed = sizes
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (B, T, n_in))
    nine = [rng.normal(size=s) for _ in range(3) for s in ((n_in, H), (H, H), (H,))]
    k, rk, b = keras_rnn.keras1_gru_weights(nine)
    assert np.array_equal(k[:, H:2 * H], nine[3]) and np.array_equal(rk[:, 2 * H:], nine[7])
    assert np.array_equal(b[:H], nine[2])
    # CuDNNGRU's [6H] bias is the reset-after GRU's [2, 3H]
    b6 = rng.normal(size=6 * H)
    y1, h1 = keras_rnn.cudnn_gru_layer(x, k, rk, b6)
    y2, h2 = keras_rnn.gru_layer(x, k, rk, b6.reshape(2, 3 * H), reset_after=True)
    assert np.array_equal(y1, y2) and np.array_equal(h1, h2)


@settings(max_examples=25, deadline=None)
@given(SIZES, st.sampled_from(["tanh", "relu"]))
def test_simple_rnn_is_torch_rnn(sizes, act):
    B, T, n_in, H, seed = sizes
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (B, T, n_in))
    k, rk, b = rng.normal(size=(n_in, H)), rng.normal(size=(H, H)), rng.normal(size=H)
    y, h = keras_rnn.simple_rnn_layer(x, k, rk, b, activation=act)
    m = torch.nn.RNN(n_in, H, nonlinearity=act, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(k.T))
        m.weight_hh_l0.copy_(torch.from_numpy(rk.T))
        m.bias_ih_l0.copy_(torch.from_numpy(b))
        m.bias_hh_l0.zero_()
        ty, th = m(torch.from_numpy(x))
    assert_close(y, ty, dtype=torch.float64)
    assert_close(h, th[0], dtype=torch.float64)


@settings(max_examples=20, deadline=None)
@given(SIZES, st.integers(1, 3), st.booleans(), st.sampled_from(["gru", "rnn_tanh", "rnn_relu"]))
def test_cudnn_buffer_is_torch(sizes, layers, bidirectional, mode):
    """cuDNN's buffer, gates r, u, h per (layer, direction), against torch's GRU / RNN (cuDNN's own semantics)."""
    B, T, n_in, H, seed = sizes
    rng = np.random.default_rng(seed)
    shapes = cudnn_params.param_shapes(mode, n_in, H, layers, bidirectional)
    buf = rng.normal(size=sum(int(np.prod(s)) for _, s in shapes))
    params = cudnn_params.unpack(buf, mode, n_in, H, layers, bidirectional)
    D = 2 if bidirectional else 1
    x, h0 = rng.uniform(-1, 1, (T, B, n_in)), rng.uniform(-1, 1, (layers * D, B, H))
    y, h = cudnn_params.run(mode, params, x, h0, layers, bidirectional)
    G = cudnn_params.GATES[mode]
    if mode == "gru":
        m = torch.nn.GRU(n_in, H, layers, bidirectional=bidirectional, dtype=torch.float64)
    else:
        m = torch.nn.RNN(n_in, H, layers, nonlinearity=mode[4:], bidirectional=bidirectional, dtype=torch.float64)
    with torch.no_grad():
        for k in range(layers):
            for d in range(D):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                # torch's gate rows r, z, n are cuDNN's r, u, h: the same order
                for kind, name in (("W", "weight_ih"), ("R", "weight_hh"), ("bW", "bias_ih"), ("bR", "bias_hh")):
                    getattr(m, name + sfx).copy_(torch.from_numpy(np.concatenate([params[(kind, k, d, g)]
                                                                                  for g in range(G)])))
        ty, th = m(torch.from_numpy(x), torch.from_numpy(h0))
    assert_close(y, ty, dtype=torch.float64)
    assert_close(h, th, dtype=torch.float64)


def test_caffe_rnn_output_and_cont():
    """BVLC's RNN layer outputs o = tanh(W_ho h + b_o), and cont = 0 restarts from a zero state: checked
    against the same recurrence written out by hand and against torch.nn.RNN for the hidden state."""
    rng = np.random.default_rng(3)
    T, N, n_in, H = 5, 2, 3, 4
    blobs = [rng.normal(size=s) for s in ((H, n_in), (H,), (H, H), (H, H), (H,))]
    x = rng.uniform(-1, 1, (T, N, n_in))
    cont = np.ones((T, N))
    cont[0] = 0
    cont[3, 1] = 0
    o, h = caffe_rnn.rnn_layer(x, cont, blobs)
    m = torch.nn.RNN(n_in, H, dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(blobs[0]))
        m.bias_ih_l0.copy_(torch.from_numpy(blobs[1]))
        m.weight_hh_l0.copy_(torch.from_numpy(blobs[2]))
        m.bias_hh_l0.zero_()
        hs, _ = m(torch.from_numpy(x[:3]))                          # steps 0..2: no reset after the first
        hs2, _ = m(torch.from_numpy(x[3:, :1]), hs[-1:, :1])         # stream 0 carries on
        hs3, _ = m(torch.from_numpy(x[3:, 1:]))                      # stream 1 restarts at step 3
    want_h = torch.cat([hs, torch.cat([hs2, hs3], 1)]).numpy()
    want_o = np.tanh(want_h @ blobs[3].T + blobs[4])
    assert_close(o, want_o, dtype=torch.float64)
    assert_close(h, want_h[-1], dtype=torch.float64)


@settings(max_examples=20, deadline=None)
@given(family=st.sampled_from(["lstm", "gru_after", "gru_before", "rnn"]), sizes=SIZES,
       masked_output=st.sampled_from(keras_rnn.MASKED_OUTPUTS), go_backwards=st.booleans())
def test_the_training_oracle_without_masks_is_the_inference_oracle_with_the_keras_mask_and_state(
        family, sizes, masked_output, go_backwards):
    """keras_rnn.training_layer's ``mask`` / ``initial_state`` (K.rnn) with no dropout masks against the inference
    oracles written apart: keras_lstm.lstm_layer, keras_rnn.gru_layer, keras_rnn.simple_rnn_layer."""
    from reference import keras_lstm

    B, T, n_in, H, seed = sizes
    rng = np.random.default_rng(seed)
    G = {"lstm": 4, "gru_after": 3, "gru_before": 3, "rnn": 1}[family]
    x = rng.uniform(-1, 1, (B, T, n_in))
    kernel, recurrent_kernel = rng.uniform(-1, 1, (n_in, G * H)), rng.uniform(-1, 1, (H, G * H))
    bias = rng.uniform(-1, 1, (2, 3 * H) if family == "gru_after" else (G * H,))
    mask = rng.integers(0, 2, (B, T))
    h0, c0 = rng.uniform(-1, 1, (B, H)), rng.uniform(-1, 1, (B, H))
    kw = dict(mask=mask, go_backwards=go_backwards, masked_output=masked_output)
    if family == "lstm":
        want, h, c = keras_lstm.lstm_layer(x, kernel, recurrent_kernel, bias, (h0, c0), **kw)
        finals, state = [h, c], [h0, c0]
    elif family == "rnn":
        want, h = keras_rnn.simple_rnn_layer(x, kernel, recurrent_kernel, bias, h0, **kw)
        finals, state = [h], h0
    else:
        want, h = keras_rnn.gru_layer(x, kernel, recurrent_kernel, bias, h0, reset_after=family == "gru_after", **kw)
        finals, state = [h], h0
    got, got_finals = keras_rnn.training_layer(family.split("_")[0], x, kernel, recurrent_kernel, bias,
                                               reset_after=family == "gru_after", initial_state=state, **kw)
    assert_close(got, want, dtype=torch.float64)
    for a, b in zip(got_finals, finals):
        assert_close(a, b, dtype=torch.float64)


def test_the_unrolled_zero_outputs_use_the_mask_not_reversed_for_go_backwards():
    """tf_keras/src/backend.py ``rnn``, ``unroll=True``, ``zero_output_for_mask``, derived by hand on a linear
    SimpleRNN whose output is its input (kernel 1, recurrent kernel 0): x = 1, 2, 3, 4 with the mask 0, 1, 0, 1,
    read backwards. The loop reads 4 (kept), 3 (masked: the previous output 4), 2, 1 (masked: 2): 4, 4, 2, 2 in
    reading order; then ``tf.where(mask, outputs, 0)`` with the mask as given zeroes reading steps 0 and 2:
    0, 4, 0, 2. The while loop (``"zeros"``) zeroes the masked steps themselves: 4, 0, 2, 0."""
    x = np.array([1.0, 2.0, 3.0, 4.0])[None, :, None]
    one, zero = np.ones((1, 1)), np.zeros((1, 1))
    mask = np.array([[0, 1, 0, 1]])
    run = dict(mask=mask, go_backwards=True, activation="linear")
    y, h = keras_rnn.simple_rnn_layer(x, one, zero, None, None, masked_output="zeros_unrolled", **run)
    assert y[0, :, 0].tolist() == [0.0, 4.0, 0.0, 2.0] and h.tolist() == [[2.0]]
    y, _ = keras_rnn.simple_rnn_layer(x, one, zero, None, None, masked_output="zeros", **run)
    assert y[0, :, 0].tolist() == [4.0, 0.0, 2.0, 0.0]
    y, _ = keras_rnn.simple_rnn_layer(x, one, zero, None, None, mask=mask, activation="linear",
                                      masked_output="zeros_unrolled")   # reading forwards: the same as "zeros"
    assert y[0, :, 0].tolist() == [0.0, 2.0, 0.0, 4.0]
