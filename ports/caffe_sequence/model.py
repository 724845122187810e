"""A Caffe ``Net`` built from a parsed ``.prototxt``: the layer types the LSTM examples use, on torch.

Supported layer types: ``Input`` (and the net-level ``input`` / ``input_shape`` / ``input_dim``), ``Lstm``
(junhyukoh/caffe-lstm), ``LSTM`` (BVLC), ``EuclideanLoss``, ``Silence``, and the layers around recurrent
layers in BVLC nets, with Caffe's semantics (:mod:`compat.layers.caffe`): ``Embed``, ``InnerProduct`` (any
``axis``, ``transpose``), ``Softmax``, ``Reshape``, ``Slice``, ``Concat``, ``Eltwise``, ``Dropout`` (scaled at
TRAIN, the identity at TEST) and ``Split``. Layers are
included or excluded by phase (``include { phase: TEST }``), as Caffe's ``Net::FilterNet`` does. Fillers
follow Caffe's filler.hpp (``constant``, ``gaussian``, ``uniform``, ``xavier``, ``msra``) with torch's
random generator (Caffe's Boost mt19937 stream is not reproduced: same distributions, other draws).
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from compat.errors import InputError
from compat.formats.prototxt import TextMessage
from compat.frameworks.caffe.net import phase_included
from compat.layers import caffe as caffe_layers
from compat.layers.caffe import CaffeLayerShapeError, Embed, InnerProduct
from ports.caffe_sequence.layers import CaffeLSTM, CaffeShapeError, JunhyukohLSTM


class CaffeNetError(InputError, ValueError):
    """A net definition this port cannot build, or weights that do not fit it; the message names the layer."""


def _shape_equals(blob_shape: Tuple[int, ...], param_shape: Tuple[int, ...]) -> bool:
    """Caffe ``Blob::ShapeEquals``: equal shapes, or a legacy 4-D blob equal to the parameter's shape
    padded with leading 1s (``LegacyShape(-4..-1)``)."""
    if blob_shape == param_shape:
        return True
    return len(blob_shape) == 4 and len(param_shape) <= 4 and blob_shape == (1,) * (4 - len(param_shape)) + param_shape


def euclidean_loss(a: Tensor, b: Tensor) -> Tensor:
    """Caffe ``EuclideanLoss``: sum((a - b)^2) / num / 2, num = a.shape[0] (euclidean_loss_layer.cpp)."""
    if a.numel() != b.numel():
        raise CaffeShapeError(f"EuclideanLoss bottoms have {a.numel()} and {b.numel()} values; they must match")
    return ((a.reshape(-1) - b.reshape(-1).to(a.dtype)) ** 2).sum() / a.shape[0] / 2.0


def fill_(blob: Tensor, filler: TextMessage, generator: Optional[torch.Generator]) -> None:
    """Fill ``blob`` in place as Caffe's filler.hpp does for ``filler``'s type (default ``constant``)."""
    kind = str(filler.get("type", "constant"))
    shape = blob.shape
    num = shape[0] if blob.dim() > 0 else 1
    count = blob.numel()
    with torch.no_grad():
        if kind == "constant":
            blob.fill_(float(filler.get("value", 0.0)))
        elif kind == "gaussian":
            mean, std = float(filler.get("mean", 0.0)), float(filler.get("std", 1.0))
            blob.copy_(torch.randn(shape, generator=generator, dtype=torch.float64) * std + mean)
            sparse = int(filler.get("sparse", -1))
            if sparse >= 0:
                # GaussianFiller: keep each weight with probability sparse / num_outputs (blob->num()).
                keep = torch.rand(shape, generator=generator, dtype=torch.float64) < sparse / num
                blob.mul_(keep.to(blob.dtype))
        elif kind == "uniform":
            lo, hi = float(filler.get("min", 0.0)), float(filler.get("max", 1.0))
            blob.copy_(torch.rand(shape, generator=generator, dtype=torch.float64) * (hi - lo) + lo)
        elif kind in ("xavier", "msra"):
            fan_in = count / num
            fan_out = count / (shape[1] if blob.dim() > 1 else 1)
            norm = str(filler.get("variance_norm", "FAN_IN"))
            n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "AVERAGE": (fan_in + fan_out) / 2}.get(norm)
            if n is None:
                raise CaffeNetError(f"filler variance_norm {norm!r} is not FAN_IN, FAN_OUT or AVERAGE")
            if kind == "xavier":
                scale = math.sqrt(3.0 / n)
                blob.copy_(torch.rand(shape, generator=generator, dtype=torch.float64) * 2 * scale - scale)
            else:
                blob.copy_(torch.randn(shape, generator=generator, dtype=torch.float64) * math.sqrt(2.0 / n))
        else:
            raise CaffeNetError(f"filler type {kind!r} is not supported (constant, gaussian, uniform, xavier, msra)")


_phase_included = phase_included


# Sizes a prototxt states, checked before anything is allocated: Caffe's own limits (blob.cpp Reshape:
# a dimension and a blob's count at most INT_MAX) and a cap on the whole net's parameters.
INT_MAX = 2 ** 31 - 1
MAX_NET_PARAMS = 2 ** 30   # 4 GiB of float32 parameters


def _size(value, where: str, field: str, lo: int = 1) -> int:
    """An integer field of the prototxt in [lo, INT_MAX]; else CaffeNetError naming it."""
    if type(value) is not int or not lo <= value <= INT_MAX:
        shown = repr(value) if isinstance(value, (int, float, str)) else "a message"
        raise CaffeNetError(f"{where}: {field} is {shown[:40]}; expected an integer in [{lo}, {INT_MAX}]")
    return value


def _shape_of(msg: TextMessage, where: str = "<net>") -> List[int]:
    return [_size(d, where, "a shape's dim", lo=0) for d in msg.getall("dim")]


def _count(dims, where: str, what: str) -> int:
    """Elements of a blob of shape ``dims``, refused over Caffe's INT_MAX before the blob exists."""
    n = 1
    for d in dims:
        n *= d
        if n > INT_MAX:
            raise CaffeNetError(f"{where}: {what} of shape {list(dims)} has more than INT_MAX values (Caffe: "
                                "Blob::Reshape refuses it)")
    return n


