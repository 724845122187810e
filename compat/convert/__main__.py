"""``python -m compat.convert SOURCE --to OUT.safetensors``: see docs/convert.md."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from compat.convert.discovery import FORMATS


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m compat.convert",
        description="Find every LSTM in a legacy checkpoint (TF1, Keras, ONNX, Theano, Caffe), write it in "
                    "PyTorch's layout (safetensors + JSON) and verify it against the source framework's numpy "
                    "reference.")
    p.add_argument("source", help="checkpoint, model file or TF checkpoint directory/prefix")
    p.add_argument("--to", required=True, metavar="OUT.safetensors", help="output weights (the JSON goes beside it)")
    p.add_argument("--format", choices=FORMATS, help="the source's format (default: told from the path)")
    p.add_argument("--forget-bias", type=float, metavar="F",
                   help="TF1: the cells' run-time forget_bias (not stored in checkpoints; default 1.0, with a warning)")
    p.add_argument("--cell-clip", type=float, metavar="V", help="TF1: cell_clip of LSTMCell / LSTMBlockCell")
    p.add_argument("--proj-clip", type=float, metavar="V", help="TF1: proj_clip of LSTMCell with num_proj")
    p.add_argument("--cudnn-num-units", type=int, metavar="H", help="TF1: num_units of a CudnnLSTM opaque buffer")
    p.add_argument("--cudnn-num-layers", type=int, default=1, metavar="L", help="TF1: layers of that buffer")
    p.add_argument("--cudnn-bidirectional", action="store_true", help="TF1: that buffer is bidirectional")
    p.add_argument("--prototxt", help="Caffe: the net's .prototxt, checked against the blobs")
    p.add_argument("--theano-doubled-bias", action="store_true",
                   help="Theano: the file was trained by lstm.py before May 2015, which added lstm_b twice")
    p.add_argument("--report", metavar="REPORT.md", help="write a Markdown report")
    p.add_argument("--no-verify", action="store_true", help="skip the check against the reference")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from compat.atomic import atomic_write_text
    from compat.convert import convert, report
    from compat.convert.store import config_path
    from compat.errors import InputError

    try:
        specs, checks = convert(args.source, args.to, fmt=args.format, verify=not args.no_verify,
                                forget_bias=args.forget_bias, cell_clip=args.cell_clip, proj_clip=args.proj_clip,
                                prototxt=args.prototxt, theano_doubled_bias=args.theano_doubled_bias,
                                cudnn_num_units=args.cudnn_num_units, cudnn_num_layers=args.cudnn_num_layers,
                                cudnn_bidirectional=args.cudnn_bidirectional)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.table(specs))
    for line in report.warnings(specs):
        print(line, file=sys.stderr)
    print(f"wrote {args.to} and {config_path(args.to)}")
    if checks is not None:
        print(report.checks_table(checks))
    if args.report:
        atomic_write_text(args.report, report.markdown(args.source, args.to, specs, checks))
        print(f"wrote {args.report}")
    if checks is not None and not all(c.ok for c in checks):
        print("error: the converted module does not reproduce the reference within the tolerance", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
