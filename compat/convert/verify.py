"""Check a conversion: random inputs through the source framework's numpy reference and the module.

The reference (``reference/``, float64, written from each framework's sources; one module per framework)
is fed the tensors in the source's own layout and names, as the file holds them, and the settings as the
file (or the command line) states them; the module is built from the written files by
:func:`compat.convert.store.load`. So the check covers the gate permutations, transposes, bias splits,
the run-time forget bias, the semantics options and the way each framework returns its outputs, end to
end. The inputs: random sequences, a random initial state, and where the source has them, random lengths
(TF ``sequence_length``, ONNX ``sequence_lens``, zero included where the module takes it) or a random
mask with holes and masked first steps (Keras). Each LSTM is run twice: in float64 (the mapping itself;
tolerance 1e-10) and in the file's dtype (the converted module as it will run; float32 1e-5). Reported:
the largest absolute difference over the outputs and the final states.

| source | reference |
| --- | --- |
| TF1 cells, stacks, bidirectional and reverse | ``reference/tf_lstm.py`` (``lstm_cell``, ``dynamic_rnn``, ...) |
| CudnnLSTM opaque buffer | ``reference/onnx_lstm.py`` on the buffer re-read as ONNX tensors (cuDNN's layout) |
| Keras LSTM, CuDNNLSTM, Bidirectional | ``reference/keras_lstm.py`` |
| ONNX LSTM | ``reference/onnx_lstm.py`` with the node's attributes |
| Theano tutorial | ``reference/theano_lstm.py`` |
| Caffe LSTM, junhyukoh Lstm | ``reference/caffe_lstm.py`` |
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from compat.convert.spec import LSTMSpec
from compat.errors import InputError

TOLERANCES = {"float64": 1e-10, "float32": 1e-5}
BATCH, STEPS = 3, 6

Outputs = Tuple[np.ndarray, np.ndarray, np.ndarray]   # (output [T, B, .], h_n [L * D, B, .], c_n)


@dataclass
class Check:
    name: str
    err64: float
    err_native: float
    native: str
    oracle: str

    @property
    def ok(self) -> bool:
        return self.err64 <= TOLERANCES["float64"] and self.err_native <= TOLERANCES.get(self.native, 1e-5)


@dataclass
class Case:
    """One random input: x [T, B, in] time-major, the initial state in torch's layout, lengths or a mask."""

    x: np.ndarray
    h0: np.ndarray            # [L * D, B, P]
    c0: np.ndarray            # [L * D, B, H]
    lengths: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None   # [B, T], 0 at a masked step (Keras)


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


# ------------------------------------------------------------------------------------------- references
def _tf(spec: LSTMSpec, case: Case) -> Outputs:
    from reference import tf_lstm

    sem = spec.semantics

    def cell(raw):
        return partial(_tf_cell, tf_lstm.lstm_cell, raw, sem)

    D = 2 if spec.direction == "bidirectional" else 1
    L = spec.num_layers
    states = [(case.c0[k], case.h0[k]) for k in range(L * D)]
    if spec.direction == "bidirectional":
        out, st_fw, st_bw = tf_lstm.stack_bidirectional_dynamic_rnn(
            [cell(layer[0]) for layer in spec.source], [cell(layer[1]) for layer in spec.source], case.x,
            states[0::2], states[1::2], case.lengths)
        final = [s for pair in zip(st_fw, st_bw) for s in pair]
    else:
        run = tf_lstm.reverse_dynamic_rnn if spec.direction == "reverse" else tf_lstm.dynamic_rnn
        out, final = run(tf_lstm.multi_cell([cell(layer[0]) for layer in spec.source]), case.x, states, case.lengths)
    return out, np.stack([m for c, m in final]), np.stack([c for c, m in final])


