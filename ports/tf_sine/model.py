"""The book's ``lstm_model(X, y)`` on the shared LSTM core.

Graph of the original (the model_fn handed to ``learn.Estimator``)::

    cell = MultiRNNCell([BasicLSTMCell(HIDDEN_SIZE) for _ in range(NUM_LAYERS)])   # forget_bias 1.0
    output, _ = tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)                       # zero initial state
    output = tf.reshape(output, [-1, HIDDEN_SIZE])
    predictions = tf.contrib.layers.fully_connected(output, 1, None)                # no activation
    labels = tf.reshape(y, [-1]);  predictions = tf.reshape(predictions, [-1])
    loss = tf.losses.mean_squared_error(predictions, labels)

X is ``[B, 1, TIMESTEPS]``, so ``dynamic_rnn`` runs one step over TIMESTEPS features: each LSTM starts
from zero and never sees its own state again, and the model is a two-layer gated feed-forward net. With
``Config.input_layout = "steps"`` X is read as ``[B, TIMESTEPS, 1]`` and the last step's output is
regressed (the book's later edition does that with ``outputs[:, -1, :]``).

Variables, as TF names them and initialises them::

    rnn/multi_rnn_cell/cell_k/basic_lstm_cell/kernel  [in + H, 4H]  Glorot uniform (get_variable's default)
    rnn/multi_rnn_cell/cell_k/basic_lstm_cell/bias    [4H]          zeros
    fully_connected/weights                           [H, 1]        xavier_initializer(): Glorot uniform
    fully_connected/biases                            [1]           zeros

(TF 1.0 and 1.1 name the cell's variables ``weights`` and ``biases``: :func:`tf_variable_names`.) The cells
are :class:`compat.seq2seq.BasicLSTMCell` (TF's kernel and bias, gates i, j, f, o, the forget bias added at
run time); the stack runs in one call of :func:`compat.lstm.lstm` on their canonical weights.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compat.errors import FileFormatError
from compat.lstm import lstm
from compat.seq2seq import BasicLSTMCell

from .config import Config

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# TF generation -> (the cell's kernel name, its bias name) under rnn/multi_rnn_cell/cell_k/basic_lstm_cell
TF_GENERATIONS = {"1.2": ("kernel", "bias"), "1.0": ("weights", "biases")}


class TFVariableError(FileFormatError, KeyError):
    """A TF variable that is missing or does not fit the model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FullyConnected(nn.Module):
    """``tf.contrib.layers.fully_connected(inputs, num_outputs, activation_fn=None)``: ``inputs @ weights +
    biases`` with ``weights`` [in, out] from ``xavier_initializer()`` (uniform, limit sqrt(6 / (in + out)):
    contrib/layers initializers.py ``variance_scaling_initializer(factor=1.0, mode='FAN_AVG',
    uniform=True)``) and zero ``biases``."""

    def __init__(self, in_features: int, out_features: int, *, dtype=None, device=None,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        self.weights = nn.Parameter(torch.empty(in_features, out_features, dtype=dtype, device=device))
        self.biases = nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device))
        limit = math.sqrt(6.0 / (in_features + out_features))
        with torch.no_grad():
            self.weights.uniform_(-limit, limit, generator=generator)

    def forward(self, inputs: Tensor) -> Tensor:
        return torch.addmm(self.biases, inputs, self.weights)


def tf_variable_names(num_layers: int, generation: str = "1.2") -> Dict[str, str]:
    """state_dict key -> the TF variable it holds, for ``generation`` "1.2" (TF >= 1.2) or "1.0" (1.0, 1.1)."""
    if generation not in TF_GENERATIONS:
        raise ValueError(f"generation must be one of {sorted(TF_GENERATIONS)}, not {generation!r}")
    kernel, bias = TF_GENERATIONS[generation]
    names = {}
    for k in range(num_layers):
        scope = f"rnn/multi_rnn_cell/cell_{k}/basic_lstm_cell"
        names[f"cells.{k}.kernel"] = f"{scope}/{kernel}"
        names[f"cells.{k}.bias"] = f"{scope}/{bias}"
    names["fully_connected.weights"] = "fully_connected/weights"
    names["fully_connected.biases"] = "fully_connected/biases"
    return names


