"""The seam every recurrent kernel sits behind: the core receives what the computation is, one selector
decides how to run it.

- :mod:`compat.recurrent.cell`: :class:`Cell`, the semantics of one step (family, activations, clips,
  variants, gate order, legacy gradient quirks) as one validated, immutable value;
- :mod:`compat.recurrent.call`: :class:`Call`, one run as the kernels see it (the cell, the weights,
  the inputs and the sequence semantics: ``cont``, ``mask``, ``lengths``, direction, dropout, what the
  caller reads past each sequence's end);
- :mod:`compat.recurrent.masks`: :class:`CellMasks`, dropout masks inside the cell (Keras's ``dropout`` /
  ``recurrent_dropout``), which only the step loop applies;
- :mod:`compat.recurrent.select`: the table of kernels, each saying what it can run, and the selection
  rules, in one place; ``kernel=`` forces one;
- the kernels: :mod:`~compat.recurrent.fused` (torch's fused kernel: dense, packed, segments),
  :mod:`~compat.recurrent.compiled` (the C loop of :mod:`compat.fastloop`),
  :mod:`~compat.recurrent.first` (one step from no initial state, the stack one autograd node),
  :mod:`~compat.recurrent.checked` (the fused kernel with the junhyukoh gradient quirks checked),
  :mod:`~compat.recurrent.loop` (the step loop, every semantics);
- :mod:`compat.recurrent.run`: the driver from the caller's tensors to the kernel.

A family's front end validates its weights and state and calls :func:`run`: :mod:`compat.lstm` for the
LSTM, :mod:`compat.gru` for the GRU and :mod:`compat.simple_rnn` for the simple RNN (the two share
:mod:`~compat.recurrent.frontend`). Each kernel names the families it runs (``families``); the fused
kernels run each family's plain cell (torch.lstm, torch.gru, torch.rnn_tanh / rnn_relu), the step loop
every cell, the compiled, first-step and checked kernels the LSTM only. The sequence semantics, the driver and the
selection are the same for every family.
"""
from compat.recurrent.cell import Cell, CellError
from compat.recurrent.masks import CellMasks, CellMasksError
from compat.recurrent.run import plan, run
from compat.recurrent.select import KERNELS, SELECTION, Choice, KernelError, select

__all__ = ["Cell", "CellError", "CellMasks", "CellMasksError", "Choice", "KERNELS", "KernelError", "SELECTION", "plan", "run", "select"]
