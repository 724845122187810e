"""Numpy float64 oracle of Keras's ``GRU``, ``SimpleRNN`` and ``CuDNNGRU`` layers (Keras 1, 2, 3, tf.keras).

Written from keras-team/keras ``keras/layers/recurrent.py`` (1.x ``GRU.step``, ``SimpleRNN.step``; 2.x
``GRUCell.call``, ``SimpleRNNCell.call``), ``keras/layers/cudnn_recurrent.py`` (2.x ``CuDNNGRU``), Keras 3
``keras/src/layers/rnn/gru.py`` / ``simple_rnn.py`` and tf-keras ``tf_keras/layers/rnn/gru.py``; the
masking and ``go_backwards`` rules are the LSTM's (``reference/keras_lstm.py``, the same ``K.rnn``).
Imports nothing from the project except the shared activations of ``reference/keras_lstm.py``.

Keras GRU weights, gate columns in the order z (update), r (reset), h (candidate)::

    kernel [in, 3H]   recurrent_kernel [H, 3H]
    bias [3H]            reset_after=False (Keras 1 and 2's default): one bias
    bias [2, 3H]         reset_after=True (tf.keras 2 and Keras 3's default): [input bias, recurrent bias]

    x_z, x_r, x_h = x_t @ kernel + b_in                     (split in three)
    reset_after=False:  z = rec_act(x_z + h @ U_z)   r = rec_act(x_r + h @ U_r)
                        hh = act(x_h + (r * h) @ U_h)                  # reset BEFORE the product
    reset_after=True:   m = h @ recurrent_kernel + b_rec   (m_z, m_r, m_h)
                        z = rec_act(x_z + m_z)   r = rec_act(x_r + m_r)
                        hh = act(x_h + r * m_h)                        # reset AFTER the product
    h' = z * h + (1 - z) * hh

Keras 1 (``consume_less`` "cpu" / "mem") stores nine per-gate tensors, ``GRU.build``'s
``trainable_weights``: ``W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h`` (:func:`keras1_gru_weights` fuses
them in the order z, r, h); with ``consume_less="gpu"`` it stores the fused ``W [in, 3H], U [H, 3H],
b [3H]`` already. Keras 1's step is the reset-before GRU above.

``CuDNNGRU`` (Keras 2 ``cudnn_recurrent.py``): ``kernel`` and ``recurrent_kernel`` as the GRU, ``bias [6H]``
= the input bias then the recurrent bias (each z, r, h), sigmoid / tanh, reset after the product: the
reset-after GRU above with ``bias.reshape(2, 3H)`` (``_process_batch`` hands cuDNN the blocks r, z, h of
each; the arithmetic is cuDNN's, ``reference/cudnn_params.py``).

``SimpleRNN``: ``kernel [in, H]``, ``recurrent_kernel [H, H]``, ``bias [H]``; ``h' = act(x_t @ kernel + b +
h @ recurrent_kernel)``; Keras 1 names them ``W, U, b``.

``recurrent_activation``'s default: ``hard_sigmoid`` in Keras 1 (``inner_activation``) and 2 before 2.3,
``sigmoid`` after; ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)`` in Keras 1/2 and tf.keras,
``relu6(x + 3) / 6`` in Keras 3 (``"hard_sigmoid_keras3"``). ``dropout`` and ``recurrent_dropout`` act in
training only (``GRUCell.call``: the masks are drawn when ``training``): at inference they change nothing.

Keras tensors are batch-major: x [B, T, in], outputs [B, T, H].
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from reference.keras_lstm import MASKED_OUTPUTS, MERGE_MODES, Activation, _activation, unrolled_zeros


def keras1_gru_weights(weights: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras 1's nine ``W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h`` as (kernel, recurrent_kernel, bias)."""
    if len(weights) != 9:
        raise ValueError(f"Keras 1's GRU has 9 per-gate weights; got {len(weights)}")
    w = [np.asarray(a, dtype=np.float64) for a in weights]
    return (np.concatenate([w[0], w[3], w[6]], axis=1), np.concatenate([w[1], w[4], w[7]], axis=1),
            np.concatenate([w[2], w[5], w[8]]))


