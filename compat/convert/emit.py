"""``--emit-python MODEL.py``: a converted whole model as a readable, standalone PyTorch module file.

The file defines ``class Model(nn.Module)``: one attribute per layer that holds parameters (plain
``torch.nn`` modules wherever the semantics are exactly PyTorch's: ``nn.Embedding``, ``nn.Linear``,
``nn.LSTM``, ``nn.LayerNorm``, ``nn.Conv1d``, ...; this project's modules only where they are not: a Keras
LSTM's outputs at masked steps, TF's ``same`` padding, ...), and a ``forward`` that takes the model's inputs
in the source's order and computes every layer and every mask in the source's order, one statement each, as
the kinds' ``emit`` write them (``compat.frameworks.<name>.layers``). ``load()`` builds the model, checks
the conversion's tensor file against the SHA-256 its manifest recorded, reads it with safetensors and loads
every parameter by name (strictly). Nothing of the source is executed or copied into the file as code: names
appear only as Python string literals, settings as numbers and literals.
"""
from __future__ import annotations

import hashlib
import keyword
import os
import re
from pathlib import Path
from typing import Dict, List, Optional

from compat import checkpoint, frameworks
from compat.atomic import atomic_write_text
from compat.convert.graph import is_ref
from compat.errors import InputError

import builtins

RESERVED = {"self", "torch", "nn", "F", "Model", "load", "Path", "hashlib", "load_file", "WEIGHTS", "TENSOR_FILE",
            "TENSOR_SHA256", "LAYER_NAMES"} | set(dir(builtins))


FLOAT_DTYPE_PROBE = "float_dtype_probe"   # an empty buffer that moves with .to(dtype): the model's float dtype
RESERVED.add(FLOAT_DTYPE_PROBE)


class EmitError(InputError, ValueError):
    """A conversion that holds no whole model, or a node no kind can write as Python."""


class NodeEmit:
    """What a kind's ``emit`` reads: ``self`` (the module's attribute), ``args`` / ``kw`` (Python expressions
    of the inputs), ``outs`` (the names to assign), and for a recurrent node its module's constructor."""

    def __init__(self, self_expr: str, args: List[str], kw: Dict[str, str], outs: List[str], recurrent=None,
                 attribute=None):
        self.self, self.args, self.kw, self.outs = self_expr, args, kw, outs
        rec = recurrent or {}
        self.recurrent_module = rec.get("module")
        self.recurrent_init = rec.get("init")
        self.recurrent_weights = rec.get("weights", {})
        self.recurrent_imports = rec.get("imports", ())
        self._attribute = attribute        # name -> a fresh attribute of the model (emit_python's names)
        self.buffers: Dict[str, str] = {}      # the node's tensors the lines read as buffers: tensor -> attribute
        self.float_dtype_used = False

    def inner(self, x: str, out: str) -> "NodeEmit":
        return NodeEmit(self.self, [x], {}, [out])

    def items(self, k: int) -> List[str]:
        """The expressions of input ``k`` when it is a list of references (``args[k]`` is ``"[a, b]"``)."""
        inner = self.args[k][1:-1]
        return inner.split(", ") if inner else []

    def buffer(self, tensor: str) -> str:
        """``self.<attribute>``: the node's tensor ``tensor`` as a buffer of the model (for a node that writes
        an expression, not a module), loaded from the tensor file by name like a parameter."""
        if tensor not in self.buffers:
            self.buffers[tensor] = self._attribute(f"{self.self[len('self.'):]}_{tensor}")
        return f"self.{self.buffers[tensor]}"

    def float_dtype(self) -> str:
        """An expression of the model's floating-point dtype (what ``load(dtype=)`` or ``.to()`` made it)."""
        self.float_dtype_used = True
        return f"self.{FLOAT_DTYPE_PROBE}.dtype"


def _identifier(name: str, taken: set) -> str:
    base = re.sub(r"\W", "_", name).strip("_").lower() or "layer"
    if base[0].isdigit():
        base = "v_" + base
    if keyword.iskeyword(base) or base in RESERVED:
        base += "_"
    ident, k = base, 1
    while ident in taken:
        ident = f"{base}_{k}"
        k += 1
    taken.add(ident)
    return ident


