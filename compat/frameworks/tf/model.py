"""The graph around a TF1 checkpoint's cells, read from its ``.meta`` graph (data only, never run): a language
model converts whole where the graph follows the common patterns.

The patterns, as tensorflow/models tutorials/rnn/ptb/ptb_word_lm.py (``PTBModel``) and the TF RNN tutorials
build them (TF 1.x python/ops/embedding_ops.py, rnn.py, nn_ops.py, layers/core.py):

- the input: a ``Placeholder`` of token ids looked up in a variable (``tf.nn.embedding_lookup(embedding,
  ids)``: ``GatherV2`` on ``embedding/read`` with axis 0 for a reference variable, ``ResourceGather`` on the
  handle for a resource variable, then an ``Identity``), or a float ``Placeholder`` read by the cells directly;
- the cells: one stack converted from the checkpoint, run by ``dynamic_rnn`` (a TF 1.x while loop: the input
  enters by ``<rnn>/transpose`` when batch-major, by ``<rnn>/TensorArrayUnstack/...ScatterV3`` when time-major;
  the output leaves by ``<rnn>/transpose_1`` / ``<rnn>/TensorArrayStack/TensorArrayGatherV3``; TF 2's
  ``while_v2``: one ``While`` op ``<rnn>/while``, its body a library function, the TensorArrays TensorLists),
  with ``sequence_length`` when ``<rnn>/sequence_length`` reads an integer placeholder (the model's second
  input, in the graph's placeholder order) or a constant vector of lengths (``tf.constant``: the model holds
  them), by ``bidirectional_dynamic_rnn`` (two such loops, the backward one on the input reversed by
  ``ReverseSequence`` / ``ReverseV2``, its output reversed back, the two joined by ``tf.concat([fw, bw], 2)``), by
  contrib's ``stack_bidirectional_dynamic_rnn`` (TF 1.x contrib/rnn/python/ops/rnn.py: one such
  ``bidirectional_dynamic_rnn`` a layer under ``stack_bidirectional_rnn/cell_<k>/bidirectional_rnn/{fw,bw}``,
  every layer given the same ``sequence_length``, layer k + 1 reading layer k's ``tf.concat(outputs, 2)``;
  :func:`_bidirectional_stack`), by ``bidirectional_dynamic_rnn(MultiRNNCell(...), MultiRNNCell(...))`` (two stacks,
  ``<rnn>/fw`` and ``<rnn>/bw``, each run whole in its loop, joined once by ``tf.concat(outputs, 2)``: a forward
  and a reverse-direction ``Recurrent`` node and a ``Concat``; the stacks may differ in depth and size;
  :func:`_bidirectional_stacks`), by ``static_bidirectional_rnn(MultiRNNCell(...), MultiRNNCell(...),
  tf.unstack(inputs, axis=1))`` without ``sequence_length`` (each stack by static_rnn, the backward one on the
  steps reversed, each step's outputs joined by ``tf.concat([fw, bw], 1)``, the steps as static_rnn's are:
  the same two ``Recurrent`` nodes and ``Concat``; :func:`_static_bidirectional_stacks`), or by
  ``static_rnn`` over ``tf.unstack(inputs, axis=1)`` (``Unpack``), or ptb_word_lm.py's own unrolled loop
  ``cell(inputs[:, time_step, :], state)`` (a ``StridedSlice`` per step), its step outputs joined by
  ``tf.concat(outputs, 1)`` (``ConcatV2``) or ``tf.stack`` (``Pack``); each from ``zero_state`` or an initial state
  of placeholders (more inputs of the model, in the graph's placeholder order; bidirectionally the cells layer by
  layer, forward then backward: ``initial_state_fw`` / ``_bw``, ``initial_states_fw[k]`` / ``_bw[k]``), read where
  the loop takes it (:func:`_initial_state`, :func:`_first_step_state`) and judged by one rule
  (:func:`_start_state`): any other starting state is refused by name; a ``MultiRNNCell(state_is_tuple=False)``
  (its layers' states one tensor, sliced per layer) or an LSTM cell with ``state_is_tuple=False`` reads one
  tensor, zeros or one placeholder, in ``nest.flatten``'s order of the tuple state (:func:`_concatenated`);
- the projection: ``tf.reshape(output, [-1, size])`` then ``MatMul`` with a ``[size, vocab]`` variable and
  ``BiasAdd`` / ``Add`` of a ``[vocab]`` variable (``tf.nn.xw_plus_b``, ``tf.matmul(output, softmax_w) +
  softmax_b``, ``tf.layers.dense``; ``fully_connected``'s ``weights`` / ``biases``);
- then, optionally, ``tf.nn.softmax`` and ``tf.reshape(logits, [batch_size, num_steps, vocab])``.

Anything else on the path from the input to the cells or from the cells to the projection (an op this reader
does not know, lengths from anything but a placeholder or a constant vector, a starting state neither zeros nor
placeholders, or placeholders for some directions only, a layer of a bidirectional stack reading anything but the
concat of the layer below, a placeholder reaching the cells besides the model's inputs, two stacks other than the
two directions of one bidirectional_dynamic_rnn, a tuple MultiRNNCell of LSTM cells with ``state_is_tuple=False``)
is named in ``whole_refused``, and the cells convert alone (so is static_rnn with ``sequence_length``: its steps
under tf.cond). A graph with no embedding lookup and no projection on a variable is a model of cells only: nothing
to say.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from compat.convert.graph import NAME, GraphSpec, ModelInput, Node
from compat.formats.tf.meta_graph import GraphNode

VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp")
READ_OPS = ("Identity", "ReadVariableOp")
GATHER_OPS = ("GatherV2", "Gather", "ResourceGather")
PLACEHOLDERS = ("Placeholder", "PlaceholderWithDefault")
BIAS_OPS = ("BiasAdd", "Add", "AddV2")
FLOAT_DTYPES = {1: "float32", 2: "float64"}      # DataType enum (types.proto)
INT_DTYPES = (3, 9)                              # int32, int64
MAX_TRACE = 64                                   # ops followed back from the projection to find the cells


class NotUnderstood(Exception):
    """A part of the graph this reader does not understand; the message says which op and where."""


def _base(ref: str) -> str:
    return ref.split(":", 1)[0]


def _output(ref: str) -> int:
    parts = ref.split(":")
    return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 0


class _Graph:
    def __init__(self, nodes: Sequence[GraphNode], shapes: Dict[str, Tuple[int, ...]]):
        self.by_name = {n.name: n for n in nodes}
        self.nodes = nodes
        self.shapes = shapes
        self.consumers: Dict[str, List[GraphNode]] = defaultdict(list)
        for n in nodes:
            for i in n.inputs:
                self.consumers[_base(i)].append(n)

    def get(self, ref: str) -> Optional[GraphNode]:
        return self.by_name.get(_base(ref))

    def through_identity(self, ref: str) -> Optional[GraphNode]:
        node = self.get(ref)
        for _ in range(MAX_TRACE):
            if node is None or node.op != "Identity" or len(node.inputs) != 1:
                return node
            node = self.get(node.inputs[0])
        return node

    def variable(self, ref: str) -> Optional[str]:
        """The checkpoint variable a tensor reads (through ``read`` / ``ReadVariableOp``), or None."""
        node = self.get(ref)
        for _ in range(MAX_TRACE):
            if node is None:
                return None
            if node.op in VARIABLE_OPS:
                return node.name if node.name in self.shapes else None
            if node.op not in READ_OPS or len(node.inputs) != 1:
                return None
            node = self.get(node.inputs[0])
        return None

    def const(self, ref: str) -> Optional[np.ndarray]:
        node = self.through_identity(ref)
        return None if node is None or node.op != "Const" else node.value

    def upstream(self, start: GraphNode, target: str) -> bool:
        """Whether ``target`` is among the ops ``start`` reads, within :data:`MAX_TRACE` ops."""
        seen, todo = set(), [start]
        while todo and len(seen) < MAX_TRACE * 4:
            n = todo.pop()
            if n.name == target:
                return True
            if n.name in seen:
                continue
            seen.add(n.name)
            todo += [m for m in (self.get(i) for i in n.inputs) if m is not None]
        return False


def _int_attr(node: GraphNode, key: str, default: int) -> int:
    value = node.attrs.get(key, default)
    if type(value) is not int:
        raise NotUnderstood(f"{_describe(node)} has attribute {key} = {str(value)[:40]}, not an integer")
    return value


def _describe(node: GraphNode) -> str:
    return f"{node.op} ({node.name})"


def read_model(meta, specs, scopes: Dict[str, List[List[str]]], tensor, shapes: Dict[str, Tuple[int, ...]],
               cell_variables: set) -> Tuple[Optional[GraphSpec], Optional[str], Dict[str, str]]:
    """(the whole model, None, {variable: node}) where the graph follows the patterns; (None, why not, {}) where
    it shows an embedding lookup or a projection but something on the way is not understood; (None, None, {})
    for a graph of cells only. ``meta``: :class:`compat.frameworks.tf.meta.GraphMeta`; ``scopes``: each
    converted layer's cell scopes, layer by layer; ``tensor(name)``: a variable's value."""
    g = _Graph(meta.index.nodes, shapes)
    embeddings = [n for n in g.nodes if n.op in GATHER_OPS and n.inputs and len(shapes.get(g.variable(n.inputs[0]) or "",
                                                                                           ())) == 2]
    projections = [n for n in g.nodes if n.op == "MatMul" and len(n.inputs) == 2
                   and (v := g.variable(n.inputs[1])) is not None and v not in cell_variables and len(shapes[v]) == 2]
    if not embeddings and not projections:
        return None, None, {}
    around = ", ".join([f"an embedding lookup {n.name}" for n in embeddings[:2]]
                       + [f"a projection {n.name}" for n in projections[:2]])
    try:
        pair = _stack_pair(specs, scopes)
        if pair is None and (len(specs) != 1 or specs[0].direction not in ("forward", "bidirectional")
                             or specs[0].name not in scopes):
            raise NotUnderstood(f"the whole model is read for one stack of cells (forward, or the two directions of "
                                f"one bidirectional_dynamic_rnn or of each layer of stack_bidirectional_dynamic_rnn) "
                                f"or for the two MultiRNNCell stacks of one bidirectional_dynamic_rnn; the checkpoint "
                                f"holds {len(specs)} recurrent layer(s) "
                                f"({', '.join(f'{s.name} {s.direction}' for s in specs[:4])})"
                                + ("; a stack whose layers differ in size converts as parts, which this reader does "
                                   "not join" if any("differ in size" in n for s in specs for n in s.notes) else ""))
        if pair is not None:
            fw, bw = pair
            graph, used = _read(g, meta, fw, scopes[fw.name], tensor, projections, backward=(bw, scopes[bw.name]))
        else:
            graph, used = _read(g, meta, specs[0], scopes[specs[0].name], tensor, projections)
    except NotUnderstood as e:
        return None, f"{meta.path}: the graph shows {around}, but {e}", {}
    return graph, None, used


def _stack_pair(specs, scopes) -> Optional[Tuple[object, object]]:
    """(forward, backward) where the checkpoint holds the two stacks of one ``bidirectional_dynamic_rnn(
    MultiRNNCell(...), MultiRNNCell(...))`` (compat.frameworks.tf.discover: ``<base>/fw`` forward and ``<base>/bw``
    reverse, each converted whole), else None."""
    if len(specs) != 2 or any(s.name not in scopes for s in specs):
        return None
    by = {s.direction: s for s in specs}
    fw, bw = by.get("forward"), by.get("reverse")
    if fw is None or bw is None or fw.name.rsplit("/", 1)[0] != bw.name.rsplit("/", 1)[0] \
            or (fw.name.rsplit("/", 1)[-1].lower(), bw.name.rsplit("/", 1)[-1].lower()) != ("fw", "bw"):
        return None
    return fw, bw


def _read(g: _Graph, meta, spec, layer_scopes: List[List[str]], tensor, projections,
          backward: Optional[Tuple[object, List[List[str]]]] = None) -> Tuple[GraphSpec, Dict[str, str]]:
    """The whole model around ``spec``'s cells; ``backward``: (the backward stack, its cell scopes) when ``spec`` is
    the forward stack of a bidirectional_dynamic_rnn of two MultiRNNCells."""
    bidirectional = spec.direction == "bidirectional"
    bw_spec = backward[0] if backward is not None else None
    state_bw: List[GraphNode] = []
    if bidirectional and any(len(layer) != 2 for layer in layer_scopes):
        raise NotUnderstood(f"the bidirectional cells {spec.name} are not a forward and a backward cell a layer")
    first, last = layer_scopes[0][0], layer_scopes[-1][0]
    first_nodes, loops = meta.index.cell_nodes(first)
    last_names = {n.name for n in meta.index.cell_nodes(last)[0]}
    if not loops:       # static_rnn (static_bidirectional_rnn) with sequence_length: its cells under tf.cond
        _no_step_conditions(g, [layer[0] for ls in (layer_scopes, backward[1] if backward else []) for layer in ls],
                            spec)
    if not first_nodes or not last_names:
        raise NotUnderstood(f"the graph holds no op of the cells {first!r}")
    notes: List[str] = []
    lengths: Optional[GraphNode] = None
    state: List[GraphNode] = []       # dynamic_rnn's initial_state fed by placeholders, flattened as TF nests it
    # where an initial state enters: every layer's cells, the loops
    cell_ops = {n.name for layer in layer_scopes for n in meta.index.cell_nodes(layer[0])[0]}
    # -- the cells' input and output -------------------------------------------------------------------------
    if loops and backward is not None:
        rnn_in, outputs, batch_major_in, lengths, state, state_bw, loop_ops, how = _bidirectional_stacks(
            g, meta, (spec, layer_scopes), backward)
        cell_ops |= loop_ops
        notes.append(f"cells: {spec.name} and {bw_spec.name} run by {how}, {'batch' if batch_major_in else 'time'}"
                     f"-major, from {'the initial state' if state else 'zero states'}")
        static_steps = None
    elif backward is not None:
        rnn_in, outputs, batch_major_in, static_steps, state, state_bw, loop_ops, how = _static_bidirectional_stacks(
            g, meta, (spec, layer_scopes), backward)
        cell_ops |= loop_ops
        notes.append(f"cells: {spec.name} and {bw_spec.name} run by {how}: {'batch' if batch_major_in else 'time'}"
                     f"-major, {static_steps} steps, from {'the initial state' if state else 'zero states'}; the "
                     "module runs any number of steps")
    elif loops and bidirectional:
        rnn_in, outputs, batch_major_in, lengths, state, loop_ops, how = _bidirectional_stack(g, meta, spec,
                                                                                            layer_scopes)
        cell_ops |= loop_ops
        notes.append(f"cells: {spec.name} run by {how}, {'batch' if batch_major_in else 'time'}-major, "
                     f"from {'the initial state' if state else 'zero states'}")
        static_steps = None
    elif loops:
        if len(loops) != 1:
            raise NotUnderstood(f"the cells {first!r} run in {len(loops)} loops ({', '.join(loops[:3])}): one "
                                "dynamic_rnn is read")
        ends = _loop_ends(g, _loop_scope(g, loops[0]))
        cell_ops.add(f"{_loop_scope(g, loops[0])}/while")
        state = _initial_state(g, _loop_scope(g, loops[0]), loops[0].startswith("fn:"), spec,
                               concat=_concatenated(g, meta, [layer[0] for layer in layer_scopes], spec))
        rnn_in, rnn_out, batch_major_in, lengths = ends
        outputs = {rnn_out.name: batch_major_in}     # op -> the sequence's layout (batch-major?)
        how = f"dynamic_rnn ({_loop_scope(g, loops[0])}" + (", a TF 2 while_v2 loop" if loops[0].startswith("fn:")
                                                           else "") + ")"
        notes.append(f"cells: {spec.name} run by {how}, {'batch' if batch_major_in else 'time'}-major, "
                     f"from {'the initial state' if state else 'zero states'}")
        static_steps = None
    elif bidirectional:
        if len(layer_scopes) != 1:
            raise NotUnderstood(f"the bidirectional cells {spec.name} run outside a loop in {len(layer_scopes)} "
                                "layers (contrib's stack_bidirectional_rnn), which this reader does not read")
        # static_bidirectional_rnn(cell_fw, cell_bw, ...): one layer a direction, the bidirectional module
        (fw_scope, bw_scope), = layer_scopes
        rnn_in, outputs, batch_major_in, static_steps, state, fed_bw, loop_ops, how = _static_bidirectional_stacks(
            g, meta, (spec, [[fw_scope]]), (spec, [[bw_scope]]), "a forward and a backward cell")
        state = state + fed_bw     # torch's h0 order: the layer's forward direction, then its backward one
        cell_ops |= loop_ops
        notes.append(f"cells: {spec.name} run by {how}: {'batch' if batch_major_in else 'time'}-major, "
                     f"{static_steps} steps, from {'the initial state' if state else 'zero states'}; the module runs "
                     "any number of steps")
    else:
        unpacks = {_base(i) for n in first_nodes for i in n.inputs if (u := g.get(i)) is not None and u.op == "Unpack"}
        slices = {_base(i) for n in first_nodes for i in n.inputs if (u := g.get(i)) is not None
                  and u.op == "StridedSlice"}
        if slices and not unpacks:
            rnn_in, batch_major_in, static_steps, how = _unrolled(g, [g.by_name[n] for n in sorted(slices)])
        elif len(unpacks) != 1:
            raise NotUnderstood(f"the cells {first!r} run outside a loop (static_rnn) but read "
                                f"{'no' if not unpacks else len(unpacks)} tf.unstack ops ({', '.join(sorted(unpacks))})")
        else:
            unpack = g.by_name[unpacks.pop()]
            axis = _int_attr(unpack, "axis", 0)
            if axis not in (0, 1, -2, -3):
                raise NotUnderstood(f"{_describe(unpack)} splits axis {axis}; static_rnn's steps are axis 0 or 1 of a "
                                    "sequence")
            batch_major_in = axis in (1, -2)
            rnn_in = unpack.inputs[0]
            static_steps = _int_attr(unpack, "num", 0)
            used_steps = sorted({_output(i) for n in first_nodes for i in n.inputs if _base(i) == unpack.name})
            if not static_steps or used_steps != list(range(static_steps)):
                raise NotUnderstood(f"the cells read steps {used_steps} of {_describe(unpack)}, which makes "
                                    f"{static_steps}")
            how = f"static_rnn over {unpack.name} (tf.unstack, axis {axis})"
        outputs = {}
        for n in g.nodes:   # the step outputs joined: tf.concat(outputs, axis) / tf.stack(outputs, axis)
            data = n.inputs[:-1] if n.op == "ConcatV2" else n.inputs if n.op == "Pack" else None
            if not data or len(data) != static_steps or not all(_base(i) in last_names for i in data):
                continue
            a = g.const(n.inputs[-1]) if n.op == "ConcatV2" else np.array(n.attrs.get("axis", 0))
            if a is None or a.size != 1 or a.dtype.kind not in "iu":
                continue
            a = int(a.reshape(()))
            if n.op == "ConcatV2" and a in (0, 1, -1, -2):
                # concat of [B, H] steps on axis 1: [B, T*H], the [B, T, H] sequence's rows; on axis 0: [T*B, H]
                outputs[n.name] = a in (1, -1)
            elif n.op == "Pack" and a in (0, 1, -2, -3):
                outputs[n.name] = a in (1, -2)
        state = _first_step_state(g, [(layer[0], meta.index.cell_nodes(layer[0])[0]) for layer in layer_scopes],
                                  spec, "static_rnn's" if how.startswith("static_rnn") else "the unrolled loop's",
                                  _concatenated(g, meta, [layer[0] for layer in layer_scopes], spec))
        notes.append(f"cells: {spec.name} run by {how}: {'batch' if batch_major_in else 'time'}-major, "
                     f"{static_steps} steps, from {'the initial state' if state else 'zero states'}; the module runs "
                     "any number of steps")
    # -- the input side ------------------------------------------------------------------------------------
    src = g.through_identity(rnn_in)
    if src is None:
        raise NotUnderstood(f"the cells' input {rnn_in!r} names no op of the graph")
    used: Dict[str, str] = {}
    nodes: List[Node] = []
    if src.op in GATHER_OPS:
        table_name = g.variable(src.inputs[0]) if src.inputs else None
        if table_name is None or len(g.shapes[table_name]) != 2:
            raise NotUnderstood(f"the cells read {_describe(src)}, which gathers from no 2-D variable of the checkpoint")
        if _int_attr(src, "batch_dims", 0):
            raise NotUnderstood(f"{_describe(src)} gathers with batch_dims: not an embedding lookup")
        if src.op == "GatherV2":
            axis = g.const(src.inputs[2]) if len(src.inputs) > 2 else None
            if axis is None or axis.size != 1 or int(axis.reshape(())) != 0:
                raise NotUnderstood(f"{_describe(src)} gathers along an axis other than 0: not an embedding lookup")
        ids = g.through_identity(src.inputs[1]) if len(src.inputs) > 1 else None
        if ids is None or ids.op not in PLACEHOLDERS:
            raise NotUnderstood(f"the embedding lookup {src.name} reads ids from "
                                f"{_describe(ids) if ids is not None else 'nothing'}, not from a placeholder")
        if ids.attrs.get("dtype", 3) not in INT_DTYPES:
            raise NotUnderstood(f"the ids placeholder {ids.name} is not an integer tensor")
        table = tensor(table_name)
        if table.dtype.kind != "f":
            raise NotUnderstood(f"the embedding {table_name} is {table.dtype}, not floating point")
        inputs = [ModelInput(ids.name, _dims(ids), "int64")]
        emb_name = table_name
        nodes.append(Node(emb_name, "Embedding", {"num_embeddings": int(table.shape[0]),
                                                  "embedding_dim": int(table.shape[1])},
                          args=[[ids.name, 0]], weights={"weight": table}))
        used[table_name] = emb_name
        x_ref = [emb_name, 0]
        notes.insert(0, f"embedding: {table_name} {list(table.shape)}, looked up by {src.name} ({src.op}) on the ids "
                        f"placeholder {ids.name}")
    elif src.op in PLACEHOLDERS:
        if src.attrs.get("dtype", 1) not in FLOAT_DTYPES:
            raise NotUnderstood(f"the cells read the placeholder {src.name}, which is not a float tensor")
        inputs = [ModelInput(src.name, _dims(src), FLOAT_DTYPES[src.attrs.get("dtype", 1)])]
        x_ref = [src.name, 0]
        notes.insert(0, f"input: the placeholder {src.name}, read by the cells directly (no embedding lookup)")
        table = None
    else:
        raise NotUnderstood(f"between the input and the cells the graph applies {_describe(src)}, which this reader "
                            "does not understand (it knows an embedding lookup on a placeholder of ids, or a "
                            "placeholder read directly)")
    ids_name = inputs[0].name
    constant_lengths = None
    if lengths is not None and lengths.op == "Const":
        # sequence_length=tf.constant([...]): the lengths are the graph's, the model takes none
        constant_lengths = [int(v) for v in lengths.value]
        batch = inputs[0].shape[0 if batch_major_in else 1]
        if batch is not None and batch != len(constant_lengths):
            raise NotUnderstood(f"sequence_length reads {_describe(lengths)}, {len(constant_lengths)} lengths "
                                f"({str(constant_lengths)[:40]}), but the input {ids_name} is a batch of {batch}")
        notes.append(f"sequence_length: the constant {lengths.name} {constant_lengths}, held by the model (a batch of "
                     f"{len(constant_lengths)} sequences): each sequence's outputs are zeros from its length on, its "
                     "state kept (rnn.py dynamic_rnn)")
        lengths = None
    if lengths is not None:
        # the model's inputs in the order of the graph's placeholders (what a feed_dict names)
        shape = lengths.attrs.get("shape")
        batch = shape[0] if isinstance(shape, tuple) and len(shape) == 1 and shape[0] >= 0 else None
        inputs.append(ModelInput(lengths.name, [batch], "int64"))
        order = {n.name: k for k, n in enumerate(g.nodes)}
        inputs.sort(key=lambda i: order[i.name])
        notes.append(f"sequence_length: the placeholder {lengths.name}, the model's input "
                     f"{[i.name for i in inputs].index(lengths.name) + 1} of 2: each sequence's outputs are zeros "
                     "from its length on, its state kept (rnn.py dynamic_rnn)")
    if state:
        for p in state + state_bw:
            inputs.append(ModelInput(p.name, [d if d >= 0 else None for d in p.attrs["shape"]],
                                     FLOAT_DTYPES[p.attrs.get("dtype", 1)]))
        order = {n.name: k for k, n in enumerate(g.nodes)}
        inputs.sort(key=lambda i: order[i.name])
        concat = len(state + state_bw) != len(_state_widths(spec)) + (len(_state_widths(bw_spec)) if bw_spec else 0)
        notes.append(f"initial_state: the placeholders {', '.join(p.name for p in state + state_bw)} "
                     f"(the state the cells' first step reads, "
                     + ("the cells' states concatenated (state_is_tuple=False), layer by layer, " if concat else "")
                     + f"{'c, h' if concat else 'LSTMStateTuple(c, h)' if spec.cell == 'lstm' else 'h'} a cell"
                     + (", the forward stack's cells then the backward stack's" if backward is not None else "")
                     + f"), inputs of the model in the order of the graph's placeholders: "
                     f"{', '.join(i.name for i in inputs)}")
    fed = _other_placeholder(g, {i.name for i in inputs}, cell_ops)
    if fed is not None:
        raise NotUnderstood(f"the cells read the placeholder {fed.name} (an initial state fed by a feed_dict, or an "
                            "input the whole model does not take); the whole model runs from zero states")
    # -- the output side ----------------------------------------------------------------------------------
    found, problems = None, []
    width = (spec.proj_size or spec.hidden_size) * (2 if bidirectional else 1) \
        + (0 if bw_spec is None else bw_spec.proj_size or bw_spec.hidden_size)
    for mm in projections:
        try:
            found = _projection(g, mm, outputs, width, static_steps is not None)
            break
        except NotUnderstood as e:
            problems.append(str(e))
    if found is None and problems:
        raise NotUnderstood(problems[0])
    rec_out = batch_major_in
    if found is not None:
        rows_op, rows_from_seq = found["rows"], found["rows_from_seq"]
        rec_out = outputs[found["seq"]]
    for s, fed in ((spec, state),) + (((bw_spec, state_bw),) if bw_spec is not None else ()):
        widths = _state_widths(s)
        nodes.append(Node(s.name, "Recurrent", {"batch_major_in": batch_major_in, "batch_major_out": rec_out,
                                                **({"state": "c,h" if s.cell == "lstm" else "h"} if fed else {}),
                                                # state_is_tuple=False: fewer tensors than c / h, to be split
                                                **({"split": widths} if fed and len(fed) != len(widths) else {}),
                                                **({"lengths": constant_lengths} if constant_lengths else {})},
                          args=[x_ref] + ([[lengths.name, 0]] if lengths is not None else []),
                          kwargs={"state": [[p.name, 0] for p in fed]} if fed else {}, recurrent=s.name))
    last_ref = [spec.name, 0]
    if bw_spec is not None:     # the two stacks' outputs joined: tf.concat([fw, bw], 2)
        join = next(iter(outputs))
        nodes.append(Node(join, "Concat", {}, args=[[[spec.name, 0], [bw_spec.name, 0]]]))
        last_ref = [join, 0]
    if found is None:
        if static_steps is not None:
            raise NotUnderstood("static_rnn's step outputs reach no projection this reader knows")
        readers = [n for n in g.consumers.get(next(iter(outputs)), [])]
        if readers:
            raise NotUnderstood(f"the cells' output {next(iter(outputs))} feeds {', '.join(map(_describe, readers[:3]))}, "
                                "which this reader does not understand")
        notes.append("no projection after the cells: the model returns the cells' output sequence")
    else:
        rows_name = rows_op
        nodes.append(Node(rows_name, "Rows", {"size": width}, args=[last_ref]))
        w_name, b_name = found["w"], found["b"]
        w = tensor(w_name)
        b = tensor(b_name) if b_name else None
        if w.dtype.kind != "f" or (b is not None and b.dtype.kind != "f"):
            raise NotUnderstood(f"the projection's variables {w_name}, {b_name} are not floating point")
        dense_name = found["scope"]
        weights = {"weight": np.ascontiguousarray(w.T)}
        if b is not None:
            weights["bias"] = b
        nodes.append(Node(dense_name, "Dense", {"in_features": int(w.shape[0]), "out_features": int(w.shape[1]),
                                                "bias": b is not None}, args=[[rows_name, 0]], weights=weights))
        used[w_name] = dense_name
        if b_name:
            used[b_name] = dense_name
        on = f", on the rows of {rows_op} ([-1, {width}])" if rows_from_seq else f", on the rows of {rows_op}"
        notes.append(f"projection: {w_name} {list(w.shape)}" + (f" and {b_name} {list(b.shape)}" if b_name else "")
                     + f" by {found['matmul']} (MatMul)" + (f" + {found['bias_op']}" if found["bias_op"] else "") + on)
        last_ref = [dense_name, 0]
        softmax = False
        for op, what in _after(g, found["end"], int(w.shape[1]), inputs[0]):
            name = op.name
            if what == "softmax":
                nodes.append(Node(name, "Softmax", {}, args=[last_ref]))
                notes.append(f"softmax: {op.name} (Softmax): the model returns probabilities")
                softmax = True
            else:
                nodes.append(Node(name, "Unflatten", {"size": int(w.shape[1])}, args=[last_ref, [ids_name, 0]]))
                notes.append(f"{op.name} (Reshape to [batch, steps, {int(w.shape[1])}]): the rows as the ids' two "
                             "leading dims")
            last_ref = [name, 0]
        if not softmax:
            notes.append("no softmax in the graph after the projection: the model returns logits")
    notes.append("run-time settings of the cells: the table above says which came from the graph and which were "
                 "defaulted; dropout (DropoutWrapper, tf.nn.dropout) is training-time only: the model computes "
                 "inference")
    seen = set()
    for n in nodes:
        if not NAME.fullmatch(n.name) or n.name in seen or n.name in {i.name for i in inputs}:
            raise NotUnderstood(f"the op name {n.name!r} cannot name a module (empty, holds '.', or repeats)")
        seen.add(n.name)
    dtype = str(spec.dtype)
    if bw_spec is not None and str(bw_spec.dtype) != dtype:
        raise NotUnderstood(f"the forward stack {spec.name} is {spec.dtype}, the backward stack {bw_spec.name} "
                            f"{bw_spec.dtype}")
    for n in nodes:
        for k, v in n.weights.items():
            if str(v.dtype) != dtype:
                raise NotUnderstood(f"the variables of {n.name} are {v.dtype}, the cells' {dtype}")
    graph = GraphSpec("tf", inputs, [tuple(last_ref)], nodes, notes, dtype=dtype)
    graph.source = {"spec": spec, "embedding": table, "batch_major_in": batch_major_in, "static": static_steps,
                    "lengths": None if lengths is None else lengths.name, "constant_lengths": constant_lengths,
                    "state": [p.name for p in state + state_bw], "backward": bw_spec,
                    "rec_out": rec_out, "projection": None if found is None else (w, b),
                    "after": [n.kind for n in nodes if n.kind in ("Softmax", "Unflatten")]}
    return graph, used


WHILE_OPS = ("While", "StatelessWhile")
REVERSE_OPS = ("ReverseSequence", "ReverseV2")


def _loop_scope(g: _Graph, loop: str) -> str:
    """The name scope of dynamic_rnn's loop: TF 1.x's ``<rnn>/while/...`` ops are under it already; TF 2's
    ``while_v2`` (python/ops/while_v2.py ``while_loop``) builds one ``While`` / ``StatelessWhile`` op
    ``<rnn>/while`` whose body is the library function ``<rnn with '/' as '_'>_while_body_<n>``, the cells'
    ops inside it (:meth:`compat.frameworks.tf.meta.GraphIndex.cell_nodes` reads them as ``fn:<flat name>``)."""
    if not loop.startswith("fn:"):
        return loop
    flat = loop[3:]
    found = [n.name[:-len("/while")] for n in g.nodes if n.op in WHILE_OPS and n.name.endswith("/while")
             and n.name[:-len("/while")].replace("/", "_") == flat]
    if len(found) != 1:
        raise NotUnderstood(f"the cells run in the while_v2 body {flat}_while_body_..., but the graph holds "
                            f"{len(found)} While ops named like {flat}/while ({', '.join(found[:3])}): the loop's "
                            "input and output are not found")
    return found[0]


def _loop_ends(g: _Graph, loop: str) -> Tuple[str, GraphNode, bool, Optional[GraphNode]]:
    """(the sequence the loop reads, the op handing its outputs on, batch-major?, the lengths placeholder or None)
    of one ``dynamic_rnn`` (python/ops/rnn.py ``dynamic_rnn`` / ``_dynamic_rnn_loop``): a batch-major input enters
    by ``_transpose_batch_time`` (``<rnn>/transpose``) and leaves by ``<rnn>/transpose_1``; a time-major one
    enters the TensorArray unstack (TF 1.x ``TensorArrayScatterV3``, control flow v2 ``TensorListFromTensor``)
    and leaves by the stack (``TensorArrayGatherV3`` / ``TensorListStack``)."""
    transpose = g.by_name.get(f"{loop}/transpose")
    scatter = g.by_name.get(f"{loop}/TensorArrayUnstack/TensorArrayScatter/TensorArrayScatterV3")
    from_tensor = g.by_name.get(f"{loop}/TensorArrayUnstack/TensorListFromTensor")
    if transpose is not None and transpose.op == "Transpose" and transpose.inputs:
        rnn_in, batch_major = transpose.inputs[0], True
        rnn_out = g.by_name.get(f"{loop}/transpose_1")
    elif scatter is not None and len(scatter.inputs) > 2:
        rnn_in, batch_major = scatter.inputs[2], False
        rnn_out = g.by_name.get(f"{loop}/TensorArrayStack/TensorArrayGatherV3")
    elif from_tensor is not None and from_tensor.inputs:
        rnn_in, batch_major = from_tensor.inputs[0], False
        rnn_out = g.by_name.get(f"{loop}/TensorArrayV2Stack/TensorListStack")
    else:
        raise NotUnderstood(f"dynamic_rnn's loop {loop!r} has neither {loop}/transpose nor "
                            f"{loop}/TensorArrayUnstack: its input is not found")
    if rnn_out is None:
        raise NotUnderstood(f"dynamic_rnn's loop {loop!r} has no output op ({loop}/transpose_1, "
                            f"{loop}/TensorArrayStack/TensorArrayGatherV3 or {loop}/TensorArrayV2Stack/TensorListStack)")
    return rnn_in, rnn_out, batch_major, _lengths_of(g, loop)


def _lengths_source(g: _Graph, ref: str, what: str) -> GraphNode:
    """The integer ``[batch]`` placeholder ``ref`` reads, or the constant vector of lengths (``sequence_length=
    tf.constant([...])``, or a list TF made a ``Const`` of), through ``Identity`` and the ``Cast`` to int32 that
    rnn.py applies to an int64 one."""
    node = g.through_identity(ref)
    if node is not None and node.op == "Cast" and node.inputs and node.attrs.get("SrcT", 3) in INT_DTYPES:
        node = g.through_identity(node.inputs[0])
    if node is not None and node.op == "Const":
        value = node.value
        if not isinstance(value, np.ndarray) or value.ndim != 1 or not value.size or value.dtype.kind not in "iu" \
                or value.min() < 0:
            raise NotUnderstood(f"{what} reads {_describe(node)}, not a placeholder of lengths nor a constant "
                                f"vector of lengths (it holds {str(value)[:40]})")
        return node
    if node is None or node.op not in PLACEHOLDERS:
        raise NotUnderstood(f"{what} reads {_describe(node) if node is not None else 'nothing'}, not a placeholder of "
                            "lengths nor a constant vector of them")
    shape = node.attrs.get("shape")
    if node.attrs.get("dtype", 3) not in INT_DTYPES or (isinstance(shape, tuple) and len(shape) != 1):
        raise NotUnderstood(f"{what} reads the placeholder {node.name}, which is not an integer vector [batch]")
    return node


def _lengths_of(g: _Graph, loop: str) -> Optional[GraphNode]:
    """dynamic_rnn's ``sequence_length`` (rnn.py: ``array_ops.identity(math_ops.cast(sequence_length, int32),
    name="sequence_length")`` in the rnn scope, outside the loop): the placeholder or constant it reads, or None."""
    node = g.by_name.get(f"{loop}/sequence_length")
    if node is None:
        return None
    if not node.inputs:
        raise NotUnderstood(f"{_describe(node)} reads nothing")
    return _lengths_source(g, node.inputs[0], f"dynamic_rnn's sequence_length {node.name}")


def _reversed(g: _Graph, node: Optional[GraphNode], of: str, time_axis: int, lengths: Optional[GraphNode],
              what: str) -> None:
    """That ``node`` reverses the sequence ``of`` in time as bidirectional_dynamic_rnn's ``_reverse`` does
    (rnn.py): ``array_ops.reverse_sequence(x, lengths, seq_axis=time, batch_axis=1 - time)`` with lengths,
    ``array_ops.reverse(x, axis=[time])`` without."""
    if node is None or node.op not in REVERSE_OPS or len(node.inputs) != 2:
        raise NotUnderstood(f"{what} is {_describe(node) if node is not None else 'missing'}, not a reverse in time "
                            "(ReverseSequence / ReverseV2)")
    src = g.through_identity(node.inputs[0])
    if src is None or src.name != _base(of):
        raise NotUnderstood(f"{what} {_describe(node)} reverses {node.inputs[0]}, not {of}")
    if node.op == "ReverseSequence":
        if lengths is None or not _same_lengths(g, _lengths_source(g, node.inputs[1], f"{what} {_describe(node)}"),
                                                lengths):
            raise NotUnderstood(f"{what} {_describe(node)} reverses by lengths other than the cells' sequence_length")
        if _int_attr(node, "seq_dim", -1) != time_axis or _int_attr(node, "batch_dim", 0) != 1 - time_axis:
            raise NotUnderstood(f"{what} {_describe(node)} reverses axis {node.attrs.get('seq_dim')} of the batch "
                                f"axis {node.attrs.get('batch_dim', 0)}; the sequence's time axis is {time_axis}")
    else:
        axis = g.const(node.inputs[1])
        if lengths is not None or axis is None or axis.dtype.kind not in "iu" or axis.reshape(-1).tolist() != [time_axis]:
            raise NotUnderstood(f"{what} {_describe(node)} reverses axis "
                                f"{'?' if axis is None else axis.reshape(-1).tolist()}"
                                + (" of sequences with lengths" if lengths is not None else
                                   f"; the sequence's time axis is {time_axis}"))


def _bidirectional(g: _Graph, fw, bw) -> Tuple[str, Dict[str, bool]]:
    """bidirectional_dynamic_rnn (python/ops/rnn.py): the forward loop on the input, the backward loop on the input
    reversed in time, its outputs reversed back, and (the common pattern after it) ``tf.concat(outputs, 2)``:
    (the input, {the concat: batch-major?})."""
    fw_in, fw_out, batch_major, lengths = fw
    bw_in, bw_out, bw_major, bw_lengths = bw
    if bw_major != batch_major or not _same_lengths(g, lengths, bw_lengths):
        raise NotUnderstood("the two loops of bidirectional_dynamic_rnn differ in their layout or sequence_length")
    time_axis = 1 if batch_major else 0
    src = g.through_identity(fw_in)
    if src is None:
        raise NotUnderstood(f"the forward cells' input {fw_in!r} names no op of the graph")
    _reversed(g, g.through_identity(bw_in), src.name, time_axis, lengths, "the backward cells' input")
    back = [c for c in g.consumers.get(bw_out.name, []) if c.op in REVERSE_OPS]
    if len(back) != 1:
        raise NotUnderstood(f"the backward cells' output {bw_out.name} is reversed back by {len(back)} ops, not one")
    _reversed(g, back[0], bw_out.name, time_axis, lengths, "the backward cells' output")
    joins = []
    for c in g.consumers.get(fw_out.name, []):
        if c.op != "ConcatV2" or len(c.inputs) != 3:
            continue
        axis = g.const(c.inputs[2])
        if [_base(i) for i in c.inputs[:2]] == [fw_out.name, back[0].name] and axis is not None \
                and axis.dtype.kind in "iu" and axis.size == 1 and int(axis.reshape(())) in (2, -1):
            joins.append(c)
    if len(joins) != 1:
        readers = ", ".join(_describe(c) for c in g.consumers.get(fw_out.name, [])[:3]) or "nothing"
        raise NotUnderstood(f"bidirectional_dynamic_rnn's outputs are not joined by one tf.concat([forward, "
                            f"backward], 2) (the forward output {fw_out.name} feeds {readers})")
    return fw_in, {joins[0].name: batch_major}


def _bidirectional_stack(g: _Graph, meta, spec, layer_scopes: List[List[str]]):
    """The bidirectional cells' loops, layer by layer: ``bidirectional_dynamic_rnn`` (one layer), or
    ``stack_bidirectional_dynamic_rnn`` (TF 1.x contrib/rnn/python/ops/rnn.py: under
    ``stack_bidirectional_rnn/cell_<k>`` one ``bidirectional_dynamic_rnn`` a layer, every layer given the same
    ``sequence_length`` and its own ``initial_states_fw[k]`` / ``initial_states_bw[k]``, layer k + 1 reading
    ``tf.concat(outputs, 2)`` of layer k). (the first layer's input, {the last concat: batch-major?},
    batch-major?, the lengths (placeholder or constant) or None, the initial state's placeholders layer by layer
    (forward, then backward) or [], the loops' and backward cells' ops, how)."""
    loop_ops: set = set()
    fed: List[List[GraphNode]] = []       # each loop's initial-state placeholders: layer 0 fw, layer 0 bw, ...
    first_in, joined, batch_major, lengths, names, v2 = None, {}, None, None, [], False
    for k, layer in enumerate(layer_scopes):
        ends = []
        for d, scope in zip(("forward", "backward"), layer):
            nodes, loops = meta.index.cell_nodes(scope)
            if not nodes:
                raise NotUnderstood(f"the graph holds no op of the cells {scope!r}")
            if len(loops) != 1:
                raise NotUnderstood(f"the {d} cells {scope!r} run in {len(loops)} loops"
                                    + (f" ({', '.join(loops[:3])})" if loops else "")
                                    + ": bidirectional_dynamic_rnn runs each direction in one")
            loop, v2 = _loop_scope(g, loops[0]), v2 or loops[0].startswith("fn:")
            ends.append(_loop_ends(g, loop))
            fed.append(_initial_state(g, loop, loops[0].startswith("fn:"), spec, layers=1,
                                      concat=_concatenated(g, meta, [scope], spec)))
            loop_ops |= {n.name for n in nodes} | {f"{loop}/while"}
            names.append(loop)
        rnn_in, out = _bidirectional(g, ends[0], ends[1])
        if k == 0:
            first_in, batch_major, lengths = rnn_in, ends[0][2], ends[0][3]
        else:
            src = g.through_identity(rnn_in)
            if src is None or src.name not in joined:
                raise NotUnderstood(f"layer {k} of the bidirectional cells {spec.name} reads "
                                    f"{_describe(src) if src is not None else repr(rnn_in)}, not layer {k - 1}'s "
                                    f"tf.concat(outputs, 2) ({next(iter(joined))}) as stack_bidirectional_dynamic_rnn "
                                    "feeds it")
            if ends[0][2] != batch_major or not _same_lengths(g, ends[0][3], lengths):
                raise NotUnderstood(f"layer {k} of the bidirectional cells {spec.name} differs from layer 0 in its "
                                    "layout or sequence_length")
        joined = out
    if any(fed) and not all(fed):
        some = ", ".join(p.name for s in fed for p in s)
        raise NotUnderstood(f"bidirectional_dynamic_rnn's initial state is fed by placeholders ({some}) for some "
                            f"directions only; the others start from zero_state")
    state = [p for s in fed for p in s]
    if len({p.name for p in state}) != len(state):
        raise NotUnderstood(f"bidirectional_dynamic_rnn's initial state reads one placeholder twice "
                            f"({', '.join(p.name for p in state)})")
    if len(layer_scopes) == 1:
        how = (f"bidirectional_dynamic_rnn (the forward loop {names[0]}, the backward loop {names[1]} on the "
               f"reversed sequence, reversed back), their outputs joined by {next(iter(joined))} (tf.concat on the "
               "last axis)")
    else:
        how = (f"stack_bidirectional_dynamic_rnn: {len(layer_scopes)} layers of bidirectional_dynamic_rnn (the "
               f"forward loops {', '.join(names[0::2])}, the backward loops {', '.join(names[1::2])} on the reversed "
               f"sequence, reversed back), each layer's outputs joined by tf.concat on the last axis, the next "
               f"layer's input; the last {next(iter(joined))}")
    if v2:
        how += ", each a TF 2 while_v2 loop"
    return first_in, joined, batch_major, lengths, state, loop_ops, how


def _check_fed_directions(fed, what: str) -> None:
    """The two directions' fed initial states (placeholders per direction): both or neither, none read twice."""
    if any(fed) and not all(fed):
        some = ", ".join(p.name for f in fed for p in f)
        raise NotUnderstood(f"{what}'s initial state is fed by placeholders ({some}) for one direction only; the "
                            "other starts from zero_state")
    if len({p.name for f in fed for p in f}) != sum(map(len, fed)):
        raise NotUnderstood(f"{what}'s initial state reads one placeholder twice "
                            f"({', '.join(p.name for f in fed for p in f)})")


