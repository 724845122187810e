"""ports.tf_shakespeare: the cookbook recipe's data rules, model, training step and sampler against
reference/tf_seq2seq.py (float64) and hand-checked rules."""
from __future__ import annotations

import string

import numpy as np
import pytest
import torch
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.strategies import composite

from ports.tf_shakespeare import LSTMModel, TF1VariableError, build_vocab, clean_text, make_batches, sample_ids
from ports.tf_shakespeare.data import DataError, load_corpus, targets_of, text_to_ids, vocab_size_of
from ports.tf_shakespeare.train import make_optimizer, train_step
from reference import tf_seq2seq as ref
from tests.tolerances import assert_close

F64 = torch.float64
NAMES = ("W", "b", "embedding_mat", "kernel", "bias")


# --- data rules ---------------------------------------------------------------------------------------

def test_clean_text_recipe_rules():
    raw = "x" * 5 + "From fairest creatures,\r\n  That THEREBY\r\nbeauty's rose--might!\nnever die\\ [x]\t end\r\n"
    assert clean_text(raw, skip_chars=5) == "from fairest creatures that therebybeauty's rose--might never die\\ x end"


def test_clean_text_keeps_hyphens_apostrophes_and_backslash_only():
    removed = set(string.punctuation) - {"-", "'", "\\"}
    text = "a" + "".join(sorted(removed)) + "b-c'd\\e"
    assert clean_text(text, 0) == "a b-c'd\\e"


@composite
def texts(draw):
    alphabet = st.sampled_from(list("abcAB -'\r\n\t.,;:!?\\") + ["\u00a0", "\u2003", "\ufeff"])
    return draw(st.text(alphabet=alphabet, max_size=80))


@given(texts())
def test_clean_text_properties(raw):
    out = clean_text(raw, 0)
    note(repr(out))
    assert out == out.strip() and "  " not in out and out == out.lower()
    assert not (set(out) & (set(string.punctuation) - {"-", "'", "\\"}))
    assert "\n" not in out and "\r" not in out and "\t" not in out
    # newline removal glues: letters keep their order
    letters = [ch.lower() for ch in raw if ch.isalpha()]
    assert [ch for ch in out if ch.isalpha()] == letters


def vocab_oracle(words, min_word_freq):
    counts, order = {}, []
    for w in words:
        if w not in counts:
            counts[w] = 0
            order.append(w)
        counts[w] += 1
    vocab2ix = {}
    next_id = 1
    for w in order:
        if counts[w] > min_word_freq:
            vocab2ix[w] = next_id
            next_id += 1
    vocab2ix["unknown"] = 0
    return vocab2ix


@given(st.lists(st.sampled_from(["the", "a", "unknown", "thou", "art", "more", "x", "y"]), min_size=1, max_size=60),
       st.integers(0, 4))
def test_build_vocab_recipe_rules(words, min_word_freq):
    text = " ".join(words)
    ix2vocab, vocab2ix = build_vocab(text, min_word_freq)
    expected = vocab_oracle(words, min_word_freq)
    note(f"{expected}")
    assert vocab2ix == expected
    assert list(vocab2ix) == list(expected)  # first-seen order
    assert ix2vocab == {v: k for k, v in expected.items()}
    assert vocab_size_of(ix2vocab) == len(ix2vocab) + 1
    ids = text_to_ids(text, vocab2ix)
    assert ids.tolist() == [expected.get(w, 0) for w in words]


def test_frequent_word_unknown_maps_to_zero_and_leaves_a_hole():
    text = " ".join(["a"] * 3 + ["unknown"] * 3 + ["b"] * 3)
    ix2vocab, vocab2ix = build_vocab(text, 2)
    assert vocab2ix == {"a": 1, "unknown": 0, "b": 3}
    assert ix2vocab == {1: "a", 0: "unknown", 3: "b"}
    assert vocab_size_of(ix2vocab) == 4


def batches_oracle(ids, batch_size, seq_len):
    n = int(len(ids) / (batch_size * seq_len)) + 1
    base, extra = divmod(len(ids), n)
    out, start = [], 0
    for k in range(n):
        size = base + (1 if k < extra else 0)
        piece = list(ids[start:start + size])
        start += size
        flat = [piece[i % len(piece)] for i in range(batch_size * seq_len)]
        out.append(np.array(flat).reshape(batch_size, seq_len))
    return out


