"""Dropout masks inside the cell (compat/recurrent/masks.py), given to the core directly (compat.lstm.lstm,
compat.gru.gru, compat.simple_rnn.simple_rnn with ``cell_masks=``): against reference/keras_rnn.py
``training_layer`` (Keras's cells with their masks, K.rnn's mask and initial state) on Keras's weights handed
over as stored, every mask form, both directions, masked steps; the GRU's ``update_uses_dropped_h``; the
per-step input masks on the fused kernel; the masks' validation. Which kernels refuse them:
tests/test_kernels.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from compat.gru import gru
from compat.lstm import LayerWeights, lstm
from compat.recurrent.masks import CellMasks, CellMasksError
from compat.simple_rnn import simple_rnn
from reference import keras_rnn
from tests.tolerances import assert_close

FAMILIES = ("lstm", "gru_after", "gru_before", "rnn")
GATES = {"lstm": 4, "gru_after": 3, "gru_before": 3, "rnn": 1}
# Keras's gate blocks (LSTM i f c o, GRU z r h) in the core's canonical order (LSTM i f g o, GRU r z n): the
# canonical block k is Keras's block KERAS_BLOCK[family][k] (written out here, apart from the project's tables).
KERAS_BLOCK = {"lstm": [0, 1, 2, 3], "gru_after": [1, 0, 2], "gru_before": [1, 0, 2], "rnn": [0]}


def _keras_layer(rng, family, n_in, H):
    """A Keras layer's kernel [in, G*H], recurrent_kernel [H, G*H] and bias, Keras's gate order."""
    G = GATES[family]
    kernel, recurrent = rng.uniform(-1, 1, (n_in, G * H)), rng.uniform(-1, 1, (H, G * H))
    bias = rng.uniform(-1, 1, (2, 3 * H) if family == "gru_after" else (G * H,))
    return kernel, recurrent, bias


def _core_weights(family, kernel, recurrent, bias, lstm_order):
    """Keras's tensors as the core takes them: transposed, the gate blocks as stored (the cell's gate_order says
    which), except an LSTM's, rearranged into ``lstm_order`` (Keras's i f c o is the canonical i f g o)."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    W, U = kernel.T, recurrent.T
    if family == "lstm":
        H = recurrent.shape[0]
        rows = np.concatenate([np.arange(H) + H * "ifgo".index(g) for g in lstm_order])
        return LayerWeights(t(W[rows]), t(U[rows]), t(bias[rows]), None)
    if family == "gru_after":
        return LayerWeights(t(W), t(U), t(bias[0]), t(bias[1]))
    return LayerWeights(t(W), t(U), t(bias), None)


def _draw(rng, shape, rate):
    return np.where(rng.uniform(size=shape) < rate, 0.0, 1.0 / (1.0 - rate))


def _run_core(family, x, weights, hx, masks, mask, direction, lstm_order, kernel="auto"):
    kw = dict(batch_first=True, direction=direction, mask=mask, cell_masks=masks, kernel=kernel)
    if family == "lstm":
        y, (h, c) = lstm(x, weights, hx, gate_order=lstm_order, **kw)
        return y, [h, c]
    if family == "rnn":
        y, h = simple_rnn(x, weights, hx, **kw)
    else:
        y, h = gru(x, weights, hx, reset_after=family == "gru_after", gate_order="zrn", **kw)
    return y, [h]


@settings(max_examples=60, deadline=None)
@given(family=st.sampled_from(FAMILIES), input_form=st.sampled_from([None, "shared", "per_gate", "per_step"]),
       recurrent_form=st.sampled_from([None, "shared", "per_gate"]),
       direction=st.sampled_from(["forward", "reverse", "bidirectional"]), masked=st.booleans(),
       state=st.booleans(), dropped_h=st.booleans(), lstm_order=st.sampled_from(["ifgo", "igfo", "ofig"]),
       B=st.integers(1, 3), T=st.integers(1, 5), n_in=st.integers(1, 3), H=st.integers(1, 3),
       seed=st.integers(0, 2 ** 31 - 1))
