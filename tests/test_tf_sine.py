"""ports.tf_sine and compat.tf1.TFAdagrad against the numpy oracle reference/tf_sine.py (float64), the book's
data and feeder order, TF's initializers, and the book's BasicRNNCell walk-through."""
from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, note, strategies as st
from hypothesis.strategies import composite

from compat.tf1 import TFAdagrad
from ports.tf_sine import (Config, Estimator, SineLSTM, TFVariableError, batch_indices, book_data, generate_data,
                           rmse, tf_variable_names)
from reference import tf_sine as ref
from tests.tolerances import assert_close


# ------------------------------------------------------------------------------------------- Adagrad
@composite
def adagrad_cases(draw):
    seed = draw(st.integers(0, 2 ** 31 - 1))
    shapes = draw(st.lists(st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple), min_size=1, max_size=3))
    steps = draw(st.integers(1, 4))
    lr = draw(st.sampled_from([0.1, 0.3, 1e-3, 1.0]))
    initial = draw(st.sampled_from([0.1, 1e-4, 2.0]))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) * scale for s in shapes] for _ in range(steps)]
    return params, grads, lr, initial


@given(adagrad_cases())
def test_tf_adagrad_matches_the_apply_adagrad_oracle(case):
    """accum += g^2; var -= lr * g / sqrt(accum), accumulators from initial_accumulator_value, lr rounded
    through float32 as TF holds it; the foreach path gives the per-parameter numbers bit for bit."""
    params, grads, lr, initial = case
    note(f"shapes={[p.shape for p in params]} lr={lr} initial={initial}")
    results = []
    for foreach in (True, False):
        ps = [torch.nn.Parameter(torch.tensor(p)) for p in params]
        opt = TFAdagrad(ps, lr=lr, initial_accumulator_value=initial, foreach=foreach)
        for step in grads:
            for p, g in zip(ps, step):
                p.grad = torch.tensor(g)
            opt.step()
        results.append(([p.detach().clone() for p in ps], [opt.state[p]["accumulator"].clone() for p in ps]))
    for (a, b) in zip(results[0][0] + results[0][1], results[1][0] + results[1][1]):
        assert torch.equal(a, b)
    ref_vars = [p.copy() for p in params]
    ref_acc = [np.full(p.shape, initial) for p in params]
    for step in grads:
        for k, g in enumerate(step):
            ref_vars[k], ref_acc[k] = ref.adagrad_apply(ref_vars[k], ref_acc[k], g, lr)
    for got, want in zip(results[0][0], ref_vars):
        assert_close(got, want)
    for got, want in zip(results[0][1], ref_acc):
        assert_close(got, want)


def test_tf_adagrad_against_torch_adagrad_defaults():
    """torch.optim.Adagrad with TF's initial accumulator (and no epsilon) is the same rule; with torch's
    defaults (accumulator 0) the first step moves every weight by lr * sign(grad) instead."""
    g = torch.tensor([1e-3, -0.5, 20.0], dtype=torch.float64)
    ours, theirs, plain = (torch.nn.Parameter(torch.zeros(3, dtype=torch.float64)) for _ in range(3))
    for p in (ours, theirs, plain):
        p.grad = g.clone()
    TFAdagrad([ours], lr=0.1).step()
    torch.optim.Adagrad([theirs], lr=float(np.float32(0.1)), initial_accumulator_value=0.1, eps=0.0).step()
    torch.optim.Adagrad([plain], lr=0.1).step()
    assert_close(ours, theirs)
    assert_close(ours, -float(np.float32(0.1)) * g / torch.sqrt(0.1 + g * g))
    assert_close(plain, -0.1 * g / (g.abs() + 1e-10))  # about lr * sign(grad), whatever the gradient's size
    assert not torch.allclose(ours, plain)


def test_the_projects_optimizers_do_not_import_torch_dynamo():
    """torch.optim.Optimizer's add_param_group, zero_grad, state_dict and load_state_dict import
    torch._dynamo on their first call (seconds of start-up); compat.optim's optimizers call them unwrapped."""
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from compat.tf1 import TFAdagrad\n"
            "p = torch.nn.Parameter(torch.zeros(3)); p.grad = torch.ones(3)\n"
            "o = TFAdagrad([p], lr=0.1); o.step(); o.zero_grad(); o.load_state_dict(o.state_dict())\n"
            "print('torch._dynamo' in sys.modules, p.detach().tolist())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.startswith("False [-0.0953"), done.stdout + done.stderr


def test_tf_adagrad_refuses_what_adagrad_py_refuses():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="initial_accumulator_value must be positive"):
        TFAdagrad([p], lr=0.1, initial_accumulator_value=0.0)
    with pytest.raises(ValueError, match="learning rate must be >= 0"):
        TFAdagrad([p], lr=-1.0)


