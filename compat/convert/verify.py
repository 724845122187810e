"""Check a conversion: random inputs through the source framework's numpy reference and the module.

The reference (``reference/``, float64, written from each framework's sources; one module per framework)
is fed the tensors in the source's own layout and names, as the file holds them, and the settings as the
file (or the command line) states them; the module is built from the written files by
:func:`compat.convert.store.load`. So the check covers the gate permutations, transposes, bias splits,
the run-time forget bias, the semantics options and the way each framework returns its outputs, end to
end. The inputs: random sequences, a random initial state, and where the source has them, random lengths
(TF ``sequence_length``, ONNX ``sequence_lens``, zero included where the module takes it) or a random
mask with holes and masked first steps (Keras), and a random static input for a module that takes one
(Caffe's ``x_static``). Each LSTM is run twice: in float64 (the mapping itself;
tolerance 1e-10) and in the file's dtype (the converted module as it will run; float32 1e-5). Reported:
the largest absolute difference over the outputs and the final states.

| source | reference |
| --- | --- |
| TF1 cells, stacks, bidirectional and reverse | ``reference/tf_lstm.py`` (``lstm_cell``, ``dynamic_rnn``, ...) |
| CudnnLSTM opaque buffer | ``reference/onnx_lstm.py`` on the buffer re-read as ONNX tensors (cuDNN's layout) |
| Keras LSTM, CuDNNLSTM, Bidirectional | ``reference/keras_lstm.py`` |
| ONNX LSTM | ``reference/onnx_lstm.py`` with the node's attributes |
| Theano tutorial | ``reference/theano_lstm.py`` |
| Caffe LSTM, junhyukoh Lstm | ``reference/caffe_lstm.py`` |
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from compat import frameworks
from compat.convert.spec import LSTMSpec
from compat.errors import InputError

TOLERANCES = {"float64": 1e-10, "float32": 1e-5}
BATCH, STEPS = 3, 6

Outputs = Tuple[np.ndarray, np.ndarray, np.ndarray]   # (output [T, B, .], h_n [L * D, B, .], c_n)


@dataclass
class Check:
    name: str
    err64: float
    err_native: float
    native: str
    oracle: str

    @property
    def ok(self) -> bool:
        return self.err64 <= TOLERANCES["float64"] and self.err_native <= TOLERANCES.get(self.native, 1e-5)


@dataclass
class Case:
    """One random input: x [T, B, in] time-major, the initial state in torch's layout, lengths or a mask."""

    x: np.ndarray
    h0: np.ndarray            # [L * D, B, P]
    c0: np.ndarray            # [L * D, B, H]
    lengths: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None   # [B, T], 0 at a masked step (Keras)
    x_static: Optional[np.ndarray] = None   # [B, S], a module's static input (its ``static_size``: Caffe's)


def f64(a):
    """``a`` as float64 numpy (None stays None): what the references compute in."""
    return None if a is None else np.asarray(a, dtype=np.float64)


def oracle(spec: LSTMSpec, case: Case) -> Outputs:
    """The source framework's (output [T, B, out], h_n [L * dirs, B, .], c_n) on ``case``: the oracle the
    spec names, from the framework that registered it (compat/frameworks/<framework>/oracle.py)."""
    try:
        fn = frameworks.oracle(spec.oracle)
    except KeyError:
        raise ValueError(f"{spec.name}: no reference for {spec.oracle!r}") from None
    return fn(spec, case)


