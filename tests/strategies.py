"""Shared Hypothesis strategies for the LSTM core, the gate layouts and the ports' tests.

Sizes are drawn through ``st.shared`` strategies keyed by name (the array-api-tests pattern), so that
every strategy used in one ``@given`` agrees on them without being passed the sizes: a test that asks
for ``lstm_sizes()``, ``inputs()``, ``right_padded_masks()`` and ``conts()`` gets an input, a mask and a
cont of the same batch and time. Arrays are numpy float64 (convert with :func:`as_tensor` /
:func:`weights_as_tensors`); values come from a drawn seed, so a failing example prints a seed and a
kind that reproduce it (and each strategy calls ``note()`` with what it drew).

Caps (the issue's): batch 1-8, time 1-12, input and hidden 1-16, layers 1-3.

    @given(sizes=lstm_sizes(), x=inputs(), mask=right_padded_masks(), dtype=dtypes())
    def test_something(sizes, x, mask, dtype): ...
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.strategies import composite

MAX_BATCH = 8
MAX_TIME = 12
MAX_FEATURES = 16
MAX_LAYERS = 3

#: The batch size of the current example (shared by every strategy below).
batch_sizes = st.shared(st.integers(1, MAX_BATCH), key="lstm-batch")
#: The number of time steps of the current example (shared).
time_steps = st.shared(st.integers(1, MAX_TIME), key="lstm-time")
#: The input feature size of the current example (shared).
input_sizes = st.shared(st.integers(1, MAX_FEATURES), key="lstm-input")
#: The hidden size of the current example (shared).
hidden_sizes = st.shared(st.integers(1, MAX_FEATURES), key="lstm-hidden")
#: The number of stacked layers of the current example (shared).
layer_counts = st.shared(st.integers(1, MAX_LAYERS), key="lstm-layers")

#: float32 or float64 (torch dtypes).
dtypes = st.sampled_from([torch.float32, torch.float64])

#: Every layout name in :data:`compat.layouts.LAYOUTS` order, as written in the issue.
LAYOUT_NAMES = ("tf", "keras", "keras_cudnn", "torch", "theano", "caffe", "junhyukoh", "onnx")

#: Kinds of ``cont`` drawn by :func:`conts`.
CONT_KINDS = ("random", "reset_at_t0", "everywhere", "nowhere", "nonbinary", "aligned")


class LSTMSizes(NamedTuple):
    """The sizes of one LSTM problem (time-major: input [time, batch, input_size])."""

    time: int
    batch: int
    input_size: int
    hidden_size: int
    num_layers: int


@composite
def lstm_sizes(draw, max_layers: int = MAX_LAYERS) -> LSTMSizes:
    """An :class:`LSTMSizes` built from the shared batch/time/input/hidden/layers strategies.

    ``max_layers`` caps the layer count for tests that need one layer (it draws from the shared value
    and clamps, so other strategies in the same example still agree).
    """
    sizes = LSTMSizes(draw(time_steps), draw(batch_sizes), draw(input_sizes), draw(hidden_sizes),
                      min(draw(layer_counts), max_layers))
    note(f"sizes: {sizes}")
    return sizes


def _rng(draw, label: str) -> np.random.Generator:
    seed = draw(st.integers(0, 2 ** 32 - 1), label=f"{label} seed")
    return np.random.default_rng(seed)


@composite
def scales(draw) -> float:
    """A weight scale: small (near-linear gates), moderate, or large (saturating gates)."""
    return draw(st.sampled_from([0.1, 0.5, 1.0, 2.0]))


@composite
def inputs(draw, scale: float = 1.0) -> np.ndarray:
    """Input x [time, batch, input_size], float64, uniform in [-scale, scale]."""
    t, b, n = draw(time_steps), draw(batch_sizes), draw(input_sizes)
    return _rng(draw, "input").uniform(-scale, scale, size=(t, b, n))


@composite
def initial_states(draw, allow_none: bool = True, num_layers: Optional[int] = None):
    """``(h0, c0)`` each [layers, batch, hidden] float64 in [-1, 1], or None (zeros) when allowed."""
    if allow_none and draw(st.booleans(), label="zero initial state"):
        return None
    layers = draw(layer_counts) if num_layers is None else num_layers
    shape = (layers, draw(batch_sizes), draw(hidden_sizes))
    rng = _rng(draw, "initial state")
    return rng.uniform(-1, 1, size=shape), rng.uniform(-1, 1, size=shape)


class CanonicalLayer(NamedTuple):
    """One layer's canonical (PyTorch, gates i, f, g, o) weights as float64 numpy arrays."""

    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: Optional[np.ndarray]
    bias_hh: Optional[np.ndarray]


