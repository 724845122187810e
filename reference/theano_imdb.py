"""Numpy oracle of the Theano tutorial's IMDB classifier and optimizers (DeepLearningTutorials ``code/lstm.py``).

Float64 throughout, from the tutorial's ``build_model``, ``dropout_layer``, ``adadelta``, ``rmsprop`` and
``sgd``; gradients derived by hand. Parameters are a dict under the tutorial's keys:
``Wemb [n_words, dim]``, ``lstm_W [dim, 4dim]``, ``lstm_U [dim, 4dim]``, ``lstm_b [4dim]``,
``U [dim, ydim]``, ``b [ydim]``.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from reference.theano_lstm import lstm_layer, lstm_layer_backward

Params = Mapping[str, np.ndarray]
OFF = 1e-8  # build_model: -log(pred[arange(n), y] + off), off = 1e-8 (1e-6 for float16)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row softmax (``tensor.nnet.softmax``)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _f64(params: Params) -> Dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}


def forward(params: Params, x: np.ndarray, mask: np.ndarray, *, use_dropout: bool = True,
            noise: Optional[np.ndarray] = None, doubled_bias: bool = False) -> Dict[str, np.ndarray]:
    """The model's intermediate values. ``noise`` None: the evaluation path of ``dropout_layer``
    (``proj * 0.5``); otherwise the training path with that 0/1 mask (``proj * noise``), [n, dim]."""
    p = _f64(params)
    x = np.asarray(x)
    m = np.asarray(mask, dtype=np.float64)
    T, n = x.shape
    dim = p["Wemb"].shape[1]
    emb = p["Wemb"][x.flatten()].reshape(T, n, dim)
    b = 2 * p["lstm_b"] if doubled_bias else p["lstm_b"]
    h, _ = lstm_layer(emb, m, p["lstm_W"], p["lstm_U"], b)
    msum = m.sum(axis=0)
    pooled = (h * m[:, :, None]).sum(axis=0) / msum[:, None]
    if use_dropout:
        drop = 0.5 * np.ones_like(pooled) if noise is None else np.asarray(noise, dtype=np.float64)
    else:
        drop = np.ones_like(pooled)
    proj = pooled * drop
    pred = softmax(proj @ p["U"] + p["b"])
    return dict(emb=emb, h=h, pooled=pooled, drop=drop, proj=proj, pred=pred, msum=msum, lstm_b=b)


def predict_proba(params: Params, x, mask, **kw) -> np.ndarray:
    """``f_pred_prob``: [n, ydim] (evaluation path)."""
    return forward(params, x, mask, **kw)["pred"]


def cost(params: Params, x, mask, y, *, decay_c: float = 0.0, **kw) -> float:
    """``-log(pred[arange(n), y] + 1e-8).mean()`` plus ``decay_c * (U ** 2).sum()`` when decay_c > 0."""
    pred = forward(params, x, mask, **kw)["pred"]
    y = np.asarray(y)
    c = -np.log(pred[np.arange(len(y)), y] + OFF).mean()
    if decay_c > 0.:
        c += decay_c * (np.asarray(params["U"], dtype=np.float64) ** 2).sum()
    return float(c)


def gradients(params: Params, x, mask, y, *, decay_c: float = 0.0, use_dropout: bool = True,
              noise: Optional[np.ndarray] = None, doubled_bias: bool = False) -> Tuple[float, Dict[str, np.ndarray]]:
    """``(cost, {name: d cost / d param})`` for all six parameters, derived by hand."""
    p = _f64(params)
    fw = forward(p, x, mask, use_dropout=use_dropout, noise=noise, doubled_bias=doubled_bias)
    x = np.asarray(x)
    y = np.asarray(y)
    m = np.asarray(mask, dtype=np.float64)
    pred = fw["pred"]
    n = len(y)
    rows = np.arange(n)
    py = pred[rows, y]
    c = -np.log(py + OFF).mean()
    # d/d logits of -log(p_y + off)/n: softmax Jacobian applied to the one-hot-at-y gradient.
    dpy = -1.0 / (n * (py + OFF))
    onehot = np.zeros_like(pred)
    onehot[rows, y] = 1.0
    dlogits = (dpy * py)[:, None] * (onehot - pred)
    grads = {"U": fw["proj"].T @ dlogits, "b": dlogits.sum(axis=0)}
    if decay_c > 0.:
        c += decay_c * (p["U"] ** 2).sum()
        grads["U"] = grads["U"] + 2.0 * decay_c * p["U"]
    dproj = dlogits @ p["U"].T
    dpooled = dproj * fw["drop"]
    # pooled = sum_t(h * m) / sum_t(m)
    dh = m[:, :, None] * (dpooled / fw["msum"][:, None])[None, :, :]
    g = lstm_layer_backward(dh, fw["emb"], m, p["lstm_W"], p["lstm_U"], fw["lstm_b"])
    grads["lstm_W"] = g["W"]
    grads["lstm_U"] = g["U"]
    grads["lstm_b"] = 2.0 * g["b"] if doubled_bias else g["b"]
    dWemb = np.zeros_like(p["Wemb"])
    np.add.at(dWemb, x.flatten(), g["state_below"].reshape(x.size, -1))
    grads["Wemb"] = dWemb
    return float(c), grads


# ------------------------------------------------------------------------------------ optimizers
def adadelta_step(params: Params, grads: Params, state: Optional[Dict[str, Dict[str, np.ndarray]]] = None):
    """One ``f_grad_shared`` + ``f_update`` of lstm.py ``adadelta``; returns ``(new_params, new_state)``.

    state[name] = {"running_up2", "running_grads2"} (zeros when None). Theano applies each function's
    updates from the values before the call: the step uses the old running_up2.
    """
    state = state or {}
    new_p, new_s = {}, {}
    for k, v in params.items():
        g = np.asarray(grads[k], dtype=np.float64)
        s = state.get(k, {})
        ru2 = s.get("running_up2", np.zeros_like(g))
        rg2 = 0.95 * s.get("running_grads2", np.zeros_like(g)) + 0.05 * (g ** 2)
        updir = -np.sqrt(ru2 + 1e-6) / np.sqrt(rg2 + 1e-6) * g
        new_s[k] = {"running_up2": 0.95 * ru2 + 0.05 * (updir ** 2), "running_grads2": rg2}
        new_p[k] = np.asarray(v, dtype=np.float64) + updir
    return new_p, new_s


def rmsprop_step(params: Params, grads: Params, state: Optional[Dict[str, Dict[str, np.ndarray]]] = None):
    """One ``f_grad_shared`` + ``f_update`` of lstm.py ``rmsprop``; returns ``(new_params, new_state)``.

    state[name] = {"running_grads", "running_grads2", "updir"}. The parameter moves by the *new* updir.
    """
    state = state or {}
    new_p, new_s = {}, {}
    for k, v in params.items():
        g = np.asarray(grads[k], dtype=np.float64)
        s = state.get(k, {})
        rg = 0.95 * s.get("running_grads", np.zeros_like(g)) + 0.05 * g
        rg2 = 0.95 * s.get("running_grads2", np.zeros_like(g)) + 0.05 * (g ** 2)
        ud = 0.9 * s.get("updir", np.zeros_like(g)) - 1e-4 * g / np.sqrt(rg2 - rg ** 2 + 1e-4)
        new_s[k] = {"running_grads": rg, "running_grads2": rg2, "updir": ud}
        new_p[k] = np.asarray(v, dtype=np.float64) + ud
    return new_p, new_s


def sgd_step(params: Params, grads: Params, lr: float):
    """lstm.py ``sgd``: ``p - lr * g``."""
    return {k: np.asarray(v, dtype=np.float64) - lr * np.asarray(grads[k], dtype=np.float64) for k, v in params.items()}
