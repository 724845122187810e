"""The seam (compat/recurrent): which kernel runs a call, one test per row of the selection table; forcing a
kernel; every kernel that takes a call gives the step loop's numbers, for any gate order; what
``past_end="unread"`` allows; and the same numbers, bit for bit, where a legacy layout is handed over as
stored instead of converted."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, note, strategies as st

from compat import fastloop
from compat.layouts import to_canonical
from compat.lstm import LayerWeights, lstm, which_kernel
from compat.recurrent import KERNELS, SELECTION, Cell, CellError, KernelError
from compat.recurrent.compiled import COMPILED
from compat.recurrent.masks import CellMasks
from tests.tolerances import assert_close

needs_compiler = pytest.mark.skipif(not fastloop.available(), reason="compat.fastloop is unavailable here (no C "
                                                                     "compiler): its rules cannot select it")


def weights(H=3, n_in=2, layers=1, dtype=torch.float32, grad=False, seed=0, **extra):
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(layers):
        tensors = [torch.randn(4 * H, n_in if k == 0 else H, generator=g, dtype=dtype) * 0.5,
                   torch.randn(4 * H, H, generator=g, dtype=dtype) * 0.5,
                   torch.randn(4 * H, generator=g, dtype=dtype) * 0.1, torch.randn(4 * H, generator=g, dtype=dtype) * 0.1]
        w = LayerWeights(*[t.requires_grad_(grad) for t in tensors])
        out.append(w._replace(**{k: v(H, dtype) for k, v in extra.items()}))
    return out


def rule_of(choice):
    return None if choice.rule is None else SELECTION.index(choice.rule)


def rule(kernel: str, when: str) -> int:
    """The index of the table's row for ``kernel`` whose condition is the function named ``when``."""
    return next(i for i, r in enumerate(SELECTION) if r.kernel == kernel and r.when.__name__ == when)


# ------------------------------------------------------------------------------------------- the table
def test_the_table_names_kernels_of_the_registry_and_ends_with_the_loop():
    assert {r.kernel for r in SELECTION} == set(KERNELS)
    assert SELECTION[-1].kernel == "loop" and SELECTION[-1].when.__name__ == "_always"
    for r in SELECTION:
        assert r.why and r.why[0].islower(), r


@needs_compiler
def test_one_cpu_step_without_grad_runs_compiled():
    x = torch.randn(1, 2, 2)
    with torch.no_grad():
        choice = which_kernel(x, weights())
    assert choice.name == "compiled" and rule_of(choice) == rule("compiled", "_one_cpu_step_without_grad")


def test_one_cpu_step_from_no_state_runs_first():
    choice = which_kernel(torch.randn(1, 2, 2), weights(grad=True, layers=2))
    assert choice.name == "first" and rule_of(choice) == rule("first", "_one_cpu_step_from_zero")
    assert which_kernel(torch.randn(1, 2, 2), weights(grad=True), gate_order="igfo").name == "first"
    assert which_kernel(torch.randn(1, 2, 2), weights(grad=True), cont=torch.zeros(1, 2)).name == "first"
    assert which_kernel(torch.randn(3, 2, 2), weights(grad=True)).name == "fused"  # more than one step


def test_one_cpu_step_with_grad_runs_the_loop():
    hx = (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))  # a given state, even of zeros: the loop reads it
    choice = which_kernel(torch.randn(1, 2, 2, requires_grad=True), weights(), hx)
    assert choice.name == "loop" and rule_of(choice) == rule("loop", "_one_cpu_step")
    with pytest.raises(KernelError, match="from no initial state"):
        lstm(torch.randn(1, 2, 2), weights(), hx, kernel="first")


@pytest.mark.parametrize("case", ["peepholes", "named activations", "clip", "input_forget", "quirks", "mask",
                                  "lengths", "dropout", "bidirectional", "cont with a gradient"])
