"""Legacy LSTM checkpoints to verified PyTorch modules: ``python -m compat.convert SOURCE --to OUT.safetensors``.

Sources: TF1 checkpoints (:mod:`compat.convert.tf1`, :mod:`compat.convert.cudnn`), Keras 1/2/3 ``.h5`` and
``.keras`` files (:mod:`compat.convert.keras`), ONNX ``LSTM`` nodes (:mod:`compat.convert.onnx`), the Theano
tutorial's ``.npz`` (:mod:`compat.convert.theano`) and Caffe ``.caffemodel`` files (:mod:`compat.convert.caffe`).
Each LSTM found becomes an :class:`~compat.convert.spec.LSTMSpec`; :func:`convert` writes them
(:mod:`compat.convert.store`) and checks them against the source framework's numpy reference
(:mod:`compat.convert.verify`); :func:`load` returns the modules. See docs/convert.md.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from compat.convert.discovery import FORMATS, detect_format, discover
from compat.convert.spec import LSTMSpec
from compat.convert.store import load
from compat.convert.verify import Check, check_all

__all__ = ["FORMATS", "LSTMSpec", "Check", "convert", "detect_format", "discover", "load"]


def convert(source, out, *, fmt: Optional[str] = None, verify: bool = True, **options
            ) -> Tuple[List[LSTMSpec], Optional[List[Check]]]:
    """Find every LSTM in ``source``, write ``out`` (+ its JSON), and check the written modules.

    ``options``: those of :func:`discover` (``forget_bias``, ``cell_clip``, ``proj_clip``, ``prototxt``,
    ``theano_doubled_bias``, ``cudnn_num_units``, ...). Returns the specs and the checks (None when
    ``verify`` is False).
    """
    from compat.convert import store
    from compat.errors import InputError

    specs = discover(source, fmt=fmt, **options)
    if not specs:
        raise InputError(f"{source}: no LSTM found")
    store.write(specs, out, source)
    if not verify:
        return specs, None
    modules = load(out)
    return specs, check_all(specs, modules)
