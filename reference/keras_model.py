"""Numpy float64 oracle of a whole Keras model: its configuration run layer by layer as Keras runs it.

Written from Keras's sources (keras 1.2 ``engine/topology.py``, ``layers/*.py``; keras 2.x ``engine/
base_layer.py``, ``engine/network.py``, ``layers/*.py``; tf-keras ``engine/base_layer.py``, ``layers/**``;
Keras 3 ``keras/src/layers/**``, ``keras/src/ops/numpy.py``); imports nothing from the project but the LSTM,
GRU and SimpleRNN oracles (``reference/keras_lstm.py``, ``reference/keras_rnn.py``). It reads the model's configuration (the JSON of ``model.to_json()``,
as a dict) and the layers' weights as the file holds them (Keras's order and layout), and returns the
outputs ``model.predict`` returns.

Masks. Keras 1, standalone Keras 2 and tf.keras propagate masks while the model is built: a layer whose
``call`` takes ``mask`` gets the mask of its first input, and its ``compute_mask`` gives its outputs' masks
(``supports_masking``: the input's; ``Embedding(mask_zero)``: ``ids != 0``; ``Masking``: ``any(x != v)``;
recurrent layers: the input's with ``return_sequences``; merges: ``all`` of their masks; ``Concatenate``: the
masks concatenated, ``all`` over the last axis; layers without ``supports_masking``: none in tf.keras; Keras 1
and 2 raise). Keras 3 saves the masks as operations of the graph and a layer's mask as its ``mask``
argument, which this oracle evaluates as written.

``version``: ``(major, minor, patch, tf_keras)``; ``backend``: the file's (Keras 1/2 Theano kernels are
flipped for Conv1D, as Keras's ``convert_kernel`` does on loading them elsewhere).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from reference import keras_lstm, keras_rnn
from reference.numerics import sigmoid

# the error function elementwise, exact to float64 (math.erf), without a dependency for one function
_erf = np.vectorize(math.erf, otypes=[np.float64])


class Unsupported(ValueError):
    """A configuration this oracle does not run."""


def _softplus(x):
    return np.logaddexp(0.0, x)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def activation(name, major: int):
    """Keras's activation ``name`` (keras ``activations.py`` of each version) as a numpy function."""
    if isinstance(name, dict):
        name = (name.get("config") or {}).get("name", name.get("class_name"))
    name = "linear" if name is None else str(name).rsplit(".", 1)[-1]
    table = {
        "linear": lambda x: x, "relu": lambda x: np.maximum(x, 0.0), "sigmoid": sigmoid, "tanh": np.tanh,
        "softmax": _softmax, "log_softmax": lambda x: x - x.max(-1, keepdims=True) - np.log(
            np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)),
        "softsign": lambda x: x / (1.0 + np.abs(x)), "softplus": _softplus,
        "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
        "selu": keras_lstm.ACTIVATIONS["selu"], "swish": lambda x: x * sigmoid(x), "silu": lambda x: x * sigmoid(x),
        "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))), "exponential": np.exp,
        # Keras 1/2 backend hard_sigmoid: clip(0.2 x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6
        "hard_sigmoid": (lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0) if major >= 3
        else (lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0)),
        "relu6": lambda x: np.clip(x, 0.0, 6.0), "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
        "mish": lambda x: x * np.tanh(_softplus(x)), "hard_silu": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
        "hard_swish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    }
    if name not in table:
        raise Unsupported(f"activation {name!r}")
    return table[name]


# --------------------------------------------------------------------------------------- the configuration
def _history(t) -> Tuple[str, int, int]:
    """(layer, node, tensor) of a reference, the node as the file numbers it."""
    if isinstance(t, dict):
        h = t["config"]["keras_history"]
        return h[0], h[1], h[2]
    return t[0], t[1], t[2]


def _k3_value(v):
    if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
        return ("tensor",) + _history(v)
    if isinstance(v, list):
        return [_k3_value(x) for x in v]
    return v


