"""``python -m compat.convert`` on Caffe files, against the losses real Caffe printed.

The weights in tests/golden/caffe_lstm.npz (BVLC/caffe ``caffe train``) and caffe_sequence.npz
(junhyukoh/caffe-lstm's ``lstm_sequence.bin``) are written as ``.caffemodel`` files with
``compat.formats.caffemodel.write_caffemodel`` (the layers' types from the net's prototxt), converted by the
command with ``--prototxt`` (the net) and loaded with ``compat.convert.load``. The converted LSTMs then run
the recorded net on the recorded inputs, as docs/convert.md says to run them: BVLC's ``cont`` as
``compat.lstm.lstm(..., cont=cont)``, the fork's ``clip`` as ``cont=(clip != 0)``, the state Caffe carries
between iterations as ``hx``. The layers that are not LSTMs are computed here in plain torch from the
recorded blobs:

    InnerProduct   y = h W^T + b over the last axis (BVLC net: ``axis: 2`` on [T, N, H]; the fork's
                   example: the default axis 1 on the Lstm's [T * N, H] rows)
    EuclideanLoss  dot(y - target, y - target) / num / 2, num = the first axis (euclidean_loss_layer.cpp)

and the loss is compared with the one Caffe printed for that iteration. Solver::Step logs iteration k's
loss from the forward on the weights after k updates, which the recorders' snapshot ``it_iter_k`` holds:

- BVLC: iteration 0 from the initial weights (chunk 0: every stream starts, some restart mid-chunk);
  iteration 1 from the weights after one update, its state carried from iteration 0's forward (chunk 1
  starts with cont = 1: RecurrentLayer copies h_T, c_T into h_0, c_0); iteration 200 (the forward
  Solver::Solve runs after training) from the final weights; and iteration 0 of the recording's run with
  fractional cont (0.25, 0.5), which LSTMUnit's forward multiplies by as ``cont=`` does.
- junhyukoh, each configuration: iteration 0 from the initial weights. That loss hardly tests the LSTMs:
  the data input is all zeros and every bias block but the forget gate's is 0, so g = tanh(0) = 0 and c
  and h stay exactly 0 whatever W_x and W_h are (a swap of gate blocks that keeps the forget bias out of
  g goes unseen); the prediction is the InnerProduct's bias alone. The LSTMs are proven on Caffe's own trained
  weights: iteration 198 from the weights after 198 updates (its window starts with clip = 0 in every
  configuration) and iteration 199 from those after 199 (the 198 ones minus the recorded momentum
  history: Blob::Update, exact), its state carried from iteration 198 (the long configurations' window 1
  starts with clip = 1; the short ones restart).
  The labels are the example's target sequence (ports.caffe_sequence.data.target_sequence, checked
  here against the target column of Caffe's result file).

Caffe prints the loss to 6 significant digits (glog). The comparison allows one unit of that 6th digit:
half a unit for the printing, the other half for float32 rounding (the converted modules run in float32,
as Caffe does). Measured on these recordings: at most 0.48 of a unit from the printed value; the same
computation in float64 moves the loss by at most 0.05 of a unit.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import torch

from compat.convert import discover, load
from compat.formats.prototxt import parse_prototxt
from compat.lstm import lstm, weights_from_torch
from tests.convert_cases import convert_cli
from tests.port_runners import GOLDEN, caffe_blobs, caffe_sequence_weights, golden_cases
from tests.tolerances import assert_close, tolerance

PRINTED_DIGITS = 6  # glog's default stream precision: Caffe's "Iteration k, loss = ..." lines
SEQUENCE_NETS = Path(__file__).resolve().parent.parent / "ports" / "caffe_sequence" / "configs"


def _recording(name: str) -> List[Tuple[str, dict, dict, dict]]:
    if not (GOLDEN / f"{name}.npz").exists():
        pytest.fail(f"tests/golden/{name}.npz is missing: the Caffe converter has no real-Caffe evidence without it "
                    "(regenerate: tests/golden/README.md)")
    return list(golden_cases(name))


def assert_printed_loss(actual: float, printed: float, what: str) -> None:
    """|actual - printed| within one unit of the printed value's 6th significant digit."""
    unit = 10.0 ** (math.floor(math.log10(abs(printed))) - (PRINTED_DIGITS - 1))
    tol = tolerance(torch.float32)
    loosen = unit / (tol["atol"] + tol["rtol"] * abs(printed))
    assert_close(torch.tensor(float(actual), dtype=torch.float64), torch.tensor(float(printed), dtype=torch.float64),
                 dtype=torch.float32, loosen=loosen,
                 reason="Caffe prints the loss to 6 significant digits: one unit of the 6th digit, half for the "
                        "printing and half for float32 rounding", msg=what)


