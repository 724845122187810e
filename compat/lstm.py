"""The one LSTM core every port runs on.

Canonical parameterisation (the PyTorch / cuDNN layout), per layer and direction::

    weight_ih [4H, in]   weight_hh [4H, P]   bias_ih [4H] or None   bias_hh [4H] or None
    weight_hr [P, H] or None (projection)     peephole [3, H] or None (rows i, f, o)
    rows in gate blocks  i | f | g | o;  P = weight_hr's rows, or H without a projection

    i = sigmoid(x W_ii^T + b_ii + h W_hi^T + b_hi + p_i * c)      g = tanh(...)  (the cell input)
    f = sigmoid(... + p_f * c)                                     c' = f * c + i * g
    o = sigmoid(... + p_o * c')                                    h' = (o * tanh(c')) W_hr^T

Without peepholes the p terms are absent; without a projection h' = o * tanh(c'). Legacy layouts convert
to and from this with :mod:`compat.layouts`. On top of the plain recurrence the core supports the legacy
frameworks' sequence semantics:

``cont`` [T, B] (Caffe's continuation input, BVLC ``recurrent_layer.cpp`` / ``lstm_layer.cpp``):
    before step t both h_{t-1} and c_{t-1} are multiplied by ``cont[t]``: h enters the recurrent product
    as ``cont_t * h_{t-1}`` and the cell keeps ``f_t * cont_t * c_{t-1}``. 0 starts a new sequence
    mid-stream; values are used as numbers, not booleans.
``mask`` [T, B] (the Theano tutorial's padding mask, DeepLearningTutorials ``lstm.py`` ``_step``):
    ``c = m * c' + (1 - m) * c_prev``, then ``h = m * (o * tanh(c)) + (1 - m) * h_prev`` (h from the
    blended c, as ``_step`` computes it): at a masked step the state and the output carry the previous
    values unchanged; fractional values blend exactly as the tutorial does. (Keras's masking carries
    the state the same way; what Keras outputs at a masked step differs by version, see
    ``reference/keras_lstm.py``.)
``lengths`` [B] (TF ``dynamic_rnn(sequence_length=...)``, ONNX ``sequence_lens``, PyTorch packed
    sequences): right-padded sequences; outputs past a sequence's end are 0 and its final state is the
    state at its last valid step (the initial state for a length of 0).
``direction``: ``"forward"``; ``"reverse"`` (each layer reads the sequence back to front, only each
    sequence's valid prefix with ``lengths`` as ``tf.reverse_sequence`` and packed sequences do, the whole
    time axis without, mask included as Keras ``go_backwards`` does; outputs come back in the original
    time order); ``"bidirectional"`` (every layer is a (forward, backward) pair; its output is
    concat(forward, backward) on the feature axis; h_n / c_n are ordered layer 0 forward, layer 0
    backward, layer 1 forward, ... as ``torch.nn.LSTM``).
``dropout`` with explicit placement:
    ``"output"``: on every layer's output including the last, a fresh mask every step, the recurrent
    state untouched (TF ``DropoutWrapper(output_keep_prob=...)`` around each cell of a MultiRNNCell);
    ``"between"``: on the outputs of all layers but the last (cuDNN, ``torch.nn.LSTM(dropout=...)``);
    ``"none"``. ``dropout`` is the drop probability (TF's keep_prob is ``1 - dropout``); kept values are
    scaled by ``1 / (1 - dropout)`` as both TF and PyTorch do.
Cell variants (the step loop; :class:`compat.lstm_loop.StepSemantics` gives the order): peepholes, a
    projection with ``proj_clip``, ``cell_clip`` (TF ``LSTMCell``), ``preact_clip`` and ``input_forget``
    (ONNX ``clip``, ``input_forget``), named ``activations`` (:mod:`compat.lstm_activations`).

Dispatch: the fused kernel (``torch.lstm``, cuDNN on CUDA, the ATen kernel on the CPU) runs whenever the
semantics allow it: projections with P < H, bidirectional and reverse stacks, ``lengths`` and packed
sequences, no ``cont`` beyond step 0 (a ``cont`` of steps at which some stream restarts splits the
sequence into segments, each one fused call, when restarts are few), masks that are right padding
(through packed sequences), the forget bias folded into the bias. Otherwise a step loop runs. Both give
the same numbers (``tests/test_core.py``, ``tests/test_variants.py``).
"""
from __future__ import annotations

import warnings
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from compat import lstm_activations
from compat.lstm_activations import ACTIVATIONS  # noqa: F401  (re-exported: the names ``activations`` takes)
from compat.lstm_loop import StepSemantics, loop_layer, variant_loop_layer

State = Tuple[Tensor, Tensor]

DROPOUT_PLACEMENTS = ("none", "between", "output")
BACKENDS = ("auto", "fused", "loop")
DIRECTIONS = ("forward", "reverse", "bidirectional")