def layers_of(config: dict):
    """[(name, class, config, [(args, kwargs)])], inputs, outputs of a Sequential or Functional config; a tensor
    is ``("tensor", layer, node, tensor)``, the endpoints ``(layer, node, tensor)``, nodes as the file numbers
    them (a Sequential's, which its config does not number, are the calls in this model: node 0)."""
    cls, cfg = config["class_name"], config["config"]
    if cls == "Sequential":
        entries = cfg if isinstance(cfg, list) else cfg["layers"]
        layers = [(e["config"].get("name", e.get("name")), e["class_name"], e["config"], []) for e in entries]
        if layers[0][1] != "InputLayer":
            first = layers[0][2]
            shape = first.get("batch_input_shape") or first.get("batch_shape")
            if shape is None and "input_shape" in first:
                shape = [None] + list(first["input_shape"])
            if shape is None and "input_dim" in first:
                shape = [None, first.get("input_length"), first["input_dim"]] if layers[0][1] in RNN_CLASSES \
                    else [None, first["input_dim"]]
            if shape is None and isinstance(cfg, dict):
                shape = cfg.get("build_input_shape")
            if shape is None:
                shape = [None, first.get("input_length")]
            layers.insert(0, ("__input__", "InputLayer", {"batch_input_shape": shape}, []))
        for k in range(1, len(layers)):
            layers[k][3].append(([("tensor", layers[k - 1][0], 0, 0)], {}))
        return layers, [layers[0][0]], [(layers[-1][0], 0, 0)]
    layers = []
    for e in cfg["layers"]:
        calls = []
        for node in e.get("inbound_nodes", []):
            if isinstance(node, dict):
                calls.append(([_k3_value(a) for a in node.get("args", [])],
                              {k: _k3_value(v) for k, v in (node.get("kwargs") or {}).items()}))
            else:
                tensors = [("tensor",) + _history(t) for t in node]
                kwargs = {}
                for t in node:
                    if len(t) > 3 and isinstance(t[3], dict):
                        kwargs.update(t[3])
                calls.append(([tensors[0] if len(tensors) == 1 else tensors], kwargs))
        layers.append((e.get("name", e["config"].get("name")), e["class_name"], e["config"], calls))

    def ends(v):
        v = [v] if v and isinstance(v[0], str) else v
        return [(x[0], x[1], x[2]) for x in v]
    return layers, [e[0] for e in ends(cfg["input_layers"])], ends(cfg["output_layers"])


