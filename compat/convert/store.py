"""The converter's output: a :mod:`compat.checkpoint` checkpoint of kind ``compat.convert``.

``--to OUT.safetensors`` (or ``OUT``, ``OUT.json``) writes the two files of checkpoint ``OUT``:

    OUT.json                          the configuration: per LSTM its name in the source, sizes, direction,
                                      the module that runs it and why, its options, what the source file
                                      could not say; every item of the source and what became of it
                                      (``items``); the whole model's graph where the source's reader
                                      understood the whole model (``model``: :mod:`compat.convert.graph`);
                                      and the tensor file's name, size and SHA-256
    OUT.<16 hex digits>.safetensors   every LSTM's parameters in PyTorch's layout, under
                                      ``lstms/<k>/weights/<torch name>`` (``weight_ih_l0``, ``weight_hh_l0``,
                                      ``bias_ih_l0``, ``bias_hh_l0``, ``weight_hr_l0``, ``peephole_l0``,
                                      ``*_reverse``), every tensor not converted under ``carried/<its
                                      name in the source>``, and the whole model's other layers' tensors
                                      under ``model/nodes/<k>/weights/<name>``

Both are written atomically, the tensor file under a name derived from its digest, so an interrupted
conversion leaves the previous pair intact (compat/checkpoint.py). The tensor file's metadata seals the
configuration's digest (the LSTMs' settings, the items, the carried tensors' list and the model's graph
alike), so the manifest's SHA-256 of the tensor file covers the settings as well as the tensors. :func:`load`
and :func:`load_carried` check the seal, every setting's type and range (finite positive clips, known
activations, formats, modules and masked outputs; a registered module class's own keywords, ``module_config``,
by the class), every item's fields, the graph (every node's kind
registered by its framework's package, every config through that kind, every reference to an earlier node),
and every tensor's name, shape and dtype against the module or item it belongs to before reading any tensor
data; then every tensor read is finite, except that the constants of a whole model's graph its node kinds declare
(:func:`compat.convert.graph.infinite_allowed`) may hold ±inf, never NaN. Conversions of version 2 (no ``model``)
load as they did.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from compat import checkpoint, frameworks
from compat.checkpoint import CheckpointError, Fields
from compat.convert.graph import GraphSpec, build_model, check_graph, graph_entry, infinite_allowed, nonfinite
from compat.convert.spec import (CELL_SEMANTICS, CELLS, CORE_LSTM, CORE_MODULES, MASKED_OUTPUTS, MERGE_MODES,
                                 TORCH_LSTM, TORCH_MODULES, LSTMSpec, SourceItem)
from compat.errors import InputError

KIND = "compat.convert"
# 3: the whole model's graph ("model", None when the conversion holds recurrent layers only); 2: every item of the
# source listed ("items") and the tensors not converted carried ("carried"); 1 had neither
CONVERTER_VERSION = 3
READ_VERSIONS = (2, 3)
MODULES = tuple(TORCH_MODULES.values()) + tuple(CORE_MODULES.values()) + tuple(k for fw in frameworks.FRAMEWORKS.values() for k in fw.modules)
SOURCE_FORMATS = tuple(k for fw in frameworks.FRAMEWORKS.values() for k in (fw.key, *fw.aliases))
MAX_ITEMS = 1_000_000
DTYPES = {"float32": torch.float32, "float64": torch.float64}
MAX_LSTMS = 10_000
MAX_SIZE = 1 << 24
MAX_LAYERS = 1 << 10
ENTRY = ("name", "source_format", "variant", "module", "why", "input_size", "hidden_size", "proj_size",
         "num_layers", "bidirectional", "bias", "batch_first", "peepholes", "dtype", "options", "keras",
         "forget_bias_folded", "not_in_file", "notes", "weights")
# written since GRUs and simple RNNs convert; an entry without it (an older conversion) is an LSTM; and
# "module_config", the registered module class's own keywords (LSTMSpec.module_config), written when it has any
ENTRY_OPTIONAL = ("cell", "module_config")


class NonFiniteWeightsError(InputError, ValueError):
    """A source tensor holding NaN or infinite values (converted weights must be finite)."""


def files(out) -> Tuple[Path, Path]:
    """(configuration, tensor file) of the conversion ``out`` as written."""
    target = checkpoint.manifest_path(out)
    ck = checkpoint.read(target, KIND, require_seal=True)
    return target, ck.tensor_path


def _entry(spec: LSTMSpec) -> dict:
    reasons = spec.torch_exact_reasons()
    opts = spec.module_options()
    if "activations" in opts:
        opts["activations"] = [list(a) if isinstance(a, (list, tuple)) else a for a in opts["activations"]]
    if spec.cell != "lstm" and "activations" in opts:
        opts["activations"] = [list(a) if isinstance(a, (list, tuple)) else a for a in opts["activations"]]
    if isinstance(opts.get("nonlinearity"), tuple):
        opts["nonlinearity"] = list(opts["nonlinearity"])
    keras = None
    if spec.keras is not None:
        keras = {"go_backwards": spec.keras.go_backwards, "masked_output": spec.keras.masked_output,
                 "merge_mode": spec.keras.merge_mode}
        if spec.keras.keras_dropout is not None:
            keras["keras_dropout"] = dict(spec.keras.keras_dropout)
    weights = {}
    for name, arr in spec.state_dict().items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise NonFiniteWeightsError(f"{spec.name}: {name} holds {int((~np.isfinite(arr)).sum())} NaN or infinite "
                                        "values in the source file")
        weights[name] = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    return {
        "name": spec.name, "source_format": spec.source_format, "variant": spec.variant, "module": spec.module_kind,
        "why": (f"the source's semantics are exactly {TORCH_MODULES[spec.cell]}'s" if not reasons else
                f"{TORCH_MODULES[spec.cell]} cannot compute " + ", ".join(reasons)),
        "cell": spec.cell,
        "input_size": spec.input_size, "hidden_size": spec.hidden_size, "proj_size": spec.proj_size,
        "num_layers": spec.num_layers, "bidirectional": spec.direction == "bidirectional", "bias": spec.bias,
        "batch_first": spec.batch_first, "peepholes": spec.peepholes, "dtype": str(spec.dtype), "options": opts,
        "keras": keras, "forget_bias_folded": spec.forget_bias,
        "not_in_file": [{"what": u.what, "value": u.value, "assumed": u.assumed, "loud": u.loud} for u in spec.unknowns],
        "notes": list(spec.notes), "weights": weights,
        **({"module_config": dict(spec.module_config)} if spec.module_config else {}),
    }


def _item(item: SourceItem) -> dict:
    return {"name": item.name, "kind": item.kind, "shapes": {k: list(v) for k, v in item.shapes.items()},
            "converted": None if item.converted is None else item.converted.name, "reason": item.reason,
            "recurrent": item.recurrent, "carried": sorted(item.tensors), "not_carried": dict(item.not_carried)}


def write(specs: Sequence[LSTMSpec], out, source, items: Sequence[SourceItem] = (),
          graph: Optional[GraphSpec] = None) -> Tuple[Path, Path]:
    """Write the conversion ``out`` (see the module docstring); returns (configuration, tensor file)."""
    carried: Dict[str, torch.Tensor] = {}
    for item in items:
        for name, arr in item.tensors.items():
            if name in carried:
                raise ValueError(f"two items of the source carry a tensor named {name!r}")
            carried[name] = torch.from_numpy(np.array(arr))
    model = None
    if graph is not None:
        model = graph_entry(graph)
        kinds = frameworks.layer_kinds(graph.framework)
        for node in model["nodes"]:
            constants = infinite_allowed(kinds[node["kind"]], node["config"]) if node["kind"] in kinds else ()
            for name, t in node["weights"].items():
                bad = nonfinite(t, name in constants)
                if bad:
                    raise NonFiniteWeightsError(
                        f"{node['name']}: {name} holds {bad} in the source file"
                        + ("; a constant of the graph may hold ±inf, never NaN" if name in constants else ""))
    content = {"converter_version": CONVERTER_VERSION, "source": str(source), "lstms": [_entry(s) for s in specs],
               "items": [_item(i) for i in items], "carried": carried, "model": model}
    target = checkpoint.save(out, KIND, content)
    return files(target)


# ------------------------------------------------------------------------------------------------ reading
def _build(entry: dict, device=None) -> nn.Module:
    """The module an entry describes, with uninitialised parameters (``device="meta"``: no memory)."""
    dtype = DTYPES[entry["dtype"]]
    common = dict(input_size=entry["input_size"], hidden_size=entry["hidden_size"], num_layers=entry["num_layers"],
                  bias=entry["bias"], batch_first=entry["batch_first"], proj_size=entry["proj_size"],
                  bidirectional=entry["bidirectional"], device=device, dtype=dtype)
    kind = entry["module"]
    cell = entry.get("cell", "lstm")
    if entry.get("module_config") and frameworks.module_class(kind) is None:
        raise ValueError(f"module_config is for a module class a framework registered, not {kind}")
    if cell != "lstm":
        return _build_gru_rnn(entry, cell, common, device, dtype)
    if kind == TORCH_LSTM:
        return nn.LSTM(**common)
    options = dict(entry["options"])
    if "activations" in options:
        options["activations"] = tuple(tuple(a) if isinstance(a, list) else a for a in options["activations"])
    from compat.lstm import LSTM

    # compat.lstm.LSTM, or the module class a framework registered (the Keras layer's output settings with it)
    cls = LSTM if kind == CORE_LSTM else frameworks.module_class(kind)
    return cls(**common, peepholes=entry["peepholes"], **(entry["keras"] or {}), **options,
               **entry.get("module_config", {}))


def _stored_activation(a):
    return tuple(a) if isinstance(a, list) else a


def _build_gru_rnn(entry: dict, cell: str, common: dict, device, dtype) -> nn.Module:
    """torch.nn.GRU / torch.nn.RNN, or the core's compat.gru.GRU / compat.simple_rnn.RNN with the options."""
    common = {k: v for k, v in common.items() if k != "proj_size"}
    options = dict(entry["options"])
    if entry["module"] == TORCH_MODULES[cell]:
        if cell == "gru":
            return nn.GRU(**common)
        return nn.RNN(**common, nonlinearity=str(options.get("nonlinearity", "tanh")).lower())
    from compat.gru import GRU
    from compat.simple_rnn import RNN

    core = GRU if cell == "gru" else RNN
    cls = core if entry["module"] == CORE_MODULES[cell] else frameworks.module_class(entry["module"])
    if cls is None or not issubclass(cls, core):
        raise ValueError(f"module {entry['module']!r} does not run a {cell}")
    if cell == "gru":
        if "activations" in options:
            options["activations"] = tuple(_stored_activation(a) for a in options["activations"])
    else:
        options["nonlinearity"] = _stored_activation(options.get("nonlinearity", "tanh"))
    return cls(**common, **(entry["keras"] or {}), **options, **entry.get("module_config", {}))