def test_one_step_from_no_state_beyond_the_first_step_kernel_runs_the_loop(case):
    x = torch.randn(1, 2, 2)
    kw = {}
    ws = weights(grad=True, layers=2)
    if case == "peepholes":
        ws = weights(grad=True, peephole=lambda H, dtype: torch.zeros(3, H, dtype=dtype))
    elif case == "named activations":
        kw["activations"] = ("hard_sigmoid_keras2", "tanh", "tanh")
    elif case == "clip":
        kw["preact_clip"] = 1.0
    elif case == "input_forget":
        kw["input_forget"] = True
    elif case == "quirks":
        kw["preact_grad_clip"] = 0.1
    elif case == "mask":
        kw["mask"] = torch.tensor([[1.0, 0.0]])
    elif case == "lengths":
        kw["lengths"] = torch.tensor([1, 0])
    elif case == "dropout":
        kw.update(dropout=0.5, training=True)
    elif case == "bidirectional":
        ws = [(ws[0], weights(grad=True, seed=1)[0])]
        kw["direction"] = "bidirectional"
    elif case == "cont with a gradient":
        kw["cont"] = torch.ones(1, 2, requires_grad=True)
    choice = which_kernel(x, ws, **kw)
    assert choice.name == "loop" and rule_of(choice) == rule("loop", "_one_cpu_step")
    with pytest.raises(KernelError, match="kernel='first' cannot run this call"):
        which_kernel(x, ws, kernel="first", **kw)


@needs_compiler
def test_gradient_quirks_with_grad_run_compiled():
    choice = which_kernel(torch.randn(6, 2, 2), weights(grad=True), preact_grad_clip=0.1)
    assert choice.name == "compiled" and rule_of(choice) == rule("compiled", "_quirks_with_grad")
    choice = which_kernel(torch.randn(6, 2, 2), weights(grad=True), recurrent_weight_grad_ignores_cont=True)
    assert choice.name == "compiled"
    with torch.no_grad():  # the quirks change only gradients: without one, the fused kernel runs them
        assert which_kernel(torch.randn(6, 2, 2), weights(grad=True), preact_grad_clip=0.1).name == "fused"


def test_gradient_quirks_without_the_compiler_run_checked(monkeypatch):
    monkeypatch.setattr(COMPILED, "supports", lambda call: "the compiled loop is unavailable here")
    choice = which_kernel(torch.randn(6, 2, 2), weights(grad=True), cont=torch.ones(6, 2), preact_grad_clip=0.1)
    assert choice.name == "checked" and rule_of(choice) == rule("checked", "_quirks_with_grad_few_restarts")


@needs_compiler
@pytest.mark.parametrize("threads, H, expected", [(1, 8, "compiled"), (2, 8, "fused"), (1, 129, "fused")])
def test_float64_on_one_thread_runs_compiled_up_to_h_128(monkeypatch, threads, H, expected):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    choice = which_kernel(torch.randn(6, 2, 2, dtype=torch.float64), weights(H=H, dtype=torch.float64, grad=True))
    assert choice.name == expected
    if expected == "compiled":
        assert rule_of(choice) == rule("compiled", "_float64_on_one_thread")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert which_kernel(torch.randn(6, 2, 2), weights(H=H, grad=True)).name == "fused"  # float32: never


def test_plain_dense_runs_fused():
    choice = which_kernel(torch.randn(6, 2, 2), weights(grad=True, layers=2))
    assert choice.name == "fused" and rule_of(choice) == rule("fused", "_always")
    first_only = torch.ones(6, 2)
    first_only[0] = 0  # restarts at step 0 only: the initial state, scaled
    assert which_kernel(torch.randn(6, 2, 2), weights(grad=True), cont=first_only).name == "fused"