# ------------------------------------------------------------------------------------------------ layers
def _same(length: int, k: int, s: int, d: int = 1) -> Tuple[int, int]:
    eff = (k - 1) * d + 1
    out = -(-length // s)
    total = max((out - 1) * s + eff - length, 0)
    return total // 2, total - total // 2


def conv1d(x, kernel, bias, stride, padding, dilation, groups):
    """TF's conv1d (cross-correlation) of x [B, T, C] with kernel [k, C / groups, F]."""
    k = kernel.shape[0]
    if padding == "same":
        before, after = _same(x.shape[1], k, stride, dilation)
    elif padding == "causal":
        before, after = (k - 1) * dilation, 0
    else:
        before = after = 0
    x = np.pad(x, ((0, 0), (before, after), (0, 0)))
    T = (x.shape[1] - (k - 1) * dilation - 1) // stride + 1
    cin, F = kernel.shape[1], kernel.shape[2]
    fg = F // groups
    y = np.zeros((x.shape[0], T, F))
    for t in range(T):
        for j in range(k):
            xt = x[:, t * stride + j * dilation]
            for g in range(groups):
                y[:, t, g * fg:(g + 1) * fg] += xt[:, g * cin:(g + 1) * cin] @ kernel[j, :, g * fg:(g + 1) * fg]
    return y if bias is None else y + bias


def pool1d(x, mode, size, stride, padding):
    """TF's max_pool1d / avg_pool1d on [B, T, C]; ``same`` padding not counted in an average."""
    T = x.shape[1]
    before, after = _same(T, size, stride) if padding == "same" else (0, 0)
    n = (T + before + after - size) // stride + 1
    out = np.empty((x.shape[0], n, x.shape[2]))
    for i in range(n):
        lo, hi = max(i * stride - before, 0), min(i * stride - before + size, T)
        window = x[:, lo:hi]
        out[:, i] = window.max(axis=1) if mode == "max" else window.mean(axis=1)
    return out


def _merge(mode, xs):
    rank = max(x.ndim for x in xs)
    xs = [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]
    if mode in ("add", "sum"):
        return sum(xs[1:], xs[0])
    if mode in ("ave", "average"):
        return sum(xs[1:], xs[0]) / len(xs)
    if mode in ("mul", "multiply"):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out
    if mode == "subtract":
        return xs[0] - xs[1]
    if mode in ("max", "maximum"):
        return np.maximum.reduce(xs)
    if mode == "minimum":
        return np.minimum.reduce(xs)
    raise Unsupported(f"merge {mode!r}")


def merge_keras3(mode, xs, masks):
    """Keras >= 3.4 ``Multiply``, ``Maximum``, ``Minimum`` with the inputs' masks (keras ``merging/multiply.py``
    ``_merge_function``; ``base_merge.py`` ``_apply_merge_op_and_or_mask``)."""
    masks = [None if m is None else np.broadcast_to(m[..., None], x.shape) for x, m in zip(xs, masks)]
    if mode == "multiply":
        every = all(m is not None for m in masks)
        out, out_mask = None, None
        for x, m in zip(xs, masks):
            if m is not None:
                x = np.where(m, x, 1.0)
                if every:
                    out_mask = m if out_mask is None else np.logical_or(out_mask, m)
            out = x if out is None else out * x
        return np.where(out_mask, out, 0.0) if every else out
    fn = np.maximum if mode == "maximum" else np.minimum
    out, out_mask = xs[0], masks[0]
    for x, m in zip(xs[1:], masks[1:]):
        if m is not None:
            x = np.where(m, x, out)
        if out_mask is not None:
            out = np.where(out_mask, out, x)
        out_mask = np.logical_or(out_mask, m) if m is not None and out_mask is not None else None
        out = fn(out, x)
    return out


def _rnn_weights(cls, cfg, w, version):
    if len(w) == 12:   # Keras 1: W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o -> i, f, c, o
        return (np.concatenate([w[0], w[6], w[3], w[9]], 1), np.concatenate([w[1], w[7], w[4], w[10]], 1),
                np.concatenate([w[2], w[8], w[5], w[11]]))
    kernel, rec = w[0], w[1]
    bias = w[2] if len(w) > 2 else None
    if cls == "CuDNNLSTM":
        h = rec.shape[0]
        bias = bias[:4 * h] + bias[4 * h:]
    return kernel, rec, bias


def _lstm(cls, cfg, w, x, mask, state, version, go_backwards, masked_output):
    major = version[0]
    kernel, rec, bias = _rnn_weights(cls, cfg, w, version)
    if cls == "CuDNNLSTM":
        rec_act, act = "sigmoid", "tanh"
    else:
        default = "hard_sigmoid" if major < 2 else "sigmoid"
        rec_act = activation(cfg.get("recurrent_activation", cfg.get("inner_activation", default)), major)
        act = activation(cfg.get("activation", "tanh"), major)
    return keras_lstm.lstm_layer(x, kernel, rec, bias, state, mask, rec_act, act, go_backwards=go_backwards,
                                 masked_output=masked_output)


RNN_CLASSES = ("LSTM", "CuDNNLSTM", "GRU", "CuDNNGRU", "SimpleRNN", "RNN")
ONE_STATE = ("GRU", "CuDNNGRU", "SimpleRNN")
CELLS = {"LSTMCell": 2, "GRUCell": 1, "SimpleRNNCell": 1}   # Keras's built-in cells and their numbers of states


def _cells(cfg):
    """The built-in cells of an ``RNN`` layer's configuration: one, or a ``StackedRNNCells``' in order."""
    cell = cfg["cell"]
    cells = cell["config"]["cells"] if cell["class_name"] == "StackedRNNCells" else [cell]
    for c in cells:
        if c["class_name"] not in CELLS:
            raise Unsupported(f"an RNN over a {c['class_name']} cell")
    return [(c["class_name"], c["config"]) for c in cells]


def _n_states(cls, cfg) -> int:
    if cls == "RNN":
        return sum(CELLS[c] for c, _ in _cells(cfg))
    return 1 if cls in ONE_STATE else 2


def _run_cells(cfg, w, x, mask, state, version, go_backwards, masked_output):
    """An ``RNN`` layer over built-in cells, step by step as ``backend.rnn`` runs its step function (tf-keras
    ``backend.py`` ``rnn``, Keras 3 ``backend/*/rnn.py``): at each step the cells in order, each reading the
    previous cell's output (``StackedRNNCells.call``); at a masked step every state keeps its previous value and
    the output is ``masked_output``'s. (outputs, [the states flat, per cell in order])."""
    major = version[0]
    cells = _cells(cfg)
    B, T, _ = x.shape
    steps, states, k = [], [], 0
    for cls, ccfg in cells:
        n = 3 if ccfg.get("use_bias", True) else 2
        kernel, rec, bias = w[k], w[k + 1], (w[k + 2] if n == 3 else None)
        k += n
        units = rec.shape[0]
        act = activation(ccfg.get("activation", "tanh"), major)
        rec_act = activation(ccfg.get("recurrent_activation", "sigmoid"), major)
        if cls == "LSTMCell":
            steps.append(lambda xt, s, p=(kernel, rec, bias, rec_act, act): list(
                keras_lstm.lstm_cell(xt, s[0], s[1], *p)))
        elif cls == "GRUCell":
            steps.append(lambda xt, s, p=(kernel, rec, bias), ra=bool(ccfg.get("reset_after", False)), a=(rec_act, act):
                         [keras_rnn.gru_cell(xt, s[0], *p, reset_after=ra, recurrent_activation=a[0],
                                             activation=a[1])])
        else:
            steps.append(lambda xt, s, p=(kernel, rec, bias), a=act: [keras_rnn.simple_rnn_cell(xt, s[0], *p,
                                                                                                activation=a)])
        states.append([np.zeros((B, units)) for _ in range(CELLS[cls])])
    if k != len(w):
        raise Unsupported(f"{len(w)} weights for the cells' {k}")
    if state is not None:
        flat = [np.asarray(s, dtype=np.float64) for s in state]
        states = [[flat.pop(0) for _ in s] for s in states]
    given = mask
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    outputs, prev = [], np.zeros((B, states[-1][0].shape[1]))
    for t in range(T):
        inp, new = x[:, t], []
        for step, s in zip(steps, states):
            got = step(inp, s)
            new.append(got)
            inp = got[0]
        out = inp
        if mask is not None:
            keep = np.asarray(mask[:, t]).astype(bool)[:, None]
            # keras 2.0-2.2 tensorflow_backend.rnn: tf.where(mask, output, states[0]), one cell's h
            masked = {"zeros": np.zeros_like(out), "previous_output": prev, "previous_h": states[0][0],
                      "zeros_unrolled": prev}
            out = np.where(keep, out, masked[masked_output])
            new = [[np.where(keep, a, b) for a, b in zip(n_, s)] for n_, s in zip(new, states)]
        states, prev = new, out
        outputs.append(out)
    y = np.stack(outputs, 1)
    if masked_output == "zeros_unrolled" and given is not None:
        y = keras_lstm.unrolled_zeros(y, given)
    return y, [a for s in states for a in s]


def _one_state(cls, cfg, w, x, mask, state, version, go_backwards, masked_output):
    """A GRU / CuDNNGRU / SimpleRNN layer by reference/keras_rnn.py: (outputs, h_T)."""
    major = version[0]
    if cls == "CuDNNGRU":
        return keras_rnn.cudnn_gru_layer(x, w[0], w[1], w[2], state, go_backwards=go_backwards)
    act = activation(cfg.get("activation", "tanh"), major)
    if cls == "SimpleRNN":
        return keras_rnn.simple_rnn_layer(x, w[0], w[1], w[2] if len(w) > 2 else None, state, mask, act,
                                          go_backwards=go_backwards, masked_output=masked_output)
    if len(w) == 9:
        w = list(keras_rnn.keras1_gru_weights(w))
    default = "hard_sigmoid" if major < 2 else "sigmoid"
    rec_act = activation(cfg.get("recurrent_activation", cfg.get("inner_activation", default)), major)
    return keras_rnn.gru_layer(x, w[0], w[1], w[2] if len(w) > 2 else None, state, mask, rec_act, act,
                               reset_after=bool(cfg.get("reset_after", False)), go_backwards=go_backwards,
                               masked_output=masked_output)


def _run_rnn(cls, cfg, w, x, mask, state, version, go_backwards, masked_output):
    """(outputs, [final states in Keras's order]) of one recurrent layer."""
    if cls == "RNN":
        if masked_output == "previous_h" and mask is not None and len(_cells(cfg)) > 1:
            raise Unsupported("an RNN(StackedRNNCells) of Keras 2.0-2.2 with a mask")
        return _run_cells(cfg, w, np.asarray(x, dtype=np.float64), mask, state, version, go_backwards, masked_output)
    if cls in ONE_STATE:
        y, h = _one_state(cls, cfg, w, x, mask, None if state is None else state[0], version, go_backwards,
                          masked_output)
        return y, [h]
    y, h, c = _lstm(cls, cfg, w, x, mask, None if state is None else tuple(state), version, go_backwards,
                    masked_output)
    return y, [h, c]


def _masked_output(cfg, version, bidirectional_sequences: bool) -> str:
    major, minor, _, tf = version
    if bidirectional_sequences or cfg.get("zero_output_for_mask"):
        # tf_keras/src/backend.py rnn, unroll=True: the stacked outputs zeroed with the mask not reversed for
        # go_backwards (keras_lstm.unrolled_zeros); Keras 3 as its TensorFlow backend; Keras 2.0-2.2 (their own
        # backend, not read) plain zeros
        if cfg.get("unroll") and cfg.get("return_sequences") and (tf or (major, minor) >= (2, 3)):
            return "zeros_unrolled"
        return "zeros"
    # keras 2.0-2.2 tensorflow_backend.rnn: tf.where(mask, output, states[0]); later versions and tf.keras the
    # previous output (zeros before the first unmasked step); unroll=True: the previous output too
    if tf or major >= 3 or (major, minor) >= (2, 3) or cfg.get("unroll"):
        return "previous_output"
    return "previous_h"


def recurrent(cls, cfg, w, x, mask, initial, version):
    """An ``LSTM`` / ``CuDNNLSTM`` / ``GRU`` / ``CuDNNGRU`` / ``SimpleRNN`` / ``Bidirectional`` layer's outputs (keras
    ``RNN.call``, ``Bidirectional.call``)."""
    if cls == "Bidirectional":
        inner = cfg["layer"]
        icls, icfg = inner["class_name"], inner["config"]
        merge = cfg.get("merge_mode", "concat")
        seqs = icfg.get("return_sequences", False)
        half = len(w) // 2
        mo = _masked_output(icfg, version, seqs)
        n = _n_states(icls, icfg)
        fw_state = None if initial is None else initial[:n]
        bw_state = None if initial is None else initial[n:]
        y, s1 = _run_rnn(icls, icfg, w[:half], x, mask, fw_state, version, False, mo)
        y_rev, s2 = _run_rnn(icls, icfg, w[half:], x, mask, bw_state, version, True, mo)
        if seqs:
            y_rev = y_rev[:, ::-1]
        else:
            y, y_rev = y[:, -1], y_rev[:, -1]
        merged = {"concat": lambda: [np.concatenate([y, y_rev], -1)], "sum": lambda: [y + y_rev],
                  "mul": lambda: [y * y_rev], "ave": lambda: [(y + y_rev) / 2], None: lambda: [y, y_rev]}[merge]()
        outs = merged + (s1 + s2 if icfg.get("return_state") else [])
        out_masks = [mask if seqs else None] * len(merged) + [None] * (len(outs) - len(merged))
        return outs, out_masks
    if cls in ("CuDNNLSTM", "CuDNNGRU"):
        mask = None
    mo = _masked_output(cfg, version, False)
    y, states = _run_rnn(cls, cfg, w, x, mask, initial, version, bool(cfg.get("go_backwards")), mo)
    seqs = cfg.get("return_sequences", False)
    outs = [y if seqs else y[:, -1]] + (states if cfg.get("return_state") else [])
    return outs, [mask if seqs else None] + [None] * (len(outs) - 1)


def layer(cls, cfg, w, xs, version, backend, mask=None, static_batch=False):
    """One non-recurrent layer's output on inputs ``xs`` (a list for merges). ``mask``: what its call reads."""
    major = version[0]
    x = xs[0] if len(xs) == 1 else None
    if cls == "Dense":
        y = x @ w[0] + (w[1] if len(w) > 1 else 0.0)
        return activation(cfg.get("activation"), major)(y)
    if cls == "Activation":
        return activation(cfg["activation"], major)(x)
    if cls in ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
               "ActivityRegularization"):
        return x
    if cls == "Embedding":
        return w[0][x.astype(np.int64)]
    if cls == "Masking":
        return x * np.any(x != cfg.get("mask_value", 0.0), axis=-1, keepdims=True)
    if cls == "Flatten":
        if cfg.get("data_format") == "channels_first" and x.ndim >= 3:
            x = np.moveaxis(x, 1, -1)
        return x.reshape(x.shape[0], -1)
    if cls == "Reshape":
        return x.reshape((x.shape[0],) + tuple(cfg.get("target_shape", cfg.get("dims"))))
    if cls == "Permute":
        return np.transpose(x, (0,) + tuple(cfg["dims"]))
    if cls == "RepeatVector":
        return np.repeat(x[:, None], cfg["n"], axis=1)
    if cls in ("Conv1D", "Convolution1D"):
        kernel = w[0][:, 0] if w[0].ndim == 4 else w[0]
        if backend == "theano":
            kernel = kernel[::-1]
        cl = cfg.get("data_format", "channels_last") != "channels_first"
        xx = x if cl else np.swapaxes(x, 1, 2)
        y = conv1d(xx, kernel, w[1] if len(w) > 1 else None, _one(cfg.get("strides", cfg.get("subsample_length", 1))),
                   cfg.get("padding", cfg.get("border_mode", "valid")), _one(cfg.get("dilation_rate", 1)),
                   cfg.get("groups", 1))
        y = activation(cfg.get("activation"), major)(y)
        return y if cl else np.swapaxes(y, 1, 2)
    if cls in ("MaxPooling1D", "AveragePooling1D", "MaxPool1D", "AvgPool1D"):
        size = _one(cfg.get("pool_size", cfg.get("pool_length", 2)))
        stride = cfg.get("strides", cfg.get("stride"))
        stride = size if stride is None else _one(stride)
        cl = cfg.get("data_format", "channels_last") != "channels_first"
        xx = x if cl else np.swapaxes(x, 1, 2)
        y = pool1d(xx, "max" if cls.startswith("Max") else "avg", size, stride,
                   cfg.get("padding", cfg.get("border_mode", "valid")))
        return y if cl else np.swapaxes(y, 1, 2)
    if cls in ("GlobalAveragePooling1D", "GlobalAvgPool1D", "GlobalMaxPooling1D", "GlobalMaxPool1D"):
        axis = 1 if cfg.get("data_format", "channels_last") != "channels_first" else 2
        keep = bool(cfg.get("keepdims", False))
        if "Max" in cls:
            return x.max(axis=axis, keepdims=keep)
        if mask is None:
            return x.mean(axis=axis, keepdims=keep)
        m = np.expand_dims(mask.astype(np.float64), 2 if axis == 1 else 1)
        return (x * m).sum(axis=axis, keepdims=keep) / m.sum(axis=axis, keepdims=keep)
    if cls in ("Add", "Multiply", "Average", "Subtract", "Maximum", "Minimum"):
        return _merge(cls.lower(), xs)
    if cls == "Concatenate":
        return np.concatenate(xs, axis=cfg.get("axis", -1))
    if cls == "Merge":
        mode = cfg["mode"]
        if mode == "concat":
            return np.concatenate(xs, axis=cfg.get("concat_axis", -1))
        return _merge(mode, xs)
    if cls == "BatchNormalization":
        scale = cfg.get("scale", True) or major == 1
        center = cfg.get("center", True) or major == 1
        w = list(w)
        gamma = w.pop(0) if scale else 1.0
        beta = w.pop(0) if center else 0.0
        mean, var = w
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) else axis
        shape = [1] * x.ndim
        shape[axis] = -1
        r = lambda a: np.reshape(a, shape) if np.ndim(a) else a  # noqa: E731
        return (x - r(mean)) / np.sqrt(r(var) + cfg.get("epsilon", 1e-3)) * r(gamma) + r(beta)
    if cls == "LayerNormalization":
        w = list(w)
        gamma = w.pop(0) if cfg.get("scale", True) else 1.0
        beta = w.pop(0) if cfg.get("center", True) else 0.0
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) else axis
        x = np.moveaxis(x, axis, -1)
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return np.moveaxis((x - mean) / np.sqrt(var + cfg.get("epsilon", 1e-3)) * gamma + beta, -1, axis)
    raise Unsupported(f"layer {cls}")


