"""``python -m compat.convert SOURCE --to OUT.safetensors``: see docs/convert.md."""
from __future__ import annotations

import argparse
import re
import sys
from typing import List, Optional, Sequence

from compat.cli import HelpFormatter, check_positive, print_files, run_cli
from compat.convert.discovery import FORMATS
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES

DESCRIPTION = """\
Find every LSTM in a legacy checkpoint or model file (TF1, Keras 1/2/3, ONNX, the Theano tutorial, Caffe)
without its framework, write it in PyTorch's layout (a .json configuration and a .safetensors tensor file,
loaded by compat.convert.load(OUT)) and verify it against the source framework's numpy reference.

Exit status: 0 when every LSTM matches the reference within the tolerance (float64 1e-10, float32 1e-5),
1 when a valid file converts and a module does not match, 2 for bad input (one line, "error: ...", naming
the file and the field): a damaged or hostile file, weights the source framework refuses (NaN or infinite,
mixed dtypes, overflowing), a bad flag."""


def byte_size(text: str) -> int:
    """``--max-tensor-bytes``: ``4294967296``, ``4G``, ``512M``, ``1.5T`` (powers of 1024)."""
    m = re.fullmatch(r"\s*(\d{1,15}(?:\.\d{1,6})?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a size (bytes, or a number with K, M, G or T)")
    value = int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: the ceiling must be at least one byte")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m compat.convert", description=DESCRIPTION, formatter_class=HelpFormatter)
    p.add_argument("source", help="checkpoint or model file, TF checkpoint prefix or directory")
    p.add_argument("--to", required=True, metavar="OUT.safetensors",
                   help="the conversion's name: writes OUT.json and OUT.<digest>.safetensors")
    p.add_argument("--format", choices=FORMATS, help="the source's format (default: told from the path)")
    p.add_argument("--forget-bias", type=float, metavar="F",
                   help="TF1: the cells' run-time forget_bias, which checkpoints do not store (default: TF's 1.0, "
                        "with a warning)")
    p.add_argument("--cell-clip", type=float, metavar="V", help="TF1: cell_clip of LSTMCell / LSTMBlockCell")
    p.add_argument("--proj-clip", type=float, metavar="V", help="TF1: proj_clip of an LSTMCell with num_proj")
    p.add_argument("--cudnn-num-units", type=int, metavar="H", help="TF1: num_units of a CudnnLSTM opaque buffer")
    p.add_argument("--cudnn-num-layers", type=int, default=1, metavar="L", help="TF1: layers of that buffer")
    p.add_argument("--cudnn-bidirectional", action="store_true", help="TF1: that buffer is bidirectional")
    p.add_argument("--prototxt", help="Caffe: the net's .prototxt, checked against the blobs")
    p.add_argument("--theano-doubled-bias", action="store_true",
                   help="Theano: the file was trained by lstm.py before May 2015, which added lstm_b twice")
    p.add_argument("--keras-version", metavar="X.Y.Z",
                   help="Keras: the version that wrote the file, for a file that does not say it readably (without "
                        "it such a file is refused: the semantics differ between versions)")
    p.add_argument("--max-tensor-bytes", type=byte_size, default=DEFAULT_MAX_TENSOR_BYTES, metavar="SIZE",
                   help="the largest tensor read from a file that can declare more than it holds (Keras, ONNX, "
                        "Theano .npz), in bytes or with a K, M, G or T suffix (default: 4G)")
    p.add_argument("--report", metavar="REPORT.md", help="also write a Markdown report")
    p.add_argument("--no-verify", action="store_true", help="skip the check against the reference")
    return p


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    check_positive(cudnn_num_units=args.cudnn_num_units, cudnn_num_layers=args.cudnn_num_layers)
    from compat.atomic import atomic_write_text
    from compat.convert import convert, report

    print(f"compat.convert: {args.source} -> {args.to}", flush=True)
    conversion = convert(args.source, args.to, fmt=args.format, verify=not args.no_verify,
                         forget_bias=args.forget_bias, cell_clip=args.cell_clip, proj_clip=args.proj_clip,
                         prototxt=args.prototxt, theano_doubled_bias=args.theano_doubled_bias,
                         cudnn_num_units=args.cudnn_num_units, cudnn_num_layers=args.cudnn_num_layers,
                         cudnn_bidirectional=args.cudnn_bidirectional, keras_version=args.keras_version,
                         max_tensor_bytes=args.max_tensor_bytes)
    specs, (config, tensors), checks = conversion
    print(report.table(specs))
    for line in report.warnings(specs):
        print(line, file=sys.stderr)
    if checks is not None:
        print(report.checks_table(checks))
    written = [(config, "the configuration: one entry per LSTM (load it with compat.convert.load)"),
               (tensors, "the weights in PyTorch's layout")]
    if args.report:
        atomic_write_text(args.report, report.markdown(args.source, config, specs, checks))
        written.append((args.report, "the report"))
    print_files(written)
    if checks is not None and not all(c.ok for c in checks):
        print("error: a converted module does not reproduce the reference within the tolerance", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
