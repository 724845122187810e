"""ports.theano_imdb model and optimizers == the numpy oracle (reference/theano_imdb.py), float64 1e-10."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import assume, event, given, note
from hypothesis import strategies as st
from hypothesis.strategies import composite

from compat.layouts import to_canonical
from compat.lstm import lstm
from ports.theano_imdb import SEED, SGD, Adadelta, LSTMClassifier, RMSprop, init_params
from reference import theano_imdb as R
from reference.theano_lstm import lstm_layer, lstm_layer_backward
from tests.conftest import NO_CUDA_REASON
from tests.host_sync import META, run_without_host_sync
from tests.tolerances import assert_close

PARAM_NAMES = ["Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b"]
MASK_KINDS = ("random", "length1", "unequal", "trailing_padding", "holes")


class Problem(NamedTuple):
    params: dict
    x: np.ndarray
    mask: np.ndarray
    y: np.ndarray
    kind: str


@composite
def problems(draw, max_words=30, max_dim=6, max_n=6, max_len=12) -> Problem:
    """Random parameters and a padded batch; mask kinds cover length-1 sequences, very unequal lengths,
    steps that are padding for every sample, and masks with holes (not right padding)."""
    n_words = draw(st.integers(2, max_words), label="n_words")
    dim = draw(st.integers(1, max_dim), label="dim")
    ydim = draw(st.integers(2, 4), label="ydim")
    n = draw(st.integers(1, max_n), label="n")
    kind = draw(st.sampled_from(MASK_KINDS), label="mask kind")
    seed = draw(st.integers(0, 2 ** 32 - 1), label="seed")
    scale = draw(st.sampled_from([0.1, 0.5, 1.5]), label="scale")
    rs = np.random.RandomState(seed)
    if kind == "length1":
        lengths = [1] * n
    elif kind == "unequal":
        lengths = [max_len] + [1] * (n - 1)
        rs.shuffle(lengths)
    else:
        lengths = list(rs.randint(1, max_len + 1, size=n))
    T = max(lengths) + (rs.randint(1, 4) if kind == "trailing_padding" else 0)
    mask = np.zeros((T, n))
    for j, length in enumerate(lengths):
        mask[:length, j] = 1.0
    if kind == "holes" and T > 1:
        holes = rs.rand(T, n) < 0.3
        holes[0] = False  # every column keeps at least one unmasked step
        mask[holes] = 0.0
    x = (rs.randint(0, n_words, size=(T, n)) * (mask > 0)).astype(np.int64)
    y = rs.randint(0, ydim, size=n)
    params = init_params(n_words, dim, ydim, np.random.RandomState(seed % 1000))
    params = {k: v + scale * rs.randn(*v.shape) for k, v in params.items()}
    note(f"kind={kind} n_words={n_words} dim={dim} ydim={ydim} lengths={lengths} T={T} seed={seed} scale={scale}")
    event(f"mask kind {kind}")
    return Problem(params, x, mask, y, kind)


def _model(params, **kw) -> LSTMClassifier:
    return LSTMClassifier.from_params(params, **kw)


def _grads(model):
    return {n: p.grad.detach().numpy() for n, p in model.named_parameters()}


def test_named_parameters_are_the_tutorials():
    m = LSTMClassifier(n_words=50, dim_proj=7, ydim=3)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert list(shapes) == PARAM_NAMES
    assert shapes == {"Wemb": (50, 7), "lstm_W": (7, 28), "lstm_U": (7, 28), "lstm_b": (28,), "U": (7, 3), "b": (3,)}


def test_fresh_model_has_the_tutorials_initial_weights():
    # lstm.py: numpy.random.seed(SEED); init_params draws rand (Wemb), 8 x randn+svd (lstm_W, lstm_U), randn (U).
    n_words, dim, ydim = 40, 5, 2
    m = LSTMClassifier(n_words=n_words, dim_proj=dim, ydim=ydim)
    rs = np.random.RandomState(SEED)
    wemb = 0.01 * rs.rand(n_words, dim)
    blocks = [np.linalg.svd(rs.randn(dim, dim))[0] for _ in range(8)]
    u = 0.01 * rs.randn(dim, ydim)
    p = m.numpy_params()
    np.testing.assert_array_equal(p["Wemb"], wemb)
    np.testing.assert_array_equal(p["lstm_W"], np.concatenate(blocks[:4], axis=1))
    np.testing.assert_array_equal(p["lstm_U"], np.concatenate(blocks[4:], axis=1))
    np.testing.assert_array_equal(p["U"], u)
    assert not p["lstm_b"].any() and not p["b"].any()
    for k in range(4):
        block = p["lstm_U"][:, k * dim:(k + 1) * dim]
        assert_close(block.T @ block, np.eye(dim))
    # float32 (floatX): Wemb is scaled then cast, U cast then scaled, as in the tutorial.
    p32 = init_params(n_words, dim, ydim, floatX="float32")
    rs = np.random.RandomState(SEED)
    np.testing.assert_array_equal(p32["Wemb"], (0.01 * rs.rand(n_words, dim)).astype("float32"))
    assert all(v.dtype == np.float32 for v in p32.values())


@given(problems(), st.booleans())
def test_predict_proba_matches_reference(prob, use_dropout):
    m = _model(prob.params, use_dropout=use_dropout)
    m.train()  # predict_proba always takes the evaluation path
    got = m.predict_proba(prob.x, prob.mask)
    want = R.predict_proba(prob.params, prob.x, prob.mask, use_dropout=use_dropout)
    assert tuple(got.shape) == (prob.x.shape[1], prob.params["b"].shape[0])
    assert_close(got, want)
    assert m.training


@pytest.mark.parametrize("kernel", ["auto", "loop", "fused", "compiled", "packed"])
@given(problems(), st.sampled_from([0.0, 0.3]), st.booleans())
def test_cost_and_gradients_match_reference_eval(kernel, prob, decay_c, doubled_bias):
    """On the core's choice and on each kernel that runs the model: the step loop's masked scan (the
    tutorial's), and, the batches being right padding the pooling does not read past (the core gets their
    lengths from the host), the fused kernel and the compiled loop dense, the packed kernel packed."""
    from unittest import mock

    import ports.theano_imdb.model as model_module
    from compat import fastloop
    from compat.lstm import lstm as core_lstm

    if kernel == "compiled" and not fastloop.available():
        pytest.skip(f"compat.fastloop is unavailable here: {fastloop.unavailable_reason()}")
    from compat.lstm import right_padded_lengths

    m = _model(prob.params, doubled_bias=doubled_bias)
    m.eval()
    with mock.patch.object(model_module, "lstm", lambda *a, **kw: core_lstm(*a, **kw, kernel=kernel)):
        if kernel in ("fused", "compiled", "packed") and right_padded_lengths(torch.as_tensor(prob.mask)) is None:
            with pytest.raises(ValueError, match="right padding"):  # a mask with holes: the step loop only
                m.cost(prob.x, prob.mask, prob.y, decay_c=decay_c)
            return
        c = m.cost(prob.x, prob.mask, prob.y, decay_c=decay_c)
    c.backward()
    rc, rg = R.gradients(prob.params, prob.x, prob.mask, prob.y, decay_c=decay_c, doubled_bias=doubled_bias)
    assert_close(c, rc)
    got = _grads(m)
    for name in PARAM_NAMES:
        assert_close(got[name], rg[name], msg=name)


@given(problems(), st.integers(0, 2 ** 31 - 1))
def test_cost_and_gradients_match_reference_train_dropout(prob, noise_seed):
    m = _model(prob.params)
    m.train()
    dim = prob.params["Wemb"].shape[1]
    noise = (np.random.RandomState(noise_seed).rand(prob.x.shape[1], dim) < 0.5).astype(np.float64)
    c = m.cost(prob.x, prob.mask, prob.y, noise=torch.as_tensor(noise))
    c.backward()
    rc, rg = R.gradients(prob.params, prob.x, prob.mask, prob.y, noise=noise)
    assert_close(c, rc)
    got = _grads(m)
    for name in PARAM_NAMES:
        assert_close(got[name], rg[name], msg=name)


def test_training_dropout_is_an_unscaled_binomial_mask():
    rs = np.random.RandomState(0)
    params = init_params(20, 6, 2, rs)
    x = rs.randint(0, 20, size=(5, 4))
    mask = np.ones((5, 4))
    g = torch.Generator().manual_seed(7)
    m = LSTMClassifier.from_params(params)
    m.generator = g
    m.train()
    got = m(x, mask)
    noise = torch.bernoulli(torch.full((4, 6), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(7))
    assert set(noise.flatten().tolist()) <= {0.0, 1.0}
    assert_close(got, R.predict_proba(params, x, mask, noise=noise.numpy()))
    # The evaluation path multiplies by 0.5 (not by 1: the tutorial never rescales at training time).
    m.eval()
    assert_close(m(x, mask), R.predict_proba(params, x, mask, use_dropout=True))
    assert not torch.allclose(m(x, mask), torch.as_tensor(R.predict_proba(params, x, mask, use_dropout=False)))


@pytest.mark.parametrize("opt_name", ["adadelta", "rmsprop", "sgd"])
@given(prob=problems(max_words=12, max_dim=4, max_n=4, max_len=8), steps=st.integers(1, 4))
def test_optimizer_steps_match_reference(opt_name, prob, steps):
    m = _model(prob.params)
    m.eval()
    opt = {"adadelta": Adadelta, "rmsprop": RMSprop, "sgd": lambda p: SGD(p, lr=0.3)}[opt_name](m.parameters())
    ref_params, state = {k: v.copy() for k, v in prob.params.items()}, None
    for step in range(steps):
        opt.zero_grad()
        c = m.cost(prob.x, prob.mask, prob.y)
        c.backward()
        opt.step()
        rc, rg = R.gradients(ref_params, prob.x, prob.mask, prob.y)
        assert_close(c, rc, msg=f"cost before step {step}")
        if opt_name == "adadelta":
            ref_params, state = R.adadelta_step(ref_params, rg, state)
        elif opt_name == "rmsprop":
            ref_params, state = R.rmsprop_step(ref_params, rg, state)
        else:
            ref_params = R.sgd_step(ref_params, rg, 0.3)
        got = m.numpy_params()
        for name in PARAM_NAMES:
            assert_close(got[name], ref_params[name], msg=f"{name} after step {step}")


def test_adadelta_and_rmsprop_ignore_the_learning_rate():
    rs = np.random.RandomState(3)
    params = init_params(10, 3, 2, rs)
    x, mask, y = rs.randint(0, 10, size=(4, 3)), np.ones((4, 3)), np.array([0, 1, 1])
    for cls in (Adadelta, RMSprop):
        finals = []
        for lr in (0.0, 123.0):
            m = _model(params)
            m.eval()
            opt = cls(m.parameters(), lr=lr)
            for _ in range(2):
                opt.zero_grad()
                m.cost(x, mask, y).backward()
                opt.step()
            finals.append(m.numpy_params())
        for name in PARAM_NAMES:
            np.testing.assert_array_equal(finals[0][name], finals[1][name])


@given(problems(max_dim=5, max_len=8), st.booleans())
def test_core_with_theano_layout_matches_reference_lstm_layer(prob, with_state):
    """The port's LSTM path (to_canonical("theano") + compat.lstm with mask) == the oracle's lstm_layer."""
    p = prob.params
    dim = p["Wemb"].shape[1]
    rs = np.random.RandomState(int(prob.x.sum()) % 1000)
    emb = rs.randn(prob.x.shape[0], prob.x.shape[1], dim)
    h0 = rs.randn(prob.x.shape[1], dim) if with_state else None
    c0 = rs.randn(prob.x.shape[1], dim) if with_state else None
    want_h, want_c = lstm_layer(emb, prob.mask, p["lstm_W"], p["lstm_U"], p["lstm_b"], h0, c0)
    w = to_canonical("theano", {"W": torch.as_tensor(p["lstm_W"]), "U": torch.as_tensor(p["lstm_U"]),
                                "b": torch.as_tensor(p["lstm_b"])})
    hx = None if not with_state else (torch.as_tensor(h0)[None], torch.as_tensor(c0)[None])
    out, (h_n, c_n) = lstm(torch.as_tensor(emb), [w], hx, mask=torch.as_tensor(prob.mask))
    assert_close(out, want_h)
    assert_close(h_n[0], want_h[-1])
    assert_close(c_n[0], want_c[-1])


@given(problems(max_words=8, max_dim=3, max_n=3, max_len=5))
def test_reference_lstm_backward_matches_finite_differences(prob):
    """The oracle's hand-derived backward against central differences (a check of the oracle itself)."""
    p = prob.params
    rs = np.random.RandomState(1)
    T, n = prob.x.shape
    dim = p["Wemb"].shape[1]
    emb, h0, c0 = rs.randn(T, n, dim), rs.randn(n, dim), rs.randn(n, dim)
    dh, dc = rs.randn(T, n, dim), rs.randn(T, n, dim)

    def loss(W, U, b, e, h, c):
        hs, cs = lstm_layer(e, prob.mask, W, U, b, h, c)
        return (hs * dh).sum() + (cs * dc).sum()

    args = [p["lstm_W"], p["lstm_U"], p["lstm_b"], emb, h0, c0]
    g = lstm_layer_backward(dh, emb, prob.mask, p["lstm_W"], p["lstm_U"], p["lstm_b"], h0, c0, dc=dc)
    keys = ["W", "U", "b", "state_below", "h0", "c0"]
    eps = 1e-6
    for k, arg in zip(keys, args):
        idx = tuple(rs.randint(0, s) for s in arg.shape)
        plus = [a.copy() for a in args]
        minus = [a.copy() for a in args]
        plus[keys.index(k)][idx] += eps
        minus[keys.index(k)][idx] -= eps
        fd = (loss(*plus) - loss(*minus)) / (2 * eps)
        assert abs(fd - g[k][idx]) <= 1e-6 * max(1.0, abs(fd)), (k, idx, fd, g[k][idx])


