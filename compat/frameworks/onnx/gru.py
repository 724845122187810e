"""ONNX ``GRU`` and ``RNN`` nodes as converted GRUs and simple RNNs, every attribute honoured or refused.

The operators (onnx/docs/Operators.md ``GRU``, ``RNN``; oracle ``reference/onnx_rnn.py``): ``W [dirs, 3H, in]``
(the RNN's ``[dirs, H, in]``), ``R``, ``B [dirs, 6H]`` = (Wb, Rb), gate blocks z, r, h; ``linear_before_reset``
0 (the default: the reset gate multiplies the state before the recurrent product, ``compat.gru.GRU(
reset_after=False)``, never ``torch.nn.GRU``) or 1 (after it, as torch); ``activations`` (the GRU's f, g and the
RNN's f per direction) with ``activation_alpha`` / ``activation_beta`` as the LSTM's; ``clip`` on every
pre-activation; ``direction`` forward, reverse, bidirectional; ``layout`` 1 batch-major; ``sequence_lens`` (a
node reading it loads as :class:`compat.convert.modules.OnnxGRU` / ``OnnxRNN``, whose final state is zero for
an empty sequence, as onnxruntime's).
"""
from __future__ import annotations

import numpy as np

from compat import rnn_layouts
from compat.convert.spec import ONNX_GRU, ONNX_RNN, LSTMSpec, numpy_weights
from compat.errors import InputError
from compat.formats.onnx import LSTMNode
from compat.frameworks.onnx.layout import onnx_activations
from compat.layouts import LayoutError
from compat.lstm_activations import ActivationError, activation

DEFAULTS = {"GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}


class OnnxRecurrentError(InputError, ValueError):
    """An ONNX GRU or RNN node this converter cannot represent exactly."""


def _attr(value):
    return value.decode() if isinstance(value, bytes) else value


def node_spec(node: LSTMNode, path) -> LSTMSpec:
    op = node.op
    where = f"{path}: {op} node {node.name!r}"
    attrs = dict(node.attributes)
    dtype = np.promote_types(node.tensors["W"].dtype, np.float32)
    t = {k: v.astype(dtype, copy=False) for k, v in node.tensors.items()}
    direction = _attr(attrs.get("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise OnnxRecurrentError(f"{where}: attribute direction={direction!r}: forward, reverse or bidirectional")
    D = 2 if direction == "bidirectional" else 1
    G = 3 if op == "GRU" else 1
    W, R = t["W"], t["R"]
    if W.ndim != 3 or W.shape[0] != D or R.ndim != 3 or R.shape[0] != D:
        raise OnnxRecurrentError(f"{where}: W {list(W.shape)} and R {list(R.shape)} must be [num_directions={D}, "
                                 f"{G}H, .] for direction={direction!r}")
    H = R.shape[2]
    if "hidden_size" in attrs and int(attrs["hidden_size"]) != H:
        raise OnnxRecurrentError(f"{where}: attribute hidden_size={attrs['hidden_size']} does not match R (H {H})")
    B = t.get("B")
    if B is not None and (B.ndim != 2 or B.shape[0] != D):
        raise OnnxRecurrentError(f"{where}: B has shape {list(B.shape)}; expected [{D}, {2 * G}H]")
    convert = rnn_layouts.onnx_gru if op == "GRU" else rnn_layouts.onnx_rnn
    try:
        dirs = [numpy_weights(convert(W[d], R[d], None if B is None else B[d])) for d in range(D)]
        acts = onnx_activations(attrs.get("activations"), attrs.get("activation_alpha", ()) or (),
                                attrs.get("activation_beta", ()) or (), D, DEFAULTS[op])
    except (rnn_layouts.RNNLayoutError, LayoutError) as e:
        raise OnnxRecurrentError(f"{where}: {e}") from None
    if len(set(acts)) != 1:
        raise OnnxRecurrentError(f"{where}: activations differ between the directions ({acts}); one module runs one "
                                 "set for both")
    try:
        for a in acts[0]:
            activation(a)
    except ActivationError as e:
        raise OnnxRecurrentError(f"{where}: activations {acts[0]}: {e}") from None
    options: dict = {}
    if direction != "forward":
        options["direction"] = direction
    if op == "GRU":
        lbr = attrs.get("linear_before_reset", 0)
        if lbr not in (0, 1):
            raise OnnxRecurrentError(f"{where}: attribute linear_before_reset={lbr!r}: 0 or 1")
        options["reset_after"] = bool(lbr)
        if acts[0] != DEFAULTS[op]:
            options["activations"] = acts[0]
    elif acts[0] != DEFAULTS[op]:
        options["nonlinearity"] = acts[0][0]
    if attrs.get("clip") is not None:
        clip = float(attrs["clip"])
        if not np.isfinite(clip) or clip <= 0:
            raise OnnxRecurrentError(f"{where}: attribute clip={clip}: a number > 0")
        options["clip"] = clip
    layout = attrs.get("layout", 0)
    if layout not in (0, 1):
        raise OnnxRecurrentError(f"{where}: attribute layout={layout!r}: 0 or 1")
    notes = []
    lengths = "sequence_lens" in node.inputs
    if lengths:
        notes.append("the node reads sequence_lens: pass lengths= (zero lengths give zero final states, as onnxruntime)")
    if "initial_h" in node.inputs:
        notes.append("the node reads initial_h: pass it as hx" +
                     (" ([directions, B, H]; ONNX's layout=1 has [B, directions, H])" if layout else ""))
    notes.append(f"ONNX's Y is {'[B, T, directions, H]' if layout else '[T, directions, B, H]'}; the module's output "
                 f"is {'[B, T, directions * H]' if layout else '[T, B, directions * H]'}")
    spec = LSTMSpec(name=node.name, source_format="onnx", variant=f"ONNX {op} (opset {node.opset})",
                    layers=[dirs[0] if D == 1 else tuple(dirs)], options=options, batch_first=bool(layout),
                    onnx_lengths=lengths, notes=notes, source=[(dict(node.tensors),)], oracle="onnx_rnn",
                    lengths=lengths, cell="gru" if op == "GRU" else "rnn")
    spec.module = ONNX_GRU if op == "GRU" else ONNX_RNN
    spec.semantics = {"op": op, **{k: v for k, v in attrs.items() if k != "hidden_size"}}
    return spec
