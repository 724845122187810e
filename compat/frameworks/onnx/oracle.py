"""The converter's verification of ONNX LSTM, GRU and RNN nodes against reference/onnx_lstm.py and onnx_rnn.py."""
from __future__ import annotations

from compat.convert.spec import LSTMSpec
from compat.convert.verify import Case, Outputs, f64 as _f64


def _onnx(spec: LSTMSpec, case: Case) -> Outputs:
    from reference import onnx_lstm

    attrs = dict(spec.semantics)
    t = {k: _f64(v) for k, v in spec.source[0][0].items()}
    layout = int(attrs.pop("layout", 0))
    X, h0, c0 = case.x, case.h0, case.c0
    if layout:
        X, h0, c0 = X.transpose(1, 0, 2), h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)
    Y, Y_h, Y_c = onnx_lstm.lstm(X, t["W"], t["R"], t.get("B"), case.lengths, h0, c0, t.get("P"),
                                 activations=attrs.get("activations"), activation_alpha=attrs.get("activation_alpha", ()),
                                 activation_beta=attrs.get("activation_beta", ()), clip=attrs.get("clip"),
                                 input_forget=int(attrs.get("input_forget", 0)),
                                 direction=attrs.get("direction", "forward"), layout=layout)
    if layout:   # Y [B, T, D, H], Y_h [B, D, H]
        Y, Y_h, Y_c = Y.transpose(1, 2, 0, 3), Y_h.transpose(1, 0, 2), Y_c.transpose(1, 0, 2)
    T, D, B, H = Y.shape
    return Y.transpose(0, 2, 1, 3).reshape(T, B, D * H), Y_h, Y_c


def _onnx_rnn(spec: LSTMSpec, case: Case) -> Outputs:
    """An ONNX GRU or RNN node by reference/onnx_rnn.py with the node's attributes."""
    from compat.convert.verify import NO_CELL
    from reference import onnx_rnn

    attrs = dict(spec.semantics)
    op = attrs.pop("op")
    t = {k: _f64(v) for k, v in spec.source[0][0].items()}
    layout = int(attrs.pop("layout", 0))
    X, h0 = case.x, case.h0
    if layout:
        X, h0 = X.transpose(1, 0, 2), h0.transpose(1, 0, 2)
    extra = {"linear_before_reset": int(attrs.get("linear_before_reset", 0))} if op == "GRU" else {}
    Y, Y_h = (onnx_rnn.gru if op == "GRU" else onnx_rnn.rnn)(
        X, t["W"], t["R"], t.get("B"), case.lengths, h0, activations=attrs.get("activations"),
        activation_alpha=attrs.get("activation_alpha", ()) or (), activation_beta=attrs.get("activation_beta", ()) or (),
        clip=attrs.get("clip"), direction=attrs.get("direction", "forward"), layout=layout, **extra)
    if layout:   # Y [B, T, D, H], Y_h [B, D, H]
        Y, Y_h = Y.transpose(1, 2, 0, 3), Y_h.transpose(1, 0, 2)
    T, D, B, H = Y.shape
    return Y.transpose(0, 2, 1, 3).reshape(T, B, D * H), Y_h, NO_CELL


ORACLES = {"onnx": _onnx, "onnx_rnn": _onnx_rnn}
# ------------------------------------------------------------------------------------------ whole models
OPEN = 4   # every size an input leaves open: ONNX names no batch or time axis, so one size fits either


# operators whose output 0 holds values of one of their inputs (that input's slot): the lengths PyTorch's
# exporter hands to a recurrent node's sequence_lens pass through Casts (torch.nn.utils.rnn.pack_padded_sequence),
# and with enforce_sorted=False through TopK's sorted values
PASS_THROUGH = {"Cast": 0, "Identity": 0, "TopK": 0, "Gather": 0, "Reshape": 0, "Squeeze": 0, "Unsqueeze": 0}


def model_inputs(graph, rng):
    """Random inputs the model takes: every open size :data:`OPEN`; token ids within the vocabulary of each
    ``Gather`` table an input indexes; where an input is a recurrent node's ``sequence_lens`` (directly or
    through :data:`PASS_THROUGH` nodes' values), lengths from 0 to the shortest leading size of the other inputs (one
    full, one empty when the batch allows); normal floats elsewhere."""
    shapes = [[OPEN if d is None else d for d in inp.shape] for inp in graph.inputs]
    source = {}        # (node, 0) of a pass-through node -> the reference whose values it passes on
    for n in graph.nodes:
        slots = [j for j, s in enumerate(n.config["inputs"]) if s == "x"]
        if n.kind in PASS_THROUGH and len(n.args) == 1 and PASS_THROUGH[n.kind] in slots:
            source[(n.name, 0)] = tuple(n.args[0][slots.index(PASS_THROUGH[n.kind])])

    def origin(ref):
        ref, seen = tuple(ref), set()
        while ref in source and ref not in seen:
            seen.add(ref)
            ref = source[ref]
        return ref[0]

    roles = []
    for inp in graph.inputs:
        vocab, lengths = None, False
        for n in graph.nodes:
            slots = [j for j, s in enumerate(n.config["inputs"]) if s == "x"]
            for arg in n.args:
                for k, ref in enumerate(arg):
                    if k >= len(slots):
                        continue
                    if n.kind in ("LSTM", "GRU", "RNN") and slots[k] == 4 and origin(ref) == inp.name:
                        lengths = True
                    if ref[0] != inp.name:
                        continue
                    if n.kind == "Gather" and slots[k] == 1 and isinstance(n.config["inputs"][0], dict):
                        rows = n.config["inputs"][0]["shape"][n.config["attributes"].get("axis", 0)]
                        vocab = rows if vocab is None else min(vocab, rows)
        roles.append((vocab, lengths))
    steps = min([d for s, (_, lengths) in zip(shapes, roles) if not lengths for d in s[:2]] or [OPEN])
    out = []
    for inp, shape, (vocab, lengths) in zip(graph.inputs, shapes, roles):
        if lengths:
            x = rng.integers(1, steps + 1, shape)
            x.reshape(-1)[0] = steps
            if x.size > 2:
                x.reshape(-1)[-1] = 0
            out.append(x.astype(inp.dtype))
        elif inp.dtype.startswith("int"):
            out.append(rng.integers(0, max(vocab or 10, 1), shape).astype(inp.dtype))
        elif inp.dtype == "bool":
            out.append(rng.random(shape) < 0.5)
        else:
            out.append(rng.standard_normal(shape).astype(inp.dtype))
    return out


def model_outputs(graph, inputs):
    """The model's outputs from onnx's own numpy reference evaluator (``onnx.reference``), every LSTM node run
    by reference/onnx_lstm.py, every GRU and RNN node by reference/onnx_rnn.py, in float64 (the model's
    floating-point constants, inputs and casts widened)."""
    from compat.frameworks.onnx.model import OnnxModelError
    from reference import onnx_model

    try:
        return onnx_model.run(graph.source["proto"], inputs)
    except Exception as e:  # noqa: BLE001 - onnx.reference raises whatever its operators raise
        raise OnnxModelError(f"the reference model (reference/onnx_model.py) cannot run the graph on inputs of its "
                             f"declared shapes ({type(e).__name__}: {str(e)[:300]}); --model layers converts its "
                             "recurrent layers alone") from None
