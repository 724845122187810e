"""Keras GRU, CuDNNGRU and SimpleRNN layers (Keras 1.2, 2.2 and tf.keras-2 / Keras 3 layouts, written with h5py)
through the converter: the written modules against reference/keras_rnn.py, computed here from the file's own
tensors; which module each loads as (a reset-before GRU never as torch.nn.GRU); what is refused or noted."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compat.convert import convert, discover, load
from reference import keras_rnn
from tests.keras_files import write_keras_h5
from tests.tolerances import assert_close

pytest.importorskip("h5py", reason="h5py is in the test extra")

IN, H, B, T = 3, 4, 2, 5


def _layer(cls, cfg, weights, version, path, wrapper=None):
    config = {"name": "rnn", "units": H, **cfg}
    layer = {"class_name": cls, "config": config}
    if wrapper:
        layer = {"class_name": "Bidirectional", "config": {"name": "rnn", "layer": layer, **wrapper}}
    write_keras_h5(path, {"class_name": "Sequential", "config": {"layers": [layer]}}, [("rnn", weights)], version)
    return path


def _gru_weights(rng, kernel_cols, bias_shape, prefix="rnn", dtype=np.float32):
    w = [(f"{prefix}/kernel:0", rng.uniform(-1, 1, (IN, kernel_cols))),
         (f"{prefix}/recurrent_kernel:0", rng.uniform(-1, 1, (kernel_cols // (kernel_cols // H), kernel_cols)))]
    if bias_shape is not None:
        w.append((f"{prefix}/bias:0", rng.uniform(-1, 1, bias_shape)))
    return [(n, a.astype(dtype)) for n, a in w]


def _run(module, x, h0):
    with torch.no_grad():
        y, h = module(torch.from_numpy(x), torch.from_numpy(h0))
    return y.numpy(), h.numpy()


CASES = [
    # (class, config, version, bias shape, reference settings, torch module?)
    ("GRU", dict(reset_after=True, recurrent_activation="sigmoid"), "2.21.0-tf", (2, 3 * H),
     dict(reset_after=True), torch.nn.GRU),
    ("GRU", dict(reset_after=False, recurrent_activation="sigmoid"), "2.21.0-tf", (3 * H,),
     dict(reset_after=False), None),
    ("GRU", dict(recurrent_activation="hard_sigmoid"), "2.2.4", (3 * H,),
     dict(reset_after=False, recurrent_activation="hard_sigmoid"), None),
    ("GRU", dict(reset_after=True, recurrent_activation="hard_sigmoid"), "3.15.1", (2, 3 * H),
     dict(reset_after=True, recurrent_activation="hard_sigmoid_keras3"), None),
    ("SimpleRNN", dict(activation="tanh"), "2.2.4", (H,), dict(), torch.nn.RNN),
    ("SimpleRNN", dict(activation="relu"), "3.15.1", (H,), dict(activation="relu"), torch.nn.RNN),
    ("SimpleRNN", dict(activation="softsign", use_bias=False), "2.2.4", None, dict(activation="softsign"), None),
]


@pytest.mark.parametrize("cls, cfg, version, bias_shape, ref, torch_cls", CASES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_keras_layer_converts_to_the_reference(cls, cfg, version, bias_shape, ref, torch_cls, bidirectional, tmp_path):
    rng = np.random.default_rng(len(cls) + len(str(cfg)))
    G = 3 if cls == "GRU" else 1
    weights = _gru_weights(rng, G * H, bias_shape)
    halves = [weights]
    if bidirectional:
        halves.append(_gru_weights(rng, G * H, bias_shape, "backward"))
    path = _layer(cls, cfg, [w for half in halves for w in half], version, tmp_path / "k.h5",
                  {"merge_mode": "concat"} if bidirectional else None)
    conversion = convert(path, tmp_path / "out")
    assert all(c.ok for c in conversion.checks), conversion.checks
    module = load(conversion.files[0])["rnn"]
    if torch_cls is not None:
        assert type(module) is torch_cls
    else:
        assert not isinstance(module, torch.nn.RNNBase), "a reset-before GRU or other activations never run as torch's"
    x = rng.uniform(-1, 1, (B, T, IN)).astype(np.float32)
    h0 = rng.uniform(-0.5, 0.5, (2 if bidirectional else 1, B, H)).astype(np.float32)
    y, h = _run(module, x, h0)
    layer = keras_rnn.gru_layer if cls == "GRU" else keras_rnn.simple_rnn_layer
    tensors = [{n.split("/")[1][:-2]: a for n, a in half} for half in halves]
    if bidirectional:
        want_y, h_fw, h_bw = keras_rnn.bidirectional(layer, x, tensors[0], tensors[1], (h0[0], h0[1]), **ref)
        want_h = np.stack([h_fw, h_bw])
    else:
        want_y, h1 = layer(x, tensors[0]["kernel"], tensors[0]["recurrent_kernel"], tensors[0].get("bias"), h0[0],
                           **ref)
        want_h = h1[None]
    assert_close(y, want_y, dtype=torch.float32)
    assert_close(h, want_h, dtype=torch.float32)


def test_keras1_per_gate_gru_and_cudnn_gru(tmp_path):
    rng = np.random.default_rng(7)
    nine = []
    for gate in "zrh":
        nine += [(f"rnn_W_{gate}", rng.uniform(-1, 1, (IN, H))), (f"rnn_U_{gate}", rng.uniform(-1, 1, (H, H))),
                 (f"rnn_b_{gate}", rng.uniform(-1, 1, H))]
    nine = [(n, a.astype(np.float32)) for n, a in nine]
    path = _layer("GRU", {"output_dim": H, "inner_activation": "hard_sigmoid", "activation": "tanh",
                          "consume_less": "cpu"}, nine, "1.2.2", tmp_path / "k1.h5")
    (spec,) = discover(path).specs
    assert spec.options == {"reset_after": False, "activations": ("hard_sigmoid_keras2", "tanh")}
    conversion = convert(path, tmp_path / "o1")
    assert all(c.ok for c in conversion.checks)
    module = load(conversion.files[0])["rnn"]
    assert not isinstance(module, torch.nn.GRU)
    x = rng.uniform(-1, 1, (B, T, IN)).astype(np.float32)
    y, _ = _run(module, x, np.zeros((1, B, H), np.float32))
    k, rk, b = keras_rnn.keras1_gru_weights([a for _, a in nine])
    want, _ = keras_rnn.gru_layer(x, k, rk, b, reset_after=False, recurrent_activation="hard_sigmoid")
    assert_close(y, want, dtype=torch.float32)

    cudnn = _gru_weights(rng, 3 * H, (6 * H,))
    path = _layer("CuDNNGRU", {}, cudnn, "2.2.4", tmp_path / "c.h5")
    conversion = convert(path, tmp_path / "o2")
    module = load(conversion.files[0])["rnn"]
    assert type(module) is torch.nn.GRU
    y, _ = _run(module, x, np.zeros((1, B, H), np.float32))
    t = {n.split("/")[1][:-2]: a for n, a in cudnn}
    want, _ = keras_rnn.cudnn_gru_layer(x, t["kernel"], t["recurrent_kernel"], t["bias"])
    assert_close(y, want, dtype=torch.float32)


def test_dropout_and_stateful_settings_are_noted(tmp_path):
    rng = np.random.default_rng(1)
    path = _layer("GRU", dict(reset_after=True, recurrent_activation="sigmoid", dropout=0.3, recurrent_dropout=0.2,
                              stateful=True), _gru_weights(rng, 3 * H, (2, 3 * H)), "2.21.0-tf", tmp_path / "k.h5")
    (spec,) = discover(path).specs
    notes = " ".join(spec.notes)
    assert "dropout=0.3, recurrent_dropout=0.2: in training (module.train())" in notes and "per gate" in notes
    assert spec.module_kind == "compat.convert.modules.KerasGRU" and spec.keras.keras_dropout["rule"] == "per_gate"
    assert "stateful=True" in notes and "pass it as hx" in notes


@pytest.mark.parametrize("cls, cfg, wrapper, masking, version", [
    ("GRU", dict(reset_after=True, go_backwards=True), None, False, "2.21.0-tf"),
    ("SimpleRNN", dict(go_backwards=True), None, True, "3.15.1"),
    ("GRU", dict(reset_after=True), {"merge_mode": "sum"}, False, "2.21.0-tf"),
    ("GRU", dict(reset_after=False), {"merge_mode": "ave"}, True, "2.2.4"),
    ("GRU", dict(reset_after=False, recurrent_activation="hard_sigmoid"), None, True, "2.2.4"),
    ("GRU", dict(reset_after=True), None, True, "3.15.1"),
])
def test_keras_output_rules_load_as_keras_modules(cls, cfg, wrapper, masking, version, tmp_path):
    """go_backwards (outputs reversed in time), Bidirectional merges and masked steps (the output by Keras
    version) as KerasGRU / KerasSimpleRNN: the written module against reference/keras_rnn.py with a mask."""
    from compat.convert.modules import KerasGRU, KerasSimpleRNN

    rng = np.random.default_rng(len(str(cfg)) + masking)
    G = 3 if cls == "GRU" else 1
    bias = (2, 3 * H) if cfg.get("reset_after") else (G * H,)
    weights = _gru_weights(rng, G * H, bias)
    if wrapper:
        weights += _gru_weights(rng, G * H, bias, "backward")
    path = _layer(cls, {"recurrent_activation": "sigmoid", **cfg}, weights, version, tmp_path / "k.h5", wrapper)
    if masking:
        import h5py
        import json

        with h5py.File(path, "r+") as f:
            config = json.loads(f.attrs["model_config"])
            config["config"]["layers"].insert(0, {"class_name": "Masking", "config": {"name": "m", "mask_value": 0.0}})
            f.attrs["model_config"] = json.dumps(config).encode()
    conversion = convert(path, tmp_path / "out", model="layers")
    assert all(c.ok for c in conversion.checks), conversion.checks
    (spec,) = conversion.specs
    module = load(conversion.files[0])["rnn"]
    assert isinstance(module, KerasGRU if cls == "GRU" else KerasSimpleRNN)
    if cfg.get("reset_after") is False:
        assert not isinstance(module, torch.nn.GRU) and module.reset_after is False
    x = rng.uniform(-1, 1, (B, T, IN))
    mask = np.ones((B, T))
    if masking:
        mask[0, 3:] = 0
        mask[1, :2] = 0
    h0 = rng.uniform(-0.5, 0.5, (2 if wrapper else 1, B, H))
    with torch.no_grad():
        y, h = module.double()(torch.from_numpy(x), torch.from_numpy(h0), mask=torch.from_numpy(mask) if masking
                               else None)
    tensors = [{n.split("/")[1][:-2]: a for n, a in half} for half in (weights[:len(weights) // (2 if wrapper else 1)],
                                                                        weights[len(weights) // 2:])]
    layer = keras_rnn.gru_layer if cls == "GRU" else keras_rnn.simple_rnn_layer
    ref = dict(reset_after=bool(cfg["reset_after"])) if cls == "GRU" else {}
    if cfg.get("recurrent_activation") == "hard_sigmoid":
        ref["recurrent_activation"] = "hard_sigmoid"
    m = mask if masking else None
    masked_output = spec.keras.masked_output
    if wrapper:
        want_y, h_fw, h_bw = keras_rnn.bidirectional(layer, x, tensors[0], tensors[1], (h0[0], h0[1]), m,
                                                     merge_mode=wrapper["merge_mode"], masked_output=masked_output,
                                                     **ref)
        want_h = np.stack([h_fw, h_bw])
    else:
        want_y, h1 = layer(x, tensors[0]["kernel"], tensors[0]["recurrent_kernel"], tensors[0].get("bias"), h0[0], m,
                           go_backwards=bool(cfg.get("go_backwards")), masked_output=masked_output, **ref)
        want_h = h1[None]
    assert_close(y, want_y, dtype=torch.float64)
    assert_close(h, want_h, dtype=torch.float64)


@pytest.mark.parametrize("tf_checkpoint", ["gru_cell_lengths", "gru_block_cell"])
def test_a_reset_before_gru_run_as_torch_gru_fails_the_check(tf_checkpoint, tmp_path):
    """The verification tells the two GRUs apart: the same weights in torch.nn.GRU (the reset after the product)
    miss the source's oracle, for a Keras file and a TF checkpoint."""
    from compat.convert.verify import check
    from tests.convert_cases import GOLDEN_CONVERT

    rng = np.random.default_rng(3)
    path = _layer("GRU", dict(reset_after=False, recurrent_activation="sigmoid"), _gru_weights(rng, 3 * H, (3 * H,)),
                  "2.21.0-tf", tmp_path / "k.h5")
    specs = discover(path).specs + discover(GOLDEN_CONVERT / "tf1_rnn" / tf_checkpoint / "model.ckpt").specs
    for spec in specs:
        wrong = torch.nn.GRU(spec.input_size, spec.hidden_size, batch_first=spec.batch_first, dtype=torch.float64)
        wrong.load_state_dict({k: torch.from_numpy(v).double() for k, v in spec.state_dict().items()})
        result = check(spec, wrong)
        assert not result.ok and result.err64 > 1e-3, (spec.name, result)
