"""The one LSTM core every port runs on.

Canonical parameterisation (the PyTorch / cuDNN layout), per layer::

    weight_ih [4H, in]   weight_hh [4H, H]   bias_ih [4H] or None   bias_hh [4H] or None
    rows in gate blocks  i | f | g | o

    i = sigmoid(x W_ii^T + b_ii + h W_hi^T + b_hi)      g = tanh(...)  (the cell input)
    f = sigmoid(...)                                     o = sigmoid(...)
    c' = f * c + i * g          h' = o * tanh(c')

Legacy layouts convert to and from this with :mod:`compat.layouts`. On top of the plain recurrence the
core supports the legacy frameworks' sequence semantics:

``cont`` [T, B] (Caffe's continuation input, BVLC ``recurrent_layer.cpp`` / ``lstm_layer.cpp``):
    before step t both h_{t-1} and c_{t-1} are multiplied by ``cont[t]``: h enters the recurrent product
    as ``cont_t * h_{t-1}`` and the cell keeps ``f_t * cont_t * c_{t-1}``. 0 starts a new sequence
    mid-stream; values are used as numbers, not booleans.
``mask`` [T, B] (the Theano tutorial's padding mask, DeepLearningTutorials ``lstm.py`` ``_step``):
    ``c = m * c' + (1 - m) * c_prev``, then ``h = m * (o * tanh(c)) + (1 - m) * h_prev`` (h from the
    blended c, as ``_step`` computes it): at a masked step the state and the output carry the previous
    values unchanged; fractional values blend exactly as the tutorial does.
``dropout`` with explicit placement:
    ``"output"``: on every layer's output including the last, a fresh mask every step, the recurrent
    state untouched (TF ``DropoutWrapper(output_keep_prob=...)`` around each cell of a MultiRNNCell);
    ``"between"``: on the outputs of all layers but the last (cuDNN, ``torch.nn.LSTM(dropout=...)``);
    ``"none"``. ``dropout`` is the drop probability (TF's keep_prob is ``1 - dropout``); kept values are
    scaled by ``1 / (1 - dropout)`` as both TF and PyTorch do.

Dispatch: the fused kernel (``torch.lstm``, cuDNN on CUDA, the ATen kernel on the CPU) runs whenever the
semantics allow it: no ``cont`` beyond step 0 (a ``cont`` of steps at which some stream restarts splits
the sequence into segments, each one fused call, when restarts are few), masks that are right padding
(through packed sequences), the forget bias folded into the bias. Otherwise a step loop runs. Both give
the same numbers (``tests/test_core.py``).
"""
from __future__ import annotations

import warnings
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

State = Tuple[Tensor, Tensor]

DROPOUT_PLACEMENTS = ("none", "between", "output")
BACKENDS = ("auto", "fused", "loop")


class LayerWeights(NamedTuple):
    """One layer's parameters in the canonical (PyTorch / cuDNN, gates i, f, g, o) layout."""

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Optional[Tensor] = None
    bias_hh: Optional[Tensor] = None

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]


class LSTMShapeError(ValueError):
    """An input, state or weight whose shape does not fit the others."""


def _shape(t) -> list:
    return list(t.shape)


def check_weights(weights: Sequence[LayerWeights], input_size: Optional[int] = None) -> int:
    """Validate every layer's shapes; return the hidden size. Errors name the layer and tensor."""
    if len(weights) == 0:
        raise LSTMShapeError("the LSTM needs at least one layer of weights")
    hidden = None
    expected_in = input_size
    for layer, w in enumerate(weights):
        if not isinstance(w, LayerWeights):
            w = LayerWeights(*w)
        if w.weight_hh.dim() != 2 or w.weight_hh.shape[0] != 4 * w.weight_hh.shape[1]:
            raise LSTMShapeError(f"layer {layer} weight_hh has shape {_shape(w.weight_hh)}; expected [4H, H]")
        h = w.weight_hh.shape[1]
        if hidden is None:
            hidden = h
        elif h != hidden:
            raise LSTMShapeError(f"layer {layer} weight_hh has hidden size {h}; layer 0 has {hidden}")
        if w.weight_ih.dim() != 2 or w.weight_ih.shape[0] != 4 * h:
            raise LSTMShapeError(f"layer {layer} weight_ih has shape {_shape(w.weight_ih)}; expected [4H={4 * h}, in]")
        if expected_in is not None and w.weight_ih.shape[1] != expected_in:
            what = "the input's feature size" if layer == 0 else f"layer {layer - 1}'s hidden size"
            raise LSTMShapeError(
                f"layer {layer} weight_ih has shape {_shape(w.weight_ih)}; its input size must equal {what} {expected_in}")
        for name in ("bias_ih", "bias_hh"):
            b = getattr(w, name)
            if b is not None and _shape(b) != [4 * h]:
                raise LSTMShapeError(f"layer {layer} {name} has shape {_shape(b)}; expected [4H] = [{4 * h}]")
        expected_in = h
    return hidden


