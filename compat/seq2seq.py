"""TF1's legacy_seq2seq decoder and losses in PyTorch, on the shared LSTM core.

Ported from ``tensorflow/contrib/legacy_seq2seq/python/ops/seq2seq.py`` (``tf.nn.seq2seq`` up to TF 0.12):

``rnn_decoder(decoder_inputs, initial_state, cell, loop_function=None)``
    ``decoder_inputs`` is a list of [B, in] tensors (TF's "split and squeeze" input list; a [T, B, in]
    tensor is accepted too). Step 0 always runs on ``decoder_inputs[0]``. Without a loop function every
    step runs on its own input; with one, step i > 0 runs on ``loop_function(prev, i)`` where ``prev`` is
    the cell's raw output of step i - 1 (the remaining decoder inputs only fix the number of steps).
    Returns ``(outputs, state)``: a list of [B, H] outputs and the final state.
``sequence_loss_by_example(logits, targets, weights, average_across_timesteps=True,
softmax_loss_function=None)``
    the sum over steps of ``weight * crossent``, divided, when averaging, by ``sum(weights) + 1e-12``.
``sequence_loss(..., average_across_batch=True)``
    the sum of the above over the batch, divided by the batch size when averaging.

The cell is :class:`BasicLSTMCell` (TF's ``kernel`` and ``bias`` with the run-time ``forget_bias``), which
runs on :func:`compat.lstm.lstm`: one call for a whole sequence when there is no loop function, one
call per step when each input depends on the previous output.

Loop functions: :func:`inferred_loop` (the TF cookbook's: project with W, b, argmax, stop gradient,
embedding lookup), :func:`extract_argmax_and_embed` (TF's ``_extract_argmax_and_embed``) and
:func:`sampled_loop` (temperature and top-k sampling with a seeded ``torch.Generator``).
"""
from __future__ import annotations

import math
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compat.layouts import to_canonical
from compat.lstm import LayerWeights, lstm
from compat.token_ids import check_token_ids


class LSTMStateTuple(NamedTuple):
    """TF's ``LSTMStateTuple``: ``(c, h)``, each [B, H] (note: c first, unlike PyTorch's ``(h, c)``)."""

    c: Tensor
    h: Tensor


