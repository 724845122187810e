"""Every LSTM in a TF1 checkpoint, found by variable names and shapes.

A TF1 checkpoint holds variables only: no graph, no cell class, no constructor arguments. The cells are
recognised by the scope TF gives their variables and by the variables' shapes, in every TF generation's
names (rnn_cell_impl.py / rnn_cell.py / lstm_ops.py / cudnn_rnn_ops.py of each release):

The names of every TF generation are in :mod:`compat.frameworks.tf.names`.

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

import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from compat import layouts
from compat.convert.spec import Found, LSTMSpec, SourceItem, Unknown, carry, numpy_weights
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES
from compat.formats.tf import CheckpointReader
from compat.formats.tf.object_graph import OBJECT_GRAPH_KEY, parse_object_graph
from compat.formats.tf.tensors import item_size
from compat.frameworks.tf import TF_FORGET_BIAS_DEFAULT, TFCellError
from compat.frameworks.tf import keras as tf_keras
from compat.frameworks.tf.meta import GraphMeta
from compat.frameworks.tf.names import (KERNEL_BIAS, LSTM_CELL_SCOPES, PEEPHOLES, PROJECTIONS, VARIABLE_VALUE,
                                        is_bookkeeping, is_slot, other_cell_of, wrapper_of)

CELL_SCOPES = LSTM_CELL_SCOPES


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


def _is_slot(rest: str, known=(), scope: str = "") -> bool:
    """Optimizer slots and moving averages of a cell's variables (``kernel/Adam``), which are not weights."""
    if is_slot(rest):
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
    """A TF checkpoint's variable shapes at once, values on demand (errors name the file; no variable larger
    than ``max_tensor_bytes``, from its shape and dtype or its stored bytes, is read), and its object graph
    when it is an object-based checkpoint."""

    def __init__(self, path, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES):
        self.max_tensor_bytes = max_tensor_bytes
        self.reader = CheckpointReader(path)
        self.location = self.reader.location
        # Object-based checkpoints name a variable ".../kernel/.ATTRIBUTES/VARIABLE_VALUE": it is read here by
        # its object path (".../kernel"), the name the scope rules expect; ``real`` maps back.
        self.real: Dict[str, str] = {}
        for n in self.reader.get_variable_to_shape_map():
            self.real[n[:-len(VARIABLE_VALUE)] if n.endswith(VARIABLE_VALUE) else n] = n
        shapes = self.reader.get_variable_to_shape_map()
        self.shapes: Dict[str, Tuple[int, ...]] = {n: tuple(shapes[r]) for n, r in self.real.items()}
        self.graph = None
        if self.reader.has_tensor(OBJECT_GRAPH_KEY):
            raw = np.asarray(self.reader.get_tensor(OBJECT_GRAPH_KEY))
            if raw.shape != () or not isinstance(raw.item(), bytes):
                raise TFCellError(f"{self.location}: {OBJECT_GRAPH_KEY} is not one serialized object graph "
                                  f"(a {raw.dtype} tensor of shape {list(raw.shape)})")
            self.graph = parse_object_graph(raw.item(), self.location)
        # the name each variable of an object-based checkpoint was created with ("head/kernel"), by its name here
        self.own_names: Dict[str, str] = {}
        for node in self.graph or ():
            attr = node.variable
            if attr is not None and attr.full_name and attr.checkpoint_key.endswith(VARIABLE_VALUE):
                self.own_names[attr.checkpoint_key[:-len(VARIABLE_VALUE)]] = attr.full_name

    def tensor(self, name: str) -> np.ndarray:
        real = self.real.get(name, name)
        info = self.reader.tensor_info(real)
        itemsize = item_size(info.dtype_enum)
        nbytes = math.prod(info.shape) * itemsize if itemsize is not None else info.size
        if nbytes > self.max_tensor_bytes:
            raise TFCellError(f"{self.location}: variable {real[:200]!r} of shape {list(info.shape)} has {nbytes:,} "
                              f"bytes; the ceiling is {self.max_tensor_bytes:,} (--max-tensor-bytes raises it)")
        return np.asarray(self.reader.get_tensor(real))

    def shapes_of(self, names) -> Dict[str, Tuple[int, ...]]:
        """``{the name in the checkpoint: shape}`` of variables named as :attr:`shapes` names them."""
        return {self.real[n]: self.shapes[n] for n in names}


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
    return numpy_weights(converted.weights), converted.options, raw


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
          forget_bias: Optional[float], cell_clip: Optional[float], proj_clip: Optional[float],
          graph: Optional["GraphMeta"] = None) -> LSTMSpec:
    cells = [c for layer in layer_cells for c in layer]
    cudnn = all(c.kind == "CudnnLSTM" for c in cells)
    if any(c.kind == "CudnnLSTM" for c in cells) and not cudnn:
        raise TFCellError(f"{ckpt.location}: {name!r} mixes CudnnLSTM and other cells")
    unknowns: List[Unknown] = []
    settled = graph.settle(name, cells) if graph is not None and not cudnn else None
    if settled is not None and not settled.found:
        unknowns.append(Unknown("graph", "no ops", f"{graph.path} holds no op of this LSTM's scope: the settings "
                                                   "below are defaults or flags"))
        settled = None
    from_graph = settled.settings if settled is not None else {}
    if cudnn:
        fb = 0.0
    elif forget_bias is None and "forget_bias" in from_graph:
        fb = float(from_graph["forget_bias"].value)
        unknowns.append(Unknown("forget_bias", f"{fb:.7g}", f"from the graph: {from_graph['forget_bias'].node}"))
    elif forget_bias is None:
        fb = TF_FORGET_BIAS_DEFAULT
        unknowns.append(Unknown("forget_bias", "1.0", "TF's default, not stored in checkpoints: pass --forget-bias "
                                                      "if the model set another", loud=True))
    else:
        fb = float(forget_bias)
        unknowns.append(settled.given("forget_bias", fb) if settled else Unknown("forget_bias", f"{fb:g}", "given"))
    clip_flags = {"cell_clip": cell_clip, "proj_clip": proj_clip}
    if settled is not None and not cudnn:
        cell_clip = settled.value("cell_clip", cell_clip)
        proj_clip = settled.value("proj_clip", proj_clip)
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
    activation = "tanh"
    if settled is not None:
        unknowns += settled.clip_unknowns(any(c.projection for c in cells), clip_flags)
        activation = settled.activation()
        if activation != "tanh":
            options["activations"] = ("sigmoid", activation, activation)
        unknowns += settled.run_unknowns()
    elif not cudnn:
        if cell_clip is None and any(c.kind == "LSTMCell" for c in cells):
            unknowns.append(Unknown("cell_clip", "none", "LSTMCell's default; the LSTMBlockCell op of early TF 1.x "
                                                         "releases clipped the cell to 3.0 by default: pass --cell-clip 3"))
        elif cell_clip is not None:
            unknowns.append(Unknown("cell_clip", f"{cell_clip:g}", "given"))
        if any(c.projection for c in cells):
            unknowns.append(Unknown("proj_clip", "none", "LSTMCell's default") if proj_clip is None
                            else Unknown("proj_clip", f"{proj_clip:g}", "given"))
        unknowns.append(Unknown("activation", "tanh", "the cells' default"))
    time_major = settled.time_major() if settled is not None else None
    if time_major is None:
        unknowns.append(Unknown("time_major", "?", "the module takes [T, B, in] (batch_first=False); dynamic_rnn's "
                                                   "default was batch-major input (time_major=False)"))
    if direction != "forward":
        options["direction"] = direction
    spec = LSTMSpec(name=name, source_format="tf", variant=_variant(cells), layers=layers, options=options,
                    forget_bias=fb, unknowns=unknowns, source=source, oracle="tf", lengths=True,
                    batch_first=time_major is False)
    spec.semantics = {"forget_bias": fb, "cell_clip": options.get("cell_clip"), "proj_clip": options.get("proj_clip"),
                      "activation": activation}
    spec.notes.append("variables: " + ", ".join(n.rsplit("/", 1)[-1] for n in layer_cells[0][0].names()))
    if direction == "bidirectional":
        spec.notes.append("outputs are concat(fw, bw); bidirectional_dynamic_rnn returned them as a pair")
    if direction == "reverse":
        spec.notes.append("the backward stack of a bidirectional_dynamic_rnn or static_bidirectional_rnn: outputs in "
                          "the input's time order")
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



