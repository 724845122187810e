"""BVLC Caffe's ``LSTM`` and ``RNN`` layers with a static input (a third bottom x_static [N, ...], whose product with
the ``W_xc_static`` / ``W_xh_static`` blob is added to every step's input transform: lstm_layer.cpp and
rnn_layer.cpp ``FillUnrolledNet``) through ``python -m compat.convert``, in float64 against the numpy oracles
(reference/caffe_lstm.py, reference/caffe_rnn.py, reference/caffe_layers.py): the layer alone
(``module(x, hx, cont=cont, x_static=x_static)``), the whole net, its emitted Python; and the hostile cases, each
one error naming the layer and the blob or bottom. What a real BVLC Caffe build computed for both layers:
tests/test_convert_caffe_recorded.py."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from compat.convert import WholeModelError, convert, load
from compat.errors import InputError
from compat.formats.caffemodel import write_caffemodel
from reference import caffe_lstm, caffe_rnn
from reference.caffe_layers import net_forward
from tests.convert_cases import convert_cli
from tests.test_convert_caffe_whole import _reference_layers
from tests.test_convert_formats import _reseal
from tests.tolerances import assert_close


def _layer_blobs(rng, kind: str, I: int, S: int, H: int, dtype=np.float32):
    """Caffe's blobs in its order: LSTM W_xc, b_c, W_xc_static, W_hc; RNN W_xh, b_h, W_xh_static, W_hh, W_ho, b_o."""
    f = lambda *s: rng.uniform(-0.8, 0.8, s).astype(dtype)  # noqa: E731
    if kind == "LSTM":
        return [f(4 * H, I), f(4 * H), f(4 * H, S), f(4 * H, H)]
    return [f(H, I), f(H), f(H, S), f(H, H), f(H, H), f(H)]


def _net(kind: str, T: int, N: int, I: int, static_shape, H: int, expose: bool) -> str:
    """An Input layer, then the recurrent layer with bottoms x, cont, x_static (, h0 (, c0)) in Caffe's order."""
    states = (["h0", "c0"] if kind == "LSTM" else ["h0"]) if expose else []
    shapes = [[T, N, I], [T, N], list(static_shape)] + [[1, N, H]] * len(states)
    tops = ["x", "cont", "x_static"] + states
    inp = ('layer { name: "data" type: "Input" ' + " ".join(f'top: "{t}"' for t in tops) + " input_param { " +
           " ".join("shape { " + " ".join(f"dim: {d}" for d in s) + " }" for s in shapes) + " } }\n")
    outs = ["y"] + (["h_T", "c_T"] if kind == "LSTM" else ["h_T"]) * expose
    return inp + (f'layer {{ name: "rec" type: "{kind}" ' + " ".join(f'bottom: "{b}"' for b in tops) + " " +
                  " ".join(f'top: "{t}"' for t in outs) +
                  f' recurrent_param {{ num_output: {H}{" expose_hidden: true" if expose else ""} }} }}\n')


def _cont(rng, T: int, N: int) -> np.ndarray:
    cont = (rng.random((T, N)) > 0.25).astype(np.float64)
    cont[0, 0] = 0
    return cont