@composite
def canonical_weights(draw, biases: Optional[str] = None, num_layers: Optional[int] = None) -> list:
    """A list of :class:`CanonicalLayer` (one per layer) for the shared sizes.

    ``biases``: ``"two"`` (bias_ih and bias_hh), ``"one"`` (bias_ih, bias_hh None), ``"none"``, or None
    to draw one of these. Values uniform in [-s, s] with s from :func:`scales`.
    """
    n_in, hidden = draw(input_sizes), draw(hidden_sizes)
    layers = draw(layer_counts) if num_layers is None else num_layers
    if biases is None:
        biases = draw(st.sampled_from(["two", "one", "none"]), label="biases")
    scale = draw(scales(), label="weight scale")
    rng = _rng(draw, "weights")
    out = []
    for layer in range(layers):
        fan_in = n_in if layer == 0 else hidden
        w_ih = rng.uniform(-scale, scale, size=(4 * hidden, fan_in))
        w_hh = rng.uniform(-scale, scale, size=(4 * hidden, hidden))
        b_ih = rng.uniform(-scale, scale, size=4 * hidden) if biases in ("one", "two") else None
        b_hh = rng.uniform(-scale, scale, size=4 * hidden) if biases == "two" else None
        out.append(CanonicalLayer(w_ih, w_hh, b_ih, b_hh))
    note(f"canonical weights: {layers} layer(s), biases={biases}, scale={scale}")
    return out


def layout_shapes(layout: str, input_size: int, hidden: int) -> dict:
    """The tensor shapes of one layer in a legacy layout (names as in compat.layouts.LAYOUTS)."""
    h4 = 4 * hidden
    return {
        "tf": {"kernel": (input_size + hidden, h4), "bias": (h4,)},
        "keras": {"kernel": (input_size, h4), "recurrent_kernel": (hidden, h4), "bias": (h4,)},
        "keras_cudnn": {"kernel": (input_size, h4), "recurrent_kernel": (hidden, h4), "bias": (2 * h4,)},
        "torch": {"weight_ih": (h4, input_size), "weight_hh": (h4, hidden), "bias_ih": (h4,), "bias_hh": (h4,)},
        "theano": {"W": (input_size, h4), "U": (hidden, h4), "b": (h4,)},
        "caffe": {"W_xc": (h4, input_size), "b_c": (h4,), "W_hc": (h4, hidden)},
        "junhyukoh": {"W_x": (h4, input_size), "W_h": (h4, hidden), "b": (h4,)},
        "onnx": {"W": (1, h4, input_size), "R": (1, h4, hidden), "B": (1, 2 * h4)},
    }[layout]


@composite
def layout_params(draw, layout: str, input_size: Optional[int] = None, hidden_size: Optional[int] = None) -> dict:
    """One layer's tensors in a legacy layout: ``{name: float64 array}`` with that layout's names/shapes.

    Sizes default to the shared input and hidden sizes.
    """
    n_in = draw(input_sizes) if input_size is None else input_size
    hidden = draw(hidden_sizes) if hidden_size is None else hidden_size
    scale = draw(scales(), label="weight scale")
    rng = _rng(draw, f"{layout} weights")
    params = {name: rng.uniform(-scale, scale, size=shape)
              for name, shape in layout_shapes(layout, n_in, hidden).items()}
    note(f"{layout} params: in={n_in}, hidden={hidden}, scale={scale}")
    return params


@composite
def layout_stacks(draw, layout: str, num_layers: Optional[int] = None) -> list:
    """A list of per-layer :func:`layout_params` for the shared sizes (layer k>0 takes hidden inputs)."""
    n_in, hidden = draw(input_sizes), draw(hidden_sizes)
    layers = draw(layer_counts) if num_layers is None else num_layers
    return [draw(layout_params(layout, n_in if k == 0 else hidden, hidden)) for k in range(layers)]


@composite
def sequence_lengths(draw, min_length: int = 0) -> np.ndarray:
    """Lengths [batch] in [min_length, time]; biased towards 0, 1 and the full length."""
    t, b = draw(time_steps), draw(batch_sizes)
    lo = min(min_length, t)
    edge = st.sampled_from(sorted({lo, min(max(lo, 1), t), t}))
    lengths = draw(st.lists(st.one_of(edge, st.integers(lo, t)), min_size=b, max_size=b), label="lengths")
    return np.asarray(lengths, dtype=np.int64)


