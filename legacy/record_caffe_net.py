"""Whole BVLC Caffe nets (the layers around recurrent layers) run by the real ``caffe test``, recorded.

    python legacy/record_caffe_net.py --caffe-root CAFFE_ROOT [--out tests/golden/convert/caffe_net]

CAFFE_ROOT is a BVLC/caffe source tree built CPU-only with its own Makefile, holding
``.build_release/tools/caffe.bin``. As legacy/record_caffe_rnn.py: random float32 weights encoded into a
``.caffemodel`` by ``protoc --encode``, inputs read by ``HDF5Data`` layers (token ids as floats: embed_layer.cpp
casts them back with ``static_cast<int>``), every recorded blob written by an ``HDF5Output`` layer, one
TEST-phase forward pass (``caffe test -iterations 1``). Nothing of the port is used.

Nets (time-major: words and cont [T, N]):

- ``sentiment``: ``Embed`` -> ``LSTM`` (cont with restarts) -> ``InnerProduct`` (axis 2) -> ``Softmax`` (axis 2).
- ``merges``: ``Embed`` (no bias) -> ``RNN`` (cont) -> in-place ``Dropout`` (TEST: the identity); its top read
  by several layers (Caffe inserts the split itself) and by an explicit ``Split``; ``Slice`` with slice_points
  on axis -1 (three tops) and in even parts; ``Concat`` on axes 1 and 2; ``Eltwise`` SUM with coeff, PROD of
  three bottoms, MAX; ``Reshape`` (0 and -1; and axis / num_axes); ``InnerProduct`` on axis 1 (the default) and
  with ``transpose``; ``Softmax`` on the default axis 1 and on axis 0.
- ``stacked``: ``Embed`` -> ``LSTM`` with ``expose_hidden`` (h0, c0 in; h_T, c_T out) -> ``RNN`` (cont) ->
  ``InnerProduct`` (axis 2, transpose) -> ``Softmax`` (axis -1).

Recorded: every net output blob (the tops no layer reads) and some intermediate blobs. Written as
legacy/record_caffe_rnn.py writes: ``<net>.prototxt`` (an ``Input`` layer, then the layers),
``<net>.caffemodel``, ``expected.npz``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import GOLDEN
from _caffe import record_nets


def _cont(T, N, restarts):
    cont = np.ones((T, N), np.float32)
    cont[0] = 0
    for t, n in restarts:
        cont[t, n] = 0
    return cont


def cases(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    u = lambda *shape, s=0.7: rng.uniform(-s, s, shape).astype(np.float32)  # noqa: E731
    ids = lambda V, *shape: rng.integers(0, V, shape).astype(np.float32)  # noqa: E731
    out = {}

    T, N, V, E, H, C = 6, 3, 11, 4, 5, 7
    out["sentiment"] = {
        "inputs": {"words": ids(V, T, N), "cont": _cont(T, N, [(3, 1), (4, 2)])},
        "layers": f"""