def gru_cell(x_t, h, kernel, recurrent_kernel, bias=None, *, reset_after: bool,
             recurrent_activation: Activation = "sigmoid", activation: Activation = "tanh") -> np.ndarray:
    """One ``GRUCell.call`` step: (x_t [B, in], h [B, H]) -> h'."""
    H = recurrent_kernel.shape[0]
    rec_act, act = _activation(recurrent_activation), _activation(activation)
    if bias is None:
        b_in, b_rec = 0.0, 0.0
    elif reset_after:
        b_in, b_rec = bias[0], bias[1]
    else:
        b_in, b_rec = bias, 0.0
    xz = x_t @ kernel + b_in
    x_z, x_r, x_h = xz[:, :H], xz[:, H:2 * H], xz[:, 2 * H:]
    if reset_after:
        m = h @ recurrent_kernel + b_rec
        z = rec_act(x_z + m[:, :H])
        r = rec_act(x_r + m[:, H:2 * H])
        hh = act(x_h + r * m[:, 2 * H:])
    else:
        z = rec_act(x_z + h @ recurrent_kernel[:, :H])
        r = rec_act(x_r + h @ recurrent_kernel[:, H:2 * H])
        hh = act(x_h + (r * h) @ recurrent_kernel[:, 2 * H:])
    return z * h + (1.0 - z) * hh


def simple_rnn_cell(x_t, h, kernel, recurrent_kernel, bias=None, *, activation: Activation = "tanh") -> np.ndarray:
    """One ``SimpleRNNCell.call`` step."""
    z = x_t @ kernel + h @ recurrent_kernel
    if bias is not None:
        z = z + bias
    return _activation(activation)(z)


def _run(step, x, h0, hidden, mask, go_backwards, masked_output):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x has shape {list(x.shape)}; expected [B, T, in]")
    B, T, _ = x.shape
    h = np.zeros((B, hidden)) if h0 is None else np.asarray(h0, dtype=np.float64)
    if masked_output not in MASKED_OUTPUTS:
        raise ValueError(f"masked_output must be one of {MASKED_OUTPUTS}; got {masked_output!r}")
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != (B, T):
            raise ValueError(f"mask has shape {list(mask.shape)}; expected [B, T] = {[B, T]}")
    given = mask
    if go_backwards:   # K.rnn: inputs (and mask) reversed in time, outputs returned in that order
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    out = np.empty((B, T, hidden))
    prev_output = np.zeros((B, hidden))
    for t in range(T):
        h_new = step(x[:, t], h)
        y = h_new
        if mask is not None:
            keep = mask[:, t][:, None]
            masked = {"previous_h": h, "previous_output": prev_output, "zeros": np.zeros_like(h),
                      "zeros_unrolled": prev_output}[masked_output]
            y = np.where(keep, h_new, masked)
            h_new = np.where(keep, h_new, h)
        h = h_new
        out[:, t] = y
        prev_output = y
    if masked_output == "zeros_unrolled" and given is not None:   # keras_lstm.unrolled_zeros
        out = unrolled_zeros(out, given)
    return out, h


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def gru_layer(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
              recurrent_activation: Activation = "sigmoid", activation: Activation = "tanh", *, reset_after: bool,
              go_backwards: bool = False, masked_output: str = "previous_output") -> Tuple[np.ndarray, np.ndarray]:
    """``GRU(return_sequences=True, return_state=True)`` on x [B, T, in]: (outputs [B, T, H], h_T [B, H]).

    ``bias``: [3H] (reset_after=False), [2, 3H] (reset_after=True; a flat [6H] is reshaped), or None."""
    kernel, recurrent_kernel, bias = _f64(kernel), _f64(recurrent_kernel), _f64(bias)
    H = recurrent_kernel.shape[0]
    if recurrent_kernel.shape != (H, 3 * H) or kernel.shape[1] != 3 * H:
        raise ValueError(f"kernel {list(kernel.shape)} / recurrent_kernel {list(recurrent_kernel.shape)}: "
                         "expected [in, 3H] / [H, 3H]")
    if bias is not None:
        if reset_after:
            bias = bias.reshape(2, 3 * H)
        elif bias.shape != (3 * H,):
            raise ValueError(f"a reset-before GRU's bias has shape [3H]; got {list(bias.shape)}")
    step = lambda x_t, h: gru_cell(x_t, h, kernel, recurrent_kernel, bias, reset_after=reset_after,  # noqa: E731
                                   recurrent_activation=recurrent_activation, activation=activation)
    return _run(step, x, initial_state, H, mask, go_backwards, masked_output)


def cudnn_gru_layer(x, kernel, recurrent_kernel, bias, initial_state=None, *, go_backwards: bool = False):
    """``CuDNNGRU(return_sequences=True, return_state=True)``: ``bias [6H]`` = input | recurrent; sigmoid /
    tanh, reset after the product. Returns (outputs, h_T)."""
    H = np.asarray(recurrent_kernel).shape[0]
    bias = _f64(bias)
    if bias.shape != (6 * H,):
        raise ValueError(f"a CuDNNGRU bias has shape [6H] = [{6 * H}]; got {list(bias.shape)}")
    return gru_layer(x, kernel, recurrent_kernel, bias.reshape(2, 3 * H), initial_state, reset_after=True,
                     go_backwards=go_backwards)


