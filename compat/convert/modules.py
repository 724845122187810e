"""The modules :func:`compat.convert.load` returns where the source framework returns its outputs otherwise
than :class:`compat.lstm.LSTM` does (and :class:`compat.gru.GRU` / :class:`compat.simple_rnn.RNN`: ``KerasGRU``,
``KerasSimpleRNN``, ``OnnxGRU``, ``OnnxRNN``, the same rules with one state).

Both are :class:`compat.lstm.LSTM` (same parameters, same recurrence, same options); only the outputs
around the recurrence differ, exactly as the framework's own code makes them differ.

:class:`KerasLSTM`, a Keras ``LSTM`` / ``CuDNNLSTM`` / ``Bidirectional(LSTM)`` layer whose model makes masks
or that reads ``go_backwards``: ``forward(x, hx=None, *, mask=None)`` with x ``[B, T, in]`` and mask
``[B, T]`` (0 / False at a masked step, Keras's layout) returns ``(output, (h_n, c_n))`` as Keras does.
``hx`` is ``(h0, c0)``, each ``[directions, B, H]``: Keras's ``initial_state=[h, c]`` stacked (a
``Bidirectional``'s ``[h_fw, c_fw, h_bw, c_bw]`` as ``(stack([h_fw, h_bw]), stack([c_fw, c_bw]))``).

- ``go_backwards``: the layer reads the whole time axis back to front, mask included (``K.rnn``:
  ``inputs = reverse(inputs, 0)``) and returns its sequence output in that order, i.e. reversed in time
  (output[:, t] belongs to x[:, T - 1 - t]); :class:`compat.lstm.LSTM` with ``direction="reverse"``
  returns it in the input's order, and this module flips it.
- at a masked step the states carry their previous values (the core's ``mask``); the *output* is what
  the Keras version outputs there (``masked_output``): ``"previous_h"`` the carried h, as the core
  (Keras 2.0-2.2, ``keras/backend/tensorflow_backend.py`` ``rnn``: ``tf.where(mask, output, states[0])``);
  ``"previous_output"`` the previous step's output, zeros before the first unmasked step (Keras >= 2.3,
  whose TF backend calls tf.keras's ``rnn``; ``tf_keras/backend.py`` ``rnn`` and Keras 3
  ``keras/src/backend/*/rnn.py``, the loop starting from a zero output); ``"zeros"`` zeros
  (``zero_output_for_mask``, which ``Bidirectional`` forces when it returns sequences); ``"zeros_unrolled"``
  the same setting with ``unroll=True`` returning sequences (tf.keras ``backend.rnn``'s ``if unroll:`` branch,
  ``tf_keras/src/backend.py``, and Keras 3's TensorFlow backend): the loop outputs the previous output, then the
  stacked outputs, in reading order, are zeroed where the mask *as given* is 0, i.e. not reversed for
  ``go_backwards``: a backwards layer's output at reading step i is zeroed where x[:, i] is masked (the same as
  ``"zeros"`` when the layer reads forwards). They differ only
  at masked steps, and ``"previous_h"`` / ``"previous_output"`` only before the first unmasked step with
  a nonzero initial state. ``h_n`` / ``c_n`` are the same in all of them.
- ``Bidirectional(merge_mode=...)``: ``"concat"`` (forward | backward on the feature axis, as
  :class:`compat.lstm.LSTM`), ``"sum"``, ``"mul"``, ``"ave"`` (``keras/layers/wrappers.py``
  ``Bidirectional.call``).

:class:`OnnxLSTM`, an ONNX ``LSTM`` node: ``forward(x, hx=None, *, lengths=None)`` with ``lengths`` the
node's ``sequence_lens``. For a sequence of length 0 onnxruntime writes zeros to ``Y_h`` and ``Y_c``
(``onnxruntime/core/providers/cpu/rnn/uni_directional_lstm.cc`` ``Compute``: "zero out
final_hidden_state if seq_len == 0"); the core, as TF's ``dynamic_rnn``, returns the initial state
there. This module zeroes those columns. ONNX's ``Y`` is ``[T, directions, B, H]`` (``[B, T, directions,
H]`` with ``layout=1``): ``output.reshape(T, B, directions, H).transpose(1, 2)`` gives it; with ``layout=1``
ONNX's initial and final states are ``[B, directions, H]``, the module's ``[directions, B, H]``.

:class:`CaffeLSTM` and :class:`CaffeRNN`, BVLC Caffe's ``LSTM`` and ``RNN`` layers: ``cont`` (0 restarts a
stream), the RNN's output layer, and a static input (``static_size``, ``weight_static``, ``x_static=``: Caffe's
third bottom, its projection added to every step's input transform).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from torch import nn

from compat.gru import GRU
from compat.layers.caffe import CaffeLayerShapeError
from compat.lstm import LSTM, State
from compat.simple_rnn import RNN
from compat.convert.spec import MASKED_OUTPUTS, MERGE_MODES
from compat.frameworks.keras import dropout as keras_dropout
from compat.frameworks.keras.dropout import KerasDropout


def run_with_lengths(module: nn.Module, x: Tensor, hx, lengths: Tensor):
    """``module(x, hx)`` over sequences of ``lengths`` (each at least 1) in a ``[T, B, in]`` / ``[B, T, in]``
    batch: ``torch.nn``'s LSTM / GRU / RNN run packed (their outputs past a length are zeros, the states those
    at each length), the project's modules take ``lengths=`` (the same rule). Returns ``(output, state)`` with
    the output padded to x's steps."""
    if isinstance(module, nn.RNNBase):
        first = module.batch_first
        packed = pack_padded_sequence(x, torch.as_tensor(lengths).cpu(), batch_first=first, enforce_sorted=False)
        y, state = module(packed, hx)
        return pad_packed_sequence(y, batch_first=first, total_length=x.shape[1 if first else 0])[0], state
    return module(x, hx, lengths=lengths)


