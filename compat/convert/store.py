"""The converter's output: a :mod:`compat.checkpoint` checkpoint of kind ``compat.convert``.

``--to OUT.safetensors`` (or ``OUT``, ``OUT.json``) writes the two files of checkpoint ``OUT``:

    OUT.json                          the configuration: per LSTM its name in the source, sizes, direction,
                                      the module that runs it and why, its options, what the source file
                                      could not say; and the tensor file's name, size and SHA-256
    OUT.<16 hex digits>.safetensors   every LSTM's parameters in PyTorch's layout, under
                                      ``lstms/<k>/weights/<torch name>`` (``weight_ih_l0``, ``weight_hh_l0``,
                                      ``bias_ih_l0``, ``bias_hh_l0``, ``weight_hr_l0``, ``peephole_l0``,
                                      ``*_reverse``)

Both are written atomically, the tensor file under a name derived from its digest, so an interrupted
conversion leaves the previous pair intact (compat/checkpoint.py). The tensor file's metadata seals the
configuration's digest, so the manifest's SHA-256 of the tensor file covers the settings as well as the
tensors. :func:`load` checks the seal, every setting's type and range (finite positive clips, known
activations, formats, modules and masked outputs) and every tensor's name, shape and dtype against the
module it describes before reading any tensor data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from compat import checkpoint
from compat.checkpoint import CheckpointError, Fields
from compat.convert.discovery import FORMATS
from compat.convert.spec import (CORE_LSTM, KERAS_LSTM, MASKED_OUTPUTS, MERGE_MODES, ONNX_LSTM, SEMANTICS,
                                 TORCH_LSTM, LSTMSpec)
from compat.errors import InputError

KIND = "compat.convert"
CONVERTER_VERSION = 1
MODULES = (TORCH_LSTM, CORE_LSTM, KERAS_LSTM, ONNX_LSTM)
DTYPES = {"float32": torch.float32, "float64": torch.float64}
MAX_LSTMS = 10_000
MAX_SIZE = 1 << 24
MAX_LAYERS = 1 << 10
ENTRY = ("name", "source_format", "variant", "module", "why", "input_size", "hidden_size", "proj_size",
         "num_layers", "bidirectional", "bias", "batch_first", "peepholes", "dtype", "options", "keras",
         "forget_bias_folded", "not_in_file", "notes", "weights")


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
    keras = None
    if spec.keras is not None:
        keras = {"go_backwards": spec.keras.go_backwards, "masked_output": spec.keras.masked_output,
                 "merge_mode": spec.keras.merge_mode}
    weights = {}
    for name, arr in spec.state_dict().items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise NonFiniteWeightsError(f"{spec.name}: {name} holds {int((~np.isfinite(arr)).sum())} NaN or infinite "
                                        "values in the source file")
        weights[name] = torch.from_numpy(arr)
    return {
        "name": spec.name, "source_format": spec.source_format, "variant": spec.variant, "module": spec.module_kind,
        "why": ("the source's semantics are exactly torch.nn.LSTM's" if not reasons else
                "torch.nn.LSTM cannot compute " + ", ".join(reasons)),
        "input_size": spec.input_size, "hidden_size": spec.hidden_size, "proj_size": spec.proj_size,
        "num_layers": spec.num_layers, "bidirectional": spec.direction == "bidirectional", "bias": spec.bias,
        "batch_first": spec.batch_first, "peepholes": spec.peepholes, "dtype": str(spec.dtype), "options": opts,
        "keras": keras, "forget_bias_folded": spec.forget_bias,
        "not_in_file": [{"what": u.what, "value": u.value, "assumed": u.assumed, "loud": u.loud} for u in spec.unknowns],
        "notes": list(spec.notes), "weights": weights,
    }


def write(specs: Sequence[LSTMSpec], out, source) -> Tuple[Path, Path]:
    """Write the conversion ``out`` (see the module docstring); returns (configuration, tensor file)."""
    content = {"converter_version": CONVERTER_VERSION, "source": str(source), "lstms": [_entry(s) for s in specs]}
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
    if kind == TORCH_LSTM:
        return nn.LSTM(**common)
    options = dict(entry["options"])
    if "activations" in options:
        options["activations"] = tuple(tuple(a) if isinstance(a, list) else a for a in options["activations"])
    from compat.lstm import LSTM

    if kind == CORE_LSTM:
        return LSTM(**common, peepholes=entry["peepholes"], **options)
    from compat.convert.modules import KerasLSTM, OnnxLSTM

    if kind == ONNX_LSTM:
        return OnnxLSTM(**common, peepholes=entry["peepholes"], **options)
    keras = entry["keras"] or {}
    return KerasLSTM(**common, peepholes=entry["peepholes"], go_backwards=keras.get("go_backwards", False),
                     masked_output=keras.get("masked_output", "previous_output"),
                     merge_mode=keras.get("merge_mode", "concat"), **options)


def _check_options(f: Fields, options: dict, field: str, bidirectional: bool) -> None:
    """Every semantics option's type and range (what the module's constructor would take silently)."""
    from compat import lstm_activations

    unknown = sorted(set(options) - set(SEMANTICS))
    if unknown:
        raise f.error(field, f"unknown options {unknown}; known {list(SEMANTICS)}")
    for key, value in options.items():
        where = f"{field}/{key}"
        if key in ("cell_clip", "proj_clip", "preact_clip"):
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
    f.dict(e, field, keys=ENTRY)
    f.str(e["name"], f"{field}/name", max_length=4096)
    f.str(e["source_format"], f"{field}/source_format", choices=FORMATS)
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
    _check_options(f, options, f"{field}/options", e["bidirectional"])
    if e["module"] == KERAS_LSTM and e["keras"] is None:
        raise f.error(f"{field}/keras", f"a {KERAS_LSTM} needs its Keras settings")
    if e["keras"] is not None:
        keras = f.dict(e["keras"], f"{field}/keras", keys=("go_backwards", "masked_output", "merge_mode"))
        f.bool(keras["go_backwards"], f"{field}/keras/go_backwards")
        f.str(keras["masked_output"], f"{field}/keras/masked_output", choices=MASKED_OUTPUTS)
        f.str(keras["merge_mode"], f"{field}/keras/merge_mode", choices=MERGE_MODES)
    try:
        shapes = checkpoint.expected_shapes(lambda: _build(e, device="meta"))
    except (ValueError, TypeError) as exc:
        raise f.error(field, f"describes no module this version builds ({exc})") from None
    f.state_dict(e["weights"], f"{field}/weights", shapes, dtypes=(DTYPES[e["dtype"]],))
    return e


def load(out) -> Dict[str, nn.Module]:
    """One ready module per LSTM of a conversion, by the LSTM's name in the source.

    Each is a plain ``torch.nn.LSTM`` (``flatten_parameters()`` done) wherever the source's semantics are
    exactly PyTorch's, and otherwise a :class:`compat.lstm.LSTM` with the options it needs (peepholes,
    clips, other activations, a reverse-only direction, ...): :class:`compat.convert.modules.KerasLSTM`
    for a Keras layer with masks or ``go_backwards``, :class:`compat.convert.modules.OnnxLSTM` for an ONNX
    node. All are in eval mode. Each module's ``__doc__`` says which and why; ``module.conversion`` holds
    its entry of the configuration (without the tensors).
    """
    ck = checkpoint.read(out, KIND, require_seal=True)
    f = Fields(ck)
    content = f.dict(ck.content, "content", keys=("converter_version", "source", "lstms"))
    f.int(content["converter_version"], "converter_version", CONVERTER_VERSION, CONVERTER_VERSION)
    f.str(content["source"], "source", max_length=1 << 16)
    entries = [_check_entry(f, e, f"lstms/{i}")
               for i, e in enumerate(f.list(content["lstms"], "lstms", max_length=MAX_LSTMS))]
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise f.error("lstms", "two LSTMs have the same name")
    tensors = ck.materialize()["lstms"]
    modules: Dict[str, nn.Module] = {}
    for entry, loaded in zip(entries, tensors):
        m = _build(entry)
        m.load_state_dict(loaded["weights"], strict=True)
        if isinstance(m, nn.LSTM):
            m.flatten_parameters()
        m.eval()
        m.__doc__ = f"{entry['name']} from {entry['variant']}: {entry['module']} because {entry['why']}."
        m.conversion = {k: v for k, v in entry.items() if k != "weights"}
        modules[entry["name"]] = m
    return modules


__all__ = ["KIND", "load", "write", "files", "CheckpointError"]
