"""The Keras layers a whole model converts: one record per layer kind, registered in :data:`LAYERS`.

Each record (a class registered with :func:`kind`) holds everything about one kind of node in one place:

- ``keras``: the Keras class names it reads (every version's: Keras 1's ``Convolution1D`` is ``Conv1D``);
- ``read(call)``: at conversion time, the Keras layer's configuration and weights (in Keras's order, as
  the file holds them) -> the node's config (JSON) and tensors in the module's layout; every setting that
  changes the numbers is read or refused by name, the others (initialisers, regularisers, constraints,
  names, dtypes, training-only settings) are listed as inert;
- ``check(config, error)``: at load time, the stored config's types and ranges;
- ``build(config, recurrent)``: the module (a plain ``torch.nn`` module wherever the semantics are exactly
  PyTorch's, else :mod:`compat.layers`' or :mod:`compat.convert.modules`');
- ``emit(config, e)``: the node as Python for ``--emit-python`` (:mod:`compat.convert.emit`).

The operations on masks (``NotEqual``, ``Any``, ...) are kinds too: Keras 3 files store them as operations
of the saved graph, and for the other versions :mod:`compat.frameworks.keras.masks` writes them where
Keras's ``compute_mask`` would compute a mask.

Recurrent layers are a registry entry like the others: :data:`RECURRENT` lists the Keras classes whose
conversion the recurrent converter provides (``LSTM``, ``CuDNNLSTM``, ``GRU``, ``CuDNNGRU``, ``SimpleRNN``);
a node of such a layer (or of ``Bidirectional`` around one) runs the converted recurrent
module through :class:`compat.frameworks.keras.recurrent.KerasRNN`.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from torch import nn

from compat.convert.graph import Emitted, LayerKind, check_ints
from compat.convert.graph import check_bools as _bool, check_keys as _keys
from compat.errors import InputError
from compat.layers import activations as acts
from compat.layers.conv import Conv1d
from compat.layers.masks import Cat, ExpandDims, Fill, Logical, Masking, NotEqual, Reduce
from compat.layers.merge import OPS as MERGE_OPS
from compat.layers.merge import Concatenate, Merge
from compat.layers.normalization import BatchNorm, LayerNorm
from compat.layers.pooling import GlobalPool1d, Pool1d
from compat.layers.shape import Flatten, Permute, RepeatVector, Reshape
from compat.layers.time_distributed import TimeDistributed

LAYERS: Dict[str, LayerKind] = {}      # node kind -> LayerKind (load time)
READERS: Dict[str, type] = {}          # Keras class name -> the record that reads it (conversion time)
# Keras classes converted by the recurrent converter (compat.frameworks.keras.discover, gru.py)
RECURRENT = ("LSTM", "CuDNNLSTM", "GRU", "CuDNNGRU", "SimpleRNN")
# Of those, the cuDNN layers: they take no mask (supports_masking False in Keras 2 and tf.keras)
CUDNN = ("CuDNNLSTM", "CuDNNGRU")
# Of those, the layers with one state (h; an LSTM has two, h and c)
ONE_STATE = ("GRU", "CuDNNGRU", "SimpleRNN")


class KerasModelError(InputError, ValueError):
    """A Keras model that cannot be converted whole; the message names the file, the layer and why."""


@dataclass
class Version:
    """The Keras that wrote the file: ``major``, ``minor``, ``tf_keras`` (tf.keras / tf-keras, or standalone
    Keras >= 2.4, which is tf.keras), and the backend the file names (``""`` when it names none)."""

    major: int
    minor: int
    tf_keras: bool
    backend: str = ""
    patch: int = 0

    def __ge__(self, other) -> bool:
        return (self.major, self.minor) >= tuple(other)

    @property
    def standalone2(self) -> bool:
        """Standalone Keras 2.0-2.3 (its own backends, its own masking rules)."""
        return self.major == 2 and not self.tf_keras


@dataclass
class Call:
    """One Keras layer as a reader sees it: its class, configuration, weights in Keras's order, the version,
    and what the graph knows of its input (``input_shape``: Keras's, batch axis first, None where unknown)."""

    name: str
    cls: str
    config: dict
    weights: List[np.ndarray]
    version: Version
    where: str
    input_shapes: List[Optional[List[Optional[int]]]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def fail(self, message: str) -> KerasModelError:
        return KerasModelError(f"{self.where}: {message}")


# --- reading configurations ----------------------------------------------------------------------------
INERT = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "input_shape", "batch_size", "input_dim",
         "input_length", "input_dtype", "seed", "init", "inner_init", "activity_regularizer", "build_config",
         "noise_shape", "autocast", "synchronized", "fused", "virtual_batch_size", "moving_mean_initializer",
         "moving_variance_initializer", "renorm_clipping", "renorm_momentum", "implementation"}
INERT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
TRAINING_ONLY = {"rate": "dropout acts in training only", "p": "dropout acts in training only",
                 "stddev": "noise acts in training only", "sigma": "noise acts in training only",
                 "dropout": "dropout acts in training only", "momentum": "the moving averages' update (training)"}


def settings(call: Call, handled: Sequence[str]) -> dict:
    """The configuration's settings this reader must honour; a setting neither handled nor inert is refused by
    name (None-valued settings are features left off)."""
    cfg = call.config
    for key, value in cfg.items():
        if key in handled or key in INERT or key.endswith(INERT_SUFFIXES) or key in ("W_regularizer", "b_regularizer",
                                                                                      "W_constraint", "b_constraint"):
            continue
        if key in TRAINING_ONLY:
            call.notes.append(f"{key}={value!r}: {TRAINING_ONLY[key]}")
            continue
        if value is None:
            continue
        raise call.fail(f"the {call.cls} setting {key}={_short(value)} is not converted")
    return cfg


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _int(call: Call, key: str, value, lo: int = 1) -> int:
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if type(value) is not int or value < lo:
        raise call.fail(f"{key}={_short(value)}: expected an integer >= {lo}")
    return value


def activation_name(call: Call, value, role: str = "activation") -> str:
    """A Keras activation setting as a name of :mod:`compat.layers.activations` (Keras 1/2's ``hard_sigmoid``
    is not Keras 3's)."""
    if value is None:
        return "linear"
    if isinstance(value, dict):  # Keras 3 may serialise a built-in activation as an object
        config = value.get("config")
        value = config.get("name") if isinstance(config, dict) else value.get("class_name")
        if not isinstance(value, str):
            raise call.fail(f"{role} is a custom object; only built-in activations are converted")
    if not isinstance(value, str):
        raise call.fail(f"{role} {_short(value)} is not a built-in activation name")
    name = value.rsplit(".", 1)[-1]
    if name == "hard_sigmoid":
        return "hard_sigmoid_keras3" if call.version.major >= 3 else "hard_sigmoid_keras2"
    if name in ("swish", "silu"):
        return "silu"
    if name in acts.FACTORIES and not name.startswith("hard_sigmoid_") and name != "gelu_tanh":
        if name in ("relu6", "leaky_relu", "mish", "log_softmax", "hard_silu") and call.version.major < 3:
            if not (name == "mish" and call.version.tf_keras):
                raise call.fail(f"{role} {name!r} is no built-in activation of Keras {call.version.major}")
        return name
    raise call.fail(f"{role} {name!r} is not an activation this converter knows ({', '.join(ACTIVATION_NAMES)})")


ACTIVATION_NAMES = ("linear", "relu", "sigmoid", "tanh", "softmax", "softsign", "softplus", "elu", "selu", "swish",
                    "gelu", "exponential", "hard_sigmoid", "relu6", "leaky_relu", "mish", "log_softmax", "hard_silu")


def _check_activation(config: dict, error, key: str = "activation") -> None:
    if config.get(key) not in acts.NAMES:
        raise error(key, f"{config.get(key)!r} is not one of {list(acts.NAMES)}")


def _activation_emit(name: str) -> Tuple[str, str]:
    """(constructor of the activation module, its plain torch call on ``{x}``) for emitted Python."""
    plain = {"linear": "{x}", "relu": "torch.relu({x})", "sigmoid": "torch.sigmoid({x})", "tanh": "torch.tanh({x})",
             "softmax": "torch.softmax({x}, dim=-1)", "log_softmax": "torch.log_softmax({x}, dim=-1)",
             "elu": "F.elu({x})", "selu": "F.selu({x})", "silu": "F.silu({x})", "gelu": "F.gelu({x})",
             "softsign": "F.softsign({x})", "relu6": "F.relu6({x})", "leaky_relu": "F.leaky_relu({x}, 0.2)",
             "mish": "F.mish({x})", "exponential": "torch.exp({x})", "hard_sigmoid_keras3": "F.hardsigmoid({x})",
             "hard_silu": "F.hardswish({x})",
             "hard_sigmoid_keras2": "torch.clamp(0.2 * {x} + 0.5, 0.0, 1.0)  # Keras 1/2's hard_sigmoid",
             "softplus": "torch.logaddexp({x}, torch.zeros_like({x}))  # softplus without torch's threshold"}
    return "", plain[name]


# --- the registry ---------------------------------------------------------------------------------------
def kind(name: str, keras: Sequence[str] = (), recurrent: bool = False, inputs: Tuple[str, ...] = ("ref",),
         keywords: Optional[Dict[str, str]] = None):
    """Register a record class as node kind ``name`` reading the Keras classes ``keras``; ``inputs`` and
    ``keywords``: what its module takes (:class:`compat.convert.graph.LayerKind`)."""
    def register(cls):
        LAYERS[name] = LayerKind(name, cls.check, cls.build, getattr(cls, "emit", None), recurrent,
                                 getattr(cls, "outputs", None), inputs, keywords or {})
        cls.kind = name
        for k in keras:
            READERS[k] = cls
        return cls
    return register


def _ints(config, error, *keys, lo=1):
    check_ints(config, error, *keys, lo=lo, hi=1 << 24)


def _float(config, error, key, positive=False):
    v = config.get(key)
    if type(v) not in (int, float) or not np.isfinite(v) or (positive and v <= 0):
        raise error(key, f"expected a finite number{' > 0' if positive else ''}, got {v!r}")


def _weights(call: Call, count: int, what: str) -> List[np.ndarray]:
    if len(call.weights) != count:
        raise call.fail(f"{len(call.weights)} weights; a {call.cls} with these settings has {count} ({what})")
    out = []
    for w in call.weights:
        if w.dtype.kind != "f":
            raise call.fail(f"a weight of dtype {w.dtype}; {call.cls} weights are floating point")
        out.append(np.asarray(w, dtype=np.promote_types(w.dtype, np.float32)))
    return out


# --- Dense, Activation, Embedding, Masking, identities ------------------------------------------------------
@kind("Dense", keras=("Dense",))
class DenseKind:
    """Keras ``Dense``: ``activation(x @ kernel + bias)`` on the last axis (``kernel`` [in, units]): a
    ``torch.nn.Linear`` (weight = kernel transposed), followed by the activation when it is not linear."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("units", "output_dim", "activation", "use_bias", "bias", "lora_rank", "lora_alpha",
                              "quantization_config"))
        if cfg.get("lora_rank"):
            raise call.fail("a Dense layer with LoRA weights (lora_rank) is not converted")
        units = _int(call, "units", cfg.get("units", cfg.get("output_dim")))
        use_bias = bool(cfg.get("use_bias", cfg.get("bias", True)))
        w = _weights(call, 2 if use_bias else 1, "kernel" + (", bias" if use_bias else ""))
        if w[0].ndim != 2 or w[0].shape[1] != units:
            raise call.fail(f"kernel of shape {list(w[0].shape)}; expected [in, units={units}]")
        weights = {"weight": w[0].T}
        if use_bias:
            weights["bias"] = w[1]
        config = {"in_features": int(w[0].shape[0]), "units": units, "bias": use_bias,
                  "activation": activation_name(call, cfg.get("activation"))}
        prefix = "" if config["activation"] == "linear" else "linear."
        return config, {prefix + k: v for k, v in weights.items()}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("in_features", "units", "bias", "activation"))
        _ints(config, error, "in_features", "units")
        _bool(config, error, "bias")
        _check_activation(config, error)

    @staticmethod
    def build(config, recurrent=None):
        linear = nn.Linear(config["in_features"], config["units"], bias=config["bias"])
        if config["activation"] == "linear":
            return linear
        return nn.Sequential(OrderedDict(linear=linear, activation=acts.activation(config["activation"])))

    @staticmethod
    def emit(config, e):
        init = f"nn.Linear({config['in_features']}, {config['units']}{'' if config['bias'] else ', bias=False'})"
        _, call = _activation_emit(config["activation"])
        renames = {} if config["activation"] == "linear" else {k: f"linear.{k}" for k in
                                                                 (("weight", "bias") if config["bias"] else ("weight",))}
        return Emitted(init, [f"{e.outs[0]} = " + call.format(x=f"{e.self}({e.args[0]})")], renames)


@kind("Activation", keras=("Activation",))
class ActivationKind:
    """Keras ``Activation``: the named function."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("activation",))
        return {"activation": activation_name(call, cfg.get("activation"))}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("activation",))
        _check_activation(config, error)

    @staticmethod
    def build(config, recurrent=None):
        return acts.activation(config["activation"])

    @staticmethod
    def emit(config, e):
        _, call = _activation_emit(config["activation"])
        return Emitted(None, [f"{e.outs[0]} = " + call.format(x=e.args[0])])


