"""Loading TF1 checkpoints of the PTB model by name: every TF generation, outer scopes, shared cells, errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, note
from hypothesis import strategies as st

from ports.tf_ptb import Config, PTBModel, TFVariableError
from ports.tf_ptb.tf_names import GENERATIONS
from tests.tolerances import assert_close

CELL_SCOPES = {  # layer 0's cell variables as each generation writes them, under Model/RNN/
    "0.12": ("MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix", "MultiRNNCell/Cell0/BasicLSTMCell/Linear/Bias"),
    "1.0": ("multi_rnn_cell/cell_0/basic_lstm_cell/weights", "multi_rnn_cell/cell_0/basic_lstm_cell/biases"),
    "1.2": ("multi_rnn_cell/cell_0/basic_lstm_cell/kernel", "multi_rnn_cell/cell_0/basic_lstm_cell/bias"),
}


def small_config(**changes) -> Config:
    base = dataclasses.replace(Config.preset("small"), hidden_size=3, vocab_size=7, num_layers=2, batch_size=2,
                               num_steps=3)
    return dataclasses.replace(base, **changes)


def tf_checkpoint(config: Config, seed: int, generation: str, scope: str, rnn_scope: str, bookkeeping=True) -> dict:
    """A name -> float32 array mapping as TF's checkpoint reader returns it, written by hand."""
    rng = np.random.default_rng(seed)
    H, V = config.hidden_size, config.vocab_size
    prefix = f"{scope}/" if scope else ""
    cell, kernel, bias = {"0.12": ("MultiRNNCell/Cell{k}/BasicLSTMCell", "Linear/Matrix", "Linear/Bias"),
                          "1.0": ("multi_rnn_cell/cell_{k}/basic_lstm_cell", "weights", "biases"),
                          "1.2": ("multi_rnn_cell/cell_{k}/basic_lstm_cell", "kernel", "bias")}[generation]
    f32 = np.float32
    ckpt = {f"{prefix}embedding": rng.normal(size=(V, H)).astype(f32),
            f"{prefix}softmax_w": rng.normal(size=(H, V)).astype(f32),
            f"{prefix}softmax_b": rng.normal(size=V).astype(f32)}
    for k in range(1 if config.shared_cell_weights else config.num_layers):
        s = f"{prefix}{rnn_scope}/{cell.format(k=k)}"
        ckpt[f"{s}/{kernel}"] = rng.normal(size=(2 * H, 4 * H)).astype(f32)
        ckpt[f"{s}/{bias}"] = rng.normal(size=4 * H).astype(f32)
    if bookkeeping:
        ckpt["global_step"] = np.array(1234, dtype=np.int64)
        ckpt[f"{prefix}Variable"] = np.array(0.5, dtype=f32)  # the lr variable (tf.Variable(0.0, trainable=False))
        for name in list(ckpt):
            if ckpt[name].ndim:
                ckpt[f"{name}/Adam"] = np.zeros_like(ckpt[name])
                ckpt[f"{name}/Adam_1"] = np.zeros_like(ckpt[name])
        ckpt[f"{prefix}beta1_power"] = np.array(0.9, dtype=f32)
    return ckpt


@given(generation=st.sampled_from(GENERATIONS), scope=st.sampled_from(["Model", "language_model", "Train/Model", ""]),
       rnn_scope=st.sampled_from(["RNN", "rnn"]), layers=st.integers(1, 3), seed=st.integers(0, 2 ** 31))
