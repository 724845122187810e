"""The Caffe layer types a whole net converts with, each a record: how it is read from the prototxt and the
``.caffemodel`` (``read``), how its stored config is checked (``check``) and how its module is built
(``build``, :mod:`compat.layers.caffe`).

``READERS`` maps a Caffe layer type to its record; ``LAYERS`` the node kinds to
:class:`compat.convert.graph.LayerKind` (what :func:`compat.convert.load` rebuilds). Each record names the
``<type>_param`` message it reads and the defaults caffe.proto gives (BVLC src/caffe/proto/caffe.proto).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from torch import Tensor, nn

from compat.convert.graph import LayerKind, check_bools as _bools, check_ints as _ints, check_keys as _keys
from compat.convert.graph import emitted as _emitted
from compat.frameworks.caffe.net import CaffeNetError
from compat.formats.prototxt import TextMessage
from compat.layers import caffe as L

INT_MAX = 2 ** 31 - 1
LAYERS: Dict[str, LayerKind] = {}
READERS: Dict[str, type] = {}


@dataclass
class LayerCall:
    """One layer of the net as the readers see it: its prototxt entry, its bottoms' shapes, how many tops, its
    trained blobs (``has_blobs``: the .caffemodel holds the layer) and the converted recurrent layers."""

    name: str
    type: str
    layer: TextMessage
    shapes: List[List[int]]
    tops: int
    blobs: List[np.ndarray]
    has_blobs: bool
    specs: Dict[str, object]
    where: str
    recurrent: Optional[str] = None

    def fail(self, message: str) -> CaffeNetError:
        return CaffeNetError(f"{self.where}: {message}")

    def bottoms(self, lo: int, hi: Optional[int] = None) -> None:
        hi = lo if hi is None else hi
        if not lo <= len(self.shapes) <= hi:
            raise self.fail(f"{len(self.shapes)} bottoms; a {self.type} layer takes {lo}"
                            f"{'' if hi == lo else f' to {hi}'}")

    def top_count(self, n: int) -> None:
        if self.tops != n:
            raise self.fail(f"{self.tops} tops; a {self.type} layer has {n}")

    def int(self, param: TextMessage, key: str, default, lo: int = -INT_MAX, hi: int = INT_MAX) -> int:
        value = param.get(key, default)
        if type(value) is not int or not lo <= value <= hi:
            raise self.fail(f"{key} is {repr(value)[:40]}; expected an integer in [{lo}, {hi}]")
        return value

    def bool(self, param: TextMessage, key: str, default: bool) -> bool:
        value = str(param.get(key, "true" if default else "false"))
        if value not in ("true", "false"):
            raise self.fail(f"{key} is {value[:40]!r}; expected true or false")
        return value == "true"

    def float(self, param: TextMessage, key: str, default: float) -> float:
        value = param.get(key, default)
        if type(value) not in (int, float) or not np.isfinite(value):
            raise self.fail(f"{key} is {repr(value)[:40]}; expected a finite number")
        return float(value)

    def weights(self, count: int, what: str) -> List[np.ndarray]:
        if not self.has_blobs:
            raise self.fail("the .caffemodel holds no blobs for this layer (Caffe would keep its random fillers)")
        if len(self.blobs) != count:
            raise self.fail(f"{len(self.blobs)} blobs in the .caffemodel; the layer has {count} ({what}) (Caffe: "
                            "incompatible number of blobs)")
        for k, b in enumerate(self.blobs):
            if b.dtype.kind != "f":
                raise self.fail(f"blob {k} is not floating point (dtype {b.dtype})")
            if not np.isfinite(b).all():
                raise self.fail(f"blob {k} holds NaN or infinite values")
        return [np.asarray(b, dtype=np.promote_types(b.dtype, np.float32)) for b in self.blobs]


def _blob_shape(blob: np.ndarray, want: Tuple[int, ...], call: LayerCall, k: int) -> np.ndarray:
    """net.cpp CopyTrainedLayersFrom / Blob::ShapeEquals: the blob's shape, or a legacy 4-D blob with leading 1s."""
    shape = tuple(blob.shape)
    if shape == want or (len(shape) == 4 and len(want) <= 4 and shape == (1,) * (4 - len(want)) + want):
        return blob.reshape(want)
    raise call.fail(f"blob {k} has shape {list(shape)}; the layer's settings give {list(want)} (Caffe: shape mismatch)")


