"""TF1's ``tf.nn.rnn_cell`` API in PyTorch, for people porting TF1 code by hand: the cells, the wrappers and
the drivers, with TF's exact semantics and TF's variable names.

Ported from TF 1.x ``tensorflow/python/ops/rnn_cell_impl.py`` (the cells and wrappers) and
``tensorflow/python/ops/rnn.py`` (``dynamic_rnn``, ``static_rnn``, ``bidirectional_dynamic_rnn``):

=============================================  ==============================================================
TF 1.x                                         here
=============================================  ==============================================================
``BasicRNNCell(num_units, activation)``        :class:`BasicRNNCell`: ``kernel`` [in+H, H], ``bias`` [H]
``GRUCell(num_units, activation)``             :class:`GRUCell`: ``gates/kernel`` [in+H, 2H] (r, u),
                                               ``gates/bias`` [2H] (starts at 1.0), ``candidate/kernel``
                                               [in+H, H], ``candidate/bias`` [H]; the reset before the product
``BasicLSTMCell(num_units, forget_bias, ...)``  :class:`BasicLSTMCell`: ``kernel`` [in+H, 4H] (i, j, f, o),
                                               ``bias``; ``forget_bias`` added at run time
``LSTMCell(num_units, use_peepholes, ...)``     :class:`LSTMCell`: + ``w_i_diag``, ``w_f_diag``, ``w_o_diag``,
                                               ``projection/kernel``; ``cell_clip``, ``proj_clip``
``MultiRNNCell(cells, state_is_tuple)``         :class:`MultiRNNCell` (cells of any kinds, mixed)
``DropoutWrapper(cell, ...)``                   :class:`DropoutWrapper`
``ResidualWrapper(cell, residual_fn)``          :class:`ResidualWrapper`
``DeviceWrapper(cell, device)``                 :class:`DeviceWrapper`
``dynamic_rnn``, ``static_rnn``,                :func:`dynamic_rnn`, :func:`static_rnn`,
``bidirectional_dynamic_rnn``                  :func:`bidirectional_dynamic_rnn`
=============================================  ==============================================================

Each cell is a ``torch.nn.Module``: ``cell(inputs [B, in], state) -> (output, new_state)`` is one step
(TF's ``cell.__call__``); ``cell.zero_state(batch_size)``, ``state_size`` and ``output_size`` as TF's.
The drivers run a whole sequence through the core in one call where the cell allows it (a GRUCell, a
BasicRNNCell or an LSTM cell, a MultiRNNCell of them, input and output dropout, residuals), and step by
step where the state is dropped out between steps. ``input_size=`` creates the variables at construction;
without it they are created at the first call, or from a checkpoint's shapes by :func:`load_tf_variables`
(as TF builds a cell when it first sees its input).

Variables: :func:`tf_variables` names every parameter as TF does (``rnn/gru_cell/gates/kernel``,
``rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias``, ``bidirectional_rnn/fw/...``; wrappers add no scope,
as TF1's, whose ``__call__`` hands the scope to the wrapped cell), and :func:`load_tf_variables` loads them
from a TF1 checkpoint (:mod:`compat.formats.tf`) or a mapping of names to arrays.

Dropout is applied in training mode (``module.train()``, a module's default, as TF applies it whenever a
keep probability is below 1) and not in ``eval()`` mode.
"""
from __future__ import annotations

import hashlib
import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from compat.formats.tf import load_checkpoint
from compat.frameworks.tf.names import KERNEL_BIAS, PEEPHOLES, PROJECTIONS
from compat import rnn_layouts
from compat.gru import gru
from compat.layouts import to_canonical
from compat.lstm import LayerWeights, lstm
from compat.recurrent.stack import reversal_index, reverse_time
from compat.seq2seq import LSTMStateTuple
from compat.simple_rnn import simple_rnn

State = Union[Tensor, Tuple]
# noise(kind, index, step, shape, dtype, device) -> uniform [0, 1) noise; see DropoutWrapper.
NoiseFn = Callable[[str, int, Optional[int], Tuple[int, ...], torch.dtype, torch.device], Tensor]

_KERNEL, _BIAS = KERNEL_BIAS[0]  # TF >= 1.2's variable names: "kernel", "bias"


class RNNCellError(ValueError):
    """A cell, wrapper or driver argument TF would refuse, or a variable that does not fit."""


# ------------------------------------------------------------------------------------------------ the base
class RNNCell(nn.Module):
    """What every cell has: ``state_size``, ``output_size``, ``zero_state``, one step (``forward``) and a whole
    sequence (:meth:`sequence`, ``dynamic_rnn``'s semantics), and its variables by TF's names."""

    scope_name = "rnn_cell"

    @property
    def state_size(self):
        raise NotImplementedError

    @property
    def output_size(self) -> int:
        raise NotImplementedError

    def zero_state(self, batch_size: int, dtype: Optional[torch.dtype] = None, device=None) -> State:
        """Zeros of ``state_size``'s structure, each [batch_size, size] (``RNNCell.zero_state``)."""
        dtype = dtype or self._factory()["dtype"] or torch.get_default_dtype()
        device = device if device is not None else self._factory()["device"]

        def zeros(size):
            if isinstance(size, tuple):
                return type(size)(*(zeros(s) for s in size)) if isinstance(size, LSTMStateTuple) else \
                    tuple(zeros(s) for s in size)
            return torch.zeros(batch_size, size, dtype=dtype, device=device)
        return zeros(self.state_size)

    def _factory(self) -> dict:
        return {"dtype": None, "device": None}

    def sequence(self, inputs: Tensor, state: State, lengths: Optional[Tensor] = None) -> Tuple[Tensor, State]:
        """The cell over ``inputs`` [T, B, in] from ``state``: ``(outputs [T, B, out], final state)``. Past a
        sequence's length the output is 0 and the state is carried unchanged (rnn.py ``_rnn_step``: the cell
        still runs, its results are discarded). This default steps the cell; cells that the core runs in one
        call override it."""
        outputs = []
        for t in range(inputs.shape[0]):
            out, new_state = self(inputs[t], state)
            if lengths is None:
                state = new_state
            else:
                live = (lengths > t).unsqueeze(1)
                out = torch.where(live, out, torch.zeros_like(out))
                state = _map2(lambda n, o: torch.where(live, n, o), new_state, state)
            outputs.append(out)
        return torch.stack(outputs), state

    def variables(self) -> Dict[str, nn.Parameter]:
        """This cell's parameters by their TF names under its own scope (``gates/kernel``, ...)."""
        raise NotImplementedError

    def build_from(self, variables: Mapping[str, object], prefix: str) -> None:
        """Create the parameters from the shapes of ``variables`` under ``prefix`` if not built yet."""

    def reset_dropout_masks(self) -> None:
        """Forget the variational dropout masks of every DropoutWrapper inside (the drivers call this at the start
        of every run: one mask per sequence)."""
        for m in self.modules():
            if isinstance(m, DropoutWrapper):
                m._variational = {}