@composite
def right_padded_masks(draw, min_length: int = 0) -> np.ndarray:
    """A 0/1 mask [time, batch] that is right padding: column b is 1 for its first lengths[b] steps.

    Includes length-0 columns (all masked), length-1 and full-length columns.
    """
    t = draw(time_steps)
    lengths = draw(sequence_lengths(min_length))
    mask = (np.arange(t)[:, None] < lengths[None, :]).astype(np.float64)
    note(f"right-padded mask, lengths {lengths.tolist()}")
    return mask


@composite
def arbitrary_masks(draw, not_right_padded: bool = False) -> np.ndarray:
    """A 0/1 mask [time, batch] with any pattern (holes, left padding, all-masked columns).

    ``not_right_padded``: guarantee a pattern the packed path cannot take (some 1 after a 0).
    """
    t, b = draw(time_steps), draw(batch_sizes)
    rng = _rng(draw, "mask")
    density = draw(st.sampled_from([0.2, 0.5, 0.8]), label="mask density")
    mask = (rng.uniform(size=(t, b)) < density).astype(np.float64)
    if draw(st.booleans(), label="an all-masked column"):
        mask[:, draw(st.integers(0, b - 1))] = 0.0
    if not_right_padded:
        if t == 1:
            raise ValueError("a mask over one step is always right padding; use time_steps >= 2")
        col = draw(st.integers(0, b - 1))
        step = draw(st.integers(1, t - 1))
        mask[step - 1, col], mask[step, col] = 0.0, 1.0
    note(f"arbitrary mask:\n{mask.astype(int)}")
    return mask


@composite
def fractional_masks(draw) -> np.ndarray:
    """A mask [time, batch] holding values strictly between 0 and 1 beside 0s and 1s (the tutorial's
    ``_step`` uses the mask as numbers: ``c = m c' + (1 - m) c_prev``, ``h = m o tanh(c) + (1 - m) h_prev``)."""
    t, b = draw(time_steps), draw(batch_sizes)
    rng = _rng(draw, "fractional mask")
    mask = rng.choice([0.0, 0.3, 0.5, 0.9, 1.0], size=(t, b))
    mask[draw(st.integers(0, t - 1)), draw(st.integers(0, b - 1))] = draw(
        st.sampled_from([0.3, 0.5]), label="one fractional value at least")
    note(f"fractional mask:\n{mask}")
    return mask


@composite
def conts(draw, kind: Optional[str] = None) -> np.ndarray:
    """A Caffe continuation input [time, batch] (1 continues, 0 starts a new sequence).

    ``kind`` (drawn from :data:`CONT_KINDS` when None):
    ``"random"`` 0/1 anywhere (mid-stream resets in some streams); ``"reset_at_t0"`` 0 at t=0, 1 after
    (Caffe's usual first batch); ``"everywhere"`` all 0; ``"nowhere"`` all 1; ``"nonbinary"`` values in
    [0, 1.5] used as numbers; ``"aligned"`` resets at the same steps in every stream.
    """
    t, b = draw(time_steps), draw(batch_sizes)
    if kind is None:
        kind = draw(st.sampled_from(CONT_KINDS), label="cont kind")
    rng = _rng(draw, "cont")
    if kind == "random":
        cont = (rng.uniform(size=(t, b)) < 0.7).astype(np.float64)
    elif kind == "reset_at_t0":
        cont = np.ones((t, b))
        cont[0] = 0.0
    elif kind == "everywhere":
        cont = np.zeros((t, b))
    elif kind == "nowhere":
        cont = np.ones((t, b))
    elif kind == "nonbinary":
        cont = rng.uniform(0.0, 1.5, size=(t, b))
    elif kind == "aligned":
        cont = np.ones((t, b))
        cont[rng.uniform(size=t) < 0.3] = 0.0
    else:
        raise ValueError(f"unknown cont kind {kind!r}; known: {CONT_KINDS}")
    note(f"cont ({kind}):\n{cont}")
    return cont


def as_tensor(a, dtype=torch.float64, device="cpu", requires_grad: bool = False) -> Optional[torch.Tensor]:
    """A numpy array as a fresh leaf tensor (None stays None)."""
    if a is None:
        return None
    t = torch.tensor(np.asarray(a), dtype=dtype, device=device)
    return t.requires_grad_(requires_grad)


def weights_as_tensors(weights, dtype=torch.float64, device="cpu", requires_grad: bool = False) -> list:
    """Canonical numpy weights (:class:`CanonicalLayer` list) as ``compat.lstm.LayerWeights`` of leaf tensors."""
    from compat.lstm import LayerWeights

    return [LayerWeights(*(as_tensor(a, dtype, device, requires_grad) for a in layer)) for layer in weights]