def _tf_cell(lstm_cell, raw, sem, x, state):
    return lstm_cell(x, state, _f64(raw["kernel"]), _f64(raw["bias"]), sem["forget_bias"],
                     w_i_diag=_f64(raw.get("w_i_diag")), w_f_diag=_f64(raw.get("w_f_diag")),
                     w_o_diag=_f64(raw.get("w_o_diag")), cell_clip=sem["cell_clip"],
                     proj_kernel=_f64(raw.get("projection/kernel")), proj_clip=sem["proj_clip"])


def _keras(spec: LSTMSpec, case: Case) -> Outputs:
    from reference import keras_lstm

    sem = spec.semantics
    x = case.x.transpose(1, 0, 2)
    acts = dict(recurrent_activation=sem["recurrent_activation"], activation=sem["activation"])
    masked = dict(mask=case.mask, masked_output=sem["masked_output"] or "previous_output")
    raw = {k: _f64(v) for k, v in spec.source[0][0].items()}
    if sem["bidirectional"]:
        bw = {k: _f64(v) for k, v in spec.source[0][1].items()}
        y, h_fw, c_fw, h_bw, c_bw = keras_lstm.bidirectional_layer(
            x, raw, bw, (case.h0[0], case.c0[0], case.h0[1], case.c0[1]), merge_mode=sem["merge_mode"],
            cudnn=sem["cudnn"], **(dict(acts, **masked) if not sem["cudnn"] else {}))
        h, c = np.stack([h_fw, h_bw]), np.stack([c_fw, c_bw])
    else:
        state = (case.h0[0], case.c0[0])
        if sem["cudnn"]:
            y, h1, c1 = keras_lstm.cudnn_lstm_layer(x, raw["kernel"], raw["recurrent_kernel"], raw["bias"], state,
                                                    go_backwards=sem["go_backwards"])
        else:
            y, h1, c1 = keras_lstm.lstm_layer(x, raw["kernel"], raw["recurrent_kernel"], raw.get("bias"), state,
                                              go_backwards=sem["go_backwards"], **acts, **masked)
        h, c = h1[None], c1[None]
    return y.transpose(1, 0, 2), h, c   # outputs in Keras's order (reversed in time for go_backwards)


def _onnx(spec: LSTMSpec, case: Case) -> Outputs:
    from reference import onnx_lstm

    attrs = dict(spec.semantics)
    t = {k: _f64(v) for k, v in spec.source[0][0].items()}
    layout = int(attrs.pop("layout", 0))
    X, h0, c0 = case.x, case.h0, case.c0
    if layout:
        X, h0, c0 = X.transpose(1, 0, 2), h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)
    Y, Y_h, Y_c = onnx_lstm.lstm(X, t["W"], t["R"], t.get("B"), case.lengths, h0, c0, t.get("P"),
                                 activations=attrs.get("activations"), activation_alpha=attrs.get("activation_alpha", ()),
                                 activation_beta=attrs.get("activation_beta", ()), clip=attrs.get("clip"),
                                 input_forget=int(attrs.get("input_forget", 0)),
                                 direction=attrs.get("direction", "forward"), layout=layout)
    if layout:   # Y [B, T, D, H], Y_h [B, D, H]
        Y, Y_h, Y_c = Y.transpose(1, 2, 0, 3), Y_h.transpose(1, 0, 2), Y_c.transpose(1, 0, 2)
    T, D, B, H = Y.shape
    return Y.transpose(0, 2, 1, 3).reshape(T, B, D * H), Y_h, Y_c