def _map2(fn, a, b):
    if isinstance(a, tuple):
        out = tuple(_map2(fn, x, y) for x, y in zip(a, b))
        return type(a)(*out) if isinstance(a, LSTMStateTuple) else out
    return fn(a, b)


def _glorot_uniform_(t: Tensor) -> None:
    # TF 1.x get_variable without an initializer: glorot_uniform_initializer (variable_scope.py
    # _get_default_initializer), U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)).
    fan_in, fan_out = t.shape
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        t.uniform_(-limit, limit)


def _activation_spec(activation):
    """TF's ``activation`` (None: tanh) as the core's: a name of compat.lstm_activations or a callable."""
    if activation is None:
        return "tanh"
    if isinstance(activation, str) or callable(activation):
        return activation
    raise RNNCellError(f"activation must be None (tanh), a name or a callable; got {activation!r}")


class _KernelCell(RNNCell):
    """A cell whose variables are a kernel over concat([inputs, h]) and biases, built from the input size."""

    def __init__(self, num_units: int, input_size: Optional[int], name: Optional[str], dtype, device):
        super().__init__()
        if not isinstance(num_units, int) or isinstance(num_units, bool) or num_units <= 0:
            raise RNNCellError(f"{type(self).__name__} num_units must be a positive integer; got {num_units!r}")
        self.num_units = num_units
        self.input_size: Optional[int] = None
        if name is not None:
            self.scope_name = name
        self._dtype, self._device = dtype, device
        if input_size is not None:
            self.build(input_size)

    def _factory(self) -> dict:
        return {"dtype": self._dtype, "device": self._device}

    @property
    def built(self) -> bool:
        return self.input_size is not None

    def build(self, input_size: int) -> None:
        if self.built:
            if input_size != self.input_size:
                raise RNNCellError(f"{type(self).__name__} was built for input size {self.input_size}; got inputs of "
                                   f"size {input_size}")
            return
        if not isinstance(input_size, int) or input_size <= 0:
            raise RNNCellError(f"{type(self).__name__} input_size must be a positive integer; got {input_size!r}")
        self.input_size = input_size
        for name, shape, init in self._shapes(input_size):
            p = nn.Parameter(torch.empty(*shape, **self._factory()))
            if init == "glorot":
                _glorot_uniform_(p)
            else:
                with torch.no_grad():
                    p.fill_(init)
            self.register_parameter(name, p)

    def _shapes(self, input_size: int) -> List[Tuple[str, Tuple[int, ...], object]]:
        raise NotImplementedError

    @property
    def state_size(self):
        return self.num_units

    @property
    def output_size(self) -> int:
        return self.num_units

    def variables(self) -> Dict[str, nn.Parameter]:
        self._require_built()
        return {tf_name: getattr(self, attr) for tf_name, attr in self._tf_names().items() if hasattr(self, attr)}

    def _tf_names(self) -> Dict[str, str]:
        raise NotImplementedError

    def build_from(self, variables: Mapping[str, object], prefix: str) -> None:
        if self.built:
            return
        name = prefix + self._kernel_name()
        if name not in variables:
            raise RNNCellError(f"no variable {name!r} to build {type(self).__name__} from; "
                               f"names under {prefix!r}: {sorted(n for n in variables if n.startswith(prefix))[:8]}")
        rows = int(tuple(variables[name].shape)[0])
        self.build(rows - self._recurrent_rows())

    def _kernel_name(self) -> str:
        return _KERNEL

    def _recurrent_rows(self) -> int:
        return self.num_units

    def _require_built(self) -> None:
        if not self.built:
            raise RNNCellError(f"{type(self).__name__} has no variables yet: give input_size=, call it once, or load "
                               "a checkpoint with load_tf_variables")

    def _prepare(self, inputs: Tensor, what: str) -> None:
        if not isinstance(inputs, Tensor) or inputs.dim() != (3 if what == "sequence" else 2):
            shape = list(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            expected = "[T, B, input_size]" if what == "sequence" else "[batch, input_size]"
            raise RNNCellError(f"{type(self).__name__} inputs have shape {shape}; expected {expected}")
        self.build(inputs.shape[-1])

    def _check_h(self, h, batch: int, name: str, width: Optional[int] = None) -> Tensor:
        width = self.num_units if width is None else width
        if not isinstance(h, Tensor) or list(h.shape) != [batch, width]:
            shape = list(h.shape) if isinstance(h, Tensor) else type(h).__name__
            raise RNNCellError(f"{type(self).__name__} state {name} has shape {shape}; expected [batch, {width}] = "
                               f"{[batch, width]}")
        return h

    def forward(self, inputs: Tensor, state: State):
        self._prepare(inputs, "step")
        out, new_state = self.sequence(inputs.unsqueeze(0), state)
        return out[0], new_state

    def extra_repr(self) -> str:
        return f"num_units={self.num_units}, input_size={self.input_size}"


# ----------------------------------------------------------------------------------------- the plain cells
class BasicRNNCell(_KernelCell):
    """``tf.nn.rnn_cell.BasicRNNCell``: ``output = new_state = act(concat([x, h]) @ kernel + bias)``
    (rnn_cell_impl.py ``BasicRNNCell.call``); ``kernel`` [in + H, H] (Glorot uniform), ``bias`` [H] (zeros)."""

    scope_name = "basic_rnn_cell"

    def __init__(self, num_units: int, activation=None, *, input_size: Optional[int] = None,
                 name: Optional[str] = None, dtype=None, device=None):
        self.activation = _activation_spec(activation)
        super().__init__(num_units, input_size, name, dtype, device)

    def _shapes(self, n):
        return [("kernel", (n + self.num_units, self.num_units), "glorot"), ("bias", (self.num_units,), 0.0)]

    def _tf_names(self):
        return {_KERNEL: "kernel", _BIAS: "bias"}

    def canonical_weights(self) -> LayerWeights:
        """The core's weights (views of ``kernel`` and ``bias``: gradients reach them)."""
        n = self.input_size
        return LayerWeights(self.kernel[:n].t(), self.kernel[n:].t(), self.bias, None)

    def sequence(self, inputs, state, lengths=None):
        self._prepare(inputs, "sequence")
        h = self._check_h(state, inputs.shape[1], "h")
        out, h_n = simple_rnn(inputs, [self.canonical_weights()], h.unsqueeze(0), activation=self.activation,
                              lengths=lengths)
        return out, h_n[0]


class GRUCell(_KernelCell):
    """``tf.nn.rnn_cell.GRUCell`` (rnn_cell_impl.py ``GRUCell.build`` / ``GRUCell.call``)::

        r, u = split(sigmoid(concat([x, h]) @ gates/kernel + gates/bias), 2, axis=1)
        c = act(concat([x, r * h]) @ candidate/kernel + candidate/bias)
        new_h = u * h + (1 - u) * c

    The reset gate multiplies h *before* the recurrent product: this is not ``torch.nn.GRU``'s cell, and it
    runs on the core's GRU with ``reset_after=False`` (never torch's fused GRU). ``gates/bias`` starts at 1.0
    (``bias_initializer`` None), ``candidate/bias`` at 0, the kernels Glorot uniform."""

    scope_name = "gru_cell"

    def __init__(self, num_units: int, activation=None, *, input_size: Optional[int] = None,
                 name: Optional[str] = None, dtype=None, device=None):
        self.activation = _activation_spec(activation)
        super().__init__(num_units, input_size, name, dtype, device)

    def _shapes(self, n):
        H = self.num_units
        return [("gates_kernel", (n + H, 2 * H), "glorot"), ("gates_bias", (2 * H,), 1.0),
                ("candidate_kernel", (n + H, H), "glorot"), ("candidate_bias", (H,), 0.0)]

    def _tf_names(self):
        return {f"gates/{_KERNEL}": "gates_kernel", f"gates/{_BIAS}": "gates_bias",
                f"candidate/{_KERNEL}": "candidate_kernel", f"candidate/{_BIAS}": "candidate_bias"}

    def _kernel_name(self) -> str:
        return f"gates/{_KERNEL}"

    def canonical_weights(self) -> LayerWeights:
        """The core's weights, rows r | z | n (TF's u is z): differentiable views of TF's variables."""
        w_ih, w_hh = rnn_layouts.tf_gru_kernels(self.input_size, self.gates_kernel, self.candidate_kernel)
        return LayerWeights(w_ih, w_hh, torch.cat([self.gates_bias, self.candidate_bias]), None)

    def sequence(self, inputs, state, lengths=None):
        self._prepare(inputs, "sequence")
        h = self._check_h(state, inputs.shape[1], "h")
        out, h_n = gru(inputs, [self.canonical_weights()], h.unsqueeze(0), reset_after=False,
                       activations=("sigmoid", self.activation), lengths=lengths)
        return out, h_n[0]


class BasicLSTMCell(_KernelCell):
    """``tf.nn.rnn_cell.BasicLSTMCell`` (rnn_cell_impl.py ``BasicLSTMCell.call``): ``kernel`` [in + H, 4H] in
    blocks i, j, f, o, ``bias`` [4H] (zeros); ``forget_bias`` added to f at run time (never stored);
    ``activation`` for j and the cell output. State ``LSTMStateTuple(c, h)``, or concat([c, h]) with
    ``state_is_tuple=False``."""

    scope_name = "basic_lstm_cell"

    def __init__(self, num_units: int, forget_bias: float = 1.0, state_is_tuple: bool = True, activation=None, *,
                 input_size: Optional[int] = None, name: Optional[str] = None, dtype=None, device=None):
        self.forget_bias, self.state_is_tuple = float(forget_bias), bool(state_is_tuple)
        self.activation = _activation_spec(activation)
        super().__init__(num_units, input_size, name, dtype, device)

    @property
    def num_proj(self) -> Optional[int]:
        return None

    @property
    def state_size(self):
        H, P = self.num_units, self.num_proj or self.num_units
        return LSTMStateTuple(H, P) if self.state_is_tuple else H + P

    @property
    def output_size(self) -> int:
        return self.num_proj or self.num_units

    def _shapes(self, n):
        H = self.num_units
        return [("kernel", (n + (self.num_proj or H), 4 * H), "glorot"), ("bias", (4 * H,), 0.0)]

    def _tf_names(self):
        return {_KERNEL: "kernel", _BIAS: "bias"}

    def _recurrent_rows(self) -> int:
        return self.num_proj or self.num_units

    def _tf_tensors(self) -> dict:
        return {"kernel": self.kernel, "bias": self.bias}

    def canonical_weights(self) -> LayerWeights:
        """The core's weights (compat.layouts' ``tf`` layout: a differentiable gather; the forget bias a constant)."""
        return to_canonical("tf", self._tf_tensors(), forget_bias=self.forget_bias)

    def _core_options(self) -> dict:
        return dict(activations=("sigmoid", self.activation, self.activation))

    def _split_state(self, state, batch: int):
        H, P = self.num_units, self.num_proj or self.num_units
        if self.state_is_tuple:
            if not isinstance(state, tuple) or len(state) != 2:
                raise RNNCellError(f"{type(self).__name__} state must be an LSTMStateTuple (c, h) with "
                                   "state_is_tuple=True")
            c, h = state
        else:
            self._check_h(state, batch, "(concatenated c, h)", H + P)
            c, h = state[:, :H], state[:, H:]
        return self._check_h(c, batch, "c", H), self._check_h(h, batch, "h", P)

    def _join_state(self, c: Tensor, h: Tensor):
        return LSTMStateTuple(c, h) if self.state_is_tuple else torch.cat([c, h], dim=1)

    def sequence(self, inputs, state, lengths=None):
        self._prepare(inputs, "sequence")
        c, h = self._split_state(state, inputs.shape[1])
        out, (h_n, c_n) = lstm(inputs, [self.canonical_weights()], (h.unsqueeze(0), c.unsqueeze(0)),
                               lengths=lengths, **self._core_options())
        return out, self._join_state(c_n[0], h_n[0])

    def extra_repr(self) -> str:
        return super().extra_repr() + f", forget_bias={self.forget_bias}, state_is_tuple={self.state_is_tuple}"


class LSTMCell(BasicLSTMCell):
    """``tf.nn.rnn_cell.LSTMCell`` (rnn_cell_impl.py ``LSTMCell.build`` / ``LSTMCell.call``): BasicLSTMCell's
    kernel [in + P, 4H] and bias, with ``use_peepholes`` ``w_i_diag``, ``w_f_diag``, ``w_o_diag`` [H] (the o
    peephole on the new, clipped c), ``cell_clip`` on c, ``num_proj`` a ``projection/kernel`` [H, P] and
    ``proj_clip`` on the projected m. State ``LSTMStateTuple(c [H], m [P])``. Sharded variables
    (``num_unit_shards``, ``num_proj_shards``) are refused: the checkpoint reader has no partitioned variables."""

    scope_name = "lstm_cell"

    def __init__(self, num_units: int, use_peepholes: bool = False, cell_clip: Optional[float] = None,
                 initializer=None, num_proj: Optional[int] = None, proj_clip: Optional[float] = None,
                 num_unit_shards=None, num_proj_shards=None, forget_bias: float = 1.0, state_is_tuple: bool = True,
                 activation=None, *, input_size: Optional[int] = None, name: Optional[str] = None, dtype=None,
                 device=None):
        if initializer is not None or num_unit_shards not in (None, 1) or num_proj_shards not in (None, 1):
            raise RNNCellError("LSTMCell: initializer and variable shards are TF graph options; initialise the "
                               "parameters in torch (reset_parameters) and load unsharded variables")
        if num_proj is not None and (not isinstance(num_proj, int) or num_proj <= 0):
            raise RNNCellError(f"LSTMCell num_proj must be a positive integer or None; got {num_proj!r}")
        if proj_clip is not None and num_proj is None:
            raise RNNCellError("LSTMCell proj_clip clips the projection: give num_proj")
        self.use_peepholes, self.cell_clip, self._num_proj = bool(use_peepholes), cell_clip, num_proj
        self.proj_clip = proj_clip
        super().__init__(num_units, forget_bias, state_is_tuple, activation, input_size=input_size, name=name,
                         dtype=dtype, device=device)

    @property
    def num_proj(self) -> Optional[int]:
        return self._num_proj

    def _shapes(self, n):
        shapes = super()._shapes(n)
        if self.use_peepholes:
            shapes += [(name, (self.num_units,), "glorot_diag") for name in PEEPHOLES[0]]
        if self.num_proj:
            shapes.append(("projection_kernel", (self.num_units, self.num_proj), "glorot"))
        return [(a, s, 0.0 if i == "glorot_diag" else i) for a, s, i in shapes]

    def build(self, input_size: int) -> None:
        fresh = not self.built
        super().build(input_size)
        if fresh and self.use_peepholes:
            # TF creates the diagonals with the scope's default initializer, glorot_uniform on a [H] shape
            # (fan_in = fan_out = H): U(-sqrt(3 / H), sqrt(3 / H)).
            limit = math.sqrt(3.0 / self.num_units)
            with torch.no_grad():
                for name in PEEPHOLES[0]:
                    getattr(self, name).uniform_(-limit, limit)

    def _tf_names(self):
        names = {_KERNEL: "kernel", _BIAS: "bias"}
        names.update({n: n for n in PEEPHOLES[0]})
        names[PROJECTIONS[0]] = "projection_kernel"
        return names

    def _tf_tensors(self) -> dict:
        tensors = {"kernel": self.kernel, "bias": self.bias}
        if self.use_peepholes:
            tensors.update({n: getattr(self, n) for n in PEEPHOLES[0]})
        if self.num_proj:
            tensors[PROJECTIONS[0]] = self.projection_kernel
        return tensors

    def _core_options(self) -> dict:
        return dict(super()._core_options(), cell_clip=self.cell_clip, proj_clip=self.proj_clip)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", use_peepholes={self.use_peepholes}, cell_clip={self.cell_clip}, "
                f"num_proj={self.num_proj}, proj_clip={self.proj_clip}")


