"""Numpy float64 oracle of the Keras layers around the LSTM cell: ``go_backwards``, ``Bidirectional``,
``CuDNNLSTM``. Built on :mod:`reference.keras_lstm`; imports nothing from the project.

keras/layers/recurrent.py ``RNN.call`` and the backend's ``rnn``: with ``go_backwards=True`` the inputs
(and the mask) are reversed in time and the sequence output is returned in that reversed order (the
layer does not reverse it back). keras/layers/wrappers.py ``Bidirectional.call``: the backward layer is a
copy with ``go_backwards`` flipped; its sequence output is reversed back before the merge
(``merge_mode``: concat, sum, mul, ave, or None for the pair). ``CuDNNLSTM`` (keras/layers/cudnn_recurrent.py)
computes sigmoid/tanh gates with two biases, ``bias[:4H]`` on the input and ``bias[4H:]`` on the recurrent
product (cuDNN's), masks unsupported.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from reference.keras_lstm import lstm_layer


def lstm(x, kernel, recurrent_kernel, bias=None, *, go_backwards: bool = False, mask=None,
         recurrent_activation="sigmoid", activation="tanh"):
    """``LSTM(return_sequences=True, return_state=True, go_backwards=...)`` on x [B, T, in]:
    (outputs [B, T, H] in Keras's order, h_T, c_T)."""
    x = np.asarray(x, dtype=np.float64)
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else np.asarray(mask)[:, ::-1]
    return lstm_layer(x, kernel, recurrent_kernel, bias, mask=mask, recurrent_activation=recurrent_activation,
                      activation=activation)


def cudnn_lstm(x, kernel, recurrent_kernel, bias, *, go_backwards: bool = False):
    """``CuDNNLSTM``: the two halves of ``bias`` [8H] enter the same sum (cuDNN's two biases)."""
    H = recurrent_kernel.shape[0]
    b = np.asarray(bias, dtype=np.float64)
    return lstm(x, kernel, recurrent_kernel, b[:4 * H] + b[4 * H:], go_backwards=go_backwards)


def bidirectional(x, forward: dict, backward: dict, *, merge_mode: Optional[str] = "concat", mask=None,
                  recurrent_activation="sigmoid", activation="tanh", cudnn: bool = False):
    """``Bidirectional(LSTM(return_sequences=True, return_state=True))``: (merged outputs, (h_fw, c_fw),
    (h_bw, c_bw)). ``forward`` / ``backward``: {"kernel", "recurrent_kernel", "bias"}."""
    def run(w, backwards):
        if cudnn:
            return cudnn_lstm(x, w["kernel"], w["recurrent_kernel"], w["bias"], go_backwards=backwards)
        return lstm(x, w["kernel"], w["recurrent_kernel"], w.get("bias"), go_backwards=backwards, mask=mask,
                    recurrent_activation=recurrent_activation, activation=activation)

    y_fw, h_fw, c_fw = run(forward, False)
    y_bw, h_bw, c_bw = run(backward, True)
    y_bw = y_bw[:, ::-1]
    if merge_mode == "concat":
        y = np.concatenate([y_fw, y_bw], axis=-1)
    elif merge_mode == "sum":
        y = y_fw + y_bw
    elif merge_mode == "mul":
        y = y_fw * y_bw
    elif merge_mode == "ave":
        y = (y_fw + y_bw) / 2
    elif merge_mode is None:
        y = (y_fw, y_bw)
    else:
        raise ValueError(f"unknown merge_mode {merge_mode!r}")
    return y, (h_fw, c_fw), (h_bw, c_bw)
