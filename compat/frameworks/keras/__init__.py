"""Keras 1, 2 and 3 (and tf.keras) model files: everything the converter knows about them.

``layout.py``    the ``keras`` (LSTM: kernel [in, 4H], recurrent_kernel [H, 4H], gates i, f, c, o) and
                 ``keras_cudnn`` (CuDNNLSTM: two biases in one [8H] vector) layouts
``discover.py``  every recurrent layer of a ``.h5`` / ``.keras`` file from its configuration and weights; every
                 other layer accounted for
``oracle.py``    verification against reference/keras_lstm.py (layers) and reference/keras_model.py (whole models)
``model.py``     the whole model (Sequential, Functional) as a converted graph; ``masks.py`` which mask reaches which
                 layer in Keras 1, 2 and tf.keras; ``layers.py`` the registry of the layer kinds a whole model
                 converts (read, check, build, emit); ``recurrent.py`` a converted recurrent layer run as Keras calls
                 it in a model; ``cells.py`` Keras's generic ``RNN`` over its built-in cells (and StackedRNNCells)
                 read as the layers those cells make

The files are read by :mod:`compat.formats.keras` (HDF5 through h5py, the ``.keras`` zip). A converted
layer with masks, ``go_backwards`` or a Bidirectional merge loads as :class:`compat.convert.modules.KerasLSTM`.
"""
from __future__ import annotations

from compat.frameworks import Framework, Option, register

FRAMEWORK = register(Framework(
    key="keras",
    title="Keras files",
    package=__name__,
    suffixes=(".h5", ".hdf5", ".keras", ".json"),
    layouts=("keras", "keras_cudnn"),
    options=(Option("--keras-version", "keras_version", metavar="X.Y.Z",
                    help="Keras: the version that wrote the file, for a file that does not say it readably (without "
                         "it such a file is refused: the LSTM's semantics differ between versions)"),
             Option("--weights", "weights", metavar="WEIGHTS.h5",
                    help="Keras: the save_weights() file of a model given as its to_json() (SOURCE model.json)")),
    references={"keras": "reference/keras_lstm.py", "keras_rnn": "reference/keras_rnn.py",
                "keras_model": "reference/keras_model.py"},
    modules={"compat.convert.modules.KerasLSTM": "compat.convert.modules:KerasLSTM",
             "compat.convert.modules.KerasGRU": "compat.convert.modules:KerasGRU",
             "compat.convert.modules.KerasSimpleRNN": "compat.convert.modules:KerasSimpleRNN"},
    layers="compat.frameworks.keras.layers",
))

from compat.frameworks.keras import layout  # noqa: E402,F401  (registers its layouts)

__all__ = ["FRAMEWORK"]