class _ClampGrad(torch.autograd.Function):
    """Identity forward; clamps the incoming gradient to [-threshold, threshold]."""

    @staticmethod
    def forward(ctx, x, threshold):
        ctx.threshold = threshold
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(-ctx.threshold, ctx.threshold), None


def _recurrent_product(h: Tensor, weight_hh: Tensor, scale: Optional[Tensor], weight_grad_ignores_scale: bool) -> Tensor:
    """(scale * h) @ weight_hh^T, optionally with weight_hh's gradient taken against the unscaled h."""
    if scale is None:
        return h @ weight_hh.t()
    scaled = h * scale
    if not weight_grad_ignores_scale:
        return scaled @ weight_hh.t()
    # junhyukoh caffe-lstm lstm_layer.cpp Backward_cpu accumulates dW_h against the raw h_{t-1} even where
    # clip is 0. Forward value: (scale*h) W^T exactly (the added terms cancel to an exact 0); gradient to
    # weight_hh: g^T h (raw); gradient to h: scale * (g W), as the forward implies.
    raw = h.detach() @ weight_hh.t()
    return scaled @ weight_hh.detach().t() + (raw - raw.detach())


def _loop_layer(x: Tensor, w: LayerWeights, h: Tensor, c: Tensor, cont: Optional[Tensor], mask: Optional[Tensor],
                tanh: Callable[[Tensor], Tensor], sigmoid: Callable[[Tensor], Tensor],
                preact_grad_clip: Optional[float], weight_grad_ignores_cont: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """One layer over the whole sequence, step by step. x [T, B, in] -> ([T, B, H], h_T, c_T)."""
    x_proj = F.linear(x, w.weight_ih, w.bias_ih)  # all steps' input transforms in one product
    if w.bias_hh is not None:
        x_proj = x_proj + w.bias_hh
    outputs = []
    for t in range(x.shape[0]):
        scale = None if cont is None else cont[t].unsqueeze(1)
        gates = x_proj[t] + _recurrent_product(h, w.weight_hh, scale, weight_grad_ignores_cont)
        if scale is not None:
            c_prev = c * scale
            h_prev = h * scale
        else:
            c_prev, h_prev = c, h
        if preact_grad_clip is not None:
            gates = _ClampGrad.apply(gates, preact_grad_clip)
        i, f, g, o = gates.chunk(4, dim=1)
        c_new = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)
        if mask is not None:
            # lstm.py _step blends the cell first and takes h from the blended cell (h = o * tanh(c));
            # the same as tanh of the unblended cell for 0/1 masks, not for fractional ones.
            m = mask[t].unsqueeze(1)
            c_new = m * c_new + (1 - m) * c_prev
            h_new = m * (sigmoid(o) * tanh(c_new)) + (1 - m) * h_prev
        else:
            h_new = sigmoid(o) * tanh(c_new)
        h, c = h_new, c_new
        outputs.append(h)
    return torch.stack(outputs), h, c


def _flat_weights(weights: Sequence[LayerWeights]) -> Tuple[list, bool]:
    has_bias = any(w.bias_ih is not None or w.bias_hh is not None for w in weights)
    flat = []
    for w in weights:
        flat += [w.weight_ih, w.weight_hh]
        if has_bias:
            zeros = None
            for b in (w.bias_ih, w.bias_hh):
                if b is None:
                    zeros = zeros if zeros is not None else w.weight_hh.new_zeros(w.weight_hh.shape[0])
                    b = zeros
                flat.append(b)
    return flat, has_bias


def _fused(x: Tensor, weights: Sequence[LayerWeights], h0: Tensor, c0: Tensor, dropout: float,
           training: bool) -> Tuple[Tensor, Tensor, Tensor]:
    flat, has_bias = _flat_weights(weights)
    with warnings.catch_warnings():
        # cuDNN copies non-contiguous weights into one buffer per call (once per forward, not per step).
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        out, h_n, c_n = torch.lstm(x, (h0, c0), flat, has_bias, len(weights), dropout, training, False, False)
    return out, h_n, c_n


