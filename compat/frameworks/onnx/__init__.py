"""ONNX models: everything the converter knows about them.

``layout.py``    the ``onnx`` layout (W [dirs, 4H, in], R, B = [Wb, Rb], P; gates i, o, f, c) and the
                 ``activations`` / ``activation_alpha`` / ``activation_beta`` lists
``discover.py``  every ``LSTM`` node, every attribute honoured or refused; every other recurrent node and
                 every initializer accounted for
``gru.py``       every ``GRU`` and ``RNN`` node, every attribute honoured or refused
``directions.py`` a bidirectional node whose directions run different activations, as its two directions
``model.py``     the whole model as a graph (:mod:`compat.convert.graph`): every node with its operator's
                 semantics, LSTM nodes run by the converted LSTMs, constant subgraphs folded
``layers.py``    the node kinds whole models are rebuilt from (their stored configurations, checked)
``ops.py``       the operators' exact semantics in torch, and the recurrent nodes' layouts around the modules
``oracle.py``    verification against reference/onnx_lstm.py and reference/onnx_rnn.py, and of whole models against
                 reference/onnx_model.py (onnx's reference evaluator, LSTM nodes by reference/onnx_lstm.py,
                 GRU and RNN nodes by reference/onnx_rnn.py)

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
    references={"onnx": "reference/onnx_lstm.py", "onnx_rnn": "reference/onnx_rnn.py",
                "onnx_model": "reference/onnx_model.py"},
    modules={"compat.convert.modules.OnnxLSTM": "compat.convert.modules:OnnxLSTM",
             "compat.convert.modules.OnnxGRU": "compat.convert.modules:OnnxGRU",
             "compat.convert.modules.OnnxRNN": "compat.convert.modules:OnnxRNN"},
    layers="compat.frameworks.onnx.layers",
))

from compat.frameworks.onnx import layout  # noqa: E402,F401  (registers its layouts)

__all__ = ["FRAMEWORK"]
