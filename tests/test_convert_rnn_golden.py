"""GRUs and simple RNNs of the real frameworks' files through ``python -m compat.convert``, against what those
frameworks computed (tests/golden/convert/onnx_rnn: onnxruntime; convert/keras_rnn: Keras 3 and tf-keras 2.21;
convert/tf1_rnn: TensorFlow 2.21 tf.compat.v1;
legacy/record_convert_*.py, provenance in
tests/golden/README.md). Each is converted with the command line (its verification against reference/ must
pass), loaded, and run on the recorded input; a reset-before GRU must not load as torch.nn.GRU."""
from __future__ import annotations

import pytest

from tests.convert_cases import (GOLDEN_CONVERT, cases, check_keras_rnn_file, check_onnx_rnn_case,
                                 check_tf1_rnn_case, convert_cli, keras_rnn_files, whole_rnn_model_outputs)


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in cases("onnx_rnn")])
def test_onnx_gru_and_rnn_nodes_convert_to_onnxruntimes_numbers(case, tmp_path):
    check_onnx_rnn_case(GOLDEN_CONVERT / "onnx_rnn", *case, tmp_path)


def test_every_onnx_attribute_is_recorded_and_torch_modules_only_where_exact(tmp_path):
    import torch

    from compat.convert import convert, load
    from compat.convert.graph import GraphModel
    from compat.convert.modules import OnnxGRU
    from compat.gru import GRU
    from compat.simple_rnn import RNN

    recorded = {c[0]: c[1] for c in cases("onnx_rnn")}
    assert {"gru_before_reset", "gru_after_reset", "gru_nobias", "gru_reverse", "gru_bidirectional",
            "gru_lengths_zero_initial", "gru_clip", "gru_activations", "gru_activation_defaults", "rnn_tanh",
            "rnn_relu", "rnn_reverse_lengths", "rnn_bidirectional_lengths_zero_initial", "rnn_clip",
            "rnn_activations", "rnn_leaky"} <= set(recorded)
    kinds, loaded = {}, {}
    for name in ("gru_before_reset", "gru_after_reset", "gru_bidirectional", "rnn_tanh", "rnn_relu", "rnn_leaky",
                 "gru_lengths_zero_initial"):
        conversion = convert(GOLDEN_CONVERT / "onnx_rnn" / recorded[name]["file"], tmp_path / name)
        (spec,) = conversion.specs
        assert conversion.graph is not None        # converted whole: the graph runs the recurrent module
        kinds[name] = spec.module_kind
        model = load(tmp_path / name)
        assert isinstance(model, GraphModel) and list(model) == [spec.name]
        loaded[name] = type(model[spec.name])
    assert kinds == {"gru_before_reset": "compat.gru.GRU", "gru_after_reset": "torch.nn.GRU",
                     "gru_bidirectional": "compat.gru.GRU", "rnn_tanh": "torch.nn.RNN", "rnn_relu": "torch.nn.RNN",
                     "rnn_leaky": "compat.simple_rnn.RNN", "gru_lengths_zero_initial": "compat.convert.modules.OnnxGRU"}
    assert loaded == {"gru_before_reset": GRU, "gru_after_reset": torch.nn.GRU, "gru_bidirectional": GRU,
                      "rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN, "rnn_leaky": RNN,
                      "gru_lengths_zero_initial": OnnxGRU}


@pytest.mark.parametrize("framework, filename, config, arrays",
                         [pytest.param(*k, id=f"{k[0]}-{k[1]}") for k in keras_rnn_files()])
def test_keras_gru_and_simple_rnn_files_convert_to_keras_numbers(framework, filename, config, arrays, tmp_path):
    check_keras_rnn_file(GOLDEN_CONVERT / "keras_rnn" / framework, filename, config, arrays, tmp_path)