def test_right_padding_runs_packed_and_unread_padding_runs_fused():
    x = torch.randn(6, 3, 2)
    lengths = torch.tensor([6, 2, 4])
    mask = (torch.arange(6).unsqueeze(1) < lengths).float()
    choice = which_kernel(x, weights(grad=True), lengths=lengths)
    assert choice.name == "packed" and rule_of(choice) == rule("packed", "_always")
    assert which_kernel(x, weights(grad=True), mask=mask).name == "packed"
    assert which_kernel(x, weights(grad=True), mask=mask, past_end="unread").name == "fused"
    holes = mask.clone()
    holes[1, 0] = 0
    assert which_kernel(x, weights(grad=True), mask=holes, past_end="unread").name == "loop"
    # the lengths known on the host say the same without reading a mask
    assert which_kernel(x, weights(grad=True), lengths=lengths, past_end="unread").name == "fused"
    assert which_kernel(x, weights(grad=True), lengths=lengths.tolist(), past_end="unread",
                        direction="reverse").name == "fused"
    # a bidirectional layer's backward direction reads the padded steps first: never dense
    pair = [tuple(weights(grad=True, seed=k)[0] for k in (0, 1))]
    assert which_kernel(x, pair, lengths=lengths, past_end="unread", direction="bidirectional").name == "packed"
    assert which_kernel(x, pair, mask=mask, past_end="unread", direction="bidirectional").name == "loop"
    with pytest.raises(KernelError, match="right padding read one way"):
        which_kernel(x, pair, mask=mask, past_end="unread", direction="bidirectional", kernel="fused")


def test_few_restarts_run_segments_many_the_loop():
    x = torch.randn(16, 2, 2)
    cont = torch.ones(16, 2)
    cont[5, 1] = 0
    choice = which_kernel(x, weights(grad=True), cont=cont)
    assert choice.name == "segments" and rule_of(choice) == rule("segments", "_few_restarts")
    cont[1:, 0] = 0  # every step restarts: more than max(4, T // 8)
    assert which_kernel(x, weights(grad=True), cont=cont).name == "loop"


@pytest.mark.parametrize("case", ["peepholes", "named activations", "clip", "holes", "empty", "bidirectional mask"])
def test_everything_else_runs_the_loop(case):
    x = torch.randn(6, 2, 2)
    kw = {}
    ws = weights(grad=True)
    if case == "peepholes":
        ws = weights(grad=True, peephole=lambda H, dtype: torch.zeros(3, H, dtype=dtype))
    elif case == "named activations":
        kw["activations"] = ("hard_sigmoid_keras2", "tanh", "tanh")
    elif case == "clip":
        kw["cell_clip"] = 1.0
    elif case == "holes":
        kw["mask"] = torch.tensor([[1.0, 0.0], [0.0, 1.0]] * 3)
    elif case == "empty":
        kw["lengths"] = torch.tensor([0, 0])
    elif case == "bidirectional mask":
        ws = [(ws[0], weights(grad=True, seed=1)[0])]
        kw.update(mask=torch.ones(6, 2), direction="bidirectional")
    choice = which_kernel(x, ws, **kw)
    assert choice.name == "loop" and rule_of(choice) == len(SELECTION) - 1


# ------------------------------------------------------------------------------ dropout masks inside the cell
def _cell_masks(B, n_in=2, H=3, T=None, input_per_step=False):
    """Per-gate input and one recurrent mask (Keras's implementation=1), or per-step input masks only."""
    g = torch.Generator().manual_seed(5)
    if input_per_step:
        return CellMasks(((torch.rand(T, B, n_in, generator=g) > 0.3).float() / 0.7,), input_per_step=True)
    return CellMasks(((torch.rand(4, B, n_in, generator=g) > 0.3).float() / 0.7,),
                     ((torch.rand(B, H, generator=g) > 0.4).float() / 0.6,))


@pytest.mark.parametrize("kernel", ["fused", "packed", "segments", "compiled", "first", "checked"])
def test_kernels_that_cannot_apply_cell_masks_refuse_them_with_the_reason(kernel):
    """One step from no state of the plain LSTM: every kernel but the loop could run it, were it not for the masks."""
    x = torch.randn(1, 2, 2)
    with pytest.raises(KernelError, match=f"kernel='{kernel}' cannot run this call: the [a-z-]+ kernel applies no "
                                          r"dropout masks inside the cell \(on the input per gate block or on "
                                          r"h_\(t-1\)\); the step loop does"):
        lstm(x, weights(), cell_masks=_cell_masks(2), kernel=kernel)