def _one(v):
    return v[0] if isinstance(v, (list, tuple)) else v


def time_distributed(cfg, w, x, version, backend, mask, masked_steps):
    inner = cfg["layer"]
    B, T = x.shape[:2]
    y = layer(inner["class_name"], inner["config"], w, [x.reshape((B * T,) + x.shape[2:])], version, backend)
    y = y.reshape((B, T) + y.shape[1:])
    if mask is None or not masked_steps:
        return y
    # tf.keras TimeDistributed with a fixed batch size: backend.rnn with the mask (previous output)
    out, prev = np.empty_like(y), np.zeros_like(y[:, 0])
    for t in range(T):
        keep = mask[:, t].reshape((B,) + (1,) * (y.ndim - 2)).astype(bool)
        prev = np.where(keep, y[:, t], prev)
        out[:, t] = prev
    return out


# ---------------------------------------------------------------------------------------------- masks
SUPPORTS = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Activation",
            "BatchNormalization", "LayerNormalization", "TimeDistributed", "ActivityRegularization", "Dense")


def compute_mask(cls, cfg, xs, masks, n_out, version):
    """The output masks of a layer (Keras 1, standalone Keras 2, tf.keras); None where there is none."""
    major, minor, patch, tf = version
    first = masks[0] if masks else None
    if cls == "Embedding":
        return [xs[0] != 0] if cfg.get("mask_zero") else [None]
    if cls == "Masking":
        return [np.any(xs[0] != cfg.get("mask_value", 0.0), axis=-1)]
    if cls in SUPPORTS and not (cls == "Dense" and major == 1):
        return [first] + [None] * (n_out - 1)
    if cls in ("Add", "Multiply", "Average", "Subtract", "Maximum", "Minimum") or \
            (cls == "Merge" and cfg.get("mode") != "concat"):
        present = [m for m in masks if m is not None]
        return [np.all(np.stack(present), axis=0) if present else None]
    if cls == "Concatenate" or cls == "Merge":
        if all(m is None for m in masks):
            return [None]
        axis = cfg.get("axis", cfg.get("concat_axis", -1))
        parts = [np.ones(x.shape, bool) if m is None else (m[..., None] if m.ndim < x.ndim else m)
                 for x, m in zip(xs, masks)]
        return [np.all(np.concatenate(parts, axis=axis), axis=-1)]
    if any(m is not None for m in masks) and not tf and cls not in ("GlobalAveragePooling1D",):
        raise Unsupported(f"Keras {major}.{minor} raises: {cls} does not support masking")
    return [None] * n_out