def test_every_keras_variant_is_recorded():
    files = {(f, n) for f, n, _, _ in keras_rnn_files()}
    assert {("keras3", "model.keras"), ("keras3", "model.h5"), ("keras3", "stateful.h5"), ("tf_keras", "model.h5"),
            ("tf_keras", "model.keras"), ("tf_keras", "cudnn_gru.h5"), ("tf_keras", "keras1_gru.h5"),
            ("tf_keras", "keras1_simple_rnn.h5"), ("tf_keras", "stateful.h5"), ("keras3", "masked.keras"),
            ("tf_keras", "masked.h5")} <= files
    layers = {layer for _, _, config, _ in keras_rnn_files() for layer in config["layers"]}
    assert {"gru_after", "gru_before", "gru_before_hard_sigmoid", "gru_after_hard_sigmoid_nobias", "gru_dropout",
            "simple_rnn", "simple_rnn_relu", "bidirectional_gru", "bidirectional_gru_before",
            "bidirectional_simple_rnn", "gru_last", "stateful_gru", "cudnn_gru", "gru_1", "simplernn_1",
            "masked_gru_after", "masked_gru_before", "masked_simple_rnn", "masked_gru_backwards",
            "masked_bidirectional_sum"} <= layers


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in cases("tf1_rnn")])
def test_tf1_gru_and_rnn_checkpoints_convert_to_tensorflows_numbers(case, tmp_path):
    check_tf1_rnn_case(GOLDEN_CONVERT / "tf1_rnn", *case, tmp_path)


def test_every_tf_variant_is_recorded():
    assert {c[0] for c in cases("tf1_rnn")} >= {
        "gru_cell_lengths", "gru_cell_names_tf1_0", "gru_cell_names_tf0_12", "basic_rnn_cell_lengths",
        "basic_rnn_cell_names_tf1_0", "basic_rnn_cell_names_tf0_12", "multi_rnn_cell_gru_lengths",
        "bidirectional_gru_lengths", "stack_bidirectional_basic_rnn", "float64_gru_cell", "gru_block_cell",
        "cudnn_gru_canonical", "cudnn_gru_opaque", "cudnn_rnn_tanh_opaque", "cudnn_rnn_relu_opaque", "keras_graph_gru",
        "keras_graph_gru_tf1x_names"}


EMIT_RUNNER = """
import importlib.util, sys
import numpy as np, torch
spec = importlib.util.spec_from_file_location("emitted", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = module.load()
with torch.no_grad():
    y = model(torch.from_numpy(np.load(sys.argv[2])["x"]))
y = [y] if isinstance(y, torch.Tensor) else list(y)
np.savez(sys.argv[3], **{f"y{j}": o.numpy() for j, o in enumerate(y)})
"""


@pytest.mark.parametrize("framework, filename", [("keras3", "model.keras"), ("tf_keras", "model.h5"),
                                                 ("tf_keras", "cudnn_gru.h5"), ("tf_keras", "keras1_gru.h5"),
                                                 ("keras3", "masked.keras"), ("tf_keras", "masked.h5")])
def test_emitted_python_of_a_gru_model_predicts_as_keras(framework, filename, tmp_path):
    """``--emit-python``: the standalone file (torch.nn.GRU / RNN, compat.gru.GRU where the reset comes before
    the product), run in a fresh process, predicts what Keras predicted."""
    import subprocess
    import sys

    import numpy as np

    from tests.tolerances import assert_close

    (config, arrays), = [(c, a) for f, n, c, a in keras_rnn_files() if (f, n) == (framework, filename)]
    py = tmp_path / "model.py"
    assert convert_cli(GOLDEN_CONVERT / "keras_rnn" / framework / filename, tmp_path / "out",
                       ["--emit-python", str(py)]) == 0
    text = py.read_text()
    assert "nn.GRU(" in text or "GRU(" in text
    np.savez(tmp_path / "x.npz", x=arrays["x"])
    proc = subprocess.run([sys.executable, "-c", EMIT_RUNNER, str(py), str(tmp_path / "x.npz"), str(tmp_path / "y.npz")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "y.npz")
    want = whole_rnn_model_outputs(config, arrays)
    assert len(got.files) == len(want)
    for k, w in enumerate(want):
        assert_close(got[f"y{k}"], w, msg=f"{framework} {filename} emitted output {k}")