@kind("Identity", keras=("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                         "ActivityRegularization", "Identity"))
class IdentityKind:
    """Layers that return their input at inference: ``Dropout``, ``SpatialDropout1D``, ``GaussianNoise``,
    ``GaussianDropout``, ``AlphaDropout`` (they act in training only), ``ActivityRegularization`` (a loss)."""

    @staticmethod
    def read(call: Call):
        settings(call, ("l1", "l2"))
        if call.config.get("training") is True:  # pragma: no cover - not a config key in any version
            raise call.fail("runs in training mode")
        call.notes.append(f"{call.cls}: the identity at inference")
        return {}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ())

    @staticmethod
    def build(config, recurrent=None):
        return nn.Identity()

    @staticmethod
    def emit(config, e):
        return Emitted(None, [f"{e.outs[0]} = {e.args[0]}  # identity at inference"])


@kind("Embedding", keras=("Embedding",))
class EmbeddingKind:
    """Keras ``Embedding``: ``embeddings[ids]`` (a ``torch.nn.Embedding``, ids as integer tensors). Its mask
    (``mask_zero=True``) is a separate ``NotEqual`` node: id 0 is masked, and nothing is shifted: the row of
    id 0 is looked up like any other."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("input_dim", "output_dim", "mask_zero", "sparse", "quantization_config", "lora_rank",
                              "lora_alpha"))
        if cfg.get("sparse") or cfg.get("lora_rank"):
            raise call.fail("a sparse or LoRA Embedding is not converted")
        (w,) = _weights(call, 1, "embeddings")
        n, d = _int(call, "input_dim", cfg.get("input_dim")), _int(call, "output_dim", cfg.get("output_dim"))
        if w.shape != (n, d):
            raise call.fail(f"embeddings of shape {list(w.shape)}; expected [input_dim, output_dim] = {[n, d]}")
        return {"num_embeddings": n, "embedding_dim": d}, {"weight": w}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("num_embeddings", "embedding_dim"))
        _ints(config, error, "num_embeddings", "embedding_dim")

    @staticmethod
    def build(config, recurrent=None):
        return nn.Embedding(config["num_embeddings"], config["embedding_dim"])

    @staticmethod
    def emit(config, e):
        return Emitted(f"nn.Embedding({config['num_embeddings']}, {config['embedding_dim']})",
                       [f"{e.outs[0]} = {e.self}({e.args[0]})"])


@kind("Masking", keras=("Masking",))
class MaskingKind:
    """Keras ``Masking``: steps whose features all equal ``mask_value`` become zeros (the mask itself is a
    ``NotEqual`` and an ``Any`` node)."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("mask_value",))
        value = cfg.get("mask_value", 0.0)
        if type(value) not in (int, float) or not np.isfinite(value):
            raise call.fail(f"mask_value={_short(value)} is not a finite number")
        return {"mask_value": float(value)}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("mask_value",))
        _float(config, error, "mask_value")

    @staticmethod
    def build(config, recurrent=None):
        return Masking(config["mask_value"])

    @staticmethod
    def emit(config, e):
        x = e.args[0]
        return Emitted(None, [f"{e.outs[0]} = {x} * ({x} != {config['mask_value']!r}).any(-1, keepdim=True).to({x}.dtype)"
                              "  # Masking"])


