"""TF variable names of the PTB model across TensorFlow generations, and finding them in a checkpoint (the
cells' names come from :mod:`compat.frameworks.tf.names`, the one table of TF variable names).

ptb_word_lm builds every variable under ``variable_scope("Model")`` and the unrolled cell under
``variable_scope("RNN")``; scripts using ``tf.nn.static_rnn`` / ``dynamic_rnn`` get ``rnn``. The cell's
names changed twice (tensorflow/python/ops/rnn_cell.py, later rnn_cell_impl.py):

=================  ===========================================================================
TF <= 0.12         ``Model/RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix`` and ``.../Linear/Bias``
TF 1.0 - 1.1       ``Model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/weights`` and ``.../biases``
TF >= 1.2          ``Model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/kernel`` and ``.../bias``
=================  ===========================================================================

``LSTMBlockCell`` (ptb_word_lm's default ``rnn_mode`` from TF 1.3) writes ``.../cell_0/lstm_cell/kernel``
with the same [in + H, 4H] layout and gate order i, j, f, o, so it loads too. ``embedding``,
``softmax_w`` and ``softmax_b`` sit directly under the outer scope.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, Optional

from compat.frameworks.tf.names import BASIC_LSTM_CELL as _CELL_SCOPE
from compat.frameworks.tf.names import GENERATIONS, is_bookkeeping

_LAYER_RE = re.compile(r"^(?:RNN|rnn)/(?:multi_rnn_cell/cell_|MultiRNNCell/Cell)(\d+)/([^/]+)/")


def scope_prefix(scope: Optional[str]) -> str:
    """``"Model"`` -> ``"Model/"``; ``""`` -> ``""`` (variables at the top level)."""
    if not scope:
        return ""
    return scope.strip("/") + "/"


def variable_names(num_layers: int, *, scope: str = "Model", generation: str = "1.2", rnn_scope: str = "RNN",
                   shared: bool = False) -> Dict[str, str]:
    """Port parameter name -> TF variable name for one generation (``shared``: only cell 0 exists)."""
    if generation not in GENERATIONS:
        raise ValueError(f"unknown TF generation {generation!r}; choose one of {GENERATIONS}")
    prefix = scope_prefix(scope)
    cell, kernel, bias = _CELL_SCOPE[generation]
    names = {"embedding": f"{prefix}embedding"}
    for k in range(1 if shared else num_layers):
        cell_scope = f"{prefix}{rnn_scope}/{cell.format(k=k)}"
        names[f"cells.{k}.kernel"] = f"{cell_scope}/{kernel}"
        names[f"cells.{k}.bias"] = f"{cell_scope}/{bias}"
    names["softmax_w"] = f"{prefix}softmax_w"
    names["softmax_b"] = f"{prefix}softmax_b"
    return names


def find_scope(names: Iterable[str]) -> str:
    """The outer scope prefix (``"Model/"``, ``"language_model/"``, ``""``) holding ``embedding``."""
    names = list(names)
    candidates = sorted({n[:-len("embedding")] for n in names if n == "embedding" or n.endswith("/embedding")})
    if not candidates:
        sample = sorted(n for n in names if not is_bookkeeping(n))[:8]
        raise KeyError(f"no 'embedding' variable in the checkpoint (looked for '<scope>/embedding'); "
                       f"its variables include {sample}")
    if len(candidates) > 1:
        raise KeyError(f"several models in the checkpoint (embeddings under scopes "
                       f"{[c.rstrip('/') or '<top level>' for c in candidates]}); pass scope= to choose one")
    return candidates[0]


def find_cell_scopes(names: Iterable[str], prefix: str) -> Dict[int, str]:
    """Layer index -> the cell's variable scope (``<prefix>RNN/multi_rnn_cell/cell_k/basic_lstm_cell``)."""
    found: Dict[int, set] = {}
    for name in names:
        if not name.startswith(prefix) or is_bookkeeping(name):
            continue
        m = _LAYER_RE.match(name[len(prefix):])
        if m:
            scope = prefix + m.group(0).rstrip("/")
            found.setdefault(int(m.group(1)), set()).add(scope)
    scopes: Dict[int, str] = {}
    for k, options in sorted(found.items()):
        if len(options) > 1:
            raise KeyError(f"layer {k} has variables under several cell scopes {sorted(options)}; "
                           f"pass scope= to choose the model")
        scopes[k] = options.pop()
    return scopes