# --- cuDNN opaque buffers ---------------------------------------------------------------------------------
def _opaque(ckpt: Variables, cells: List[Cell], options: dict) -> Tuple[List[LSTMSpec], List[SourceItem], set]:
    """Specs and items of every opaque buffer; the names of the TF-format copies they account for."""
    from compat.frameworks.tf import cudnn

    specs, items, used = [], [], set()
    names = sorted(n for n, s in ckpt.shapes.items() if len(s) == 1 and n.rsplit("/", 1)[-1] == "opaque_kernel"
                   and not is_slot(n))
    for name in names:
        scope = name[:-len("/opaque_kernel")]
        size = ckpt.shapes[name][0]
        copies = [c for c in cells if c.kind == "CudnnLSTM" and c.scope.startswith(scope + "/")]
        mode = options.get("cudnn_rnn_mode") or cudnn.mode_of_scope(scope) or ("lstm" if copies else None)
        if mode is not None and mode != "lstm":
            # a GRU's or simple RNN's TF-format copy: cudnn_compatible_gru_cell / basic_rnn_cell under the scope
            from compat.frameworks.tf import gru as tf_gru

            under = {n: s for n, s in ckpt.shapes.items() if n.startswith(scope + "/") and not is_slot(n)}
            copies = [c for c in tf_gru.find_cells(under, ckpt.location)
                      if c.scope.rsplit("/", 1)[-1] == cudnn.COPY_SCOPES[mode]]
        where = f"{ckpt.location}: {name}"
        if mode is None:
            raise cudnn.CudnnOpaqueError(f"{where}: a cuDNN opaque buffer whose cell the scope does not tell: give "
                                         f"--cudnn-rnn-mode ({', '.join(cudnn.GATES)})")
        if copies:
            groups = _group(copies)
            if len(groups) != 1:
                raise cudnn.CudnnOpaqueError(f"{where}: its TF-format copies make {len(groups)} stacks")
            g = groups[0]
            first = g.layers[0]["fw"]
            shape = cudnn.CudnnShape(mode, first.hidden, len(g.layers), g.kind != "forward", first.input_size,
                                     first.width if first.projection else 0)
            given = "read from the TF-format copy"
        else:
            H = options.get("cudnn_num_units")
            if H is None:
                raise cudnn.CudnnOpaqueError(f"{where} is a cuDNN opaque buffer ({size} elements), which does not store "
                                             "its sizes: give --cudnn-num-units (and --cudnn-num-layers, "
                                             "--cudnn-bidirectional, --cudnn-num-proj when they apply)")
            L = options.get("cudnn_num_layers") or 1
            bidi = bool(options.get("cudnn_bidirectional"))
            P = options.get("cudnn_num_proj") or 0
            n_in = cudnn.input_size_from_length(size, mode, H, L, bidi, P)
            if n_in is None:
                raise cudnn.CudnnOpaqueError(f"{where} has {size} elements, which no input size gives for {mode} "
                                             f"num_units={H}, num_layers={L}, "
                                             f"{'bidirectional' if bidi else 'unidirectional'}, num_proj={P or 'none'}")
            shape = cudnn.CudnnShape(mode, H, L, bidi, n_in, P)
            given = "given"
        buf = ckpt.tensor(name)
        if buf.dtype.kind != "f":
            raise cudnn.CudnnOpaqueError(f"{where} is {buf.dtype}; recurrent weights are floating point")
        if buf.size != shape.size():
            raise cudnn.CudnnOpaqueError(f"{where} has {buf.size} elements; its TF-format copy's sizes make "
                                         f"{shape.size()}")
        buf = buf.astype(np.promote_types(buf.dtype, np.float32), copy=False)
        layers = cudnn.split_opaque(buf, shape)
        cell = cudnn.CELL_OF_MODE[mode]
        if copies:
            g = _group(copies)[0]
            for k, dirs in enumerate(layers):
                for d, pseudo in zip(("fw", "bw"), dirs):
                    c = g.layers[k][d]
                    if mode == "lstm":
                        copy = {"kernel": ckpt.tensor(c.kernel), "bias": ckpt.tensor(c.bias)}
                        if c.projection:
                            copy["projection/kernel"] = ckpt.tensor(c.projection)
                    else:
                        copy = {n[len(c.scope) + 1:]: ckpt.tensor(n) for n in c.names()}
                    cudnn.compare_with_copy(pseudo, copy, f"{where} layer {k} {'forward' if d == 'fw' else 'backward'}"
                                                          f" vs {c.scope}", mode)
                    used.update(c.names())
        sizes = (f"{mode}, num_units={shape.num_units}, num_layers={shape.num_layers}, "
                 f"{'bidirectional' if shape.bidirectional else 'unidirectional'}"
                 + (f", num_proj={shape.num_proj}" if shape.num_proj else "") + f", input size {shape.input_size}")
        if mode != "lstm":
            # cuDNN's GRU (gates r, u, h = torch's r, z, n; the reset after the product, as torch.nn.GRU) and
            # simple RNNs (tanh, relu): the pseudo-layers are torch's parameters as they are
            from compat.lstm import LayerWeights

            weights = []
            for dirs in layers:
                ws = [numpy_weights(LayerWeights(p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]))
                      for p in dirs]
                weights.append(ws[0] if len(ws) == 1 else (ws[0], ws[1]))
            options = {"direction": "bidirectional"} if shape.bidirectional else {}
            if mode == "gru":
                options["reset_after"] = True
            elif mode == "rnn_relu":
                options["nonlinearity"] = "relu"
            spec = LSTMSpec(name=scope, source_format="tf", variant=f"{cell} (opaque parameters)", layers=weights,
                            options=options, unknowns=[Unknown("sizes", given, sizes)], source=[({"buffer": buf},)],
                            oracle="cudnn_rnn", cell="gru" if mode == "gru" else "rnn")
            spec.semantics = {"mode": mode, "num_units": shape.num_units, "num_layers": shape.num_layers,
                              "bidirectional": shape.bidirectional, "input_size": shape.input_size}
            spec.notes.append(f"cuDNN's layout: every weight matrix (W then R per gate"
                              f"{' r, u, h' if mode == 'gru' else ''}, pseudo-layer by pseudo-layer), then every bias")
            _opaque_done(spec, name, cell, mode, copies, ckpt, specs, items)
            continue
        weights = []
        for dirs in layers:
            ws = [numpy_weights(layouts.to_canonical("torch", pseudo)) for pseudo in dirs]
            weights.append(ws[0] if len(ws) == 1 else (ws[0], ws[1]))
        spec = LSTMSpec(name=scope, source_format="tf", variant=f"{cell} (opaque parameters)", layers=weights,
                        options={"direction": "bidirectional"} if shape.bidirectional else {},
                        unknowns=[Unknown("sizes", given, sizes)], source=[({"buffer": buf},)], oracle="cudnn",
                        lengths=True)
        spec.semantics = {"mode": mode, "num_units": shape.num_units, "num_layers": shape.num_layers,
                          "bidirectional": shape.bidirectional, "input_size": shape.input_size,
                          "num_proj": shape.num_proj}
        spec.notes.append("cuDNN's layout: every weight matrix (W then R per gate i, f, c, o, pseudo-layer by pseudo-"
                          "layer), then every bias")
        _opaque_done(spec, name, cell, mode, copies, ckpt, specs, items)
    return specs, items, used


