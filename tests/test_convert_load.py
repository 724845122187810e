"""compat.convert.load(path, dtype=, device=): the converted modules cast and placed, still TensorFlow's numbers
(its recording of the same checkpoint)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.convert_cases import GOLDEN_CONVERT, convert_cli, run_module
from tests.tolerances import assert_close

CASE = "basic"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    recorded = np.load(GOLDEN_CONVERT / "tf1" / "expected.npz")
    config = json.loads(str(recorded[f"{CASE}/config"]))
    out = tmp_path_factory.mktemp("load") / "model.safetensors"
    assert convert_cli(GOLDEN_CONVERT / "tf1" / config["checkpoint"], out, config["cli"]) == 0
    return out, config, {k.removeprefix(f"{CASE}/"): recorded[k] for k in recorded.files if k.startswith(f"{CASE}/")}


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("dtype", [None, torch.float32, torch.float64])
def test_load_casts_and_places_the_modules(converted, dtype, device):
    from compat.convert import load

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    out, config, arrays = converted
    modules = load(out, dtype=dtype, device=device)
    assert sorted(modules) == config["lstms"]
    for name, module in modules.items():
        expect = dtype or torch.float32  # the checkpoint's float32 when not asked
        assert {p.dtype for p in module.parameters()} == {expect}
        assert {p.device.type for p in module.parameters()} == {device}
        x = arrays["x"].astype(torch.empty((), dtype=expect).numpy().dtype)
        with torch.no_grad():
            y, h, c = run_module(module.cpu(), x, batch_first_input=True)
        # TensorFlow computed in float32: a float64 module differs from it by float32 rounding only
        assert_close(y, arrays[f"{name}/y"], dtype=np.float32, msg=f"{name} outputs, loaded as {dtype}")
        assert_close(h, arrays[f"{name}/h"], dtype=np.float32, msg=f"{name} h_n")
        assert_close(c, arrays[f"{name}/c"], dtype=np.float32, msg=f"{name} c_n")


@pytest.mark.parametrize("dtype", [torch.int64, "float64", np.float64])
def test_load_refuses_a_dtype_that_is_not_a_torch_float(converted, dtype):
    from compat.convert import load

    with pytest.raises(ValueError, match="floating-point torch.dtype"):
        load(converted[0], dtype=dtype)


def test_load_casts_a_whole_model_after_its_probe(tmp_path):
    """A whole model (the recorded tf-keras sentiment model) is probed in its own dtype, then cast as one:
    every floating parameter in float64, the predictions float32's up to float32 rounding."""
    from compat.convert import load

    out = tmp_path / "sentiment.safetensors"
    assert convert_cli(GOLDEN_CONVERT / "keras_models" / "tf_keras" / "sentiment.h5", out, []) == 0
    ids = torch.tensor([[5, 12, 7, 3, 0, 0], [9, 2, 2, 14, 21, 8]])
    as_written, as_float64 = load(out), load(out, dtype=torch.float64)
    assert {p.dtype for p in as_float64.parameters()} == {torch.float64}
    with torch.no_grad():
        y32, y64 = as_written(ids), as_float64(ids)
    assert y64.dtype == torch.float64
    assert_close(y64.numpy(), y32.numpy(), dtype=np.float32, msg="float64 whole model against float32")
