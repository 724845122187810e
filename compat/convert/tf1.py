"""Every LSTM in a TF1 checkpoint, found by variable names and shapes.

A TF1 checkpoint holds variables only: no graph, no cell class, no constructor arguments. The cells are
recognised by the scope TF gives their variables and by the variables' shapes, in every TF generation's
names (rnn_cell_impl.py / rnn_cell.py / lstm_ops.py / cudnn_rnn_ops.py of each release):

| cell | scope (last part) | variables |
| --- | --- | --- |
| BasicLSTMCell | ``basic_lstm_cell`` (>= 1.0), ``BasicLSTMCell`` (<= 0.12) | ``kernel``, ``bias`` (>= 1.2); ``weights``, ``biases`` (1.0, 1.1); ``Linear/Matrix``, ``Linear/Bias`` (<= 0.12) |
| LSTMCell, LSTMBlockCell, LSTMBlockFusedCell | ``lstm_cell`` (>= 1.0), ``LSTMCell`` (<= 0.12) | the same, plus ``w_i_diag``, ``w_f_diag``, ``w_o_diag`` (peepholes) and ``projection/kernel`` (``projection/weights`` in 1.0, 1.1) [H, P]; <= 0.12: ``W_0``, ``B``, ``W_I_diag``, ``W_F_diag``, ``W_O_diag``, ``W_P_0`` |
| CudnnLSTM, saved by Saver | ``cudnn_compatible_lstm_cell`` | ``kernel``, ``bias`` (the sum of cuDNN's two biases), TF's i, j, f, o layout, no forget bias |
| CudnnLSTM, opaque | ``opaque_kernel`` (1-D) | cuDNN's parameter buffer: needs ``num_units`` (and layers, direction) given |

Structure: ``multi_rnn_cell/cell_K`` (``MultiRNNCell/CellK`` <= 0.12) is layer K of a stack;
``bidirectional_rnn/fw|bw`` (``BiRNN/FW|BW`` <= 0.12) the two directions of ``bidirectional_dynamic_rnn``;
``stack_bidirectional_rnn/cell_K/bidirectional_rnn/fw|bw`` a ``stack_bidirectional_dynamic_rnn`` (and a
multi-layer bidirectional CudnnLSTM), whose layer K + 1 reads both directions of layer K, as
``torch.nn.LSTM(bidirectional=True)`` does. A ``bidirectional_dynamic_rnn`` of two ``MultiRNNCell`` stacks
runs each stack whole and concatenates only at the end: two LSTMs here, ``.../fw`` (forward) and
``.../bw`` (reverse).

Not in any checkpoint, and so stated in the table: the run-time ``forget_bias`` (1.0 by default for
every cell but cuDNN's), ``cell_clip`` / ``proj_clip`` (constructor arguments; the ``LSTMBlockCell`` op
clipped the cell to 3.0 by default in early TF 1.x releases), the cell's ``activation`` (tanh by
default), ``time_major`` and ``sequence_length``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from compat import layouts
from compat.convert.spec import LSTMSpec, Unknown
from compat.errors import InputError
from compat.formats.tf import CheckpointReader

# The last scope component of each cell and the cell it names.
CELL_SCOPES = {
    "basic_lstm_cell": "BasicLSTMCell",
    "BasicLSTMCell": "BasicLSTMCell",
    "lstm_cell": "LSTMCell",
    "LSTMCell": "LSTMCell",
    "cudnn_compatible_lstm_cell": "CudnnLSTM",
}
# (kernel, bias) by generation.
KERNEL_BIAS = (("kernel", "bias"), ("weights", "biases"), ("Linear/Matrix", "Linear/Bias"), ("W_0", "B"))
PEEPHOLES = (("w_i_diag", "w_f_diag", "w_o_diag"), ("W_I_diag", "W_F_diag", "W_O_diag"))
PROJECTIONS = ("projection/kernel", "projection/weights", "W_P_0")

TF_FORGET_BIAS_DEFAULT = 1.0


class TFCellError(InputError, ValueError):
    """A TF cell whose variables do not make an LSTM this converter can represent exactly."""


@dataclass
class Cell:
    scope: str
    kind: str                      # BasicLSTMCell / LSTMCell / CudnnLSTM
    kernel: str
    bias: str
    peepholes: Optional[Tuple[str, str, str]] = None
    projection: Optional[str] = None
    shapes: Dict[str, Tuple[int, ...]] = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        return self.shapes[self.bias][0] // 4

    @property
    def width(self) -> int:
        return self.shapes[self.projection][1] if self.projection else self.hidden

    @property
    def input_size(self) -> int:
        return self.shapes[self.kernel][0] - self.width

    def names(self) -> List[str]:
        out = [self.kernel, self.bias]
        out += list(self.peepholes or ())
        out += [self.projection] if self.projection else []
        return out


def _find_cells(shapes: Dict[str, Tuple[int, ...]], path: str) -> List[Cell]:
    cells = []
    scopes = set()
    for name in shapes:
        parts = name.split("/")
        for depth in range(len(parts) - 1, 0, -1):
            if parts[depth - 1] in CELL_SCOPES:
                scopes.add("/".join(parts[:depth]))
                break
    for scope in sorted(scopes):
        kind = CELL_SCOPES[scope.rsplit("/", 1)[-1]]
        found = [(k, b) for k, b in KERNEL_BIAS if f"{scope}/{k}" in shapes and f"{scope}/{b}" in shapes]
        if not found:
            names = sorted(n for n in shapes if n.startswith(scope + "/"))
            # Optimizer slots (kernel/Adam, ...) sit under the cell's scope too; a cell scope with no
            # weights at all is not a cell.
            if any(not _is_slot(n[len(scope) + 1:]) for n in names):
                raise TFCellError(f"{path}: {scope!r} looks like an LSTM cell scope but has no kernel/bias pair "
                                  f"in any TF generation's names; its variables: {names[:8]}")
            continue
        k, b = found[0]
        cell = Cell(scope, kind, f"{scope}/{k}", f"{scope}/{b}")
        for names in PEEPHOLES:
            full = tuple(f"{scope}/{n}" for n in names)
            present = [n in shapes for n in full]
            if any(present):
                if not all(present):
                    raise TFCellError(f"{path}: {scope!r} has only some peephole variables "
                                      f"({[n for n, p in zip(full, present) if p]}); LSTMCell has all three")
                cell.peepholes = full
        for p in PROJECTIONS:
            if f"{scope}/{p}" in shapes:
                cell.projection = f"{scope}/{p}"
        cell.shapes = {n: shapes[n] for n in cell.names()}
        _check_cell(cell, path)
        known = set(cell.names())
        extra = sorted(n for n in shapes if n.startswith(scope + "/") and n not in known
                       and not _is_slot(n[len(scope) + 1:], known, scope))
        if extra:
            raise TFCellError(f"{path}: LSTM cell {scope!r} has variables this converter does not know: {extra} "
                              "(nothing is dropped silently)")
        cells.append(cell)
    return cells


_SLOT = re.compile(r"/(Adam|Adam_\d+|Momentum|Adagrad|Adadelta|Adadelta_\d+|RMSProp|RMSProp_\d+|Ftrl|Ftrl_\d+|"
                   r"ExponentialMovingAverage|AdamW|AdamW_\d+|accumulator|accum|slot_\w+)$")


def _is_slot(rest: str, known=(), scope: str = "") -> bool:
    """Optimizer slots and moving averages of a cell's variables (``kernel/Adam``), which are not weights."""
    if _SLOT.search("/" + rest):
        return True
    return any(("/" + rest).startswith("/" + k[len(scope) + 1:] + "/") for k in known)