def test_reference_model_gradients_match_finite_differences():
    rs = np.random.RandomState(5)
    params = {k: v + 0.5 * rs.randn(*v.shape) for k, v in init_params(9, 3, 3, rs).items()}
    x = rs.randint(0, 9, size=(6, 4))
    mask = np.ones((6, 4))
    mask[2:, 1] = 0
    mask[4:, 3] = 0
    y = np.array([0, 2, 1, 2])
    noise = (rs.rand(4, 3) < 0.5).astype(float)
    for kw in (dict(decay_c=0.1), dict(noise=noise), dict(doubled_bias=True)):
        _, g = R.gradients(params, x, mask, y, **kw)
        for name in PARAM_NAMES:
            idx = tuple(rs.randint(0, s) for s in params[name].shape)
            if name == "Wemb":
                idx = (int(x[0, 0]), idx[1])
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][idx] += 1e-6
            minus[name][idx] -= 1e-6
            fd = (R.cost(plus, x, mask, y, **kw) - R.cost(minus, x, mask, y, **kw)) / 2e-6
            assert abs(fd - g[name][idx]) <= 1e-6 * max(1.0, abs(fd)), (kw, name, idx, fd, g[name][idx])


def test_float32_model_matches_reference_at_float32_tolerance():
    rs = np.random.RandomState(11)
    params = init_params(30, 8, 2, rs, floatX="float32")
    x = rs.randint(0, 30, size=(10, 5))
    mask = np.ones((10, 5), dtype=np.float32)
    mask[3:, 0] = 0
    m = LSTMClassifier.from_params(params)
    assert m.Wemb.dtype == torch.float32
    assert_close(m.predict_proba(x, mask), R.predict_proba(params, x, mask))


