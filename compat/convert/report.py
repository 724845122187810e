"""The table the command prints and the Markdown report it writes."""
from __future__ import annotations

from typing import List, Optional, Sequence

from compat import frameworks
from compat.convert.spec import TORCH_MODULES, LSTMSpec, SourceItem
from compat.convert.verify import TOLERANCES, Check

COLUMNS = ("LSTM", "variant", "in", "hidden", "proj", "layers", "direction", "module", "not in the file")


def _row(spec: LSTMSpec) -> List[str]:
    unknown = ", ".join(f"{u.what}={u.value}" + (" (defaulted!)" if u.loud else "") for u in spec.unknowns) or "-"
    return [spec.name, spec.variant, str(spec.input_size), str(spec.hidden_size), str(spec.proj_size or "-"),
            str(spec.num_layers), spec.direction, spec.module_kind, unknown]


def _text_table(columns: Sequence[str], rows: List[List[str]]) -> str:
    rows = [list(columns)] + rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _columns(specs: Sequence[LSTMSpec]) -> Sequence[str]:
    """The table's columns: the first is "LSTM" when every layer is one, else "layer" (GRUs, simple RNNs)."""
    return COLUMNS if all(s.cell == "lstm" for s in specs) else ("layer",) + COLUMNS[1:]


def table(specs: Sequence[LSTMSpec]) -> str:
    """A plain-text table, one row per recurrent layer."""
    return _text_table(_columns(specs), [_row(s) for s in specs])


ITEM_COLUMNS = ("in the source", "what", "shape", "became")


def _shapes(item: SourceItem) -> str:
    if len(item.shapes) == 1:
        return "x".join(map(str, next(iter(item.shapes.values())))) or "scalar"
    return f"{len(item.shapes)} tensors" if item.shapes else "-"


def _became(item: SourceItem) -> str:
    if item.converted is not None:
        return f"converted: {item.converted.name} ({item.converted.module_kind})"
    text = f"not converted: {item.reason}"
    if item.tensors:
        text += "; carried"
    if item.not_carried:
        text += "; not carried: " + ", ".join(sorted(set(item.not_carried.values())))
    return text


def items_table(items: Sequence[SourceItem]) -> str:
    """A plain-text table, one row per tensor or layer of the source and what became of it."""
    recurrent_missing = [i for i in items if i.recurrent and i.converted is None]
    head = f"Everything in the source ({len(items)} items"
    head += f"; {len(recurrent_missing)} recurrent not converted)" if recurrent_missing else ")"
    rows = [[i.name + (" [recurrent]" if i.recurrent and i.converted is None else ""), i.kind, _shapes(i), _became(i)]
            for i in items]
    return head + "\n" + _text_table(ITEM_COLUMNS, rows)


def warnings(specs: Sequence[LSTMSpec], items: Sequence[SourceItem] = ()) -> List[str]:
    """One line per loudly defaulted setting, and one per recurrent layer not converted."""
    lines = [f"warning: {s.name}: {u.what} is not stored in the file; assumed {u.value} ({u.assumed})"
             for s in specs for u in s.unknowns if u.loud]
    lines += [f"warning: {i.name}: a recurrent layer not converted ({i.reason}); carried under its source names"
              for i in items if i.recurrent and i.converted is None]
    return lines


def checks_table(checks: Sequence[Check]) -> str:
    lines = []
    for c in checks:
        verdict = "ok" if c.ok else "FAILED"
        lines.append(f"verify {c.name}: {frameworks.reference_file(c.oracle)} vs module: max abs error "
                     f"{c.err64:.2e} (float64), {c.err_native:.2e} ({c.native}) {verdict}")
    return "\n".join(lines)


MODEL_COLUMNS = ("layer", "kind", "reads", "module")