def _recurrent_source(entry: dict) -> dict:
    """The converted recurrent module's constructor, as load() builds it (compat.convert.store._build)."""
    kind = entry["module"]
    args = [str(entry["input_size"]), str(entry["hidden_size"])]
    opts = []
    if entry["num_layers"] != 1:
        opts.append(f"num_layers={entry['num_layers']}")
    if not entry["bias"]:
        opts.append("bias=False")
    if entry["batch_first"]:
        opts.append("batch_first=True")
    if entry["proj_size"]:
        opts.append(f"proj_size={entry['proj_size']}")
    if entry["bidirectional"]:
        opts.append("bidirectional=True")
    imports = []
    if kind == "torch.nn.LSTM":
        ctor = "nn.LSTM"
    elif kind in ("torch.nn.GRU", "torch.nn.RNN"):
        ctor = kind[len("torch."):]
        nl = entry["options"].get("nonlinearity", "tanh")
        if kind == "torch.nn.RNN" and str(nl).lower() != "tanh":
            opts.append(f"nonlinearity={str(nl).lower()!r}")
    elif kind in ("compat.gru.GRU", "compat.simple_rnn.RNN"):
        for k, v in entry["options"].items():
            v = tuple(tuple(a) if isinstance(a, list) else a for a in v) if k == "activations" else v
            v = tuple(v) if isinstance(v, list) else v
            opts.append(f"{k}={v!r}")
        module, _, cls = kind.rpartition(".")
        ctor, imports = cls, [f"from {module} import {cls}"]
    else:
        if entry["peepholes"]:
            opts.append("peepholes=True")
        for k, v in (entry["keras"] or {}).items():
            opts.append(f"{k}={v!r}")
        for k, v in entry["options"].items():
            v = tuple(tuple(a) if isinstance(a, list) else a for a in v) if k == "activations" else v
            opts.append(f"{k}={v!r}")
        opts += [f"{k}={v!r}" for k, v in entry.get("module_config", {}).items()]   # the class's own keywords
        if kind == "compat.lstm.LSTM":
            ctor, imports = "LSTM", ["from compat.lstm import LSTM"]
        else:
            module, _, cls = frameworks.FRAMEWORKS[entry["source_format"]].modules[kind].partition(":")
            ctor, imports = cls, [f"from {module} import {cls}"]
    return {"module": kind, "init": f"{ctor}({', '.join(args + opts)})", "imports": tuple(imports)}


def emit_python(conversion, path) -> Path:
    """Write the whole model of conversion ``conversion`` (checked by loading it first) as ``path``."""
    from compat.convert.store import KIND, load

    model = load(conversion)   # every check load makes, before anything is written
    if not hasattr(model, "output_refs"):
        raise EmitError(f"{conversion}: the conversion holds recurrent layers only, no whole model to write")
    ck = checkpoint.read(conversion, KIND, require_seal=True)
    content = ck.content
    graph = content["model"]
    kinds = frameworks.layer_kinds(graph["framework"])
    lstms = {e["name"]: (k, e) for k, e in enumerate(content["lstms"])}
    taken: set = set()
    values: Dict[tuple, str] = {}
    inputs = []
    for inp in graph["inputs"]:
        name = _identifier(inp["name"], taken)
        values[(inp["name"], 0)] = name
        inputs.append(name)

    def expr(arg) -> str:
        if is_ref(arg):
            return values[(arg[0], arg[1])]
        return "[" + ", ".join(expr(a) for a in arg) + "]"

    init_lines, forward_lines, weights, imports = [], [], {}, set()
    names: Dict[str, str] = {}
    owners: Dict[str, tuple] = {}   # node name -> (its attribute, its buffers): what a later call of it reuses
    probe = False
    for k, node in enumerate(graph["nodes"]):
        ident = _identifier(node["name"], taken)
        shared = owners.get(node["shares"]) if "shares" in node else None
        if shared is None:
            names[ident] = node["name"]
        n_out = _outputs(kinds, node)
        outs = [ident] + [_identifier(f"{ident}_{j}", taken) for j in range(1, n_out)]
        rec = None
        if node["recurrent"] is not None:
            index, entry = lstms[node["recurrent"]]
            rec = _recurrent_source(entry)
            rec["weights"] = {w: f"lstms/{index}/weights/{w}" for w in entry["weights"]}
        # a shared layer's later call: the same module (attribute) called on its own inputs
        e = NodeEmit(f"self.{shared[0] if shared else ident}", [expr(a) for a in node["args"]],
                     {key: expr(v) for key, v in node["kwargs"].items()}, outs, rec,
                     attribute=lambda name: _identifier(name, taken))
        if shared:
            e.buffers = dict(shared[1])
        try:
            got = kinds[node["kind"]].emit(node["config"], e) if kinds[node["kind"]].emit else None
        except EmitError as exc:
            raise EmitError(f"{conversion}: node {k} ({node['kind']}, {node['name'][:80]!r}): {exc}") from None
        if got is None:
            raise EmitError(f"{conversion}: node {k} ({node['kind']}) cannot be written as Python")
        probe = probe or e.float_dtype_used
        if shared:
            if set(e.buffers) != set(shared[1]):
                raise EmitError(f"{conversion}: node {k} ({node['kind']}) reads tensors its module's first call "
                                "does not hold")
        elif e.buffers:
            if got.init is not None:
                raise EmitError(f"{conversion}: node {k} ({node['kind']}) writes a module and buffers")
            for tensor, attribute in e.buffers.items():
                ref = node["weights"][tensor]
                shape = repr(tuple(ref.shape))
                dtype = str(ref.dtype).replace("torch.", "")
                init_lines.append(f"self.register_buffer({attribute!r}, torch.empty({shape}, dtype=torch.{dtype}))"
                                  f"  # {node['name'][:60]!r} input {tensor}")
                weights[attribute] = ref.key
                names[attribute] = node["name"]
            if set(e.buffers) != set(node["weights"]):
                raise EmitError(f"{conversion}: node {k} ({node['kind']}) holds tensors its Python does not read")
        elif got.init is not None:
            init_lines.append(f"self.{ident} = {got.init}")
            if node["recurrent"] is not None:
                mapping = got.weights
            else:
                tensors = {n: ref.key for n, ref in node["weights"].items()}
                mapping = {mine: tensors[theirs] for mine, theirs in
                           (got.weights or {n: n for n in tensors}).items()}
            for mine, key in mapping.items():
                weights[f"{ident}.{mine}"] = key
        elif node["weights"]:
            raise EmitError(f"{conversion}: node {k} ({node['kind']}) holds tensors but writes no module")
        if shared is None:
            owners[node["name"]] = (ident, dict(e.buffers))
        imports.update(got.imports)
        forward_lines += got.lines
        for j, o in enumerate(outs):
            values[(node["name"], j)] = o
    if probe:
        init_lines.append(f"self.register_buffer({FLOAT_DTYPE_PROBE!r}, torch.zeros(0), persistent=False)  # the "
                          "model's floating-point dtype (moves with .to(dtype))")
    outputs = [values[tuple(o)] for o in graph["outputs"]]
    path = Path(path)
    tensor_file = Path(ck.tensor_path).resolve()
    try:
        relative: Optional[str] = os.path.relpath(tensor_file, path.resolve().parent)
    except ValueError:
        relative = None
    digest = hashlib.sha256(tensor_file.read_bytes()).hexdigest()   # load() checked it against the manifest
    text = _render(content["source"], graph, inputs, outputs, init_lines, forward_lines, weights, sorted(imports),
                   relative or str(tensor_file), digest, names)
    atomic_write_text(path, text)
    return path