def _bidirectional_stacks(g: _Graph, meta, forward, backward):
    """``bidirectional_dynamic_rnn(MultiRNNCell(cells_fw), MultiRNNCell(cells_bw), ...)`` (python/ops/rnn.py; the
    cells are any RNNCell, a MultiRNNCell runs its layers one after the other within each step,
    rnn_cell_impl.py ``MultiRNNCell.call``): one loop a direction, each running its whole stack, the backward
    loop on the input reversed by ``ReverseSequence`` (``ReverseV2`` without lengths), its output reversed back,
    the two stacks' last layers joined once by ``tf.concat(outputs, 2)``, unlike contrib's
    stack_bidirectional_dynamic_rnn which joins them between layers. The two stacks may differ in depth and
    size. ``forward`` / ``backward``: (the stack's spec, its cell scopes). (the input, {the concat: batch-major?},
    batch-major?, the lengths (placeholder or constant) or None, the forward stack's initial-state placeholders,
    the backward stack's (``initial_state_fw`` / ``initial_state_bw``: both [] from zero_state), the loops' and
    cells' ops, how)."""
    loop_ops: set = set()
    ends, fed, names, v2 = [], [], [], False
    for d, (spec, layer_scopes) in zip(("forward", "backward"), (forward, backward)):
        loops: set = set()
        for layer in layer_scopes:
            nodes, found = meta.index.cell_nodes(layer[0])
            if not nodes:
                raise NotUnderstood(f"the graph holds no op of the cells {layer[0]!r}")
            loops |= set(found)
            loop_ops |= {n.name for n in nodes}
        if len(loops) != 1:
            raise NotUnderstood(f"the {d} stack {spec.name} runs in {len(loops)} loops"
                                + (f" ({', '.join(sorted(loops)[:3])})" if loops else "")
                                + ": bidirectional_dynamic_rnn runs each direction's MultiRNNCell whole in one")
        first = loops.pop()
        loop = _loop_scope(g, first)
        v2 = v2 or first.startswith("fn:")
        ends.append(_loop_ends(g, loop))
        fed.append(_initial_state(g, loop, first.startswith("fn:"), spec,
                                  concat=_concatenated(g, meta, [layer[0] for layer in layer_scopes], spec)))
        loop_ops.add(f"{loop}/while")
        names.append(loop)
    if names[0] == names[1]:
        raise NotUnderstood(f"the forward stack {forward[0].name} and the backward stack {backward[0].name} run in "
                            f"one loop ({names[0]})")
    rnn_in, joined = _bidirectional(g, ends[0], ends[1])
    _check_fed_directions(fed, "bidirectional_dynamic_rnn")
    how = (f"bidirectional_dynamic_rnn of two MultiRNNCells (the forward stack, {len(forward[1])} layer(s), in the "
           f"loop {names[0]}; the backward stack, {len(backward[1])} layer(s), in the loop {names[1]} on the reversed "
           f"sequence, reversed back), each stack run whole, their outputs joined by {next(iter(joined))} (tf.concat "
           "on the last axis)" + (", each a TF 2 while_v2 loop" if v2 else ""))
    return rnn_in, joined, ends[0][2], ends[0][3], fed[0], fed[1], loop_ops, how


