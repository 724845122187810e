"""Every ONNX ``LSTM`` node of a model as an :class:`LSTMSpec`, every attribute honoured or refused.

The operator (onnx/docs/Operators.md ``LSTM``): ``W [dirs, 4H, in]``, ``R [dirs, 4H, H]``, ``B [dirs, 8H]``
= (Wb, Rb), ``P [dirs, 3H]``; gate blocks i, o, f, c, peepholes i, o, f; directions forward, reverse,
bidirectional; ``layout`` 1 is batch-major; ``clip`` clamps every pre-activation; ``input_forget`` couples
f = 1 - i; ``activations`` (f, g, h per direction) with ``activation_alpha`` / ``activation_beta``
consumed in order by the functions that take them (as onnxruntime's rnn_helpers.cc does), their
defaults where the lists run out.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from compat.convert.spec import LSTMSpec, Unknown, check_shapes
from compat.errors import InputError
from compat.formats.onnx import LSTMNode, lstm_nodes
from compat.layouts import permute_gates

# ONNX activation -> (number of alpha, beta parameters it takes, their defaults)
ONNX_ACTIVATIONS = {
    "Relu": (0, 0, ()), "Tanh": (0, 0, ()), "Sigmoid": (0, 0, ()), "Softsign": (0, 0, ()), "Softplus": (0, 0, ()),
    "Affine": (1, 1, (1.0, 0.0)), "LeakyRelu": (1, 0, (0.01,)), "ThresholdedRelu": (1, 0, (1.0,)),
    "ScaledTanh": (1, 1, (1.0, 1.0)), "HardSigmoid": (1, 1, (0.2, 0.5)), "Elu": (1, 0, (1.0,)),
}


class OnnxNodeError(InputError, ValueError):
    """An ONNX LSTM node this converter cannot represent exactly."""


def activation_list(attrs: Dict[str, object], dirs: int, where: str) -> List[Tuple]:
    """The node's activations, one entry per function: a name, or (name, alpha[, beta])."""
    names = attrs.get("activations")
    if names is None:
        return [("Sigmoid",), ("Tanh",), ("Tanh",)] * dirs
    names = list(names)
    if len(names) != 3 * dirs:
        raise OnnxNodeError(f"{where}: {len(names)} activations; a {'bidirectional' if dirs == 2 else 'one-direction'} "
                            f"LSTM has {3 * dirs} (f, g, h per direction)")
    alphas = list(attrs.get("activation_alpha", []) or [])
    betas = list(attrs.get("activation_beta", []) or [])
    out = []
    canon = {k.lower(): k for k in ONNX_ACTIVATIONS}
    for n in names:
        key = canon.get(str(n).lower())
        if key is None:
            raise OnnxNodeError(f"{where}: activation {n!r} is not one of ONNX's {sorted(ONNX_ACTIVATIONS)}")
        n_alpha, n_beta, defaults = ONNX_ACTIVATIONS[key]
        params = []
        if n_alpha:
            params.append(float(alphas.pop(0)) if alphas else defaults[0])
        if n_beta:
            params.append(float(betas.pop(0)) if betas else defaults[1])
        out.append((key, *params))
    if alphas or betas:
        raise OnnxNodeError(f"{where}: activation_alpha/activation_beta hold more values than the activations take")
    return out


def _compat_activation(a: Tuple):
    name = a[0]
    if len(a) == 1:
        return {"Sigmoid": "sigmoid", "Tanh": "tanh"}.get(name, name)
    return tuple(a)


def _direction_weights(node: LSTMNode, d: int, H: int, dtype) -> Dict[str, np.ndarray]:
    t = node.tensors
    w = {"weight_ih": np.ascontiguousarray(permute_gates(t["W"][d].astype(dtype), "iofc", "ifgo")),
         "weight_hh": np.ascontiguousarray(permute_gates(t["R"][d].astype(dtype), "iofc", "ifgo"))}
    if "B" in t:
        b = t["B"][d].astype(dtype)
        w["bias_ih"] = np.ascontiguousarray(permute_gates(b[:4 * H], "iofc", "ifgo"))
        w["bias_hh"] = np.ascontiguousarray(permute_gates(b[4 * H:], "iofc", "ifgo"))
    if "P" in t:
        p = t["P"][d].astype(dtype).reshape(3, H)
        w["peephole"] = np.ascontiguousarray(p[[0, 2, 1]])  # ONNX i, o, f -> i, f, o
    return w


