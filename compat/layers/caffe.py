"""BVLC Caffe's layers around recurrent layers, on torch, with Caffe's exact semantics.

Each module is one Caffe layer type at inference (and, for ``Dropout``, training as Caffe scales it); every
input is a blob as Caffe holds it (batch axes included; no axis is special). The file and function each follows
is BVLC caffe ``src/caffe/layers/<name>_layer.cpp`` (``Reshape`` and ``Forward_cpu``) and
``src/caffe/proto/caffe.proto`` for the defaults. :func:`reshape_top_shape`, :func:`slice_sizes` and
:func:`canonical_axis` are the shape rules the layers' ``Reshape`` functions apply, shared by the modules here
and by the net builders (``ports.caffe_sequence.model.CaffeNet``, the converter's whole nets).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compat.errors import InputError


class CaffeLayerShapeError(InputError, ValueError):
    """A blob whose shape does not fit a Caffe layer's settings (Caffe would stop on a CHECK); names the layer."""


ELTWISE_OPS = ("PROD", "SUM", "MAX")   # caffe.proto EltwiseParameter.EltwiseOp, by value 0, 1, 2


def canonical_axis(axis: int, num_axes: int, what: str = "axis") -> int:
    """blob.hpp ``Blob::CanonicalAxisIndex``: ``axis`` in [-num_axes, num_axes), negative counted from the end."""
    if not -num_axes <= axis < num_axes:
        raise CaffeLayerShapeError(f"{what} {axis} is out of range for a {num_axes}-D blob")
    return axis % num_axes


def reshape_top_shape(bottom: Sequence[int], dims: Sequence[int], axis: int = 0, num_axes: int = -1) -> List[int]:
    """reshape_layer.cpp ``Reshape``: the top's shape for ``reshape_param { shape { dim: ... } axis num_axes }``.

    The dims replace the bottom's axes [start, end) (start = axis, or num_axes + axis + 1 when negative; end =
    start + num_axes, or every axis when num_axes is -1); a 0 copies the bottom's dim at that position, one -1
    is inferred from the count.
    """
    n = len(bottom)
    start = axis if axis >= 0 else n + axis + 1
    if not 0 <= start <= n:
        raise CaffeLayerShapeError(f"reshape axis {axis} is out of range for a {n}-D blob")
    if num_axes < -1:
        raise CaffeLayerShapeError(f"reshape num_axes {num_axes}: must be >= 0, or -1 for all")
    end = n if num_axes == -1 else start + num_axes
    if end > n:
        raise CaffeLayerShapeError(f"reshape axis + num_axes = {end} is out of range for a {n}-D blob")
    if sum(1 for d in dims if d == -1) > 1:
        raise CaffeLayerShapeError("reshape shape contains multiple -1 dims; at most one may be given")
    if any(d < -1 for d in dims):
        raise CaffeLayerShapeError(f"reshape shape {list(dims)} holds a dim below -1")
    top = list(bottom[:start]) + list(dims) + list(bottom[end:])
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= n:
                raise CaffeLayerShapeError(f"reshape shape has a 0 at {i} with no bottom axis {start + i} to copy")
            top[start + i] = bottom[start + i]
    count = 1
    for d in bottom:
        count *= d
    if -1 in dims:
        k = start + list(dims).index(-1)
        explicit = 1
        for j, d in enumerate(top):
            if j != k:
                explicit *= d
        if explicit == 0 or count % explicit:
            raise CaffeLayerShapeError(f"reshape: the bottom's count ({count}) is not divisible by the product of the "
                                       f"given dims ({explicit}); bottom {list(bottom)}, shape {list(dims)}")
        top[k] = count // explicit
    total = 1
    for d in top:
        total *= d
    if total != count:
        raise CaffeLayerShapeError(f"reshape: output count {total} (shape {top}) differs from the input count {count} "
                                   f"(shape {list(bottom)})")
    return top


