"""ONNX models: everything the converter knows about them.

``layout.py``    the ``onnx`` layout (W [dirs, 4H, in], R, B = [Wb, Rb], P; gates i, o, f, c) and the
                 ``activations`` / ``activation_alpha`` / ``activation_beta`` lists
``discover.py``  every ``LSTM`` node, every attribute honoured or refused; every other recurrent node and
                 every initializer accounted for
``oracle.py``    verification against reference/onnx_lstm.py

The file is parsed by :mod:`compat.formats.onnx` (the ``onnx`` package, parsing only); weights that old
exporters compute from initializers (Slice, Concat, Unsqueeze, ...) are folded by
:mod:`compat.formats.onnx_fold`. A node with ``sequence_lens`` loads as :class:`compat.convert.modules.OnnxLSTM`.
"""
from __future__ import annotations

from compat.frameworks import Framework, register

FRAMEWORK = register(Framework(
    key="onnx",
    title="ONNX models",
    package=__name__,
    suffixes=(".onnx",),
    layouts=("onnx",),
    references={"onnx": "reference/onnx_lstm.py"},
    modules={"compat.convert.modules.OnnxLSTM": "compat.convert.modules:OnnxLSTM"},
    layers="compat.frameworks.onnx.layers",
))

from compat.frameworks.onnx import layout  # noqa: E402,F401  (registers its layouts)

__all__ = ["FRAMEWORK"]
