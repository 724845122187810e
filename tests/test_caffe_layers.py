"""Caffe's two LSTM layers (ports.caffe_sequence.layers) against the numpy oracle reference/caffe_lstm.py.

Properties: outputs, final state and gradients of x, x_static, h0, c0 and every blob, float64, for random
resets (mid-stream, at t = 0 only, everywhere, nowhere, random, fractional), several streams, exposed and
carried state across calls, and each quirk option.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, note, strategies as st
from hypothesis.strategies import composite

from compat.lstm_activations import activation
from ports.caffe_sequence import CaffeLSTM, CaffeShapeError, JunhyukohLSTM
from reference import caffe_lstm as ref
from tests.tolerances import assert_close

RESETS = ("mid", "t0", "everywhere", "nowhere", "random", "fractional")


def _cont(rng, pattern: str, T: int, N: int) -> np.ndarray:
    cont = np.ones((T, N))
    if pattern == "t0":
        cont[0] = 0
    elif pattern == "everywhere":
        cont[:] = 0
    elif pattern == "mid":
        cont[0] = 0
        cont[T // 2, rng.integers(N)] = 0
    elif pattern == "random":
        cont = (rng.random((T, N)) > 0.4).astype(float)
    elif pattern == "fractional":
        cont = rng.choice([0.0, 0.5, 1.0, 0.25], size=(T, N))
    return cont


@composite
def bvlc_cases(draw):
    T = draw(st.integers(1, 6))
    N = draw(st.integers(1, 3))
    I = draw(st.integers(1, 3))
    H = draw(st.integers(1, 4))
    static = draw(st.booleans())
    pattern = draw(st.sampled_from(RESETS))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    case = dict(T=T, N=N, I=I, H=H, static=static, pattern=pattern, seed=seed)
    note(f"BVLC case {case}")
    case["arrays"] = dict(
        x=rng.normal(size=(T, N, I)), cont=_cont(rng, pattern, T, N), W_xc=rng.normal(size=(4 * H, I)) * 0.7,
        b_c=rng.normal(size=4 * H) * 0.5, W_hc=rng.normal(size=(4 * H, H)) * 0.7,
        x_static=rng.normal(size=(N, 2)) if static else None,
        W_xc_static=rng.normal(size=(4 * H, 2)) * 0.7 if static else None,
        h0=rng.normal(size=(1, N, H)), c0=rng.normal(size=(1, N, H)), dh=rng.normal(size=(T, N, H)),
        dh_T=rng.normal(size=(N, H)), dc_T=rng.normal(size=(N, H)))
    return case


def _bvlc_layer(a, **options) -> CaffeLSTM:
    blobs = [a["W_xc"], a["b_c"]] + ([a["W_xc_static"]] if a["x_static"] is not None else []) + [a["W_hc"]]
    return CaffeLSTM.from_blobs(blobs, dtype=torch.float64, **options)


def _t(a, grad=True):
    return None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _grad_of(layer: CaffeLSTM) -> dict:
    out = {"W_xc": layer.W_xc.grad, "b_c": layer.b_c.grad, "W_hc": layer.W_hc.grad}
    if layer.W_xc_static is not None:
        out["W_xc_static"] = layer.W_xc_static.grad
    return out


@given(bvlc_cases(), st.booleans())
def test_bvlc_exposed_state_matches_reference(case, caffe_tanh):
    a = case["arrays"]
    layer = _bvlc_layer(a, expose_hidden=True, caffe_tanh=caffe_tanh)
    x, xs, h0, c0 = _t(a["x"]), _t(a["x_static"]), _t(a["h0"]), _t(a["c0"])
    h, hT, cT = layer(x, torch.tensor(a["cont"]), xs, h0=h0, c0=c0)
    (h * _t(a["dh"], False)).sum().add((hT[0] * _t(a["dh_T"], False)).sum()).add(
        (cT[0] * _t(a["dc_T"], False)).sum()).backward()
    r_h, r_hT, r_cT, cache = ref.lstm_forward(a["x"], a["cont"], a["W_xc"], a["b_c"], a["W_hc"], a["h0"], a["c0"],
                                              a["x_static"], a["W_xc_static"], caffe_tanh=caffe_tanh)
    g = ref.lstm_backward(a["dh"], cache, a["dh_T"], a["dc_T"])
    assert list(hT.shape) == [1, case["N"], case["H"]]
    assert_close(h, r_h)
    assert_close(hT[0], r_hT)
    assert_close(cT[0], r_cT)
    assert_close(x.grad, g["x"])
    assert_close(h0.grad[0], g["h0"])
    assert_close(c0.grad[0], g["c0"])
    for name, grad in _grad_of(layer).items():
        assert_close(grad, g[name], msg=name)
    if xs is not None:
        assert_close(xs.grad, g["x_static"])
    # parameters() in Caffe's blob order and shapes
    shapes = [list(p.shape) for p in layer.parameters()]
    H, I = case["H"], case["I"]
    assert shapes == [[4 * H, I], [4 * H]] + ([[4 * H, 2]] if case["static"] else []) + [[4 * H, H]]


@given(bvlc_cases())
def test_bvlc_caffe_exposed_state_gradients_quirk(case):
    """With the quirk nothing reaches h0/c0 and gradients on hT/cT are ignored (ShareData only)."""
    a = case["arrays"]
    layer = _bvlc_layer(a, expose_hidden=True, caffe_exposed_state_gradients=True)
    x, h0, c0 = _t(a["x"]), _t(a["h0"]), _t(a["c0"])
    h, hT, cT = layer(x, torch.tensor(a["cont"]), _t(a["x_static"]), h0=h0, c0=c0)
    assert not hT.requires_grad and not cT.requires_grad
    (h * _t(a["dh"], False)).sum().backward()
    _, _, _, cache = ref.lstm_forward(a["x"], a["cont"], a["W_xc"], a["b_c"], a["W_hc"], a["h0"], a["c0"],
                                      a["x_static"], a["W_xc_static"])
    g = ref.lstm_backward(a["dh"], cache)  # dh_T, dc_T ignored
    assert h0.grad is None and c0.grad is None
    assert_close(x.grad, g["x"])
    for name, grad in _grad_of(layer).items():
        assert_close(grad, g[name], msg=name)


@given(bvlc_cases(), st.integers(2, 3))
def test_bvlc_carried_state_across_calls(case, calls):
    """Without expose_hidden, call k starts from call k-1's (h_T, c_T); the first from zeros."""
    a = case["arrays"]
    layer = _bvlc_layer(a)
    rng = np.random.default_rng(case["seed"] + 1)
    h_prev = c_prev = None
    for k in range(calls):
        x = a["x"] if k == 0 else rng.normal(size=a["x"].shape)
        cont = a["cont"] if k == 0 else _cont(rng, "random", case["T"], case["N"])
        tx = _t(x)
        out = layer(tx, torch.tensor(cont), _t(a["x_static"]))
        (out * _t(a["dh"], False)).sum().backward()
        r_h, h_prev, c_prev, cache = ref.lstm_forward(x, cont, a["W_xc"], a["b_c"], a["W_hc"], h_prev, c_prev,
                                                      a["x_static"], a["W_xc_static"])
        g = ref.lstm_backward(a["dh"], cache)
        assert_close(out, r_h, msg=f"call {k}")
        assert_close(tx.grad, g["x"], msg=f"call {k}")
        assert_close(layer.W_hc.grad, g["W_hc"], msg=f"call {k}")
        layer.zero_grad()
        assert_close(layer.state[0][0], h_prev)
        assert_close(layer.state[1][0], c_prev)
    layer.reset_state()
    assert layer.state is None
    out = layer(_t(a["x"]), torch.tensor(a["cont"]), _t(a["x_static"]))
    r_h, _, _, _ = ref.lstm_forward(a["x"], a["cont"], a["W_xc"], a["b_c"], a["W_hc"], None, None,
                                    a["x_static"], a["W_xc_static"])
    assert_close(out, r_h, msg="after reset_state()")