K3_SUPPORTS = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Activation",
               "BatchNormalization", "LayerNormalization", "ActivityRegularization", "Dense", "Identity")


def compute_mask_keras3(cls, cfg, xs, masks, n_out, version):
    """Keras 3's output masks where a model rebuilds its graph (Sequential): ``supports_masking`` layers pass
    the mask (recurrent layers, Bidirectional and TimeDistributed up to 3.15 only), Concatenate combines with
    ``any``."""
    first = masks[0] if masks else None
    if cls == "Embedding":
        return [xs[0] != 0] if cfg.get("mask_zero") else [None]
    if cls == "Masking":
        return [np.any(xs[0] != cfg.get("mask_value", 0.0), axis=-1)]
    rnn = (version[0], version[1]) < (3, 16)
    if cls in ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional"):
        inner = cfg.get("layer", {}).get("config", {}) if cls == "Bidirectional" else cfg
        seqs = rnn and inner.get("return_sequences", False)
        halves = 2 if cls == "Bidirectional" and cfg.get("merge_mode", "concat") is None else 1
        return [first if seqs else None] * halves + [None] * (n_out - halves)
    if cls == "TimeDistributed":
        return [first if rnn else None]
    if cls in K3_SUPPORTS:
        return [first] + [None] * (n_out - 1)
    if cls in ("Add", "Multiply", "Average", "Subtract", "Maximum", "Minimum"):
        present = [m for m in masks if m is not None]
        if cls in ("Multiply", "Maximum", "Minimum") and (version[0], version[1]) >= (3, 4) and present \
                and len(present) == len(masks):
            return [np.any(np.stack(present), axis=0)]   # _merge_function sets the OR of the masks
        return [np.all(np.stack(present), axis=0) if present else None]
    if cls == "Concatenate":
        if all(m is None for m in masks):
            return [None]
        parts = [np.ones(x.shape, bool) if m is None else (m[..., None] | np.zeros(x.shape, bool)) for x, m in
                 zip(xs, masks)]
        return [np.any(np.concatenate(parts, axis=cfg.get("axis", -1)), axis=-1)]
    return [None] * n_out