def _check_options(f: Fields, options: dict, field: str, bidirectional: bool, cell: str = "lstm") -> None:
    """Every semantics option's type and range (what the module's constructor would take silently)."""
    from compat import lstm_activations

    known = CELL_SEMANTICS[cell]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise f.error(field, f"unknown options {unknown}; known {list(known)}")
    for key, value in options.items():
        where = f"{field}/{key}"
        if key == "clip":
            if f.float(value, where, finite=True) <= 0:
                raise f.error(where, f"{value} must be a number > 0")
        elif key == "reset_after":
            f.bool(value, where)
        elif key == "nonlinearity" or (key == "activations" and cell == "gru"):
            items = [value] if key == "nonlinearity" else f.list(value, where, length=2)
            for k, item in enumerate(items):
                at = where if key == "nonlinearity" else f"{where}/{k}"
                if isinstance(item, list):
                    f.list(item, at, max_length=3)
                    f.str(item[0] if item else None, f"{at}/0", max_length=64)
                    for j, number in enumerate(item[1:], 1):
                        f.float(number, f"{at}/{j}", finite=True)
                else:
                    f.str(item, at, max_length=64)
                try:
                    lstm_activations.activation(_stored_activation(item))
                except (ValueError, TypeError) as exc:
                    raise f.error(at, f"not an activation the core knows ({exc})") from None
        elif key in ("cell_clip", "proj_clip", "preact_clip"):
            if f.float(value, where, finite=True) <= 0:
                raise f.error(where, f"{value} must be a number > 0")
        elif key == "input_forget":
            f.bool(value, where)
        elif key == "direction":
            f.str(value, where, choices=("reverse",))
            if bidirectional:
                raise f.error(where, "a reverse-only direction in a bidirectional LSTM")
        elif key == "activations":
            items = f.list(value, where, length=3)
            for k, item in enumerate(items):
                if isinstance(item, list):
                    f.list(item, f"{where}/{k}", max_length=3)
                    f.str(item[0] if item else None, f"{where}/{k}/0", max_length=64)
                    for j, number in enumerate(item[1:], 1):
                        f.float(number, f"{where}/{k}/{j}", finite=True)
                else:
                    f.str(item, f"{where}/{k}", max_length=64)
            try:
                lstm_activations.resolve(tuple(tuple(a) if isinstance(a, list) else a for a in items))
            except (ValueError, TypeError) as exc:
                raise f.error(where, f"not activations the core knows ({exc})") from None


