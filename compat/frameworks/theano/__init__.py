"""The Theano LSTM tutorial's parameter archives (``lstm_model.npz``): everything the converter knows.

``layout.py``    the ``theano`` layout (W [in, 4H], U [H, 4H], b [4H]; gates i, f, o, c)
``discover.py``  every ``<prefix>_W/_U/_b`` triple; every other member accounted for
``oracle.py``    verification against reference/theano_lstm.py

The archive is read member by member by :mod:`compat.formats.npz` (Python 2 headers included; no pickles).
"""
from __future__ import annotations

from compat.frameworks import Framework, Option, register

FRAMEWORK = register(Framework(
    key="theano",
    title="Theano archives",
    package=__name__,
    suffixes=(".npz",),
    layouts=("theano",),
    options=(Option("--theano-doubled-bias", "theano_doubled_bias", action="store_true", default=False,
                    help="Theano: the file was trained by lstm.py before May 2015, which added lstm_b twice"),),
    references={"theano": "reference/theano_lstm.py"},
))

from compat.frameworks.theano import layout  # noqa: E402,F401  (registers its layouts)

__all__ = ["FRAMEWORK"]