def test_bad_inputs_get_clear_errors():
    m = LSTMClassifier(n_words=10, dim_proj=3, ydim=2)
    with pytest.raises(ValueError, match="word id 10 in x is outside the vocabulary"):
        m.predict_proba(np.full((2, 2), 10), np.ones((2, 2)))
    with pytest.raises(ValueError, match="mask"):
        m.predict_proba(np.zeros((2, 2), dtype=int), np.ones((3, 2)))
    with pytest.raises(ValueError, match="y has shape"):
        m.cost(np.zeros((2, 2), dtype=int), np.ones((2, 2)), [0, 1, 1])
    bad = m.numpy_params()
    bad["lstm_U"] = bad["lstm_U"][:, :-1]
    with pytest.raises(ValueError, match="lstm_U"):
        LSTMClassifier.from_params(bad)
    with pytest.raises(KeyError, match="Wemb"):
        LSTMClassifier.from_params({k: v for k, v in bad.items() if k != "Wemb"})


def test_cuda_matches_cpu(device):
    rs = np.random.RandomState(2)
    params = init_params(20, 4, 2, rs)
    x = rs.randint(0, 20, size=(6, 3))
    mask = np.ones((6, 3))
    mask[2:, 1] = 0
    m = LSTMClassifier.from_params(params, device=device)
    assert_close(m.predict_proba(x, mask).cpu(), R.predict_proba(params, x, mask))