def _no_step_conditions(g: _Graph, scopes: Sequence[str], spec) -> None:
    """static_rnn with ``sequence_length`` (rnn.py ``static_rnn``: every step ``_rnn_step`` under
    ``control_flow_ops.cond`` on the lengths, the cells' ops named ``<rnn>/cond_<t>/.../<cell>/...``, ``Select`` of
    zeros past a sequence's length; static_bidirectional_rnn's ``_reverse_seq`` by ``reverse_sequence``): refused
    by name, not read. ``scopes``: the cells' variable scopes."""
    cond = re.compile(r"/cond(?:_\d+)?/(?:.*/)?(?:" + "|".join(re.escape(s.rsplit("/", 1)[-1]) for s in scopes)
                      + r")(?:_\d+)?/")
    inside = next((n for n in g.nodes if cond.search(n.name)), None)
    if inside is not None:
        raise NotUnderstood(f"the cells {spec.name} run inside a tf.cond ({_describe(inside)}): static_rnn with "
                            "sequence_length (rnn.py _rnn_step), which the whole model does not read")


def _unpack_steps(g: _Graph, nodes: Sequence[GraphNode], what: str) -> GraphNode:
    """The one ``tf.unstack`` the cells ``nodes`` (a stack's first layer under static_rnn) read their steps from."""
    unpacks = {_base(i) for n in nodes for i in n.inputs if (u := g.get(i)) is not None and u.op == "Unpack"}
    if len(unpacks) != 1:
        raise NotUnderstood(f"the {what} runs outside a loop (static_bidirectional_rnn) but reads "
                            f"{'no' if not unpacks else len(unpacks)} tf.unstack ops ({', '.join(sorted(unpacks))})")
    return g.by_name[unpacks.pop()]


