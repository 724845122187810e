"""cuDNN's opaque RNN parameter buffer, as TF documents it: what sits where.

From tensorflow/contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py (``CudnnParamsFormatConverter``: the
canonical lists are "weights | biases", each "layer1 | layer2 | ...", each "fwd | bak";
``CudnnOpaqueParamsSaveable``: per layer and direction, tensors 0 .. G-1 apply to the input, G .. 2G-1 to the
recurrent state; with ``num_proj`` a projection matrix follows a pseudo-layer's weights, ``_tf_canonical_to_cu_canonical``)
and jax/experimental/rnn.py (its layout drawn as "the linear weights from all pseudo-layers followed by the
bias weights from all pseudo-layers"). Written from those texts, not from the converter.

:func:`param_shapes` lists every parameter of a buffer in order; :func:`unpack` and :func:`pack` walk that
list. Gate orders: LSTM i, f, c, o; GRU r, u, h; RNN one.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}

Key = Tuple[str, int, int, int]   # (kind "W" | "R" | "P" | "bW" | "bR", layer, direction, gate)


def param_shapes(mode: str, input_size: int, num_units: int, num_layers: int, bidirectional: bool,
                 num_proj: int = 0) -> List[Tuple[Key, Tuple[int, ...]]]:
    """Every parameter of the buffer, in buffer order, with its shape."""
    G, H, D = GATES[mode], num_units, 2 if bidirectional else 1
    state = num_proj or H
    weights, biases = [], []
    for layer in range(num_layers):
        width = input_size if layer == 0 else D * state
        for d in range(D):
            weights += [(("W", layer, d, g), (H, width)) for g in range(G)]
            weights += [(("R", layer, d, g), (H, state)) for g in range(G)]
            if num_proj:
                weights.append((("P", layer, d, 0), (num_proj, H)))
            biases += [(("bW", layer, d, g), (H,)) for g in range(G)]
            biases += [(("bR", layer, d, g), (H,)) for g in range(G)]
    return weights + biases


def unpack(buf: np.ndarray, *sizes, **kw) -> Dict[Key, np.ndarray]:
    """The buffer's parameters by key (``sizes``: those of :func:`param_shapes`)."""
    out, pos = {}, 0
    for key, shape in param_shapes(*sizes, **kw):
        n = int(np.prod(shape))
        out[key] = np.asarray(buf[pos:pos + n]).reshape(shape)
        pos += n
    if pos != buf.size:
        raise ValueError(f"a buffer of {buf.size} elements; these sizes make {pos}")
    return out


def pack(params: Dict[Key, np.ndarray], *sizes, **kw) -> np.ndarray:
    """The buffer of ``params`` (the inverse of :func:`unpack`)."""
    return np.concatenate([np.asarray(params[key]).reshape(-1) for key, _ in param_shapes(*sizes, **kw)])
