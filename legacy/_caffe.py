"""What the Caffe recorders share: protoc's text view of Caffe's binary files, weights spliced into a net
definition, running a built Caffe binary, and reading its log.

Nothing here reads a .caffemodel with the port's own reader: Caffe's files are decoded by ``protoc
--decode`` against the build's own ``src/caffe/proto/caffe.proto``, so the recordings do not depend on
the code they check. Caffe is on no package registry: the scripts take a tree built from source
(``--caffe-root``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

# -------------------------------------------------------------------------------- protoc text format

TextTree = Dict[str, list]  # field name -> list of values (strings as protoc printed them, or subtrees)


def protoc_decode(caffe_root: Path, message: str, data: bytes) -> str:
    """``protoc --decode=caffe.<message>`` of ``data`` against the build's caffe.proto."""
    proto_dir = caffe_root / "src" / "caffe" / "proto"
    protoc = shutil.which("protoc")
    if protoc is None:
        raise SystemExit("protoc not found (apt-get install protobuf-compiler)")
    res = subprocess.run([protoc, f"--decode=caffe.{message}", f"-I{proto_dir}", str(proto_dir / "caffe.proto")],
                         input=data, capture_output=True, check=False)
    if res.returncode:
        raise SystemExit(f"protoc --decode=caffe.{message} failed: {res.stderr.decode(errors='replace')}")
    return res.stdout.decode()


def parse_text(text: str) -> TextTree:
    """protoc's text output (one field per line, nested messages as ``name {`` ... ``}``) as a tree.
    Scalar values stay the strings protoc printed, so they can be written back unchanged."""
    root: TextTree = {}
    stack = [root]
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line == "}":
            stack.pop()
            continue
        if line.endswith("{"):
            child: TextTree = {}
            stack[-1].setdefault(line[:-1].strip(), []).append(child)
            stack.append(child)
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"protoc output line {lineno} not understood: {raw!r}")
        stack[-1].setdefault(name.strip(), []).append(value.strip())
    if len(stack) != 1:
        raise ValueError("protoc output has unbalanced braces")
    return root


def unquote(value: str) -> str:
    return value[1:-1] if value[:1] == '"' and value[-1:] == '"' else value


def blob_array(blob: TextTree) -> np.ndarray:
    """A BlobProto subtree as an array: ``shape`` (or legacy num/channels/height/width), float ``data``."""
    if "shape" in blob:
        shape = [int(d) for d in blob["shape"][0].get("dim", [])]
    else:
        shape = [int(blob.get(k, ["1"])[0]) for k in ("num", "channels", "height", "width")]
    if blob.get("double_data"):
        values = np.array([float(v) for v in blob["double_data"]], np.float64)
    else:
        values = np.array([np.float32(float(v)) for v in blob.get("data", [])], np.float32)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"blob of shape {shape} holds {values.size} values")
    return values.reshape(shape)


def layer_blobs(net_text: str) -> Dict[str, List[np.ndarray]]:
    """{layer name: [blobs]} of a decoded NetParameter (layers without blobs left out)."""
    tree = parse_text(net_text)
    out = {}
    for layer in tree.get("layer", []):
        if layer.get("blobs"):
            out[unquote(layer["name"][0])] = [blob_array(b) for b in layer["blobs"]]
    return out


def history_blobs(state_text: str) -> List[np.ndarray]:
    """The SGD momentum ``history`` blobs of a decoded SolverState, in the net's learnable-param order."""
    return [blob_array(b) for b in parse_text(state_text).get("history", [])]


def _emit(tree: TextTree, indent: str) -> List[str]:
    lines = []
    for name, values in tree.items():
        for v in values:
            if isinstance(v, dict):
                lines.append(f"{indent}{name} {{")
                lines += _emit(v, indent + "  ")
                lines.append(f"{indent}}}")
            else:
                lines.append(f"{indent}{name}: {v}")
    return lines


def blobs_text_by_layer(net_text: str) -> Dict[str, str]:
    """{layer name: the layer's ``blobs { ... }`` entries as text}, values exactly as protoc printed them."""
    tree = parse_text(net_text)
    out = {}
    for layer in tree.get("layer", []):
        if layer.get("blobs"):
            out[unquote(layer["name"][0])] = "\n".join(_emit({"blobs": layer["blobs"]}, "  "))
    return out