def _seen(mask: Tensor, reverse: bool) -> Tensor:
    """[B, T] bool: whether an unmasked step has been read at or before t, in the reading order."""
    m = (mask != 0).to(torch.int8)
    if reverse:
        return m.flip(1).cummax(1).values.flip(1).bool()
    return m.cummax(1).values.bool()


class KerasLSTM(LSTM):
    """A Keras LSTM layer: :class:`compat.lstm.LSTM` (``batch_first=True``) with Keras's output order for
    ``go_backwards`` and Keras's outputs at masked steps (see :mod:`compat.convert.modules`)."""

    def __init__(self, *args, go_backwards: bool = False, masked_output: str = "previous_output",
                 merge_mode: str = "concat", keras_dropout=None, **kwargs):
        _keras_settings(kwargs, go_backwards, masked_output, merge_mode)
        super().__init__(*args, **kwargs)
        if not self.batch_first:
            raise ValueError("Keras layers are batch-first")
        if merge_mode != "concat" and not self.bidirectional:
            raise ValueError("merge_mode combines the two halves of a bidirectional layer")
        self.go_backwards, self.masked_output, self.merge_mode = go_backwards, masked_output, merge_mode
        self.keras_dropout = KerasDropout.of(keras_dropout)

    def forward(self, x, hx: Optional[State] = None, *, mask: Optional[Tensor] = None, merge: bool = True,
                backend: str = "auto", dropout_masks=None, generator: Optional[torch.Generator] = None):
        """Run the layer as Keras does.

        Args:
            x: the input, batch-first ``[B, T, input_size]`` (or a ``PackedSequence``, unless the layer is
                ``go_backwards`` or merges its halves).
            hx: ``(h_0, c_0)``, each ``[num_layers * num_directions, B, H]``; zeros when None.
            mask: ``[B, T]``, Keras's mask (0 at masked steps): their outputs as ``masked_output`` says.
            merge: False: a bidirectional layer returns ``concat(forward, backward)`` whatever its
                ``merge_mode`` (a model that reads each half's last step merges them itself).
            backend: the core's kernel choice (:func:`compat.lstm.lstm`'s ``kernel``).
            dropout_masks, generator: in training mode with ``keras_dropout`` set, the masks to use (one
                ``(input, recurrent)`` pair per direction, :mod:`compat.frameworks.keras.dropout`) or the
                generator to draw them with (the global RNG when None).

        Returns:
            ``(y, (h_n, c_n))``: ``y`` ``[B, T, num_directions * H]`` (``[B, T, H]`` when merged), reversed
            in time for ``go_backwards`` as Keras returns it; ``h_n``, ``c_n`` as ``torch.nn.LSTM``'s.
        """
        if isinstance(x, PackedSequence):
            if self.go_backwards or self.merge_mode != "concat" or _dropping(self):
                raise ValueError("a go_backwards, merging or (in training) dropping-out Keras layer reads a padded "
                                 "sequence: pass a padded [B, T, in] tensor (and its mask=) instead of a "
                                 "PackedSequence")
            return super().forward(x, hx, backend=backend)
        if _dropping(self):
            masks = keras_dropout.cell_masks(self, "lstm", self.keras_dropout, x, dropout_masks, generator)
            y, state = super().forward(x, hx, mask=_keras_keep(mask), backend=backend, cell_masks=masks)
        else:
            y, state = super().forward(x, hx, mask=_keras_keep(mask), backend=backend)
        return _keras_output(self, y, mask, merge), state