def _check_cell(cell: Cell, path: str) -> None:
    k, b = cell.shapes[cell.kernel], cell.shapes[cell.bias]
    if len(b) != 1 or b[0] % 4 or b[0] == 0:
        raise TFCellError(f"{path}: {cell.bias} has shape {list(b)}; an LSTM bias is [4H]")
    H = b[0] // 4
    if len(k) != 2 or k[1] != 4 * H:
        raise TFCellError(f"{path}: {cell.kernel} has shape {list(k)}; expected [in + H, 4H = {4 * H}]")
    if cell.peepholes:
        for n in cell.peepholes:
            if cell.shapes[n] != (H,):
                raise TFCellError(f"{path}: {n} has shape {list(cell.shapes[n])}; expected [H = {H}]")
    if cell.projection:
        p = cell.shapes[cell.projection]
        if len(p) != 2 or p[0] != H:
            raise TFCellError(f"{path}: {cell.projection} has shape {list(p)}; expected [H = {H}, num_proj]")
    if k[0] <= cell.width:
        raise TFCellError(f"{path}: {cell.kernel} has shape {list(k)}; its rows must be input size + "
                          f"{'num_proj' if cell.projection else 'H'} = in + {cell.width}")


# --- structure -----------------------------------------------------------------------------------------

_STACK_BIDI = re.compile(r"^(?P<base>(?:.*/)?stack_bidirectional_rnn)/cell_(?P<k>\d+)/bidirectional_rnn/(?P<d>fw|bw)/(?P<cell>[^/]+)$")
_BIDI_MULTI = re.compile(r"^(?P<base>(?:.*/)?(?:bidirectional_rnn|BiRNN))/(?P<d>fw|bw|FW|BW)/"
                         r"(?:multi_rnn_cell/cell_|MultiRNNCell/Cell)(?P<k>\d+)/(?P<cell>[^/]+)$")
