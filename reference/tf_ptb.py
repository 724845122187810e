"""Numpy oracle of ptb_word_lm.py's PTBModel: forward, cost, TF's gradients, clipping and one SGD step.

Float64, written from the TF 1.x sources' semantics, importing nothing from ``compat`` or ``ports``:

* ``embedding_lookup``: row gather; its gradient is ``IndexedSlices(values = d(lookup output), indices =
  ids)``, one row per occurrence (``array_grad.py`` ``_GatherGrad``).
* the unrolled ``MultiRNNCell`` of ``BasicLSTMCell`` (:mod:`reference.tf_lstm`), outputs concatenated
  batch-major: logits row ``b * num_steps + t``.
* ``legacy_seq2seq.sequence_loss_by_example`` (``average_across_timesteps=True``): the per-row
  cross-entropy times weight, summed over the list, divided by ``sum(weights) + 1e-12``; the model's cost
  is ``reduce_sum`` of that / ``batch_size``.
* ``clip_ops.global_norm``: ``sqrt(2 * sum(l2_loss(v)))`` over dense tensors and the *values* of
  IndexedSlices; ``clip_by_global_norm``: ``t * clip_norm * min(1 / norm, 1 / clip_norm)``.
* ``GradientDescentOptimizer``: ``var -= lr * grad``; for IndexedSlices the duplicate indices are summed
  first (``optimizer.py`` ``_apply_sparse_duplicate_indices``), i.e. a scatter-add.

* dropout (``is_training`` with ``keep_prob < 1``): ``tf.nn.dropout(inputs, keep_prob)`` on the embedding
  output and ``DropoutWrapper(output_keep_prob=keep_prob)`` on every cell's output (the next layer's input
  and, for the last layer, the softmax input; the recurrent state keeps the undropped h). TF's dropout is
  ``x / keep_prob * floor(keep_prob + uniform)``; its random draws cannot be replayed, so the 0/1 masks are
  an argument here (``noise``: ``{"input": [B, T, H], "outputs": [[B, T, H] per layer]}``), as lstm.py's
  mask is fed to the Theano recordings.

Gradients are derived by hand (backpropagation through time of the BasicLSTMCell equations).
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy as np

from reference.tf_lstm import sigmoid


class IndexedSlices(NamedTuple):
    """TF's sparse gradient: ``values`` [n, ...] for rows ``indices`` [n] of a tensor of ``dense_shape``."""

    values: np.ndarray
    indices: np.ndarray
    dense_shape: Tuple[int, ...]