def _outputs(kinds, node) -> int:
    """How many outputs the node's module returns."""
    kind = kinds[node["kind"]]
    return kind.outputs(node["config"]) if kind.outputs else 1


def _render(source, graph, inputs, outputs, init_lines, forward_lines, weights, imports, tensor_file, sha256,
            names) -> str:
    ind = " " * 8
    out = []
    described = ", ".join(f"{n} ({i['dtype']}, shape {i['shape']})" for n, i in zip(inputs, graph["inputs"]))
    out.append(f'"""A {graph["framework"]} model converted by python -m compat.convert, as a PyTorch module.\n\n'
               f"Source: {source!r}.\n"
               "``load()`` returns the model with the converted weights; ``model(*inputs)`` takes the inputs in the\n"
               "source model's order and returns its outputs in its order.\n\n"
               f"Inputs: {described}.\n"
               '"""')
    out.append("import hashlib\nfrom pathlib import Path\n\nimport torch\nimport torch.nn.functional as F  # noqa: F401\n"
               "from safetensors.torch import load_file\nfrom torch import nn")
    if imports:
        out.append("\n".join(imports))
    out.append(f"TENSOR_FILE = {tensor_file!r}  # relative to this file's folder\nTENSOR_SHA256 = {sha256!r}")
    out.append("# each attribute's layer as the source names it\nLAYER_NAMES = {\n" +
               "".join(f"    {k!r}: {v!r},\n" for k, v in names.items()) + "}")
    body = ["class Model(nn.Module):",
            "    def __init__(self):", f"{ind}super().__init__()"] + [ind + line for line in init_lines]
    body += ["", f"    def forward(self, {', '.join(inputs)}):"] + [ind + line for line in forward_lines]
    body.append(f"{ind}return {', '.join(outputs)}" if len(outputs) > 1 else f"{ind}return {outputs[0]}")
    out.append("\n".join(body))
    out.append("# this module's parameters and buffers -> the tensors' names in the conversion's safetensors file\n"
               "WEIGHTS = {\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in weights.items()) + "}")
    out.append(f'''def load(tensor_file=None, dtype=torch.{graph["dtype"]}) -> Model:
    """The model with the converted weights, in eval mode."""
    path = Path(tensor_file) if tensor_file else Path(__file__).resolve().parent / TENSOR_FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != TENSOR_SHA256:
        raise ValueError(f"{{path}}: not the tensor file this model was written for (SHA-256 {{digest}})")
    tensors = load_file(str(path))
    model = Model().to(dtype)   # the tensors loaded in the model's dtype, not through float32
    state = {{name: tensors[key] for name, key in WEIGHTS.items()}}
    for name, value in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = value
    model.load_state_dict(state, strict=True)
    return model.to(dtype).eval()''')
    return "\n\n\n".join(out) + "\n"