def _oracle_layer(kind, blobs, x, cont, x_static, h0, c0):
    """The layer by its numpy oracle: (output, (h_T, c_T or None))."""
    b = [np.asarray(a, np.float64) for a in blobs]
    if kind == "LSTM":
        h, h_T, c_T, _ = caffe_lstm.lstm_forward(x, cont, b[0], b[1], b[3], h0, c0, x_static, b[2])
        return h, (h_T, c_T)
    o, h_T = caffe_rnn.rnn_layer(x, cont, b, h0, x_static)
    return o, (h_T, None)


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(["LSTM", "RNN"]), T=st.integers(1, 5), N=st.integers(1, 3), I=st.integers(1, 3),
       static_axes=st.sampled_from([(2,), (3,), (2, 2), (1, 3, 1)]), H=st.integers(1, 4), expose=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_static_input_layer_alone_and_whole_net_equal_the_oracles(tmp_path_factory, kind, T, N, I, static_axes, H,
                                                                   expose, seed):
    """Any sizes, x_static of one or more feature axes (the static InnerProduct has axis 1: they are flattened),
    random resets, with and without exposed state: the converted layer alone and the whole net (float64) against
    the oracles, and the conversion's own check."""
    tmp = tmp_path_factory.mktemp("static")
    rng = np.random.default_rng(seed)
    S = int(np.prod(static_axes))
    blobs = _layer_blobs(rng, kind, I, S, H)
    text = _net(kind, T, N, I, (N,) + tuple(static_axes), H, expose)
    (tmp / "net.prototxt").write_text(text)
    write_caffemodel(tmp / "net.caffemodel", {"rec": (kind, blobs)})
    x, cont = rng.uniform(-1.5, 1.5, (T, N, I)), _cont(rng, T, N)
    x_static = rng.uniform(-1.5, 1.5, (N,) + tuple(static_axes))
    h0, c0 = rng.uniform(-1, 1, (1, N, H)), rng.uniform(-1, 1, (1, N, H))
    want, (want_h, want_c) = _oracle_layer(kind, blobs, x, cont, x_static, h0, c0)

    alone = convert(tmp / "net.caffemodel", tmp / "alone")
    assert all(c.ok for c in alone.checks), alone.checks
    (spec,) = alone.specs
    assert spec.module_kind == f"compat.convert.modules.Caffe{kind}" and spec.module_config == {"static_size": S}
    module = load(alone.files[0])["rec"].double()
    t = torch.from_numpy
    hx = (t(h0), t(c0)) if kind == "LSTM" else t(h0)
    with torch.no_grad():
        out, state = module(t(x), hx, cont=t(cont), x_static=t(x_static))
    assert_close(out, want, dtype=torch.float64)
    assert_close((state[0] if kind == "LSTM" else state)[0], want_h, dtype=torch.float64)
    if kind == "LSTM":
        assert_close(state[1][0], want_c, dtype=torch.float64)

    whole = convert(tmp / "net.prototxt", tmp / "whole", weights=str(tmp / "net.caffemodel"), model="whole")
    assert all(c.ok for c in whole.checks), whole.checks
    net = load(tmp / "whole")
    feeds = {"x": x, "cont": cont, "x_static": x_static, "h0": h0, "c0": c0}
    assert net.input_names == ["x", "cont", "x_static"] + (["h0", "c0"] if kind == "LSTM" else ["h0"]) * expose
    with torch.no_grad():
        got = net.double()(*[t(feeds[n]) for n in net.input_names])
    got = got if isinstance(got, tuple) else (got,)
    ref = net_forward(_reference_layers(text), {"rec": blobs}, feeds)
    for g, name in zip(got, ["y", "h_T", "c_T"]):
        assert_close(g, ref[name], dtype=torch.float64, msg=name)
    if expose:   # the same stream from the same state: the layer alone's output
        assert_close(got[0], want, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_static_input_whole_net_emits_python_that_predicts_the_same(tmp_path, kind):
    """--emit-python: the static blob is the emitted module's ``weight_static`` and x_static its third input."""
    rng = np.random.default_rng(3)
    T, N, I, H = 4, 2, 3, 5
    blobs = _layer_blobs(rng, kind, I, 6, H)
    text = _net(kind, T, N, I, (N, 2, 3), H, expose=True)
    (tmp_path / "net.prototxt").write_text(text)
    write_caffemodel(tmp_path / "net.caffemodel", {"rec": (kind, blobs)})
    assert convert_cli(tmp_path / "net.prototxt", tmp_path / "out", ["--weights", str(tmp_path / "net.caffemodel"),
                                                                    "--emit-python", str(tmp_path / "m.py")]) == 0
    source = (tmp_path / "m.py").read_text()
    assert f"Caffe{kind}({I}, {H}, static_size=6)" in source and "x_static=x_static" in source
    spec = importlib.util.spec_from_file_location("static_model", tmp_path / "m.py")
    emitted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emitted)
    plain = emitted.load(dtype=torch.float64)
    feeds = {"x": rng.uniform(-1, 1, (T, N, I)), "cont": _cont(rng, T, N), "x_static": rng.uniform(-1, 1, (N, 2, 3)),
             "h0": rng.uniform(-1, 1, (1, N, H)), "c0": rng.uniform(-1, 1, (1, N, H))}
    names = ["x", "cont", "x_static", "h0"] + (["c0"] if kind == "LSTM" else [])
    with torch.no_grad():
        got = plain(*[torch.as_tensor(feeds[n]) for n in names])
    want = net_forward(_reference_layers(text), {"rec": blobs}, feeds)
    for g, name in zip(got, ["y", "h_T", "c_T"]):
        assert_close(g, want[name], dtype=torch.float64, msg=name)