# Layers without blobs whose modules come from compat.layers.caffe (the same rules as the converter's whole nets).
_SHAPE_LAYERS = ("Softmax", "Reshape", "Slice", "Concat", "Eltwise", "Dropout", "Split")


def _shape_layer(ltype: str, layer: TextMessage, shapes: List[List[int]], tops: int, where: str) -> nn.Module:
    """The module of a blob-less layer, its settings checked against the bottoms' shapes (as the layer's
    LayerSetUp / Reshape CHECKs do): CaffeNetError naming the layer otherwise."""
    from compat.frameworks.caffe.layers import READERS, LayerCall
    from compat.frameworks.caffe.net import CaffeNetError as NetDefinitionError

    call = LayerCall(str(layer.get("name", "")), ltype, layer, shapes, tops, [], False, {}, where)
    try:
        record = READERS[ltype]
        config = record.read(call)[0]
        return record.build(config)
    except (NetDefinitionError, CaffeLayerShapeError) as e:
        raise CaffeNetError(str(e)) from None


class CaffeNet(nn.Module):
    """A Caffe net for one phase. ``forward(**inputs)`` -> dict of every blob; ``loss`` sums the losses.

    ``layer_modules`` maps layer names to their modules (their parameters are the layer's blobs in Caffe's
    order); ``param_specs`` gives each learnable parameter's (lr_mult, decay_mult) from the layer's
    ``param { ... }`` entries (default 1, 1), as Caffe's Net::AppendParam.
    """

    def __init__(self, net_param: TextMessage, phase: str = "TRAIN", *, dtype=torch.float32,
                 generator: Optional[torch.Generator] = None, source: str = "<net>"):
        super().__init__()
        if phase not in ("TRAIN", "TEST"):
            raise CaffeNetError(f"phase must be TRAIN or TEST, not {phase!r}")
        self.phase, self.dtype, self.source = phase, dtype, source
        self.name = str(net_param.get("name", ""))
        self.input_shapes: Dict[str, List[int]] = {}
        names = [str(n) for n in net_param.getall("input")]
        shapes = net_param.getall("input_shape")
        dims = [_size(d, source, "input_dim", lo=0) for d in net_param.getall("input_dim")]
        if shapes:
            if len(shapes) != len(names):
                raise CaffeNetError(f"{source}: {len(names)} inputs but {len(shapes)} input_shape entries")
            for n, s in zip(names, shapes):
                self.input_shapes[n] = _shape_of(s, source)
        elif dims:
            if len(dims) != 4 * len(names):
                raise CaffeNetError(f"{source}: input_dim needs 4 values per input ({len(names)} inputs, "
                                    f"{len(dims)} values)")
            for k, n in enumerate(names):
                self.input_shapes[n] = dims[4 * k:4 * k + 4]
        elif names:
            raise CaffeNetError(f"{source}: inputs {names} have no input_shape or input_dim")
        if net_param.getall("layers"):
            raise CaffeNetError(f"{source}: V1 'layers' definitions are not supported in prototxt; "
                                "use the 'layer' format (caffe's upgrade_net_proto_text converts them)")
        self._params = 0
        self.layer_defs: List[Tuple[str, str, List[str], List[str], TextMessage]] = []
        self.layer_modules = nn.ModuleDict()
        self.param_specs: Dict[int, Tuple[float, float]] = {}
        shapes_now: Dict[str, List[int]] = dict(self.input_shapes)
        for layer in net_param.getall("layer"):
            if not _phase_included(layer, phase):
                continue
            lname, ltype = str(layer.get("name", "")), str(layer.get("type", ""))
            bottoms = [str(b) for b in layer.getall("bottom")]
            tops = [str(t) for t in layer.getall("top")]
            where = f"{source}: layer {lname!r} ({ltype})"
            for b in bottoms:
                if b not in shapes_now:
                    raise CaffeNetError(f"{where}: unknown bottom blob {b!r}")
            module = None
            if ltype == "Input":
                # input_layer.cpp LayerSetUp: one shape for every top, or one per top
                given = layer.message("input_param").getall("shape")
                if len(given) not in (1, len(tops)):
                    raise CaffeNetError(f"{where}: input_param needs one shape or one per top ({len(tops)} tops, "
                                        f"{len(given)} shapes)")
                for t, s in zip(tops, given * len(tops) if len(given) == 1 else given):
                    shapes_now[t] = _shape_of(s, where)
                    self.input_shapes[t] = _shape_of(s, where)
            elif ltype == "Silence":
                pass
            elif ltype == "Lstm":
                p = layer.message("lstm_param")
                if not p.has("num_output"):
                    raise CaffeNetError(f"{where}: lstm_param.num_output is required")
                H = _size(p.get("num_output"), where, "lstm_param.num_output")
                N = _size(p.get("batch_size", 1), where, "lstm_param.batch_size")
                ds = shapes_now[bottoms[0]]
                in_size = _count(ds[1:], where, "the input") if len(ds) > 1 else 1
                self._budget(where, _count([4 * H, in_size + H + 1], where, "the weights"))
                module = JunhyukohLSTM(in_size, H, N, float(p.get("clipping_threshold", 0.0)), dtype=dtype)
                fill_(module.W_x, p.message("weight_filler"), generator)
                fill_(module.W_h, p.message("weight_filler"), generator)
                fill_(module.b, p.message("bias_filler"), generator)
                shapes_now[tops[0]] = [ds[0], H]
            elif ltype == "LSTM":
                p = layer.message("recurrent_param")
                if not p.has("num_output"):
                    raise CaffeNetError(f"{where}: recurrent_param.num_output is required")
                H = _size(p.get("num_output"), where, "recurrent_param.num_output")
                expose = str(p.get("expose_hidden", "false")) == "true"
                xs = shapes_now[bottoms[0]]
                static = len(bottoms) > 2 + 2 * expose
                static_size = _count(shapes_now[bottoms[2]][1:], where, "the static input") if static else None
                x_size = _count(xs[2:], where, "the input") if len(xs) > 2 else 1
                self._budget(where, _count([4 * H, x_size + H + 1 + (static_size or 0)], where, "the weights"))
                module = CaffeLSTM(x_size, H, static_size, expose, dtype=dtype)
                wf, bf = p.message("weight_filler"), p.message("bias_filler")
                for prm in module.parameters():
                    fill_(prm, bf if prm is module.b_c else wf, generator)
                shapes_now[tops[0]] = [xs[0], xs[1], H]
                if expose:
                    for t in tops[1:3]:
                        shapes_now[t] = [1, xs[1], H]
            elif ltype == "InnerProduct":
                p = layer.message("inner_product_param")
                if not p.has("num_output"):
                    raise CaffeNetError(f"{where}: inner_product_param.num_output is required")
                axis = p.get("axis", 1)
                s = shapes_now[bottoms[0]]
                if type(axis) is not int or not s or not -len(s) <= axis < len(s):
                    raise CaffeNetError(f"{where}: inner_product_param.axis {axis!r} is not an axis of the input "
                                        f"{s}")
                a = axis % len(s)
                bias_term = str(p.get("bias_term", "true")) != "false"
                transpose = str(p.get("transpose", "false")) == "true"
                num_output = _size(p.get("num_output"), where, "inner_product_param.num_output")
                in_features = _count(s[a:], where, "the input")
                self._budget(where, _count([num_output, in_features + 1], where, "the weights"))
                module = InnerProduct(in_features, num_output, bias_term, axis, transpose).to(dtype)
                fill_(module.weight, p.message("weight_filler"), generator)
                if bias_term:
                    fill_(module.bias, p.message("bias_filler"), generator)
                shapes_now[tops[0]] = s[:a] + [num_output]
            elif ltype == "Embed":
                p = layer.message("embed_param")
                for key in ("num_output", "input_dim"):
                    if not p.has(key):
                        raise CaffeNetError(f"{where}: embed_param.{key} is required")
                n = _size(p.get("num_output"), where, "embed_param.num_output")
                k = _size(p.get("input_dim"), where, "embed_param.input_dim")
                bias_term = str(p.get("bias_term", "true")) != "false"
                self._budget(where, _count([k + 1, n], where, "the weights"))
                module = Embed(k, n, bias_term).to(dtype)
                fill_(module.weight, p.message("weight_filler"), generator)
                if bias_term:
                    fill_(module.bias, p.message("bias_filler"), generator)
                shapes_now[tops[0]] = shapes_now[bottoms[0]] + [n]
            elif ltype in _SHAPE_LAYERS:
                module = _shape_layer(ltype, layer, [shapes_now[b] for b in bottoms], len(tops), where)
                with torch.no_grad():  # the tops' shapes, from the layer itself on shape-only tensors
                    outs = module([torch.empty(shapes_now[b], device="meta") for b in bottoms]
                                  if ltype in ("Concat", "Eltwise") else torch.empty(shapes_now[bottoms[0]],
                                                                                   device="meta"))
                for t, o in zip(tops, outs if isinstance(outs, tuple) else (outs,)):
                    shapes_now[t] = list(o.shape)
            elif ltype == "EuclideanLoss":
                shapes_now[tops[0]] = []
            else:
                raise CaffeNetError(f"{where}: layer type {ltype!r} is not supported by this port "
                                    f"(Input, Silence, Lstm, LSTM, InnerProduct, EuclideanLoss, Embed, "
                                    f"{', '.join(_SHAPE_LAYERS)})")
            if module is not None:
                if lname in self.layer_modules:
                    raise CaffeNetError(f"{where}: a second layer with the same name")
                self.layer_modules[lname] = module
                specs = layer.getall("param")
                for k, prm in enumerate(module.parameters()):
                    spec = specs[k] if k < len(specs) else TextMessage()
                    self.param_specs[id(prm)] = (float(spec.get("lr_mult", 1.0)), float(spec.get("decay_mult", 1.0)))
            for t in tops:
                shapes_now.setdefault(t, [])
            self.layer_defs.append((lname, ltype, bottoms, tops, layer))
        consumed = {b for _, _, bs, _, _ in self.layer_defs for b in bs}
        produced = [t for _, ltype, _, ts, _ in self.layer_defs if ltype != "Input" for t in ts]
        self.output_names = [t for t in produced if t not in consumed]
        # The loss layers' tops and weights (loss_weight 1, Caffe's default for *Loss layers).
        self.loss_terms = [(tops[0], float(layer.get("loss_weight", 1.0)))
                           for _, ltype, _, tops, layer in self.layer_defs if ltype.endswith("Loss")]

    def _budget(self, where: str, count: int) -> None:
        self._params += count
        if self._params > MAX_NET_PARAMS:
            raise CaffeNetError(f"{where}: the net's parameters would exceed {MAX_NET_PARAMS:,} values "
                                "(ports.caffe_sequence.model.MAX_NET_PARAMS)")

    @classmethod
    def from_files(cls, prototxt, caffemodel=None, phase: str = "TEST", **kwargs) -> "CaffeNet":
        """Build from a .prototxt and, optionally, copy a .caffemodel's blobs into it by layer name (a
        .caffemodel that fills none of the net's layers is refused: the net would keep its random fillers)."""
        from compat.formats.prototxt import read_prototxt

        net = cls(read_prototxt(prototxt), phase, source=str(prototxt), **kwargs)
        if caffemodel is not None:
            from compat.formats.caffemodel import read_caffemodel

            if not net.copy_trained_layers_from(read_caffemodel(caffemodel), str(caffemodel)) and net.layer_modules:
                raise CaffeNetError(f"{caffemodel}: no layer name matches the net's layers {list(net.layer_modules)}; "
                                    "the net would keep its random fillers")
        return net

    def learnable_params(self) -> List[Tuple[str, nn.Parameter, float, float]]:
        """(display name, parameter, lr_mult, decay_mult) in Caffe's order (layer by layer, blob by blob)."""
        out = []
        for lname, module in self.layer_modules.items():
            for pname, prm in module.named_parameters():
                lr, decay = self.param_specs[id(prm)]
                out.append((f"{lname}.{pname}", prm, lr, decay))
        return out

    def lstm_layers(self) -> List[nn.Module]:
        return [m for m in self.layer_modules.values() if isinstance(m, (JunhyukohLSTM, CaffeLSTM))]

    def share_trained_layers_with(self, other: "CaffeNet") -> None:
        """Caffe ``Net::ShareTrainedLayersWith``: layers of the same name use ``other``'s parameter tensors."""
        for lname, module in self.layer_modules.items():
            src = other.layer_modules[lname] if lname in other.layer_modules else None
            if src is None:
                continue
            for pname, prm in list(module.named_parameters()):
                sprm = dict(src.named_parameters())[pname]
                if sprm.shape != prm.shape:
                    raise CaffeNetError(f"cannot share {lname}.{pname}: shapes {list(sprm.shape)} and {list(prm.shape)}")
                setattr(module, pname, sprm)

    def copy_trained_layers_from(self, layers: Mapping[str, Tuple[str, Sequence[np.ndarray]]],
                                 source: str = "<weights>", *, allow_nonfinite: bool = False) -> List[str]:
        """Caffe ``Net::CopyTrainedLayersFrom``: copy blobs by layer name; returns the layers copied.

        As net.cpp does, a layer must bring as many blobs as the net's layer has and each blob must have
        the parameter's shape (``Blob::ShapeEquals``), not only as many values; every blob is checked before
        any is copied. A 4-D blob whose shape is the parameter's with leading 1s is accepted, as Caffe
        accepts blobs stored in the legacy num/channels/height/width fields (the reader gives those 4-D
        shapes; a new-style 4-D ``shape`` of that form, which Caffe would refuse, is accepted too).
        A blob holding NaN or infinity is refused, naming it, unless ``allow_nonfinite`` (Caffe copies it).
        """
        plan = []  # (layer name, [(parameter, blob)]) once every blob has been checked
        for lname, module in self.layer_modules.items():
            if lname not in layers:
                continue
            _ltype, blobs = layers[lname]
            params = list(module.parameters())
            if len(blobs) != len(params):
                raise CaffeNetError(f"{source}: layer {lname!r} has {len(blobs)} blobs; the net's layer has "
                                    f"{len(params)} (Caffe: incompatible number of blobs)")
            pairs = []
            for k, (prm, blob) in enumerate(zip(params, blobs)):
                arr = np.asarray(blob)
                if not _shape_equals(arr.shape, tuple(prm.shape)):
                    raise CaffeNetError(f"{source}: cannot copy blob {k} of layer {lname!r}: shape mismatch, the "
                                        f"file's is {list(arr.shape)}, the net's {list(prm.shape)}")
                if arr.dtype.kind not in "fiu":
                    raise CaffeNetError(f"{source}: blob {k} of layer {lname!r} is not numeric (dtype {arr.dtype})")
                if not allow_nonfinite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                    bad = int(arr.size - np.isfinite(arr).sum())
                    raise CaffeNetError(f"{source}: blob {k} of layer {lname!r} holds {bad} NaN or infinite "
                                        "values (allow_nonfinite=True copies them anyway)")
                pairs.append((prm, arr))
            plan.append((lname, pairs))
        with torch.no_grad():
            for _lname, pairs in plan:
                for prm, arr in pairs:
                    prm.copy_(torch.as_tensor(arr.reshape(prm.shape), dtype=prm.dtype))
        return [lname for lname, _ in plan]

    def blobs_by_layer(self) -> Dict[str, Tuple[str, List[np.ndarray]]]:
        """{layer name: (type, [numpy blobs])} for every layer with parameters (``write_caffemodel`` input)."""
        types = {n: t for n, t, _, _, _ in self.layer_defs}
        return {n: (types[n], [p.detach().cpu().numpy().copy() for p in m.parameters()])
                for n, m in self.layer_modules.items()}

    def forward(self, kernel: str = "auto", **inputs: Tensor) -> Dict[str, Tensor]:
        """Run the net's layers in file order, as Caffe's ``Net::Forward``.

        Args:
            inputs: the input blobs by name (``data=``, ``clip=``, ...), each of its declared shape; an input
                not given is zeros of that shape (Blob memory starts zeroed).
            kernel: passed to the LSTM layers (the core's kernel, "auto" for its choice).

        Returns:
            every blob of the net by name (``net.output_names`` lists the tops nobody consumes).
        """
        blobs: Dict[str, Tensor] = {}
        unknown = sorted(set(inputs) - set(self.input_shapes))
        if unknown:
            raise CaffeNetError(f"net {self.name!r} has no input blobs {unknown}; its inputs are {list(self.input_shapes)}")
        like = next(iter(inputs.values()), None)
        device = like.device if like is not None else None
        for n, shape in self.input_shapes.items():
            # A net input nobody fills holds zeros of its declared shape (Blob memory starts zeroed), as the
            # TEST net's "label" does in lstm_sequence.cpp.
            blobs[n] = inputs[n] if n in inputs else torch.zeros(shape, dtype=self.dtype, device=device)
        modules = self.layer_modules
        for lname, ltype, bottoms, tops, _ in self.layer_defs:
            if ltype == "Input":
                missing = [t for t in tops if t not in blobs]
                if missing:
                    raise CaffeNetError(f"input blobs {missing} were not given")
                continue
            if ltype == "Silence":
                continue
            try:
                args = [blobs[b] for b in bottoms]
            except KeyError as exc:
                raise CaffeNetError(f"layer {lname!r} needs blob {exc.args[0]!r}, which was not given or computed") from None
            if ltype == "Lstm":
                blobs[tops[0]] = modules[lname](args[0], args[1] if len(args) > 1 else None, kernel=kernel)
            elif ltype == "LSTM":
                module = modules[lname]
                if module.expose_hidden:
                    static = args[2] if len(args) == 5 else None
                    h, hT, cT = module(args[0], args[1], static, h0=args[-2], c0=args[-1], kernel=kernel)
                    blobs[tops[0]], blobs[tops[1]], blobs[tops[2]] = h, hT, cT
                else:
                    blobs[tops[0]] = module(args[0], args[1], args[2] if len(args) > 2 else None, kernel=kernel)
            elif ltype in ("InnerProduct", "Embed"):
                blobs[tops[0]] = modules[lname](args[0])
            elif ltype == "Dropout":   # the net's phase decides, as Caffe's layer phase_ does
                blobs[tops[0]] = caffe_layers.dropout(args[0], modules[lname].dropout_ratio, self.phase == "TRAIN")
            elif ltype in _SHAPE_LAYERS:
                module = modules[lname]
                outs = module(args) if ltype in ("Concat", "Eltwise") else module(args[0])
                for t, o in zip(tops, outs if isinstance(outs, tuple) else (outs,)):
                    blobs[t] = o
            elif ltype == "EuclideanLoss":
                blobs[tops[0]] = euclidean_loss(args[0], args[1])
        return blobs

    def loss(self, blobs: Mapping[str, Tensor]) -> Tensor:
        """Sum of the loss layers' tops, each times its loss_weight (1, Caffe's default for *Loss layers)."""
        total = None
        for top, weight in self.loss_terms:
            term = blobs[top] if weight == 1.0 else blobs[top] * weight  # (x * 1.0 is x, exactly)
            total = term if total is None else total + term
        if total is None:
            raise CaffeNetError(f"net {self.name!r} in phase {self.phase} has no loss layer")
        return total
