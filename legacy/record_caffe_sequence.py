"""junhyukoh/caffe-lstm's examples/lstm_sequence run by the real fork from weights the port wrote, recorded.

    python legacy/record_caffe_sequence.py --caffe-root CAFFE_ROOT [--iters 200] [--out tests/golden/caffe_sequence.npz]

CAFFE_ROOT is a junhyukoh/caffe-lstm source tree built CPU-only with its own Makefile, holding
``.build_release/examples/lstm_sequence/lstm_sequence.bin`` and the example's solvers and nets.

For each configuration (lstm_short, lstm_long, deep_short, deep_long; the solver files and TotalLength of
the example's test_*.sh scripts):

1. the port builds the example's train net (its fillers, seeded, and the forget-gate block of every Lstm
   bias set to 5 as lstm_sequence.cpp does) and writes it with ``write_caffemodel``;
2. ``protoc --decode`` turns that file into text, and its ``blobs`` go into a copy of the example's own
   net definition, layer by layer (the fork's Layer constructor takes ``layer_param.blobs`` and the Lstm
   and InnerProduct layers then skip their fillers). The unmodified ``lstm_sequence.bin`` takes no
   weights file; this is how it starts from the port's weights. It then sets the forget-gate biases to 5
   itself (already 5), trains, and generates, as it always does;
3. the solver is the example's, with ``max_iter`` set to ``--iters``, ``display: 1`` (Step(1) per
   iteration: the logged "loss" is that iteration's loss), ``debug_info: false`` (logging only) and a
   snapshot every iteration (weights and momentum history, binary, exact);
4. recorded: every iteration's loss (6 significant digits, as glog prints), the result file (the target
   and the free-running generation after training, 6 significant digits), the weights after the first
   ten iterations, the weights two iterations before the end and the momentum histories of the last two
   iterations. The weights after those two iterations are the ones before minus the history, exactly
   (Blob::Update, checked here), so the final blobs are recorded too; and iteration 199 can be restarted
   from Caffe's own state (its carried LSTM state is recomputed from iteration 198's weights) and its
   update compared with Caffe's;
5. ``--spread-runs`` more runs from the port's weights each moved one float32 ulp (a change below
   rounding): the largest loss, generation and final-weight differences they show measure how far
   float32 rounding alone carries a run of this length (the tests derive their bound for the
   free-running comparison from it).

The window starts at the port's initialisation, where ``clipping_threshold: 0.1`` clamps gate gradients
in four or five of the first ten iterations (the gradients grow backwards through the 320 steps from a
zero state): the recordings cover the fork's clamp, which the port's kernels apply at every step (the
checked fused kernel by recomputing on the step loop), and its dW_h defect, which acts from the third iteration (the first with a carried h that is
not zero: at initialisation h stays exactly 0, as the data input is zero and the cell input g = tanh(0)).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import GOLDEN, versions
from _caffe import (blobs_text_by_layer, build_info, logged_losses, one_ulp_apart, protoc_decode, run_binary,
                    snapshot_history, snapshot_weights, splice_blobs)

# --config -> (the example's solver file, TotalLength of its test_*.sh)
CONFIGS = {
    "lstm_short": ("lstm_short_solver.prototxt", 320),
    "lstm_long": ("lstm_long_solver.prototxt", 960),
    "deep_short": ("deep_lstm_short_solver.prototxt", 320),
    "deep_long": ("deep_lstm_long_solver.prototxt", 960),
}
EARLY = 10  # weights recorded after this many iterations: the clamp acts in several, the dW_h defect from the 3rd
SOLVER_FIELDS_SET = ("max_iter", "display", "debug_info", "snapshot", "snapshot_prefix", "snapshot_after_train")


def port_initial_blobs(config: str, seed: int):
    """The port's train net for ``config`` as lstm_sequence.cpp starts it (fillers, forget bias 5)."""
    from ports.caffe_sequence.config import RunConfig
    from ports.caffe_sequence.train import Trainer

    trainer = Trainer(RunConfig(config, Path(tempfile.gettempdir()), iters=0, seed=seed, progress=False))
    return trainer.net.blobs_by_layer(), trainer.net.name


