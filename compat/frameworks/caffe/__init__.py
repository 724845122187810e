"""Caffe ``.caffemodel`` files (BVLC Caffe and junhyukoh/caffe-lstm): everything the converter knows.

``layout.py``    the ``caffe`` (BVLC ``LSTM``: W_xc, b_c, W_hc) and ``junhyukoh`` (``Lstm``: W_x, W_h, b)
                 layouts, gates i, f, o, g
``discover.py``  every LSTM layer's blobs, checked against a ``.prototxt`` when given; every other layer
                 accounted for
``oracle.py``    verification against reference/caffe_lstm.py (whole nets: reference/caffe_layers.py)
``net.py``       a whole net (``.prototxt`` + ``.caffemodel``) as a converted graph; ``layers.py`` its layer kinds

The files are read by :mod:`compat.formats.caffemodel` and :mod:`compat.formats.prototxt`.
"""
from __future__ import annotations

from compat.frameworks import Framework, Option, register

FRAMEWORK = register(Framework(
    key="caffe",
    title="Caffe files",
    package=__name__,
    suffixes=(".caffemodel", ".prototxt"),
    layouts=("caffe", "junhyukoh"),
    options=(Option("--prototxt", "prototxt", metavar="NET.prototxt",
                    help="Caffe: the net's .prototxt, checked against the blobs (and converted whole)"),
             Option("--weights", "weights", metavar="WEIGHTS",
                    help="Caffe: the trained .caffemodel of a .prototxt source")),
    references={"caffe": "reference/caffe_lstm.py", "junhyukoh": "reference/caffe_lstm.py",
                "caffe_rnn": "reference/caffe_rnn.py", "caffe_model": "reference/caffe_layers.py"},
    modules={"compat.convert.modules.CaffeRNN": "compat.convert.modules:CaffeRNN",
             "compat.convert.modules.CaffeLSTM": "compat.convert.modules:CaffeLSTM"},
    layers="compat.frameworks.caffe.layers",
))

from compat.frameworks.caffe import layout  # noqa: E402,F401  (registers its layouts)

__all__ = ["FRAMEWORK"]
