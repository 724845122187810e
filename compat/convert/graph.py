"""A whole converted model as data: a graph of layer nodes, how the conversion stores it, how load runs it.

A framework's reader that understands a whole model (not only its recurrent layers) describes it as a
:class:`GraphSpec`: the model's inputs in the order its ``predict`` takes them, its outputs in the order
it returns them, and the nodes in an order where every node comes after what it reads. A node is one
layer (or one small operation on masks) of the source model:

    name     the layer's name in the source (the module's name in the loaded model: ``get_submodule(name)``)
    kind     the layer kind as the framework's layer registry names it (``"Dense"``, ``"LSTM"``, ...)
    config   its settings as JSON data (numbers, strings, lists; nothing executable)
    args     positional inputs, each a reference ``[name, k]`` to output ``k`` of a node or input, or a list
             of references (a merge)
    kwargs   keyword inputs the same way (a mask, an initial state)
    weights  its tensors in the layout of the module that runs it (``weight``, ``bias``, ...)
    recurrent  the converted recurrent layer (an entry of the conversion's ``lstms``) the node runs, if any
    shares   (stored only where set) the name of an earlier node whose module this node calls again: a layer
             the source calls more than once (a shared layer) is one module with one set of parameters; each
             later call is a node with no weights, the same kind, config and recurrent layer as the first, and
             its own inputs and outputs

Masks are ordinary values of the graph: where the source framework computes a mask (an embedding's
``ids != 0``, a masking layer's ``any(x != v)``, a merge's conjunction), the reader writes the operations as
nodes, and a layer that reads a mask names it in its ``kwargs``. So the graph states which mask reaches
which layer; no framework's propagation rules run at load time.

The core names no framework. The graph's ``framework`` key selects the package that registered the
kinds (:attr:`compat.frameworks.Framework.layers`, a module with a ``LAYERS`` table of
:class:`LayerKind`); each kind checks its config, says which tensors its module holds, builds the module
and writes it as Python (:mod:`compat.convert.emit`). :func:`check_graph` validates a stored graph before
any tensor is read (names, references, order, sizes, every config through its kind, every tensor's name,
shape and dtype against the module the kind builds on the meta device); a kind no package registered is
refused by name. :class:`GraphModel` runs it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from compat.errors import CheckpointError

MAX_NODES = 100_000
MAX_ARGS = 1_000
MAX_NAME = 1_024
MAX_RANK = 8
INPUT_DTYPES = ("float16", "float32", "float64", "int32", "int64", "bool")
# Node names become module names: nn.Module refuses "." (a path separator for get_submodule) and "".
NAME = re.compile(r"[^.\x00]{1,1024}")

Ref = Tuple[str, int]


@dataclass
class ModelInput:
    """One input of the model, in the order the source's ``predict`` takes them.

    ``shape`` includes the batch axis (None where any size is accepted); ``dtype`` is what the model reads
    (``"int64"`` for token ids).
    """

    name: str
    shape: List[Optional[int]]
    dtype: str


@dataclass
class Node:
    """One layer or operation of a whole model (see the module docstring)."""

    name: str
    kind: str
    config: Dict[str, Any] = field(default_factory=dict)
    args: List[Any] = field(default_factory=list)
    kwargs: Dict[str, Any] = field(default_factory=dict)
    weights: Dict[str, np.ndarray] = field(default_factory=dict)
    recurrent: Optional[str] = None
    shares: Optional[str] = None     # an earlier node whose module this node calls again (a shared layer)


@dataclass
class GraphSpec:
    """A whole model: its framework's key, inputs, outputs and nodes, and notes for the report."""

    framework: str
    inputs: List[ModelInput]
    outputs: List[Ref]
    nodes: List[Node]
    notes: List[str] = field(default_factory=list)
    dtype: str = "float32"      # the floating-point dtype every node's tensors are in
    # what the framework's numpy reference of the whole model needs (the source's own configuration and
    # weights, for the verification); not stored
    source: Any = None

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


class GraphError(ValueError):
    """A graph whose structure does not hold together (a reader's error names the file around it)."""