_BIDI = re.compile(r"^(?P<base>(?:.*/)?(?:bidirectional_rnn|BiRNN))/(?P<d>fw|bw|FW|BW)/(?P<cell>[^/]+)$")
_MULTI = re.compile(r"^(?P<base>(?:.*/)?(?:multi_rnn_cell|MultiRNNCell))/(?:cell_|Cell)(?P<k>\d+)/(?P<cell>[^/]+)$")


@dataclass
class _Group:
    name: str
    kind: str                                  # "forward" / "reverse" / "bidirectional" / "stack_bidirectional"
    layers: Dict[int, Dict[str, Cell]] = field(default_factory=dict)   # layer -> {"fw"/"bw": cell}


def _group(cells: Sequence[Cell]) -> List[_Group]:
    groups: Dict[Tuple[str, str], _Group] = {}

    def add(name, kind, k, d, cell):
        g = groups.setdefault((name, kind), _Group(name, kind))
        g.layers.setdefault(k, {})[d] = cell

    for cell in cells:
        s = cell.scope
        if m := _STACK_BIDI.match(s):
            add(m["base"], "stack_bidirectional", int(m["k"]), m["d"], cell)
        elif m := _BIDI_MULTI.match(s):
            d = m["d"].lower()
            add(f"{m['base']}/{d}", "forward" if d == "fw" else "reverse", int(m["k"]), "fw", cell)
        elif m := _BIDI.match(s):
            add(m["base"], "bidirectional", 0, m["d"].lower(), cell)
        elif m := _MULTI.match(s):
            add(m["base"], "forward", int(m["k"]), "fw", cell)
        else:
            add(s, "forward", 0, "fw", cell)
    out = []
    for g in groups.values():
        # A bidirectional_dynamic_rnn of two MultiRNNCells of one layer each is one bidirectional layer.
        out.append(g)
    merged = _merge_single_layer_bidi(out)
    for g in merged:
        ks = sorted(g.layers)
        if ks != list(range(len(ks))):
            raise TFCellError(f"stack {g.name!r} has layers {ks}; the cells of a MultiRNNCell are numbered 0.."
                              f"{len(ks) - 1} (some layer's variables are missing from the checkpoint)")
        for k in ks:
            want = {"fw", "bw"} if g.kind in ("bidirectional", "stack_bidirectional") else {"fw"}
            if set(g.layers[k]) != want:
                raise TFCellError(f"{g.name!r} layer {k}: found the {sorted(g.layers[k])} direction(s) only; "
                                  f"a bidirectional RNN has both fw and bw")
    return merged


def _merge_single_layer_bidi(groups: List[_Group]) -> List[_Group]:
    by_name = {(g.name, g.kind): g for g in groups}
    out = []
    done = set()
    for g in groups:
        if (g.name, g.kind) in done:
            continue
        if g.kind in ("forward", "reverse") and g.name.endswith(("/fw", "/bw")):
            base, d = g.name[:-3], g.name[-2:]
            other_name = f"{base}/{'bw' if d == 'fw' else 'fw'}"
            other = by_name.get((other_name, "reverse" if d == "fw" else "forward"))
            if other is not None and len(g.layers) == 1 and len(other.layers) == 1:
                fw, bw = (g, other) if d == "fw" else (other, g)
                out.append(_Group(base, "bidirectional", {0: {"fw": fw.layers[0]["fw"], "bw": bw.layers[0]["fw"]}}))
                done |= {(g.name, g.kind), (other.name, other.kind)}
                continue
        out.append(g)
        done.add((g.name, g.kind))
    return out


# --- conversion ------------------------------------------------------------------------------------------

class Variables:
    """A TF checkpoint's variable shapes at once, values on demand (errors name the file)."""

    def __init__(self, path):
        self.reader = CheckpointReader(path)
        self.location = self.reader.location
        self.shapes: Dict[str, Tuple[int, ...]] = {n: tuple(s) for n, s in self.reader.get_variable_to_shape_map().items()}

    def tensor(self, name: str) -> np.ndarray:
        return np.asarray(self.reader.get_tensor(name))