# ------------------------------------------------------------------------------------------- MultiRNNCell
class MultiRNNCell(RNNCell):
    """``tf.nn.rnn_cell.MultiRNNCell(cells, state_is_tuple=True)`` (rnn_cell_impl.py ``MultiRNNCell.call``):
    each cell's output is the next cell's input; the state is the tuple of the cells' states, or with
    ``state_is_tuple=False`` their concatenation along the columns (refused, as TF does, when a cell's own
    state is a tuple). Cells of any kinds may be mixed. Variables: ``multi_rnn_cell/cell_K/<cell's scope>``."""

    scope_name = "multi_rnn_cell"

    def __init__(self, cells: Sequence[RNNCell], state_is_tuple: bool = True):
        super().__init__()
        if not isinstance(cells, (list, tuple)):
            raise RNNCellError(f"cells must be a list or tuple, but saw: {cells!r}")
        if not cells:
            raise RNNCellError("Must specify at least one cell for MultiRNNCell.")
        for k, c in enumerate(cells):
            if not isinstance(c, RNNCell):
                raise RNNCellError(f"MultiRNNCell cell {k} is a {type(c).__name__}, not an RNNCell of compat.rnn_cell")
        self.cells = nn.ModuleList(cells)
        self.state_is_tuple = bool(state_is_tuple)
        if not state_is_tuple and any(isinstance(c.state_size, tuple) for c in cells):
            raise RNNCellError("Some cells return tuples of states, but the flag state_is_tuple is not set.  State "
                               f"sizes are: {[c.state_size for c in cells]}")

    @property
    def state_size(self):
        sizes = tuple(c.state_size for c in self.cells)
        return sizes if self.state_is_tuple else sum(sizes)

    @property
    def output_size(self) -> int:
        return self.cells[-1].output_size

    def _factory(self) -> dict:
        return self.cells[0]._factory()

    def _states(self, state, batch: int) -> list:
        if self.state_is_tuple:
            if not isinstance(state, tuple) or len(state) != len(self.cells):
                raise RNNCellError(f"Expected state to be a tuple of length {len(self.cells)}, but received: "
                                   f"{type(state).__name__}")
            return list(state)
        if not isinstance(state, Tensor) or state.dim() != 2 or state.shape[1] != self.state_size:
            raise RNNCellError(f"MultiRNNCell state (state_is_tuple=False) must be [batch, {self.state_size}]")
        out, pos = [], 0
        for c in self.cells:  # rnn_cell_impl.py MultiRNNCell.call: array_ops.slice at cur_state_pos
            out.append(state[:, pos:pos + c.state_size])
            pos += c.state_size
        return out

    def _join(self, states: list):
        return tuple(states) if self.state_is_tuple else torch.cat(states, dim=1)

    def forward(self, inputs: Tensor, state: State):
        inp, new_states = inputs, []
        for cell, s in zip(self.cells, self._states(state, inputs.shape[0])):
            inp, new_state = cell(inp, s)
            new_states.append(new_state)
        return inp, self._join(new_states)

    def sequence(self, inputs, state, lengths=None):
        # One cell after another over the whole sequence: the same numbers as TF's step-by-step loop, since no
        # cell's step reads another's later steps (past a sequence's end the states are carried, the outputs
        # zeroed only by the driver, and a cell's input there never reaches a kept value).
        inp, finals = inputs, []
        for cell, s in zip(self.cells, self._states(state, inputs.shape[1])):
            inp, final = cell.sequence(inp, s, lengths)
            finals.append(final)
        return inp, self._join(finals)

    def variables(self) -> Dict[str, nn.Parameter]:
        out = {}
        for k, cell in enumerate(self.cells):
            out.update({f"cell_{k}/{_scope(cell)}{name}": p for name, p in cell.variables().items()})
        return out

    def build_from(self, variables, prefix: str) -> None:
        for k, cell in enumerate(self.cells):
            cell.build_from(variables, f"{prefix}cell_{k}/{_scope(cell)}")