def _check_entry(f: Fields, e, field: str) -> dict:
    f.dict(e, field, keys=ENTRY, optional=ENTRY_OPTIONAL)
    cell = f.str(e.get("cell", "lstm"), f"{field}/cell", choices=CELLS)
    f.str(e["name"], f"{field}/name", max_length=4096)
    f.str(e["source_format"], f"{field}/source_format", choices=SOURCE_FORMATS)
    f.str(e["variant"], f"{field}/variant", max_length=4096)
    f.str(e["why"], f"{field}/why", max_length=1 << 16)
    f.str(e["module"], f"{field}/module", choices=MODULES)
    f.str(e["dtype"], f"{field}/dtype", choices=tuple(DTYPES))
    for key, lo, hi in (("input_size", 1, MAX_SIZE), ("hidden_size", 1, MAX_SIZE), ("proj_size", 0, MAX_SIZE),
                        ("num_layers", 1, MAX_LAYERS)):
        f.int(e[key], f"{field}/{key}", lo, hi)
    for key in ("bidirectional", "bias", "batch_first", "peepholes"):
        f.bool(e[key], f"{field}/{key}")
    f.float(e["forget_bias_folded"], f"{field}/forget_bias_folded", finite=True)
    for k, note in enumerate(f.list(e["notes"], f"{field}/notes", max_length=1000)):
        f.str(note, f"{field}/notes/{k}", max_length=1 << 16)
    for k, u in enumerate(f.list(e["not_in_file"], f"{field}/not_in_file", max_length=1000)):
        u = f.dict(u, f"{field}/not_in_file/{k}", keys=("what", "value", "assumed", "loud"))
        for key in ("what", "value", "assumed"):
            f.str(u[key], f"{field}/not_in_file/{k}/{key}", max_length=1 << 16)
        f.bool(u["loud"], f"{field}/not_in_file/{k}/loud")
    options = f.dict(e["options"], f"{field}/options")
    _check_options(f, options, f"{field}/options", e["bidirectional"], cell)
    # the module class's own keywords: plain JSON values here, their meaning checked by the class (below)
    for key, value in f.dict(e.get("module_config", {}), f"{field}/module_config").items():
        f.str(key, f"{field}/module_config", max_length=64)
        if key in options or key in ENTRY or type(value) not in (int, float, str, bool):
            raise f.error(f"{field}/module_config/{key}", "expected a keyword of the module class with a number, "
                                                          "string or boolean value")
    if cell != "lstm" and (e["peepholes"] or e["proj_size"]):
        raise f.error(field, f"a {cell} has no peepholes or projection")
    if e["keras"] is not None:
        keras = f.dict(e["keras"], f"{field}/keras", keys=("go_backwards", "masked_output", "merge_mode"),
                       optional=("keras_dropout",))
        f.bool(keras["go_backwards"], f"{field}/keras/go_backwards")
        f.str(keras["masked_output"], f"{field}/keras/masked_output", choices=MASKED_OUTPUTS)
        f.str(keras["merge_mode"], f"{field}/keras/merge_mode", choices=MERGE_MODES)
        if keras.get("keras_dropout") is not None:
            from compat.frameworks.keras.dropout import KerasDropout, KerasDropoutError

            try:
                KerasDropout.of(f.dict(keras["keras_dropout"], f"{field}/keras/keras_dropout"))
            except (KerasDropoutError, TypeError) as exc:
                raise f.error(f"{field}/keras/keras_dropout", str(exc)) from None
    try:
        shapes = checkpoint.expected_shapes(lambda: _build(e, device="meta"))
    except (ValueError, TypeError) as exc:
        raise f.error(field, f"describes no module this version builds ({exc})") from None
    f.state_dict(e["weights"], f"{field}/weights", shapes, dtypes=(DTYPES[e["dtype"]],))
    return e