# ------------------------------------------------------------------------------------------ the model
@composite
def model_cases(draw, max_steps: int = 0):
    """A small model in float64 (the loss in float64 too), its variables, a batch of the book's data."""
    layout = draw(st.sampled_from(["features", "steps"]))
    timesteps = draw(st.integers(1, 5))
    config = Config(hidden_size=draw(st.integers(1, 5)), num_layers=draw(st.integers(1, 3)), timesteps=timesteps,
                    batch_size=draw(st.integers(1, 6)), training_examples=draw(st.integers(timesteps + 2, 40)),
                    testing_examples=timesteps + 5, sample_gap=draw(st.sampled_from([0.01, 0.1, 0.37])),
                    learning_rate=draw(st.sampled_from([0.1, 0.5])), input_layout=layout, dtype="float64",
                    loss_in_float32=False, training_steps=max(1, max_steps))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    H = config.hidden_size
    sizes = [config.input_size] + [H] * (config.num_layers - 1)
    params = {"layers": [(rng.uniform(-0.8, 0.8, (n + H, 4 * H)), rng.uniform(-0.3, 0.3, 4 * H)) for n in sizes],
              "weights": rng.uniform(-0.8, 0.8, (H, 1)), "biases": rng.uniform(-0.3, 0.3, 1)}
    note(f"config={config} seed={seed}")
    return config, params


def tf_arrays(config: Config, params) -> dict:
    """The oracle's variables under TF's names."""
    return dict(zip(tf_variable_names(config.num_layers).values(), ref.trainable_variables(params)))


def port_model(config: Config, params) -> SineLSTM:
    model = SineLSTM(config)
    model.load_tf_variables(tf_arrays(config, params))
    return model


@given(model_cases())
def test_forward_loss_and_gradients_match_the_oracle(case):
    config, params = case
    data = book_data(config)
    X, y = data.train_X[:config.batch_size], data.train_y[:config.batch_size]
    model = port_model(config, params)
    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    assert_close(model(Xt), ref.forward(params, X, config.input_layout))
    loss = model.loss(Xt, yt)
    assert_close(loss, ref.loss(params, X, y, config.input_layout))
    loss.backward()
    grads = model.to_tf_layout({name: p.grad for name, p in model.named_parameters() if p.requires_grad})
    for got, want in zip(grads.values(), ref.gradients(params, X, y, config.input_layout)):
        assert_close(got, want)


@given(model_cases(max_steps=4), st.integers(1, 4))
def test_a_fit_matches_the_oracle_step_by_step(case, steps):
    """Estimator.fit: the feeder's batches, the losses before each update, Adagrad's variables and
    accumulators after ``steps`` steps, then predict."""
    config, params = case
    data = book_data(config)
    with tempfile.TemporaryDirectory() as model_dir:
        estimator = Estimator(config, model_dir)
        estimator.model.load_tf_variables(tf_arrays(config, params))
        estimator.fit(data, steps, progress=False, log=lambda line: None)
    losses, want, accums, _ = ref.fit(params, ref.initial_accumulators(params), data.train_X, data.train_y, steps,
                                      config.batch_size, config.learning_rate, config.input_layout)
    assert estimator.global_step == steps and estimator.unfinished is None
    assert_close(np.array(estimator.losses), np.array(losses))
    got_vars, got_accums = estimator.model.tf_variables().values(), estimator.tf_accumulators().values()
    for got, w, got_acc, a in zip(got_vars, ref.trainable_variables(want), got_accums, accums):
        assert_close(got, w)
        assert_close(got_acc, a)
    assert_close(estimator.predict(data.test_X, batch_size=3), ref.predict(want, data.test_X, config.input_layout))


def test_the_loss_is_float32_as_tf_losses_computes_it():
    """tf.losses.mean_squared_error casts predictions and labels to float32: a float64 model's loss is a
    float32 value (Config.loss_in_float32=False keeps the model's dtype)."""
    config = Config(hidden_size=3, num_layers=1, timesteps=4, training_examples=30, testing_examples=10,
                    dtype="float64")
    torch.manual_seed(0)
    model = SineLSTM(config, generator=torch.Generator().manual_seed(1))
    data = book_data(config)
    X = torch.as_tensor(data.train_X[:9], dtype=torch.float64)
    y = torch.as_tensor(data.train_y[:9], dtype=torch.float64)
    as_tf = model.loss(X, y)
    assert as_tf.dtype == torch.float32
    model.config = Config(**{**config.to_dict(), "loss_in_float32": False})
    exact = model.loss(X, y)
    assert exact.dtype == torch.float64
    assert_close(as_tf, exact, dtype=torch.float32)


