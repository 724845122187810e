"""The converter's output: PyTorch-layout weights in safetensors and a JSON configuration beside them.

``OUT.safetensors`` holds every LSTM's parameters under ``lstm<k>.<torch name>`` (``weight_ih_l0``,
``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``weight_hr_l0``, ``peephole_l0``, ``*_reverse``);
``OUT.json`` says, per LSTM, its name in the source, sizes, direction, semantics options, the module that
runs it and why, and what the source file could not say. Both are written atomically.
:func:`load` builds the modules back.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import nn

from compat.atomic import atomic_write_text
from compat.convert.spec import LSTMSpec
from compat.errors import FileFormatError
from compat.formats import safetensors
from compat.formats.files import MiB, read_text

FORMAT_VERSION = 1


def config_path(out) -> Path:
    """The JSON configuration beside ``out`` (``model.safetensors`` -> ``model.json``)."""
    return Path(out).with_suffix(".json")


def spec_config(spec: LSTMSpec, key: str) -> dict:
    reasons = spec.torch_exact_reasons()
    return {
        "name": spec.name, "key": key, "source_format": spec.source_format, "variant": spec.variant,
        "input_size": spec.input_size, "hidden_size": spec.hidden_size, "proj_size": spec.proj_size,
        "num_layers": spec.num_layers, "direction": spec.direction, "bias": spec.bias,
        "batch_first": spec.batch_first, "peepholes": spec.peepholes, "dtype": str(spec.dtype),
        "module": spec.module_kind,
        "why": ("the source's semantics are exactly torch.nn.LSTM's" if not reasons else
                "torch.nn.LSTM cannot compute " + ", ".join(reasons)),
        "options": spec.semantics_options(), "forget_bias_folded": spec.forget_bias,
        "not_in_file": [{"what": u.what, "value": u.value, "assumed": u.assumed, "loud": u.loud} for u in spec.unknowns],
        "notes": list(spec.notes),
    }


def write(specs: Sequence[LSTMSpec], out, source) -> dict:
    """Write ``out`` (safetensors) and its JSON configuration; returns the configuration."""
    tensors: Dict[str, np.ndarray] = {}
    entries = []
    for k, spec in enumerate(specs):
        key = f"lstm{k}"
        for name, arr in spec.state_dict().items():
            tensors[f"{key}.{name}"] = arr
        entries.append(spec_config(spec, key))
    config = {"format_version": FORMAT_VERSION, "source": str(source), "weights": Path(out).name, "lstms": entries}
    safetensors.save(out, tensors, {"format": "pt", "config": Path(config_path(out)).name})
    atomic_write_text(config_path(out), json.dumps(config, indent=2) + "\n")
    return config


def _module(entry: dict, params: Dict[str, torch.Tensor]) -> nn.Module:
    dtype = next(iter(params.values())).dtype
    common = dict(input_size=entry["input_size"], hidden_size=entry["hidden_size"], num_layers=entry["num_layers"],
                  bias=entry["bias"], batch_first=entry["batch_first"])
    bidirectional = entry["direction"] == "bidirectional"
    if entry["module"] == "torch.nn.LSTM":
        m = nn.LSTM(**common, bidirectional=bidirectional, proj_size=entry["proj_size"], dtype=dtype)
    else:
        from compat.lstm import LSTM

        try:
            m = LSTM(**common, proj_size=entry["proj_size"], bidirectional=bidirectional, peepholes=entry["peepholes"],
                     dtype=dtype, **entry["options"])
        except TypeError as e:
            raise FileFormatError(f"{entry['name']}: this version of compat.lstm.LSTM cannot build "
                                  f"{entry['options']} ({e})") from None
    missing, unexpected = m.load_state_dict(params, strict=False)
    if missing or unexpected:
        raise FileFormatError(f"{entry['name']}: the weights file does not fit the configuration "
                              f"(missing {list(missing)}, unexpected {list(unexpected)})")
    if isinstance(m, nn.LSTM):
        m.flatten_parameters()
    m.eval()
    m.__doc__ = (f"{entry['name']} from {entry['variant']}: {entry['module']} because {entry['why']}.")
    m.conversion = entry
    return m


def load(out) -> Dict[str, nn.Module]:
    """One ready module per LSTM of a converted file, by the LSTM's name in the source.

    Each is a plain ``torch.nn.LSTM`` (``flatten_parameters()`` done, in eval mode) wherever the source's
    semantics are exactly PyTorch's, and otherwise a ``compat.lstm.LSTM`` with the options it needs
    (peepholes, clips, other activations, a reverse-only direction, ...). Each module's ``__doc__`` says
    which and why; ``module.conversion`` holds its whole entry of the JSON configuration.
    """
    cfg_path = config_path(out)
    try:
        config = json.loads(read_text(cfg_path, 16 * MiB, "converter configuration"))
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{cfg_path}: not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        raise FileFormatError(f"{cfg_path}: not a converter configuration of format version {FORMAT_VERSION}")
    tensors, _ = safetensors.load(out)
    modules: Dict[str, nn.Module] = {}
    for entry in config.get("lstms", []):
        try:
            prefix = entry["key"] + "."
            params = {n[len(prefix):]: torch.from_numpy(a) for n, a in tensors.items() if n.startswith(prefix)}
            if not params:
                raise FileFormatError(f"{out}: no tensors for {entry['name']!r} ({entry['key']})")
            modules[entry["name"]] = _module(entry, params)
        except KeyError as e:
            raise FileFormatError(f"{cfg_path}: an LSTM entry lacks {e}") from None
    return modules