def load(out, dtype: Optional[torch.dtype] = None, device=None) -> Union[Dict[str, nn.Module], nn.Module]:
    """The whole model, where the conversion holds one; else one ready module per LSTM, by its name in the source.

    Args:
        out: the conversion's name, ``OUT.safetensors`` as given to ``--to`` (or ``OUT.json``).
        dtype: a floating-point dtype for every module's parameters (``None``: as converted, the source's).
        device: where the modules go (``"cuda"``, a ``torch.device``; ``None``: the CPU).

    Returns:
        the whole model, or ``{name in the source: module}``.

    A whole model (a conversion whose source's reader understood every layer, :mod:`compat.convert.graph`) is
    one :class:`~compat.convert.graph.GraphModel`: ``model(*inputs)`` takes what the source model's
    ``predict`` took, in its order, and returns its outputs in its order; every layer's module is
    ``model.get_submodule(name)`` by its name in the source, and the converted recurrent layers are also a
    mapping by name (``model["lstm_1"]``), as the dictionary below.

    Each is a plain ``torch.nn.LSTM`` (``flatten_parameters()`` done) wherever the source's semantics are
    exactly PyTorch's, and otherwise a :class:`compat.lstm.LSTM` with the options it needs (peepholes,
    clips, other activations, a reverse-only direction, ...): :class:`compat.convert.modules.KerasLSTM`
    for a Keras layer with masks or ``go_backwards``, :class:`compat.convert.modules.OnnxLSTM` for an ONNX
    node. All are in eval mode. Each module's ``__doc__`` says which and why; ``module.conversion`` holds
    its entry of the configuration (without the tensors).
    """
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype; got {dtype!r}")
    ck = checkpoint.read(out, KIND, require_seal=True)
    f = Fields(ck)
    content = _content(f, ck)
    items = _check_items(f, content["items"])
    entries = [_check_entry(f, e, f"lstms/{i}")
               for i, e in enumerate(f.list(content["lstms"], "lstms", max_length=MAX_LSTMS))]
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise f.error("lstms", "two LSTMs have the same name")
    for i, item in enumerate(items):
        if item["converted"] is not None and item["converted"] not in names:
            raise f.error(f"items/{i}/converted", f"{item['converted'][:80]!r} names no LSTM of the conversion")
    graph = content.get("model")
    if graph is not None:
        graph = _check_model(f, graph, names)
    tensors = ck.materialize(content=content["lstms"])
    modules: Dict[str, nn.Module] = {}
    for entry, loaded in zip(entries, tensors):
        m = _build(entry)
        m.load_state_dict(loaded["weights"], strict=True)
        if graph is None and (dtype is not None or device is not None):
            m.to(device=device, dtype=dtype)   # a whole model moves as one, after its probe below
        if isinstance(m, nn.RNNBase):
            m.flatten_parameters()
        m.eval()
        m.__doc__ = f"{entry['name']} from {entry['variant']}: {entry['module']} because {entry['why']}."
        m.conversion = {k: v for k, v in entry.items() if k != "weights"}
        modules[entry["name"]] = m
    if graph is None:
        return modules
    kinds = frameworks.layer_kinds(graph["framework"])
    weights = ck.materialize(content=[n["weights"] for n in graph["nodes"]],
                             allow_infinite=_infinite_keys(graph, kinds))
    model = build_model(graph, kinds, weights, modules, DTYPES[graph["dtype"]])
    _probe(f, model, graph)
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    for m in modules.values():
        if isinstance(m, nn.RNNBase):
            m.flatten_parameters()
    model.conversion = {"source": content["source"], "framework": graph["framework"], "notes": list(graph["notes"])}
    return model


