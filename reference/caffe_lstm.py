"""Numpy float64 oracle of Caffe's two LSTM layers: forward passes and hand-derived backward passes.

Written from the legacy C++ only; imports nothing from ``compat`` or ``ports``.

BVLC Caffe ``LSTM`` (src/caffe/layers/lstm_layer.cpp ``FillUnrolledNet``, lstm_unit_layer.cpp,
recurrent_layer.cpp). Blobs: ``W_xc`` [4H, I], ``b_c`` [4H], optional ``W_xc_static`` [4H, I_static]
(no bias), ``W_hc`` [4H, H] (no bias); gate blocks in the order i, f, o, g. For t = 1..T::

    x_transform_t  = W_xc x_t + b_c                 (one InnerProduct over all steps, axis 2)
    static_term    = W_xc_static x_static           (InnerProduct, axis 1, bias_term false)
    h_conted       = cont_t * h_{t-1}               ("h_conted_{t-1}", a Scale layer, axis 0)
    gate_input_t   = W_hc h_conted + x_transform_t + static_term     (Eltwise SUM)
    LSTMUnit (lstm_unit_layer.cpp Forward_cpu):
        i = sigmoid(X_i)  f = (cont_t == 0) ? 0 : cont_t * sigmoid(X_f)  o = sigmoid(X_o)  g = tanh(X_g)
        c_t = f * c_{t-1} + i * g          h_t = o * tanh(c_t)

``tanh`` in lstm_unit_layer.cpp is ``2 * sigmoid(2x) - 1``; ``caffe_tanh=True`` computes it that way.

LSTMUnit's Backward_cpu converts the gate gradients with the *stored* f, i.e. d(pre_f) =
dF * f * (1 - f) where f already includes cont_t. For cont in {0, 1} that is the true derivative (f = 0
gives 0; f = sigmoid gives sigmoid' ); for fractional cont it is not: ``caffe_fractional_cont_grad=True``
reproduces it, the default gives the true derivative d(pre_f) = dF * cont * s * (1 - s).

The junhyukoh/caffe-lstm ``Lstm`` layer is :func:`junhyukoh_forward` / :func:`junhyukoh_backward`.
"""
from __future__ import annotations


import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def caffe_tanh(x):
    """lstm_unit_layer.cpp ``tanh``: 2 * sigmoid(2x) - 1."""
    return 2.0 * sigmoid(2.0 * x) - 1.0


def _flat_steps(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], x.shape[1], -1)


def _state(s, n: int, hidden: int) -> np.ndarray:
    if s is None:
        return np.zeros((n, hidden))
    return np.asarray(s, dtype=np.float64).reshape(n, hidden)


# ---------------------------------------------------------------------------------------------- BVLC


def lstm_forward(x, cont, W_xc, b_c, W_hc, h0=None, c0=None, x_static=None, W_xc_static=None, *,
                 caffe_tanh: bool = False, caffe_fractional_cont_grad: bool = False):
    """BVLC Caffe ``LSTM`` forward.

    Args:
        x: [T, N, ...] time-major input (trailing axes flattened, as Caffe's InnerProduct axis 2 does).
        cont: [T, N] continuation indicators (used as numbers).
        W_xc [4H, I], b_c [4H], W_hc [4H, H]: the layer's blobs in gate order i, f, o, g.
        h0, c0: [N, H] or [1, N, H]; zeros when None.
        x_static: [N, ...] with W_xc_static [4H, I_static].

    Returns:
        ``(h [T, N, H], h_T [N, H], c_T [N, H], cache)``.
    """
    x = _flat_steps(x)
    T, N, _ = x.shape
    cont = np.asarray(cont, dtype=np.float64).reshape(T, N)
    W_xc, b_c, W_hc = (np.asarray(a, dtype=np.float64) for a in (W_xc, b_c, W_hc))
    H = W_hc.shape[1]
    th = globals()["caffe_tanh"] if caffe_tanh else np.tanh
    h_prev = _state(h0, N, H)
    c_prev = _state(c0, N, H)
    x_transform = x @ W_xc.T + b_c                      # [T, N, 4H]
    static_term = 0.0
    if x_static is not None:
        xs = np.asarray(x_static, dtype=np.float64).reshape(N, -1)
        static_term = xs @ np.asarray(W_xc_static, dtype=np.float64).T  # [N, 4H]
    else:
        xs = None
    hs = np.zeros((T, N, H))
    steps = []
    h_init, c_init = h_prev, c_prev
    for t in range(T):
        ct = cont[t][:, None]
        h_conted = ct * h_prev
        X = h_conted @ W_hc.T + x_transform[t] + static_term
        i = sigmoid(X[:, :H])
        sf = sigmoid(X[:, H:2 * H])
        f = np.where(ct == 0, 0.0, ct * sf)
        o = sigmoid(X[:, 2 * H:3 * H])
        g = th(X[:, 3 * H:])
        c = f * c_prev + i * g
        tanh_c = th(c)
        h = o * tanh_c
        steps.append(dict(cont=ct, h_conted=h_conted, c_prev=c_prev, i=i, sf=sf, f=f, o=o, g=g, c=c, tanh_c=tanh_c))
        hs[t] = h
        h_prev, c_prev = h, c
    cache = dict(x=x, xs=xs, W_xc=W_xc, W_hc=W_hc, W_xc_static=None if xs is None else np.asarray(W_xc_static, np.float64),
                 steps=steps, h0=h_init, c0=c_init, H=H,
                 caffe_fractional_cont_grad=caffe_fractional_cont_grad)
    return hs, h_prev, c_prev, cache


