"""The GRU and the simple RNN through the core (compat.gru, compat.simple_rnn) against the ONNX oracle
(reference.onnx_rnn: GRU with linear_before_reset 0 and 1, RNN, every attribute), against torch.nn.GRU /
torch.nn.RNN where the semantics are PyTorch's, and every kernel the selection allows against the step
loop, forward and gradients."""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from compat.gru import GRU, gru
from compat.gru import which_kernel as gru_kernel
from compat.recurrent import KERNELS, Cell, CellError, KernelError
from compat.recurrent.call import ShapeError
from compat.simple_rnn import RNN, simple_rnn
from compat.simple_rnn import which_kernel as rnn_kernel
from reference import onnx_rnn
from tests.tolerances import assert_close

quiet = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ONNX activations (name, alpha, beta) in the core's spelling: every entry of the operators' list, with the
# parameters given explicitly (onnxruntime's defaults differ from the specification's for some of them).
ONNX_GATES = [("Sigmoid",), ("HardSigmoid", 0.3, 0.45), ("Softsign",), ("Tanh",), ("ScaledTanh", 0.8, 1.3)]
ONNX_ACTIVATIONS = ONNX_GATES + [("Relu",), ("Affine", 0.7, 0.1), ("LeakyRelu", 0.05), ("ThresholdedRelu", 0.4),
                                 ("Elu", 0.9), ("Softplus",)]
FUSED_FORMS = ("fused", "packed", "segments")


class Problem(NamedTuple):
    family: str            # "gru" or "rnn"
    x: np.ndarray          # [T, B, in]
    layers: list           # per layer, per direction: canonical (w_ih, w_hh, b_ih, b_hh) numpy, rows r|z|n
    h0: Optional[np.ndarray]  # [L * D, B, H] or None
    direction: str
    lengths: Optional[np.ndarray]
    activations: tuple     # the core's spelling
    clip: Optional[float]
    reset_after: bool

    @property
    def D(self) -> int:
        return 2 if self.direction == "bidirectional" else 1


@st.composite
def problems(draw, family: str, plain: bool = False, max_layers: int = 3, lengths: bool = True,
             direction: Optional[str] = None) -> Problem:
    """A random GRU or simple RNN problem. ``plain``: PyTorch's semantics (reset after, sigmoid/tanh or
    tanh/relu, no clip)."""
    T, B = draw(st.integers(1, 8), label="T"), draw(st.integers(1, 5), label="B")
    n_in, H = draw(st.integers(1, 6), label="in"), draw(st.integers(1, 6), label="H")
    L = draw(st.integers(1, max_layers), label="layers")
    direction = direction or draw(st.sampled_from(["forward", "reverse", "bidirectional"]), label="direction")
    D = 2 if direction == "bidirectional" else 1
    G = 3 if family == "gru" else 1
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    scale = draw(st.sampled_from([0.3, 1.0, 2.0]), label="scale")
    biases = draw(st.sampled_from(["two", "one", "none"]), label="biases")
    layers = []
    for layer in range(L):
        fan_in = n_in if layer == 0 else D * H
        dirs = []
        for _ in range(D):
            dirs.append((rng.uniform(-scale, scale, (G * H, fan_in)), rng.uniform(-scale, scale, (G * H, H)),
                         rng.uniform(-scale, scale, G * H) if biases != "none" else None,
                         rng.uniform(-scale, scale, G * H) if biases == "two" else None))
        layers.append(dirs)
    x = rng.uniform(-1, 1, (T, B, n_in))
    h0 = rng.uniform(-1, 1, (L * D, B, H)) if draw(st.booleans(), label="initial state") else None
    lens = None
    if lengths and draw(st.booleans(), label="lengths"):
        lens = np.asarray(draw(st.lists(st.integers(0, T), min_size=B, max_size=B), label="lengths"))
    if plain:
        activations = ("sigmoid", "tanh") if family == "gru" else (draw(st.sampled_from(["tanh", "relu"])),)
        clip, reset_after = None, True
    else:
        if family == "gru":
            activations = (draw(st.sampled_from(ONNX_GATES)), draw(st.sampled_from(ONNX_ACTIVATIONS)))
            reset_after = draw(st.booleans(), label="reset_after")
        else:
            activations = (draw(st.sampled_from(ONNX_ACTIVATIONS)),)
            reset_after = True
        clip = draw(st.sampled_from([None, None, 0.5, 3.0]), label="clip")
    activations = tuple(a[0] if len(a) == 1 else a for a in activations)
    note(f"{family} T={T} B={B} in={n_in} H={H} L={L} {direction} lengths={lens} {activations} clip={clip} "
         f"reset_after={reset_after} biases={biases} h0={'yes' if h0 is not None else 'zeros'}")
    return Problem(family, x, layers, h0, direction, lens, activations, clip, reset_after)