PROBE_STEPS = 2


def _probe(f: Fields, model: nn.Module, graph: dict) -> None:
    """Run the model once on zeros of its inputs' declared shapes (2 where any size is accepted): a graph whose
    layers do not fit together (a shape, a count) is refused here, as one error, not at the user's first call."""
    dtype = DTYPES[graph["dtype"]]
    xs = []
    for i in graph["inputs"]:
        # every open size PROBE_STEPS, the declared ones as declared (an ONNX input's batch axis is not always
        # its first, and a lengths input's batch must match the sequence's)
        shape = [PROBE_STEPS if d is None else d for d in i["shape"]]
        if math.prod(shape) > 1 << 24:
            return   # too large to probe cheaply; the checks above stand alone
        kind = {"int32": torch.int64, "int64": torch.int64, "bool": torch.bool}.get(i["dtype"], dtype)
        xs.append(torch.zeros(shape, dtype=kind))
    try:
        with torch.no_grad():
            model(*xs)
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise f.error("model", f"the model does not run on inputs of its declared shapes "
                               f"({type(exc).__name__}: {str(exc)[:300]})") from None
    finally:
        model.reset_states()   # a stateful layer starts the user's first call from zeros, not from the probe's


def _infinite_keys(graph: dict, kinds) -> frozenset:
    """The tensor file's keys of a checked graph's tensors that may hold ±inf (the constants of the source's graph
    its kinds declare, :func:`compat.convert.graph.infinite_allowed`); every other tensor is read finite."""
    return frozenset(node["weights"][name].key for node in graph["nodes"]
                     for name in infinite_allowed(kinds[node["kind"]], node["config"]) if name in node["weights"])