class LayerWeights(NamedTuple):
    """One layer's (one direction's) parameters in the canonical (PyTorch / cuDNN, gates i, f, g, o) layout."""

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Optional[Tensor] = None
    bias_hh: Optional[Tensor] = None
    weight_hr: Optional[Tensor] = None
    peephole: Optional[Tensor] = None

    @property
    def hidden_size(self) -> int:
        """H: the cell state's width."""
        return self.weight_hh.shape[0] // 4

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    @property
    def proj_size(self) -> int:
        """P with a projection, 0 without (as ``torch.nn.LSTM``)."""
        return 0 if self.weight_hr is None else self.weight_hr.shape[0]

    @property
    def output_size(self) -> int:
        """The width of h and of the outputs: P with a projection, else H."""
        return self.proj_size or self.hidden_size


class LSTMShapeError(ValueError):
    """An input, state or weight whose shape does not fit the others."""


def _shape(t) -> list:
    return list(t.shape)


def _as_layer(w) -> LayerWeights:
    return w if isinstance(w, LayerWeights) else LayerWeights(*w)


def _is_pair(entry) -> bool:
    """A (forward, backward) pair of layer weights rather than one layer's tensors."""
    return (isinstance(entry, (tuple, list)) and not isinstance(entry, LayerWeights) and len(entry) == 2
            and all(isinstance(e, (tuple, list)) for e in entry))


def _layers(weights, directions: int) -> List[Tuple[LayerWeights, ...]]:
    """Per layer a tuple of one (or, bidirectional, two) :class:`LayerWeights`."""
    out = []
    for k, entry in enumerate(weights):
        if directions == 1 and isinstance(entry, LayerWeights):
            out.append((entry,))
        elif directions == 2:
            if not _is_pair(entry):
                raise LSTMShapeError(f"direction='bidirectional' takes a (forward, backward) pair of layer weights "
                                     f"per layer; layer {k} is not one")
            out.append((_as_layer(entry[0]), _as_layer(entry[1])))
        else:
            if _is_pair(entry):
                raise LSTMShapeError(f"layer {k} is a (forward, backward) pair: pass direction='bidirectional'")
            out.append((_as_layer(entry),))
    return out


def _where(layer: int, d: int, directions: int) -> str:
    return f"layer {layer}" if directions == 1 else f"layer {layer} {('forward', 'backward')[d]}"


def _check_layers(layers: Sequence[Tuple[LayerWeights, ...]], input_size: Optional[int]) -> Tuple[int, int]:
    """Validate every layer's shapes; return (H, P). Errors name the layer, direction and tensor."""
    if len(layers) == 0:
        raise LSTMShapeError("the LSTM needs at least one layer of weights")
    D = len(layers[0])
    hidden = proj = None
    has_proj = layers[0][0].weight_hr is not None
    expected_in = input_size
    for layer, dirs in enumerate(layers):
        for d, w in enumerate(dirs):
            w_hh, w_ih, w_hr = w.weight_hh, w.weight_ih, w.weight_hr
            hh, ih = w_hh.shape, w_ih.shape
            if len(hh) != 2 or hh[0] == 0 or hh[0] % 4:
                raise LSTMShapeError(f"{_where(layer, d, D)} weight_hh has shape {list(hh)}; expected [4H, H] "
                                     "(or [4H, P] with a projection)")
            h = hh[0] // 4
            if hidden is None:
                hidden = h
            elif h != hidden:
                raise LSTMShapeError(f"{_where(layer, d, D)} weight_hh has hidden size {h}; layer 0 has {hidden}")
            if w_hr is None:
                if has_proj:
                    raise LSTMShapeError(f"{_where(layer, d, D)} lacks a projection weight_hr; every layer needs one "
                                         "or none")
                p = h
            else:
                if not has_proj:
                    raise LSTMShapeError(f"{_where(layer, d, D)} has a projection weight_hr; every layer needs one "
                                         "or none")
                hr = w_hr.shape
                if len(hr) != 2 or hr[1] != h or hr[0] == 0:
                    raise LSTMShapeError(f"{_where(layer, d, D)} weight_hr has shape {list(hr)}; expected [P, H={h}]")
                p = hr[0]
            if proj is None:
                proj = p
            elif p != proj:
                raise LSTMShapeError(f"{_where(layer, d, D)} weight_hr has shape {_shape(w_hr)}; layer 0 projects "
                                     f"to {proj}")
            if hh[1] != p:
                expected = f"[4H, H] = {[4 * h, h]}" if w_hr is None else f"[4H, P] = {[4 * h, p]}"
                raise LSTMShapeError(f"{_where(layer, d, D)} weight_hh has shape {list(hh)}; expected {expected}")
            if len(ih) != 2 or ih[0] != 4 * h:
                raise LSTMShapeError(f"{_where(layer, d, D)} weight_ih has shape {list(ih)}; expected [4H={4 * h}, in]")
            if expected_in is not None and ih[1] != expected_in:
                if layer == 0:
                    what = "the input's feature size"
                else:
                    what = f"layer {layer - 1}'s output size" + (" (both directions)" if D == 2 else "")
                raise LSTMShapeError(f"{_where(layer, d, D)} weight_ih has shape {list(ih)}; "
                                     f"its input size must equal {what} {expected_in}")
            for name, b in (("bias_ih", w.bias_ih), ("bias_hh", w.bias_hh)):
                if b is not None and (b.dim() != 1 or b.shape[0] != 4 * h):
                    raise LSTMShapeError(f"{_where(layer, d, D)} {name} has shape {_shape(b)}; expected [4H] = [{4 * h}]")
            if w.peephole is not None and _shape(w.peephole) != [3, h]:
                raise LSTMShapeError(f"{_where(layer, d, D)} peephole has shape {_shape(w.peephole)}; expected [3, H] = "
                                     f"[3, {h}] (rows i, f, o)")
        expected_in = D * proj
    return hidden, proj


