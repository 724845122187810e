"""The object graph of an object-based TF checkpoint (``tf.train.Checkpoint``, Keras ``model.save_weights`` in
TF format), read with the bounded protobuf wire reader (:mod:`compat.formats.protobuf_wire`).

Such a checkpoint stores, beside its variables, the scalar string tensor ``_CHECKPOINTABLE_OBJECT_GRAPH``: a
serialized ``TrackableObjectGraph`` (tensorflow/core/protobuf/trackable_object_graph.proto)::

    TrackableObjectGraph { repeated TrackableObject nodes = 1; }         node 0 is the root
    TrackableObject {
        repeated ObjectReference children = 1;       { int32 node_id = 1; string local_name = 2; }
        repeated SerializedTensor attributes = 2;    { string name = 1; string full_name = 2;
                                                       string checkpoint_key = 3; }
        repeated SlotVariableReference slot_variables = 3;
                                                     { int32 original_variable_node_id = 1; string slot_name = 2;
                                                       int32 slot_variable_node_id = 3; }
        (registered_saver = 4, has_checkpoint_values = 5: not needed here, skipped)
    }

A variable is a node with one attribute named ``VARIABLE_VALUE``: its ``checkpoint_key`` is the tensor's name
in the checkpoint (``layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE``) and its ``full_name`` the
name the variable was created with (``encoder/lstm_cell/kernel``: the Keras layer's own name). The children
say what holds what (a Keras RNN layer's ``cell``, a ``Bidirectional``'s ``forward_layer`` and
``backward_layer``, a model's ``optimizer``). Nothing in the graph names a class.

Unknown fields are skipped (later TF releases add some); every node id is checked against the number of nodes.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from compat.errors import CheckpointError
from compat.formats.protobuf_wire import LEN, VARINT, Reader, as_string, expect_wire, iter_fields, signed32

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_VALUE = "VARIABLE_VALUE"
# The graph's bytes are bounded by the checkpoint reader's caps on a tensor; this bounds the Python objects.
MAX_NODES = 1_000_000


@dataclass(frozen=True)
class Attribute:
    name: str            # "VARIABLE_VALUE" for a variable
    full_name: str       # the variable's own name ("encoder/lstm_cell/kernel"), may be empty
    checkpoint_key: str  # the tensor's name in the checkpoint


@dataclass(frozen=True)
class SlotReference:
    original: int        # node id of the variable the slot belongs to
    slot_name: str       # "m", "v", "momentum", ...
    slot: int            # node id of the slot variable


@dataclass(frozen=True)
class TrackableObject:
    children: Tuple[Tuple[int, str], ...]          # (node id, local name)
    attributes: Tuple[Attribute, ...]
    slot_variables: Tuple[SlotReference, ...]

    def child(self, local_name: str) -> Optional[int]:
        for node, name in self.children:
            if name == local_name:
                return node
        return None

    @property
    def variable(self) -> Optional[Attribute]:
        """The attribute holding this node's value when the node is a variable."""
        for a in self.attributes:
            if a.name == VARIABLE_VALUE:
                return a
        return None


def _error(source: str, message: str) -> CheckpointError:
    return CheckpointError(source, message)


def _message(reader: Reader, value, offset: int, name: str) -> Reader:
    if not isinstance(value, memoryview):
        reader.fail(f"field {name} should be a length-delimited message", offset)
    return reader.sub(value, offset, name)


def _reference(r: Reader) -> Tuple[int, str]:
    node, name = 0, ""
    for field, wire, value, offset in iter_fields(r):
        if field == 1:
            expect_wire(r, wire, VARINT, "node_id", offset)
            node = signed32(value)
        elif field == 2:
            expect_wire(r, wire, LEN, "local_name", offset)
            name = as_string(r, value, "local_name", offset)
    return node, name


def _attribute(r: Reader) -> Attribute:
    parts = {1: "", 2: "", 3: ""}
    for field, wire, value, offset in iter_fields(r):
        if field in parts:
            label = {1: "name", 2: "full_name", 3: "checkpoint_key"}[field]
            expect_wire(r, wire, LEN, label, offset)
            parts[field] = as_string(r, value, label, offset)
    return Attribute(parts[1], parts[2], parts[3])


def _slot(r: Reader) -> SlotReference:
    original, name, slot = 0, "", 0
    for field, wire, value, offset in iter_fields(r):
        if field in (1, 3):
            expect_wire(r, wire, VARINT, "node id", offset)
            if field == 1:
                original = signed32(value)
            else:
                slot = signed32(value)
        elif field == 2:
            expect_wire(r, wire, LEN, "slot_name", offset)
            name = as_string(r, value, "slot_name", offset)
    return SlotReference(original, name, slot)


def parse_object_graph(data: bytes, source: str = "<object graph>") -> List[TrackableObject]:
    """The nodes of a serialized ``TrackableObjectGraph`` (node 0 is the root); raises :class:`CheckpointError`
    naming ``source`` and the field for malformed bytes or a node id out of range."""
    top = Reader(data, source, OBJECT_GRAPH_KEY, error=_error)
    nodes: List[TrackableObject] = []
    for field, wire, value, offset in iter_fields(top):
        if field != 1:
            continue
        if len(nodes) >= MAX_NODES:
            top.fail(f"more than {MAX_NODES:,} objects", offset)
        r = _message(top, value, offset, f"nodes[{len(nodes)}]")
        children, attributes, slots = [], [], []
        for f, w, v, o in iter_fields(r):
            if f == 1:
                children.append(_reference(_message(r, v, o, "children")))
            elif f == 2:
                attributes.append(_attribute(_message(r, v, o, "attributes")))
            elif f == 3:
                slots.append(_slot(_message(r, v, o, "slot_variables")))
        nodes.append(TrackableObject(tuple(children), tuple(attributes), tuple(slots)))
    if not nodes:
        raise CheckpointError(source, f"{OBJECT_GRAPH_KEY} holds no objects")
    n = len(nodes)
    for k, node in enumerate(nodes):
        ids = [c for c, _ in node.children] + [i for s in node.slot_variables for i in (s.original, s.slot)]
        bad = [i for i in ids if not 0 <= i < n]
        if bad:
            raise CheckpointError(source, f"{OBJECT_GRAPH_KEY}: object {k} refers to object {bad[0]}; the graph has "
                                          f"{n} objects")
    return nodes


def object_paths(nodes: List[TrackableObject]) -> Dict[int, str]:
    """Each reachable node's path from the root (``layer_with_weights-1/forward_layer``), breadth first and in
    the order of the children, as TF names the checkpoint keys (tensorflow/python/checkpoint/graph_view.py
    ``_breadth_first_traversal``): a node reachable by several paths gets the first."""
    paths: Dict[int, str] = {0: ""}
    queue = deque([0])
    while queue:
        k = queue.popleft()
        for child, name in nodes[k].children:
            if child not in paths:
                paths[child] = f"{paths[k]}/{name}" if paths[k] else name
                queue.append(child)
    return paths


__all__ = ["OBJECT_GRAPH_KEY", "Attribute", "SlotReference", "TrackableObject", "parse_object_graph", "object_paths"]