# --- shapes ----------------------------------------------------------------------------------------------
@kind("Flatten", keras=("Flatten",))
class FlattenKind:
    """Keras ``Flatten``: every axis after the batch axis in one (channels moved last first for
    ``data_format="channels_first"``)."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("data_format",))
        return {"channels_first": cfg.get("data_format") == "channels_first"}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("channels_first",))
        _bool(config, error, "channels_first")

    @staticmethod
    def build(config, recurrent=None):
        return Flatten(True) if config["channels_first"] else nn.Flatten()

    @staticmethod
    def emit(config, e):
        x = e.args[0]
        if config["channels_first"]:
            x = f"{x}.permute(0, *range(2, {x}.dim()), 1)"
        return Emitted(None, [f"{e.outs[0]} = torch.flatten({x}, 1)"])


@kind("Reshape", keras=("Reshape",))
class ReshapeKind:
    """Keras ``Reshape(target_shape)``: the batch axis kept."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("target_shape", "dims"))
        shape = cfg.get("target_shape", cfg.get("dims"))
        if not isinstance(shape, list) or not shape or not all(type(d) is int and (d > 0 or d == -1) for d in shape):
            raise call.fail(f"target_shape={_short(shape)} is not a list of positive sizes (one may be -1)")
        return {"target_shape": list(shape)}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("target_shape",))
        shape = config["target_shape"]
        if not isinstance(shape, list) or not 1 <= len(shape) <= 8 or not all(
                type(d) is int and (0 < d <= 1 << 31 or d == -1) for d in shape) or shape.count(-1) > 1:
            raise error("target_shape", f"{shape!r} is not a list of positive sizes (one may be -1)")

    @staticmethod
    def build(config, recurrent=None):
        return Reshape(config["target_shape"])

    @staticmethod
    def emit(config, e):
        dims = ", ".join(map(str, config["target_shape"]))
        return Emitted(None, [f"{e.outs[0]} = {e.args[0]}.reshape({e.args[0]}.shape[0], {dims})"])


@kind("Permute", keras=("Permute",))
class PermuteKind:
    """Keras ``Permute(dims)``: the axes after the batch axis, counted from 1."""

    @staticmethod
    def read(call: Call):
        dims = settings(call, ("dims",)).get("dims")
        if not isinstance(dims, list) or sorted(dims) != list(range(1, len(dims) + 1)):
            raise call.fail(f"dims={_short(dims)} is not a permutation of 1..n")
        return {"dims": list(dims)}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("dims",))
        dims = config["dims"]
        if not isinstance(dims, list) or len(dims) > 8 or sorted(dims) != list(range(1, len(dims) + 1)):
            raise error("dims", f"{dims!r} is not a permutation of 1..n")

    @staticmethod
    def build(config, recurrent=None):
        return Permute(config["dims"])

    @staticmethod
    def emit(config, e):
        return Emitted(None, [f"{e.outs[0]} = {e.args[0]}.permute(0, {', '.join(map(str, config['dims']))})"])