@pytest.mark.parametrize("T, grad, row", [(1, False, ("loop", "_one_cpu_step")), (1, True, ("loop", "_one_cpu_step")),
                                          (6, True, ("loop", "_always"))])
def test_cell_masks_run_on_the_loop(T, grad, row):
    """The rows before the loop's pass over a call with cell masks (their kernels refuse it): one CPU step runs
    on the loop's one-step row, a sequence on the last row."""
    x = torch.randn(T, 2, 2)
    choice = which_kernel(x, weights(grad=grad), cell_masks=_cell_masks(2))
    assert choice.name == "loop" and rule_of(choice) == rule(*row)


def test_per_step_input_masks_alone_keep_the_fused_kernel():
    """Per-step input masks (tf-keras's fused path) multiply the input before any kernel: the call the selection
    sees has no cell masks, and the plain dense sequence runs fused."""
    x = torch.randn(6, 2, 2)
    choice = which_kernel(x, weights(grad=True), cell_masks=_cell_masks(2, T=6, input_per_step=True))
    assert choice.name == "fused" and rule_of(choice) == rule("fused", "_always")


# ----------------------------------------------------------------------------------------- forcing one
def test_a_forced_kernel_that_cannot_run_the_call_says_why():
    x = torch.randn(6, 2, 2)
    with pytest.raises(KernelError, match=r"kernel='fused' cannot run this call: .*peepholes"):
        lstm(x, weights(peephole=lambda H, dtype: torch.zeros(3, H, dtype=dtype)), kernel="fused")
    with pytest.raises(KernelError, match="the segments kernel runs a cont input"):
        lstm(x, weights(), kernel="segments")
    with pytest.raises(KernelError, match="the compiled loop runs one direction"):
        lstm(x, [(weights()[0], weights(seed=1)[0])], direction="bidirectional", kernel="compiled")
    with pytest.raises(ValueError, match=r"kernel must be 'auto' or one of \['fused', 'packed'"):
        lstm(x, weights(), kernel="cudnn")


def test_cell_values_are_validated_once():
    with pytest.raises(CellError, match="gate_order"):
        Cell(gate_order="ifgx")
    with pytest.raises(CellError, match="family"):
        Cell(family="transformer")
    with pytest.raises(CellError, match="cell_clip must be > 0"):
        Cell(cell_clip=0)
    with pytest.raises(ValueError, match="triple"):
        Cell(activations=("sigmoid", "tanh"))
    cell = Cell(preact_grad_clip=1, gate_order="ifog")
    assert cell.preact_grad_clip == 1.0 and cell.gate_index == (0, 1, 3, 2) and cell.gradient_quirks
    with pytest.raises(ValueError, match="not beside it"):
        lstm(torch.randn(3, 1, 2), weights(), cell=cell, cell_clip=1.0)


# ------------------------------------------------------------------------- every kernel, the same numbers
KERNEL_SEMANTICS = {"fused": {}, "segments": {"cont": True}, "packed": {"lengths": True}, "compiled": {"cont": True},
                    "checked": {"cont": True, "quirks": True}}


@pytest.mark.parametrize("kernel", sorted(KERNEL_SEMANTICS) + ["compiled, input term by torch"])
@given(order=st.sampled_from(["".join(p) for p in itertools.permutations("ifgo")]), T=st.integers(1, 6),
       B=st.integers(1, 3), H=st.integers(1, 4), layers=st.integers(1, 2), seed=st.integers(0, 2 ** 31 - 1),
       dtype=st.sampled_from([torch.float64, torch.float32]))