def check_weights(weights, input_size: Optional[int] = None, direction: str = "forward") -> int:
    """Validate every layer's shapes; return the hidden size H. Errors name the layer and tensor."""
    return _check_layers(_layers(weights, 2 if direction == "bidirectional" else 1), input_size)[0]


# ------------------------------------------------------------------------------------------ fused kernel
def _flat_weights(layers: Sequence[Tuple[LayerWeights, ...]]) -> Tuple[list, bool]:
    """torch.lstm's flat parameter list: per layer and direction w_ih, w_hh, [b_ih, b_hh], [w_hr]."""
    has_bias = any(w.bias_ih is not None or w.bias_hh is not None for dirs in layers for w in dirs)
    flat = []
    for dirs in layers:
        for w in dirs:
            flat += [w.weight_ih, w.weight_hh]
            if has_bias:
                zeros = None
                for b in (w.bias_ih, w.bias_hh):
                    if b is None:
                        zeros = zeros if zeros is not None else w.weight_hh.new_zeros(w.weight_hh.shape[0])
                        b = zeros
                    flat.append(b)
            if w.weight_hr is not None:
                flat.append(w.weight_hr)
    # cuDNN copies the weights into one buffer through flat views, which fails on the transposed views
    # the Keras and ONNX layouts give ("view size is not compatible with input tensor's size and stride").
    flat = [t.contiguous() if t.is_cuda else t for t in flat]
    return flat, has_bias


def _kernel_mode(dropout: float, training: bool, tensors) -> Tuple[float, bool]:
    """torch.lstm's ``(dropout, train)``. ``train`` also tells cuDNN to keep what a backward needs, and a
    backward through a call made with train=False fails on CUDA ("cudnn RNN backward can only be called in
    training mode"; the CPU kernels do not mind, and keep their inference path): on CUDA, where a gradient
    is wanted, the call is made in training mode with the dropout switched off unless ``training``. The
    forward values are the same either way."""
    if training or not tensors[0].is_cuda:
        return (dropout if training else 0.0), training
    wants_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    return 0.0, wants_grad