@kind("RepeatVector", keras=("RepeatVector",))
class RepeatVectorKind:
    """Keras ``RepeatVector(n)``: [B, F] -> [B, n, F]."""

    @staticmethod
    def read(call: Call):
        return {"n": _int(call, "n", settings(call, ("n",)).get("n"))}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("n",))
        _ints(config, error, "n")

    @staticmethod
    def build(config, recurrent=None):
        return RepeatVector(config["n"])

    @staticmethod
    def emit(config, e):
        x = e.args[0]
        return Emitted(None, [f"{e.outs[0]} = {x}.unsqueeze(1).expand(-1, {config['n']}, *{x}.shape[1:])"])


# --- convolution and pooling -------------------------------------------------------------------------------
def _data_format(call: Call, cfg: dict) -> bool:
    fmt = cfg.get("data_format", "channels_last") or "channels_last"
    if fmt not in ("channels_last", "channels_first"):
        raise call.fail(f"data_format={_short(fmt)}")
    return fmt == "channels_last"


@kind("Conv1D", keras=("Conv1D", "Convolution1D"))
class Conv1DKind:
    """Keras ``Conv1D`` (Keras 1 ``Convolution1D``): a cross-correlation over the time axis, ``kernel`` [k, in /
    groups, filters] (Keras 1: [k, 1, in, filters]), padding ``valid``, ``same`` (TF's split) or ``causal``.
    Kernels saved by the Theano backend are flipped in time first, as Keras does when it loads them into
    another backend (keras 2.x ``engine/saving.py`` ``preprocess_weights_for_loading``, ``convert_kernel``):
    Theano convolves, TensorFlow correlates."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("filters", "nb_filter", "kernel_size", "filter_length", "strides", "subsample_length",
                              "padding", "border_mode", "data_format", "dilation_rate", "groups", "activation",
                              "use_bias", "bias", "lora_rank", "quantization_config"))
        filters = _int(call, "filters", cfg.get("filters", cfg.get("nb_filter")))
        k = _int(call, "kernel_size", cfg.get("kernel_size", cfg.get("filter_length")))
        stride = _int(call, "strides", cfg.get("strides", cfg.get("subsample_length", 1)))
        dilation = _int(call, "dilation_rate", cfg.get("dilation_rate", 1))
        groups = _int(call, "groups", cfg.get("groups", 1))
        padding = cfg.get("padding", cfg.get("border_mode", "valid"))
        if padding not in ("valid", "same", "causal"):
            raise call.fail(f"padding={_short(padding)} is not converted")
        channels_last = _data_format(call, cfg)
        use_bias = bool(cfg.get("use_bias", cfg.get("bias", True)))
        w = _weights(call, 2 if use_bias else 1, "kernel" + (", bias" if use_bias else ""))
        kernel = w[0]
        if kernel.ndim == 4 and kernel.shape[1] == 1:   # Keras 1: [k, 1, in, filters]
            kernel = kernel[:, 0]
        if kernel.ndim != 3 or kernel.shape[0] != k or kernel.shape[2] != filters:
            raise call.fail(f"kernel of shape {list(w[0].shape)}; expected [kernel_size={k}, in / groups, "
                            f"filters={filters}]")
        if call.version.backend == "theano":
            if padding != "valid" and not (padding == "same" and k % 2 == 1 and stride == 1):
                raise call.fail("a Theano-backend convolution with 'same' padding and an even kernel or a stride "
                                "pads otherwise than TensorFlow; not converted")
            kernel = kernel[::-1]
            call.notes.append("kernel flipped in time: the Theano backend convolves (Keras's convert_kernel)")
        weights = {"weight": np.ascontiguousarray(kernel.transpose(2, 1, 0))}
        if use_bias:
            weights["bias"] = w[1]
        config = {"in_channels": int(kernel.shape[1]) * groups, "filters": filters, "kernel_size": k, "stride": stride,
                  "padding": padding, "dilation": dilation, "groups": groups, "bias": use_bias,
                  "channels_last": channels_last, "activation": activation_name(call, cfg.get("activation"))}
        prefix = "" if config["activation"] == "linear" else "conv."
        return config, {prefix + k: v for k, v in weights.items()}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("in_channels", "filters", "kernel_size", "stride", "padding", "dilation", "groups",
                              "bias", "channels_last", "activation"))
        _ints(config, error, "in_channels", "filters", "kernel_size", "stride", "dilation", "groups")
        _bool(config, error, "bias", "channels_last")
        if config["padding"] not in ("valid", "same", "causal"):
            raise error("padding", f"{config['padding']!r} is not valid, same or causal")
        if config["in_channels"] % config["groups"] or config["filters"] % config["groups"]:
            raise error("groups", "does not divide the channels")
        _check_activation(config, error)

    @staticmethod
    def build(config, recurrent=None):
        conv = Conv1d(config["in_channels"], config["filters"], config["kernel_size"], stride=config["stride"],
                      padding=config["padding"], dilation=config["dilation"], groups=config["groups"],
                      bias=config["bias"], channels_last=config["channels_last"])
        if config["activation"] == "linear":
            return conv
        return nn.Sequential(OrderedDict(conv=conv, activation=acts.activation(config["activation"])))

    @staticmethod
    def emit(config, e):
        c = config
        opts = "".join([f", stride={c['stride']}" if c["stride"] != 1 else "",
                        f", dilation={c['dilation']}" if c["dilation"] != 1 else "",
                        f", groups={c['groups']}" if c["groups"] != 1 else "", "" if c["bias"] else ", bias=False"])
        x = e.args[0]
        lines = []
        if c["channels_last"]:
            lines.append(f"{e.outs[0]} = {x}.transpose(1, 2)  # Keras's [B, T, C] -> torch's [B, C, T]")
            x = e.outs[0]
        if c["padding"] == "valid":
            init = f"nn.Conv1d({c['in_channels']}, {c['filters']}, {c['kernel_size']}{opts})"
            lines.append(f"{e.outs[0]} = {e.self}({x})")
            if c["channels_last"]:
                lines.append(f"{e.outs[0]} = {e.outs[0]}.transpose(1, 2)")
        else:
            init = (f"Conv1d({c['in_channels']}, {c['filters']}, {c['kernel_size']}{opts}, padding={c['padding']!r}, "
                    f"channels_last={c['channels_last']})  # Keras's {c['padding']!r} padding")
            lines = [f"{e.outs[0]} = {e.self}({e.args[0]})"]
        _, act = _activation_emit(c["activation"])
        if c["activation"] != "linear":
            lines.append(f"{e.outs[0]} = " + act.format(x=e.outs[0]))
        renames = {} if c["activation"] == "linear" else {k: f"conv.{k}" for k in
                                                            (("weight", "bias") if c["bias"] else ("weight",))}
        imports = () if c["padding"] == "valid" else ("from compat.layers.conv import Conv1d",)
        return Emitted(init, lines, renames, imports)


@kind("Pool1D", keras=("MaxPooling1D", "AveragePooling1D", "MaxPool1D", "AvgPool1D"))
class Pool1DKind:
    """Keras ``MaxPooling1D`` / ``AveragePooling1D`` (Keras 1: ``pool_length``, ``stride``, ``border_mode``):
    TF's ``same`` padding excludes the padding from an average (``compat.layers.pooling.Pool1d``)."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("pool_size", "pool_length", "strides", "stride", "padding", "border_mode",
                              "data_format"))
        size = _int(call, "pool_size", cfg.get("pool_size", cfg.get("pool_length", 2)))
        stride = cfg.get("strides", cfg.get("stride"))
        stride = size if stride is None else _int(call, "strides", stride)
        padding = cfg.get("padding", cfg.get("border_mode", "valid"))
        if padding not in ("valid", "same"):
            raise call.fail(f"padding={_short(padding)} is not converted")
        mode = "max" if call.cls.startswith("Max") else "avg"
        if padding == "same" and mode == "avg" and call.version.major >= 3 and call.version.backend == "torch":
            call.notes.append("Keras 3's torch backend counts replicated edge values in a 'same' average where the "
                              "padding is uneven; this module follows TensorFlow's (the padding not counted)")
        return {"mode": mode, "pool_size": size, "stride": stride, "padding": padding,
                "channels_last": _data_format(call, cfg)}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("mode", "pool_size", "stride", "padding", "channels_last"))
        _ints(config, error, "pool_size", "stride")
        _bool(config, error, "channels_last")
        if config["mode"] not in ("max", "avg") or config["padding"] not in ("valid", "same"):
            raise error("", f"mode {config['mode']!r} / padding {config['padding']!r}")

    @staticmethod
    def build(config, recurrent=None):
        return Pool1d(config["mode"], config["pool_size"], config["stride"], config["padding"],
                      config["channels_last"])

    @staticmethod
    def emit(config, e):
        c = config
        x = e.args[0]
        if c["padding"] == "valid":
            fn = "F.max_pool1d" if c["mode"] == "max" else "F.avg_pool1d"
            inner = f"{x}.transpose(1, 2)" if c["channels_last"] else x
            call = f"{fn}({inner}, {c['pool_size']}, {c['stride']})"
            return Emitted(None, [f"{e.outs[0]} = {call}" + (".transpose(1, 2)" if c["channels_last"] else "")])
        return Emitted(f"Pool1d({c['mode']!r}, {c['pool_size']}, {c['stride']}, 'same', {c['channels_last']})"
                       "  # TF's 'same' padding", [f"{e.outs[0]} = {e.self}({x})"], {},
                       ("from compat.layers.pooling import Pool1d",))