def _steps_read(g: _Graph, unpack: str, memo: Dict[str, frozenset]):
    """``steps(name)``: the outputs of the ``Unpack`` op ``unpack`` (the steps of static_rnn's input) the op
    ``name`` is computed from, read once over the graph's ops (memoised: a static graph's later steps read all
    the earlier ones)."""
    def steps(name: str) -> frozenset:
        todo, open_ = [(name, False)], set()
        while todo:
            cur, expanded = todo.pop()
            if cur in memo:
                continue
            node = g.by_name.get(cur)
            refs = [] if node is None else [i.lstrip("^") for i in node.inputs]
            if expanded:
                memo[cur] = frozenset().union(*[frozenset([_output(r)]) if _base(r) == unpack else memo[_base(r)]
                                                for r in refs])
                continue
            if cur in open_:        # reached again before its inputs were read: a cycle, which a static graph lacks
                raise NotUnderstood(f"{_describe(node)} reads itself")
            open_.add(cur)
            todo.append((cur, True))
            todo += [(_base(r), False) for r in refs if _base(r) != unpack and _base(r) not in memo]
        return memo[name]

    return steps


def _static_bidirectional_stacks(g: _Graph, meta, forward, backward, what: str = "two MultiRNNCells"):
    """``static_bidirectional_rnn(MultiRNNCell(cells_fw), MultiRNNCell(cells_bw), tf.unstack(x, axis=1))``
    (python/ops/rnn.py): ``static_rnn`` of the forward stack on the steps, of the backward stack on
    ``_reverse_seq(inputs, None)`` (the Python list reversed: no op), its outputs reversed back the same way,
    then per step ``array_ops.concat([fw, bw], 1)``; the caller joins those steps by ``tf.concat(outputs, 1)`` /
    ``tf.stack``. So the step ``t`` joined is the forward stack's output after the steps 0..t and the backward
    stack's after the steps T-1 down to t: each join is checked by the input steps its two halves are computed
    from (their ``Unpack`` outputs), which is what running the backward stack as a reverse-direction module
    computes. With ``sequence_length`` (``_reverse_seq`` by ``reverse_sequence``, each step under ``tf.cond``) it
    is refused by name. ``forward`` / ``backward``: (the stack's spec, its cell scopes; for two cells, one layer
    each of a bidirectional spec). (the input, {the steps' join: batch-major?}, batch-major?, the steps, the
    forward stack's initial-state placeholders, the backward stack's, the cells' ops, how)."""
    spec, bw_spec = forward[0], backward[0]
    ends, ops = [], set()
    for d, (s, layer_scopes) in zip(("forward", "backward"), (forward, backward)):
        layers = [(layer[0], meta.index.cell_nodes(layer[0])[0]) for layer in layer_scopes]
        for scope, nodes in layers:
            if not nodes:
                raise NotUnderstood(f"the graph holds no op of the cells {scope!r}")
            ops |= {n.name for n in nodes}
        ends.append((_unpack_steps(g, layers[0][1], f"{d} stack {s.name}"), layers))
    (unpack, fw_layers), (bw_unpack, bw_layers) = ends
    if bw_unpack.name != unpack.name:
        raise NotUnderstood(f"the forward stack {spec.name} reads the steps of {unpack.name}, the backward stack "
                            f"{bw_spec.name} those of {bw_unpack.name}: static_bidirectional_rnn gives both one list")
    axis = _int_attr(unpack, "axis", 0)
    steps_n = _int_attr(unpack, "num", 0)
    if axis not in (0, 1, -2, -3) or steps_n < 1:
        raise NotUnderstood(f"{_describe(unpack)} splits axis {axis} into {steps_n}; static_rnn's steps are axis 0 "
                            "or 1 of a sequence")
    fw_last = {n.name for n in fw_layers[-1][1]}
    bw_last = {n.name for n in bw_layers[-1][1]}
    joins = {}
    for n in g.nodes:       # rnn.py: array_ops.concat([fw, bw], 1) a step
        if n.op != "ConcatV2" or len(n.inputs) != 3 or _base(n.inputs[0]) not in fw_last \
                or _base(n.inputs[1]) not in bw_last:
            continue
        a = g.const(n.inputs[2])
        if a is not None and a.dtype.kind in "iu" and a.size == 1 and int(a.reshape(())) in (1, -1):
            joins[n.name] = n
    outputs, order = {}, None
    for n in g.nodes:       # the steps' joins joined: tf.concat(outputs, axis) / tf.stack(outputs, axis)
        data = n.inputs[:-1] if n.op == "ConcatV2" else n.inputs if n.op == "Pack" else None
        if not data or len(data) != steps_n or not all(_base(i) in joins for i in data):
            continue
        a = g.const(n.inputs[-1]) if n.op == "ConcatV2" else np.array(n.attrs.get("axis", 0))
        if a is None or a.size != 1 or a.dtype.kind not in "iu":
            continue
        a = int(a.reshape(()))
        if (n.op == "ConcatV2" and a in (0, 1, -1, -2)) or (n.op == "Pack" and a in (0, 1, -2, -3)):
            outputs[n.name] = a in (1, -1) if n.op == "ConcatV2" else a in (1, -2)
            if order not in (None, [_base(i) for i in data]):
                raise NotUnderstood(f"{_describe(n)} joins static_bidirectional_rnn's steps in another order than "
                                    f"the other join of them")
            order = [_base(i) for i in data]
    if not outputs:
        raise NotUnderstood(f"static_bidirectional_rnn's {len(joins)} step joins (tf.concat([fw, bw], 1)) are not "
                            f"joined, all {steps_n} in one tf.concat / tf.stack")
    steps = _steps_read(g, unpack.name, {})
    for t, name in enumerate(order):
        fw_ref, bw_ref = joins[name].inputs[:2]
        got_fw, got_bw = sorted(steps(_base(fw_ref))), sorted(steps(_base(bw_ref)))
        if got_fw != list(range(t + 1)) or got_bw != list(range(t, steps_n)):
            raise NotUnderstood(f"step {t} of static_bidirectional_rnn's outputs, {_describe(joins[name])}, joins the "
                                f"forward stack's output after the steps {got_fw} and the backward stack's after "
                                f"{got_bw}, not after 0..{t} and {steps_n - 1} down to {t}")
    fed = [_first_step_state(g, layers, s, f"static_bidirectional_rnn's {d}",
                             _concatenated(g, meta, [scope for scope, _ in layers], s))
           for d, s, layers in (("forward", spec, fw_layers), ("backward", bw_spec, bw_layers))]
    _check_fed_directions(fed, "static_bidirectional_rnn")
    how = (f"static_bidirectional_rnn of {what} over {unpack.name} (tf.unstack, axis {axis}): the forward "
           f"{'stack' if backward[0] is not spec else 'cell'}, {len(fw_layers)} layer(s), on the steps, the backward "
           f"{'stack' if backward[0] is not spec else 'cell'}, {len(bw_layers)} layer(s), on the steps reversed, each "
           f"step's outputs joined by tf.concat([fw, bw], 1), the steps by {next(iter(outputs))}")
    return unpack.inputs[0], outputs, axis in (1, -2), steps_n, fed[0], fed[1], ops, how


