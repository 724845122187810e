"""The cookbook's ``LSTM_Model`` (03_implementing_lstm.py) on the shared LSTM core.

Graph of the original, per model::

    embedding_output = embedding_lookup(embedding_mat, x_data)              # [B, T, H]
    rnn_inputs_trimmed = [squeeze(x, [1]) for x in split(embedding_output, T, axis=1)]
    outputs, last_state = rnn_decoder(rnn_inputs_trimmed, initial_state, BasicLSTMCell(H),
                                      loop_function=inferred_loop if infer_sample else None)
    output = reshape(concat(outputs, axis=1), [-1, H])                     # rows b * T + t
    logit_output = output @ W + b;  model_output = softmax(logit_output)
    loss = sequence_loss_by_example([logit_output], [reshape(y, [-1])], [ones([B * T])], vocab_size)
    cost = reduce_sum(loss) / (B * T)

The fourth positional argument ``vocab_size`` dates from the early TF signature
``sequence_loss_by_example(logits, targets, weights, num_decoder_symbols, ...)``; in later releases (TF 0.12's
``tf.nn.seq2seq``, TF 1.x's legacy_seq2seq) it lands in ``average_across_timesteps`` (truthy), so each example's loss is divided by ``1 + 1e-12`` (exactly 1 in
float32). The port computes the same expression.

Variables as TF names them (the recipe builds both models inside ``tf.variable_scope('lstm_model')``,
the second with ``reuse``)::

    lstm_model/lstm_vars/W              [H, V]   random_normal_initializer() (mean 0, stddev 1)
    lstm_model/lstm_vars/b              [V]      zeros
    lstm_model/lstm_vars/embedding_mat  [V, H]   random_normal_initializer()
    lstm_model/rnn_decoder/basic_lstm_cell/kernel, .../bias             TF >= 1.2
    lstm_model/rnn_decoder/basic_lstm_cell/weights, .../biases          TF 1.0 - 1.1
    lstm_model/rnn_decoder/BasicLSTMCell/Linear/Matrix, .../Linear/Bias  TF <= 0.12 (tf.nn.seq2seq)
"""
from __future__ import annotations

import os
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compat.projected_xent import BufferPool, projected_cross_entropy
from compat.seq2seq import BasicLSTMCell, LSTMStateTuple, inferred_loop, rnn_decoder, sequence_loss_by_example
from compat.tf1 import tf1_cell_variables
from compat.token_ids import check_token_ids

DEFAULT_SCOPE = "lstm_model"
# TF generation -> (cell scope under rnn_decoder, kernel name, bias name)
TF_GENERATIONS = {
    "1.2": ("basic_lstm_cell", "kernel", "bias"),
    "1.0": ("basic_lstm_cell", "weights", "biases"),
    "0.12": ("BasicLSTMCell", "Linear/Matrix", "Linear/Bias"),
}


class ModelOutput(NamedTuple):
    logits: Tensor           # [B * T, V], rows b * T + t (the recipe's logit_output)
    final_state: LSTMStateTuple


# A TF variable missing or of the wrong shape: compat's one class, under the name this port has always exported.
from compat.errors import TFVariableError as TF1VariableError  # noqa: E402


