"""ports.tf_ptb's model, cost and training step against the numpy oracle of ptb_word_lm (float64)."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import event, given, note
from hypothesis import strategies as st
from hypothesis.strategies import composite

from ports.tf_ptb import Config, PTBModel, train_step
from reference import tf_ptb as ref
from reference.tf_lstm import static_rnn
from tests.tolerances import assert_close


class Problem(NamedTuple):
    config: Config
    params: dict          # the reference's layout: embedding, layers [(kernel, bias)], softmax_w, softmax_b
    inputs: np.ndarray    # [B, T] ids
    targets: np.ndarray   # [B, T] ids
    state: list           # [(c, h)] per layer


@composite
def problems(draw, shared=None, repeated_ids=None, keep_prob=1.0):
    """A small PTB model and one batch. Sizes: hidden 1-4, vocab 2-12, layers 1-3, batch 1-4, steps 1-5."""
    hidden = draw(st.integers(1, 4), label="hidden")
    vocab = draw(st.integers(2, 12), label="vocab")
    layers = draw(st.integers(1, 3), label="layers")
    batch = draw(st.integers(1, 4), label="batch")
    steps = draw(st.integers(1, 5), label="steps")
    if shared is None:
        shared = draw(st.booleans(), label="shared")
    forget_bias = draw(st.sampled_from([0.0, 1.0, -0.7]), label="forget_bias")
    seed = draw(st.integers(0, 2 ** 32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([0.1, 0.5, 1.5]), label="init scale")
    if repeated_ids is True:
        vocab = min(vocab, max(2, batch * steps - 1))
        batch, steps = max(batch, 2), max(steps, 2)
    inputs = rng.integers(0, vocab, (batch, steps))
    if repeated_ids is True:
        inputs.flat[-1] = inputs.flat[0]  # at least one id occurs twice
    elif repeated_ids is False:
        vocab = max(vocab, batch * steps)
        inputs = rng.permutation(vocab)[:batch * steps].reshape(batch, steps)
    targets = rng.integers(0, vocab, (batch, steps))
    n_cells = 1 if shared else layers
    cells = [(rng.uniform(-scale, scale, (2 * hidden, 4 * hidden)), rng.uniform(-scale, scale, 4 * hidden))
             for _ in range(n_cells)]
    params = {"embedding": rng.uniform(-scale, scale, (vocab, hidden)),
              "layers": cells * layers if shared else cells,
              "softmax_w": rng.uniform(-scale, scale, (hidden, vocab)),
              "softmax_b": rng.uniform(-scale, scale, vocab)}
    state = [(rng.normal(size=(batch, hidden)), rng.normal(size=(batch, hidden))) for _ in range(layers)]
    config = dataclasses.replace(Config.preset("small"), hidden_size=hidden, vocab_size=vocab, num_layers=layers,
                                 batch_size=batch, num_steps=steps, forget_bias=forget_bias, keep_prob=keep_prob,
                                 shared_cell_weights=shared)
    note(f"hidden={hidden} vocab={vocab} layers={layers} batch={batch} steps={steps} shared={shared} "
         f"forget_bias={forget_bias} seed={seed} scale={scale}")
    event(f"layers={layers} shared={shared}")
    return Problem(config, params, inputs, targets, state)


def port_model(problem: Problem, is_training: bool = False, **changes) -> PTBModel:
    config = dataclasses.replace(problem.config, **changes) if changes else problem.config
    model = PTBModel(config, is_training=is_training, dtype=torch.float64)
    with torch.no_grad():
        model.embedding.copy_(torch.from_numpy(problem.params["embedding"]))
        model.softmax_w.copy_(torch.from_numpy(problem.params["softmax_w"]))
        model.softmax_b.copy_(torch.from_numpy(problem.params["softmax_b"]))
        for cell, (kernel, bias) in zip(model.cells, problem.params["layers"]):
            cell.kernel.copy_(torch.from_numpy(kernel))
            cell.bias.copy_(torch.from_numpy(bias))
    return model


def torch_state(state):
    return tuple((torch.from_numpy(c), torch.from_numpy(h)) for c, h in state)


@given(problems())
def test_logits_cost_and_final_state_match_reference(problem):
    model = port_model(problem)
    logits, final = model(torch.from_numpy(problem.inputs), torch_state(problem.state))
    ref_logits, ref_final, _ = ref.forward(problem.params, problem.inputs, problem.state, problem.config.forget_bias)
    B, T = problem.inputs.shape
    assert logits.shape == (B * T, problem.config.vocab_size)
    assert_close(logits, ref_logits)
    assert len(final) == problem.config.num_layers
    for (c, h), (rc, rh) in zip(final, ref_final):
        assert_close(c, rc)
        assert_close(h, rh)
    cost = model.cost(logits, torch.from_numpy(problem.targets))
    assert_close(cost, ref.ptb_cost(ref_logits, problem.targets))


@given(problems(shared=False))
def test_logit_rows_are_batch_major_like_tf(problem):
    """Row b * num_steps + t of the logits is batch element b at step t (TF's reshape of concat(outputs, 1))."""
    model = port_model(problem)
    logits, _ = model(torch.from_numpy(problem.inputs), torch_state(problem.state))
    E = problem.params["embedding"]
    outputs, _ = static_rnn(E[problem.inputs].transpose(1, 0, 2), problem.state, problem.params["layers"],
                            problem.config.forget_bias)
    B, T = problem.inputs.shape
    for b in range(B):
        for t in range(T):
            expected = outputs[t, b] @ problem.params["softmax_w"] + problem.params["softmax_b"]
            assert_close(logits[b * T + t], expected)


@given(problems())
def test_zero_initial_state_is_tf_zero_state(problem):
    model = port_model(problem)
    zeros = [(np.zeros_like(c), np.zeros_like(h)) for c, h in problem.state]
    logits, _ = model(torch.from_numpy(problem.inputs))
    ref_logits, _, _ = ref.forward(problem.params, problem.inputs, zeros, problem.config.forget_bias)
    assert_close(logits, ref_logits)
    for c, h in model.initial_state(problem.inputs.shape[0]):
        assert not c.any() and not h.any()


def _check_train_step(problem, max_grad_norm, lr, dense=False):
    config_changes = dict(max_grad_norm=max_grad_norm, embedding_norm="dense" if dense else "indexed_slices")
    model = port_model(problem, is_training=True, **config_changes)
    cost, final, norm = train_step(model, torch.from_numpy(problem.inputs), torch.from_numpy(problem.targets),
                                   torch_state(problem.state), lr)
    r_cost, r_params, r_final, r_norm = ref.train_step(
        problem.params, problem.inputs, problem.targets, problem.state, lr, max_grad_norm,
        problem.config.forget_bias, shared=problem.config.shared_cell_weights, dense_embedding_norm=dense)
    assert_close(torch.tensor(cost), torch.tensor(r_cost))
    assert_close(torch.tensor(norm), torch.tensor(r_norm))
    for (c, h), (rc, rh) in zip(final, r_final):
        assert_close(c, rc)
        assert_close(h, rh)
    assert_close(model.embedding, r_params["embedding"])
    assert_close(model.softmax_w, r_params["softmax_w"])
    assert_close(model.softmax_b, r_params["softmax_b"])
    for cell, (kernel, bias) in zip(model.cells, r_params["layers"]):
        assert_close(cell.kernel, kernel)
        assert_close(cell.bias, bias)
    return r_norm


@given(problems(), st.sampled_from(["active", "inactive"]), st.sampled_from([0.1, 1.0]))
def test_train_step_matches_reference_with_clipping_active_and_inactive(problem, clipping, lr):
    _, grads, _, _ = ref.gradients(problem.params, problem.inputs, problem.targets, problem.state,
                                   problem.config.forget_bias, shared=problem.config.shared_cell_weights)
    t_list = [grads["embedding"]] + [g for pair in grads["layers"] for g in pair] + [grads["softmax_w"], grads["softmax_b"]]
    norm = ref.global_norm(t_list)
    max_grad_norm = norm * (0.3 if clipping == "active" else 3.0)
    note(f"global norm {norm}, max_grad_norm {max_grad_norm}")
    event(f"clipping {clipping}")
    r_norm = _check_train_step(problem, max_grad_norm, lr)
    assert (r_norm > max_grad_norm) == (clipping == "active")


@given(problems(repeated_ids=True), st.booleans())
def test_repeated_ids_use_tf_indexed_slices_norm(problem, dense):
    """With a repeated id the IndexedSlices norm differs from the dense one; the port follows TF by default
    (and the dense norm under embedding_norm="dense"), with clipping active so the difference reaches the update."""
    _, grads, _, _ = ref.gradients(problem.params, problem.inputs, problem.targets, problem.state,
                                   problem.config.forget_bias, shared=problem.config.shared_cell_weights)
    sliced = grads["embedding"]
    dense_emb = ref.to_dense(sliced)
    sliced_norm = np.sqrt(np.sum(sliced.values ** 2))
    dense_norm = np.sqrt(np.sum(dense_emb ** 2))
    note(f"embedding grad norm: IndexedSlices {sliced_norm}, dense {dense_norm}")
    assert abs(sliced_norm - dense_norm) > 1e-9 * max(sliced_norm, 1e-300)
    rest = [g for pair in grads["layers"] for g in pair] + [grads["softmax_w"], grads["softmax_b"]]
    tf_norm = ref.global_norm([sliced] + rest)
    max_grad_norm = 0.5 * tf_norm
    r_norm = _check_train_step(problem, max_grad_norm, 1.0, dense=dense)
    assert_close(torch.tensor(r_norm), torch.tensor(ref.global_norm([dense_emb if dense else sliced] + rest)))


@given(problems(repeated_ids=False))
def test_distinct_ids_give_equal_norms(problem):
    _, grads, _, _ = ref.gradients(problem.params, problem.inputs, problem.targets, problem.state,
                                   problem.config.forget_bias)
    sliced = grads["embedding"]
    assert_close(torch.tensor(np.sqrt(np.sum(sliced.values ** 2))),
                 torch.tensor(np.sqrt(np.sum(ref.to_dense(sliced) ** 2))))


@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
def test_reference_gradients_match_finite_differences(dropout):
    """The oracle's hand-derived BPTT against central differences (float64), also through fixed dropout masks."""
    rng = np.random.default_rng(3)
    V, H, B, T, L = 5, 2, 2, 3, 2
    params = {"embedding": rng.normal(size=(V, H)), "layers": [(rng.normal(size=(2 * H, 4 * H)) * .5,
                                                               rng.normal(size=4 * H) * .5) for _ in range(L)],
              "softmax_w": rng.normal(size=(H, V)), "softmax_b": rng.normal(size=V)}
    x = np.array([[0, 1, 0], [3, 0, 4]])
    y = rng.integers(0, V, (B, T))
    state = [(rng.normal(size=(B, H)), rng.normal(size=(B, H))) for _ in range(L)]
    keep = 0.6 if dropout else 1.0
    noise = {"input": rng.random((B, T, H)) < keep, "outputs": [rng.random((B, T, H)) < keep for _ in range(L)]} \
        if dropout else None
    _, grads, _, _ = ref.gradients(params, x, y, state, 0.4, keep_prob=keep, noise=noise)

    def cost_with(key, layer, which, idx, delta):
        p = {"embedding": params["embedding"].copy(), "softmax_w": params["softmax_w"].copy(),
             "softmax_b": params["softmax_b"].copy(), "layers": [(k.copy(), b.copy()) for k, b in params["layers"]]}
        target = p[key] if key != "layers" else p["layers"][layer][which]
        target[idx] += delta
        return ref.ptb_cost(ref.forward(p, x, state, 0.4, keep, noise)[0], y)

    eps = 1e-6
    checks = [("embedding", None, None, ref.to_dense(grads["embedding"]), params["embedding"]),
              ("softmax_w", None, None, grads["softmax_w"], params["softmax_w"]),
              ("softmax_b", None, None, grads["softmax_b"], params["softmax_b"])]
    checks += [("layers", k, w, grads["layers"][k][w], params["layers"][k][w]) for k in range(L) for w in range(2)]
    for key, layer, which, analytic, value in checks:
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            numeric[idx] = (cost_with(key, layer, which, idx, eps) - cost_with(key, layer, which, idx, -eps)) / (2 * eps)
        assert_close(analytic, numeric, loosen=1e4, reason="central differences are accurate to ~1e-7 here")


@given(problems(shared=False, keep_prob=0.5))
def test_dropout_only_in_training_and_on_the_last_layer_output(problem):
    """keep_prob < 1: evaluation equals the oracle (no dropout); training drops the top layer's output too
    (DropoutWrapper(output_keep_prob) on every cell), so some of its units are exactly zero."""
    model = port_model(problem, is_training=False)
    logits, _ = model(torch.from_numpy(problem.inputs), torch_state(problem.state))
    ref_logits, _, _ = ref.forward(problem.params, problem.inputs, problem.state, problem.config.forget_bias)
    assert_close(logits, ref_logits)
    H, V = problem.config.hidden_size, problem.config.vocab_size
    big = dataclasses.replace(problem.config, vocab_size=max(V, H), batch_size=8, num_steps=8)
    model = PTBModel(big, is_training=True, dtype=torch.float64)
    with torch.no_grad():  # logits = the top layer's (dropped-out) output in the first H columns
        model.softmax_w.zero_()
        model.softmax_w[:, :H] = torch.eye(H, dtype=torch.float64)
        model.softmax_b.zero_()
    torch.manual_seed(0)
    inputs = torch.randint(0, big.vocab_size, (8, 8))
    out = model(inputs)[0][:, :H]
    zero_fraction = float((out == 0).double().mean())
    note(f"fraction of zero outputs {zero_fraction}")
    assert 0.2 < zero_fraction < 0.8


class FixedNoiseDropout:
    """Stands in for ``torch.nn.functional.dropout``: each call draws a 0/1 keep mask from a seeded generator,
    records it, and applies TF's ``x * mask / keep_prob`` (tf.nn.dropout), so that the numpy reference can be
    given the very same masks."""

    def __init__(self, seed: int, keep_prob: float):
        self.rng = np.random.default_rng(seed)
        self.keep_prob = keep_prob
        self.masks = []

    def __call__(self, x, p=0.5, training=True, inplace=False):
        assert training and abs(p - (1 - self.keep_prob)) < 1e-12, (p, training)
        mask = self.rng.random(tuple(x.shape)) < self.keep_prob
        self.masks.append(mask)
        return x * torch.as_tensor(mask, dtype=x.dtype, device=x.device) / self.keep_prob


@given(problems(keep_prob=0.5), st.integers(0, 2 ** 31 - 1))
def test_training_dropout_matches_reference_with_the_same_masks(problem, seed):
    """ptb_word_lm's training graph, dropout included: ``tf.nn.dropout`` on the embedding output and
    ``DropoutWrapper(output_keep_prob)`` on every layer's output, TF's scaling, the state undropped. The port's
    dropout calls are fed fixed masks, the reference gets the same: logits, cost, final state and every gradient
    agree. The core runs its step loop here (the fused kernel draws between-layer masks inside ATen, where none
    can be fed; tests/test_core.py checks the placement on both paths)."""
    from unittest import mock

    import ports.tf_ptb.model as model_module
    from compat.recurrent import run as core_run

    def loop_run(*args, **kwargs):
        kwargs["kernel"] = "loop"
        return core_run(*args, **kwargs)

    keep = problem.config.keep_prob
    noise = FixedNoiseDropout(seed, keep)
    model = port_model(problem, is_training=True)
    with mock.patch.object(torch.nn.functional, "dropout", noise), mock.patch.object(model_module, "run", loop_run):
        logits, final = model(torch.from_numpy(problem.inputs), torch_state(problem.state))
    B, T = problem.inputs.shape
    L, H = problem.config.num_layers, problem.config.hidden_size
    shapes = [m.shape for m in noise.masks]
    assert shapes == [(B, T, H)] + [(T, B, H)] * L, f"dropout calls {shapes}: the embedding, then each layer"
    masks = {"input": noise.masks[0], "outputs": [m.transpose(1, 0, 2) for m in noise.masks[1:]]}
    cost = model.cost(logits, torch.from_numpy(problem.targets))
    cost.backward()
    r_cost, grads, r_logits, r_final = ref.gradients(
        problem.params, problem.inputs, problem.targets, problem.state, problem.config.forget_bias,
        shared=problem.config.shared_cell_weights, keep_prob=keep, noise=masks)
    assert_close(logits, r_logits)
    assert_close(cost, torch.tensor(r_cost))
    for (c, h), (rc, rh) in zip(final, r_final):
        assert_close(c, rc)
        assert_close(h, rh)
    assert_close(model.embedding.grad, ref.to_dense(grads["embedding"]))
    assert_close(model.softmax_w.grad, grads["softmax_w"])
    assert_close(model.softmax_b.grad, grads["softmax_b"])
    for cell, (dk, db) in zip(model.cells, grads["layers"]):
        assert_close(cell.kernel.grad, dk)
        assert_close(cell.bias.grad, db)


def test_tf_initialisation_uniform_with_zero_lstm_bias():
    config = dataclasses.replace(Config.preset("small"), hidden_size=8, vocab_size=50, init_scale=0.05)
    torch.manual_seed(1)
    model = PTBModel(config)
    for cell in model.cells:
        assert not cell.bias.any()
        assert cell.kernel.abs().max() <= 0.05 and cell.kernel.std() > 0.01
    for p in (model.embedding, model.softmax_w, model.softmax_b):
        assert p.abs().max() <= 0.05 and p.std() > 0.01


def test_train_step_uses_tf_global_norm_over_model_parameters_only():
    config = dataclasses.replace(Config.preset("small"), hidden_size=3, vocab_size=6, num_layers=2, num_steps=3,
                                 batch_size=2, max_grad_norm=0.01)
    model = PTBModel(config, dtype=torch.float64)
    names = sorted(n for n, _ in model.named_parameters())
    assert names == ["cells.0.bias", "cells.0.kernel", "cells.1.bias", "cells.1.kernel", "embedding",
                     "softmax_b", "softmax_w"]
    x = torch.tensor([[1, 1, 2], [1, 3, 4]])
    cost, state, norm = train_step(model, x, x, None, 1.0)
    assert norm > config.max_grad_norm and np.isfinite(cost)
    assert len(state) == 2 and all(not c.requires_grad for c, _ in state)


def test_config_presets_and_learning_rate_schedule():
    small = Config.preset("small")
    assert (small.init_scale, small.max_grad_norm, small.num_steps, small.hidden_size, small.max_epoch,
            small.max_max_epoch, small.keep_prob, small.lr_decay, small.forget_bias) == (0.1, 5, 20, 200, 4, 13, 1.0, 0.5, 0.0)
    assert [small.learning_rate_at(i) for i in range(7)] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]
    large = Config.preset("large")
    assert large.learning_rate_at(14) == pytest.approx(1 / 1.15)
    book = Config.preset("book")
    assert (book.forget_bias, book.num_steps, book.keep_prob, book.init_scale) == (1.0, 35, 0.5, 0.05)
    assert {book.learning_rate_at(i) for i in range(book.max_max_epoch)} == {1.0}
    ev = Config.preset("medium").eval_config()
    assert (ev.batch_size, ev.num_steps, ev.hidden_size) == (1, 1, 650)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        Config.preset("huge")
    with pytest.raises(ValueError, match="keep_prob"):
        dataclasses.replace(small, keep_prob=0.0)
    with pytest.raises(ValueError, match="unknown Config fields"):
        Config.from_dict({**small.to_dict(), "foo": 1})
    assert Config.from_dict(small.to_dict()) == small