_STACK_SLICE = re.compile(r"(?:multi_rnn_cell|MultiRNNCell)/(?:cell_|Cell)\d+(?:_\d+)?/Slice(?:_\d+)?$")


def _state_widths(spec, cells: Optional[int] = None) -> List[int]:
    """The widths of the state tensors ``nest.flatten`` lists for ``cells`` cells of ``spec`` (the spec's layers
    and directions unless given): ``c`` then ``h`` a cell for an LSTM (``h`` the projection's width), ``h`` for
    a GRU or basic RNN cell."""
    cells = spec.num_layers * (2 if spec.direction == "bidirectional" else 1) if cells is None else cells
    hidden, out = spec.hidden_size, spec.proj_size or spec.hidden_size
    return [hidden, out] * cells if spec.cell == "lstm" else [hidden] * cells


def _concatenated(g: _Graph, meta, scopes: Sequence[str], spec) -> bool:
    """Whether the cells under ``scopes`` (one stack's layers, in order) read their state as one tensor, the
    layers' states concatenated (``state_is_tuple=False``), rather than one tensor per ``c`` / ``h``.

    Keras's legacy_rnn/rnn_cell_impl.py (TF 2.21's copy of TF 1.x's python/ops/rnn_cell_impl.py):
    ``MultiRNNCell.call`` with ``state_is_tuple=False`` gives layer k ``array_ops.slice(state, [0, cur_state_pos],
    [-1, cell.state_size])`` under ``cell_<k>`` (``cur_state_pos`` the sum of the layers' sizes below; a
    ``Slice`` beside the cell's own scope) and returns ``array_ops.concat(new_states, 1)``; it requires every cell's
    state to be one tensor (``__init__``: "Some cells return tuples of states"), so an LSTM cell in it has
    ``state_is_tuple=False`` too: ``BasicLSTMCell.call`` ``c, h = array_ops.split(value=state,
    num_or_size_splits=2, axis=1)``, ``LSTMCell.call`` ``c_prev = array_ops.slice(state, [0, 0], [-1,
    num_units])``, ``m_prev = array_ops.slice(state, [0, num_units], [-1, num_proj])``, each returning
    ``concat([c, h], 1)``. So the one tensor is, layer by layer, ``[c, h]`` an LSTM cell, ``h`` a GRU or basic RNN
    cell: ``nest.flatten``'s order of the tuple state, concatenated. Each layer's slice is checked at the offset
    and width that order gives (NotUnderstood naming the ``Slice`` otherwise). One LSTM cell with
    ``state_is_tuple=False`` alone reads one ``[c, h]`` tensor the same way; a MultiRNNCell with
    ``state_is_tuple=True`` of such cells (a tuple of ``[c, h]`` tensors) is refused by name."""
    widths = _state_widths(spec, 1)
    size = sum(widths)
    stack, cell_level = [], []
    for k, scope in enumerate(scopes):
        nodes = meta.index.cell_nodes(scope)[0]
        names = {n.name for n in nodes}
        for n in nodes:
            for j, i in enumerate(n.inputs):
                src = g.get(i) if not i.startswith("^") and _base(i) not in names else None
                if src is None:
                    continue
                if src.op == "Slice" and _STACK_SLICE.search(src.name):
                    begin, width = (g.const(r) for r in src.inputs[1:3]) if len(src.inputs) == 3 else (None, None)
                    if begin is None or width is None or begin.reshape(-1).tolist() != [0, k * size] \
                            or width.reshape(-1).tolist() != [-1, size]:
                        raise NotUnderstood(
                            f"{_describe(src)} gives layer {k} of the MultiRNNCell {spec.name} (state_is_tuple="
                            f"False) the columns from {'?' if begin is None else begin.reshape(-1).tolist()} sized "
                            f"{'?' if width is None else width.reshape(-1).tolist()}, not [0, {k * size}] sized "
                            f"[-1, {size}] as MultiRNNCell.call slices them")
                    stack.append(k)
                elif spec.cell == "lstm" and ((n.op == "Split" and j == 1 and _int_attr(n, "num_split", 0) == 2)
                                              or (n.op == "Slice" and j == 0)):
                    cell_level.append(k)
    if stack and sorted(set(stack)) != list(range(len(scopes))):
        raise NotUnderstood(f"the layers {sorted(set(stack))} of the MultiRNNCell {spec.name} slice their state out "
                            f"of one tensor (state_is_tuple=False), the others not")
    if not stack and cell_level and len(scopes) > 1:
        raise NotUnderstood(f"the LSTM cells of {spec.name} read their state as one [c, h] tensor each "
                            "(state_is_tuple=False) in a MultiRNNCell with state_is_tuple=True (a tuple of such "
                            "tensors), which the whole model does not read")
    return bool(stack or cell_level)


