"""``python -m compat.convert SOURCE --to OUT.safetensors``: see docs/convert.md."""
from __future__ import annotations

import argparse
import re
import sys
from typing import List, Optional

from compat import frameworks
from compat.cli import (ArgumentParser, ByteSize, Domain, Float, InputFile, InputPath, Int, OutputFile, Text,
                        print_files, run_cli)
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES

DESCRIPTION = """\
Find every recurrent layer in a legacy checkpoint or model file (TF1, Keras 1/2/3, ONNX, the Theano tutorial,
Caffe) without its framework, write the LSTMs in PyTorch's layout (a .json configuration and a .safetensors
tensor file, loaded by compat.convert.load(OUT)) with every tensor not converted carried under its source name
(compat.convert.load_carried(OUT)), and verify the LSTMs against the source framework's numpy reference.

Every tensor or layer of the source is listed: converted (to which module) or not (and why).

Exit status: 0 when every recurrent layer converted and matches the reference within the tolerance (float64
1e-10, float32 1e-5), 1 when a valid file converts and a module does not match, 2 for bad input (one line,
"error: ...", naming the file and the field): a damaged or hostile file, weights the source framework refuses
(NaN or infinite, mixed dtypes, overflowing), a bad flag; 3 when some recurrent layer could not be converted
(nothing is written unless --partial, which writes the others and exits 0)."""

EXIT_PARTIAL = 3


byte_size = ByteSize()  # --max-tensor-bytes


def option_domain(opt) -> Domain:
    """The accepted values of a framework's option (its values are refused while the command line is read):
    numbers finite (a NaN forget bias is a bad flag, not a bad file), counts at least 1, a file that exists."""
    if opt.type is float:
        return Float()
    if opt.type is int:
        return Int(minimum=1 if opt.positive else None)
    if opt.type is None and opt.metavar and re.fullmatch(r"\w+\.[a-z]+", opt.metavar):  # NET.prototxt: a file
        return InputFile()
    return opt.type if isinstance(opt.type, Domain) else Text()


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m compat.convert", description=DESCRIPTION)
    p.add_argument("source", type=InputPath(suffixes=(".index",)),
                   help="checkpoint or model file, TF checkpoint prefix or directory")
    p.add_argument("--to", required=True, metavar="OUT.safetensors", type=OutputFile(),
                   help="the conversion's name: writes OUT.json and OUT.<digest>.safetensors")
    keys = [k for fw in frameworks.FRAMEWORKS.values() for k in (fw.key, *fw.aliases)]
    p.add_argument("--format", choices=keys, metavar="FORMAT",
                   help=f"the source's format, one of {', '.join(frameworks.FRAMEWORKS)} (default: told from the path; "
                        "tf1 is accepted for tf)")
    for _, opt in frameworks.options().values():
        kwargs = {"help": opt.help, "dest": opt.dest, "default": opt.default}
        if opt.action:
            kwargs["action"] = opt.action
        else:
            kwargs["metavar"] = opt.metavar
            if opt.choices:
                kwargs["choices"] = opt.choices
            else:
                kwargs["type"] = option_domain(opt)
        p.add_argument(opt.flag, **kwargs)
    p.add_argument("--partial", action="store_true",
                   help="write the recurrent layers that convert even when others cannot (they are listed, and "
                        "carried unconverted under their source names)")
    p.add_argument("--max-tensor-bytes", type=byte_size, default=DEFAULT_MAX_TENSOR_BYTES, metavar="SIZE",
                   help="the largest tensor read from the source, converted or carried, checked before it is read "
                        "(in bytes or with a K, M, G or T suffix; default: 4G)")
    p.add_argument("--model", choices=("auto", "whole", "layers"), default="auto",
                   help="auto: also convert the whole model where every layer of it is one the converter knows "
                        "(Keras, ONNX, Caffe with its prototxt, TF1 with its .meta graph), else the recurrent layers with the "
                        "reason; whole: the whole model or an error; "
                        "layers: the recurrent layers only")
    p.add_argument("--emit-python", metavar="MODEL.py", type=OutputFile(),
                   help="also write the whole model as a standalone PyTorch module file that loads the converted "
                        "weights (needs the whole model: Keras, ONNX, Caffe with its prototxt, TF1 with its .meta "
                        "graph; a node no statement can write, such as a floating-point ONNX Range, is refused by "
                        "name)")
    p.add_argument("--report", metavar="REPORT.md", type=OutputFile(), help="also write a Markdown report")
    p.add_argument("--no-verify", action="store_true", help="skip the check against the reference")
    return p


def _main(args: argparse.Namespace) -> int:
    framework_options = {dest: getattr(args, dest) for dest in frameworks.options()}
    from compat.atomic import atomic_write_text
    from compat.convert import PartialConversionError, convert, report
    from compat.errors import InputError

    if args.emit_python and args.model == "layers":
        raise InputError("--emit-python writes the whole model: it cannot go with --model layers")

    print(f"compat.convert: {args.source} -> {args.to}", flush=True)
    try:
        conversion = convert(args.source, args.to, fmt=args.format, verify=not args.no_verify, partial=args.partial,
                             model="whole" if args.emit_python and args.model == "auto" else args.model,
                             max_tensor_bytes=args.max_tensor_bytes, **framework_options)
    except PartialConversionError as e:
        print(report.items_table(e.items))
        print(f"error: {e}", file=sys.stderr)
        return EXIT_PARTIAL
    specs, items, (config, tensors), checks = conversion
    graph, refused = conversion.graph, conversion.whole_refused
    if specs:
        print(report.table(specs))
    if graph is not None:
        print(report.model_table(graph))
    elif refused:
        rest = "its recurrent layers are converted alone" if specs else "none of its recurrent layers is converted"
        print(f"warning: the whole model is not converted ({refused}); {rest}", file=sys.stderr)
    print(report.items_table(items))
    for line in report.warnings(specs, items):
        print(line, file=sys.stderr)
    if checks is not None:
        print(report.checks_table(checks))
    written = [(config, "the configuration: one entry per converted layer and every item of the source (load it "
                        "with compat.convert.load)"),
               (tensors, "the weights in PyTorch's layout, and the tensors not converted under their source names")]
    if args.emit_python:
        from compat.convert.emit import EmitError, emit_python

        try:
            emit_python(config, args.emit_python)
        except EmitError as e:      # a node no statement can write (named); the conversion itself is written
            raise InputError(f"--emit-python: {e} (the conversion {config} is written and compat.convert.load runs "
                             "that node; no Python file is written)") from None
        written.append((args.emit_python, "the whole model as a standalone PyTorch module file (loads the weights "
                                          "from the tensor file)"))
    if args.report:
        atomic_write_text(args.report, report.markdown(args.source, config, specs, checks, items, graph, refused))
        written.append((args.report, "the report"))
    print_files(written)
    if checks is not None and not all(c.ok for c in checks):
        print("error: a converted module does not reproduce the reference within the tolerance", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli(_main, argv, build_parser)


if __name__ == "__main__":
    sys.exit(main())
