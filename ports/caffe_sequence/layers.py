"""Caffe's two LSTM layers on the shared core (:func:`compat.lstm.lstm`), with Caffe's blobs as parameters.

:class:`CaffeLSTM` is BVLC Caffe's ``LSTM`` layer (src/caffe/layers/lstm_layer.cpp ``FillUnrolledNet``,
lstm_unit_layer.cpp, recurrent_layer.cpp); :class:`JunhyukohLSTM` is the ``Lstm`` layer of
junhyukoh/caffe-lstm (src/caffe/layers/lstm_layer.cpp), the layer of ``examples/lstm_sequence``. Both keep
their blobs under Caffe's names, in Caffe's order and shapes, and hand them to the core as they are, with
the cell's semantics (:class:`compat.recurrent.Cell`: Caffe's gate order, its tanh, the fork's gradient
quirks); the core chooses how to run them.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from compat.lstm import LayerWeights, lstm
from compat.recurrent import Cell, run

# Both layers keep their blobs' gate blocks in Caffe's order i, f, o, g (lstm_unit_layer.cpp, the fork's
# lstm_layer.cpp) and hand them to the core as stored.
CAFFE_GATE_ORDER = "ifog"


class CaffeShapeError(ValueError):
    """A blob or bottom whose shape does not fit the layer; the message names it."""


def _as_tensor(a, dtype, name: str) -> Tensor:
    if isinstance(a, Tensor):
        return a.detach().to(dtype).clone()
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.number):
        raise CaffeShapeError(f"blob {name} is not numeric (dtype {arr.dtype})")
    return torch.as_tensor(arr.astype(np.float64 if dtype == torch.float64 else np.float32, copy=True), dtype=dtype)


def _blob_matrix(blob, rows: int, name: str, dtype) -> Tensor:
    """A Caffe weight blob as [rows, cols]: shapes [rows, cols] or legacy [1, 1, rows, cols] / (1, 4, H, I)."""
    t = _as_tensor(blob, dtype, name)
    if t.numel() % rows or t.numel() == 0:
        raise CaffeShapeError(f"blob {name} has shape {list(t.shape)} ({t.numel()} values); "
                              f"expected {rows} rows")
    return t.reshape(rows, t.numel() // rows)


# --------------------------------------------------------------------------------------------- BVLC


class _CaffeBlobsAndState:
    """What both Caffe layers share: their blobs in Caffe's order and the state carried between calls."""

    _h: Optional[Tensor] = None
    _c: Optional[Tensor] = None

    def blobs(self) -> list:
        """The parameters as numpy arrays in Caffe's blob order and shapes."""
        return [p.detach().cpu().numpy().copy() for p in self.parameters()]

    def reset_state(self) -> None:
        """Zero the carried state (``RecurrentLayer::Reset``)."""
        self._h = self._c = None

    @property
    def state(self) -> Optional[Tuple[Tensor, Tensor]]:
        """The carried (h, c), each [1, N, H], or None before the first call / after a reset."""
        return None if self._h is None else (self._h, self._c)


