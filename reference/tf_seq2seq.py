"""Numpy oracle (float64) of TF1 legacy_seq2seq and of one training step of the TF cookbook's
Shakespeare LSTM.

Written from:

* ``tensorflow/contrib/legacy_seq2seq/python/ops/seq2seq.py``: ``rnn_decoder`` (step 0 on
  ``decoder_inputs[0]``; step i > 0 on ``loop_function(prev, i)`` with ``prev`` the raw cell output of step
  i - 1, when a loop function is given), ``sequence_loss_by_example`` (``sum_t crossent_t * w_t``, divided
  by ``sum_t w_t + 1e-12`` when averaging) and ``sequence_loss``.
* nfmcclure/tensorflow_cookbook ``03_implementing_lstm.py``: ``LSTM_Model`` (embedding, BasicLSTMCell,
  ``logits = output @ W + b`` on batch-major rows, ``cost = reduce_sum(loss) / (B * T)``), ``inferred_loop``
  and ``sample()``.
* ``tensorflow/python/ops/clip_ops.py`` ``clip_by_global_norm`` (the embedding's IndexedSlices gradient
  counts one row per token occurrence in the norm) and ``tensorflow/python/training/adam.py`` with the
  ``ApplyAdam`` kernel (dense) and ``_apply_sparse_shared`` after ``optimizer.py``'s
  ``_deduplicate_indexed_slices`` (the embedding).

The gradients of the recipe's cost are derived by hand (backpropagation through time of BasicLSTMCell);
``tests/test_seq2seq.py`` checks them against finite differences. Imports nothing from ``compat`` or
``ports``.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from reference.tf_lstm import basic_lstm_cell, sigmoid

State = Tuple[np.ndarray, np.ndarray]  # (c, h)


# --- rnn_decoder ------------------------------------------------------------------------------------

def lstm_cell_fn(kernel: np.ndarray, bias: np.ndarray, forget_bias: float = 1.0) -> Callable:
    """A BasicLSTMCell as a function ``cell(x, (c, h)) -> (output, (c, h))``."""
    def cell(x, state):
        return basic_lstm_cell(x, state, kernel, bias, forget_bias)

    return cell


def rnn_decoder(decoder_inputs: Sequence[np.ndarray], initial_state, cell: Callable,
                loop_function: Optional[Callable] = None) -> Tuple[List[np.ndarray], object]:
    """``rnn_decoder``: ``(outputs, final_state)``, outputs a list of [B, H]."""
    state = initial_state
    outputs = []
    prev = None
    for i, inp in enumerate(decoder_inputs):
        if loop_function is not None and prev is not None:
            inp = loop_function(prev, i)
        output, state = cell(np.asarray(inp, np.float64), state)
        outputs.append(output)
        if loop_function is not None:
            prev = output
    return outputs, state


def inferred_loop(W: np.ndarray, b: np.ndarray, embedding: np.ndarray) -> Callable:
    """The recipe's loop function: ``embedding[argmax(prev @ W + b, 1)]``."""
    def loop_function(prev, i):
        return embedding[np.argmax(prev @ W + b, axis=1)]

    return loop_function


# --- losses -----------------------------------------------------------------------------------------

