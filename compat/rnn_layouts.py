"""Legacy GRU and simple-RNN weight layouts and their exact conversions to PyTorch's.

The canonical layout is ``torch.nn.GRU``'s / ``torch.nn.RNN``'s (:class:`compat.lstm.LayerWeights` with no
projection or peepholes): GRU gate rows r (reset), z (update), n (candidate); ``weight_ih [3H, in]``,
``weight_hh [3H, H]``, ``bias_ih [3H]``, ``bias_hh [3H]``; a simple RNN's ``[H, in]``, ``[H, H]``, ``[H]``, ``[H]``.
Every conversion is a gate permutation, a transpose, a split or a concatenation: no arithmetic, so it is exact.

Which GRU the weights make is not the layout's business but the source's: a GRU whose reset gate multiplies
the state *before* the recurrent product (TF ``GRUCell``, Keras ``reset_after=False``, ONNX
``linear_before_reset=0``) runs as ``compat.gru.GRU(reset_after=False)``:
``n = g(W_in x + b_in + W_hn (r * h) + b_hn)``, never as ``torch.nn.GRU``, whose reset multiplies
``W_hn h + b_hn``. The GRU's update rule is the same everywhere: ``h' = (1 - z) * n + z * h``.

| layout | tensors | gate order | biases |
| --- | --- | --- | --- |
| ``keras`` GRU | kernel [in, 3H], recurrent_kernel [H, 3H], [bias [3H] (reset_after=False) or [2, 3H] (True)] | z, r, h | one (input) or two |
| ``keras1`` GRU | W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h ([in, H], [H, H], [H]) | per gate | one |
| ``keras_cudnn`` CuDNNGRU | kernel [in, 3H], recurrent_kernel [H, 3H], bias [6H] = input | recurrent | z, r, h | two |
| ``keras`` SimpleRNN | kernel [in, H], recurrent_kernel [H, H], [bias [H]] | | one |
| ``onnx`` GRU | W [3H, in], R [3H, H], [B [6H] = Wb | Rb] per direction | z, r, h | two |
| ``onnx`` RNN | W [H, in], R [H, H], [B [2H]] per direction | | two |
| ``tf`` GRUCell | gates/kernel [in + H, 2H], gates/bias [2H], candidate/kernel [in + H, H], candidate/bias [H] | r, u | one per block |
| ``tf`` BasicRNNCell | kernel [in + H, H], bias [H] | | one |
| ``cudnn`` canonical GRU | W_r, W_u, W_h [H, in], R_* [H, H], bW_*, bR_* [H] | r, u, h | two |
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from compat.layouts import permute_gates
from compat.lstm import LayerWeights


class RNNLayoutError(ValueError):
    """A GRU or simple-RNN tensor of the wrong shape or a missing one."""


#: Keras's and ONNX's GRU gate blocks: z, r, h (torch's n).
ZRH_ORDER = "zrn"


def _zrh_to_rzn(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Gate blocks z, r, h (Keras, ONNX) as torch's r, z, n."""
    return permute_gates(a, ZRH_ORDER, "rzn", axis)


def _shape(name: str, a: np.ndarray, shape) -> np.ndarray:
    a = np.asarray(a)
    if tuple(a.shape) != tuple(shape):
        raise RNNLayoutError(f"{name} has shape {list(a.shape)}; expected {list(shape)}")
    return a


def _hidden(name: str, recurrent: np.ndarray, gates: int) -> int:
    r = np.asarray(recurrent)
    if r.ndim != 2 or r.shape[1] != gates * r.shape[0] or r.shape[0] < 1:
        raise RNNLayoutError(f"{name} has shape {list(r.shape)}; expected [H, {gates if gates > 1 else ''}H]")
    return r.shape[0]


# --- Keras (keras/layers/recurrent.py GRUCell.build / call; SimpleRNNCell; cudnn_recurrent.py CuDNNGRU) --------
def keras_gru(kernel, recurrent_kernel, bias=None, *, reset_after: bool) -> LayerWeights:
    """Keras's GRU weights (gates z, r, h); ``bias`` [3H] for reset_after=False (the input side's), [2, 3H] (input,
    recurrent) for reset_after=True, None with use_bias=False."""
    H = _hidden("recurrent_kernel", recurrent_kernel, 3)
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.shape[1] != 3 * H:
        raise RNNLayoutError(f"kernel has shape {list(kernel.shape)}; expected [in, 3H={3 * H}]")
    w_ih, w_hh = _zrh_to_rzn(kernel.T), _zrh_to_rzn(np.asarray(recurrent_kernel).T)
    if bias is None:
        return LayerWeights(w_ih, w_hh)
    bias = np.asarray(bias)
    if reset_after:
        if bias.shape == (6 * H,):      # CuDNNGRU's flat [input | recurrent]
            bias = bias.reshape(2, 3 * H)
        _shape("bias", bias, (2, 3 * H))
        return LayerWeights(w_ih, w_hh, _zrh_to_rzn(bias[0]), _zrh_to_rzn(bias[1]))
    _shape("bias", bias, (3 * H,))
    return LayerWeights(w_ih, w_hh, _zrh_to_rzn(bias), np.zeros(3 * H, bias.dtype))


def keras1_gru(weights: Sequence[np.ndarray]):
    """Keras 1's nine per-gate tensors (keras 1.x recurrent.py ``GRU.build``'s trainable_weights: W_z, U_z, b_z,
    W_r, U_r, b_r, W_h, U_h, b_h) as the fused (kernel, recurrent_kernel, bias) in the order z, r, h."""
    if len(weights) != 9:
        raise RNNLayoutError(f"{len(weights)} weights; Keras 1's GRU has 9 (W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h)")
    w = [np.asarray(a) for a in weights]
    return (np.concatenate([w[0], w[3], w[6]], axis=1), np.concatenate([w[1], w[4], w[7]], axis=1),
            np.concatenate([w[2], w[5], w[8]]))


