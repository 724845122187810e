"""The seam every recurrent kernel sits behind: the core receives what the computation is, one selector
decides how to run it.

- :mod:`compat.recurrent.cell`: :class:`Cell`, the semantics of one step (family, activations, clips,
  variants, gate order, legacy gradient quirks) as one validated, immutable value;
- :mod:`compat.recurrent.call`: :class:`Call`, one run as the kernels see it (the cell, the weights,
  the inputs and the sequence semantics: ``cont``, ``mask``, ``lengths``, direction, dropout, what the
  caller reads past each sequence's end);
- :mod:`compat.recurrent.select`: the table of kernels, each saying what it can run, and the selection
  rules, in one place; ``kernel=`` forces one;
- the kernels: :mod:`~compat.recurrent.fused` (torch's fused kernel: dense, packed, segments),
  :mod:`~compat.recurrent.compiled` (the C loop of :mod:`compat.fastloop`),
  :mod:`~compat.recurrent.checked` (the fused kernel with the junhyukoh gradient quirks checked),
  :mod:`~compat.recurrent.loop` (the step loop, every semantics);
- :mod:`compat.recurrent.run`: the driver from the caller's tensors to the kernel.

A family's front end validates its weights and state and calls :func:`run`: :mod:`compat.lstm` for the
LSTM. A new family (GRU, simple RNN) adds its name to :data:`cell.FAMILIES`, a front end, and its kernels
to the table; the sequence semantics, the driver and the selection stay as they are.
"""
from compat.recurrent.cell import Cell, CellError
from compat.recurrent.run import plan, run
from compat.recurrent.select import KERNELS, SELECTION, Choice, KernelError, select

__all__ = ["Cell", "CellError", "Choice", "KERNELS", "KernelError", "SELECTION", "plan", "run", "select"]