# ------------------------------------------------------------------------------- data and the feeder
def test_the_books_data():
    """generate_data's windows, the extra brackets ([N, 1, TIMESTEPS]), the float32 sine curves and sizes."""
    data = book_data(Config())
    assert data.train_X.shape == (9989, 1, 10) and data.train_y.shape == (9989, 1)
    assert data.test_X.shape == (989, 1, 10) and data.test_y.shape == (989, 1)
    assert all(a.dtype == np.float32 for a in data)
    for got, want in zip(data, ref.book_datasets()):
        np.testing.assert_array_equal(got, want)
    seq = np.sin(np.linspace(0, 100.0, 10000, dtype=np.float32))
    np.testing.assert_array_equal(data.train_X[7, 0], seq[7:17])
    assert data.train_y[7, 0] == seq[17]
    assert data.test_X[0, 0, 0] == seq[-1]  # x = 100 ends the train curve and starts the test curve


@given(st.integers(1, 60), st.integers(1, 17), st.integers(0, 2 ** 32 - 1), st.integers(0, 30))
def test_batch_order_is_the_data_feeders(rows, batch, seed, skip):
    """The DataFeeder's order across epochs (short last batches, a new permutation each epoch), and the
    same order continued after ``skip`` steps."""
    feeder = ref.DataFeeder(rows, batch, np.random.RandomState(seed))
    expected = [feeder.next_indices() for _ in range(skip + 3 * math.ceil(rows / batch) + 2)]
    got = batch_indices(rows, batch, seed)
    for want in expected:
        np.testing.assert_array_equal(next(got), want)
    later = batch_indices(rows, batch, seed, skip=skip)
    for want in expected[skip:]:
        np.testing.assert_array_equal(next(later), want)


def test_the_books_epoch_ends_with_a_batch_of_five():
    order = batch_indices(9989, 32)
    sizes = [len(next(order)) for _ in range(314)]
    assert sizes[:312] == [32] * 312 and sizes[312] == 5 and sizes[313] == 32
    first_epoch = np.concatenate([next(batch_indices(9989, 32, skip=k)) for k in range(313)])
    np.testing.assert_array_equal(np.sort(first_epoch), np.arange(9989))
    np.testing.assert_array_equal(next(batch_indices(9989, 32)), np.random.RandomState(42).permutation(9989)[:32])


def test_generate_data_refuses_a_sequence_too_short():
    with pytest.raises(ValueError, match="at least 12"):
        generate_data(np.zeros(11, np.float32), 10)
    X, y = generate_data(np.arange(12, dtype=np.float32), 10)
    assert X.shape == (1, 1, 10) and y.tolist() == [[10.0]]


def test_rmse_is_the_books_expression():
    predicted = np.array([0.5, -0.25, 0.125], dtype=np.float32)
    test_y = np.array([[0.5], [0.0], [0.0]], dtype=np.float32)
    want = np.sqrt(((np.array([[p] for p in predicted]) - test_y) ** 2).mean(axis=0))[0]
    assert rmse(predicted, test_y) == float(want) == ref.rmse(predicted, test_y)


# ------------------------------------------------------------------------------------- initializers
@pytest.mark.parametrize("layout", ["features", "steps"])
def test_initial_weights_follow_tfs_initializers(layout):
    """Kernels Glorot uniform (get_variable's default), fully_connected's weights xavier uniform, biases 0;
    drawn in TF's order from the generator."""
    config = Config(input_layout=layout)
    model = SineLSTM(config, generator=torch.Generator().manual_seed(3))
    tf_vars = model.tf_variables()
    for name, p in tf_vars.items():
        if name.endswith(("bias", "biases")):
            assert not p.any(), name
            continue
        fan_in, fan_out = p.shape
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        assert float(p.abs().max()) <= limit, name
        # a uniform(-limit, limit) sample: its variance is limit^2 / 3
        if p.numel() >= 1000:
            assert abs(float(p.var()) / (limit ** 2 / 3) - 1) < 0.1, name
    again = SineLSTM(config, generator=torch.Generator().manual_seed(3))
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)
    assert list(tf_vars) == ["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel",
                             "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias",
                             "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel",
                             "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias",
                             "fully_connected/weights", "fully_connected/biases"]
    assert [tuple(p.shape) for p in tf_vars.values()][0] == ((40, 120) if layout == "features" else (31, 120))


def test_tf_variables_load_in_either_generations_names_and_refuse_a_misfit():
    config = Config(hidden_size=4, num_layers=2, timesteps=3)
    model = SineLSTM(config, generator=torch.Generator().manual_seed(0))
    old = {name: p.detach().numpy() * 2 for name, p in model.tf_variables("1.0").items()}
    other = SineLSTM(config)
    other.load_tf_variables({k + ":0": v for k, v in old.items()})
    for name, p in other.tf_variables("1.0").items():
        np.testing.assert_array_equal(p.detach().numpy(), old[name])
    bad = dict(model.tf_variables())
    bad["fully_connected/weights"] = torch.zeros(5, 1)
    with pytest.raises(TFVariableError, match=r"'fully_connected/weights' has shape \[5, 1\]"):
        other.load_tf_variables(bad)
    with pytest.raises(TFVariableError, match="not found"):
        other.load_tf_variables({"fully_connected/weights": np.zeros((4, 1))})