def test_torch_adadelta_with_the_tutorials_constants_is_the_same_update():
    """docs/migration/theano.md: torch.optim.Adadelta(lr=1, rho=0.95, eps=1e-6) equals the tutorial's adadelta."""
    rs = np.random.RandomState(8)
    params = init_params(15, 3, 2, rs)
    x, mask, y = rs.randint(0, 15, size=(5, 4)), np.ones((5, 4)), np.array([0, 1, 1, 0])
    ours, theirs = _model(params), _model(params)
    for m in (ours, theirs):
        m.eval()
    opts = [Adadelta(ours.parameters()), torch.optim.Adadelta(theirs.parameters(), lr=1.0, rho=0.95, eps=1e-6)]
    for _ in range(3):
        for m, opt in zip((ours, theirs), opts):
            opt.zero_grad()
            m.cost(x, mask, y).backward()
            opt.step()
    for name, p in ours.numpy_params().items():
        assert_close(p, theirs.numpy_params()[name], msg=name)


# --------------------------------------------------------------------------- a training step without host reads
def _host_batch(n_words=40, lengths=(3, 9, 1, 6), T=None, seed=0):
    """A batch as the tutorial's loop builds it: prepare_data's numpy x, right-padded mask and labels."""
    from ports.theano_imdb import prepare_data

    rs = np.random.RandomState(seed)
    seqs = [list(rs.randint(1, n_words, size=n)) for n in lengths]
    x, mask, y = prepare_data(seqs, list(rs.randint(0, 2, size=len(seqs))))
    if T is not None:  # steps that are padding for every review
        x = np.concatenate([x, np.zeros((T - x.shape[0], x.shape[1]), dtype=x.dtype)])
        mask = np.concatenate([mask, np.zeros((T - mask.shape[0], mask.shape[1]))])
    return x, mask, np.array(y)


