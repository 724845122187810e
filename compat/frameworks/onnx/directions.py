"""A bidirectional ONNX recurrent node whose two directions run different activations, as two single-direction
nodes.

onnx/docs/Operators.md (LSTM, GRU, RNN) lists ``activations`` per direction: the forward direction's functions
first, then the reverse direction's, and ``activation_alpha`` / ``activation_beta`` are consumed in that order.
onnxruntime runs each direction with its own entries (``onnxruntime/core/providers/cpu/rnn/deep_cpu_gru.cc``,
``deep_cpu_lstm.cc``, ``rnn.cc``: the forward pass takes entries 0.., the reverse pass the next ones), so the two
directions may differ in their functions or only in their alphas and betas (an ``activation_alpha`` list that
runs out in the reverse direction's functions gives them onnxruntime's defaults). The project's recurrent
modules run one set of activations for both directions; such a node converts as two single-direction layers,
``<node>/forward`` and ``<node>/reverse``, each with its direction's weights (``W``, ``R``, ``B``, ``P`` rows
``[d:d+1]``) and its activations with explicit alphas and betas. The whole-model reader
(:mod:`compat.frameworks.onnx.model`) runs both on the node's inputs and concatenates their outputs along the
directions axis, which is ONNX's ``Y`` / ``Y_h`` / ``Y_c`` of the node (Y[:, 0] forward, Y[:, 1] reverse).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from compat.formats.onnx import LSTMNode
from compat.frameworks.onnx.layout import _ONNX_PARAMS, onnx_activations
from compat.layouts import LayoutError

# each operator's activations for one direction, when the node names none (Operators.md)
DEFAULTS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}
DIRECTIONS = ("forward", "reverse")


def part_names(name: str) -> Tuple[str, str]:
    """The names of the single-direction layers a split node ``name`` converts to."""
    return f"{name}/forward", f"{name}/reverse"


def _explicit(functions: tuple) -> dict:
    """One direction's resolved activations as node attributes, every alpha and beta written out."""
    names, alphas, betas = [], [], []
    for spec in functions:
        name, args = (spec[0], list(spec[1:])) if isinstance(spec, tuple) else (spec, [])
        takes_alpha, takes_beta = _ONNX_PARAMS[name]
        names.append(name)
        if takes_alpha:
            alphas.append(float(args.pop(0)))
        if takes_beta:
            betas.append(float(args.pop(0)))
    attrs: dict = {"activations": names}
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs


def split(node: LSTMNode) -> Optional[Tuple[LSTMNode, LSTMNode]]:
    """The node's forward and reverse directions as two single-direction nodes where it is bidirectional and
    its directions' activations differ; None otherwise (and where its activations do not parse: the node's
    own reader names what is wrong with them)."""
    attrs = node.attributes
    direction = attrs.get("direction", "forward")
    if (direction.decode() if isinstance(direction, bytes) else direction) != "bidirectional":
        return None
    try:
        per_direction = onnx_activations(attrs.get("activations"), attrs.get("activation_alpha", ()) or (),
                                         attrs.get("activation_beta", ()) or (), 2, DEFAULTS[node.op])
    except LayoutError:
        return None
    if per_direction[0] == per_direction[1] or any(t.ndim < 1 or t.shape[0] != 2 for t in node.tensors.values()):
        return None           # one module runs it (or its reader names the tensors' shapes at fault)
    parts = []
    for d, (name, functions) in enumerate(zip(part_names(node.name), per_direction)):
        kept = {k: v for k, v in attrs.items() if k not in ("activations", "activation_alpha", "activation_beta")}
        kept.update(direction=DIRECTIONS[d], **_explicit(functions))
        tensors = {role: t[d:d + 1] for role, t in node.tensors.items()}
        parts.append(dataclasses.replace(node, name=name, attributes=kept, tensors=tensors))
    return parts[0], parts[1]


SPLIT_NOTE = ("the bidirectional {op} node {node!r} runs different activations in its two directions: converted as "
              "two single-direction layers {parts}, each with its direction's weights and its direction's row of "
              "the initial states as hx (ONNX's Y and final states concatenate them along the directions axis, "
              "forward first; their initializers are listed under the first)")

__all__ = ["SPLIT_NOTE", "part_names", "split"]
