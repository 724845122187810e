"""compat.seq2seq (TF1 legacy_seq2seq) against the numpy oracle reference/tf_seq2seq.py, float64."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.strategies import composite

import compat.seq2seq as seq2seq
from compat.seq2seq import (BasicLSTMCell, LSTMStateTuple, extract_argmax_and_embed, inferred_loop, rnn_decoder,
                            sample_logits, sampled_loop, sequence_loss, sequence_loss_by_example)
from reference import tf_lstm
from reference import tf_seq2seq as ref
from tests.tolerances import assert_close

F64 = torch.float64


@composite
def decoder_cases(draw, max_steps=5):
    """A BasicLSTMCell with its weights, a decoder input list, an initial state and output projection."""
    seed = draw(st.integers(0, 2**31 - 1))
    T = draw(st.integers(1, max_steps))
    B = draw(st.integers(1, 4))
    H = draw(st.integers(1, 6))
    V = draw(st.integers(2, 9))
    forget_bias = draw(st.sampled_from([1.0, 0.0, 0.5]))
    rng = np.random.default_rng(seed)
    case = dict(
        T=T, B=B, H=H, V=V, forget_bias=forget_bias,
        kernel=rng.normal(size=(2 * H, 4 * H)), bias=rng.normal(size=4 * H),
        inputs=rng.normal(size=(T, B, H)), c0=rng.normal(size=(B, H)), h0=rng.normal(size=(B, H)),
        W=rng.normal(size=(H, V)) * 2, b=rng.normal(size=V), embedding=rng.normal(size=(V, H)),
    )
    note(f"T={T} B={B} H={H} V={V} forget_bias={forget_bias} seed={seed}")
    return case


def make_cell(case, dtype=F64):
    cell = BasicLSTMCell(case["H"], case["H"], case["forget_bias"], dtype=dtype)
    with torch.no_grad():
        cell.kernel.copy_(torch.from_numpy(case["kernel"]))
        cell.bias.copy_(torch.from_numpy(case["bias"]))
    return cell


def t(x, requires_grad=False):
    return torch.tensor(x, dtype=F64, requires_grad=requires_grad)


@given(decoder_cases())
def test_basic_lstm_cell_step_equals_tf(case):
    cell = make_cell(case)
    out, state = cell(t(case["inputs"][0]), LSTMStateTuple(t(case["c0"]), t(case["h0"])))
    ref_out, (ref_c, ref_h) = tf_lstm.basic_lstm_cell(case["inputs"][0], (case["c0"], case["h0"]), case["kernel"],
                                                      case["bias"], case["forget_bias"])
    assert_close(out, ref_out)
    assert_close(state.c, ref_c)
    assert_close(state.h, ref_h)


@given(decoder_cases())
def test_rnn_decoder_without_loop_function(case):
    cell = make_cell(case)
    inputs = [t(x) for x in case["inputs"]]
    outputs, state = rnn_decoder(inputs, LSTMStateTuple(t(case["c0"]), t(case["h0"])), cell)
    ref_outputs, (ref_c, ref_h) = ref.rnn_decoder(list(case["inputs"]), (case["c0"], case["h0"]),
                                                  ref.lstm_cell_fn(case["kernel"], case["bias"], case["forget_bias"]))
    assert len(outputs) == case["T"]
    assert_close(torch.stack(outputs), np.stack(ref_outputs))
    assert_close(state.c, ref_c)
    assert_close(state.h, ref_h)


@given(decoder_cases())
def test_rnn_decoder_with_inferred_loop(case):
    cell = make_cell(case)
    W, b, E = t(case["W"]), t(case["b"]), t(case["embedding"])
    inputs = [t(x) for x in case["inputs"]]
    outputs, state = rnn_decoder(inputs, LSTMStateTuple(t(case["c0"]), t(case["h0"])), cell,
                                 loop_function=inferred_loop(W, b, E))
    ref_outputs, (ref_c, ref_h) = ref.rnn_decoder(
        list(case["inputs"]), (case["c0"], case["h0"]),
        ref.lstm_cell_fn(case["kernel"], case["bias"], case["forget_bias"]),
        loop_function=ref.inferred_loop(case["W"], case["b"], case["embedding"]))
    assert_close(torch.stack(outputs), np.stack(ref_outputs))
    assert_close(state.c, ref_c)
    assert_close(state.h, ref_h)
    # Only decoder_inputs[0] is read when a loop function is given; the rest only count the steps.
    garbage = [inputs[0]] + [torch.full_like(x, 1e3) for x in inputs[1:]]
    outputs2, _ = rnn_decoder(garbage, LSTMStateTuple(t(case["c0"]), t(case["h0"])), cell,
                              loop_function=inferred_loop(W, b, E))
    assert all(torch.equal(a, b) for a, b in zip(outputs, outputs2))


@given(decoder_cases())
def test_no_gradient_through_the_argmax_feedback(case):
    """Decoding with inferred_loop has exactly the gradients of teacher forcing on the (fixed) argmax ids:
    nothing flows back through the argmax into the previous output, W or b; the looked-up embedding rows
    do receive gradient (the recipe's stop_gradient is on the index only)."""
    def grads(loop: bool):
        cell = make_cell(case)
        W, b, E = t(case["W"], True), t(case["b"], True), t(case["embedding"], True)
        c0, h0 = t(case["c0"], True), t(case["h0"], True)
        x0 = t(case["inputs"][0], True)
        if loop:
            inputs = [x0] + [t(x) for x in case["inputs"][1:]]
            outputs, state = rnn_decoder(inputs, LSTMStateTuple(c0, h0), cell, loop_function=inferred_loop(W, b, E))
            ids = [torch.argmax(o @ W + b, dim=1) for o in outputs[:-1]]
        else:
            # Teacher forcing on the ids the loop picked, computed without autograd.
            with torch.no_grad():
                ref_outputs, _ = ref.rnn_decoder(
                    list(case["inputs"]), (case["c0"], case["h0"]),
                    ref.lstm_cell_fn(case["kernel"], case["bias"], case["forget_bias"]),
                    loop_function=ref.inferred_loop(case["W"], case["b"], case["embedding"]))
            ids = [torch.from_numpy(np.argmax(o @ case["W"] + case["b"], axis=1)) for o in ref_outputs[:-1]]
            inputs = [x0] + [torch.nn.functional.embedding(i, E) for i in ids]
            outputs, state = rnn_decoder(inputs, LSTMStateTuple(c0, h0), cell)
        logits = torch.stack(outputs) @ W + b
        loss = (logits ** 2).sum() + (state.c * 0.3).sum() + (state.h ** 3).sum()
        loss.backward()
        return [p.grad for p in (W, b, E, c0, h0, x0, cell.kernel, cell.bias)]

    for a, e in zip(grads(True), grads(False)):
        assert (a is None) == (e is None)
        if a is not None:
            assert_close(a, e)


def test_loop_function_convention_with_any_cell():
    """Step 0 runs on decoder_inputs[0]; step i > 0 on loop_function(prev, i) with prev the raw output of
    step i - 1 (seq2seq.py rnn_decoder)."""
    calls = []

    def cell(x, state):
        out = x * 2 + state
        return out, state + 1

    def loop_function(prev, i):
        calls.append((prev.clone(), i))
        return prev + 100 * i

    inputs = [torch.tensor([[1.0]]), torch.tensor([[-7.0]]), torch.tensor([[-9.0]])]
    outputs, state = rnn_decoder(inputs, torch.tensor([[0.0]]), cell, loop_function=loop_function)
    # step 0: 1*2 + 0 = 2; step 1: input 2 + 100 = 102 -> 204 + 1 = 205; step 2: 205 + 200 = 405 -> 810 + 2
    assert [float(o) for o in outputs] == [2.0, 205.0, 812.0]
    assert [(float(p), i) for p, i in calls] == [(2.0, 1), (205.0, 2)]
    assert float(state) == 3.0
    outputs, _ = rnn_decoder(inputs, torch.tensor([[0.0]]), cell)
    assert [float(o) for o in outputs] == [2.0, -13.0, -16.0]


def test_no_loop_function_runs_the_core_once(monkeypatch):
    calls = []
    real = seq2seq.lstm

    def counting(*args, **kwargs):
        calls.append(args[0].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(seq2seq, "lstm", counting)
    cell = BasicLSTMCell(3, 2, dtype=F64)
    rnn_decoder([torch.randn(4, 2, dtype=F64) for _ in range(6)], cell.zero_state(4), cell)
    assert calls == [6]
    calls.clear()
    W, b, E = torch.randn(3, 5, dtype=F64), torch.randn(5, dtype=F64), torch.randn(5, 2, dtype=F64)
    rnn_decoder([torch.randn(4, 2, dtype=F64) for _ in range(6)], cell.zero_state(4), cell,
                loop_function=inferred_loop(W, b, E))
    assert calls == [1] * 6


@given(decoder_cases())
def test_extract_argmax_and_embed_matches_inferred_loop_and_cuts_embedding_gradient(case):
    cell = make_cell(case)
    W, b = t(case["W"]), t(case["b"])
    E = t(case["embedding"], True)
    inputs = [t(x) for x in case["inputs"]]
    state0 = LSTMStateTuple(t(case["c0"]), t(case["h0"]))
    a, _ = rnn_decoder(inputs, state0, cell, loop_function=inferred_loop(W, b, E))
    b_out, _ = rnn_decoder(inputs, state0, cell, loop_function=extract_argmax_and_embed(E, (W, b), False))
    assert all(torch.equal(x, y) for x, y in zip(a, b_out))
    loss = torch.stack(b_out).sum()
    if loss.requires_grad:
        loss.backward()
    assert E.grad is None or float(E.grad.abs().sum()) == 0.0


@composite
def loss_cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    T, B, V = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(2, 8))
    zero_weights = draw(st.booleans())
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(T, B, V)) * 3
    targets = rng.integers(0, V, size=(T, B))
    weights = rng.uniform(0, 2, size=(T, B))
    if zero_weights:
        weights[:, 0] = 0.0
    note(f"T={T} B={B} V={V} seed={seed} zero_weights={zero_weights}")
    return logits, targets, weights