@given(st.integers(1, 120), st.integers(1, 6), st.integers(1, 7))
def test_batches_recipe_rules(n_words, batch_size, seq_len):
    ids = np.arange(n_words) * 3 + 1
    if int(n_words / (batch_size * seq_len)) + 1 > n_words:
        # only with batch * seq == 1: the recipe's extra batch would be an empty piece (np.resize: zeros)
        with pytest.raises(DataError, match="empty"):
            make_batches(ids, batch_size, seq_len)
        return
    got = make_batches(ids, batch_size, seq_len)
    expected = batches_oracle(ids, batch_size, seq_len)
    assert len(got) == int(n_words / (batch_size * seq_len)) + 1
    for g, e in zip(got, expected):
        assert g.shape == (batch_size, seq_len)
        assert np.array_equal(g, e)
        tg = targets_of(g)
        assert np.array_equal(tg[:, :-1], g[:, 1:]) and np.array_equal(tg[:, -1], g[:, 0])


def test_batching_errors():
    with pytest.raises(DataError, match="no words"):
        make_batches(np.array([], dtype=int), 2, 2)
    with pytest.raises(DataError, match="must be >= 1"):
        make_batches(np.arange(5), 0, 2)


@pytest.mark.shared_data
def test_pg100_vocabulary_and_batches(shared_data):
    """The recipe's published figures: 'Vocabulary Length = 8009' and 181 batches of 100x50."""
    ids, ix2vocab, vocab2ix = load_corpus(shared_data("shakespeare", "pg100.txt"), 5)
    assert vocab_size_of(ix2vocab) == 8009
    assert vocab2ix["unknown"] == 0 and 2041 not in ix2vocab  # the frequent word "unknown"'s own id
    batches = make_batches(ids, 100, 50)
    assert len(batches) == 181 and all(b.shape == (100, 50) for b in batches)
    assert [ix2vocab[i] for i in ids[:4]] == ["from", "fairest", "creatures", "we"]


# --- model against the oracle ---------------------------------------------------------------------

@composite
def model_cases(draw, max_b=3, max_t=5):
    seed = draw(st.integers(0, 2**31 - 1))
    H, V = draw(st.integers(1, 5)), draw(st.integers(2, 9))
    B, T = draw(st.integers(1, max_b)), draw(st.integers(1, max_t))
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(H, V)), "b": rng.normal(size=V), "embedding_mat": rng.normal(size=(V, H)),
              "kernel": rng.normal(size=(2 * H, 4 * H)) * 0.8, "bias": rng.normal(size=4 * H) * 0.5}
    # few distinct ids so that ids repeat within the batch (TF's IndexedSlices counting)
    x = rng.integers(0, min(V, 3), size=(B, T))
    state = (rng.normal(size=(B, H)), rng.normal(size=(B, H)))
    note(f"H={H} V={V} B={B} T={T} seed={seed}")
    return dict(H=H, V=V, B=B, T=T, params=params, x=x, y=np.roll(x, -1, axis=1), state=state)


def build(case, infer=False):
    model = LSTMModel(case["H"], case["V"], case["B"], case["T"], infer=infer, dtype=F64)
    model.load_tf1_variables({
        "lstm_model/lstm_vars/W": case["params"]["W"], "lstm_model/lstm_vars/b": case["params"]["b"],
        "lstm_model/lstm_vars/embedding_mat": case["params"]["embedding_mat"],
        "lstm_model/rnn_decoder/basic_lstm_cell/kernel": case["params"]["kernel"],
        "lstm_model/rnn_decoder/basic_lstm_cell/bias": case["params"]["bias"]})
    return model


def live(model):
    return dict(zip(NAMES, (model.W, model.b, model.embedding_mat, model.cell.kernel, model.cell.bias)))


def torch_state(state):
    return tuple(torch.tensor(s) for s in state)