# ------------------------------------------------------------------------------------------------ helpers
def rounded(p: Problem, dtype) -> Problem:
    """The problem's arrays rounded to ``dtype`` (the numbers the core sees), for the float64 oracle."""
    if dtype == torch.float64:
        return p

    def r(a):
        return None if a is None else a.astype(np.float32).astype(np.float64)
    layers = [[tuple(r(a) for a in w) for w in dirs] for dirs in p.layers]
    return p._replace(x=r(p.x), h0=r(p.h0), layers=layers)


def tensors(p: Problem, dtype, requires_grad=False):
    def t(a):
        return None if a is None else torch.tensor(a, dtype=dtype, requires_grad=requires_grad)
    layers = [tuple(tuple(t(a) for a in w) for w in dirs) for dirs in p.layers]
    weights = [dirs[0] if p.D == 1 else dirs for dirs in layers]
    return t(p.x), weights, t(p.h0)


def run_core(p: Problem, x, weights, h0, kernel=None, gate_order=None, **kw):
    if p.family == "gru":
        return gru(x, weights, h0, reset_after=p.reset_after, activations=p.activations, clip=p.clip,
                   direction=p.direction, lengths=None if p.lengths is None else torch.tensor(p.lengths),
                   kernel=kernel, gate_order=gate_order or "rzn", **kw)
    return simple_rnn(x, weights, h0, activation=p.activations[0], clip=p.clip, direction=p.direction,
                      lengths=None if p.lengths is None else torch.tensor(p.lengths), kernel=kernel, **kw)


def onnx_spelling(activations):
    names, alphas, betas = [], [], []
    for a in activations:
        name, *params = (a,) if isinstance(a, str) else a
        names.append(name[0].upper() + name[1:] if name in ("sigmoid", "tanh", "relu") else name)
        if params:
            alphas.append(params[0])
        if len(params) > 1:
            betas.append(params[1])
    return names, alphas, betas


def zrn(a: Optional[np.ndarray], H: int) -> Optional[np.ndarray]:
    """Canonical r | z | n rows as ONNX's z | r | h."""
    return None if a is None else np.concatenate([a[H:2 * H], a[:H], a[2 * H:]])


def oracle(p: Problem):
    """The stack by the ONNX oracle, one operator per layer (Y's directions concatenated as the next input).
    Returns (output [T, B, D*H], h_n [L*D, B, H])."""
    H = p.layers[0][0][1].shape[1]
    names, alphas, betas = onnx_spelling(p.activations)
    inp, finals = p.x, []
    for layer, dirs in enumerate(p.layers):
        def stack(k):
            return np.stack([w[k] if w[k] is not None else np.zeros(w[1].shape[0]) for w in dirs])
        W, R = stack(0), stack(1)
        B = np.concatenate([stack(2), stack(3)], axis=1)
        h0 = None if p.h0 is None else p.h0[layer * p.D:(layer + 1) * p.D]
        kw = dict(activations=names * p.D, activation_alpha=alphas * p.D, activation_beta=betas * p.D, clip=p.clip,
                  direction=p.direction)
        if p.family == "gru":
            Wz = np.stack([zrn(w, H) for w in W])
            Rz = np.stack([zrn(r, H) for r in R])
            Bz = np.stack([np.concatenate([zrn(b[:3 * H], H), zrn(b[3 * H:], H)]) for b in B])
            Y, Y_h = onnx_rnn.gru(inp, Wz, Rz, Bz, p.lengths, h0, linear_before_reset=int(p.reset_after), **kw)
        else:
            Y, Y_h = onnx_rnn.rnn(inp, W, R, B, p.lengths, h0, **kw)
        inp = Y.transpose(0, 2, 1, 3).reshape(Y.shape[0], Y.shape[2], -1)
        finals.append(Y_h)
    return inp, np.concatenate(finals)