@given(loss_cases(), st.booleans(), st.booleans())
def test_sequence_losses_equal_tf(case, across_timesteps, across_batch):
    logits, targets, weights = case
    tl = [t(x) for x in logits]
    tt = [torch.from_numpy(x) for x in targets]
    tw = [t(x) for x in weights]
    by_example = sequence_loss_by_example(tl, tt, tw, average_across_timesteps=across_timesteps)
    assert_close(by_example, ref.sequence_loss_by_example(list(logits), list(targets), list(weights), across_timesteps))
    total = sequence_loss(tl, tt, tw, across_timesteps, across_batch)
    assert_close(total, ref.sequence_loss(list(logits), list(targets), list(weights), across_timesteps, across_batch))
    # the stacked [T, B, V] form is the same computation
    assert_close(sequence_loss(t(logits), torch.from_numpy(targets), t(weights), across_timesteps, across_batch), total)


def test_all_zero_weights_divide_by_1e_12_not_zero():
    logits = [torch.zeros(2, 3, dtype=F64)]
    out = sequence_loss_by_example(logits, [torch.tensor([0, 1])], [torch.zeros(2, dtype=F64)])
    assert torch.equal(out, torch.zeros(2, dtype=F64))


def test_softmax_loss_function_replaces_crossentropy():
    seen = {}

    def loss_fn(labels, logits):
        seen["labels"] = labels
        return logits.sum(dim=1)

    logits = [torch.ones(2, 3, dtype=F64)]
    out = sequence_loss_by_example(logits, [torch.tensor([[0], [1]])], [torch.ones(2, dtype=F64)],
                                   average_across_timesteps=False, softmax_loss_function=loss_fn)
    assert torch.equal(out, torch.full((2,), 3.0, dtype=F64))
    assert seen["labels"].shape == (2, 1)