# ----------------------------------------------------------------------------------------------- inputs
def random_case(spec: LSTMSpec, module: nn.Module, rng: np.random.Generator) -> Case:
    D = 2 if spec.direction == "bidirectional" else 1
    n = spec.num_layers * D
    width = spec.proj_size or spec.hidden_size
    case = Case(x=rng.uniform(-1.5, 1.5, (STEPS, BATCH, spec.input_size)),
                h0=rng.uniform(-0.5, 0.5, (n, BATCH, width)), c0=rng.uniform(-0.5, 0.5, (n, BATCH, spec.hidden_size)))
    if spec.lengths:
        # dynamic_rnn(sequence_length=...) / sequence_lens; a length of 0 only where the module takes one
        lowest = 0 if not isinstance(module, nn.RNNBase) else 1
        case.lengths = np.concatenate([[STEPS], rng.integers(lowest, STEPS + 1, BATCH - 1)])
        if lowest == 0:
            case.lengths[-1] = 0
    if getattr(module, "static_size", 0):
        case.x_static = rng.uniform(-1.5, 1.5, (BATCH, module.static_size))
    if spec.masks:
        mask = (rng.random((BATCH, STEPS)) < 0.7).astype(np.float64)
        mask[0] = 1.0
        mask[1, :2] = 0.0          # masked first steps: where Keras versions differ
        case.mask = mask
    return case


def run_module(module: nn.Module, case: Case, dtype: torch.dtype) -> Outputs:
    """The module's (output [T, B, .], h_n, c_n) on ``case``, in float64 numpy."""
    from compat.convert.modules import KerasLSTM, run_with_lengths
    from compat.lstm import LSTM

    m = module.to(dtype)
    x = torch.from_numpy(case.x).to(dtype)
    if m.batch_first:
        x = x.transpose(0, 1)
    if not isinstance(m, (nn.LSTM, LSTM)):
        return _run_gru_rnn(m, x, case, dtype)
    hx = (torch.from_numpy(case.h0).to(dtype), torch.from_numpy(case.c0).to(dtype))
    with torch.no_grad():
        if isinstance(m, KerasLSTM):
            mask = None if case.mask is None else torch.from_numpy(case.mask).to(dtype)
            y, (h, c) = m(x, hx, mask=mask)
        elif isinstance(m, LSTM):
            y, (h, c) = m(x, hx, lengths=None if case.lengths is None else torch.from_numpy(case.lengths),
                          **_static(case, dtype))
        elif case.lengths is not None:
            y, (h, c) = run_with_lengths(m, x, hx, torch.from_numpy(case.lengths))
        else:
            y, (h, c) = m(x, hx)
    if m.batch_first:
        y = y.transpose(0, 1)
    return y.double().numpy(), h.double().numpy(), c.double().numpy()


NO_CELL = np.zeros(0)   # a GRU's or simple RNN's "c_n": nothing to compare


def _run_gru_rnn(m: nn.Module, x, case: Case, dtype: torch.dtype) -> Outputs:
    """A GRU's or simple RNN's (output [T, B, .], h_n, nothing): h0 is its whole state."""
    from compat.convert.modules import run_with_lengths

    h0 = torch.from_numpy(case.h0).to(dtype)
    with torch.no_grad():
        if case.lengths is not None:
            y, h = run_with_lengths(m, x, h0, torch.from_numpy(case.lengths))
        elif case.mask is not None:
            y, h = m(x, h0, mask=torch.from_numpy(case.mask).to(dtype))
        else:
            y, h = m(x, h0, **_static(case, dtype))
    if m.batch_first:
        y = y.transpose(0, 1)
    return y.double().numpy(), h.double().numpy(), NO_CELL


def _static(case: Case, dtype: torch.dtype) -> dict:
    """``x_static=`` for a module with a static input (none otherwise)."""
    return {} if case.x_static is None else {"x_static": torch.from_numpy(case.x_static).to(dtype)}


def check(spec: LSTMSpec, module: nn.Module, seed: int = 0) -> Check:
    """Max abs error between the reference and ``module`` (float64 and the file's dtype)."""
    native = str(spec.dtype)
    bound = np.finfo(native).max / (spec.input_size + spec.hidden_size + spec.proj_size + 2)
    if any(v.size and float(np.max(np.abs(v))) > bound for v in spec.state_dict().values()):
        raise _overflow(spec, native)
    rng = np.random.default_rng(seed)
    case = random_case(spec, module, rng)
    want = oracle(spec, case)
    native = str(spec.dtype)
    errs = {}
    for label, dtype in (("float64", torch.float64), (native, getattr(torch, native))):
        got = run_module(module, case, dtype)
        if not all(np.isfinite(a).all() for a in (*want, *got)):
            module.to(getattr(torch, native))
            raise _overflow(spec, label)
        errs[label] = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want) if g.size or w.size)
    module.to(getattr(torch, native))
    return Check(spec.name, errs["float64"], errs[native], native, spec.oracle)


