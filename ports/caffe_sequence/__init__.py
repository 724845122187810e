"""Port of Caffe's clip-based LSTM sequence generator (junhyukoh/caffe-lstm examples/lstm_sequence).

Both Caffe LSTM layers on the shared core, Caffe's files without Caffe, and the example program:
``python -m ports.caffe_sequence --config lstm_short|lstm_long|deep_short|deep_long``.
"""
from ports.caffe_sequence.layers import CaffeLSTM, CaffeShapeError, JunhyukohLSTM

__all__ = ["CaffeLSTM", "JunhyukohLSTM", "CaffeShapeError", "read_prototxt", "read_caffemodel", "write_caffemodel"]


def __getattr__(name):
    # File readers load lazily so that importing the layers stays cheap.
    if name == "read_prototxt":
        from compat.formats.prototxt import read_prototxt
        return read_prototxt
    if name in ("read_caffemodel", "write_caffemodel"):
        from compat.formats import caffemodel
        return getattr(caffemodel, name)
    raise AttributeError(name)