def test_each_kernel_equals_the_loop_in_any_gate_order(kernel, order, T, B, H, layers, seed, dtype):
    """The weights' gate blocks stored in ``order``: each kernel (on the semantics it runs) gives the step
    loop's outputs, final states and gradients of every input and weight. The compiled loop computes a tiny
    layer's input term itself, a larger one's with torch: both ways here."""
    from unittest import mock

    from compat.recurrent import compiled

    if kernel.startswith("compiled") and not fastloop.available():
        pytest.skip("compat.fastloop is unavailable here")
    input_by_torch = kernel.startswith("compiled, ")
    kernel = kernel.split(",")[0]
    limit = 0 if input_by_torch else compiled.INPUT_IN_LOOP_MAX
    note(f"{kernel} order={order} T={T} B={B} H={H} layers={layers} {dtype}")
    sem = KERNEL_SEMANTICS[kernel]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, 2, generator=g, dtype=torch.float64).to(dtype)
    ws = weights(H=H, layers=layers, dtype=torch.float64, seed=seed)
    hx = tuple(torch.randn(layers, B, H, generator=g, dtype=torch.float64).to(dtype) for _ in range(2))
    kw = {"gate_order": order}
    if sem.get("cont"):
        kw["cont"] = (torch.rand(T, B, generator=g) > 0.3).to(dtype)
    if sem.get("lengths"):
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = T
        kw["lengths"] = lengths
    if sem.get("quirks"):
        kw.update(preact_grad_clip=0.05, recurrent_weight_grad_ignores_cont=True)
    index = torch.cat([torch.arange(order.index(c) * H, (order.index(c) + 1) * H) for c in "ifgo"])
    inverse = torch.empty_like(index)
    inverse[index] = torch.arange(4 * H)
    stored = [LayerWeights(*[None if t is None else t.detach().index_select(0, inverse).to(dtype) for t in w])
              for w in ws]  # rows in ``order``
    runs = {}
    for name in (kernel, "loop"):
        leaves = [x.clone().requires_grad_()] + [s.clone().requires_grad_() for s in hx]
        params = [LayerWeights(*[None if t is None else t.clone().requires_grad_() for t in w]) for w in stored]
        with mock.patch.object(compiled, "INPUT_IN_LOOP_MAX", limit):
            out, (h_n, c_n) = lstm(leaves[0], params, (leaves[1], leaves[2]), kernel=name, **kw)
        up = torch.Generator().manual_seed(seed + 1)
        total = sum((t * torch.randn(t.shape, generator=up, dtype=torch.float64).to(dtype)).sum()
                    for t in (out, h_n, c_n))
        grads = torch.autograd.grad(total, leaves + [t for w in params for t in w if t is not None])
        runs[name] = [out, h_n, c_n, *grads]
    loosen = dict(loosen=10, reason="float32 gradients summed in another order") if dtype == torch.float32 else {}
    for k, (a, b) in enumerate(zip(runs[kernel], runs["loop"])):
        assert_close(a, b, msg=f"{kernel} vs loop, result {k}", **(loosen if k >= 3 else {}))


