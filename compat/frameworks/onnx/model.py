"""A whole ONNX model as a checked graph (:class:`compat.convert.graph.GraphSpec`), nothing of it run.

Every node of the main graph becomes a node of the converted graph with its operator's exact semantics
(:mod:`compat.frameworks.onnx.ops`, the set in :data:`compat.frameworks.onnx.layers.LAYERS`), except the
nodes whose outputs are constants: initializers, ``Constant`` nodes and the shape and indexing subgraphs
that old exporters compute weights with are folded (:mod:`compat.formats.onnx_fold`, bounded) into the
nodes that read them. An ``LSTM`` node runs the conversion's LSTM of that node (the layer reader's,
:mod:`compat.frameworks.onnx.discover`: every attribute honoured); ``GRU`` and ``RNN`` nodes run the
conversion's GRU / RNN layer of that node where the layer reader converted one; a bidirectional node whose
directions run different activations runs its forward and reverse layers
(:mod:`compat.frameworks.onnx.directions`), their outputs concatenated. A node of any other operator, of
another domain, with a subgraph or with an attribute the converter does not honour refuses the whole
model, naming the node (``--model auto`` then converts the recurrent layers alone).

The converter's own translation, not onnx2torch's: onnx2torch imports torchvision at import time, and
no torchvision build for the CPU torch 2.13 installs from the package registries, so it cannot run where
the project's tests run (and its recurrent converters would be replaced by the project's anyway).
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from compat.convert.graph import MAX_NODES, GraphSpec, ModelInput, Node
from compat.errors import InputError
from compat.formats.onnx import OnnxModel, _attribute
from compat.formats.onnx_fold import FOLDABLE, NotConstantError
from compat.frameworks.onnx.directions import DIRECTIONS, part_names
from compat.frameworks.onnx.layers import ATTRIBUTES, LAYERS, MAX_INLINE, _typed
from compat.frameworks.onnx.ops import FLOAT_CODES, ONNX_DTYPES, RECURRENT_INPUTS, RECURRENT_OUTPUTS

RECURRENT_OUTPUT_NAMES = {"LSTM": ("Y", "Y_h", "Y_c"), "GRU": ("Y", "Y_h"), "RNN": ("Y", "Y_h")}
GRAPH_DTYPES = ("float32", "float64")
INPUT_DTYPES = ("float32", "float64", "int32", "int64", "bool")


class OnnxModelError(InputError, ValueError):
    """An ONNX model that cannot be converted whole; the message names the file, the node and why."""


def _module_name(name: str, taken: set) -> str:
    base = re.sub(r"[.\x00]", "_", name)[:1000] or "node"
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out)
    return out


def _dims(type_proto) -> Optional[List[Optional[int]]]:
    t = type_proto.tensor_type
    if not t.HasField("shape"):
        return None
    return [int(d.dim_value) if d.HasField("dim_value") else None for d in t.shape.dim]


def read_model(path, model: OnnxModel, recurrent: Dict[str, object],
               not_converted: Optional[Dict[str, str]] = None) -> GraphSpec:
    """The whole model (see the module docstring); ``recurrent``: node name -> the converted spec of that
    recurrent node; ``not_converted``: node name -> why the layer reader did not convert it. Raises
    :class:`OnnxModelError` naming the node that stops it."""
    import onnx

    proto, folder, opset = model.proto, model.folder, model.opset
    graph = proto.graph
    where = str(path)
    if len(graph.node) > MAX_NODES:
        raise OnnxModelError(f"{where}: {len(graph.node):,} nodes; the whole-model converter reads at most "
                             f"{MAX_NODES:,}")
    taken: set = set()
    values: Dict[str, Tuple[str, int]] = {}        # ONNX tensor name -> (module name, output index)
    initializers = set(model.initializers)
    inputs: List[ModelInput] = []
    float_types = set()
    for vi in graph.input:
        if vi.name in initializers:       # an initializer listed as an input too (IR < 4): a constant
            continue
        elem = vi.type.tensor_type.elem_type
        if ONNX_DTYPES.get(elem) not in INPUT_DTYPES:
            raise OnnxModelError(f"{where}: graph input {vi.name[:80]!r} has element type {elem}; the whole-model "
                                 f"converter reads inputs of {', '.join(INPUT_DTYPES)}")
        dims = _dims(vi.type)
        if dims is None:
            raise OnnxModelError(f"{where}: graph input {vi.name[:80]!r} declares no shape")
        dtype = ONNX_DTYPES[elem]
        if elem in FLOAT_CODES:
            float_types.add(dtype)
        name = _module_name(vi.name, taken)
        values[vi.name] = (name, 0)
        inputs.append(ModelInput(name, dims, dtype))
    if not inputs:
        raise OnnxModelError(f"{where}: the graph takes no input")

    def constant(name: str) -> Optional[np.ndarray]:
        """The value of ``name`` when the graph makes it from constants alone (folded, bounded), else None."""
        if name in values:
            return None
        try:
            return np.asarray(folder.value(name))
        except NotConstantError:
            return None
        except ValueError as e:      # past a bound
            raise OnnxModelError(f"{where}: folding {name[:80]!r}: {e}") from None
        except (TypeError, AttributeError, IndexError, KeyError) as e:   # a malformed constant subgraph
            raise OnnxModelError(f"{where}: {name[:80]!r} cannot be folded ({type(e).__name__}: {e})") from None

    nodes: List[Node] = []
    notes: List[str] = []
    for index, node in enumerate(graph.node):
        op = node.op_type
        label = f"node {index} ({op}{', ' + repr(node.name[:80]) if node.name else ''})"
        if node.domain not in ("", "ai.onnx"):
            raise OnnxModelError(f"{where}: {label} is of domain {node.domain[:80]!r}; the whole-model converter "
                                 "runs the default domain's operators")
        runtime_inputs = [n for n in node.input if n and n in values]
        if op in FOLDABLE and not runtime_inputs:
            folded = [constant(n) for n in node.output if n]
            if all(v is not None for v in folded):
                continue                  # a constant: its readers take the folded value
        if op not in ATTRIBUTES and op not in RECURRENT_OUTPUTS:
            known = sorted(set(ATTRIBUTES) | set(RECURRENT_OUTPUTS))
            raise OnnxModelError(f"{where}: {label}: the operator {op!r} is not one the whole-model converter "
                                 f"runs (it runs {', '.join(known)})")
        name = _module_name(node.name or f"{op}_{index}", taken)
        for attr in node.attribute:
            if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise OnnxModelError(f"{where}: {label}: attribute {attr.name!r} holds a subgraph")
        produced = {out: (name, k) for k, out in enumerate(node.output) if out}
        if op in RECURRENT_OUTPUTS and all(n in recurrent for n in part_names(node.name or f"{op}_{index}")):
            made = _split_recurrent_node(where, label, name, node, index, values, constant, opset, taken, produced)
        elif op in RECURRENT_OUTPUTS:
            made = [_recurrent_node(where, label, name, node, index, values, constant, recurrent,
                                    not_converted or {})]
        else:
            made = [_op_node(where, label, name, node, values, constant, opset, float_types)]

        def error(key, message, _label=label):
            return OnnxModelError(f"{where}: {_label}: {key + ': ' if key else ''}{message}")

        for one in made:
            LAYERS[one.kind].check(one.config, error)    # what load() will check, refused here by node
        nodes.extend(made)
        values.update(produced)
    outputs = []
    for vo in graph.output:
        if vo.name not in values:
            raise OnnxModelError(f"{where}: graph output {vo.name[:80]!r} is a constant or is made by no node")
        outputs.append(values[vo.name])
    if len(float_types) > 1:
        raise OnnxModelError(f"{where}: the model mixes floating-point types {sorted(float_types)}; the converted "
                             "model runs in one")
    dtype = next(iter(float_types), "float32")
    if dtype not in GRAPH_DTYPES:
        raise OnnxModelError(f"{where}: the model computes in {dtype}; the converter runs float32 and float64 models")
    for n in nodes:
        for k, w in n.weights.items():
            if str(w.dtype) != dtype:
                raise OnnxModelError(f"{where}: node {n.name[:80]!r}: constant input {k} is {w.dtype}; the model "
                                     f"computes in {dtype}")
    for n in nodes:
        spec = recurrent.get(n.recurrent) if n.recurrent else None
        first = getattr(spec, "first", None) if spec is not None else None
        weight_dtype = getattr(getattr(first, "weight_ih", None), "dtype", None)
        if weight_dtype is not None and str(weight_dtype) != dtype:
            raise OnnxModelError(f"{where}: recurrent node {n.name[:80]!r} has {weight_dtype} weights; the model "
                                 f"computes in {dtype}")
    return GraphSpec("onnx", inputs, outputs, nodes, notes, dtype)


def _attributes(where: str, label: str, op: str, node) -> dict:
    import onnx
    import onnx.numpy_helper

    attrs = {}
    for attr in node.attribute:
        if attr.name not in ATTRIBUTES[op]:
            raise OnnxModelError(f"{where}: {label}: attribute {attr.name[:80]!r} is not one the converter honours "
                                 f"for {op} (it honours {sorted(ATTRIBUTES[op]) or 'none'})")
        if ATTRIBUTES[op][attr.name] in ("scalar", "fill"):
            t = onnx.numpy_helper.to_array(attr.t) if attr.type == onnx.AttributeProto.TENSOR else None
            if t is None or t.size != 1 or str(t.dtype) not in ONNX_DTYPES.values():
                raise OnnxModelError(f"{where}: {label}: attribute {attr.name!r} is not a one-element tensor of a "
                                     "type the converter runs")
            attrs[attr.name] = {"value": t.reshape(-1)[0].item(), "dtype": str(t.dtype)}
            continue
        value = _attribute(onnx, attr)
        if isinstance(value, (list, tuple)) and len(value) > MAX_INLINE:
            raise OnnxModelError(f"{where}: {label}: attribute {attr.name!r} has {len(value):,} values; the converter "
                                 f"reads at most {MAX_INLINE:,}")
        if isinstance(value, (list, tuple)):
            value = [v.item() if isinstance(v, np.generic) else v for v in value]
        kind = ATTRIBUTES[op][attr.name]
        if kind in ("float", "floats") and not isinstance(value, str):
            value = [float(v) for v in value] if isinstance(value, (list, tuple)) else float(value)
        if not _typed(value, kind):
            raise OnnxModelError(f"{where}: {label}: attribute {attr.name!r} is {str(value)[:40]}; {op}'s {attr.name} "
                                 f"is of type {kind}")
        attrs[attr.name] = value
    return attrs


def _inline(where: str, label: str, k: int, value: np.ndarray) -> dict:
    if value.size > MAX_INLINE:
        raise OnnxModelError(f"{where}: {label}: constant input {k} has {value.size:,} elements; the converter "
                             f"stores constants of at most {MAX_INLINE:,} elements that are not floating point")
    dtype = str(value.dtype)
    if dtype not in ONNX_DTYPES.values():
        raise OnnxModelError(f"{where}: {label}: constant input {k} has dtype {dtype}")
    return {"value": value.reshape(-1).tolist(), "shape": list(value.shape), "dtype": dtype}


def _op_node(where, label, name, node, values, constant, opset, float_types) -> Node:
    op = node.op_type
    attrs = _attributes(where, label, op, node)
    if op == "Dropout" and opset >= 12 and len(node.input) >= 3 and node.input[2]:
        mode = constant(node.input[2])
        if mode is None or bool(np.asarray(mode).any()):
            raise OnnxModelError(f"{where}: {label}: training_mode is not a constant false; the converted model "
                                 "runs inference")
    slots, args, weights = [], [], {}
    for k, tensor_name in enumerate(node.input):
        if not tensor_name:
            slots.append(None)
        elif tensor_name in values:
            slots.append("x")
            args.append(list(values[tensor_name]))
        else:
            value = constant(tensor_name)
            if value is None:
                raise OnnxModelError(f"{where}: {label}: input {tensor_name[:80]!r} is made by no earlier node and is "
                                     "no constant (the graph is not in topological order)")
            if value.dtype.kind == "f":
                float_types.add(str(value.dtype))
                key = f"input{k}"
                slots.append({"tensor": key, "shape": list(value.shape), "dtype": str(value.dtype)})
                weights[key] = np.array(value, order="C", copy=True)   # writable, owned
            else:
                slots.append(_inline(where, label, k, value))
    while slots and slots[-1] is None:
        slots.pop()
    outputs = len(node.output)
    config = {"op": op, "opset": opset, "attributes": attrs, "inputs": slots, "outputs": outputs}
    return Node(name, op, config, [args] if args else [], {}, weights)


def _recurrent_node(where, label, name, node, index, values, constant, recurrent, not_converted) -> Node:
    op = node.op_type
    spec_name = node.name or f"{op}_{index}"
    spec = recurrent.get(spec_name)
    if spec is None:
        why = not_converted.get(spec_name) or "no recurrent converter of this version reads it"
        raise OnnxModelError(f"{where}: {label}: the {op} node is not converted ({why})")
    slots, args = _recurrent_inputs(where, label, node, values, constant)
    layout, directions = _layout_and_directions(node)
    config = {"op": op, "layout": layout, "directions": directions, "inputs": slots}
    return Node(name, op, config, [args], {}, {}, recurrent=spec.name)


def _layout_and_directions(node) -> Tuple[int, int]:
    attrs = {a.name: a for a in node.attribute}
    direction = attrs["direction"].s.decode("utf-8", "replace") if "direction" in attrs else "forward"
    layout = int(attrs["layout"].i) if "layout" in attrs else 0
    return layout, 2 if direction == "bidirectional" else 1


def _recurrent_inputs(where, label, node, values, constant, direction: Optional[int] = None):
    """A recurrent node's input slots (its weights left to the converted layer) and run-time arguments;
    ``direction`` (0 or 1): one direction's share of constant initial states (their rows of the directions
    axis), for a node split in two (:mod:`compat.frameworks.onnx.directions`)."""
    roles = RECURRENT_INPUTS[node.op_type]
    layout, _ = _layout_and_directions(node)
    slots, args = [], []
    for k, tensor_name in enumerate(node.input):
        role = roles[k]
        if role in ("W", "R", "B", "P") or not tensor_name:
            slots.append(None)
        elif tensor_name in values:
            slots.append("x")
            args.append(list(values[tensor_name]))
        else:
            value = constant(tensor_name)
            if value is None:
                raise OnnxModelError(f"{where}: {label}: input {role} ({tensor_name[:80]!r}) is made by no earlier "
                                     "node and is no constant")
            if role == "X":
                raise OnnxModelError(f"{where}: {label}: its input X is a constant")
            if direction is not None and role in ("initial_h", "initial_c"):
                if value.ndim != 3 or value.shape[layout] != 2:
                    raise OnnxModelError(f"{where}: {label}: input {role} has shape {list(value.shape)}; a "
                                         f"bidirectional node's has 2 directions on axis {layout}")
                value = np.take(value, [direction], axis=layout)
            slots.append(_inline(where, label, k, value))
    while slots and slots[-1] is None:
        slots.pop()
    return slots, args


def _split_recurrent_node(where, label, name, node, index, values, constant, opset, taken, produced) -> List[Node]:
    """A bidirectional node whose directions run different activations (:mod:`compat.frameworks.onnx.directions`):
    its forward and reverse layers as two single-direction nodes on the node's inputs (a run-time initial state
    split by a Slice of its directions axis per direction), and a Concat per output the node names, along
    ONNX's directions axis (Y [T, D, B, H] axis 1, the states [D, B, H] axis 0; with layout=1 one axis
    later). ``produced`` is updated to name the Concats."""
    op = node.op_type
    layout, _ = _layout_and_directions(node)
    made: List[Node] = []
    parts = []
    for d, part in enumerate(part_names(node.name or f"{op}_{index}")):
        slots, refs = _recurrent_inputs(where, label, node, values, constant, direction=d)
        args = []
        for k, ref in zip([k for k, slot in enumerate(slots) if slot == "x"], refs):
            if RECURRENT_INPUTS[op][k] in ("initial_h", "initial_c"):      # this direction's row of the state
                role = RECURRENT_INPUTS[op][k]
                sliced = _module_name(f"{name}/{role}_{DIRECTIONS[d]}", taken)
                if opset >= 10:
                    bounds = [np.array([d], np.int64), np.array([d + 1], np.int64), np.array([layout], np.int64)]
                    config = {"op": "Slice", "opset": opset, "attributes": {}, "outputs": 1,
                              "inputs": ["x", *[_inline(where, label, k, b) for b in bounds]]}
                else:
                    config = {"op": "Slice", "opset": opset, "outputs": 1, "inputs": ["x"],
                              "attributes": {"starts": [d], "ends": [d + 1], "axes": [layout]}}
                made.append(Node(sliced, "Slice", config, [[ref]], {}, {}))
                ref = [sliced, 0]
            args.append(ref)
        module = _module_name(f"{name}/{DIRECTIONS[d]}", taken)
        config = {"op": op, "layout": layout, "directions": 1, "inputs": slots}
        made.append(Node(module, op, config, [args], {}, {}, recurrent=part))
        parts.append(module)
    for k, out in enumerate(node.output):
        if not out:
            continue
        axis = (1 if k == 0 else 0) + layout           # Y's directions axis, or the states'
        merged = _module_name(f"{name}/{RECURRENT_OUTPUT_NAMES[op][k]}", taken)
        config = {"op": "Concat", "opset": opset, "attributes": {"axis": axis}, "inputs": ["x", "x"], "outputs": 1}
        made.append(Node(merged, "Concat", config, [[[parts[0], k], [parts[1], k]]], {}, {}))
        produced[out] = (merged, 0)
    return made


__all__ = ["OnnxModelError", "read_model"]