def _same_lengths(g: _Graph, a: Optional[GraphNode], b: Optional[GraphNode]) -> bool:
    """Whether two loops read the same sequence_length: one placeholder, or constants of one value."""
    if a is None or b is None:
        return a is None and b is None
    if a.op == "Const" and b.op == "Const":
        return a.value.shape == b.value.shape and bool((a.value == b.value).all())
    return a.name == b.name


def _is_zeros(g: _Graph, ref: str) -> bool:
    """``cell.zero_state`` (rnn_cell_impl.py ``_zero_state_tensors``: ``array_ops.zeros``, a ``Fill`` of 0 or a
    ``Const`` of zeros)."""
    node = g.through_identity(ref)
    if node is None:
        return False
    value = node.value if node.op == "Const" else g.const(node.inputs[1]) if node.op == "Fill" and len(node.inputs) == 2 \
        else None
    return value is not None and value.dtype.kind in "fiu" and value.size >= 1 and not value.any()


def _initial_state(g: _Graph, loop: str, v2: bool, spec, layers: Optional[int] = None,
                   concat: bool = False) -> List[GraphNode]:
    """The placeholders dynamic_rnn's ``initial_state`` reads (:func:`_start_state`), or [] for ``zero_state``.
    rnn.py ``_dynamic_rnn_loop`` loops over ``(time, output_ta, state)``: in TF 1.x's loop each enters by
    ``<rnn>/while/Enter_<k>`` after the iteration counter, time and the TensorArray (``Enter_3`` on); a while_v2
    ``While`` op takes them after its loop counter, maximum iterations, time and the TensorList (inputs 4 on).
    ``layers``: the cells the loop runs (one for a direction of bidirectional_dynamic_rnn), the spec's layers
    unless given; ``concat``: the state is one tensor (:func:`_concatenated`), one loop variable."""
    n = 1 if concat else (spec.num_layers if layers is None else layers) * (2 if spec.cell == "lstm" else 1)
    if v2:
        loop_op = g.by_name.get(f"{loop}/while")
        refs = loop_op.inputs[4:4 + n] if loop_op is not None and len(loop_op.inputs) >= 4 + n else None
    else:
        enters = [g.by_name.get(f"{loop}/while/Enter_{3 + k}") for k in range(n)]
        refs = [e.inputs[0] for e in enters if e is not None and e.op == "Enter" and len(e.inputs) == 1]
        refs = refs if len(refs) == n else None
    if refs is None:
        raise NotUnderstood(f"dynamic_rnn's loop {loop!r} does not show its {n} state tensors where rnn.py's loop "
                            "takes them")
    return _start_state(g, refs, spec, "dynamic_rnn's", layers, concat)