@kind("GlobalPool1D", keywords={"mask": "ref"}, keras=("GlobalAveragePooling1D", "GlobalMaxPooling1D", "GlobalAvgPool1D", "GlobalMaxPool1D"))
class GlobalPool1DKind:
    """Keras ``GlobalAveragePooling1D`` (with a mask: ``sum(x * m) / sum(m)``) and ``GlobalMaxPooling1D``."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("data_format", "keepdims"))
        mode = "max" if "Max" in call.cls else "avg"
        return {"mode": mode, "channels_last": _data_format(call, cfg), "keepdims": bool(cfg.get("keepdims", False))}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("mode", "channels_last", "keepdims"))
        _bool(config, error, "channels_last", "keepdims")
        if config["mode"] not in ("max", "avg"):
            raise error("mode", f"{config['mode']!r}")

    @staticmethod
    def build(config, recurrent=None):
        return GlobalPool1d(config["mode"], config["channels_last"], config["keepdims"])

    @staticmethod
    def emit(config, e):
        x, axis, keep = e.args[0], 1 if config["channels_last"] else 2, config["keepdims"]
        mask = e.kw.get("mask")
        if config["mode"] == "max":
            return Emitted(None, [f"{e.outs[0]} = {x}.amax({axis}, keepdim={keep})"])
        if mask is None:
            return Emitted(None, [f"{e.outs[0]} = {x}.mean({axis}, keepdim={keep})"])
        m = f"{mask}.to({x}.dtype).unsqueeze({2 if config['channels_last'] else 1})"
        return Emitted(None, [f"{e.outs[0]}_m = {m}",
                              f"{e.outs[0]} = ({x} * {e.outs[0]}_m).sum({axis}, keepdim={keep}) / "
                              f"{e.outs[0]}_m.sum({axis}, keepdim={keep})  # the mean over unmasked steps"])


# --- merges, normalisation -------------------------------------------------------------------------------
MERGES = {"Add": "add", "Multiply": "multiply", "Average": "average", "Subtract": "subtract", "Maximum": "maximum",
          "Minimum": "minimum"}
KERAS1_MODES = {"sum": "add", "mul": "multiply", "ave": "average", "max": "maximum"}


@kind("Merge", keras=tuple(MERGES) + ("Merge",), inputs=("list",), keywords={"masks": "list"})
class MergeKind:
    """Keras ``Add``, ``Multiply``, ``Average``, ``Subtract``, ``Maximum``, ``Minimum`` and Keras 1's ``Merge``
    (modes ``sum``, ``mul``, ``ave``, ``max``; ``concat`` is a ``Concatenate`` node): elementwise, in order."""

    @staticmethod
    def read(call: Call):
        if call.cls != "Merge":
            settings(call, ())
            return {"op": MERGES[call.cls], "masked": None}, {}
        cfg = settings(call, ("mode", "concat_axis", "dot_axes", "mode_type", "output_shape", "output_shape_type",
                              "output_mask", "output_mask_type", "arguments"))
        if cfg.get("mode_type", "raw") != "raw" or cfg.get("output_shape_type", "raw") not in ("raw", None) \
                or cfg.get("output_mask_type", "raw") not in ("raw", None) or cfg.get("arguments"):
            raise call.fail("a Merge whose mode, output shape or mask is a function (code in the file): refused, "
                            "never run")
        mode = cfg.get("mode")
        if mode == "concat":
            return _concatenate_config(call, cfg.get("concat_axis", -1))
        if mode not in KERAS1_MODES:
            raise call.fail(f"Merge mode={_short(mode)} is not converted")
        return {"op": KERAS1_MODES[mode], "masked": None}, {}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("op", "masked"))
        if config["op"] not in MERGE_OPS:
            raise error("op", f"{config['op']!r} is not one of {list(MERGE_OPS)}")
        masked = config["masked"]
        if masked is not None and (config["op"] not in ("multiply", "maximum", "minimum") or not isinstance(
                masked, list) or not 1 <= len(masked) <= 1000 or not all(type(m) is bool for m in masked)):
            raise error("masked", f"{masked!r:.80}")

    @staticmethod
    def build(config, recurrent=None):
        return Merge(config["op"], config["masked"])

    @staticmethod
    def emit(config, e):
        xs = e.args[0].strip("[]").split(", ")
        op = config["op"]
        if config["masked"] is not None:
            return Emitted(f"Merge({op!r}, masked={config['masked']!r})  # Keras 3 reads the inputs' masks",
                           [f"{e.outs[0]} = {e.self}({e.args[0]}, masks={e.kw['masks']})"], {},
                           ("from compat.layers.merge import Merge",))
        if op in ("add", "average", "multiply", "subtract"):
            sym = {"add": " + ", "average": " + ", "multiply": " * ", "subtract": " - "}[op]
            expr = sym.join(xs)
            if op == "average":
                expr = f"({expr}) / {len(xs)}"
        else:
            fn = "torch.maximum" if op == "maximum" else "torch.minimum"
            expr = xs[0]
            for x in xs[1:]:
                expr = f"{fn}({expr}, {x})"
        return Emitted(None, [f"{e.outs[0]} = {expr}"])


def _concatenate_config(call: Call, axis) -> Tuple[dict, dict]:
    if type(axis) is not int:
        raise call.fail(f"axis={_short(axis)} is not an integer")
    return {"axis": axis, "__kind__": "Concatenate"}, {}


@kind("Concatenate", keras=("Concatenate",), inputs=("list",))
class ConcatenateKind:
    """Keras ``Concatenate(axis)`` (the axis counts the batch axis)."""

    @staticmethod
    def read(call: Call):
        return _concatenate_config(call, settings(call, ("axis",)).get("axis", -1))

    @staticmethod
    def check(config, error):
        _keys(config, error, ("axis",))
        if type(config["axis"]) is not int or not -8 <= config["axis"] <= 8:
            raise error("axis", f"{config['axis']!r}")

    @staticmethod
    def build(config, recurrent=None):
        return Concatenate(config["axis"])

    @staticmethod
    def emit(config, e):
        return Emitted(None, [f"{e.outs[0]} = torch.cat({e.args[0]}, dim={config['axis']})"])


def _axis(call: Call, cfg: dict) -> int:
    axis = cfg.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if type(axis) is not int:
        raise call.fail(f"axis={_short(axis)}: only one axis is converted")
    return axis


@kind("BatchNormalization", keras=("BatchNormalization",))
class BatchNormKind:
    """Keras ``BatchNormalization`` at inference: the moving mean and variance (Keras 1's ``running_std`` is
    the variance); ``gamma`` / ``beta`` absent without ``scale`` / ``center`` (ones and zeros here). Keras 1's
    ``mode`` 1 and 2 normalise with the batch's statistics at inference too: refused."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("axis", "epsilon", "center", "scale", "mode", "renorm", "adjustment"))
        if cfg.get("mode", 0) != 0:
            raise call.fail(f"Keras 1 BatchNormalization mode={cfg.get('mode')!r} normalises with each batch's "
                            "statistics at inference; not converted")
        if cfg.get("renorm"):
            raise call.fail("BatchNormalization(renorm=True) is not converted")
        if cfg.get("adjustment") is not None:
            raise call.fail("BatchNormalization(adjustment=...) is code in the file: refused, never run")
        eps = cfg.get("epsilon", 1e-3)
        if type(eps) not in (int, float) or not eps > 0:
            raise call.fail(f"epsilon={_short(eps)}")
        scale, center = bool(cfg.get("scale", True)), bool(cfg.get("center", True))
        if call.version.major == 1:
            scale = center = True
        w = _weights(call, 2 + scale + center, "gamma, beta, moving mean, moving variance")
        gamma = w.pop(0) if scale else np.ones_like(w[-1])
        beta = w.pop(0) if center else np.zeros_like(w[-1])
        mean, var = w
        if not (gamma.shape == beta.shape == mean.shape == var.shape) or mean.ndim != 1:
            raise call.fail(f"weights of shapes {[list(a.shape) for a in call.weights]}; expected one [features] each")
        return ({"num_features": int(mean.shape[0]), "eps": float(eps), "axis": _axis(call, cfg)},
                {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var})

    @staticmethod
    def check(config, error):
        _keys(config, error, ("num_features", "eps", "axis"))
        _ints(config, error, "num_features")
        _float(config, error, "eps", positive=True)
        if type(config["axis"]) is not int or not -8 <= config["axis"] < 8:
            raise error("axis", f"{config['axis']!r}")

    @staticmethod
    def build(config, recurrent=None):
        return BatchNorm(config["num_features"], config["eps"], config["axis"])

    @staticmethod
    def emit(config, e):
        c = config
        if c["axis"] == -1:
            x = e.args[0]
            init = f"nn.BatchNorm1d({c['num_features']}, eps={c['eps']!r})"
            lines = [f"{e.outs[0]} = {e.self}({x}) if {x}.dim() == 2 else "
                     f"{e.self}({x}.transpose(1, -1)).transpose(1, -1)  # features last, as Keras"]
            return Emitted(init, lines)
        return Emitted(f"BatchNorm({c['num_features']}, eps={c['eps']!r}, axis={c['axis']})",
                       [f"{e.outs[0]} = {e.self}({e.args[0]})"], {}, ("from compat.layers.normalization import BatchNorm",))