@given(model_cases())
def test_cost_and_final_state_equal_the_recipe(case):
    model = build(case)
    cost, state = model.cost(torch.tensor(case["x"]), torch.tensor(case["y"]), torch_state(case["state"]))
    ref_cost, (ref_c, ref_h), cache = ref.recipe_forward(case["params"], case["x"], case["y"], case["state"])
    assert_close(cost, ref_cost)
    assert_close(state.c, ref_c)
    assert_close(state.h, ref_h)
    logits = model(torch.tensor(case["x"]), torch_state(case["state"])).logits
    assert_close(logits, cache["logits"])  # batch-major rows b * T + t


@given(model_cases(), st.sampled_from([4.5, 1e-3]))
def test_two_train_steps_equal_tf_adam_with_global_norm_clipping(case, clip_norm):
    """Forward, backward, clip_by_global_norm (IndexedSlices norm of the embedding) and TF Adam (sparse
    path for the embedding), twice so that the moments and beta powers carry over."""
    model = build(case)
    opt = make_optimizer(model, 0.001)
    params, adam = case["params"], ref.adam_init(case["params"])
    state, ref_state = torch_state(case["state"]), case["state"]
    for _ in range(2):
        cost, state, norm = train_step(model, opt, torch.tensor(case["x"]), torch.tensor(case["y"]), state, clip_norm)
        ref_cost, ref_state, ref_norm, params, adam = ref.recipe_train_step(
            params, adam, case["x"], case["y"], ref_state, lr=0.001, clip_norm=clip_norm)
        note(f"norm {float(norm)} clip {clip_norm}")
        assert_close(cost, ref_cost)
        assert_close(norm, ref_norm)
        assert_close(state.c, ref_state[0])
        assert_close(state.h, ref_state[1])
        for name, p in live(model).items():
            assert_close(p, params[name], msg=name)


def test_clipping_is_active_and_counts_token_occurrences():
    """With a repeated id the IndexedSlices norm differs from the dense-gradient norm; the step follows
    TF (the oracle), not the dense norm."""
    rng = np.random.default_rng(1)
    H, V = 3, 5
    case = dict(H=H, V=V, B=2, T=4, x=np.array([[1, 1, 1, 2], [1, 1, 3, 1]]),
                params={"W": rng.normal(size=(H, V)), "b": rng.normal(size=V), "embedding_mat": rng.normal(size=(V, H)),
                        "kernel": rng.normal(size=(2 * H, 4 * H)), "bias": rng.normal(size=4 * H)},
                state=(np.zeros((2, H)), np.zeros((2, H))))
    case["y"] = np.roll(case["x"], -1, axis=1)
    model = build(case)
    _, _, cache = ref.recipe_forward(case["params"], case["x"], case["y"], case["state"])
    g = ref.recipe_backward(cache)
    dense = ref.global_norm([g["W"], g["b"], g["embedding_mat"], g["kernel"], g["bias"]])
    sliced = ref.global_norm([g["W"], g["b"], g["embedding_values"], g["kernel"], g["bias"]])
    assert abs(dense - sliced) > 1e-6 * sliced
    clip = sliced / 2
    _, _, norm = train_step(model, make_optimizer(model, 0.001), torch.tensor(case["x"]), torch.tensor(case["y"]),
                            torch_state(case["state"]), clip)
    assert_close(norm, sliced)
    _, _, _, params, _ = ref.recipe_train_step(case["params"], ref.adam_init(case["params"]), case["x"], case["y"],
                                               case["state"], clip_norm=clip)
    for name, p in live(model).items():
        assert_close(p, params[name], msg=name)


@given(model_cases())
def test_infer_model_shares_weights_and_feeds_back_its_argmax(case):
    model = build(case)
    infer = model.infer_model()
    assert infer.batch_size == 1 and infer.training_seq_len == 1 and infer.infer
    assert all(a is b for a, b in zip(model.parameters(), infer.parameters()))
    with torch.no_grad():
        model.b.add_(1.0)
    assert torch.equal(infer.b, model.b)
    # A longer input through the infer graph: only the first word is read, then argmax feedback.
    x = torch.tensor(case["x"][:1])
    out = infer(x)
    params = dict(case["params"], b=case["params"]["b"] + 1.0)
    ref_outputs, _ = ref.rnn_decoder(
        [params["embedding_mat"][case["x"][:1, t]] for t in range(case["T"])],
        (np.zeros((1, case["H"])), np.zeros((1, case["H"]))),
        ref.lstm_cell_fn(params["kernel"], params["bias"]),
        loop_function=ref.inferred_loop(params["W"], params["b"], params["embedding_mat"]))
    assert_close(out.logits, np.concatenate(ref_outputs) @ params["W"] + params["b"])