def _reads_mask(cls, version) -> bool:
    major, minor, patch, tf = version
    if cls in ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional"):
        return True
    if major >= 3 and cls == "TimeDistributed":
        return True
    if cls in ("GlobalAveragePooling1D", "GlobalAvgPool1D"):
        return tf or major >= 3 or (major, minor, patch) >= (2, 2, 3)
    return False


# ----------------------------------------------------------------------------------------------- running
def _op(cls, cfg, args):
    """A Keras 3 operation of the saved graph (keras/src/ops/numpy.py)."""
    if cls == "NotEqual":
        return np.not_equal(args[0], args[1])
    if cls in ("Any", "All"):
        fn = np.any if cls == "Any" else np.all
        axis = cfg.get("axis")
        return fn(args[0].astype(bool), axis=tuple(axis) if isinstance(axis, list) else axis,
                  keepdims=cfg.get("keepdims", False))
    if cls == "ExpandDims":
        return np.expand_dims(args[0], cfg["axis"])
    if cls in ("ZerosLike", "OnesLike"):
        return np.full(args[0].shape, cls == "OnesLike", dtype=bool)
    if cls == "LogicalOr":
        return np.logical_or(args[0], args[1])
    if cls == "LogicalAnd":
        return np.logical_and(args[0], args[1])
    if cls == "Concatenate":
        return np.concatenate(args[0], axis=cfg.get("axis", 0))
    raise Unsupported(f"operation {cls}")


