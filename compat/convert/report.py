"""The table the command prints and the Markdown report it writes."""
from __future__ import annotations

from typing import List, Optional, Sequence

from compat.convert.spec import LSTMSpec
from compat.convert.verify import TOLERANCES, Check

COLUMNS = ("LSTM", "variant", "in", "hidden", "proj", "layers", "direction", "module", "not in the file")


def _row(spec: LSTMSpec) -> List[str]:
    unknown = ", ".join(f"{u.what}={u.value}" + (" (defaulted!)" if u.loud else "") for u in spec.unknowns) or "-"
    return [spec.name, spec.variant, str(spec.input_size), str(spec.hidden_size), str(spec.proj_size or "-"),
            str(spec.num_layers), spec.direction, spec.module_kind, unknown]


def table(specs: Sequence[LSTMSpec]) -> str:
    """A plain-text table, one row per LSTM."""
    rows = [list(COLUMNS)] + [_row(s) for s in specs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def warnings(specs: Sequence[LSTMSpec]) -> List[str]:
    """One line per loudly defaulted setting."""
    return [f"warning: {s.name}: {u.what} is not stored in the file; assumed {u.value} ({u.assumed})"
            for s in specs for u in s.unknowns if u.loud]


# The numpy reference each oracle of compat.convert.verify runs.
REFERENCES = {"tf": "reference/tf_lstm.py", "keras": "reference/keras_lstm.py", "onnx": "reference/onnx_lstm.py",
              "cudnn": "reference/onnx_lstm.py", "theano": "reference/theano_lstm.py",
              "caffe": "reference/caffe_lstm.py", "junhyukoh": "reference/caffe_lstm.py"}


def checks_table(checks: Sequence[Check]) -> str:
    lines = []
    for c in checks:
        verdict = "ok" if c.ok else "FAILED"
        lines.append(f"verify {c.name}: {REFERENCES.get(c.oracle, c.oracle)} vs module: max abs error "
                     f"{c.err64:.2e} (float64), {c.err_native:.2e} ({c.native}) {verdict}")
    return "\n".join(lines)


def markdown(source, out, specs: Sequence[LSTMSpec], checks: Optional[Sequence[Check]]) -> str:
    """The report: what was found, how it runs in PyTorch, what the file could not say, the check."""
    by_name = {c.name: c for c in checks or []}
    parts = [f"# Conversion of `{source}`", "", f"Configuration: `{out}`, with the weights in PyTorch's layout in the "
             "safetensors file it names; `compat.convert.load(path)` returns one module per LSTM.", "",
             "| " + " | ".join(COLUMNS) + " | max abs error float64 | max abs error native |",
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
                     + (f" because torch.nn.LSTM cannot compute {', '.join(s.torch_exact_reasons())}"
                        if s.torch_exact_reasons() else " (the semantics are exactly torch.nn.LSTM's)"))
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
    return "\n".join(parts)