class BasicLSTMCell(nn.Module):
    """``tf.nn.rnn_cell.BasicLSTMCell(num_units, forget_bias=1.0)`` with TF's variables.

    ``kernel`` [in + H, 4H] (rows: the input, then h; columns: gates i, j, f, o) and ``bias`` [4H], as TF
    stores them; ``forget_bias`` is added to the f gate at run time and is not a variable
    (rnn_cell_impl.py ``BasicLSTMCell.call``). ``cell(x, state)`` runs one step: x [B, in], state
    ``(c, h)`` -> ``(new_h, LSTMStateTuple(new_c, new_h))``. :meth:`sequence` runs a whole [T, B, in]
    sequence in one call of the core.

    Initialisation as TF 1.x ``get_variable`` without an initializer: Glorot uniform kernel, zero bias.
    """

    def __init__(self, num_units: int, input_size: int, forget_bias: float = 1.0, *, device=None,
                 dtype=None, generator: Optional[torch.Generator] = None):
        super().__init__()
        if num_units <= 0 or input_size <= 0:
            raise ValueError(f"BasicLSTMCell needs num_units > 0 and input_size > 0; got {num_units}, {input_size}")
        self.num_units, self.input_size, self.forget_bias = num_units, input_size, float(forget_bias)
        factory = dict(device=device, dtype=dtype)
        self.kernel = nn.Parameter(torch.empty(input_size + num_units, 4 * num_units, **factory))
        self.bias = nn.Parameter(torch.zeros(4 * num_units, **factory))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        # init_ops.glorot_uniform_initializer: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)).
        fan_in, fan_out = self.kernel.shape
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        with torch.no_grad():
            self.kernel.uniform_(-limit, limit, generator=generator)
            self.bias.zero_()

    @property
    def state_size(self) -> Tuple[int, int]:
        return (self.num_units, self.num_units)

    @property
    def output_size(self) -> int:
        return self.num_units

    def zero_state(self, batch_size: int, dtype=None, device=None) -> LSTMStateTuple:
        """``cell.zero_state(batch_size, dtype)``: a ``(c, h)`` pair of zeros."""
        dtype = dtype or self.kernel.dtype
        device = device or self.kernel.device
        z = torch.zeros(batch_size, self.num_units, dtype=dtype, device=device)
        return LSTMStateTuple(z, z.clone())

    def canonical_weights(self) -> LayerWeights:
        """The core's weights for this cell (a differentiable gather of ``kernel``/``bias``)."""
        return to_canonical("tf", {"kernel": self.kernel, "bias": self.bias}, forget_bias=self.forget_bias)

    def _check_state(self, state, batch: int) -> Tuple[Tensor, Tensor]:
        try:
            c, h = state
        except (TypeError, ValueError):
            raise ValueError("BasicLSTMCell state must be a (c, h) pair (LSTMStateTuple)") from None
        for name, t in (("c", c), ("h", h)):
            if tuple(t.shape) != (batch, self.num_units):
                raise ValueError(f"BasicLSTMCell state {name} has shape {list(t.shape)}; "
                                 f"expected [batch, num_units] = {[batch, self.num_units]}")
        return c, h

    def sequence(self, inputs: Tensor, state, weights: Optional[LayerWeights] = None
                 ) -> Tuple[Tensor, LSTMStateTuple]:
        """Run the cell over ``inputs`` [T, B, in] from ``state``: ``(outputs [T, B, H], final state)``."""
        if inputs.dim() != 3 or inputs.shape[2] != self.input_size:
            raise ValueError(f"BasicLSTMCell inputs have shape {list(inputs.shape)}; "
                             f"expected [T, B, input_size={self.input_size}]")
        c, h = self._check_state(state, inputs.shape[1])
        w = self.canonical_weights() if weights is None else weights
        out, (h_n, c_n) = lstm(inputs, [w], (h.unsqueeze(0), c.unsqueeze(0)))
        return out, LSTMStateTuple(c_n[0], h_n[0])

    def forward(self, inputs: Tensor, state, weights: Optional[LayerWeights] = None
                ) -> Tuple[Tensor, LSTMStateTuple]:
        """One step, as TF's ``BasicLSTMCell.__call__(inputs, state)``.

        Args:
            inputs: ``[B, input_size]``.
            state: ``LSTMStateTuple(c, h)``, each ``[B, num_units]`` (TF's order: c first).
            weights: other weights to run with (:class:`compat.layouts.LayerWeights`); None: the cell's own.

        Returns:
            ``(output, new_state)``: ``output`` ``[B, num_units]`` (the new h), ``new_state`` an
            ``LSTMStateTuple(c, h)``.
        """
        if inputs.dim() != 2:
            raise ValueError(f"BasicLSTMCell input has shape {list(inputs.shape)}; expected [batch, input_size]")
        out, new_state = self.sequence(inputs.unsqueeze(0), state, weights)
        return out[0], new_state

    def extra_repr(self) -> str:
        return f"num_units={self.num_units}, input_size={self.input_size}, forget_bias={self.forget_bias}"


LoopFunction = Callable[[Tensor, int], Tensor]