def splice_blobs(net_prototxt: str, blobs_text: Dict[str, str]) -> str:
    """The net definition with each named layer's ``blobs`` inserted before the layer's closing brace.

    Caffe's ``Layer`` constructor copies ``layer_param.blobs`` into the layer, and every layer type used here
    then skips its fillers ("Skipping parameter initialization"): the net starts from exactly these weights.
    """
    out, pos, depth = [], 0, 0
    start = None
    layer_name = None
    i, n = 0, len(net_prototxt)
    pending = dict(blobs_text)
    while i < n:
        ch = net_prototxt[i]
        if ch == "#":
            j = net_prototxt.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch == '"':
            j = net_prototxt.index('"', i + 1)
            if depth == 1 and start is not None and layer_name is None:
                m = re.search(r"\bname\s*:\s*$", net_prototxt[start:i])
                if m:
                    layer_name = net_prototxt[i + 1:j]
            i = j + 1
            continue
        if ch == "{":
            if depth == 0:
                start = i
                layer_name = None
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and layer_name in pending:
                out.append(net_prototxt[pos:i])
                out.append(pending.pop(layer_name) + "\n")
                pos = i
        i += 1
    out.append(net_prototxt[pos:])
    if pending:
        raise SystemExit(f"no layer named {sorted(pending)} in the net definition")
    return "".join(out)


def one_ulp_apart(blobs, seed: int):
    """The same weights ({layer: (type, [arrays])}), each moved one float32 ulp up or down at random: a
    change below rounding. Caffe's runs from them show how far rounding alone moves a training run."""
    rng = np.random.default_rng(seed)
    out = {}
    for layer, (ltype, arrays) in blobs.items():
        moved = []
        for a in arrays:
            a = np.asarray(a, np.float32)
            up = rng.random(a.shape) < 0.5
            moved.append(np.where(up, np.nextafter(a, np.float32(np.inf)), np.nextafter(a, np.float32(-np.inf))))
        out[layer] = (ltype, moved)
    return out


# ------------------------------------------------------------------------------------------ running