def _layer_types(net_text: str) -> Dict[str, str]:
    net = parse_prototxt(net_text)
    return {str(layer.get("name")): str(layer.get("type")) for layer in net.getall("layer")}


def convert_weights(tmp_path: Path, tag: str, net_text: str, net_name: str,
                    blobs: Dict[str, Tuple[str, List[np.ndarray]]]) -> Dict[str, torch.nn.Module]:
    """Write ``blobs`` (``{layer: (_, [arrays])}``, Caffe's blob order) as a .caffemodel with the layers' types
    from ``net_text``, convert it with the command (``--prototxt``: the net) and load the converted LSTMs."""
    from compat.formats.caffemodel import write_caffemodel

    types = _layer_types(net_text)
    model = tmp_path / f"{tag}.caffemodel"
    write_caffemodel(model, {name: (types[name], arrays) for name, (_, arrays) in blobs.items()}, name=net_name)
    prototxt = tmp_path / f"{tag}.prototxt"
    prototxt.write_text(net_text)
    out = tmp_path / f"{tag}.safetensors"
    assert convert_cli(model, out, ["--prototxt", str(prototxt)]) == 0, f"{tag}: the converter refused or failed"
    modules = load(out)
    lstms = sorted(name for name, t in types.items() if t in ("LSTM", "Lstm"))
    assert sorted(modules) == lstms, f"{tag}: converted {sorted(modules)}, the net's LSTMs are {lstms}"
    return modules


def run_lstms(modules, order: List[str], x: torch.Tensor, cont: torch.Tensor,
              state: Optional[Dict[str, tuple]] = None):
    """The LSTM layers in ``order``, each fed the previous one's output and ``cont``; returns the top output
    and each layer's final (h, c) (what Caffe carries into the next iteration)."""
    final = {}
    h = x
    for name in order:
        h, final[name] = lstm(h, weights_from_torch(modules[name]), (state or {}).get(name), cont=cont)
    return h, final


def euclidean_loss(y: torch.Tensor, target: torch.Tensor) -> float:
    """euclidean_loss_layer.cpp Forward_cpu: dot(diff, diff) / bottom[0]->num() / 2, num = the first axis."""
    return float(((y - target) ** 2).sum() / y.shape[0] / 2)


# ------------------------------------------------------------------------------------- BVLC LSTM net

def _bvlc_loss(tmp_path: Path, tag: str, config: dict, inputs: dict, weights: dict, chunk: int, state=None):
    """The recorded BVLC net on chunk ``chunk`` (T rows of x, cont, target) with the converted LSTMs of
    ``weights``: (EuclideanLoss, each LSTM's final state)."""
    T = config["T"]
    modules = convert_weights(tmp_path, tag, config["port_net"], "cont_lstm", weights)
    x, cont, target = (torch.from_numpy(inputs[k][chunk * T:(chunk + 1) * T]) for k in ("x", "cont", "target"))
    with torch.no_grad():
        h, final = run_lstms(modules, ["lstm1", "lstm2"], x, cont, state)
        w_ip, b_ip = (torch.from_numpy(a) for a in weights["ip"][1])
        return euclidean_loss(h @ w_ip.T + b_ip, target), final  # InnerProduct, axis 2


def test_bvlc_net_converted_gives_caffes_losses(tmp_path):
    """Two converted BVLC LSTM layers in the recorded net: iterations 0, 1 (state carried) and 200."""
    cid, config, inputs, outputs = next(c for c in _recording("caffe_lstm") if not c[1].get("fractional"))
    T, chunks, iters = config["T"], config["chunks"], config["iters"]
    assert (inputs["cont"][1:T] == 0).any() and (inputs["cont"][T] == 1).all(), \
        "the recording must restart streams mid-chunk and carry the state into chunk 1"
    loss0, carried = _bvlc_loss(tmp_path, "initial", config, inputs, caffe_blobs(inputs), 0)
    assert_printed_loss(loss0, outputs["loss"][0], "iteration 0 from the initial weights")
    loss1, _ = _bvlc_loss(tmp_path, "w1", config, inputs, caffe_blobs(outputs, "w1/"), 1, carried)
    assert_printed_loss(loss1, outputs["loss"][1], "iteration 1 from the weights after one update, state carried")
    assert iters % chunks == 0
    loss_end, _ = _bvlc_loss(tmp_path, "w_end", config, inputs, caffe_blobs(outputs, "w_end/"), 0)
    assert_printed_loss(loss_end, outputs["loss"][iters], f"iteration {iters} (Solve's last forward), final weights")