# ------------------------------------------------------------------------------------------ layer kinds
@dataclass(frozen=True)
class LayerKind:
    """What a framework's package registers for one node kind.

    ``check(config, error)``: validates a stored config (types, ranges, sizes), calling ``error(field,
    message)`` (which raises) on the first problem; ``build(config, recurrent)``: the module (``recurrent``
    is the converted recurrent module the node names, or None); ``emit(config, emitter)``: the node as
    Python (:mod:`compat.convert.emit`); ``recurrent``: the node runs a converted recurrent layer;
    ``outputs(config)``: how many outputs its module returns (one when None); ``inputs`` / ``keywords``:
    what its module takes (a tensor, an optional one, a list of tensors), checked before it is built;
    ``constants(config)``: the names of the node's tensors that are literal constants of the source's graph
    rather than trained parameters (a masking value, an open bound), the only tensors that may hold ±inf
    (:func:`nonfinite`; None: every tensor of the kind is a parameter).
    """

    kind: str
    check: Callable[[dict, Callable[[str, str], Exception]], None]
    build: Callable[..., nn.Module]
    emit: Optional[Callable[..., Any]] = None
    recurrent: bool = False
    outputs: Optional[Callable[[dict], int]] = None   # how many outputs a node returns (None: one)
    # the positional inputs: "ref" one tensor, "ref?" an optional last one, "list" a list of tensors
    inputs: Tuple[str, ...] = ("ref",)
    # the keyword inputs it takes: name -> "ref" or "list"
    keywords: Mapping[str, str] = field(default_factory=dict)
    # the node's tensors that are constants of the source's graph, which alone may hold ±inf (None: none)
    constants: Optional[Callable[[dict], Collection[str]]] = None


@dataclass
class Emitted:
    """A node as Python (``LayerKind.emit``'s result): ``init`` constructs its module (None: an expression needs
    none), ``lines`` compute its outputs; ``weights`` maps the emitted module's state_dict names to the node's
    tensor names where they differ; ``imports``: lines the file needs."""

    init: Optional[str]
    lines: List[str]
    weights: Dict[str, str] = field(default_factory=dict)
    imports: Tuple[str, ...] = ()


def emitted(init: Optional[str], lines: Sequence[str], weights: Optional[Dict[str, str]] = None,
            imports: Sequence[str] = ()) -> Emitted:
    return Emitted(init, list(lines), dict(weights or {}), tuple(imports))


# -- the checks a node kind's ``check(config, error)`` makes of a stored config, shared by the frameworks --------
def check_keys(config: dict, error, keys: Sequence[str]) -> None:
    """The config holds exactly ``keys``."""
    unknown, missing = sorted(set(config) - set(keys)), sorted(set(keys) - set(config))
    if unknown or missing:
        raise error("", "; ".join(([f"unknown settings {unknown}"] if unknown else [])
                                  + ([f"missing settings {missing}"] if missing else [])))


def check_ints(config: dict, error, *keys: str, lo: int = 1, hi: int = 2 ** 31 - 1) -> None:
    """Each of ``keys`` is an integer (not a bool) in [lo, hi]."""
    for k in keys:
        v = config.get(k)
        if type(v) is not int or not lo <= v <= hi:
            raise error(k, f"expected an integer in [{lo}, {hi}], got {repr(v)[:40]}")


def check_bools(config: dict, error, *keys: str) -> None:
    """Each of ``keys`` is true or false."""
    for k in keys:
        if type(config.get(k)) is not bool:
            raise error(k, f"expected true or false, got {repr(config.get(k))[:40]}")


# -- which tensors of a node may hold infinities: the one place the converter decides it ----------------------
def infinite_allowed(kind: LayerKind, config: dict) -> FrozenSet[str]:
    """The names of a node's tensors that may hold ±inf: those its kind declares constants of the source's graph
    (``LayerKind.constants``: PyTorch's ``masked_fill(mask, float("-inf"))`` exports a ``Where`` whose value is a
    constant -inf; a ``Clip``'s open bound). Every other tensor (a weight, a bias, an embedding, normalisation
    statistics: what training made) must be finite, and NaN is refused everywhere (:func:`nonfinite`)."""
    return frozenset(kind.constants(config)) if kind.constants is not None else frozenset()


def nonfinite(values, infinite: bool) -> Optional[str]:
    """How many of a floating-point tensor's values are refused (``"2 NaN or infinite values"``), or None: NaN
    always; ±inf unless ``infinite`` (a constant of the graph, :func:`infinite_allowed`)."""
    t = torch.as_tensor(values)
    if not t.is_floating_point():
        return None
    bad = int(torch.isnan(t).sum()) if infinite else int((~torch.isfinite(t)).sum())
    if not bad:
        return None
    return f"{bad:,} NaN values" if infinite else f"{bad:,} NaN or infinite values"