def _spy_on_the_core(monkeypatch):
    """Every call the model makes into the core: its keywords, and the kernel the selection picks for it."""
    import ports.theano_imdb.model as model_module
    from compat.lstm import which_kernel

    calls = []

    def spy(*args, **kw):
        calls.append(dict(kw, kernel_chosen=which_kernel(*args, **kw).name))
        return lstm(*args, **kw)

    monkeypatch.setattr(model_module, "lstm", spy)
    return calls


@pytest.mark.parametrize("opt_name", ["adadelta", "rmsprop", "sgd"])
@pytest.mark.parametrize("use_dropout", [True, False])
def test_training_step_reads_no_device_value(monkeypatch, opt_name, use_dropout):
    """The tutorial's update (forward, cost, backward, the optimizer's step) with the model on the meta device
    (tests/host_sync.py): no value of the device read on the host, no blocking copy to it. The batch is the
    loop's numpy batch; the core gets the reviews' lengths on the host and runs the fused kernel dense."""
    from ports.theano_imdb.optimizers import make_optimizer

    calls = _spy_on_the_core(monkeypatch)
    m = LSTMClassifier(n_words=40, dim_proj=6, ydim=2, use_dropout=use_dropout).to(META)
    m.train()
    opt = make_optimizer(opt_name, m.parameters(), 0.1)
    x, mask, y = _host_batch()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = m.cost(x, mask, y, decay_c=0.1)
        loss.backward()
        opt.step()
        return loss

    for _ in range(2):  # the optimizer's state is made in the first step
        loss = run_without_host_sync(step, "the IMDB training step", copies="non_blocking")
    assert loss.device == META and loss.shape == ()
    assert all(p.grad is not None and p.grad.device == META for p in m.parameters())
    assert len(calls) == 2
    for kw in calls:
        assert "mask" not in kw and kw["past_end"] == "unread" and kw["kernel_chosen"] == "fused"
        assert kw["lengths"].device.type == "cpu" and kw["lengths"].tolist() == [3, 9, 1, 6]