def simple_rnn_layer(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
                     activation: Activation = "tanh", *, go_backwards: bool = False,
                     masked_output: str = "previous_output") -> Tuple[np.ndarray, np.ndarray]:
    """``SimpleRNN(return_sequences=True, return_state=True)`` on x [B, T, in]: (outputs, h_T)."""
    kernel, recurrent_kernel, bias = _f64(kernel), _f64(recurrent_kernel), _f64(bias)
    H = recurrent_kernel.shape[0]
    if recurrent_kernel.shape != (H, H) or kernel.shape[1] != H:
        raise ValueError(f"kernel {list(kernel.shape)} / recurrent_kernel {list(recurrent_kernel.shape)}: "
                         "expected [in, H] / [H, H]")
    step = lambda x_t, h: simple_rnn_cell(x_t, h, kernel, recurrent_kernel, bias, activation=activation)  # noqa
    return _run(step, x, initial_state, H, mask, go_backwards, masked_output)


def bidirectional(layer, x, forward: dict, backward: dict, initial_state=None, mask=None, *,
                  merge_mode: Optional[str] = "concat", masked_output: str = "zeros", **settings):
    """``Bidirectional(layer(...), merge_mode=...)`` with ``layer`` one of :func:`gru_layer`,
    :func:`simple_rnn_layer`, :func:`cudnn_gru_layer` (keras/layers/wrappers.py ``Bidirectional.call``: the
    backward copy reads back to front, its outputs reversed back). ``forward`` / ``backward``: the layers'
    ``{"kernel", "recurrent_kernel", "bias"}``; ``initial_state``: ``(h_fw, h_bw)``. Returns
    ``(outputs, h_fw, h_bw)``."""
    if merge_mode not in MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {MERGE_MODES}; got {merge_mode!r}")
    h_fw0, h_bw0 = (None, None) if initial_state is None else initial_state
    if layer is cudnn_gru_layer:
        if mask is not None:
            raise ValueError("CuDNNGRU takes no mask")
        y, h_fw = layer(x, forward["kernel"], forward["recurrent_kernel"], forward["bias"], h_fw0)
        y_rev, h_bw = layer(x, backward["kernel"], backward["recurrent_kernel"], backward["bias"], h_bw0,
                            go_backwards=True)
    else:
        y, h_fw = layer(x, forward["kernel"], forward["recurrent_kernel"], forward.get("bias"), h_fw0, mask,
                        masked_output=masked_output, **settings)
        y_rev, h_bw = layer(x, backward["kernel"], backward["recurrent_kernel"], backward.get("bias"), h_bw0, mask,
                            go_backwards=True, masked_output=masked_output, **settings)
    y_bw = y_rev[:, ::-1]
    merged = {"concat": lambda: np.concatenate([y, y_bw], axis=2), "sum": lambda: y + y_bw,
              "mul": lambda: y * y_bw, "ave": lambda: (y + y_bw) / 2, None: lambda: (y, y_bw)}[merge_mode]()
    return merged, h_fw, h_bw


