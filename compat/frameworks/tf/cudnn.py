"""cuDNN's opaque parameter buffer (``<scope>/opaque_kernel``, a 1-D variable) of TF's CudnnLSTM, CudnnGRU,
CudnnRNNTanh and CudnnRNNRelu layers, read in cuDNN's layout.

The layout (tensorflow/contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py ``CudnnParamsFormatConverter``:
"weights | biases", each "layer1 | layer2 | ...", each "fwd | bak"; the same packing Keras's TF backend
feeds cuDNN, keras/src/backend/tensorflow/rnn.py ``_standardize_cudnn_weights``: ``concat(weights +
biases)``; and cuDNN's pseudo-layers, a bidirectional layer being a forward pseudo-layer followed by a
backward one)::

    every weight matrix first, pseudo-layer by pseudo-layer (layer 0 fw, layer 0 bw, layer 1 fw, ...):
        W_0 .. W_{G-1}   [H, in_k] each  (input weights, row-major)
        R_0 .. R_{G-1}   [H, S] each     (recurrent weights; S = num_proj or H)
        P                [num_proj, H]   (LSTM with a projection only)
    then every bias, in the same pseudo-layer order:
        b_W0 .. b_W{G-1}, b_R0 .. b_R{G-1}   [H] each

``G`` and the gate order per mode (cudnn_rnn_ops.py ``CudnnOpaqueParamsSaveable``): ``lstm`` 4 (i, f, c, o),
``gru`` 3 (r, u, h: reset, update, new memory), ``rnn_tanh`` / ``rnn_relu`` 1. ``in_k`` is the input size
for layer 0 and ``directions * S`` above it. These are PyTorch's orders (i, f, g, o and r, z, n), so each
pseudo-layer is ``weight_ih = concat(W)``, ``weight_hh = concat(R)``, ``bias_ih = concat(b_W)``,
``bias_hh = concat(b_R)``, ``weight_hr = P``. Only for one layer in one direction do the weights and
biases of a pseudo-layer sit side by side.

The buffer does not store its sizes. When the checkpoint also holds the TF-format copy that TF's Saver
derives from it (``<scope>/.../cudnn_compatible_lstm_cell/kernel`` and ``bias``, the two biases summed:
``CudnnParamsFormatConverterLSTM._cudnn_to_tf_weights`` / ``_cudnn_to_tf_biases``; a GRU's
``cudnn_compatible_gru_cell/gates/...`` and ``candidate/...``, a simple RNN's ``basic_rnn_cell/kernel`` and
``bias``: :func:`tf_canonical`), the sizes are read from the copy and the two must agree: every weight equal,
every summed bias equal to b_W + b_R; the converter names the tensor that differs, and converts the layer
once. Otherwise the sizes are given (``--cudnn-num-units``, and the
number of layers, the direction, ``num_proj`` when they are not 1, unidirectional, none); the mode is
told from the layer's scope (``cudnn_lstm``, ``cudnn_gru``, ...) or given (``--cudnn-rnn-mode``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from compat.errors import InputError
from compat.frameworks.tf.names import CUDNN_LAYER_MODES

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
CELL_OF_MODE = {"lstm": "CudnnLSTM", "gru": "CudnnGRU", "rnn_tanh": "CudnnRNNTanh", "rnn_relu": "CudnnRNNRelu"}


class CudnnOpaqueError(InputError, ValueError):
    """An opaque cuDNN buffer whose length does not fit the sizes given, or that its TF-format copy contradicts."""


@dataclass(frozen=True)
class CudnnShape:
    """The sizes of a cuDNN RNN, which its opaque buffer does not store."""

    mode: str
    num_units: int
    num_layers: int
    bidirectional: bool
    input_size: int
    num_proj: int = 0

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def gates(self) -> int:
        return GATES[self.mode]

    @property
    def state(self) -> int:
        """The width of h (what R multiplies): num_proj, or num_units."""
        return self.num_proj or self.num_units

    def layer_input(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.directions * self.state

    def weight_count(self, layer: int) -> int:
        """Weight elements of one pseudo-layer of ``layer``."""
        H, G = self.num_units, self.gates
        return G * H * self.layer_input(layer) + G * H * self.state + self.num_proj * H

    def size(self) -> int:
        """Elements of the whole buffer."""
        biases = 2 * self.gates * self.num_units
        return sum(self.directions * (self.weight_count(k) + biases) for k in range(self.num_layers))


def input_size_from_length(length: int, mode: str, num_units: int, num_layers: int, bidirectional: bool,
                           num_proj: int = 0) -> Optional[int]:
    """The input size that makes a buffer of ``length`` elements (None: no input size does)."""
    probe = CudnnShape(mode, num_units, num_layers, bidirectional, 0, num_proj)
    rest = probe.size()                      # everything but layer 0's input matrices
    per_input = probe.directions * probe.gates * num_units
    if length <= rest or (length - rest) % per_input:
        return None
    return (length - rest) // per_input


def split_opaque(buf: np.ndarray, shape: CudnnShape) -> List[List[Dict[str, np.ndarray]]]:
    """Per layer, per direction (forward first): the pseudo-layer's tensors in PyTorch's names
    (``weight_ih [G*H, in]``, ``weight_hh [G*H, S]``, ``bias_ih``, ``bias_hh`` [G*H], ``weight_hr [P, H]``)."""
    if buf.ndim != 1 or buf.size != shape.size():
        raise CudnnOpaqueError(f"an opaque buffer of {buf.size} elements; the sizes given make {shape.size()}")
    H, G, S, P = shape.num_units, shape.gates, shape.state, shape.num_proj
    pos = 0

    def take(rows: int, cols: int) -> np.ndarray:
        nonlocal pos
        out = buf[pos:pos + rows * cols].reshape(rows, cols)
        pos += rows * cols
        return out

    pseudo = []
    for k in range(shape.num_layers):
        for _ in range(shape.directions):
            W = [take(H, shape.layer_input(k)) for _ in range(G)]
            R = [take(H, S) for _ in range(G)]
            t = {"weight_ih": np.concatenate(W, 0), "weight_hh": np.concatenate(R, 0)}
            if P:
                t["weight_hr"] = take(P, H)
            pseudo.append(t)
    for t in pseudo:
        t["bias_ih"] = take(G * H, 1).reshape(G * H)
        t["bias_hh"] = take(G * H, 1).reshape(G * H)
    assert pos == buf.size
    D = shape.directions
    return [[{n: np.ascontiguousarray(a) for n, a in pseudo[k * D + d].items()} for d in range(D)]
            for k in range(shape.num_layers)]


def mode_of_scope(scope: str) -> Optional[str]:
    """The cuDNN mode a layer's default scope name says (``.../cudnn_gru_1`` -> ``gru``), or None."""
    last = scope.rsplit("/", 1)[-1]
    for name, mode in CUDNN_LAYER_MODES.items():
        if last == name or (last.startswith(name + "_") and last[len(name) + 1:].isdigit()):
            return mode
    return None