def refs(value) -> Iterator[Ref]:
    """Every reference in an ``args`` entry (a reference or a list of them)."""
    if is_ref(value):
        yield value[0], value[1]
    else:
        for v in value:
            yield from refs(v)


def node_entry(node: Node) -> dict:
    """A node as the conversion stores it (tensors as torch tensors, the rest JSON)."""
    entry = {"name": node.name, "kind": node.kind, "config": node.config,
             "args": [_plain(a) for a in node.args], "kwargs": {k: _plain(v) for k, v in node.kwargs.items()},
             "recurrent": node.recurrent,
             # np.asarray(order="C"): np.ascontiguousarray makes a 0-d tensor (an ONNX scalar constant) 1-d
             "weights": {k: torch.from_numpy(np.array(v, order="C")) for k, v in node.weights.items()}}
    if node.shares is not None:
        entry["shares"] = node.shares
    return entry


def graph_entry(graph: GraphSpec) -> dict:
    return {"framework": graph.framework, "dtype": graph.dtype,
            "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in graph.inputs],
            "outputs": [list(o) for o in graph.outputs], "nodes": [node_entry(n) for n in graph.nodes],
            "notes": list(graph.notes)}


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- checks
GRAPH_KEYS = ("framework", "dtype", "inputs", "outputs", "nodes", "notes")
NODE_KEYS = ("name", "kind", "config", "args", "kwargs", "recurrent", "weights")
NODE_OPTIONAL = ("shares",)   # written only for a node that calls an earlier node's module again


def check_graph(f, graph, field: str, recurrent_names: Sequence[str], kinds: Mapping[str, LayerKind],
                expected_shapes: Callable[[Callable[[], nn.Module]], Dict[str, Tuple[int, ...]]],
                dtypes: Sequence[torch.dtype]) -> dict:
    """Check a stored graph (``f``: :class:`compat.checkpoint.Fields`) before any tensor is read.

    ``kinds``: the framework's registered kinds; ``recurrent_names``: the conversion's recurrent layers a
    node may name; ``expected_shapes(build)``: the state_dict shapes of ``build()`` on the meta device.
    """
    f.dict(graph, field, keys=GRAPH_KEYS)
    f.str(graph["dtype"], f"{field}/dtype", choices=[str(d).replace("torch.", "") for d in dtypes])
    for k, note in enumerate(f.list(graph["notes"], f"{field}/notes", max_length=10_000)):
        f.str(note, f"{field}/notes/{k}", max_length=1 << 16)
    produced: Dict[str, Optional[int]] = {}   # name -> number of outputs (None: not known statically)
    for k, i in enumerate(f.list(graph["inputs"], f"{field}/inputs", max_length=MAX_ARGS)):
        where = f"{field}/inputs/{k}"
        f.dict(i, where, keys=("name", "shape", "dtype"))
        _name(f, i["name"], f"{where}/name", produced)
        for j, d in enumerate(f.list(i["shape"], f"{where}/shape", max_length=MAX_RANK)):
            if d is not None:
                f.int(d, f"{where}/shape/{j}", 0, 1 << 31)
        f.str(i["dtype"], f"{where}/dtype", choices=INPUT_DTYPES)
        produced[i["name"]] = 1
    nodes = f.list(graph["nodes"], f"{field}/nodes", max_length=MAX_NODES)
    used_recurrent = set()
    owners: Dict[str, dict] = {}     # name -> a node whose module later nodes may call again
    for k, node in enumerate(nodes):
        where = f"{field}/nodes/{k}"
        f.dict(node, where, keys=NODE_KEYS, optional=NODE_OPTIONAL)
        owner = _shared_owner(f, node, where, owners)
        _name(f, node["name"], f"{where}/name", produced)
        f.str(node["kind"], f"{where}/kind", max_length=256)
        kind = kinds.get(node["kind"])
        if kind is None:
            raise f.error(f"{where}/kind", f"{node['kind'][:80]!r} is no layer kind the {graph['framework']!r} "
                                           f"package builds (known: {', '.join(sorted(kinds))})")
        config = f.dict(node["config"], f"{where}/config")
        args = f.list(node["args"], f"{where}/args", max_length=MAX_ARGS)
        required = [k for k in kind.inputs if not k.endswith("?")]
        if not len(required) <= len(args) <= len(kind.inputs):
            raise f.error(f"{where}/args", f"a {node['kind']} node takes {len(required)}"
                                           f"{'' if len(required) == len(kind.inputs) else f' to {len(kind.inputs)}'} "
                                           f"inputs, not {len(args)}")
        for j, (arg, form) in enumerate(zip(args, kind.inputs)):
            _check_input(f, arg, form.rstrip("?"), f"{where}/args/{j}", produced)
        for key, arg in f.dict(node["kwargs"], f"{where}/kwargs").items():
            if key not in kind.keywords:
                raise f.error(f"{where}/kwargs", f"a {node['kind']} node takes no input {str(key)[:64]!r} "
                                                 f"(it takes {sorted(kind.keywords) or 'none'})")
            _check_input(f, arg, kind.keywords[key], f"{where}/kwargs/{key}", produced)
        recurrent = node["recurrent"]
        if owner is not None:
            pass   # the owner's recurrent layer (checked with it)
        elif kind.recurrent:
            f.str(recurrent, f"{where}/recurrent", max_length=MAX_NAME)
            if recurrent not in recurrent_names:
                raise f.error(f"{where}/recurrent", f"{recurrent[:80]!r} names no recurrent layer of the conversion")
            if recurrent in used_recurrent:
                raise f.error(f"{where}/recurrent", f"{recurrent[:80]!r} is run by two nodes")
            used_recurrent.add(recurrent)
        elif recurrent is not None:
            raise f.error(f"{where}/recurrent", f"a {node['kind']} node runs no recurrent layer")

        def error(key: str, message: str, _where=where):
            return f.error(f"{_where}/config/{key}" if key else f"{_where}/config", message)

        if owner is None:
            try:
                kind.check(config, error)
                shapes = expected_shapes(lambda: kind.build(config, None))
            except CheckpointError:
                raise
            except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
                raise f.error(f"{where}/config", f"describes no {node['kind']} module this version builds ({exc})") \
                    from None
            owners[node["name"]] = node
        else:
            shapes = {}   # the parameters are the owner's
        f.state_dict(node["weights"], f"{where}/weights", shapes, dtypes=dtypes)
        produced[node["name"]] = kind.outputs(config) if kind.outputs else 1
    for k, out in enumerate(f.list(graph["outputs"], f"{field}/outputs", max_length=MAX_ARGS)):
        _check_refs(f, out, f"{field}/outputs/{k}", produced, single=True)
    if not graph["outputs"]:
        raise f.error(f"{field}/outputs", "a model has at least one output")
    return graph


