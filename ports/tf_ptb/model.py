"""PTBModel of ptb_word_lm.py on the shared LSTM core.

Graph of the original (``PTBModel.__init__`` / ``_build_rnn_graph_lstm``)::

    inputs = embedding_lookup(embedding, input_data)                 # [B, T, H]
    if is_training and keep_prob < 1: inputs = dropout(inputs, keep_prob)
    cell = MultiRNNCell([DropoutWrapper(BasicLSTMCell(H, forget_bias=0.0), output_keep_prob=keep_prob)
                         for _ in range(num_layers)])                # wrapper only when training
    outputs[t], state = cell(inputs[:, t, :], state)   for t < T     # under variable_scope("RNN")
    output = reshape(concat(outputs, 1), [-1, H])                    # row b * T + t
    logits = output @ softmax_w + softmax_b

Parameters are kept as TF holds them (kernel [in + H, 4H] and bias [4H] per cell, gate order i, j, f, o)
and handed to the core as they are (views, in TF's gate order), the run-time forget bias as a constant
second bias.
"""
from __future__ import annotations

import os
from typing import Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compat.lstm import LayerWeights
from compat.projected_xent import BufferPool, projected_cross_entropy
from compat.recurrent import Cell, run
from compat.tf1 import tf1_cell_variables
from compat.token_ids import check_token_ids

from . import tf_names
from .config import Config

StateTuple = Tuple[Tuple[Tensor, Tensor], ...]  # per layer (c, h), as TF's LSTMStateTuple
# rnn_cell_impl.py BasicLSTMCell.call: ``i, j, f, o = array_ops.split(value=gate_inputs, num_or_size_splits=4,
# axis=one)``; j is the cell input (the core's g).
TF_GATE_ORDER = "igfo"


class EmbeddingLookup(NamedTuple):
    """The looked-up rows of a training step: ``ids`` [B * T] and ``rows`` [B, T, H], whose ``.grad`` after
    backward is TF's IndexedSlices values of the embedding's gradient (one row per occurrence)."""

    ids: Tensor
    rows: Tensor


class TrainingCost(NamedTuple):
    """What :meth:`PTBModel.training_cost` returns."""

    cost: Tensor
    final_state: "StateTuple"
    lookup: Optional[EmbeddingLookup]


from compat.errors import TFVariableError  # noqa: E402  (a TF variable missing or not fitting; compat's one class)


class BasicLSTMCellParams(nn.Module):
    """One BasicLSTMCell's variables: ``kernel`` [in + H, 4H], ``bias`` [4H] (gates i, j, f, o)."""

    def __init__(self, input_size: int, hidden_size: int, dtype=None, device=None):
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(input_size + hidden_size, 4 * hidden_size, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size, dtype=dtype, device=device))