def lstm_backward(dh, cache, dh_T=None, dc_T=None):
    """Hand-derived backward of :func:`lstm_forward` (the unrolled net's BackwardFrom).

    Args:
        dh: [T, N, H] gradient on the output h.
        dh_T, dc_T: [N, H] (or [1, N, H]) gradients on the exposed final state; None for zero.

    Returns:
        dict with ``x`` [T, N, I], ``x_static`` [N, I_s] (or None), ``W_xc``, ``b_c``, ``W_xc_static`` (or
        None), ``W_hc``, ``h0`` [N, H], ``c0`` [N, H]. These are the true gradients; the Caffe quirk with
        exposed state (nothing reaches h0/c0, dh_T/dc_T ignored) is the caller's choice of passing None and
        discarding h0/c0.
    """
    x, xs, steps, H = cache["x"], cache["xs"], cache["steps"], cache["H"]
    W_xc, W_hc, W_s = cache["W_xc"], cache["W_hc"], cache["W_xc_static"]
    T, N, _ = x.shape
    dh = np.asarray(dh, dtype=np.float64).reshape(T, N, H)
    dh_next = _state(dh_T, N, H)
    dc_next = _state(dc_T, N, H)
    dW_xc = np.zeros_like(W_xc)
    db_c = np.zeros(4 * H)
    dW_hc = np.zeros_like(W_hc)
    dx = np.zeros_like(x)
    dX_sum = np.zeros((N, 4 * H))
    for t in range(T - 1, -1, -1):
        s = steps[t]
        i, f, sf, o, g, tanh_c, ct = s["i"], s["f"], s["sf"], s["o"], s["g"], s["tanh_c"], s["cont"]
        dh_t = dh[t] + dh_next
        dc = dc_next + dh_t * o * (1.0 - tanh_c * tanh_c)
        d_i = dc * g * i * (1.0 - i)
        if cache["caffe_fractional_cont_grad"]:
            d_f = dc * s["c_prev"] * f * (1.0 - f)          # lstm_unit_layer.cpp: f already holds cont
        else:
            d_f = dc * s["c_prev"] * ct * sf * (1.0 - sf)  # d/dX_f of cont * sigmoid(X_f)
        d_o = dh_t * tanh_c * o * (1.0 - o)
        d_g = dc * i * (1.0 - g * g)
        dX = np.concatenate([d_i, d_f, d_o, d_g], axis=1)  # gate order i, f, o, g
        dW_xc += dX.T @ x[t]
        db_c += dX.sum(0)
        dW_hc += dX.T @ s["h_conted"]
        dX_sum += dX
        dx[t] = dX @ W_xc
        dh_next = ct * (dX @ W_hc)
        dc_next = dc * f
    out = dict(x=dx, W_xc=dW_xc, b_c=db_c, W_hc=dW_hc, h0=dh_next, c0=dc_next, x_static=None, W_xc_static=None)
    if xs is not None:
        out["W_xc_static"] = dX_sum.T @ xs
        out["x_static"] = dX_sum @ W_s
    return out


# ------------------------------------------------------------------------------------------ junhyukoh


