"""CudnnLSTM's opaque parameter buffer (``.../opaque_kernel``, a 1-D variable) in PyTorch's layout.

TF's ``CudnnLSTM`` layer (tensorflow/contrib/cudnn_rnn/python/layers/cudnn_rnn.py) keeps all its
weights in one 1-D variable whose layout is cuDNN's: for each layer and, within a layer, each direction
(forward first), the eight matrices ``W_i, W_f, W_c, W_o`` ([H, in], row-major) and ``R_i, R_f, R_c, R_o``
([H, H]), then the eight bias vectors ``b_Wi .. b_Wo, b_Ri .. b_Ro`` ([H]). That is the order of
``torch.nn.LSTM``'s flat cuDNN buffer (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``,
...), with the same gate order i, f, g, o. ``Saver`` normally writes a CudnnLSTM in TF's canonical form
instead (``cudnn_compatible_lstm_cell``, read by :mod:`compat.convert.tf1`); the opaque buffer appears in
object-based checkpoints.

The buffer does not say its sizes: ``num_units`` must be given (``--cudnn-num-units``), and the number of
layers and the direction when they are not 1 and unidirectional; the input size follows from the length.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from compat import layouts
from compat.convert.spec import LSTMSpec, Unknown
from compat.errors import InputError


class CudnnOpaqueError(InputError, ValueError):
    """An opaque CudnnLSTM buffer whose length does not fit the sizes given."""


def opaque_size(input_size: int, num_units: int, num_layers: int, bidirectional: bool) -> int:
    """Elements of the opaque buffer of an LSTM of these sizes."""
    dirs = 2 if bidirectional else 1
    H = num_units
    first = 4 * H * input_size + 4 * H * H + 8 * H
    rest = 4 * H * (dirs * H) + 4 * H * H + 8 * H
    return dirs * (first + (num_layers - 1) * rest)


def split_opaque(buf: np.ndarray, input_size: int, num_units: int, num_layers: int, bidirectional: bool) -> list:
    """The canonical layers (dicts, pairs for bidirectional) of an opaque buffer."""
    H = num_units
    dirs = 2 if bidirectional else 1
    pos = 0

    def take(n, shape):
        nonlocal pos
        out = buf[pos:pos + n].reshape(shape)
        pos += n
        return np.ascontiguousarray(out)

    layers = []
    for k in range(num_layers):
        n_in = input_size if k == 0 else dirs * H
        ds = []
        for _ in range(dirs):
            tensors = {"weight_ih": take(4 * H * n_in, (4 * H, n_in)), "weight_hh": take(4 * H * H, (4 * H, H)),
                       "bias_ih": take(4 * H, (4 * H,)), "bias_hh": take(4 * H, (4 * H,))}
            ds.append(layouts.to_canonical("torch", tensors))  # cuDNN's layout is torch's: i, f, g, o; two biases
        layers.append(ds[0] if dirs == 1 else (ds[0], ds[1]))
    if pos != buf.size:
        raise CudnnOpaqueError(f"opaque buffer of {buf.size} elements; the sizes given use {pos}")
    return layers


def opaque_specs(ckpt, *, num_units: Optional[int], num_layers: int = 1, bidirectional: bool = False) -> List[LSTMSpec]:
    # "<scope>/opaque_kernel" (Saver) or ".../opaque_kernel/.ATTRIBUTES/VARIABLE_VALUE" (object-based).
    names = sorted(n for n, s in ckpt.shapes.items() if len(s) == 1 and (
        n.rsplit("/", 1)[-1] == "opaque_kernel" or n.endswith("/opaque_kernel/.ATTRIBUTES/VARIABLE_VALUE")))
    specs = []
    for name in names:
        size = ckpt.shapes[name][0]
        if num_units is None:
            raise CudnnOpaqueError(f"{ckpt.location}: {name} is a CudnnLSTM's opaque buffer ({size} elements), which "
                                   "does not store its sizes: give --cudnn-num-units (and --cudnn-num-layers, "
                                   "--cudnn-bidirectional when they apply)")
        H, dirs = num_units, (2 if bidirectional else 1)
        rest = opaque_size(0, H, num_layers, bidirectional)  # everything but the first layer's input matrix
        if H <= 0 or (size - rest) <= 0 or (size - rest) % (dirs * 4 * H):
            raise CudnnOpaqueError(f"{ckpt.location}: {name} has {size} elements, which no input size gives for "
                                   f"num_units={H}, num_layers={num_layers}, "
                                   f"{'bidirectional' if bidirectional else 'unidirectional'}")
        n_in = (size - rest) // (dirs * 4 * H)
        buf = ckpt.tensor(name)
        if buf.dtype.kind != "f":
            raise CudnnOpaqueError(f"{ckpt.location}: {name} is {buf.dtype}; LSTM weights are floating point")
        buf = buf.astype(np.promote_types(buf.dtype, np.float32), copy=False)
        layers = split_opaque(buf, n_in, H, num_layers, bidirectional)
        scope = name.split("/opaque_kernel")[0]
        spec = LSTMSpec(name=scope, source_format="tf1", variant="CudnnLSTM (opaque parameters)", layers=layers,
                        options={"direction": "bidirectional"} if bidirectional else {},
                        unknowns=[Unknown("sizes", "given", f"num_units={H}, num_layers={num_layers}, "
                                                   f"{'bidirectional' if bidirectional else 'unidirectional'} (given); "
                                                   f"input size {n_in} from the buffer's length")],
                        source=[({"buffer": buf},)], oracle="cudnn")
        spec.semantics = {"num_units": H, "num_layers": num_layers, "bidirectional": bidirectional, "input_size": n_in}
        spec.notes.append("cuDNN's layout per layer and direction: W_i..W_o, R_i..R_o, b_W, b_R (gates i, f, c, o)")
        specs.append(spec)
    return specs