def _dropping(layer) -> bool:
    """Whether the layer runs Keras's training-mode dropout now (``training=True``; eval is Keras's
    ``training=False``, the plain layer)."""
    return layer.training and layer.keras_dropout is not None and layer.keras_dropout.active


def _keras_keep(mask: Optional[Tensor]) -> Optional[Tensor]:
    """Keras's mask as the core's: a step is read where the mask is not 0 (``K.rnn``'s boolean mask)."""
    return None if mask is None else mask != 0


def _keras_output(layer, y: Tensor, mask: Optional[Tensor], merge: bool) -> Tensor:
    """The core's output [B, T, D * H] as the Keras layer returns it: the masked steps' outputs, the order of
    ``go_backwards``, the ``Bidirectional`` merge (see the module docstring)."""
    if mask is not None and layer.masked_output != "previous_h":
        keep = mask != 0
        if layer.masked_output == "zeros":
            y = y * keep.unsqueeze(2).to(y.dtype)
        else:
            width = y.shape[2] // (2 if layer.bidirectional else 1)
            backwards = [layer.go_backwards] + ([True] if layer.bidirectional else [])
            seen = [_seen(mask, reverse=b) for b in backwards]
            if layer.masked_output == "zeros_unrolled":
                # the previous output, then zeros where the mask as given (not reversed) is 0 at the step's
                # place in the reading order: y[:, t] of a backwards half is read at T - 1 - t
                seen = [s & (keep.flip(1) if b else keep) for s, b in zip(seen, backwards)]
            parts = [y[:, :, k * width:(k + 1) * width] * s.unsqueeze(2).to(y.dtype) for k, s in enumerate(seen)]
            y = parts[0] if len(parts) == 1 else torch.cat(parts, 2)
    if layer.go_backwards:
        y = y.flip(1)
    if layer.merge_mode != "concat" and merge:
        fw, bw = y.chunk(2, dim=2)
        y = {"sum": lambda: fw + bw, "mul": lambda: fw * bw, "ave": lambda: (fw + bw) / 2}[layer.merge_mode]()
    return y


def _keras_settings(kwargs: dict, go_backwards: bool, masked_output: str, merge_mode: str) -> None:
    if masked_output not in MASKED_OUTPUTS:
        raise ValueError(f"masked_output must be one of {MASKED_OUTPUTS}, not {masked_output!r}")
    if merge_mode not in MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {MERGE_MODES}, not {merge_mode!r}")
    if go_backwards:
        if kwargs.get("bidirectional") or kwargs.get("direction", "reverse") != "reverse":
            raise ValueError("a go_backwards Keras layer is one reverse direction (direction='reverse')")
        kwargs["direction"] = "reverse"
    kwargs.setdefault("batch_first", True)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", go_backwards={self.go_backwards}, masked_output={self.masked_output!r}, "
                f"merge_mode={self.merge_mode!r}")