def test_loss_errors_name_the_problem():
    with pytest.raises(ValueError, match="Lengths of logits, weights, and targets"):
        sequence_loss_by_example([torch.zeros(2, 3)], [], [torch.ones(2)])
    with pytest.raises(ValueError, match=r"word id 3 in the targets of step 0 is outside the vocabulary \[0, 3\)"):
        sequence_loss_by_example([torch.zeros(2, 3)], [torch.tensor([0, 3])], [torch.ones(2)])
    with pytest.raises(ValueError, match="do not agree"):
        sequence_loss_by_example([torch.zeros(2, 3)], [torch.tensor([0, 1, 2])], [torch.ones(3)])


def test_decoder_and_cell_errors_name_the_problem():
    cell = BasicLSTMCell(3, 2)
    with pytest.raises(ValueError, match="at least one decoder input"):
        rnn_decoder([], cell.zero_state(1), cell)
    with pytest.raises(ValueError, match=r"decoder_inputs\[1\]"):
        rnn_decoder([torch.zeros(1, 2), torch.zeros(2)], cell.zero_state(1), cell)
    with pytest.raises(ValueError, match="state c has shape"):
        cell(torch.zeros(2, 2), cell.zero_state(1))
    with pytest.raises(ValueError, match="input_size=2"):
        cell(torch.zeros(1, 5), cell.zero_state(1))


