"""``--emit-python``: the whole model as a standalone PyTorch file that predicts what Keras predicted.

Each recorded model (tests/golden/convert/keras_models) is converted with ``--emit-python MODEL.py``; the
files are run in a fresh Python process (one for all of them; nothing of the test process's modules in it)
that loads each model's converted weights through the file's own ``load()`` and predicts on the recorded
inputs; the predictions must match Keras's ``model.predict`` within float32's tolerance of the output's
scale.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.convert_cases import GOLDEN_CONVERT, convert_cli, keras_model_files
from tests.tolerances import assert_close_scaled

CASES = [c for c in keras_model_files() if c[2].endswith(".h5") or c[0] == "keras3" and c[2].endswith(".keras")]

RUNNER = """
import importlib.util, json, sys
import numpy as np, torch
done = {}
for k, (model_py, inputs, n, out) in enumerate(json.loads(sys.argv[1])):
    spec = importlib.util.spec_from_file_location(f"emitted_{k}", model_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load()
    data = np.load(inputs)
    xs = [torch.from_numpy(data[f"x{j}"].astype(np.int64) if data[f"x{j}"].dtype.kind in "iu" else data[f"x{j}"])
          for j in range(n)]
    with torch.no_grad():
        y = model(*xs)
    y = [y] if isinstance(y, torch.Tensor) else list(y)
    np.savez(out, **{f"y{j}": o.numpy() for j, o in enumerate(y)})
    done[model_py] = sorted(type(m).__module__ for m in model.children())
print(json.dumps(done))
"""


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    """Every case converted with --emit-python, then every emitted file run in one fresh Python process."""
    jobs, where = [], {}
    for framework, name, source, weights, config, arrays in CASES:
        tmp = tmp_path_factory.mktemp(f"{framework}_{source.replace('.', '_')}")
        model_py = tmp / "model.py"
        assert convert_cli(GOLDEN_CONVERT / "keras_models" / framework / source, tmp / "conv",
                           ["--emit-python", str(model_py)]) == 0
        np.savez(tmp / "inputs.npz", **{f"x{k}": arrays[f"x{k}"] for k in range(config["inputs"])})
        jobs.append([str(model_py), str(tmp / "inputs.npz"), config["inputs"], str(tmp / "out.npz")])
        where[(framework, source)] = (str(model_py), tmp / "out.npz")
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(jobs)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    return {key: (modules[py], out) for key, (py, out) in where.items()}


@pytest.mark.parametrize("framework, name, source, weights, config, arrays",
                         [pytest.param(*c, id=f"{c[0]}-{c[2]}") for c in CASES])
def test_emitted_python_predicts_as_keras(framework, name, source, weights, config, arrays, emitted):
    modules, out = emitted[(framework, source)]
    assert modules, "the emitted model holds no layer"
    with np.load(out) as got:
        assert len(got.files) == config["outputs"]
        for k in range(config["outputs"]):
            assert_close_scaled(got[f"y{k}"], arrays[f"y{k}"], dtype=np.float32, msg=f"{source} output {k}")


def test_emitted_python_uses_plain_torch_where_exact(tmp_path):
    """The sentiment model (Embedding, LSTM without go_backwards, Dense) is plain torch.nn but for the LSTM whose
    masked steps follow Keras; its file reads top to bottom like the Keras model."""
    folder = GOLDEN_CONVERT / "keras_models" / "tf_keras"
    model_py = tmp_path / "model.py"
    assert convert_cli(folder / "sentiment.h5", tmp_path / "conv", ["--emit-python", str(model_py)]) == 0
    text = model_py.read_text()
    assert "nn.Embedding(30, 8)" in text and "nn.Linear(6, 4)" in text and "nn.Linear(4, 1)" in text
    assert "KerasLSTM(" in text and "ids != 0" not in text
    assert "torch.sigmoid(" in text and "torch.relu(" in text
    compile(text, str(model_py), "exec")


def test_emitted_python_refuses_a_tensor_file_it_was_not_written_for(tmp_path):
    folder = GOLDEN_CONVERT / "keras_models" / "keras2"
    model_py = tmp_path / "model.py"
    assert convert_cli(folder / "functional.h5", tmp_path / "conv", ["--emit-python", str(model_py)]) == 0
    tensor_file = next(tmp_path.glob("conv.*.safetensors"))
    data = bytearray(tensor_file.read_bytes())
    data[-1] ^= 1
    tensor_file.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-c", "import importlib.util, sys; s = importlib.util.spec_from_file_location("
                           "'m', sys.argv[1]); m = importlib.util.module_from_spec(s); s.loader.exec_module(m); m.load()",
                           str(model_py)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "not the tensor file this model was written for" in proc.stderr


@pytest.mark.parametrize("source, extra", [("keras_models/tf_keras/sentiment.h5", ["--model", "layers"]),
                                           ("tf1/basic/model.ckpt", [])])
def test_emit_python_without_a_whole_model_is_one_error_and_writes_nothing(tmp_path, capsys, source, extra):
    """``--emit-python`` needs the whole model: with ``--model layers``, or a source whose reader converts
    recurrent layers only (a TF1 checkpoint without its .meta graph here), the command says so in one line,
    exits 2 and writes no file."""
    model_py = tmp_path / "model.py"
    assert convert_cli(GOLDEN_CONVERT / source, tmp_path / "conv", ["--emit-python", str(model_py), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and ("--emit-python" in err[0] or "whole model" in err[0])
    assert list(tmp_path.iterdir()) == []
