"""The node kinds of a TF1 language model read from its ``.meta`` graph (:mod:`compat.frameworks.tf.model`), as
:class:`compat.convert.graph.LayerKind` records: what :func:`compat.convert.load` rebuilds and
``--emit-python`` writes.

| kind | TF ops (tensorflow/python/ops) | module |
| --- | --- | --- |
| ``Embedding`` | ``embedding_ops.embedding_lookup(params, ids)``: ``GatherV2`` / ``ResourceGather`` rows of the table | ``torch.nn.Embedding`` |
| ``Recurrent`` | the cells under ``static_rnn`` / ``dynamic_rnn`` (rnn.py), from zero states | the converted recurrent module, its output sequence in the layout the graph hands on |
| ``Rows`` | ``array_ops.reshape(x, [-1, size])`` of a ``[B, T, size]`` (``[T, B, size]``) sequence | ``x.reshape(-1, size)`` |
| ``Dense`` | ``nn_ops.xw_plus_b``, ``math_ops.matmul(x, w) + b``, ``tf.layers.dense`` (``MatMul`` + ``BiasAdd`` / ``Add``) | ``torch.nn.Linear`` (weight = w transposed) |
| ``Softmax`` | ``nn_ops.softmax`` on the last axis | ``torch.nn.Softmax(dim=-1)`` |
| ``Unflatten`` | ``array_ops.reshape(logits, [batch_size, num_steps, vocab])`` (ptb_word_lm.py) | ``x.reshape(ids.shape[0], ids.shape[1], vocab)`` |
"""
from __future__ import annotations

from typing import Dict, Optional

from torch import Tensor, nn

from compat.convert.graph import LayerKind

LAYERS: Dict[str, LayerKind] = {}
MAX_SIZE = 1 << 31


def _emitted(init, lines, weights=None, imports=()):
    from compat.frameworks.keras.layers import Emitted   # the emitter's record of a node, shared by frameworks

    return Emitted(init, lines, weights or {}, tuple(imports))


def _keys(config, error, keys):
    if sorted(config) != sorted(keys):
        raise error("", f"settings {sorted(config)}; expected {sorted(keys)}")


def _ints(config, error, *keys):
    for k in keys:
        v = config.get(k)
        if type(v) is not int or not 1 <= v <= MAX_SIZE:
            raise error(k, f"expected an integer in [1, {MAX_SIZE}], got {repr(v)[:40]}")


def _bools(config, error, *keys):
    for k in keys:
        if type(config.get(k)) is not bool:
            raise error(k, f"expected true or false, got {repr(config.get(k))[:40]}")


def kind(name: str, inputs=("ref",), recurrent: bool = False):
    def register(cls):
        LAYERS[name] = LayerKind(name, cls.check, cls.build, cls.emit, recurrent, None, inputs, {})
        cls.kind = name
        return cls
    return register


class TFRecurrent(nn.Module):
    """The converted cells as the graph runs them: from zero states, the output sequence only.

    ``batch_major_in``: the input is ``[B, T, in]`` (else ``[T, B, in]``); ``batch_major_out``: the sequence is
    handed on as ``[B, T, out]`` (else ``[T, B, out]``); the converted module's own ``batch_first`` says what it
    takes, and the sequence is transposed where they differ.
    """

    def __init__(self, rnn: Optional[nn.Module], batch_major_in: bool, batch_major_out: bool):
        super().__init__()
        if rnn is not None:
            self.rnn = rnn
        self.batch_major_in, self.batch_major_out = batch_major_in, batch_major_out

    def forward(self, x: Tensor) -> Tensor:
        first = bool(self.rnn.batch_first)
        if first != self.batch_major_in:
            x = x.transpose(0, 1)
        y = self.rnn(x)[0]
        return y.transpose(0, 1) if first != self.batch_major_out else y


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


@kind("Recurrent", recurrent=True)
class RecurrentKind:
    @staticmethod
    def check(config, error):
        _keys(config, error, ("batch_major_in", "batch_major_out"))
        _bools(config, error, "batch_major_in", "batch_major_out")

    @staticmethod
    def build(config, recurrent=None):
        return TFRecurrent(recurrent, config["batch_major_in"], config["batch_major_out"])

    @staticmethod
    def emit(config, e):
        x, out = e.args[0], e.outs[0]
        # the converted module's batch_first is in its constructor (e.recurrent_init)
        first = "batch_first=True" in (e.recurrent_init or "")
        lines = []
        if first != config["batch_major_in"]:
            lines.append(f"{x}_steps = {x}.transpose(0, 1)  # the layout the cells' module takes")
            x = f"{x}_steps"
        lines.append(f"{out} = {e.self}({x})[0]  # from zero states, as the graph's zero_state")
        if first != config["batch_major_out"]:
            lines.append(f"{out} = {out}.transpose(0, 1)  # the layout the graph hands on")
        return _emitted(e.recurrent_init, lines, e.recurrent_weights, e.recurrent_imports)


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
