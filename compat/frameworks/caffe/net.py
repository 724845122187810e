"""A whole BVLC Caffe net (``.prototxt`` + ``.caffemodel``) as a converted graph, for the TEST phase.

The net's layers are read from the prototxt (never executed: a ``Python`` layer is refused by name), filtered
by phase as ``Net::FilterNet`` does (:func:`phase_included`), and each becomes a node of
:mod:`compat.convert.graph` through its record in :mod:`compat.frameworks.caffe.layers`; the trained blobs come
from the ``.caffemodel`` by layer name (``Net::CopyTrainedLayersFrom``). Blobs are values of the graph: a
layer's top k is the reference ``[layer, k]``, and a top that reuses a bottom's name (an in-place layer) makes
later layers read the new value, as Caffe's blob of that name then holds it. The net's inputs are its
``input`` / ``input_shape`` / ``input_dim`` blobs and ``Input`` layers' tops, in that order; its outputs every
top no later layer reads (``Net::Init``'s output blobs), ``Silence`` bottoms excepted.

Layer types converted whole: ``Input``, ``Silence``, ``Embed``, ``InnerProduct``, ``Softmax``, ``Reshape``,
``Slice``, ``Concat``, ``Eltwise``, ``Dropout``, ``Split``, ``LSTM`` and ``RNN`` (BVLC, with ``cont``, a static
input ``x_static`` and ``expose_hidden``). Anything else (a loss, junhyukoh's ``Lstm``, whose state carries across
calls) is refused by name; the recurrent layers still convert alone.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from compat.convert.graph import GraphSpec, ModelInput, Node
from compat.errors import InputError
from compat.formats.prototxt import TextMessage

INT_MAX = 2 ** 31 - 1
MAX_LAYERS = 100_000


class CaffeNetError(InputError, ValueError):
    """A net definition that is not converted whole; the message names the file, layer and field."""


def phase_included(layer: TextMessage, phase: str) -> bool:
    """net.cpp ``Net::StateMeetsRule`` / ``FilterNet`` for ``phase`` at level 0 with no stages (the defaults):
    a layer with ``include`` rules runs when one is met, one with ``exclude`` rules when none is."""
    def meets(rule: TextMessage) -> bool:
        if rule.has("phase") and str(rule.get("phase")) != phase:
            return False
        if rule.has("min_level") and 0 < int(rule.get("min_level")):
            return False
        if rule.has("max_level") and 0 > int(rule.get("max_level")):
            return False
        if rule.getall("stage"):
            return False
        return True

    includes, excludes = layer.getall("include"), layer.getall("exclude")
    if includes and excludes:
        raise CaffeNetError(f"layer {str(layer.get('name'))[:80]!r} specifies both include and exclude rules")
    if includes:
        return any(meets(r) for r in includes)
    return not any(meets(r) for r in excludes)


def plain(msg: TextMessage) -> dict:
    """A ``<type>_param`` message as plain data for the numpy reference: repeated fields as lists (``shape``
    as its dims), single fields as values."""
    out: dict = {}
    for name, value in msg:
        if isinstance(value, TextMessage):
            value = [int(d) for d in value.getall("dim")] if name == "shape" else plain(value)
        if name in ("slice_point", "coeff", "dim"):
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    for key in ("bias_term", "transpose", "expose_hidden"):
        if key in out:
            out[key] = str(out[key]) == "true"
    if "operation" in out:
        out["operation"] = str(out["operation"])
    return out


def read_net(net: TextMessage, blobs: Dict[str, Tuple[str, List[np.ndarray]]], specs: Dict[str, object],
             source: str) -> GraphSpec:
    """The TEST-phase net of the parsed prototxt ``net`` with the trained ``blobs`` as a :class:`GraphSpec`;
    ``specs``: the converted recurrent layers by name. Raises :class:`CaffeNetError` naming what is refused."""
    from compat.frameworks.caffe.layers import READERS, LayerCall

    if net.getall("layers"):
        raise CaffeNetError(f"{source}: V1 'layers' definitions are not converted whole; use the 'layer' format "
                            "(caffe's upgrade_net_proto_text converts them)")
    names = [str(n) for n in net.getall("input")]
    shapes = net.getall("input_shape")
    dims = net.getall("input_dim")
    declared: Dict[str, List[int]] = {}
    if shapes:
        if len(shapes) != len(names):
            raise CaffeNetError(f"{source}: {len(names)} inputs but {len(shapes)} input_shape entries")
        for n, s in zip(names, shapes):
            declared[n] = _dims(s.getall("dim"), f"{source}: input {n!r}")
    elif dims:
        if len(dims) != 4 * len(names):
            raise CaffeNetError(f"{source}: input_dim needs 4 values per input ({len(names)} inputs, "
                                f"{len(dims)} values)")
        for k, n in enumerate(names):
            declared[n] = _dims(dims[4 * k:4 * k + 4], f"{source}: input {n!r}")
    elif names:
        raise CaffeNetError(f"{source}: inputs {names} have no input_shape or input_dim")

    layers = [layer for layer in net.getall("layer")[:MAX_LAYERS + 1] if phase_included(layer, "TEST")]
    if len(layers) > MAX_LAYERS:
        raise CaffeNetError(f"{source}: more than {MAX_LAYERS:,} layers")
    # blob name -> the value it holds now (a graph reference) and its static shape
    current: Dict[str, Tuple[str, int]] = {n: (n, 0) for n in declared}
    shape_of: Dict[Tuple[str, int], List[int]] = {(n, 0): s for n, s in declared.items()}
    input_order = list(declared)
    nodes: List[Node] = []
    reference_layers: List[dict] = []
    seen_names = set(declared)
    consumers: Dict[Tuple[str, int], List[str]] = {}
    silenced = set()
    for layer in layers:
        lname, ltype = str(layer.get("name", "")), str(layer.get("type", ""))
        where = f"{source}: layer {lname[:80]!r} ({ltype[:40]})"
        bottoms = [str(b) for b in layer.getall("bottom")]
        tops = [str(t) for t in layer.getall("top")]
        for b in bottoms:
            if b not in current:
                raise CaffeNetError(f"{where}: unknown bottom blob {b[:80]!r}")
        if ltype == "Input":
            for t, s in zip(tops, layer.message("input_param").getall("shape")):
                if t in current:
                    raise CaffeNetError(f"{where}: input blob {t[:80]!r} is defined twice")
                current[t] = (t, 0)
                shape_of[(t, 0)] = _dims(s.getall("dim"), f"{where}: input_param.shape")
                input_order.append(t)
                seen_names.add(t)
            if len(layer.message("input_param").getall("shape")) not in (1, len(tops)):
                raise CaffeNetError(f"{where}: input_param needs one shape or one per top")
            if len(layer.message("input_param").getall("shape")) == 1:
                for t in tops[1:]:
                    current[t] = (t, 0)
                    shape_of[(t, 0)] = shape_of[(tops[0], 0)]
                    input_order.append(t)
            continue
        if ltype == "Silence":
            silenced.update(current[b] for b in bottoms)
            continue
        record = READERS.get(ltype)
        if record is None:
            raise CaffeNetError(f"{where}: layer type {ltype[:40]!r} is not converted whole (the set: "
                                f"{', '.join(['Input', 'Silence'] + sorted(READERS))})")
        if not tops:
            raise CaffeNetError(f"{where}: a layer without tops")
        if lname in seen_names:
            raise CaffeNetError(f"{where}: a second layer or input of the same name")
        seen_names.add(lname)
        refs = [current[b] for b in bottoms]
        call = LayerCall(lname, ltype, layer, [shape_of[r] for r in refs], len(tops),
                         blobs.get(lname, (ltype, []))[1], lname in blobs, specs, where)
        config, weights, out_shapes = record.read(call)
        args = [list(r) for r in refs]
        kind = record.kind
        if record.inputs == ("list",):
            args = [args]
        node = Node(lname, kind, config, args, {}, weights, recurrent=call.recurrent)
        nodes.append(node)
        reference_layers.append({"name": lname, "type": ltype, "bottom": bottoms, "top": tops,
                                 "param": plain(layer.message(record.param)) if record.param else {}})
        for r in refs:
            consumers.setdefault(r, []).append(lname)
        for k, t in enumerate(tops):
            current[t] = (lname, k)
            shape_of[(lname, k)] = out_shapes[k]
    produced = [(n.name, k) for n in nodes for k in range(len(_tops(reference_layers, n.name)))]
    outputs = [r for r in produced if r not in consumers and r not in silenced]
    if not nodes:
        raise CaffeNetError(f"{source}: the TEST net has no layer to convert")
    if not outputs:
        raise CaffeNetError(f"{source}: every top is read by a later layer or silenced; the net has no output")
    inputs = []
    for n in input_order:
        readers = [node for node in nodes if any(_reads(a, n) for a in node.args)]
        ids = bool(readers) and all(node.kind == "Embed" for node in readers)
        inputs.append(ModelInput(n, list(shape_of[(n, 0)]), "int64" if ids else "float32"))
    floats = [w.dtype for node in nodes for w in node.weights.values()]
    dtype = str(np.result_type(np.float32, *floats)) if floats else "float32"
    for inp in inputs:
        if inp.dtype != "int64":
            inp.dtype = dtype
    for node in nodes:
        node.weights = {k: np.ascontiguousarray(w, dtype=dtype) for k, w in node.weights.items()}
    graph = GraphSpec("caffe", inputs, outputs, nodes, dtype=dtype)
    graph.notes.append("the TEST phase of the net (layers excluded from TEST are left out; Dropout is the identity)")
    graph.source = {"layers": reference_layers,
                    "weights": {name: [np.asarray(b) for b in blob_list] for name, (_, blob_list) in blobs.items()
                                if name in {n.name for n in nodes}},
                    "blob_names": {f"{n.name}:{k}": t for n, layer in zip(nodes, reference_layers)
                                   for k, t in enumerate(layer["top"])}}
    return graph


def _tops(reference_layers, name) -> List[str]:
    for layer in reference_layers:
        if layer["name"] == name:
            return layer["top"]
    return []


def _reads(arg, name: str) -> bool:
    if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str):
        return arg[0] == name
    return any(_reads(a, name) for a in arg)


def _dims(values: Sequence, where: str) -> List[int]:
    out = []
    for d in values:
        if type(d) is not int or not 0 <= d <= INT_MAX:
            shown = repr(d)[:40] if isinstance(d, (int, float, str)) else "a message"
            raise CaffeNetError(f"{where}: a dim is {shown}; expected an integer in [0, {INT_MAX}]")
        out.append(d)
    if len(out) > 32:
        raise CaffeNetError(f"{where}: {len(out)} axes; Caffe's blobs have at most 32 (kMaxBlobAxes)")
    return out
