"""The LSTM: its weights, the functional :func:`lstm` and the module :class:`LSTM`.

Canonical parameterisation (the PyTorch / cuDNN layout), per layer and direction::

    weight_ih [4H, in]   weight_hh [4H, P]   bias_ih [4H] or None   bias_hh [4H] or None
    weight_hr [P, H] or None (projection)     peephole [3, H] or None (rows i, f, o)
    rows in gate blocks  i | f | g | o;  P = weight_hr's rows, or H without a projection

    i = sigmoid(x W_ii^T + b_ii + h W_hi^T + b_hi + p_i * c)      g = tanh(...)  (the cell input)
    f = sigmoid(... + p_f * c)                                     c' = f * c + i * g
    o = sigmoid(... + p_o * c')                                    h' = (o * tanh(c')) W_hr^T

Without peepholes the p terms are absent; without a projection h' = o * tanh(c'). Legacy layouts convert
to and from this with :mod:`compat.layouts`; a caller that keeps a legacy gate order may hand its weights
over as stored and say so (``gate_order``). The cell's options and variants, in the order a step applies
them, are :class:`compat.recurrent.cell.Cell`'s; the sequence semantics (Caffe's ``cont``, the Theano
tutorial's ``mask``, ``lengths``, ``direction``, dropout placement, ``past_end``) are described in
:mod:`compat.recurrent.call`.

Which kernel runs a call (torch's fused kernel dense, packed or in segments, the compiled loop, the checked
fused kernel, the step loop) is decided in one place, :mod:`compat.recurrent.select`, from the cell and
the sequence; all give the same numbers (``tests/test_core.py``, ``tests/test_variants.py``,
``tests/test_kernels.py``). ``kernel=`` forces one, for tests and benchmarks; :func:`which_kernel` says
which would run.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from compat.lstm_activations import ACTIVATIONS  # noqa: F401  (re-exported: the names ``activations`` takes)
from compat.recurrent.call import DROPOUT_PLACEMENTS, ShapeError, right_padded_lengths  # noqa: F401  (re-exported)
from compat.recurrent.weights import LayerWeights
from compat.recurrent.cell import CANONICAL_GATE_ORDER, STANDARD_ACTIVATIONS, Cell
from compat.recurrent.frontend import check_input, check_steps
from compat.recurrent.masks import CellMasks
from compat.recurrent.run import plan, run
from compat.recurrent.select import Choice

State = Tuple[Tensor, Tensor]
LSTMShapeError = ShapeError  # the name the LSTM's shape errors have always had


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


# ------------------------------------------------------------------------------------------ the core
def _cell(weights_layers, cell: Optional[Cell], tanh, gate_activation, activations, cell_clip, proj_clip,
          preact_clip, input_forget, preact_grad_clip, recurrent_weight_grad_ignores_cont, gate_order) -> Cell:
    """The call's :class:`Cell`: ``cell`` as given, or built from the keyword options and the weights."""
    has_proj = weights_layers[0][0].weight_hr is not None
    peepholes = weights_layers[0][0].peephole is not None
    if cell is not None:
        if (tanh is not None or gate_activation is not None or activations is not None or cell_clip is not None
                or proj_clip is not None or preact_clip is not None or preact_grad_clip is not None or input_forget
                or recurrent_weight_grad_ignores_cont or gate_order != CANONICAL_GATE_ORDER):
            given = [n for n, v in (("tanh", tanh), ("gate_activation", gate_activation), ("activations", activations),
                                    ("cell_clip", cell_clip), ("proj_clip", proj_clip), ("preact_clip", preact_clip),
                                    ("preact_grad_clip", preact_grad_clip), ("input_forget", input_forget or None),
                                    ("recurrent_weight_grad_ignores_cont", recurrent_weight_grad_ignores_cont or None),
                                    ("gate_order", None if gate_order == CANONICAL_GATE_ORDER else gate_order))
                     if v is not None]
            raise ValueError(f"pass the cell's options in cell=, not beside it: {given}")
        if cell.peepholes != peepholes or cell.projection != has_proj:
            raise ShapeError(f"the cell says peepholes={cell.peepholes}, projection={cell.projection}; the weights "
                             f"have peepholes={peepholes}, projection={has_proj}")
        return cell
    if activations is not None and (tanh is not None or gate_activation is not None):
        raise ValueError("pass either activations=(...) or the tanh= / gate_activation= callables, not both")
    if activations is None:
        activations = (gate_activation or STANDARD_ACTIVATIONS[0], tanh or STANDARD_ACTIVATIONS[1],
                       tanh or STANDARD_ACTIVATIONS[2])
    return Cell("lstm", activations, peepholes=peepholes, projection=has_proj, cell_clip=cell_clip,
                proj_clip=proj_clip, preact_clip=preact_clip, input_forget=input_forget, gate_order=gate_order,
                preact_grad_clip=preact_grad_clip, weight_grad_ignores_cont=recurrent_weight_grad_ignores_cont)