def test_masks_given_to_the_core_are_the_keras_cell_with_its_masks(family, input_form, recurrent_form, direction,
                                                                    masked, state, dropped_h, lstm_order, B, T, n_in,
                                                                    H, seed):
    """The core with cell masks (float64) against the oracle handed the same masks as Keras's cells read them:
    one per gate in Keras's order, one for every gate (the list of it repeated), or per step ([B, T, in],
    multiplying the input); a bidirectional stack's directions each with their own; K.rnn's mask (the core's
    output at a masked step is the carried h: ``masked_output="previous_h"``) and a given initial state."""
    dropped_h = dropped_h and family.startswith("gru") and recurrent_form is not None
    rng = np.random.default_rng(seed)
    G = GATES[family]
    D = 2 if direction == "bidirectional" else 1
    x = rng.uniform(-1, 1, (B, T, n_in))
    mask = rng.integers(0, 2, (B, T)) if masked else None
    layers = [_keras_layer(rng, family, n_in, H) for _ in range(D)]
    states = [[rng.uniform(-1, 1, (B, H)) for _ in range(2 if family == "lstm" else 1)] for _ in range(D)]
    oracle_masks, core_in, core_rec = [], [], []
    for _ in range(D):
        keras_in = keras_rec = None
        if input_form == "per_step":
            keras_in = [_draw(rng, (B, T, n_in), 0.3)]
            core_in.append(torch.from_numpy(keras_in[0]))
        elif input_form == "shared":
            one = _draw(rng, (B, n_in), 0.3)
            keras_in = [one] * G
            core_in.append(torch.from_numpy(one))
        elif input_form == "per_gate":
            keras_in = [_draw(rng, (B, n_in), 0.3) for _ in range(G)]
            core_in.append(torch.from_numpy(np.stack([keras_in[k] for k in KERAS_BLOCK[family]])))
        if recurrent_form == "shared":
            one = _draw(rng, (B, H), 0.4)
            keras_rec = [one] * G
            core_rec.append(torch.from_numpy(one))
        elif recurrent_form == "per_gate":
            keras_rec = [_draw(rng, (B, H), 0.4) for _ in range(G)]
            core_rec.append(torch.from_numpy(np.stack([keras_rec[k] for k in KERAS_BLOCK[family]])))
        oracle_masks.append((keras_in, keras_rec))
    masks = CellMasks(tuple(core_in) or None, tuple(core_rec) or None, input_per_step=input_form == "per_step",
                      update_uses_dropped_h=dropped_h)

    weights = [_core_weights(family, *layer, lstm_order) for layer in layers]
    weights = [tuple(weights)] if D == 2 else weights
    hx = None
    if state:
        tensors = [torch.from_numpy(np.stack([states[d][k] for d in range(D)])) for k in range(len(states[0]))]
        hx = tuple(tensors) if family == "lstm" else tensors[0]
    with torch.no_grad():
        y, finals = _run_core(family, torch.from_numpy(x), weights, hx, masks,
                              None if mask is None else torch.from_numpy(mask), direction, lstm_order)

    want_y, want_finals = [], []
    for d in range(D):
        backwards = d == 1 or direction == "reverse"
        acts = {} if family == "rnn" else {"recurrent_activation": "sigmoid"}
        out, fin = keras_rnn.training_layer(family.split("_")[0], x, *layers[d], *oracle_masks[d],
                                            reset_after=family == "gru_after", go_backwards=backwards,
                                            update_uses_dropped_h=dropped_h,
                                            initial_state=(states[d] if family == "lstm" else states[d][0])
                                            if state else None, mask=mask, masked_output="previous_h", **acts)
        want_y.append(out[:, ::-1] if backwards else out)
        want_finals.append(fin)
    assert_close(y.numpy(), np.concatenate(want_y, axis=2), dtype=torch.float64, msg="outputs")
    for k, got in enumerate(finals):
        assert_close(got.numpy(), np.stack([want_finals[d][k] for d in range(D)]), dtype=torch.float64,
                     msg="final states")