def node_spec(node: LSTMNode, path) -> LSTMSpec:
    where = f"{path}: LSTM node {node.name!r}"
    a = node.attributes
    direction = a.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise OnnxNodeError(f"{where}: direction {direction!r} is not forward, reverse or bidirectional")
    dirs = 2 if direction == "bidirectional" else 1
    W, R = node.tensors["W"], node.tensors["R"]
    if R.ndim != 3 or R.shape[0] != dirs or R.shape[1] != 4 * R.shape[2]:
        raise OnnxNodeError(f"{where}: R has shape {list(R.shape)}; expected [{dirs}, 4H, H]")
    H = R.shape[2]
    if "hidden_size" in a and int(a["hidden_size"]) != H:
        raise OnnxNodeError(f"{where}: hidden_size={a['hidden_size']} but R has H = {H}")
    if W.ndim != 3 or W.shape[:2] != (dirs, 4 * H):
        raise OnnxNodeError(f"{where}: W has shape {list(W.shape)}; expected [{dirs}, {4 * H}, input_size]")
    if "B" in node.tensors and node.tensors["B"].shape != (dirs, 8 * H):
        raise OnnxNodeError(f"{where}: B has shape {list(node.tensors['B'].shape)}; expected [{dirs}, {8 * H}]")
    if "P" in node.tensors and node.tensors["P"].shape != (dirs, 3 * H):
        raise OnnxNodeError(f"{where}: P has shape {list(node.tensors['P'].shape)}; expected [{dirs}, {3 * H}]")
    layout = int(a.get("layout", 0))
    if layout not in (0, 1):
        raise OnnxNodeError(f"{where}: layout={layout}; ONNX defines 0 and 1")
    acts = activation_list(a, dirs, where)
    if dirs == 2 and acts[:3] != acts[3:]:
        raise OnnxNodeError(f"{where}: the two directions use different activations ({acts[:3]} and {acts[3:]}); "
                            "one module runs one set")
    clip = a.get("clip")
    input_forget = bool(int(a.get("input_forget", 0)))
    dtype = np.promote_types(W.dtype, np.float32)
    ws = [_direction_weights(node, d, H, dtype) for d in range(dirs)]
    layers = [ws[0] if dirs == 1 else (ws[0], ws[1])]
    check_shapes(node.name, layers)
    notes = []
    if "sequence_lens" in node.inputs:
        notes.append("the node reads sequence_lens: pass a PackedSequence (or lengths=)")
    if "initial_h" in node.inputs or "initial_c" in node.inputs:
        notes.append("the node reads initial_h / initial_c: pass them as hx")
    notes.append("ONNX's Y is [T, directions, B, H]; the module's output is [T, B, directions * H]")
    if "output_sequence" in a:
        notes.append(f"opset-1 output_sequence={a['output_sequence']}")
    spec = LSTMSpec(name=node.name, source_format="onnx", variant=f"ONNX LSTM (opset {node.opset})", layers=layers,
                    direction=direction, batch_first=layout == 1,
                    activations=tuple(_compat_activation(x) for x in acts[:3]),
                    preact_clip=None if clip is None else float(clip), input_forget=input_forget, notes=notes,
                    source=[({k: v for k, v in node.tensors.items()},)])
    spec.semantics = {"oracle": "onnx", "activations": [list(x) for x in acts], "clip": clip,
                      "input_forget": int(input_forget), "direction": direction, "layout": layout}
    return spec


def discover(path) -> List[LSTMSpec]:
    """Every LSTM node of the ONNX model at ``path``."""
    return [node_spec(n, path) for n in lstm_nodes(path)]