def onnx_final_state(p: Problem, h_n: np.ndarray) -> np.ndarray:
    """ONNX (onnxruntime) zeroes the final state of a length-0 sequence; the core keeps its initial state (as
    TF's dynamic_rnn and torch's packed sequences do). The oracle's convention, for the comparison."""
    if p.lengths is None:
        return h_n
    return np.where((p.lengths == 0)[None, :, None], 0.0, h_n)


def allowed_kernels(p: Problem, x, weights, h0, **kw):
    chooser = gru_kernel if p.family == "gru" else rnn_kernel
    options = dict(direction=p.direction, lengths=None if p.lengths is None else torch.tensor(p.lengths), **kw)
    if p.family == "gru":
        options.update(reset_after=p.reset_after, activations=p.activations, clip=p.clip)
    else:
        options.update(activation=p.activations[0], clip=p.clip)
    out = []
    for name in KERNELS:
        try:
            chooser(x, weights, h0, kernel=name, **options)
        except KernelError:
            continue
        out.append(name)
    return out, chooser(x, weights, h0, **options).name


def functional(out, h_n, seed: int):
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g, dtype=torch.float64).to(t)).sum() for t in (out, h_n))


def leaves(x, weights, h0):
    flat = [x] + ([h0] if h0 is not None else [])
    for entry in weights:
        for w in (entry if isinstance(entry[0], tuple) else (entry,)):
            flat += [t for t in w if t is not None]
    return flat


def forward_tolerance(dtype) -> dict:
    """float32 against the float64 oracle: 10x the table, with its reason."""
    if dtype == torch.float32:
        return dict(loosen=10, reason="float32 rounding carried through up to 3 layers x 8 steps with weights up to "
                                      "2 and unbounded ONNX activations (seen: 1.2e-5 absolute on an element of 0.11)")
    return {}


def grad_tolerance(dtype) -> dict:
    if dtype == torch.float32:
        return dict(loosen=10, reason="float32 rounding amplified by backpropagation through time")
    return {}


dtypes = st.sampled_from([torch.float32, torch.float64])


# -------------------------------------------------------------------------------- the ONNX oracle, forward
@quiet
@given(p=problems("gru"), dtype=dtypes, order=st.sampled_from(["rzn", "zrn"]), data=st.data())
def test_gru_matches_the_onnx_oracle_with_every_kernel(p, dtype, order, data):
    p = rounded(p, dtype)
    x, weights, h0 = tensors(p, dtype)
    expected_out, expected_h = oracle(p)
    names, chosen = allowed_kernels(p, x, weights, h0)
    if not p.reset_after:
        assert not set(names) & set(FUSED_FORMS), "a reset-before GRU must never run on torch's fused GRU"
    kernel = data.draw(st.sampled_from(names + [None]), label="kernel")
    if order == "zrn":  # Keras's and ONNX's order, handed over as stored
        H = p.layers[0][0][1].shape[1]
        perm = torch.cat([torch.arange(H, 2 * H), torch.arange(H), torch.arange(2 * H, 3 * H)])
        weights = [tuple(None if t is None else t[perm] for t in w) if not isinstance(w[0], tuple) else
                   tuple(tuple(None if t is None else t[perm] for t in d) for d in w) for w in weights]
    out, h_n = run_core(p, x, weights, h0, kernel=kernel, gate_order=order)
    assert_close(out, expected_out, dtype=dtype, msg=f"output ({kernel or chosen})", **forward_tolerance(dtype))
    assert_close(onnx_final_state(p, h_n.detach().double().numpy()), expected_h, dtype=dtype,
                 msg=f"h_n ({kernel or chosen})", **forward_tolerance(dtype))


@quiet
@given(p=problems("rnn"), dtype=dtypes, data=st.data())
def test_simple_rnn_matches_the_onnx_oracle_with_every_kernel(p, dtype, data):
    p = rounded(p, dtype)
    x, weights, h0 = tensors(p, dtype)
    expected_out, expected_h = oracle(p)
    names, chosen = allowed_kernels(p, x, weights, h0)
    kernel = data.draw(st.sampled_from(names + [None]), label="kernel")
    out, h_n = run_core(p, x, weights, h0, kernel=kernel)
    assert_close(out, expected_out, dtype=dtype, msg=f"output ({kernel or chosen})", **forward_tolerance(dtype))
    assert_close(onnx_final_state(p, h_n.detach().double().numpy()), expected_h, dtype=dtype, msg="h_n",
                 **forward_tolerance(dtype))


