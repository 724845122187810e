"""BVLC Caffe's ``LSTM`` layer trained by the real ``caffe train`` from weights the port wrote, recorded.

    python legacy/record_caffe_lstm.py --caffe-root CAFFE_ROOT [--iters 200] [--out tests/golden/caffe_lstm.npz]

CAFFE_ROOT is a BVLC/caffe source tree built CPU-only with its own Makefile, holding
``.build_release/tools/caffe.bin``.

The net is small and exercises what the LSTM layer's ``cont`` input does: several streams, resets at
different steps in each stream, chunks that start with cont = 1 (the state carries from the previous
iteration, recurrent_layer.cpp ``Forward_cpu`` copying h_T, c_T into h_0, c_0) and chunks that start
with a reset::

    HDF5Data (x [T, N, I], cont [T, N], target [T, N, 1]; consecutive T-row chunks, cycling)
    -> LSTM lstm1 (H1) -> LSTM lstm2 (H2) -> InnerProduct ip (axis 2, one output) -> EuclideanLoss

SGD with momentum, L2 weight decay and a ``step`` learning-rate policy. The port builds the same net
(``Input`` blobs instead of the HDF5 file: ``PORT_NET``), fills it (seeded) and writes the weights with
``write_caffemodel``; ``caffe train --weights`` starts from that file (Net::CopyTrainedLayersFrom).

Recorded (case c0): the data, every iteration's loss (``display: 1``, ``average_loss: 1``: glog's 6 significant
digits) and the loss of the extra forward pass Solver::Solve runs after training, the weights after
iteration 1 and at the end, the momentum history at the end (snapshots, binary, decoded by protoc), and
the spread of Caffe's own runs from weights one float32 ulp away (how far rounding alone moves the run).
Case c1: the same net and weights with fractional cont values (0.25, 0.5), one iteration: the loss and
the momentum history after it (= the learning rate times the gradient plus weight decay), where
LSTMUnit's forget-gate gradient departs from the derivative.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import GOLDEN, versions
from _caffe import build_info, logged_losses, one_ulp_apart, run_binary, snapshot_history, snapshot_weights

T, N, I, H1, H2, CHUNKS = 10, 3, 2, 5, 3, 4

LAYERS = f"""
layer {{ name: "lstm1" type: "LSTM" bottom: "x" bottom: "cont" top: "h1"
  recurrent_param {{ num_output: {H1}
    weight_filler {{ type: "uniform" min: -0.4 max: 0.4 }} bias_filler {{ type: "uniform" min: -0.2 max: 0.2 }} }} }}