class LSTMModel(nn.Module):
    """``LSTM_Model(rnn_size, batch_size, learning_rate, training_seq_len, vocab_size, infer_sample)``.

    ``LSTMModel(rnn_size, vocab_size, batch_size, training_seq_len, infer=False)``; with ``infer=True`` the
    batch and sequence sizes are 1 and the decoder feeds back its argmax (``inferred_loop``). Use
    :meth:`infer_model` for the recipe's second model that shares every variable with this one.
    The embedding size equals ``rnn_size``, as in the recipe.
    """

    def __init__(self, rnn_size: int, vocab_size: int, batch_size: int = 100, training_seq_len: int = 50,
                 infer: bool = False, *, forget_bias: float = 1.0, dtype: torch.dtype = torch.float32,
                 device=None, generator: Optional[torch.Generator] = None):
        super().__init__()
        if rnn_size < 1 or vocab_size < 2:
            raise ValueError(f"rnn_size must be >= 1 and vocab_size >= 2; got {rnn_size}, {vocab_size}")
        self.rnn_size, self.vocab_size, self.infer = rnn_size, vocab_size, infer
        self.batch_size = 1 if infer else batch_size
        self.training_seq_len = 1 if infer else training_seq_len
        factory = dict(dtype=dtype, device=device)
        self.W = nn.Parameter(torch.empty(rnn_size, vocab_size, **factory))
        self.b = nn.Parameter(torch.zeros(vocab_size, **factory))
        self.embedding_mat = nn.Parameter(torch.empty(vocab_size, rnn_size, **factory))
        self.cell = BasicLSTMCell(rnn_size, rnn_size, forget_bias, generator=generator, **factory)
        # Training cost through compat.projected_xent (same numbers; False: the logits, then
        # sequence_loss_by_example, as the recipe's graph reads), its [B * T, V] buffer kept between steps.
        self.fused_loss = True
        self.xent_buffers = BufferPool(1)
        with torch.no_grad():
            # random_normal_initializer(): mean 0, stddev 1.
            self.W.normal_(0.0, 1.0, generator=generator)
            self.embedding_mat.normal_(0.0, 1.0, generator=generator)

    # -- sharing ---------------------------------------------------------------------------------
    def infer_model(self) -> "LSTMModel":
        """The recipe's ``test_lstm_model``: batch 1, seq 1, loop function on, the *same* parameters."""
        twin = LSTMModel.__new__(LSTMModel)
        nn.Module.__init__(twin)
        twin.rnn_size, twin.vocab_size, twin.infer = self.rnn_size, self.vocab_size, True
        twin.batch_size, twin.training_seq_len = 1, 1
        twin.W, twin.b, twin.embedding_mat, twin.cell = self.W, self.b, self.embedding_mat, self.cell
        twin.fused_loss, twin.xent_buffers = self.fused_loss, self.xent_buffers
        return twin

    def zero_state(self, batch_size: Optional[int] = None) -> LSTMStateTuple:
        return self.cell.zero_state(self.batch_size if batch_size is None else batch_size)

    def trainable_variables(self) -> List[nn.Parameter]:
        """``tf.trainable_variables()`` order of the recipe's graph: W, b, embedding_mat, kernel, bias."""
        return [self.W, self.b, self.embedding_mat, self.cell.kernel, self.cell.bias]

    # -- graph -----------------------------------------------------------------------------------
    def _check_ids(self, x: Tensor, name: str, check_range: bool = True) -> Tensor:
        """``x`` as long ids on the model's device; ``check_range``: their range too (a read of their values
        on the host; a caller that checked them before they left the host passes False)."""
        if not isinstance(x, Tensor):
            x = torch.as_tensor(np.asarray(x))
        if x.dim() != 2:
            raise ValueError(f"{name} has shape {list(x.shape)}; expected [batch, seq]")
        if x.is_floating_point():
            x = x.long()  # the recipe feeds float np.zeros((1, 1)) into an int32 placeholder
        if check_range:
            check_token_ids(x, self.vocab_size, name)
        return x.to(self.W.device).long()

    def embed(self, x: Tensor) -> Tensor:
        """``embedding_lookup(embedding_mat, x)`` [B, T, H]."""
        return F.embedding(x, self.embedding_mat)

    def decode(self, embedded: Tensor, initial_state=None, loop: Optional[bool] = None
               ) -> Tuple[Tensor, LSTMStateTuple]:
        """rnn_decoder over the split inputs of ``embedded`` [B, T, H] -> (output [B * T, H], state)."""
        B, T, _ = embedded.shape
        state = self.cell.zero_state(B) if initial_state is None else LSTMStateTuple(*initial_state)
        loop = self.infer if loop is None else loop
        inputs = embedded.transpose(0, 1)  # the T squeezed [B, H] pieces of tf.split(axis=1)
        loop_function = inferred_loop(self.W, self.b, self.embedding_mat) if loop else None
        outputs, state = rnn_decoder(inputs, state, self.cell, loop_function=loop_function)
        # reshape(concat(outputs, axis=1), [-1, H]): batch-major rows b * T + t
        output = torch.stack(outputs, dim=1).reshape(-1, self.rnn_size)
        return output, state

    def forward(self, x_data, initial_state=None) -> ModelOutput:
        """The recipe's graph from ``x_data`` to ``logit_output``.

        Args:
            x_data: word ids, ``[batch_size, training_seq_len]`` (int), each in ``[0, vocab_size)``.
            initial_state: ``LSTMStateTuple(c, h)``, each ``[batch_size, rnn_size]``; None: zeros
                (``cell.zero_state``).

        Returns:
            ``ModelOutput(logits, state)``: ``logits`` ``[batch_size * training_seq_len, vocab_size]``,
            batch-major rows ``b * T + t`` as the recipe's reshape; ``state`` the final ``LSTMStateTuple``.
        """
        x = self._check_ids(x_data, "x_data")
        output, state = self.decode(self.embed(x), initial_state)
        return ModelOutput(self.logits(output), state)

    def logits(self, output: Tensor) -> Tensor:
        """``tf.matmul(output, W) + b`` in one fused product (addmm: no separate pass adding b)."""
        return torch.addmm(self.b, output, self.W)

    def cost(self, x_data, y_output, initial_state=None, *, embedded: Optional[Tensor] = None,
             check_ids: bool = True) -> Tuple[Tensor, LSTMStateTuple]:
        """``(cost, final_state)`` with the recipe's ``reduce_sum(sequence_loss_by_example(...)) / (B * T)``.

        ``embedded``: the [B, T, H] embedding lookup of ``x_data`` when the caller keeps it (to read its
        gradient, TF's IndexedSlices values). ``check_ids=False``: the ids' range was checked on the host
        (no value is read back from the device).
        """
        x = self._check_ids(x_data, "x_data", check_ids)
        y = self._check_ids(y_output, "y_output", check_ids)
        if tuple(y.shape) != tuple(x.shape):
            raise ValueError(f"y_output has shape {list(y.shape)}; x_data has {list(x.shape)}")
        B, T = x.shape
        if embedded is None:
            embedded = self.embed(x)
        output, state = self.decode(embedded, initial_state)
        ones = torch.ones(B * T, dtype=output.dtype, device=output.device)
        if torch.is_grad_enabled() and self.fused_loss:
            # The same cross-entropy of output @ W + b in one node that reuses its logits buffer
            # (compat.projected_xent), then sequence_loss_by_example's weighting and averaging.
            crossent = projected_cross_entropy(output, self.W, self.b, y.reshape(-1), self.xent_buffers)
            loss = crossent * ones / (ones + 1e-12)
        else:
            logits = self.logits(output)
            loss = sequence_loss_by_example([logits], [y.reshape(-1)], [ones], average_across_timesteps=True)
        return loss.sum() / (B * T), state

    # -- sampling --------------------------------------------------------------------------------
    def sample(self, prime_text: str, ix2vocab: Mapping[int, str], vocab2ix: Mapping[str, int], num: int = 10,
               *, temperature: Optional[float] = None, top_k: Optional[int] = None,
               generator: Optional[torch.Generator] = None, unknown: str = "error") -> str:
        """The recipe's ``sample()``; see :func:`ports.tf_shakespeare.sampling.sample`."""
        from ports.tf_shakespeare.sampling import sample

        return sample(self, prime_text, ix2vocab, vocab2ix, num, temperature=temperature, top_k=top_k,
                      generator=generator, unknown=unknown)

    # -- TF variables ----------------------------------------------------------------------------
    def tf1_variables(self, scope: str = DEFAULT_SCOPE, generation: str = "1.2") -> Dict[str, Tensor]:
        """The live parameters under the names TF gives them (``generation``: "1.2" for TF >= 1.2,
        "1.0" for 1.0-1.1, "0.12" for tf.nn.seq2seq releases)."""
        if generation not in TF_GENERATIONS:
            raise ValueError(f"generation must be one of {sorted(TF_GENERATIONS)}, not {generation!r}")
        cell_scope, kernel_name, bias_name = TF_GENERATIONS[generation]
        cell = f"{scope}/rnn_decoder/{cell_scope}"
        return {f"{scope}/lstm_vars/W": self.W, f"{scope}/lstm_vars/b": self.b,
                f"{scope}/lstm_vars/embedding_mat": self.embedding_mat,
                f"{cell}/{kernel_name}": self.cell.kernel, f"{cell}/{bias_name}": self.cell.bias}

    def load_tf1_variables(self, variables: Union[Mapping[str, object], str, os.PathLike],
                           scope: str = DEFAULT_SCOPE) -> List[str]:
        """Copy the recipe's variables from a name -> array mapping or a TF1 checkpoint path.

        Accepts every TF generation's cell names (see the module docstring) and names with a ``:0``
        suffix; other variables (Adam slots, beta powers, the global step) are ignored. Returns the
        names used. Raises :class:`TF1VariableError` naming a missing variable or a wrong shape.
        """
        if isinstance(variables, (str, os.PathLike)):
            from compat.formats.tf import load_checkpoint

            variables = load_checkpoint(variables)
        names = {(k[:-2] if k.endswith(":0") else k): v for k, v in variables.items()}
        scope = scope.rstrip("/")
        found: Dict[str, object] = {}
        for short in ("W", "b", "embedding_mat"):
            name = f"{scope}/lstm_vars/{short}"
            if name not in names:
                near = sorted(n for n in names if n.startswith(scope))[:8]
                raise TF1VariableError(f"variable {name!r} not found; names under {scope!r}: {near}")
            found[name] = names[name]
        errors = []
        for cell_scope in ("basic_lstm_cell", "BasicLSTMCell"):
            try:
                kernel, bias, (kname, bname) = tf1_cell_variables(names, f"{scope}/rnn_decoder/{cell_scope}")
                break
            except KeyError as e:
                errors.append(str(e.args[0] if e.args else e))
        else:
            raise TF1VariableError("no BasicLSTMCell variables found: " + "; ".join(errors))
        found[kname], found[bname] = kernel, bias
        H, V = self.rnn_size, self.vocab_size
        expected = {f"{scope}/lstm_vars/W": (self.W, (H, V)), f"{scope}/lstm_vars/b": (self.b, (V,)),
                    f"{scope}/lstm_vars/embedding_mat": (self.embedding_mat, (V, H)),
                    kname: (self.cell.kernel, (2 * H, 4 * H)), bname: (self.cell.bias, (4 * H,))}
        arrays = {}
        for name, (param, shape) in expected.items():
            value = found[name]
            arr = value.detach().cpu() if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))
            if tuple(arr.shape) != shape:
                raise TF1VariableError(f"variable {name!r} has shape {list(arr.shape)}; this model "
                                       f"(rnn_size={H}, vocab_size={V}) needs {list(shape)}")
            if arr.is_floating_point() and not bool(torch.isfinite(arr).all()):
                raise TF1VariableError(f"variable {name!r} holds NaN or infinite values; the model would sample "
                                       "from NaN")
            arrays[name] = arr
        with torch.no_grad():
            for name, (param, _) in expected.items():
                param.copy_(arrays[name].to(dtype=param.dtype, device=param.device))
        return list(expected)
