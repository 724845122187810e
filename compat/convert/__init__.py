"""Legacy LSTM checkpoints to verified PyTorch modules: ``python -m compat.convert SOURCE --to OUT``.

Sources: TF1 checkpoints (:mod:`compat.convert.tf1`, :mod:`compat.convert.cudnn`), Keras 1/2/3 ``.h5`` and
``.keras`` files (:mod:`compat.convert.keras`), ONNX ``LSTM`` nodes (:mod:`compat.convert.onnx`), the Theano
tutorial's ``.npz`` (:mod:`compat.convert.theano`) and Caffe ``.caffemodel`` files (:mod:`compat.convert.caffe`).
Each reader finds the LSTMs and their settings and hands the tensors to :func:`compat.layouts.convert`;
each LSTM found becomes an :class:`~compat.convert.spec.LSTMSpec`. :func:`convert` writes them
(:mod:`compat.convert.store`, a :mod:`compat.checkpoint` checkpoint) and checks the written modules
against the source framework's numpy reference (:mod:`compat.convert.verify`); :func:`load` returns the
modules (:mod:`compat.convert.modules` for Keras's and onnxruntime's ways of returning outputs). See
docs/convert.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from compat.convert.discovery import FORMATS, detect_format, discover
from compat.convert.spec import LSTMSpec
from compat.convert.store import load
from compat.convert.verify import Check, check_all

__all__ = ["FORMATS", "LSTMSpec", "Check", "Conversion", "convert", "detect_format", "discover", "load"]


class Conversion(NamedTuple):
    """What :func:`convert` did: the LSTMs found, the files written, and the checks (None if skipped)."""

    specs: List[LSTMSpec]
    files: Tuple[Path, Path]         # (configuration OUT.json, tensor file OUT.<digest>.safetensors)
    checks: Optional[List[Check]]


def convert(source, out, *, fmt: Optional[str] = None, verify: bool = True, **options) -> Conversion:
    """Find every LSTM in ``source``, write conversion ``out``, and check the written modules.

    ``options``: those of :func:`discover` (``forget_bias``, ``cell_clip``, ``proj_clip``, ``prototxt``,
    ``theano_doubled_bias``, ``cudnn_num_units``, ...).
    """
    from compat.convert import store
    from compat.errors import InputError

    from compat.convert.verify import OverflowingWeightsError

    specs = discover(source, fmt=fmt, **options)
    if not specs:
        raise InputError(f"{source}: no LSTM found")
    try:
        files = store.write(specs, out, source)
        if not verify:
            return Conversion(specs, files, None)
        return Conversion(specs, files, check_all(specs, load(files[0])))
    except (store.NonFiniteWeightsError, OverflowingWeightsError) as e:  # values the source framework refuses
        raise type(e)(f"{source}: {e}") from None