@kind("LayerNormalization", keras=("LayerNormalization",))
class LayerNormKind:
    """Keras ``LayerNormalization`` over the last axis: ``(x - mean) / sqrt(var + epsilon) * gamma + beta``
    (a ``torch.nn.LayerNorm``; ``gamma`` / ``beta`` are ones / zeros without ``scale`` / ``center``)."""

    @staticmethod
    def read(call: Call):
        cfg = settings(call, ("axis", "epsilon", "center", "scale", "rms_scaling"))
        if cfg.get("rms_scaling"):
            raise call.fail("LayerNormalization(rms_scaling=True) is not converted")
        axis = _axis(call, cfg)
        shape = call.input_shapes[0] if call.input_shapes else None
        if shape and axis == len(shape) - 1:
            axis = -1
        if axis == 0:
            raise call.fail("axis=0 normalises over the batch; not converted")
        scale, center = bool(cfg.get("scale", True)), bool(cfg.get("center", True))
        w = _weights(call, scale + center, "gamma, beta")
        if not w:
            if not shape or shape[-1] is None:
                raise call.fail("without gamma and beta the feature size is not known")
            n = shape[-1]
        else:
            n = int(w[0].shape[0])
        gamma = w.pop(0) if scale else np.ones(n, np.float32)
        beta = w.pop(0) if center else np.zeros(n, gamma.dtype)
        eps = cfg.get("epsilon", 1e-3)
        if type(eps) not in (int, float) or not eps > 0:
            raise call.fail(f"epsilon={_short(eps)}")
        return {"num_features": n, "eps": float(eps), "axis": axis}, {"weight": gamma, "bias": beta}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("num_features", "eps", "axis"))
        _ints(config, error, "num_features")
        _float(config, error, "eps", positive=True)
        if type(config["axis"]) is not int or not -8 <= config["axis"] < 8 or config["axis"] in (0, -9):
            raise error("axis", f"{config['axis']!r}")

    @staticmethod
    def build(config, recurrent=None):
        if config["axis"] == -1:
            return nn.LayerNorm(config["num_features"], eps=config["eps"])
        return LayerNorm(config["num_features"], eps=config["eps"], axis=config["axis"])

    @staticmethod
    def emit(config, e):
        if config["axis"] == -1:
            return Emitted(f"nn.LayerNorm({config['num_features']}, eps={config['eps']!r})",
                           [f"{e.outs[0]} = {e.self}({e.args[0]})"])
        return Emitted(f"LayerNorm({config['num_features']}, eps={config['eps']!r}, axis={config['axis']})",
                       [f"{e.outs[0]} = {e.self}({e.args[0]})"], {}, ("from compat.layers.normalization import LayerNorm",))


