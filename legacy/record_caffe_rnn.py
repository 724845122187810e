"""BVLC Caffe's ``RNN`` layer (and its ``LSTM`` layer in the same style) run by the real ``caffe test``, recorded.

    python legacy/record_caffe_rnn.py --caffe-root CAFFE_ROOT [--out tests/golden/convert/caffe_rnn]

CAFFE_ROOT is a BVLC/caffe source tree built CPU-only with its own Makefile, holding
``.build_release/tools/caffe.bin``. Nothing of the port is used: the weights are random float32 arrays
written into a ``.caffemodel`` by ``protoc --encode`` against the build's caffe.proto; Caffe reads the
inputs with ``HDF5Data`` layers and writes the blobs recorded with ``HDF5Output`` layers, in one TEST-phase
forward pass (``caffe test -iterations 1``; legacy/_caffe.py ``caffe_forward``).

Cases (time-major: x [T, N, ...], cont [T, N]):

- ``rnn_stack``: ``RNN`` rnn1 with ``expose_hidden`` (bottoms x, cont, h0 [1, N, H1]; tops o1 and h1_T),
  ``RNN`` rnn2 on o1 with the same cont, ``InnerProduct`` (axis 2) on rnn2's output. cont is 0 at t = 0 in
  two of four streams (the other two carry h0), 0 mid-sequence in others, and 0.5 once (rnn_layer.cpp's
  ``Scale`` layer multiplies h_{t-1} by cont_t, whatever its value).
- ``rnn_static``: ``RNN`` with a static input x_static [N, S] (rnn_layer.cpp: W_xh_static x_static added at
  every step), its blobs W_xh, b_h, W_xh_static, W_hh, W_ho, b_o.
- ``lstm``: ``LSTM`` with ``expose_hidden`` (h0, c0 in; h, h_T, c_T out), x with two feature axes [T, N, 2, 2]
  (the layer's x_transform InnerProduct has axis 2: the axes after N are flattened), then ``InnerProduct``.

Written to the output folder: ``<case>.prototxt`` (the net as deployed: an ``Input`` layer, then the layers),
``<case>.caffemodel`` (the weights Caffe ran with) and ``expected.npz`` (``<case>/in/<blob>``,
``<case>/out/<blob>``, ``versions``).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import GOLDEN
from _caffe import record_nets


def cases(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    u = lambda *shape, s=0.7: rng.uniform(-s, s, shape).astype(np.float32)  # noqa: E731
    out = {}

    T, N, I, H1, H2, C = 7, 4, 3, 5, 4, 2
    cont = np.ones((T, N), np.float32)
    cont[0] = [0, 1, 1, 0]      # streams 1 and 2 continue from h0 at the first step
    cont[3, 1] = 0              # restarts mid-sequence
    cont[5, 3] = 0
    cont[4, 2] = 0.5            # a fractional cont scales h_{t-1}
    out["rnn_stack"] = {
        "inputs": {"x": u(T, N, I, s=1.0), "cont": cont, "h0": u(1, N, H1, s=0.9)},
        "layers": f"""
layer {{ name: "rnn1" type: "RNN" bottom: "x" bottom: "cont" bottom: "h0" top: "o1" top: "h1_T"
  recurrent_param {{ num_output: {H1} expose_hidden: true }} }}
layer {{ name: "rnn2" type: "RNN" bottom: "o1" bottom: "cont" top: "o2" recurrent_param {{ num_output: {H2} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "o2" top: "y" inner_product_param {{ num_output: {C} axis: 2 }} }}
""",
        "weights": {"rnn1": ("RNN", [u(H1, I), u(H1), u(H1, H1), u(H1, H1), u(H1)]),
                    "rnn2": ("RNN", [u(H2, H1), u(H2), u(H2, H2), u(H2, H2), u(H2)]),
                    "ip": ("InnerProduct", [u(C, H2), u(C)])},
        "outputs": {"o1": 3, "h1_T": 3, "o2": 3, "y": 3},
    }

    T, N, I, S, H = 5, 3, 2, 3, 4
    cont = np.ones((T, N), np.float32)
    cont[0] = 0
    cont[2, 0] = 0
    out["rnn_static"] = {
        "inputs": {"x": u(T, N, I, s=1.0), "cont": cont, "x_static": u(N, S, s=1.0)},
        "layers": f"""
layer {{ name: "rnn" type: "RNN" bottom: "x" bottom: "cont" bottom: "x_static" top: "o"
  recurrent_param {{ num_output: {H} }} }}
""",
        "weights": {"rnn": ("RNN", [u(H, I), u(H), u(H, S), u(H, H), u(H, H), u(H)])},
        "outputs": {"o": 3},
    }

    T, N, H, C = 6, 3, 4, 3
    cont = np.ones((T, N), np.float32)
    cont[0] = [0, 1, 0]
    cont[2, 2] = 0
    cont[4, 0] = 0
    out["lstm"] = {
        "inputs": {"x": u(T, N, 2, 2, s=1.0), "cont": cont, "h0": u(1, N, H, s=0.9), "c0": u(1, N, H, s=0.9)},
        "layers": f"""
layer {{ name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" bottom: "h0" bottom: "c0" top: "h" top: "h_T" top: "c_T"
  recurrent_param {{ num_output: {H} expose_hidden: true }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "h" top: "y" inner_product_param {{ num_output: {C} axis: 2 }} }}
""",
        "weights": {"lstm": ("LSTM", [u(4 * H, 4), u(4 * H), u(4 * H, H)]), "ip": ("InnerProduct", [u(C, H), u(C)])},
        "outputs": {"h": 3, "h_T": 3, "c_T": 3, "y": 3},
    }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caffe-root", type=Path, required=True, help="a built BVLC/caffe tree")
    parser.add_argument("--seed", type=int, default=21, help="seed of the inputs and weights")
    parser.add_argument("--out", type=Path, default=GOLDEN / "convert" / "caffe_rnn", help="folder to write")
    parser.add_argument("--work", type=Path, default=None, help="keep Caffe's files here (default: a temp dir)")
    args = parser.parse_args()
    other = [a for a in sys.argv[1:] if not a.startswith("--caffe-root") and a != str(args.caffe_root)]
    command = " ".join(["python legacy/record_caffe_rnn.py --caffe-root CAFFE_ROOT"] + other)
    with tempfile.TemporaryDirectory(prefix="caffe_rnn_") as tmp:
        record_nets(args.caffe_root.resolve(), cases(args.seed), args.out, args.work or Path(tmp), command)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
