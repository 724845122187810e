"""A training step captured whole in one CUDA graph, and the per-step values it leaves on the device.

Small recurrent models spend most of an eager CUDA step launching kernels: the PTB small model's whole
training step ran about 83k tokens/s eagerly on an H100 and about 418k captured in one graph. A step can be
captured when it never waits for the device (no ``.item()``, ``float()``, ``bool()`` of a device tensor, no
copy from pageable host memory), keeps every tensor it reads or writes at one address from call to call,
and has the same shapes every call. The ports describe such a step (a sync-free form of their training step:
inputs copied into static buffers, the carried state copied back into static buffers, the cost and the
global norm returned as device tensors, the learning rate a device tensor); this module decides whether it
is captured (:func:`capture_reason`, the one place) and runs it (:func:`step_runner`):

- eager: the step is called as it is;
- captured (``torch.cuda.CUDAGraph``): the first ``warmup`` calls run eagerly on a side stream (real
  training steps: they build the optimizer's state, cuDNN's plans and the caching allocator's blocks), the
  next call captures the step and replays it once, and every later call replays it. Random numbers drawn
  inside (dropout) come from torch's CUDA generator, which CUDA graphs advance at each replay by the
  capture's whole increment (aten's ``CUDAGeneratorState::replay_prologue``), so ``torch.cuda.get_rng_state()``
  after N replays is the state after N eager steps.

An evaluation step (no gradient, no update) is captured the same way (ports/tf_ptb/train.py
``SyncFreeEvalStep``).

The values a step leaves on the device are read back in batches (:class:`DeviceLog`): one transfer at the
points where a program has to show them, not one wait per step.
"""
from __future__ import annotations

from typing import Callable, Iterable, List, Optional, Sequence, TypeVar

import torch
from torch import Tensor

#: ``--cuda-graph``'s values: "auto" captures on CUDA where :func:`capture_reason` allows it; "off" runs eagerly.
CUDA_GRAPH_MODES = ("auto", "off")
#: Eager calls before the capture (torch's advice for whole-network capture: a few, on a side stream).
WARMUP_CALLS = 3

T = TypeVar("T")


def add_cuda_graph_argument(parser) -> None:
    """``--cuda-graph {auto,off}`` on a port's parser (or a subcommand's)."""
    parser.add_argument("--cuda-graph", default="auto", choices=list(CUDA_GRAPH_MODES),
                        help="auto: on a CUDA device, run each training step (and the PTB port's evaluation steps) as "
                             "one captured CUDA graph where the step allows it (the same numbers, far fewer kernel "
                             "launches); off: eager steps")


def capture_reason(mode: str, device, *, static_shapes: bool = True, blockers: Sequence[str] = ()) -> Optional[str]:
    """Why a step described so is not captured (None: it is). ``mode``: a :data:`CUDA_GRAPH_MODES` value;
    ``device``: where the step runs; ``static_shapes``: every call has the same shapes; ``blockers``: the
    step's own reasons (a semantics that reads a value on the host), from the port."""
    if mode not in CUDA_GRAPH_MODES:
        raise ValueError(f"cuda_graph must be one of {CUDA_GRAPH_MODES}, not {mode!r}")
    if mode == "off":
        return "capture switched off (cuda_graph='off')"
    device = torch.device(device)
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device; the step runs on {device}"
    if not torch.cuda.is_available():
        return "no CUDA device is available"
    if not static_shapes:
        return "the step's shapes change from call to call (a graph replays fixed shapes)"
    for reason in blockers:
        if reason:
            return reason
    return None


class CapturedStep:
    """``step()`` run eagerly ``warmup`` times on a side stream, then captured in a CUDA graph and replayed.

    ``step`` takes no arguments: it reads its inputs from static buffers and returns device tensors (the same
    tensors at every replay: copy or log them before the next call). ``host_effects``: what the step does on
    the host besides launching kernels (an optimizer's Python step counter), done again after every replay,
    which repeats the kernels only."""

    def __init__(self, step: Callable[[], T], warmup: int = WARMUP_CALLS,
                 host_effects: Optional[Callable[[], None]] = None):
        if warmup < 1:
            raise ValueError(f"warmup must be at least 1 (the capture needs a step run before it), got {warmup}")
        self.step, self.warmup, self.host_effects = step, warmup, host_effects
        self.calls = 0
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.outputs = None
        self._side = torch.cuda.Stream()

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self) -> T:
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
            if self.host_effects is not None:
                self.host_effects()
            return self.outputs
        current = torch.cuda.current_stream()
        self._side.wait_stream(current)
        if self.calls <= self.warmup:
            with torch.cuda.stream(self._side):
                out = self.step()
            current.wait_stream(self._side)
            return out
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self._side):
            self.outputs = self.step()
        self.graph = graph
        graph.replay()  # the capture recorded the step without running it
        return self.outputs


def step_runner(step: Callable[[], T], mode: str, device, *, static_shapes: bool = True,
                blockers: Sequence[str] = (), warmup: int = WARMUP_CALLS,
                host_effects: Optional[Callable[[], None]] = None) -> Callable[[], T]:
    """``step`` as it runs: a :class:`CapturedStep` where :func:`capture_reason` allows, else ``step`` itself."""
    if capture_reason(mode, device, static_shapes=static_shapes, blockers=blockers) is None:
        return CapturedStep(step, warmup, host_effects)
    return step


class DeviceLog:
    """Per-step scalars (a step's cost) kept on the device and read back in one transfer.

    ``append(value)`` copies a 0-dim device tensor into the next slot (a device-to-device copy, no wait);
    :meth:`read` returns the values appended since the last read as Python floats (one transfer) and empties
    the log. ``full`` says when the caller must read before the next append."""

    def __init__(self, capacity: int, dtype: torch.dtype, device):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.values = torch.zeros(capacity, dtype=dtype, device=device)
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count == self.values.shape[0]

    def __len__(self) -> int:
        return self.count

    def append(self, value: Tensor) -> None:
        if self.full:
            raise RuntimeError(f"DeviceLog is full ({self.count} values): read() it first")
        self.values[self.count].copy_(value.detach().reshape(()))
        self.count += 1

    def read(self) -> List[float]:
        out = self.values[:self.count].tolist() if self.count else []
        self.count = 0
        return out


def copy_into(buffers: Iterable[Tensor], values: Iterable[Tensor]) -> None:
    """Each buffer's contents replaced by the value's (a static buffer keeps its address)."""
    with torch.no_grad():
        for buf, value in zip(buffers, values):
            buf.copy_(value)


__all__ = ["CUDA_GRAPH_MODES", "WARMUP_CALLS", "CapturedStep", "DeviceLog", "add_cuda_graph_argument",
           "capture_reason", "copy_into", "step_runner"]