MODELS = ("Sequential", "Functional", "Model")


def _first_node(cls, cfg, version, endpoint: bool) -> int:
    """The node number a model's config gives a nested model's first call. tf-keras saves a nested Functional
    (and a Sequential that starts with an input layer) counting the node that links its own inputs to its
    outputs (tf_keras/src/engine/functional.py ``get_network_config``, ``_should_skip_first_node``); Keras 3
    counts it only for a Functional in ``input_layers`` / ``output_layers`` (keras/src/models/functional.py
    ``get_config``, ``functional_from_config.get_tensor``), never in a call's arguments (``serialize_node``)."""
    if cls not in MODELS:
        return 0
    if version[0] >= 3:
        return 1 if endpoint and cls != "Sequential" else 0
    if cls != "Sequential":
        return 1
    entries = cfg if isinstance(cfg, list) else cfg["layers"]
    return 1 if entries[0]["class_name"] == "InputLayer" or "batch_input_shape" in entries[0]["config"] else 0


def predict(config: dict, weights: Dict[str, List[np.ndarray]], inputs: Sequence[np.ndarray],
            version: Tuple[int, int, int, bool], backend: str = "") -> List[np.ndarray]:
    """``model.predict(inputs)`` of the model ``config`` with ``weights`` (layer name -> its weights in
    Keras's order; a nested model's layer ``model/layer``) in float64."""
    layers, input_names, _ = layers_of(config)
    input_layers = {n: c for n, k, c, _ in layers if k == "InputLayer"}
    feeds, static_batch = [], False
    for name, x in zip(input_names, inputs):
        x = np.asarray(x)
        feeds.append((x.astype(np.float64) if x.dtype.kind == "f" else x, None))
        shape = input_layers[name].get("batch_input_shape") or input_layers[name].get("batch_shape")
        static_batch = static_batch or bool(shape and shape[0] is not None)
    return [v for v, _ in _run_model(config, "", feeds, weights, version, backend, static_batch)]