# ------------------------------------------------------------------------------- the TF-format copy
def tf_canonical_lstm(pseudo: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The TF-format copy TF's Saver writes for one LSTM pseudo-layer: ``kernel [in + S, 4H]`` in TF's gate
    order i, c, f, o and ``bias [4H]`` = b_W + b_R (``CudnnParamsFormatConverterLSTM._cudnn_to_tf_weights``,
    ``_cudnn_to_tf_biases``), and ``projection/kernel [H, P]``."""
    H = pseudo["weight_hh"].shape[0] // 4
    order = [0, 2, 1, 3]   # cuDNN i, f, c, o -> TF i, c, f, o
    blocks = [np.concatenate([pseudo["weight_ih"][g * H:(g + 1) * H], pseudo["weight_hh"][g * H:(g + 1) * H]], 1)
              for g in order]
    bias = pseudo["bias_ih"] + pseudo["bias_hh"]
    out = {"kernel": np.concatenate(blocks, 0).T,
           "bias": np.concatenate([bias[g * H:(g + 1) * H] for g in order])}
    if "weight_hr" in pseudo:
        out["projection/kernel"] = pseudo["weight_hr"].T
    return out


#: The scope under which TF's Saver writes a mode's TF-format copy (cudnn_rnn_ops.py ``_rnn_cell_name`` of
#: ``CudnnLSTMSaveable``, ``CudnnGRUSaveable``, ``CudnnRNNSimpleSaveable``).
COPY_SCOPES = {"lstm": "cudnn_compatible_lstm_cell", "gru": "cudnn_compatible_gru_cell", "rnn_tanh": "basic_rnn_cell",
               "rnn_relu": "basic_rnn_cell"}


def tf_canonical(mode: str, pseudo: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The TF-format copy TF's Saver writes for one pseudo-layer of ``mode``, by its names under the copy's scope.

    ``lstm``: :func:`tf_canonical_lstm`. ``gru`` (``CudnnGRUSaveable._cudnn_to_tf_weights`` /
    ``_cudnn_to_tf_biases``): ``gates/kernel = concat([[W_r, R_r], [W_u, R_u]]).T`` [in + H, 2H], ``gates/bias``
    the input and recurrent biases of r and u summed, ``candidate/input_projection/kernel = W_h.T`` and ``/bias =
    b_Wh``, ``candidate/hidden_projection/kernel = R_h.T`` and ``/bias = b_Rh``. ``rnn_tanh`` / ``rnn_relu``
    (``CudnnRNNSimpleSaveable``): ``kernel = concat([W, R], 1).T``, ``bias = b_W + b_R``."""
    if mode == "lstm":
        return tf_canonical_lstm(pseudo)
    w, r, bw, br = pseudo["weight_ih"], pseudo["weight_hh"], pseudo["bias_ih"], pseudo["bias_hh"]
    H = r.shape[1]
    if mode == "gru":
        gates = np.concatenate([np.concatenate([w[:H], r[:H]], 1), np.concatenate([w[H:2 * H], r[H:2 * H]], 1)], 0)
        return {"gates/kernel": gates.T, "gates/bias": bw[:2 * H] + br[:2 * H],
                "candidate/input_projection/kernel": w[2 * H:].T, "candidate/input_projection/bias": bw[2 * H:],
                "candidate/hidden_projection/kernel": r[2 * H:].T, "candidate/hidden_projection/bias": br[2 * H:]}
    return {"kernel": np.concatenate([w, r], 1).T, "bias": bw + br}


def compare_with_copy(pseudo: Dict[str, np.ndarray], copy: Dict[str, np.ndarray], where: str,
                      mode: str = "lstm") -> None:
    """Raise naming the tensor when the buffer's pseudo-layer and its TF-format copy (tensors by their names
    under the copy's scope, :data:`COPY_SCOPES`) disagree."""
    mine = tf_canonical(mode, pseudo)
    for name, value in mine.items():
        theirs = copy.get(name)
        if theirs is None:
            raise CudnnOpaqueError(f"{where}: the TF-format copy has no {name!r}, which the buffer holds")
        if theirs.shape != value.shape:
            raise CudnnOpaqueError(f"{where}: the TF-format copy's {name} has shape {list(theirs.shape)}; the buffer "
                                   f"gives {list(value.shape)}")
        # the summed bias was computed in the variables' dtype by TF; the sum here is the same IEEE addition
        same = np.array_equal(theirs, value.astype(theirs.dtype))
        if not same:
            diff = float(np.max(np.abs(theirs.astype(np.float64) - value.astype(np.float64))))
            raise CudnnOpaqueError(f"{where}: the opaque buffer and its TF-format copy differ in {name} (max abs "
                                   f"difference {diff:.3g}): the checkpoint's two forms of one layer disagree")
    extra = sorted(set(copy) - set(mine))
    if extra:
        raise CudnnOpaqueError(f"{where}: the TF-format copy has {extra}, which the buffer does not")