def _cudnn(spec: LSTMSpec, case: Case) -> Outputs:
    """The opaque buffer re-read as ONNX tensors (cuDNN's gates i, f, c, o -> ONNX's i, o, f, c), layer by
    layer, independently of the converter's split."""
    from reference import onnx_lstm

    sem = spec.semantics
    buf = _f64(spec.source[0][0]["buffer"])
    H, dirs = sem["num_units"], 2 if sem["bidirectional"] else 1
    order = [0, 3, 1, 2]
    pos, inp, hs, cs = 0, case.x, [], []
    for k in range(sem["num_layers"]):
        size_in = sem["input_size"] if k == 0 else dirs * H
        Ws, Rs, Bs = [], [], []
        for _ in range(dirs):
            W = buf[pos:pos + 4 * H * size_in].reshape(4, H, size_in)
            pos += 4 * H * size_in
            R = buf[pos:pos + 4 * H * H].reshape(4, H, H)
            pos += 4 * H * H
            bw, br = buf[pos:pos + 4 * H].reshape(4, H), buf[pos + 4 * H:pos + 8 * H].reshape(4, H)
            pos += 8 * H
            Ws.append(W[order].reshape(4 * H, size_in))
            Rs.append(R[order].reshape(4 * H, H))
            Bs.append(np.concatenate([bw[order].ravel(), br[order].ravel()]))
        sl = slice(k * dirs, (k + 1) * dirs)
        Y, Y_h, Y_c = onnx_lstm.lstm(inp, np.stack(Ws), np.stack(Rs), np.stack(Bs), case.lengths, case.h0[sl],
                                     case.c0[sl], direction="bidirectional" if dirs == 2 else "forward")
        T, _, B, _ = Y.shape
        inp = Y.transpose(0, 2, 1, 3).reshape(T, B, dirs * H)
        hs += list(Y_h)
        cs += list(Y_c)
    return inp, np.stack(hs), np.stack(cs)


def _theano(spec: LSTMSpec, case: Case) -> Outputs:
    from reference.theano_lstm import lstm_layer

    raw = spec.source[0][0]
    b = _f64(raw["b"]) * (2 if spec.semantics.get("doubled_bias") else 1)
    h, c = lstm_layer(case.x, np.ones(case.x.shape[:2]), _f64(raw["W"]), _f64(raw["U"]), b, case.h0[0], case.c0[0])
    return h, h[-1][None], c[-1][None]


def _caffe(spec: LSTMSpec, case: Case) -> Outputs:
    from reference.caffe_lstm import lstm_forward

    raw = spec.source[0][0]
    cont = np.ones(case.x.shape[:2])   # a stream continuing from (h0, c0)
    h, h_T, c_T, _ = lstm_forward(case.x, cont, _f64(raw["W_x"]), _f64(raw["b"]), _f64(raw["W_h"]), case.h0[0],
                                  case.c0[0])
    return h, h_T[None], c_T[None]


def _junhyukoh(spec: LSTMSpec, case: Case) -> Outputs:
    from reference.caffe_lstm import junhyukoh_forward

    raw = spec.source[0][0]
    T, N, _ = case.x.shape
    h, h_T, c_T, _ = junhyukoh_forward(case.x.reshape(T * N, -1), _f64(raw["W_x"]), _f64(raw["W_h"]), _f64(raw["b"]),
                                       batch_size=N, clip=np.ones(T * N), h0=case.h0[0], c0=case.c0[0])
    return h.reshape(T, N, -1), h_T[None], c_T[None]


ORACLES = {"tf": _tf, "keras": _keras, "onnx": _onnx, "cudnn": _cudnn, "theano": _theano, "caffe": _caffe,
           "junhyukoh": _junhyukoh}


def oracle(spec: LSTMSpec, case: Case) -> Outputs:
    """The source framework's (output [T, B, out], h_n [L * dirs, B, .], c_n) on ``case``."""
    try:
        return ORACLES[spec.oracle](spec, case)
    except KeyError:
        raise ValueError(f"{spec.name}: no reference for {spec.oracle!r}") from None