def run_binary(argv: List[str], cwd: Path, log_path: Path) -> float:
    """Run a Caffe binary single-threaded with glog to stderr (saved to ``log_path``); returns seconds."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", GLOG_logtostderr="1")
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        res = subprocess.run(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - t0
    if res.returncode:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise SystemExit(f"{argv[0]} exited with {res.returncode}:\n" + "\n".join(tail))
    return seconds


LOSS_LINE = re.compile(r"\] Iteration (\d+)\b.*?, loss = (\S+)")


def logged_losses(log_text: str) -> List[Tuple[int, float]]:
    """(iteration, loss) of Solver::Step's display lines, as printed (glog's stream: 6 significant digits)."""
    return [(int(m.group(1)), float(m.group(2))) for m in LOSS_LINE.finditer(log_text)]


def build_info(caffe_root: Path) -> Dict[str, str]:
    """Commit of the Caffe tree and the tools it was built with (for the recordings' provenance)."""
    def out(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    version = out(["c++", "--version"]).splitlines()
    info = {"commit": out(["git", "-C", str(caffe_root), "rev-parse", "HEAD"]),
            # Files changed from that commit to build with today's compiler and protobuf (none of them touches
            # what the recorded programs compute); listed so that the recordings say exactly what ran.
            "local_changes": out(["git", "-C", str(caffe_root), "diff", "--name-only"]).split() or ["none"],
            "compiler": version[0] if version else "?",
            "protoc": out(["protoc", "--version"])}
    return info


def snapshot_weights(caffe_root, work, it: int):
    """The layers' blobs of Caffe's snapshot ``work/snap/it_iter_<it>.caffemodel``."""
    return layer_blobs(protoc_decode(caffe_root, "NetParameter",
                                     (work / "snap" / f"it_iter_{it}.caffemodel").read_bytes()))


def snapshot_history(caffe_root, work, it: int):
    """The solver's momentum history of ``work/snap/it_iter_<it>.solverstate``."""
    return history_blobs(protoc_decode(caffe_root, "SolverState",
                                       (work / "snap" / f"it_iter_{it}.solverstate").read_bytes()))


# ------------------------------------------------------------------- weights written by protoc, forward runs

def float32_text(values) -> List[str]:
    """Each value as the shortest decimal that is exactly its float32 value (a double read back and cast to
    float by protobuf's text parser gives the same float32)."""
    return [repr(float(v)) for v in np.asarray(values, np.float32).reshape(-1)]


def blobs_text(arrays: List[np.ndarray]) -> str:
    """``blobs { shape { dim: .. } data: .. }`` entries of float32 arrays, in protobuf's text format."""
    lines = []
    for a in arrays:
        a = np.asarray(a, np.float32)
        lines.append("  blobs {")
        lines.append("    shape { " + " ".join(f"dim: {d}" for d in a.shape) + " }")
        lines += [f"    data: {v}" for v in float32_text(a)]
        lines.append("  }")
    return "\n".join(lines)


def encode_caffemodel(caffe_root: Path, weights: Dict[str, Tuple[str, List[np.ndarray]]], name: str) -> bytes:
    """A binary ``.caffemodel`` (NetParameter) of ``weights`` ({layer: (type, [float32 arrays])}), written by
    ``protoc --encode`` against the build's caffe.proto, then decoded again and checked value for value."""
    text = [f'name: "{name}"']
    for layer, (ltype, arrays) in weights.items():
        text.append(f'layer {{\n  name: "{layer}"\n  type: "{ltype}"\n{blobs_text(arrays)}\n}}')
    proto_dir = caffe_root / "src" / "caffe" / "proto"
    protoc = shutil.which("protoc")
    if protoc is None:
        raise SystemExit("protoc not found (apt-get install protobuf-compiler)")
    res = subprocess.run([protoc, "--encode=caffe.NetParameter", f"-I{proto_dir}", str(proto_dir / "caffe.proto")],
                         input="\n".join(text).encode(), capture_output=True, check=False)
    if res.returncode:
        raise SystemExit(f"protoc --encode=caffe.NetParameter failed: {res.stderr.decode(errors='replace')}")
    back = layer_blobs(protoc_decode(caffe_root, "NetParameter", res.stdout))
    for layer, (_t, arrays) in weights.items():
        got = back.get(layer, [])
        if len(got) != len(arrays) or not all(
                g.shape == np.shape(a) and np.array_equal(g, np.asarray(a, np.float32)) for g, a in zip(got, arrays)):
            raise SystemExit(f"layer {layer}: the encoded .caffemodel does not hold the weights exactly")
    return res.stdout


def hdf5_io_net(inputs: Dict[str, np.ndarray], layers: str, outputs: List[str], name: str) -> str:
    """A net that reads ``inputs`` with ``HDF5Data`` layers (one per leading size: the layer reads batch_size
    rows of every dataset, hdf5_data_layer.cpp LoadHDF5FileData checks they agree), runs ``layers`` and writes
    each blob of ``outputs`` with an ``HDF5Output`` layer of its own (hdf5_output_layer.cpp: two bottoms written
    as datasets "data" and "label" when Forward runs, here the blob twice) to ``out_<blob>.h5``.
    The inputs' files are ``in_<k>.h5`` with list files ``in_<k>.txt`` (:func:`write_hdf5_inputs`)."""
    groups: Dict[int, List[str]] = {}
    for blob, a in inputs.items():
        groups.setdefault(int(np.shape(a)[0]), []).append(blob)
    text = [f'name: "{name}"']
    for k, (rows, blobs) in enumerate(groups.items()):
        tops = " ".join(f'top: "{b}"' for b in blobs)
        text.append(f'layer {{ name: "in_{k}" type: "HDF5Data" {tops} '
                    f'hdf5_data_param {{ source: "in_{k}.txt" batch_size: {rows} }} }}')
    text.append(layers.strip())
    for blob in outputs:
        text.append(f'layer {{ name: "out_{blob}" type: "HDF5Output" bottom: "{blob}" bottom: "{blob}" '
                    f'hdf5_output_param {{ file_name: "out_{blob}.h5" }} }}')
    return "\n".join(text) + "\n"


def write_hdf5_inputs(work: Path, inputs: Dict[str, np.ndarray]) -> None:
    """The files :func:`hdf5_io_net`'s HDF5Data layers read: float32 datasets named by blob (HDF5Data reads
    every dataset as float, hdf5.cpp hdf5_load_nd_dataset; an Embed casts ids back with static_cast<int>)."""
    import h5py

    groups: Dict[int, List[str]] = {}
    for blob, a in inputs.items():
        groups.setdefault(int(np.shape(a)[0]), []).append(blob)
    for k, blobs in enumerate(groups.values()):
        with h5py.File(work / f"in_{k}.h5", "w") as f:
            for b in blobs:
                f[b] = np.asarray(inputs[b], np.float32)
        (work / f"in_{k}.txt").write_text(f"in_{k}.h5\n")


def caffe_forward(caffe_root: Path, work: Path, inputs: Dict[str, np.ndarray], layers: str, outputs: Dict[str, int],
                  weights: Dict[str, Tuple[str, List[np.ndarray]]], name: str) -> Dict[str, np.ndarray]:
    """One TEST-phase forward pass of ``layers`` by ``caffe test -iterations 1`` from ``weights`` (an encoded
    .caffemodel: Net::CopyTrainedLayersFrom, which also fills recurrent layers, whose LayerSetUp replaces any
    blobs given in the prototxt by their unrolled net's); returns each blob of ``outputs`` ({blob: shape}) as
    Caffe's HDF5Output wrote it. HDF5Output keeps a blob's values in order but as (num, channels, height,
    width), ones after the blob's last axis: ``outputs`` gives each blob's number of axes ({blob: axes})."""
    import h5py

    work.mkdir(parents=True, exist_ok=True)
    write_hdf5_inputs(work, inputs)
    (work / "net.prototxt").write_text(hdf5_io_net(inputs, layers, list(outputs), name))
    (work / "weights.caffemodel").write_bytes(encode_caffemodel(caffe_root, weights, name))
    binary = caffe_root / ".build_release" / "tools" / "caffe.bin"
    run_binary([str(binary), "test", "-model", "net.prototxt", "-weights", "weights.caffemodel", "-iterations", "1"],
               work, work / "caffe.log")
    got = {}
    for blob, axes in outputs.items():
        with h5py.File(work / f"out_{blob}.h5", "r") as f:
            data, label = np.array(f["data"]), np.array(f["label"])
        if data.dtype != np.float32 or data.ndim != 4 or any(d != 1 for d in data.shape[axes:]) \
                or not np.array_equal(data, label):
            raise SystemExit(f"out_{blob}.h5: {data.dtype} {data.shape}; expected float32 with {axes} axes")
        got[blob] = data.reshape(data.shape[:axes])
    return got


def input_layer(inputs: Dict[str, np.ndarray]) -> str:
    """An ``Input`` layer declaring ``inputs``' blobs and shapes: the net as a user deploys it (no data layer)."""
    tops = " ".join(f'top: "{b}"' for b in inputs)
    shapes = " ".join("shape { " + " ".join(f"dim: {d}" for d in np.shape(a)) + " }" for a in inputs.values())
    return f'layer {{ name: "data" type: "Input" {tops} input_param {{ {shapes} }} }}\n'


def record_nets(caffe_root: Path, cases: Dict[str, dict], out: Path, work: Path, command: str, ) -> None:
    """Run each case ({name: {"inputs", "layers", "weights", "outputs"}}) through :func:`caffe_forward` and write
    ``out/<name>.prototxt`` (``Input`` layer + the layers), ``out/<name>.caffemodel`` (protoc-encoded),
    ``out/expected.npz`` (``<name>/in/<blob>``, ``<name>/out/<blob>``, the weights as
    ``<name>/weights/<layer>/<k>``, and ``versions``: the build and tools, JSON)."""
    import json

    from _common import versions

    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, case in cases.items():
        got = caffe_forward(caffe_root, work / name, case["inputs"], case["layers"], case["outputs"], case["weights"],
                            name)
        (out / f"{name}.prototxt").write_text(f'name: "{name}"\n' + input_layer(case["inputs"])
                                              + case["layers"].strip() + "\n")
        shutil.copyfile(work / name / "weights.caffemodel", out / f"{name}.caffemodel")
        for blob, a in case["inputs"].items():
            arrays[f"{name}/in/{blob}"] = np.asarray(a, np.float32)
        for blob, a in got.items():
            arrays[f"{name}/out/{blob}"] = a
        for layer, (_t, blobs) in case["weights"].items():
            for k, a in enumerate(blobs):
                arrays[f"{name}/weights/{layer}/{k}"] = np.asarray(a, np.float32)
        print(name, {b: list(a.shape) for b, a in got.items()})
    info = {**versions(), "caffe": "BVLC/caffe", **build_info(caffe_root), "command": command}
    arrays["versions"] = np.array(json.dumps(info))
    np.savez_compressed(out / "expected.npz", **arrays)