def _fused_packed(x: Tensor, lengths: Tensor, weights: Sequence[LayerWeights], h0: Tensor, c0: Tensor,
                  dropout: float, training: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """Right-padded sequences through packed cuDNN; outputs past a sequence's end carry its last h."""
    T, B, _ = x.shape
    H = weights[0].hidden_size
    nonempty = (lengths > 0).nonzero().flatten()
    out_full = h0[-1].unsqueeze(0).expand(T, B, H)
    h_n, c_n = h0, c0
    if nonempty.numel() == 0:
        return out_full.contiguous(), h_n, c_n
    all_nonempty = nonempty.numel() == B
    xs = x if all_nonempty else x.index_select(1, nonempty)
    lens = lengths if all_nonempty else lengths.index_select(0, nonempty)
    packed = pack_padded_sequence(xs, lens.cpu(), enforce_sorted=False)
    hs = h0 if all_nonempty else h0.index_select(1, nonempty)
    cs = c0 if all_nonempty else c0.index_select(1, nonempty)
    hs = hs.index_select(1, packed.sorted_indices)
    cs = cs.index_select(1, packed.sorted_indices)
    flat, has_bias = _flat_weights(weights)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        out_data, hn, cn = torch.lstm(packed.data, packed.batch_sizes, (hs, cs), flat, has_bias, len(weights),
                                      dropout, training, False)
    hn = hn.index_select(1, packed.unsorted_indices)
    cn = cn.index_select(1, packed.unsorted_indices)
    out, _ = pad_packed_sequence(
        PackedSequence(out_data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices),
        total_length=T)
    steps = torch.arange(T, device=x.device).unsqueeze(1)
    valid = (steps < lens.unsqueeze(0)).unsqueeze(2)
    out = torch.where(valid, out, hn[-1].unsqueeze(0))
    if all_nonempty:
        return out, hn, cn
    out_full = out_full.index_copy(1, nonempty, out)
    h_n = h0.index_copy(1, nonempty, hn)
    c_n = c0.index_copy(1, nonempty, cn)
    return out_full, h_n, c_n


def right_padded_lengths(mask: Tensor) -> Optional[Tensor]:
    """Lengths if ``mask`` is 0/1 right padding (ones then zeros in each column), else None."""
    lengths = (mask != 0).sum(0)
    expected = (torch.arange(mask.shape[0], device=mask.device).unsqueeze(1) < lengths.unsqueeze(0)).to(mask.dtype)
    return lengths if torch.equal(mask, expected) else None


def _restart_steps(cont: Tensor) -> list:
    """Steps t >= 1 at which some stream's cont differs from 1."""
    return ((cont[1:] != 1).any(dim=1).nonzero().flatten() + 1).tolist()


def lstm(x: Tensor, weights: Sequence[LayerWeights], hx: Optional[State] = None, *,
         cont: Optional[Tensor] = None, mask: Optional[Tensor] = None, batch_first: bool = False,
         dropout: float = 0.0, dropout_placement: str = "between", training: bool = False,
         tanh: Optional[Callable[[Tensor], Tensor]] = None, gate_activation: Optional[Callable[[Tensor], Tensor]] = None,
         preact_grad_clip: Optional[float] = None, recurrent_weight_grad_ignores_cont: bool = False,
         backend: str = "auto") -> Tuple[Tensor, State]:
    """Run a stacked LSTM over a sequence. The functional form of :class:`LSTM`.

    Args:
        x: [T, B, in] (or [B, T, in] with ``batch_first``).
        weights: one :class:`LayerWeights` per layer, canonical layout.
        hx: ``(h0, c0)``, each [layers, B, H]; zeros when None.
        cont: [T, B] (or [B, T] with ``batch_first``) continuation multipliers, Caffe semantics.
        mask: [T, B] (or [B, T]) padding mask, Theano tutorial semantics. Not together with ``cont``.
        dropout: drop probability, applied in training only, where ``dropout_placement`` says.
        tanh: replaces tanh for the cell input and the cell output (Caffe's 2*sigmoid(2x)-1); step loop.
        gate_activation: replaces the sigmoid of the i, f and o gates (Keras 1/2's default
            ``hard_sigmoid``, ``clip(0.2 x + 0.5, 0, 1)``); step loop.
        preact_grad_clip: clamps the gradient of the gate pre-activations to +-value at each step
            (junhyukoh caffe-lstm ``clipping_threshold``; must be > 0, None for no clamp); step loop.
        recurrent_weight_grad_ignores_cont: weight_hh's gradient uses the raw h_{t-1} even where cont
            scales it (junhyukoh caffe-lstm's dW_h defect); step loop.
        backend: ``"auto"``, or force ``"fused"`` / ``"loop"`` (tests compare the two).

    Returns:
        ``(output, (h_n, c_n))``: the top layer's h at every step [T, B, H] (dropped out under the
        ``"output"`` placement), and the final state of every layer, each [layers, B, H].
    """
    if dropout_placement not in DROPOUT_PLACEMENTS:
        raise ValueError(f"dropout_placement must be one of {DROPOUT_PLACEMENTS}, not {dropout_placement!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout is a drop probability in [0, 1); got {dropout}")
    if x.dim() != 3:
        raise LSTMShapeError(f"input x has shape {_shape(x)}; expected 3 dimensions "
                             f"({'[B, T, in]' if batch_first else '[T, B, in]'})")
    weights = [w if isinstance(w, LayerWeights) else LayerWeights(*w) for w in weights]
    hidden = check_weights(weights, x.shape[2])
    if x.shape[1 if batch_first else 0] == 0:
        raise LSTMShapeError(f"input x has shape {_shape(x)}: no time steps")
    if preact_grad_clip is not None and not preact_grad_clip > 0:
        raise ValueError(f"preact_grad_clip must be > 0 (None for no clamp); got {preact_grad_clip}")
    for layer, w in enumerate(weights):
        for name, t in zip(LayerWeights._fields, w):
            if t is not None and (t.dtype != x.dtype or t.device != x.device):
                raise LSTMShapeError(f"layer {layer} {name} has dtype {t.dtype} on {t.device}; "
                                     f"the input x has dtype {x.dtype} on {x.device}")
    if batch_first:
        x = x.transpose(0, 1)
        cont = None if cont is None else cont.transpose(0, 1)
        mask = None if mask is None else mask.transpose(0, 1)
    T, B, _ = x.shape
    L = len(weights)
    for name, seq in (("cont", cont), ("mask", mask)):
        if seq is not None and _shape(seq) != [T, B]:
            layout = "[B, T]" if batch_first else "[T, B]"
            raise LSTMShapeError(f"{name} has shape {_shape(seq.transpose(0, 1) if batch_first else seq)}; "
                                 f"expected {layout} = {[B, T] if batch_first else [T, B]} to match the input")
    if cont is not None and mask is not None:
        raise ValueError("cont (Caffe) and mask (Theano) are different sequence semantics; pass one of them")
    if hx is None:
        zeros = x.new_zeros(L, B, hidden)
        h0, c0 = zeros, zeros
    else:
        h0, c0 = hx
        for name, s in (("h0", h0), ("c0", c0)):
            if _shape(s) != [L, B, hidden]:
                raise LSTMShapeError(f"initial state {name} has shape {_shape(s)}; expected [layers, B, H] = {[L, B, hidden]}")
            if s.dtype != x.dtype or s.device != x.device:
                raise LSTMShapeError(f"initial state {name} has dtype {s.dtype} on {s.device}; "
                                     f"the input x has dtype {x.dtype} on {x.device}")
    if cont is not None and cont.dtype != x.dtype:
        cont = cont.to(x.dtype)
    if mask is not None and mask.dtype != x.dtype:
        mask = mask.to(x.dtype)
    p = dropout if (training and dropout_placement != "none") else 0.0

    # Semantics only the step loop has; then, when the fused kernel would only be slower.
    loop_only = (tanh is not None or gate_activation is not None or preact_grad_clip is not None
                 or recurrent_weight_grad_ignores_cont)
    lengths = None
    restarts: list = []
    all_empty = False
    if mask is not None and not loop_only:
        lengths = right_padded_lengths(mask)
        loop_only = lengths is None
        if lengths is not None and not bool(lengths.any()):
            # Every column empty: the packed kernel has nothing to run and would cut the graph at h0;
            # the loop keeps the (zero) gradients of the weights, for any backend.
            lengths, all_empty = None, True
    if backend == "fused" and loop_only:
        raise ValueError("the fused kernel cannot run these semantics (custom tanh or gate activation, gradient "
                         "clipping, the dW_h quirk, or a mask that is not right padding); "
                         "use backend='loop' or 'auto'")
    loop_faster = False
    if cont is not None and not loop_only and backend != "loop":
        restarts = _restart_steps(cont)
        # Each restart step costs one fused call; past a few, the step loop is as fast.
        loop_faster = len(restarts) > max(4, T // 8)
    # One step on the CPU: the fused kernel repacks its weights on every call, which costs more than
    # the step itself (a sampler or a batch-1, steps-1 evaluation runs one call per token).
    single_cpu_step = T == 1 and x.device.type == "cpu"
    use_loop = backend == "loop" or all_empty or (backend == "auto" and (loop_only or loop_faster or single_cpu_step))

    if use_loop:
        tanh_fn = torch.tanh if tanh is None else tanh
        sigmoid_fn = torch.sigmoid if gate_activation is None else gate_activation
        inp = x
        h_n, c_n = [], []
        for layer, w in enumerate(weights):
            out, h, c = _loop_layer(inp, w, h0[layer], c0[layer], cont, mask, tanh_fn, sigmoid_fn,
                                    preact_grad_clip, recurrent_weight_grad_ignores_cont)
            h_n.append(h)
            c_n.append(c)
            if p > 0 and (layer < L - 1 or dropout_placement == "output"):
                out = F.dropout(out, p, training=True)
            inp = out
        output, state = inp, (torch.stack(h_n), torch.stack(c_n))
    else:
        p_between = p if L > 1 else 0.0
        if lengths is not None:
            output, h_n, c_n = _fused_packed(x, lengths, weights, h0, c0, p_between, training)
        elif cont is None:
            output, h_n, c_n = _fused(x, weights, h0, c0, p_between, training)
        else:
            bounds = [0] + restarts + [T]
            pieces = []
            h_n, c_n = h0, c0
            for start, stop in zip(bounds[:-1], bounds[1:]):
                scale = cont[start].view(1, B, 1)
                out, h_n, c_n = _fused(x[start:stop], weights, h_n * scale, c_n * scale, p_between, training)
                pieces.append(out)
            output = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        if p > 0 and dropout_placement == "output":
            output = F.dropout(output, p, training=True)
        state = (h_n, c_n)
    if batch_first:
        output = output.transpose(0, 1)
    return output, state


class LSTM(nn.Module):
    """Stacked LSTM module over the canonical parameters, named as in ``torch.nn.LSTM``.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    dropout_placement="between")``; ``forward(x, hx=None, *, cont=None, mask=None)`` ->
    ``(output, (h_n, c_n))`` with the semantics of :func:`lstm`. Its state dict loads into and from
    ``torch.nn.LSTM`` of the same sizes.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, dropout_placement: str = "between",
                 device=None, dtype=None):
        super().__init__()
        if dropout_placement not in DROPOUT_PLACEMENTS:
            raise ValueError(f"dropout_placement must be one of {DROPOUT_PLACEMENTS}, not {dropout_placement!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.dropout_placement = dropout, dropout_placement
        factory = dict(device=device, dtype=dtype)
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(4 * hidden_size, in_size, **factory)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(4 * hidden_size, hidden_size, **factory)))
            if bias:
                self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(4 * hidden_size, **factory)))
                self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(4 * hidden_size, **factory)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)), as torch.nn.LSTM."""
        bound = 1.0 / self.hidden_size ** 0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_weights(self) -> list:
        """The canonical :class:`LayerWeights` of every layer (the live parameters)."""
        return [LayerWeights(getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}"),
                             getattr(self, f"bias_ih_l{k}", None), getattr(self, f"bias_hh_l{k}", None))
                for k in range(self.num_layers)]

    def forward(self, x: Tensor, hx: Optional[State] = None, *, cont: Optional[Tensor] = None,
                mask: Optional[Tensor] = None, backend: str = "auto") -> Tuple[Tensor, State]:
        return lstm(x, self.layer_weights(), hx, cont=cont, mask=mask, batch_first=self.batch_first,
                    dropout=self.dropout, dropout_placement=self.dropout_placement, training=self.training,
                    backend=backend)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, bias={self.bias}, "
                f"batch_first={self.batch_first}, dropout={self.dropout}, "
                f"dropout_placement={self.dropout_placement!r}")


def weights_from_torch(module: nn.LSTM) -> list:
    """The canonical weights of a unidirectional ``torch.nn.LSTM`` (its live parameters)."""
    if module.bidirectional or getattr(module, "proj_size", 0):
        raise ValueError("only unidirectional torch.nn.LSTM without projections maps onto the canonical layout")
    return [LayerWeights(getattr(module, f"weight_ih_l{k}"), getattr(module, f"weight_hh_l{k}"),
                         getattr(module, f"bias_ih_l{k}", None), getattr(module, f"bias_hh_l{k}", None))
            for k in range(module.num_layers)]