def test_cell_initialisation_is_glorot_uniform_and_zero_bias():
    cell = BasicLSTMCell(64, 32, generator=torch.Generator().manual_seed(0))
    limit = (6.0 / (96 + 256)) ** 0.5
    kernel = cell.kernel.detach()
    assert float(kernel.abs().max()) <= limit
    assert float(kernel.abs().max()) > 0.95 * limit
    assert abs(float(kernel.std()) - limit / 3 ** 0.5) < 0.02 * limit
    assert torch.equal(cell.bias.detach(), torch.zeros(256))


@given(st.integers(0, 2**31 - 1))
@settings(max_examples=5)
def test_sample_logits_greedy_seeded_and_top_k(seed):
    rng = np.random.default_rng(seed)
    logits = torch.tensor(rng.normal(size=(3, 6)) * 2)
    assert torch.equal(sample_logits(logits), torch.argmax(logits, dim=1))
    assert torch.equal(sample_logits(logits, temperature=0.0), torch.argmax(logits, dim=1))
    assert torch.equal(sample_logits(logits, 5.0, top_k=1, generator=torch.Generator().manual_seed(1)),
                       torch.argmax(logits, dim=1))
    a = sample_logits(logits, 1.3, generator=torch.Generator().manual_seed(seed))
    b = sample_logits(logits, 1.3, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(a, b)
    top2 = torch.topk(logits, 2, dim=1).indices
    for _ in range(10):
        draw = sample_logits(logits, 2.0, top_k=2, generator=torch.Generator().manual_seed(int(rng.integers(1 << 30))))
        assert all(int(draw[r]) in top2[r].tolist() for r in range(3))


def test_sample_logits_frequencies_follow_softmax_over_temperature():
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]])
    gen = torch.Generator().manual_seed(0)
    n = 4000
    counts = np.bincount([int(sample_logits(logits, 2.0, generator=gen)[0]) for _ in range(n)], minlength=4)
    expected = ref.softmax(logits.numpy()[0] / 2.0)
    # binomial standard error at n = 4000 is below 0.008; 4.5 standard errors
    assert np.abs(counts / n - expected).max() < 0.035, (counts / n, expected)


def test_sampled_loop_is_reproducible_and_top1_is_greedy():
    torch.manual_seed(0)
    cell = BasicLSTMCell(5, 5, dtype=F64)
    W, b, E = torch.randn(5, 9, dtype=F64), torch.randn(9, dtype=F64), torch.randn(9, 5, dtype=F64)
    inputs = [torch.randn(2, 5, dtype=F64) for _ in range(6)]
    greedy, _ = rnn_decoder(inputs, cell.zero_state(2), cell, loop_function=inferred_loop(W, b, E))
    top1, _ = rnn_decoder(inputs, cell.zero_state(2), cell,
                          loop_function=sampled_loop(W, b, E, 3.0, 1, torch.Generator().manual_seed(3)))
    assert all(torch.equal(x, y) for x, y in zip(greedy, top1))
    runs = [rnn_decoder(inputs, cell.zero_state(2), cell,
                        loop_function=sampled_loop(W, b, E, 1.5, None, torch.Generator().manual_seed(7)))[0]
            for _ in range(2)]
    assert all(torch.equal(x, y) for x, y in zip(*runs))


def test_reference_backward_matches_finite_differences():
    """The oracle's hand-derived gradients (used for the Adam-step tests) against central differences."""
    rng = np.random.default_rng(5)
    H, V, B, T = 3, 6, 2, 4
    params = {"W": rng.normal(size=(H, V)), "b": rng.normal(size=V), "embedding_mat": rng.normal(size=(V, H)),
              "kernel": rng.normal(size=(2 * H, 4 * H)) * 0.7, "bias": rng.normal(size=4 * H)}
    x = np.array([[1, 2, 2, 5], [0, 2, 1, 1]])  # repeated ids
    y = np.roll(x, -1, axis=1)
    state = (rng.normal(size=(B, H)), rng.normal(size=(B, H)))
    _, _, cache = ref.recipe_forward(params, x, y, state)
    grads = ref.recipe_backward(cache)
    eps = 1e-6
    for name in ("W", "b", "embedding_mat", "kernel", "bias"):
        numeric = np.zeros_like(params[name])
        for idx in np.ndindex(*params[name].shape):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric[idx] = (ref.recipe_forward(plus, x, y, state)[0] - ref.recipe_forward(minus, x, y, state)[0]) / (2 * eps)
        assert_close(grads[name], numeric, loosen=1e4, reason="central differences carry O(eps^2) and rounding error")
