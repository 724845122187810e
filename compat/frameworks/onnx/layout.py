"""The ``onnx`` layout: ONNX LSTM node tensors and attributes (see compat/layouts.py)."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from compat.layouts import (CANONICAL_ORDER, Attributes, Layout, LayoutError, check_shape,
                            clip_value, concat, no_extras, no_run_time_forget_bias, permute_gates, register, zeros_rows)
from compat.lstm import LayerWeights
from compat.lstm_activations import ActivationError, activation
import numpy as np
import torch


# --- ONNX LSTM (onnx/docs/Operators.md LSTM: W[iofc], R[iofc], B = [Wb[iofc], Rb[iofc]], P[iof]; one direction)
def _onnx_to(p, forget_bias):
    W, R = p["W"], p["R"]
    if len(R.shape) != 3 or R.shape[0] != 1 or R.shape[1] != 4 * R.shape[2]:
        raise LayoutError(f"onnx tensor 'R' has shape {list(R.shape)}; expected [1, 4H, H] (one direction; "
                          "split [num_directions, ...] tensors with compat.layouts.onnx_directions)")
    hidden = R.shape[2]
    if len(W.shape) != 3 or W.shape[0] != 1 or W.shape[1] != 4 * hidden:
        raise LayoutError(f"onnx tensor 'W' has shape {list(W.shape)}; expected [1, 4H={4 * hidden}, in]")
    no_run_time_forget_bias("onnx", forget_bias)
    B, P = p.get("B"), p.get("P")
    w_ih = permute_gates(W[0], "iofc", CANONICAL_ORDER)
    w_hh = permute_gates(R[0], "iofc", CANONICAL_ORDER)
    b_ih = b_hh = peephole = None
    if B is not None:
        check_shape("B", "onnx", B, (1, 8 * hidden))
        b_ih = permute_gates(B[0, :4 * hidden], "iofc", CANONICAL_ORDER)
        b_hh = permute_gates(B[0, 4 * hidden:], "iofc", CANONICAL_ORDER)
    if P is not None:
        check_shape("P", "onnx", P, (1, 3 * hidden))
        peephole = permute_gates(P[0], "iof", "ifo").reshape(3, hidden)
    return LayerWeights(w_ih, w_hh, b_ih, b_hh, None, peephole)


def _onnx_from(w, forget_bias):
    no_extras(w, "onnx", allowed=("peephole",))
    no_run_time_forget_bias("onnx", forget_bias)
    hidden = w.hidden_size
    b_ih = w.bias_ih if w.bias_ih is not None else zeros_rows(w.weight_hh, 4 * hidden)
    b_hh = w.bias_hh if w.bias_hh is not None else zeros_rows(w.weight_hh, 4 * hidden)
    out = {"W": permute_gates(w.weight_ih, CANONICAL_ORDER, "iofc")[None],
           "R": permute_gates(w.weight_hh, CANONICAL_ORDER, "iofc")[None],
           "B": concat(permute_gates(b_ih, CANONICAL_ORDER, "iofc"), permute_gates(b_hh, CANONICAL_ORDER, "iofc"), 0)[None]}
    if w.peephole is not None:
        out["P"] = permute_gates(w.peephole.reshape(3 * hidden), "ifo", "iof")[None]
    return out


# onnxruntime rnn_helpers.cc NameToArgUsageMap / NameToArgDefaultsMap: which functions consume an alpha
# and a beta from the node's lists, and the value used once a list runs out.
_ONNX_PARAMS = {"Affine": (True, True), "Relu": (False, False), "LeakyRelu": (True, False),
                "ThresholdedRelu": (True, False), "Tanh": (False, False), "ScaledTanh": (True, True),
                "Sigmoid": (False, False), "HardSigmoid": (True, True), "Elu": (True, False),
                "Softsign": (False, False), "Softplus": (False, False)}
_ONNX_DEFAULTS = {"LeakyRelu": (0.01, 0.0), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, 0.0)}


def onnx_activations(activations: Optional[Sequence[str]], activation_alpha: Sequence[float] = (),
                     activation_beta: Sequence[float] = (), num_directions: int = 1,
                     defaults: Tuple[str, ...] = ("Sigmoid", "Tanh", "Tanh")) -> List[tuple]:
    """Per direction an ``activations`` triple for :func:`compat.lstm.lstm` from an ONNX LSTM node's
    ``activations``, ``activation_alpha`` and ``activation_beta`` attributes.

    Alphas and betas are consumed in order by the functions that take them; once a list runs out a
    function gets onnxruntime's default (LeakyRelu 0.01, HardSigmoid 0.2 / 0.5, Elu 1.0, else 0.0:
    onnxruntime ``rnn_helpers.cc``; the operator text says "the same as of corresponding ONNX operators",
    which differs for ThresholdedRelu, Affine and ScaledTanh; onnxruntime's are what ONNX files run with,
    checked against onnxruntime by tests/golden/convert/onnx ``activation_defaults``).
    Names match case-insensitively, as in onnxruntime. ``defaults``: the operator's list for one direction
    (the LSTM's f, g, h; the GRU's f, g; the RNN's f), whose length is how many each direction takes.
    """
    n = len(defaults)
    if activations is None:
        if activation_alpha or activation_beta:
            raise LayoutError("onnx activation_alpha / activation_beta given without activations")
        return [tuple(defaults)] * num_directions
    names = [a.decode() if isinstance(a, bytes) else str(a) for a in activations]
    if len(names) != n * num_directions:
        raise LayoutError(f"onnx attribute activations has {len(names)} entries; expected {n * num_directions} "
                          f"({n} per direction)")
    by_lower = {k.lower(): k for k in _ONNX_PARAMS}
    alphas, betas = [float(a) for a in activation_alpha], [float(b) for b in activation_beta]
    specs = []
    for name in names:
        key = by_lower.get(name.lower())
        if key is None:
            raise LayoutError(f"onnx activation {name!r} is not in the operator's list {list(_ONNX_PARAMS)}")
        takes_a, takes_b = _ONNX_PARAMS[key]
        da, db = _ONNX_DEFAULTS.get(key, (0.0, 0.0))
        args = []
        if takes_a:
            args.append(alphas.pop(0) if alphas else da)
        if takes_b:
            args.append(betas.pop(0) if betas else db)
        specs.append((key, *args) if args else key)
    if alphas or betas:
        raise LayoutError(f"onnx activation_alpha / activation_beta have values no activation takes "
                          f"(left over: alpha {alphas}, beta {betas})")
    return [tuple(specs[n * d:n * d + n]) for d in range(num_directions)]


def onnx_directions(params: Mapping[str, object]) -> List[Dict[str, object]]:
    """Split ONNX LSTM tensors with a leading num_directions axis into one single-direction dict per
    direction (each tensor keeps a leading axis of 1), for :func:`to_canonical`."""
    W = params.get("W")
    if W is None or len(W.shape) != 3:
        raise LayoutError(f"onnx tensor 'W' has shape {None if W is None else list(W.shape)}; "
                          "expected [num_directions, 4H, in]")
    D = W.shape[0]
    out = []
    for d in range(D):
        part = {}
        for name, t in params.items():
            if t is None:
                continue
            if len(t.shape) < 1 or t.shape[0] != D:
                raise LayoutError(f"onnx tensor {name!r} has shape {list(t.shape)}; its leading axis must be "
                                  f"num_directions = {D} as W's")
            part[name] = t[d:d + 1]
        out.append(part)
    return out


def onnx_stack_directions(parts: Sequence[Mapping[str, object]]) -> Dict[str, object]:
    """The inverse of :func:`onnx_directions`: single-direction tensors concatenated on the leading axis."""
    names = list(parts[0])
    if any(list(p) != names for p in parts):
        raise LayoutError("onnx directions carry different tensors: " + ", ".join(str(sorted(p)) for p in parts))
    out = {}
    for name in names:
        tensors = [p[name] for p in parts]
        out[name] = torch.cat(tensors, 0) if isinstance(tensors[0], torch.Tensor) else np.concatenate(tensors, 0)
    return out


def _onnx_attributes(layout, p, attrs: Attributes, forget_bias):
    if forget_bias:
        no_run_time_forget_bias("onnx", forget_bias)
    direction = attrs.take("direction", "forward")
    if isinstance(direction, bytes):
        direction = direction.decode()
    if direction not in ("forward", "reverse", "bidirectional"):
        raise LayoutError(f"onnx attribute direction={direction!r}: forward, reverse or bidirectional")
    D = 2 if direction == "bidirectional" else 1
    parts = onnx_directions(p)
    if len(parts) != D:
        raise LayoutError(f"onnx attribute direction={direction!r} needs num_directions = {D}; the tensors have "
                          f"{len(parts)}")
    dirs = [_onnx_to(part, 0.0) for part in parts]
    attrs.expect("hidden_size", dirs[0].hidden_size, "H")
    options: dict = {}
    if direction != "forward":
        options["direction"] = direction
    clip = clip_value(attrs, "clip")
    if clip is not None:
        options["preact_clip"] = clip
    input_forget = attrs.take("input_forget", 0)
    if input_forget not in (0, 1, False, True):
        raise LayoutError(f"onnx attribute input_forget={input_forget!r}: 0 or 1")
    if input_forget:
        options["input_forget"] = True
    triples = onnx_activations(attrs.take("activations"), attrs.take("activation_alpha", ()) or (),
                               attrs.take("activation_beta", ()) or (), D)
    if len(set(triples)) != 1:
        raise LayoutError(f"onnx activations differ between the directions ({triples}); the core runs one set for "
                          "both")
    if triples[0] != ("Sigmoid", "Tanh", "Tanh"):
        try:
            for spec in triples[0]:
                activation(spec)
        except ActivationError as e:
            raise LayoutError(f"onnx activations {triples[0]}: {e}") from None
        options["activations"] = triples[0]
    layout_attr = attrs.take("layout", 0)
    if layout_attr not in (0, 1):
        raise LayoutError(f"onnx attribute layout={layout_attr!r}: 0 or 1")
    if layout_attr == 1:
        options["batch_first"] = True  # X [B, T, in]; the operator's Y is [B, T, D, H], lstm()'s [B, T, D * H]
    weights = dirs[0] if D == 1 else (dirs[0], dirs[1])
    return weights, options


register(Layout("onnx", "iofc", ("W", "R"), "onnx/docs/Operators.md LSTM", _onnx_to, _onnx_from, ("B", "P"),
                _onnx_attributes))