# ----------------------------------------------------------------------------------------------- wrappers
class _Wrapper(RNNCell):
    def __init__(self, cell: RNNCell):
        super().__init__()
        if not isinstance(cell, RNNCell):
            raise RNNCellError(f"The argument 'cell' ({cell!r}) is not an RNNCell of compat.rnn_cell")
        self.cell = cell

    @property
    def wrapped_cell(self) -> RNNCell:
        return self.cell

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return self.cell.output_size

    def zero_state(self, batch_size, dtype=None, device=None):
        return self.cell.zero_state(batch_size, dtype, device)

    def _factory(self) -> dict:
        return self.cell._factory()

    def variables(self) -> Dict[str, nn.Parameter]:
        # TF1's wrappers define __call__ and hand the scope to the wrapped cell: they add no name of their own.
        return {f"{_scope(self.cell)}{n}": p for n, p in self.cell.variables().items()}

    def build_from(self, variables, prefix: str) -> None:
        self.cell.build_from(variables, prefix + _scope(self.cell))


def _scope(cell: RNNCell) -> str:
    """The scope a cell adds to its variables' names ('' for wrappers, which add none)."""
    return "" if isinstance(cell, _Wrapper) else cell.scope_name + "/"


def _default_state_filter(substate):
    """rnn_cell_impl.py ``_default_dropout_state_filter_visitor``: never the c of an LSTMStateTuple."""
    if isinstance(substate, LSTMStateTuple):
        return LSTMStateTuple(c=False, h=True)
    return True


