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
:func:`load_carried` the tensors not converted. See docs/convert.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from compat.convert.discovery import FORMATS, detect_format, discover
from compat.convert.spec import LSTMSpec, SourceItem
from compat.convert.store import load, load_carried
from compat.convert.verify import Check, check_all
from compat.errors import InputError

__all__ = ["FORMATS", "LSTMSpec", "SourceItem", "Check", "Conversion", "PartialConversionError", "convert",
           "detect_format", "discover", "load", "load_carried"]


class PartialConversionError(InputError, ValueError):
    """Some recurrent layer of the source could not be converted and a partial conversion was not asked for."""

    def __init__(self, message: str, items: List[SourceItem]):
        super().__init__(message)
        self.items = items


class Conversion(NamedTuple):
    """What :func:`convert` did: the recurrent layers converted, every item of the source, the files
    written, and the checks (None if skipped)."""

    specs: List[LSTMSpec]
    items: List[SourceItem]
    files: Tuple[Path, Path]         # (configuration OUT.json, tensor file OUT.<digest>.safetensors)
    checks: Optional[List[Check]]

    @property
    def not_converted(self) -> List[SourceItem]:
        """The recurrent layers of the source that were not converted."""
        return [i for i in self.items if i.recurrent and i.converted is None]


def unconverted_recurrent(items) -> List[SourceItem]:
    return [i for i in items if i.recurrent and i.converted is None]


def convert(source, out, *, fmt: Optional[str] = None, verify: bool = True, partial: bool = False,
            **options) -> Conversion:
    """Find every recurrent layer in ``source``, write conversion ``out``, and check the written modules.

    ``options``: the source framework's own (:attr:`compat.frameworks.Framework.options`, by ``dest``:
    ``forget_bias``, ``cell_clip``, ``prototxt``, ``theano_doubled_bias``, ``cudnn_num_units``, ...) and
    ``max_tensor_bytes``, the ceiling on any one tensor read from the source (see :func:`discover`).
    A recurrent layer that cannot be converted raises :class:`PartialConversionError` (nothing is written)
    unless ``partial=True``; the tensors not converted are written beside the converted ones, under their
    source names.
    """
    from compat.convert import store
    from compat.convert.verify import OverflowingWeightsError

    found = discover(source, fmt=fmt, **options)
    missing = unconverted_recurrent(found.items)
    if not found.specs and not missing:
        kinds = sorted({i.kind for i in found.items})
        raise InputError(f"{source}: no recurrent layer found (the file holds {len(found.items)} items: "
                         f"{', '.join(kinds[:8]) or 'nothing'})")
    if missing and not partial:
        names = ", ".join(f"{i.name} ({i.reason})" for i in missing[:6])
        raise PartialConversionError(f"{source}: {len(missing)} recurrent layer(s) not converted: {names}"
                                     f"{' ...' if len(missing) > 6 else ''}; pass --partial (partial=True) to "
                                     "write the others", found.items)
    try:
        files = store.write(found.specs, out, source, found.items)
        if not verify or not found.specs:
            return Conversion(found.specs, found.items, files, None)
        return Conversion(found.specs, found.items, files, check_all(found.specs, load(files[0])))
    except (store.NonFiniteWeightsError, OverflowingWeightsError) as e:  # values the source framework refuses
        raise type(e)(f"{source}: {e}") from None