class OnnxLSTM(LSTM):
    """An ONNX LSTM node: :class:`compat.lstm.LSTM` whose final states are zero for sequences of length 0,
    as onnxruntime's (see :mod:`compat.convert.modules`)."""

    def forward(self, x, hx: Optional[State] = None, *, lengths=None, backend: str = "auto"):
        """Run the node as onnxruntime does.

        Args:
            x: ``[T, B, input_size]`` (``[B, T, ...]`` when ``batch_first``).
            hx: ``(h_0, c_0)``, each ``[num_directions, B, H]``; zeros when None.
            lengths: ``sequence_lens``, ``[B]`` (0 allowed); None: every sequence is ``T`` long.
            backend: the core's kernel choice (:func:`compat.lstm.lstm`'s ``kernel``).

        Returns:
            ``(y, (h_n, c_n))`` as :class:`compat.lstm.LSTM`'s, with ``h_n`` and ``c_n`` zero for sequences
            of length 0 (onnxruntime's ``Y_h``, ``Y_c``).
        """
        y, (h_n, c_n) = super().forward(x, hx, lengths=lengths, backend=backend)
        if lengths is not None:
            empty = torch.as_tensor(lengths, device=h_n.device) == 0
            if bool(empty.any()):
                keep = (~empty).view(1, -1, 1)
                h_n = torch.where(keep, h_n, torch.zeros_like(h_n))
                c_n = torch.where(keep, c_n, torch.zeros_like(c_n))
        return y, (h_n, c_n)


def _zero_empty(h_n: Tensor, lengths) -> Tensor:
    """h_n [directions, B, H] with the columns of sequences of length 0 zeroed (onnxruntime's final state)."""
    if lengths is None:
        return h_n
    empty = torch.as_tensor(lengths, device=h_n.device) == 0
    if not bool(empty.any()):
        return h_n
    return torch.where((~empty).view(1, -1, 1), h_n, torch.zeros_like(h_n))


class OnnxGRU(GRU):
    """An ONNX GRU node: :class:`compat.gru.GRU` whose final state is zero for sequences of length 0, as
    onnxruntime's (``deep_cpu_gru.cc``; see :mod:`compat.convert.modules` for the LSTM's)."""

    def forward(self, x, hx=None, *, lengths=None, **kwargs):
        y, h_n = super().forward(x, hx, lengths=lengths, **kwargs)
        return y, _zero_empty(h_n, lengths)


class OnnxRNN(RNN):
    """An ONNX RNN node: :class:`compat.simple_rnn.RNN` whose final state is zero for sequences of length 0, as
    onnxruntime's (``rnn.cc``)."""

    def forward(self, x, hx=None, *, lengths=None, **kwargs):
        y, h_n = super().forward(x, hx, lengths=lengths, **kwargs)
        return y, _zero_empty(h_n, lengths)


class _KerasOneState:
    """Keras's ways of returning a GRU's or SimpleRNN's outputs, as :class:`KerasLSTM` for the LSTM: the masked
    steps' outputs, ``go_backwards``'s order and the ``Bidirectional`` merge; ``forward(x, hx=None, *, mask=None,
    merge=True)`` -> ``(output, h_n)`` with x [B, T, in] and mask [B, T] (0 at a masked step)."""

    def _keras_init(self, go_backwards: bool, masked_output: str, merge_mode: str, keras_dropout=None) -> None:
        if not self.batch_first:
            raise ValueError("Keras layers are batch-first")
        if merge_mode != "concat" and not self.bidirectional:
            raise ValueError("merge_mode combines the two halves of a bidirectional layer")
        self.go_backwards, self.masked_output, self.merge_mode = go_backwards, masked_output, merge_mode
        self.keras_dropout = KerasDropout.of(keras_dropout)

    def forward(self, x, hx=None, *, mask: Optional[Tensor] = None, merge: bool = True, dropout_masks=None,
                generator: Optional[torch.Generator] = None, **kwargs):
        if _dropping(self):
            if isinstance(x, PackedSequence):
                raise ValueError("a Keras layer dropping out in training reads a padded [B, T, in] tensor (and its "
                                 "mask=), not a PackedSequence")
            if kwargs:
                raise ValueError(f"a Keras layer dropping out in training takes x, hx and mask= (Keras's inputs); "
                                 f"not {sorted(kwargs)}")
            masks = keras_dropout.cell_masks(self, self.family, self.keras_dropout, x, dropout_masks, generator)
            y, h_n = super().forward(x, hx, mask=_keras_keep(mask), cell_masks=masks)
        else:
            y, h_n = super().forward(x, hx, mask=_keras_keep(mask), **kwargs)
        return _keras_output(self, y, mask, merge), h_n

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", go_backwards={self.go_backwards}, masked_output={self.masked_output!r}, "
                f"merge_mode={self.merge_mode!r}")