def _fused(x: Tensor, layers, h0: Tensor, c0: Tensor, dropout: float, training: bool,
           bidirectional: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
    flat, has_bias = _flat_weights(layers)
    dropout, training = _kernel_mode(dropout, training, [x, h0, c0, *flat])
    with warnings.catch_warnings():
        # cuDNN copies non-contiguous weights into one buffer per call (once per forward, not per step).
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        # the CPU falls back from oneDNN to ATen's kernel for projections: a note, not a problem
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        out, h_n, c_n = torch.lstm(x, (h0, c0), flat, has_bias, len(layers), dropout, training, bidirectional, False)
    return out, h_n, c_n


def _fused_on_packed(packed: PackedSequence, layers, h0: Tensor, c0: Tensor, dropout: float, training: bool,
                     bidirectional: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """torch.lstm on a PackedSequence's data, states in the caller's batch order (as torch.nn.LSTM)."""
    if packed.sorted_indices is not None:
        h0 = h0.index_select(1, packed.sorted_indices)
        c0 = c0.index_select(1, packed.sorted_indices)
    flat, has_bias = _flat_weights(layers)
    dropout, training = _kernel_mode(dropout, training, [packed.data, h0, c0, *flat])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        data, h_n, c_n = torch.lstm(packed.data, packed.batch_sizes, (h0, c0), flat, has_bias, len(layers),
                                    dropout, training, bidirectional)
    if packed.unsorted_indices is not None:
        h_n = h_n.index_select(1, packed.unsorted_indices)
        c_n = c_n.index_select(1, packed.unsorted_indices)
    return data, h_n, c_n


def _fused_packed(x: Tensor, lengths: Tensor, layers, h0: Tensor, c0: Tensor, dropout: float, training: bool,
                  bidirectional: bool = False, carry_last: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """Right-padded sequences through the packed kernel.

    Outputs past a sequence's end: its last h (``carry_last``, the mask semantics, one direction) or 0
    (the ``lengths`` semantics). Zero-length columns keep their initial state.
    """
    T, B, _ = x.shape
    out_width = h0.shape[2] * (2 if bidirectional else 1)
    nonempty = (lengths > 0).nonzero().flatten()
    if carry_last:
        out_full = h0[-1].unsqueeze(0).expand(T, B, out_width)
    else:
        out_full = h0.new_zeros(T, B, out_width)
    h_n, c_n = h0, c0
    if nonempty.numel() == 0:
        return out_full.contiguous(), h_n, c_n
    all_nonempty = nonempty.numel() == B
    xs = x if all_nonempty else x.index_select(1, nonempty)
    lens = lengths if all_nonempty else lengths.index_select(0, nonempty)
    packed = pack_padded_sequence(xs, lens.cpu(), enforce_sorted=False)
    hs = h0 if all_nonempty else h0.index_select(1, nonempty)
    cs = c0 if all_nonempty else c0.index_select(1, nonempty)
    out_data, hn, cn = _fused_on_packed(packed, layers, hs, cs, dropout, training, bidirectional)
    out, _ = pad_packed_sequence(
        PackedSequence(out_data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices),
        total_length=T)
    if carry_last:
        steps = torch.arange(T, device=x.device).unsqueeze(1)
        valid = (steps < lens.unsqueeze(0)).unsqueeze(2)
        out = torch.where(valid, out, hn[-1].unsqueeze(0))
    if all_nonempty:
        return out, hn, cn
    out_full = out_full.index_copy(1, nonempty, out)
    h_n = h0.index_copy(1, nonempty, hn)
    c_n = c0.index_copy(1, nonempty, cn)
    return out_full, h_n, c_n


# ------------------------------------------------------------------------------------------- helpers
def right_padded_lengths(mask: Tensor) -> Optional[Tensor]:
    """Lengths if ``mask`` is 0/1 right padding (ones then zeros in each column), else None."""
    lengths = (mask != 0).sum(0)
    expected = (torch.arange(mask.shape[0], device=mask.device).unsqueeze(1) < lengths.unsqueeze(0)).to(mask.dtype)
    return lengths if torch.equal(mask, expected) else None


def _restart_steps(cont: Tensor) -> list:
    """Steps t >= 1 at which some stream's cont differs from 1."""
    return ((cont[1:] != 1).any(dim=1).nonzero().flatten() + 1).tolist()


def _reversal_index(T: int, lengths: Optional[Tensor]) -> Optional[Tensor]:
    """[T, B] gather index reversing each column's first lengths[b] steps (None: reverse all of them)."""
    if lengths is None:
        return None
    steps = torch.arange(T, device=lengths.device).unsqueeze(1)
    return torch.where(steps < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - steps, steps)


def _reverse_time(x: Tensor, index: Optional[Tensor]) -> Tensor:
    """x [T, B, ...] read back to front (tf.reverse_sequence with lengths, tf.reverse without)."""
    if index is None:
        return x.flip(0)
    return x.gather(0, index.view(index.shape + (1,) * (x.dim() - 2)).expand_as(x))


def _check_clip(name: str, value) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0 (None for no clipping); got {value}")
    return value


def _check_lengths(lengths, T: int, B: int, device) -> Tensor:
    lengths = torch.as_tensor(lengths)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.dtype.is_complex:
        raise LSTMShapeError(f"lengths must hold integers; got dtype {lengths.dtype}")
    if _shape(lengths) != [B]:
        raise LSTMShapeError(f"lengths has shape {_shape(lengths)}; expected [B] = [{B}]")
    lengths = lengths.to(device=device, dtype=torch.int64)
    if bool(((lengths < 0) | (lengths > T)).any()):
        raise LSTMShapeError(f"lengths {lengths.tolist()} must lie in [0, T={T}]")
    return lengths


# ------------------------------------------------------------------------------------------ the core
def lstm(x, weights, hx: Optional[State] = None, *,
         cont: Optional[Tensor] = None, mask: Optional[Tensor] = None, batch_first: bool = False,
         dropout: float = 0.0, dropout_placement: str = "between", training: bool = False,
         tanh: Optional[Callable[[Tensor], Tensor]] = None, gate_activation: Optional[Callable[[Tensor], Tensor]] = None,
         preact_grad_clip: Optional[float] = None, recurrent_weight_grad_ignores_cont: bool = False,
         backend: str = "auto", direction: str = "forward", lengths=None, cell_clip: Optional[float] = None,
         proj_clip: Optional[float] = None, preact_clip: Optional[float] = None, input_forget: bool = False,
         activations=None):
    """Run a stacked LSTM over a sequence. The functional form of :class:`LSTM`.

    Args:
        x: [T, B, in] (or [B, T, in] with ``batch_first``), or a ``PackedSequence`` (then the output is
            one too, as ``torch.nn.LSTM``; ``cont``, ``mask`` and ``lengths`` do not apply).
        weights: per layer one :class:`LayerWeights` (canonical layout), or a (forward, backward) pair
            of them with ``direction="bidirectional"``.
        hx: ``(h0, c0)``, h0 [layers * directions, B, P], c0 [layers * directions, B, H]; zeros when None.
        cont: [T, B] (or [B, T] with ``batch_first``) continuation multipliers, Caffe semantics;
            forward direction only.
        mask: [T, B] (or [B, T]) padding mask, Theano tutorial semantics. Not together with ``cont``.
        lengths: [B] integer valid lengths of right-padded sequences (outputs past them are 0, the final
            state is the last valid step's). Not together with ``cont`` or ``mask``.
        direction: ``"forward"``, ``"reverse"`` or ``"bidirectional"`` (see the module docstring).
        dropout: drop probability, applied in training only, where ``dropout_placement`` says.
        tanh: replaces tanh for the cell input and the cell output (Caffe's 2*sigmoid(2x)-1); step loop.
        gate_activation: replaces the sigmoid of the i, f and o gates (Keras 1/2's default
            ``hard_sigmoid``, ``clip(0.2 x + 0.5, 0, 1)``); step loop.
        activations: ``(gate, cell input, cell output)`` names from :data:`ACTIVATIONS` (or
            ``(name, alpha, beta)`` tuples); not together with ``tanh`` / ``gate_activation``.
        cell_clip: clamps c to [-v, v] after each update (TF ``LSTMCell(cell_clip=...)``); step loop.
        proj_clip: clamps the projected h to [-v, v] (TF ``LSTMCell(proj_clip=...)``); needs weight_hr.
        preact_clip: clamps every gate pre-activation to [-v, v] (ONNX ``clip``); step loop.
        input_forget: the forget gate is 1 - i (ONNX ``input_forget=1``); step loop.
        preact_grad_clip: clamps the gradient of the gate pre-activations to +-value at each step
            (junhyukoh caffe-lstm ``clipping_threshold``; must be > 0, None for no clamp); step loop.
        recurrent_weight_grad_ignores_cont: weight_hh's gradient uses the raw h_{t-1} even where cont
            scales it (junhyukoh caffe-lstm's dW_h defect); step loop.
        backend: ``"auto"``, or force ``"fused"`` / ``"loop"`` (tests compare the two).

    Returns:
        ``(output, (h_n, c_n))``: the top layer's h at every step [T, B, D * P] (dropped out under the
        ``"output"`` placement), and the final state of every layer and direction.
    """
    if dropout_placement not in DROPOUT_PLACEMENTS:
        raise ValueError(f"dropout_placement must be one of {DROPOUT_PLACEMENTS}, not {dropout_placement!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout is a drop probability in [0, 1); got {dropout}")
    packed = x if isinstance(x, PackedSequence) else None
    if packed is not None:
        for name, value in (("cont", cont), ("mask", mask), ("lengths", lengths)):
            if value is not None:
                raise ValueError(f"{name} does not apply to a PackedSequence input (it carries its own lengths)")
        x = packed.data
    elif not isinstance(x, Tensor) or x.dim() != 3:
        raise LSTMShapeError(f"input x has shape {_shape(x) if isinstance(x, Tensor) else type(x).__name__}; "
                             f"expected 3 dimensions ({'[B, T, in]' if batch_first else '[T, B, in]'})")
    D = 2 if direction == "bidirectional" else 1
    layers = _layers(weights, D)
    hidden, proj = _check_layers(layers, x.shape[-1])
    if packed is None and x.shape[1 if batch_first else 0] == 0:
        raise LSTMShapeError(f"input x has shape {_shape(x)}: no time steps")
    if preact_grad_clip is not None and not preact_grad_clip > 0:
        raise ValueError(f"preact_grad_clip must be > 0 (None for no clamp); got {preact_grad_clip}")
    if cell_clip is not None or proj_clip is not None or preact_clip is not None:
        cell_clip = _check_clip("cell_clip", cell_clip)
        proj_clip = _check_clip("proj_clip", proj_clip)
        preact_clip = _check_clip("preact_clip", preact_clip)
    has_proj = layers[0][0].weight_hr is not None
    if proj_clip is not None and not has_proj:
        raise ValueError("proj_clip clips the projected h, and these weights have no projection (weight_hr)")
    peepholes = 0
    dtype, device = x.dtype, x.device
    for layer, dirs in enumerate(layers):
        for d, w in enumerate(dirs):
            peepholes += w.peephole is not None
            for name, t in zip(LayerWeights._fields, w):
                if t is not None and (t.dtype != dtype or t.device != device):
                    where = f"layer {layer}" if D == 1 else f"layer {layer} {('forward', 'backward')[d]}"
                    raise LSTMShapeError(f"{where} {name} has dtype {t.dtype} on {t.device}; "
                                         f"the input x has dtype {x.dtype} on {x.device}")
    has_peephole = peepholes > 0
    if has_peephole and peepholes != len(layers) * D:
        raise LSTMShapeError("some layers have peepholes and some do not; give every layer a peephole "
                             "(zeros for none)")
    named = None if activations is None else lstm_activations.resolve(activations)
    if named is not None and (tanh is not None or gate_activation is not None):
        raise ValueError("pass either activations=(...) or the tanh= / gate_activation= callables, not both")
    if cont is not None and direction != "forward":
        raise ValueError("cont (Caffe) runs forward only: its multipliers restart streams in reading order")

    if packed is not None:
        return _lstm_packed(packed, layers, hx, hidden, proj, D, dict(
            batch_first=batch_first, dropout=dropout, dropout_placement=dropout_placement, training=training,
            tanh=tanh, gate_activation=gate_activation, preact_grad_clip=preact_grad_clip,
            recurrent_weight_grad_ignores_cont=recurrent_weight_grad_ignores_cont, backend=backend,
            direction=direction, cell_clip=cell_clip, proj_clip=proj_clip, preact_clip=preact_clip,
            input_forget=input_forget, activations=activations))

    if batch_first:
        x = x.transpose(0, 1)
        cont = None if cont is None else cont.transpose(0, 1)
        mask = None if mask is None else mask.transpose(0, 1)
    T, B, _ = x.shape
    L = len(layers)
    for name, seq in (("cont", cont), ("mask", mask)):
        if seq is not None and _shape(seq) != [T, B]:
            layout = "[B, T]" if batch_first else "[T, B]"
            raise LSTMShapeError(f"{name} has shape {_shape(seq.transpose(0, 1) if batch_first else seq)}; "
                                 f"expected {layout} = {[B, T] if batch_first else [T, B]} to match the input")
    if cont is not None and mask is not None:
        raise ValueError("cont (Caffe) and mask (Theano) are different sequence semantics; pass one of them")
    if lengths is not None:
        if cont is not None or mask is not None:
            raise ValueError("lengths (right padding with zero outputs) does not combine with cont or mask")
        lengths = _check_lengths(lengths, T, B, x.device)
    if hx is None:
        h0 = x.new_zeros(L * D, B, proj)
        c0 = h0 if proj == hidden else x.new_zeros(L * D, B, hidden)
    else:
        h0, c0 = hx
        for name, s, width in (("h0", h0, proj), ("c0", c0, hidden)):
            if _shape(s) != [L * D, B, width]:
                what = "[layers * directions, B, " if D == 2 else "[layers, B, "
                what += ("P]" if name == "h0" and proj != hidden else "H]")
                raise LSTMShapeError(f"initial state {name} has shape {_shape(s)}; expected {what} = {[L * D, B, width]}")
            if s.dtype != x.dtype or s.device != x.device:
                raise LSTMShapeError(f"initial state {name} has dtype {s.dtype} on {s.device}; "
                                     f"the input x has dtype {x.dtype} on {x.device}")
    if cont is not None and cont.dtype != x.dtype:
        cont = cont.to(x.dtype)
    if mask is not None and mask.dtype != x.dtype:
        mask = mask.to(x.dtype)
    p = dropout if (training and dropout_placement != "none") else 0.0

    # A reverse stack is a forward stack over the reversed sequence, its output reversed back.
    reversal = None
    if direction == "reverse":
        reversal = _reversal_index(T, lengths)
        x = _reverse_time(x, reversal)
        mask = None if mask is None else mask.flip(0)

    variant = (has_peephole or has_proj or named is not None or cell_clip is not None or preact_clip is not None
               or bool(input_forget))
    # Semantics only the step loop has; then, when the fused kernel would only be slower.
    loop_only = (tanh is not None or gate_activation is not None or preact_grad_clip is not None
                 or recurrent_weight_grad_ignores_cont or has_peephole or named is not None or cell_clip is not None
                 or proj_clip is not None or preact_clip is not None or bool(input_forget)
                 or (has_proj and proj >= hidden)  # torch.lstm's projections must be narrower than the cell
                 or (mask is not None and D == 2))
    mask_lengths = None
    restarts: list = []
    all_empty = False
    if mask is not None and not loop_only:
        mask_lengths = right_padded_lengths(mask)
        loop_only = mask_lengths is None
        if mask_lengths is not None and not bool(mask_lengths.any()):
            # Every column empty: the packed kernel has nothing to run and would cut the graph at h0;
            # the loop keeps the (zero) gradients of the weights, for any backend.
            mask_lengths, all_empty = None, True
    if lengths is not None and not bool(lengths.any()):
        all_empty = True
    if backend == "fused" and loop_only:
        raise ValueError("the fused kernel cannot run these semantics (custom or named activations, peepholes, "
                         "clipping, coupled gates, a projection at least as wide as the cell, gradient "
                         "clipping, the dW_h quirk, or a mask that is not right padding or runs both ways); "
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
        live = sem = None
        if lengths is not None:
            live = torch.arange(T, device=x.device).unsqueeze(1) < lengths.unsqueeze(0)
        if variant or live is not None:
            sem = StepSemantics(
                gate=(named[0] if named else gate_activation or torch.sigmoid),
                cell_input=(named[1] if named else tanh or torch.tanh),
                cell_output=(named[2] if named else tanh or torch.tanh),
                cell_clip=cell_clip, proj_clip=proj_clip, preact_clip=preact_clip, input_forget=bool(input_forget),
                preact_grad_clip=preact_grad_clip, weight_grad_ignores_cont=recurrent_weight_grad_ignores_cont)
        else:
            tanh_fn = torch.tanh if tanh is None else tanh
            sigmoid_fn = torch.sigmoid if gate_activation is None else gate_activation
        bw_reversal = _reversal_index(T, lengths) if D == 2 else None
        inp = x
        h_n, c_n = [], []
        for layer, dirs in enumerate(layers):
            outs = []
            for d, w in enumerate(dirs):
                k = layer * D + d
                xs, cont_, mask_ = inp, cont, mask
                if d == 1:
                    xs, cont_, mask_ = _reverse_time(inp, bw_reversal), None, None if mask is None else mask.flip(0)
                if sem is None:
                    out, h, c = loop_layer(xs, w, h0[k], c0[k], cont_, mask_, tanh_fn, sigmoid_fn, preact_grad_clip,
                                           recurrent_weight_grad_ignores_cont)
                else:
                    out, h, c = variant_loop_layer(xs, w, h0[k], c0[k], cont_, mask_, live, sem)
                outs.append(out if d == 0 else _reverse_time(out, bw_reversal))
                h_n.append(h)
                c_n.append(c)
            out = outs[0] if D == 1 else torch.cat(outs, dim=2)
            if p > 0 and (layer < L - 1 or dropout_placement == "output"):
                out = F.dropout(out, p, training=True)
            inp = out
        output, state = inp, (torch.stack(h_n), torch.stack(c_n))
    else:
        p_between = p if L > 1 else 0.0
        if lengths is not None:
            output, h_n, c_n = _fused_packed(x, lengths, layers, h0, c0, p_between, training, D == 2,
                                             carry_last=False)
        elif mask_lengths is not None:
            output, h_n, c_n = _fused_packed(x, mask_lengths, layers, h0, c0, p_between, training)
        elif cont is None:
            output, h_n, c_n = _fused(x, layers, h0, c0, p_between, training, D == 2)
        else:
            bounds = [0] + restarts + [T]
            pieces = []
            h_n, c_n = h0, c0
            for start, stop in zip(bounds[:-1], bounds[1:]):
                scale = cont[start].view(1, B, 1)
                out, h_n, c_n = _fused(x[start:stop], layers, h_n * scale, c_n * scale, p_between, training)
                pieces.append(out)
            output = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        if p > 0 and dropout_placement == "output":
            output = F.dropout(output, p, training=True)
        state = (h_n, c_n)
    if direction == "reverse":
        output = _reverse_time(output, reversal)
    if batch_first:
        output = output.transpose(0, 1)
    return output, state


def _lstm_packed(packed: PackedSequence, layers, hx, hidden: int, proj: int, D: int, options: dict):
    """lstm() on a PackedSequence: the packed kernel where it runs the semantics, else padded with lengths."""
    B = int(packed.batch_sizes[0])
    L = len(layers)
    if hx is None:
        h0 = packed.data.new_zeros(L * D, B, proj)
        c0 = packed.data.new_zeros(L * D, B, hidden)
    else:
        h0, c0 = hx
        for name, s, width in (("h0", h0, proj), ("c0", c0, hidden)):
            if _shape(s) != [L * D, B, width]:
                raise LSTMShapeError(f"initial state {name} has shape {_shape(s)}; expected {[L * D, B, width]}")
            if s.dtype != packed.data.dtype or s.device != packed.data.device:
                raise LSTMShapeError(f"initial state {name} has dtype {s.dtype} on {s.device}; the input has dtype "
                                     f"{packed.data.dtype} on {packed.data.device}")
    plain = (options["tanh"] is None and options["gate_activation"] is None and options["preact_grad_clip"] is None
             and not options["recurrent_weight_grad_ignores_cont"] and options["cell_clip"] is None
             and options["proj_clip"] is None and options["preact_clip"] is None and not options["input_forget"]
             and lstm_activations.resolve(options["activations"]) is None
             and all(w.peephole is None for dirs in layers for w in dirs)
             and proj <= hidden and (proj < hidden or layers[0][0].weight_hr is None)
             and options["direction"] != "reverse")
    training, placement = options["training"], options["dropout_placement"]
    p = options["dropout"] if (training and placement != "none") else 0.0
    if plain and options["backend"] != "loop":
        data, h_n, c_n = _fused_on_packed(packed, layers, h0, c0, p if L > 1 else 0.0, training, D == 2)
        if p > 0 and placement == "output":
            data = F.dropout(data, p, training=True)
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), (h_n, c_n)
    if options["backend"] == "fused" and not plain:
        raise ValueError("the fused kernel cannot run these semantics on a PackedSequence; use backend='loop' or 'auto'")
    padded, lengths = pad_packed_sequence(packed)
    kw = {k: v for k, v in options.items() if k != "batch_first"}
    kw["backend"] = "loop" if options["backend"] == "loop" else "auto"
    weights = [dirs if D == 2 else dirs[0] for dirs in layers]
    out, state = lstm(padded, weights, (h0, c0), lengths=lengths, **kw)
    order = packed.sorted_indices
    if order is not None:
        out = out.index_select(1, order)
        lengths = lengths.index_select(0, order.cpu())
    data = pack_padded_sequence(out, lengths, enforce_sorted=True).data
    return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), state


# ------------------------------------------------------------------------------------------ the module
_SEMANTICS = ("cell_clip", "proj_clip", "preact_clip", "input_forget", "activations", "direction")


class LSTM(nn.Module):
    """Stacked LSTM module over the canonical parameters, named as in ``torch.nn.LSTM``.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    dropout_placement="between", proj_size=0, bidirectional=False, peepholes=False, **semantics)``;
    ``semantics`` are :func:`lstm`'s ``cell_clip``, ``proj_clip``, ``preact_clip``, ``input_forget``,
    ``activations`` and ``direction`` (``"reverse"`` for a reverse-only stack).
    ``forward(x, hx=None, *, cont=None, mask=None, lengths=None)`` -> ``(output, (h_n, c_n))`` with the
    semantics of :func:`lstm`. Parameters: ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}``, ``weight_hr_l{k}`` (projection), ``peephole_l{k}`` [3, H] (rows i, f, o), with
    ``_reverse`` for the backward direction; without peepholes and custom semantics the state dict loads
    into and from ``torch.nn.LSTM`` of the same sizes.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, dropout_placement: str = "between",
                 proj_size: int = 0, bidirectional: bool = False, peepholes: bool = False,
                 device=None, dtype=None, **semantics):
        super().__init__()
        if dropout_placement not in DROPOUT_PLACEMENTS:
            raise ValueError(f"dropout_placement must be one of {DROPOUT_PLACEMENTS}, not {dropout_placement!r}")
        unknown = sorted(set(semantics) - set(_SEMANTICS))
        if unknown:
            raise TypeError(f"LSTM got unknown options {unknown}; the semantics options are {list(_SEMANTICS)}")
        direction = semantics.pop("direction", "forward")
        if direction not in ("forward", "reverse") or (bidirectional and direction != "forward"):
            raise ValueError("direction is 'forward' or 'reverse' (a reverse-only stack); use bidirectional=True "
                             f"for both; got direction={direction!r}, bidirectional={bidirectional}")
        if proj_size < 0:
            raise ValueError(f"proj_size must be >= 0; got {proj_size}")
        if semantics.get("proj_clip") is not None and not proj_size:
            raise ValueError("proj_clip needs a projection (proj_size > 0)")
        lstm_activations.resolve(semantics.get("activations"))  # unknown names fail here, not at forward
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.dropout_placement = dropout, dropout_placement
        self.proj_size, self.bidirectional, self.peepholes = proj_size, bidirectional, peepholes
        self.direction = "bidirectional" if bidirectional else direction
        self.semantics = dict(semantics)
        factory = dict(device=device, dtype=dtype)
        D = 2 if bidirectional else 1
        out_size = proj_size or hidden_size
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else D * out_size
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                self.register_parameter("weight_ih" + sfx, nn.Parameter(torch.empty(4 * hidden_size, in_size, **factory)))
                self.register_parameter("weight_hh" + sfx, nn.Parameter(torch.empty(4 * hidden_size, out_size, **factory)))
                if bias:
                    self.register_parameter("bias_ih" + sfx, nn.Parameter(torch.empty(4 * hidden_size, **factory)))
                    self.register_parameter("bias_hh" + sfx, nn.Parameter(torch.empty(4 * hidden_size, **factory)))
                if proj_size:
                    self.register_parameter("weight_hr" + sfx, nn.Parameter(torch.empty(proj_size, hidden_size, **factory)))
                if peepholes:
                    self.register_parameter("peephole" + sfx, nn.Parameter(torch.empty(3, hidden_size, **factory)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)), as torch.nn.LSTM."""
        bound = 1.0 / self.hidden_size ** 0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _direction_weights(self, sfx: str) -> LayerWeights:
        return LayerWeights(getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx),
                            getattr(self, "bias_ih" + sfx, None), getattr(self, "bias_hh" + sfx, None),
                            getattr(self, "weight_hr" + sfx, None), getattr(self, "peephole" + sfx, None))

    def layer_weights(self) -> list:
        """The canonical weights of every layer (the live parameters): LayerWeights, or pairs if bidirectional."""
        out = []
        for k in range(self.num_layers):
            fw = self._direction_weights(f"_l{k}")
            out.append((fw, self._direction_weights(f"_l{k}_reverse")) if self.bidirectional else fw)
        return out

    def forward(self, x, hx: Optional[State] = None, *, cont: Optional[Tensor] = None,
                mask: Optional[Tensor] = None, lengths=None, backend: str = "auto"):
        return lstm(x, self.layer_weights(), hx, cont=cont, mask=mask, lengths=lengths, batch_first=self.batch_first,
                    dropout=self.dropout, dropout_placement=self.dropout_placement, training=self.training,
                    backend=backend, direction=self.direction, **self.semantics)

    def extra_repr(self) -> str:
        s = (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, bias={self.bias}, "
             f"batch_first={self.batch_first}, dropout={self.dropout}, "
             f"dropout_placement={self.dropout_placement!r}")
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.bidirectional:
            s += ", bidirectional=True"
        elif self.direction != "forward":
            s += f", direction={self.direction!r}"
        if self.peepholes:
            s += ", peepholes=True"
        for name, value in self.semantics.items():
            s += f", {name}={value!r}"
        return s


def weights_from_torch(module: nn.LSTM) -> list:
    """The canonical weights of a ``torch.nn.LSTM`` (its live parameters), projections and both directions."""
    proj = getattr(module, "proj_size", 0)

    def direction(sfx):
        return LayerWeights(getattr(module, "weight_ih" + sfx), getattr(module, "weight_hh" + sfx),
                            getattr(module, "bias_ih" + sfx, None), getattr(module, "bias_hh" + sfx, None),
                            getattr(module, "weight_hr" + sfx) if proj else None)

    out = []
    for k in range(module.num_layers):
        fw = direction(f"_l{k}")
        out.append((fw, direction(f"_l{k}_reverse")) if module.bidirectional else fw)
    return out
