"""Keras's ``dropout`` / ``recurrent_dropout`` in training (compat.frameworks.keras.dropout, run by the converted
KerasLSTM / KerasGRU / KerasSimpleRNN): the exact structure with the masks fixed, against tf-keras 2.21 and
Keras 3 (tests/golden/convert/keras_dropout, legacy/record_keras_dropout.py) and against reference/keras_rnn.py;
the statistics with the masks drawn."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from compat.convert import convert, load
from compat.convert.modules import KerasGRU, KerasLSTM, KerasSimpleRNN
from compat.frameworks.keras import dropout as kd
from compat.frameworks.keras.dropout import KerasDropout, KerasDropoutError
from reference import keras_rnn
from tests.convert_cases import GOLDEN_CONVERT
from tests.tolerances import assert_close

FOLDER = GOLDEN_CONVERT / "keras_dropout"
FRAMEWORKS = ("tf_keras", "keras3")
FAMILY = {KerasLSTM: "lstm", KerasGRU: "gru", KerasSimpleRNN: "rnn"}


def recorded(folder: Path) -> dict:
    """A recording of legacy/record_keras_dropout.py: its arrays by name."""
    with np.load(folder / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _arrays(framework):
    return recorded(FOLDER / framework)


@lru_cache(maxsize=None)
def _converted(folder: Path, tmp: Path):
    conversion = convert(folder / "dropout.keras", tmp / f"{folder.name}_{abs(hash(folder))}")
    return load(conversion.files[0]), {s.name: s for s in conversion.specs}


def _masks_for(arrays, name, bidirectional, family):
    """The masks Keras was handed, as the module takes them: per direction (input, recurrent)."""
    G = kd.GATES[family]
    keys = [f"{name}/forward", f"{name}/backward"] if bidirectional else [name]
    out = []
    for key in keys:
        pair = []
        for which in ("input", "recurrent"):
            m = arrays.get(f"masks/{key}/{which}")
            if m is None:
                pair.append(None)
                continue
            if m.ndim == 4:      # tf-keras's fused path: count masks of the sequence's shape; it reads [0]
                m = m[0]
            elif m.shape[0] == 1:  # Keras 3 implementation=2: one mask (the module reads [0] of G)
                m = np.repeat(m, G, axis=0)
            pair.append(torch.from_numpy(m))
        out.append(tuple(pair))
    return out


def _cases():
    for fw in FRAMEWORKS:
        config = json.loads(str(_arrays(fw)["config"]))
        for layer in config["layers"]:
            yield fw, layer


def check_training_layer(folder: Path, layer: str, tmp: Path) -> None:
    """The converted layer in training with Keras's recorded masks against Keras's training-mode numbers, in
    eval against Keras's ``training=False``; the rule it runs is the one Keras's mask requests show."""
    arrays = recorded(folder)
    model, _ = _converted(folder, tmp)
    m = model[layer]
    family = FAMILY[type(m)]
    assert m.keras_dropout is not None
    per_step = any(arrays[k].ndim == 4 for k in arrays if k.startswith(f"masks/{layer}/"))
    assert (m.keras_dropout.rule == "per_step") == per_step, "the rule Keras took: a mask per step or per call"
    x = torch.from_numpy(arrays["x"])
    masks = _masks_for(arrays, layer, m.bidirectional, family)
    m.train()
    with torch.no_grad():
        y, state = m(x, dropout_masks=masks)
    states = [state[0], state[1]] if family == "lstm" else [state]
    if m.bidirectional:
        got_states = torch.stack([states[0][0], states[0][1]])
    else:
        got_states = torch.stack([s[0] for s in states])
    label = f"{folder.name} {layer}"
    assert_close(y.numpy(), arrays[f"{layer}/y"], msg=f"{label} training output")
    assert_close(got_states.numpy(), arrays[f"{layer}/states"], msg=f"{label} training states")
    m.eval()
    with torch.no_grad():
        y_eval, _ = m(x)
    assert_close(y_eval.numpy(), arrays[f"{layer}/y_eval"], msg=f"{label} eval output (Keras's training=False)")
    assert not np.allclose(arrays[f"{layer}/y"], arrays[f"{layer}/y_eval"]), f"{label}: the masks must matter"


def check_oracle_layer(folder: Path, layer: str, tmp: Path) -> None:
    """reference/keras_rnn.py training_layer, on the file's own Keras tensors and the recorded masks, against
    Keras's training-mode numbers."""
    arrays = recorded(folder)
    spec = _converted(folder, tmp)[1][layer]
    sem = spec.semantics
    family = spec.cell
    rule = KerasDropout.of(spec.keras.keras_dropout).rule
    masks = _masks_for(arrays, layer, sem["bidirectional"], family)
    outs, finals = [], []
    for d, tensors in enumerate(spec.source[0]):
        inp, rec = masks[d]
        if inp is not None:
            inp = [inp.numpy()] if rule == "per_step" else list(inp.numpy())
        rec = None if rec is None else list(rec.numpy())
        if rule == "shared":  # the first mask serves every gate
            inp = None if inp is None else [inp[0]] * len(inp)
            rec = None if rec is None else [rec[0]] * len(rec)
        acts = {} if family == "rnn" else {"recurrent_activation": sem.get("recurrent_activation", "sigmoid")}
        y, states = keras_rnn.training_layer(family, arrays["x"], tensors["kernel"], tensors["recurrent_kernel"],
                                             tensors.get("bias"), inp, rec, reset_after=sem.get("reset_after", False),
                                             activation=sem.get("activation", "tanh"),
                                             go_backwards=d == 1 or sem.get("go_backwards", False), **acts)
        outs.append(y[:, ::-1] if d == 1 else y)
        finals.append(states)
    y = np.concatenate(outs, -1)
    assert_close(y, arrays[f"{layer}/y"], msg=f"{folder.name} {layer} oracle output")
    got = np.stack([finals[0][0], finals[1][0]]) if len(finals) == 2 else np.stack(finals[0])
    assert_close(got, arrays[f"{layer}/states"], msg=f"{folder.name} {layer} oracle states")


