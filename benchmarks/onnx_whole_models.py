"""A whole converted ONNX model against the plain PyTorch module it was exported from, and onnxruntime.

    python benchmarks/onnx_whole_models.py [--batch 32] [--steps 50] [--rounds 30] [--opset 9]

A sentiment model (Embedding -> bidirectional batch-first nn.LSTM -> last step -> Linear -> softmax) is
exported by torch.onnx.export (the TorchScript exporter; opset 9 without constant folding computes the
LSTM's weights with Slice / Concat, folded by the converter), converted with ``compat.convert`` and loaded.
Each round runs the plain module, the converted model and (when installed) an onnxruntime session once on
the same ids, interleaved, the order rotating every round. Printed: each one's median time and the
medians of the per-round ratios against the plain module; and the largest difference of the predictions.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class Sentiment(nn.Module):
    def __init__(self, vocab=2000, embed=64, hidden=128, classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, classes)

    def forward(self, ids):
        y, _ = self.lstm(self.embedding(ids))
        return torch.softmax(self.out(y[:, -1]), dim=-1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--opset", type=int, default=9)
    args = p.parse_args()
    from compat.convert import convert, load

    torch.manual_seed(0)
    plain = Sentiment().eval()
    ids = torch.randint(0, 2000, (args.batch, args.steps))
    tmp = Path(tempfile.mkdtemp())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(plain, (ids,), str(tmp / "m.onnx"), opset_version=args.opset, do_constant_folding=False,
                          dynamo=False, input_names=["ids"], output_names=["probs"],
                          dynamic_axes={"ids": {0: "batch", 1: "steps"}, "probs": {0: "batch"}})
    convert(tmp / "m.onnx", tmp / "out", model="whole")
    converted = load(tmp / "out")
    runners = {"plain torch": lambda: plain(ids), "converted": lambda: converted(ids)}
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(tmp / "m.onnx"), providers=["CPUExecutionProvider"])
        feeds = {"ids": ids.numpy()}
        runners["onnxruntime"] = lambda: torch.from_numpy(sess.run(None, feeds)[0])
    except ImportError:
        print("onnxruntime is not installed: not timed")
    names = list(runners)
    with torch.no_grad():
        outs = {n: runners[n]() for n in names}
        times = {n: [] for n in names}
        for r in range(args.rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                t = time.perf_counter()
                runners[n]()
                times[n].append(time.perf_counter() - t)
    base = times["plain torch"]
    print(f"batch {args.batch}, steps {args.steps}, opset {args.opset}, torch threads {torch.get_num_threads()}, "
          f"{args.rounds} rounds")
    for n in names:
        ratio = statistics.median(a / b for a, b in zip(times[n], base))
        diff = float((outs[n] - outs["plain torch"]).abs().max())
        print(f"{n:12s} median {statistics.median(times[n]) * 1e3:8.2f} ms   ratio to plain torch {ratio:5.2f}   "
              f"max |difference| {diff:.2e}")


if __name__ == "__main__":
    main()