# --------------------------------------------------------------------------- the RNN walk-through
# The chapter's numpy forward pass of a two-step recurrent cell, and what it printed (to numpy's precision).
BOOK_RNN = dict(X=[1, 2], state=[0.0, 0.0], w_cell_state=[[0.1, 0.2], [0.3, 0.4]], w_cell_input=[0.5, 0.6],
                b_cell=[0.1, -0.1], w_output=[[1.0], [2.0]], b_output=0.1)
BOOK_RNN_PRINTED = [
    ([0.6, 0.5], [0.53704957, 0.46211716], [1.56128388]),
    ([1.2923401, 1.39225678], [0.85973818, 0.88366641], [2.72707101]),
]
# not a numerical tolerance: the book printed 8 decimals, so a printed value is the true one within half
# of the last printed digit
PRINTED_TO_8_DECIMALS = dict(rtol=0, atol=5e-9)


def test_the_books_basic_rnn_cell_walk_through():
    """``before_activation = state @ w_cell_state + X[i] * w_cell_input + b_cell``, ``state =
    tanh(before_activation)``, ``output = state @ w_output + b_output``: TF's BasicRNNCell (kernel
    [[w_cell_input], w_cell_state]) and torch.nn.RNNCell with the converted weights print the book's
    numbers."""
    b = {k: np.asarray(v, dtype=np.float64) for k, v in BOOK_RNN.items()}
    kernel = np.concatenate([b["w_cell_input"][None, :], b["w_cell_state"]])  # rows: the input, then the state
    cell = torch.nn.RNNCell(1, 2, nonlinearity="tanh", dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor(kernel[:1].T))
        cell.weight_hh.copy_(torch.tensor(kernel[1:].T))
        cell.bias_ih.copy_(torch.tensor(b["b_cell"]))
        cell.bias_hh.zero_()
    state_tf = b["state"][None, :]
    state_torch = torch.tensor(state_tf)
    for x, (before, state, output) in zip(b["X"], BOOK_RNN_PRINTED):
        before_activation = state_tf @ b["w_cell_state"] + x * b["w_cell_input"] + b["b_cell"]
        np.testing.assert_allclose(before_activation[0], before, **PRINTED_TO_8_DECIMALS)
        state_tf = ref.basic_rnn_cell(np.array([[x]]), state_tf, kernel, b["b_cell"])
        state_torch = cell(torch.tensor([[float(x)]], dtype=torch.float64), state_torch)
        np.testing.assert_allclose(state_tf[0], state, **PRINTED_TO_8_DECIMALS)
        np.testing.assert_allclose(state_torch.detach().numpy()[0], state, **PRINTED_TO_8_DECIMALS)
        np.testing.assert_allclose((state_tf @ b["w_output"] + b["b_output"])[0], output, **PRINTED_TO_8_DECIMALS)


# ------------------------------------------------------------------------------ the migration guide
GUIDE = Path(__file__).resolve().parent.parent / "docs" / "migration" / "tf1.md"
MSE_LINE = re.compile(r"^Mean Square Error is: (\d+\.\d{6})$", re.M)


def test_the_migration_guides_sine_snippets_run(tmp_path, monkeypatch, capsys):
    """docs/migration/tf1.md, "tf.contrib.learn": the port's API, the plain PyTorch version and the
    walk-through run as printed, and print what the guide says."""
    # One thread, as the program chooses for these products (a second thread beside a busy machine made this
    # test take minutes); the suite's own count comes back after the test (tests/conftest.py).
    torch.set_num_threads(1)
    section = GUIDE.read_text(encoding="utf-8").split("\n## tf.contrib.learn", 1)[1].split("\n## ", 1)[0]
    port_block, plain_block, walk_through = re.findall(r"```python\n(.*?)```", section, re.S)
    monkeypatch.chdir(tmp_path)
    for block in (port_block, plain_block):
        exec(compile(block, str(GUIDE), "exec"), {})
        printed = MSE_LINE.findall(capsys.readouterr().out)
        assert len(printed) == 1 and float(printed[0]) < 0.05, printed
    assert (tmp_path / "Models" / "model_2" / "model.json").exists()
    exec(compile(walk_through, str(GUIDE), "exec"), {})
    expected = [line[2:] for line in walk_through.splitlines() if line.startswith("# before activation")]
    assert capsys.readouterr().out.splitlines() == expected
