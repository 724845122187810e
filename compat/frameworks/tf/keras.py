"""tf.keras recurrent layers whose variables sit in a TF checkpoint: a TF1 graph's ``Saver`` checkpoint or an
object-based one (``tf.train.Checkpoint``, ``model.save_weights`` in TF format).

Where the layers are found:

| checkpoint | a layer's variables | how the layer is known |
| --- | --- | --- |
| TF1 graph, tf.keras of TF 1.x | ``lstm/kernel``, ``lstm/recurrent_kernel``, ``lstm/bias`` | the names |
| TF1 graph, tf.keras of TF 2.x | ``lstm/lstm_cell/kernel``, ... | the names |
| either, ``Bidirectional`` | ``bidirectional/forward_lstm_1/...``, ``bidirectional/backward_lstm_1/...`` | the names (tf_keras ``wrappers.py`` ``Bidirectional.__init__`` names its copies ``forward_`` / ``backward_`` + the layer's name) |
| object-based | ``layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE`` | the object graph (:mod:`compat.formats.tf.object_graph`): the RNN layer's ``cell``, a ``Bidirectional``'s ``forward_layer`` and ``backward_layer``, and the name each variable was created with (``encoder/lstm_cell/kernel``), which gives the layer's own name |

The kind of layer is told by ``recurrent_kernel`` [H, G * H]: G = 4 an LSTM, 3 a GRU, 1 a SimpleRNN.

What the checkpoint does not store (a checkpoint holds variables, not the model's configuration):
``recurrent_activation`` (tf.keras 2's default is sigmoid; tf.keras of TF 1.x defaulted to hard_sigmoid),
``activation`` (tanh), ``go_backwards``, ``return_sequences``, masks, and a ``Bidirectional``'s ``merge_mode``
(``concat`` by default: the converted module returns the two halves concatenated).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from compat import layouts
from compat.convert.spec import KERAS_LSTM, KerasSemantics, LSTMSpec, Unknown, numpy_weights
from compat.formats.tf.object_graph import TrackableObject, object_paths
from compat.frameworks.tf import TFCellError
from compat.frameworks.tf.names import KERAS_CELL_SCOPES, KERAS_RECURRENT, VARIABLE_VALUE, is_slot

KINDS = {4: "LSTM", 3: "GRU", 1: "SimpleRNN"}


@dataclass
class KerasLayer:
    """One tf.keras recurrent layer of a TF checkpoint: its name, kind, and per direction (forward first; two
    for a ``Bidirectional``) its variables by role (``kernel``, ``recurrent_kernel``, ``bias``)."""

    name: str
    kind: str                                 # "LSTM", "GRU", "SimpleRNN", "recurrent layer"
    directions: Tuple[Dict[str, str], ...]
    found_by: str                             # "the object graph" / "the variable names"
    go_backwards: bool = False                # a lone backward copy of a Bidirectional

    @property
    def bidirectional(self) -> bool:
        return len(self.directions) == 2

    @property
    def variables(self) -> List[str]:
        return [n for d in self.directions for n in d.values()]

    @property
    def title(self) -> str:
        return f"Bidirectional({self.kind})" if self.bidirectional else self.kind


def _kind(shapes: Dict[str, Tuple[int, ...]], recurrent_kernel: str) -> str:
    shape = shapes[recurrent_kernel]
    if len(shape) != 2 or not shape[0]:
        return "recurrent layer"
    return KINDS.get(shape[1] / shape[0], "recurrent layer")


def _strip_cell(scope: str) -> str:
    """``encoder/lstm_cell`` -> ``encoder``; ``layer_with_weights-0/cell`` -> ``layer_with_weights-0``."""
    head, _, last = scope.rpartition("/")
    return head if head and (last in KERAS_CELL_SCOPES or last == "cell") else scope


# ------------------------------------------------------------------------------------- by variable names
def _by_names(shapes: Dict[str, Tuple[int, ...]]) -> List[KerasLayer]:
    singles: Dict[str, KerasLayer] = {}
    for name in sorted(shapes):
        if not name.endswith("/recurrent_kernel") or is_slot(name):
            continue
        scope = name[:-len("/recurrent_kernel")]
        roles = {r: f"{scope}/{r}" for r in KERAS_RECURRENT if f"{scope}/{r}" in shapes}
        layer = _strip_cell(scope)
        singles[layer] = KerasLayer(layer, _kind(shapes, name), (roles,), "the variable names")
    out, used = [], set()
    for layer in sorted(singles):             # each Bidirectional's forward copy finds its backward twin
        parent, _, last = layer.rpartition("/")
        if last == "forward_layer":
            twin = f"{parent}/backward_layer" if parent else "backward_layer"
        elif last.startswith("forward_"):
            twin = (f"{parent}/" if parent else "") + "backward_" + last[len("forward_"):]
        else:
            continue
        if twin in singles and singles[twin].kind == singles[layer].kind:
            fw, bw = singles[layer], singles[twin]
            out.append(KerasLayer(parent or layer, fw.kind, fw.directions + bw.directions, "the variable names"))
            used |= {layer, twin}
    for layer in sorted(set(singles) - used):
        one = singles[layer]
        last = layer.rpartition("/")[2]
        one.go_backwards = last == "backward_layer" or last.startswith("backward_")
        out.append(one)
    return out


# ------------------------------------------------------------------------------------- by the object graph
def _by_graph(nodes: List[TrackableObject], shapes: Dict[str, Tuple[int, ...]]) -> List[KerasLayer]:
    paths = object_paths(nodes)
    parents: Dict[int, List[Tuple[int, str]]] = {}
    for k in paths:
        for child, local in nodes[k].children:
            parents.setdefault(child, []).append((k, local))

    def variable(node: Optional[int]) -> Optional[Tuple[str, str]]:
        """(the variable's name here: its checkpoint key without /.ATTRIBUTES/VARIABLE_VALUE, its own name)."""
        attr = None if node is None else nodes[node].variable
        if attr is None or not attr.checkpoint_key.endswith(VARIABLE_VALUE):
            return None
        key = attr.checkpoint_key[:-len(VARIABLE_VALUE)]
        return (key, attr.full_name) if key in shapes else None

    cells: Dict[int, Tuple[Dict[str, str], Dict[str, str]]] = {}   # cell node -> (roles, own names)
    for k in sorted(paths):
        found = {r: variable(nodes[k].child(r)) for r in KERAS_RECURRENT}
        if found["kernel"] and found["recurrent_kernel"]:
            cells[k] = ({r: v[0] for r, v in found.items() if v}, {r: v[1] for r, v in found.items() if v})

    def layer_of(cell: int) -> int:
        for parent, local in parents.get(cell, []):
            if local == "cell":
                return parent
        return cell

    def own_name(cell: int) -> Optional[str]:
        full = cells[cell][1].get("kernel", "")
        return _strip_cell(full.rpartition("/")[0]) if "/" in full else None

    layers = {layer_of(c): c for c in cells}
    out, used = [], set()
    for layer, cell in sorted(layers.items(), key=lambda kv: paths[kv[0]]):
        if layer in used:
            continue
        wrapper = next(((p, local) for p, local in parents.get(layer, []) if local in ("forward_layer", "backward_layer")),
                       None)
        kind = _kind(shapes, cells[cell][0]["recurrent_kernel"])
        if wrapper is not None:
            bidi = wrapper[0]
            fw, bw = nodes[bidi].child("forward_layer"), nodes[bidi].child("backward_layer")
            if fw in layers and bw in layers and _kind(shapes, cells[layers[bw]][0]["recurrent_kernel"]) == kind:
                fw_name = own_name(layers[fw])
                name = fw_name.rpartition("/")[0] if fw_name and "/" in fw_name else paths[bidi]
                out.append(KerasLayer(name or paths[bidi], kind, (cells[layers[fw]][0], cells[layers[bw]][0]),
                                      "the object graph"))
                used |= {fw, bw}
                continue
        out.append(KerasLayer(own_name(cell) or paths[layer], kind, (cells[cell][0],), "the object graph",
                              go_backwards=wrapper is not None and wrapper[1] == "backward_layer"))
        used.add(layer)
    return out


def keras_layers(shapes: Dict[str, Tuple[int, ...]], graph: Optional[List[TrackableObject]] = None) -> List[KerasLayer]:
    """Every tf.keras recurrent layer of a checkpoint whose variables have ``shapes`` (names without
    ``/.ATTRIBUTES/VARIABLE_VALUE``); from the object graph where the checkpoint has one."""
    if graph is not None:
        found = _by_graph(graph, shapes)
        covered = {n for layer in found for n in layer.variables}
        rest = {n: s for n, s in shapes.items() if n not in covered}
        return found + _by_names(rest)
    return _by_names(shapes)


# ------------------------------------------------------------------------------------------------ the spec
def _directions(layer: KerasLayer, tensor, location: str):
    """Per direction of ``layer``: its variables by role as stored, and as the float (at least float32) the
    conversion computes in; a variable that is not floating point is refused by its name."""
    for roles in layer.directions:
        raw = {r: tensor(n) for r, n in roles.items()}
        for key, value in raw.items():
            if value.dtype.kind != "f":
                raise TFCellError(f"{location}: {roles[key]} is {value.dtype}; recurrent weights are floating point")
        dtype = np.promote_types(raw["kernel"].dtype, np.float32)
        yield raw, {k: v.astype(dtype, copy=False) for k, v in raw.items()}


def spec(layer: KerasLayer, tensor, location: str, recurrent_activation: Optional[str]) -> LSTMSpec:
    """The :class:`LSTMSpec` of a tf.keras LSTM layer (one direction, or a ``Bidirectional``'s two) from its
    variables (``tensor(name)`` reads one), with tf.keras's layer semantics (tf_keras ``layers/rnn/lstm.py``:
    gates i, f, c, o, one bias; ``Bidirectional`` concatenates the forward output and the backward output
    reversed back into the input's order)."""
    rec = recurrent_activation or "sigmoid"
    weights, source, options = [], [], {}
    for raw, tensors in _directions(layer, tensor, location):
        try:
            converted = layouts.convert("keras", tensors, {"recurrent_activation": rec, "activation": "tanh",
                                                           "keras_version": 2})
        except layouts.LayoutError as e:
            raise TFCellError(f"{location}: tf.keras layer {layer.name!r}: {e}") from None
        weights.append(numpy_weights(converted.weights))
        source.append(raw)
        options = dict(converted.options)
    unknowns = [Unknown("recurrent_activation", rec,
                        "given" if recurrent_activation else
                        "tf.keras 2's default, not stored in checkpoints (tf.keras of TF 1.x defaulted to "
                        "hard_sigmoid): pass --keras-recurrent-activation if the model used another",
                        loud=recurrent_activation is None),
                Unknown("activation", "tanh", "the layer's default"),
                Unknown("masks, return_sequences", "?", "not stored in checkpoints: the module runs [B, T, in] "
                                                        "without masks and returns every step")]
    keras = None
    if layer.bidirectional:
        options["direction"] = "bidirectional"
        unknowns.append(Unknown("merge_mode", "concat", "Bidirectional's default, not stored in checkpoints: the "
                                                        "module returns concat(forward, backward); for sum, mul or ave "
                                                        "combine output[..., :H] and output[..., H:]"))
    elif layer.go_backwards:
        options["direction"] = "reverse"
        keras = KerasSemantics(go_backwards=True)
    variant = f"tf.keras {layer.title} layer (variables in a TF checkpoint, found by {layer.found_by})"
    out = LSTMSpec(name=layer.name, source_format="tf", variant=variant,
                   layers=[tuple(weights) if layer.bidirectional else weights[0]], options=options, batch_first=True,
                   keras=keras, unknowns=unknowns, source=[tuple(source)], oracle="keras",
                   module=KERAS_LSTM if keras is not None else None)
    out.semantics = {"recurrent_activation": rec, "activation": "tanh", "go_backwards": layer.go_backwards,
                     "bidirectional": layer.bidirectional, "cudnn": False, "merge_mode": "concat",
                     "masked_output": "previous_output" if keras else None, "masks": False}
    out.notes.append("variables: " + ", ".join(layer.variables))
    if layer.bidirectional:
        out.notes.append("a Bidirectional: outputs are concat(forward, backward), the backward half in the input's "
                         "time order, as Keras returns them")
    if layer.go_backwards:
        out.notes.append("the backward copy of a Keras Bidirectional alone (go_backwards=True): outputs reversed in "
                         "time as Keras returns them")
    return out


def gru_rnn_spec(layer: KerasLayer, tensor, location: str, recurrent_activation: Optional[str]) -> LSTMSpec:
    """The spec of a tf.keras ``GRU`` / ``SimpleRNN`` layer (one direction, or a ``Bidirectional``'s two) from its
    variables: tf_keras ``layers/rnn/gru.py`` (gates z, r, h; ``bias`` [2, 3H] with ``reset_after=True``, tf.keras 2's
    default, [3H] with ``reset_after=False``, tf.keras 1.x's: the bias's shape tells which) and ``simple_rnn.py``;
    compat/rnn_layouts.py converts, reference/keras_rnn.py checks."""
    from compat import rnn_layouts
    from compat.convert.spec import KERAS_GRU, KERAS_RNN

    cell = "gru" if layer.kind == "GRU" else "rnn"
    rec = recurrent_activation or "sigmoid"
    weights, source, reset_after = [], [], None
    for raw, t in _directions(layer, tensor, location):
        try:
            if cell == "rnn":
                w = rnn_layouts.keras_simple_rnn(t["kernel"], t["recurrent_kernel"], t.get("bias"))
            else:
                bias = t.get("bias")
                reset_after = bias is not None and bias.ndim == 2
                w = rnn_layouts.keras_gru(t["kernel"], t["recurrent_kernel"], bias, reset_after=reset_after)
        except rnn_layouts.RNNLayoutError as e:
            raise TFCellError(f"{location}: tf.keras layer {layer.name!r}: {e}") from None
        weights.append(numpy_weights(w))
        source.append(t)
    options: dict = {}
    unknowns = [Unknown("activation", "tanh", "the layer's default"),
                Unknown("masks, return_sequences", "?", "not stored in checkpoints: the module runs [B, T, in] "
                                                        "without masks and returns every step")]
    if cell == "gru":
        options["reset_after"] = bool(reset_after)
        if rec != "sigmoid":
            options["activations"] = ({"hard_sigmoid": "hard_sigmoid_keras2"}.get(rec, rec), "tanh")
        unknowns.insert(0, Unknown("recurrent_activation", rec,
                                   "given" if recurrent_activation else
                                   "tf.keras 2's default, not stored in checkpoints (tf.keras of TF 1.x defaulted to "
                                   "hard_sigmoid): pass --keras-recurrent-activation if the model used another",
                                   loud=recurrent_activation is None))
        if not any("bias" in roles for roles in layer.directions):
            unknowns.insert(0, Unknown("reset_after", "False", "no bias in the checkpoint (use_bias=False) to tell it "
                                                               "by its shape", loud=True))
    keras = None
    if layer.bidirectional:
        options["direction"] = "bidirectional"
        unknowns.append(Unknown("merge_mode", "concat", "Bidirectional's default, not stored in checkpoints: the "
                                                        "module returns concat(forward, backward)"))
    elif layer.go_backwards:
        options["direction"] = "reverse"
        keras = KerasSemantics(go_backwards=True)
    variant = f"tf.keras {layer.title} layer (variables in a TF checkpoint, found by {layer.found_by})"
    out = LSTMSpec(name=layer.name, source_format="tf", variant=variant,
                   layers=[tuple(weights) if layer.bidirectional else weights[0]], options=options, batch_first=True,
                   keras=keras, unknowns=unknowns, source=[tuple(source)], oracle="keras_rnn", cell=cell,
                   module=None if keras is None else (KERAS_GRU if cell == "gru" else KERAS_RNN))
    out.semantics = {"cell": cell, "reset_after": bool(reset_after), "cudnn": False,
                     "recurrent_activation": rec, "activation": "tanh", "go_backwards": layer.go_backwards,
                     "bidirectional": layer.bidirectional, "merge_mode": "concat",
                     "masked_output": "previous_output" if keras else None}
    out.notes.append("variables: " + ", ".join(layer.variables))
    if layer.go_backwards:
        out.notes.append("the backward copy of a Keras Bidirectional alone (go_backwards=True): outputs reversed in "
                         "time as Keras returns them")
    return out


__all__ = ["KerasLayer", "gru_rnn_spec", "keras_layers", "spec"]