def edited_solver(text: str, iters: int) -> str:
    kept = [line for line in text.splitlines()
            if not re.match(r"\s*(" + "|".join(SOLVER_FIELDS_SET) + r")\s*:", line)]
    return "\n".join(kept + [f"max_iter: {iters}", "display: 1", "debug_info: false", "snapshot: 1",
                             'snapshot_prefix: "snap/it"', "snapshot_after_train: false"]) + "\n"


def record_config(caffe_root: Path, config: str, iters: int, seed: int, work: Path, perturb: int = -1) -> dict:
    """Run the example from the port's initial weights (``perturb`` >= 0: each moved one ulp, that seed)."""
    from compat.formats.caffemodel import write_caffemodel

    example = caffe_root / "examples" / "lstm_sequence"
    binary = caffe_root / ".build_release" / "examples" / "lstm_sequence" / "lstm_sequence.bin"
    solver_file, total_length = CONFIGS[config]
    work.mkdir(parents=True)
    (work / "snap").mkdir()
    blobs, net_name = port_initial_blobs(config, seed)
    if perturb >= 0:
        blobs = one_ulp_apart(blobs, perturb)
    write_caffemodel(work / "port_init.caffemodel", blobs, name=net_name)
    init_text = protoc_decode(caffe_root, "NetParameter", (work / "port_init.caffemodel").read_bytes())
    solver_text = (example / solver_file).read_text()
    net_file = re.search(r'^\s*net\s*:\s*"([^"]+)"', solver_text, re.M).group(1)
    net_text = splice_blobs((example / net_file).read_text(), blobs_text_by_layer(init_text))
    (work / net_file).write_text(net_text)
    (work / solver_file).write_text(edited_solver(solver_text, iters))
    seconds = run_binary([str(binary), solver_file, "result.log", str(total_length)], work, work / "caffe.log")
    log = (work / "caffe.log").read_text(errors="replace")
    if "Skipping parameter initialization" not in log:
        raise SystemExit(f"{config}: Caffe filled the weights itself instead of taking the given blobs")
    losses = logged_losses(log)
    if [it for it, _ in losses] != list(range(iters)):
        raise SystemExit(f"{config}: expected a loss line for iterations 0..{iters - 1}, got {len(losses)}")
    rows = [line.split() for line in (work / "result.log").read_text().splitlines()]

    def weights(it):
        return snapshot_weights(caffe_root, work, it)

    def history(it):
        return snapshot_history(caffe_root, work, it)

    run = {"blobs": blobs, "name": net_name, "seconds": seconds, "loss": np.array([v for _, v in losses]),
           "target": np.array([float(r[0]) for r in rows]), "generated": np.array([float(r[1]) for r in rows]),
           "weights": weights, "history": history}
    print(f"{config}{' (one ulp apart)' if perturb >= 0 else ''}: {iters} iterations in {seconds:.1f} s, "
          f"loss {losses[0][1]:.6g} -> {losses[-1][1]:.6g}")
    return run