class KerasGRU(_KerasOneState, GRU):
    """A Keras ``GRU`` / ``Bidirectional(GRU)`` layer: :class:`compat.gru.GRU` (``batch_first=True``) returning
    its outputs as Keras does (:class:`_KerasOneState`)."""

    def __init__(self, *args, go_backwards: bool = False, masked_output: str = "previous_output",
                 merge_mode: str = "concat", keras_dropout=None, **kwargs):
        _keras_settings(kwargs, go_backwards, masked_output, merge_mode)
        super().__init__(*args, **kwargs)
        self._keras_init(go_backwards, masked_output, merge_mode, keras_dropout)


class KerasSimpleRNN(_KerasOneState, RNN):
    """A Keras ``SimpleRNN`` / ``Bidirectional(SimpleRNN)`` layer: :class:`compat.simple_rnn.RNN`
    (``batch_first=True``) returning its outputs as Keras does (:class:`_KerasOneState`)."""

    def __init__(self, *args, go_backwards: bool = False, masked_output: str = "previous_output",
                 merge_mode: str = "concat", keras_dropout=None, **kwargs):
        _keras_settings(kwargs, go_backwards, masked_output, merge_mode)
        super().__init__(*args, **kwargs)
        self._keras_init(go_backwards, masked_output, merge_mode, keras_dropout)


MAX_STATIC_SIZE = 1 << 24


def _static_size(static_size) -> int:
    if type(static_size) is not int or not 0 <= static_size <= MAX_STATIC_SIZE:
        raise ValueError(f"static_size is the static input's feature count, an integer in [0, {MAX_STATIC_SIZE}]; "
                         f"got {static_size!r}")
    return static_size


def _one_forward_layer(module, what: str) -> None:
    if module.num_layers != 1 or module.bidirectional or module.direction != "forward":
        raise ValueError(f"Caffe's {what} layer is one forward layer")


def _with_static(module, x, x_static, weights: list) -> tuple:
    """Caffe's static input (lstm_layer.cpp and rnn_layer.cpp ``FillUnrolledNet``: the InnerProduct
    ``W_xc_x_static`` / ``W_xh_x_static`` of x_static with axis 1 and no bias, reshaped to [1, N, G * H] and added
    by every step's Eltwise SUM to W_hc h_conted + W_xc x_t + b): x_static [N, ...], flattened from axis 1,
    appended to every step's features and ``weight_static`` to the first layer's ``weight_ih`` columns, so that
    the core's one input transform computes W_xc x_t + W_static x_static. Returns ``(x, weights)``; without a
    static input, as given. (One dot product instead of Caffe's two sums: the same to float32 rounding.)"""
    if not module.static_size:
        if x_static is not None:
            raise CaffeLayerShapeError("x_static: this layer was converted without a static input (static_size 0)")
        return x, weights
    if x_static is None:
        raise CaffeLayerShapeError(f"x_static: this layer has a static input; pass x_static= [N, "
                                   f"{module.static_size}] (Caffe's third bottom)")
    if isinstance(x, PackedSequence) or x.dim() != 3:
        raise CaffeLayerShapeError("x: a layer with a static input takes a padded [T, N, in] tensor")
    T, N = (x.shape[1], x.shape[0]) if module.batch_first else (x.shape[0], x.shape[1])
    if x_static.dim() < 1 or x_static.shape[0] != N:
        raise CaffeLayerShapeError(f"x_static has shape {list(x_static.shape)}; its first axis must be the "
                                   f"{N} streams of x (recurrent_layer.cpp LayerSetUp)")
    xs = x_static.reshape(N, -1).to(x.dtype)
    if xs.shape[1] != module.static_size:
        raise CaffeLayerShapeError(f"x_static has {xs.shape[1]} features (shape {list(x_static.shape)}); the static "
                                   f"weight takes {module.static_size}")
    steps = xs.unsqueeze(1).expand(N, T, -1) if module.batch_first else xs.unsqueeze(0).expand(T, N, -1)
    first = weights[0]
    weights = [first._replace(weight_ih=torch.cat([first.weight_ih, module.weight_static], 1))] + list(weights[1:])
    return torch.cat([x, steps], 2), weights