def model_table(graph) -> str:
    """A plain-text table of the whole model: one row per node (layer or operation on masks) in running order."""
    from compat.frameworks import layer_kinds

    kinds = layer_kinds(graph.framework)
    rows = []
    for n in graph.nodes:
        reads = ", ".join(f"{r[0]}[{r[1]}]" if isinstance(r, (list, tuple)) and len(r) == 2 and isinstance(r[0], str)
                          else "[" + ", ".join(f"{x[0]}[{x[1]}]" for x in r) + "]" for r in n.args)
        reads += "".join(f", {k}={v[0]}[{v[1]}]" if isinstance(v[0], str) else f", {k}=[{len(v)} tensors]"
                         for k, v in n.kwargs.items())
        try:
            module = type(kinds[n.kind].build(n.config, None)).__module__ + "." + \
                type(kinds[n.kind].build(n.config, None)).__qualname__
        except Exception:  # noqa: BLE001 - a row of the table only
            module = "?"
        if getattr(n, "shares", None):
            module = f"(the module of {n.shares}, called again)"
        elif n.recurrent:
            module = f"(the converted {n.recurrent})"
        rows.append([n.name, n.kind, reads, module])
    inputs = ", ".join(f"{i.name} {i.dtype} {list(i.shape)}" for i in graph.inputs)
    outputs = ", ".join(f"{n}[{k}]" for n, k in graph.outputs)
    head = f"The whole model ({len(graph.nodes)} nodes; inputs {inputs}; outputs {outputs})"
    return head + "\n" + _text_table(MODEL_COLUMNS, rows)


def markdown(source, out, specs: Sequence[LSTMSpec], checks: Optional[Sequence[Check]],
             items: Sequence[SourceItem] = (), graph=None, refused: Optional[str] = None) -> str:
    """The report: what was found, how it runs in PyTorch, what the file could not say, the check."""
    by_name = {c.name: c for c in checks or []}
    parts = [f"# Conversion of `{source}`", "", f"Configuration: `{out}`, with the weights in PyTorch's layout in the "
             "safetensors file it names; `compat.convert.load(path)` returns one module per LSTM.", "",
             "| " + " | ".join(_columns(specs)) + " | max abs error float64 | max abs error native |",
             "|" + " --- |" * (len(COLUMNS) + 2)]
    for s in specs:
        c = by_name.get(s.name)
        errs = [f"{c.err64:.2e}", f"{c.err_native:.2e} ({c.native})"] if c else ["not checked", "not checked"]
        parts.append("| " + " | ".join(x.replace("|", "\\|") for x in _row(s) + errs) + " |")
    parts += ["", f"Tolerances: float64 {TOLERANCES['float64']:g}, float32 {TOLERANCES['float32']:g} (max abs error "
              "over the outputs and the final h and c on random inputs, initial states, lengths and masks, against "
              "the source framework's numpy reference in `reference/`, fed the tensors as the file holds them).", ""]
    for s in specs:
        parts.append(f"## {s.name}")
        parts.append("")
        parts.append(f"- variant: {s.variant}; module: `{s.module_kind}`"
                     + (f" because {TORCH_MODULES[s.cell]} cannot compute {', '.join(s.torch_exact_reasons())}"
                        if s.torch_exact_reasons() else f" (the semantics are exactly {TORCH_MODULES[s.cell]}'s)"))
        if s.module_options():
            parts.append(f"- options: `{s.module_options()}`")
        if s.keras is not None:
            parts.append(f"- Keras outputs: go_backwards={s.keras.go_backwards}, masked steps output "
                         f"{s.keras.masked_output}, merge_mode={s.keras.merge_mode!r}")
        for u in s.unknowns:
            parts.append(f"- not in the file: **{u.what}** = {u.value}: {u.assumed}" + (" (**defaulted: check it**)" if u.loud else ""))
        for n in s.notes:
            parts.append(f"- {n}")
        parts.append("")
    if graph is not None:
        parts += ["## The whole model", "", "`compat.convert.load(path)` returns it as one module: `model(*inputs)` "
                  "takes the inputs in the source model's order and returns its outputs in its order; each layer is "
                  "`model.get_submodule(name)`.", "", "```text", model_table(graph), "```", ""]
        parts += [f"- {n}" for n in graph.notes] + [""]
    elif refused:
        parts += ["## The whole model", "", f"Not converted: {refused}. "
                  + ("The recurrent layers are converted alone." if specs else "No recurrent layer is converted."), ""]
    if items:
        parts += ["## Everything in the source", "",
                  "Every tensor or layer of the source file and what became of it; the tensors not converted are in "
                  "the safetensors file under their source names (`compat.convert.load_carried(path)`).", "",
                  "| " + " | ".join(ITEM_COLUMNS) + " | recurrent |", "|" + " --- |" * (len(ITEM_COLUMNS) + 1)]
        for i in items:
            cells = [i.name, i.kind, _shapes(i), _became(i), "yes" if i.recurrent else ""]
            parts.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        parts.append("")
    return "\n".join(parts)
