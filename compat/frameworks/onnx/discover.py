"""Every ONNX ``LSTM`` node of a model as an :class:`LSTMSpec`, every attribute honoured or refused (``GRU`` and
``RNN`` nodes: :mod:`compat.frameworks.onnx.gru`).

The operator (onnx/docs/Operators.md ``LSTM``): ``W [dirs, 4H, in]``, ``R [dirs, 4H, H]``, ``B [dirs, 8H]``
= (Wb, Rb), ``P [dirs, 3H]``; gate blocks i, o, f, c, peepholes i, o, f; directions forward, reverse,
bidirectional; ``layout`` 1 is batch-major; ``clip`` clamps every pre-activation; ``input_forget`` couples
f = 1 - i; ``activations`` (f, g, h per direction) with ``activation_alpha`` / ``activation_beta``
consumed in order by the functions that take them, onnxruntime's defaults where the lists run out. The
tensors and attributes go through :func:`compat.layouts.convert` (its ``onnx`` layout), which refuses
whatever it cannot honour.
"""
from __future__ import annotations

import numpy as np

from compat import layouts
from compat.convert.spec import ONNX_LSTM, Found, LSTMSpec, SourceItem, carry, numpy_weights
from compat.errors import InputError
from compat.formats.onnx import LSTMNode, read_onnx
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES


class OnnxNodeError(InputError, ValueError):
    """An ONNX LSTM node this converter cannot represent exactly."""


def node_spec(node: LSTMNode, path) -> LSTMSpec:
    where = f"{path}: LSTM node {node.name!r}"
    attrs = dict(node.attributes)
    notes = []
    if "output_sequence" in attrs:
        # opset 1: whether Y is produced at all, not how it is computed
        notes.append(f"opset-1 output_sequence={attrs.pop('output_sequence')}")
    dtype = np.promote_types(node.tensors["W"].dtype, np.float32)
    tensors = {k: v.astype(dtype, copy=False) for k, v in node.tensors.items()}
    try:
        converted = layouts.convert("onnx", tensors, attrs)
    except layouts.LayoutError as e:
        raise OnnxNodeError(f"{where}: {e}") from None
    options = dict(converted.options)
    batch_first = bool(options.pop("batch_first", False))
    weights = numpy_weights(converted.weights)
    if "sequence_lens" in node.inputs:
        notes.append("the node reads sequence_lens: pass lengths= (zero lengths give zero final states, as "
                     "onnxruntime)")
    if "initial_h" in node.inputs or "initial_c" in node.inputs:
        notes.append("the node reads initial_h / initial_c: pass them as hx"
                     + (" ([directions, B, H]; ONNX's layout=1 has [B, directions, H])" if batch_first else ""))
    notes.append("ONNX's Y is [T, directions, B, H]; the module's output is [T, B, directions * H]"
                 if not batch_first else
                 "ONNX's Y is [B, T, directions, H]; the module's output is [B, T, directions * H]")
    spec = LSTMSpec(name=node.name, source_format="onnx", variant=f"ONNX LSTM (opset {node.opset})",
                    layers=[weights], options=options, batch_first=batch_first,
                    onnx_lengths="sequence_lens" in node.inputs, notes=notes, source=[(dict(node.tensors),)],
                    oracle="onnx", lengths="sequence_lens" in node.inputs)
    spec.module = ONNX_LSTM
    spec.semantics = {k: v for k, v in attrs.items() if k != "hidden_size"}
    return spec


def discover(path, *, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> Found:
    """Every LSTM node of the ONNX model at ``path``, and every other recurrent node and initializer (none
    decoded or folded above ``max_tensor_bytes``)."""
    model = read_onnx(path, max_tensor_bytes=max_tensor_bytes)
    specs, items = [], []
    by_node = {}
    from compat.frameworks.onnx.directions import SPLIT_NOTE, split
    from compat.frameworks.onnx.gru import node_spec as rnn_node_spec

    for node in [*model.lstm_nodes, *model.rnn_nodes]:
        read = node_spec if node.op == "LSTM" else rnn_node_spec
        parts = split(node)
        for part in parts or (node,):
            spec = read(part, path)
            if parts:
                spec.notes.insert(0, SPLIT_NOTE.format(op=node.op, node=node.name, parts=[p.name for p in parts]))
            specs.append(spec)
            by_node.setdefault(node.name, spec)     # the node's initializers: listed under its first layer
            items.append(SourceItem(spec.name, f"{node.op} node", {r: tuple(t.shape) for r, t in part.tensors.items()},
                                    converted=spec, recurrent=True))
    for name, op in model.other_recurrent:
        items.append(SourceItem(name, f"{op} node", reason=f"an ONNX {op} node: a recurrent kind this converter does "
                                                           "not convert yet (its initializers are carried)",
                                recurrent=True))
    for name, decode in model.initializers.items():
        shape = {name: model.initializer_shapes[name]}
        reader = model.read_by.get(name)
        if reader is not None:
            items.append(SourceItem(name, "initializer", shape, converted=by_node[reader]))
            continue
        item = SourceItem(name, "initializer", shape, reason="not read by a recurrent node")
        carry(item, name, decode())
        items.append(item)
    if model.other_nodes:
        summary = ", ".join(f"{op} x{n}" for op, n in sorted(model.other_nodes.items()))
        items.append(SourceItem(f"({sum(model.other_nodes.values())} other nodes)", "graph nodes",
                                reason=f"not recurrent layers ({summary}); their initializers are listed here"))
    # every recurrent node converted (LSTM here; GRU / RNN wherever a reader converts them), by node name
    converted = {i.name: i.converted for i in items if i.recurrent and i.converted is not None}
    not_converted = {i.name: i.reason for i in items if i.recurrent and i.converted is None}
    graph, refused = _whole_model(path, model, converted, not_converted)
    if graph is not None:   # the initializers and nodes no recurrent layer reads are in the whole model
        for item in items:
            if item.converted is None and not item.recurrent:
                item.reason = ("in the whole model" if item.kind == "initializer" else
                               item.reason.replace("their initializers are listed here", "in the whole model"))
    return Found(specs, items, graph, refused)


def _whole_model(path, model, converted, not_converted):
    """(the whole model as a graph, None) or (None, why it is not converted whole)."""
    from compat.frameworks.onnx.model import read_model

    import onnx

    # every node against its operator's schema (inputs, outputs, attributes and their types), as onnxruntime
    # checks them before it runs a graph; the graph's own declarations are left to the reader, as onnxruntime
    # leaves them
    context = onnx.checker.C.CheckerContext()
    context.ir_version = model.proto.ir_version
    context.opset_imports = {o.domain: o.version for o in model.proto.opset_import}
    for index, node in enumerate(model.proto.graph.node):
        if node.domain not in ("", "ai.onnx"):
            continue          # refused by the reader, by name
        try:
            onnx.checker.check_node(node, context)
        except Exception as e:  # noqa: BLE001 - onnx raises its own ValidationError
            return None, (f"{path}: node {index} ({node.op_type}{', ' + repr(node.name[:80]) if node.name else ''}): "
                          f"onnx.checker refuses it ({str(e).strip().splitlines()[0][:300]})")
    try:
        graph = read_model(path, model, converted, not_converted)
    except InputError as e:          # OnnxModelError, and the file's own errors met while folding
        return None, str(e)
    except (ValueError, TypeError, KeyError, IndexError) as e:   # a malformed node protobuf accepts
        return None, f"{path}: the graph cannot be read as a whole model ({type(e).__name__}: {str(e)[:200]})"
    graph.source = {"proto": model.proto}
    return graph, None