def _shared_owner(f, node: dict, where: str, owners: Dict[str, dict]) -> Optional[dict]:
    """The earlier node whose module ``node`` calls again (its ``shares``), checked: a node that owns its module,
    of the same kind, config and recurrent layer; None for a node with a module of its own."""
    if "shares" not in node:
        return None
    name = f.str(node["shares"], f"{where}/shares", max_length=MAX_NAME)
    owner = owners.get(name)
    if owner is None:
        raise f.error(f"{where}/shares", f"{name[:80]!r} is no earlier node with a module of its own")
    for key in ("kind", "config", "recurrent"):
        if node[key] != owner[key]:
            raise f.error(f"{where}/{key}", f"differs from that of {name[:80]!r}, whose module this node calls")
    return owner


def _name(f, name, where: str, produced: dict) -> None:
    f.str(name, where, max_length=MAX_NAME)
    if not NAME.fullmatch(name):
        raise f.error(where, f"{name[:80]!r} is not a module name (empty, or holds '.')")
    if name in produced:
        raise f.error(where, f"{name[:80]!r} names two nodes or inputs")


def is_ref(value) -> bool:
    """``[name, k]``: output ``k`` of the node or input ``name``."""
    return isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str)


def _check_input(f, value, form: str, where: str, produced: dict) -> None:
    if form == "ref":
        _check_refs(f, value, where, produced, single=True)
    else:
        if is_ref(value) or not f.list(value, where, max_length=MAX_ARGS):
            raise f.error(where, "expected a non-empty list of references")
        _check_refs(f, value, where, produced)


def _check_refs(f, value, where: str, produced: dict, single: bool = False) -> None:
    """A reference, or (unless ``single``) a list of references, each to an input or an earlier node."""
    if not is_ref(value):
        if single:
            raise f.error(where, "expected a reference [name, output index]")
        for j, ref in enumerate(f.list(value, where, max_length=MAX_ARGS)):
            _check_refs(f, ref, f"{where}/{j}", produced, single=True)
        return
    f.str(value[0], f"{where}/0", max_length=MAX_NAME)
    f.int(value[1], f"{where}/1", 0, MAX_ARGS)
    if value[0] not in produced:
        raise f.error(where, f"{value[0][:80]!r} is no input and no earlier node")
    count = produced[value[0]]
    if count is not None and value[1] >= count:
        raise f.error(where, f"{value[0][:80]!r} has {count} output(s); output {value[1]} does not exist")