def test_a_batch_given_on_the_device_is_read_and_the_check_sees_it():
    """The check is not blind: a batch handed over on the device is checked there (its word ids read), and
    a mask on the device is read by the core to find its right padding."""
    m = LSTMClassifier(n_words=40, dim_proj=6, ydim=2).to(META)
    x, mask, y = _host_batch()
    x_on_device, mask_on_device = torch.as_tensor(x).to(META), torch.as_tensor(mask).to(META)
    with pytest.raises(AssertionError, match="reads a device tensor's value"):
        run_without_host_sync(lambda: m.cost(x_on_device, mask, y))
    y_on_device = torch.as_tensor(y).to(META)  # labels on the device are range-checked there too
    with pytest.raises(AssertionError, match="reads a device tensor's value"):
        run_without_host_sync(lambda: m.cost(x, mask, y_on_device), copies="non_blocking")
    emb = torch.zeros(x.shape[0], x.shape[1], 6, device=META, dtype=torch.float64)
    ws = [m.lstm_W.t(), m.lstm_U.t(), m.lstm_b]
    with pytest.raises(AssertionError, match="reads a device tensor's value"):
        run_without_host_sync(lambda: lstm(emb, [ws], mask=mask_on_device, past_end="unread", cell=m.cell))
    out, _ = run_without_host_sync(lambda: lstm(emb, [ws], lengths=torch.tensor([3, 9, 1, 6]), past_end="unread",
                                                cell=m.cell), copies="non_blocking")
    assert out.device == META and out.shape == (9, 4, 6)


def test_host_batches_are_checked_on_the_host():
    m = LSTMClassifier(n_words=10, dim_proj=3, ydim=2).to(META)
    x, mask, y = _host_batch(n_words=10)
    bad = x.copy()
    bad[0, 0] = 10
    with pytest.raises(ValueError,
                       match=r"word id 10 in x is outside the vocabulary \[0, 10\) \(the embedding has n_words rows"):
        run_without_host_sync(lambda: m.cost(bad, mask, y), copies="non_blocking")
    with pytest.raises(ValueError, match=r"labels in \[0, 2\]; the classifier has 2 classes"):
        run_without_host_sync(lambda: m.cost(x, mask, np.array([0, 1, 2, 0])), copies="non_blocking")
    with pytest.raises(ValueError, match="integer class labels"):
        m.cost(x, mask, np.array([0.0, 1.0, 1.0, 0.0]))


KERNELS_WITH_LENGTHS = ["fused", "packed", "compiled", "loop"]


@pytest.mark.parametrize("kernel", KERNELS_WITH_LENGTHS)
@given(prob=problems(max_dim=5, max_len=8), seed=st.integers(0, 2 ** 16))
def test_core_lengths_unread_equals_the_masked_scan(kernel, prob, seed):
    """The port's call into the core (the host lengths, past_end="unread", the tutorial's layout and gate
    order) == the tutorial's masked scan (reference/theano_lstm.py) over each review: outputs and every
    gradient of a loss that reads nothing past the ends, on every kernel that runs lengths."""
    from compat import fastloop
    from compat.recurrent.call import right_padded_lengths

    if kernel == "compiled" and not fastloop.available():
        pytest.skip(f"compat.fastloop is unavailable here: {fastloop.unavailable_reason()}")
    lengths = right_padded_lengths(torch.as_tensor(prob.mask))
    assume(lengths is not None)  # a mask with holes has no lengths: the mask's own path
    p = prob.params
    rs = np.random.RandomState(seed)
    T, n = prob.mask.shape
    dim = p["Wemb"].shape[1]
    emb = rs.randn(T, n, dim)
    dh = rs.randn(T, n, dim) * prob.mask[:, :, None]  # a loss that reads nothing past the ends
    want_h, _ = lstm_layer(emb, prob.mask, p["lstm_W"], p["lstm_U"], p["lstm_b"])
    want = lstm_layer_backward(dh, emb, prob.mask, p["lstm_W"], p["lstm_U"], p["lstm_b"])
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in
              (("W", p["lstm_W"]), ("U", p["lstm_U"]), ("b", p["lstm_b"]), ("state_below", emb))}
    from compat.lstm import LayerWeights
    out, final = lstm(leaves["state_below"], [LayerWeights(leaves["W"].t(), leaves["U"].t(), leaves["b"])],
                      lengths=lengths, past_end="unread", gate_order="ifog", kernel=kernel)
    assert final is None
    (out * torch.as_tensor(dh)).sum().backward()
    live = torch.as_tensor(prob.mask)[:, :, None]
    assert_close(out.detach() * live, want_h * prob.mask[:, :, None])
    for k, leaf in leaves.items():
        assert_close(leaf.grad, want[k], msg=k)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA_REASON)
