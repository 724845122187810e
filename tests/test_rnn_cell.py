"""compat.rnn_cell (TF1's cell API) against reference.tf_rnn_cells and reference.tf_lstm: the cells, MultiRNNCell
of mixed cells, the wrappers (dropout with its masks fixed from outside, and its statistics with them drawn),
dynamic_rnn / static_rnn / bidirectional_dynamic_rnn with sequence_length, and the variables by TF's names
through a TF checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from compat import rnn_cell as rc
from compat.formats.tf import save_checkpoint
from reference import tf_lstm
from reference import tf_rnn_cells as ref
from tests.tolerances import assert_close

quiet = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
F64 = torch.float64


# ------------------------------------------------------------------------------------------------ helpers
def oracle_of(cell, V: dict, prefix: str):
    """The oracle cell with the same variables (V: TF name -> numpy), and whether it takes the step index."""
    if isinstance(cell, rc.DropoutWrapper):
        inner, stepped = oracle_of(cell.cell, V, prefix)
        return ref.dropout_wrapper(inner, cell.noise, cell.input_keep_prob, cell.state_keep_prob,
                                   cell.output_keep_prob, cell.variational_recurrent, stepped), True
    if isinstance(cell, rc.ResidualWrapper):
        inner, stepped = oracle_of(cell.cell, V, prefix)
        wrapped = ref.residual_wrapper(inner)
        return wrapped, stepped
    if isinstance(cell, rc.DeviceWrapper):
        return oracle_of(cell.cell, V, prefix)
    if isinstance(cell, rc.MultiRNNCell):
        subs = [oracle_of(c, V, f"{prefix}multi_rnn_cell/cell_{k}/") for k, c in enumerate(cell.cells)]
        cells = [(lambda s: (lambda x, st, t: s[0](x, st, t)) if s[1] else (lambda x, st, t: s[0](x, st)))(s)
                 for s in subs]

        def multi(x, state, t):
            parts = list(state) if cell.state_is_tuple else None
            if parts is None:
                bounds = np.cumsum([0] + [c.state_size for c in cell.cells])
                parts = [state[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
            inp, new = x, []
            for c, s in zip(cells, parts):
                inp, s = c(inp, s, t)
                new.append(s)
            return inp, (tuple(new) if cell.state_is_tuple else np.concatenate(new, axis=1))
        return multi, True
    p = prefix + cell.scope_name + "/"
    if isinstance(cell, rc.GRUCell):
        return ref.gru_cell(V[p + "gates/kernel"], V[p + "gates/bias"], V[p + "candidate/kernel"],
                            V[p + "candidate/bias"]), False
    if isinstance(cell, rc.BasicRNNCell):
        return ref.basic_rnn_cell(V[p + "kernel"], V[p + "bias"]), False
    if isinstance(cell, rc.LSTMCell):
        H = cell.num_units

        def lstm(x, state):
            c, h = (state.c, state.h) if cell.state_is_tuple else (state[:, :H], state[:, H:])
            kw = {}
            if cell.use_peepholes:
                kw.update(w_i_diag=V[p + "w_i_diag"], w_f_diag=V[p + "w_f_diag"], w_o_diag=V[p + "w_o_diag"])
            if cell.num_proj:
                kw.update(proj_kernel=V[p + "projection/kernel"], proj_clip=cell.proj_clip)
            m, (c, m) = tf_lstm.lstm_cell(x, (c, h), V[p + "kernel"], V[p + "bias"], cell.forget_bias,
                                          cell_clip=cell.cell_clip, **kw)
            return m, (ref.LSTMState(c, m) if cell.state_is_tuple else np.concatenate([c, m], axis=1))
        return lstm, False
    if isinstance(cell, rc.BasicLSTMCell):
        return ref.basic_lstm_cell(V[p + "kernel"], V[p + "bias"], cell.forget_bias, cell.state_is_tuple), False
    raise AssertionError(type(cell))


def numpy_state(state):
    if isinstance(state, rc.LSTMStateTuple):
        return ref.LSTMState(*(numpy_state(s) for s in state))
    if isinstance(state, tuple):
        return tuple(numpy_state(s) for s in state)
    return state.detach().double().numpy()


def torch_state(state, dtype):
    if isinstance(state, ref.LSTMState):
        return rc.LSTMStateTuple(*(torch_state(s, dtype) for s in state))
    if isinstance(state, tuple):
        return tuple(torch_state(s, dtype) for s in state)
    return torch.tensor(state, dtype=dtype)


def assert_same_state(actual, expected, **kw):
    for a, e in zip(ref._leaves(numpy_state(actual)), ref._leaves(expected)):
        assert_close(a, e, **kw)


def random_state(cell, B: int, rng):
    """A random state of the cell's structure (numpy, the oracle's LSTMState for TF's LSTMStateTuple)."""
    def fill(s):
        if isinstance(s, ref.LSTMState):
            return ref.LSTMState(*(fill(x) for x in s))
        if isinstance(s, tuple):
            return tuple(fill(x) for x in s)
        return rng.uniform(-1, 1, s.shape)
    return fill(numpy_state(cell.zero_state(B, F64)))