# ------------------------------------------------------------------------ gradients: every kernel = the loop
@quiet
@given(family=st.sampled_from(["gru", "rnn"]), data=st.data(), dtype=dtypes, seed=st.integers(0, 2 ** 31 - 1))
def test_every_allowed_kernel_has_the_loops_gradients(family, data, dtype, seed):
    """Every kernel the selection allows for the call (lengths, cont restarting streams, a right-padded or
    arbitrary mask, directions, layers), forward and gradients, equals the step loop."""
    semantics = data.draw(st.sampled_from(["lengths", "cont", "padded mask", "mask"]), label="semantics")
    p = data.draw(problems(family, plain=data.draw(st.booleans(), label="plain"), lengths=semantics == "lengths",
                           direction="forward" if semantics == "cont" else None))
    x, weights, h0 = tensors(p, dtype, requires_grad=True)
    T, B, _ = p.x.shape
    rng = np.random.default_rng(seed)
    extra = {}
    if semantics == "cont":
        extra["cont"] = torch.tensor((rng.uniform(size=(T, B)) < 0.8).astype(float), dtype=dtype)
    elif semantics == "padded mask":
        lens = rng.integers(0, T + 1, B)
        extra["mask"] = torch.tensor((np.arange(T)[:, None] < lens[None, :]).astype(float), dtype=dtype)
    elif semantics == "mask":
        extra["mask"] = torch.tensor((rng.uniform(size=(T, B)) < 0.6).astype(float), dtype=dtype)
    names, _ = allowed_kernels(p, x, weights, h0, **extra)
    ref_out, ref_h = run_core(p, x, weights, h0, kernel="loop", **extra)
    ref_grads = torch.autograd.grad(functional(ref_out, ref_h, seed), leaves(x, weights, h0), allow_unused=True)
    for name in names:
        out, h_n = run_core(p, x, weights, h0, kernel=name, **extra)
        assert_close(out, ref_out, msg=f"{name} output")
        assert_close(h_n, ref_h, msg=f"{name} h_n")
        grads = torch.autograd.grad(functional(out, h_n, seed), leaves(x, weights, h0), allow_unused=True)
        for k, (g, r) in enumerate(zip(grads, ref_grads)):
            if r is None or g is None:
                assert (g is None or not g.any()) and (r is None or not r.any()), f"{name} gradient {k}"
                continue
            assert_close(g, r, msg=f"{name} gradient of leaf {k}", **grad_tolerance(dtype))


def _directional_oracle(p: Problem, direction_seed: int, eps: float):
    """The derivative of a fixed functional of the oracle's outputs along a random direction in the weights,
    by central differences; and that direction."""
    rng = np.random.default_rng(direction_seed)
    dirs = [[tuple(None if a is None else rng.standard_normal(a.shape) for a in w) for w in d] for d in p.layers]
    probe_out = rng.standard_normal(oracle(p)[0].shape)

    def value(sign):
        layers = [[tuple(None if a is None else a + sign * eps * v for a, v in zip(w, dw)) for w, dw in zip(d, dd)]
                  for d, dd in zip(p.layers, dirs)]
        return float((oracle(p._replace(layers=layers))[0] * probe_out).sum())

    return (value(1) - value(-1)) / (2 * eps), dirs, probe_out