def test_load_every_generation_and_scope(generation, scope, rnn_scope, layers, seed):
    config = small_config(num_layers=layers)
    ckpt = tf_checkpoint(config, seed, generation, scope, rnn_scope)
    note(sorted(ckpt))
    model = PTBModel(config, dtype=torch.float64)
    used = model.load_tf1_variables(ckpt)
    prefix = f"{scope}/" if scope else ""
    kernel_name, bias_name = CELL_SCOPES[generation]
    assert used["cells.0.kernel"] == f"{prefix}{rnn_scope}/{kernel_name}"
    assert used["cells.0.bias"] == f"{prefix}{rnn_scope}/{bias_name}"
    assert_close(model.embedding, ckpt[f"{prefix}embedding"])
    assert_close(model.softmax_w, ckpt[f"{prefix}softmax_w"])
    assert_close(model.softmax_b, ckpt[f"{prefix}softmax_b"])
    for k in range(layers):
        assert_close(model.cells[k].kernel, ckpt[used[f"cells.{k}.kernel"]])
        assert_close(model.cells[k].bias, ckpt[used[f"cells.{k}.bias"]])
        assert f"cell_{k}" in used[f"cells.{k}.kernel"] or f"Cell{k}" in used[f"cells.{k}.kernel"]
    # Export in the same generation and scope gives the model variables back exactly.
    exported = model.export_tf1_variables(scope=scope, generation=generation, rnn_scope=rnn_scope)
    model_vars = {n: v for n, v in ckpt.items() if n in exported}
    assert sorted(exported) == sorted(model_vars)
    for name, value in exported.items():
        np.testing.assert_array_equal(value.astype(np.float32), model_vars[name])


def test_lstm_block_cell_names_load():
    """ptb_word_lm's default rnn_mode BLOCK (TF >= 1.3) writes .../cell_k/lstm_cell/kernel."""
    config = small_config()
    ckpt = {k.replace("basic_lstm_cell", "lstm_cell"): v for k, v in tf_checkpoint(config, 1, "1.2", "Model", "RNN").items()}
    used = PTBModel(config).load_tf1_variables(ckpt)
    assert used["cells.1.kernel"] == "Model/RNN/multi_rnn_cell/cell_1/lstm_cell/kernel"


def test_tf1_variables_are_the_live_parameters_by_tf12_names():
    config = small_config()
    model = PTBModel(config)
    names = model.tf1_variables()
    assert sorted(names) == sorted([
        "Model/embedding", "Model/softmax_w", "Model/softmax_b",
        "Model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/kernel", "Model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/bias",
        "Model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/kernel", "Model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/bias"])
    assert names["Model/embedding"] is model.embedding
    assert names["Model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/kernel"] is model.cells[1].kernel
    assert tuple(names["Model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/kernel"].shape) == (6, 12)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_export_round_trip_gives_identical_predictions(generation):
    config = small_config(forget_bias=0.0)
    torch.manual_seed(0)
    source = PTBModel(config, is_training=False)
    with torch.no_grad():
        for cell in source.cells:
            cell.bias.uniform_(-1, 1)
    target = PTBModel(config, is_training=False)
    target.load_tf1_variables(source.export_tf1_variables(scope="outer/Model", generation=generation))
    x = torch.randint(0, config.vocab_size, (2, 3))
    a, sa = source(x)
    b, sb = target(x)
    assert torch.equal(a, b)
    assert all(torch.equal(c1, c2) and torch.equal(h1, h2) for (c1, h1), (c2, h2) in zip(sa, sb))


def test_shared_weights_checkpoint():
    """TF >= 1.1 saves MultiRNNCell([cell] * n) with one cell (cell_0) used by every layer."""
    shared_config = small_config(num_layers=3, shared_cell_weights=True)
    ckpt = tf_checkpoint(shared_config, 5, "1.2", "Model", "RNN")
    assert not any("cell_1" in n for n in ckpt)
    shared = PTBModel(shared_config, is_training=False, dtype=torch.float64)
    shared.load_tf1_variables(ckpt)
    assert len(shared.cells) == 1
    assert sorted(n for n in shared.tf1_variables() if "cell_" in n) == [
        "Model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/bias", "Model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/kernel"]
    per_layer = PTBModel(small_config(num_layers=3), is_training=False, dtype=torch.float64)
    with pytest.raises(TFVariableError, match=r"one LSTM cell .*cell_0.*shared_cell_weights=True.*shared=True"):
        per_layer.load_tf1_variables(ckpt)
    with pytest.raises(TFVariableError, match="one LSTM cell"):
        per_layer.load_tf1_variables(ckpt, shared=False)
    per_layer.load_tf1_variables(ckpt, shared=True)
    x = torch.randint(0, 7, (2, 4))
    assert_close(per_layer(x)[0], shared(x)[0])
    # A per-layer checkpoint cannot go into a shared model unless its layers are equal.
    with pytest.raises(TFVariableError, match="differ from layer 0"):
        PTBModel(shared_config).load_tf1_variables(tf_checkpoint(small_config(num_layers=3), 5, "1.2", "Model", "RNN"))
    with pytest.raises(TFVariableError, match="shared=True, but the checkpoint has a cell per layer"):
        per_layer.load_tf1_variables(tf_checkpoint(small_config(num_layers=3), 5, "1.2", "Model", "RNN"), shared=True)