@pytest.mark.parametrize("framework, layer", [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in _cases()])
def test_training_mode_matches_keras_with_the_masks_fixed(framework, layer, tmp_path_factory):
    check_training_layer(FOLDER / framework, layer, tmp_path_factory.getbasetemp())


@pytest.mark.parametrize("framework, layer", [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in _cases()])
def test_the_numpy_oracle_with_the_masks_matches_keras(framework, layer, tmp_path_factory):
    check_oracle_layer(FOLDER / framework, layer, tmp_path_factory.getbasetemp())


def test_every_structure_is_recorded():
    """Both frameworks, every family, both implementations, tf-keras's fused path, go_backwards, Bidirectional."""
    for fw in FRAMEWORKS:
        layers = set(json.loads(str(_arrays(fw)["config"]))["layers"])
        assert {"lstm_impl1", "lstm_impl2_input", "lstm_impl2_input_hard_sigmoid", "lstm_impl1_recurrent",
                "lstm_backwards", "gru_after_impl1", "gru_before_recurrent", "gru_before_impl2_input",
                "gru_after_input", "simple_rnn", "bidirectional_gru"} <= layers


def test_a_whole_model_drops_out_in_training_only(tmp_path):
    """The converted whole model: eval is Keras's inference; train() makes every layer draw its masks."""
    arrays = _arrays("keras3")
    model = load(convert(FOLDER / "keras3" / "dropout.keras", tmp_path / "m").files[0])
    x = torch.from_numpy(arrays["x"])
    with torch.no_grad():
        a = model.eval()(x)
        torch.manual_seed(0)
        b = model.train()(x)
        torch.manual_seed(1)
        c = model(x)
        again = model.eval()(x)
    assert all(torch.equal(p, q) for p, q in zip(a, again))
    assert not torch.allclose(a[0], b[0]) and not torch.allclose(b[0], c[0])


# ----------------------------------------------------------------------------- the masks drawn
def _module(cls, rule, rate, rec, bidirectional=False, **kw):
    torch.manual_seed(3)
    m = cls(3, 4, bidirectional=bidirectional, keras_dropout=KerasDropout(rate, rec, rule), **kw).double()
    return m.train()