def states_as_tensors(state, dtype=torch.float64, device="cpu", requires_grad: bool = False):
    """``(h0, c0)`` numpy arrays as tensors; None stays None."""
    if state is None:
        return None
    return tuple(as_tensor(s, dtype, device, requires_grad) for s in state)


# ------------------------------------------------------------------------------------ cell variants
#: The projection size of the current example (shared).
proj_sizes = st.shared(st.integers(1, MAX_FEATURES), key="lstm-proj")


class VariantLayer(NamedTuple):
    """One layer's (one direction's) canonical weights with the optional projection and peepholes (numpy)."""

    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: Optional[np.ndarray]
    bias_hh: Optional[np.ndarray]
    weight_hr: Optional[np.ndarray]
    peephole: Optional[np.ndarray]


@composite
def projection_sizes(draw, narrower: bool = False) -> int:
    """P for the shared hidden size, or 0 for no projection; ``narrower``: P < H (torch.nn.LSTM's rule)."""
    hidden = draw(hidden_sizes)
    if not draw(st.booleans(), label="projection"):
        return 0
    if narrower:
        return 0 if hidden == 1 else min(draw(proj_sizes), hidden - 1)
    return draw(proj_sizes)


@composite
def variant_weights(draw, directions: int = 1, proj: Optional[int] = None, peepholes: Optional[bool] = None,
                    biases: Optional[str] = None, num_layers: Optional[int] = None, max_scale: float = 2.0) -> list:
    """Per layer a :class:`VariantLayer` (or, ``directions=2``, a (forward, backward) pair) for the shared
    sizes; ``proj`` 0 for none (drawn by :func:`projection_sizes` when None); ``peepholes`` drawn when None;
    ``max_scale`` caps :func:`scales` (float32 gradients through saturated gates of deep bidirectional
    stacks lose more than the tolerance table allows)."""
    n_in, hidden = draw(input_sizes), draw(hidden_sizes)
    layers = draw(layer_counts) if num_layers is None else num_layers
    proj = draw(projection_sizes()) if proj is None else proj
    peepholes = draw(st.booleans(), label="peepholes") if peepholes is None else peepholes
    if biases is None:
        biases = draw(st.sampled_from(["two", "one", "none"]), label="biases")
    scale = draw(scales().filter(lambda v: v <= max_scale), label="weight scale")
    rng = _rng(draw, "variant weights")
    out_size = proj or hidden

    def one(fan_in):
        u = lambda *shape: rng.uniform(-scale, scale, size=shape)  # noqa: E731
        return VariantLayer(u(4 * hidden, fan_in), u(4 * hidden, out_size),
                            u(4 * hidden) if biases in ("one", "two") else None,
                            u(4 * hidden) if biases == "two" else None,
                            # the projection sums H products: scaled by 1/sqrt(H) (torch's initialisation bound)
                            # so that h stays O(1) and float32 rounding stays within the tolerance table's
                            u(proj, hidden) / hidden ** 0.5 if proj else None, u(3, hidden) if peepholes else None)

    out = []
    for layer in range(layers):
        fan_in = n_in if layer == 0 else directions * out_size
        out.append(one(fan_in) if directions == 1 else (one(fan_in), one(fan_in)))
    note(f"variant weights: {layers} layer(s) x {directions} direction(s), proj={proj}, peepholes={peepholes}, "
         f"biases={biases}, scale={scale}")
    return out


@composite
def variant_states(draw, num_layers: int, directions: int = 1, proj: int = 0, allow_none: bool = True):
    """``(h0 [L*D, B, P or H], c0 [L*D, B, H])`` float64 in [-1, 1], or None (zeros) when allowed."""
    if allow_none and draw(st.booleans(), label="zero initial state"):
        return None
    batch, hidden = draw(batch_sizes), draw(hidden_sizes)
    rng = _rng(draw, "initial state")
    n = num_layers * directions
    return rng.uniform(-1, 1, size=(n, batch, proj or hidden)), rng.uniform(-1, 1, size=(n, batch, hidden))


def variant_weights_as_tensors(weights, dtype=torch.float64, device="cpu", requires_grad: bool = False) -> list:
    """:func:`variant_weights` output as ``compat.lstm.LayerWeights`` of leaf tensors (pairs stay pairs)."""
    from compat.lstm import LayerWeights

    def one(layer):
        return LayerWeights(*(as_tensor(a, dtype, device, requires_grad) for a in layer))

    return [one(entry) if isinstance(entry, VariantLayer) else tuple(one(e) for e in entry) for entry in weights]