def test_bad_inputs_and_state_get_clear_errors():
    config = dataclasses.replace(Config.preset("test"), vocab_size=10, num_layers=2)
    model = PTBModel(config)
    with pytest.raises(ValueError, match="word id 10 .* outside the vocabulary"):
        model(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match=r"\[batch_size, num_steps\]"):
        model(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="state has 1 layers"):
        model(torch.tensor([[1, 2]]), model.initial_state(1)[:1])
    with pytest.raises(ValueError, match=r"state\[1\].c has shape"):
        model(torch.tensor([[1, 2]]), (model.initial_state(1)[0], (torch.zeros(2, 2), torch.zeros(1, 2))))


def test_forward_on_each_device_matches_reference(device):
    config = dataclasses.replace(Config.preset("test"), vocab_size=20, hidden_size=4, num_layers=2)
    torch.manual_seed(0)
    model = PTBModel(config, is_training=False, dtype=torch.float64)
    x = torch.randint(0, 20, (3, 5))
    def array(p):
        return p.detach().numpy().copy()

    params = {"embedding": array(model.embedding), "layers": [(array(c.kernel), array(c.bias)) for c in model.cells],
              "softmax_w": array(model.softmax_w), "softmax_b": array(model.softmax_b)}
    zeros = [(np.zeros((3, 4)), np.zeros((3, 4)))] * 2
    expected, _, _ = ref.forward(params, x.numpy(), zeros, config.forget_bias)
    logits, _ = model.to(device)(x.to(device))
    assert_close(logits.cpu(), expected)