def keras_simple_rnn(kernel, recurrent_kernel, bias=None) -> LayerWeights:
    H = _hidden("recurrent_kernel", recurrent_kernel, 1)
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.shape[1] != H:
        raise RNNLayoutError(f"kernel has shape {list(kernel.shape)}; expected [in, H={H}]")
    b = None if bias is None else _shape("bias", bias, (H,))
    return LayerWeights(kernel.T, np.asarray(recurrent_kernel).T, b, None if b is None else np.zeros(H, b.dtype))


# --- ONNX (onnx/docs/Operators.md GRU, RNN: W [dirs, 3H, in] gates z, r, h; B = [Wb, Rb]) ----------------------
def onnx_gru(W, R, B=None) -> LayerWeights:
    """One direction's ``W [3H, in]``, ``R [3H, H]``, ``B [6H]`` of an ONNX GRU node."""
    R = np.asarray(R)
    H = R.shape[1] if R.ndim == 2 else 0
    _shape("R", R, (3 * H, H))
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != 3 * H:
        raise RNNLayoutError(f"W has shape {list(W.shape)}; expected [3H={3 * H}, in]")
    if B is None:
        return LayerWeights(_zrh_to_rzn(W), _zrh_to_rzn(R))
    B = _shape("B", B, (6 * H,))
    return LayerWeights(_zrh_to_rzn(W), _zrh_to_rzn(R), _zrh_to_rzn(B[:3 * H]), _zrh_to_rzn(B[3 * H:]))


def onnx_rnn(W, R, B=None) -> LayerWeights:
    R = np.asarray(R)
    H = R.shape[1] if R.ndim == 2 else 0
    _shape("R", R, (H, H))
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != H:
        raise RNNLayoutError(f"W has shape {list(W.shape)}; expected [H={H}, in]")
    if B is None:
        return LayerWeights(W, R)
    B = _shape("B", B, (2 * H,))
    return LayerWeights(W, R, B[:H], B[H:])


# --- TF 1.x rnn_cell_impl.py GRUCell.call: gates = sigmoid([x, h] @ gates/kernel + gates/bias), r, u = split;
#     c = tanh([x, r * h] @ candidate/kernel + candidate/bias); h' = u * h + (1 - u) * c ------------------------
def tf_gru_kernels(input_size: int, gates_kernel, candidate_kernel):
    """``(weight_ih, weight_hh)`` of TF's ``gates/kernel`` [in + H, 2H] and ``candidate/kernel`` [in + H, H]:
    torch's rows r, z, n are TF's r, u (the gates kernel's columns in that order) and the candidate; the rows
    above ``input_size`` multiply x, the rest h. numpy arrays or torch tensors (then differentiable views:
    :class:`compat.rnn_cell.GRUCell` reads its variables through it)."""
    cat = torch.cat if isinstance(gates_kernel, torch.Tensor) else np.concatenate
    n = input_size
    return (cat([gates_kernel[:n], candidate_kernel[:n]], 1).T,
            cat([gates_kernel[n:], candidate_kernel[n:]], 1).T)


def tf_gru_cell(input_size: int, gates_kernel, gates_bias, candidate_kernel, candidate_bias) -> LayerWeights:
    gk, ck = np.asarray(gates_kernel), np.asarray(candidate_kernel)
    if ck.ndim != 2 or ck.shape[0] != input_size + ck.shape[1]:
        raise RNNLayoutError(f"candidate/kernel has shape {list(ck.shape)}; expected [in + H, H] with in={input_size}")
    H = ck.shape[1]
    _shape("gates/kernel", gk, (input_size + H, 2 * H))
    gb = None if gates_bias is None else _shape("gates/bias", gates_bias, (2 * H,))
    cb = None if candidate_bias is None else _shape("candidate/bias", candidate_bias, (H,))
    w_ih, w_hh = tf_gru_kernels(input_size, gk, ck)
    if gb is None and cb is None:
        return LayerWeights(w_ih, w_hh)
    dtype = gk.dtype
    b = np.concatenate([gb if gb is not None else np.zeros(2 * H, dtype), cb if cb is not None else np.zeros(H, dtype)])
    return LayerWeights(w_ih, w_hh, b, np.zeros(3 * H, dtype))


def tf_basic_rnn_cell(input_size: int, kernel, bias=None) -> LayerWeights:
    """TF 1.x ``BasicRNNCell.call``: ``h' = act([x, h] @ kernel + bias)``."""
    k = np.asarray(kernel)
    if k.ndim != 2 or k.shape[0] != input_size + k.shape[1]:
        raise RNNLayoutError(f"kernel has shape {list(k.shape)}; expected [in + H, H] with in={input_size}")
    H = k.shape[1]
    b = None if bias is None else _shape("bias", bias, (H,))
    return LayerWeights(k[:input_size].T, k[input_size:].T, b, None if b is None else np.zeros(H, b.dtype))


def cudnn_canonical(mode: str, W: Sequence[np.ndarray], R: Sequence[np.ndarray], bW: Optional[Sequence[np.ndarray]],
                    bR: Optional[Sequence[np.ndarray]]) -> LayerWeights:
    """cuDNN's canonical per-gate tensors (GRU gates r, u, h: torch's r, z, n; RNN one) stacked as torch's."""
    out = [np.concatenate([np.asarray(a) for a in W]), np.concatenate([np.asarray(a) for a in R])]
    if bW is not None:
        out += [np.concatenate([np.asarray(a) for a in bW]), np.concatenate([np.asarray(a) for a in bR])]
    return LayerWeights(*out)