layer {{ name: "embed" type: "Embed" bottom: "words" top: "emb" embed_param {{ num_output: {E} input_dim: {V} }} }}
layer {{ name: "lstm" type: "LSTM" bottom: "emb" bottom: "cont" top: "h" recurrent_param {{ num_output: {H} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "h" top: "logits" inner_product_param {{ num_output: {C} axis: 2 }} }}
layer {{ name: "prob" type: "Softmax" bottom: "logits" top: "prob" softmax_param {{ axis: 2 }} }}
""",
        "weights": {"embed": ("Embed", [u(V, E, s=1.0), u(E)]), "lstm": ("LSTM", [u(4 * H, E), u(4 * H), u(4 * H, H)]),
                    "ip": ("InnerProduct", [u(C, H, s=1.5), u(C)])},
        "outputs": {"emb": 3, "h": 3, "prob": 3},
    }

    T, N, V, E, H, C = 5, 3, 9, 4, 6, 4
    out["merges"] = {
        "inputs": {"words": ids(V, T, N), "cont": _cont(T, N, [(2, 0), (3, 2)])},
        "layers": f"""
layer {{ name: "embed" type: "Embed" bottom: "words" top: "emb"
  embed_param {{ num_output: {E} input_dim: {V} bias_term: false }} }}
layer {{ name: "rnn" type: "RNN" bottom: "emb" bottom: "cont" top: "o" recurrent_param {{ num_output: {H} }} }}
layer {{ name: "drop" type: "Dropout" bottom: "o" top: "o" dropout_param {{ dropout_ratio: 0.4 }} }}
layer {{ name: "slice3" type: "Slice" bottom: "o" top: "a" top: "b" top: "c"
  slice_param {{ axis: -1 slice_point: 2 slice_point: 4 }} }}
layer {{ name: "halves" type: "Slice" bottom: "o" top: "u" top: "v" slice_param {{ axis: 2 }} }}
layer {{ name: "cat" type: "Concat" bottom: "v" bottom: "u" top: "vu" concat_param {{ axis: 2 }} }}
layer {{ name: "sum" type: "Eltwise" bottom: "vu" bottom: "o" top: "s"
  eltwise_param {{ operation: SUM coeff: 0.5 coeff: -2 }} }}
layer {{ name: "split" type: "Split" bottom: "s" top: "s1" top: "s2" }}
layer {{ name: "prod" type: "Eltwise" bottom: "s1" bottom: "o" bottom: "vu" top: "p"
  eltwise_param {{ operation: PROD }} }}
layer {{ name: "max" type: "Eltwise" bottom: "p" bottom: "s2" top: "m" eltwise_param {{ operation: MAX }} }}
layer {{ name: "flat" type: "Reshape" bottom: "m" top: "r" reshape_param {{ shape {{ dim: 0 dim: -1 }} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "r" top: "logits" inner_product_param {{ num_output: {C} }} }}
layer {{ name: "prob" type: "Softmax" bottom: "logits" top: "prob" }}
layer {{ name: "back" type: "Reshape" bottom: "logits" top: "steps"
  reshape_param {{ shape {{ dim: 2 dim: -1 }} axis: 1 num_axes: 1 }} }}
layer {{ name: "ends" type: "Concat" bottom: "c" bottom: "a" top: "ca" concat_param {{ axis: 1 }} }}
layer {{ name: "ip_ends" type: "InnerProduct" bottom: "ca" top: "ends_out"
  inner_product_param {{ num_output: 3 axis: 1 }} }}
layer {{ name: "ipt" type: "InnerProduct" bottom: "m" top: "mt"
  inner_product_param {{ num_output: 3 axis: 2 transpose: true }} }}
layer {{ name: "time_softmax" type: "Softmax" bottom: "mt" top: "mt_prob" softmax_param {{ axis: 0 }} }}
""",
        "weights": {"embed": ("Embed", [u(V, E, s=1.0)]),
                    "rnn": ("RNN", [u(H, E), u(H), u(H, H), u(H, H), u(H)]),
                    "ip": ("InnerProduct", [u(C, N * H), u(C)]),
                    "ip_ends": ("InnerProduct", [u(3, 2 * N * 2), u(3)]),
                    "ipt": ("InnerProduct", [u(H, 3), u(3)])},
        # Net outputs: b, prob, steps, ends_out, mt_prob; the others are intermediate blobs.
        "outputs": {"o": 3, "vu": 3, "s": 3, "p": 3, "m": 3, "b": 3, "prob": 2, "steps": 3, "ca": 3, "ends_out": 2,
                    "mt_prob": 3},
    }

    T, N, V, E, H1, H2, C = 6, 4, 10, 3, 5, 4, 3
    out["stacked"] = {
        "inputs": {"words": ids(V, T, N), "cont": _cont(T, N, [(2, 1), (4, 3)]), "h0": u(1, N, H1, s=0.9),
                   "c0": u(1, N, H1, s=0.9)},
        "layers": f"""
layer {{ name: "embed" type: "Embed" bottom: "words" top: "emb" embed_param {{ num_output: {E} input_dim: {V} }} }}
layer {{ name: "lstm" type: "LSTM" bottom: "emb" bottom: "cont" bottom: "h0" bottom: "c0" top: "h" top: "h_T" top: "c_T"
  recurrent_param {{ num_output: {H1} expose_hidden: true }} }}
layer {{ name: "rnn" type: "RNN" bottom: "h" bottom: "cont" top: "o" recurrent_param {{ num_output: {H2} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "o" top: "logits"
  inner_product_param {{ num_output: {C} axis: 2 transpose: true }} }}
layer {{ name: "prob" type: "Softmax" bottom: "logits" top: "prob" softmax_param {{ axis: -1 }} }}
""",
        "weights": {"embed": ("Embed", [u(V, E, s=1.0), u(E)]),
                    "lstm": ("LSTM", [u(4 * H1, E), u(4 * H1), u(4 * H1, H1)]),
                    "rnn": ("RNN", [u(H2, H1), u(H2), u(H2, H2), u(H2, H2), u(H2)]),
                    "ip": ("InnerProduct", [u(H2, C, s=1.5), u(C)])},
        "outputs": {"h": 3, "h_T": 3, "c_T": 3, "o": 3, "prob": 3},
    }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caffe-root", type=Path, required=True, help="a built BVLC/caffe tree")
    parser.add_argument("--seed", type=int, default=22, help="seed of the inputs and weights")
    parser.add_argument("--out", type=Path, default=GOLDEN / "convert" / "caffe_net", help="folder to write")
    parser.add_argument("--work", type=Path, default=None, help="keep Caffe's files here (default: a temp dir)")
    args = parser.parse_args()
    other = [a for a in sys.argv[1:] if not a.startswith("--caffe-root") and a != str(args.caffe_root)]
    command = " ".join(["python legacy/record_caffe_net.py --caffe-root CAFFE_ROOT"] + other)
    with tempfile.TemporaryDirectory(prefix="caffe_net_") as tmp:
        record_nets(args.caffe_root.resolve(), cases(args.seed), args.out, args.work or Path(tmp), command)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