def junhyukoh_forward(data, W_x, W_h, b, batch_size: int = 1, clip=None, h0=None, c0=None):
    """junhyukoh/caffe-lstm ``Lstm`` forward (lstm_layer.cpp Forward_cpu), every stream computed correctly.

    data [T*N, ...] time-major (row t*N + n); blobs W_x [4H, I], W_h [4H, H], b [4H] (gates i, f, o, g).
    With ``clip`` [T*N] (or [T*N, 1]) cont_{t,n} = clip[t*N + n] != 0 and the state starts from (h0, c0)
    (the carried h_T_, c_T_; zeros when None); without clip cont = (t > 0) and the state starts at zero.
    Returns ``(h [T*N, H], h_T [N, H], c_T [N, H], cache)``.
    """
    N = batch_size
    data = np.asarray(data, dtype=np.float64)
    T = data.shape[0] // N
    x = data.reshape(T, N, -1)
    W_x, W_h, b = (np.asarray(a, dtype=np.float64) for a in (W_x, W_h, b))
    H = W_h.shape[1]
    if clip is None:
        cont = np.zeros((T, N), dtype=bool)
        cont[1:] = True
        h_prev, c_prev = np.zeros((N, H)), np.zeros((N, H))
    else:
        cont = np.asarray(clip).reshape(T, N) != 0
        h_prev, c_prev = _state(h0, N, H), _state(c0, N, H)
    h_init = h_prev
    pre_x = x @ W_x.T + b
    hs = np.zeros((T, N, H))
    steps = []
    for t in range(T):
        ct = cont[t][:, None]
        pre = pre_x[t] + np.where(ct, h_prev @ W_h.T, 0.0)
        i = sigmoid(pre[:, :H])
        f = np.where(ct, sigmoid(pre[:, H:2 * H]), 0.0)
        o = sigmoid(pre[:, 2 * H:3 * H])
        g = np.tanh(pre[:, 3 * H:])
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        h = o * tanh_c
        steps.append(dict(cont=ct, c_prev=c_prev, h_prev=h_prev, i=i, f=f, o=o, g=g, tanh_c=tanh_c))
        hs[t] = h
        h_prev, c_prev = h, c
    cache = dict(x=x, W_x=W_x, W_h=W_h, steps=steps, H=H, N=N, h0=h_init)
    return hs.reshape(T * N, H), h_prev, c_prev, cache


def junhyukoh_backward(dh, cache, clipping_threshold: float = 0.0, dwh_defect: bool = True):
    """lstm_layer.cpp Backward_cpu, per stream. ``clipping_threshold`` > 0 clamps each step's gate
    pre-activation gradients (``caffe_bound``) before they reach dh_{t-1}, the weights and the input;
    the cell path dc_{t-1} = dc_t * f_t is not clamped. ``dwh_defect`` sums dW_h += g_t^T h_{t-1} over every
    step, including steps with clip == 0 (the fork's gemm over all rows plus the h_0 term); False keeps
    only steps that continue. No gradient reaches the carried state (c_T_'s diff is zero).

    Also returned: ``gate_grad_max`` [T], each step's largest |gate pre-activation gradient| before the clamp
    (what decides whether ``caffe_bound`` changes anything at that step)."""
    x, W_x, W_h, steps, H, N = cache["x"], cache["W_x"], cache["W_h"], cache["steps"], cache["H"], cache["N"]
    T = x.shape[0]
    dh = np.asarray(dh, dtype=np.float64).reshape(T, N, H).copy()
    dc_next = np.zeros((N, H))
    pre_diff = np.zeros((T, N, 4 * H))
    gate_grad_max = np.zeros(T)
    for t in range(T - 1, -1, -1):
        s = steps[t]
        i, f, o, g, tanh_c, ct = s["i"], s["f"], s["o"], s["g"], s["tanh_c"], s["cont"]
        d_o = dh[t] * tanh_c
        dc = dc_next + dh[t] * o * (1.0 - tanh_c * tanh_c)
        dc_next = np.where(ct, dc * f, 0.0)
        d_f = np.where(ct, dc * s["c_prev"], 0.0)
        d_i = dc * g
        d_g = dc * i
        pre = np.concatenate([d_i * i * (1 - i), d_f * f * (1 - f), d_o * o * (1 - o), d_g * (1 - g * g)], axis=1)
        gate_grad_max[t] = np.abs(pre).max() if pre.size else 0.0
        if clipping_threshold > 0:
            pre = np.clip(pre, -clipping_threshold, clipping_threshold)
        pre_diff[t] = pre
        if t > 0:
            dh[t - 1] += np.where(ct, pre @ W_h, 0.0)
    dW_h = np.zeros_like(W_h)
    for t in range(T):
        s = steps[t]
        use = np.ones_like(s["cont"]) if dwh_defect else s["cont"]
        dW_h += (pre_diff[t] * use).T @ s["h_prev"]
    return dict(data=(pre_diff @ W_x).reshape(T * N, -1), W_x=np.einsum("tng,tni->gi", pre_diff, x),
                W_h=dW_h, b=pre_diff.sum((0, 1)), gate_grad_max=gate_grad_max)