class PTBModel(nn.Module):
    """The PTB language model. ``PTBModel(config, is_training)``; ``model(inputs, state)``.

    ``is_training`` sets the module's training mode (dropout active when ``keep_prob < 1``), as TF builds
    a training and an evaluation graph over the same variables; ``model.train()`` / ``model.eval()``
    switch it later.
    """

    def __init__(self, config: Config, is_training: bool = True, *, dtype: torch.dtype = torch.float32,
                 device: Union[str, torch.device, None] = None):
        super().__init__()
        self.config = config
        H, V = config.hidden_size, config.vocab_size
        factory = dict(dtype=dtype, device=device)
        self.embedding = nn.Parameter(torch.empty(V, H, **factory))
        # ptb_word_lm's cells all take H inputs (the embedding size is hidden_size).
        n_cells = 1 if config.shared_cell_weights else config.num_layers
        self.cells = nn.ModuleList(BasicLSTMCellParams(H, H, **factory) for _ in range(n_cells))
        self.softmax_w = nn.Parameter(torch.empty(H, V, **factory))
        self.softmax_b = nn.Parameter(torch.empty(V, **factory))
        self.cell_semantics = Cell("lstm", gate_order=TF_GATE_ORDER)
        # The run-time forget bias on the f block of i, j, f, o: a constant (not a variable, not saved).
        forget = torch.zeros(4 * H, **factory)
        forget[2 * H:3 * H] = config.forget_bias
        self.register_buffer("forget_bias_vector", forget, persistent=False)
        # The training cost's [B * T, V] probabilities buffer, kept between steps (compat.projected_xent).
        self.xent_buffers = BufferPool(1)
        self.reset_parameters()
        self.train(is_training)

    # -- initialisation -------------------------------------------------------------------------------
    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """Uniform(-init_scale, init_scale) for every variable, as the scope initializer in main() gives,
        except the LSTM biases, which TF creates with a zeros initializer (rnn_cell_impl ``_linear``
        ``bias_start=0.0`` up to 1.1; ``BasicLSTMCell.build`` ``zeros_initializer`` later)."""
        s = self.config.init_scale
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith(".bias") and self.config.bias_init == "zeros":
                    p.zero_()
                else:
                    p.uniform_(-s, s, generator=generator)

    # -- running ----------------------------------------------------------------------------------------
    @property
    def is_training(self) -> bool:
        return self.training

    def initial_state(self, batch_size: int) -> StateTuple:
        """``cell.zero_state(batch_size)``: a (c, h) pair of zeros per layer."""
        H = self.config.hidden_size
        p = self.embedding
        return tuple((p.new_zeros(batch_size, H), p.new_zeros(batch_size, H)) for _ in range(self.config.num_layers))

    def layer_weights(self) -> list:
        """Every layer's weights as the core takes them: views of the live TF variables (``kernel[:H]^T`` the
        input weight, ``kernel[H:]^T`` the recurrent one, gates in TF's order) and the run-time forget bias as
        a constant second bias (rnn_cell_impl ``BasicLSTMCell.call``: ``sigmoid(f + forget_bias)``)."""
        H = self.config.hidden_size
        forget = self.forget_bias_vector if self.config.forget_bias else None
        weights = []
        for cell in self.cells:
            kernel_t = cell.kernel.t()  # [4H, in + H]: W_ih's columns, then W_hh's
            weights.append(LayerWeights(kernel_t[:, :H], kernel_t[:, H:], cell.bias, forget))
        if self.config.shared_cell_weights:
            return weights * self.config.num_layers
        return weights

    def _check_inputs(self, inputs, check_ids: bool = True) -> Tensor:
        """``inputs`` as long word ids on the model's device; ``check_ids``: their range too (a read of their
        values on the host: a caller that checked them before they left the host passes False)."""
        if not isinstance(inputs, Tensor):
            inputs = torch.as_tensor(np.asarray(inputs))
        if inputs.dim() != 2:
            raise ValueError(f"inputs must be word ids of shape [batch_size, num_steps], got {list(inputs.shape)}")
        if inputs.is_floating_point() or inputs.dtype == torch.bool:
            raise TypeError(f"inputs must be integer word ids, got dtype {inputs.dtype}")
        inputs = inputs.to(device=self.embedding.device, dtype=torch.long)
        if check_ids:
            check_token_ids(inputs, self.config.vocab_size, "inputs")
        return inputs

    def _check_state(self, state, batch_size: int) -> Tuple[Tensor, Tensor]:
        L, H = self.config.num_layers, self.config.hidden_size
        if len(state) != L:
            raise ValueError(f"state has {len(state)} layers; the model has {L} (a (c, h) pair per layer)")
        cs, hs = [], []
        dtype, device = self.embedding.dtype, self.embedding.device
        for k, pair in enumerate(state):
            if len(pair) != 2:
                raise ValueError(f"state[{k}] must be a (c, h) pair")
            c, h = (torch.as_tensor(t, dtype=dtype, device=device) for t in pair)
            for name, t in (("c", c), ("h", h)):
                if t.shape != (batch_size, H):
                    raise ValueError(f"state[{k}].{name} has shape {list(t.shape)}; expected [batch_size, H] = "
                                     f"{[batch_size, H]}")
            cs.append(c)
            hs.append(h)
        return torch.stack(hs), torch.stack(cs)

    def forward(self, inputs, state: Optional[Sequence[Tuple[Tensor, Tensor]]] = None, *,
                check_ids: bool = True) -> Tuple[Tensor, StateTuple]:
        """ptb_word_lm's ``PTBModel`` graph up to ``logits``.

        Args:
            inputs: word ids, ``[B, T]`` (int), each in ``[0, vocab_size)``.
            state: per layer ``(c, h)``, each ``[B, hidden_size]`` (TF's ``LSTMStateTuple`` order); None: zeros.
            check_ids: check the ids' range (a read of their values on the host); False where the caller
                checked them before they left the host (:func:`compat.token_ids.check_token_ids`).

        Returns:
            ``(logits, final_state)``: ``logits`` ``[B * T, vocab_size]``, row ``b * T + t``; the final state
            per layer as ``(c, h)``.
        """
        output, final, _ = self._rnn_output(inputs, state, check_ids=check_ids)
        logits = torch.addmm(self.softmax_b, output, self.softmax_w)  # tf.nn.xw_plus_b
        return logits, final

    def training_cost(self, inputs, targets, state=None, *, embedding_slices: bool = False,
                      check_ids: bool = True) -> TrainingCost:
        """``(cost, final state, lookup)``: :meth:`cost` of :meth:`forward`'s logits, the same numbers, with the
        softmax cross-entropy of ``output @ softmax_w + softmax_b`` in one node (compat.projected_xent) that
        reuses its logits buffer between steps; ``lookup``: the step's looked-up embedding rows.

        ``embedding_slices``: the embedding's gradient stays in TF's IndexedSlices form, one row per
        looked-up token in ``lookup.rows.grad``, and ``embedding.grad`` is not formed (the [vocab, H] dense
        gradient a step that TF never builds). ``check_ids=False``: the inputs' range was checked on the host
        (:func:`compat.token_ids.check_token_ids`); no value is read back from the device."""
        output, final, lookup = self._rnn_output(inputs, state, embedding_slices=embedding_slices,
                                                 check_ids=check_ids)
        targets = torch.as_tensor(targets, device=output.device)
        if targets.dim() != 2 or targets.numel() != output.shape[0]:
            raise ValueError(f"targets must be [batch_size, num_steps] matching the {output.shape[0]} rows, "
                             f"got {list(targets.shape)}")
        crossent = projected_cross_entropy(output, self.softmax_w, self.softmax_b, targets.reshape(-1),
                                           self.xent_buffers)
        return TrainingCost(crossent.sum() / targets.shape[0], final, lookup)

    def _rnn_output(self, inputs, state, embedding_slices: bool = False, check_ids: bool = True
                    ) -> Tuple[Tensor, StateTuple, Optional[EmbeddingLookup]]:
        """The top layer's outputs [B * T, H] (rows b * T + t), the final state per layer (c, h), and the
        looked-up embedding rows where a gradient is recorded."""
        cfg = self.config
        inputs = self._check_inputs(inputs, check_ids)
        B, T = inputs.shape
        hx = self._check_state(self.initial_state(B) if state is None else state, B)
        lookup = None
        if embedding_slices and torch.is_grad_enabled() and self.embedding.requires_grad:
            # The lookup as a leaf: its .grad is TF's IndexedSlices values, and no dense gradient is formed.
            emb = F.embedding(inputs, self.embedding.detach()).requires_grad_()
            lookup = EmbeddingLookup(inputs.reshape(-1), emb)
        else:
            emb = F.embedding(inputs, self.embedding)  # tf.nn.embedding_lookup
            if emb.requires_grad:
                # TF's gradient of the lookup is IndexedSlices over these per-occurrence rows (clip_ops.global_norm).
                emb.retain_grad()
                lookup = EmbeddingLookup(inputs.reshape(-1), emb)
        x = emb
        drop = 1.0 - cfg.keep_prob
        if self.training and drop > 0:
            x = F.dropout(x, drop, training=True)
        # The variables' shapes are the model's own (fixed when it was built): straight to the core's driver.
        layers = tuple((w,) for w in self.layer_weights())
        out, (h_n, c_n) = run(self.cell_semantics, layers, x.transpose(0, 1), hx, dropout=drop,
                              dropout_placement="output", training=self.training)
        # reshape(concat(outputs, 1), [-1, H]): batch-major rows b * T + t.
        output = out.transpose(0, 1).reshape(B * T, cfg.hidden_size)
        final = tuple(zip(c_n.unbind(0), h_n.unbind(0)))
        return output, final, lookup

    def cost(self, logits: Tensor, targets) -> Tensor:
        """Sum of the tokens' cross-entropies / batch_size: ptb_word_lm's
        ``reduce_sum(sequence_loss_by_example([logits], [targets], [ones])) / batch_size`` (per sequence, not
        per token: with num_steps 35 it is 35 times the per-token mean)."""
        targets = torch.as_tensor(targets, device=logits.device)
        if targets.dim() != 2 or targets.numel() != logits.shape[0]:
            raise ValueError(f"targets must be [batch_size, num_steps] matching logits' {logits.shape[0]} rows, "
                             f"got {list(targets.shape)}")
        batch_size = targets.shape[0]
        return F.cross_entropy(logits, targets.reshape(-1).long(), reduction="sum") / batch_size

    # -- TF variables -------------------------------------------------------------------------------------
    def _port_parameters(self) -> Dict[str, nn.Parameter]:
        return dict(self.named_parameters())

    def tf1_variables(self, scope: str = "Model", generation: str = "1.2", rnn_scope: str = "RNN") -> Dict[str, nn.Parameter]:
        """The live parameters keyed by TF variable names (TF 1.2+ names under ``Model/`` by default).

        A model with ``shared_cell_weights`` has one cell, named as TF >= 1.1 saves
        ``MultiRNNCell([cell] * n)``: under ``cell_0`` only.
        """
        names = tf_names.variable_names(self.config.num_layers, scope=scope, generation=generation,
                                        rnn_scope=rnn_scope, shared=self.config.shared_cell_weights)
        params = self._port_parameters()
        return {tf_name: params[port_name] for port_name, tf_name in names.items()}

    def export_tf1_variables(self, scope: str = "Model", generation: str = "1.2", rnn_scope: str = "RNN") -> Dict[str, np.ndarray]:
        """A name -> numpy array copy of :meth:`tf1_variables`, as TF's checkpoint reader returns it."""
        return {n: p.detach().cpu().numpy().copy() for n, p in self.tf1_variables(scope, generation, rnn_scope).items()}

    def load_tf1_variables(self, variables: Union[Mapping[str, object], str, os.PathLike], *,
                           scope: Optional[str] = None, shared: Optional[bool] = None) -> Dict[str, str]:
        """Copy a TF checkpoint's model variables into the parameters; returns port name -> TF name used.

        ``variables``: a name -> array mapping (``tf.train.NewCheckpointReader`` ... ``get_tensor``) or a
        checkpoint path (read by :func:`compat.formats.tf.load_checkpoint`, no TensorFlow needed).
        Every TF generation's names and any outer scope are recognised; ``scope`` picks the model when a
        checkpoint holds several. Optimizer slots, ``global_step`` and the ``lr`` variable are ignored;
        names with TF's ``:0`` output suffix (dumps of ``{v.name: value}``) are accepted.

        ``shared``: a checkpoint of ``MultiRNNCell([cell] * n)`` from TF >= 1.1 holds one cell (``cell_0``)
        used by every layer. A model with ``Config.shared_cell_weights`` loads it as is; for a per-layer
        model pass ``shared=True`` to copy cell 0 into every layer (same predictions; training then unties
        them). ``shared=False`` insists on one cell per layer.
        """
        if isinstance(variables, (str, os.PathLike)):
            from compat.formats.tf import load_checkpoint
            variables = load_checkpoint(variables)
        if not isinstance(variables, Mapping):
            raise TypeError(f"variables must be a name -> array mapping or a checkpoint path, got {type(variables).__name__}")
        # Mappings built from ``{v.name: value}`` carry TF's output suffix ":0"; checkpoint readers do not.
        variables = {(n[:-2] if isinstance(n, str) and n.endswith(":0") else n): v for n, v in variables.items()}
        cfg = self.config
        H, V, L = cfg.hidden_size, cfg.vocab_size, cfg.num_layers
        prefix = tf_names.scope_prefix(scope) if scope is not None else tf_names.find_scope(variables)
        where = f" (scope {prefix.rstrip('/')!r})" if prefix else ""

        def fetch(name: str, shape: Tuple[int, ...], what: str):
            if name not in variables:
                raise TFVariableError(f"TF variable {name!r} ({what}) is missing from the checkpoint{where}")
            return self._as_array(name, variables[name], shape, what)

        values: Dict[str, np.ndarray] = {}
        used: Dict[str, str] = {}
        for port_name, tf_short, shape, what in (("embedding", "embedding", (V, H), "the embedding [vocab_size, hidden_size]"),
                                                 ("softmax_w", "softmax_w", (H, V), "[hidden_size, vocab_size]"),
                                                 ("softmax_b", "softmax_b", (V,), "[vocab_size]")):
            values[port_name] = fetch(prefix + tf_short, shape, what)
            used[port_name] = prefix + tf_short

        scopes = tf_names.find_cell_scopes(variables, prefix)
        if not scopes:
            raise TFVariableError(f"no LSTM cell variables under {prefix + 'RNN/'!r} or {prefix + 'rnn/'!r} "
                                  f"(looked for multi_rnn_cell/cell_k/... and MultiRNNCell/Cellk/...){where}")
        extra = [k for k in scopes if k >= L]
        if extra:
            raise TFVariableError(f"the checkpoint has LSTM layers {sorted(scopes)} but the config has "
                                  f"num_layers={L}; cell scopes {[scopes[k] for k in extra]} do not fit")
        one_cell = sorted(scopes) == [0] and L > 1
        if shared is False and one_cell:
            raise TFVariableError(self._one_cell_message(scopes[0], L))
        if shared is True and not one_cell and L > 1 and len(scopes) > 1:
            raise TFVariableError(f"shared=True, but the checkpoint has a cell per layer ({sorted(scopes.values())})")
        cells = {}
        for k in sorted(scopes):
            try:
                kernel, bias, (k_name, b_name) = tf1_cell_variables(variables, scopes[k])
            except KeyError as exc:
                raise TFVariableError(f"layer {k}: {exc.args[0] if exc.args else exc}") from None
            cells[k] = (self._as_array(k_name, kernel, (2 * H, 4 * H), f"layer {k} kernel [in + H, 4H]"),
                        self._as_array(b_name, bias, (4 * H,), f"layer {k} bias [4H]"), k_name, b_name)
        missing = [k for k in range(L) if k not in cells]
        if cfg.shared_cell_weights:
            if len(cells) > 1:
                differ = [k for k in cells if k and not (np.array_equal(cells[k][0], cells[0][0])
                                                         and np.array_equal(cells[k][1], cells[0][1]))]
                if differ:
                    raise TFVariableError(f"the model shares one cell's weights (shared_cell_weights=True) but the "
                                          f"checkpoint's layers {differ} differ from layer 0 ({cells[differ[0]][2]!r})")
            if 0 not in cells:
                raise TFVariableError(f"layer 0's cell variables are missing{where}")
            targets = [0]
        else:
            if missing and not (one_cell and shared):
                if one_cell:
                    raise TFVariableError(self._one_cell_message(scopes[0], L))
                raise TFVariableError(f"LSTM layer(s) {missing} missing from the checkpoint{where}; found cell scopes "
                                      f"{[scopes[k] for k in sorted(scopes)]}")
            targets = list(range(L))
        for k in targets:
            kernel, bias, k_name, b_name = cells[k] if k in cells else cells[0]
            values[f"cells.{k}.kernel"], values[f"cells.{k}.bias"] = kernel, bias
            used[f"cells.{k}.kernel"], used[f"cells.{k}.bias"] = k_name, b_name
        params = self._port_parameters()
        with torch.no_grad():
            for port_name, value in values.items():
                p = params[port_name]
                p.copy_(torch.as_tensor(value).to(dtype=p.dtype, device=p.device))
        return used

    @staticmethod
    def _one_cell_message(scope: str, layers: int) -> str:
        return (f"the checkpoint holds one LSTM cell ({scope!r}) for a {layers}-layer model, as TF >= 1.1 saves "
                f"MultiRNNCell([cell] * n) with one weight set shared by every layer; build the model with "
                f"Config(shared_cell_weights=True), or pass shared=True to copy that cell into every layer")

    @staticmethod
    def _as_array(name: str, value, shape: Tuple[int, ...], what: str) -> np.ndarray:
        if isinstance(value, Tensor):
            value = value.detach().cpu().numpy()
        array = np.asarray(value)
        if array.dtype.kind not in "fiu":
            raise TFVariableError(f"TF variable {name!r} ({what}) has dtype {array.dtype}; expected a float array")
        if tuple(array.shape) != tuple(shape):
            raise TFVariableError(f"TF variable {name!r} ({what}) has shape {list(array.shape)}; the config needs "
                                  f"{list(shape)}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise TFVariableError(f"TF variable {name!r} ({what}) holds {int(array.size - np.isfinite(array).sum())} "
                                  "NaN or infinite values; a model restored from it would compute NaN")
        return array