def _as_list(decoder_inputs) -> List[Tensor]:
    if isinstance(decoder_inputs, Tensor):
        if decoder_inputs.dim() != 3:
            raise ValueError(f"decoder_inputs tensor has shape {list(decoder_inputs.shape)}; "
                             "expected [T, B, in] (or pass a list of [B, in] tensors)")
        return list(decoder_inputs.unbind(0))
    inputs = list(decoder_inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or t.dim() != 2:
            shape = list(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"decoder_inputs[{i}] is {shape}; expected a [batch, input_size] tensor")
    return inputs


def rnn_decoder(decoder_inputs: Union[Sequence[Tensor], Tensor], initial_state, cell,
                loop_function: Optional[LoopFunction] = None) -> Tuple[List[Tensor], object]:
    """``legacy_seq2seq.rnn_decoder``: returns ``(outputs, state)`` with ``outputs`` a list of [B, H].

    ``cell`` is a :class:`BasicLSTMCell` or any callable ``cell(x, state) -> (output, new_state)``.
    ``loop_function(prev, i)`` receives the raw output of step i - 1 and returns the input of step i.
    """
    inputs = _as_list(decoder_inputs)
    if not inputs:
        raise ValueError("rnn_decoder needs at least one decoder input (the number of steps)")
    if loop_function is None and isinstance(cell, BasicLSTMCell):
        # All inputs are known: the whole sequence in one call of the core.
        out, state = cell.sequence(torch.stack(inputs), initial_state)
        return list(out.unbind(0)), state
    weights = cell.canonical_weights() if isinstance(cell, BasicLSTMCell) else None
    state = initial_state
    outputs: List[Tensor] = []
    prev = None
    for i, inp in enumerate(inputs):
        if loop_function is not None and prev is not None:
            inp = loop_function(prev, i)
        if weights is not None:
            output, state = cell(inp, state, weights)
        else:
            output, state = cell(inp, state)
        outputs.append(output)
        if loop_function is not None:
            prev = output
    return outputs, state


# --- loop functions -------------------------------------------------------------------------------

def inferred_loop(W: Tensor, b: Tensor, embedding: Tensor) -> LoopFunction:
    """The TF cookbook's ``inferred_loop`` (03_implementing_lstm.py ``LSTM_Model``)::

        prev_transformed = prev @ W + b
        prev_symbol = stop_gradient(argmax(prev_transformed, 1))
        return embedding_lookup(embedding, prev_symbol)

    No gradient reaches ``prev`` (nor W, b through this path); the looked-up rows of ``embedding`` do get
    gradients, as in TF (the stop_gradient is on the index only).
    """
    def loop_function(prev: Tensor, i: int) -> Tensor:
        symbol = torch.argmax(prev @ W + b, dim=1).detach()
        return F.embedding(symbol, embedding)

    return loop_function


def extract_argmax_and_embed(embedding: Tensor, output_projection: Optional[Tuple[Tensor, Tensor]] = None,
                             update_embedding: bool = True) -> LoopFunction:
    """seq2seq.py ``_extract_argmax_and_embed``: optional projection, argmax, lookup; with
    ``update_embedding=False`` the looked-up rows are cut from the gradient as well."""
    def loop_function(prev: Tensor, i: int) -> Tensor:
        if output_projection is not None:
            prev = prev @ output_projection[0] + output_projection[1]
        symbol = torch.argmax(prev, dim=1)
        emb = F.embedding(symbol, embedding)
        return emb if update_embedding else emb.detach()

    return loop_function


def sample_logits(logits: Tensor, temperature: Optional[float] = None, top_k: Optional[int] = None,
                  generator: Optional[torch.Generator] = None) -> Tensor:
    """Token ids [B] from logits [B, V]: argmax when ``temperature`` is None or 0 and ``top_k`` is None;
    otherwise a draw from ``softmax(logits / temperature)`` restricted to the ``top_k`` largest logits
    (``top_k=1`` is greedy), using ``generator`` so that a seed fixes the draws."""
    if logits.dim() != 2:
        raise ValueError(f"logits have shape {list(logits.shape)}; expected [batch, vocab]")
    if temperature is not None and temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if (not temperature) and top_k is None:
        return torch.argmax(logits, dim=1)
    if not temperature:
        temperature = 1.0
    scaled = logits.detach().double() / temperature
    if top_k is not None and top_k < scaled.shape[1]:
        kth = torch.topk(scaled, top_k, dim=1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=1)
    gen_device = generator.device if generator is not None else probs.device
    draws = torch.multinomial(probs.to(gen_device), 1, generator=generator).squeeze(1)
    return draws.to(logits.device)


def sampled_loop(W: Tensor, b: Tensor, embedding: Tensor, temperature: Optional[float] = 1.0,
                 top_k: Optional[int] = None, generator: Optional[torch.Generator] = None) -> LoopFunction:
    """:func:`inferred_loop` with the argmax replaced by a temperature / top-k draw (no gradient
    through the draw)."""
    def loop_function(prev: Tensor, i: int) -> Tensor:
        symbol = sample_logits(prev @ W + b, temperature, top_k, generator).detach()
        return F.embedding(symbol, embedding)

    return loop_function


# --- losses -----------------------------------------------------------------------------------------

def _steps(x) -> List[Tensor]:
    if isinstance(x, Tensor):
        return list(x.unbind(0))
    return list(x)


def sequence_loss_by_example(logits, targets, weights, average_across_timesteps: bool = True,
                             softmax_loss_function: Optional[Callable[..., Tensor]] = None) -> Tensor:
    """seq2seq.py ``sequence_loss_by_example``: [B] log-perplexities.

    ``logits``: list of [B, V] (or a [T, B, V] tensor); ``targets``: list of [B] int ids; ``weights``: list
    of [B] floats. ``sum_t crossent_t * weight_t``, divided by ``sum_t weight_t + 1e-12`` when
    ``average_across_timesteps``. ``softmax_loss_function(labels=..., logits=...)`` replaces the sparse
    softmax cross-entropy.
    """
    logits, targets, weights = _steps(logits), _steps(targets), _steps(weights)
    if len(targets) != len(logits) or len(weights) != len(logits):
        raise ValueError("Lengths of logits, weights, and targets must be the same "
                         f"{len(logits)}, {len(weights)}, {len(targets)}.")
    if not logits:
        raise ValueError("sequence_loss_by_example needs at least one step")
    log_perps = None
    for step, (logit, target, weight) in enumerate(zip(logits, targets, weights)):
        if softmax_loss_function is None:
            target = target.reshape(-1)  # seq2seq.py reshapes only for the default loss
            if logit.dim() != 2 or logit.shape[0] != target.shape[0]:
                raise ValueError(f"step {step}: logits {list(logit.shape)} and targets {list(target.shape)} "
                                 "do not agree; expected [B, V] and [B]")
            check_token_ids(target, logit.shape[1], f"the targets of step {step}")
            # sparse_softmax_cross_entropy_with_logits
            crossent = F.cross_entropy(logit, target.long(), reduction="none")
        else:
            crossent = softmax_loss_function(labels=target, logits=logit)
        term = crossent * weight
        log_perps = term if log_perps is None else log_perps + term
    if average_across_timesteps:
        total_size = weights[0]
        for w in weights[1:]:
            total_size = total_size + w
        total_size = total_size + 1e-12  # seq2seq.py: "to avoid division by 0 for all-0 weights"
        log_perps = log_perps / total_size
    return log_perps


def sequence_loss(logits, targets, weights, average_across_timesteps: bool = True,
                  average_across_batch: bool = True,
                  softmax_loss_function: Optional[Callable[..., Tensor]] = None) -> Tensor:
    """seq2seq.py ``sequence_loss``: the batch sum of :func:`sequence_loss_by_example`, divided by the
    batch size (the first target's length) when ``average_across_batch``."""
    cost = sequence_loss_by_example(logits, targets, weights, average_across_timesteps,
                                    softmax_loss_function).sum()
    if average_across_batch:
        batch_size = _steps(targets)[0].reshape(-1).shape[0]
        return cost / batch_size
    return cost


__all__ = ["LSTMStateTuple", "BasicLSTMCell", "rnn_decoder", "inferred_loop", "extract_argmax_and_embed",
           "sample_logits", "sampled_loop", "sequence_loss_by_example", "sequence_loss"]
