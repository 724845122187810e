"""Check a conversion: random inputs through the source framework's numpy reference and the module.

The reference (``reference/``, float64, written from each framework's sources) is fed the tensors in the
source's own layout and names, as the file holds them; the module is built from the written files by
:func:`compat.convert.store.load`. So the check covers the gate permutations, transposes, bias splits,
the run-time forget bias and the semantics options end to end. Each LSTM is run twice: in float64
(the mapping itself; tolerance 1e-10) and in the file's dtype (the converted module as it will run;
float32 tolerance 1e-5). Reported: the largest absolute difference over outputs and final states.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import torch

from compat.convert.spec import LSTMSpec

TOLERANCES = {"float64": 1e-10, "float32": 1e-5, "float16": 1e-3}
BATCH, STEPS = 3, 6


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


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def oracle(spec: LSTMSpec, x_tm: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The source framework's (output [T, B, out], h_n [L * dirs, B, .], c_n) for time-major x [T, B, in]."""
    kind = spec.semantics.get("oracle")
    src = spec.source
    if kind == "tf":
        from reference import tf_cells

        def cell(raw):
            return tf_cells.Cell(_f64(raw["kernel"]), _f64(raw["bias"]), w_i_diag=_f64(raw.get("w_i_diag")),
                                 w_f_diag=_f64(raw.get("w_f_diag")), w_o_diag=_f64(raw.get("w_o_diag")),
                                 projection=_f64(raw.get("projection")), forget_bias=spec.forget_bias,
                                 cell_clip=spec.cell_clip, proj_clip=spec.proj_clip)
        if spec.direction == "bidirectional":
            out, st_fw, st_bw = tf_cells.stack_bidirectional_dynamic_rnn(
                [cell(l[0]) for l in src], [cell(l[1]) for l in src], x_tm)
            states = [s for pair in zip(st_fw, st_bw) for s in pair]
        elif spec.direction == "reverse":
            out, states = tf_cells.reverse_rnn([cell(l[0]) for l in src], x_tm)
        else:
            out, states = tf_cells.dynamic_rnn([cell(l[0]) for l in src], x_tm)
        return out, np.stack([m for c, m in states]), np.stack([c for c, m in states])
    if kind == "keras":
        from reference import keras_layers

        sem = spec.semantics
        x = x_tm.transpose(1, 0, 2)
        acts = dict(recurrent_activation=sem["recurrent_activation"], activation=sem["activation"])
        raw = {k: _f64(v) for k, v in src[0][0].items()}
        if sem["bidirectional"]:
            bw = {k: _f64(v) for k, v in src[0][1].items()}
            y, (h1, c1), (h2, c2) = keras_layers.bidirectional(x, raw, bw, merge_mode="concat", cudnn=sem["cudnn"], **acts)
            h, c = np.stack([h1, h2]), np.stack([c1, c2])
        elif sem["cudnn"]:
            y, h1, c1 = keras_layers.cudnn_lstm(x, raw["kernel"], raw["recurrent_kernel"], raw["bias"],
                                                go_backwards=sem["go_backwards"])
            h, c = h1[None], c1[None]
        else:
            y, h1, c1 = keras_layers.lstm(x, raw["kernel"], raw["recurrent_kernel"], raw.get("bias"),
                                          go_backwards=sem["go_backwards"], **acts)
            h, c = h1[None], c1[None]
        if sem["go_backwards"]:
            y = y[:, ::-1]  # Keras's reversed-time sequence output, back in the input's order
        return y.transpose(1, 0, 2), h, c
    if kind == "onnx":
        from reference.onnx_node import lstm_node

        sem = spec.semantics
        t = {k: _f64(v) for k, v in src[0][0].items()}
        Y, Y_h, Y_c = lstm_node(x_tm, t["W"], t["R"], t.get("B"), P=t.get("P"), direction=sem["direction"],
                                activations=[tuple(a) for a in sem["activations"]], clip=sem["clip"],
                                input_forget=sem["input_forget"])
        T, dirs, B, H = Y.shape
        return Y.transpose(0, 2, 1, 3).reshape(T, B, dirs * H), Y_h, Y_c
    if kind == "theano":
        from reference.theano_lstm import lstm_layer

        raw = src[0][0]
        b = _f64(raw["b"]) * (2 if spec.semantics.get("doubled_bias") else 1)
        h, c = lstm_layer(x_tm, np.ones(x_tm.shape[:2]), _f64(raw["W"]), _f64(raw["U"]), b)
        return h, h[-1][None], c[-1][None]
    if kind == "caffe":
        from reference.caffe_lstm import lstm_forward

        raw = src[0][0]
        cont = np.ones(x_tm.shape[:2])
        cont[0] = 0
        h, h_T, c_T, _ = lstm_forward(x_tm, cont, _f64(raw["W_x"]), _f64(raw["b"]), _f64(raw["W_h"]))
        return h, h_T[None], c_T[None]
    if kind == "junhyukoh":
        from reference.caffe_lstm import junhyukoh_forward

        raw = src[0][0]
        T, N, _ = x_tm.shape
        h, h_T, c_T, _ = junhyukoh_forward(x_tm.reshape(T * N, -1), _f64(raw["W_x"]), _f64(raw["W_h"]),
                                           _f64(raw["b"]), batch_size=N)
        return h.reshape(T, N, -1), h_T[None], c_T[None]
    if kind == "cudnn":
        from reference.onnx_node import lstm_node

        sem = spec.semantics
        # The opaque buffer re-read as ONNX tensors (gates i, f, c, o -> i, o, f, c), independently of
        # the canonical split.
        buf = _f64(src[0][0]["buffer"])
        H, n_in, dirs = sem["num_units"], sem["input_size"], 2 if sem["bidirectional"] else 1
        pos = 0
        inp = x_tm
        hs, cs = [], []
        order = [0, 3, 1, 2]
        for k in range(sem["num_layers"]):
            size_in = n_in if k == 0 else dirs * H
            Ws, Rs, Bs = [], [], []
            for _ in range(dirs):
                W = buf[pos:pos + 4 * H * size_in].reshape(4, H, size_in)
                pos += 4 * H * size_in
                R = buf[pos:pos + 4 * H * H].reshape(4, H, H)
                pos += 4 * H * H
                bw = buf[pos:pos + 4 * H].reshape(4, H)
                br = buf[pos + 4 * H:pos + 8 * H].reshape(4, H)
                pos += 8 * H
                Ws.append(W[order].reshape(4 * H, size_in))
                Rs.append(R[order].reshape(4 * H, H))
                Bs.append(np.concatenate([bw[order].ravel(), br[order].ravel()]))
            Y, Y_h, Y_c = lstm_node(inp, np.stack(Ws), np.stack(Rs), np.stack(Bs),
                                    direction="bidirectional" if dirs == 2 else "forward")
            T, _, B, _ = Y.shape
            inp = Y.transpose(0, 2, 1, 3).reshape(T, B, dirs * H)
            hs += list(Y_h)
            cs += list(Y_c)
        return inp, np.stack(hs), np.stack(cs)
    raise ValueError(f"{spec.name}: no reference for {kind!r}")


def _run_module(module, x_tm: np.ndarray, dtype: torch.dtype, batch_first: bool):
    m = module.to(dtype)
    x = torch.from_numpy(x_tm).to(dtype)
    if batch_first:
        x = x.transpose(0, 1)
    with torch.no_grad():
        y, (h, c) = m(x)
    if batch_first:
        y = y.transpose(0, 1)
    return y.double().numpy(), h.double().numpy(), c.double().numpy()


def check(spec: LSTMSpec, module, seed: int = 0) -> Check:
    """Max abs error between the reference and ``module`` (float64 and the file's dtype)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, size=(STEPS, BATCH, spec.input_size))
    want = oracle(spec, x)
    native = str(spec.dtype)
    errs = {}
    for label, dtype in (("float64", torch.float64), (native, getattr(torch, native))):
        got = _run_module(module, x, dtype, spec.batch_first)
        errs[label] = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
    module.to(getattr(torch, native))
    return Check(spec.name, errs["float64"], errs[native], native, spec.semantics.get("oracle", "?"))


def check_all(specs: List[LSTMSpec], modules: Dict[str, object]) -> List[Check]:
    return [check(s, modules[s.name]) for s in specs]