@pytest.mark.parametrize("reset_after", [False, True])
def test_the_gru_update_with_the_dropped_out_state_through_the_core(reset_after):
    """Keras 2.0-2.3 GRUCell.call (implementation=2: ``h_tm1 *= rec_dp_mask[0]``): h = z * (m * h_tm1) + (1 - z) *
    hh, against the oracle; the rule changes the numbers (a recurrent mask with zeros in it)."""
    rng = np.random.default_rng(4)
    B, T, n_in, H = 3, 6, 2, 4
    family = "gru_after" if reset_after else "gru_before"
    kernel, recurrent, bias = _keras_layer(rng, family, n_in, H)
    x = rng.uniform(-1, 1, (B, T, n_in))
    inp, rec = _draw(rng, (B, n_in), 0.3), _draw(rng, (B, H), 0.5)
    assert (rec == 0).any() and (rec != 0).any()
    w = [_core_weights(family, kernel, recurrent, bias, "ifgo")]
    got = {}
    for dropped in (False, True):
        masks = CellMasks((torch.from_numpy(inp),), (torch.from_numpy(rec),), update_uses_dropped_h=dropped)
        got[dropped], h = gru(torch.from_numpy(x), w, batch_first=True, reset_after=reset_after, gate_order="zrn",
                              cell_masks=masks)
        want, (want_h,) = keras_rnn.training_layer("gru", x, kernel, recurrent, bias, [inp] * 3, [rec] * 3,
                                                   reset_after=reset_after, update_uses_dropped_h=dropped)
        assert_close(got[dropped].detach().numpy(), want, dtype=torch.float64)
        assert_close(h[0].detach().numpy(), want_h, dtype=torch.float64)
    assert not torch.allclose(got[False], got[True])


def _which(family):
    """The family's front end: (run, which_kernel, its cell keywords for Keras's weights as stored)."""
    import compat.gru
    import compat.lstm
    import compat.simple_rnn

    if family == "lstm":
        return compat.lstm.lstm, compat.lstm.which_kernel, {}
    if family == "rnn":
        return compat.simple_rnn.simple_rnn, compat.simple_rnn.which_kernel, {}
    return compat.gru.gru, compat.gru.which_kernel, {"reset_after": family == "gru_after", "gate_order": "zrn"}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_per_step_input_masks_run_on_the_fused_kernel_with_the_step_loops_numbers(family, direction):
    """tf-keras's fused path's rule (a new input mask per step and element, no recurrent dropout) multiplies the
    input before any kernel: the selection keeps the fused kernel (a bidirectional stack runs as its two
    directions, each with its own mask), and its outputs, final states and gradients are the step loop's."""
    rng = np.random.default_rng(7)
    B, T, n_in, H = 3, 5, 2, 4
    D = 2 if direction == "bidirectional" else 1
    sets = [_core_weights(family, *_keras_layer(rng, family, n_in, H), "ifgo") for _ in range(D)]
    sets = [LayerWeights(*(None if t is None else t.requires_grad_() for t in w)) for w in sets]
    weights = [tuple(sets)] if D == 2 else sets
    x = torch.from_numpy(rng.uniform(-1, 1, (B, T, n_in))).requires_grad_()
    masks = CellMasks(tuple(torch.from_numpy(_draw(rng, (B, T, n_in), 0.3)) for _ in range(D)), input_per_step=True)
    run, which_kernel, cell = _which(family)
    results = {}
    for kernel in ("auto", "loop"):
        out = run(x, weights, batch_first=True, direction=direction, cell_masks=masks, kernel=kernel, **cell)
        y, finals = out[0], (out[1] if family == "lstm" else (out[1],))
        params = [t for w in sets for t in w if t is not None]
        grads = torch.autograd.grad(y.square().sum() + sum(f.sum() for f in finals), [x] + params)
        results[kernel] = [y.detach()] + [f.detach() for f in finals] + list(grads)
    for a, b in zip(results["auto"], results["loop"]):
        assert_close(a.numpy(), b.numpy(), dtype=torch.float64)
    choice = which_kernel(x.detach(), weights, batch_first=True, direction=direction, cell_masks=masks, **cell)
    # The masks keep the fast kernels: the fused one, or at one thread the compiled loop for float64 (the
    # selection's row 5; a masked bidirectional stack runs as its two directions); the step loop only where
    # torch has no kernel (a reset-before GRU).
    assert choice.name == "loop" if family == "gru_before" else choice.name in ("fused", "compiled")