def _start_state(g: _Graph, refs: Sequence[str], spec, who: str, layers: Optional[int] = None,
                 concat: bool = False) -> List[GraphNode]:
    """The one rule for where the cells' first step reads its state from, ``refs`` flattened as ``nest.flatten``
    orders the state (MultiRNNCell: layer by layer; LSTMStateTuple: c, then h): [] for ``zero_state`` (every
    tensor zeros, whatever their number: an LSTM cell with ``state_is_tuple=False`` reads one [batch, 2 * units]
    zeros), the placeholders in order when every tensor is a float [batch, width] placeholder (the model's
    inputs), and otherwise NotUnderstood naming the op (a constant, a variable, ``tf.ones``, a learned state
    ``tf.tile(var, ...)``: starting from zeros instead would be silent garbage). ``layers``: the cells that state
    is for, the spec's layers unless given; ``concat``: the state is one tensor, the cells' states concatenated
    in that order (:func:`_concatenated`), fed by one float [batch, their widths' sum] placeholder."""
    per_layer = 2 if spec.cell == "lstm" else 1
    layers = spec.num_layers if layers is None else layers
    n = 1 if concat else layers * per_layer
    nodes = [g.through_identity(r) for r in refs]
    fed = [p for p in nodes if p is not None and p.op in PLACEHOLDERS]
    if not fed and refs and all(_is_zeros(g, r) for r in refs):
        return []
    odd = next((p for p in nodes if p is None or (p.op not in PLACEHOLDERS and not _is_zeros(g, p.name))), None)
    if odd is not None or not refs:
        raise NotUnderstood(f"{who} initial state is " + (f"{_describe(odd)}, neither zero_state nor a placeholder"
                                                          if odd is not None else "missing"))
    if len(fed) != len(refs):
        raise NotUnderstood(f"{who} initial state is fed by placeholders in part ({', '.join(p.name for p in fed)} "
                            f"of {len(refs)} tensors)")
    if len(fed) != n and not concat:
        raise NotUnderstood(f"{who} initial state is {len(fed)} placeholder(s) ({', '.join(p.name for p in fed)}) "
                            f"for {n} state tensors ({'c and h' if per_layer == 2 else 'h'} a layer): a state "
                            "concatenated in one tensor (state_is_tuple=False) is not taken as an input")
    widths = _state_widths(spec, layers)
    if concat:
        if len(fed) != 1:
            raise NotUnderstood(f"{who} initial state is {len(fed)} tensors ({', '.join(p.name for p in fed)}) "
                                f"where the cells read one (state_is_tuple=False)")
        widths = [sum(widths)]
    for p, width in zip(fed, widths):
        shape = p.attrs.get("shape")
        if p.attrs.get("dtype", 1) not in FLOAT_DTYPES or not isinstance(shape, tuple) or len(shape) != 2 \
                or shape[1] != width:
            raise NotUnderstood(f"the initial-state placeholder {p.name} is not a float [batch, {width}] tensor "
                                f"(shape {shape})")
    if len({p.name for p in fed}) != n:
        raise NotUnderstood(f"{who} initial state reads one placeholder twice ({', '.join(p.name for p in fed)})")
    return fed


def _first_step_state(g: _Graph, layers: List[Tuple[str, List[GraphNode]]], spec, who: str,
                      concat: bool = False) -> List[GraphNode]:
    """Where static_rnn's / an unrolled loop's first step reads its state (:func:`_start_state` decides).

    rnn.py ``static_rnn`` passes ``initial_state`` (or ``cell.zero_state(batch_size, dtype)``) to the call of
    step 0 and each step's new state to the next; ptb_word_lm.py's loop does the same by hand. Each layer's
    cells (``layers``: (the variables' scope, every step's ops) of one layer, MultiRNNCell's ``cell_<k>``) read that state
    through ops of their own scope (rnn_cell_impl.py): BasicLSTMCell / LSTMCell ``c, h = state`` (tuple), or a
    ``split`` / ``slice`` of the one tensor (``state_is_tuple=False``); ``concat([inputs, h], 1)`` then the
    kernel's matmul, ``c`` into the forget gate's multiply (and the peepholes); GRUCell and BasicRNNCell
    ``concat([inputs, state], 1)`` (GRUCell's ``r * state``, ``u * state`` too). So the state tensors are what
    a layer's ops read from outside every layer's cells, other than its own variables' reads and the cell's input
    (the first operand of its ``concat``: the step of the sequence, or the layer below, dropout and all), and
    that depend on no cell op (the later steps' states come from the cells; MAX_TRACE bounds the search). An
    LSTMStateTuple's ``h`` is the one in a ``concat``, ``c`` the other. ``concat``: the state is one tensor
    (:func:`_concatenated`), each layer's part of it read through MultiRNNCell's ``Slice``: the tensor sliced."""
    cells = {n.name for _, layer in layers for n in layer}
    refs: List[str] = []
    for scope, layer in layers:
        found: List[str] = []
        h_refs = set()
        for n in layer:
            for k, i in enumerate(n.inputs):
                if i.startswith("^") or _base(i) in cells or (g.variable(i) or "").startswith(scope + "/"):
                    continue
                if n.op == "ConcatV2" and k == 0:      # concat([inputs, h], 1): the cell's input
                    continue
                if _reaches(g, i, cells):
                    continue
                src = g.get(i)
                if concat and src is not None and src.op == "Slice" and _STACK_SLICE.search(src.name) and src.inputs:
                    i = src.inputs[0]       # MultiRNNCell's slice of the one tensor (offsets: _concatenated)
                    if i in refs:
                        continue
                if i not in found:
                    found.append(i)
                if n.op == "ConcatV2" and k == 1:
                    h_refs.add(i)
        if spec.cell == "lstm" and len(found) == 2:
            h = [r for r in found if r in h_refs]
            if len(h) != 1:
                raise NotUnderstood(f"{who} first step reads {', '.join(found)} as its state, but not one of them "
                                    "as h (the concat with the input rnn_cell_impl.py's LSTM cells build)")
            found = [r for r in found if r not in h_refs] + h      # c, then h
        refs += found
    return _start_state(g, refs, spec, who, concat=concat)


