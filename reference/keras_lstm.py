"""Numpy float64 oracle of one Keras ``LSTM`` layer and of ``Bidirectional(LSTM)`` (Keras 2 and 3).

Written from Keras's ``LSTMCell.call`` and the TensorFlow backend's ``K.rnn``; imports nothing from
the project. Weights in the Keras layout, gates in the column order i, f, c, o::

    kernel [in, 4H]   recurrent_kernel [H, 4H]   bias [4H] (or None with use_bias=False)

    z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias
    i = rec_act(z_i)   f = rec_act(z_f)   c = f * c_{t-1} + i * act(z_c)   o = rec_act(z_o)
    h = o * act(c)

``recurrent_activation``: Keras 1 (``inner_activation``) and Keras 2 before 2.3 defaulted to
``"hard_sigmoid"``; Keras 2.3 / tf.keras 2 default to ``"sigmoid"``. A model trained with one and run
with the other gives different numbers, so the caller states which. ``hard_sigmoid`` here is the
Keras 1/2 backend's ``clip(0.2 * x + 0.5, 0, 1)`` (Keras 3 changed it to ``relu6(x + 3) / 6``, i.e.
slope 1/6; pass ``"hard_sigmoid_keras3"`` for that one).

``unit_forget_bias=True`` only initialises the f block of ``bias`` to 1; it is stored in the weights,
so nothing is added at run time (unlike TF's BasicLSTMCell ``forget_bias``).

Masking: at a masked step both states keep their previous values; what the *output* is depends on the
version (``masked_output``):

- ``"previous_h"``: Keras 2.0-2.2 ``keras/backend/tensorflow_backend.py`` ``rnn`` with ``unroll=False``
  (the default): ``output = tf.where(tiled_mask_t, output, states[0])``, the previous h (h0 before the
  first unmasked step);
- ``"previous_output"``: tf.keras / tf-keras 2 (``tf_keras/backend.py`` ``rnn``, ``_step``:
  ``flat_mask_output = ... tf.nest.flatten(prev_output)``, the loop starting from ``flat_zero_output``),
  Keras 3 (``keras/src/backend/*/rnn.py``, same) and Keras 2's ``unroll=True``: the previous *output*,
  zeros before the first unmasked step (differs from ``"previous_h"`` only there, with a nonzero h0);
- ``"zeros"``: ``zero_output_for_mask=True``, which ``Bidirectional`` forces on both of its layers when
  they return sequences (``bidirectional.py`` ``force_zero_output_for_mask``);
- ``"zeros_unrolled"``: the same with ``unroll=True`` and the sequence returned, in tf.keras / tf-keras
  (``tf_keras/src/backend.py`` ``rnn``, the ``if unroll:`` branch) and Keras 3's TensorFlow backend
  (``keras/src/backend/tensorflow/rnn.py``): the loop outputs the previous output at a masked step
  (``tf.where(tiled_mask_t, output, prev_output)``), and after it the stacked outputs, in reading order, are
  zeroed with ``mask``, the mask as given, which ``go_backwards`` does not reverse (only ``mask_list`` is):
  a backwards layer's output at reading step t is zeroed where x[:, t] is masked (:func:`unrolled_zeros`).
  Reading forwards it equals ``"zeros"``.

``go_backwards=True`` (``K.rnn``: ``inputs = reverse(inputs, 0)`` and the mask reversed with it): the
whole time axis is read back to front, padding included, and the outputs are returned in that processing
order, i.e. reversed (``return_sequences``: output[:, t] belongs to x[:, T - 1 - t]).
``Bidirectional(LSTM(...), merge_mode="concat")`` runs a copy of the layer with ``go_backwards`` flipped,
reverses the backward outputs back (``y_rev = reverse(y_rev, 1)`` when returning sequences) and
concatenates forward | backward on the feature axis.

``CuDNNLSTM`` (Keras 2 ``keras/layers/cudnn_recurrent.py``, tf.keras 1 ``CuDNNLSTM``): sigmoid / tanh
with cuDNN's two biases, ``bias [8H]`` = the input bias then the recurrent bias, both entering the same
sum (:func:`cudnn_lstm_layer`); it takes no mask.

Keras tensors are batch-major: x [B, T, in], outputs [B, T, H].
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import numpy as np

from reference.numerics import sigmoid

Activation = Union[str, Callable[[np.ndarray], np.ndarray]]


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """Keras 1/2 backend ``hard_sigmoid``: ``clip(0.2 * x + 0.5, 0, 1)``."""
    return np.clip(0.2 * np.asarray(x, dtype=np.float64) + 0.5, 0.0, 1.0)


def hard_sigmoid_keras3(x: np.ndarray) -> np.ndarray:
    """Keras 3 ``hard_sigmoid``: ``relu6(x + 3) / 6``."""
    return np.clip(np.asarray(x, dtype=np.float64) + 3.0, 0.0, 6.0) / 6.0


ACTIVATIONS = {
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "hard_sigmoid_keras2": hard_sigmoid,
    "hard_sigmoid_keras3": hard_sigmoid_keras3,
    "tanh": np.tanh,
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    # keras activations.selu: scale * elu(x, alpha) with the constants of Klambauer et al. 2017
    "selu": lambda x: 1.0507009873554804934193349852946 * np.where(
        x > 0, x, 1.6732632423543772848170429916717 * np.expm1(np.minimum(x, 0.0))),
}


def _activation(a: Activation) -> Callable[[np.ndarray], np.ndarray]:
    if callable(a):
        return a
    try:
        return ACTIVATIONS[a]
    except KeyError:
        raise ValueError(f"unknown activation {a!r}; known: {sorted(ACTIVATIONS)}") from None


def lstm_cell(x_t: np.ndarray, h: np.ndarray, c: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
              bias: Optional[np.ndarray] = None, recurrent_activation: Activation = "sigmoid",
              activation: Activation = "tanh") -> Tuple[np.ndarray, np.ndarray]:
    """One ``LSTMCell.call`` step: (x_t [B, in], h [B, H], c [B, H]) -> (h', c')."""
    hidden = recurrent_kernel.shape[0]
    rec_act, act = _activation(recurrent_activation), _activation(activation)
    z = x_t @ kernel + h @ recurrent_kernel
    if bias is not None:
        z = z + bias
    z_i, z_f, z_c, z_o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
    i = rec_act(z_i)
    f = rec_act(z_f)
    c_new = f * c + i * act(z_c)
    o = rec_act(z_o)
    return o * act(c_new), c_new


MASKED_OUTPUTS = ("previous_h", "previous_output", "zeros", "zeros_unrolled")


def lstm_layer(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: Optional[np.ndarray] = None,
               initial_state: Optional[Tuple[np.ndarray, np.ndarray]] = None, mask: Optional[np.ndarray] = None,
               recurrent_activation: Activation = "sigmoid", activation: Activation = "tanh", *,
               go_backwards: bool = False, masked_output: str = "previous_h"
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``LSTM(return_sequences=True, return_state=True)`` on x [B, T, in].

    Args:
        initial_state: ``(h0, c0)`` each [B, H] (Keras's state order), zeros when None.
        mask: [B, T] booleans or 0/1 (Keras's mask layout); masked steps carry the states, and the
            output per ``masked_output`` (see the module docstring).
        go_backwards: read the sequence back to front; the outputs come back in that (reversed) order.

    Returns:
        ``(outputs [B, T, H], h_T [B, H], c_T [B, H])``.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    recurrent_kernel = np.asarray(recurrent_kernel, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x has shape {list(x.shape)}; expected [B, T, in]")
    B, T, n_in = x.shape
    if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[1] != 4 * recurrent_kernel.shape[0]:
        raise ValueError(f"recurrent_kernel has shape {list(recurrent_kernel.shape)}; expected [H, 4H]")
    hidden = recurrent_kernel.shape[0]
    if kernel.shape != (n_in, 4 * hidden):
        raise ValueError(f"kernel has shape {list(kernel.shape)}; expected [in, 4H] = {[n_in, 4 * hidden]}")
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64)
        if bias.shape != (4 * hidden,):
            raise ValueError(f"bias has shape {list(bias.shape)}; expected [4H] = [{4 * hidden}]")
    if initial_state is None:
        h = np.zeros((B, hidden))
        c = np.zeros((B, hidden))
    else:
        h, c = (np.asarray(s, dtype=np.float64) for s in initial_state)
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != (B, T):
            raise ValueError(f"mask has shape {list(mask.shape)}; expected [B, T] = {[B, T]}")
    if masked_output not in MASKED_OUTPUTS:
        raise ValueError(f"masked_output must be one of {MASKED_OUTPUTS}; got {masked_output!r}")
    given = mask
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    outputs = np.empty((B, T, hidden))
    prev_output = np.zeros((B, hidden))
    for t in range(T):
        h_new, c_new = lstm_cell(x[:, t], h, c, kernel, recurrent_kernel, bias, recurrent_activation, activation)
        out = h_new
        if mask is not None:
            keep = mask[:, t][:, None]
            masked = {"previous_h": h, "previous_output": prev_output, "zeros": np.zeros_like(h),
                      "zeros_unrolled": prev_output}[masked_output]
            out = np.where(keep, h_new, masked)
            h_new = np.where(keep, h_new, h)
            c_new = np.where(keep, c_new, c)
        h, c = h_new, c_new
        outputs[:, t] = out
        prev_output = out
    if masked_output == "zeros_unrolled" and given is not None:
        outputs = unrolled_zeros(outputs, given)
    return outputs, h, c


def unrolled_zeros(outputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """tf-keras ``backend.rnn``, ``unroll=True``, ``zero_output_for_mask``: after the loop, ``outputs =
    tf.where(_expand_mask(mask, outputs, fixed_dim=2), outputs, zeros_like(outputs))`` with outputs [B, T, H] in
    reading order and ``mask`` [B, T] as the layer was given it (not reversed for ``go_backwards``)."""
    return np.where(np.asarray(mask).astype(bool)[:, :, None], outputs, 0.0)


def cudnn_lstm_layer(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray,
                     initial_state: Optional[Tuple[np.ndarray, np.ndarray]] = None, *, go_backwards: bool = False
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``CuDNNLSTM(return_sequences=True, return_state=True)`` on x [B, T, in]: ``bias`` [8H] is cuDNN's
    input bias then its recurrent bias, added together; sigmoid / tanh. Returns (outputs, h_T, c_T)."""
    hidden = np.asarray(recurrent_kernel).shape[0]
    bias = np.asarray(bias, dtype=np.float64)
    if bias.shape != (8 * hidden,):
        raise ValueError(f"a CuDNNLSTM bias has shape [8H] = [{8 * hidden}]; got {list(bias.shape)}")
    return lstm_layer(x, kernel, recurrent_kernel, bias[:4 * hidden] + bias[4 * hidden:], initial_state,
                      go_backwards=go_backwards)


MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def bidirectional_layer(x: np.ndarray, forward: dict, backward: dict, initial_state=None, mask=None,
                        recurrent_activation: Activation = "sigmoid", activation: Activation = "tanh", *,
                        masked_output: str = "zeros", merge_mode: Optional[str] = "concat", cudnn: bool = False):
    """``Bidirectional(LSTM(return_sequences=True, return_state=True), merge_mode=...)`` on x [B, T, in].

    ``forward`` / ``backward``: ``{"kernel", "recurrent_kernel", "bias"}`` of each layer (bias may be None;
    ``cudnn``: the layers are ``CuDNNLSTM`` with [8H] biases). ``initial_state``: ``(h_fw, c_fw, h_bw, c_bw)``
    or None. ``masked_output`` defaults to ``"zeros"``, what ``Bidirectional`` forces when returning
    sequences. ``merge_mode`` (keras/layers/wrappers.py ``Bidirectional.call``): ``"concat"`` on the feature
    axis, ``"sum"``, ``"mul"``, ``"ave"``, or None for the pair. Returns ``(outputs, h_fw, c_fw, h_bw, c_bw)``.
    """
    if merge_mode not in MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {MERGE_MODES}; got {merge_mode!r}")
    fw_state = None if initial_state is None else tuple(initial_state[:2])
    bw_state = None if initial_state is None else tuple(initial_state[2:])
    if cudnn:
        if mask is not None:
            raise ValueError("CuDNNLSTM takes no mask")
        y, h_fw, c_fw = cudnn_lstm_layer(x, forward["kernel"], forward["recurrent_kernel"], forward["bias"], fw_state)
        y_rev, h_bw, c_bw = cudnn_lstm_layer(x, backward["kernel"], backward["recurrent_kernel"], backward["bias"],
                                             bw_state, go_backwards=True)
    else:
        y, h_fw, c_fw = lstm_layer(x, forward["kernel"], forward["recurrent_kernel"], forward.get("bias"), fw_state,
                                   mask, recurrent_activation, activation, masked_output=masked_output)
        y_rev, h_bw, c_bw = lstm_layer(x, backward["kernel"], backward["recurrent_kernel"], backward.get("bias"),
                                       bw_state, mask, recurrent_activation, activation, go_backwards=True,
                                       masked_output=masked_output)
    y_bw = y_rev[:, ::-1]
    merged = {"concat": lambda: np.concatenate([y, y_bw], axis=2), "sum": lambda: y + y_bw,
              "mul": lambda: y * y_bw, "ave": lambda: (y + y_bw) / 2, None: lambda: (y, y_bw)}[merge_mode]()
    return merged, h_fw, c_fw, h_bw, c_bw