# ------------------------------------------------------------------------------------------------ hostile files
@pytest.mark.parametrize("kind, blob", [("LSTM", "W_xc_static"), ("RNN", "W_xh_static")])
@pytest.mark.parametrize("shape", ["rows", "no columns", "3-D"])
def test_a_static_blob_of_the_wrong_shape_is_refused_naming_layer_and_blob(tmp_path, kind, blob, shape):
    rng = np.random.default_rng(1)
    blobs = _layer_blobs(rng, kind, 3, 2, 4)
    rows = blobs[2].shape[0]
    blobs[2] = np.zeros({"rows": (rows + 1, 2), "no columns": (rows, 0), "3-D": (rows, 2, 1)}[shape], np.float32)
    write_caffemodel(tmp_path / "m.caffemodel", {"rec": (kind, blobs)})
    with pytest.raises(InputError, match=f"layer 'rec' \\({kind}\\): {blob} has shape"):
        convert(tmp_path / "m.caffemodel", tmp_path / "out")


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_a_static_blob_without_its_x_static_bottom_is_refused_naming_layer_and_bottom(tmp_path, kind):
    """The .caffemodel holds the static weight but the net gives the layer no x_static bottom (Caffe would stop:
    incompatible number of blobs): the whole net is refused by name; the layer still converts alone."""
    rng = np.random.default_rng(2)
    text = _net(kind, 3, 2, 3, (2, 2), 4, expose=False).replace(' bottom: "x_static"', "")
    (tmp_path / "net.prototxt").write_text(text)
    write_caffemodel(tmp_path / "net.caffemodel", {"rec": (kind, _layer_blobs(rng, kind, 3, 2, 4))})
    with pytest.raises(WholeModelError, match=f"'rec' \\({kind}\\).*static weight.*no x_static bottom"):
        convert(tmp_path / "net.prototxt", tmp_path / "w", weights=str(tmp_path / "net.caffemodel"), model="whole")
    conversion = convert(tmp_path / "net.prototxt", tmp_path / "a", weights=str(tmp_path / "net.caffemodel"))
    assert conversion.graph is None and "x_static" in conversion.whole_refused and conversion.specs


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_an_x_static_bottom_without_its_blob_or_of_the_wrong_shape_is_refused(tmp_path, kind):
    rng = np.random.default_rng(3)
    plain = _layer_blobs(rng, kind, 3, 2, 4)
    del plain[2]
    text = _net(kind, 3, 2, 3, (2, 2), 4, expose=False)
    (tmp_path / "net.prototxt").write_text(text)
    write_caffemodel(tmp_path / "net.caffemodel", {"rec": (kind, plain)})
    with pytest.raises(WholeModelError, match=f"'rec' \\({kind}\\).*x_static.*no static weight blob"):
        convert(tmp_path / "net.prototxt", tmp_path / "w", weights=str(tmp_path / "net.caffemodel"), model="whole")
    for shape, what in (((3, 2), r"\[3, 2\]; expected \[N, ...\] = \[2, ...\]"), ((2, 3), r"\[2, 3\]; .* with 2 features")):
        (tmp_path / "net.prototxt").write_text(_net(kind, 3, 2, 3, shape, 4, expose=False))
        write_caffemodel(tmp_path / "net.caffemodel", {"rec": (kind, _layer_blobs(rng, kind, 3, 2, 4))})
        with pytest.raises(WholeModelError, match=f"'rec' \\({kind}\\): bottom x_static has shape {what}"):
            convert(tmp_path / "net.prototxt", tmp_path / "w", weights=str(tmp_path / "net.caffemodel"),
                    model="whole")


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_the_module_refuses_a_missing_or_misshapen_x_static(tmp_path, kind):
    rng = np.random.default_rng(4)
    write_caffemodel(tmp_path / "m.caffemodel", {"rec": (kind, _layer_blobs(rng, kind, 3, 2, 4))})
    module = load(convert(tmp_path / "m.caffemodel", tmp_path / "out").files[0])["rec"]
    x, cont = torch.zeros(5, 2, 3), torch.ones(5, 2)
    for x_static, match in ((None, r"x_static: this layer has a static input; pass x_static= \[N, 2\]"),
                            (torch.zeros(3, 2), r"x_static has shape \[3, 2\]; its first axis must be the 2 streams"),
                            (torch.zeros(2, 5), r"x_static has 5 features")):
        with pytest.raises(InputError, match=match):
            module(x, cont=cont, x_static=x_static)


def test_a_tampered_static_size_is_refused_naming_the_field(tmp_path):
    """The stored module_config is checked when the conversion is read: JSON types here, values by the class, and
    the static weight's shape against static_size."""
    rng = np.random.default_rng(5)
    write_caffemodel(tmp_path / "m.caffemodel", {"rec": ("LSTM", _layer_blobs(rng, "LSTM", 3, 2, 4))})
    convert(tmp_path / "m.caffemodel", tmp_path / "out")
    manifest = tmp_path / "out.json"
    good = json.loads(manifest.read_text())
    assert good["content"]["lstms"][0]["module_config"] == {"static_size": 2}
    for edit, message in ((lambda e: e["module_config"].update(static_size=3), r"lstms/0/weights"),
                          (lambda e: e["module_config"].update(static_size=-1), r"lstms/0: describes no module.*"
                                                                                r"static_size"),
                          (lambda e: e["module_config"].update(static_size="2"), r"lstms/0: describes no module"),
                          (lambda e: e["module_config"].update(static_size=[2]), r"lstms/0/module_config/static_size"),
                          (lambda e: e["module_config"].update(hidden_size=4), r"lstms/0/module_config/hidden_size"),
                          (lambda e: e.update(module="compat.lstm.LSTM"), r"lstms/0: describes no module.*"
                                                                          r"module_config")):
        content = json.loads(json.dumps(good["content"]))
        edit(content["lstms"][0])
        _reseal(manifest, content)
        with pytest.raises(InputError, match=message):
            load(tmp_path / "out")
    _reseal(manifest, good["content"])
    assert load(tmp_path / "out")["rec"].static_size == 2
