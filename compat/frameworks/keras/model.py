"""A whole Keras model (Sequential or Functional, Keras 1, 2, tf.keras or 3) as a converted graph.

The model's configuration (JSON data, never deserialised into Keras objects) is read in each version's
format:

- Sequential: Keras 1 and 2.0-2.1 a list of layers, Keras >= 2.2 and tf.keras ``{"name", "layers"}``,
  Keras 3 the same with its ``InputLayer`` first; the input is the first layer's ``batch_input_shape``
  (``input_shape``, ``input_dim`` / ``input_length``) where no ``InputLayer`` is listed.
- Functional (``Model``, ``Functional``): ``layers`` with their ``inbound_nodes`` (Keras 1:
  ``[[name, node, tensor], ...]``; Keras 2 and tf.keras: ``[[name, node, tensor, kwargs], ...]``; Keras 3:
  ``{"args": [...], "kwargs": {...}}`` with ``__keras_tensor__`` objects), ``input_layers``,
  ``output_layers``.

Each layer call becomes a node through its record in :mod:`compat.frameworks.keras.layers`; recurrent
layers become nodes that run the converted recurrent module of the same name (an ``RNN`` over one built-in cell
is read as the layer that cell makes; an ``RNN(StackedRNNCells)`` becomes one node per cell and an ``Outputs``
node: :mod:`compat.frameworks.keras.cells`). Masks: a Keras 3 file states
which mask each layer read (its operations on masks are nodes of the saved graph, kept as nodes here); for
the other versions :mod:`compat.frameworks.keras.masks` adds the operations Keras's ``compute_mask`` ran.

A layer called more than once (shared) is one module: each call is a node (the first named as the layer,
the later ones ``<layer>@k``) reading its own inputs and computing its own masks, the later ones ``shares``
the first's module (:mod:`compat.convert.graph`). A reference ``[layer, node, tensor]`` picks a call by
Keras's numbering of the layer's nodes (:meth:`_Reader._skip`). A nested Sequential or Functional model is
flattened: its layers become nodes ``<model>/<layer>`` called on the tensors the model is called on (once
per call of the model: a nested model called twice shares its layers), their weights and recurrent layers
found by their names from the outermost model in (``weights(names, cls)``, ``specs[names]``; a cell of an
``RNN(StackedRNNCells)`` by the names of the models around it and its converted name ``<layer>/<cell>``). A
stack's call is one node per cell (``<layer>:<cell>``, ``<layer>@k:<cell>`` for a later call, which shares the
first call's node of that cell) and an ``Outputs`` node named as the call.

Refused by name (the whole model; the recurrent layers still convert): ``Lambda`` layers and Keras 1
``Merge`` modes that are functions (code stored in the file, never run), layers outside the set, recurrent
kinds the core does not run yet, a layer listed by two models (shared across nesting levels), a stateful
recurrent layer called more than once, a layer with weights whose calls need different settings, and
nested models of Keras 1 and standalone Keras 2.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from compat.convert.graph import GraphSpec, ModelInput, Node
from compat.frameworks.keras import cells as keras_cells
from compat.frameworks.keras import masks as mask_rules
from compat.frameworks.keras.layers import (LAYERS, ONE_STATE, RECURRENT, Call, KerasModelError, TimeDistributedKind, Version,
                                            reader)
from compat.formats.keras import KerasFile, parse_version

Ref = Tuple[str, int]
MODELS = ("Sequential", "Model", "Functional")
CODE = ("Lambda", "TFOpLambda", "SlicingOpLambda", "ClassMethod", "InstanceMethod", "InstanceProperty")
OTHER_RECURRENT = ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "GRUV1", "GRUV2",
                   "LSTMV1", "LSTMV2", "StackedRNNCells")
# Keras 3 operations on masks that its saved graphs hold (keras/src/ops/numpy.py) -> (kind, config)
K3_OPS = ("NotEqual", "Any", "All", "ExpandDims", "ZerosLike", "OnesLike", "LogicalOr", "LogicalAnd", "Concatenate")
MAX_LAYERS = 100_000


def version_of(kf: KerasFile) -> Version:
    major, minor = kf.version or (0, 0)
    text = kf.keras_version or ""
    patch = 0
    parts = text.strip().split(".")
    if len(parts) > 2 and parts[2][:4].split("-")[0].isdigit():
        patch = int(parts[2][:4].split("-")[0])
    tf_keras = major == 2 and (text.endswith("-tf") or minor >= 4)
    return Version(major, minor, tf_keras, kf.backend or "", patch)


class KRef(NamedTuple):
    """A reference of the configuration: output ``tensor`` of call ``call`` of the layer ``name`` (after the
    version's node numbering is undone: ``call`` counts the layer's calls in this model, from 0)."""
    name: str
    call: int
    tensor: int


@dataclass
class _Layer:
    name: str
    cls: str
    config: dict
    module: str = ""
    calls: List[Tuple[list, dict]] = field(default_factory=list)   # per inbound node: (args, kwargs)
    build_shape: Any = None


@dataclass
class _Scope:
    """One model's configuration: the whole model's, or a nested model's (its layers named ``prefix`` + name)."""
    prefix: str
    layers: List[_Layer]
    by_name: Dict[str, _Layer]
    inputs: List[str]
    outputs: List[KRef]