# ---------------------------------------------------------------------------------------------- running
def _flatten(out) -> Tuple[Any, ...]:
    if isinstance(out, (tuple, list)):
        flat: List[Any] = []
        for o in out:
            flat.extend(_flatten(o))
        return tuple(flat)
    return (out,)


class GraphModel(nn.Module):
    """A whole converted model: ``forward(*inputs)`` takes the inputs in the source model's order and returns
    its outputs in the source's order (one tensor for a model of one output, else a tuple).

    Every node's module is a submodule under the node's name (``model.get_submodule("dense_1")``); a node that
    calls an earlier node's module again (a shared layer's later call) adds none.
    The converted recurrent layers are also reachable as a mapping by their names, as
    :func:`compat.convert.load` returns them for a conversion without a whole model: ``model["lstm_1"]``,
    ``list(model)``, ``model.items()``.
    """

    def __init__(self, graph: dict, modules: Dict[str, nn.Module], recurrent: Dict[str, nn.Module]):
        super().__init__()
        self.framework = graph["framework"]
        self.input_names = [i["name"] for i in graph["inputs"]]
        self.input_dtypes = {i["name"]: i["dtype"] for i in graph["inputs"]}
        self.output_refs = [tuple(o) for o in graph["outputs"]]
        # (the node, the module it calls: its own, or for a shared layer's later call the first call's)
        self._plan = [(n["name"], n.get("shares") or n["name"], n["args"], n["kwargs"]) for n in graph["nodes"]]
        for name, module in modules.items():
            self.add_module(name, module)
        self._recurrent = dict(recurrent)

    def reset_states(self) -> None:
        """Start every stateful layer's next call from zeros (Keras's ``model.reset_states()``)."""
        for module in self.modules():
            if module is not self and callable(getattr(module, "reset_states", None)):
                module.reset_states()

    # -- the converted recurrent layers, as load() returns them without a whole model -------------------
    def __getitem__(self, name: str) -> nn.Module:
        return self._recurrent[name]

    def __iter__(self):
        return iter(self._recurrent)

    def __len__(self) -> int:
        return len(self._recurrent)

    def __bool__(self) -> bool:
        return True

    def __contains__(self, name) -> bool:
        return name in self._recurrent

    def keys(self):
        return self._recurrent.keys()

    def values(self):
        return self._recurrent.values()

    def items(self):
        return self._recurrent.items()

    # -- running ---------------------------------------------------------------------------------------
    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise TypeError(f"the model takes {len(self.input_names)} inputs ({', '.join(self.input_names)}); "
                            f"got {len(inputs)}")
        values: Dict[str, Tuple[Any, ...]] = {n: (x,) for n, x in zip(self.input_names, inputs)}

        def get(arg):
            if is_ref(arg):
                return values[arg[0]][arg[1]]
            return [get(a) for a in arg]

        for name, module, args, kwargs in self._plan:
            out = self._modules[module](*[get(a) for a in args], **{k: get(v) for k, v in kwargs.items()})
            values[name] = _flatten(out)
        outs = tuple(values[n][k] for n, k in self.output_refs)
        return outs[0] if len(outs) == 1 else outs

    def extra_repr(self) -> str:
        return f"inputs={self.input_names}, outputs={[f'{n}[{k}]' for n, k in self.output_refs]}"


def build_model(graph: dict, kinds: Mapping[str, LayerKind], tensors: List[Dict[str, torch.Tensor]],
                recurrent: Dict[str, nn.Module], dtype: torch.dtype) -> GraphModel:
    """The :class:`GraphModel` of a checked graph, each node's module loaded strictly with its tensors."""
    modules: Dict[str, nn.Module] = {}
    for node, weights in zip(graph["nodes"], tensors):
        if "shares" in node:
            continue   # calls the module of the node it names again
        kind = kinds[node["kind"]]
        if kind.recurrent:   # its parameters are the converted recurrent layer's, loaded with it
            module = kind.build(node["config"], recurrent[node["recurrent"]])
        else:
            module = kind.build(node["config"], None).to(dtype)
            module.load_state_dict(weights, strict=True)
        modules[node["name"]] = module.eval()
    return GraphModel(graph, modules, {n["recurrent"]: recurrent[n["recurrent"]] for n in graph["nodes"]
                                       if kinds[n["kind"]].recurrent}).eval()