class SineLSTM(nn.Module):
    """``lstm_model``: ``SineLSTM(config)``; ``model(X)`` -> predictions [B]; ``model.loss(X, y)``.

    Parameters are created in TF's order (cell 0, cell 1, ..., fully_connected), drawing from
    ``generator`` in that order; ``parameters()`` is ``tf.trainable_variables()``'s order.
    """

    def __init__(self, config: Config, *, device=None, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.config = config
        H = config.hidden_size
        factory = dict(dtype=TORCH_DTYPES[config.dtype], device=device)
        sizes = [config.input_size] + [H] * (config.num_layers - 1)
        self.cells = nn.ModuleList(BasicLSTMCell(H, n_in, config.forget_bias, generator=generator, **factory)
                                   for n_in in sizes)
        self.fully_connected = FullyConnected(H, 1, generator=generator, **factory)

    def _sequence(self, X: Tensor) -> Tensor:
        """X [B, 1, TIMESTEPS] as dynamic_rnn reads it, time-major: [1, B, TIMESTEPS] or [TIMESTEPS, B, 1]."""
        cfg = self.config
        if X.dim() != 3 or X.shape[1] * X.shape[2] != cfg.timesteps:
            raise ValueError(f"X has shape {list(X.shape)}; expected [batch, 1, {cfg.timesteps}] as generate_data "
                             f"makes it")
        if cfg.input_layout == "features":
            return X.reshape(X.shape[0], 1, cfg.timesteps).transpose(0, 1)
        return X.reshape(X.shape[0], cfg.timesteps, 1).transpose(0, 1)

    def forward(self, X: Tensor) -> Tensor:
        """predictions [B]: the LSTM stack over X from zero states, its output through fully_connected."""
        seq = self._sequence(X)
        out, _ = lstm(seq, [cell.canonical_weights() for cell in self.cells])
        # reshape(output, [-1, H]) of the one step; the ten-step reading regresses the last step.
        output = out[0] if self.config.input_layout == "features" else out[-1]
        return self.fully_connected(output).reshape(-1)

    def loss(self, X: Tensor, y: Tensor) -> Tensor:
        """``tf.losses.mean_squared_error(predictions, reshape(y, [-1]))``: the mean of the squared errors.

        TF computes it in float32 whatever the model's dtype (losses_impl.py ``mean_squared_error``:
        ``predictions = math_ops.to_float(predictions)``, the same for the labels): in a float64 model the
        loss, and its gradient up to the predictions, carry float32 rounding. ``Config.loss_in_float32 =
        False`` computes it in the model's dtype instead."""
        predictions, labels = self(X), y.reshape(-1)
        if self.config.loss_in_float32:
            predictions, labels = predictions.float(), labels.float()
        return F.mse_loss(predictions, labels)

    # -- TF variables ----------------------------------------------------------------------------
    def tf_variables(self, generation: str = "1.2") -> Dict[str, Tensor]:
        """The live parameters under their TF names."""
        params = dict(self.named_parameters())
        return {tf_name: params[key] for key, tf_name in tf_variable_names(self.config.num_layers, generation).items()}

    def load_tf_variables(self, variables: Mapping[str, object]) -> List[str]:
        """Copy the model's variables from a name -> array mapping (TF >= 1.2 or 1.0 names, ``:0`` suffixes
        allowed; optimizer slots and the global step ignored). Raises :class:`TFVariableError` naming a
        missing variable or a wrong shape. Returns the names used."""
        names = {(k[:-2] if k.endswith(":0") else k): v for k, v in variables.items()}
        params = dict(self.named_parameters())
        chosen = None
        for generation in TF_GENERATIONS:
            table = tf_variable_names(self.config.num_layers, generation)
            if all(n in names for n in table.values()):
                chosen = table
                break
        if chosen is None:
            table = tf_variable_names(self.config.num_layers)
            missing = [n for n in table.values() if n not in names]
            raise TFVariableError(f"variables {missing} not found; the mapping holds {sorted(names)[:8]}")
        arrays = {}
        for key, tf_name in chosen.items():
            value = names[tf_name]
            arr = value.detach().cpu() if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))
            if tuple(arr.shape) != tuple(params[key].shape):
                raise TFVariableError(f"variable {tf_name!r} has shape {list(arr.shape)}; this model needs "
                                      f"{list(params[key].shape)}")
            arrays[key] = arr
        with torch.no_grad():
            for key, arr in arrays.items():
                params[key].copy_(arr.to(dtype=params[key].dtype, device=params[key].device))
        return list(chosen.values())