def _shallow_filter(visitor, state):
    """nest.get_traverse_shallow_structure(visitor, state): a bool per leaf of ``state`` (True: drop it out)."""
    verdict = visitor(state)
    if isinstance(verdict, bool):
        if verdict and isinstance(state, tuple):
            out = tuple(_shallow_filter(visitor, s) for s in state)
            return type(state)(*out) if isinstance(state, LSTMStateTuple) else out
        if isinstance(state, tuple):
            return _map1(lambda _: False, state)
        return verdict
    if not isinstance(state, tuple) or not isinstance(verdict, tuple) or len(verdict) != len(state):
        raise RNNCellError("dropout_state_filter_visitor must return a bool or a depth-1 structure of bools of the "
                           f"state's structure; got {verdict!r}")
    out = tuple(_shallow_filter(visitor, s) if v else _map1(lambda _: False, s) for v, s in zip(verdict, state))
    return type(state)(*out) if isinstance(state, LSTMStateTuple) else out


def _map1(fn, a):
    if isinstance(a, tuple):
        out = tuple(_map1(fn, x) for x in a)
        return type(a)(*out) if isinstance(a, LSTMStateTuple) else out
    return fn(a)


def _leaves(a) -> list:
    return [y for x in a for y in _leaves(x)] if isinstance(a, tuple) else [a]


def _rebuild(structure, leaves: list):
    it = iter(leaves)
    return _map1(lambda _: next(it), structure)