def test_evaluation_cache_follows_parameter_updates():
    """Without autograd the converted weights are cached; a training step or a load must invalidate them."""
    config = dataclasses.replace(Config.preset("test"), vocab_size=12, hidden_size=3, num_layers=2, num_steps=3,
                                 batch_size=2)
    torch.manual_seed(0)
    model = PTBModel(config, is_training=False, dtype=torch.float64)
    x = torch.randint(0, 12, (2, 3))

    def fresh_logits():
        with torch.enable_grad():
            return model(x)[0].detach()

    with torch.no_grad():
        before = model(x)[0]
    assert_close(before, fresh_logits())
    train_step(model, x, x, None, 1.0)
    with torch.no_grad():
        after_step = model(x)[0]
    assert not torch.equal(before, after_step)
    assert_close(after_step, fresh_logits())
    other = PTBModel(config, dtype=torch.float64)
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        after_load = model(x)[0]
    assert_close(after_load, fresh_logits())
    assert not torch.equal(after_load, after_step)


@given(problems(shared=False), st.integers(2, 3))
def test_run_epoch_carries_state_and_matches_reference_loop(problem, n_steps):
    """ptb_word_lm's run_epoch: state carried batch to batch, perplexity exp(costs / iters), one TF step each."""
    from ports.tf_ptb import ptb_iterator, run_epoch

    cfg = problem.config
    B, T = cfg.batch_size, cfg.num_steps
    rng = np.random.default_rng(int(problem.inputs.sum()) + 1)
    data = rng.integers(0, cfg.vocab_size, B * (n_steps * T + 1)).tolist()
    model = port_model(problem, is_training=True, max_grad_norm=0.5)
    ppl = run_epoch(model, data, B, T, lr=0.7, progress=False)
    params, state = problem.params, [(np.zeros((B, cfg.hidden_size)),) * 2] * cfg.num_layers
    costs, iters = 0.0, 0
    for x, y in ptb_iterator(data, B, T):
        cost, params, state, _ = ref.train_step(params, x, y, state, 0.7, 0.5, cfg.forget_bias)
        costs += cost
        iters += T
    assert iters == n_steps * T
    assert_close(torch.tensor(ppl), torch.tensor(np.exp(costs / iters)))
    assert_close(model.embedding, params["embedding"])
    for cell, (kernel, bias) in zip(model.cells, params["layers"]):
        assert_close(cell.kernel, kernel)
    eval_ppl = run_epoch(model, data, B, T, progress=False)
    logits_costs, state = 0.0, [(np.zeros((B, cfg.hidden_size)),) * 2] * cfg.num_layers
    for x, y in ptb_iterator(data, B, T):
        logits, state, _ = ref.forward(params, x, state, cfg.forget_bias)
        logits_costs += ref.ptb_cost(logits, y)
    assert_close(torch.tensor(eval_ppl), torch.tensor(np.exp(logits_costs / iters)))
    assert model.training, "run_epoch restores the training mode"