def _opaque_done(spec: LSTMSpec, name: str, cell: str, mode: str, copies, ckpt, specs: list, items: list) -> None:
    """An opaque buffer's spec and items: the buffer, and its TF-format copy (checked equal) converted with it."""
    from compat.frameworks.tf import cudnn

    if copies:
        spec.notes.append(f"its TF-format copy ({len(copies)} {cudnn.COPY_SCOPES[mode]} scopes) agrees with it; "
                          "converted once, from the buffer")
    specs.append(spec)
    items.append(SourceItem(name, f"{cell} opaque buffer", ckpt.shapes_of([name]), converted=spec, recurrent=True))
    for c in copies:
        items.append(SourceItem(c.scope, "the TF-format copy of a cuDNN buffer", ckpt.shapes_of(c.names()),
                                converted=spec, recurrent=True))


def discover(path, *, forget_bias: Optional[float] = None, cell_clip: Optional[float] = None,
             proj_clip: Optional[float] = None, keras_recurrent_activation: Optional[str] = None,
             meta: Optional[str] = None, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES, **cudnn_options) -> Found:
    """Every recurrent layer in the TF checkpoint at ``path`` (a prefix, .index file, V1 file or directory),
    and every variable accounted for (none read above ``max_tensor_bytes``). The run-time settings the
    variables do not store are settled from the graph (``meta``, else ``PREFIX.meta`` beside the checkpoint
    when there is one; :mod:`compat.frameworks.tf.meta`) unless given."""
    ckpt = Variables(path, max_tensor_bytes)
    graph = GraphMeta.of(ckpt.location, meta)
    shapes = ckpt.shapes
    items: List[SourceItem] = []
    specs: List[LSTMSpec] = []
    accounted: set = set()

    def account(item: SourceItem, names, carry_them: bool) -> None:
        for n in names:
            accounted.add(n)
            if carry_them:
                carry(item, ckpt.real[n], ckpt.tensor(n))
        items.append(item)

    # tf.keras layers first (from the object graph where there is one): their "lstm_cell" scopes are not TF cells
    keras_layers = tf_keras.keras_layers(shapes, ckpt.graph)
    keras_names = {n for layer in keras_layers for n in layer.variables}
    def slot_of_keras_variable(n: str) -> bool:
        parts = n.split("/")
        return is_slot(n) and any("/".join(parts[:k]) in keras_names for k in range(1, len(parts)))

    cell_shapes = {n: v for n, v in shapes.items() if n not in keras_names and not slot_of_keras_variable(n)}
    cells = _find_cells({n: v for n, v in cell_shapes.items() if not n.endswith("/opaque_kernel")}, ckpt.location)
    wrapped = [c for c in cells if wrapper_of(c.scope)]
    cells = [c for c in cells if not wrapper_of(c.scope)]
    opaque_specs, opaque_items, copy_names = _opaque(ckpt, cells, cudnn_options)
    cells = [c for c in cells if not set(c.names()) <= copy_names]
    for it in opaque_items:
        accounted.update(n for n in ckpt.shapes if ckpt.real[n] in it.shapes)
    accounted |= copy_names
    items += opaque_items

    scopes: Dict[str, List[List[str]]] = {}    # each converted layer's cell scopes, layer by layer

    def stacks(found, make) -> None:
        """Every stack of ``found`` cells (MultiRNNCell layers, bidirectional directions) as one converted layer
        per run of layers one module can hold, made by ``make(name, direction, layer_cells)``."""
        for g in _group(found):
            direction = {"forward": "forward", "reverse": "reverse"}.get(g.kind, "bidirectional")
            for name, ks in _split_incompatible(g, ckpt.location):
                layer_cells = [tuple(g.layers[k][d] for d in (("fw", "bw") if direction == "bidirectional" else
                                                              ("fw",))) for k in ks]
                spec = make(name, direction, layer_cells)
                if len(ks) < len(g.layers):
                    spec.notes.append(f"layers {ks} of {g.name}: its layers differ in size; run the parts in sequence")
                specs.append(spec)
                scopes[spec.name] = [[c.scope for c in layer] for layer in layer_cells]
                for layer in layer_cells:
                    for c in layer:
                        account(SourceItem(c.scope, f"{c.kind} variables", ckpt.shapes_of(c.names()),
                                           converted=spec, recurrent=True), c.names(), False)

    stacks(cells, lambda name, direction, layer_cells: _spec(name, direction, layer_cells, ckpt, forget_bias,
                                                             cell_clip, proj_clip, graph))
    specs += opaque_specs
    for c in wrapped:
        why = wrapper_of(c.scope)
        account(SourceItem(c.scope, f"{c.kind} inside an {why}", ckpt.shapes_of(c.names()), recurrent=True,
                           reason=f"an LSTM cell inside an {why}, which feeds it concat(inputs, attention) and computes "
                                  "more around it: not a plain LSTM, not converted"), c.names(), True)
    for layer in keras_layers:
        names, kind = layer.variables, f"tf.keras {layer.title} layer"
        inside = wrapper_of(layer.name) or next((w for w in map(wrapper_of, names) if w), None)
        if layer.kind in ("LSTM", "GRU", "SimpleRNN") and not inside:
            make = tf_keras.spec if layer.kind == "LSTM" else tf_keras.gru_rnn_spec
            spec = make(layer, ckpt.tensor, ckpt.location, keras_recurrent_activation)
            specs.append(spec)
            account(SourceItem(layer.name, kind, ckpt.shapes_of(names), converted=spec, recurrent=True), names, False)
        else:
            why = (f"a {layer.kind} inside an {inside}, which computes more around it: not a plain layer, not converted"
                   if inside else f"a tf.keras {layer.title}: a recurrent kind this converter does not convert yet")
            account(SourceItem(layer.name, kind, ckpt.shapes_of(names), recurrent=True, reason=why), names, True)
    # GRU and simple-RNN cells (compat/frameworks/tf/gru.py), grouped into stacks as the LSTM cells
    from compat.frameworks.tf import gru as tf_gru

    rnn_cells = tf_gru.find_cells({n: v for n, v in cell_shapes.items() if n not in accounted}, ckpt.location)
    rnn_wrapped = [c for c in rnn_cells if wrapper_of(c.scope)]
    stacks([c for c in rnn_cells if not wrapper_of(c.scope)],
           lambda name, direction, layer_cells: tf_gru.spec(name, direction, layer_cells, ckpt))
    for c in rnn_wrapped:
        why = wrapper_of(c.scope)
        account(SourceItem(c.scope, f"{c.kind} inside an {why}", ckpt.shapes_of(c.names()), recurrent=True,
                           reason=f"a {c.kind} inside an {why}, which feeds it concat(inputs, attention) and computes "
                                  "more around it: not a plain cell, not converted"), c.names(), True)
    # every other recurrent cell (UGRNNCell, NASCell, ...) by scope, then everything else one by one
    others: Dict[str, Tuple[str, List[str]]] = {}
    for n in sorted(shapes):
        if n in accounted or is_bookkeeping(n):
            continue
        found = other_cell_of(n)
        if found is not None:
            others.setdefault(found[0], (found[1], []))[1].append(n)
    for scope, (cls, names) in others.items():
        inside = wrapper_of(scope)
        account(SourceItem(scope, f"{cls} variables", ckpt.shapes_of(names), recurrent=True,
                           reason=f"a {cls}" + (f" inside an {inside}" if inside else "")
                                  + ": a recurrent kind this converter does not convert yet"), names, True)
    for n in sorted(shapes):
        if n in accounted:
            continue
        if n == OBJECT_GRAPH_KEY:
            kind, reason = "object graph", "the checkpoint's object graph, read for the layers' names and structure"
        elif is_bookkeeping(n):
            kind, reason = "training state", "an optimizer slot or training bookkeeping, not a weight"
        else:
            kind, reason = "variable", "not a recurrent layer's variable"
        account(SourceItem(ckpt.own_names.get(n, ckpt.real[n]), kind, ckpt.shapes_of([n]), reason=reason), [n], True)
    _refuse_unused_options(ckpt, specs, forget_bias, cell_clip, proj_clip, keras_recurrent_activation, cudnn_options)
    if graph is None:
        return Found(specs, items)
    # the graph around the cells (an embedding lookup, a projection): compat/frameworks/tf/model.py
    from compat.frameworks.tf.model import read_model

    cell_variables = {n for it in items if it.converted is not None for n in it.shapes}
    whole, refused, used = read_model(graph, specs, scopes, ckpt.tensor, ckpt.shapes, cell_variables)
    for it in items:
        if it.converted is None and it.name in used:
            it.reason = f"in the whole model: node {used[it.name]!r} (read from the .meta graph)"
    return Found(specs, items, whole, refused)