class OverflowingWeightsError(InputError, ValueError):
    """Finite weights so large that the LSTM's arithmetic overflows: the source framework would compute
    infinities and NaN from them too, so the file is refused rather than reported as a mismatch."""


def _overflow(spec: LSTMSpec, label: str) -> OverflowingWeightsError:
    name, value = max(((k, float(np.max(np.abs(v)))) for k, v in spec.state_dict().items() if v.size),
                      key=lambda kv: kv[1])
    return OverflowingWeightsError(f"{spec.name}: the weights overflow {label} arithmetic on ordinary inputs "
                                   f"(largest |value| {value:.3g} in {name}); the source framework computes "
                                   "infinities and NaN with them")


def check_all(specs: List[LSTMSpec], modules: Dict[str, nn.Module]) -> List[Check]:
    return [check(s, modules[s.name]) for s in specs]


# ------------------------------------------------------------------------------------------ whole models
def check_model(graph, model: nn.Module, seed: int = 0) -> List[Check]:
    """The whole model against its framework's numpy reference of the whole model, on random inputs: one
    :class:`Check` per output, the largest absolute difference divided by the output's scale (its largest
    absolute value, at least 1), in float64 and in the model's dtype.

    The framework's oracle module (``compat.frameworks.<name>.oracle``) provides ``model_inputs(graph, rng)``
    (inputs the source model takes: token ids within each embedding's vocabulary with id 0 at padded steps,
    sequences with masked steps where the model masks) and ``model_outputs(graph, inputs)`` (the reference's
    outputs, float64, computed from the source's own configuration and weights).
    """
    import importlib

    fw = frameworks.get(graph.framework)
    oracle_module = importlib.import_module(f"{fw.package}.oracle")
    rng = np.random.default_rng(seed)
    inputs = oracle_module.model_inputs(graph, rng)
    want = [np.asarray(w, dtype=np.float64) for w in oracle_module.model_outputs(graph, inputs)]
    native = graph.dtype
    errs: Dict[str, List[float]] = {}
    for label, dtype in (("float64", torch.float64), (native, getattr(torch, native))):
        m = model.to(dtype)
        xs = [torch.from_numpy(x).to(dtype) if x.dtype.kind == "f" else torch.from_numpy(x) for x in inputs]
        m.reset_states()   # stateful layers: each check starts from zeros, as the reference does
        with torch.no_grad():
            got = m(*xs)
        got = [got] if isinstance(got, torch.Tensor) else list(got)
        if len(got) != len(want):
            raise AssertionError(f"the model returns {len(got)} outputs; the reference {len(want)}")
        errs[label] = []
        for g, w in zip(got, want):
            g = g.detach().double().numpy()
            if g.shape != w.shape:
                errs[label].append(float("inf"))
                continue
            scale = max(1.0, float(np.max(np.abs(w[np.isfinite(w)]), initial=0.0)))
            same_nan = np.array_equal(np.isnan(g), np.isnan(w))
            diff = np.abs(np.where(np.isfinite(w), g - w, 0.0))
            errs[label].append(float(np.max(diff, initial=0.0)) / scale if same_nan else float("inf"))
    model.to(getattr(torch, native))
    model.reset_states()
    names = [f"{n}[{k}]" for n, k in graph.outputs]
    return [Check(f"model output {i} ({names[i]})", errs["float64"][i], errs[native][i], native,
                  f"{graph.framework}_model") for i in range(len(want))]
