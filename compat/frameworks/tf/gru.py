"""TF1 GRU and simple-RNN cells in checkpoints, in every TF generation's names, as converted GRUs and simple RNNs.

The cells (TF 1.x ``rnn_cell_impl.py`` ``GRUCell.call`` / ``BasicRNNCell.call``, <= 0.12 ``rnn_cell.py``;
contrib ``rnn/python/ops/gru_ops.py`` ``GRUBlockCell``; contrib ``cudnn_rnn/python/ops/cudnn_rnn_ops.py``
``CudnnCompatibleGRUCell``), by the variables under their scope:

| cell | scope (last part) | variables |
| --- | --- | --- |
| GRUCell >= 1.2 | ``gru_cell`` | ``gates/kernel [in + H, 2H]`` (r, u), ``gates/bias``, ``candidate/kernel [in + H, H]``, ``candidate/bias`` |
| GRUCell 1.0, 1.1 | ``gru_cell`` | ``gates/weights``, ``gates/biases``, ``candidate/weights``, ``candidate/biases`` |
| GRUCell <= 0.12 | ``GRUCell`` | ``Gates/Linear/Matrix``, ``Gates/Linear/Bias``, ``Candidate/Linear/Matrix``, ``Candidate/Linear/Bias`` |
| GRUBlockCell | ``gru_cell`` | ``w_ru [in + H, 2H]``, ``b_ru``, ``w_c [in + H, H]``, ``b_c`` (the same arithmetic as GRUCell) |
| CudnnCompatibleGRUCell (CudnnGRU saved by Saver) | ``cudnn_compatible_gru_cell`` | ``gates/kernel``, ``gates/bias``, ``candidate/input_projection/kernel [in, H]`` and ``/bias``, ``candidate/hidden_projection/kernel [H, H]`` and ``/bias`` |
| BasicRNNCell | ``basic_rnn_cell`` (``BasicRNNCell`` <= 0.12) | ``kernel`` / ``weights`` / ``Linear/Matrix`` [in + H, H], ``bias`` / ``biases`` / ``Linear/Bias`` |

GRUCell and GRUBlockCell reset the state *before* the candidate's product (``c = tanh([x, r * h] W_c + b_c)``):
they load as ``compat.gru.GRU(reset_after=False)``, never as ``torch.nn.GRU``. CudnnCompatibleGRUCell resets after
it (``tanh(x W_i + b_i + r * (h W_h + b_h))``, cuDNN's): ``torch.nn.GRU``. BasicRNNCell: ``torch.nn.RNN``
(tanh). Stacks (``MultiRNNCell``), ``bidirectional_dynamic_rnn`` and ``stack_bidirectional_dynamic_rnn`` are
grouped as the LSTM cells are. Not in the checkpoint, stated in the table: the cells' ``activation`` (tanh by
default) and ``time_major``. The verification (oracle ``tf_rnn``) runs reference/tf_rnn_cells.py on the cells' own
tensors (CudnnCompatibleGRUCell's re-read as the ONNX GRU operator's, through reference/onnx_rnn.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from compat import rnn_layouts
from compat.convert.spec import LSTMSpec, Unknown, numpy_weights
from compat.frameworks.tf import TFCellError

GRU_SCOPES = ("gru_cell", "GRUCell", "gru_block_cell")
RNN_SCOPES = ("basic_rnn_cell", "BasicRNNCell")
CUDNN_GRU_SCOPES = ("cudnn_compatible_gru_cell",)
# role -> variable name under the cell's scope, per naming generation
GRU_NAMES = (
    ("GRUCell", {"gates_kernel": "gates/kernel", "gates_bias": "gates/bias", "candidate_kernel": "candidate/kernel",
                 "candidate_bias": "candidate/bias"}),
    ("GRUCell", {"gates_kernel": "gates/weights", "gates_bias": "gates/biases", "candidate_kernel": "candidate/weights",
                 "candidate_bias": "candidate/biases"}),
    ("GRUCell", {"gates_kernel": "Gates/Linear/Matrix", "gates_bias": "Gates/Linear/Bias",
                 "candidate_kernel": "Candidate/Linear/Matrix", "candidate_bias": "Candidate/Linear/Bias"}),
    ("GRUBlockCell", {"gates_kernel": "w_ru", "gates_bias": "b_ru", "candidate_kernel": "w_c", "candidate_bias": "b_c"}),
)
CUDNN_GRU_NAMES = {"gates_kernel": "gates/kernel", "gates_bias": "gates/bias",
                   "input_kernel": "candidate/input_projection/kernel", "input_bias": "candidate/input_projection/bias",
                   "hidden_kernel": "candidate/hidden_projection/kernel",
                   "hidden_bias": "candidate/hidden_projection/bias"}
RNN_NAMES = ({"kernel": "kernel", "bias": "bias"}, {"kernel": "weights", "bias": "biases"},
             {"kernel": "Linear/Matrix", "bias": "Linear/Bias"})


@dataclass
class RNNCell:
    """One GRU or simple-RNN cell's variables (role -> full name) and sizes; grouped into stacks by
    :func:`compat.frameworks.tf.discover._group` as the LSTM cells are."""

    scope: str
    kind: str                            # GRUCell / GRUBlockCell / CudnnCompatibleGRUCell / BasicRNNCell
    variables: Dict[str, str]
    shapes: Dict[str, Tuple[int, ...]] = field(default_factory=dict)
    projection: Optional[str] = None

    @property
    def cell(self) -> str:
        return "rnn" if self.kind == "BasicRNNCell" else "gru"

    @property
    def hidden(self) -> int:
        key = "hidden_kernel" if self.kind == "CudnnCompatibleGRUCell" else (
            "kernel" if self.cell == "rnn" else "candidate_kernel")
        return self.shapes[self.variables[key]][1]

    @property
    def width(self) -> int:
        return self.hidden

    @property
    def input_size(self) -> int:
        if self.kind == "CudnnCompatibleGRUCell":
            return self.shapes[self.variables["input_kernel"]][0]
        return self.shapes[self.variables["gates_kernel" if self.cell == "gru" else "kernel"]][0] - self.hidden

    def names(self) -> List[str]:
        return list(self.variables.values())


def find_cells(shapes: Dict[str, Tuple[int, ...]], path) -> List[RNNCell]:
    """Every GRU and simple-RNN cell of the checkpoint by its scope and variable names."""
    scopes: Dict[str, str] = {}
    for name in shapes:
        parts = name.split("/")
        for depth in range(len(parts) - 1, 0, -1):
            if parts[depth - 1] in GRU_SCOPES + RNN_SCOPES + CUDNN_GRU_SCOPES:
                scopes["/".join(parts[:depth])] = parts[depth - 1]
                break
    cells = []
    for scope, last in sorted(scopes.items()):
        if last in RNN_SCOPES:
            candidates = [("BasicRNNCell", names) for names in RNN_NAMES]
        elif last in CUDNN_GRU_SCOPES:
            candidates = [("CudnnCompatibleGRUCell", CUDNN_GRU_NAMES)]
        else:
            candidates = list(GRU_NAMES)
        found = [(kind, {role: f"{scope}/{n}" for role, n in names.items()}) for kind, names in candidates
                 if all(f"{scope}/{n}" in shapes for role, n in names.items() if not role.endswith("bias"))]
        if not found:
            continue   # listed as not converted by the caller (its variables name no cell this reader knows)
        kind, variables = found[0]
        variables = {role: n for role, n in variables.items() if n in shapes}
        cell = RNNCell(scope, kind, variables, {n: tuple(shapes[n]) for n in variables.values()})
        _check(cell, path)
        cells.append(cell)
    return cells


def _check(cell: RNNCell, path) -> None:
    s = {role: cell.shapes[n] for role, n in cell.variables.items()}
    where = f"{path}: {cell.kind} {cell.scope!r}"
    try:
        H, n_in = cell.hidden, cell.input_size
    except (IndexError, KeyError):
        raise TFCellError(f"{where}: variables of shapes {s} make no cell") from None
    if H < 1 or n_in < 1:
        raise TFCellError(f"{where}: variables of shapes {s} make no cell (H {H}, input size {n_in})")
    expect = {"gates_kernel": (n_in + H, 2 * H), "gates_bias": (2 * H,), "candidate_kernel": (n_in + H, H),
              "candidate_bias": (H,), "input_kernel": (n_in, H), "input_bias": (H,), "hidden_kernel": (H, H),
              "hidden_bias": (H,), "kernel": (n_in + H, H), "bias": (H,)}
    for role, shape in s.items():
        if tuple(shape) != expect[role]:
            raise TFCellError(f"{where}: {cell.variables[role]} has shape {list(shape)}; expected {list(expect[role])}")


def convert_cell(cell: RNNCell, tensor) -> Tuple[object, Dict[str, np.ndarray]]:
    """(torch-layout LayerWeights of numpy arrays, the cell's tensors by role)."""
    raw = {role: tensor(n) for role, n in cell.variables.items()}
    for role, v in raw.items():
        if v.dtype.kind != "f":
            raise TFCellError(f"{cell.scope}/{role}: {v.dtype}; recurrent weights are floating point")
    dtype = np.promote_types(raw[next(iter(raw))].dtype, np.float32)
    t = {k: v.astype(dtype, copy=False) for k, v in raw.items()}
    n_in = cell.input_size
    if cell.kind == "BasicRNNCell":
        w = rnn_layouts.tf_basic_rnn_cell(n_in, t["kernel"], t.get("bias"))
    elif cell.kind == "CudnnCompatibleGRUCell":
        # cudnn_rnn_ops.py CudnnCompatibleGRUCell.call: r, u from [x, h] gates/kernel; the candidate
        # tanh(x W_i + b_i + r * (h W_h + b_h)): torch's n row reads W_i (input side) and W_h (state side)
        H = cell.hidden
        gk = t["gates_kernel"]
        zeros = np.zeros(H, dtype)
        w_ih = np.concatenate([gk[:n_in].T, t["input_kernel"].T])
        w_hh = np.concatenate([gk[n_in:].T, t["hidden_kernel"].T])
        gb = t.get("gates_bias", np.zeros(2 * H, dtype))
        b_ih = np.concatenate([gb, t.get("input_bias", zeros)])
        b_hh = np.concatenate([np.zeros(2 * H, dtype), t.get("hidden_bias", zeros)])
        from compat.lstm import LayerWeights

        w = LayerWeights(w_ih, w_hh, b_ih, b_hh)
    else:
        w = rnn_layouts.tf_gru_cell(n_in, t["gates_kernel"], t.get("gates_bias"), t["candidate_kernel"],
                                    t.get("candidate_bias"))
    return numpy_weights(w), raw


def spec(name: str, direction: str, layer_cells: List[Tuple[RNNCell, ...]], ckpt) -> LSTMSpec:
    cells = [c for layer in layer_cells for c in layer]
    kinds = sorted({c.kind for c in cells})
    if len({c.cell for c in cells}) > 1 or (len(kinds) > 1 and "CudnnCompatibleGRUCell" in kinds):
        raise TFCellError(f"{ckpt.location}: {name!r} mixes {kinds}; one module runs one kind of cell")
    cell = cells[0].cell
    reset_after = kinds == ["CudnnCompatibleGRUCell"]
    layers, source = [], []
    for layer in layer_cells:
        pairs = [convert_cell(c, ckpt.tensor) for c in layer]
        ws = [w for w, _ in pairs]
        layers.append(ws[0] if len(ws) == 1 else tuple(ws))
        source.append(tuple(raw for _, raw in pairs))
    options: dict = {"reset_after": reset_after} if cell == "gru" else {}
    if direction != "forward":
        options["direction"] = direction
    unknowns = [Unknown("time_major", "?", "the module takes [T, B, in] (batch_first=False); dynamic_rnn's default "
                                           "was batch-major input (time_major=False)")]
    if not reset_after:
        unknowns.insert(0, Unknown("activation", "tanh", "the cells' default (not stored in checkpoints)"))
    s = LSTMSpec(name=name, source_format="tf", variant="/".join(kinds), layers=layers, options=options,
                 unknowns=unknowns, source=source, oracle="tf_rnn", lengths=True, cell=cell)
    s.semantics = {"kinds": [[c.kind for c in layer] for layer in layer_cells]}
    s.notes.append("variables: " + ", ".join(n[len(layer_cells[0][0].scope) + 1:] for n in layer_cells[0][0].names()))
    if cell == "gru" and not reset_after:
        s.notes.append("the reset gate multiplies the state before the candidate's product (GRUCell): "
                       "compat.gru.GRU(reset_after=False), not torch.nn.GRU")
    if direction == "bidirectional":
        s.notes.append("outputs are concat(fw, bw); bidirectional_dynamic_rnn returned them as a pair")
    if direction == "reverse":
        s.notes.append("the backward stack of a bidirectional_dynamic_rnn or static_bidirectional_rnn: outputs in "
                       "the input's time order")
    return s