@pytest.mark.parametrize("opt_name", ["adadelta", "rmsprop", "sgd"])
def test_cuda_training_step_does_not_synchronise(opt_name):
    """On CUDA, torch's synchronisation check (``set_sync_debug_mode("error")``: any wait for the device,
    blocking copies included) stays silent through the tutorial's update; its numbers are the CPU's."""
    from ports.theano_imdb.optimizers import make_optimizer

    x, mask, y = _host_batch(T=12)
    params = init_params(40, 6, 2, np.random.RandomState(4))
    models = {dev: LSTMClassifier.from_params(params, device=dev) for dev in ("cpu", "cuda")}
    noise = (np.random.RandomState(5).rand(4, 6) < 0.5).astype(np.float64)
    for dev, m in models.items():
        m.train()
        opt = make_optimizer(opt_name, m.parameters(), 0.1)
        noise_here = torch.as_tensor(noise).to(dev)
        for _ in range(2):
            previous = torch.cuda.get_sync_debug_mode()
            if dev == "cuda":
                torch.cuda.synchronize()
                torch.cuda.set_sync_debug_mode("error")
            try:
                opt.zero_grad(set_to_none=True)
                loss = m.cost(x, mask, y, decay_c=0.1, noise=noise_here)
                loss.backward()
                opt.step()
            finally:
                torch.cuda.set_sync_debug_mode(previous)
    for name, value in models["cuda"].numpy_params().items():
        assert_close(value, models["cpu"].numpy_params()[name], msg=name, loosen=10,
                     reason="cuDNN and the CPU kernel sum in different orders (TF32 off)")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA_REASON)
@pytest.mark.parametrize("kernel", ["fused", "packed", "loop"])
@given(prob=problems(max_dim=5, max_len=8), seed=st.integers(0, 2 ** 16))
def test_cuda_core_lengths_unread_equals_the_masked_scan_without_synchronising(kernel, prob, seed):
    """On CUDA, the core's run with host lengths and past_end="unread" == the masked scan oracle over each
    review; the dense kernel (the port's) neither reads the device nor waits for it."""
    from compat.lstm import LayerWeights
    from compat.recurrent.call import right_padded_lengths

    lengths = right_padded_lengths(torch.as_tensor(prob.mask))
    assume(lengths is not None)  # a mask with holes has no lengths: the mask's own path
    p = prob.params
    emb = np.random.RandomState(seed).randn(*prob.mask.shape, p["Wemb"].shape[1])
    want_h, _ = lstm_layer(emb, prob.mask, p["lstm_W"], p["lstm_U"], p["lstm_b"])
    ws = [LayerWeights(*(torch.as_tensor(v).cuda() for v in (p["lstm_W"].T, p["lstm_U"].T, p["lstm_b"])))]
    x = torch.as_tensor(emb).cuda()
    torch.cuda.synchronize()
    if kernel == "fused":
        torch.cuda.set_sync_debug_mode("error")
    try:
        out, _ = lstm(x, ws, lengths=lengths, past_end="unread", gate_order="ifog", kernel=kernel)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert_close(out.cpu() * torch.as_tensor(prob.mask)[:, :, None], want_h * prob.mask[:, :, None], loosen=10,
                 reason="cuDNN and the CPU kernel sum in different orders (TF32 off)")