@given(model_cases(max_b=1, max_t=1), st.lists(st.integers(0, 8), min_size=1, max_size=4), st.integers(0, 12))
def test_greedy_samples_equal_the_numpy_sampler(case, prime, num):
    prime = [p % case["V"] for p in prime]
    model = build(case)
    got = sample_ids(model, prime, num)
    expected = ref.greedy_sample_ids(case["params"], prime, num)
    note(f"prime={prime} got={got} expected={expected}")
    assert got == expected


def test_sample_text_stops_on_zero_and_on_words_missing_from_the_vocabulary():
    case_rng = np.random.default_rng(0)
    H, V = 4, 6
    params = {"W": case_rng.normal(size=(H, V)), "b": np.zeros(V), "embedding_mat": case_rng.normal(size=(V, H)),
              "kernel": case_rng.normal(size=(2 * H, 4 * H)), "bias": np.zeros(4 * H)}
    model = build(dict(H=H, V=V, B=1, T=1, params=params))
    ix2vocab = {0: "unknown", 1: "thou", 2: "art", 3: "more", 4: "than", 5: "i"}
    vocab2ix = {w: i for i, w in ix2vocab.items()}
    ids = ref.greedy_sample_ids(params, [1, 2, 3], 10)
    assert model.sample("thou art more", ix2vocab, vocab2ix, num=10) == " ".join(
        ["thou art more"] + [ix2vocab[i] for i in ids])
    # make id 0 the argmax everywhere: the sample stops at once
    with torch.no_grad():
        model.b[0] = 1e6
    assert model.sample("thou art", ix2vocab, vocab2ix) == "thou art"
    # an id without a word ends the sample (the recipe would raise KeyError)
    with torch.no_grad():
        model.b[0] = 0.0
        model.b[4] = 1e6
    del ix2vocab[4]
    assert model.sample("thou", ix2vocab, vocab2ix) == "thou"
    with pytest.raises(KeyError, match="'verily' is not in the vocabulary"):
        model.sample("verily thou", ix2vocab, vocab2ix)
    assert model.sample("verily thou", ix2vocab, vocab2ix, unknown="zero").startswith("verily thou")
    a = model.sample("thou", {**ix2vocab, 4: "than"}, vocab2ix, temperature=1.0, generator=torch.Generator().manual_seed(2))
    b = model.sample("thou", {**ix2vocab, 4: "than"}, vocab2ix, temperature=1.0, generator=torch.Generator().manual_seed(2))
    assert a == b


# --- TF variables ---------------------------------------------------------------------------------

@pytest.mark.parametrize("generation,cell_names", [
    ("1.2", ("basic_lstm_cell/kernel", "basic_lstm_cell/bias")),
    ("1.0", ("basic_lstm_cell/weights", "basic_lstm_cell/biases")),
    ("0.12", ("BasicLSTMCell/Linear/Matrix", "BasicLSTMCell/Linear/Bias")),
])
def test_tf1_variable_names_round_trip(generation, cell_names):
    torch.manual_seed(0)
    src = LSTMModel(4, 7, 2, 3, dtype=F64)
    exported = src.tf1_variables(generation=generation)
    assert sorted(exported) == sorted(["lstm_model/lstm_vars/W", "lstm_model/lstm_vars/b",
                                       "lstm_model/lstm_vars/embedding_mat"]
                                      + [f"lstm_model/rnn_decoder/{n}" for n in cell_names])
    assert exported["lstm_model/lstm_vars/W"] is src.W  # live parameters
    checkpoint = {k + ":0": v.detach().numpy().astype(np.float32) for k, v in exported.items()}
    checkpoint["lstm_model/lstm_vars/W/Adam"] = np.zeros(1)  # optimizer slots are ignored
    dst = LSTMModel(4, 7, 2, 3)
    used = dst.load_tf1_variables(checkpoint)
    assert len(used) == 5
    for a, b in zip(src.tf1_variables(generation=generation).values(), dst.tf1_variables(generation=generation).values()):
        assert torch.equal(a.float(), b)