def _prepare(x, weights, hx, batch_first, direction, dropout, dropout_placement, past_end, kernel, cell_options,
             cell_masks=None):
    """Validate everything the LSTM owns (input rank, weights, state); return (cell, layers, state)."""
    packed, data, D = check_input(x, batch_first=batch_first, direction=direction, dropout=dropout,
                                  dropout_placement=dropout_placement, past_end=past_end, kernel=kernel,
                                  cell_masks=cell_masks)
    layers = _layers(weights, D)
    hidden, proj = _check_layers(layers, data.shape[-1])
    check_steps(x, packed, batch_first)
    peepholes = 0
    for layer, dirs in enumerate(layers):
        for d, w in enumerate(dirs):
            peepholes += w.peephole is not None
            for name, t in zip(LayerWeights._fields, w):
                if t is not None and (t.dtype != data.dtype or t.device != data.device):
                    raise LSTMShapeError(f"{_where(layer, d, D)} {name} has dtype {t.dtype} on {t.device}; "
                                         f"the input x has dtype {data.dtype} on {data.device}")
    if peepholes and peepholes != len(layers) * D:
        raise LSTMShapeError("some layers have peepholes and some do not; give every layer a peephole "
                             "(zeros for none)")
    cell = _cell(layers, **cell_options)
    L = len(layers)
    B = int(x.batch_sizes[0]) if packed else x.shape[0 if batch_first else 1]
    if hx is None:
        h0 = data.new_zeros(L * D, B, proj)
        c0 = h0 if proj == hidden else data.new_zeros(L * D, B, hidden)
    else:
        h0, c0 = hx
        for name, s, width in (("h0", h0, proj), ("c0", c0, hidden)):
            if _shape(s) != [L * D, B, width]:
                what = "[layers * directions, B, " if D == 2 else "[layers, B, "
                what += ("P]" if name == "h0" and proj != hidden else "H]")
                raise LSTMShapeError(f"initial state {name} has shape {_shape(s)}; expected {what} = {[L * D, B, width]}")
            if s.dtype != data.dtype or s.device != data.device:
                raise LSTMShapeError(f"initial state {name} has dtype {s.dtype} on {s.device}; "
                                     f"the input x has dtype {data.dtype} on {data.device}")
    return cell, tuple(layers), (h0, c0)