def gen_seed(seed: Optional[int], salt_prefix: str, index: int) -> Optional[int]:
    """rnn_cell_impl.py ``DropoutWrapper._gen_seed``: the op seed of one dropout, from the wrapper's seed and a
    salt naming the component ("input_0", "state_1", "output_0")."""
    if seed is None:
        return None
    string = (str(seed) + "%s_%d" % (salt_prefix, index)).encode("utf-8")
    return int(hashlib.md5(string).hexdigest()[:8], 16) & 0x7FFFFFFF


class DropoutWrapper(_Wrapper):
    """``tf.nn.rnn_cell.DropoutWrapper`` (rnn_cell_impl.py ``DropoutWrapper``, TF 1.x).

    Per step: the inputs are dropped out with ``input_keep_prob``, the cell runs, its new state is dropped out
    with ``state_keep_prob`` (only the parts ``dropout_state_filter_visitor`` selects: by default everything
    but the c of an ``LSTMStateTuple``; a concatenated LSTM state (``state_is_tuple=False``) is one tensor and
    is dropped out whole, c included, as in TF), and the output with ``output_keep_prob``. A kept value is
    divided by the keep probability; TF's rule ``floor(keep_prob + noise)``, noise uniform in [0, 1), decides.

    ``variational_recurrent=True`` (Gal and Ghahramani): one mask per component, drawn once per run (per
    :func:`dynamic_rnn` / :func:`static_rnn` call, or per :meth:`reset_dropout_masks` when stepping by hand) and
    reused at every step; its shape is [1, depth]: TF's ``convert_to_batch_shape`` prepends a 1, so **the
    same mask serves every sequence of the batch**. Otherwise a new mask per step and element.

    ``seed``: as TF, each component (``input``, ``state``, ``output``, and the index of the tensor within a
    nested state) gets its own seed, ``md5(str(seed) + salt)`` (:func:`gen_seed`); here each seeds a
    ``torch.Generator`` created at the first draw, so two wrappers made with the same seed draw the same
sequence of masks (as a TF graph built again with the same seeds does), independent per component.
    TF's own random streams (Philox, combined with the graph seed) are not reproduced: the same seed does not
    give TF's masks. ``noise``: a function ``noise(kind, index, step, shape, dtype, device)`` returning the
    uniform noise to use instead of drawing it (``step`` None for variational masks): masks fixed from
    outside, for tests and for replaying TF's masks.

    ``input_size`` and ``dtype`` are accepted and unused (TF needs them to shape the variational noise before
    it sees an input). Keep probabilities must lie in (0, 1] (TF's ``nn_ops.dropout`` refuses 0).
    """

    def __init__(self, cell: RNNCell, input_keep_prob: float = 1.0, output_keep_prob: float = 1.0,
                 state_keep_prob: float = 1.0, variational_recurrent: bool = False, input_size=None, dtype=None,
                 seed: Optional[int] = None, dropout_state_filter_visitor=None, *, noise: Optional[NoiseFn] = None):
        super().__init__(cell)
        if dropout_state_filter_visitor is not None and not callable(dropout_state_filter_visitor):
            raise RNNCellError("dropout_state_filter_visitor must be callable")
        for name, p in (("input_keep_prob", input_keep_prob), ("state_keep_prob", state_keep_prob),
                        ("output_keep_prob", output_keep_prob)):
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < float(p) <= 1.0:
                raise RNNCellError(f"Parameter {name} must be a number in (0, 1]; got {p!r}")
        self.input_keep_prob, self.state_keep_prob = float(input_keep_prob), float(state_keep_prob)
        self.output_keep_prob = float(output_keep_prob)
        self.variational_recurrent, self.seed = bool(variational_recurrent), seed
        self.state_filter = dropout_state_filter_visitor or _default_state_filter
        self.noise = noise
        self._generators: Dict[str, torch.Generator] = {}
        self._variational: Dict[Tuple[str, int], Tensor] = {}

    # --------------------------------------------------------------------------------- the masks
    def _uniform(self, kind: str, index: int, step: Optional[int], shape, like: Tensor) -> Tensor:
        if self.noise is not None:
            u = torch.as_tensor(self.noise(kind, index, step, tuple(shape), like.dtype, like.device),
                                dtype=like.dtype, device=like.device)
            if tuple(u.shape) != tuple(shape):
                raise RNNCellError(f"DropoutWrapper noise for {kind} {index} has shape {list(u.shape)}; expected "
                                   f"{list(shape)}")
            return u
        op_seed = gen_seed(self.seed, kind, index)
        if op_seed is None:
            return torch.rand(shape, dtype=like.dtype, device=like.device)
        key = f"{kind}_{index}_{like.device}"
        gen = self._generators.get(key)
        if gen is None:
            gen = self._generators[key] = torch.Generator(device=like.device).manual_seed(op_seed)
        return torch.rand(shape, dtype=like.dtype, device=like.device, generator=gen)

    def _drop(self, value: Tensor, kind: str, index: int, keep: float, step: Optional[int]) -> Tensor:
        if self.variational_recurrent:
            # _variational_recurrent_dropout_value: noise [1, depth] drawn once per run
            noise = self._variational.get((kind, index))
            if noise is None:
                noise = self._variational[(kind, index)] = self._uniform(kind, index, None, (1, value.shape[-1]),
                                                                         value)
        else:
            noise = self._uniform(kind, index, step, value.shape, value)  # nn_ops.dropout: per element
        # binary = floor(keep_prob + noise); value / keep_prob * binary (nn_ops.dropout, TF 1.x)
        return value / keep * torch.floor(keep + noise)

    def _drop_structure(self, values, kind: str, keep: float, step: Optional[int], shallow=None):
        """``DropoutWrapper._dropout``: every leaf in order, its index counted whether dropped or not."""
        leaves = _leaves(values)
        flags = [True] * len(leaves) if shallow is None else _leaves(shallow)
        out = [self._drop(v, kind, i, keep, step) if f else v for i, (v, f) in enumerate(zip(leaves, flags))]
        return _rebuild(values, out)

    @property
    def _active(self) -> bool:
        return self.training

    # ------------------------------------------------------------------------------------ running
    def _step(self, inputs: Tensor, state, step: Optional[int]):
        """``DropoutWrapper._call``: input dropout, the cell, state dropout, output dropout."""
        if self._active and self.input_keep_prob < 1:
            inputs = self._drop_structure(inputs, "input", self.input_keep_prob, step)
        output, new_state = self.cell(inputs, state)
        if self._active and self.state_keep_prob < 1:
            shallow = _shallow_filter(self.state_filter, new_state)
            new_state = self._drop_structure(new_state, "state", self.state_keep_prob, step, shallow)
        if self._active and self.output_keep_prob < 1:
            output = self._drop_structure(output, "output", self.output_keep_prob, step)
        return output, new_state

    def forward(self, inputs: Tensor, state):
        return self._step(inputs, state, None)

    def sequence(self, inputs, state, lengths=None):
        if self._active and self.state_keep_prob < 1:
            # The dropped state feeds the next step: step by step (rnn.py _rnn_step around DropoutWrapper._call).
            outputs = []
            for t in range(inputs.shape[0]):
                out, new_state = self._step(inputs[t], state, t)
                if lengths is not None:
                    live = (lengths > t).unsqueeze(1)
                    out = torch.where(live, out, torch.zeros_like(out))
                    new_state = _map2(lambda n, o: torch.where(live, n, o), new_state, state)
                state = new_state
                outputs.append(out)
            return torch.stack(outputs), state
        if self._active and self.input_keep_prob < 1:
            inputs = torch.stack([self._drop(inputs[t], "input", 0, self.input_keep_prob, t)
                                  for t in range(inputs.shape[0])])
        outputs, final = self.cell.sequence(inputs, state, lengths)
        if self._active and self.output_keep_prob < 1:
            outputs = torch.stack([self._drop(outputs[t], "output", 0, self.output_keep_prob, t)
                                   for t in range(outputs.shape[0])])
        return outputs, final

    def extra_repr(self) -> str:
        return (f"input_keep_prob={self.input_keep_prob}, output_keep_prob={self.output_keep_prob}, "
                f"state_keep_prob={self.state_keep_prob}, variational_recurrent={self.variational_recurrent}, "
                f"seed={self.seed}")


