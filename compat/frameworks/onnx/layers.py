"""The node kinds of whole ONNX models (:class:`compat.convert.graph.LayerKind` by operator name).

A node's configuration, as stored (JSON, checked here before anything is built):

    op          the operator (the kind)
    opset       the model's default-domain opset (the operator's semantics per version)
    attributes  its attributes: numbers, strings and lists of them, each checked against the operator's
    inputs      one slot per operator input in its positional order: null (left out), "x" (the next run-time
                input of the node's ``args``), {"tensor", "shape", "dtype"} (a floating-point constant: a
                tensor of the node's weights; finite, except where :data:`INFINITE_INPUTS` names the input a
                constant of the graph that may hold ±inf) or {"value", "shape", "dtype"} (a small constant stored
                inline, finite)
    outputs     how many outputs the node returns (ONNX's positions; a reference ``[node, k]`` is output k)

A recurrent node (``LSTM``, ``GRU``, ``RNN``) runs the conversion's recurrent layer of the same node
(:class:`compat.frameworks.onnx.ops.RecurrentNode`) and stores ``op``, ``layout``, ``directions`` and
``inputs`` (X, sequence_lens, initial_h, initial_c: run-time or inline).
"""
from __future__ import annotations

import math
from typing import Dict, FrozenSet, Optional, Tuple

import numpy as np

from compat.convert.graph import LayerKind
from compat.frameworks.onnx.emit import emit_op, emit_recurrent
from compat.frameworks.onnx.ops import (FLOAT_CODES, ONNX_DTYPES, OPS, RECURRENT_INPUTS, RECURRENT_OUTPUTS, OnnxNode,
                                        RecurrentNode)

MAX_INLINE = 1 << 16          # elements of a constant stored in a node's configuration
OPSETS = (1, 30)

# Each operator's attributes: name -> type ("int", "float", "ints", "floats", "str", "scalar": a one-element
# tensor; "fill": a one-element tensor that is a constant of the graph, whose floating-point value may be ±inf
# (ConstantOfShape's, as PyTorch exports torch.full_like(x, float("-inf")); never NaN)); nothing else is read
_AXES = {"axes": "ints"}
ATTRIBUTES: Dict[str, Dict[str, str]] = {
    "Identity": {}, "Add": {}, "Sub": {}, "Mul": {}, "Div": {}, "Pow": {}, "MatMul": {},
    "Gemm": {"alpha": "float", "beta": "float", "transA": "int", "transB": "int"},
    "Gather": {"axis": "int"},
    "Tanh": {}, "Sigmoid": {}, "Relu": {}, "Exp": {}, "Log": {}, "Neg": {}, "Sqrt": {}, "Abs": {}, "Reciprocal": {},
    "LeakyRelu": {"alpha": "float"},
    "Softmax": {"axis": "int"}, "LogSoftmax": {"axis": "int"},
    "Transpose": {"perm": "ints"},
    "Squeeze": _AXES, "Unsqueeze": _AXES, "Reshape": {"allowzero": "int"}, "Flatten": {"axis": "int"},
    "Concat": {"axis": "int"}, "Slice": {"starts": "ints", "ends": "ints", "axes": "ints"},
    "Shape": {"start": "int", "end": "int"},
    "ReduceMean": {"axes": "ints", "keepdims": "int", "noop_with_empty_axes": "int"},
    "ReduceSum": {"axes": "ints", "keepdims": "int", "noop_with_empty_axes": "int"},
    "ReduceMax": {"axes": "ints", "keepdims": "int", "noop_with_empty_axes": "int"},
    "ReduceProd": {"axes": "ints", "keepdims": "int", "noop_with_empty_axes": "int"},
    "TopK": {"k": "int", "axis": "int", "largest": "int", "sorted": "int"},
    "Range": {},
    "ScatterElements": {"axis": "int", "reduction": "str"},
    "Dropout": {"ratio": "float", "seed": "int"},
    "Cast": {"to": "int"},
    "Expand": {},
    "ConstantOfShape": {"value": "fill"},
    "Equal": {}, "Less": {}, "Greater": {}, "LessOrEqual": {}, "GreaterOrEqual": {}, "Not": {}, "And": {}, "Or": {},
    "Where": {},
    "Clip": {"min": "float", "max": "float"},
    "Max": {}, "Min": {}, "Sum": {}, "Mean": {},
    "Softplus": {}, "Softsign": {}, "Elu": {"alpha": "float"}, "Selu": {"alpha": "float", "gamma": "float"},
    "HardSigmoid": {"alpha": "float", "beta": "float"}, "Erf": {}, "Sign": {}, "Floor": {}, "Ceil": {},
    "Split": {"axis": "int", "split": "ints", "num_outputs": "int"},
    "ArgMax": {"axis": "int", "keepdims": "int", "select_last_index": "int"},
    "ArgMin": {"axis": "int", "keepdims": "int", "select_last_index": "int"},
    "Tile": {},
    "ReduceMin": {"axes": "ints", "keepdims": "int", "noop_with_empty_axes": "int"},
    "ReduceL2": {"axes": "ints", "keepdims": "int", "noop_with_empty_axes": "int"},
    "ReduceLogSumExp": {"axes": "ints", "keepdims": "int", "noop_with_empty_axes": "int"},
}
# The most inputs each operator takes, and the least
ARITY = {"Gemm": (2, 3), "Gather": (2, 2), "TopK": (1, 2), "Range": (3, 3), "ScatterElements": (3, 3),
         "ReduceProd": (1, 2), "Concat": (1, 1 << 10), "Slice": (1, 5), "Squeeze": (1, 2),
         "Unsqueeze": (1, 2), "Reshape": (2, 2), "ReduceMean": (1, 2), "ReduceSum": (1, 2), "ReduceMax": (1, 2),
         "Dropout": (1, 3), "Expand": (2, 2), "Where": (3, 3), "Clip": (1, 3), "Split": (1, 2), "Tile": (2, 2),
         "ReduceMin": (1, 2), "ReduceL2": (1, 2), "ReduceLogSumExp": (1, 2),
         **{op: (1, 1 << 10) for op in ("Max", "Min", "Sum", "Mean")},
         **{op: (2, 2) for op in ("Add", "Sub", "Mul", "Div", "Pow", "MatMul", "Equal", "Less", "Greater",
                                  "LessOrEqual", "GreaterOrEqual", "And", "Or")}}