class CaffeLSTM(_CaffeBlobsAndState, nn.Module):
    """BVLC Caffe ``LSTM`` (``RecurrentLayer``): bottoms x [T, N, ...], cont [T, N], optional x_static [N, ...].

    Parameters, in Caffe's blob order: ``W_xc`` [4H, I], ``b_c`` [4H], ``W_xc_static`` [4H, I_static] (only
    with a static input), ``W_hc`` [4H, H]; gate blocks i, f, o, g. ``forward(x, cont, static=None)`` -> h
    [T, N, H]; with ``expose_hidden`` ``forward(x, cont, static=None, h0=, c0=)`` -> (h, h_T, c_T), each state
    [1, N, H]. Without ``expose_hidden`` the final state carries into the next call (recurrent_layer.cpp
    ``Forward_cpu`` copies h_T, c_T into h_0, c_0 before each forward); :meth:`reset_state` zeroes it
    (``RecurrentLayer::Reset``). No gradient crosses calls (the recurrent outputs' diffs are zero).

    Options (defaults give the true values and gradients):
        caffe_tanh: compute tanh as Caffe's lstm_unit_layer.cpp does, 2*sigmoid(2x) - 1.
        caffe_exposed_state_gradients: with ``expose_hidden``, Caffe's RecurrentLayer shares only the data of
            h0/c0 and hT/cT (``ShareData``, not ``ShareDiff``): nothing is back-propagated into h0 and c0 and
            gradients arriving on hT and cT are ignored. True reproduces that.
    """

    def __init__(self, input_size: int, hidden_size: int, static_size: Optional[int] = None,
                 expose_hidden: bool = False, *, caffe_tanh: bool = False,
                 caffe_exposed_state_gradients: bool = False, dtype: torch.dtype = torch.float32):
        super().__init__()
        H = hidden_size
        self.input_size, self.hidden_size, self.static_size = input_size, hidden_size, static_size
        self.expose_hidden = expose_hidden
        self.caffe_tanh = caffe_tanh
        self.caffe_exposed_state_gradients = caffe_exposed_state_gradients
        # lstm_unit_layer.cpp computes tanh as 2 * sigmoid(2x) - 1 (compat.lstm_activations "caffe_tanh")
        self.cell = Cell("lstm", ("sigmoid", "caffe_tanh", "caffe_tanh") if caffe_tanh else ("sigmoid", "tanh", "tanh"),
                         gate_order=CAFFE_GATE_ORDER)
        # Registration order is Caffe's blob order: parameters() yields W_xc, b_c, (W_xc_static,) W_hc.
        self.W_xc = nn.Parameter(torch.zeros(4 * H, input_size, dtype=dtype))
        self.b_c = nn.Parameter(torch.zeros(4 * H, dtype=dtype))
        if static_size is not None:
            self.W_xc_static = nn.Parameter(torch.zeros(4 * H, static_size, dtype=dtype))
        else:
            self.W_xc_static = None
        self.W_hc = nn.Parameter(torch.zeros(4 * H, H, dtype=dtype))
        self._h: Optional[Tensor] = None
        self._c: Optional[Tensor] = None

    @classmethod
    def from_blobs(cls, blobs: Sequence, expose_hidden: bool = False, *, dtype: torch.dtype = torch.float32,
                   **options) -> "CaffeLSTM":
        """From Caffe's blobs in order [W_xc, b_c, W_hc] or [W_xc, b_c, W_xc_static, W_hc] (numpy or tensors)."""
        if len(blobs) not in (3, 4):
            raise CaffeShapeError(f"a Caffe LSTM layer has 3 blobs [W_xc, b_c, W_hc] or 4 with W_xc_static; "
                                  f"got {len(blobs)}")
        b_c = _as_tensor(blobs[1], dtype, "b_c").reshape(-1)
        if b_c.numel() % 4 or b_c.numel() == 0:
            raise CaffeShapeError(f"blob b_c has {b_c.numel()} values; expected 4H")
        H = b_c.numel() // 4
        W_xc = _blob_matrix(blobs[0], 4 * H, "W_xc", dtype)
        W_hc = _blob_matrix(blobs[-1], 4 * H, "W_hc", dtype)
        if W_hc.shape[1] != H:
            raise CaffeShapeError(f"blob W_hc has shape {list(W_hc.shape)}; expected [4H, H] = [{4 * H}, {H}] "
                                  f"(H from b_c's {4 * H} values)")
        static = _blob_matrix(blobs[2], 4 * H, "W_xc_static", dtype) if len(blobs) == 4 else None
        layer = cls(W_xc.shape[1], H, None if static is None else static.shape[1], expose_hidden,
                    dtype=dtype, **options)
        with torch.no_grad():
            layer.W_xc.copy_(W_xc)
            layer.b_c.copy_(b_c)
            layer.W_hc.copy_(W_hc)
            if static is not None:
                layer.W_xc_static.copy_(static)
        return layer

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, static_size={self.static_size}, "
                f"expose_hidden={self.expose_hidden}, caffe_tanh={self.caffe_tanh}, "
                f"caffe_exposed_state_gradients={self.caffe_exposed_state_gradients}")

    def _check(self, x: Tensor, cont: Tensor, static: Optional[Tensor]) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        if x.dim() < 2:
            raise CaffeShapeError(f"bottom x has shape {list(x.shape)}; it must have at least 2 axes "
                                  "(#timesteps, #streams, ...)")
        T, N = x.shape[0], x.shape[1]
        x = x.reshape(T, N, -1)  # InnerProduct axis 2: trailing axes flattened; [T, N] is one feature
        if x.shape[2] != self.input_size:
            raise CaffeShapeError(f"bottom x has {x.shape[2]} features per step (shape {list(x.shape)}); "
                                  f"W_xc expects {self.input_size}")
        if cont.dim() != 2 or tuple(cont.shape) != (T, N):
            raise CaffeShapeError(f"bottom cont has shape {list(cont.shape)}; expected exactly 2 axes "
                                  f"(#timesteps, #streams) = [{T}, {N}]")
        if (static is None) != (self.W_xc_static is None):
            raise CaffeShapeError("this layer was built " + ("with" if self.W_xc_static is not None else "without")
                                  + " a static input; pass static= accordingly")
        if static is not None:
            if static.dim() < 1 or static.shape[0] != N:
                raise CaffeShapeError(f"bottom x_static has shape {list(static.shape)}; its first axis must be "
                                      f"#streams = {N}")
            static = static.reshape(N, -1)
            if static.shape[1] != self.static_size:
                raise CaffeShapeError(f"bottom x_static has {static.shape[1]} features; W_xc_static expects "
                                      f"{self.static_size}")
        return x, cont.to(x.dtype), static

    def forward(self, x: Tensor, cont: Tensor, static: Optional[Tensor] = None, h0: Optional[Tensor] = None,
                c0: Optional[Tensor] = None, *, kernel: str = "auto"):
        x, cont, static = self._check(x, cont, static)
        T, N, _ = x.shape
        H = self.hidden_size
        w = LayerWeights(self.W_xc, self.W_hc, self.b_c)
        if static is not None:
            # The static term W_xc_static x_static enters every step's gate input (lstm_layer.cpp
            # "W_xc_x_static", an Eltwise SUM). Exactly: concatenate x_static to each step's input and
            # W_xc_static to W_xc's columns, so the core sees one input transform.
            x = torch.cat([x, static.unsqueeze(0).expand(T, N, static.shape[1])], dim=2)
            w = LayerWeights(torch.cat([self.W_xc, self.W_xc_static], dim=1), self.W_hc, self.b_c)
        if self.expose_hidden:
            if h0 is None or c0 is None:
                raise CaffeShapeError("expose_hidden: pass h0= and c0=, each [1, N, H]")
            for name, s in (("h0", h0), ("c0", c0)):
                if tuple(s.shape) != (1, N, H):
                    raise CaffeShapeError(f"bottom {name} has shape {list(s.shape)}; expected [1, N, H] = [1, {N}, {H}]")
            if self.caffe_exposed_state_gradients:
                h0, c0 = h0.detach(), c0.detach()
            hx = (h0.to(x.dtype), c0.to(x.dtype))
        else:
            if h0 is not None or c0 is not None:
                raise CaffeShapeError("h0/c0 are bottoms only with expose_hidden=True")
            if self._h is not None and tuple(self._h.shape) == (1, N, H) and self._h.dtype == x.dtype:
                hx = (self._h.to(x.device), self._c.to(x.device))
            else:
                hx = None  # first call, after reset_state(), or a new number of streams: zeros
        out, (h_n, c_n) = lstm(x, [w], hx, cont=cont, cell=self.cell, kernel=kernel)
        if self.expose_hidden:
            if self.caffe_exposed_state_gradients:
                h_n, c_n = h_n.detach(), c_n.detach()
            return out, h_n, c_n
        self._h, self._c = h_n.detach(), c_n.detach()
        return out


