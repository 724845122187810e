"""The run-time settings of TF1 LSTM cells that a checkpoint does not store, settled from the ``.meta`` graph
beside it (:mod:`compat.formats.tf.meta_graph`: read as data, never run).

Each cell's ops are found by its variable scope: inside a ``dynamic_rnn`` loop built by TF 1.x they are named
``<rnn>/while/<cell scope below rnn>/...`` (``rnn/while/basic_lstm_cell/Add``,
``rnn/while/rnn/multi_rnn_cell/cell_0/basic_lstm_cell/Add``), in a TF 2 ``while_v2`` loop
``<rnn>_while_body_<n>/<cell scope below rnn>/...`` (a function of the graph's library), in ``static_rnn``
``<cell scope>_<k>/...``. Patterns read (TF 1.x python/ops/rnn_cell_impl.py; TF 2's
keras/layers/legacy_rnn/rnn_cell_impl.py and rnn_cell_wrapper_impl.py; python/ops/rnn.py):

- ``forget_bias``: the Add (``AddV2``) of the forget gate, ``split:2``, and a scalar ``Const``
  (BasicLSTMCell ``add(f, forget_bias_tensor)``; LSTMCell ``f + self._forget_bias``, before its peephole).
- ``cell_clip`` / ``proj_clip``: ``clip_by_value``'s ``Minimum`` with a scalar ``Const``; on the projection's
  ``MatMul`` it is ``proj_clip``, else ``cell_clip``.
- the activation: the cell's non-gate activation ops (``Tanh``, ``Relu``, ``Elu``, ...).
- ``time_major``: dynamic_rnn's ``_transpose_batch_time`` adds ``<rnn>/transpose`` before the loop unless
  ``time_major=True``; ``sequence_length``: dynamic_rnn names it ``<rnn>/sequence_length``.
- DropoutWrapper keep probabilities: ``DropoutWrapperInit[_k]/Const``, ``Const_1``, ``Const_2`` (input,
  state, output), which it converts from Python numbers in its constructor.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from compat.formats.tf.meta_graph import GraphNode

# TF activation ops -> the core's activation names (compat/lstm_activations.py)
ACTIVATION_OPS = {"Tanh": "tanh", "Relu": "relu", "Elu": "elu", "Selu": "selu", "Softsign": "softsign",
                  "Softplus": "softplus"}
OTHER_ACTIVATION_OPS = ("Relu6", "LeakyRelu", "Gelu")
VARIABLE_SEGMENTS = ("kernel", "bias", "weights", "biases", "projection", "w_i_diag", "w_f_diag", "w_o_diag")
_FUNCTION_BODY = re.compile(r"(.*)_while_body_\d+$")
_WRAPPER_CONST = re.compile(r"(?:.*/)?(DropoutWrapperInit(?:_\d+)?)/Const(?:_(\d+))?$")


@dataclass
class Setting:
    """One setting found in the graph: its value and the node it was read from."""

    value: object
    node: str


@dataclass
class CellSettings:
    """What the graph says about one cell (None where it says nothing)."""

    forget_bias: Optional[Setting] = None
    cell_clip: Optional[Setting] = None
    proj_clip: Optional[Setting] = None
    activation: Optional[Setting] = None
    time_major: Optional[Setting] = None
    sequence_length: Optional[Setting] = None
    loop: bool = False             # the cell runs in a dynamic_rnn loop (time_major and sequence_length apply)
    found: bool = False            # any of the cell's ops is in the graph
    conflicts: List[str] = field(default_factory=list)


class GraphSettingsError(ValueError):
    """Ops of one cell that disagree (two forget biases, say); the message names the nodes."""


def _base(name: str) -> str:
    """A node name from an input reference: ``x:1`` / ``x:output:0`` (a function's) -> ``x``."""
    return name.split(":", 1)[0]


def _output(name: str) -> Optional[int]:
    parts = name.split(":")
    return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 0


class GraphIndex:
    """The graph's nodes by name, and the scope each node's cell op sits in."""

    def __init__(self, nodes: Sequence[GraphNode]):
        self.nodes = list(nodes)
        self.by_name: Dict[str, GraphNode] = {n.name: n for n in self.nodes}

    def scalar(self, ref: str) -> Optional[float]:
        node = self.by_name.get(_base(ref))
        if node is None or node.op != "Const" or node.value is None or node.value.shape not in ((), (1,)):
            return None
        if node.value.dtype.kind != "f":
            return None
        return float(node.value.reshape(()))

    def cell_nodes(self, scope: str) -> Tuple[List[GraphNode], List[str]]:
        """The ops of the cell whose variables live under ``scope``, and the loop scopes they run in (``rnn``;
        empty for a static_rnn)."""
        parts = scope.split("/")
        last = re.escape(parts[-1]) + r"(?:_\d+)?"
        patterns = [re.compile("/".join([re.escape(p) for p in parts[j:-1]] + [last]) + "/") for j in range(len(parts))]
        # the cell's ops named under its variable scope with one component repeated: TF 1.x names the ops of a
        # cell called in a scope's name scope again below it (static_rnn in a model's scope,
        # "Model/rnn/rnn/multi_rnn_cell/cell_0/basic_lstm_cell/Add"; inside a loop, "<rnn>/while/rnn/multi_...")
        doubled = [re.compile("/".join([re.escape(p) for p in parts[:j] + parts[j - 1:-1]] + [last]) + "/")
                   for j in range(1, len(parts))]
        # static_bidirectional_rnn (rnn.py) runs static_rnn(scope=fw_scope) inside variable_scope("fw"), and the
        # cell's call enters that scope once more: "bidirectional_rnn/fw/fw/fw/multi_rnn_cell/cell_0/..."
        doubled += [re.compile("/".join([re.escape(p) for p in parts[:j] + parts[j - 1:j] + parts[j - 1:-1]] + [last])
                               + "/") for j in range(1, len(parts))]
        out, loops = [], set()
        for n in self.nodes:
            if parts[-1] not in n.name:     # most nodes: not this cell's
                continue
            for outer, inner, loop in self._candidates(n.name):
                if outer is None and any(d.match(inner) and not self._is_variable(inner[d.match(inner).end():])
                                         for d in doubled):
                    out.append(n)
                    break
                # a cell inside a loop whose name scope the cell's own scope repeats below it: dynamic_rnn's
                # MultiRNNCell ("<rnn>/while/rnn/multi_rnn_cell/..."; while_v2: "<rnn flat>_while_body_<n>/rnn/
                # multi_rnn_cell/..."), the MultiRNNCell of a bidirectional_dynamic_rnn direction
                # ("bidirectional_rnn/fw/fw/while/fw/multi_rnn_cell/...")
                if outer is not None and any(self._loop_of(outer, loop, parts[:j])
                                             and (m := patterns[j - 1].match(inner))
                                             and not self._is_variable(inner[m.end():]) for j in range(1, len(parts))):
                    out.append(n)
                    loops.add(loop)
                    break
                for j in range(len(parts)):
                    head = parts[:j]
                    m = patterns[j].match(inner)
                    if not m or self._is_variable(inner[m.end():]):
                        continue
                    if j == 0:            # the whole scope (static_rnn; a v1 loop's MultiRNNCell repeats it)
                        out.append(n)
                        if outer is not None:
                            loops.add(loop)
                        break
                    # bidirectional_dynamic_rnn runs dynamic_rnn(scope=fw_scope) inside variable_scope("fw"): its
                    # loop's name scope repeats the last component ("bidirectional_rnn/fw/fw/while/...")
                    if outer is not None and outer in ("/".join(head), "/".join(head + head[-1:])):
                        out.append(n)
                        loops.add(loop)
                        break
                    if outer is not None and loop.startswith("fn:") and outer in ("_".join(head).replace("/", "_"),
                                                                                  "_".join(head + head[-1:]).replace("/", "_")):
                        out.append(n)
                        loops.add(loop)
                        break
                else:
                    continue
                break
        return out, sorted(loops)

    @staticmethod
    def _loop_of(outer: str, loop: str, head: List[str]) -> bool:
        """Whether a loop's outer scope is ``head`` or ``head`` with its last component repeated (a while_v2 body's
        with '/' written '_')."""
        for scope in ("/".join(head), "/".join(head + head[-1:])):
            if outer == (scope.replace("/", "_") if loop.startswith("fn:") else scope):
                return True
        return False

    @staticmethod
    def _is_variable(rest: str) -> bool:
        return rest.split("/", 1)[0] in VARIABLE_SEGMENTS

    @staticmethod
    def _candidates(name: str):
        """(outer scope, name inside it, loop) readings of a node name: itself (no loop); inside a v1 while
        loop ``<outer>/while/<inner>``; inside a while_v2 body function ``<outer>_while_body_<n>/<inner>``."""
        yield None, name, ""
        parts = name.split("/")
        for k, p in enumerate(parts[:-1]):
            if p == "while":
                yield "/".join(parts[:k]), "/".join(parts[k + 1:]), "/".join(parts[:k])
        m = _FUNCTION_BODY.match(parts[0])
        if m and len(parts) > 1:
            yield m.group(1), "/".join(parts[1:]), "fn:" + m.group(1)

    def loop_scope_exists(self, loop: str, suffix: str) -> Optional[str]:
        """The node ``<rnn>/<suffix>`` of a loop's rnn scope (a v1 loop names it; a while_v2 loop's scope is
        the function name's prefix with '/' written '_')."""
        if loop.startswith("fn:"):
            flat = loop[3:]
            for n in self.nodes:
                if n.name.endswith("/" + suffix) and n.name[:-len(suffix) - 1].replace("/", "_") == flat:
                    return n.name
            return None
        name = f"{loop}/{suffix}" if loop else suffix
        return name if name in self.by_name else None


def cell_settings(index: GraphIndex, scope: str) -> CellSettings:
    """What the graph says about the cell whose variables are under ``scope``."""
    nodes, loops = index.cell_nodes(scope)
    s = CellSettings(found=bool(nodes), loop=bool(loops))
    values: Dict[str, Dict[float, str]] = {"forget_bias": {}, "cell_clip": {}, "proj_clip": {}}
    activations: Dict[str, str] = {}
    gate_split = None
    for n in nodes:
        if n.op in ("Add", "AddV2"):
            split_in = [i for i in n.inputs if _base(i).rsplit("/", 1)[-1].startswith("split") and _output(i) == 2]
            consts = [index.scalar(i) for i in n.inputs]
            if split_in and any(c is not None for c in consts):
                values["forget_bias"].setdefault(next(c for c in consts if c is not None), n.name)
                gate_split = gate_split or split_in[0]
        elif n.op == "Minimum":
            consts = [(i, index.scalar(i)) for i in n.inputs]
            value = next((c for _, c in consts if c is not None), None)
            other = next((index.by_name.get(_base(i)) for i, c in consts if c is None), None)
            if value is None:
                continue
            key = "proj_clip" if other is not None and other.op == "MatMul" else "cell_clip"
            values[key].setdefault(value, n.name)
        elif n.op in ACTIVATION_OPS or n.op in OTHER_ACTIVATION_OPS:
            activations.setdefault(n.op, n.name)
    for key, found in values.items():
        if len(found) > 1:
            s.conflicts.append(f"{key}: " + ", ".join(f"{v:g} ({node})" for v, node in found.items()))
        elif found:
            (v, node), = found.items()
            setattr(s, key, Setting(float(np.float32(v)), node))
    if len(activations) > 1:
        s.conflicts.append("activation: " + ", ".join(f"{op} ({node})" for op, node in activations.items()))
    elif activations:
        (op, node), = activations.items()
        s.activation = Setting(ACTIVATION_OPS.get(op, op), node)
    for loop in loops:
        transpose = index.loop_scope_exists(loop, "transpose")
        s.time_major = Setting(transpose is None, transpose or f"no {loop.removeprefix('fn:')}/transpose")
        seq = index.loop_scope_exists(loop, "sequence_length")
        s.sequence_length = Setting(seq is not None, seq or f"no {loop.removeprefix('fn:')}/sequence_length")
    return s


def dropout_keep_probs(index: GraphIndex) -> List[Tuple[str, List[float]]]:
    """Each DropoutWrapper's (input, state, output) keep probabilities, in construction order."""
    found: Dict[str, Dict[int, float]] = {}
    for n in index.nodes:
        m = _WRAPPER_CONST.match(n.name)
        if m and n.op == "Const":
            value = index.scalar(n.name)
            if value is not None:
                found.setdefault(m.group(1), {})[int(m.group(2) or 0)] = float(np.float32(value))
    def order(name: str) -> int:
        tail = name.rsplit("_", 1)[-1]
        return int(tail) if tail.isdigit() else 0
    return [(name, [found[name].get(k) for k in range(3)]) for name in sorted(found, key=order)]


# -- what the converter does with it ------------------------------------------------------------------------
SETTINGS = ("forget_bias", "cell_clip", "proj_clip", "activation", "time_major", "sequence_length")


class GraphMeta:
    """The ``.meta`` graph of a checkpoint, read once; :meth:`settle` gives one LSTM's settings."""

    def __init__(self, path, nodes: Sequence[GraphNode]):
        self.path = str(path)
        self.index = GraphIndex(nodes)
        self.keep_probs = dropout_keep_probs(self.index)
        self.settled: List["Settled"] = []

    @classmethod
    def of(cls, location: str, meta: Optional[str] = None) -> Optional["GraphMeta"]:
        """The graph named by ``meta``, else ``<location>.meta`` beside the checkpoint when it exists; None
        when there is none."""
        from compat.formats.tf.meta_graph import meta_file_of, read_meta_graph

        path = meta if meta is not None else meta_file_of(location)
        if path is None:
            return None
        return cls(path, read_meta_graph(path))

    def settle(self, name: str, cells) -> "Settled":
        """The settings of the LSTM ``name`` made of ``cells`` (objects with a ``scope``); every cell must agree
        (one value per LSTM), else :class:`compat.frameworks.tf.TFCellError` naming the nodes."""
        from compat.frameworks.tf import TFCellError

        merged: Dict[str, Setting] = {}
        found = False
        for c in cells:
            s = cell_settings(self.index, c.scope)
            if s.conflicts:
                raise TFCellError(f"{self.path}: cell {c.scope!r}: the graph's ops disagree: {'; '.join(s.conflicts)}")
            found = found or s.found
            for key in SETTINGS:
                got = getattr(s, key)
                if got is None:
                    continue
                if key in merged and merged[key].value != got.value:
                    raise TFCellError(f"{self.path}: the cells of {name!r} differ in {key}: {merged[key].value} "
                                      f"({merged[key].node}) and {got.value} ({got.node}); one LSTM has one value")
                merged.setdefault(key, got)
        if merged.get("activation") is not None and merged["activation"].value not in ACTIVATION_OPS.values():
            raise TFCellError(f"{self.path}: the cells of {name!r} apply {merged['activation'].value} "
                              f"({merged['activation'].node}); the converter runs "
                              f"{', '.join(sorted(ACTIVATION_OPS.values()))}")
        wrappers = self.keep_probs if len(self.keep_probs) == 1 else []
        settled = Settled(self.path, merged, found, wrappers, len(self.keep_probs))
        self.settled.append(settled)
        return settled


@dataclass
class Settled:
    """One LSTM's settings from the graph and how each enters the conversion's table (:class:`Unknown`)."""

    path: str
    settings: Dict[str, Setting]
    found: bool
    wrappers: List[Tuple[str, List[float]]]
    all_wrappers: int

    def value(self, key: str, flag):
        """The flag when given, else the graph's value (None when the graph has none)."""
        if flag is not None:
            return flag
        got = self.settings.get(key)
        return None if got is None else got.value

    def given(self, key: str, flag):
        """The table's entry for a flag given where the graph may say otherwise."""
        from compat.convert.spec import Unknown

        got = self.settings.get(key)
        if got is None:
            return Unknown(key, f"{flag:g}", "given (the graph does not show it)")
        if float(np.float32(flag)) != float(got.value):
            return Unknown(key, f"{flag:g}", f"given; the graph says {got.value:.7g} ({got.node}): the flag is used",
                           loud=True)
        return Unknown(key, f"{flag:g}", f"given; the graph agrees ({got.node})")

    def clip_unknowns(self, projection: bool, flags: Optional[Dict[str, Optional[float]]] = None):
        from compat.convert.spec import Unknown

        out = []
        for key in ("cell_clip",) + (("proj_clip",) if projection else ()):
            got = self.settings.get(key)
            flag = (flags or {}).get(key)
            if flag is not None:
                if got is None and self.found:
                    out.append(Unknown(key, f"{flag:g}", "given; the graph's cell clips nothing (no clip_by_value): "
                                                         "the flag is used", loud=True))
                else:
                    out.append(self.given(key, flag))
            elif got is not None:
                out.append(Unknown(key, f"{got.value:.7g}", f"from the graph: {got.node}"))
            elif self.found:
                out.append(Unknown(key, "none", "from the graph: the cell's ops clip nothing (no clip_by_value)"))
        return out

    def activation(self) -> str:
        got = self.settings.get("activation")
        return "tanh" if got is None else str(got.value)

    def time_major(self) -> Optional[bool]:
        got = self.settings.get("time_major")
        return None if got is None else bool(got.value)

    def run_unknowns(self):
        from compat.convert.spec import Unknown

        out = []
        got = self.settings.get("activation")
        out.append(Unknown("activation", self.activation(), f"from the graph: {got.node}" if got is not None
                           else "the cells' default (the graph does not show it)"))
        got = self.settings.get("time_major")
        if got is not None:
            layout = "[T, B, in] (batch_first=False)" if got.value else "[B, T, in] (batch_first=True)"
            out.append(Unknown("time_major", str(bool(got.value)).lower(),
                               f"from the graph ({got.node}): the module takes {layout}"))
        got = self.settings.get("sequence_length")
        if got is not None:
            out.append(Unknown("sequence_length", "used" if got.value else "not used",
                               f"from the graph ({got.node})" + (": pass lengths= to the module (steps past a "
                                                                  "sequence's length output zeros, its final state is "
                                                                  "its last step's)" if got.value else "")))
        for wrapper, probs in self.wrappers:
            shown = ", ".join(f"{k} {'?' if p is None else f'{p:.7g}'}" for k, p in zip(("input", "state", "output"),
                                                                                      probs))
            out.append(Unknown("keep_prob", shown, f"from the graph ({wrapper}): DropoutWrapper drops at every run "
                                                   "of TF's graph where a keep probability is below 1; the module "
                                                   "computes inference, without dropout"))
        if not self.wrappers and self.all_wrappers:
            out.append(Unknown("keep_prob", "?", f"the graph has {self.all_wrappers} DropoutWrappers; which wraps "
                                                 "which cell is not told: training-time dropout, the module computes "
                                                 "inference"))
        return out
