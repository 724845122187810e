"""The node kinds of a TF1 language model read from its ``.meta`` graph (:mod:`compat.frameworks.tf.model`), as
:class:`compat.convert.graph.LayerKind` records: what :func:`compat.convert.load` rebuilds and
``--emit-python`` writes.

| kind | TF ops (tensorflow/python/ops) | module |
| --- | --- | --- |
| ``Embedding`` | ``embedding_ops.embedding_lookup(params, ids)``: ``GatherV2`` / ``ResourceGather`` rows of the table | ``torch.nn.Embedding`` |
| ``Recurrent`` | the cells under ``static_rnn`` / ``dynamic_rnn`` / ``bidirectional_dynamic_rnn`` (rnn.py, the two directions' outputs joined by ``concat(outputs, 2)``) / contrib's ``stack_bidirectional_dynamic_rnn`` (a layer's joined outputs the next layer's input), from zero states or a fed ``initial_state``, with ``sequence_length`` when the graph feeds it or holds it as a constant | the converted recurrent module (``lengths=`` the lengths input, or the constant ones), its output sequence in the layout the graph hands on |
| ``Concat`` | ``array_ops.concat([fw, bw], 2)`` of the two stacks of ``bidirectional_dynamic_rnn(MultiRNNCell(...), MultiRNNCell(...))`` (each direction a ``Recurrent`` node: the forward stack, and the backward one a reverse-direction module reading each sequence's valid steps reversed) | ``torch.cat(xs, dim=-1)`` |
| ``Rows`` | ``array_ops.reshape(x, [-1, size])`` of a ``[B, T, size]`` (``[T, B, size]``) sequence | ``x.reshape(-1, size)`` |
| ``Dense`` | ``nn_ops.xw_plus_b``, ``math_ops.matmul(x, w) + b``, ``tf.layers.dense`` (``MatMul`` + ``BiasAdd`` / ``Add``) | ``torch.nn.Linear`` (weight = w transposed) |
| ``Softmax`` | ``nn_ops.softmax`` on the last axis | ``torch.nn.Softmax(dim=-1)`` |
| ``Unflatten`` | ``array_ops.reshape(logits, [batch_size, num_steps, vocab])`` (ptb_word_lm.py) | ``x.reshape(ids.shape[0], ids.shape[1], vocab)`` |
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from compat.convert.graph import LayerKind, check_bools as _bools, check_ints as _ints, check_keys as _keys
from compat.convert.graph import emitted as _emitted
from compat.convert.modules import run_with_lengths

LAYERS: Dict[str, LayerKind] = {}


def kind(name: str, inputs=("ref",), recurrent: bool = False, keywords=None):
    def register(cls):
        LAYERS[name] = LayerKind(name, cls.check, cls.build, cls.emit, recurrent, None, inputs, keywords or {})
        cls.kind = name
        return cls
    return register


class TFRecurrent(nn.Module):
    """The converted cells as the graph runs them: from zero states (or ``state``, the ``initial_state`` the graph's
    placeholders feed, flattened as TF nests it: layer by layer, a bidirectional layer's forward cell then its
    backward cell; ``state`` says ``"c,h"`` a cell or ``"h"``; ``split``: the widths of those tensors where the
    graph feeds them concatenated, ``state_is_tuple=False``, to be split in that order), the output sequence only;
    with ``lengths``
    (dynamic_rnn's ``sequence_length``; ``constant_lengths`` when the graph holds them as a constant) each
    sequence's outputs are zeros past its length, as the module's ``lengths=`` gives them (a bidirectional
    module's backward direction reads each sequence's valid steps reversed, as bidirectional_dynamic_rnn's
    ``reverse_sequence`` does, in every layer of a stack; so does a reverse-direction module, the backward
    MultiRNNCell of a ``bidirectional_dynamic_rnn`` run whole).

    ``batch_major_in``: the input is ``[B, T, in]`` (else ``[T, B, in]``); ``batch_major_out``: the sequence is
    handed on as ``[B, T, out]`` (else ``[T, B, out]``); the converted module's own ``batch_first`` says what it
    takes, and the sequence is transposed where they differ.
    """

    def __init__(self, rnn: Optional[nn.Module], batch_major_in: bool, batch_major_out: bool, state: str = "",
                 constant_lengths: Optional[List[int]] = None, split: Optional[List[int]] = None):
        super().__init__()
        if rnn is not None:
            self.rnn = rnn
        self.batch_major_in, self.batch_major_out, self.state = batch_major_in, batch_major_out, state
        self.constant_lengths, self.split = constant_lengths, split

    def forward(self, x: Tensor, lengths: Optional[Tensor] = None, state: Optional[List[Tensor]] = None) -> Tensor:
        first = bool(self.rnn.batch_first)
        if first != self.batch_major_in:
            x = x.transpose(0, 1)
        if state is not None and self.split is not None:
            state = _split(state, self.split)
        hx = None if state is None else _hx(state, self.state)
        if lengths is None and self.constant_lengths is not None:
            lengths = torch.tensor(self.constant_lengths, device=x.device)
        y = self.rnn(x, hx)[0] if lengths is None else _with_lengths(self.rnn, x, lengths, first, hx)
        return y.transpose(0, 1) if first != self.batch_major_out else y


def _split(state: List[Tensor], widths: List[int]) -> List[Tensor]:
    """A state fed concatenated (``state_is_tuple=False``: MultiRNNCell.call slices layer k's columns after the
    layers below it, an LSTM cell's ``[c, h]`` split in two; Keras's legacy_rnn/rnn_cell_impl.py) as the tensors
    ``nest.flatten`` lists for a tuple state, ``widths`` their widths."""
    whole = torch.cat(list(state), dim=1)
    if whole.shape[1] != sum(widths):
        raise ValueError(f"the initial state has {whole.shape[1]} columns; the cells' states concatenated have "
                         f"{sum(widths)}")
    return list(whole.split(widths, dim=1))


def _hx(state: List[Tensor], layout: str):
    """The ``initial_state`` as ``nest.flatten`` lists it (per cell ``c, h`` for an LSTMStateTuple, ``h`` for a GRU
    or basic RNN cell; the cells layer by layer, a bidirectional layer's forward then backward, as torch orders its
    directions) in torch's ``(h0, c0)`` / ``h0``, ``[layers * directions, B, .]``."""
    if layout == "c,h":
        return torch.stack(list(state[1::2])), torch.stack(list(state[0::2]))
    return torch.stack(list(state))


def _with_lengths(rnn: nn.Module, x: Tensor, lengths: Tensor, batch_first: bool, hx=None) -> Tensor:
    """The output sequence of ``rnn`` on ``x`` as dynamic_rnn(sequence_length=lengths) gives it (python/ops/rnn.py
    ``_rnn_step``: a step at or past a sequence's length outputs zeros and keeps the state). The loop runs
    ``min(steps, max(lengths))`` steps, so a length past the steps is the steps, and one below 1 outputs zeros
    only: the lengths are clipped to [0, steps]. ``torch.nn`` modules run packed (a length 0 packed as 1, its
    output zeroed), the converter's own modules take ``lengths=``."""
    steps = x.shape[1 if batch_first else 0]
    lengths = torch.as_tensor(lengths, device=x.device).long().clamp(0, steps)
    if lengths.shape != (x.shape[0 if batch_first else 1],):
        raise ValueError(f"sequence_length has shape {list(lengths.shape)}; the batch is {x.shape[0 if batch_first else 1]}")
    # a length of 0 runs as 1 (packing takes no empty sequence); its outputs are zeroed below
    y = run_with_lengths(rnn, x, hx, lengths.clamp(min=1) if isinstance(rnn, nn.RNNBase) else lengths)[0]
    valid = torch.arange(steps, device=x.device)[None, :] < lengths[:, None]      # [B, T]
    return torch.where((valid if batch_first else valid.T)[..., None], y, torch.zeros((), dtype=y.dtype))


class Concat(nn.Module):
    """``tf.concat(values, axis)`` on the last axis of the sequences (``axis`` 2 of ``[B, T, .]`` / ``[T, B, .]``)."""

    def forward(self, xs: List[Tensor]) -> Tensor:
        return torch.cat(list(xs), dim=-1)


class Rows(nn.Module):
    """``tf.reshape(x, [-1, size])``."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(-1, self.size)


class Unflatten(nn.Module):
    """``tf.reshape(x, [batch_size, num_steps, size])`` with the two leading sizes those of the ids fed."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: Tensor, ids: Tensor) -> Tensor:
        return x.reshape(ids.shape[0], ids.shape[1], self.size)


@kind("Embedding")
class EmbeddingKind:
    """``embedding_lookup``: the table's rows by id (an id outside the table is an error in both)."""

    @staticmethod
    def check(config, error):
        _keys(config, error, ("num_embeddings", "embedding_dim"))
        _ints(config, error, "num_embeddings", "embedding_dim")

    @staticmethod
    def build(config, recurrent=None):
        return nn.Embedding(config["num_embeddings"], config["embedding_dim"])

    @staticmethod
    def emit(config, e):
        return _emitted(f"nn.Embedding({config['num_embeddings']}, {config['embedding_dim']})",
                        [f"{e.outs[0]} = {e.self}({e.args[0]})"])


@kind("Recurrent", inputs=("ref", "ref?"), recurrent=True, keywords={"state": "list"})
class RecurrentKind:
    @staticmethod
    def check(config, error):
        _keys(config, error, ("batch_major_in", "batch_major_out") + tuple(k for k in ("state", "lengths", "split")
                                                                             if k in config))
        _bools(config, error, "batch_major_in", "batch_major_out")
        if config.get("state", "c,h") not in ("c,h", "h"):
            raise error("state", f"expected 'c,h' or 'h', got {repr(config['state'])[:40]}")
        lengths = config.get("lengths", [0])
        if not isinstance(lengths, list) or not lengths or len(lengths) > 2 ** 20 \
                or any(type(v) is not int or not 0 <= v <= 2 ** 31 - 1 for v in lengths):
            raise error("lengths", f"expected a list of sequence lengths (integers from 0), got {repr(lengths)[:40]}")
        split = config.get("split", [1])
        if "split" in config and "state" not in config or not isinstance(split, list) or not split \
                or len(split) > 2 ** 16 or any(type(v) is not int or not 0 < v <= 2 ** 31 - 1 for v in split):
            raise error("split", f"expected the widths of the state's parts (positive integers) with a state, got "
                                 f"{repr(split)[:40]}")

    @staticmethod
    def build(config, recurrent=None):
        return TFRecurrent(recurrent, config["batch_major_in"], config["batch_major_out"], config.get("state", ""),
                           config.get("lengths"), config.get("split"))

    @staticmethod
    def emit(config, e):
        x, out = e.args[0], e.outs[0]
        # the converted module's batch_first is in its constructor (e.recurrent_init)
        first = "batch_first=True" in (e.recurrent_init or "")
        lines = []
        hx = ""
        if "state" in e.kw:     # dynamic_rnn's initial_state, flattened as TF nests it, in torch's layout
            flat = e.kw["state"]
            hx = f", {out}_hx"
            if "split" in config:
                lines.append(f"{out}_parts = list(torch.cat({flat}, dim=1).split({config['split']}, dim=1))  # the "
                             "state fed concatenated (state_is_tuple=False), as its tensors")
                flat = f"{out}_parts"
            lines.append(f"{out}_hx = (torch.stack({flat}[1::2]), torch.stack({flat}[0::2]))  # (h0, c0) from c, h a layer"
                         if config.get("state") == "c,h" else f"{out}_hx = torch.stack({flat})  # h0")
        if first != config["batch_major_in"]:
            lines.append(f"{x}_steps = {x}.transpose(0, 1)  # the layout the cells' module takes")
            x = f"{x}_steps"
        n = e.args[1] if len(e.args) > 1 else None
        if "lengths" in config:   # sequence_length a constant of the graph
            n = f"{out}_lengths"
            lines.append(f"{n} = torch.tensor({config['lengths']}, device={x}.device)  # the graph's constant "
                         "sequence_length")
        if n is not None:     # sequence_length: TFRecurrent's _with_lengths, written out
            t = 1 if first else 0
            lines.append(f"{n}_steps = {n}.long().clamp(0, {x}.shape[{t}])  # dynamic_rnn's sequence_length, "
                         "clipped to the steps it runs")
            if (e.recurrent_init or "").startswith(("nn.LSTM(", "nn.GRU(", "nn.RNN(")):
                lines.append(f"{out} = nn.utils.rnn.pack_padded_sequence({x}, {n}_steps.clamp(min=1).cpu(), "
                             f"batch_first={first}, enforce_sorted=False)")
                lines.append(f"{out} = nn.utils.rnn.pad_packed_sequence({e.self}({out}{hx})[0], batch_first={first}, "
                             f"total_length={x}.shape[{t}])[0]" + ("" if hx else "  # from zero states"))
            else:
                lines.append(f"{out} = {e.self}({x}{hx or ', None'}, lengths={n}_steps)[0]")
            lines.append(f"{out} = torch.where((torch.arange({x}.shape[{t}], device={x}.device)[None, :] < "
                         f"{n}_steps[:, None]){'' if first else '.T'}[..., None], {out}, "
                         f"torch.zeros((), dtype={out}.dtype))  # zeros past each length")
        else:
            lines.append(f"{out} = {e.self}({x}{hx})[0]" + ("" if hx else "  # from zero states, as the graph's zero_state"))
        if first != config["batch_major_out"]:
            lines.append(f"{out} = {out}.transpose(0, 1)  # the layout the graph hands on")
        return _emitted(e.recurrent_init, lines, e.recurrent_weights, e.recurrent_imports)


@kind("Concat", inputs=("list",))
class ConcatKind:
    @staticmethod
    def check(config, error):
        _keys(config, error, ())

    @staticmethod
    def build(config, recurrent=None):
        return Concat()

    @staticmethod
    def emit(config, e):
        return _emitted(None, [f"{e.outs[0]} = torch.cat({e.args[0]}, dim=-1)  # tf.concat(outputs, 2)"])


@kind("Rows")
class RowsKind:
    @staticmethod
    def check(config, error):
        _keys(config, error, ("size",))
        _ints(config, error, "size")

    @staticmethod
    def build(config, recurrent=None):
        return Rows(config["size"])

    @staticmethod
    def emit(config, e):
        return _emitted(None, [f"{e.outs[0]} = {e.args[0]}.reshape(-1, {config['size']})"])


@kind("Dense")
class DenseKind:
    """``x @ w + b`` on ``[N, in]`` rows: ``torch.nn.Linear`` holding ``w`` transposed."""

    @staticmethod
    def check(config, error):
        _keys(config, error, ("in_features", "out_features", "bias"))
        _ints(config, error, "in_features", "out_features")
        _bools(config, error, "bias")

    @staticmethod
    def build(config, recurrent=None):
        return nn.Linear(config["in_features"], config["out_features"], bias=config["bias"])

    @staticmethod
    def emit(config, e):
        bias = "" if config["bias"] else ", bias=False"
        return _emitted(f"nn.Linear({config['in_features']}, {config['out_features']}{bias})",
                        [f"{e.outs[0]} = {e.self}({e.args[0]})"])


@kind("Softmax")
class SoftmaxKind:
    @staticmethod
    def check(config, error):
        _keys(config, error, ())

    @staticmethod
    def build(config, recurrent=None):
        return nn.Softmax(dim=-1)

    @staticmethod
    def emit(config, e):
        return _emitted(None, [f"{e.outs[0]} = torch.softmax({e.args[0]}, dim=-1)"])


@kind("Unflatten", inputs=("ref", "ref"))
class UnflattenKind:
    @staticmethod
    def check(config, error):
        _keys(config, error, ("size",))
        _ints(config, error, "size")

    @staticmethod
    def build(config, recurrent=None):
        return Unflatten(config["size"])

    @staticmethod
    def emit(config, e):
        return _emitted(None, [f"{e.outs[0]} = {e.args[0]}.reshape({e.args[1]}.shape[0], {e.args[1]}.shape[1], "
                               f"{config['size']})"])