def test_bvlc_fractional_cont_gradient_differs_from_caffe_unit():
    """lstm_unit_layer.cpp's f*(1-f) with f = cont*sigmoid is not the derivative for 0 < cont < 1."""
    rng = np.random.default_rng(3)
    T, N, I, H = 4, 2, 3, 2
    args = (rng.normal(size=(T, N, I)), np.full((T, N), 0.5), rng.normal(size=(4 * H, I)), rng.normal(size=4 * H),
            rng.normal(size=(4 * H, H)))
    dh = rng.normal(size=(T, N, H))
    true = ref.lstm_backward(dh, ref.lstm_forward(*args)[3])
    caffe = ref.lstm_backward(dh, ref.lstm_forward(*args, caffe_fractional_cont_grad=True)[3])
    assert np.abs(true["W_xc"] - caffe["W_xc"]).max() > 1e-6
    layer = CaffeLSTM.from_blobs([args[2], args[3], args[4]], dtype=torch.float64)
    out = layer(torch.tensor(args[0]), torch.tensor(args[1]))
    (out * torch.tensor(dh)).sum().backward()
    assert_close(layer.W_xc.grad, true["W_xc"])


def test_caffe_tanh_is_within_float32_rounding_of_tanh():
    x = torch.linspace(-8, 8, 2001, dtype=torch.float32)
    caffe_tanh = activation("caffe_tanh")  # what CaffeLSTM(caffe_tanh=True) computes
    assert float((caffe_tanh(x) - torch.tanh(x)).abs().max()) < 3e-7
    assert torch.equal(caffe_tanh(x), 2 * torch.sigmoid(2 * x) - 1)