def test_load_tf1_variables_errors_name_the_variable():
    model = LSTMModel(4, 7, 2, 3)
    good = {k: v.detach().numpy() for k, v in model.tf1_variables().items()}
    with pytest.raises(TF1VariableError, match="lstm_model/lstm_vars/embedding_mat"):
        model.load_tf1_variables({k: v for k, v in good.items() if not k.endswith("embedding_mat")})
    with pytest.raises(TF1VariableError, match="no BasicLSTMCell variables"):
        model.load_tf1_variables({k: v for k, v in good.items() if "rnn_decoder" not in k})
    bad = dict(good)
    bad["lstm_model/lstm_vars/W"] = np.zeros((4, 8))
    with pytest.raises(TF1VariableError, match=r"has shape \[4, 8\].*needs \[4, 7\]"):
        model.load_tf1_variables(bad)
    before = model.W.detach().clone()
    assert torch.equal(model.W, before)  # nothing copied on failure
    with pytest.raises(ValueError, match="generation"):
        model.tf1_variables(generation="2.0")


def test_model_input_errors():
    model = LSTMModel(4, 7, 2, 3)
    with pytest.raises(ValueError, match=r"word id 7 in x_data is outside the vocabulary \[0, 7\)"):
        model(torch.tensor([[0, 7, 1]]))
    with pytest.raises(ValueError, match="expected \\[batch, seq\\]"):
        model(torch.tensor([0, 1]))


def test_load_tf1_variables_from_a_checkpoint_path(tmp_path):
    from compat.formats.tf import save_checkpoint

    torch.manual_seed(1)
    src = LSTMModel(3, 6, 2, 2)
    variables = {k: v.detach().numpy() for k, v in src.tf1_variables(generation="0.12").items()}
    variables["lstm_model/beta1_power"] = np.float32(0.9)
    prefix = save_checkpoint(tmp_path / "model-500", variables)
    dst = LSTMModel(3, 6, 2, 2)
    dst.load_tf1_variables(prefix)
    for a, b in zip(src.parameters(), dst.parameters()):
        assert torch.equal(a, b)


def test_train_step_and_greedy_sampling_on_each_device(device):
    rng = np.random.default_rng(3)
    H, V, B, T = 4, 9, 3, 6
    case = dict(H=H, V=V, B=B, T=T, x=rng.integers(0, 4, size=(B, T)),
                params={"W": rng.normal(size=(H, V)), "b": rng.normal(size=V), "embedding_mat": rng.normal(size=(V, H)),
                        "kernel": rng.normal(size=(2 * H, 4 * H)), "bias": rng.normal(size=4 * H)},
                state=(np.zeros((B, H)), np.zeros((B, H))))
    case["y"] = np.roll(case["x"], -1, axis=1)
    model = build(case).to(device)
    state = tuple(torch.tensor(s, device=device) for s in case["state"])
    cost, _, norm = train_step(model, make_optimizer(model, 0.001), torch.tensor(case["x"], device=device),
                               torch.tensor(case["y"], device=device), state, 0.01)
    ref_cost, _, ref_norm, params, _ = ref.recipe_train_step(case["params"], ref.adam_init(case["params"]), case["x"],
                                                             case["y"], case["state"], clip_norm=0.01)
    assert_close(cost, ref_cost)
    assert_close(norm, ref_norm)
    for name, p in live(model).items():
        assert_close(p, params[name], msg=name)
    assert sample_ids(model, [1, 2], 8) == ref.greedy_sample_ids(params, [1, 2], 8)


def test_train_config_defaults_are_the_recipes_constants():
    """03_implementing_lstm.py's module-level settings, its clip_by_global_norm(..., 4.5) and
    BasicLSTMCell(rnn_size)'s default forget bias of 1.0."""
    from ports.tf_shakespeare.config import TrainConfig

    c = TrainConfig()
    assert (c.min_word_freq, c.rnn_size, c.epochs, c.batch_size, c.learning_rate, c.training_seq_len, c.save_every,
            c.eval_every) == (5, 128, 10, 100, 0.001, 50, 500, 50)
    assert c.prime_texts == ["thou art more", "to be or not to", "wherefore art thou"]
    assert (c.clip_norm, c.forget_bias, c.dtype) == (4.5, 1.0, "float32")