@st.composite
def cells(draw, n_in: int, depth: int = 0):
    """A random cell of compat.rnn_cell with input size n_in: a plain cell, a MultiRNNCell of mixed cells, or a
    residual/device wrapper around one."""
    kinds = ["gru", "rnn", "basic_lstm", "lstm"] + (["multi", "residual", "device"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds), label="cell kind")
    H = draw(st.integers(1, 5), label="units")
    tuple_state = draw(st.booleans(), label="state_is_tuple")
    if kind == "gru":
        return rc.GRUCell(H, input_size=n_in, dtype=F64)
    if kind == "rnn":
        return rc.BasicRNNCell(H, input_size=n_in, dtype=F64)
    if kind == "basic_lstm":
        return rc.BasicLSTMCell(H, forget_bias=draw(st.sampled_from([0.0, 1.0])), state_is_tuple=tuple_state,
                                input_size=n_in, dtype=F64)
    if kind == "lstm":
        proj = draw(st.sampled_from([None, 2, 6]))
        return rc.LSTMCell(H, use_peepholes=draw(st.booleans()), cell_clip=draw(st.sampled_from([None, 0.3])),
                           num_proj=proj, proj_clip=draw(st.sampled_from([None, 0.2])) if proj else None,
                           state_is_tuple=tuple_state, input_size=n_in, dtype=F64)
    if kind == "residual":
        inner = draw(cells(n_in, depth + 1).filter(lambda c: c.output_size == n_in))
        return rc.ResidualWrapper(inner)
    if kind == "device":
        return rc.DeviceWrapper(draw(cells(n_in, depth + 1)), "cpu")
    layers, size = [], n_in
    for _ in range(draw(st.integers(1, 3), label="layers")):
        c = draw(cells(size, depth + 1))
        layers.append(c)
        size = c.output_size
    concat = all(not isinstance(c.state_size, tuple) for c in layers) and not draw(st.booleans())
    return rc.MultiRNNCell(layers, state_is_tuple=not concat)


def randomize_(cell, rng):
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.tensor(rng.uniform(-1, 1, tuple(p.shape))))