@quiet
@given(p=problems("gru", max_layers=2, lengths=False), seed=st.integers(0, 2 ** 31 - 1))
def test_gru_gradients_match_the_onnx_oracles_differences(p, seed):
    """Autograd through the core's kernel (the loop for reset-before and ONNX activations) against central
    differences of the independent oracle, along a random direction of every weight."""
    assume(all(a in ("sigmoid", "tanh") or (isinstance(a, tuple) and a[0] in ("ScaledTanh", "Softsign"))
               or a in ("Sigmoid", "Tanh", "Softsign", "Softplus") for a in p.activations))  # smooth: differences hold
    p = p._replace(clip=None)
    expected, dirs, probe = _directional_oracle(p, seed, 1e-6)
    x, weights, h0 = tensors(p, torch.float64, requires_grad=True)
    out, _ = run_core(p, x, weights, h0)
    flat_w = [t for entry in weights for w in (entry if isinstance(entry[0], tuple) else (entry,)) for t in w
              if t is not None]
    grads = torch.autograd.grad((out * torch.tensor(probe)).sum(), flat_w)
    flat_d = [torch.tensor(v) for d in dirs for w in d for v in w if v is not None]
    actual = sum((g * v).sum() for g, v in zip(grads, flat_d))
    assert_close(actual, torch.tensor(expected), loosen=1e4,
                 reason="central differences of the float64 oracle with step 1e-6 carry ~1e-7 of rounding noise")