def _check_model(f: Fields, graph, recurrent_names) -> dict:
    """The stored whole model's graph, checked against its framework's registered layer kinds."""
    graph = f.dict(graph, "model")
    key = f.str(graph.get("framework"), "model/framework", choices=SOURCE_FORMATS)
    kinds = frameworks.layer_kinds(key)
    if not kinds:
        raise f.error("model/framework", f"the {key!r} package builds no whole models")
    return check_graph(f, graph, "model", recurrent_names, kinds, checkpoint.expected_shapes, tuple(DTYPES.values()))


def _content(f: Fields, ck) -> dict:
    version = f.int(f.dict(ck.content, "content").get("converter_version"), "converter_version", READ_VERSIONS[0],
                    READ_VERSIONS[-1])
    keys = ("converter_version", "source", "lstms", "items", "carried") + (("model",) if version >= 3 else ())
    content = f.dict(ck.content, "content", keys=keys)
    f.str(content["source"], "source", max_length=1 << 16)
    return content


ITEM = ("name", "kind", "shapes", "converted", "reason", "recurrent", "carried", "not_carried")


def _check_items(f: Fields, items) -> list:
    """Every item of the source as listed in the configuration: its fields' types, and no tensor carried twice."""
    out = []
    carried = set()
    for i, item in enumerate(f.list(items, "items", max_length=MAX_ITEMS)):
        field = f"items/{i}"
        f.dict(item, field, keys=ITEM)
        f.str(item["name"], f"{field}/name", max_length=1 << 16)
        f.str(item["kind"], f"{field}/kind", max_length=4096)
        f.str(item["reason"], f"{field}/reason", max_length=1 << 16)
        f.bool(item["recurrent"], f"{field}/recurrent")
        if item["converted"] is not None:
            f.str(item["converted"], f"{field}/converted", max_length=4096)
        for name, shape in f.dict(item["shapes"], f"{field}/shapes").items():
            for k, d in enumerate(f.list(shape, f"{field}/shapes/{name}", max_length=64)):
                f.int(d, f"{field}/shapes/{name}/{k}", 0, None)
        for name, why in f.dict(item["not_carried"], f"{field}/not_carried").items():
            f.str(why, f"{field}/not_carried/{name}", max_length=1 << 16)
        for k, name in enumerate(f.list(item["carried"], f"{field}/carried", max_length=MAX_ITEMS)):
            f.str(name, f"{field}/carried/{k}", max_length=1 << 16)
            if name in carried:
                raise f.error(f"{field}/carried/{k}", f"{name[:80]!r} is carried by two items")
            if name not in item["shapes"]:
                raise f.error(f"{field}/carried/{k}", f"{name[:80]!r} has no shape in the item")
            carried.add(name)
        out.append(item)
    return out


def load_carried(out) -> Dict[str, torch.Tensor]:
    """The tensors of the source that the conversion ``out`` did not convert, by their names in the source,
    each checked against the shape its item lists before any is read."""
    ck = checkpoint.read(out, KIND, require_seal=True)
    f = Fields(ck)
    content = _content(f, ck)
    carried = f.dict(content["carried"], "carried")
    shapes = {name: tuple(item["shapes"][name]) for item in _check_items(f, content["items"])
              for name in item["carried"]}
    unlisted = sorted(set(carried) - set(shapes))
    if unlisted:
        raise f.error("carried", f"tensors {unlisted[:5]} are carried but no item of the source lists them")
    missing = sorted(set(shapes) - set(carried))
    if missing:
        raise f.error("carried", f"tensors {missing[:5]} are listed as carried but not in the tensor file")
    for name, ref in carried.items():
        f.tensor(ref, f"carried/{name}", shape=shapes[name])
    return dict(ck.materialize(allow_nonfinite=True, content=carried))


__all__ = ["KIND", "load", "load_carried", "write", "files", "CheckpointError"]