def test_embedding_slices_are_applied_as_tf_scatter_sub():
    """apply_embedding_slices: each occurrence subtracts its own value * lr in order (TF's scatter_sub of
    IndexedSlices), bit for bit in float32, repeated ids included."""
    from ports.tf_ptb.train import apply_embedding_slices

    g = torch.Generator().manual_seed(0)
    emb = torch.nn.Parameter(torch.randn(7, 5, generator=g))
    ids = torch.tensor([3, 1, 3, 3, 0, 6, 1])
    values = torch.randn(7, 5, generator=g) * 1e-3
    lr = 0.7
    expected = emb.detach().clone()
    for k, i in enumerate(ids.tolist()):
        expected[i] = expected[i] - values[k] * lr
    apply_embedding_slices(emb, ids, values, lr)
    assert torch.equal(emb.detach(), expected)


def test_train_step_keeps_the_embedding_gradient_as_slices():
    """The TF-norm step forms no dense embedding gradient and updates the embedding as the dense path does."""
    config = dataclasses.replace(Config.preset("small"), hidden_size=4, vocab_size=9, num_layers=2, num_steps=3,
                                 batch_size=2, max_grad_norm=0.05)
    x = torch.tensor([[1, 1, 2], [1, 3, 4]])
    y = torch.tensor([[2, 5, 1], [0, 1, 1]])
    models = []
    for sliced in (True, False):
        model = PTBModel(config, dtype=torch.float64)
        model.reset_parameters(torch.Generator().manual_seed(3))
        if not sliced:  # the dense update of the same clipped gradient
            from ports.tf_ptb import train as train_module

            cost, final, lookup = model.training_cost(x, y)
            cost.backward()
            norm = train_module.clip_by_global_norm_(list(model.parameters()), config.max_grad_norm,
                                                     indexed_slices={model.embedding: lookup.rows.grad.reshape(-1, 4)})
            train_module.GradientDescent(list(model.parameters()), lr=1.0).step()
        else:
            cost, final, norm = train_step(model, x, y, None, 1.0)
            assert model.embedding.grad is None
        models.append((model, float(norm)))
    (a, na), (b, nb) = models
    assert_close(torch.tensor(na), torch.tensor(nb))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert_close(pa, pb)
    start = PTBModel(config, dtype=torch.float64)
    start.reset_parameters(torch.Generator().manual_seed(3))
    moved = (a.embedding != start.embedding).any(dim=1)
    assert moved.tolist() == [k in x.tolist()[0] + x.tolist()[1] for k in range(9)]  # the looked-up rows only