# ------------------------------------------------------------------------ against torch.nn.GRU / torch.nn.RNN
@quiet
@given(family=st.sampled_from(["gru", "rnn"]), data=st.data(), dtype=dtypes, batch_first=st.booleans(),
       packed=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_module_matches_torch_nn(family, data, dtype, batch_first, packed, seed):
    p = data.draw(problems(family, plain=True, direction=data.draw(st.sampled_from(["forward", "bidirectional"]))))
    T, B, n_in = p.x.shape
    H = p.layers[0][0][1].shape[1]
    L = len(p.layers)
    bias = p.layers[0][0][2] is not None
    kw = dict(num_layers=L, bias=bias, batch_first=batch_first, bidirectional=p.D == 2)
    if family == "gru":
        ref, ours = torch.nn.GRU(n_in, H, **kw), GRU(n_in, H, **kw)
    else:
        nl = p.activations[0]
        ref, ours = torch.nn.RNN(n_in, H, nonlinearity=nl, **kw), RNN(n_in, H, nonlinearity=nl, **kw)
    ref, ours = ref.to(dtype), ours.to(dtype)
    torch.manual_seed(seed)
    ref.reset_parameters()
    ours.load_state_dict(ref.state_dict())
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.tensor(p.x, dtype=dtype)
    h0 = None if p.h0 is None else torch.tensor(p.h0, dtype=dtype)
    if batch_first:
        x = x.transpose(0, 1).contiguous()
    if packed:
        lengths = torch.tensor(p.lengths if p.lengths is not None else [T] * B).clamp(min=1)
        inp = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    else:
        inp = x
    kernels = [None, "loop"]
    for kernel in kernels:
        ref.zero_grad()
        ours.zero_grad()
        a, ha = ref(inp, h0)
        b, hb = ours(inp, h0, kernel=kernel)
        if packed:
            assert isinstance(b, torch.nn.utils.rnn.PackedSequence)
            a = pad_packed_sequence(a, batch_first=batch_first)[0]
            b = pad_packed_sequence(b, batch_first=batch_first)[0]
        assert_close(b, a, msg=f"output ({kernel})")
        assert_close(hb, ha, msg=f"h_n ({kernel})")
        functional(a, ha, seed).backward()
        functional(b, hb, seed).backward()
        for (name, pa), pb in zip(ref.named_parameters(), ours.parameters()):
            assert_close(pb.grad, pa.grad, msg=f"gradient of {name} ({kernel})", **grad_tolerance(dtype))


# ---------------------------------------------------------------------------------- sequence semantics
@quiet
@given(family=st.sampled_from(["gru", "rnn"]), data=st.data(), dtype=dtypes)
def test_cont_restarts_streams_exactly(family, data, dtype):
    """cont = 0 at step t restarts that stream from a zero state: the same as a fresh run from t on."""
    p = data.draw(problems(family, plain=data.draw(st.booleans()), max_layers=1, lengths=False,
                           direction="forward"))
    T, B, _ = p.x.shape
    assume(T >= 2)
    t0 = data.draw(st.integers(1, T - 1), label="restart step")
    x, weights, h0 = tensors(p, dtype)
    cont = torch.ones(T, B, dtype=dtype)
    cont[t0, 0] = 0.0
    names, _ = allowed_kernels(p, x, weights, h0, cont=cont)
    assert ("segments" in names) == (p.family == "rnn" and p.activations[0] in ("tanh", "relu", "Tanh", "Relu")
                                     and p.clip is None
                                     or p.family == "gru" and p.reset_after and p.clip is None
                                     and p.activations in (("sigmoid", "tanh"), ("Sigmoid", "Tanh")))
    for kernel in names:
        out, _ = run_core(p, x, weights, h0, kernel=kernel, cont=cont)
        head, _ = run_core(p, x[:t0], weights, h0)
        tail, _ = run_core(p, x[t0:, :1], weights, None)
        assert_close(out[:t0], head, msg=f"{kernel}: before the restart")
        assert_close(out[t0:, :1], tail, msg=f"{kernel}: the restarted stream")


@quiet
@given(family=st.sampled_from(["gru", "rnn"]), data=st.data(), dtype=dtypes)
def test_a_mask_carries_the_state_through_masked_steps(family, data, dtype):
    """The Theano tutorial's mask: h_t = m h' + (1 - m) h_{t-1}; step by step against the oracle over one step."""
    p = rounded(data.draw(problems(family, max_layers=1, lengths=False, direction="forward")), dtype)
    T, B, _ = p.x.shape
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    mask = (rng.uniform(size=(T, B)) < 0.6).astype(np.float64)
    x, weights, h0 = tensors(p, dtype)
    names, _ = allowed_kernels(p, x, weights, h0, mask=torch.tensor(mask, dtype=dtype))
    h = np.zeros((1, B, p.layers[0][0][1].shape[1])) if p.h0 is None else p.h0
    expected = []
    for t in range(T):
        _, h_new = oracle(p._replace(x=p.x[t:t + 1], h0=h))
        h = mask[t][None, :, None] * h_new + (1 - mask[t][None, :, None]) * h
        expected.append(h[0])
    for kernel in names:
        out, h_n = run_core(p, x, weights, h0, kernel=kernel, mask=torch.tensor(mask, dtype=dtype))
        assert_close(out, np.stack(expected), dtype=dtype, msg=f"{kernel} output", **forward_tolerance(dtype))
        assert_close(h_n[0], expected[-1], dtype=dtype, msg=f"{kernel} h_n", **forward_tolerance(dtype))


def test_dropout_between_layers_is_torchs_and_absent_in_eval():
    torch.manual_seed(0)
    x = torch.randn(5, 3, 4)
    for cls in (GRU, RNN):
        m = cls(4, 6, 3, dropout=0.5)
        m.eval()
        a, _ = m(x)
        b, _ = m(x, kernel="loop")
        assert_close(a, b)
        m.train()
        ref = (torch.nn.GRU if cls is GRU else torch.nn.RNN)(4, 6, 3, dropout=0.5)
        ref.load_state_dict(m.state_dict())
        torch.manual_seed(1)
        c, _ = m(x)
        torch.manual_seed(1)
        d, _ = ref(x)
        assert_close(c, d, msg="the fused kernel's dropout between layers is torch's own")
        torch.manual_seed(1)
        e, _ = m(x, kernel="loop")
        assert not torch.allclose(e, a), "dropout in training changes the output"


# ----------------------------------------------------------------------------------- selection and errors
def test_reset_before_gru_never_runs_on_torchs_fused_gru():
    x = torch.randn(4, 2, 3)
    m = GRU(3, 5, 2, reset_after=False)
    assert m.which_kernel(x).name == "loop"
    for kernel in FUSED_FORMS:
        with pytest.raises(KernelError, match="reset_after=False"):
            m(x, kernel=kernel)
    packed = pack_padded_sequence(x, torch.tensor([4, 2]))
    out, _ = m(packed)
    ref = GRU(3, 5, 2, reset_after=True)
    ref.load_state_dict(m.state_dict())
    assert not torch.allclose(pad_packed_sequence(out)[0], pad_packed_sequence(ref(packed)[0])[0])


def test_the_plain_families_run_fused():
    x = torch.randn(4, 2, 3)
    assert GRU(3, 5).which_kernel(x).name == "fused"
    assert RNN(3, 5, nonlinearity="relu").which_kernel(x).name == "fused"
    assert RNN(3, 5, nonlinearity="Softsign").which_kernel(x).name == "loop"
    assert RNN(3, 5, clip=1.0).which_kernel(x).name == "loop"
    assert GRU(3, 5).which_kernel(x, lengths=torch.tensor([4, 1])).name == "packed"
    assert GRU(3, 5, activations=("hard_sigmoid_keras2", "tanh")).which_kernel(x).name == "loop"
    cont = torch.ones(4, 2)
    cont[2, 1] = 0
    assert GRU(3, 5).which_kernel(x, cont=cont).name == "segments"
    assert RNN(3, 5).which_kernel(x, cont=cont).name == "segments"
    assert GRU(3, 5, reset_after=False).which_kernel(x, cont=cont).name == "loop"
    assert GRU(3, 5).which_kernel(x[:1]).name == "loop"  # one CPU step: the loop repacks nothing
    assert GRU(3, 5, bidirectional=True).which_kernel(x, mask=torch.ones(4, 2)).name == "loop"
    with pytest.raises(KernelError, match="compiled kernel runs the LSTM"):
        GRU(3, 5)(x, kernel="compiled")


def test_bad_input_gets_one_clear_error():
    x = torch.randn(4, 2, 3)
    w = (torch.randn(15, 3), torch.randn(15, 5), None, None)
    with pytest.raises(ShapeError, match=r"layer 0 weight_hh has shape \[15, 4\]; expected \[3H, H\]"):
        gru(x, [(w[0], torch.randn(15, 4), None, None)])
    with pytest.raises(ShapeError, match=r"weight_ih has shape \[15, 3\]; its input size must equal"):
        gru(torch.randn(4, 2, 2), [w])
    with pytest.raises(ShapeError, match=r"bias_ih has shape \[14\]"):
        gru(x, [(w[0], w[1], torch.randn(14), None)])
    with pytest.raises(ShapeError, match=r"initial state hx has shape \[2, 2, 5\]"):
        gru(x, [w], torch.zeros(2, 2, 5))
    with pytest.raises(ShapeError, match=r"expected \[1H, H\]"):
        simple_rnn(x, [w])
    with pytest.raises(CellError, match="gate_order must be a permutation of 'rzn'"):
        gru(x, [w], gate_order="rzh")
    with pytest.raises(CellError, match="unknown activation"):
        gru(x, [w], activations=("sigmoid", "tanhh"))
    with pytest.raises(CellError, match="'hard_sigmoid' differs between Keras versions"):
        simple_rnn(x, [w[:1] + (torch.randn(5, 5),)], activation="hard_sigmoid")
    with pytest.raises(CellError, match="clip must be > 0"):
        GRU(3, 5, clip=0)
    with pytest.raises(CellError, match="LSTM options"):
        Cell("gru", cell_clip=1.0)
    with pytest.raises(CellError, match="reset_after is the GRU's option"):
        Cell("lstm", reset_after=False)
    with pytest.raises(ShapeError, match="dtype"):
        gru(x.double(), [w])


@quiet
@given(p=problems("gru", max_layers=1), data=st.data())
def test_batch_first_is_onnx_layout_1(p, data):
    """ONNX layout=1 (X [B, T, in], Y [B, T, D, H], states [B, D, H]) against the core's batch_first."""
    H = p.layers[0][0][1].shape[1]
    names, alphas, betas = onnx_spelling(p.activations)
    dirs = p.layers[0]
    W = np.stack([zrn(w[0], H) for w in dirs])
    R = np.stack([zrn(w[1], H) for w in dirs])
    B = np.stack([np.concatenate([zrn(w[2] if w[2] is not None else np.zeros(3 * H), H),
                                  zrn(w[3] if w[3] is not None else np.zeros(3 * H), H)]) for w in dirs])
    h0 = None if p.h0 is None else p.h0.transpose(1, 0, 2)
    Y, Y_h = onnx_rnn.gru(p.x.transpose(1, 0, 2), W, R, B, p.lengths, h0, activations=names * p.D,
                          activation_alpha=alphas * p.D, activation_beta=betas * p.D, clip=p.clip,
                          direction=p.direction, linear_before_reset=int(p.reset_after), layout=1)
    x, weights, hx = tensors(p, torch.float64)
    out, h_n = run_core(p, x.transpose(0, 1), weights, hx, batch_first=True)
    assert_close(out, Y.reshape(Y.shape[0], Y.shape[1], -1))
    assert_close(onnx_final_state(p, h_n.numpy()), Y_h.transpose(1, 0, 2))