class CaffeLSTM(LSTM):
    """BVLC Caffe's ``LSTM`` layer with a static input (src/caffe/layers/lstm_layer.cpp ``FillUnrolledNet``):
    :class:`compat.lstm.LSTM` plus ``weight_static`` [4H, static_size] (Caffe's ``W_xc_static``, its rows in the
    core's gate order i, f, g, o as ``weight_ih``'s), whose product with x_static [N, ...] is added to every
    step's gate input. ``forward(x, hx=None, *, cont=None, x_static=None)`` with x [T, N, in], Caffe's ``cont``
    [T, N] and x_static [N, static_size] (Caffe's bottoms in order) returns ``(h, (h_T, c_T))``."""

    def __init__(self, input_size: int, hidden_size: int, *args, static_size: int = 0, device=None, dtype=None,
                 **kwargs):
        super().__init__(input_size, hidden_size, *args, device=device, dtype=dtype, **kwargs)
        _one_forward_layer(self, "LSTM")
        self.static_size = _static_size(static_size)
        if self.static_size:
            self.weight_static = nn.Parameter(torch.empty(4 * hidden_size, self.static_size, device=device,
                                                          dtype=dtype))

    def forward(self, x, hx: Optional[State] = None, *, cont: Optional[Tensor] = None,
                x_static: Optional[Tensor] = None, kernel: str = "auto", **kwargs):
        if not self.static_size and x_static is None:
            return super().forward(x, hx, cont=cont, kernel=kernel, **kwargs)
        from compat.lstm import lstm

        x, weights = _with_static(self, x, x_static, self.layer_weights())
        return lstm(x, weights, hx, cont=cont, batch_first=self.batch_first, dropout=self.dropout,
                    dropout_placement=self.dropout_placement, training=self.training, kernel=kernel,
                    direction=self.direction, cell=self.cell, **kwargs)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", static_size={self.static_size}"


class CaffeRNN(RNN):
    """BVLC Caffe's ``RNN`` layer (src/caffe/layers/rnn_layer.cpp ``RNNLayer::FillUnrolledNet``): a tanh simple RNN,
    ``h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h [+ W_xh_static x_static])``, whose *output* is
    ``o_t = tanh(W_ho h_t + b_o)``. :class:`compat.simple_rnn.RNN` (``weight_ih_l0`` = W_xh, ``bias_ih_l0`` = b_h,
    ``weight_hh_l0`` = W_hh, ``bias_hh_l0`` zero) plus ``weight_ho`` [H, H] and ``bias_o`` [H], and with
    ``static_size`` > 0 ``weight_static`` [H, static_size] (W_xh_static); ``forward(x, hx=None, *, cont=None,
    x_static=None)`` with x [T, N, in], Caffe's ``cont`` [T, N] and x_static [N, static_size] returns ``(o, h_T)``;
    ``hx`` is ``h_0`` as [1, N, H]."""

    def __init__(self, input_size: int, hidden_size: int, *args, static_size: int = 0, device=None, dtype=None,
                 **kwargs):
        super().__init__(input_size, hidden_size, *args, device=device, dtype=dtype, **kwargs)
        _one_forward_layer(self, "RNN")
        self.weight_ho = nn.Parameter(torch.empty(hidden_size, hidden_size, device=device, dtype=dtype))
        self.bias_o = nn.Parameter(torch.empty(hidden_size, device=device, dtype=dtype))
        self.static_size = _static_size(static_size)
        if self.static_size:
            self.weight_static = nn.Parameter(torch.empty(hidden_size, self.static_size, device=device, dtype=dtype))

    def forward(self, x, hx=None, *, cont=None, x_static=None, kernel=None, **kwargs):
        if not self.static_size and x_static is None:
            h, h_n = super().forward(x, hx, cont=cont, kernel=kernel, **kwargs)
        else:
            from compat.recurrent.frontend import run_family

            x, weights = _with_static(self, x, x_static, self.layer_weights())
            h, h_n = run_family(self.family, self.cell, x, weights, hx, cont=cont, mask=None, lengths=None,
                                batch_first=self.batch_first, direction=self.direction, dropout=self.dropout,
                                dropout_placement=self.dropout_placement, training=self.training, past_end=None,
                                kernel=kernel)
        return torch.tanh(torch.nn.functional.linear(h, self.weight_ho, self.bias_o)), h_n

    def extra_repr(self) -> str:
        return super().extra_repr() + f", static_size={self.static_size}"