class ResidualWrapper(_Wrapper):
    """``tf.nn.rnn_cell.ResidualWrapper(cell, residual_fn=None)`` (rnn_cell_impl.py ``ResidualWrapper.__call__``):
    the output is ``residual_fn(inputs, outputs)``, by default ``inputs + outputs`` (their shapes must match);
    the state is the cell's."""

    def __init__(self, cell: RNNCell, residual_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None):
        super().__init__(cell)
        self.residual_fn = residual_fn

    def _residual(self, inputs: Tensor, outputs: Tensor) -> Tensor:
        if self.residual_fn is not None:
            return self.residual_fn(inputs, outputs)
        if inputs.shape != outputs.shape:
            raise RNNCellError(f"ResidualWrapper: the cell's inputs {list(inputs.shape)} and outputs "
                               f"{list(outputs.shape)} must have the same shape")
        return inputs + outputs

    def forward(self, inputs, state):
        outputs, new_state = self.cell(inputs, state)
        return self._residual(inputs, outputs), new_state

    def sequence(self, inputs, state, lengths=None):
        outputs, final = self.cell.sequence(inputs, state, lengths)
        res = self._residual(inputs, outputs)
        if lengths is not None:  # dynamic_rnn zeroes the wrapper's output past each end
            live = (torch.arange(inputs.shape[0], device=inputs.device).unsqueeze(1) < lengths.unsqueeze(0))
            res = torch.where(live.unsqueeze(2), res, torch.zeros_like(res))
        return res, final


class DeviceWrapper(_Wrapper):
    """``tf.nn.rnn_cell.DeviceWrapper(cell, device)``: placement only (rnn_cell_impl.py ``DeviceWrapper``: the
    cell's ops under ``tf.device``). The cell is moved to ``device`` at construction; inputs and states are
    moved there at every call and the results stay there, as TF's tensors do. The numbers are the cell's."""

    def __init__(self, cell: RNNCell, device):
        super().__init__(cell)
        self.device = torch.device(device)
        self.cell.to(self.device)
        for m in self.cell.modules():  # cells built later create their variables there too
            if isinstance(m, _KernelCell):
                m._device = self.device

    def _factory(self) -> dict:
        return dict(self.cell._factory(), device=self.device)

    def _move(self, state):
        return _map1(lambda t: t.to(self.device), state)

    def forward(self, inputs, state):
        return self.cell(inputs.to(self.device), self._move(state))

    def sequence(self, inputs, state, lengths=None):
        return self.cell.sequence(inputs.to(self.device), self._move(state),
                                  None if lengths is None else lengths.to(self.device))

    def zero_state(self, batch_size, dtype=None, device=None):
        return self.cell.zero_state(batch_size, dtype, self.device)

    def extra_repr(self) -> str:
        return f"device={self.device}"


# ------------------------------------------------------------------------------------------------ drivers
def _sequence_length(sequence_length, T: int, B: int, device) -> Optional[Tensor]:
    if sequence_length is None:
        return None
    lengths = torch.as_tensor(sequence_length)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or list(lengths.shape) != [B]:
        raise RNNCellError(f"sequence_length must be an integer vector of size [batch_size] = [{B}]; got dtype "
                           f"{lengths.dtype}, shape {list(lengths.shape)}")
    if bool((lengths < 0).any()):
        raise RNNCellError(f"sequence_length {lengths.tolist()} holds a negative length")
    # Past T, rnn.py's copy-through never acts (time >= sequence_length never holds): the same as T.
    return lengths.clamp(max=T).to(device=device, dtype=torch.int64)


def _initial_state(cell: RNNCell, initial_state, B: int, dtype, like: Tensor):
    if initial_state is not None:
        return initial_state
    return cell.zero_state(B, dtype or like.dtype, like.device)