def slice_sizes(length: int, slice_points: Sequence[int], tops: int) -> List[int]:
    """slice_layer.cpp ``Reshape``: each top's size along the slice axis. With ``slice_point``s (one fewer than
    the tops, strictly increasing) the pieces lie between them; without, the axis splits evenly."""
    if slice_points:
        if len(slice_points) != tops - 1:
            raise CaffeLayerShapeError(f"slice: {len(slice_points)} slice_point(s) for {tops} tops; "
                                       "one fewer than the tops is needed")
        if tops > length:
            raise CaffeLayerShapeError(f"slice: {tops} tops from an axis of {length}")
        sizes, prev = [], 0
        for p in slice_points:
            if p <= prev:
                raise CaffeLayerShapeError(f"slice: slice_point {list(slice_points)} is not strictly increasing "
                                           "from above 0")
            sizes.append(p - prev)
            prev = p
        if length - prev <= 0:
            raise CaffeLayerShapeError(f"slice: slice_point {prev} is beyond the axis of {length}")
        return sizes + [length - prev]
    if length % tops:
        raise CaffeLayerShapeError(f"slice: {tops} tops do not evenly divide the slice axis ({length})")
    return [length // tops] * tops


class Embed(nn.Module):
    """embed_layer.cpp ``Forward_cpu``: ``top[..., :] = weight[int(bottom[...])] + bias``. ``weight`` is
    [input_dim, num_output] (transposed from InnerProduct's, as Caffe stores it), ``bias`` [num_output]. The top
    is the bottom's shape plus num_output. Caffe's blobs hold the ids as floats and cast them with
    ``static_cast<int>`` (truncation toward zero); an id outside [0, input_dim) is refused here (Caffe checks it
    in debug builds only and reads out of bounds otherwise)."""

    def __init__(self, input_dim: int, num_output: int, bias_term: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(input_dim, num_output))
        self.bias = nn.Parameter(torch.zeros(num_output)) if bias_term else None

    def forward(self, ids: Tensor) -> Tensor:
        index = ids.to(torch.int64) if ids.is_floating_point() else ids.long()   # static_cast<int>: truncation
        if index.numel() and not torch.jit.is_tracing() and index.device.type != "meta":
            lo, hi = int(index.min()), int(index.max())
            if lo < 0 or hi >= self.weight.shape[0]:
                raise CaffeLayerShapeError(f"Embed: id {lo if lo < 0 else hi} is outside [0, {self.weight.shape[0]}) "
                                           "(embed_param.input_dim)")
        out = F.embedding(index, self.weight)
        return out if self.bias is None else out + self.bias


class InnerProduct(nn.Module):
    """inner_product_layer.cpp ``Forward_cpu``: the bottom flattened from ``axis`` (axes before it kept, the rest
    folded into K) times ``weight`` [num_output, K] (or [K, num_output] with ``transpose: true``) plus ``bias``;
    the top is the bottom's axes before ``axis`` plus num_output."""

    def __init__(self, in_features: int, num_output: int, bias_term: bool = True, axis: int = 1,
                 transpose: bool = False):
        super().__init__()
        self.axis, self.transpose = axis, transpose
        shape = (in_features, num_output) if transpose else (num_output, in_features)
        self.weight = nn.Parameter(torch.zeros(shape))
        self.bias = nn.Parameter(torch.zeros(num_output)) if bias_term else None

    def forward(self, x: Tensor) -> Tensor:
        axis = canonical_axis(self.axis, x.dim(), "inner_product_param.axis")
        flat = x.reshape(*x.shape[:axis], -1)
        weight = self.weight.t() if self.transpose else self.weight
        if flat.shape[-1] != weight.shape[1]:
            raise CaffeLayerShapeError(f"InnerProduct: the bottom has {flat.shape[-1]} values from axis {axis} "
                                       f"(shape {list(x.shape)}); its weight expects {weight.shape[1]}")
        return F.linear(flat, weight, self.bias)


class Softmax(nn.Module):
    """softmax_layer.cpp ``Forward_cpu``: ``exp(x - max) / sum(exp(x - max))`` along ``axis`` (default 1)."""

    def __init__(self, axis: int = 1):
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(x, dim=canonical_axis(self.axis, x.dim(), "softmax_param.axis"))


class Reshape(nn.Module):
    """reshape_layer.cpp: the same values in the shape :func:`reshape_top_shape` gives (Caffe shares the data)."""

    def __init__(self, dims: Sequence[int], axis: int = 0, num_axes: int = -1):
        super().__init__()
        self.dims, self.axis, self.num_axes = list(dims), axis, num_axes

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(reshape_top_shape(list(x.shape), self.dims, self.axis, self.num_axes))


class Slice(nn.Module):
    """slice_layer.cpp ``Forward_cpu``: the bottom cut along ``axis`` at ``slice_point``s (or evenly into
    ``tops`` pieces); returns a tuple of ``tops`` tensors."""

    def __init__(self, tops: int, axis: int = 1, slice_points: Sequence[int] = ()):
        super().__init__()
        self.tops, self.axis, self.slice_points = tops, axis, list(slice_points)

    def forward(self, x: Tensor):
        axis = canonical_axis(self.axis, x.dim(), "slice_param.axis")
        return tuple(torch.split(x, slice_sizes(x.shape[axis], self.slice_points, self.tops), dim=axis))


class Concat(nn.Module):
    """concat_layer.cpp ``Forward_cpu``: the bottoms joined along ``axis`` (default 1); every other axis must
    agree."""

    def __init__(self, axis: int = 1):
        super().__init__()
        self.axis = axis

    def forward(self, xs: List[Tensor]) -> Tensor:
        axis = canonical_axis(self.axis, xs[0].dim(), "concat_param.axis")
        for k, x in enumerate(xs[1:], 1):
            if x.dim() != xs[0].dim() or any(a != b for j, (a, b) in enumerate(zip(x.shape, xs[0].shape)) if j != axis):
                raise CaffeLayerShapeError(f"Concat: bottom {k} has shape {list(x.shape)}; bottom 0 has "
                                           f"{list(xs[0].shape)} (all axes but {axis} must agree)")
        return torch.cat(xs, dim=axis)


class Eltwise(nn.Module):
    """eltwise_layer.cpp ``Forward_cpu``: PROD multiplies the bottoms, SUM adds them each times its ``coeff``
    (default 1; as many coeffs as bottoms when any is given), MAX takes the largest (the first bottom's value on
    a tie: the same number). Every bottom has the first's shape."""

    def __init__(self, operation: str = "SUM", coeffs: Optional[Sequence[float]] = None):
        super().__init__()
        if operation not in ELTWISE_OPS:
            raise ValueError(f"eltwise operation {operation!r} is not one of {ELTWISE_OPS}")
        self.operation, self.coeffs = operation, None if coeffs is None else [float(c) for c in coeffs]

    def forward(self, xs: List[Tensor]) -> Tensor:
        for k, x in enumerate(xs[1:], 1):
            if x.shape != xs[0].shape:
                raise CaffeLayerShapeError(f"Eltwise: bottom {k} has shape {list(x.shape)}; bottom 0 has "
                                           f"{list(xs[0].shape)}")
        if self.coeffs is not None and len(self.coeffs) != len(xs):
            raise CaffeLayerShapeError(f"Eltwise: {len(self.coeffs)} coeffs for {len(xs)} bottoms")
        out = xs[0]
        if self.operation == "PROD":
            for x in xs[1:]:
                out = out * x
        elif self.operation == "SUM":
            # caffe_set(0) then caffe_axpy(coeff_i, bottom_i) in order: 0 + c0 x0 + c1 x1 + ...
            c = self.coeffs or [1.0] * len(xs)
            out = xs[0] * c[0]
            for ck, x in zip(c[1:], xs[1:]):
                out = out + ck * x
        else:
            for x in xs[1:]:
                out = torch.maximum(out, x)
        return out


class Dropout(nn.Module):
    """dropout_layer.cpp ``Forward_cpu``: the identity at TEST (``caffe_copy``); at TRAIN each value is kept
    with probability 1 - dropout_ratio (``caffe_rng_bernoulli``) and scaled by 1 / (1 - dropout_ratio)."""

    def __init__(self, dropout_ratio: float = 0.5):
        super().__init__()
        if not 0.0 <= dropout_ratio < 1.0:
            raise ValueError(f"dropout_ratio {dropout_ratio} is not in [0, 1)")
        self.dropout_ratio = float(dropout_ratio)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.dropout_ratio, self.training)


def dropout(x: Tensor, dropout_ratio: float, train: bool) -> Tensor:
    """dropout_layer.cpp ``Forward_cpu`` for the phase: TEST copies, TRAIN keeps a value with probability
    1 - ratio (a uniform draw >= ratio) and scales it by ``scale_ = 1 / (1 - ratio)``."""
    if not train:
        return x
    keep = torch.rand_like(x) >= dropout_ratio
    return x * keep.to(x.dtype) * (1.0 / (1.0 - dropout_ratio))


class Split(nn.Module):
    """split_layer.cpp ``Forward_cpu``: every top shares the bottom's data."""

    def __init__(self, tops: int):
        super().__init__()
        self.tops = tops

    def forward(self, x: Tensor):
        return tuple(x for _ in range(self.tops))


__all__ = ["CaffeLayerShapeError", "ELTWISE_OPS", "canonical_axis", "reshape_top_shape", "slice_sizes", "Embed",
           "InnerProduct", "Softmax", "Reshape", "Slice", "Concat", "Eltwise", "Dropout", "Split", "dropout"]