class _Reader:
    def __init__(self, kf: KerasFile, specs: Dict[Tuple[str, ...], object], weights):
        self.kf, self.specs, self.weights = kf, specs, weights
        self.version = version_of(kf)
        self.path = kf.path
        self.nodes: List[Node] = []
        self.names: set = set()
        self.masks: Dict[Ref, Optional[Ref]] = {}
        self.counts: Dict[str, int] = {}
        self.ranks: Dict[Ref, Optional[int]] = {}
        self.notes: List[str] = []
        self.dtypes: set = set()
        self.scopes: Dict[str, _Scope] = {}       # prefix -> the parsed nested model
        self.levels: Dict[str, str] = {}          # layer name -> the prefix of the model that lists it
        self.owners: Dict[str, Node] = {}         # a layer's full name -> the node of its first call
        self.calls_made: Dict[str, int] = {}

    def fail(self, message: str) -> KerasModelError:
        return KerasModelError(f"{self.path}: {message}")

    # -- the configuration ----------------------------------------------------------------------------------
    def scope(self, config: dict, prefix: str) -> _Scope:
        """A model's configuration as layers whose calls read :class:`KRef`; parsed once per nested model."""
        if prefix in self.scopes:
            return self.scopes[prefix]
        cls, cfg = config.get("class_name"), config.get("config")
        if cls == "Sequential":
            layers, inputs, outputs = self.sequential(cfg, nested=bool(prefix))
        elif cls in ("Model", "Functional"):
            layers, inputs, outputs = self.functional(cfg)
        else:
            raise self.fail(f"a {str(cls)[:80]!r} model is not converted whole (Sequential and Functional models are)")
        by_name: Dict[str, _Layer] = {}
        for layer in layers:
            if layer.name in by_name:
                raise self.fail(f"two layers are named {(prefix + layer.name)!r}")
            by_name[layer.name] = layer
            if layer.cls == "InputLayer":
                continue
            other = self.levels.setdefault(layer.name, prefix)
            if other != prefix:
                raise self.fail(f"a layer named {layer.name!r} is listed by two models ({other or 'the model'!r} and "
                                f"{prefix[:-1]!r}): a layer shared across nesting levels is not converted whole")
        scope = _Scope(prefix, layers, by_name, [], [])
        if cls == "Sequential":
            # the file numbers no node of a Sequential: :meth:`sequential` links each layer to the previous one's
            # first call in this model (tf_keras/src/engine/sequential.py and keras/src/models/sequential.py
            # ``get_config`` list the layers only), so a nested model's first node is not skipped here
            scope.inputs, scope.outputs = [r.name for r in inputs], list(outputs)
        else:
            scope.inputs = [self._numbered(scope, r, "input_layers", endpoint=True).name for r in inputs]
            scope.outputs = [self._numbered(scope, r, "output_layers", endpoint=True) for r in outputs]
            for layer in layers:
                layer.calls = [(self._numbered_all(scope, args),
                                {k: self._numbered_all(scope, v) for k, v in kw.items()}) for args, kw in layer.calls]
        self.scopes[prefix] = scope
        return scope

    def _skip(self, layer: _Layer, endpoint: bool) -> int:
        """How many nodes a nested model's numbering counts before its first call in this model.

        tf-keras saves a nested model's node numbers counting its own first node, which links its inputs to its
        outputs and is not saved; loading calls it again from 1 (tf_keras/src/engine/functional.py
        ``get_network_config`` ``kept_nodes = 1 if _should_skip_first_node(layer)``; ``reconstruct_from_config``
        ``process_node``, ``get_node_index``: ``node_count_by_layer[layer] = int(_should_skip_first_node(layer))``),
        for a Functional model and a Sequential model with an input layer. Keras 3 numbers a call argument's
        node among the model's own nodes (keras/src/models/functional.py ``serialize_node``), and counts a nested
        Functional's first node only in ``input_layers`` / ``output_layers`` (``get_config``
        ``node_reindexing_map``: ``kept_nodes = 1`` for a Functional; ``functional_from_config`` ``get_tensor``:
        ``node_index -= 1``); a Keras 3 Sequential is not a Functional."""
        if layer.cls not in MODELS:
            return 0
        if self.version.major >= 3:
            return int(endpoint and layer.cls in ("Functional", "Model"))
        if layer.cls in ("Functional", "Model"):
            return 1
        entries = layer.config if isinstance(layer.config, list) else layer.config.get("layers")
        first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
        first_cfg = first.get("config") if isinstance(first.get("config"), dict) else {}
        return int(first.get("class_name") == "InputLayer" or first_cfg.get("batch_input_shape") is not None)

    def _numbered(self, scope: _Scope, ref: KRef, what: str, endpoint: bool = False) -> KRef:
        layer = scope.by_name.get(ref.name)
        if layer is None:
            raise self.fail(f"{what}: {(scope.prefix + ref.name)[:80]!r} is no layer of the model")
        call = ref.call - self._skip(layer, endpoint)
        n = 1 if layer.cls == "InputLayer" else len(layer.calls)
        if not 0 <= call < n:
            raise self.fail(f"{what}: node {ref.call} of layer {(scope.prefix + ref.name)[:80]!r}, which the "
                            f"model calls {n} time(s)")
        return KRef(ref.name, call, ref.tensor)

    def _numbered_all(self, scope: _Scope, value):
        if isinstance(value, KRef):
            return self._numbered(scope, value, f"an input of a layer of {scope.prefix[:-1] or 'the model'!r}")
        if isinstance(value, list):
            return [self._numbered_all(scope, v) for v in value]
        return value

    def _layer(self, entry) -> _Layer:
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
            raise self.fail("a layer entry of the configuration is not an object with a class_name")
        cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        name = entry.get("name", cfg.get("name"))
        if not isinstance(name, str) or not name:
            raise self.fail(f"a {entry['class_name']} layer without a name")
        build = entry.get("build_config")
        shape = build.get("input_shape") if isinstance(build, dict) else None
        config = entry.get("config") if entry["class_name"] in MODELS and isinstance(entry.get("config"), list) \
            else cfg   # a Keras 1 / 2.0 nested Sequential: a list of layers
        # an RNN over one built-in cell is the layer that cell makes (LSTM, GRU, SimpleRNN)
        cls, config = keras_cells.as_layer(entry["class_name"], config)
        return _Layer(name, cls, config, str(entry.get("module", "")), [], shape)

    def sequential(self, cfg, nested: bool = False) -> Tuple[List[_Layer], List[KRef], List[KRef]]:
        entries = cfg if isinstance(cfg, list) else (cfg or {}).get("layers") if isinstance(cfg, dict) else None
        if not isinstance(entries, list) or not entries:
            raise self.fail("a Sequential model without layers")
        layers = [self._layer(e) for e in entries[:MAX_LAYERS]]
        if layers[0].cls != "InputLayer":
            first = layers[0].config
            shape = first.get("batch_input_shape", first.get("batch_shape"))
            if shape is None and first.get("input_shape") is not None:
                shape = [None] + list(first["input_shape"])
            if shape is None and first.get("input_dim") is not None:
                shape = [None, first.get("input_length"), first["input_dim"]] if layers[0].cls in RECURRENT \
                    else [None, first["input_dim"]]
            if shape is None and isinstance(cfg, dict) and isinstance(cfg.get("build_input_shape"), list):
                shape = cfg["build_input_shape"]    # Keras 3, a Sequential built without an Input
            if shape is None and layers[0].cls == "Embedding":
                shape = [None, first.get("input_length")]
            if shape is None and not nested:
                raise self.fail(f"the Sequential model's first layer {layers[0].name!r} states no input shape")
            dtype = "int32" if layers[0].cls == "Embedding" else first.get("input_dtype", "float32")
            layers.insert(0, _Layer(f"{layers[0].name}_input", "InputLayer",
                                    {"batch_input_shape": shape, "dtype": dtype}))
        for prev, layer in zip(layers, layers[1:]):
            layer.calls = [([KRef(prev.name, 0, 0)], {})]
        return layers, [KRef(layers[0].name, 0, 0)], [KRef(layers[-1].name, 0, 0)]

    def functional(self, cfg) -> Tuple[List[_Layer], List[KRef], List[KRef]]:
        if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
            raise self.fail("a Functional model's configuration lists no layers")
        layers = []
        for entry in cfg["layers"][:MAX_LAYERS]:
            layer = self._layer(entry)
            inbound = entry.get("inbound_nodes") or []
            if not isinstance(inbound, list):
                raise self.fail(f"layer {layer.name!r}: inbound_nodes is not a list")
            layer.calls = [self._inbound(layer, node) for node in inbound]
            layers.append(layer)
        return layers, self._endpoints(cfg.get("input_layers"), "input_layers"), \
            self._endpoints(cfg.get("output_layers"), "output_layers")

    def _endpoints(self, value, what) -> List[KRef]:
        if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
            value = [value]      # Keras 3 writes a single input or output unwrapped
        if not isinstance(value, list) or not value:
            raise self.fail(f"the model's {what} are missing")
        out = []
        for v in value:
            if not (isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) and type(v[1]) is int
                    and type(v[2]) is int):
                raise self.fail(f"{what}: {str(v)[:80]} is not [layer, node, tensor]")
            out.append(KRef(v[0], v[1], v[2]))
        return out

    def _tensor(self, value) -> KRef:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            if isinstance(history, list) and len(history) == 3 and isinstance(history[0], str) \
                    and type(history[1]) is int and type(history[2]) is int:
                return KRef(history[0], history[1], history[2])
        if isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str) and type(value[1]) is int \
                and type(value[2]) is int:
            return KRef(value[0], value[1], value[2])
        raise self.fail(f"{str(value)[:80]} is not a reference to a layer's output")

    def _value(self, value):
        """A Keras 3 call argument: a tensor reference, a list of them, or a constant."""
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            return self._tensor(value)
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if value is None or type(value) in (int, float, bool, str):
            return value
        raise self.fail(f"a call argument {str(value)[:80]} is neither a tensor nor a constant")

    def _inbound(self, layer: _Layer, node) -> Tuple[list, dict]:
        if isinstance(node, dict):   # Keras 3
            args = [self._value(a) for a in node.get("args", [])]
            kwargs = {k: self._value(v) for k, v in (node.get("kwargs") or {}).items()}
            return args, kwargs
        if not isinstance(node, list):
            raise self.fail(f"layer {layer.name!r}: an inbound node is not a list")
        refs = [self._tensor(t) for t in node]
        kwargs = {}
        for t in node:
            if isinstance(t, list) and len(t) == 4 and isinstance(t[3], dict):
                kwargs.update(t[3])
        return [refs[0] if len(refs) == 1 else refs], kwargs

    # -- nodes ------------------------------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.names:
            name = f"{base}_{k}"
            k += 1
        self.names.add(name)
        return name

    def op(self, kind: str, config: dict, args: list, base: str) -> Ref:
        name = self.unique(f"{base}:mask")
        self.nodes.append(Node(name, kind, config, [self._plain(a) for a in args]))
        self.counts[name] = 1
        return name, 0

    @staticmethod
    def _plain(a):
        return list(a) if isinstance(a, tuple) else [list(x) if isinstance(x, tuple) else x for x in a]

    def read(self, config: dict) -> GraphSpec:
        scope = self.scope(config, "")
        model_inputs = []
        for name in scope.inputs:
            layer = scope.by_name[name]
            if layer.cls != "InputLayer":
                raise self.fail(f"the model input {name!r} is not an InputLayer of the configuration")
            model_inputs.append(self._input(layer))
        self.static_batch = any(i.shape and i.shape[0] is not None for i in model_inputs)
        resolved = self.run(scope, {i.name: (i.name, 0) for i in model_inputs})
        self.outputs = [self._resolve(resolved, r, scope) for r in scope.outputs]
        self._prune()
        dtypes = self.dtypes or {"float32"}
        if len(dtypes) > 1:
            raise self.fail(f"layers in different dtypes {sorted(dtypes)}; a model is converted in one")
        return GraphSpec("keras", model_inputs, [(n, k) for n, k in self.outputs], self.nodes, self.notes,
                         dtype=dtypes.pop())

    def run(self, scope: _Scope, bindings: Dict[str, Ref]) -> Dict[Tuple[str, int], List[Ref]]:
        """Every call of the model ``scope`` as nodes, its inputs bound to ``bindings`` (input name -> the
        reference of what it is called on); returns the references of each call's outputs."""
        resolved: Dict[Tuple[str, int], List[Ref]] = {}
        for layer in scope.layers:
            if layer.cls == "InputLayer":
                if layer.name not in bindings:
                    raise self.fail(f"the input layer {(scope.prefix + layer.name)!r} is not an input of its model")
                resolved[(layer.name, 0)] = [bindings[layer.name]]
        pending = [(layer, k) for layer in scope.layers if layer.cls != "InputLayer" for k in range(len(layer.calls))]
        for layer in scope.layers:
            if layer.cls != "InputLayer" and not layer.calls:
                raise self.fail(f"layer {(scope.prefix + layer.name)!r} ({layer.cls}) is called nowhere in the model; "
                                "models with unused layers are not converted whole")
        while pending:
            ready = [(l, k) for l, k in pending if all((r.name, r.call) in resolved for r in _krefs(l.calls[k]))]
            if not ready:
                names = ", ".join(scope.prefix + l.name for l, _ in pending[:5])
                raise self.fail(f"layers {names} read outputs that no layer of the model produces")
            for layer, k in ready:
                args, kwargs = layer.calls[k]
                args = self._resolve(resolved, args, scope)
                kwargs = {key: self._resolve(resolved, v, scope) for key, v in kwargs.items()}
                if layer.cls in MODELS:
                    resolved[(layer.name, k)] = self.nested(scope, layer, args, kwargs)
                else:
                    resolved[(layer.name, k)] = self.layer(scope, layer, args, kwargs)
            done = {(l.name, k) for l, k in ready}
            pending = [(l, k) for l, k in pending if (l.name, k) not in done]
        return resolved

    def _resolve(self, resolved, value, scope: _Scope):
        if isinstance(value, KRef):
            outs = resolved[(value.name, value.call)]
            if value.tensor >= len(outs):
                raise self.fail(f"output {value.tensor} of layer {(scope.prefix + value.name)[:80]!r}, which has "
                                f"{len(outs)}")
            return tuple(outs[value.tensor])
        if isinstance(value, list):
            return [self._resolve(resolved, v, scope) for v in value]
        return value

    def nested(self, scope: _Scope, layer: _Layer, args: list, kwargs: dict) -> List[Ref]:
        """A nested model's call: its layers as nodes named ``<model>/<layer>``, its inputs the call's tensors.

        The masks are those Keras computes: tf-keras's ``Functional.call`` sets each input's mask on the inner
        model's input and returns the masks its layers set on its outputs (tf_keras/src/engine/functional.py
        ``_run_internal_graph``, ``_compute_output_and_mask_jointly``); Keras 3's ``Functional.call`` sets the
        input masks on its inputs (``backend.set_keras_mask``) and its outputs keep the masks the inner layers
        set on them (keras/src/models/functional.py ``call``; a model's ``compute_mask`` is the default, so
        ``Layer.__call__`` sets none). So the inner layers see the masks the outer tensors carry, and the outer
        layers the masks the inner layers computed. Both cast the tensors to the dtype of the inner model's
        inputs (tf-keras ``_conform_to_reference_input``; Keras 3 ``_convert_inputs_to_tensors``): a nested
        Sequential that starts with an ``Embedding`` often has a float32 input, through which Keras passes token
        ids exactly up to 2**24; the converted model passes the ids on unchanged."""
        where = f"{self.path}: layer {(scope.prefix + layer.name)!r} ({layer.cls}, a nested model)"
        if self.version.major < 3 and not self.version.tf_keras:
            raise KerasModelError(f"{where}: nested models of Keras {self.version.major}.{self.version.minor} are not "
                                  "converted whole (their node numbering is read as tf-keras and Keras 3 write it)")
        if "/" in layer.name:
            raise KerasModelError(f"{where}: a nested model's name with '/' would make its layers' names ambiguous")
        kwargs = dict(kwargs)
        if kwargs.pop("training", None):
            raise KerasModelError(f"{where}: called with training=True; not converted")
        explicit_mask = kwargs.pop("mask", None)
        if kwargs:
            raise KerasModelError(f"{where}: called with arguments {sorted(kwargs)}; not converted")
        if len(args) != 1:
            raise KerasModelError(f"{where}: called with {len(args)} positional arguments; not converted")
        tensors = [tuple(args[0])] if _is_ref(args[0]) else [tuple(r) for r in args[0]]
        if explicit_mask is not None and [tuple(m) if m is not None else None for m in (
                [explicit_mask] if _is_ref(explicit_mask) else explicit_mask)] != [self.masks.get(t) for t in tensors]:
            raise KerasModelError(f"{where}: called with a mask other than its inputs carry; not converted")
        inner = self.scope(layer.config if layer.cls == "Sequential" and isinstance(layer.config, list)
                           else {"class_name": layer.cls, "config": layer.config}, f"{scope.prefix}{layer.name}/")
        if len(inner.inputs) != len(tensors):
            raise KerasModelError(f"{where}: called on {len(tensors)} tensors; it takes {len(inner.inputs)}")
        resolved = self.run(inner, dict(zip(inner.inputs, tensors)))
        return [self._resolve(resolved, r, inner) for r in inner.outputs]

    MASK_OPS = ("NotEqual", "Reduce", "ExpandDims", "Fill", "Logical", "Cat")

    def _prune(self) -> None:
        """Operations on masks whose result nothing reads (masks a layer would pass on to none) are dropped."""
        while True:
            read = {r[0] for n in self.nodes for a in n.args + list(n.kwargs.values()) for r in _refs(a)}
            read |= {n for n, _ in self.outputs}
            keep = [n for n in self.nodes if n.kind not in self.MASK_OPS or n.name in read]
            if len(keep) == len(self.nodes):
                return
            self.nodes = keep

    def _input(self, layer: _Layer) -> ModelInput:
        cfg = layer.config
        shape = cfg.get("batch_input_shape", cfg.get("batch_shape"))
        if not isinstance(shape, list) or not all(d is None or type(d) is int for d in shape):
            raise self.fail(f"input {layer.name!r}: no batch_input_shape")
        dtype = cfg.get("dtype", "float32")
        if isinstance(dtype, dict):
            dtype = (dtype.get("config") or {}).get("name", "float32")
        if dtype in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"):
            dtype = "int64"
        elif dtype in ("float16", "bfloat16", "float32", "float64"):
            dtype = "float64" if dtype == "float64" else "float32"
        else:
            raise self.fail(f"input {layer.name!r} of dtype {str(dtype)[:40]!r} is not converted")
        self.counts[layer.name] = 1
        self.names.add(layer.name)
        self.masks[(layer.name, 0)] = None
        self.ranks[(layer.name, 0)] = len(shape)
        return ModelInput(layer.name, shape, dtype)

    # -- one layer --------------------------------------------------------------------------------------------
    def layer(self, scope: _Scope, layer: _Layer, args: list, kwargs: dict) -> List[Ref]:
        """One call of a layer as a node (and the operations on masks it needs); returns its outputs.

        A layer called more than once (shared) is one module: its first call's node holds the module and its
        weights; each later call is a node that ``shares`` it (compat.convert.graph), with its own inputs and
        masks: Keras runs ``call`` and ``compute_mask`` once per call (tf_keras/src/engine/base_layer.py
        ``__call__``, ``_set_mask_metadata``; keras/src/layers/layer.py ``Layer.__call__``)."""
        full = scope.prefix + layer.name
        where = f"{self.path}: layer {full!r} ({layer.cls})"
        if "." in layer.name:
            raise KerasModelError(f"{where}: a layer name with '.' cannot name a torch module")
        count = self.calls_made.get(full, 0)
        self.calls_made[full] = count + 1
        if count == 0 and full in self.names:
            raise KerasModelError(f"{where}: its name is taken by another layer or input of the model (a nested "
                                  "model's layer is named <model>/<layer>)")
        name = full if count == 0 else self.unique(f"{full}@{count}")
        self.names.add(name)
        # An operation of a Keras 3 graph: its module says so (.keras, to_json); the legacy .h5 format drops the
        # module, and an operation's config, unlike a layer's, has no "trainable"
        if layer.module.startswith("keras.src.ops") or (self.version.major >= 3 and layer.cls in K3_OPS
                                                        and not layer.module and "trainable" not in layer.config):
            return self.keras3_op(layer, name, args, kwargs, where)
        if layer.cls in CODE:
            raise KerasModelError(f"{where}: runs code stored in the file (a {layer.cls}): refused, never run")
        if layer.cls in OTHER_RECURRENT or (layer.cls in ("Bidirectional", "TimeDistributed")
                                             and _inner(layer.config)[0] in OTHER_RECURRENT + ("RNN",)):
            raise KerasModelError(f"{where}: a recurrent kind this converter does not convert yet")
        stack = self._stack_cells(layer, where) if layer.cls == "RNN" else None
        kwargs = dict(kwargs)
        training = kwargs.pop("training", None)
        if training:
            raise KerasModelError(f"{where}: called with training=True, so it acts as in training at inference; "
                                  "not converted")
        explicit_mask = kwargs.pop("mask", None)
        initial_state = kwargs.pop("initial_state", None)
        for key in ("constants",):
            if kwargs.get(key) is not None:
                raise KerasModelError(f"{where}: called with {key}=...; not converted")
            kwargs.pop(key, None)
        if kwargs:
            raise KerasModelError(f"{where}: called with arguments {sorted(kwargs)}; not converted")
        if not args:
            raise KerasModelError(f"{where}: called on nothing")
        main = args[0]
        extra = args[1:]
        inputs: List[Ref] = [tuple(main)] if _is_ref(main) else [tuple(r) for r in main]
        if layer.cls in RECURRENT + ("Bidirectional", "RNN") and len(inputs) > 1 and initial_state is None:
            # Keras 2 and tf.keras record initial_state=[h, c] as the layer's second and later inputs
            inputs, initial_state = inputs[:1], [list(r) for r in inputs[1:]]
            main = list(inputs[0])
        if extra:
            raise KerasModelError(f"{where}: called with more than one positional argument; not converted")
        shapes = self._shapes(layer, inputs)
        if stack is not None and initial_state is not None:
            raise KerasModelError(f"{where}: an RNN(StackedRNNCells) called with initial_state; not converted yet")
        chain = tuple(scope.prefix.split("/")[:-1]) + (layer.name,)
        # a StackedRNNCells passes and reads masks as its last cell's layer does (RNN.compute_mask)
        call = Call(layer.name, stack[-1].layer if stack else layer.cls, layer.config,
                    [] if stack else self.weights(chain, layer.cls), self.version, where, shapes)
        in_masks = [self.masks.get(r) for r in inputs]
        base = name
        mask_kw = None
        masked_steps = None
        n_out = self._n_outputs(layer)
        def add_op(kind, config, op_args):
            return self.op(kind, config, op_args, base)
        if self.version.major >= 3:
            # the masks tensors carry (Layer.__call__ sets them); a Functional file records the `mask` argument
            mask_ref, out_masks, masked_steps = mask_rules.propagate_keras3(call, inputs, in_masks, n_out, add_op,
                                                                            initial_state is not None)
            if explicit_mask is not None:
                # a Functional file records the mask a layer was called with; where it records none, the call
                # takes the mask its input carries (keras/src/layers/layer.py Layer.__call__, "Populate mask
                # argument(s)": an explicit mask=None is replaced), as after a nested model's outputs
                mask_ref = tuple(explicit_mask)
        else:
            mask_ref, out_masks, masked_steps = mask_rules.propagate(call, inputs, in_masks, n_out, add_op,
                                                                       self.static_batch)
        mask_kw = None if mask_ref is None else list(mask_ref)
        if stack is not None:
            node = self.stacked(layer, stack, main, mask_kw, n_out, chain, name, where, len(layer.calls))
            main = node.args[0]
        else:
            node = self._node(layer, call, masked_steps, chain)
        node.name = name
        node.args = [main]
        if node.kind == "Merge" and self.version >= (3, 4) and node.config["op"] in ("multiply", "maximum", "minimum") \
                and any(m is not None for m in in_masks):
            # Keras >= 3.4 reads the masks the inputs carry (keras/src/layers/merging/multiply.py)
            node.config["masked"] = [m is not None for m in in_masks]
            node.kwargs["masks"] = [list(m) for m in in_masks if m is not None]
        if mask_kw is not None and node.kind in ("Recurrent", "GlobalPool1D", "TimeDistributed"):
            if node.kind == "GlobalPool1D" and node.config["mode"] == "max":
                pass   # GlobalMaxPooling1D takes no mask
            elif node.kind == "TimeDistributed" and node.config["masked_steps"] is None:
                pass   # the mask changes nothing here
            else:
                node.kwargs["mask"] = mask_kw
        if initial_state is not None:
            if node.kind != "Recurrent":
                raise KerasModelError(f"{where}: called with initial_state; not converted")
            node.kwargs["initial_state"] = initial_state
        self._share(full, node, where, len(layer.calls))
        self.nodes.append(node)
        self.names.add(node.name)
        self.counts[node.name] = n_out
        for k, m in enumerate(out_masks):
            self.masks[(node.name, k)] = m
        for k in range(n_out):
            self.ranks[(node.name, k)] = None
        if count == 0:
            self.notes += [f"{full}: {n}" for n in call.notes]
        return [(node.name, k) for k in range(n_out)]

    def _share(self, full: str, node: Node, where: str, calls: int) -> None:
        """The first call of a layer owns the module; a later call with the same settings calls it again."""
        if node.config.get("stateful") and (calls > 1 or full in self.owners):
            raise KerasModelError(f"{where}: a stateful recurrent layer called more than once (its states would carry "
                                  "from one call to the next within a batch); not converted")
        owner = self.owners.get(full)
        if owner is None:
            self.owners[full] = node
            return
        if node.kind == owner.kind and node.config == owner.config and node.recurrent == owner.recurrent:
            node.weights = {}
            node.shares = owner.name
        elif node.weights or node.recurrent is not None:
            raise KerasModelError(f"{where}: its calls need different settings of one module ({node.kind}: the masks "
                                  "reaching them differ); a layer shared so is not converted whole")
        # else a layer without weights: each call is a module of its own, with nothing to share

    def _shapes(self, layer: _Layer, inputs: List[Ref]):
        shape = layer.build_shape
        if isinstance(shape, dict):   # Keras 3: {"shapes_dict": {...}} or named shapes
            shape = next(iter(shape.values()), None)
        if isinstance(shape, list) and shape and all(isinstance(s, list) or s is None for s in shape) \
                and len(inputs) > 1:
            return shape
        if isinstance(shape, list) and (not shape or not isinstance(shape[0], list)):
            return [shape]
        return [None] * len(inputs)

    def _n_outputs(self, layer: _Layer) -> int:
        if layer.cls == "RNN":   # a StackedRNNCells: the output, then each cell's states
            stack = keras_cells.cells(layer.config)[0] or []
            states = sum(1 if c.layer in ONE_STATE else 2 for c in stack)
            return 1 + (states if layer.config.get("return_state") else 0)
        if layer.cls in RECURRENT + ("Bidirectional",):
            cfg = _inner(layer.config)[1] if layer.cls == "Bidirectional" else layer.config
            bidi = layer.cls == "Bidirectional"
            halves = 2 if bidi and layer.config.get("merge_mode", "concat") is None else 1
            cls = _inner(layer.config)[0] if bidi else layer.cls
            states = (2 if bidi else 1) * (1 if cls in ONE_STATE else 2) if cfg.get("return_state") else 0
            return halves + states
        return 1

    def _node(self, layer: _Layer, call: Call, masked_steps: Optional[str], chain: Tuple[str, ...]) -> Node:
        if layer.cls in RECURRENT + ("Bidirectional",):
            return self.recurrent(layer, call, chain)
        if layer.cls == "TimeDistributed":
            inner_cls, inner_cfg = _inner(layer.config)
            record = reader(inner_cls)
            if record is None or record.kind not in TimeDistributedKind.INNER:
                raise KerasModelError(f"{call.where}: TimeDistributed({inner_cls}) is not converted")
            inner = Call(layer.name, inner_cls, inner_cfg, call.weights, call.version, call.where,
                         [None if s is None else [s[0]] + list(s[2:]) for s in call.input_shapes])
            config, weights = record.read(inner)
            call.notes += inner.notes
            self._dtype(weights)
            td = TimeDistributedKind.read(call, record.kind, config, masked_steps)
            return Node(layer.name, "TimeDistributed", td, weights={f"module.{k}": v for k, v in weights.items()})
        record = reader(layer.cls)
        if record is None:
            raise KerasModelError(f"{call.where}: a Keras {layer.cls} layer is outside the layers this converter "
                                  "converts whole; not converted")
        config, weights = record.read(call)
        kind = config.pop("__kind__", record.kind)
        self._dtype(weights)
        return Node(layer.name, kind, config, weights=weights)

    def _dtype(self, weights: Dict[str, np.ndarray]) -> None:
        for w in weights.values():
            self.dtypes.add(str(w.dtype))

    def recurrent(self, layer: _Layer, call: Call, chain: Tuple[str, ...]) -> Node:
        spec = self.specs.get(chain)
        if spec is None:
            raise KerasModelError(f"{call.where}: its recurrent layer was not converted")
        bidi = layer.cls == "Bidirectional"
        cfg = _inner(layer.config)[1] if bidi else layer.config
        self.dtypes.add(str(spec.dtype))
        config = {"return_sequences": bool(cfg.get("return_sequences", False)),
                  "return_state": bool(cfg.get("return_state", False)), "bidirectional": bidi,
                  "merge_mode": layer.config.get("merge_mode", "concat") if bidi else "concat",
                  "units": int(spec.hidden_size if not spec.proj_size else spec.proj_size)}
        cls = _inner(layer.config)[0] if bidi else layer.cls
        if cls in ONE_STATE:
            config["states"] = 1
        if cfg.get("stateful"):
            # keras RNN.call with stateful=True: the final states become the next call's initial states until
            # reset_states(); the converted layer does the same (KerasRNN(stateful=True))
            config["stateful"] = True
            self.notes.append(f"{layer.name}: stateful=True: each call starts from the previous call's final states, "
                              "as in Keras; model.reset_states() starts again from zeros")
        return Node(layer.name, "Recurrent", config, recurrent=spec.name)

    def _stack_cells(self, layer: _Layer, where: str):
        """The cells of an ``RNN(StackedRNNCells)`` layer, or the refusal."""
        stack, stacked, reason = keras_cells.cells(layer.config)
        reason = reason or keras_cells.stack_refusal(layer.config, (self.version.major, self.version.minor),
                                                     self.version.tf_keras)
        if stack is None or reason or not stacked:
            raise KerasModelError(f"{where}: {reason or 'an RNN layer the recurrent converter did not convert'}")
        return stack

    def stacked(self, layer: _Layer, stack, main, mask_kw, n_out: int, chain: Tuple[str, ...], name: str,
                where: str, calls: int) -> Node:
        """An ``RNN(StackedRNNCells)``: one recurrent node per cell, each reading the previous cell's output
        sequence and the layer's mask, then a node returning Keras's outputs (the last cell's output, each cell's
        states in order: tf-keras base_rnn.py ``RNN.call``, Keras 3 rnn.py ``RNN.call``). Each cell's converted
        layer is found by the layer's names from the outermost model in, the last one the cell's converted name
        (:func:`compat.frameworks.keras.cells.stacked_name`); the nodes of this call are named after the call
        (``name``: the layer's full name, ``<layer>@k`` for a later call of a shared layer), each cell's node
        of a later call sharing that of the first."""
        cfg = layer.config
        prev, states = main, []
        for k, cell in enumerate(stack):
            last = k == len(stack) - 1
            cell_name = keras_cells.stacked_name(layer.name, cell)
            spec = self.specs.get(chain[:-1] + (cell_name,))
            if spec is None:
                raise KerasModelError(f"{where}: its cell {cell.name!r} was not converted")
            self.dtypes.add(str(spec.dtype))
            one = cell.layer in ONE_STATE
            config = {"return_sequences": bool(cfg.get("return_sequences", False)) if last else True,
                      "return_state": bool(cfg.get("return_state", False)), "bidirectional": False,
                      "merge_mode": "concat", "units": int(spec.hidden_size)}
            if one:
                config["states"] = 1
            if cfg.get("stateful"):
                config["stateful"] = True
            node_name = self.unique(f"{name}:{cell.name}")
            node = Node(node_name, "Recurrent", config, [prev], {} if mask_kw is None else {"mask": mask_kw},
                        recurrent=spec.name)
            self._share("/".join(chain[:-1] + (cell_name,)), node, where, calls)
            self.nodes.append(node)
            self.counts[node_name] = 1 + ((1 if one else 2) if config["return_state"] else 0)
            prev = [node_name, 0]
            if config["return_state"]:
                states += [[node_name, 1]] if one else [[node_name, 1], [node_name, 2]]
        if cfg.get("stateful"):
            self.notes.append(f"{'/'.join(chain)}: stateful=True: each call starts from the previous call's final "
                              "states, as in Keras; model.reset_states() starts again from zeros")
        return Node(name, "Outputs", {"count": n_out}, [[prev] + states])

    # -- Keras 3 operations ------------------------------------------------------------------------------------
    def keras3_op(self, layer: _Layer, name: str, args: list, kwargs: dict, where: str) -> List[Ref]:
        cls, cfg = layer.cls, layer.config
        if cls not in K3_OPS:
            raise KerasModelError(f"{where}: the Keras operation {cls} (keras.ops) is not converted")
        if kwargs:
            raise KerasModelError(f"{where}: called with arguments {sorted(kwargs)}; not converted")
        tensors = [a for a in args if _is_ref(a) or isinstance(a, list)]
        if cls == "NotEqual":
            if len(args) != 2:
                raise KerasModelError(f"{where}: not_equal of {len(args)} arguments")
            a, b = args
            if _is_ref(b) and _is_ref(a):
                node = Node(layer.name, "NotEqual", {"other": None}, [a, b])
            elif _is_ref(a) and type(b) in (int, float, bool):
                node = Node(layer.name, "NotEqual", {"other": b}, [a])
            else:
                raise KerasModelError(f"{where}: not_equal of {args!r:.80}")
        elif cls in ("Any", "All"):
            node = Node(layer.name, "Reduce", {"op": cls.lower(), "axis": cfg.get("axis"),
                                               "keepdims": bool(cfg.get("keepdims", False))}, tensors[:1])
        elif cls == "ExpandDims":
            node = Node(layer.name, "ExpandDims", {"axis": cfg.get("axis")}, tensors[:1])
        elif cls in ("ZerosLike", "OnesLike"):
            if cfg.get("dtype") != "bool":
                raise KerasModelError(f"{where}: {cls} of dtype {cfg.get('dtype')!r} is not converted")
            node = Node(layer.name, "Fill", {"value": cls == "OnesLike"}, tensors[:1])
        elif cls in ("LogicalOr", "LogicalAnd"):
            node = Node(layer.name, "Logical", {"op": "or" if cls == "LogicalOr" else "and"}, tensors[:2])
        else:
            node = Node(layer.name, "Cat", {"axis": cfg.get("axis", 0)}, tensors[:1])
        if len(node.args) != (2 if node.kind == "Logical" or (node.kind == "NotEqual" and node.config["other"] is None)
                              else 1):
            raise KerasModelError(f"{where}: its arguments {args!r:.80} are not converted")

        def error(key, message):
            return KerasModelError(f"{where}: {key}: {message}")
        LAYERS[node.kind].check(node.config, error)
        node.name = name
        self.nodes.append(node)
        self.counts[node.name] = 1
        self.masks[(node.name, 0)] = None
        return [(node.name, 0)]


def _krefs(call) -> List[KRef]:
    """The references a call (args, kwargs) reads."""
    out: List[KRef] = []

    def walk(v):
        if isinstance(v, KRef):
            out.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(call[0])
    walk(list(call[1].values()))
    return out


def _refs(v):
    if _is_ref(v):
        yield v
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from _refs(x)


def _is_ref(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and isinstance(v[0], str) and type(v[1]) is int


def _inner(cfg: dict) -> Tuple[str, dict]:
    inner = cfg.get("layer")
    if not isinstance(inner, dict):
        return "", {}
    return str(inner.get("class_name", "")), inner.get("config") if isinstance(inner.get("config"), dict) else {}


def read_model(kf: KerasFile, specs: Dict[Tuple[str, ...], object], weights) -> GraphSpec:
    """The whole model of ``kf`` (its configuration) as a graph; ``specs``: the converted recurrent layers by
    their names (a nested model's layer: ``(model, layer)``); ``weights(names, cls)``: a layer's weights in
    Keras's order."""
    return _Reader(kf, specs, weights).read(kf.config)


__all__ = ["read_model", "version_of", "parse_version"]
