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

(TF 1.0 and 1.1 name the cell's variables ``weights`` and ``biases``: :func:`tf_variable_names`.) The LSTM
stack is a :class:`compat.lstm.LSTM` holding the same numbers in the core's layout, converted from and to
TF's with :mod:`compat.layouts` (``to_canonical("tf", ..., forget_bias=1.0)``): ``weight_ih_l{k}`` and
``weight_hh_l{k}`` are the kernel's input and state rows, transposed, gates reordered from i, j, f, o to
i, f, g, o; ``bias_ih_l{k}`` is the bias; ``bias_hh_l{k}`` is the run-time forget bias, a constant (1.0 on
the f block) that is not trained. Adagrad works element by element, so training these is training TF's
kernel and bias; holding them so spares a conversion at every step.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compat.errors import TFVariableError
from compat.layouts import from_canonical, to_canonical
from compat.lstm import LSTM, LayerWeights

from .config import Config

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# TF generation -> (the cell's kernel name, its bias name) under rnn/multi_rnn_cell/cell_k/basic_lstm_cell
TF_GENERATIONS = {"1.2": ("kernel", "bias"), "1.0": ("weights", "biases")}


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
        """``fully_connected(inputs, out_features, activation_fn=None)``.

        Args:
            inputs: ``[B, in_features]``.

        Returns:
            ``inputs @ weights + biases``, ``[B, out_features]``.
        """
        return torch.addmm(self.biases, inputs, self.weights)


def tf_variable_names(num_layers: int, generation: str = "1.2") -> Dict[str, str]:
    """The TF variables' names for ``generation`` "1.2" (TF >= 1.2) or "1.0" (1.0, 1.1), keyed
    ``cells.k.kernel``, ``cells.k.bias``, ``fully_connected.weights``, ``fully_connected.biases``."""
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

    Initial values are TF's initializers' (see the module docstring), drawn from ``generator`` in TF's
    order: cell 0's kernel, cell 1's, ..., fully_connected's weights. :meth:`trainable_parameters` are the
    variables ``tf.trainable_variables()`` holds (every parameter but the constant ``bias_hh_l{k}``).
    """

    def __init__(self, config: Config, *, device=None, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.config = config
        H = config.hidden_size
        factory = dict(dtype=TORCH_DTYPES[config.dtype], device=device)
        self.lstm = LSTM(config.input_size, H, config.num_layers, **factory)
        with torch.no_grad():
            for k in range(config.num_layers):
                n_in = config.input_size if k == 0 else H
                # init_ops.glorot_uniform_initializer over TF's whole kernel: limit sqrt(6 / (fan_in + fan_out)).
                limit = math.sqrt(6.0 / (n_in + H + 4 * H))
                kernel = torch.empty(n_in + H, 4 * H, **factory).uniform_(-limit, limit, generator=generator)
                self._set_tf_layer(k, kernel, torch.zeros(4 * H, **factory))
        for k in range(config.num_layers):
            self._layer(k)[3].requires_grad_(False)  # bias_hh: BasicLSTMCell's forget bias, not a variable
        self.fully_connected = FullyConnected(H, 1, generator=generator, **factory)

    @property
    def dtype(self) -> torch.dtype:
        return self.fully_connected.weights.dtype

    def trainable_parameters(self) -> List[nn.Parameter]:
        """The model's variables (each layer's weight_ih, weight_hh, bias_ih; fully_connected's)."""
        return [p for p in self.parameters() if p.requires_grad]

    # -- the core's layout <-> TF's ---------------------------------------------------------------
    def _layer(self, k: int) -> LayerWeights:
        return self.lstm.layer_weights()[k]

    def _set_tf_layer(self, k: int, kernel, bias) -> None:
        w = to_canonical("tf", {"kernel": kernel, "bias": bias}, forget_bias=self.config.forget_bias)
        bias_hh = w.bias_hh if w.bias_hh is not None else torch.zeros_like(torch.as_tensor(w.bias_ih))  # forget_bias 0
        for param, value in zip(self._layer(k)[:4], (*w[:3], bias_hh)):
            param.copy_(torch.as_tensor(value).to(dtype=param.dtype, device=param.device))

    def tf_variables(self, generation: str = "1.2") -> Dict[str, Tensor]:
        """The variables under their TF names, in TF's layout (detached)."""
        return self.to_tf_layout({name: p.detach() for name, p in self.named_parameters() if p.requires_grad},
                                 generation, forget_bias=self.config.forget_bias)

    def to_tf_layout(self, values: Mapping[str, Tensor], generation: str = "1.2", *,
                     forget_bias: Optional[float] = None) -> Dict[str, Tensor]:
        """Per-variable values keyed by this model's trainable parameter names (the variables, or anything
        of their shapes element by element, such as Adagrad's accumulators: ``forget_bias=None``, no
        constant bias) under TF's names and in TF's layout."""
        names = tf_variable_names(self.config.num_layers, generation)
        out = {}
        for k in range(self.config.num_layers):
            constant = self._layer(k)[3].detach() if forget_bias is not None else None
            w = LayerWeights(values[f"lstm.weight_ih_l{k}"], values[f"lstm.weight_hh_l{k}"],
                             values[f"lstm.bias_ih_l{k}"], constant)
            tf = from_canonical("tf", w, forget_bias=forget_bias or 0.0)
            out[names[f"cells.{k}.kernel"]] = tf["kernel"].contiguous()
            out[names[f"cells.{k}.bias"]] = tf["bias"].contiguous()
        out["fully_connected/weights"] = values["fully_connected.weights"]
        out["fully_connected/biases"] = values["fully_connected.biases"]
        return out

    def from_tf_layout(self, variables: Mapping[str, object], *, forget_bias: Optional[float] = None,
                       what: str = "variable", suffix: str = "") -> Tuple[Dict[str, Tensor], List[str]]:
        """The inverse of :meth:`to_tf_layout`: ``({trainable parameter name: tensor}, the TF names used)``
        from TF-named arrays (TF >= 1.2 or 1.0 names, ``:0`` suffixes allowed; a ``suffix`` such as
        ``"/Adagrad"`` after each name). Raises :class:`TFVariableError` naming a missing value or a wrong
        shape."""
        names = {(k[:-2] if k.endswith(":0") else k): v for k, v in variables.items()}
        table = None
        for generation in TF_GENERATIONS:
            candidate = tf_variable_names(self.config.num_layers, generation)
            if all(n + suffix in names for n in candidate.values()):
                table = candidate
                break
        if table is None:
            candidate = tf_variable_names(self.config.num_layers)
            missing = [n + suffix for n in candidate.values() if n + suffix not in names]
            raise TFVariableError(f"{what}s {missing} not found; the mapping holds {sorted(names)[:8]}")
        tf_shapes = {tf_name: tuple(p.shape) for tf_name, p in self.tf_variables().items()}
        arrays = {}
        for key, tf_name in table.items():
            value = names[tf_name + suffix]
            arr = value.detach().cpu() if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))
            want = tf_shapes[tf_variable_names(self.config.num_layers)[key]]
            if tuple(arr.shape) != want:
                raise TFVariableError(f"{what} {tf_name + suffix!r} has shape {list(arr.shape)}; this model needs "
                                      f"{list(want)}")
            arrays[key] = arr
        out = {}
        for k in range(self.config.num_layers):
            w = to_canonical("tf", {"kernel": arrays[f"cells.{k}.kernel"], "bias": arrays[f"cells.{k}.bias"]},
                             forget_bias=forget_bias or 0.0)
            out[f"lstm.weight_ih_l{k}"], out[f"lstm.weight_hh_l{k}"], out[f"lstm.bias_ih_l{k}"] = w[:3]
        out["fully_connected.weights"] = arrays["fully_connected.weights"]
        out["fully_connected.biases"] = arrays["fully_connected.biases"]
        return out, [table[key] + suffix for key in table]

    def load_tf_variables(self, variables: Mapping[str, object]) -> List[str]:
        """Copy the model's variables from a name -> array mapping (TF >= 1.2 or 1.0 names, ``:0`` suffixes
        allowed; optimizer slots and the global step ignored). Raises :class:`TFVariableError` naming a
        missing variable or a wrong shape. Returns the names used."""
        values, used = self.from_tf_layout(variables, forget_bias=self.config.forget_bias)
        params = dict(self.named_parameters())
        with torch.no_grad():
            for key, value in values.items():
                params[key].copy_(value.to(dtype=params[key].dtype, device=params[key].device))
        return used

    # -- the graph --------------------------------------------------------------------------------
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
        """The book's ``lstm_model``: the LSTM stack over ``X`` from zero states, then ``fully_connected``.

        Args:
            X: ``[B, 1, TIMESTEPS]`` as the book feeds it (one step of TIMESTEPS features, or TIMESTEPS
                steps of one feature with ``input_layout="steps"``).

        Returns:
            the predictions, ``[B]``.
        """
        out, _ = self.lstm(self._sequence(X))
        # reshape(output, [-1, H]) of the one step (a view: its gradient a view too); the ten-step reading
        # regresses the last step.
        output = out.reshape(-1, out.shape[2]) if self.config.input_layout == "features" else out[-1]
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