@given(T=st.integers(2, 7), B=st.integers(1, 3), seed=st.integers(0, 2 ** 31 - 1))
def test_unread_padding_gives_the_masked_outputs_at_every_valid_step(T, B, seed):
    """past_end="unread": no final state, the outputs at valid steps the masked scan's (the padded ones free)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, 2, generator=g, dtype=torch.float64)
    lengths = torch.randint(0, T + 1, (B,), generator=g)
    mask = (torch.arange(T).unsqueeze(1) < lengths).double()
    ws = weights(dtype=torch.float64)
    out, state = lstm(x, ws, mask=mask, past_end="unread")
    ref, _ = lstm(x, ws, mask=mask, kernel="loop")
    assert state is None
    assert_close(out * mask.unsqueeze(2), ref * mask.unsqueeze(2))
    with pytest.raises(ValueError, match="past_end"):
        lstm(x, ws, mask=mask, past_end="ignored")


@given(T=st.integers(2, 7), B=st.integers(1, 3), seed=st.integers(0, 2 ** 31 - 1),
       family=st.sampled_from(["lstm", "gru", "rnn"]),
       direction=st.sampled_from(["forward", "reverse", "bidirectional"]),
       kernel=st.sampled_from(["auto", "fused", "packed", "compiled", "loop"]))
def test_unread_lengths_give_the_masked_outputs_and_gradients_at_every_valid_step(T, B, seed, family, direction,
                                                                                  kernel):
    """past_end="unread" with lengths (given on the host): on every kernel that runs it, the outputs at valid
    steps and the gradients of a loss that reads only those are the step loop's over the right-padded mask
    (forward; reverse and bidirectional: the lengths' own semantics, each valid prefix read back to front)."""
    from compat.gru import gru
    from compat.simple_rnn import simple_rnn

    g = torch.Generator().manual_seed(seed)
    D = 2 if direction == "bidirectional" else 1
    G = {"lstm": 4, "gru": 3, "rnn": 1}[family]
    H = 3
    tensors = [torch.randn(G * H, 2, generator=g, dtype=torch.float64), torch.randn(G * H, H, generator=g,
               dtype=torch.float64), torch.randn(G * H, generator=g, dtype=torch.float64), None]
    ws = [LayerWeights(*[None if t is None else t.requires_grad_() for t in tensors])]
    if D == 2:
        back = LayerWeights(*[t if t is None else (t * 0.7).detach().requires_grad_() for t in tensors])
        ws = [(ws[0], back)]
    x = torch.randn(T, B, 2, generator=g, dtype=torch.float64, requires_grad=True)
    lengths = torch.randint(0, T + 1, (B,), generator=g)
    live = (torch.arange(T).unsqueeze(1) < lengths).double().unsqueeze(2)
    run = {"lstm": lstm, "gru": gru, "rnn": simple_rnn}[family]
    reference = dict(mask=live[..., 0]) if direction == "forward" else dict(lengths=lengths)

    def grads_of(**kw):
        out, state = run(x, ws, direction=direction, **kw)
        leaves = [x] + [t for w in (ws[0] if D == 2 else ws) for t in w if t is not None]
        return out * live, state, torch.autograd.grad((out * live).sum(), leaves)

    try:
        got, state, got_grads = grads_of(lengths=lengths.tolist(), past_end="unread", kernel=kernel)
    except KernelError as exc:  # a kernel that does not run this family or direction says so
        note(str(exc))
        empty = kernel == "packed" and not bool(lengths.any())  # nothing to pack
        assert kernel not in ("auto", "loop") and (kernel == "compiled" or D == 2 or empty), exc
        return
    want, _, want_grads = grads_of(kernel="loop", **reference)
    assert state is None
    assert_close(got, want)
    for k, (a, b) in enumerate(zip(got_grads, want_grads)):
        assert_close(a, b, msg=f"gradient {k}")


# ------------------------------------------------------------------ the first step from no state
@given(order=st.sampled_from(["".join(p) for p in itertools.permutations("ifgo")]), B=st.integers(1, 4),
       H=st.integers(1, 5), n_in=st.integers(1, 4), layers=st.integers(1, 3), seed=st.integers(0, 2 ** 31 - 1),
       dtype=st.sampled_from([torch.float64, torch.float32]), read=st.sampled_from(["all", "output", "state"]),
       biases=st.sampled_from(["both", "ih", "none"]), cont=st.booleans())
def test_first_step_equals_the_loop_and_the_oracle(order, B, H, n_in, layers, seed, dtype, read, biases, cont):
    """One step from no initial state on the first-step kernel: the step loop's output, final state and
    gradients of the input and every weight (W_hh's and the forget rows' 0 included), whichever of the
    results the loss reads; the output and state also torch.nn.LSTM's, by the numpy oracle."""
    from reference import torch_lstm

    note(f"order={order} B={B} H={H} in={n_in} layers={layers} {dtype} read={read} biases={biases}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, B, n_in, generator=g, dtype=torch.float64).to(dtype)
    ws = weights(H=H, n_in=n_in, layers=layers, dtype=torch.float64, seed=seed)
    drop = {"both": {}, "ih": {"bias_hh": None}, "none": {"bias_ih": None, "bias_hh": None}}[biases]
    ws = [w._replace(**drop) for w in ws]
    index = torch.cat([torch.arange(order.index(c) * H, (order.index(c) + 1) * H) for c in "ifgo"])
    inverse = torch.empty_like(index)
    inverse[index] = torch.arange(4 * H)
    stored = [LayerWeights(*[None if t is None else t.index_select(0, inverse).to(dtype) for t in w]) for w in ws]
    kw = {"gate_order": order}
    if cont:
        kw["cont"] = torch.zeros(1, B, dtype=dtype)  # scales the zero state: nothing changes
    runs = {}
    for name in ("first", "loop"):
        leaf = x.clone().requires_grad_()
        params = [LayerWeights(*[None if t is None else t.clone().requires_grad_() for t in w]) for w in stored]
        out, (h_n, c_n) = lstm(leaf, params, kernel=name, **kw)
        up = torch.Generator().manual_seed(seed + 1)
        read_now = {"all": (out, h_n, c_n), "output": (out,), "state": (h_n, c_n)}[read]
        total = sum((t * torch.randn(t.shape, generator=up, dtype=torch.float64).to(dtype)).sum() for t in read_now)
        grads = torch.autograd.grad(total, [leaf] + [t for w in params for t in w if t is not None])
        runs[name] = [out, h_n, c_n, *grads]
    for k, (a, b) in enumerate(zip(runs["first"], runs["loop"])):
        assert_close(a, b, msg=f"first vs loop, result {k}")
    n = sum(t is not None for t in stored[0])
    for k in range(layers):
        assert not runs["first"][4 + k * n + 1].any()  # W_hh: dz^T h_prev with h_prev = 0
        rows = slice(order.index("f") * H, (order.index("f") + 1) * H)
        assert not runs["first"][4 + k * n][rows].any()  # the forget gate's rows of W_ih
    oracle = [{name: getattr(w, name).double().numpy() for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
               if getattr(w, name) is not None} for w in ws]
    ref_out, (ref_h, ref_c) = torch_lstm.lstm(x.double().numpy(), oracle)
    for a, b in ((runs["first"][0], ref_out), (runs["first"][1], ref_h), (runs["first"][2], ref_c)):
        assert_close(a, torch.from_numpy(b).to(dtype), msg="first vs oracle")


def test_first_step_backward_is_the_numerical_gradient():
    """The hand-written backward against finite differences (float64), every input and weight."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    ws = weights(H=3, n_in=2, layers=2, dtype=torch.float64, grad=True, seed=5)
    leaves = [t for w in ws for t in w if t is not None]

    def f(x, *flat):
        layers = [LayerWeights(*flat[4 * k:4 * k + 4]) for k in range(2)]
        out, (h_n, c_n) = lstm(x, layers, kernel="first")
        return out, h_n, c_n

    assert torch.autograd.gradcheck(f, (x, *leaves))


def test_first_step_final_state_may_be_changed_in_place():
    """h_n and c_n are the caller's: changing them in place leaves the output's gradients as they were."""
    x = torch.randn(1, 3, 2, dtype=torch.float64)
    ws = weights(H=3, n_in=2, layers=2, dtype=torch.float64, grad=True, seed=7)
    leaves = [t for w in ws for t in w if t is not None]
    out, _ = lstm(x, ws, kernel="first")
    expected = torch.autograd.grad(out.sum(), leaves)
    out, (h_n, c_n) = lstm(x, ws, kernel="first")
    h_n.mul_(2)
    c_n.zero_()
    for a, b in zip(torch.autograd.grad(out.sum(), leaves), expected):
        assert torch.equal(a, b)


# ------------------------------------------------------------------- a layout handed over as stored
@pytest.mark.parametrize("forget_bias", [0.0, 1.0])
def test_tf_weights_as_stored_run_bit_for_bit_as_converted(forget_bias):
    """A TF kernel handed over as views in TF's gate order (i, j, f, o) gives, on the fused kernel (which
    gathers them into the canonical order, as compat.layouts' conversion does), exactly what the converted
    weights give: the same tensors reach the same operations. (The step loop multiplies by the views as
    stored, in another memory order than the converted copies: the same numbers to rounding.)"""
    g = torch.Generator().manual_seed(3)
    H, n_in, T, B = 5, 4, 6, 3
    kernel = torch.randn(n_in + H, 4 * H, generator=g, requires_grad=True)
    bias = torch.randn(4 * H, generator=g, requires_grad=True)
    x = torch.randn(T, B, n_in, generator=g)
    forget = None
    if forget_bias:
        forget = torch.zeros(4 * H)
        forget[2 * H:3 * H] = forget_bias
    stored = LayerWeights(kernel[:n_in].t(), kernel[n_in:].t(), bias, forget)
    for name in ("fused", "loop"):
        converted = to_canonical("tf", {"kernel": kernel, "bias": bias}, forget_bias=forget_bias)
        a_out, (a_h, a_c) = lstm(x, [converted], kernel=name)
        b_out, (b_h, b_c) = lstm(x, [stored], gate_order="igfo", kernel=name)
        ga = torch.autograd.grad(a_out.sum(), [kernel, bias])
        gb = torch.autograd.grad(b_out.sum(), [kernel, bias])
        for a, b in ((a_out, b_out), (a_h, b_h), (a_c, b_c), *zip(ga, gb)):
            if name == "fused":
                assert torch.equal(a, b)
            else:
                assert_close(a, b, msg=name)


@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("how", ["packed", "packed bidirectional", "unread", "unread reverse"])
def test_lengths_on_the_host_read_no_device_value(family, how):
    """With the lengths given on the host, the packed kernel (outputs past the ends read) and the dense run
    (``past_end="unread"``) read no value of the device, forward and backward, and copy nothing to it that
    waits for it (tests/host_sync.py: the device is torch's meta device)."""
    from compat.gru import gru
    from compat.simple_rnn import simple_rnn
    from tests.host_sync import META, run_without_host_sync

    G = {"lstm": 4, "gru": 3, "rnn": 1}[family]
    run = {"lstm": lstm, "gru": gru, "rnn": simple_rnn}[family]
    D = 2 if "bidirectional" in how else 1
    one = [torch.zeros(G * 3, 2, device=META, requires_grad=True), torch.zeros(G * 3, 3, device=META,
           requires_grad=True), torch.zeros(G * 3, device=META, requires_grad=True), None]
    ws = [(one, [t if t is None else t.detach().clone().requires_grad_() for t in one])] if D == 2 else [one]
    x = torch.zeros(6, 3, 2, device=META, requires_grad=True)
    direction = "bidirectional" if D == 2 else ("reverse" if "reverse" in how else "forward")
    past_end = "unread" if how.startswith("unread") else None
    kernel = "packed" if how.startswith("packed") else "fused"

    def step():
        out, _ = run(x, ws, lengths=[6, 2, 0], direction=direction, past_end=past_end, kernel=kernel)
        out.sum().backward()
        return out

    out = run_without_host_sync(step, f"the {how} run", copies="non_blocking")
    assert out.shape == (6, 3, 3 * D) and x.grad is not None and x.grad.device == META


@pytest.mark.parametrize("with_masks", [False, True])
def test_which_kernel_refuses_a_packed_sequence_by_name(with_masks):
    """which_kernel plans a dense x; a PackedSequence (which run() takes) gets one clear error, with or without
    cell masks, not an AttributeError from inside."""
    from torch.nn.utils.rnn import pack_padded_sequence

    w = LayerWeights(torch.randn(8, 3), torch.randn(8, 2), torch.randn(8), None)
    packed = pack_padded_sequence(torch.randn(4, 2, 3), torch.tensor([4, 2]))
    masks = CellMasks(input=(torch.ones(2, 3),)) if with_masks else None
    with pytest.raises(ValueError, match="planned for a dense x"):
        which_kernel(packed, [w], cell_masks=masks)
    out, _ = lstm(packed, [w])  # run() takes it
    assert out.data.shape == (6, 2)