def lstm(x, weights, hx: Optional[State] = None, *,
         cont: Optional[Tensor] = None, mask: Optional[Tensor] = None, batch_first: bool = False,
         dropout: float = 0.0, dropout_placement: str = "between", training: bool = False,
         tanh: Optional[Callable[[Tensor], Tensor]] = None, gate_activation: Optional[Callable[[Tensor], Tensor]] = None,
         preact_grad_clip: Optional[float] = None, recurrent_weight_grad_ignores_cont: bool = False,
         kernel: str = "auto", direction: str = "forward", lengths=None, cell_clip: Optional[float] = None,
         proj_clip: Optional[float] = None, preact_clip: Optional[float] = None, input_forget: bool = False,
         activations=None, gate_order: str = CANONICAL_GATE_ORDER, past_end: Optional[str] = None,
         cell: Optional[Cell] = None, cell_masks: Optional[CellMasks] = None):
    """Run a stacked LSTM over a sequence. The functional form of :class:`LSTM`.

    Args:
        x: [T, B, in] (or [B, T, in] with ``batch_first``), or a ``PackedSequence`` (then the output is
            one too, as ``torch.nn.LSTM``; ``cont``, ``mask`` and ``lengths`` do not apply).
        weights: per layer one :class:`LayerWeights` (canonical layout, or ``gate_order``'s), or a
            (forward, backward) pair of them with ``direction="bidirectional"``.
        hx: ``(h0, c0)``, h0 [layers * directions, B, P], c0 [layers * directions, B, H]; zeros when None.
        cont: [T, B] (or [B, T] with ``batch_first``) continuation multipliers, Caffe semantics;
            forward direction only.
        mask: [T, B] (or [B, T]) padding mask, Theano tutorial semantics. Not together with ``cont``.
        lengths: [B] integer valid lengths of right-padded sequences (outputs past them are 0, the final
            state is the last valid step's). Not together with ``cont`` or ``mask``. Validated and kept on
            the host: given there (a list, numpy, a CPU tensor) they cost the device no synchronisation;
            given on the device they are copied to the host once.
        past_end: None, or ``"unread"``: the caller reads neither the outputs past each sequence's end
            (their values are then unspecified) nor the final state (None is returned for it). Right-padded
            sequences read one way then run dense, the padded steps computed like any other; ``lengths``
            and a right-padded mask are then the same computation, and ``lengths`` made on the host is the
            form that reads nothing of the device (a mask is read once to know it is right padding).
        direction: ``"forward"``, ``"reverse"`` (each layer reads the sequence back to front, only each
            sequence's valid prefix with ``lengths`` as ``tf.reverse_sequence`` and packed sequences do, the
            whole time axis without, mask included as Keras ``go_backwards`` does; outputs come back in the
            original time order) or ``"bidirectional"`` (each layer's output is concat(forward, backward);
            h_n / c_n ordered layer 0 forward, layer 0 backward, layer 1 forward, ... as ``torch.nn.LSTM``).
        dropout: drop probability, applied in training only, where ``dropout_placement`` says: ``"output"``
            (every layer's output including the last, TF ``DropoutWrapper(output_keep_prob=...)``),
            ``"between"`` (all but the last, cuDNN and ``torch.nn.LSTM(dropout=...)``) or ``"none"``; kept
            values are scaled by ``1 / (1 - dropout)`` as TF and PyTorch do.
        tanh: replaces tanh for the cell input and the cell output (a callable).
        gate_activation: replaces the sigmoid of the i, f and o gates (a callable).
        activations: ``(gate, cell input, cell output)`` names from :data:`ACTIVATIONS` (or
            ``(name, alpha, beta)`` tuples); not together with ``tanh`` / ``gate_activation``.
        cell_clip: clamps c to [-v, v] after each update (TF ``LSTMCell(cell_clip=...)``).
        proj_clip: clamps the projected h to [-v, v] (TF ``LSTMCell(proj_clip=...)``); needs weight_hr.
        preact_clip: clamps every gate pre-activation to [-v, v] (ONNX ``clip``).
        input_forget: the forget gate is 1 - i (ONNX ``input_forget=1``).
        preact_grad_clip: clamps the gradient of the gate pre-activations to +-value at each step
            (junhyukoh caffe-lstm ``clipping_threshold``; must be > 0, None for no clamp).
        recurrent_weight_grad_ignores_cont: weight_hh's gradient uses the raw h_{t-1} even where cont
            scales it (junhyukoh caffe-lstm's dW_h defect).
        gate_order: the order of the gate blocks in the weights' rows (default canonical ``"ifgo"``).
        cell: the cell's options as one :class:`compat.recurrent.cell.Cell` instead of the keywords above.
        kernel: ``"auto"`` (:mod:`compat.recurrent.select` decides) or a name of
            :data:`compat.recurrent.select.KERNELS` to force (an error says why it cannot run the call).
        cell_masks: dropout masks inside the cell of a one-layer stack, on the input and on h_(t-1) per gate
            block (:class:`compat.recurrent.masks.CellMasks`: Keras's ``dropout`` / ``recurrent_dropout``).

    Returns:
        ``(output, (h_n, c_n))``: the top layer's h at every step [T, B, D * P] (dropped out under the
        ``"output"`` placement), and the final state of every layer and direction (None with
        ``past_end="unread"``).
    """
    cell, layers, state = _prepare(x, weights, hx, batch_first, direction, dropout, dropout_placement, past_end,
                                   kernel, dict(cell=cell, tanh=tanh, gate_activation=gate_activation,
                                                activations=activations, cell_clip=cell_clip, proj_clip=proj_clip,
                                                preact_clip=preact_clip, input_forget=input_forget,
                                                preact_grad_clip=preact_grad_clip,
                                                recurrent_weight_grad_ignores_cont=recurrent_weight_grad_ignores_cont,
                                                gate_order=gate_order), cell_masks)
    return run(cell, layers, x, state, cont=cont, mask=mask, lengths=lengths, batch_first=batch_first,
               direction=direction, dropout=dropout, dropout_placement=dropout_placement, training=training,
               past_end=past_end, kernel=kernel, zero_state=hx is None, cell_masks=cell_masks)