def test_bad_cell_masks_are_one_clear_error_naming_the_field():
    x = torch.randn(2, 4, 3, dtype=torch.float64)  # batch-first [B, T, in]
    w = [LayerWeights(torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64), None, None)]
    one = dict(batch_first=True)
    cases = [
        (CellMasks((torch.ones(4, 2, 5, dtype=torch.float64),)), r"cell_masks.input\[0\] has shape \[4, 2, 5\]; "
                                                                  r"expected \[B, in\] = \[2, 3\] or \[G, B, in\]"),
        (CellMasks(None, (torch.ones(3, 2, 2, dtype=torch.float64),)), r"cell_masks.recurrent\[0\] has shape "
                                                                        r"\[3, 2, 2\]; expected \[B, H\] = \[2, 2\]"),
        (CellMasks((torch.ones(2, 3, dtype=torch.float32),)), r"cell_masks.input\[0\] has dtype torch.float32"),
        (CellMasks((torch.ones(2, 3, dtype=torch.float64),) * 2), "masks for 2 directions; the stack has 1"),
        (CellMasks((torch.ones(2, 3, dtype=torch.float64),), input_per_step=True),
         r"expected x's shape \[B, T, in\] = \[2, 4, 3\]"),
        (CellMasks(None, (torch.ones(2, 2, dtype=torch.float64),), update_uses_dropped_h=True),
         "update_uses_dropped_h is the GRU's"),
        ("masks", "cell_masks must be a compat.recurrent.masks.CellMasks or None"),
    ]
    for masks, message in cases:
        with pytest.raises(CellMasksError, match=message):
            lstm(x, w, cell_masks=masks, **one)
    with pytest.raises(CellMasksError, match="it needs recurrent masks"):
        gru(x, [(torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64))],
            cell_masks=CellMasks((torch.ones(2, 3, dtype=torch.float64),), update_uses_dropped_h=True), **one)
    two = [w[0], LayerWeights(torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64),
                              None, None)]
    with pytest.raises(CellMasksError, match="cell masks are one layer's .* this stack has 2 layers"):
        lstm(x, two, cell_masks=CellMasks((torch.ones(2, 3, dtype=torch.float64),)), **one)
    with pytest.raises(CellMasksError, match="weight_grad_ignores_cont"):
        lstm(x, w, recurrent_weight_grad_ignores_cont=True,
             cell_masks=CellMasks(None, (torch.ones(2, 2, dtype=torch.float64),)), **one)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, [4, 3], batch_first=True)
    with pytest.raises(ValueError, match="cell_masks does not apply to a PackedSequence"):
        lstm(packed, w, cell_masks=CellMasks((torch.ones(2, 3, dtype=torch.float64),)))
    for bad, message in (({"input": torch.ones(2, 3)}, "a tuple of one mask"), ({"input": (3,)}, "a tensor or None"),
                         ({"input_per_step": 1}, "true or false")):
        with pytest.raises(CellMasksError, match=message):
            CellMasks(**bad)
