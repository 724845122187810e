"""compat.fastloop (the compiled step loop) against the core's step loop and the Caffe oracle.

The compiled loop must give the numbers of ``compat.lstm.lstm(..., kernel="loop")`` with the same
semantics: outputs, final state, and the gradients of the input term, weight_hh, h0 and c0, for any
gate order, cont pattern (0/1 and fractional), gradient clamp and the dW_h defect, in float32 and
float64; and where no compiler is found, the selection runs another kernel after one warning.
"""
from __future__ import annotations

import os
import warnings

import pytest
import torch
from hypothesis import given, note, strategies as st

from compat import fastloop
from compat.lstm import LayerWeights, lstm
from ports.caffe_sequence import JunhyukohLSTM
from tests.test_caffe_layers import check_fork_run_against_reference, fork_cases
from tests.tolerances import assert_close


@pytest.fixture(autouse=True)
def compiled_loop():
    """The compiled loop must build wherever a C compiler exists (CI has gcc): fail under CI=true."""
    if not fastloop.available():
        message = f"compat.fastloop is unavailable: {fastloop.unavailable_reason()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _permute(t: torch.Tensor, order: str) -> torch.Tensor:
    """Canonical (i, f, g, o) gate blocks along dim 0 (or the last dim) -> blocks in ``order``."""
    blocks = t.chunk(4, dim=-1 if t.dim() == 3 else 0)
    pick = [blocks["ifgo".index(g)] for g in order]
    return torch.cat(pick, dim=-1 if t.dim() == 3 else 0)


@given(T=st.integers(1, 9), B=st.integers(1, 3), H=st.integers(1, 9),
       order=st.sampled_from(["ifgo", "ifog", "iofg", "gifo"]), cont_kind=st.sampled_from(["none", "binary", "fractional"]),
       clip=st.sampled_from([None, 0.05, 0.5]), defect=st.booleans(), dtype=st.sampled_from([torch.float64, torch.float32]),
       seed=st.integers(0, 2 ** 31 - 1))
def test_compiled_loop_equals_the_core_step_loop(T, B, H, order, cont_kind, clip, defect, dtype, seed):
    note(f"T={T} B={B} H={H} order={order} cont={cont_kind} clip={clip} defect={defect} {dtype}")
    check_against_the_step_loop(T, B, H, order, cont_kind, clip, defect, dtype, seed)