def which_kernel(x: Tensor, weights, hx: Optional[State] = None, *, cont: Optional[Tensor] = None,
                 mask: Optional[Tensor] = None, lengths=None, batch_first: bool = False, dropout: float = 0.0,
                 dropout_placement: str = "between", training: bool = False, direction: str = "forward",
                 past_end: Optional[str] = None, kernel: str = "auto", cell_masks: Optional[CellMasks] = None,
                 **cell_options) -> Choice:
    """The kernel :func:`lstm` would run for these arguments (``choice.name``) and the selection rule that
    picked it (``choice.rule.why``); nothing is computed. ``x`` is a dense tensor; ``cell_options`` are
    :func:`lstm`'s cell keywords."""
    options = dict(cell=None, tanh=None, gate_activation=None, activations=None, cell_clip=None, proj_clip=None,
                   preact_clip=None, input_forget=False, preact_grad_clip=None,
                   recurrent_weight_grad_ignores_cont=False, gate_order=CANONICAL_GATE_ORDER)
    unknown = sorted(set(cell_options) - set(options))
    if unknown:
        raise TypeError(f"which_kernel got unknown options {unknown}")
    options.update(cell_options)
    cell, layers, state = _prepare(x, weights, hx, batch_first, direction, dropout, dropout_placement, past_end,
                                   kernel, options, cell_masks)
    return plan(cell, layers, x, state, cont=cont, mask=mask, lengths=lengths, batch_first=batch_first,
                direction=direction, dropout=dropout, dropout_placement=dropout_placement, training=training,
                past_end=past_end, kernel=kernel, zero_state=hx is None, cell_masks=cell_masks)


# ------------------------------------------------------------------------------------------ the module
_SEMANTICS = ("cell_clip", "proj_clip", "preact_clip", "input_forget", "activations", "direction")


class LSTM(nn.Module):
    """Stacked LSTM module over the canonical parameters, named as in ``torch.nn.LSTM``.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    dropout_placement="between", proj_size=0, bidirectional=False, peepholes=False, **semantics)``;
    ``semantics`` are :func:`lstm`'s ``cell_clip``, ``proj_clip``, ``preact_clip``, ``input_forget``,
    ``activations`` and ``direction`` (``"reverse"`` for a reverse-only stack); they are validated once,
    into ``self.cell`` (:class:`compat.recurrent.cell.Cell`).
    ``forward(x, hx=None, *, cont=None, mask=None, lengths=None, kernel="auto")`` -> ``(output, (h_n, c_n))``
    with the semantics of :func:`lstm`. Parameters: ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
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
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.dropout_placement = dropout, dropout_placement
        self.proj_size, self.bidirectional, self.peepholes = proj_size, bidirectional, peepholes
        self.direction = "bidirectional" if bidirectional else direction
        self.semantics = dict(semantics)
        options = dict(semantics)
        activations = options.pop("activations", None)
        self.cell = Cell("lstm", STANDARD_ACTIVATIONS if activations is None else activations, peepholes=peepholes,
                         projection=bool(proj_size), **options)
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
        # the registered parameters read from the module's table (getattr goes through
        # nn.Module.__getattr__, at every call); anything else by attribute (a parametrization, an absent
        # weight: None)
        table = self._parameters
        return LayerWeights(*[table[n] if n in table else getattr(self, n, None)
                              for n in [name + sfx for name in LayerWeights._fields]])

    def layer_weights(self) -> list:
        """The canonical weights of every layer (the live parameters): LayerWeights, or pairs if bidirectional."""
        out = []
        for k in range(self.num_layers):
            fw = self._direction_weights(f"_l{k}")
            out.append((fw, self._direction_weights(f"_l{k}_reverse")) if self.bidirectional else fw)
        return out

    def forward(self, x, hx: Optional[State] = None, *, cont: Optional[Tensor] = None,
                mask: Optional[Tensor] = None, lengths=None, kernel: str = "auto", backend: Optional[str] = None,
                cell_masks: Optional[CellMasks] = None):
        """Run the stack over a sequence, as ``torch.nn.LSTM`` with the legacy options it was built with.

        Args:
            x: ``[T, B, input_size]`` (``[B, T, input_size]`` when ``batch_first``), or a ``PackedSequence``.
            hx: ``(h_0, c_0)``, each ``[num_layers * num_directions, B, H]`` (``h_0``'s last axis the
                projection size with projections); zeros when None.
            cont: ``[T, B]``, Caffe's continuation: 0 resets h and c before that step.
            mask: ``[T, B]``, Theano's mask: at a masked step (0) h and c carry over unchanged.
            lengths: ``[B]`` sequence lengths (TF's ``sequence_length``, ONNX's ``sequence_lens``).
            kernel: the core's kernel, "auto" for its choice (:func:`compat.lstm.lstm`); ``backend`` is
                its former name, still accepted from callers written against it.
            cell_masks: dropout masks inside the cell (:func:`compat.lstm.lstm`; a one-layer stack).

        Returns:
            ``(output, (h_n, c_n))`` as ``torch.nn.LSTM`` returns them.
        """
        if backend is not None and backend != "auto":
            kernel = backend
        return lstm(x, self.layer_weights(), hx, cont=cont, mask=mask, lengths=lengths, batch_first=self.batch_first,
                    dropout=self.dropout, dropout_placement=self.dropout_placement, training=self.training,
                    kernel=kernel, direction=self.direction, cell=self.cell, cell_masks=cell_masks)

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