@pytest.mark.parametrize("rule", kd.RULES)
def test_masks_are_inverted_dropout_constant_within_a_call_and_new_each_call(rule):
    spec = KerasDropout(0.3, 0.0 if rule == "per_step" else 0.4, rule)
    like = torch.zeros((), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    (a_in, a_rec), = kd.draw(spec, "lstm", 64, 7, 5, 6, like, generator=g)
    (b_in, _), = kd.draw(spec, "lstm", 64, 7, 5, 6, like, generator=g)
    for m, rate in ((a_in, 0.3), (a_rec, 0.4)):
        if m is None:
            continue
        assert set(torch.unique(m).tolist()) <= {0.0, 1.0 / (1.0 - rate)}
        assert abs(float((m == 0).double().mean()) - rate) < 0.05
    assert not torch.equal(a_in, b_in), "a new call draws new masks"
    if rule == "per_step":
        assert a_in.shape == (64, 7, 5) and not torch.equal(a_in[:, 0], a_in[:, 1])  # a new mask at each step
    else:
        assert a_in.shape == (4, 64, 5) and not torch.equal(a_in[0], a_in[1])  # one per gate, reused every step


def test_forward_draws_with_the_generator_and_replays_the_same_masks():
    m = _module(KerasLSTM, "per_gate", 0.3, 0.4, bidirectional=True)
    x = torch.randn(5, 6, 3, dtype=torch.float64)
    y1, _ = m(x, generator=torch.Generator().manual_seed(7))
    masks = kd.draw(m.keras_dropout, "lstm", 5, 6, 3, 4, x, 2, torch.Generator().manual_seed(7))
    y2, _ = m(x, dropout_masks=masks)
    y3, _ = m(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(y1, y2) and not torch.allclose(y1, y3)


@pytest.mark.parametrize("cls, kw", [(KerasLSTM, {}), (KerasGRU, {"reset_after": False}), (KerasGRU, {}),
                                     (KerasSimpleRNN, {})])
def test_zero_and_one_rates_drop_nothing_and_eval_is_the_plain_layer(cls, kw):
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    plain = _module(cls, "per_gate", 0.0, 0.0, **kw).eval()
    want, _ = plain(x)
    for rate, rec in ((0.0, 0.0), (1.0, 1.0), (1.5, -0.2)):  # clamped to [0, 1]; Keras acts for 0 < rate < 1
        m = _module(cls, "per_gate", rate, rec, **kw)
        assert not m.keras_dropout.active
        got, _ = m(x)
        assert torch.equal(got, want)
    m = _module(cls, "per_gate", 0.5, 0.5, **kw).eval()  # eval: Keras's training=False
    assert torch.equal(m(x)[0], want)
    with pytest.raises(KerasDropoutError, match="tf.nn.dropout"):
        KerasDropout(1.0, 0.0, "per_step")


@settings(max_examples=10, deadline=None)
@given(rate=st.floats(0.05, 0.9), rule=st.sampled_from(["per_gate", "shared", "per_step"]))
def test_mean_over_input_masks_is_the_layer_on_the_expected_input(rate, rule):
    """E[mask] = 1 (inverted dropout); a simple RNN with a linear activation is linear in the dropped-out input, so
    the mean output over many draws converges to the plain layer's output (rate, rule drawn)."""
    m = KerasSimpleRNN(3, 2, nonlinearity=("Affine", 1.0, 0.0), keras_dropout=KerasDropout(rate, 0.0, rule)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.empty_like(p).uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(1)))
    x = torch.randn(1, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    want, _ = m.eval()(x)
    m.train()
    n = 4000
    xs = x.expand(n, 4, 3).contiguous()
    with torch.no_grad():
        got, _ = m(xs, generator=torch.Generator().manual_seed(3))
    mean, sem = got.mean(0), got.std(0) / n ** 0.5
    assert bool(((mean - want[0]).abs() <= 5 * sem + 1e-12).all()), (mean, want)


def test_recurrent_mask_statistics_match_the_structure():
    """A linear cell with U = I and recurrent dropout only: h_1 = e0, h_2 = m * h_1, h_3 = m * h_2. One mask reused
    at every step (Keras) gives h_3 = m^2 e0, whose mean is E[m^2] = 1 / (1 - rate); fresh masks per step would give
    a mean of 1."""
    H, rate = 2, 0.5
    m = KerasSimpleRNN(1, H, nonlinearity=("Affine", 1.0, 0.0), bias=False, keras_dropout=KerasDropout(0.0, rate, "shared"))
    m = m.double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.tensor([[1.0], [0.0]]))
        m.weight_hh_l0.copy_(torch.eye(H))
    x = torch.tensor([[[1.0], [0.0], [0.0]]], dtype=torch.float64)
    n = 20000
    m.train()
    with torch.no_grad():
        y, _ = m(x.expand(n, 3, 1).contiguous(), generator=torch.Generator().manual_seed(0))
    # h1 = e0; h2 = m * e0; h3 = m * m * e0 = m^2 e0 (one mask, reused): E[m^2] = 1 / (1 - rate)
    assert abs(float(y[:, 1, 0].mean()) - 1.0) < 0.05
    assert abs(float(y[:, 2, 0].mean()) - 1.0 / (1.0 - rate)) < 0.08


# ----------------------------------------------------------------------------- every generation's structure
def test_the_structure_follows_the_keras_version_and_settings():
    s = kd.structure
    assert s("keras1", "gru", {"dropout_W": 0.2, "dropout_U": 0.3}).rule == "per_gate"
    assert s("keras1", "lstm", {"dropout_W": 0.2, "consume_less": "gpu"}).rule == "shared"
    assert s("keras1", "gru", {"dropout": 0.2}) is None  # Keras 1 names them dropout_W / dropout_U
    k2 = s("keras2", "gru", {"dropout": 0.2, "recurrent_dropout": 0.3, "implementation": 2})
    assert k2.rule == "shared" and k2.update_uses_dropped_h
    assert not s("keras2", "lstm", {"recurrent_dropout": 0.3, "implementation": 2}).update_uses_dropped_h
    assert s("keras2", "gru", {"dropout": 0.2}).rule == "per_gate"  # Keras 2.0-2.2's default implementation=1
    # tf-keras: recurrent_dropout forces implementation=1; the fused path draws per step
    assert s("tf_keras", "lstm", {"recurrent_dropout": 0.1, "implementation": 2}).rule == "per_gate"
    assert s("tf_keras", "lstm", {"dropout": 0.1, "implementation": 1}).rule == "per_step"
    assert s("tf_keras", "gru", {"dropout": 0.1, "reset_after": False}).rule == "shared"
    assert s("tf_keras", "gru", {"dropout": 0.1, "reset_after": True, "use_bias": False}).rule == "shared"
    assert s("tf_keras", "lstm", {"dropout": 0.1, "unroll": True, "implementation": 1}).rule == "per_gate"
    assert s("tf_keras", "rnn", {"dropout": 0.1}).rule == "shared"
    assert s("keras3", "lstm", {"dropout": 0.1}).rule == "shared"  # implementation=2, one mask
    assert s("keras3", "lstm", {"dropout": 0.1, "recurrent_dropout": 0.1, "implementation": 2}).rule == "per_gate"
    assert s("keras3", "gru", {"dropout": 0.0}) is None and s("tf_keras", "gru", {"dropout": 0.2}, cudnn=True) is None
    with pytest.raises(KerasDropoutError, match="tf.nn.dropout"):
        s("tf_keras", "lstm", {"dropout": 1.0})
    assert not s("keras3", "lstm", {"dropout": 1.0}).active
    assert [kd.generation(*a) for a in ((1, (1, 2), "1.2.2"), (2, (2, 2), "2.2.4"), (2, (2, 2), "2.2.4-tf"),
                                        (2, (2, 21), "2.21.0"), (3, (3, 15), "3.15.1"))] == \
        ["keras1", "keras2", "tf_keras", "tf_keras", "keras3"]


def _per_gate_weights(rng, cls, n_in, h):
    out = []
    for gate in ("zrh" if cls == "GRU" else "h"):
        out += [(f"rnn_W_{gate}" if cls == "GRU" else "rnn_W", rng.uniform(-1, 1, (n_in, h))),
                (f"rnn_U_{gate}" if cls == "GRU" else "rnn_U", rng.uniform(-1, 1, (h, h))),
                (f"rnn_b_{gate}" if cls == "GRU" else "rnn_b", rng.uniform(-1, 1, h))]
    return [(n, a.astype(np.float32)) for n, a in out]


FILES = [
    # (class, config, Keras version, weights, rule, update_uses_dropped_h)
    ("GRU", {"output_dim": 4, "dropout_W": 0.3, "dropout_U": 0.4, "consume_less": "cpu",
             "inner_activation": "hard_sigmoid"}, "1.2.2", "keras1", "per_gate", False),
    ("GRU", {"output_dim": 4, "dropout_W": 0.3, "dropout_U": 0.4, "consume_less": "gpu",
             "inner_activation": "hard_sigmoid"}, "1.2.2", "keras2_fused", "shared", False),
    ("SimpleRNN", {"output_dim": 4, "dropout_W": 0.3, "dropout_U": 0.4}, "1.2.2", "keras1", "shared", False),
    ("GRU", {"units": 4, "dropout": 0.3, "recurrent_dropout": 0.4, "implementation": 2,
             "recurrent_activation": "hard_sigmoid"}, "2.2.4", "keras2_fused", "shared", True),
    ("GRU", {"units": 4, "dropout": 0.3, "recurrent_dropout": 0.4, "implementation": 1}, "2.2.4", "keras2_fused",
     "per_gate", False),
    ("LSTM", {"units": 4, "dropout": 0.3, "recurrent_dropout": 0.4, "implementation": 2}, "2.2.4", "keras2_fused",
     "shared", False),
]


@pytest.mark.parametrize("cls, cfg, version, weights, rule, dropped_h", FILES, ids=lambda v: str(v)[:20])
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1))
def test_keras1_and_keras2_files_drop_out_as_their_sources_say(cls, cfg, version, weights, rule, dropped_h, seed,
                                                                tmp_path_factory):
    """Keras 1 (``get_constants``: B_W, B_U per gate; ``consume_less="gpu"`` reads [0]) and Keras 2.2
    (``GRUCell.call`` / ``LSTMCell.call`` by ``implementation``) files written with h5py: the converted module in
    training, masks drawn, against reference/keras_rnn.py given the same masks as each source reads them."""
    from tests.test_convert_gru_keras import _layer

    tmp = tmp_path_factory.mktemp("k")
    rng = np.random.default_rng(5)
    n_in, h = 3, 4
    G = {"GRU": 3, "LSTM": 4, "SimpleRNN": 1}[cls]
    if weights == "keras1":
        w = _per_gate_weights(rng, cls, n_in, h)
    else:
        w = [("rnn/kernel:0", rng.uniform(-1, 1, (n_in, G * h))), ("rnn/recurrent_kernel:0",
                                                                     rng.uniform(-1, 1, (h, G * h))),
             ("rnn/bias:0", rng.uniform(-1, 1, G * h))]
        w = [(n, a.astype(np.float32)) for n, a in w]
    path = _layer(cls, cfg, w, version, tmp / "k.h5")
    conversion = convert(path, tmp / "o")
    (spec,) = conversion.specs
    m = load(conversion.files[0])["rnn"].double().train()
    assert m.keras_dropout.rule == rule and m.keras_dropout.update_uses_dropped_h == dropped_h
    x = torch.from_numpy(rng.uniform(-1, 1, (2, 5, n_in)))
    masks = kd.draw(m.keras_dropout, FAMILY[type(m)], 2, 5, n_in, h, x, 1, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y, _ = m(x, dropout_masks=masks)
    inp, rec = (None if a is None else list(a.numpy()) for a in masks[0])
    if rule == "shared":
        inp, rec = [inp[0]] * G, [rec[0]] * G
    (tensors,) = spec.source[0]
    sem = spec.semantics
    acts = {} if cls == "SimpleRNN" else {"recurrent_activation": sem.get("recurrent_activation", "sigmoid")}
    want, _ = keras_rnn.training_layer(FAMILY[type(m)], x.numpy(), tensors["kernel"], tensors["recurrent_kernel"],
                                       tensors.get("bias"), inp, rec, reset_after=False,
                                       activation=sem.get("activation", "tanh"), update_uses_dropped_h=dropped_h,
                                       **acts)
    assert_close(y.numpy(), want, dtype=torch.float64, msg=f"{cls} {version} {rule}")


@pytest.mark.parametrize("cls, kw", [(KerasLSTM, {}), (KerasGRU, {"reset_after": False}), (KerasGRU, {}),
                                     (KerasSimpleRNN, {})])
def test_training_with_masks_of_ones_is_the_plain_layer_forward_and_backward(cls, kw):
    """With every mask 1 the step loop is the core's layer, its gradients included (fine-tuning trains through
    it), masked steps and both directions too."""
    m = _module(cls, "per_gate", 0.3, 0.3, bidirectional=True, **kw)
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    G = kd.GATES[FAMILY[cls]]
    ones = [(torch.ones(G, 3, 3, dtype=torch.float64), torch.ones(G, 3, 4, dtype=torch.float64))] * 2
    y, _ = m(x, mask=mask, dropout_masks=ones)
    grads = torch.autograd.grad(y.square().sum(), list(m.parameters()))
    m.eval()
    y0, _ = m(x, mask=mask)
    grads0 = torch.autograd.grad(y0.square().sum(), list(m.parameters()))
    assert_close(y.detach().numpy(), y0.detach().numpy(), dtype=torch.float64)
    for g, g0 in zip(grads, grads0):
        assert_close(g.numpy(), g0.numpy(), dtype=torch.float64)


def test_bad_masks_and_inputs_in_training_are_one_clear_error():
    m = _module(KerasGRU, "per_gate", 0.3, 0.3)
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    with pytest.raises(KerasDropoutError, match=r"input mask has shape \[3, 2, 5\]; expected \[3, 2, 3\]"):
        m(x, dropout_masks=[(torch.ones(3, 2, 5, dtype=torch.float64), torch.ones(3, 2, 4, dtype=torch.float64))])
    with pytest.raises(KerasDropoutError, match="no recurrent mask"):
        m(x, dropout_masks=[(torch.ones(3, 2, 3, dtype=torch.float64), None)])
    with pytest.raises(KerasDropoutError, match="2 directions' masks; the layer has 1"):
        m(x, dropout_masks=[(None, None)] * 2)
    with pytest.raises(ValueError, match="not \\['lengths'\\]"):
        m(x, lengths=torch.tensor([4, 2]))
    for bad in ({"rate": "0.3"}, {"rule": "per_sample"}, {"generation": "keras4"}, {"seed": 1},
                {"update_uses_dropped_h": 1}):
        with pytest.raises(KerasDropoutError):
            KerasDropout.of(bad)


def test_a_tampered_dropout_setting_in_a_converted_file_is_refused_naming_the_field(tmp_path):
    """Resealed settings (tests/test_convert_formats.py _reseal) are still validated, the error naming the field."""
    from compat.errors import InputError
    from tests.test_convert_formats import _reseal

    convert(FOLDER / "keras3" / "dropout.keras", tmp_path / "m")
    manifest = tmp_path / "m.json"
    good = json.loads(manifest.read_text())
    k = next(i for i, e in enumerate(good["content"]["lstms"]) if (e["keras"] or {}).get("keras_dropout"))
    for key, value, message in (("rule", "per_sample", "rule must be one of"), ("rate", "0.3", "must be a number"),
                                ("seed", 3, "unknown dropout settings")):
        content = json.loads(json.dumps(good["content"]))
        content["lstms"][k]["keras"]["keras_dropout"][key] = value
        _reseal(manifest, content)
        with pytest.raises(InputError, match=f"lstms/{k}/keras/keras_dropout: .*{message}"):
            load(tmp_path / "m")
    _reseal(manifest, good["content"])
    assert load(tmp_path / "m")