NODE_OUTPUTS = {"Dropout": 2, "TopK": 2, "Split": 1 << 10}
# The inputs that are constants of the graph, not trained parameters, where a constant feeds them: the only
# floating-point constants that may hold ±inf (compat.convert.graph.infinite_allowed; never NaN). Where's branches
# (PyTorch's ``masked_fill(mask, float("-inf"))`` before a masked softmax exports ``Where(mask, -inf, x)``), Clip's
# bounds and Max / Min's operands (an open bound), a comparison's threshold. A MatMul / Gemm weight, an Add, Sub,
# Mul or Div operand (a bias, a scale, normalisation statistics), a Gather table (an embedding), a Pow exponent and
# everything else stay finite. None: every input position.
INFINITE_INPUTS: Dict[str, Optional[Tuple[int, ...]]] = {
    "Where": (1, 2), "Clip": (1, 2), "Max": None, "Min": None,
    **{op: None for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual")}}
FLOAT_DTYPES = ("float16", "float32", "float64")
INLINE_DTYPES = tuple(ONNX_DTYPES.values())


def _typed(value, kind: str) -> bool:
    number = (int, float)
    if kind == "int":
        return type(value) is int
    if kind == "float":
        return type(value) in number and math.isfinite(value)
    if kind == "str":
        return isinstance(value, str)
    if kind in ("scalar", "fill"):     # a one-element tensor attribute: {"value": number, "dtype": name}
        return (isinstance(value, dict) and set(value) == {"value", "dtype"} and value["dtype"] in INLINE_DTYPES
                and type(value["value"]) in (int, float, bool)
                and (math.isfinite(value["value"]) or kind == "fill" and value["dtype"] in FLOAT_DTYPES
                     and not math.isnan(value["value"])))
    if not isinstance(value, list) or len(value) > MAX_INLINE:
        return False
    return all(_typed(v, kind[:-1]) for v in value)


def _count(shape) -> Optional[int]:
    if not isinstance(shape, list) or len(shape) > 8 or any(type(d) is not int or not 0 <= d < 1 << 31 for d in shape):
        return None
    return math.prod(shape)


def _check_slot(slot, k: int, error, recurrent: bool) -> None:
    if slot is None or slot == "x":
        return
    if not isinstance(slot, dict):
        raise error(f"inputs/{k}", f"expected null, \"x\" or a constant, got {str(slot)[:40]!r}")
    count = _count(slot.get("shape"))
    if count is None:
        raise error(f"inputs/{k}/shape", "expected a list of at most 8 sizes")
    if "tensor" in slot and not recurrent:
        if set(slot) != {"tensor", "shape", "dtype"} or slot["dtype"] not in FLOAT_DTYPES:
            raise error(f"inputs/{k}", "a constant tensor has tensor, shape and a floating-point dtype")
        if slot["tensor"] != f"input{k}":
            raise error(f"inputs/{k}/tensor", f"expected 'input{k}'")
        return
    if set(slot) != {"value", "shape", "dtype"} or slot["dtype"] not in INLINE_DTYPES:
        raise error(f"inputs/{k}", f"a constant stored inline has value, shape and dtype (one of {INLINE_DTYPES})")
    if count > MAX_INLINE:
        raise error(f"inputs/{k}", f"{count} elements; at most {MAX_INLINE} are stored inline")
    flat = slot["value"]
    if not isinstance(flat, list) or len(flat) != count or not all(type(v) in (int, float, bool) for v in flat):
        raise error(f"inputs/{k}/value", f"expected a flat list of {count} numbers")
    if slot["dtype"] not in FLOAT_DTYPES:     # an integer or boolean constant: whole numbers its dtype holds
        info = np.iinfo(slot["dtype"]) if slot["dtype"] != "bool" else np.iinfo(np.uint8)
        if not all(type(v) in (int, bool) and info.min <= v <= (1 if slot["dtype"] == "bool" else info.max)
                   for v in flat):
            raise error(f"inputs/{k}/value", f"expected whole numbers a {slot['dtype']} holds")
    elif not all(math.isfinite(v) for v in flat):   # a recurrent node's constant initial state
        raise error(f"inputs/{k}/value", "expected finite numbers (NaN or infinite values in a constant initial "
                                         "state)")


def _check_op(config: dict, error) -> None:
    if set(config) != {"op", "opset", "attributes", "inputs", "outputs"}:
        raise error("", f"expected the settings op, opset, attributes, inputs, outputs; got {sorted(config)}")
    op = config["op"]
    if type(config["opset"]) is not int or not OPSETS[0] <= config["opset"] <= OPSETS[1]:
        raise error("opset", f"expected an opset in {list(OPSETS)}")
    attrs = config["attributes"]
    if not isinstance(attrs, dict):
        raise error("attributes", "expected a mapping")
    known = ATTRIBUTES[op]
    for name, value in attrs.items():
        if name not in known:
            raise error(f"attributes/{str(name)[:40]}", f"not an attribute of {op} this converter honours")
        if not _typed(value, known[name]):
            raise error(f"attributes/{name}", f"expected {known[name]}, got {str(value)[:40]}")
    if op == "Cast" and attrs.get("to") not in ONNX_DTYPES:
        raise error("attributes/to", f"a data type the converter runs ({sorted(ONNX_DTYPES)})")
    if op == "TopK" and attrs.get("sorted", 1) != 1:
        raise error("attributes/sorted", "TopK with sorted=0 returns its values in an order the operator leaves "
                                         "undefined; the converter runs sorted=1")
    if op == "TopK" and "k" not in attrs and (len(config["inputs"]) < 2 or config["inputs"][1] is None):
        raise error("inputs", "TopK needs its k (an attribute before opset 10, an input from 10)")
    if op == "TopK" and isinstance(config["inputs"], list) and config["inputs"] and config["inputs"][0] != "x":
        # A TopK of constants alone is folded at conversion; one over a constant with a run-time k (a size of
        # the batch, as PyTorch's export of unsorted packing computes it) fits only the batch it was built for.
        raise error("inputs/0", "TopK's X is a run-time input (a TopK over a constant is not converted)")
    if op == "ScatterElements" and attrs.get("reduction", "none") not in ("none", "add", "mul", "max", "min"):
        raise error("attributes/reduction", "none, add, mul, max or min")
    if op == "Concat" and "axis" not in attrs:
        raise error("attributes/axis", "Concat needs its axis")
    if op == "Slice" and config["opset"] < 10 and not {"starts", "ends"} <= set(attrs):
        raise error("attributes", "Slice before opset 10 needs starts and ends")
    inputs = config["inputs"]
    if op == "Split":
        _check_split(config, error)
    if op == "Tile" and config["opset"] < 6:
        raise error("opset", "Tile before opset 6 takes its tiles and axis as inputs; the converter runs Tile from "
                             "opset 6 (repeats)")
    if op == "Selu" and config["opset"] < 6:
        raise error("opset", "Selu before opset 6 defaults alpha and gamma to 1.6732 and 1.0507 (Operators.md "
                             "Selu-1), which onnx's reference evaluator does not run; the converter runs Selu from "
                             "opset 6")
    if op in ("Max", "Min", "Sum", "Mean") and None in inputs:
        raise error("inputs", f"{op}'s inputs are all required")
    if op == "Slice" and config["opset"] >= 10 and (len(inputs) < 3 or None in inputs[:3]):
        raise error("inputs", "Slice from opset 10 takes starts and ends as inputs")
    if op == "Unsqueeze" and "axes" not in attrs and (len(inputs) < 2 or inputs[1] is None):
        raise error("inputs", "Unsqueeze needs its axes (an attribute before opset 13, an input from 13)")
    lo, hi = ARITY.get(op, (1, 1))
    if not isinstance(inputs, list) or not lo <= len(inputs) <= hi:
        raise error("inputs", f"{op} takes {lo} to {hi} inputs")
    for k, slot in enumerate(inputs):
        _check_slot(slot, k, error, recurrent=False)
    if inputs[0] is None:
        raise error("inputs/0", f"{op}'s first input is required")
    want = NODE_OUTPUTS.get(op, 1)
    if type(config["outputs"]) is not int or not 1 <= config["outputs"] <= want:
        raise error("outputs", f"{op} returns 1 to {want} outputs")


def _check_split(config: dict, error) -> None:
    """Split's parts (Operators.md Split): sizes (the attribute ``split`` before opset 13, the input from 13),
    or ``num_outputs`` (opset 18, which must be the number of outputs), or one equal part per output."""
    attrs, inputs, outputs = config["attributes"], config["inputs"], config["outputs"]
    sized = "split" in attrs or (len(inputs) > 1 and inputs[1] is not None)
    if "num_outputs" in attrs and (sized or attrs["num_outputs"] != outputs):
        raise error("attributes/num_outputs", "num_outputs is the number of outputs, with no split sizes")
    if "split" in attrs and (len(attrs["split"]) != outputs or any(v < 0 for v in attrs["split"])):
        raise error("attributes/split", f"one size of at least 0 per output ({outputs})")


def _check_recurrent(config: dict, error) -> None:
    if set(config) != {"op", "layout", "directions", "inputs"}:
        raise error("", f"expected the settings op, layout, directions, inputs; got {sorted(config)}")
    if config["layout"] not in (0, 1) or type(config["layout"]) is not int:
        raise error("layout", "0 or 1")
    if config["directions"] not in (1, 2) or type(config["directions"]) is not int:
        raise error("directions", "1 or 2")
    roles = RECURRENT_INPUTS[config["op"]]
    inputs = config["inputs"]
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= len(roles):
        raise error("inputs", f"{config['op']} takes 1 to {len(roles)} inputs")
    for k, slot in enumerate(inputs):
        if roles[k] in ("W", "R", "B", "P"):
            if slot is not None:
                raise error(f"inputs/{k}", f"{roles[k]} is the converted recurrent layer's weight, not stored here")
            continue
        _check_slot(slot, k, error, recurrent=True)
    if inputs[0] != "x":
        raise error("inputs/0", "X is a run-time input")


def _constants(config: dict) -> FrozenSet[str]:
    """The node's tensors that may hold ±inf: its constant inputs at :data:`INFINITE_INPUTS`'s positions."""
    if config["op"] not in INFINITE_INPUTS:
        return frozenset()
    positions = INFINITE_INPUTS[config["op"]]
    return frozenset(slot["tensor"] for k, slot in enumerate(config["inputs"])
                     if isinstance(slot, dict) and "tensor" in slot and (positions is None or k in positions))


def _op_kind(op: str) -> LayerKind:
    def check(config, error):
        if config.get("op") != op:
            raise error("op", f"expected {op!r}")
        _check_op(config, error)

    return LayerKind(op, check, lambda config, recurrent=None: OnnxNode(config), emit_op, False,
                     lambda config: config["outputs"], ("list?",), constants=_constants)


def _recurrent_kind(op: str) -> LayerKind:
    def check(config, error):
        if config.get("op") != op:
            raise error("op", f"expected {op!r}")
        _check_recurrent(config, error)

    return LayerKind(op, check, lambda config, recurrent=None: RecurrentNode(config, recurrent), emit_recurrent, True,
                     lambda config: RECURRENT_OUTPUTS[op], ("list?",))


LAYERS: Dict[str, LayerKind] = {op: _op_kind(op) for op in OPS}
LAYERS.update({op: _recurrent_kind(op) for op in RECURRENT_OUTPUTS})

__all__ = ["LAYERS", "ATTRIBUTES", "FLOAT_CODES", "INFINITE_INPUTS", "MAX_INLINE"]
