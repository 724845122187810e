"""A converted recurrent layer run as Keras calls it inside a model: :class:`KerasRNN`.

The recurrent converter (:mod:`compat.frameworks.keras.discover`) turns a Keras ``LSTM``, ``CuDNNLSTM`` or
``Bidirectional`` into one module that returns ``(output sequence, (h_n, c_n))``
(:class:`compat.convert.modules.KerasLSTM`, ``torch.nn.LSTM`` or :class:`compat.lstm.LSTM`), and a ``GRU``,
``CuDNNGRU`` or ``SimpleRNN`` (:mod:`compat.frameworks.keras.gru`) into one that returns ``(output, h_n)``
(``torch.nn.GRU`` / ``RNN``, ``compat.gru.GRU``, ``compat.simple_rnn.RNN``; ``states=1``). Inside a model
the layer returns what Keras returns (keras ``recurrent.py`` ``RNN.call``, ``wrappers.py``
``Bidirectional.call``; tf-keras ``base_rnn.py``, ``bidirectional.py``; Keras 3 ``rnn.py``,
``bidirectional.py``):

- ``return_sequences=False``: the last output: ``output[:, -1]`` (for ``go_backwards`` the last step read,
  which is the last of Keras's reversed output); a ``Bidirectional``'s backward half returns the output
  after reading the whole sequence back to front, i.e. the backward sequence's step 0;
- ``return_state=True``: then ``h`` and ``c`` (a ``Bidirectional``: ``h_fw, c_fw, h_bw, c_bw``);
- ``Bidirectional(merge_mode=None)``: the two halves as two outputs (then the states);
- ``initial_state=[h, c]`` (``[h_fw, c_fw, h_bw, c_bw]``; a GRU's ``[h]``, ``[h_fw, h_bw]``) and ``mask`` are the
  layer's inputs;
- ``stateful=True`` (keras ``RNN.call``, ``reset_states``): a call without ``initial_state`` starts from the
  previous call's final states, zeros after :meth:`KerasRNN.reset_states` (and at first).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

MERGES = ("concat", "sum", "mul", "ave", None)
CONFIG = ("return_sequences", "return_state", "bidirectional", "merge_mode", "units")
# written for GRUs and simple RNNs (states=1: h only) and stateful layers; absent: an LSTM (h, c), not stateful
OPTIONAL = ("states", "stateful")


def check_config(config: dict, error) -> None:
    unknown = sorted(set(config) - set(CONFIG) - set(OPTIONAL))
    missing = sorted(set(CONFIG) - set(config))
    if unknown or missing:
        raise error("", f"unknown settings {unknown}" if unknown else f"missing settings {missing}")
    if config.get("states", 2) not in (1, 2) or type(config.get("states", 2)) is not int:
        raise error("states", f"{config['states']!r}: 1 (GRU, SimpleRNN) or 2 (LSTM)")
    if type(config.get("stateful", False)) is not bool:
        raise error("stateful", f"expected true or false, got {config['stateful']!r}")
    for key in ("return_sequences", "return_state", "bidirectional"):
        if type(config[key]) is not bool:
            raise error(key, f"expected true or false, got {config[key]!r}")
    if config["merge_mode"] not in MERGES:
        raise error("merge_mode", f"{config['merge_mode']!r} is not one of {list(MERGES)}")
    if config["merge_mode"] != "concat" and not config["bidirectional"]:
        raise error("merge_mode", "merges the halves of a Bidirectional only")
    if type(config["units"]) is not int or not 1 <= config["units"] <= 1 << 24:
        raise error("units", f"{config['units']!r}")


def merge(fw: Tensor, bw: Tensor, mode: Optional[str]):
    if mode == "concat":
        return torch.cat([fw, bw], -1)
    if mode == "sum":
        return fw + bw
    if mode == "mul":
        return fw * bw
    if mode == "ave":
        return (fw + bw) / 2
    return fw, bw


class KerasRNN(nn.Module):
    """A Keras recurrent layer's outputs from its converted module (see the module docstring).

    Args:
        rnn: the converted module (``forward(x, hx) -> (y, (h_n, c_n))``, batch-first; with ``mask=`` when it
            is a :class:`compat.convert.modules.KerasLSTM`); None builds the adapter alone.
        return_sequences, return_state: the Keras layer's settings.
        bidirectional: a ``Bidirectional``; ``merge_mode``: its merge (None: two outputs). A bidirectional
            ``rnn`` returns ``concat(forward, backward)`` on the feature axis.
        units: the layer's width (each direction's).

    Inputs: x ``[B, T, in]``; ``mask`` ``[B, T]`` (nonzero at the steps that count), ``initial_state`` a list
    of ``[B, units]`` tensors in Keras's order.
    Outputs: the list Keras returns.
    """

    def __init__(self, rnn: Optional[nn.Module], return_sequences: bool, return_state: bool, bidirectional: bool,
                 merge_mode: Optional[str], units: int, states: int = 2, stateful: bool = False):
        super().__init__()
        if rnn is not None:
            self.rnn = rnn
        self.return_sequences, self.return_state = return_sequences, return_state
        self.bidirectional, self.merge_mode, self.units = bidirectional, merge_mode, units
        self.states, self.stateful = states, stateful
        # stateful=True (keras RNN.call, reset_states): the final states of one call, the next call's initial states
        self.carried: Optional[Sequence[Tensor]] = None

    def reset_states(self) -> None:
        """Start the next call from zeros (Keras's ``layer.reset_states()``)."""
        self.carried = None

    def forward(self, x: Tensor, mask: Optional[Tensor] = None, initial_state: Optional[Sequence[Tensor]] = None
                ) -> List[Tensor]:
        hx = None
        if initial_state is None and self.stateful and self.carried is not None:
            initial_state = self.carried
        if initial_state is not None:
            s = list(initial_state)
            if self.states == 1:
                hx = torch.stack([s[0], s[1]]) if self.bidirectional else s[0].unsqueeze(0)
            elif self.bidirectional:
                hx = (torch.stack([s[0], s[2]]), torch.stack([s[1], s[3]]))
            else:
                hx = (s[0].unsqueeze(0), s[1].unsqueeze(0))
        if mask is not None:
            y, state = self.rnn(x, hx, mask=mask, merge=False) if self._merges_itself() else self.rnn(x, hx, mask=mask)
        else:
            y, state = self.rnn(x, hx, merge=False) if self._merges_itself() else self.rnn(x, hx)
        h, c = (state, None) if self.states == 1 else state
        if self.bidirectional:
            fw, bw = y[..., :self.units], y[..., self.units:]
            if not self.return_sequences:
                fw, bw = fw[:, -1], bw[:, 0]
            out = merge(fw, bw, self.merge_mode)
            outs = list(out) if isinstance(out, tuple) else [out]
            states = [h[0], h[1]] if self.states == 1 else [h[0], c[0], h[1], c[1]]
        else:
            outs = [y if self.return_sequences else y[:, -1]]
            states = [h[0]] if self.states == 1 else [h[0], c[0]]
        if self.stateful:
            self.carried = [s.detach() for s in states]
        return outs + states if self.return_state else outs

    def _merges_itself(self) -> bool:
        from compat.convert.modules import KerasGRU, KerasLSTM, KerasSimpleRNN

        return self.bidirectional and isinstance(self.rnn, (KerasLSTM, KerasGRU, KerasSimpleRNN))

    def extra_repr(self) -> str:
        s = f"return_sequences={self.return_sequences}, return_state={self.return_state}"
        if self.stateful:
            s += ", stateful=True"
        if self.bidirectional:
            s += f", merge_mode={self.merge_mode!r}"
        return s


def emit(config: dict, e):
    """The layer as Python: the converted module's call, then Keras's selection of outputs."""
    from compat.convert.graph import Emitted

    x, outs = e.args[0], list(e.outs)
    y = f"{outs[0]}_seq"
    call = [x]
    state = e.kw.get("initial_state")
    lines = []
    one = config.get("states", 2) == 1
    if config.get("stateful"):
        lines.append("# stateful=True in Keras: pass the previous call's final states as initial_state to carry them")
    if state is not None and one:
        s = state.strip("[]").split(", ")
        lines.append(f"{y}_hx = torch.stack([{s[0]}, {s[1]}])  # Keras's [h_fw, h_bw]" if config["bidirectional"]
                     else f"{y}_hx = {s[0]}.unsqueeze(0)  # Keras's [h]")
        call.append(f"{y}_hx")
    elif state is not None:
        s = state.strip("[]").split(", ")
        if config["bidirectional"]:
            lines.append(f"{y}_hx = (torch.stack([{s[0]}, {s[2]}]), torch.stack([{s[1]}, {s[3]}]))  # Keras's "
                         "[h_fw, c_fw, h_bw, c_bw]")
        else:
            lines.append(f"{y}_hx = ({s[0]}.unsqueeze(0), {s[1]}.unsqueeze(0))  # Keras's [h, c]")
        call.append(f"{y}_hx")
    keras_module = e.recurrent_module in ("compat.convert.modules.KerasLSTM", "compat.convert.modules.KerasGRU",
                                          "compat.convert.modules.KerasSimpleRNN")
    if "mask" in e.kw:
        call.append(f"mask={e.kw['mask']}")
    if config["bidirectional"] and keras_module:
        call.append("merge=False")
    lines.append(f"{y}, {y}_h = {e.self}({', '.join(call)})" if one else
                 f"{y}, ({y}_h, {y}_c) = {e.self}({', '.join(call)})")
    H = config["units"]
    if config["bidirectional"]:
        fw, bw = f"{y}[..., :{H}]", f"{y}[..., {H}:]"
        if not config["return_sequences"]:
            fw, bw = f"{fw.replace('[...', '[:, -1')}", f"{bw.replace('[...', '[:, 0')}"
            lines.append("# the forward half's last step; the backward half's output after reading back to step 0")
        mode = config["merge_mode"]
        merged = {"concat": f"torch.cat([{fw}, {bw}], -1)", "sum": f"{fw} + {bw}", "mul": f"{fw} * {bw}",
                  "ave": f"({fw} + {bw}) / 2"}.get(mode)
        if mode is None:
            lines.append(f"{outs[0]}, {outs[1]} = {fw}, {bw}  # merge_mode=None: both halves")
            rest = outs[2:]
        else:
            lines.append(f"{outs[0]} = {merged}  # merge_mode={mode!r}")
            rest = outs[1:]
        if config["return_state"]:
            lines.append(f"{', '.join(rest)} = {y}_h[0], {y}_h[1]" if one else
                         f"{', '.join(rest)} = {y}_h[0], {y}_c[0], {y}_h[1], {y}_c[1]")
    else:
        lines.append(f"{outs[0]} = {y}" + ("" if config["return_sequences"] else "[:, -1]  # return_sequences=False"))
        if config["return_state"]:
            lines.append(f"{outs[1]} = {y}_h[0]" if one else f"{outs[1]}, {outs[2]} = {y}_h[0], {y}_c[0]")
    return Emitted(e.recurrent_init, lines, e.recurrent_weights, e.recurrent_imports)
