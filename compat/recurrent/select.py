"""Which kernel runs a call: the table of kernels and the selection rules, in one place.

Every kernel says what it can run (``supports(call)``: None, or the reason it cannot). The selection is
:data:`SELECTION`, read top to bottom: the first row whose kernel supports the call and whose condition
holds runs it. ``kernel="<name>"`` skips the table and runs that kernel, or raises :class:`KernelError`
with its reason. Nothing else chooses: ports and modules describe their computation (the cell, the
sequence semantics) and never name a kernel.

    kernel     what it is                                                                families
    fused      torch's fused kernel over the dense sequence (cuDNN on CUDA, oneDNN or    LSTM, GRU, RNN
               ATen on the CPU): torch.lstm, torch.gru, torch.rnn_tanh / rnn_relu
    packed     the fused kernel over a packed sequence: lengths, or a right-padded mask  LSTM, GRU, RNN
    segments   the fused kernel once per stretch between cont's restarts                 LSTM, GRU, RNN
    compiled   compat.fastloop: a C loop per layer (CPU, float32/float64; a C compiler)  LSTM
    first      one step from no initial state: the input product and the i, g, o gates,  LSTM
               the stack one autograd node (compat/recurrent/first.py)
    checked    torch.lstm per layer with the junhyukoh gradient quirks checked           LSTM
    loop       the step loop in Python: every cell and semantics, and the dropout masks  LSTM, GRU, RNN
               inside the cell (the reference)

A kernel runs only its families (:func:`supports` asks first) and, of the GRU and the simple RNN, the fused
forms run only PyTorch's own cells: the GRU with the reset after the product, sigmoid and tanh, no clip;
the tanh or relu RNN without a clip. A reset-before GRU (TF1, Keras reset_after=False, ONNX
linear_before_reset=0) always runs on the step loop: in seven operations per step it keeps 0.8-1.1x of
the fused reset-after GRU's speed at the PTB and IMDB sizes (docs/performance.md), so no compiled GRU loop.
Dropout masks inside the cell (``Call.cell_masks``: Keras's ``dropout`` / ``recurrent_dropout``, per gate
or one for all, reused at every step) run on the step loop only: every other kernel refuses them. Per-step
input masks (tf-keras's fused path) are not among them: the driver multiplies the input by them before
the call reaches the selection, so any kernel may run it.

The rules' reasons are measured (docs/performance.md); each rule has a test (tests/test_kernels.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, NamedTuple, Optional

import torch

from compat.recurrent.call import Call
from compat.recurrent.cell import FAMILY_NAMES
from compat.recurrent.checked import CHECKED
from compat.recurrent.compiled import COMPILED
from compat.recurrent.first import FIRST
from compat.recurrent.fused import FUSED, PACKED, SEGMENTS
from compat.recurrent.loop import LOOP

#: name -> kernel, the names ``kernel=`` takes ("auto": the selection below).
KERNELS: Dict[str, object] = {k.name: k for k in (FUSED, PACKED, SEGMENTS, COMPILED, FIRST, CHECKED, LOOP)}

# Up to this hidden size the compiled loop beats torch's float64 graph at one thread (IMDB's 128 measured).
COMPILED_FLOAT64_MAX_HIDDEN = 128


class KernelError(ValueError):
    """``kernel=`` names no kernel, or a kernel that cannot run the call (the message says why)."""


@dataclass(frozen=True)
class Rule:
    kernel: str
    when: Callable[[Call], bool]
    why: str


def _always(call: Call) -> bool:
    return True


def _one_cpu_step_without_grad(call: Call) -> bool:
    return call.steps == 1 and call.on_cpu and not call.needs_grad


def _one_cpu_step_from_zero(call: Call) -> bool:
    return call.steps == 1 and call.on_cpu and call.zero_state


def _one_cpu_step(call: Call) -> bool:
    return call.steps == 1 and call.on_cpu


def _quirks_with_grad(call: Call) -> bool:
    return call.cell.gradient_quirks and call.needs_grad


def _float64_on_one_thread(call: Call) -> bool:
    return (call.x.dtype == torch.float64 and torch.get_num_threads() == 1
            and call.hidden_size <= COMPILED_FLOAT64_MAX_HIDDEN)


def _few_restarts(call: Call) -> bool:
    return len(call.restarts) <= max(4, call.steps // 8)


def _quirks_with_grad_few_restarts(call: Call) -> bool:
    return _quirks_with_grad(call) and _few_restarts(call)


#: The selection, top to bottom: the first row whose kernel supports the call and whose condition holds.
SELECTION = (
    Rule("compiled", _one_cpu_step_without_grad,
         "one step on the CPU without autograd (a sampler's or an evaluation's step): the fused kernel repacks "
         "its weights on every call, which costs more than the step"),
    Rule("first", _one_cpu_step_from_zero,
         "one step on the CPU from no initial state (the TF book's sine regressor): no recurrent product, no "
         "forget gate, the stack one autograd node; 1.2x the step loop's training step there"),
    Rule("loop", _one_cpu_step, "one step on the CPU: the step loop repacks nothing"),
    Rule("compiled", _quirks_with_grad,
         "the junhyukoh gradient quirks with a gradient: the compiled loop applies them inside, in one pass"),
    Rule("compiled", _float64_on_one_thread,
         "float64 where torch runs on one thread, H <= 128: torch has no oneDNN float64 LSTM and runs a graph "
         "of per-step operations; the compiled loop is single-threaded, and that graph overtakes it from two "
         "threads"),
    Rule("fused", _always, "the plain LSTM over a dense sequence"),
    Rule("packed", _always, "right-padded sequences"),
    Rule("segments", _few_restarts,
         "cont restarting streams at few steps (at most max(4, T // 8)): one fused call per stretch; past "
         "that the step loop is as fast"),
    Rule("checked", _quirks_with_grad_few_restarts,
         "the gradient quirks with a gradient where the compiled loop is unavailable (CUDA, no C compiler), cont "
         "restarting streams at few steps: the fused kernel per stretch, the quirks checked in backward"),
    Rule("loop", _always, "everything else: the step loop runs every cell and semantics"),
)


class Choice(NamedTuple):
    kernel: object
    rule: Optional[Rule]  # None where kernel= named it

    @property
    def name(self) -> str:
        return self.kernel.name


def supports(kernel, call: Call) -> Optional[str]:
    """``kernel``'s answer to the call: None where it can run it, else why not (first: the cell's family)."""
    if call.cell.family not in kernel.families:
        return f"the {kernel.name} kernel runs the {' and '.join(FAMILY_NAMES[f] for f in kernel.families)}"
    return kernel.supports(call)


def reasons(call: Call) -> Dict[str, Optional[str]]:
    """Every kernel's answer to the call: None where it can run it, else why not."""
    return {name: supports(k, call) for name, k in KERNELS.items()}


def select(call: Call, kernel: str = "auto") -> Choice:
    """The kernel that runs ``call``: by :data:`SELECTION`, or the one ``kernel`` names."""
    if kernel != "auto":
        chosen = KERNELS.get(kernel)
        if chosen is None:
            raise KernelError(f"kernel must be 'auto' or one of {list(KERNELS)}, not {kernel!r}")
        reason = supports(chosen, call)
        if reason is not None:
            raise KernelError(f"kernel={kernel!r} cannot run this call: {reason}")
        return Choice(chosen, None)
    refused = set()  # each kernel asked at most once, and only where its row's condition holds
    for rule in SELECTION:
        if rule.kernel in refused or not rule.when(call):
            continue
        chosen = KERNELS[rule.kernel]
        if supports(chosen, call) is None:
            return Choice(chosen, rule)
        refused.add(rule.kernel)
    raise KernelError("no kernel runs this call: " + "; ".join(f"{n}: {r}" for n, r in reasons(call).items()))


__all__ = ["COMPILED_FLOAT64_MAX_HIDDEN", "KERNELS", "SELECTION", "Choice", "KernelError", "Rule", "reasons", "select", "supports"]