def test_error_cases_name_the_variable():
    config = small_config()
    model = PTBModel(config)
    good = tf_checkpoint(config, 2, "1.2", "Model", "RNN")

    def without(name):
        return {k: v for k, v in good.items() if k != name}

    with pytest.raises(TFVariableError, match="'Model/softmax_b' .* missing"):
        model.load_tf1_variables(without("Model/softmax_b"))
    with pytest.raises(TFVariableError, match=r"cell_1/basic_lstm_cell/bias"):
        model.load_tf1_variables(without("Model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/bias"))
    bad = dict(good, **{"Model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/kernel": np.zeros((5, 12), np.float32)})
    with pytest.raises(TFVariableError, match=r"cell_1/basic_lstm_cell/kernel.*shape \[5, 12\].*\[6, 12\]"):
        model.load_tf1_variables(bad)
    with pytest.raises(TFVariableError, match=r"'Model/embedding'.*shape \[7, 3\].*\[9, 3\]"):
        PTBModel(small_config(vocab_size=9)).load_tf1_variables(good)
    with pytest.raises(TFVariableError, match=r"layers \[0, 1\] but the config has num_layers=1"):
        PTBModel(small_config(num_layers=1)).load_tf1_variables(good)
    with pytest.raises(KeyError, match="no 'embedding' variable"):
        model.load_tf1_variables(without("Model/embedding"))
    two = dict(good, **{k.replace("Model/", "Other/"): v for k, v in good.items() if k.startswith("Model/")})
    with pytest.raises(KeyError, match="several models.*pass scope="):
        model.load_tf1_variables(two)
    model.load_tf1_variables(two, scope="Other")
    no_cells = {k: v for k, v in good.items() if "/RNN/" not in k}
    with pytest.raises(TFVariableError, match="no LSTM cell variables under 'Model/RNN/'"):
        model.load_tf1_variables(no_cells)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(TFVariableError):
        model.load_tf1_variables(without("Model/softmax_w"))
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters()), "a failed load changed the model"


def test_load_from_a_v2_checkpoint_path(tmp_path):
    from compat.formats.tf import save_checkpoint

    config = small_config()
    ckpt = tf_checkpoint(config, 3, "1.0", "Model", "RNN")
    prefix = save_checkpoint(tmp_path / "model.ckpt-1234", ckpt)
    model = PTBModel(config)
    used = model.load_tf1_variables(prefix)
    assert used["cells.1.bias"] == "Model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/biases"
    assert_close(model.cells[1].bias, ckpt["Model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/biases"])


def test_variable_names_with_output_suffix_load():
    """``{v.name: session.run(v)}`` dumps name variables "Model/embedding:0"."""
    config = small_config()
    ckpt = tf_checkpoint(config, 4, "1.2", "Model", "RNN", bookkeeping=False)
    model = PTBModel(config, dtype=torch.float64)
    used = model.load_tf1_variables({f"{k}:0": v for k, v in ckpt.items()})
    assert used["embedding"] == "Model/embedding"
    assert_close(model.softmax_b, ckpt["Model/softmax_b"])
