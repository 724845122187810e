"""Keras's generic ``RNN`` layer over its built-in cells, read as the recurrent layers the converter knows.

``RNN(LSTMCell(...))``, ``RNN(GRUCell(...))`` and ``RNN(SimpleRNNCell(...))`` run exactly as ``LSTM``,
``GRU`` and ``SimpleRNN`` with the cell's settings (tf-keras ``layers/rnn/lstm.py``, ``gru.py``,
``simple_rnn.py``: each layer is an ``RNN`` over its cell; Keras 3 ``keras/src/layers/rnn/lstm.py``, ``gru.py``,
``simple_rnn.py`` the same): the layer's settings (``return_sequences``, ``return_state``, ``go_backwards``,
``stateful``, ``unroll``, ``time_major``, ``zero_output_for_mask``) beside the cell's (``units``, ``activation``,
``recurrent_activation``, ``use_bias``, ``reset_after``, dropouts). The weights are the cell's: tf-keras ``.h5``
``rnn/lstm_cell/kernel:0``, Keras 3 ``.keras`` ``layers/rnn/cell/vars``.

``RNN(StackedRNNCells([c1, c2, ...]))`` (``RNN([c1, c2])`` builds the same) runs the cells one after the other
at each step (tf-keras ``layers/rnn/stacked_rnn_cells.py`` ``StackedRNNCells.call``; Keras 3
``keras/src/layers/rnn/stacked_rnn_cells.py``), which equals running each cell over the whole sequence and feeding
its output sequence to the next: at a masked step every cell keeps its states (``backend.rnn`` selects the
previous states of the whole stack), so a cell's output there never reaches the next cell's states. Its
states are per cell, in order: ``return_state=True`` returns the last cell's output, then ``[h, c]`` of an
``LSTMCell`` or ``h`` of a ``GRUCell`` / ``SimpleRNNCell`` for each cell (nested per cell in Keras; flat here).
The weights are each cell's: ``.h5`` ``rnn/stacked_rnn_cells/<cell name>/...``, ``.keras``
``layers/rnn/cell/cells/<cell class in snake case>[_n]/vars``.

Refused by name: a cell that is not one of the built-in three (its code is not in the file), a
``StackedRNNCells`` running ``go_backwards``, inside ``Bidirectional``, called with ``initial_state`` or written by
standalone Keras before 2.3 (whose stacks ordered their states in reverse). Inside a nested model or called
more than once (a shared layer) an ``RNN`` over these cells converts whole as any layer does
(:mod:`compat.frameworks.keras.model`).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

# the built-in cell -> the recurrent layer that is an RNN over it
BUILT_IN = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}
# the RNN layer's own settings; every other setting of the merged configuration is the cell's
LAYER_KEYS = ("name", "trainable", "dtype", "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
              "time_major", "zero_output_for_mask", "batch_input_shape", "batch_shape", "input_dim", "input_length")


class Cell:
    """One built-in cell of an ``RNN`` layer: its class, the layer class it runs as, and the merged
    configuration (the cell's settings, the layer's settings and name)."""

    def __init__(self, cls: str, name: str, config: dict, path: str):
        self.cls, self.name, self.config, self.path = cls, name, config, path
        self.layer = BUILT_IN[cls]


def _kind(entry) -> Tuple[str, dict]:
    if not isinstance(entry, dict):
        return type(entry).__name__, {}
    cfg = entry.get("config")
    return str(entry.get("class_name", "")), cfg if isinstance(cfg, dict) else {}


def cells(cfg: dict) -> Tuple[Optional[List[Cell]], bool, str]:
    """(the cells of an ``RNN`` layer's configuration ``cfg``, whether they are a ``StackedRNNCells``, "") or
    (None, False, why the layer is not converted). Each cell's ``path``: where Keras 3 keeps its variables
    under the layer's (``cell`` or ``cell/cells/<snake name>[_n]``)."""
    cell = cfg.get("cell")
    stacked = isinstance(cell, list)
    entries = cell if stacked else [cell]
    cls, ccfg = _kind(cell)
    if cls == "StackedRNNCells":
        stacked, entries = True, ccfg.get("cells")
        if not isinstance(entries, list) or not entries:
            return None, True, "an RNN over a StackedRNNCells without cells"
    from compat.frameworks.keras.discover import _snake

    out: List[Cell] = []
    counters: dict = {}
    for entry in entries:
        kind, ecfg = _kind(entry)
        module = entry.get("module") if isinstance(entry, dict) else None
        registered = entry.get("registered_name") if isinstance(entry, dict) else None
        if kind in BUILT_IN and ((isinstance(module, str) and module.split(".")[0] not in ("keras", "tf_keras"))
                                 or registered not in (None, kind)):
            # a class of the user's named like a built-in cell (Keras 3 and tf-keras record its module and its
            # registered name "package>Name"; keras.saving.register_keras_serializable)
            return None, stacked, (f"an RNN over a cell {kind!r} of module {str(module)[:80]!r} (registered as "
                                   f"{str(registered)[:80]!r}): a custom cell's code is not in the file")
        if kind not in BUILT_IN:
            return None, stacked, (f"an RNN over a {kind[:80] or 'cell'!r} cell: only Keras's built-in cells "
                                   f"({', '.join(BUILT_IN)}, StackedRNNCells of them) are converted; a custom "
                                   "cell's code is not in the file")
        key = _snake(kind)
        n = counters.get(key, 0)
        counters[key] = n + 1
        path = f"cell/cells/{key}" + (f"_{n}" if n else "") if stacked else "cell"
        merged = {k: v for k, v in ecfg.items() if k not in ("name", "trainable", "dtype")}
        merged.update({k: v for k, v in cfg.items() if k != "cell"})
        out.append(Cell(kind, str(ecfg.get("name") or key), merged, path))
    return out, stacked, ""


def stack_refusal(cfg: dict, version: Tuple[int, int], tf_keras: bool) -> str:
    """Why an ``RNN(StackedRNNCells)`` with ``cfg`` is not converted ("" when it is)."""
    if cfg.get("go_backwards"):
        return "an RNN(StackedRNNCells) with go_backwards=True is not converted yet"
    if version < (2, 3) and not tf_keras:
        return (f"an RNN(StackedRNNCells) of Keras {version[0]}.{version[1]}: its stacks' state order is not read; "
                "converted from Keras 2.3, tf.keras and Keras 3")
    return ""


def stacked_name(layer: str, cell: Cell) -> str:
    """The converted recurrent layer of one cell of the stack ``layer``."""
    return f"{layer}/{cell.name}"


def as_layer(cls: str, cfg: dict) -> Tuple[str, dict]:
    """An ``RNN`` over one built-in cell as the layer it runs as (class, merged configuration); ``Bidirectional``
    around one, its ``layer`` and ``backward_layer`` so; any other layer unchanged."""
    if cls == "RNN":
        found, stacked, _ = cells(cfg)
        if found and not stacked:
            return found[0].layer, dict(found[0].config, name=cfg.get("name"))
        return cls, cfg
    if cls == "Bidirectional":
        out = dict(cfg)
        for key in ("layer", "backward_layer"):
            inner = cfg.get(key)
            if isinstance(inner, dict) and inner.get("class_name") == "RNN":
                icls, icfg = as_layer("RNN", inner.get("config") if isinstance(inner.get("config"), dict) else {})
                out[key] = dict(inner, class_name=icls, config=icfg)
        return cls, out
    return cls, cfg