# --- TimeDistributed ---------------------------------------------------------------------------------------
@kind("TimeDistributed", keras=("TimeDistributed",), keywords={"mask": "ref"})
class TimeDistributedKind:
    """Keras ``TimeDistributed(layer)``: the inner layer on every step. Its inner layer is any kind here that
    maps one tensor to one tensor (``Dense`` above all)."""

    INNER = ("Dense", "Activation", "Identity", "Flatten", "Reshape", "Permute", "RepeatVector", "Conv1D", "Pool1D",
             "GlobalPool1D", "BatchNormalization", "LayerNormalization")

    @staticmethod
    def read(call: Call, inner_kind: str, inner_config: dict, masked_steps: Optional[str]):
        return {"layer": {"kind": inner_kind, "config": inner_config}, "masked_steps": masked_steps}

    @staticmethod
    def check(config, error):
        _keys(config, error, ("layer", "masked_steps"))
        inner = config["layer"]
        if not isinstance(inner, dict) or set(inner) != {"kind", "config"} \
                or inner["kind"] not in TimeDistributedKind.INNER or not isinstance(inner["config"], dict):
            raise error("layer", f"expected {{kind, config}} of one of {list(TimeDistributedKind.INNER)}")
        LAYERS[inner["kind"]].check(inner["config"], lambda key, message: error(f"layer/config/{key}", message))
        if config["masked_steps"] not in (None, "previous_output"):
            raise error("masked_steps", f"{config['masked_steps']!r}")

    @staticmethod
    def build(config, recurrent=None):
        inner = config["layer"]
        return TimeDistributed(LAYERS[inner["kind"]].build(inner["config"], None), config["masked_steps"])

    @staticmethod
    def emit(config, e):
        inner = config["layer"]
        x, y = e.args[0], e.outs[0]
        def weights(got):   # the emitted (inner) module's names -> the TimeDistributed node's tensors
            return {k: f"module.{v}" for k, v in (got.weights or _identity_weights(inner)).items()}

        if config["masked_steps"] is None and inner["kind"] in ("Dense", "Activation", "Identity", "LayerNormalization"):
            # these act on the last axis alone: on [B, T, F] at once, as on every step
            got = LAYERS[inner["kind"]].emit(inner["config"], e)
            return Emitted(got.init, got.lines, weights(got), got.imports)
        got = LAYERS[inner["kind"]].emit(inner["config"], e.inner(f"{y}_steps", f"{y}_out"))
        lines = [f"{y}_steps = {x}.reshape(-1, *{x}.shape[2:])  # every step of every sequence"] + got.lines
        lines.append(f"{y} = {y}_out.reshape({x}.shape[0], {x}.shape[1], *{y}_out.shape[1:])")
        if config["masked_steps"]:
            mask = e.kw["mask"]
            lines += [f"{y}_prev = torch.zeros_like({y}[:, 0])  # masked steps repeat the previous output",
                      f"{y}_keep = {mask}.bool().reshape({y}.shape[0], {y}.shape[1], *[1] * ({y}.dim() - 2))",
                      f"{y}_steps = []", f"for t in range({y}.shape[1]):",
                      f"    {y}_prev = torch.where({y}_keep[:, t], {y}[:, t], {y}_prev)",
                      f"    {y}_steps.append({y}_prev)", f"{y} = torch.stack({y}_steps, 1)"]
        return Emitted(got.init, lines, weights(got), got.imports)


def _identity_weights(inner: dict) -> Dict[str, str]:
    module = LAYERS[inner["kind"]].build(inner["config"], None)
    return {k: k for k in module.state_dict()}


# --- operations on masks ---------------------------------------------------------------------------------
@kind("NotEqual", inputs=("ref", "ref?"))
class NotEqualKind:
    """``a != b`` (``keras.ops.not_equal``, ``K.not_equal``): an embedding's mask, a masking layer's first step."""

    @staticmethod
    def check(config, error):
        _keys(config, error, ("other",))
        if config["other"] is not None and type(config["other"]) not in (int, float, bool):
            raise error("other", f"{config['other']!r} is not a number")

    @staticmethod
    def build(config, recurrent=None):
        return NotEqual(config["other"])

    @staticmethod
    def emit(config, e):
        other = e.args[1] if len(e.args) > 1 else repr(config["other"])
        return Emitted(None, [f"{e.outs[0]} = {e.args[0]} != {other}"])