def _count(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


# -- config checks ------------------------------------------------------------------------------------------
def kind(name: str, caffe_type: str, param: Optional[str], inputs=("ref",)):
    def register(cls):
        LAYERS[name] = LayerKind(name, cls.check, cls.build, cls.emit, getattr(cls, "recurrent", False),
                                 getattr(cls, "outputs", None), inputs, {})
        cls.kind, cls.param, cls.inputs = name, param, inputs
        READERS[caffe_type] = cls
        return cls
    return register


# -- as Python (--emit-python, compat.convert.emit) ------------------------------------------------------------
IMPORT = "from compat.layers import caffe as caffe_layers"


def _module_emit(ctor: str):
    """A node as this project's module (``caffe_layers.<ctor>``) called on its input(s)."""
    def emit(config, e):
        outs = ", ".join(e.outs) + ("," if len(e.outs) == 1 and ctor in ("Slice", "Split") else "")
        return _emitted(f"caffe_layers.{ctor}({_args(ctor, config)})", [f"{outs} = {e.self}({e.args[0]})"],
                        imports=(IMPORT,))
    return emit


def _args(ctor: str, c: dict) -> str:
    return {"Embed": lambda: f"{c.get('input_dim')}, {c.get('num_output')}, bias_term={c.get('bias_term')}",
            "InnerProduct": lambda: f"{c.get('in_features')}, {c.get('num_output')}, bias_term={c.get('bias_term')}, "
                                    f"axis={c.get('axis')}, transpose={c.get('transpose')}",
            "Reshape": lambda: f"{c.get('dims')!r}, axis={c.get('axis')}, num_axes={c.get('num_axes')}",
            "Slice": lambda: f"{c.get('tops')}, axis={c.get('axis')}, slice_points={c.get('slice_points')!r}",
            }[ctor]()


# -- the layers -----------------------------------------------------------------------------------------------
@kind("Embed", "Embed", "embed_param")
class EmbedKind:
    """embed_layer.cpp: blobs weight [input_dim, num_output], bias [num_output] (bias_term, default true)."""

    @staticmethod
    def read(call: LayerCall):
        call.bottoms(1)
        call.top_count(1)
        p = call.layer.message("embed_param")
        n = call.int(p, "num_output", None, lo=1)
        k = call.int(p, "input_dim", None, lo=1)
        bias = call.bool(p, "bias_term", True)
        w = call.weights(2 if bias else 1, "weight" + (", bias" if bias else ""))
        weights = {"weight": _blob_shape(w[0], (k, n), call, 0)}
        if bias:
            weights["bias"] = _blob_shape(w[1], (n,), call, 1)
        return {"input_dim": k, "num_output": n, "bias_term": bias}, weights, [call.shapes[0] + [n]]

    @staticmethod
    def check(config, error):
        _keys(config, error, ("input_dim", "num_output", "bias_term"))
        _ints(config, error, "input_dim", "num_output")
        _bools(config, error, "bias_term")

    emit = staticmethod(_module_emit("Embed"))

    @staticmethod
    def build(config, recurrent=None):
        return L.Embed(config["input_dim"], config["num_output"], config["bias_term"])


@kind("InnerProduct", "InnerProduct", "inner_product_param")
class InnerProductKind:
    """inner_product_layer.cpp: K = the bottom's count from ``axis`` (default 1); blobs weight [num_output, K]
    ([K, num_output] with ``transpose``), bias [num_output] (bias_term, default true)."""

    @staticmethod
    def read(call: LayerCall):
        call.bottoms(1)
        call.top_count(1)
        p = call.layer.message("inner_product_param")
        s = call.shapes[0]
        n = call.int(p, "num_output", None, lo=1)
        axis = call.int(p, "axis", 1, lo=-max(len(s), 1), hi=max(len(s) - 1, 0))
        a = axis % len(s) if s else 0
        k = _count(s[a:])
        if not 1 <= k <= INT_MAX:
            raise call.fail(f"the bottom {s} has {k} values from axis {a}; expected 1 to {INT_MAX}")
        bias, transpose = call.bool(p, "bias_term", True), call.bool(p, "transpose", False)
        w = call.weights(2 if bias else 1, "weight" + (", bias" if bias else ""))
        weights = {"weight": _blob_shape(w[0], (k, n) if transpose else (n, k), call, 0)}
        if bias:
            weights["bias"] = _blob_shape(w[1], (n,), call, 1)
        config = {"in_features": k, "num_output": n, "bias_term": bias, "axis": axis, "transpose": transpose}
        return config, weights, [s[:a] + [n]]

    @staticmethod
    def check(config, error):
        _keys(config, error, ("in_features", "num_output", "bias_term", "axis", "transpose"))
        _ints(config, error, "in_features", "num_output")
        _ints(config, error, "axis", lo=-32, hi=31)
        _bools(config, error, "bias_term", "transpose")

    emit = staticmethod(_module_emit("InnerProduct"))

    @staticmethod
    def build(config, recurrent=None):
        return L.InnerProduct(config["in_features"], config["num_output"], config["bias_term"], config["axis"],
                              config["transpose"])


def _axis_config(config, error):
    _keys(config, error, ("axis",))
    _ints(config, error, "axis", lo=-32, hi=31)


def _axis(call: LayerCall, p: TextMessage, key: str, default: int, legacy: Optional[str] = None) -> int:
    """An axis field checked against the bottom's rank (blob.hpp CanonicalAxisIndex); ``legacy``: the older
    non-negative field (``slice_dim``, ``concat_dim``) that may stand instead (both: refused, as Caffe)."""
    s = call.shapes[0]
    if legacy and p.has(legacy):
        if p.has(key):
            raise call.fail(f"either {key} or {legacy} should be given; not both")
        return call.int(p, legacy, None, lo=0, hi=len(s) - 1)
    return call.int(p, key, default, lo=-len(s), hi=len(s) - 1)


@kind("Softmax", "Softmax", "softmax_param")
class SoftmaxKind:
    """softmax_layer.cpp: along ``axis`` (default 1)."""

    @staticmethod
    def read(call: LayerCall):
        call.bottoms(1)
        call.top_count(1)
        axis = _axis(call, call.layer.message("softmax_param"), "axis", 1)
        return {"axis": axis}, {}, [list(call.shapes[0])]

    check = staticmethod(_axis_config)

    @staticmethod
    def emit(config, e):
        return _emitted(None, [f"{e.outs[0]} = torch.softmax({e.args[0]}, dim={config['axis']})"])

    @staticmethod
    def build(config, recurrent=None):
        return L.Softmax(config["axis"])


@kind("Reshape", "Reshape", "reshape_param")
class ReshapeKind:
    """reshape_layer.cpp: ``shape { dim }`` (0 copies, one -1 inferred) replacing axes [axis, axis + num_axes)."""

    @staticmethod
    def read(call: LayerCall):
        call.bottoms(1)
        call.top_count(1)
        p = call.layer.message("reshape_param")
        dims = [d for d in p.message("shape").getall("dim")]
        for d in dims:
            if type(d) is not int or not -1 <= d <= INT_MAX:
                raise call.fail(f"reshape_param.shape.dim {repr(d)[:40]} is not an integer >= -1")
        if len(dims) > 32:
            raise call.fail(f"reshape_param.shape has {len(dims)} dims; Caffe's blobs have at most 32")
        axis = call.int(p, "axis", 0, lo=-33, hi=32)
        num_axes = call.int(p, "num_axes", -1, lo=-1, hi=32)
        try:
            top = L.reshape_top_shape(call.shapes[0], dims, axis, num_axes)
        except L.CaffeLayerShapeError as e:
            raise call.fail(str(e)) from None
        return {"dims": dims, "axis": axis, "num_axes": num_axes}, {}, [top]

    @staticmethod
    def check(config, error):
        _keys(config, error, ("dims", "axis", "num_axes"))
        if not isinstance(config["dims"], list) or len(config["dims"]) > 32 or \
                any(type(d) is not int or not -1 <= d <= INT_MAX for d in config["dims"]):
            raise error("dims", "expected at most 32 integers >= -1")
        _ints(config, error, "axis", lo=-33, hi=32)
        _ints(config, error, "num_axes", lo=-1, hi=32)

    emit = staticmethod(_module_emit("Reshape"))

    @staticmethod
    def build(config, recurrent=None):
        return L.Reshape(config["dims"], config["axis"], config["num_axes"])


@kind("Slice", "Slice", "slice_param")
class SliceKind:
    """slice_layer.cpp: along ``axis`` (default 1; or the older ``slice_dim``) at ``slice_point``s, or evenly."""

    @staticmethod
    def read(call: LayerCall):
        call.bottoms(1)
        p = call.layer.message("slice_param")
        axis = _axis(call, p, "axis", 1, legacy="slice_dim")
        points = p.getall("slice_point")
        if any(type(v) is not int or not 0 <= v <= INT_MAX for v in points):
            raise call.fail("slice_param.slice_point holds a value that is not a non-negative integer")
        s = call.shapes[0]
        try:
            sizes = L.slice_sizes(s[axis], points, call.tops)
        except L.CaffeLayerShapeError as e:
            raise call.fail(str(e)) from None
        shapes = [s[:axis % len(s)] + [n] + s[axis % len(s) + 1:] for n in sizes]
        return {"tops": call.tops, "axis": axis, "slice_points": list(points)}, {}, shapes

    @staticmethod
    def check(config, error):
        _keys(config, error, ("tops", "axis", "slice_points"))
        _ints(config, error, "tops", lo=1, hi=1_000)
        _ints(config, error, "axis", lo=-32, hi=31)
        if not isinstance(config["slice_points"], list) or len(config["slice_points"]) > 1_000 or \
                any(type(v) is not int or v < 0 for v in config["slice_points"]):
            raise error("slice_points", "expected a list of non-negative integers")

    @staticmethod
    def outputs(config) -> int:
        return config["tops"]

    emit = staticmethod(_module_emit("Slice"))

    @staticmethod
    def build(config, recurrent=None):
        return L.Slice(config["tops"], config["axis"], config["slice_points"])


@kind("Concat", "Concat", "concat_param", inputs=("list",))
class ConcatKind:
    """concat_layer.cpp: along ``axis`` (default 1; or the older ``concat_dim``)."""

    @staticmethod
    def read(call: LayerCall):
        call.bottoms(1, 1_000)
        call.top_count(1)
        axis = _axis(call, call.layer.message("concat_param"), "axis", 1, legacy="concat_dim")
        s0 = call.shapes[0]
        a = axis % len(s0)
        for k, s in enumerate(call.shapes[1:], 1):
            if len(s) != len(s0) or any(x != y for j, (x, y) in enumerate(zip(s, s0)) if j != a):
                raise call.fail(f"bottom {k} has shape {s}; bottom 0 has {s0} (all axes but {a} must agree)")
        return {"axis": axis}, {}, [s0[:a] + [sum(s[a] for s in call.shapes)] + s0[a + 1:]]

    check = staticmethod(_axis_config)

    @staticmethod
    def emit(config, e):
        return _emitted(None, [f"{e.outs[0]} = torch.cat({e.args[0]}, dim={config['axis']})"])

    @staticmethod
    def build(config, recurrent=None):
        return L.Concat(config["axis"])


@kind("Eltwise", "Eltwise", "eltwise_param", inputs=("list",))
class EltwiseKind:
    """eltwise_layer.cpp: ``operation`` PROD, SUM (default) or MAX; ``coeff`` for SUM only, one per bottom."""

    @staticmethod
    def read(call: LayerCall):
        call.bottoms(2, 1_000)
        call.top_count(1)
        p = call.layer.message("eltwise_param")
        op = str(p.get("operation", "SUM"))
        if op not in L.ELTWISE_OPS:
            raise call.fail(f"eltwise_param.operation {op[:40]!r} is not one of {list(L.ELTWISE_OPS)}")
        coeffs = p.getall("coeff")
        if coeffs and len(coeffs) != len(call.shapes):
            raise call.fail(f"{len(coeffs)} coeffs for {len(call.shapes)} bottoms (Eltwise takes one coefficient "
                            "per bottom)")
        if coeffs and op != "SUM":
            raise call.fail("Eltwise layer only takes coefficients for summation")
        if any(type(c) not in (int, float) or not np.isfinite(c) for c in coeffs):
            raise call.fail("eltwise_param.coeff holds a value that is not a finite number")
        for k, s in enumerate(call.shapes[1:], 1):
            if s != call.shapes[0]:
                raise call.fail(f"bottom {k} has shape {s}; bottom 0 has {call.shapes[0]}")
        config = {"operation": op, "coeffs": [float(c) for c in coeffs] if coeffs else None}
        return config, {}, [list(call.shapes[0])]

    @staticmethod
    def check(config, error):
        _keys(config, error, ("operation", "coeffs"))
        if config["operation"] not in L.ELTWISE_OPS:
            raise error("operation", f"expected one of {list(L.ELTWISE_OPS)}")
        c = config["coeffs"]
        if c is not None and (not isinstance(c, list) or len(c) > 1_000 or
                              any(type(v) not in (int, float) or not np.isfinite(v) for v in c)):
            raise error("coeffs", "expected null or a list of finite numbers")

    @staticmethod
    def emit(config, e):
        xs = e.args[0].strip("[]").split(", ")
        op, c = config["operation"], config["coeffs"]
        if op == "SUM":
            value = " + ".join(xs if c is None else [f"{float(k)!r} * {x}" for k, x in zip(c, xs)])
        elif op == "PROD":
            value = " * ".join(xs)
        else:
            value = xs[0]
            for x in xs[1:]:
                value = f"torch.maximum({value}, {x})"
        return _emitted(None, [f"{e.outs[0]} = {value}  # Eltwise {op}"])

    @staticmethod
    def build(config, recurrent=None):
        return L.Eltwise(config["operation"], config["coeffs"])


@kind("Dropout", "Dropout", "dropout_param")
class DropoutKind:
    """dropout_layer.cpp: ``dropout_ratio`` (default 0.5); the identity at TEST."""

    @staticmethod
    def read(call: LayerCall):
        call.bottoms(1)
        call.top_count(1)
        ratio = call.float(call.layer.message("dropout_param"), "dropout_ratio", 0.5)
        if not 0.0 <= ratio < 1.0:
            raise call.fail(f"dropout_ratio {ratio} is not in [0, 1)")
        return {"dropout_ratio": ratio}, {}, [list(call.shapes[0])]

    @staticmethod
    def check(config, error):
        _keys(config, error, ("dropout_ratio",))
        v = config["dropout_ratio"]
        if type(v) not in (int, float) or not 0.0 <= v < 1.0:
            raise error("dropout_ratio", "expected a number in [0, 1)")

    @staticmethod
    def emit(config, e):
        return _emitted(None, [f"{e.outs[0]} = {e.args[0]}  # Dropout: the identity at inference"])

    @staticmethod
    def build(config, recurrent=None):
        return L.Dropout(config["dropout_ratio"])


@kind("Split", "Split", None)
class SplitKind:
    """split_layer.cpp: every top is the bottom."""

    @staticmethod
    def read(call: LayerCall):
        call.bottoms(1)
        return {"tops": call.tops}, {}, [list(call.shapes[0]) for _ in range(call.tops)]

    @staticmethod
    def check(config, error):
        _keys(config, error, ("tops",))
        _ints(config, error, "tops", lo=1, hi=1_000)

    @staticmethod
    def outputs(config) -> int:
        return config["tops"]

    @staticmethod
    def emit(config, e):
        return _emitted(None, [f"{', '.join(e.outs)} = {', '.join([e.args[0]] * len(e.outs))}  # Split"])

    @staticmethod
    def build(config, recurrent=None):
        return L.Split(config["tops"])


class CaffeRecurrent(nn.Module):
    """BVLC ``LSTM`` as a net runs it (lstm_layer.cpp, recurrent_layer.cpp): bottoms x [T, N, ...] (the axes
    after N folded into the input), cont [T, N] (0 restarts a stream: h and c are multiplied by it), with
    ``static_input`` x_static [N, ...], and with ``expose_hidden`` h0, c0 [1, N, H] (recurrent_layer.cpp: x, cont,
    then x_static, then the recurrent inputs); tops h [T, N, H] (and h_T, c_T [1, N, H]). ``lstm`` is the
    converted module (its parameters, shared), run through :func:`compat.lstm.lstm` with ``cont`` (with a static
    input, :class:`compat.convert.modules.CaffeLSTM`, which takes ``x_static``)."""

    def __init__(self, lstm: Optional[nn.Module], expose_hidden: bool = False, static_input: bool = False):
        super().__init__()
        self.expose_hidden, self.static_input = expose_hidden, static_input
        if lstm is not None:   # None: the node's own tensors (none) checked before the conversion's LSTM exists
            self.lstm = lstm

    def _weights(self):
        from compat.lstm import LayerWeights

        m = self.lstm
        if hasattr(m, "layer_weights"):
            return m.layer_weights()
        return [LayerWeights(m.weight_ih_l0, m.weight_hh_l0, getattr(m, "bias_ih_l0", None),
                             getattr(m, "bias_hh_l0", None))]

    def forward(self, x: Tensor, cont: Tensor, *rest: Tensor):
        from compat.lstm import lstm

        _check_x_cont("LSTM", x, cont)
        x_static, (h0, c0) = _bottoms("LSTM", rest, self.static_input, 2 if self.expose_hidden else 0)
        hx = None
        if self.expose_hidden:
            hx = (h0.reshape(1, x.shape[1], -1), c0.reshape(1, x.shape[1], -1))
        flat, cont = x.reshape(x.shape[0], x.shape[1], -1), cont.to(x.dtype)
        if self.static_input:
            out, (h_T, c_T) = self.lstm(flat, hx, cont=cont, x_static=x_static)
        else:
            out, (h_T, c_T) = lstm(flat, self._weights(), hx, cont=cont)
        return (out, h_T, c_T) if self.expose_hidden else out


def _check_x_cont(what: str, x: Tensor, cont: Tensor) -> None:
    if x.dim() < 2 or cont.shape != x.shape[:2]:
        raise L.CaffeLayerShapeError(f"{what}: x has shape {list(x.shape)} and cont {list(cont.shape)}; expected "
                                     "x [T, N, ...] and cont [T, N]")


def _bottoms(what: str, rest, static: bool, hidden: int):
    """The bottoms after x and cont (recurrent_layer.cpp: x_static when the layer has a static input, then the
    exposed recurrent inputs): ``(x_static or None, [h0 (, c0)] or Nones)``."""
    want = int(static) + hidden
    if len(rest) != want:
        names = (["x_static"] if static else []) + ["h0", "c0"][:hidden]
        raise L.CaffeLayerShapeError(f"{what}: takes {2 + want} bottoms (x, cont{''.join(', ' + n for n in names)}); "
                                     f"got {2 + len(rest)}")
    return (rest[0] if static else None), (list(rest[int(static):]) or [None, None])


def _recurrent_shapes(call: "LayerCall", spec, static: bool, hidden: int) -> List[int]:
    """The checks of recurrent_layer.cpp ``LayerSetUp`` / ``Reshape`` on x, cont, x_static and the exposed
    states' shapes, against the converted layer: returns x's shape."""
    x, cont = call.shapes[0], call.shapes[1]
    if len(x) < 2 or cont != x[:2]:
        raise call.fail(f"x has shape {x} and cont {cont}; expected x [T, N, ...] and cont [T, N] "
                        "(recurrent_layer.cpp Reshape)")
    if _count(x[2:]) != spec.input_size:
        raise call.fail(f"x has {_count(x[2:])} features per step; the blobs take {spec.input_size}")
    S = spec.module_config.get("static_size", 0)
    if static != bool(S):
        raise call.fail(f"{len(call.shapes)} bottoms: " + (
            "a third bottom x_static (a static input) but the .caffemodel holds no static weight blob for it"
            if static else
            f"the .caffemodel's blobs hold a static weight (W_{'xc' if hidden == 2 else 'xh'}_static, {S} "
            "features) but the layer has no x_static bottom (the third, after x and cont)"))
    if static:
        xs = call.shapes[2]
        if len(xs) < 1 or xs[0] != x[1] or _count(xs[1:]) != S:
            raise call.fail(f"bottom x_static has shape {xs}; expected [N, ...] = [{x[1]}, ...] with {S} features "
                            "(the static weight's columns; recurrent_layer.cpp LayerSetUp)")
    for k in range(hidden):
        shape = call.shapes[2 + int(static) + k]
        if _count(shape) != x[1] * spec.hidden_size:
            raise call.fail(f"{['h0', 'c0'][k]} has shape {shape}; expected [1, {x[1]}, {spec.hidden_size}]")
    return x


def _static_bottoms(call: "LayerCall", expose: bool, hidden: int) -> bool:
    """Whether the layer has a static input: recurrent_layer.cpp ``LayerSetUp``, ``static_input_ = bottom.size() >
    2 + num_hidden_exposed``; checks the count of bottoms."""
    exposed = hidden if expose else 0
    call.bottoms(2 + exposed, 3 + exposed)
    return len(call.shapes) > 2 + exposed


def _static_emit(config, e, first: int) -> str:
    """``, x_static=...`` for a layer with a static input (its third bottom)."""
    return f", x_static={e.args[first]}" if config.get("static_input") else ""


def _recurrent_check(config, error):
    _keys(config, error, ("hidden_size", "expose_hidden") + (("static_input",) if "static_input" in config else ()))
    _ints(config, error, "hidden_size")
    _bools(config, error, "expose_hidden", *(("static_input",) if "static_input" in config else ()))


@kind("LSTM", "LSTM", "recurrent_param", inputs=("ref", "ref", "ref?", "ref?", "ref?"))
class LSTMKind:
    """BVLC ``LSTM``: the converted recurrent layer of the same name, run with ``cont`` (and ``x_static``)."""

    recurrent = True

    @staticmethod
    def read(call: LayerCall):
        p = call.layer.message("recurrent_param")
        expose = call.bool(p, "expose_hidden", False)
        static = _static_bottoms(call, expose, 2)
        call.top_count(3 if expose else 1)
        spec = call.specs.get(call.name)
        if spec is None:
            raise call.fail("no LSTM of this name was converted from the .caffemodel (no blobs)")
        x = _recurrent_shapes(call, spec, static, 2 if expose else 0)
        H = spec.hidden_size
        call.recurrent = spec.name
        shapes = [x[:2] + [H]] + ([[1, x[1], H], [1, x[1], H]] if expose else [])
        config = {"hidden_size": H, "expose_hidden": expose}
        if static:
            config["static_input"] = True   # written only when true: an older conversion's config has no key
        return config, {}, shapes

    check = staticmethod(_recurrent_check)

    @staticmethod
    def outputs(config) -> int:
        return 3 if config["expose_hidden"] else 1

    @staticmethod
    def emit(config, e):
        """compat.lstm.LSTM (it takes ``cont``; the weights are the converted module's, by the same names), or with
        a static input compat.convert.modules.CaffeLSTM (it takes ``x_static`` too)."""
        init = e.recurrent_init
        imports = tuple(e.recurrent_imports)
        if init.startswith("nn.LSTM("):
            init, imports = "LSTM(" + init[len("nn.LSTM("):], imports + ("from compat.lstm import LSTM",)
        x, cont = e.args[0], e.args[1]
        flat = f"{x}.reshape({x}.shape[0], {x}.shape[1], -1)"
        static = _static_emit(config, e, 2)
        if config["expose_hidden"]:
            h0, c0 = e.args[-2], e.args[-1]
            hx = f"({h0}.reshape(1, {x}.shape[1], -1), {c0}.reshape(1, {x}.shape[1], -1))"
            lines = [f"{e.outs[0]}, ({e.outs[1]}, {e.outs[2]}) = {e.self}({flat}, {hx}, cont={cont}.to({x}.dtype)"
                     f"{static})"]
        else:
            lines = [f"{e.outs[0]}, _ = {e.self}({flat}, cont={cont}.to({x}.dtype){static})  # cont: 0 restarts a "
                     "stream"]
        return _emitted(init, lines, e.recurrent_weights, imports)

    @staticmethod
    def build(config, recurrent=None):
        return CaffeRecurrent(recurrent, config["expose_hidden"], config.get("static_input", False))


class CaffeRecurrentRNN(nn.Module):
    """BVLC ``RNN`` as a net runs it (rnn_layer.cpp ``FillUnrolledNet``, recurrent_layer.cpp): bottoms x
    [T, N, ...] (the axes after N folded into the input: the x_transform InnerProduct has axis 2), cont [T, N]
    (the ``Scale`` layer h_conted_{t-1} = cont_t * h_{t-1}), with ``static_input`` x_static [N, ...], and with
    ``expose_hidden`` h0 [1, N, H]; tops o [T, N, H] (o_t = tanh(W_ho h_t + b_o)) and with ``expose_hidden`` h_T
    [1, N, H]. ``rnn`` is the converted :class:`compat.convert.modules.CaffeRNN` (its parameters, shared)."""

    def __init__(self, rnn: Optional[nn.Module], expose_hidden: bool = False, static_input: bool = False):
        super().__init__()
        self.expose_hidden, self.static_input = expose_hidden, static_input
        if rnn is not None:   # None: the node's own tensors (none) checked before the conversion's RNN exists
            self.rnn = rnn

    def forward(self, x: Tensor, cont: Tensor, *rest: Tensor):
        _check_x_cont("RNN", x, cont)
        x_static, (h0, *_) = _bottoms("RNN", rest, self.static_input, 1 if self.expose_hidden else 0)
        hx = h0.reshape(1, x.shape[1], -1) if self.expose_hidden else None
        o, h_T = self.rnn(x.reshape(x.shape[0], x.shape[1], -1), hx, cont=cont.to(x.dtype), x_static=x_static)
        return (o, h_T) if self.expose_hidden else o


@kind("RNN", "RNN", "recurrent_param", inputs=("ref", "ref", "ref?", "ref?"))
class RNNKind:
    """BVLC ``RNN``: the converted recurrent layer of the same name (compat.convert.modules.CaffeRNN), run with
    ``cont`` (and ``x_static``)."""

    recurrent = True

    @staticmethod
    def read(call: LayerCall):
        p = call.layer.message("recurrent_param")
        expose = call.bool(p, "expose_hidden", False)
        static = _static_bottoms(call, expose, 1)
        call.top_count(2 if expose else 1)
        spec = call.specs.get(call.name)
        if spec is None:
            raise call.fail("no RNN of this name was converted from the .caffemodel (no blobs)")
        x = _recurrent_shapes(call, spec, static, 1 if expose else 0)
        H = spec.hidden_size
        call.recurrent = spec.name
        shapes = [x[:2] + [H]] + ([[1, x[1], H]] if expose else [])
        config = {"hidden_size": H, "expose_hidden": expose}
        if static:
            config["static_input"] = True
        return config, {}, shapes

    check = staticmethod(_recurrent_check)

    @staticmethod
    def outputs(config) -> int:
        return 2 if config["expose_hidden"] else 1

    @staticmethod
    def emit(config, e):
        """compat.convert.modules.CaffeRNN (it takes ``cont`` and ``x_static``, and returns o, h_T)."""
        x, cont = e.args[0], e.args[1]
        flat = f"{x}.reshape({x}.shape[0], {x}.shape[1], -1)"
        static = _static_emit(config, e, 2)
        if config["expose_hidden"]:
            hx = f"{e.args[-1]}.reshape(1, {x}.shape[1], -1)"
            lines = [f"{e.outs[0]}, {e.outs[1]} = {e.self}({flat}, {hx}, cont={cont}.to({x}.dtype){static})"]
        else:
            lines = [f"{e.outs[0]}, _ = {e.self}({flat}, cont={cont}.to({x}.dtype){static})  # cont: 0 restarts a "
                     "stream"]
        return _emitted(e.recurrent_init, lines, e.recurrent_weights, tuple(e.recurrent_imports))

    @staticmethod
    def build(config, recurrent=None):
        return CaffeRecurrentRNN(recurrent, config["expose_hidden"], config.get("static_input", False))