def test_bvlc_fractional_cont_converted_gives_caffes_loss(tmp_path):
    """cont of 0.25 and 0.5 (the recording's case c1): LSTMUnit's forward multiplies by the value, and so
    does ``cont=``; iteration 0 from the initial weights."""
    cid, config, inputs, outputs = next(c for c in _recording("caffe_lstm") if c[1].get("fractional"))
    assert ((inputs["cont"][:config["T"]] > 0) & (inputs["cont"][:config["T"]] < 1)).any()
    loss0, _ = _bvlc_loss(tmp_path, "fractional", config, inputs, caffe_blobs(inputs), 0)
    assert_printed_loss(loss0, outputs["loss"][0], "iteration 0 with fractional cont")


# ----------------------------------------------------------------------------- junhyukoh lstm_sequence

def _sequence_cases():
    if not (GOLDEN / "caffe_sequence.npz").exists():
        return [pytest.param(None, id="missing")]
    return [pytest.param(c, id=c[1]["config"]) for c in golden_cases("caffe_sequence")]


@pytest.mark.parametrize("case", _sequence_cases())
def test_lstm_sequence_converted_gives_caffes_losses(case, tmp_path):
    """The fork's converted Lstm layers in the example's net: iterations 0, 198 and 199 (state carried)."""
    from ports.caffe_sequence.data import target_sequence

    if case is None:
        _recording("caffe_sequence")
    cid, config, inputs, outputs = case
    name, total = config["config"], config["total_length"]
    net_text = (SEQUENCE_NETS / f"{name}.prototxt").read_text()
    net = parse_prototxt(net_text)
    steps = int(net.getall("input_shape")[0].getall("dim")[0])  # data's rows: the window of clip and label
    windows = total // steps
    order = [str(l.get("name")) for l in net.getall("layer") if l.get("type") == "Lstm"]
    sequence = torch.from_numpy(target_sequence(total))
    assert_close(sequence.double(), outputs["target"], dtype=torch.float32,
                 msg=f"{name}: the target column of Caffe's result file (6 significant digits)")

    def loss(weights: dict, it: int, state=None):
        """Iteration ``it`` of lstm_sequence.cpp's training: window it % windows, zero data, clip = 1 except
        clip[0] = (window > 0); the Lstm top is [T * N, H] with N = 1 stream."""
        modules = convert_weights(tmp_path, f"{name}_{it}", net_text, "LSTM", weights)
        k = it % windows
        clip = torch.ones(steps, 1)
        clip[0] = float(k > 0)
        data = torch.zeros(steps, 1, 1)
        with torch.no_grad():
            h, final = run_lstms(modules, order, data, (clip != 0).float(), state)  # the fork's boolean clip
            w_ip, b_ip = (torch.from_numpy(a) for a in weights["ip1"][1])
            y = h.reshape(steps, -1) @ w_ip.T + b_ip
            return euclidean_loss(y, sequence[k * steps:(k + 1) * steps].reshape(-1, 1)), final

    loss0, _ = loss(caffe_blobs(inputs), 0)
    assert_printed_loss(loss0, outputs["loss"][0], f"{name} iteration 0 from the initial weights")
    spec = discover(tmp_path / f"{name}_0.caffemodel").specs[0]
    assert "cont=(clip != 0)" in spec.unknowns[0].assumed, "the command must say how to feed the fork's clip"
    last = config["restart"]  # 199: the weights after 199 and 198 updates follow from the recording
    assert (last - 1) % windows == 0, "iteration 198 must start its window with clip = 0"
    layers = list(caffe_blobs(inputs))
    loss198, carried = loss(caffe_sequence_weights(outputs, last - 1, layers), last - 1)
    assert_printed_loss(loss198, outputs["loss"][last - 1], f"{name} iteration {last - 1} from Caffe's weights")
    loss199, _ = loss(caffe_sequence_weights(outputs, last, layers), last, carried)
    assert_printed_loss(loss199, outputs["loss"][last], f"{name} iteration {last} from Caffe's weights, state carried")