@kind("Reduce")
class ReduceKind:
    """``any`` / ``all`` over an axis (``keras.ops.any``, ``K.all``)."""

    @staticmethod
    def check(config, error):
        _keys(config, error, ("op", "axis", "keepdims"))
        if config["op"] not in ("any", "all"):
            raise error("op", f"{config['op']!r}")
        axis = config["axis"]
        if not (axis is None or type(axis) is int or (isinstance(axis, list) and all(type(a) is int for a in axis))):
            raise error("axis", f"{axis!r}")
        _bool(config, error, "keepdims")

    @staticmethod
    def build(config, recurrent=None):
        return Reduce(config["op"], config["axis"], config["keepdims"])

    @staticmethod
    def emit(config, e):
        axis, op, keep = config["axis"], config["op"], config["keepdims"]
        if axis is None:
            shape = f".reshape([1] * {e.args[0]}.dim())" if keep else ""
            return Emitted(None, [f"{e.outs[0]} = {e.args[0]}.bool().{op}(){shape}"])
        axes = [axis] if isinstance(axis, int) else axis
        expr = f"{e.args[0]}.bool()"
        lines = [f"{e.outs[0]} = {expr}"]
        for a in sorted(axes, key=lambda a: a if a >= 0 else 100 + a, reverse=True):
            lines.append(f"{e.outs[0]} = {e.outs[0]}.{op}({a}, keepdim={keep})")
        return Emitted(None, lines if len(lines) > 2 else [f"{e.outs[0]} = {expr}.{op}({axes[0]}, keepdim={keep})"])


def _axis_only(config, error):
    _keys(config, error, ("axis",))
    if type(config["axis"]) is not int or not -9 <= config["axis"] <= 8:
        raise error("axis", f"{config['axis']!r}")


@kind("ExpandDims")
class ExpandDimsKind:
    """``unsqueeze(axis)`` (``keras.ops.expand_dims``)."""

    @staticmethod
    def check(config, error):
        _axis_only(config, error)

    @staticmethod
    def build(config, recurrent=None):
        return ExpandDims(config["axis"])

    @staticmethod
    def emit(config, e):
        return Emitted(None, [f"{e.outs[0]} = {e.args[0]}.unsqueeze({config['axis']})"])


@kind("Fill")
class FillKind:
    """``zeros_like(x, "bool")`` / ``ones_like(x, "bool")``."""

    @staticmethod
    def check(config, error):
        _keys(config, error, ("value",))
        _bool(config, error, "value")

    @staticmethod
    def build(config, recurrent=None):
        return Fill(config["value"])

    @staticmethod
    def emit(config, e):
        return Emitted(None, [f"{e.outs[0]} = torch.full({e.args[0]}.shape, {config['value']}, dtype=torch.bool, "
                              f"device={e.args[0]}.device)"])


@kind("Logical", inputs=("ref", "ref"))
class LogicalKind:
    """``logical_or`` / ``logical_and`` of two masks."""

    @staticmethod
    def check(config, error):
        _keys(config, error, ("op",))
        if config["op"] not in ("or", "and"):
            raise error("op", f"{config['op']!r}")

    @staticmethod
    def build(config, recurrent=None):
        return Logical(config["op"])

    @staticmethod
    def emit(config, e):
        return Emitted(None, [f"{e.outs[0]} = torch.logical_{config['op']}({e.args[0]}, {e.args[1]})"])


@kind("Cat", inputs=("list",))
class CatKind:
    """``concatenate`` of masks along an axis."""

    @staticmethod
    def check(config, error):
        _axis_only(config, error)

    @staticmethod
    def build(config, recurrent=None):
        return Cat(config["axis"])

    @staticmethod
    def emit(config, e):
        return Emitted(None, [f"{e.outs[0]} = torch.cat({e.args[0]}, dim={config['axis']})"])


# --- recurrent layers --------------------------------------------------------------------------------------
@kind("Recurrent", recurrent=True, keywords={"mask": "ref", "initial_state": "list"})
class RecurrentKind:
    """A Keras recurrent layer (``LSTM``, ``CuDNNLSTM``, ``Bidirectional`` around one): the converted module
    (:func:`compat.convert.load`'s, by the layer's name) run as Keras calls it, by
    :class:`compat.frameworks.keras.recurrent.KerasRNN` (return_sequences, return_state, initial states, the
    Bidirectional merge)."""

    @staticmethod
    def check(config, error):
        from compat.frameworks.keras.recurrent import check_config

        check_config(config, error)

    @staticmethod
    def outputs(config) -> int:
        halves = 2 if config["bidirectional"] and config["merge_mode"] is None else 1
        states = config.get("states", 2) * (2 if config["bidirectional"] else 1)
        return halves + (states if config["return_state"] else 0)

    @staticmethod
    def build(config, recurrent=None):
        from compat.frameworks.keras.recurrent import KerasRNN

        return KerasRNN(recurrent, **config)

    @staticmethod
    def emit(config, e):
        from compat.frameworks.keras.recurrent import emit

        return emit(config, e)


class LayerOutputs(nn.Module):
    """Returns the tensors it is given (the outputs of a layer made of several nodes)."""

    def forward(self, xs):
        return list(xs)


@kind("Outputs", inputs=("list",))
class OutputsKind:
    """The outputs of a layer made of several nodes (an ``RNN(StackedRNNCells)``: the last cell's output, then
    each cell's states), returned as the layer returns them."""

    @staticmethod
    def check(config, error):
        _keys(config, error, ("count",))
        _ints(config, error, "count")

    @staticmethod
    def outputs(config) -> int:
        return config["count"]

    @staticmethod
    def build(config, recurrent=None):
        return LayerOutputs()

    @staticmethod
    def emit(config, e):
        return Emitted(None, [f"{', '.join(e.outs)}{',' if len(e.outs) == 1 else ''} = {e.args[0]}"])


def reader(cls: str):
    """The record that reads Keras class ``cls``, or None."""
    return READERS.get(cls)


__all__ = ["LAYERS", "READERS", "RECURRENT", "ONE_STATE", "Call", "Emitted", "KerasModelError", "Version", "activation_name",
           "kind", "reader", "settings"]