def test_bvlc_shape_errors_name_the_blob():
    W = np.zeros((8, 3))
    with pytest.raises(CaffeShapeError, match="W_hc"):
        CaffeLSTM.from_blobs([W, np.zeros(8), np.zeros((8, 3))])
    layer = CaffeLSTM.from_blobs([W, np.zeros(8), np.zeros((8, 2))])
    with pytest.raises(CaffeShapeError, match="cont"):
        layer(torch.zeros(4, 2, 3), torch.zeros(4, 3))
    with pytest.raises(CaffeShapeError, match="W_xc expects 3"):
        layer(torch.zeros(4, 2, 5), torch.zeros(4, 2))


# ------------------------------------------------------------------------------------------ junhyukoh


@composite
def fork_cases(draw):
    T = draw(st.integers(1, 6))
    N = draw(st.integers(1, 3))
    I = draw(st.integers(1, 3))
    H = draw(st.integers(1, 4))
    clip_pattern = draw(st.sampled_from(("none",) + RESETS))
    threshold = draw(st.sampled_from([0.0, 0.02, 0.2]))
    defect = draw(st.booleans())
    carried = draw(st.booleans())
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    case = dict(T=T, N=N, I=I, H=H, clip=clip_pattern, threshold=threshold, defect=defect, carried=carried, seed=seed)
    note(f"fork case {case}")
    clip = None if clip_pattern == "none" else _cont(rng, clip_pattern, T, N).reshape(T * N)
    case["arrays"] = dict(data=rng.normal(size=(T * N, I)), clip=clip, W_x=rng.normal(size=(4 * H, I)) * 0.7,
                          W_h=rng.normal(size=(4 * H, H)) * 0.7, b=rng.normal(size=4 * H) * 0.5,
                          h0=rng.normal(size=(1, N, H)) if carried else None,
                          c0=rng.normal(size=(1, N, H)) if carried else None, dh=rng.normal(size=(T * N, H)))
    return case


def _fork_run(case, kernel: str):
    a = case["arrays"]
    layer = JunhyukohLSTM.from_blobs([a["W_x"], a["W_h"], a["b"]], batch_size=case["N"],
                                     clipping_threshold=case["threshold"], dwh_defect=case["defect"],
                                     dtype=torch.float64)
    if a["h0"] is not None:
        layer.set_state((torch.tensor(a["h0"]), torch.tensor(a["c0"])))
    data = _t(a["data"])
    clip = None if a["clip"] is None else torch.tensor(a["clip"]).reshape(-1, 1)
    out = layer(data, clip, kernel=kernel)
    (out * _t(a["dh"], False)).sum().backward()
    return layer, data, out


def check_fork_run_against_reference(case, kernel: str) -> None:
    """The layer on ``kernel``: outputs, final state and every gradient against the fork's oracle."""
    a = case["arrays"]
    layer, data, out = _fork_run(case, kernel)
    r_h, r_hT, r_cT, cache = ref.junhyukoh_forward(a["data"], a["W_x"], a["W_h"], a["b"], case["N"], a["clip"],
                                                   a["h0"], a["c0"])
    g = ref.junhyukoh_backward(a["dh"], cache, case["threshold"], case["defect"])
    assert_close(out, r_h)
    assert_close(layer.state[0][0], r_hT)
    assert_close(layer.state[1][0], r_cT)
    assert_close(data.grad, g["data"])
    for name in ("W_x", "W_h", "b"):
        assert_close(getattr(layer, name).grad, g[name], msg=name)


@given(fork_cases())
def test_fork_layer_matches_reference(case):
    check_fork_run_against_reference(case, "auto")


@pytest.mark.parametrize("kernel", ["loop", "checked"])
@given(case=fork_cases())
def test_fork_layer_on_each_kernel_matches_reference(kernel, case):
    """The step loop, and the checked fused kernel (exact where the clamp does not act, recomputed on the step
    loop where it does: thresholds 0.02 and 0.2 give both), against the fork's oracle, clamped gradients."""
    check_fork_run_against_reference(case, kernel)