# ------------------------------------------------------------------------------- cells and drivers = oracle
@quiet
@given(data=st.data(), T=st.integers(1, 6), B=st.integers(1, 4), n_in=st.integers(1, 5),
       lengths=st.booleans(), time_major=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_dynamic_rnn_of_any_cell_matches_the_oracle(data, T, B, n_in, lengths, time_major, seed):
    cell = data.draw(cells(n_in))
    note(repr(cell))
    rng = np.random.default_rng(seed)
    randomize_(cell, rng)
    x = rng.uniform(-1, 1, (T, B, n_in))
    seq = rng.integers(0, T + 1, B) if lengths else None
    state0 = random_state(cell, B, rng)
    V = {k: v.detach().numpy() for k, v in rc.tf_variables(cell).items()}
    oracle, stepped = oracle_of(cell, V, "rnn/")
    expected_out, expected_state = ref.dynamic_rnn(oracle, x, state0, seq, with_step=stepped)
    xt = torch.tensor(x if time_major else x.transpose(1, 0, 2))
    out, state = rc.dynamic_rnn(cell, xt, None if seq is None else torch.tensor(seq), torch_state(state0, F64),
                                time_major=time_major)
    assert_close(out if time_major else out.transpose(0, 1), expected_out)
    assert_same_state(state, expected_state)
    # the step API (cell(x, state) per step, TF's cell.__call__) gives the same numbers and gradients
    step_state, step_out = torch_state(state0, F64), []
    for t in range(T):
        o, step_state = cell(torch.tensor(x[t]), step_state)
        step_out.append(o)
    if seq is None:
        assert_close(torch.stack(step_out), expected_out)
        assert_same_state(step_state, expected_state)
        g1 = torch.autograd.grad(torch.stack(step_out).sum(), list(cell.parameters()), allow_unused=True)
        out2, _ = rc.dynamic_rnn(cell, torch.tensor(x), time_major=True, initial_state=torch_state(state0, F64))
        g2 = torch.autograd.grad(out2.sum(), list(cell.parameters()), allow_unused=True)
        for a, b in zip(g1, g2):
            if a is not None and b is not None:
                assert_close(a, b)


@quiet
@given(T=st.integers(1, 6), B=st.integers(1, 4), n_in=st.integers(1, 4), H=st.integers(1, 4), lengths=st.booleans(),
       seed=st.integers(0, 2 ** 32 - 1))
def test_bidirectional_and_static_rnn_match_the_oracle(T, B, n_in, H, lengths, seed):
    rng = np.random.default_rng(seed)
    fw, bw = rc.GRUCell(H, input_size=n_in, dtype=F64), rc.BasicLSTMCell(H + 1, input_size=n_in, dtype=F64)
    randomize_(fw, rng)
    randomize_(bw, rng)
    x = rng.uniform(-1, 1, (T, B, n_in))
    seq = rng.integers(0, T + 1, B) if lengths else None
    Vf = {k: v.detach().numpy() for k, v in rc.tf_variables(fw, "bidirectional_rnn/fw").items()}
    Vb = {k: v.detach().numpy() for k, v in rc.tf_variables(bw, "bidirectional_rnn/bw").items()}
    assert "bidirectional_rnn/fw/gru_cell/gates/kernel" in Vf and "bidirectional_rnn/bw/basic_lstm_cell/kernel" in Vb
    (eo_f, eo_b), (es_f, es_b) = ref.bidirectional_dynamic_rnn(
        oracle_of(fw, Vf, "bidirectional_rnn/fw/")[0], oracle_of(bw, Vb, "bidirectional_rnn/bw/")[0], x,
        np.zeros((B, H)), ref.LSTMState(np.zeros((B, H + 1)), np.zeros((B, H + 1))), seq)
    (o_f, o_b), (s_f, s_b) = rc.bidirectional_dynamic_rnn(fw, bw, torch.tensor(x).transpose(0, 1), seq)
    assert_close(o_f.transpose(0, 1), eo_f)
    assert_close(o_b.transpose(0, 1), eo_b)
    assert_same_state(s_f, es_f)
    assert_same_state(s_b, es_b)
    outs, st_ = rc.static_rnn(fw, list(torch.tensor(x).unbind(0)), sequence_length=seq)
    assert_close(torch.stack(outs), eo_f)
    assert_same_state(st_, es_f)


def test_gru_cell_is_tfs_and_gru_block_cell_computes_the_same():
    rng = np.random.default_rng(0)
    cell = rc.GRUCell(3, input_size=2, dtype=F64)
    assert torch.equal(cell.gates_bias, torch.ones(6, dtype=F64)) and not cell.candidate_bias.any()
    randomize_(cell, rng)
    V = {k: v.detach().numpy() for k, v in rc.tf_variables(cell).items()}
    x, h = rng.uniform(-1, 1, (4, 2)), rng.uniform(-1, 1, (4, 3))
    block = ref.gru_block_cell(V["rnn/gru_cell/gates/kernel"], V["rnn/gru_cell/gates/bias"],
                               V["rnn/gru_cell/candidate/kernel"], V["rnn/gru_cell/candidate/bias"])
    out, new_h = cell(torch.tensor(x), torch.tensor(h))
    assert_close(out, block(x, h)[0])
    assert_close(new_h, out)
    # and it is not torch.nn.GRU's cell on the same (reordered) weights: the reset acts before the product
    w = cell.canonical_weights()
    torch_cell = torch.nn.GRUCell(2, 3).double()
    with torch.no_grad():
        torch_cell.weight_ih.copy_(w.weight_ih)
        torch_cell.weight_hh.copy_(w.weight_hh)
        torch_cell.bias_ih.copy_(w.bias_ih)
        torch_cell.bias_hh.zero_()
    assert (torch_cell(torch.tensor(x), torch.tensor(h)) - out).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------ DropoutWrapper
def fixed_noise(seed: int):
    """Noise from a table keyed by (kind, index, step), so that the wrapper and the oracle see the same."""
    table = {}

    def noise(kind, index, step, shape, dtype=None, device=None):
        key = (kind, index, step, tuple(shape))
        if key not in table:
            table[key] = np.random.default_rng([seed, len(table)]).uniform(size=shape)
        return table[key] if dtype is None else torch.tensor(table[key], dtype=dtype)
    return noise


@quiet
@given(data=st.data(), T=st.integers(1, 5), B=st.integers(1, 4), n_in=st.integers(1, 4),
       keeps=st.tuples(*[st.sampled_from([1.0, 0.5, 0.8])] * 3), variational=st.booleans(), lengths=st.booleans(),
       seed=st.integers(0, 2 ** 32 - 1))
def test_dropout_wrapper_structure_with_fixed_masks(data, T, B, n_in, keeps, variational, lengths, seed):
    inner = data.draw(cells(n_in, depth=1))
    noise = fixed_noise(seed)
    cell = rc.DropoutWrapper(inner, input_keep_prob=keeps[0], state_keep_prob=keeps[1], output_keep_prob=keeps[2],
                             variational_recurrent=variational, noise=noise)
    if data.draw(st.booleans(), label="inside a MultiRNNCell"):
        cell = rc.MultiRNNCell([cell])
    note(repr(cell))
    rng = np.random.default_rng(seed)
    randomize_(cell, rng)
    x = rng.uniform(-1, 1, (T, B, n_in))
    seq = rng.integers(0, T + 1, B) if lengths else None
    state0 = random_state(cell, B, rng)
    V = {k: v.detach().numpy() for k, v in rc.tf_variables(cell).items()}
    oracle, _ = oracle_of(cell, V, "rnn/")
    expected_out, expected_state = ref.dynamic_rnn(oracle, x, state0, seq, with_step=True)
    out, state = rc.dynamic_rnn(cell, torch.tensor(x), seq, torch_state(state0, F64), time_major=True)
    assert_close(out, expected_out)
    assert_same_state(state, expected_state)


def test_state_dropout_spares_the_lstm_c_only_when_the_state_is_a_tuple():
    """_default_dropout_state_filter_visitor: an LSTMStateTuple's c is never dropped; a concatenated state
    (state_is_tuple=False) is one tensor and is dropped whole, c included (TF's behaviour)."""
    x = torch.randn(3, 2, dtype=F64)
    zero_noise = lambda kind, index, step, shape, dtype, device: torch.zeros(shape, dtype=dtype)  # noqa: E731
    for tuple_state in (True, False):
        inner = rc.BasicLSTMCell(4, state_is_tuple=tuple_state, input_size=2, dtype=F64)
        cell = rc.DropoutWrapper(inner, state_keep_prob=0.5, noise=zero_noise)  # floor(0.5 + 0) = 0: all dropped
        _, state = cell(x, inner.zero_state(3, F64))
        _, clean = inner(x, inner.zero_state(3, F64))
        if tuple_state:
            assert_close(state.c, clean.c)
            assert not state.h.any()
        else:
            assert not state.any()


def test_dropout_statistics_with_drawn_masks():
    torch.manual_seed(0)
    n = 20000
    x = torch.ones(n, 8, dtype=F64)
    ident = rc.ResidualWrapper(rc.BasicRNNCell(8, activation=lambda v: v * 0, input_size=8, dtype=F64))
    for keep in (0.3, 0.8):
        cell = rc.DropoutWrapper(ident, input_keep_prob=keep)
        out, _ = cell(x, ident.zero_state(n, F64))
        kept = out != 0
        p = kept.double().mean().item()
        assert abs(p - keep) < 4 * (keep * (1 - keep) / out.numel()) ** 0.5, (p, keep)
        assert_close(out[kept], torch.full_like(out[kept], 1 / keep))
    # variational: one [1, depth] mask for the whole run, shared by the batch and reused at every step
    cell = rc.DropoutWrapper(ident, output_keep_prob=0.5, variational_recurrent=True, seed=7)
    out, _ = rc.dynamic_rnn(cell, torch.ones(6, 5, 8, dtype=F64), time_major=True)
    assert all(torch.equal(out[t, b], out[0, 0]) for t in range(6) for b in range(5))
    again, _ = rc.dynamic_rnn(cell, torch.ones(6, 5, 8, dtype=F64), time_major=True)
    masks = {tuple((again[0, 0] != 0).tolist())} | {tuple((out[0, 0] != 0).tolist())}
    fresh = [rc.dynamic_rnn(cell, torch.ones(1, 1, 8, dtype=F64), time_major=True)[0][0, 0] != 0 for _ in range(20)]
    assert len({tuple(m.tolist()) for m in fresh} | masks) > 2, "a new mask per run"
    # not variational: masks differ between steps
    cell = rc.DropoutWrapper(ident, output_keep_prob=0.5)
    out, _ = rc.dynamic_rnn(cell, torch.ones(6, 5, 8, dtype=F64), time_major=True)
    assert not all(torch.equal(out[t], out[0]) for t in range(6))
    # seed: two wrappers with the same seed draw the same masks; another seed others; eval() drops nothing
    runs = []
    for s in (3, 3, 4):
        w = rc.DropoutWrapper(ident, input_keep_prob=0.5, state_keep_prob=0.5, output_keep_prob=0.5, seed=s)
        runs.append(rc.dynamic_rnn(w, torch.ones(4, 3, 8, dtype=F64), time_major=True)[0])
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert rc.gen_seed(3, "input", 0) != rc.gen_seed(3, "output", 0)
    w.eval()
    assert_close(rc.dynamic_rnn(w, torch.ones(4, 3, 8, dtype=F64), time_major=True)[0], torch.ones(4, 3, 8))


# ------------------------------------------------------------------------------------- variables, errors
def test_variables_load_from_a_tf_checkpoint_by_tfs_names(tmp_path):
    rng = np.random.default_rng(1)
    src = rc.MultiRNNCell([rc.GRUCell(4, input_size=3, dtype=F64),
                           rc.DropoutWrapper(rc.LSTMCell(5, use_peepholes=True, num_proj=2, input_size=4, dtype=F64),
                                             output_keep_prob=0.5)])
    randomize_(src, rng)
    names = rc.tf_variables(src)
    assert sorted(names) == sorted([
        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel", "rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias",
        "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/kernel", "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/bias",
        "rnn/multi_rnn_cell/cell_1/lstm_cell/kernel", "rnn/multi_rnn_cell/cell_1/lstm_cell/bias",
        "rnn/multi_rnn_cell/cell_1/lstm_cell/w_i_diag", "rnn/multi_rnn_cell/cell_1/lstm_cell/w_f_diag",
        "rnn/multi_rnn_cell/cell_1/lstm_cell/w_o_diag", "rnn/multi_rnn_cell/cell_1/lstm_cell/projection/kernel"])
    prefix = save_checkpoint(tmp_path / "model.ckpt", {k: v.detach().numpy() for k, v in names.items()})
    dst = rc.MultiRNNCell([rc.GRUCell(4, dtype=F64),
                           rc.DropoutWrapper(rc.LSTMCell(5, use_peepholes=True, num_proj=2, dtype=F64))])
    loaded = rc.load_tf_variables(dst, prefix)
    assert sorted(loaded) == sorted(names)
    x = torch.tensor(rng.uniform(-1, 1, (3, 2, 3)))
    src.eval()
    dst.eval()
    assert_close(rc.dynamic_rnn(dst, x)[0], rc.dynamic_rnn(src, x)[0])
    with pytest.raises(rc.RNNCellError, match="no variable .other/multi_rnn_cell/cell_0/gru_cell/gates/kernel"):
        rc.load_tf_variables(rc.MultiRNNCell([rc.GRUCell(4, dtype=F64)]), prefix, scope="other")
    with pytest.raises(rc.RNNCellError, match=r"has shape \[7, 8\]; the cell expects \[6, 8\]"):
        rc.load_tf_variables(rc.GRUCell(4, input_size=2), {k.replace("multi_rnn_cell/cell_0/", ""): v.detach().numpy()
                                                           for k, v in names.items()})


def test_errors_name_what_is_wrong():
    with pytest.raises(rc.RNNCellError, match="state_is_tuple is not set"):
        rc.MultiRNNCell([rc.BasicLSTMCell(3)], state_is_tuple=False)
    with pytest.raises(rc.RNNCellError, match="at least one cell"):
        rc.MultiRNNCell([])
    with pytest.raises(rc.RNNCellError, match=r"input_keep_prob must be a number in \(0, 1\]"):
        rc.DropoutWrapper(rc.GRUCell(3), input_keep_prob=0.0)
    with pytest.raises(rc.RNNCellError, match="not an RNNCell"):
        rc.DropoutWrapper(torch.nn.GRUCell(2, 3))
    with pytest.raises(rc.RNNCellError, match=r"sequence_length .* negative"):
        rc.dynamic_rnn(rc.GRUCell(3), torch.zeros(2, 4, 1), sequence_length=[1, -1])
    with pytest.raises(rc.RNNCellError, match=r"state h has shape \[2, 4\]; expected \[batch, 3\]"):
        rc.GRUCell(3)(torch.zeros(2, 1), torch.zeros(2, 4))
    with pytest.raises(rc.RNNCellError, match="inputs .* must have the same shape"):
        rc.ResidualWrapper(rc.GRUCell(3, input_size=2))(torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(rc.RNNCellError, match="built for input size 2"):
        rc.GRUCell(3, input_size=2)(torch.zeros(2, 5), torch.zeros(2, 3))


def test_device_wrapper_places_only():
    rng = np.random.default_rng(2)
    inner = rc.GRUCell(3, input_size=2, dtype=F64)
    randomize_(inner, rng)
    x = torch.tensor(rng.uniform(-1, 1, (4, 2, 2)))
    a = rc.dynamic_rnn(inner, x)
    b = rc.dynamic_rnn(rc.DeviceWrapper(inner, "cpu"), x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and b[0].device.type == "cpu"
    assert rc.tf_variables(rc.DeviceWrapper(inner, "cpu")).keys() == rc.tf_variables(inner).keys()


def test_the_migration_guides_rnn_cell_snippet_runs(capsys):
    """docs/migration/tf1.md, "tf.nn.rnn_cell": the snippet runs as printed (its plain PyTorch GRU step included)
    and prints the names the guide shows."""
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parent.parent / "docs" / "migration" / "tf1.md"
    section = guide.read_text(encoding="utf-8").split("\n## tf.nn.rnn_cell", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section.split("\n### ", 1)[0], re.S)
    exec(compile(block, str(guide), "exec"), {})
    expected = [line[2:] for line in block.splitlines() if line.startswith("# ['rnn/")]
    assert capsys.readouterr().out.splitlines() == expected
