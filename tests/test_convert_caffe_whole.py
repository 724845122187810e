"""Whole BVLC Caffe nets through ``python -m compat.convert net.prototxt --weights x.caffemodel --to OUT``:
``compat.convert.load(OUT)`` is the net as one module, compared with reference/caffe_layers.py's net forward
(the numpy oracle written from Caffe's .cpp sources) on inputs of its own, and with the port's CaffeNet on the
same files. Nets: Embed -> LSTM with cont -> InnerProduct (axis 2) -> Softmax; the same with Split, Slice,
Concat, Eltwise (SUM with coeff, PROD, MAX), Reshape (0 and -1) and an in-place Dropout; an LSTM exposing its
hidden state; two RNN layers, the first exposing its hidden state; random chains of the layer set. A layer
outside the set is refused by name (the LSTM still converts alone).

These tests use the per-layer oracle on nets and inputs of their own; tests/test_convert_caffe_recorded.py
compares whole nets of every layer type here (and the RNN layer) with what a real BVLC Caffe build computed.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from compat.convert import WholeModelError, convert, load
from compat.formats.caffemodel import write_caffemodel
from reference.caffe_layers import net_forward
from tests.convert_cases import convert_cli
from tests.tolerances import assert_close

T, N, V, E, H, C = 6, 3, 11, 4, 5, 7

INPUTS = (f'layer {{ name: "data" type: "Input" top: "words" top: "cont" '
          f'input_param {{ shape {{ dim: {T} dim: {N} }} shape {{ dim: {T} dim: {N} }} }} }}\n')
EMBED_LSTM = INPUTS + (
    f'layer {{ name: "embed" type: "Embed" bottom: "words" top: "emb" embed_param {{ num_output: {E} input_dim: {V} }} }}\n'
    f'layer {{ name: "lstm" type: "LSTM" bottom: "emb" bottom: "cont" top: "h" recurrent_param {{ num_output: {H} }} }}\n')
SENTIMENT = EMBED_LSTM + (
    f'layer {{ name: "ip" type: "InnerProduct" bottom: "h" top: "logits" inner_product_param {{ num_output: {C} axis: 2 }} }}\n'
    'layer { name: "prob" type: "Softmax" bottom: "logits" top: "prob" softmax_param { axis: 2 } }\n')
MERGES = EMBED_LSTM + (
    'layer { name: "drop" type: "Dropout" bottom: "h" top: "h" dropout_param { dropout_ratio: 0.4 } }\n'
    'layer { name: "split" type: "Split" bottom: "h" top: "h1" top: "h2" top: "h3" }\n'
    'layer { name: "slice" type: "Slice" bottom: "h1" top: "a" top: "b" slice_param { axis: -1 slice_point: 2 } }\n'
    'layer { name: "cat" type: "Concat" bottom: "b" bottom: "a" top: "ba" concat_param { axis: 2 } }\n'
    'layer { name: "sum" type: "Eltwise" bottom: "ba" bottom: "h2" top: "s" '
    'eltwise_param { operation: SUM coeff: 0.5 coeff: -2 } }\n'
    'layer { name: "prod" type: "Eltwise" bottom: "s" bottom: "h3" top: "p" eltwise_param { operation: PROD } }\n'
    'layer { name: "max" type: "Eltwise" bottom: "p" bottom: "s" top: "m" eltwise_param { operation: MAX } }\n'
    f'layer {{ name: "flat" type: "Reshape" bottom: "m" top: "r" reshape_param {{ shape {{ dim: 0 dim: -1 }} }} }}\n'
    f'layer {{ name: "ip" type: "InnerProduct" bottom: "r" top: "logits" inner_product_param {{ num_output: {C} }} }}\n'
    'layer { name: "prob" type: "Softmax" bottom: "logits" top: "prob" }\n'
    'layer { name: "back" type: "Reshape" bottom: "logits" top: "steps" '
    f'reshape_param {{ shape {{ dim: 1 dim: -1 }} axis: 1 num_axes: 1 }} }}\n')
EXPOSED = INPUTS + (
    f'layer {{ name: "state" type: "Input" top: "h0" top: "c0" input_param {{ shape {{ dim: 1 dim: {N} dim: {H} }} }} }}\n'
    f'layer {{ name: "embed" type: "Embed" bottom: "words" top: "emb" '
    f'embed_param {{ num_output: {E} input_dim: {V} bias_term: false }} }}\n'
    f'layer {{ name: "lstm" type: "LSTM" bottom: "emb" bottom: "cont" bottom: "h0" bottom: "c0" top: "h" top: "hT" '
    f'top: "cT" recurrent_param {{ num_output: {H} expose_hidden: true }} }}\n'
    f'layer {{ name: "ip" type: "InnerProduct" bottom: "hT" top: "y" inner_product_param {{ num_output: 2 axis: 2 '
    'transpose: true } }\n')


def _blobs(rng, text: str, dtype=np.float32):
    f = lambda *s: rng.normal(0, 0.6, s).astype(dtype)  # noqa: E731
    blobs = {"lstm": ("LSTM", [f(4 * H, E), f(4 * H), f(4 * H, H)])}
    blobs["embed"] = ("Embed", [f(V, E)] if "bias_term: false" in text else [f(V, E), f(E)])
    if "transpose: true" in text:
        blobs["ip"] = ("InnerProduct", [f(H, 2), f(2)])                 # [K, num_output]
    elif '"ip"' in text:
        K = H if f"num_output: {C} axis: 2" in text else N * H                          # MERGES: [T, N * H] from axis 1
        blobs["ip"] = ("InnerProduct", [f(C, K), f(C)])
    return blobs


def _write(tmp_path, text: str, blobs, name="net"):
    proto = tmp_path / f"{name}.prototxt"
    proto.write_text(text)
    model = tmp_path / f"{name}.caffemodel"
    write_caffemodel(model, blobs)
    return proto, model


def _reference_layers(text: str):
    """The prototxt's layers as reference/caffe_layers.py's plain data, written by hand from the text here (not
    through the converter's reader)."""
    from compat.formats.prototxt import parse_prototxt

    out = []
    for layer in parse_prototxt(text).getall("layer"):
        params = [v for k, v in layer if k.endswith("_param")]
        param = {}
        if params:
            for k, v in params[0]:
                if k == "shape" and hasattr(v, "getall"):
                    if str(layer.get("type")) == "Reshape":
                        param["shape"] = list(v.getall("dim"))
                    continue
                if k in ("slice_point", "coeff"):
                    param.setdefault(k, []).append(v)
                else:
                    param[k] = v if not isinstance(v, str) or k == "operation" else v == "true"
            for k in ("bias_term", "transpose", "expose_hidden"):
                if k in param and not isinstance(param[k], bool):
                    param[k] = str(param[k]) == "true"
            if "operation" in param:
                param["operation"] = str(param["operation"])
        out.append({"name": str(layer.get("name")), "type": str(layer.get("type")),
                    "bottom": [str(b) for b in layer.getall("bottom")], "top": [str(t) for t in layer.getall("top")],
                    "param": param})
    return out


def _inputs(rng, with_state=False):
    words = rng.integers(0, V, (T, N))
    cont = np.ones((T, N))
    cont[0] = 0
    cont[T // 2, 1] = 0          # stream 1 restarts mid-sequence
    feeds = {"words": words, "cont": cont}
    if with_state:
        feeds["h0"] = rng.uniform(-1, 1, (1, N, H))
        feeds["c0"] = rng.uniform(-1, 1, (1, N, H))
    return feeds


def _run(model, feeds, dtype):
    args = [torch.as_tensor(feeds[n]) if n == "words" else torch.as_tensor(feeds[n], dtype=dtype)
            for n in model.input_names]
    with torch.no_grad():
        out = model.to(dtype)(*args)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("text, outputs", [(SENTIMENT, ["prob"]), (MERGES, ["prob", "steps"]),
                                           (EXPOSED, ["h", "cT", "y"])], ids=["sentiment", "merges", "exposed"])
def test_whole_net_equals_the_oracle(tmp_path, text, outputs):
    rng = np.random.default_rng(len(text))
    blobs = _blobs(rng, text)
    proto, model = _write(tmp_path, text, blobs)
    assert convert_cli(proto, tmp_path / "out", ["--weights", str(model), "--model", "whole", "--report", str(tmp_path / "r.md")]) == 0
    net = load(tmp_path / "out")
    assert isinstance(net, torch.nn.Module) and net.input_names[:2] == ["words", "cont"]
    assert net.input_dtypes["words"] == "int64"
    assert isinstance(net.get_submodule("lstm"), torch.nn.Module) and "lstm" in net   # the converted LSTM
    feeds = _inputs(rng, with_state=text is EXPOSED)
    want = net_forward(_reference_layers(text), {k: v for k, (_, v) in blobs.items()}, feeds)
    for dtype in (torch.float64, torch.float32):
        got = _run(net, feeds, dtype)
        assert len(got) == len(outputs)
        for g, name in zip(got, outputs):
            assert list(g.shape) == list(want[name].shape), name
            assert_close(g, want[name], dtype=dtype, msg=name)
    # the port's CaffeNet built from the same files computes the same blobs
    from ports.caffe_sequence.model import CaffeNet

    port = CaffeNet.from_files(proto, model, phase="TEST", dtype=torch.float64)
    with torch.no_grad():
        mine = port(**{k: torch.as_tensor(v, dtype=torch.float64) for k, v in feeds.items()})
    for name in outputs:
        assert_close(mine[name], want[name], dtype=torch.float64, msg=f"CaffeNet {name}")
    assert "compat.layers.caffe.Embed" in (tmp_path / "r.md").read_text()


def test_caffemodel_with_prototxt_converts_the_same_whole_net(tmp_path):
    rng = np.random.default_rng(3)
    proto, model = _write(tmp_path, SENTIMENT, _blobs(rng, SENTIMENT))
    c = convert(model, tmp_path / "a", prototxt=str(proto))
    assert c.graph is not None and all(k.ok for k in c.checks)
    feeds = _inputs(rng)
    a = _run(load(tmp_path / "a"), feeds, torch.float64)[0]
    convert(proto, tmp_path / "b", weights=str(model))
    b = _run(load(tmp_path / "b"), feeds, torch.float64)[0]
    assert torch.equal(a, b)


def test_dropout_in_a_train_net_scales_as_caffe(tmp_path):
    """The port's CaffeNet in TRAIN: Dropout keeps values with probability 1 - ratio, scaled by 1 / (1 - ratio)."""
    from compat.formats.prototxt import parse_prototxt
    from ports.caffe_sequence.model import CaffeNet

    text = ('input: "x" input_shape { dim: 400 dim: 50 }\n'
            'layer { name: "d" type: "Dropout" bottom: "x" top: "y" dropout_param { dropout_ratio: 0.25 } }\n')
    x = torch.ones(400, 50, dtype=torch.float64)
    torch.manual_seed(1)
    y = CaffeNet(parse_prototxt(text), "TRAIN", dtype=torch.float64)(x=x)["y"]
    kept = y != 0
    assert_close(y[kept], torch.full((int(kept.sum()),), 4 / 3, dtype=torch.float64), dtype=torch.float64)
    assert abs(float(kept.double().mean()) - 0.75) < 0.015   # 5 standard deviations of the binomial
    assert torch.equal(CaffeNet(parse_prototxt(text), "TEST", dtype=torch.float64)(x=x)["y"], x)


@pytest.mark.parametrize("extra, match", [
    ('layer { name: "loss" type: "SoftmaxWithLoss" bottom: "logits" bottom: "words" top: "loss" }\n',
     "'loss' \\(SoftmaxWithLoss\\).*not converted whole"),
    ('layer { name: "py" type: "Python" bottom: "h" top: "z" python_param { module: "os" layer: "system" } }\n',
     "'py' \\(Python\\).*not converted whole"),
    ('layer { name: "bad" type: "Reshape" bottom: "h" top: "z" reshape_param { shape { dim: 4 dim: -1 } } }\n',
     "'bad' \\(Reshape\\).*not divisible"),
    ('layer { name: "bad" type: "Slice" bottom: "h" top: "u" top: "v" slice_param { axis: 2 slice_point: 9 } }\n',
     "'bad' \\(Slice\\).*beyond the axis"),
    ('layer { name: "bad" type: "Eltwise" bottom: "h" bottom: "logits" top: "z" }\n',
     "'bad' \\(Eltwise\\).*bottom 1 has shape"),
    ('layer { name: "bad" type: "Eltwise" bottom: "h" bottom: "h" top: "z" eltwise_param { operation: MAX coeff: 1 '
     'coeff: 2 } }\n', "only takes coefficients for summation"),
])
def test_layers_outside_the_set_or_bad_settings_are_refused_by_name(tmp_path, extra, match):
    rng = np.random.default_rng(0)
    text = SENTIMENT + extra
    proto, model = _write(tmp_path, text, _blobs(rng, SENTIMENT))
    with pytest.raises(WholeModelError, match=match):
        convert(proto, tmp_path / "w", weights=str(model), model="whole")
    c = convert(proto, tmp_path / "a", weights=str(model))     # auto: the LSTM converts alone, saying why
    assert c.graph is None and re.search(match, c.whole_refused)
    assert [s.name for s in c.specs] == ["lstm"] and all(k.ok for k in c.checks)
    assert convert_cli(proto, tmp_path / "cli", ["--weights", str(model), "--model", "whole"]) == 2


def test_prototxt_without_weights_and_flags_of_the_other_route_are_one_clear_error(tmp_path, capsys):
    rng = np.random.default_rng(0)
    proto, model = _write(tmp_path, SENTIMENT, _blobs(rng, SENTIMENT))
    assert convert_cli(proto, tmp_path / "o") == 2
    assert "pass the trained .caffemodel with --weights" in capsys.readouterr().err
    assert convert_cli(model, tmp_path / "o", ["--weights", str(model)]) == 2
    assert "--weights goes with a .prototxt source" in capsys.readouterr().err


RNN_NET = INPUTS + (
    f'layer {{ name: "state" type: "Input" top: "h0" input_param {{ shape {{ dim: 1 dim: {N} dim: {H} }} }} }}\n'
    f'layer {{ name: "embed" type: "Embed" bottom: "words" top: "emb" '
    f'embed_param {{ num_output: {E} input_dim: {V} }} }}\n'
    f'layer {{ name: "rnn1" type: "RNN" bottom: "emb" bottom: "cont" bottom: "h0" top: "o1" top: "hT" '
    f'recurrent_param {{ num_output: {H} expose_hidden: true }} }}\n'
    f'layer {{ name: "rnn2" type: "RNN" bottom: "o1" bottom: "cont" top: "o2" '
    f'recurrent_param {{ num_output: {C} }} }}\n'
    'layer { name: "prob" type: "Softmax" bottom: "o2" top: "prob" softmax_param { axis: 2 } }\n')


def _rnn_blobs(rng):
    f = lambda *s: rng.normal(0, 0.6, s).astype(np.float32)  # noqa: E731
    return {"embed": ("Embed", [f(V, E), f(E)]), "rnn1": ("RNN", [f(H, E), f(H), f(H, H), f(H, H), f(H)]),
            "rnn2": ("RNN", [f(C, H), f(C), f(C, C), f(C, C), f(C)])}


def test_rnn_layers_in_a_whole_net_equal_the_oracle(tmp_path):
    """Two RNN layers (the first exposing its hidden state) in a float64 net: the loaded net and its emitted Python
    against reference/caffe_layers.py, with cont 0 at the first step of one stream only (the others continue from
    h0), a restart and a fractional value mid-sequence."""
    import importlib.util

    rng = np.random.default_rng(5)
    blobs = _rnn_blobs(rng)
    proto, model = _write(tmp_path, RNN_NET, blobs)
    assert convert_cli(proto, tmp_path / "out", ["--weights", str(model), "--model", "whole", "--emit-python",
                                                 str(tmp_path / "rnn_model.py")]) == 0
    net = load(tmp_path / "out")
    assert net.input_names == ["words", "cont", "h0"] and set(net) == {"rnn1", "rnn2"}
    feeds = {"words": rng.integers(0, V, (T, N)), "cont": np.ones((T, N)), "h0": rng.uniform(-1, 1, (1, N, H))}
    feeds["cont"][0] = [0, 1, 1]
    feeds["cont"][2, 1] = 0
    feeds["cont"][3, 2] = 0.25
    want = net_forward(_reference_layers(RNN_NET), {k: v for k, (_, v) in blobs.items()}, feeds)
    spec = importlib.util.spec_from_file_location("rnn_model", tmp_path / "rnn_model.py")
    emitted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emitted)
    plain = emitted.load(dtype=torch.float64)
    with torch.no_grad():
        emitted_out = plain(*[torch.as_tensor(feeds[k]) for k in ("words", "cont", "h0")])
    for got in (_run(net, feeds, torch.float64), emitted_out):
        assert len(got) == 2
        for g, name in zip(got, ["hT", "prob"]):
            assert list(g.shape) == list(want[name].shape), name
            assert_close(g, want[name], dtype=torch.float64, msg=name)


@pytest.mark.parametrize("layer, match", [
    ('layer { name: "rnn1" type: "RNN" bottom: "emb" bottom: "cont" top: "o1" top: "hT" '
     'recurrent_param { num_output: 5 expose_hidden: true } }', "'rnn1' \\(RNN\\).*2 bottoms; a RNN layer takes 3"),
    ('layer { name: "rnn1" type: "RNN" bottom: "emb" bottom: "cont" bottom: "h0" top: "o1" '
     'recurrent_param { num_output: 5 expose_hidden: true } }', "'rnn1' \\(RNN\\).*1 tops; a RNN layer has 2"),
    ('layer { name: "rnn1" type: "RNN" bottom: "emb" bottom: "h0" bottom: "h0" top: "o1" top: "hT" '
     'recurrent_param { num_output: 5 expose_hidden: true } }',
     "'rnn1' \\(RNN\\).*expected x \\[T, N, ...\\] and cont"),
])
def test_rnn_layer_bad_bottoms_or_tops_are_refused_by_name(tmp_path, layer, match):
    rng = np.random.default_rng(0)
    rnn1 = RNN_NET[RNN_NET.index('layer { name: "rnn1"'):RNN_NET.index('layer { name: "rnn2"')]
    text = RNN_NET.replace(rnn1, layer + "\n").replace('bottom: "o1" bottom: "cont"', 'bottom: "emb" bottom: "cont"')
    blobs = _rnn_blobs(rng)
    blobs["rnn2"] = ("RNN", [rng.normal(0, 1, s) for s in [(C, E), (C,), (C, C), (C, C), (C,)]])
    proto, model = _write(tmp_path, text, blobs)
    with pytest.raises(WholeModelError, match=match):
        convert(proto, tmp_path / "w", weights=str(model), model="whole")


@st.composite
def chains(draw):
    """A random net after the LSTM: a chain of the layer set on h [T, N, H], ending in an InnerProduct."""
    lines, blob, shape, k = [], "h", [T, N, H], 0
    for _ in range(draw(st.integers(1, 5))):
        k += 1
        kind = draw(st.sampled_from(["Softmax", "Reshape", "SliceConcat", "Eltwise", "Dropout", "Split"]))
        top = f"b{k}"
        if kind == "Softmax":
            axis = draw(st.integers(-3, 2))
            lines.append(f'layer {{ name: "l{k}" type: "Softmax" bottom: "{blob}" top: "{top}" '
                         f'softmax_param {{ axis: {axis} }} }}')
        elif kind == "Reshape":
            dims = draw(st.sampled_from([("0", "-1"), ("-1",), ("0", "0", "-1", "1"), ("1", "-1", "0")]))
            if len(dims) == 3 and shape[2] != H:
                dims = ("0", "-1")
            body = " ".join(f"dim: {d}" for d in dims)
            axis = 1 if len(dims) <= 2 else 0
            lines.append(f'layer {{ name: "l{k}" type: "Reshape" bottom: "{blob}" top: "{top}" '
                         f'reshape_param {{ shape {{ {body} }} axis: {axis} }} }}')
            lines.append(f'layer {{ name: "l{k}b" type: "Reshape" bottom: "{top}" top: "{top}r" '
                         f'reshape_param {{ shape {{ dim: {T} dim: {N} dim: -1 }} }} }}')
            top = f"{top}r"
        elif kind == "SliceConcat":
            lines.append(f'layer {{ name: "l{k}" type: "Slice" bottom: "{blob}" top: "{top}a" top: "{top}b" '
                         f'slice_param {{ axis: 2 slice_point: {draw(st.integers(1, H - 1))} }} }}')
            lines.append(f'layer {{ name: "l{k}c" type: "Concat" bottom: "{top}b" bottom: "{top}a" top: "{top}" '
                         'concat_param { axis: 2 } }')
        elif kind == "Eltwise":
            op = draw(st.sampled_from(["SUM", "PROD", "MAX"]))
            coeff = f" coeff: {draw(st.sampled_from([-1.5, 0.5, 2]))} coeff: 1" if op == "SUM" and draw(st.booleans()) \
                else ""
            lines.append(f'layer {{ name: "l{k}" type: "Eltwise" bottom: "{blob}" bottom: "h" top: "{top}" '
                         f'eltwise_param {{ operation: {op}{coeff} }} }}')
        elif kind == "Dropout":
            top = blob       # in place
            lines.append(f'layer {{ name: "l{k}" type: "Dropout" bottom: "{blob}" top: "{blob}" }}')
        else:
            lines.append(f'layer {{ name: "l{k}" type: "Split" bottom: "{blob}" top: "{top}" top: "{top}x" }}')
            lines.append(f'layer {{ name: "l{k}s" type: "Silence" bottom: "{top}x" }}')
        blob = top
    lines.append(f'layer {{ name: "ip" type: "InnerProduct" bottom: "{blob}" top: "out" '
                 f'inner_product_param {{ num_output: {C} axis: 2 }} }}')
    return EMBED_LSTM + "\n".join(lines) + "\n"


@settings(max_examples=8, deadline=None)
@given(text=chains(), seed=st.integers(0, 2 ** 16))
def test_random_chains_of_the_layer_set(tmp_path_factory, text, seed):
    tmp_path = tmp_path_factory.mktemp("chain")
    rng = np.random.default_rng(seed)
    blobs = _blobs(rng, text)
    blobs["ip"] = ("InnerProduct", [rng.normal(0, 0.6, (C, H)).astype(np.float32), np.zeros(C, np.float32)])
    proto, model = _write(tmp_path, text, blobs)
    c = convert(proto, tmp_path / "out", weights=str(model), model="whole")
    assert all(k.ok for k in c.checks)
    net = load(tmp_path / "out")
    feeds = _inputs(rng)
    want = net_forward(_reference_layers(text), {k: v for k, (_, v) in blobs.items()}, feeds)
    assert_close(_run(net, feeds, torch.float64)[0], want["out"], dtype=torch.float64)


@pytest.mark.parametrize("text", [SENTIMENT, MERGES, EXPOSED], ids=["sentiment", "merges", "exposed"])
def test_emitted_python_predicts_the_same(tmp_path, text):
    """--emit-python: a standalone module file (plain torch where Caffe's semantics are PyTorch's, the project's
    Caffe layers and LSTM where not) whose predictions equal the loaded net's."""
    import importlib.util

    rng = np.random.default_rng(11)
    proto, model = _write(tmp_path, text, _blobs(rng, text))
    assert convert_cli(proto, tmp_path / "out", ["--weights", str(model), "--emit-python",
                                                 str(tmp_path / "net_model.py")]) == 0
    spec = importlib.util.spec_from_file_location("net_model", tmp_path / "net_model.py")
    emitted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emitted)
    plain = emitted.load(dtype=torch.float64)
    net = load(tmp_path / "out")
    feeds = _inputs(rng, with_state=text is EXPOSED)
    want = _run(net, feeds, torch.float64)
    with torch.no_grad():
        got = plain(*[torch.as_tensor(feeds[n]) if n == "words" else torch.as_tensor(feeds[n], dtype=torch.float64)
                      for n in net.input_names])
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w, dtype=torch.float64)