def _refuse_unused_options(ckpt, specs, forget_bias, cell_clip, proj_clip, keras_recurrent_activation, cudnn_options):
    """A run-time setting given for cells that have no such setting would be dropped: refuse it."""
    tf_cells = [s for s in specs if s.oracle == "tf" and not s.variant.startswith("CudnnLSTM")]
    unused = []
    if forget_bias is not None and not tf_cells:
        unused.append("--forget-bias (CudnnLSTM has no forget bias; nor has a tf.keras layer)")
    if cell_clip is not None and not tf_cells:
        unused.append("--cell-clip (CudnnLSTM does not clip its cell; nor does a tf.keras layer)")
    if proj_clip is not None and not any(s.proj_size for s in tf_cells):
        unused.append("--proj-clip (no cell here has a projection, num_proj)")
    if keras_recurrent_activation is not None and not any(s.oracle == "keras" or (s.oracle == "keras_rnn" and
                                                                               s.cell == "gru") for s in specs):
        unused.append("--keras-recurrent-activation (no tf.keras LSTM or GRU layer here)")
    opaque = any(s.oracle == "cudnn" for s in specs)
    given = [k for k, v in cudnn_options.items() if v not in (None, False) and not (k == "cudnn_num_layers" and v == 1)]
    if not opaque and given and not any(n.endswith("/opaque_kernel") for n in ckpt.shapes):
        unused.append("--cudnn-num-units / --cudnn-num-layers / --cudnn-bidirectional / --cudnn-num-proj / "
                      "--cudnn-rnn-mode (no CudnnLSTM opaque buffer here)")
    if unused:
        raise TFCellError(f"{ckpt.location}: {', '.join(unused)} given, but no layer in the checkpoint takes it")