def dynamic_rnn(cell: RNNCell, inputs: Tensor, sequence_length=None, initial_state=None, dtype=None,
                parallel_iterations=None, swap_memory: bool = False, time_major: bool = False, scope=None):
    """``tf.nn.dynamic_rnn`` (rnn.py ``dynamic_rnn`` / ``_dynamic_rnn_loop`` / ``_rnn_step``): ``(outputs,
    state)``; ``inputs`` [B, T, in] ([T, B, in] with ``time_major``). With ``sequence_length`` the outputs past
    each sequence's end are 0 and the final state is the one at its last step (the initial state for a length
    of 0). ``parallel_iterations``, ``swap_memory`` and ``scope`` are graph options, accepted and unused
    (the variables' names are :func:`tf_variables`'s)."""
    if not isinstance(cell, RNNCell):
        raise RNNCellError(f"The argument 'cell' ({cell!r}) is not an RNNCell of compat.rnn_cell")
    if not isinstance(inputs, Tensor) or inputs.dim() != 3:
        raise RNNCellError(f"dynamic_rnn inputs must be a 3-D tensor ([batch, time, depth], or [time, batch, depth] "
                           f"with time_major=True); got {list(inputs.shape) if isinstance(inputs, Tensor) else inputs!r}")
    x = inputs if time_major else inputs.transpose(0, 1)
    T, B = x.shape[0], x.shape[1]
    lengths = _sequence_length(sequence_length, T, B, x.device)
    state = _initial_state(cell, initial_state, B, dtype, x)
    cell.reset_dropout_masks()
    outputs, final = cell.sequence(x, state, lengths)
    return (outputs if time_major else outputs.transpose(0, 1)), final


def static_rnn(cell: RNNCell, inputs: Sequence[Tensor], initial_state=None, dtype=None, sequence_length=None,
               scope=None):
    """``tf.nn.static_rnn`` (rnn.py ``static_rnn``): ``inputs`` a list of [B, in] tensors, one per step; returns
    ``(outputs list, state)`` with ``dynamic_rnn``'s semantics for ``sequence_length``."""
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise RNNCellError("static_rnn inputs must be a non-empty list of [batch, depth] tensors")
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor) or t.dim() != 2:
            raise RNNCellError(f"static_rnn inputs[{k}] must be a [batch, depth] tensor")
    outputs, state = dynamic_rnn(cell, torch.stack(list(inputs)), sequence_length, initial_state, dtype,
                                 time_major=True)
    return list(outputs.unbind(0)), state


def bidirectional_dynamic_rnn(cell_fw: RNNCell, cell_bw: RNNCell, inputs: Tensor, sequence_length=None,
                              initial_state_fw=None, initial_state_bw=None, dtype=None, parallel_iterations=None,
                              swap_memory: bool = False, time_major: bool = False, scope=None):
    """``tf.nn.bidirectional_dynamic_rnn`` (rnn.py): ``cell_fw`` over the inputs, ``cell_bw`` over
    ``reverse_sequence(inputs, sequence_length)`` (the whole time axis reversed without lengths), its outputs
    reversed back. Returns ``((output_fw, output_bw), (state_fw, state_bw))``; concatenate the outputs on the
    last axis as TF code does. Variables: ``bidirectional_rnn/fw/...`` and ``bidirectional_rnn/bw/...``."""
    out_fw, state_fw = dynamic_rnn(cell_fw, inputs, sequence_length, initial_state_fw, dtype, time_major=time_major)
    x = inputs if time_major else inputs.transpose(0, 1)
    lengths = _sequence_length(sequence_length, x.shape[0], x.shape[1], x.device)
    index = reversal_index(x.shape[0], lengths)
    tmp, state_bw = dynamic_rnn(cell_bw, reverse_time(x, index), lengths, initial_state_bw, dtype, time_major=True)
    out_bw = reverse_time(tmp, index)
    return (out_fw, out_bw if time_major else out_bw.transpose(0, 1)), (state_fw, state_bw)


# ---------------------------------------------------------------------------------------------- variables
def tf_variables(cell: RNNCell, scope: str = "rnn") -> Dict[str, nn.Parameter]:
    """Every parameter of ``cell`` by the name TF gives it under ``scope`` (``dynamic_rnn``'s default "rnn";
    ``"bidirectional_rnn/fw"`` / ``"bidirectional_rnn/bw"`` for the two cells of bidirectional_dynamic_rnn)."""
    prefix = scope.strip("/") + "/" if scope else ""
    return {f"{prefix}{_scope(cell)}{name}": p for name, p in cell.variables().items()}


def load_tf_variables(cell: RNNCell, source, scope: str = "rnn") -> List[str]:
    """Load ``cell``'s parameters from a TF1 checkpoint (a path or prefix, read by :mod:`compat.formats.tf`) or
    a mapping of TF variable names to arrays, by TF's names under ``scope``; unbuilt cells are built from the
    variables' shapes. Returns the names loaded. A missing variable or a wrong shape raises
    :class:`RNNCellError` naming it."""
    variables = load_checkpoint(source) if not isinstance(source, Mapping) else source
    prefix = scope.strip("/") + "/" if scope else ""
    cell.build_from(variables, prefix + _scope(cell))
    loaded = []
    for name, param in tf_variables(cell, scope).items():
        if name not in variables:
            near = sorted(n for n in variables if n.startswith(prefix))[:8]
            raise RNNCellError(f"the checkpoint has no variable {name!r}; variables under {prefix!r}: {near}")
        value = torch.as_tensor(variables[name])
        if list(value.shape) != list(param.shape):
            raise RNNCellError(f"variable {name!r} has shape {list(value.shape)}; the cell expects {list(param.shape)}")
        with torch.no_grad():
            param.copy_(value.to(param.dtype))
        loaded.append(name)
    return loaded


__all__ = ["BasicLSTMCell", "BasicRNNCell", "DeviceWrapper", "DropoutWrapper", "GRUCell", "LSTMCell", "LSTMStateTuple",
           "MultiRNNCell", "RNNCell", "RNNCellError", "ResidualWrapper", "bidirectional_dynamic_rnn", "dynamic_rnn",
           "gen_seed", "load_tf_variables", "static_rnn", "tf_variables"]