def test_fork_dwh_defect_changes_only_dwh_with_a_carried_state():
    rng = np.random.default_rng(5)
    T, H = 5, 3
    a = dict(data=rng.normal(size=(T, 1)), W_x=rng.normal(size=(4 * H, 1)), W_h=rng.normal(size=(4 * H, H)),
             b=rng.normal(size=4 * H))
    clip = np.ones(T)
    clip[0] = 0
    h0, c0 = rng.normal(size=(1, 1, H)), rng.normal(size=(1, 1, H))
    _, _, _, cache = ref.junhyukoh_forward(a["data"], a["W_x"], a["W_h"], a["b"], 1, clip, h0, c0)
    dh = rng.normal(size=(T, H))
    with_defect = ref.junhyukoh_backward(dh, cache, 0.0, True)
    without = ref.junhyukoh_backward(dh, cache, 0.0, False)
    assert np.abs(with_defect["W_h"] - without["W_h"]).max() > 1e-3
    for k in ("W_x", "b", "data"):
        np.testing.assert_array_equal(with_defect[k], without[k])


def test_fork_clip_is_boolean_and_state_carries_only_with_clip():
    rng = np.random.default_rng(7)
    H = 2
    blobs = [rng.normal(size=(4 * H, 1)), rng.normal(size=(4 * H, H)), rng.normal(size=4 * H)]
    layer = JunhyukohLSTM.from_blobs(blobs, dtype=torch.float64)
    data = torch.tensor(rng.normal(size=(4, 1)))
    first = layer(data, torch.tensor([0.0, 1, 1, 1]))
    half = layer(data, torch.tensor([0.5, 0.5, 0.5, 0.5]))  # 0.5 continues, from the carried state
    one = JunhyukohLSTM.from_blobs(blobs, dtype=torch.float64)
    one(data, torch.tensor([0.0, 1, 1, 1]))
    assert_close(half, one(data, torch.ones(4)))
    no_clip = layer(data)  # zero state, cont = (t > 0): the same as a fresh sequence
    assert_close(no_clip, first)


def test_fork_accepts_legacy_4d_blobs_and_checks_shapes():
    H, I = 3, 2
    W_x = np.arange(4 * H * I, dtype=np.float32).reshape(1, 4, H, I)
    layer = JunhyukohLSTM.from_blobs([W_x, np.zeros((1, 4, H, H)), np.zeros((1, 1, 4, H))])
    assert list(layer.W_x.shape) == [4 * H, I]
    np.testing.assert_array_equal(layer.blobs()[0], W_x.reshape(4 * H, I))
    with pytest.raises(CaffeShapeError, match="batch_size"):
        JunhyukohLSTM(I, H, batch_size=2)(torch.zeros(5, I))
    with pytest.raises(CaffeShapeError, match="clip"):
        layer(torch.zeros(4, I), torch.zeros(3))


def test_layers_on_each_device(device):
    """Both layers on the CPU and (where present) CUDA against the oracle, float64."""
    rng = np.random.default_rng(11)
    T, N, I, H = 5, 2, 3, 4
    x, cont = rng.normal(size=(T, N, I)), np.array([[0, 0], [1, 1], [1, 0], [1, 1], [0, 1]], float)
    W, b, U = rng.normal(size=(4 * H, I)), rng.normal(size=4 * H), rng.normal(size=(4 * H, H))
    bvlc = CaffeLSTM.from_blobs([W, b, U], dtype=torch.float64).to(device)
    out = bvlc(torch.tensor(x, device=device), torch.tensor(cont, device=device))
    assert_close(out.cpu(), ref.lstm_forward(x, cont, W, b, U)[0])
    fork = JunhyukohLSTM.from_blobs([W, U, b], batch_size=N, clipping_threshold=0.05, dtype=torch.float64).to(device)
    data = torch.tensor(x.reshape(T * N, I), device=device, requires_grad=True)
    h = fork(data, torch.tensor(cont.reshape(-1), device=device))
    h.sum().backward()
    r_h, _, _, cache = ref.junhyukoh_forward(x.reshape(T * N, I), W, U, b, N, cont.reshape(-1))
    g = ref.junhyukoh_backward(np.ones((T * N, H)), cache, 0.05, True)
    assert_close(h.detach().cpu(), r_h)
    assert_close(fork.W_h.grad.cpu(), g["W_h"])
    assert_close(data.grad.cpu(), g["data"])
