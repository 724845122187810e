"""Caffe files without Caffe: the text-format reader (compat.formats.prototxt), the wire format
(compat.formats.protobuf_wire) and .caffemodel reading and writing (compat.formats.caffemodel), including
truncated, corrupted and hostile bytes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import event, given, note, strategies as st
from hypothesis.strategies import composite

from compat.formats.protobuf_wire import Writer, encode_varint
from compat.formats.prototxt import Identifier, PrototxtError, TextMessage, format_prototxt, parse_prototxt, read_prototxt
from ports.caffe_sequence import read_caffemodel, write_caffemodel
from compat.formats.caffemodel import CaffeModelError, caffemodel_bytes, parse_caffemodel
from ports.caffe_sequence.config import CONFIG_DIR, CONFIGS, resolve_net_path
from ports.caffe_sequence.model import CaffeNet, CaffeNetError

# ------------------------------------------------------------------------------------------ prototxt

_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda s: s.lower() not in (
    "inf", "nan", "infinity", "true", "false"))
_scalars = st.one_of(
    st.integers(-2 ** 40, 2 ** 40),
    st.floats(allow_nan=False, allow_infinity=False, width=64).filter(lambda f: f != int(f) or abs(f) > 2 ** 53),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.sampled_from([Identifier("TEST"), Identifier("TRAIN"), Identifier("true"), Identifier("gaussian_x")]),
)


@composite
def text_messages(draw, depth=0):
    msg = TextMessage()
    for _ in range(draw(st.integers(0, 4))):
        name = draw(_names)
        if depth < 3 and draw(st.booleans()):
            msg.add(name, draw(text_messages(depth + 1)))
        else:
            msg.add(name, draw(_scalars))
    return msg


@given(text_messages())
def test_prototxt_round_trip(msg):
    text = format_prototxt(msg)
    note(text)
    assert parse_prototxt(text) == msg


def test_prototxt_syntax_variants():
    m = parse_prototxt("a: 1, b: 'x' \"y\"; c { d: [1, 2.5f, -3] } e: < f: TEST > g: -inf h: 0x1F # note\n"
                       "i: \"tab\\there\" j: 1e-4")
    assert m.get("a") == 1 and m.get("b") == "xy" and m.message("c").getall("d") == [1, 2.5, -3]
    assert m.message("e").get("f") == "TEST" and isinstance(m.message("e").get("f"), Identifier)
    assert m.get("g") == -math.inf and m.get("h") == 31 and m.get("i") == "tab\there" and m.get("j") == 1e-4


@pytest.mark.parametrize("text, where", [
    ("layer {\n  name: \"x\"\n", "3:1"),          # unclosed brace
    ("a: }", "1:4"),
    ("a 1", "1:3"),
    ("a: 'unterminated\n", "1:4"),
    ("a: @", "1:4"),
    ("{ a: 1 }", "1:1"),
])
def test_prototxt_errors_name_line_and_column(text, where):
    with pytest.raises(PrototxtError, match=f"net.prototxt:{where}"):
        parse_prototxt(text, "net.prototxt")


def test_prototxt_nesting_depth_is_bounded():
    with pytest.raises(PrototxtError, match="nested deeper"):
        parse_prototxt("a { " * 200 + "}" * 200)


@given(st.binary(max_size=200))
def test_prototxt_random_bytes_parse_or_fail_cleanly(data):
    try:
        parse_prototxt(data, "fuzz")
        event("parsed")
    except PrototxtError:
        event("PrototxtError")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_shipped_configs_build_train_and_test_nets(config):
    solver_path = CONFIG_DIR / CONFIGS[config][0]
    solver = read_prototxt(solver_path)
    assert solver.get("momentum") == 0.95 and solver.get("average_loss") == 200
    assert solver.get("base_lr") == (5e-5 if config == "deep_long" else 1e-4)
    net_param = read_prototxt(resolve_net_path(solver_path, solver))
    train = CaffeNet(net_param, "TRAIN")
    test = CaffeNet(net_param, "TEST")
    assert [t for n, t, *_ in train.layer_defs][-1] == "EuclideanLoss"
    assert "loss" not in test.layer_modules and test.output_names == ["ip1"]
    hidden = {"lstm_short": [15], "lstm_long": [50], "deep_short": [7] * 3, "deep_long": [23] * 3}[config]
    assert [m.hidden_size for m in train.lstm_layers()] == hidden
    assert all(m.clipping_threshold == pytest.approx(0.1) for m in train.lstm_layers())
    lr = [lr for _, _, lr, _ in train.learnable_params()]
    assert lr[:3] == ([1.0, 1.0, 2.0] if config == "deep_short" else [1.0, 1.0, 1.0])


def test_unknown_layer_type_is_named():
    net = parse_prototxt('input: "data" input_shape { dim: 2 dim: 1 } '
                         'layer { name: "c1" type: "Convolution" bottom: "data" top: "c1" }')
    with pytest.raises(CaffeNetError, match="'c1' \\(Convolution\\)"):
        CaffeNet(net)


# ----------------------------------------------------------------------------------------- caffemodel

_dtypes = st.sampled_from([np.float32, np.float64])


@composite
def model_layers(draw):
    layers = {}
    for k in range(draw(st.integers(0, 4))):
        blobs = []
        for _ in range(draw(st.integers(0, 3))):
            shape = draw(st.lists(st.integers(0, 4), min_size=0, max_size=4))
            dtype = draw(_dtypes)
            n = int(np.prod(shape)) if shape else 1
            values = draw(st.lists(st.floats(width=32, allow_nan=False), min_size=n, max_size=n))
            blobs.append(np.array(values, dtype=dtype).reshape(shape))
        layers[f"layer{k}"] = (draw(st.sampled_from(["Lstm", "LSTM", "InnerProduct", "EuclideanLoss"])), blobs)
    return layers


@given(model_layers())
def test_caffemodel_round_trip(layers):
    back = parse_caffemodel(caffemodel_bytes(layers, "net"))
    assert list(back) == list(layers)
    for name, (ltype, blobs) in layers.items():
        assert back[name][0] == ltype
        assert len(back[name][1]) == len(blobs)
        for a, b in zip(blobs, back[name][1]):
            assert a.shape == b.shape
            # Blob::FromProto reads double_data only when it is non-empty: an empty blob comes back float32.
            assert b.dtype == (a.dtype if a.size else np.float32)
            np.testing.assert_array_equal(a, b)


def test_caffemodel_legacy_v1_layers_and_4d_shapes(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_caffemodel(tmp_path / "v1.caffemodel", {"ip": ("InnerProduct", [w, np.ones(2, np.float32)])},
                     legacy_v1=True)
    model = read_caffemodel(tmp_path / "v1.caffemodel")
    ltype, blobs = model["ip"]
    assert ltype == "InnerProduct"
    assert blobs[0].shape == (1, 1, 2, 3)
    np.testing.assert_array_equal(blobs[0].reshape(2, 3), w)


def test_caffemodel_unpacked_floats_and_double_data():
    blob = Writer().varint(1, 1).varint(2, 3)  # legacy num=1, channels=3 ... height/width absent -> 0
    blob = Writer().message(7, Writer().varint(1, 3))  # shape dim 3, unpacked varint
    for v in (1.5, -2.0, 3.25):
        blob.fixed32_float(5, v)
    layer = Writer().string(1, "a").string(2, "InnerProduct").message(7, blob)
    dbl = Writer().message(7, Writer().packed_varints(1, [2])).packed_floats(8, [0.1, 0.2], "<f8")
    layer2 = Writer().string(1, "b").string(2, "X").message(7, dbl)
    model = parse_caffemodel(Writer().message(100, layer).message(100, layer2).bytes())
    np.testing.assert_array_equal(model["a"][1][0], np.array([1.5, -2.0, 3.25], np.float32))
    assert model["b"][1][0].dtype == np.float64 and model["b"][1][0].tolist() == [0.1, 0.2]


def _real_model_bytes() -> bytes:
    net = CaffeNet(read_prototxt(CONFIG_DIR / "deep_short.prototxt"), "TRAIN",
                   generator=torch.Generator().manual_seed(0))
    return caffemodel_bytes(net.blobs_by_layer(), net.name)


REAL_MODEL = _real_model_bytes()


@composite
def mutations(draw):
    data = bytearray(REAL_MODEL)
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite_run", "splice"]))
    pos = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        data[pos] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del data[pos:]
    elif kind == "insert":
        data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    elif kind == "overwrite_run":
        run = draw(st.binary(min_size=1, max_size=12))
        data[pos:pos + len(run)] = run
    else:
        n = draw(st.integers(1, 32))
        data[pos:pos + n] = b"\xff" * n
    note(f"{kind} at {pos}")
    event(kind)
    return bytes(data)


@given(mutations())
def test_mutated_caffemodel_reads_or_fails_with_a_clear_error(data):
    try:
        model = parse_caffemodel(data, "mutated.caffemodel")
    except CaffeModelError as exc:
        assert "mutated.caffemodel" in str(exc)
        event("CaffeModelError")
        return
    event("parsed")
    for ltype, blobs in model.values():
        assert isinstance(ltype, str)
        for b in blobs:
            assert isinstance(b, np.ndarray) and b.nbytes <= 8 * len(data)


def test_hostile_lengths_are_rejected_before_allocation():
    huge = bytes([0x82, 0x06]) + encode_varint(2 ** 62) + b"\x00" * 4  # field 100, length 2**62
    with pytest.raises(CaffeModelError, match="declares 4611686018427387904 bytes"):
        parse_caffemodel(huge, "huge")
    def blob_with_dims(dims):
        shape = Writer().message(7, Writer().packed_varints(1, dims))
        return Writer().message(100, Writer().string(1, "x").message(7, shape)).bytes()

    with pytest.raises(CaffeModelError, match="holds 0 values"):
        parse_caffemodel(blob_with_dims([3, 4]), "claims")
    with pytest.raises(CaffeModelError, match="dimension above INT_MAX"):
        parse_caffemodel(blob_with_dims([2 ** 40, 2 ** 40]), "claims")
    with pytest.raises(CaffeModelError, match="has 1099511627776 elements; at most 2147483647"):
        parse_caffemodel(blob_with_dims([2 ** 20, 2 ** 20]), "claims")
    with pytest.raises(CaffeModelError, match="BlobShape.dim holds 33 values; at most 32"):
        parse_caffemodel(blob_with_dims([1] * 33), "rank")
    with pytest.raises(CaffeModelError, match="BlobShape.dim holds 80000 values; at most 32"):
        parse_caffemodel(blob_with_dims([2 ** 62] * 80_000), "bigint")
    with pytest.raises(CaffeModelError, match="varint longer than 10 bytes"):
        parse_caffemodel(b"\x08" + b"\xff" * 11, "varint")
    with pytest.raises(CaffeModelError, match="wire type 3"):
        parse_caffemodel(bytes([(100 << 3 | 3) & 0x7F | 0x80, (100 << 3 | 3) >> 7]), "group")
    with pytest.raises(CaffeModelError, match="negative dimension"):
        bad = Writer().message(7, Writer().packed_varints(1, [-1]))
        parse_caffemodel(Writer().message(100, Writer().message(7, bad)).bytes(), "neg")


def test_read_caffemodel_file_errors(tmp_path):
    with pytest.raises(CaffeModelError, match="cannot read"):
        read_caffemodel(tmp_path / "missing.caffemodel")
    txt = tmp_path / "net.caffemodel"
    txt.write_text('name: "LSTM"\nlayer { }\n')
    with pytest.raises(CaffeModelError, match="text .prototxt"):
        read_caffemodel(txt)
    trunc = tmp_path / "trunc.caffemodel"
    trunc.write_bytes(REAL_MODEL[:len(REAL_MODEL) // 2])
    with pytest.raises(CaffeModelError, match="trunc.caffemodel"):
        read_caffemodel(trunc)


def test_caffemodel_loads_into_a_net(tmp_path):
    src = CaffeNet(read_prototxt(CONFIG_DIR / "lstm_short.prototxt"), "TRAIN",
                   generator=torch.Generator().manual_seed(1))
    write_caffemodel(tmp_path / "m.caffemodel", src.blobs_by_layer(), src.name)
    dst = CaffeNet(read_prototxt(CONFIG_DIR / "lstm_short.prototxt"), "TEST")
    copied = dst.copy_trained_layers_from(read_caffemodel(tmp_path / "m.caffemodel"))
    assert sorted(copied) == ["ip1", "lstm1"]
    for (n1, p1, _, _), (n2, p2, _, _) in zip(src.learnable_params(), dst.learnable_params()):
        assert n1 == n2
        torch.testing.assert_close(p1, p2, rtol=0, atol=0)
    wrong = {"lstm1": ("Lstm", [np.zeros((4, 1), np.float32)] * 3)}
    with pytest.raises(CaffeNetError, match="lstm1"):
        dst.copy_trained_layers_from(wrong)


def test_copy_trained_layers_checks_shapes_not_only_counts():
    """Net::CopyTrainedLayersFrom refuses a blob whose shape differs even when its count matches (an
    InnerProduct weight stored [1, 15] for [15, 1]); a legacy 4-D blob [1, 1, N, K] fits [N, K]; nothing
    is copied when any blob fails."""
    net = CaffeNet(read_prototxt(CONFIG_DIR / "lstm_short.prototxt"), "TEST")
    good = {n: (t, [b.copy() for b in bs]) for n, (t, bs) in net.blobs_by_layer().items()}
    w, b = good["ip1"][1]
    assert w.shape == (1, 15)
    before = [p.detach().clone() for p in net.parameters()]
    transposed = {"lstm1": (good["lstm1"][0], [x + 1 for x in good["lstm1"][1]]), "ip1": ("InnerProduct", [w.T, b])}
    with pytest.raises(CaffeNetError, match=r"blob 0 of layer 'ip1': shape mismatch, the file's is \[15, 1\], "
                                            r"the net's \[1, 15\]"):
        net.copy_trained_layers_from(transposed, "m.caffemodel")
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters()))  # lstm1 was not half-copied
    legacy = {"ip1": ("InnerProduct", [np.full((1, 1, 1, 15), 2.0, np.float32), np.full((1, 1, 1, 1), 3.0, np.float32)])}
    assert net.copy_trained_layers_from(legacy) == ["ip1"]
    ip1 = net.layer_modules["ip1"]
    assert float(ip1.weight.detach().sum()) == 30.0 and float(ip1.bias.detach()) == 3.0
    with pytest.raises(CaffeNetError, match="shape mismatch"):
        net.copy_trained_layers_from({"ip1": ("InnerProduct", [np.zeros((1, 1, 15, 1), np.float32), b])})


BVLC_NET = """
name: "captioner"
input: "x"      input_shape { dim: 4 dim: 2 dim: 3 }
input: "cont"   input_shape { dim: 4 dim: 2 }
input: "feat"   input_shape { dim: 2 dim: 5 }
input: "h0"     input_shape { dim: 1 dim: 2 dim: 3 }
input: "c0"     input_shape { dim: 1 dim: 2 dim: 3 }
layer {
  name: "lstm1" type: "LSTM" bottom: "x" bottom: "cont" bottom: "feat" bottom: "h0" bottom: "c0"
  top: "h" top: "hT" top: "cT"
  recurrent_param { num_output: 3 expose_hidden: true
                    weight_filler { type: "uniform" min: -0.5 max: 0.5 } bias_filler { type: "constant" value: 0.1 } }
}
layer { name: "ip" type: "InnerProduct" bottom: "h" top: "y" inner_product_param { num_output: 2 axis: 2 } }
"""


def test_bvlc_lstm_net_from_prototxt_and_caffemodel(tmp_path):
    from reference import caffe_lstm as ref

    net_param = parse_prototxt(BVLC_NET)
    src = CaffeNet(net_param, "TEST", dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    blobs = src.blobs_by_layer()
    assert [b.shape for b in blobs["lstm1"][1]] == [(12, 3), (12,), (12, 5), (12, 3)]
    np.testing.assert_array_equal(blobs["lstm1"][1][1], np.full(12, 0.1))
    write_caffemodel(tmp_path / "cap.caffemodel", blobs, "captioner")
    net = CaffeNet(net_param, "TEST", dtype=torch.float64)
    net.copy_trained_layers_from(read_caffemodel(tmp_path / "cap.caffemodel"))
    rng = np.random.default_rng(0)
    arrays = dict(x=rng.normal(size=(4, 2, 3)), cont=np.array([[0, 0], [1, 1], [1, 0], [1, 1]], float),
                  feat=rng.normal(size=(2, 5)), h0=rng.normal(size=(1, 2, 3)), c0=rng.normal(size=(1, 2, 3)))
    out = net(**{k: torch.tensor(v) for k, v in arrays.items()})
    W_xc, b_c, W_s, W_hc = blobs["lstm1"][1]
    h, hT, cT, _ = ref.lstm_forward(arrays["x"], arrays["cont"], W_xc, b_c, W_hc, arrays["h0"], arrays["c0"],
                                    arrays["feat"], W_s)
    torch.testing.assert_close(out["h"], torch.tensor(h), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out["cT"][0], torch.tensor(cT), rtol=1e-10, atol=1e-10)
    W, b = blobs["ip"][1]
    torch.testing.assert_close(out["y"], torch.tensor(h @ W.T + b), rtol=1e-10, atol=1e-10)
    assert net.output_names == ["hT", "cT", "y"]