def _bounded_search(start: str, following, targets: set, limit: int) -> bool:
    """Whether an op in ``targets`` is found from ``start`` through ``following(name)`` (the names next to an
    op, one way through the graph), visiting at most ``limit`` ops."""
    seen, todo = set(), [start]
    while todo and len(seen) < limit:
        name = todo.pop()
        if name in targets:
            return True
        if name in seen:
            continue
        seen.add(name)
        todo += following(name)
    return False


def _reaches(g: _Graph, ref: str, targets: set) -> bool:
    """Whether ``ref`` is computed from an op in ``targets``, within a bounded search of what it reads."""
    def reads(name: str) -> List[str]:
        node = g.by_name.get(name)
        return [] if node is None else [_base(i.lstrip("^")) for i in node.inputs]

    return _bounded_search(_base(ref), reads, targets, MAX_TRACE * 4)


def _other_placeholder(g: _Graph, inputs: set, cell_ops: set) -> Optional[GraphNode]:
    """A placeholder other than the model's inputs that reaches the cells (an ``initial_state`` fed by
    ptb_word_lm.py-style ``feed_dict``s, a keep probability fed at run time), within a bounded search of the ops
    that read it."""
    others = [p for p in g.nodes if p.op in PLACEHOLDERS and p.name not in inputs]
    if len(others) > MAX_TRACE:
        raise NotUnderstood(f"the graph holds {len(others)} placeholders besides the model's inputs; which reach the "
                            f"cells is not searched beyond {MAX_TRACE}")
    def readers(name: str) -> List[str]:
        return [c.name for c in g.consumers.get(name, [])]

    for p in others:
        if _bounded_search(p.name, readers, cell_ops, MAX_TRACE * 8):
            return p
    return None


def _unrolled(g: _Graph, slices: List[GraphNode]) -> Tuple[str, bool, int, str]:
    """ptb_word_lm.py's own unroll, ``cell(inputs[:, time_step, :], state)`` for every step: one ``StridedSlice``
    per step of one sequence (``begin`` [0, t, 0], ``end`` [0, t + 1, 0], strides 1, the other axes' mask bits
    set, ``shrink_axis_mask`` the step's axis). (the sequence, batch-major?, steps, how)."""
    source, axis, steps = None, None, []
    for sl in slices:
        begin, end, strides = (g.const(i) for i in sl.inputs[1:4]) if len(sl.inputs) == 4 else (None, None, None)
        shrink = _int_attr(sl, "shrink_axis_mask", 0)
        masks = (_int_attr(sl, "begin_mask", 0), _int_attr(sl, "end_mask", 0))
        if _int_attr(sl, "ellipsis_mask", 0) or _int_attr(sl, "new_axis_mask", 0) or shrink not in (1, 2) \
                or begin is None or end is None or strides is None or begin.dtype.kind not in "iu" \
                or not begin.shape == end.shape == strides.shape or begin.shape not in ((2,), (3,)):
            raise NotUnderstood(f"the cells read {_describe(sl)}, which is not one step x[:, t] / x[t] of a sequence")
        a = shrink.bit_length() - 1
        others = [k for k in range(begin.shape[0]) if k != a]
        t = int(begin[a])
        if (strides != 1).any() or int(end[a]) != t + 1 or t < 0 \
                or not all(m >> k & 1 for m in masks for k in others):
            raise NotUnderstood(f"the cells read {_describe(sl)}, which is not one step x[:, t] / x[t] of a sequence")
        if source not in (None, sl.inputs[0]) or axis not in (None, a):
            raise NotUnderstood(f"the cells read steps of more than one sequence or axis ({_describe(sl)})")
        source, axis = sl.inputs[0], a
        steps.append(t)
    if sorted(steps) != list(range(len(steps))):
        raise NotUnderstood(f"the cells read steps {sorted(steps)} of {source}; an unrolled loop reads 0 to "
                            f"{len(steps) - 1} once each")
    return source, axis == 1, len(steps), (f"an unrolled loop over {source} (cell(inputs[:, t, :]), "
                                           f"{', '.join(sl.name for sl in slices[:2])}, ...)")


def _dims(placeholder: GraphNode) -> List[Optional[int]]:
    shape = placeholder.attrs.get("shape")
    if not isinstance(shape, tuple) or len(shape) not in (2, 3):
        return [None, None] if placeholder.attrs.get("dtype", 1) in INT_DTYPES else [None, None, None]
    return [d if d >= 0 else None for d in shape]


def _projection(g: _Graph, mm: GraphNode, outputs: Dict[str, bool], width: int, static: bool) -> dict:
    """The projection ``mm`` (a MatMul on a variable) when it reads the cells' output (``width`` features) as the
    patterns do."""
    w_name = g.variable(mm.inputs[1])
    if mm.attrs.get("transpose_a") or mm.attrs.get("transpose_b"):
        raise NotUnderstood(f"{_describe(mm)} transposes an operand: not x @ w")
    x = g.through_identity(mm.inputs[0])
    if x is None:
        raise NotUnderstood(f"{_describe(mm)} reads nothing")
    rows_from_seq = True
    if x.op == "Reshape":
        shape = g.const(x.inputs[1]) if len(x.inputs) > 1 else None
        if shape is None or shape.shape != (2,) or shape.dtype.kind not in "iu" or int(shape[0]) != -1 \
                or int(shape[1]) != width:
            raise NotUnderstood(f"{_describe(x)} before the projection reshapes to "
                                f"{'?' if shape is None else shape.tolist()}, not [-1, {width}]")
        seq = g.through_identity(x.inputs[0])
        rows = x.name
    elif static and x.name in outputs and not outputs[x.name] and x.op == "ConcatV2":
        seq, rows, rows_from_seq = x, x.name, False     # tf.concat(outputs, 0): the [T*B, H] rows already
    else:
        seq, rows = x, None
    if seq is None or seq.name not in outputs:
        start = seq if seq is not None else x
        if any(g.upstream(start, o) for o in outputs):
            bad = seq if seq is not None else x
            raise NotUnderstood(f"between the cells' output ({', '.join(outputs)}) and the projection {mm.name} on "
                                f"{w_name} the graph applies {_describe(bad)}, which this reader does not understand: "
                                "the embedding and the projection are not converted")
        raise NotUnderstood(f"the projection {mm.name} on {w_name} does not read the cells' output")
    if rows is None:
        raise NotUnderstood(f"the projection {mm.name} reads the cells' [batch, steps, size] output without the "
                            "reshape to [-1, size]")
    if g.shapes[w_name][0] != width:
        raise NotUnderstood(f"the projection {w_name} {list(g.shapes[w_name])} reads {width} features")
    out = int(g.shapes[w_name][1])
    bias, bias_op = None, None
    for c in g.consumers.get(mm.name, []):
        if c.op in BIAS_OPS and len(c.inputs) == 2:
            other = c.inputs[1] if _base(c.inputs[0]) == mm.name else c.inputs[0]
            v = g.variable(other)
            if v is not None and g.shapes[v] == (out,):
                bias, bias_op = v, c.name
    scope = w_name.rsplit("/", 1)[0] if w_name.rsplit("/", 1)[-1] in ("kernel", "weights") and "/" in w_name else w_name
    return {"w": w_name, "b": bias, "matmul": mm.name, "bias_op": bias_op, "seq": seq.name, "rows": rows,
            "rows_from_seq": rows_from_seq, "scope": scope, "end": bias_op or mm.name}


def _after(g: _Graph, end: str, vocab: int, ids: ModelInput) -> List[Tuple[GraphNode, str]]:
    """The ops after the projection the model returns through: ``Softmax`` on the last axis, and a reshape of the
    rows to the ids' ``[batch, steps, vocab]`` (ptb_word_lm.py), in the graph's order."""
    chain: List[Tuple[GraphNode, str]] = []
    cur = end
    for _ in range(2):
        nxt = None
        for c in g.consumers.get(cur, []):
            if c.op == "Softmax" and "softmax" not in [w for _, w in chain]:
                nxt = (c, "softmax")
                break
        if nxt is None:
            for c in g.consumers.get(cur, []):
                if c.op != "Reshape" or len(c.inputs) < 2 or "unflatten" in [w for _, w in chain]:
                    continue
                shape = g.const(c.inputs[1])
                if shape is None or shape.shape != (3,) or shape.dtype.kind not in "iu" or int(shape[2]) not in (vocab, -1):
                    continue
                dims = ids.shape[:2]
                if all(d is None or int(s) in (-1, d) for s, d in zip(shape[:2].tolist(), dims)) \
                        and list(shape[:2]).count(-1) + (int(shape[2]) == -1) <= 1:
                    nxt = (c, "unflatten")
                    break
        if nxt is None:
            break
        chain.append(nxt)
        cur = nxt[0].name
    return chain
