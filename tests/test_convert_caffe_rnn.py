"""BVLC Caffe's ``RNN`` layer through the converter, against reference/caffe_rnn.py (the oracle written from
rnn_layer.cpp): the output o = tanh(W_ho h + b_o), ``cont`` restarts, the final h; a static input is refused;
the prototxt's num_output is checked. A real BVLC Caffe build's outputs for the layer (stacked, ``expose_hidden``,
fractional ``cont``, a static input) and the oracle's agreement with them: tests/test_convert_caffe_recorded.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compat.convert import convert, load
from compat.errors import InputError
from compat.formats.caffemodel import write_caffemodel
from reference import caffe_rnn
from tests.tolerances import assert_close

T, N, IN, H = 5, 3, 4, 6


def _blobs(rng, static: bool = False):
    shapes = [(H, IN), (H,)] + ([(H, 2)] if static else []) + [(H, H), (H, H), (H,)]
    return [rng.uniform(-0.8, 0.8, s).astype(np.float32) for s in shapes]


def test_caffe_rnn_layer_converts_with_its_output_layer(tmp_path):
    rng = np.random.default_rng(11)
    blobs = _blobs(rng)
    path = tmp_path / "net.caffemodel"
    write_caffemodel(path, {"rnn1": ("RNN", blobs), "ip": ("InnerProduct", [np.ones((2, H), np.float32)])})
    conversion = convert(path, tmp_path / "out")
    assert all(c.ok for c in conversion.checks), conversion.checks
    (spec,) = conversion.specs
    assert spec.module_kind == "compat.convert.modules.CaffeRNN"
    module = load(conversion.files[0])["rnn1"].double()
    x = rng.uniform(-1, 1, (T, N, IN))
    cont = np.ones((T, N))
    cont[0] = 0
    cont[2, 1] = 0          # stream 1 restarts mid-sequence
    h0 = rng.uniform(-0.5, 0.5, (1, N, H))
    want_o, want_h = caffe_rnn.rnn_layer(x, cont, blobs, h0)
    with torch.no_grad():
        o, h = module(torch.from_numpy(x), torch.from_numpy(h0), cont=torch.from_numpy(cont))
    assert_close(o, want_o, dtype=torch.float64)
    assert_close(h[0], want_h, dtype=torch.float64)
    # without cont: a stream continuing from h0
    want_o, _ = caffe_rnn.rnn_layer(x, None, blobs, h0)
    with torch.no_grad():
        o, _ = module(torch.from_numpy(x), torch.from_numpy(h0))
    assert_close(o, want_o, dtype=torch.float64)
    with torch.no_grad():
        o32, _ = load(conversion.files[0])["rnn1"](torch.from_numpy(x).float(), torch.from_numpy(h0).float())
    assert_close(o32, want_o, dtype=torch.float32)


def test_caffe_rnn_with_a_static_input_is_refused(tmp_path):
    path = tmp_path / "net.caffemodel"
    write_caffemodel(path, {"rnn1": ("RNN", _blobs(np.random.default_rng(1), static=True))})
    with pytest.raises(InputError, match="rnn1.*static input"):
        convert(path, tmp_path / "out")


def test_caffe_rnn_prototxt_num_output_is_checked(tmp_path):
    path = tmp_path / "net.caffemodel"
    write_caffemodel(path, {"rnn1": ("RNN", _blobs(np.random.default_rng(2)))})
    proto = tmp_path / "net.prototxt"
    proto.write_text('layer { name: "rnn1" type: "RNN" recurrent_param { num_output: 7 } }\n')
    with pytest.raises(InputError, match="num_output 7"):
        convert(path, tmp_path / "out", prototxt=str(proto))