# ----------------------------------------------------------------------------------------------- inputs
def random_case(spec: LSTMSpec, module: nn.Module, rng: np.random.Generator) -> Case:
    from compat.lstm import LSTM

    D = 2 if spec.direction == "bidirectional" else 1
    n = spec.num_layers * D
    width = spec.proj_size or spec.hidden_size
    case = Case(x=rng.uniform(-1.5, 1.5, (STEPS, BATCH, spec.input_size)),
                h0=rng.uniform(-0.5, 0.5, (n, BATCH, width)), c0=rng.uniform(-0.5, 0.5, (n, BATCH, spec.hidden_size)))
    if spec.oracle in ("tf", "cudnn") or spec.onnx_lengths:
        # dynamic_rnn(sequence_length=...) / sequence_lens; a length of 0 only where the module takes one
        lowest = 0 if isinstance(module, LSTM) else 1
        case.lengths = np.concatenate([[STEPS], rng.integers(lowest, STEPS + 1, BATCH - 1)])
        if lowest == 0:
            case.lengths[-1] = 0
    if spec.keras is not None and spec.semantics.get("masks") and not spec.semantics.get("cudnn"):
        mask = (rng.random((BATCH, STEPS)) < 0.7).astype(np.float64)
        mask[0] = 1.0
        mask[1, :2] = 0.0          # masked first steps: where Keras versions differ
        case.mask = mask
    return case


def run_module(module: nn.Module, case: Case, dtype: torch.dtype) -> Outputs:
    """The module's (output [T, B, .], h_n, c_n) on ``case``, in float64 numpy."""
    from compat.convert.modules import KerasLSTM
    from compat.lstm import LSTM

    m = module.to(dtype)
    x = torch.from_numpy(case.x).to(dtype)
    if m.batch_first:
        x = x.transpose(0, 1)
    hx = (torch.from_numpy(case.h0).to(dtype), torch.from_numpy(case.c0).to(dtype))
    with torch.no_grad():
        if isinstance(m, KerasLSTM):
            mask = None if case.mask is None else torch.from_numpy(case.mask).to(dtype)
            y, (h, c) = m(x, hx, mask=mask)
        elif isinstance(m, LSTM):
            y, (h, c) = m(x, hx, lengths=None if case.lengths is None else torch.from_numpy(case.lengths))
        elif case.lengths is not None:
            packed = pack_padded_sequence(x, torch.from_numpy(case.lengths), batch_first=m.batch_first,
                                          enforce_sorted=False)
            y, (h, c) = m(packed, hx)
            y, _ = pad_packed_sequence(y, batch_first=m.batch_first, total_length=STEPS)
        else:
            y, (h, c) = m(x, hx)
    if m.batch_first:
        y = y.transpose(0, 1)
    return y.double().numpy(), h.double().numpy(), c.double().numpy()


def check(spec: LSTMSpec, module: nn.Module, seed: int = 0) -> Check:
    """Max abs error between the reference and ``module`` (float64 and the file's dtype)."""
    native = str(spec.dtype)
    bound = np.finfo(native).max / (spec.input_size + spec.hidden_size + spec.proj_size + 2)
    if any(v.size and float(np.max(np.abs(v))) > bound for v in spec.state_dict().values()):
        raise _overflow(spec, native)
    rng = np.random.default_rng(seed)
    case = random_case(spec, module, rng)
    want = oracle(spec, case)
    native = str(spec.dtype)
    errs = {}
    for label, dtype in (("float64", torch.float64), (native, getattr(torch, native))):
        got = run_module(module, case, dtype)
        if not all(np.isfinite(a).all() for a in (*want, *got)):
            module.to(getattr(torch, native))
            raise _overflow(spec, label)
        errs[label] = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
    module.to(getattr(torch, native))
    return Check(spec.name, errs["float64"], errs[native], native, spec.oracle)


class OverflowingWeightsError(InputError, ValueError):
    """Finite weights so large that the LSTM's arithmetic overflows: the source framework would compute
    infinities and NaN from them too, so the file is refused rather than reported as a mismatch."""


def _overflow(spec: LSTMSpec, label: str) -> OverflowingWeightsError:
    name, value = max(((k, float(np.max(np.abs(v)))) for k, v in spec.state_dict().items() if v.size),
                      key=lambda kv: kv[1])
    return OverflowingWeightsError(f"{spec.name}: the weights overflow {label} arithmetic on ordinary inputs "
                                   f"(largest |value| {value:.3g} in {name}); the source framework computes "
                                   "infinities and NaN with them")


def check_all(specs: List[LSTMSpec], modules: Dict[str, nn.Module]) -> List[Check]:
    return [check(s, modules[s.name]) for s in specs]
