"""Legacy recurrent checkpoints to verified PyTorch modules: ``python -m compat.convert SOURCE --to OUT``.

Sources: one package per legacy framework under :mod:`compat.frameworks` (TF1 checkpoints, Keras 1/2/3
``.h5`` and ``.keras`` files, ONNX models, the Theano tutorial's ``.npz``, Caffe ``.caffemodel`` files),
each registered in :data:`compat.frameworks.FRAMEWORKS`. A framework's reader finds the recurrent layers
and their settings and hands the tensors to :func:`compat.layouts.convert`; each LSTM found becomes an
:class:`~compat.convert.spec.LSTMSpec`, and every tensor or layer of the source a
:class:`~compat.convert.spec.SourceItem` saying what became of it. :func:`convert` writes them
(:mod:`compat.convert.store`, a :mod:`compat.checkpoint` checkpoint: the converted modules' weights and
every tensor not converted, under its source name) and checks the written modules against the source
framework's numpy reference (:mod:`compat.convert.verify`); :func:`load` returns the modules
(:mod:`compat.convert.modules` for Keras's and onnxruntime's ways of returning outputs) and
:func:`load_carried` the tensors not converted. Where a framework's reader understands the whole model (Keras
files, ONNX models, Caffe nets given with their ``.prototxt``, TF1 language models from their ``.meta`` graph), the conversion also holds the model as a graph of layers (:mod:`compat.convert.graph`), checked
against the framework's numpy reference of the whole model, :func:`load` returns it as one module, and
:func:`compat.convert.emit.emit_python` writes it as a standalone PyTorch file. See docs/convert.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from compat.convert.discovery import FORMATS, detect_format, discover
from compat.convert.spec import LSTMSpec, SourceItem
from compat.convert.store import load, load_carried
from compat.convert.verify import Check, check_all
from compat.errors import InputError

__all__ = ["FORMATS", "LSTMSpec", "SourceItem", "Check", "Conversion", "PartialConversionError", "WholeModelError",
           "convert", "detect_format", "discover", "load", "load_carried"]

MODEL_MODES = ("auto", "whole", "layers")


class WholeModelError(InputError, ValueError):
    """``model="whole"`` for a source that does not convert as a whole model; the message says why."""


class PartialConversionError(InputError, ValueError):
    """Some recurrent layer of the source could not be converted and a partial conversion was not asked for."""

    def __init__(self, message: str, items: List[SourceItem]):
        super().__init__(message)
        self.items = items


class _Conversion(NamedTuple):
    specs: List[LSTMSpec]
    items: List[SourceItem]
    files: Tuple[Path, Path]         # (configuration OUT.json, tensor file OUT.<digest>.safetensors)
    checks: Optional[List[Check]]


class Conversion(_Conversion):
    """What :func:`convert` did: the recurrent layers converted, every item of the source, the files
    written, and the checks (None if skipped; a whole model's outputs are checked too). Besides the four
    fields: ``graph``, the whole model (:class:`compat.convert.graph.GraphSpec`) when it was converted whole,
    and ``whole_refused``, why the source was not converted as a whole model (None when it was, or when its
    format's reader reads recurrent layers only)."""

    graph: Optional[object] = None
    whole_refused: Optional[str] = None

    @classmethod
    def made(cls, specs, items, files, checks, graph=None, whole_refused=None) -> "Conversion":
        c = cls(specs, items, files, checks)
        c.graph, c.whole_refused = graph, whole_refused
        return c

    @property
    def not_converted(self) -> List[SourceItem]:
        """The recurrent layers of the source that were not converted."""
        return [i for i in self.items if i.recurrent and i.converted is None]


def unconverted_recurrent(items) -> List[SourceItem]:
    return [i for i in items if i.recurrent and i.converted is None]


def convert(source, out, *, fmt: Optional[str] = None, verify: bool = True, partial: bool = False,
            model: str = "auto", **options) -> Conversion:
    """Find every recurrent layer in ``source``, write conversion ``out``, and check the written modules.

    ``model``: ``"auto"`` writes the whole model too where the source's reader understands every layer of it
    (else the recurrent layers, saying why not); ``"whole"`` requires the whole model
    (:class:`WholeModelError` otherwise); ``"layers"`` writes the recurrent layers only.

    ``options``: the source framework's own (:attr:`compat.frameworks.Framework.options`, by ``dest``:
    ``forget_bias``, ``cell_clip``, ``prototxt``, ``theano_doubled_bias``, ``cudnn_num_units``, ...) and
    ``max_tensor_bytes``, the ceiling on any one tensor read from the source (see :func:`discover`).
    A recurrent layer that cannot be converted raises :class:`PartialConversionError` (nothing is written)
    unless ``partial=True``; the tensors not converted are written beside the converted ones, under their
    source names.
    """
    from compat.convert import store
    from compat.convert.verify import OverflowingWeightsError

    if model not in MODEL_MODES:
        raise ValueError(f"model must be one of {MODEL_MODES}, not {model!r}")
    found = discover(source, fmt=fmt, **options)
    graph = found.graph if model != "layers" else None
    if model == "whole" and graph is None:
        raise WholeModelError(found.whole_refused or f"{source}: this format's reader converts recurrent layers only, "
                                                     "not whole models")
    missing = unconverted_recurrent(found.items)
    if not found.specs and not missing and graph is None:
        kinds = sorted({i.kind for i in found.items})
        why = f"; the whole model is not converted: {found.whole_refused}" if found.whole_refused else ""
        raise InputError(f"{source}: no recurrent layer found (the file holds {len(found.items)} items: "
                         f"{', '.join(kinds[:8]) or 'nothing'}){why}")
    if missing and not partial:
        names = ", ".join(f"{i.name} ({i.reason})" for i in missing[:6])
        raise PartialConversionError(f"{source}: {len(missing)} recurrent layer(s) not converted: {names}"
                                     f"{' ...' if len(missing) > 6 else ''}; pass --partial (partial=True) to "
                                     "write the others", found.items)
    refused = found.whole_refused if model != "layers" else None
    try:
        files = store.write(found.specs, out, source, found.items, graph)
        if not verify:
            return Conversion.made(found.specs, found.items, files, None, graph, refused)
        loaded = load(files[0])
        checks = check_all(found.specs, loaded)
        if graph is not None:
            from compat.convert.verify import check_model

            checks += check_model(graph, loaded)
        return Conversion.made(found.specs, found.items, files, checks or None, graph, refused)
    except (store.NonFiniteWeightsError, OverflowingWeightsError) as e:  # values the source framework refuses
        raise type(e)(f"{source}: {e}") from None