layer {{ name: "lstm2" type: "LSTM" bottom: "h1" bottom: "cont" top: "h2"
  recurrent_param {{ num_output: {H2}
    weight_filler {{ type: "uniform" min: -0.4 max: 0.4 }} bias_filler {{ type: "uniform" min: -0.2 max: 0.2 }} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "h2" top: "y"
  inner_product_param {{ num_output: 1 axis: 2
    weight_filler {{ type: "uniform" min: -0.5 max: 0.5 }} bias_filler {{ type: "constant" value: 0.1 }} }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "target" top: "loss" }}
"""
CAFFE_NET = """name: "cont_lstm"
layer { name: "data" type: "HDF5Data" top: "x" top: "cont" top: "target"
  hdf5_data_param { source: "train_files.txt" batch_size: %d } }
""" % T + LAYERS
PORT_NET = f"""name: "cont_lstm"
input: "x" input_shape {{ dim: {T} dim: {N} dim: {I} }}
input: "cont" input_shape {{ dim: {T} dim: {N} }}
input: "target" input_shape {{ dim: {T} dim: {N} dim: 1 }}
""" + LAYERS
SOLVER = """net: "net.prototxt"
type: "SGD"
base_lr: 0.05
momentum: 0.9
weight_decay: 0.0005
lr_policy: "step"
gamma: 0.5
stepsize: 60
max_iter: %d
display: 1
average_loss: 1
snapshot: %d
snapshot_prefix: "snap/it"
snapshot_after_train: true
solver_mode: CPU
"""


def make_data(seed: int, fractional: bool = False):
    """Inputs, targets and a cont pattern: stream resets at random steps, the first chunk starting one.
    ``fractional``: cont also takes 0.25 and 0.5 (LSTMUnit multiplies the forget gate by it)."""
    rng = np.random.default_rng(seed)
    rows = T * CHUNKS
    x = rng.uniform(-1, 1, (rows, N, I)).astype(np.float32)
    cont = (rng.random((rows, N)) > 0.15).astype(np.float32)
    if fractional:
        cont = rng.choice(np.array([0.0, 0.25, 0.5, 1.0], np.float32), size=(rows, N), p=[0.1, 0.3, 0.3, 0.3])
    cont[0] = 0  # every stream starts at row 0
    cont[T] = 1  # chunk 1 continues every stream from the previous iteration's final state
    cont[2 * T] = [0, 1, 1]  # chunk 2: one stream restarts, the others carry
    # A target that needs memory: the running sum of x[..., 0] since the stream's last reset, squashed.
    target = np.zeros((rows, N, 1), np.float32)
    acc = np.zeros(N)
    for r in range(rows):
        acc = acc * cont[r] + x[r, :, 0]
        target[r, :, 0] = np.tanh(0.5 * acc)
    return x, cont, target


def port_initial_blobs(seed: int):
    import torch

    from compat.formats.prototxt import parse_prototxt
    from ports.caffe_sequence.model import CaffeNet

    net = CaffeNet(parse_prototxt(PORT_NET), "TRAIN", generator=torch.Generator().manual_seed(seed))
    return net.blobs_by_layer(), net.name


def run_caffe(caffe_root: Path, blobs, net_name: str, data, iters: int, work: Path) -> dict:
    import h5py

    from compat.formats.caffemodel import write_caffemodel

    work.mkdir(parents=True)
    (work / "snap").mkdir()
    x, cont, target = data
    with h5py.File(work / "train.h5", "w") as f:
        f["x"], f["cont"], f["target"] = x, cont, target
    (work / "train_files.txt").write_text("train.h5\n")
    (work / "net.prototxt").write_text(CAFFE_NET)
    (work / "solver.prototxt").write_text(SOLVER % (iters, 1))
    write_caffemodel(work / "port_init.caffemodel", blobs, name=net_name)
    binary = caffe_root / ".build_release" / "tools" / "caffe.bin"
    seconds = run_binary([str(binary), "train", "--solver=solver.prototxt", "--weights=port_init.caffemodel"],
                         work, work / "caffe.log")
    log = (work / "caffe.log").read_text(errors="replace")
    losses = logged_losses(log)
    if [it for it, _ in losses] != list(range(iters + 1)):
        raise SystemExit(f"expected loss lines for iterations 0..{iters} (the last from Solve's final forward), "
                         f"got {[it for it, _ in losses][:5]}...")

    def weights(it):
        return snapshot_weights(caffe_root, work, it)

    def history(it):
        return snapshot_history(caffe_root, work, it)

    return {"loss": np.array([v for _, v in losses]), "w1": weights(1), "w_end": weights(iters),
            "history1": history(1), "history": history(iters), "seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caffe-root", type=Path, required=True, help="a built BVLC/caffe tree")
    parser.add_argument("--iters", type=int, default=200, help="training iterations")
    parser.add_argument("--seed", type=int, default=7, help="seed of the data and of the port's fillers")
    parser.add_argument("--spread-runs", type=int, default=3, help="Caffe runs from weights one ulp away")
    parser.add_argument("--out", default=str(GOLDEN / "caffe_lstm.npz"), help="npz file to write")
    parser.add_argument("--work", type=Path, default=None, help="keep Caffe's files here (default: a temp dir)")
    args = parser.parse_args()
    root = args.caffe_root.resolve()
    work = args.work or Path(tempfile.mkdtemp(prefix="caffe_lstm_"))
    data = make_data(args.seed)
    blobs, net_name = port_initial_blobs(args.seed)
    run = run_caffe(root, blobs, net_name, data, args.iters, work / "run")
    arrays = {"c0/config": np.array(json.dumps(dict(T=T, N=N, I=I, H1=H1, H2=H2, chunks=CHUNKS, iters=args.iters,
                                                    seed=args.seed, port_net=PORT_NET, caffe_net=CAFFE_NET,
                                                    solver=SOLVER % (args.iters, 1),
                                                    caffe_seconds=round(run["seconds"], 2))))}
    for k, v in zip(("x", "cont", "target"), data):
        arrays[f"c0/in/{k}"] = v
    for layer, (_t, a) in blobs.items():
        for k, b in enumerate(a):
            arrays[f"c0/in/{layer}/{k}"] = np.asarray(b, np.float32)
    arrays["c0/out/loss"] = run["loss"]
    for tag in ("w1", "w_end"):
        for layer, a in run[tag].items():
            for k, b in enumerate(a):
                arrays[f"c0/out/{tag}/{layer}/{k}"] = b
    for k, h in enumerate(run["history"]):
        arrays[f"c0/out/history/{k}"] = h
    # Rounding alone: Caffe from weights one ulp away. Largest |loss difference| up to each iteration and
    # largest |final weight difference| per blob, over the runs.
    loss_spread = np.zeros_like(run["loss"])
    blob_spread = {}
    for r in range(args.spread_runs):
        other = run_caffe(root, one_ulp_apart(blobs, 1000 + r), net_name, data, args.iters, work / f"spread{r}")
        loss_spread = np.maximum(loss_spread, np.maximum.accumulate(np.abs(other["loss"] - run["loss"])))
        for layer, a in other["w_end"].items():
            for k, b in enumerate(a):
                key = f"{layer}/{k}"
                blob_spread[key] = max(blob_spread.get(key, 0.0), float(np.abs(b - run["w_end"][layer][k]).max()))
    arrays["c0/out/spread/loss"] = loss_spread
    for key, v in blob_spread.items():
        arrays[f"c0/out/spread/w_end/{key}"] = np.array(v)
    other_args = [a for a in sys.argv[1:] if not a.startswith("--caffe-root") and a != str(args.caffe_root)]
    info = {**versions(), "caffe": "BVLC/caffe", **build_info(root),
            "command": " ".join(["python legacy/record_caffe_lstm.py --caffe-root CAFFE_ROOT"] + other_args)}
    # Fractional cont: one iteration. LSTMUnit's backward converts the forget gate's gradient with the stored
    # f = cont * sigmoid(X_f) (lstm_unit_layer.cpp Backward_cpu), not the derivative for cont in (0, 1).
    frac = make_data(args.seed + 1, fractional=True)
    frac_run = run_caffe(root, blobs, net_name, frac, 1, work / "fractional")
    arrays["c1/config"] = np.array(json.dumps(dict(T=T, N=N, I=I, H1=H1, H2=H2, chunks=CHUNKS, iters=1,
                                                   seed=args.seed + 1, port_net=PORT_NET, solver=SOLVER % (1, 1),
                                                   fractional=True)))
    for k, v in zip(("x", "cont", "target"), frac):
        arrays[f"c1/in/{k}"] = v
    for layer, (_t, a) in blobs.items():
        for k, b in enumerate(a):
            arrays[f"c1/in/{layer}/{k}"] = np.asarray(b, np.float32)
    arrays["c1/out/loss"] = frac_run["loss"]
    for k, h in enumerate(frac_run["history1"]):
        arrays[f"c1/out/history1/{k}"] = h
    arrays["versions"] = np.array(json.dumps(info))
    np.savez_compressed(args.out, **arrays)
    print(f"{args.iters} iterations in {run['seconds']:.1f} s, loss {run['loss'][0]:.6g} -> {run['loss'][-2]:.6g};",
          "largest one-ulp loss spread", float(loss_spread.max()))
    print("wrote", args.out, json.dumps(info))
    if args.work is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