def _convert_cell(cell: Cell, ckpt: Variables, forget_bias: float, clips: Dict[str, float]):
    """(LayerWeights, options, the cell's tensors in TF's names) via compat.layouts' ``tf`` layout."""
    raw = {"kernel": ckpt.tensor(cell.kernel), "bias": ckpt.tensor(cell.bias)}
    if cell.peepholes:
        raw.update(zip(("w_i_diag", "w_f_diag", "w_o_diag"), (ckpt.tensor(n) for n in cell.peepholes)))
    if cell.projection:
        raw["projection/kernel"] = ckpt.tensor(cell.projection)
    for key, value in raw.items():
        if value.dtype.kind != "f":
            raise TFCellError(f"{ckpt.location}: {cell.scope}/{key} is {value.dtype}; LSTM weights are floating point")
    dtype = np.promote_types(raw["kernel"].dtype, np.float32)  # float16 / bfloat16 run as float32
    tensors = {k: v.astype(dtype, copy=False) for k, v in raw.items()}
    attributes = {k: v for k, v in clips.items() if v is not None and (k != "proj_clip" or cell.projection)}
    try:
        converted = layouts.convert("tf", tensors, attributes, forget_bias=forget_bias)
    except layouts.LayoutError as e:
        raise TFCellError(f"{ckpt.location}: cell {cell.scope!r}: {e}") from None
    return converted.weights, converted.options, raw


def _variant(cells: Sequence[Cell]) -> str:
    kinds = sorted({c.kind for c in cells})
    text = "/".join(kinds)
    if kinds == ["LSTMCell"]:
        text = "LSTMCell (or LSTMBlockCell, LSTMBlockFusedCell)"
    extras = []
    if any(c.peepholes for c in cells):
        extras.append("peepholes")
    if any(c.projection for c in cells):
        extras.append(f"num_proj={cells[0].width}")
    return text + (f" ({', '.join(extras)})" if extras else "")


def _spec(name: str, direction: str, layer_cells: List[Tuple[Cell, ...]], ckpt: Variables,
          forget_bias: Optional[float], cell_clip: Optional[float], proj_clip: Optional[float]) -> LSTMSpec:
    cells = [c for layer in layer_cells for c in layer]
    cudnn = all(c.kind == "CudnnLSTM" for c in cells)
    if any(c.kind == "CudnnLSTM" for c in cells) and not cudnn:
        raise TFCellError(f"{ckpt.location}: {name!r} mixes CudnnLSTM and other cells")
    unknowns: List[Unknown] = []
    if cudnn:
        fb = 0.0
    elif forget_bias is None:
        fb = TF_FORGET_BIAS_DEFAULT
        unknowns.append(Unknown("forget_bias", "1.0", "TF's default, not stored in checkpoints: pass --forget-bias "
                                                      "if the model set another", loud=True))
    else:
        fb = float(forget_bias)
        unknowns.append(Unknown("forget_bias", f"{fb:g}", "given"))
    peep = any(c.peepholes for c in cells)
    clips = {"cell_clip": None if cudnn else cell_clip, "proj_clip": None if cudnn else proj_clip}
    layers, source, options = [], [], {}
    for layer in layer_cells:
        ws, raws = [], []
        for c in layer:
            w, opts, raw = _convert_cell(c, ckpt, fb, clips)
            options.update(opts)
            raws.append(raw)
            if peep and w.peephole is None:
                # A cell without peepholes in a stack whose other cells have them: zero peepholes are exact.
                w = w._replace(peephole=np.zeros((3, c.hidden), dtype=w.weight_ih.dtype))
            ws.append(w)
        layers.append(ws[0] if len(ws) == 1 else (ws[0], ws[1]))
        source.append(tuple(raws))
    if not cudnn:
        if cell_clip is None and any(c.kind == "LSTMCell" for c in cells):
            unknowns.append(Unknown("cell_clip", "none", "LSTMCell's default; the LSTMBlockCell op of early TF 1.x "
                                                         "releases clipped the cell to 3.0 by default: pass --cell-clip 3"))
        elif cell_clip is not None:
            unknowns.append(Unknown("cell_clip", f"{cell_clip:g}", "given"))
        if any(c.projection for c in cells):
            unknowns.append(Unknown("proj_clip", "none", "LSTMCell's default") if proj_clip is None
                            else Unknown("proj_clip", f"{proj_clip:g}", "given"))
        unknowns.append(Unknown("activation", "tanh", "the cells' default"))
    unknowns.append(Unknown("time_major", "?", "the module takes [T, B, in] (batch_first=False); dynamic_rnn's "
                                               "default was batch-major input (time_major=False)"))
    if direction != "forward":
        options["direction"] = direction
    spec = LSTMSpec(name=name, source_format="tf1", variant=_variant(cells), layers=layers, options=options,
                    forget_bias=fb, unknowns=unknowns, source=source, oracle="tf")
    spec.semantics = {"forget_bias": fb, "cell_clip": options.get("cell_clip"), "proj_clip": options.get("proj_clip")}
    spec.notes.append("variables: " + ", ".join(n.rsplit("/", 1)[-1] for n in layer_cells[0][0].names()))
    if direction == "bidirectional":
        spec.notes.append("outputs are concat(fw, bw); bidirectional_dynamic_rnn returned them as a pair")
    if direction == "reverse":
        spec.notes.append("the backward stack of a bidirectional_dynamic_rnn: outputs in the input's time order")
    return spec


