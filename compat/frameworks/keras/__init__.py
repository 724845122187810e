"""Keras 1, 2 and 3 (and tf.keras) model files: everything the converter knows about them.

``layout.py``    the ``keras`` (LSTM: kernel [in, 4H], recurrent_kernel [H, 4H], gates i, f, c, o) and
                 ``keras_cudnn`` (CuDNNLSTM: two biases in one [8H] vector) layouts
``discover.py``  every recurrent layer of a ``.h5`` / ``.keras`` file from its configuration and weights; every
                 other layer accounted for
``oracle.py``    verification against reference/keras_lstm.py

The files are read by :mod:`compat.formats.keras` (HDF5 through h5py, the ``.keras`` zip). A converted
layer with masks, ``go_backwards`` or a Bidirectional merge loads as :class:`compat.convert.modules.KerasLSTM`.
"""
from __future__ import annotations

from compat.frameworks import Framework, Option, register

FRAMEWORK = register(Framework(
    key="keras",
    title="Keras files",
    package=__name__,
    suffixes=(".h5", ".hdf5", ".keras"),
    layouts=("keras", "keras_cudnn"),
    options=(Option("--keras-version", "keras_version", metavar="X.Y.Z",
                    help="Keras: the version that wrote the file, for a file that does not say it readably (without "
                         "it such a file is refused: the LSTM's semantics differ between versions)"),),
    references={"keras": "reference/keras_lstm.py"},
    modules={"compat.convert.modules.KerasLSTM": "compat.convert.modules:KerasLSTM"},
))

from compat.frameworks.keras import layout  # noqa: E402,F401  (registers its layouts)

__all__ = ["FRAMEWORK"]