def _run_model(config, prefix, feeds, weights, version, backend, static_batch):
    """The (output, mask) pairs of the model ``config`` called on ``feeds`` ((value, mask) per input). A layer
    called several times (shared) runs once per call with the same weights, each call computing its own masks;
    a nested model runs its layers on the masks its inputs carry, and its outputs carry the masks its layers
    gave them (tf-keras ``Functional._run_internal_graph``; Keras 3 ``Functional.call``)."""
    layers, input_names, outputs = layers_of(config)
    major = version[0]
    by_name = {n: (k, c) for n, k, c, _ in layers}
    # (layer, call, tensor) -> (value, mask)
    values: Dict[Tuple[str, int, int], Tuple[np.ndarray, Optional[np.ndarray]]] = {}
    for name, fed in zip(input_names, feeds):
        values[(name, 0, 0)] = fed

    # a Sequential's config numbers nothing: layers_of links each layer to the previous one's first call
    # (tf_keras/src/engine/sequential.py get_config lists the layers only; keras/src/models/sequential.py too)
    numbered = config["class_name"] != "Sequential"

    def key(name, node, tensor, endpoint=False):
        cls, cfg = by_name[name]
        return name, node - (_first_node(cls, cfg, version, endpoint) if numbered else 0), tensor

    def is_tensor(v):
        return isinstance(v, tuple) and v and v[0] == "tensor"

    def get(v):
        if is_tensor(v):
            return values[key(*v[1:])][0]
        if isinstance(v, list):
            return [get(x) for x in v]
        return v

    def ready(v) -> bool:
        if is_tensor(v):
            return key(*v[1:]) in values
        if isinstance(v, list):
            return all(ready(x) for x in v)
        return True

    pending = [(name, cls, cfg, call, k) for name, cls, cfg, calls in layers if cls != "InputLayer"
               for k, call in enumerate(calls)]
    while pending:
        progressed = False
        for entry in list(pending):
            name, cls, cfg, (args, kwargs), k = entry
            if not ready(args) or not ready(list(kwargs.values())):
                continue
            progressed = True
            pending.remove(entry)
            w = [np.asarray(a, dtype=np.float64) for a in weights.get(prefix + name, [])]
            is_op = major >= 3 and "trainable" not in cfg and cls in ("NotEqual", "Any", "All", "ExpandDims",
                                                                          "ZerosLike", "OnesLike", "LogicalOr",
                                                                          "LogicalAnd", "Concatenate")
            if is_op:
                values[(name, k, 0)] = (_op(cls, cfg, [get(a) for a in args]), None)
                continue
            main = args[0]
            refs = [main] if is_tensor(main) else list(main)
            xs = [get(r) for r in refs]
            masks = [values[key(*r[1:])][1] for r in refs]
            if cls in MODELS:
                inner = {"class_name": cls, "config": cfg}
                for t, out in enumerate(_run_model(inner, f"{prefix}{name}/", list(zip(xs, masks)), weights, version,
                                                   backend, static_batch)):
                    values[(name, k, t)] = out
                continue
            initial = kwargs.get("initial_state")
            if cls in RNN_CLASSES + ("Bidirectional",) and len(xs) > 1:
                xs, masks, initial = xs[:1], masks[:1], [r for r in refs[1:]]
            initial = None if initial is None else [get(s) for s in initial]
            explicit = kwargs.get("mask")
            if major >= 3 and explicit is not None:
                mask = get(explicit)   # the mask the file says the layer was called with
            elif major >= 3 and initial is not None:
                mask = None   # Keras 3 fills `mask` only for a call with one tensor argument
            else:
                # the mask the input carries (Keras 3: Layer.__call__ replaces an explicit mask=None with it)
                mask = masks[0] if _reads_mask(cls, version) else None
            if cls in RNN_CLASSES + ("Bidirectional",):
                outs, out_masks = recurrent(cls, cfg, w, xs[0], mask, initial, version)
            elif cls == "TimeDistributed":
                td_mask = masks[0] if (major < 3 and version[3] and static_batch) else None
                outs, out_masks = [time_distributed(cfg, w, xs[0], version, backend, td_mask, True)], [masks[0]]
            elif major >= 3 and (major, version[1]) >= (3, 4) and cls in ("Multiply", "Maximum", "Minimum") \
                    and any(m is not None for m in masks):
                outs, out_masks = [merge_keras3(cls.lower(), xs, masks)], [None]
            else:
                outs = [layer(cls, cfg, w, xs, version, backend, mask, static_batch)]
                out_masks = [None]
            if major >= 3:   # the masks Keras 3's tensors carry (Layer.__call__, _set_mask_metadata)
                out_masks = compute_mask_keras3(cls, cfg, xs, masks, len(outs), version)
            else:
                out_masks = compute_mask(cls, cfg, xs, masks, len(outs), version) if cls not in (
                    RNN_CLASSES + ("Bidirectional",)) else out_masks
                if cls in ("CuDNNLSTM", "CuDNNGRU"):
                    out_masks = [None] * len(outs)
            for t, o in enumerate(outs):
                values[(name, k, t)] = (o, out_masks[t] if t < len(out_masks) else None)
        if not progressed:
            raise Unsupported("layers wait on outputs no layer produces")
    return [values[key(n, node, t, endpoint=True)] for n, node, t in outputs]