def _split_incompatible(g: _Group, path: str) -> List[Tuple[str, List[int]]]:
    """Runs of consecutive layers that one module can hold (same hidden size and projection)."""
    ks = sorted(g.layers)
    runs: List[List[int]] = [[ks[0]]]
    for k in ks[1:]:
        prev = g.layers[runs[-1][-1]]["fw"]
        cur = g.layers[k]["fw"]
        factor = 2 if g.kind in ("bidirectional", "stack_bidirectional") else 1
        chained = cur.input_size == prev.width * factor
        if not chained:
            raise TFCellError(f"{path}: layer {k} of {g.name!r} reads {cur.input_size} features but layer {k - 1} "
                              f"outputs {prev.width * factor}")
        same = (cur.hidden == prev.hidden and cur.width == prev.width and bool(cur.projection) == bool(prev.projection))
        if same:
            runs[-1].append(k)
        else:
            runs.append([k])
    if len(runs) == 1:
        return [(g.name, runs[0])]
    return [(f"{g.name}/cell_{r[0]}" + (f"-{r[-1]}" if len(r) > 1 else ""), r) for r in runs]


def discover(path, *, forget_bias: Optional[float] = None, cell_clip: Optional[float] = None,
             proj_clip: Optional[float] = None, cudnn_num_units: Optional[int] = None,
             cudnn_num_layers: int = 1, cudnn_bidirectional: bool = False) -> List[LSTMSpec]:
    """Every LSTM in the TF1 checkpoint at ``path`` (a prefix, .index file, V1 file or directory)."""
    ckpt = Variables(path)
    specs: List[LSTMSpec] = []
    cells = _find_cells(ckpt.shapes, ckpt.location)
    for g in _group(cells):
        direction = {"forward": "forward", "reverse": "reverse"}.get(g.kind, "bidirectional")
        for name, ks in _split_incompatible(g, ckpt.location):
            layer_cells = [tuple(g.layers[k][d] for d in (("fw", "bw") if direction == "bidirectional" else ("fw",)))
                           for k in ks]
            spec = _spec(name, direction, layer_cells, ckpt, forget_bias, cell_clip, proj_clip)
            if len(ks) < len(g.layers):
                spec.notes.append(f"layers {ks} of {g.name}: its layers differ in size; run the parts in sequence")
            specs.append(spec)
    from compat.convert.cudnn import opaque_specs

    specs += opaque_specs(ckpt, num_units=cudnn_num_units, num_layers=cudnn_num_layers,
                          bidirectional=cudnn_bidirectional)
    # A run-time setting given for cells that have no such setting would be dropped: refuse it.
    tf_cells = [s for s in specs if not s.variant.startswith("CudnnLSTM")]
    unused = []
    if forget_bias is not None and not tf_cells:
        unused.append("--forget-bias (CudnnLSTM has no forget bias)")
    if cell_clip is not None and not tf_cells:
        unused.append("--cell-clip (CudnnLSTM does not clip its cell)")
    if proj_clip is not None and not any(s.proj_size for s in tf_cells):
        unused.append("--proj-clip (no cell here has a projection, num_proj)")
    opaque = any(s.variant == "CudnnLSTM (opaque parameters)" for s in specs)
    if not opaque and (cudnn_num_units is not None or cudnn_num_layers != 1 or cudnn_bidirectional):
        unused.append("--cudnn-num-units / --cudnn-num-layers / --cudnn-bidirectional (no CudnnLSTM opaque buffer "
                      "here)")
    if unused:
        raise TFCellError(f"{ckpt.location}: {', '.join(unused)} given, but no LSTM in the checkpoint takes it")
    return specs