# ---------------------------------------------------------------------------------------- junhyukoh


class JunhyukohLSTM(_CaffeBlobsAndState, nn.Module):
    """The junhyukoh/caffe-lstm ``Lstm`` layer: data [T*N, ...] (time-major rows t*N + n), optional clip.

    Blobs [W_x (4H, I), W_h (4H, H), b (4H)], gate blocks i, f, o, g; N is ``lstm_param.batch_size``.
    lstm_layer.cpp ``Forward_cpu``: without a clip bottom the state starts at zero on every forward and
    cont = (t > 0); with clip the state carries over from the previous forward (c_0, h_0 <- c_T, h_T) and
    cont_t = clip_t used as a boolean (clip 0.5 continues). ``clipping_threshold`` > 0 clamps the gate
    pre-activation gradients to +-threshold at each step (``caffe_bound`` in ``Backward_cpu``).

    ``dwh_defect`` (default True, as the fork computes it): ``Backward_cpu`` accumulates dW_h += g_t^T
    h_{t-1} at every step, also where clip_t = 0 and h_{t-1} did not enter (including t = 0 with a carried
    h_0). The example trains with it; ``dwh_defect=False`` gives the true gradient.

    The fork's CPU path has further defects when N > 1 (it reads clip[t + n] instead of clip[t*N + n], adds
    stream 0's recurrent term to every stream, and sums every stream's dh_{t-1} into stream 0's); they are
    documented in docs/migration/caffe.md and not reproduced: this layer computes every stream correctly.

    Runs through :func:`compat.lstm.lstm` with the cell's semantics (:attr:`cell`: the fork's gate order, the
    clamp and the defect, rebuilt when ``clipping_threshold`` or ``dwh_defect`` is set); the core chooses how.
    """

    def __init__(self, input_size: int, hidden_size: int, batch_size: int = 1, clipping_threshold: float = 0.0,
                 *, dwh_defect: bool = True, dtype: torch.dtype = torch.float32):
        super().__init__()
        if batch_size < 1:
            raise CaffeShapeError(f"lstm_param.batch_size must be >= 1, got {batch_size}")
        H = hidden_size
        self.input_size, self.hidden_size, self.batch_size = input_size, hidden_size, batch_size
        self._clipping_threshold, self._dwh_defect = float(clipping_threshold), bool(dwh_defect)
        self.cell = self._cell()
        self.W_x = nn.Parameter(torch.zeros(4 * H, input_size, dtype=dtype))
        self.W_h = nn.Parameter(torch.zeros(4 * H, H, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(4 * H, dtype=dtype))
        self._h: Optional[Tensor] = None  # h_T_, c_T_ of the last forward, [1, N, H]
        self._c: Optional[Tensor] = None

    def _cell(self) -> Cell:
        return Cell("lstm", gate_order=CAFFE_GATE_ORDER, preact_grad_clip=self._clipping_threshold or None,
                    weight_grad_ignores_cont=self._dwh_defect)

    @property
    def clipping_threshold(self) -> float:
        """lstm_param.clipping_threshold: the gate gradients' clamp (0: none)."""
        return self._clipping_threshold

    @clipping_threshold.setter
    def clipping_threshold(self, value: float) -> None:
        self._clipping_threshold = float(value)
        self.cell = self._cell()

    @property
    def dwh_defect(self) -> bool:
        """Whether W_h's gradient is the fork's (against the raw h_{t-1} at every step)."""
        return self._dwh_defect

    @dwh_defect.setter
    def dwh_defect(self, value: bool) -> None:
        self._dwh_defect = bool(value)
        self.cell = self._cell()

    @classmethod
    def from_blobs(cls, blobs: Sequence, batch_size: int = 1, clipping_threshold: float = 0.0, *,
                   dtype: torch.dtype = torch.float32, **options) -> "JunhyukohLSTM":
        """From the fork's blobs [W_x, W_h, b]; shapes (4H, I) or the older (1, 4, H, I) are both accepted."""
        if len(blobs) != 3:
            raise CaffeShapeError(f"a junhyukoh Lstm layer has 3 blobs [W_x, W_h, b]; got {len(blobs)}")
        b = _as_tensor(blobs[2], dtype, "b").reshape(-1)
        if b.numel() % 4 or b.numel() == 0:
            raise CaffeShapeError(f"blob b has {b.numel()} values; expected 4H")
        H = b.numel() // 4
        W_x = _blob_matrix(blobs[0], 4 * H, "W_x", dtype)
        W_h = _blob_matrix(blobs[1], 4 * H, "W_h", dtype)
        if W_h.shape[1] != H:
            raise CaffeShapeError(f"blob W_h has shape {list(W_h.shape)}; expected [4H, H] = [{4 * H}, {H}]")
        layer = cls(W_x.shape[1], H, batch_size, clipping_threshold, dtype=dtype, **options)
        with torch.no_grad():
            layer.W_x.copy_(W_x)
            layer.W_h.copy_(W_h)
            layer.b.copy_(b)
        return layer

    def set_state(self, state: Optional[Tuple[Tensor, Tensor]]) -> None:
        self._h, self._c = (None, None) if state is None else (state[0].detach(), state[1].detach())

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, batch_size={self.batch_size}, "
                f"clipping_threshold={self.clipping_threshold}, dwh_defect={self.dwh_defect}")

    def forward(self, data: Tensor, clip: Optional[Tensor] = None, *, kernel: str = "auto") -> Tensor:
        N, H = self.batch_size, self.hidden_size
        if data.dim() < 1 or data.shape[0] % N:
            raise CaffeShapeError(f"bottom data has shape {list(data.shape)}; its first axis (T*N) must be a "
                                  f"multiple of lstm_param.batch_size = {N}")
        T = data.shape[0] // N
        if T == 0:
            raise CaffeShapeError(f"bottom data has shape {list(data.shape)}: no time steps")
        x = data.reshape(T, N, -1)
        if x.shape[2] != self.input_size:
            raise CaffeShapeError(f"bottom data has {x.shape[2]} values per row (shape {list(data.shape)}); "
                                  f"W_x expects {self.input_size}")
        w = LayerWeights(self.W_x, self.W_h, self.b)
        if x.dtype != w.weight_ih.dtype or x.device != w.weight_ih.device:
            raise CaffeShapeError(f"bottom data has dtype {x.dtype} on {x.device}; the blobs are {w.weight_ih.dtype} "
                                  f"on {w.weight_ih.device}")
        if clip is not None:
            if clip.numel() != T * N or (clip.dim() > 1 and clip.numel() != clip.shape[0]):
                raise CaffeShapeError(f"bottom clip has shape {list(clip.shape)}; expected [T*N] or [T*N, 1] "
                                      f"with T*N = {T * N}")
            cont = ((clip if clip.shape == (T, N) else clip.reshape(T, N)) != 0).to(x.dtype)
            if self._h is not None and self._h.shape == (1, N, H) and self._h.dtype == x.dtype:
                h0, c0 = self._h.to(x.device), self._c.to(x.device)
            else:
                h0 = c0 = x.new_zeros(1, N, H)
        else:
            cont = torch.ones(T, N, dtype=x.dtype, device=x.device)
            cont[0] = 0
            h0 = c0 = x.new_zeros(1, N, H)
        # The blobs' shapes are the layer's own (fixed when it was built): straight to the core's driver.
        out, (h_n, c_n) = run(self.cell, ((w,),), x, (h0, c0), cont=cont, kernel=kernel)
        # lstm_layer.cpp keeps c_T_, h_T_ after every forward ("Preserve cell state ... for truncated BPTT");
        # no gradient crosses forward calls.
        self._h, self._c = h_n.detach(), c_n.detach()
        return out.reshape(T * N, H)
