"""The converter's golden cases (tests/golden/convert/, recorded by legacy/record_convert_*.py) and how
to run a converted module on a recorded input. Shared by the default suite and the live legacy tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

GOLDEN_CONVERT = Path(__file__).resolve().parent / "golden" / "convert"


def core_has_variants() -> bool:
    """Whether compat.lstm.LSTM takes the variants' options (peepholes, projections, directions, ...)."""
    import inspect

    from compat.lstm import LSTM

    return {"peepholes", "proj_size", "bidirectional"} <= set(inspect.signature(LSTM.__init__).parameters)


def require_core_for(source, *options) -> None:
    """xfail, saying why, a case whose LSTMs need compat.lstm.LSTM's variants when this core lacks them."""
    import pytest

    from compat.convert import discover

    if core_has_variants():
        return
    kw = {}
    if options:
        args = list(options)
        for flag, key in (("--forget-bias", "forget_bias"), ("--cell-clip", "cell_clip"), ("--proj-clip", "proj_clip"),
                          ("--cudnn-num-units", "cudnn_num_units")):
            if flag in args:
                value = args[args.index(flag) + 1]
                kw[key] = int(value) if key == "cudnn_num_units" else float(value)
    needs = [s.name for s in discover(source, **kw) if s.module_kind != "torch.nn.LSTM"]
    if needs:
        pytest.xfail(f"{needs} need compat.lstm.LSTM's variants (peepholes, clips, activations, reverse), "
                     "which this core does not have yet")


def cases(framework: str, base: Path = GOLDEN_CONVERT) -> Iterator[Tuple[str, dict, Dict[str, np.ndarray]]]:
    """(case name, config, arrays under ``<case>/``) of ``<base>/<framework>/expected.npz``."""
    path = base / framework / "expected.npz"
    with np.load(path, allow_pickle=False) as z:
        names = sorted({k.split("/")[0] for k in z.files if k.endswith("/config")})
        for name in names:
            arrays = {k[len(name) + 1:]: z[k] for k in z.files if k.startswith(name + "/")}
            yield name, json.loads(str(arrays.pop("config"))), arrays


def convert_cli(source, out, extra: List[str] = ()) -> int:
    from compat.convert.__main__ import main

    return main([str(source), "--to", str(out), *extra])


def run_module(module, x: np.ndarray, *, batch_first_input: bool, lengths=None):
    """(y, h_n, c_n) as numpy float64, y in the layout of ``x`` (batch-major when ``batch_first_input``)."""
    p = next(module.parameters())
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(p.dtype)
    if batch_first_input != module.batch_first:
        xt = xt.transpose(0, 1)
    with torch.no_grad():
        if lengths is not None:
            packed = pack_padded_sequence(xt, torch.as_tensor(lengths), batch_first=module.batch_first,
                                          enforce_sorted=False)
            y, (h, c) = module(packed)
            y, _ = pad_packed_sequence(y, batch_first=module.batch_first, total_length=xt.shape[1 if module.batch_first else 0])
        else:
            y, (h, c) = module(xt)
    if batch_first_input != module.batch_first:
        y = y.transpose(0, 1)
    return y.double().numpy(), h.double().numpy(), c.double().numpy()


def check_tf1_case(folder: Path, name: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded TF1 checkpoint with the command line and compare with TensorFlow's numbers."""
    from compat.convert import load
    from tests.tolerances import assert_close

    out = tmp / f"{name}.safetensors"
    require_core_for(folder / config["checkpoint"], *config["cli"])
    assert convert_cli(folder / config["checkpoint"], out, config["cli"]) == 0
    modules = load(out)
    assert sorted(modules) == sorted(config["lstms"])
    for spec in config["lstms"]:
        y, h, c = run_module(modules[spec], arrays["x"], batch_first_input=True, lengths=config["lengths"])
        dtype = arrays["x"].dtype
        assert_close(y, arrays[f"{spec}/y"], dtype=dtype, msg=f"{name} {spec} outputs")
        assert_close(h, arrays[f"{spec}/h"], dtype=dtype, msg=f"{name} {spec} h_n")
        assert_close(c, arrays[f"{spec}/c"], dtype=dtype, msg=f"{name} {spec} c_n")


def check_onnx_case(folder: Path, name: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded ONNX model and compare with onnxruntime's Y, Y_h, Y_c."""
    from compat.convert import load
    from tests.tolerances import assert_close

    out = tmp / f"{name}.safetensors"
    require_core_for(folder / config["file"])
    assert convert_cli(folder / config["file"], out) == 0
    (module,) = load(out).values()
    y, h, c = run_module(module, arrays["x"], batch_first_input=False, lengths=config["lens"])
    T, dirs, B, H = arrays["Y"].shape
    assert_close(y, arrays["Y"].transpose(0, 2, 1, 3).reshape(T, B, dirs * H), msg=f"{name} Y")
    assert_close(h, arrays["Y_h"], msg=f"{name} Y_h")
    assert_close(c, arrays["Y_c"], msg=f"{name} Y_c")


def check_keras_file(folder: Path, filename: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded Keras file and compare every recorded layer with Keras's numbers."""
    from compat.convert import load
    from compat.lstm import lstm, weights_from_torch
    from tests.tolerances import assert_close

    out = tmp / (filename.replace(".", "_") + ".safetensors")
    require_core_for(folder / filename)
    assert convert_cli(folder / filename, out) == 0
    modules = load(out)
    assert set(config["layers"]) <= set(modules)
    x = arrays["x"]
    for layer in config["layers"]:
        m = modules[layer]
        label = f"{folder.name} {filename} {layer}"
        if "mask_value" in config:
            # Keras's Masking: a step whose features all equal mask_value is skipped (state carried).
            mask = np.any(x != config["mask_value"], axis=-1).astype(np.float32)
            with torch.no_grad():
                y, (h, c) = lstm(torch.from_numpy(x), weights_from_torch(m), mask=torch.from_numpy(mask),
                                 batch_first=True)
            y, h, c = y.numpy(), h.numpy(), c.numpy()
        else:
            y, h, c = run_module(m, x, batch_first_input=True)
        if m.conversion["direction"] == "reverse":
            y = y[:, ::-1].copy()  # Keras returns a go_backwards layer's sequence reversed in time
        if f"{layer}/y_last" in arrays:
            assert_close(y[:, -1], arrays[f"{layer}/y_last"], msg=f"{label} output")
            continue
        assert_close(y, arrays[f"{layer}/y"], msg=f"{label} outputs")
        assert_close(h, arrays[f"{layer}/h"], msg=f"{label} h_n")
        assert_close(c, arrays[f"{layer}/c"], msg=f"{label} c_n")


def keras_files(base: Path = GOLDEN_CONVERT):
    """(framework, file name, config, arrays) of every recorded Keras file."""
    for framework in ("keras3", "tf_keras"):
        for _, config, arrays in cases(framework, base):
            for f in config["files"]:
                yield framework, f, config, arrays