def to_dense(t) -> np.ndarray:
    """Dense form (duplicate indices summed, as ``tf.convert_to_tensor(IndexedSlices)`` / the optimizer)."""
    if isinstance(t, IndexedSlices):
        dense = np.zeros(t.dense_shape)
        np.add.at(dense, t.indices, t.values)
        return dense
    return np.asarray(t, dtype=np.float64)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def sparse_softmax_cross_entropy_with_logits(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Per-row -log softmax(logits)[label]."""
    return -log_softmax(logits)[np.arange(len(labels)), labels]


def sequence_loss_by_example(logits: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                             weights: Sequence[np.ndarray], average_across_timesteps: bool = True) -> np.ndarray:
    """legacy_seq2seq / tf.contrib.legacy_seq2seq ``sequence_loss_by_example`` (lists of [rows, ...])."""
    if not (len(logits) == len(targets) == len(weights)):
        raise ValueError("logits, targets and weights must be lists of the same length")
    log_perps = sum(sparse_softmax_cross_entropy_with_logits(t, l) * w for l, t, w in zip(logits, targets, weights))
    if average_across_timesteps:
        total_size = sum(np.asarray(w, dtype=np.float64) for w in weights) + 1e-12
        log_perps = log_perps / total_size
    return log_perps


def ptb_cost(logits: np.ndarray, targets: np.ndarray) -> float:
    """ptb_word_lm: ``reduce_sum(sequence_loss_by_example([logits], [reshape(targets, [-1])],
    [ones([B * T])])) / batch_size`` with targets [B, T]."""
    batch_size = targets.shape[0]
    flat = targets.reshape(-1)
    loss = sequence_loss_by_example([logits], [flat], [np.ones(flat.shape[0])])
    return float(loss.sum() / batch_size)


def global_norm(t_list: Sequence) -> float:
    """clip_ops.global_norm: values of IndexedSlices, dense tensors as they are; None skipped."""
    half = 0.0
    for t in t_list:
        if t is None:
            continue
        v = t.values if isinstance(t, IndexedSlices) else np.asarray(t)
        half += float(np.sum(v * v)) / 2.0  # l2_loss
    return float(np.sqrt(half * 2.0))


def clip_by_global_norm(t_list: Sequence, clip_norm: float) -> Tuple[List, float]:
    """clip_ops.clip_by_global_norm: every tensor times ``clip_norm * min(1 / norm, 1 / clip_norm)``."""
    norm = global_norm(t_list)
    scale = clip_norm * min(1.0 / norm if norm else np.inf, 1.0 / clip_norm)
    clipped = []
    for t in t_list:
        if t is None:
            clipped.append(None)
        elif isinstance(t, IndexedSlices):
            clipped.append(IndexedSlices(t.values * scale, t.indices, t.dense_shape))
        else:
            clipped.append(np.asarray(t) * scale)
    return clipped, norm


def sgd_apply(var: np.ndarray, grad, lr: float) -> np.ndarray:
    """GradientDescentOptimizer.apply_gradients for one variable (a new array)."""
    return var - lr * to_dense(grad)


# --- the model -------------------------------------------------------------------------------------------
# params: {"embedding" [V, H], "layers": [(kernel [in + H, 4H], bias [4H]), ...], "softmax_w" [H, V],
#          "softmax_b" [V]}; state: [(c, h), ...] per layer.

def _dropout_scales(noise, keep_prob: float, B: int, T: int, H: int, L: int):
    """The multipliers mask / keep_prob of the embedding and of each layer's output ([B, T, H] each)."""
    if noise is None:
        ones = np.ones((B, T, H))
        return ones, [ones] * L
    if len(noise["outputs"]) != L:
        raise ValueError(f"noise has {len(noise['outputs'])} output masks; the model has {L} layers")
    return (np.asarray(noise["input"], np.float64) / keep_prob,
            [np.asarray(m, np.float64) / keep_prob for m in noise["outputs"]])


def forward(params: Dict, inputs: np.ndarray, state: Sequence[Tuple[np.ndarray, np.ndarray]],
            forget_bias: float = 0.0, keep_prob: float = 1.0, noise=None):
    """Logits [B * T, V] (row b * T + t), final state per layer, and the cache for :func:`gradients`.
    With ``noise`` (0/1 masks, see the module docstring) the training graph's dropout is applied."""
    inputs = np.asarray(inputs)
    B, T = inputs.shape
    layers = params["layers"]
    in_scale, out_scales = _dropout_scales(noise, keep_prob, B, T, params["embedding"].shape[1], len(layers))
    emb = params["embedding"][inputs] * in_scale  # [B, T, H]
    states = [(np.asarray(c, np.float64), np.asarray(h, np.float64)) for c, h in state]
    cache = {"inputs": inputs, "steps": [], "forget_bias": forget_bias, "init": states, "in_scale": in_scale,
             "out_scales": out_scales}
    outputs = []
    for t in range(T):
        x = emb[:, t, :]
        step = []
        new_states = []
        for k, ((kernel, bias), (c, h)) in enumerate(zip(layers, states)):
            concat_in = np.concatenate([x, h], axis=1)
            z = concat_in @ kernel + bias
            zi, zj, zf, zo = np.split(z, 4, axis=1)
            i, j, f, o = sigmoid(zi), np.tanh(zj), sigmoid(zf + forget_bias), sigmoid(zo)
            new_c = c * f + i * j
            tc = np.tanh(new_c)
            new_h = tc * o
            step.append(dict(concat_in=concat_in, i=i, j=j, f=f, o=o, c_prev=c, tc=tc))
            new_states.append((new_c, new_h))
            x = new_h * out_scales[k][:, t, :]  # DropoutWrapper: the output only, not the state
        cache["steps"].append(step)
        states = new_states
        outputs.append(x)
    output = np.stack(outputs, axis=1).reshape(B * T, -1)  # reshape(concat(outputs, 1), [-1, H])
    logits = output @ params["softmax_w"] + params["softmax_b"]
    cache["output"] = output
    return logits, states, cache


def gradients(params: Dict, inputs: np.ndarray, targets: np.ndarray, state, forget_bias: float = 0.0,
              shared: bool = False, keep_prob: float = 1.0, noise=None):
    """``(cost, grads, logits, final_state)``: TF's gradients of the PTB cost.

    ``grads`` = {"embedding": IndexedSlices, "layers": [(d_kernel, d_bias), ...], "softmax_w", "softmax_b"};
    with ``shared`` (one cell object in every layer) the layer gradients are summed into one pair.
    ``keep_prob``, ``noise``: the training graph's dropout with these masks (see :func:`forward`).
    """
    logits, final, cache = forward(params, inputs, state, forget_bias, keep_prob, noise)
    targets = np.asarray(targets)
    B, T = targets.shape
    cost = ptb_cost(logits, targets)
    flat = targets.reshape(-1)
    # d cost / d logits: (softmax - onehot) / (1 + 1e-12) / batch_size.
    d_logits = np.exp(log_softmax(logits))
    d_logits[np.arange(B * T), flat] -= 1.0
    d_logits /= (1.0 + 1e-12) * B
    d_softmax_w = cache["output"].T @ d_logits
    d_softmax_b = d_logits.sum(axis=0)
    d_output = (d_logits @ params["softmax_w"].T).reshape(B, T, -1)
    layers = params["layers"]
    L = len(layers)
    H = layers[0][0].shape[1] // 4
    d_layers = [(np.zeros_like(k), np.zeros_like(b)) for k, b in layers]
    d_emb_values = np.zeros((B, T, params["embedding"].shape[1]))
    dh_next = [np.zeros((B, H)) for _ in range(L)]
    dc_next = [np.zeros((B, H)) for _ in range(L)]
    for t in reversed(range(T)):
        dh_from_above = d_output[:, t, :]
        for k in reversed(range(L)):
            s = cache["steps"][t][k]
            kernel = layers[k][0]
            dh = dh_from_above * cache["out_scales"][k][:, t, :] + dh_next[k]
            dc = dc_next[k] + dh * s["o"] * (1.0 - s["tc"] ** 2)
            d_o = dh * s["tc"]
            d_i = dc * s["j"]
            d_j = dc * s["i"]
            d_f = dc * s["c_prev"]
            dc_next[k] = dc * s["f"]
            dz = np.concatenate([d_i * s["i"] * (1 - s["i"]), d_j * (1 - s["j"] ** 2),
                                 d_f * s["f"] * (1 - s["f"]), d_o * s["o"] * (1 - s["o"])], axis=1)
            dk, db = d_layers[k]
            d_layers[k] = (dk + s["concat_in"].T @ dz, db + dz.sum(axis=0))
            d_concat = dz @ kernel.T
            n_in = d_concat.shape[1] - H
            dh_next[k] = d_concat[:, n_in:]
            dh_from_above = d_concat[:, :n_in]
        d_emb_values[:, t, :] = dh_from_above * cache["in_scale"][:, t, :]
    grads = {
        "embedding": IndexedSlices(d_emb_values.reshape(B * T, -1), cache["inputs"].reshape(-1),
                                   params["embedding"].shape),
        "layers": d_layers,
        "softmax_w": d_softmax_w,
        "softmax_b": d_softmax_b,
    }
    if shared:
        grads["layers"] = [(sum(d[0] for d in d_layers), sum(d[1] for d in d_layers))]
    return cost, grads, logits, final


def train_step(params: Dict, inputs, targets, state, lr: float, max_grad_norm: float, forget_bias: float = 0.0,
               shared: bool = False, dense_embedding_norm: bool = False):
    """One ptb_word_lm training step. Returns ``(cost, new_params, final_state, global_norm)``.

    ``dense_embedding_norm`` replaces the IndexedSlices by their dense sum before clipping (what a plain
    PyTorch ``clip_grad_norm_`` sees), for comparison.
    """
    cost, grads, _, final = gradients(params, inputs, targets, state, forget_bias, shared)
    layer_params = params["layers"][:1] if shared else params["layers"]
    emb_grad = to_dense(grads["embedding"]) if dense_embedding_norm else grads["embedding"]
    t_list = [emb_grad]
    for dk, db in grads["layers"]:
        t_list += [dk, db]
    t_list += [grads["softmax_w"], grads["softmax_b"]]
    clipped, norm = clip_by_global_norm(t_list, max_grad_norm)
    new_layers = []
    for n, (kernel, bias) in enumerate(layer_params):
        new_layers.append((sgd_apply(kernel, clipped[1 + 2 * n], lr), sgd_apply(bias, clipped[2 + 2 * n], lr)))
    if shared:
        new_layers = new_layers * len(params["layers"])
    new_params = {
        "embedding": sgd_apply(params["embedding"], clipped[0], lr),
        "layers": new_layers,
        "softmax_w": sgd_apply(params["softmax_w"], clipped[-2], lr),
        "softmax_b": sgd_apply(params["softmax_b"], clipped[-1], lr),
    }
    return cost, new_params, final, norm