def check_against_the_step_loop(T, B, H, order, cont_kind, clip, defect, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    xp = torch.randn(T, B, 4 * H, generator=g, dtype=torch.float64).to(dtype)
    w = (torch.randn(4 * H, H, generator=g, dtype=torch.float64) * 0.8).to(dtype)
    h0 = torch.randn(B, H, generator=g, dtype=torch.float64).to(dtype)
    c0 = torch.randn(B, H, generator=g, dtype=torch.float64).to(dtype)
    if cont_kind == "none":
        cont = None
    elif cont_kind == "binary":
        cont = (torch.rand(T, B, generator=g) > 0.3).to(dtype)
    else:
        cont = torch.tensor([0.0, 0.5, 1.0, 0.25])[torch.randint(0, 4, (T, B), generator=g)].to(dtype)
    dout = torch.randn(T, B, H, generator=g, dtype=torch.float64).to(dtype)
    dh, dc = torch.randn(2, B, H, generator=g, dtype=torch.float64).to(dtype)

    leaves = [t.clone().requires_grad_() for t in (xp, w, h0, c0)]
    out, hT, cT = fastloop.lstm_layer(_permute(leaves[0], order), _permute(leaves[1], order), leaves[2], leaves[3],
                                      cont, gate_order=order, grad_clip=clip, weight_grad_ignores_cont=defect)
    ((out * dout).sum() + (hT * dh).sum() + (cT * dc).sum()).backward()

    ref_leaves = [t.clone().requires_grad_() for t in (xp, w, h0, c0)]
    eye = torch.eye(4 * H, dtype=dtype)
    r_out, (r_h, r_c) = lstm(ref_leaves[0], [LayerWeights(eye, ref_leaves[1])], (ref_leaves[2][None], ref_leaves[3][None]),
                             cont=cont, preact_grad_clip=clip, recurrent_weight_grad_ignores_cont=defect, kernel="loop")
    ((r_out * dout).sum() + (r_h[0] * dh).sum() + (r_c[0] * dc).sum()).backward()

    assert_close(out, r_out, msg="output")
    assert_close(hT, r_h[0], msg="h_T")
    assert_close(cT, r_c[0], msg="c_T")
    for name, a, b in zip(("input term", "weight_hh", "h0", "c0"), leaves, ref_leaves):
        assert_close(a.grad, b.grad, loosen=10 if dtype == torch.float32 else None,
                     reason="float32 gradients summed over steps in another order", msg=name)


@given(T=st.integers(1, 7), B=st.integers(1, 3), I=st.integers(1, 9), H=st.integers(1, 9),
       order=st.sampled_from(["ifgo", "ifog", "igfo"]), bias=st.booleans(), cont_kind=st.sampled_from(["none", "binary"]),
       clip=st.sampled_from([None, 0.05]), defect=st.booleans(), dtype=st.sampled_from([torch.float64, torch.float32]),
       seed=st.integers(0, 2 ** 31 - 1))
def test_compiled_loop_from_the_input_equals_the_core_step_loop(T, B, I, H, order, bias, cont_kind, clip, defect,
                                                                 dtype, seed):
    """lstm_layer_from_input (the input term x W_ih^T + b computed in the loop too) against the core's step
    loop: outputs, final state, and the gradients of x, W_ih, the bias, W_hh, h0 and c0."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape, s=1.0: (torch.randn(*shape, generator=g, dtype=torch.float64) * s).to(dtype)  # noqa: E731
    x, w_ih, b, w_hh = r(T, B, I), r(4 * H, I, s=0.7), r(4 * H, s=0.5), r(4 * H, H, s=0.7)
    h0, c0, dout, dh, dc = r(B, H), r(B, H), r(T, B, H), r(B, H), r(B, H)
    cont = None if cont_kind == "none" else (torch.rand(T, B, generator=g) > 0.3).to(dtype)
    leaves = [t.clone().requires_grad_() for t in (x, w_ih, b, w_hh, h0, c0)]
    out, hT, cT = fastloop.lstm_layer_from_input(leaves[0], leaves[1], leaves[2] if bias else None, leaves[3],
                                                 leaves[4], leaves[5], cont, gate_order=order, grad_clip=clip,
                                                 weight_grad_ignores_cont=defect)
    ((out * dout).sum() + (hT * dh).sum() + (cT * dc).sum()).backward()
    ref = [t.clone().requires_grad_() for t in (x, w_ih, b, w_hh, h0, c0)]
    r_out, (r_h, r_c) = lstm(ref[0], [LayerWeights(ref[1], ref[3], ref[2] if bias else None)], (ref[4][None], ref[5][None]),
                             cont=cont, gate_order=order, preact_grad_clip=clip,
                             recurrent_weight_grad_ignores_cont=defect, kernel="loop")
    ((r_out * dout).sum() + (r_h[0] * dh).sum() + (r_c[0] * dc).sum()).backward()
    assert_close(out, r_out, msg="output")
    assert_close(hT, r_h[0], msg="h_T")
    assert_close(cT, r_c[0], msg="c_T")
    for name, a, e in zip(("x", "W_ih", "bias", "W_hh", "h0", "c0"), leaves, ref):
        if name == "bias" and not bias:
            assert a.grad is None
            continue
        assert_close(a.grad, e.grad, loosen=10 if dtype == torch.float32 else None,
                     reason="float32 gradients summed over steps in another order", msg=name)


@pytest.mark.parametrize("H", [31, 32, 50])
def test_compiled_loop_wide_hidden_sizes(H):
    """The backward's two recurrent-product loop orders (H below 32 and from 32) on either side of the switch."""
    check_against_the_step_loop(T=7, B=2, H=H, order="ifog", cont_kind="binary", clip=0.05, defect=True,
                                dtype=torch.float64, seed=H)


def test_no_grad_forward_equals_the_saving_forward():
    g = torch.Generator().manual_seed(0)
    xp, w = torch.randn(12, 2, 20, generator=g), torch.randn(20, 5, generator=g)
    h0, c0 = torch.randn(2, 5, generator=g), torch.randn(2, 5, generator=g)
    cont = (torch.rand(12, 2, generator=g) > 0.3).float()
    with torch.no_grad():
        a = fastloop.lstm_layer(xp, w, h0, c0, cont)
    b = fastloop.lstm_layer(xp.requires_grad_(), w, h0, c0, cont)
    for x, y in zip(a, b):
        assert torch.equal(x, y.detach())


@given(fork_cases())
def test_fork_layer_on_the_compiled_kernel_matches_reference(case):
    """JunhyukohLSTM on the compiled loop against the fork's oracle, the clamp exact at every step."""
    check_fork_run_against_reference(case, "compiled")


def test_bad_shapes_are_named():
    xp, w, s = torch.zeros(3, 1, 8), torch.zeros(8, 2), torch.zeros(1, 2)
    with pytest.raises(ValueError, match="weight_hh has shape"):
        fastloop.lstm_layer(xp, torch.zeros(8, 3), s, s)
    with pytest.raises(ValueError, match="cont has shape"):
        fastloop.lstm_layer(xp, w, s, s, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="gate_order"):
        fastloop.lstm_layer(xp, w, s, s, gate_order="ifgx")
    with pytest.raises(ValueError, match="dtype"):
        fastloop.lstm_layer(xp, w.double(), s, s)


def test_missing_compiler_falls_back_with_one_warning(monkeypatch, tmp_path):
    """No compiler: available() is False after one RuntimeWarning, the compiled kernel says why it cannot run,
    and the layer's call runs on the kernel the selection picks next (the checked fused kernel), same numbers."""
    layer = JunhyukohLSTM(1, 4, clipping_threshold=0.1)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    data, clip = torch.zeros(10, 1), torch.ones(10, 1)
    expected = layer(data, clip, kernel="compiled")
    monkeypatch.setattr(fastloop, "_lib", None)
    monkeypatch.setattr(fastloop, "_tried", False)
    monkeypatch.setattr(fastloop, "_compiler", lambda: None)
    monkeypatch.setenv("LEGACY_LSTM_CACHE", str(tmp_path))
    layer.reset_state()
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        assert not fastloop.available()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only once
        assert not fastloop.supports(data)
        with pytest.raises(ValueError, match="unavailable here: no C compiler"):
            layer(data, clip, kernel="compiled")
        layer.reset_state()
        got = layer(data, clip)
    assert_close(got, expected)


def test_build_is_cached(tmp_path, monkeypatch):
    """A fresh cache builds once; the next load finds the shared object and compiles nothing."""
    monkeypatch.setenv("LEGACY_LSTM_CACHE", str(tmp_path))
    monkeypatch.setattr(fastloop, "_lib", None)
    monkeypatch.setattr(fastloop, "_tried", False)
    assert fastloop.available()
    built = sorted(p.name for p in tmp_path.iterdir())
    assert built and all(n.startswith("fastloop-") and n.endswith(".so") for n in built)
    calls = []
    monkeypatch.setattr(fastloop, "_compile", lambda *a: calls.append(a))
    monkeypatch.setattr(fastloop, "_lib", None)
    monkeypatch.setattr(fastloop, "_tried", False)
    assert fastloop.available() and calls == []


@pytest.mark.parametrize("forget_bias, shared, dtype", [(0.0, False, torch.float64), (1.0, False, torch.float64),
                                                        (1.0, True, torch.float32)])
def test_ptb_one_step_evaluation_equals_the_core_loop(forget_bias, shared, dtype):
    """The test pass's single steps (the core's choice: the compiled loop, straight from the TF variables)
    against the core's step loop on the same weights."""
    from unittest import mock

    import ports.tf_ptb.model as model_module
    from compat.recurrent import run as core_run
    from ports.tf_ptb.config import Config
    from ports.tf_ptb.model import PTBModel

    cfg = Config(num_layers=2, num_steps=1, hidden_size=6, batch_size=3, vocab_size=11, forget_bias=forget_bias,
                 shared_cell_weights=shared)
    model = PTBModel(cfg, is_training=False, dtype=dtype)
    model.reset_parameters(torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for cell in model.cells:
            cell.bias.uniform_(-0.5, 0.5, generator=g)
    x = torch.randint(0, 11, (3, 1), generator=g)
    state = tuple((torch.randn(3, 6, generator=g, dtype=torch.float64).to(dtype),
                   torch.randn(3, 6, generator=g, dtype=torch.float64).to(dtype)) for _ in range(2))
    with torch.no_grad():
        logits, final = model(x, state)
        with mock.patch.object(model_module, "run", lambda *a, **kw: core_run(*a, **kw, kernel="loop")):
            r_logits, r_final = model(x, state)
    assert_close(logits, r_logits)
    for pair, r_pair in zip(final, r_final):
        for t, r in zip(pair, r_pair):
            assert_close(t, r)


def test_backward_twice_through_a_retained_graph():
    g = torch.Generator().manual_seed(7)
    xp = torch.randn(5, 1, 12, generator=g, requires_grad=True)
    w = torch.randn(12, 3, generator=g, requires_grad=True)
    s = torch.zeros(1, 3)
    out, _, _ = fastloop.lstm_layer(xp, w, s, s, grad_clip=0.1)
    out.sum().backward(retain_graph=True)
    first = w.grad.clone()
    out.sum().backward()
    assert_close(w.grad, 2 * first)