def training_layer(family: str, x, kernel, recurrent_kernel, bias=None, input_masks=None, recurrent_masks=None, *,
                   reset_after: bool = False, recurrent_activation: Activation = "sigmoid",
                   activation: Activation = "tanh", go_backwards: bool = False,
                   update_uses_dropped_h: bool = False, initial_state=None, mask=None,
                   masked_output: str = "previous_output") -> Tuple[np.ndarray, list]:
    """A Keras ``LSTM`` / ``GRU`` / ``SimpleRNN`` called with ``training=True`` and its dropout masks given
    (``family`` "lstm", "gru", "rnn"), Keras's weights and gate order (LSTM i, f, c, o; GRU z, r, h).

    ``input_masks``: a list of one ``[B, in]`` mask per gate, as ``LSTMCell.call`` (implementation 1:
    ``inputs_i = inputs * dp_mask[0]``, ...) reads them; a mask of shape ``[B, T, in]`` multiplies the whole input
    once (tf-keras ``LSTM.call``'s fused path: ``inputs = inputs * dropout_mask[0]``). ``recurrent_masks``: one
    ``[B, H]`` mask per gate on ``h_tm1`` (``h_tm1_i = h_tm1 * rec_dp_mask[0]``, ...). A layer that reads one mask
    for every gate (implementation 2, Keras 1 ``consume_less="gpu"``) is the list of that mask repeated.
    ``update_uses_dropped_h``: Keras 2.0-2.3 ``GRUCell.call`` (implementation 2) mixes ``h = z * h_tm1 + (1 - z) *
    hh`` with the dropped-out ``h_tm1`` (``h_tm1 *= rec_dp_mask[0]``: the mask of z, the first gate).
    ``initial_state``: ``[h0, c0]`` (LSTM) or ``h0`` [B, H]; zeros when None. ``mask`` [B, T] and
    ``masked_output``: ``K.rnn``'s mask, as :func:`gru_layer` (at a masked step every state carries its previous
    value; the output is the previous output, the previous h or zeros). Returns ``(outputs [B, T, H], final
    states [h] or [h, c])``."""
    x = np.asarray(x, dtype=np.float64)
    kernel, recurrent_kernel, bias = _f64(kernel), _f64(recurrent_kernel), _f64(bias)
    H = recurrent_kernel.shape[0]
    G = {"lstm": 4, "gru": 3, "rnn": 1}[family]
    if masked_output not in MASKED_OUTPUTS:
        raise ValueError(f"masked_output must be one of {MASKED_OUTPUTS}; got {masked_output!r}")
    if input_masks is not None and np.asarray(input_masks[0]).ndim == 3:
        x = x * np.asarray(input_masks[0], dtype=np.float64)
        input_masks = None
    B, T, _ = x.shape
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != (B, T):
            raise ValueError(f"mask has shape {list(mask.shape)}; expected [B, T] = {[B, T]}")
    given = mask
    if go_backwards:   # K.rnn: inputs (and mask) reversed in time, outputs returned in that order
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    rec_act, act = _activation(recurrent_activation), _activation(activation)
    ones_in, ones_h = [1.0] * G, [1.0] * G
    im = ones_in if input_masks is None else [np.asarray(m, dtype=np.float64) for m in input_masks]
    rm = ones_h if recurrent_masks is None else [np.asarray(m, dtype=np.float64) for m in recurrent_masks]
    if family == "gru" and reset_after and bias is not None:
        b_in, b_rec = bias.reshape(2, 3 * H)
    else:
        b_in, b_rec = (bias if bias is not None else np.zeros(G * H)), np.zeros(G * H)
    K = [kernel[:, k * H:(k + 1) * H] for k in range(G)]
    U = [recurrent_kernel[:, k * H:(k + 1) * H] for k in range(G)]
    bi = [b_in[k * H:(k + 1) * H] for k in range(G)]
    br = [b_rec[k * H:(k + 1) * H] for k in range(G)]
    if initial_state is None:
        h, c = np.zeros((B, H)), np.zeros((B, H))
    elif family == "lstm":
        h, c = (np.asarray(s, dtype=np.float64) for s in initial_state)
    else:
        h, c = np.asarray(initial_state, dtype=np.float64), np.zeros((B, H))
    out = np.empty((B, T, H))
    prev_output = np.zeros((B, H))
    for t in range(T):
        xs = [(x[:, t] * im[k]) @ K[k] + bi[k] for k in range(G)]
        hs = [h * rm[k] for k in range(G)]
        c_new = c
        if family == "lstm":
            i, f = rec_act(xs[0] + hs[0] @ U[0]), rec_act(xs[1] + hs[1] @ U[1])
            c_new = f * c + i * act(xs[2] + hs[2] @ U[2])
            h_new = rec_act(xs[3] + hs[3] @ U[3]) * act(c_new)
        elif family == "gru":
            z = rec_act(xs[0] + hs[0] @ U[0] + br[0])
            r = rec_act(xs[1] + hs[1] @ U[1] + br[1])
            hh = act(xs[2] + (r * (hs[2] @ U[2] + br[2]) if reset_after else (r * hs[2]) @ U[2]))
            h_new = z * (hs[0] if update_uses_dropped_h else h) + (1.0 - z) * hh
        else:
            h_new = act(xs[0] + hs[0] @ U[0])
        y = h_new
        if mask is not None:  # K.rnn: the states and the output where the mask is off
            keep = mask[:, t][:, None]
            y = np.where(keep, h_new, {"previous_h": h, "previous_output": prev_output,
                                       "zeros": np.zeros_like(h), "zeros_unrolled": prev_output}[masked_output])
            h_new, c_new = np.where(keep, h_new, h), np.where(keep, c_new, c)
        h, c = h_new, c_new
        out[:, t] = y
        prev_output = y
    if masked_output == "zeros_unrolled" and given is not None:   # keras_lstm.unrolled_zeros
        out = unrolled_zeros(out, given)
    return out, ([h, c] if family == "lstm" else [h])