def record(caffe_root: Path, config: str, iters: int, seed: int, spread_runs: int, work: Path) -> dict:
    """One configuration's case: inputs, outputs and the one-ulp spread (see the module docstring)."""
    solver_file, total_length = CONFIGS[config]
    run = record_config(caffe_root, config, iters, seed, work / "run")
    restart = iters - 1
    out = {"loss": run["loss"], "target": run["target"], "generated": run["generated"]}
    for it in (EARLY, restart - 1):
        for layer, arrays in run["weights"](it).items():
            for k, a in enumerate(arrays):
                out[f"iter{it}/{layer}/{k}"] = a
    # Blob::Update applies the history in one float32 subtraction (data -= diff, diff = history), so the
    # weights after the last two iterations are the ones before minus the recorded histories, exactly:
    # checked here on Caffe's files, and the weights themselves left out.
    for it in (restart, iters):
        before, after, hist = run["weights"](it - 1), run["weights"](it), run["history"](it)
        flat_before = [a for layer in before for a in before[layer]]
        flat_after = [a for layer in after for a in after[layer]]
        for a, h, b in zip(flat_before, hist, flat_after):
            if not np.array_equal((a - h.reshape(a.shape)).astype(np.float32), b):
                raise SystemExit(f"{config}: weights after iteration {it} are not those after {it - 1} minus the "
                                 "history")
        for k, h in enumerate(hist):
            out[f"history{it}/{k}"] = h
    # Rounding alone: the same run from weights one float32 ulp away. Per iteration, the largest |loss
    # difference| so far; per step of the generation likewise; per final blob, the largest |difference|.
    loss_spread = np.zeros_like(run["loss"])
    gen_spread = np.zeros_like(run["generated"])
    blob_spread = {}
    final = run["weights"](iters)
    for r in range(spread_runs):
        other = record_config(caffe_root, config, iters, seed, work / f"spread{r}", perturb=1000 + r)
        loss_spread = np.maximum(loss_spread, np.maximum.accumulate(np.abs(other["loss"] - run["loss"])))
        gen_spread = np.maximum(gen_spread, np.maximum.accumulate(np.abs(other["generated"] - run["generated"])))
        for layer, arrays in other["weights"](iters).items():
            for k, a in enumerate(arrays):
                key = f"{layer}/{k}"
                blob_spread[key] = max(blob_spread.get(key, 0.0), float(np.abs(a - final[layer][k]).max()))
    out["spread/loss"] = loss_spread
    out["spread/generated"] = gen_spread
    for key, v in blob_spread.items():
        out[f"spread/iter{iters}/{key}"] = np.array(v)
    inputs = {f"{layer}/{k}": np.asarray(b, np.float32) for layer, (_t, arrays) in run["blobs"].items()
              for k, b in enumerate(arrays)}
    return {"config": dict(config=config, total_length=total_length, iters=iters, seed=seed, early=EARLY,
                           restart=restart, solver=solver_file, spread_runs=spread_runs, caffe_seconds=round(run["seconds"], 1)),
            "in": inputs, "out": out}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caffe-root", type=Path, required=True, help="a built junhyukoh/caffe-lstm tree")
    parser.add_argument("--iters", type=int, default=200, help="training iterations per configuration")
    parser.add_argument("--spread-runs", type=int, default=3, help="runs from weights one ulp away")
    parser.add_argument("--seed", type=int, default=1701, help="seed of the port's fillers")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", default=str(GOLDEN / "caffe_sequence.npz"), help="npz file to write")
    parser.add_argument("--work", type=Path, default=None, help="keep Caffe's files here (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="caffe_sequence_"))
    arrays = {}
    for index, config in enumerate(args.configs):
        case = record(args.caffe_root.resolve(), config, args.iters, args.seed, args.spread_runs, work / config)
        arrays[f"c{index}/config"] = np.array(json.dumps(case["config"]))
        for k, v in case["in"].items():
            arrays[f"c{index}/in/{k}"] = v
        for k, v in case["out"].items():
            arrays[f"c{index}/out/{k}"] = v
    other_args = [a for a in sys.argv[1:] if not a.startswith("--caffe-root") and a != str(args.caffe_root)]
    info = {**versions(), "caffe": "junhyukoh/caffe-lstm", **build_info(args.caffe_root.resolve()),
            "command": " ".join(["python legacy/record_caffe_sequence.py --caffe-root CAFFE_ROOT"] + other_args)}
    arrays["versions"] = np.array(json.dumps(info))
    np.savez_compressed(args.out, **arrays)
    print("wrote", args.out, len(args.configs), "cases;", json.dumps(info))
    if args.work is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