def sparse_softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``-log softmax(logits)[label]`` per row, via a max-shifted log-sum-exp."""
    logits = np.asarray(logits, np.float64)
    shift = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - shift).sum(axis=1)) + shift[:, 0]
    return lse - logits[np.arange(logits.shape[0]), labels]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def sequence_loss_by_example(logits: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                             weights: Sequence[np.ndarray], average_across_timesteps: bool = True) -> np.ndarray:
    if not (len(logits) == len(targets) == len(weights)):
        raise ValueError("logits, targets and weights must have the same number of steps")
    log_perps = sum(sparse_softmax_cross_entropy(l, np.reshape(t, -1)) * w
                    for l, t, w in zip(logits, targets, weights))
    if average_across_timesteps:
        log_perps = log_perps / (sum(np.asarray(w, np.float64) for w in weights) + 1e-12)
    return log_perps


def sequence_loss(logits, targets, weights, average_across_timesteps: bool = True,
                  average_across_batch: bool = True) -> float:
    cost = sequence_loss_by_example(logits, targets, weights, average_across_timesteps).sum()
    if average_across_batch:
        return cost / np.reshape(targets[0], -1).shape[0]
    return cost


# --- the recipe's model -----------------------------------------------------------------------------

def recipe_forward(params: Dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, state: State,
                   forget_bias: float = 1.0, loop: bool = False):
    """``LSTM_Model`` on ids x, y [B, T] from ``state`` (c, h): ``(cost, final_state, cache)``.

    ``params``: W [H, V], b [V], embedding_mat [V, H], kernel [2H, 4H], bias [4H]. ``loop`` uses the
    infer model's ``inferred_loop`` (no gradient through it; :func:`recipe_backward` needs ``loop=False``).
    """
    W, b, E, K, bk = (params[k] for k in ("W", "b", "embedding_mat", "kernel", "bias"))
    B, T = x.shape
    H = W.shape[0]
    inputs = [E[x[:, t]] for t in range(T)]
    c, h = (np.asarray(s, np.float64) for s in state)
    loop_fn = inferred_loop(W, b, E) if loop else None
    steps = []

    def cell(inp, st):
        c_prev, h_prev = st
        z = np.concatenate([inp, h_prev], axis=1) @ K + bk
        i, j, f, o = np.split(z, 4, axis=1)
        si, tj, sf, so = sigmoid(i), np.tanh(j), sigmoid(f + forget_bias), sigmoid(o)
        new_c = c_prev * sf + si * tj
        new_h = np.tanh(new_c) * so
        steps.append(dict(inp=inp, c_prev=c_prev, h_prev=h_prev, si=si, tj=tj, sf=sf, so=so, c=new_c))
        return new_h, (new_c, new_h)

    outputs, (c, h) = rnn_decoder(inputs, (c, h), cell, loop_fn)
    output = np.stack(outputs, axis=1).reshape(-1, H)  # rows b * T + t
    logits = output @ W + b
    ones = np.ones(B * T)
    loss = sequence_loss_by_example([logits], [y.reshape(-1)], [ones], average_across_timesteps=True)
    cost = loss.sum() / (B * T)
    cache = dict(params=params, x=x, y=y, steps=steps, output=output, logits=logits, B=B, T=T, H=H)
    return cost, (c, h), cache


def recipe_backward(cache) -> Dict[str, np.ndarray]:
    """Gradients of the cost: W, b, kernel, bias dense; ``embedding_values`` [B * T... as (B, T, H)] the
    per-occurrence rows (TF's IndexedSlices values) with ``embedding_indices`` (x), and their dense sum
    ``embedding_mat``."""
    p = cache["params"]
    W, K = p["W"], p["kernel"]
    B, T, H = cache["B"], cache["T"], cache["H"]
    x, y = cache["x"], cache["y"]
    # d cost / d logits: (softmax - onehot) / (1 + 1e-12) / (B * T)
    dlogits = softmax(cache["logits"])
    dlogits[np.arange(B * T), y.reshape(-1)] -= 1.0
    dlogits /= (1.0 + 1e-12)
    dlogits /= (B * T)
    grads = {"W": cache["output"].T @ dlogits, "b": dlogits.sum(axis=0)}
    doutput = (dlogits @ W.T).reshape(B, T, H)
    dK = np.zeros_like(K)
    dbias = np.zeros(K.shape[1])
    dx = np.zeros((B, T, K.shape[0] - H))
    dh_next = np.zeros((B, H))
    dc_next = np.zeros((B, H))
    for t in reversed(range(T)):
        s = cache["steps"][t]
        dh = doutput[:, t] + dh_next
        tc = np.tanh(s["c"])
        do = dh * tc * s["so"] * (1 - s["so"])
        dc = dh * s["so"] * (1 - tc * tc) + dc_next
        di = dc * s["tj"] * s["si"] * (1 - s["si"])
        dj = dc * s["si"] * (1 - s["tj"] * s["tj"])
        df = dc * s["c_prev"] * s["sf"] * (1 - s["sf"])
        dz = np.concatenate([di, dj, df, do], axis=1)
        concat = np.concatenate([s["inp"], s["h_prev"]], axis=1)
        dK += concat.T @ dz
        dbias += dz.sum(axis=0)
        dconcat = dz @ K.T
        dx[:, t] = dconcat[:, :-H]
        dh_next = dconcat[:, -H:]
        dc_next = dc * s["sf"]
    grads["kernel"], grads["bias"] = dK, dbias
    grads["embedding_values"] = dx
    grads["embedding_indices"] = x
    dE = np.zeros_like(p["embedding_mat"])
    np.add.at(dE, x.reshape(-1), dx.reshape(-1, dx.shape[2]))
    grads["embedding_mat"] = dE
    return grads


# --- clipping and TF Adam ---------------------------------------------------------------------------

def global_norm(tensors: Sequence[np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.sum(np.asarray(t, np.float64) ** 2)) for t in tensors)))


def clip_scale(norm: float, clip_norm: float) -> float:
    """clip_ops.py: ``clip_norm * min(1 / global_norm, 1 / clip_norm)``."""
    return clip_norm * min(1.0 / norm, 1.0 / clip_norm)


def adam_dense(var, m, v, g, beta1_power, beta2_power, lr, beta1, beta2, eps):
    """The ApplyAdam kernel: returns new (var, m, v)."""
    alpha = lr * np.sqrt(1 - beta2_power) / (1 - beta1_power)
    m = m + (g - m) * (1 - beta1)
    v = v + (g * g - v) * (1 - beta2)
    return var - (m * alpha) / (np.sqrt(v) + eps), m, v


def adam_sparse(var, m, v, values, indices, beta1_power, beta2_power, lr, beta1, beta2, eps):
    """``_apply_sparse_shared`` after de-duplication: duplicate rows summed, then m and v decay on every
    row, the scaled rows are scatter-added, and every row moves by ``lr_t * m / (sqrt(v) + eps)``."""
    indices = np.asarray(indices).reshape(-1)
    values = np.asarray(values).reshape(indices.shape[0], -1)
    unique, positions = np.unique(indices, return_inverse=True)
    summed = np.zeros((unique.shape[0], values.shape[1]))
    np.add.at(summed, positions, values)
    lr_t = lr * np.sqrt(1 - beta2_power) / (1 - beta1_power)
    m = m * beta1
    m[unique] += summed * (1 - beta1)
    v = v * beta2
    v[unique] += (summed * summed) * (1 - beta2)
    return var - lr_t * m / (np.sqrt(v) + eps), m, v


DENSE = ("W", "b", "kernel", "bias")


def adam_init(params: Dict[str, np.ndarray], beta1: float = 0.9, beta2: float = 0.999) -> dict:
    """Adam's slots; ``beta1_power`` / ``beta2_power`` are float32 variables in TF whatever the model's
    dtype (adam.py ``_create_slots``: non-slot variables made from Python floats)."""
    return {"m": {k: np.zeros_like(v) for k, v in params.items()},
            "v": {k: np.zeros_like(v) for k, v in params.items()},
            "beta1_power": np.float32(beta1), "beta2_power": np.float32(beta2)}


def recipe_train_step(params: Dict[str, np.ndarray], adam: dict, x, y, state: State, *, lr: float = 0.001,
                      clip_norm: float = 4.5, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                      forget_bias: float = 1.0):
    """One ``sess.run([cost, final_state, train_op])`` of the recipe.

    Returns ``(cost, final_state, global_norm, new_params, new_adam)``.
    """
    cost, final_state, cache = recipe_forward(params, x, y, state, forget_bias)
    g = recipe_backward(cache)
    norm = global_norm([g["W"], g["b"], g["embedding_values"], g["kernel"], g["bias"]])
    scale = clip_scale(norm, clip_norm)
    new_params, m_new, v_new = {}, {}, {}
    # adam.py _prepare: lr, beta1, beta2 and epsilon are float32 tensors, cast to the variable's dtype.
    lr, beta1, beta2, eps = (float(np.float32(h)) for h in (lr, beta1, beta2, eps))
    b1p, b2p = float(adam["beta1_power"]), float(adam["beta2_power"])
    for k in DENSE:
        new_params[k], m_new[k], v_new[k] = adam_dense(params[k], adam["m"][k], adam["v"][k], g[k] * scale,
                                                       b1p, b2p, lr, beta1, beta2, eps)
    k = "embedding_mat"
    new_params[k], m_new[k], v_new[k] = adam_sparse(params[k], adam["m"][k], adam["v"][k],
                                                    g["embedding_values"] * scale, g["embedding_indices"],
                                                    b1p, b2p, lr, beta1, beta2, eps)
    new_adam = {"m": m_new, "v": v_new, "beta1_power": np.float32(adam["beta1_power"]) * np.float32(beta1),
                "beta2_power": np.float32(adam["beta2_power"]) * np.float32(beta2)}
    return cost, final_state, norm, new_params, new_adam


# --- sampling ---------------------------------------------------------------------------------------

def greedy_sample_ids(params: Dict[str, np.ndarray], prime_ids: Sequence[int], num: int = 10,
                      forget_bias: float = 1.0, stop_ids: Sequence[int] = ()) -> List[int]:
    """The recipe's ``sample()`` on ids: prime all but the last, then ``argmax(softmax)`` until id 0."""
    W, b, E, K, bk = (params[k] for k in ("W", "b", "embedding_mat", "kernel", "bias"))
    H = W.shape[0]
    state = (np.zeros((1, H)), np.zeros((1, H)))
    for w in prime_ids[:-1]:
        _, state = basic_lstm_cell(E[[w]], state, K, bk, forget_bias)
    word = prime_ids[-1]
    out = []
    for _ in range(num):
        h, state = basic_lstm_cell(E[[word]], state, K, bk, forget_bias)
        choice = int(np.argmax(softmax(h @ W + b)[0]))
        if choice == 0 or choice in stop_ids:
            break
        out.append(choice)
        word = choice
    return out
