"""What the converter knows about one LSTM found in a legacy file: :class:`LSTMSpec`.

A reader of a legacy format turns each LSTM it finds into an :class:`LSTMSpec`: its name in the file
(the TF variable scope, the Keras layer name, the ONNX node name, ...), what kind of LSTM it is, and what
:func:`compat.layouts.convert` made of its tensors and settings: the canonical weights
(:class:`compat.lstm.LayerWeights` of numpy arrays in the file's dtype, one per layer, or a
(forward, backward) pair per layer) and the :class:`compat.lstm.LSTM` options the semantics need. Besides
those: how the source framework returned its outputs where that is not the core's way (Keras's
``go_backwards`` order and masked outputs, onnxruntime's final states for empty sequences), what the
file could not say (for the table), and the tensors in the source's own layout and names with what the
numpy reference of the source framework needs to run them (for the verification).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from compat.lstm import LayerWeights

LayerEntry = Union[LayerWeights, Tuple[LayerWeights, LayerWeights]]

# The semantics options of compat.lstm.LSTM (its **semantics keywords) a converted LSTM may carry.
SEMANTICS = ("direction", "activations", "cell_clip", "proj_clip", "preact_clip", "input_forget")

# The recurrent cells a conversion holds: "lstm", "gru" (compat.gru.GRU's options: ``reset_after``, the two
# activations (gates, candidate) as compat.lstm_activations names, ``clip`` on the pre-activations) and "rnn"
# (compat.simple_rnn.RNN's: ``nonlinearity``, any compat.lstm_activations name, ``clip``).
CELLS = ("lstm", "gru", "rnn")
CELL_SEMANTICS = {"lstm": SEMANTICS, "gru": ("direction", "reset_after", "activations", "clip"),
                  "rnn": ("direction", "nonlinearity", "clip")}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
GRU_ACTIVATIONS = ("sigmoid", "tanh")

# The module classes load() builds (compat.convert.modules).
TORCH_LSTM = "torch.nn.LSTM"
CORE_LSTM = "compat.lstm.LSTM"
TORCH_GRU = "torch.nn.GRU"
CORE_GRU = "compat.gru.GRU"
TORCH_RNN = "torch.nn.RNN"
CORE_RNN = "compat.simple_rnn.RNN"
TORCH_MODULES = {"lstm": TORCH_LSTM, "gru": TORCH_GRU, "rnn": TORCH_RNN}
CORE_MODULES = {"lstm": CORE_LSTM, "gru": CORE_GRU, "rnn": CORE_RNN}
KERAS_LSTM = "compat.convert.modules.KerasLSTM"
ONNX_LSTM = "compat.convert.modules.OnnxLSTM"
ONNX_GRU = "compat.convert.modules.OnnxGRU"
KERAS_GRU = "compat.convert.modules.KerasGRU"
CAFFE_RNN = "compat.convert.modules.CaffeRNN"
CAFFE_LSTM = "compat.convert.modules.CaffeLSTM"
KERAS_RNN = "compat.convert.modules.KerasSimpleRNN"
ONNX_RNN = "compat.convert.modules.OnnxRNN"

MASKED_OUTPUTS = ("previous_h", "previous_output", "zeros", "zeros_unrolled")
MERGE_MODES = ("concat", "sum", "mul", "ave")


@dataclass
class Unknown:
    """Something the computation depends on that the file does not store.

    ``what``: the setting; ``value``: the value used, short (the table shows ``what=value``);
    ``assumed``: where it came from and what to do if it is wrong; ``loud``: a defaulted value that
    changes the numbers when wrong (printed as a warning line, not only in the table).
    """

    what: str
    value: str
    assumed: str = ""
    loud: bool = False


@dataclass
class KerasSemantics:
    """How a Keras layer returns its outputs where the core's LSTM returns them otherwise.

    ``go_backwards``: Keras returns the sequence output in the order it read it (reversed in time);
    ``masked_output``: what the layer outputs at a masked step (``reference/keras_lstm.py``):
    ``"previous_h"`` (Keras 2.0-2.2), ``"previous_output"`` (Keras >= 2.3, tf.keras, Keras 3: zeros
    before the first unmasked step), ``"zeros"`` (``Bidirectional`` returning sequences), ``"zeros_unrolled"``
    (the same, unrolled: tf.keras zeroes the outputs with the mask not reversed for ``go_backwards``). The final
    states are the same in all of them. ``merge_mode``: how ``Bidirectional`` combines its two halves.
    ``keras_dropout``: the layer's training-time dropout as its Keras version ran it
    (:class:`compat.frameworks.keras.dropout.KerasDropout`'s ``to_dict()``), None without dropout.
    """

    go_backwards: bool = False
    masked_output: str = "previous_output"
    merge_mode: str = "concat"
    keras_dropout: Optional[dict] = None

    def __post_init__(self):
        if self.masked_output not in MASKED_OUTPUTS:
            raise ValueError(f"masked_output must be one of {MASKED_OUTPUTS}, not {self.masked_output!r}")
        if self.merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}, not {self.merge_mode!r}")


@dataclass
class LSTMSpec:
    """One LSTM of a legacy file, ready for PyTorch."""

    name: str
    source_format: str          # the framework's key: "tf", "keras", "onnx", "theano", "caffe"
    variant: str                # e.g. "LSTMCell (peepholes, num_proj=2)", "Keras 2.21.0 LSTM", "ONNX LSTM"
    layers: List[LayerEntry]
    options: Dict[str, object] = field(default_factory=dict)   # compat.lstm.LSTM semantics (SEMANTICS)
    batch_first: bool = False
    keras: Optional[KerasSemantics] = None   # a Keras layer whose outputs need KerasLSTM
    onnx_lengths: bool = False               # an ONNX node whose sequence_lens need OnnxLSTM
    # The module class a framework registered for what torch.nn.LSTM cannot do (KERAS_LSTM, ONNX_LSTM): used
    # whenever torch_exact_reasons() is not empty (and always for a Keras layer with Keras semantics).
    module: Optional[str] = None
    lengths: bool = False                    # the source ran with per-sequence lengths (the check feeds some)
    masks: bool = False                      # the source ran with masks (the check feeds some)
    forget_bias: float = 0.0                 # already in bias_hh; kept for the report
    unknowns: List[Unknown] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    # For the verification against reference/ (verify.py): which oracle, what it needs, and per layer a
    # tuple of one dict per direction of the tensors in the source's own layout and names.
    oracle: str = ""
    semantics: Dict[str, object] = field(default_factory=dict)
    source: List[Tuple[Dict[str, np.ndarray], ...]] = field(default_factory=list)
    # "lstm", "gru" or "rnn" (CELLS): a GRU's and a simple RNN's weights are torch.nn.GRU's (gate rows r, z, n)
    # and torch.nn.RNN's, and their options CELL_SEMANTICS's
    cell: str = "lstm"
    # parameters of the module beyond the recurrence, by their names in it (Caffe RNN's output layer: weight_ho,
    # bias_o); a module class registered by the framework (``module``) holds them
    extra: Dict[str, np.ndarray] = field(default_factory=dict)
    # keywords of that registered module class's constructor beyond the recurrence's (JSON numbers and strings;
    # the class checks them): Caffe's static input, ``static_size``
    module_config: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"{self.name}: cell must be one of {CELLS}, not {self.cell!r}")
        known = CELL_SEMANTICS[self.cell]
        unknown = sorted(set(self.options) - set(known))
        if unknown:
            raise ValueError(f"{self.name}: options {unknown} are not semantics of a converted {self.cell} "
                             f"{list(known)}")
        if not self.layers:
            raise ValueError(f"{self.name}: a recurrent layer needs at least one layer")

    # --- sizes --------------------------------------------------------------------------------------
    def directions(self, layer: int) -> Tuple[LayerWeights, ...]:
        entry = self.layers[layer]
        return (entry,) if isinstance(entry, LayerWeights) else tuple(entry)

    @property
    def first(self) -> LayerWeights:
        return self.directions(0)[0]

    @property
    def direction(self) -> str:
        return str(self.options.get("direction", "forward"))

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def input_size(self) -> int:
        return int(self.first.input_size)

    @property
    def hidden_size(self) -> int:
        if self.cell != "lstm":
            return int(self.first.weight_hh.shape[1])
        return int(self.first.hidden_size)

    @property
    def proj_size(self) -> int:
        return int(self.first.proj_size)

    @property
    def output_size(self) -> int:
        """Features of the output at each step (both directions for a bidirectional LSTM)."""
        return self.first.output_size * (2 if self.direction == "bidirectional" else 1)

    @property
    def bias(self) -> bool:
        return any(w.bias_ih is not None or w.bias_hh is not None
                   for k in range(self.num_layers) for w in self.directions(k))

    @property
    def peepholes(self) -> bool:
        return self.first.peephole is not None

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.first.weight_ih.dtype)

    # --- what PyTorch runs ------------------------------------------------------------------------------
    def module_options(self) -> Dict[str, object]:
        """The semantics keywords of ``compat.lstm.LSTM`` (``direction="bidirectional"`` is its own flag)."""
        return {k: v for k, v in self.options.items() if not (k == "direction" and v in ("forward", "bidirectional"))}

    def torch_exact_reasons(self) -> List[str]:
        """Why plain ``torch.nn.LSTM`` cannot compute this LSTM as the source did (empty: it can)."""
        if self.cell != "lstm":
            return self._gru_rnn_reasons()
        reasons = []
        opts = self.module_options()
        if "activations" in opts:
            reasons.append(f"activations {list(opts['activations'])}")
        if self.peepholes:
            reasons.append("peepholes")
        for name, what in (("cell_clip", "cell_clip"), ("proj_clip", "proj_clip"),
                           ("preact_clip", "clip on the pre-activations")):
            if name in opts:
                reasons.append(f"{what}={opts[name]}")
        if opts.get("input_forget"):
            reasons.append("input_forget (f = 1 - i)")
        if opts.get("direction") == "reverse":
            reasons.append("a reverse-only layer")
        if self.proj_size and self.proj_size >= self.hidden_size:
            reasons.append(f"a projection to {self.proj_size} >= hidden size {self.hidden_size} "
                           "(torch's proj_size must be smaller)")
        return reasons + self._output_reasons()

    def _output_reasons(self) -> List[str]:
        """How the source returns its outputs where torch's modules return them otherwise (any cell)."""
        reasons = []
        if self.keras is not None:
            if self.keras.go_backwards:
                reasons.append("Keras's go_backwards output order")
            if self.keras.merge_mode != "concat":
                reasons.append(f"Bidirectional merge_mode={self.keras.merge_mode!r}")
            reasons.append(f"Keras's masks (masked steps output {self.keras.masked_output.replace('_', ' ')})")
        if self.onnx_lengths:
            reasons.append("onnxruntime's zero final state for an empty sequence (sequence_lens)")
        if self.extra:
            reasons.append(f"the layer's parameters beyond the recurrence ({', '.join(sorted(self.extra))})")
        return reasons

    def _gru_rnn_reasons(self) -> List[str]:
        """Why plain ``torch.nn.GRU`` / ``torch.nn.RNN`` cannot compute this GRU or simple RNN (empty: it can)."""
        reasons = []
        opts = self.module_options()
        if self.cell == "gru":
            if not opts.get("reset_after", True):
                # TF GRUCell, Keras reset_after=False, ONNX linear_before_reset=0: r multiplies h before the
                # recurrent product; torch.nn.GRU (cuDNN) multiplies the product: other numbers, never an error
                reasons.append("the reset gate applied to the state before the recurrent product (reset_after=False)")
            acts = tuple(opts.get("activations", GRU_ACTIVATIONS))
            if tuple(a.lower() if isinstance(a, str) else a for a in acts) != GRU_ACTIVATIONS:
                reasons.append(f"activations {list(acts)}")
        else:
            nl = opts.get("nonlinearity", "tanh")
            if not (isinstance(nl, str) and nl.lower() in ("tanh", "relu")):
                reasons.append(f"nonlinearity {nl!r}")
        if "clip" in opts:
            reasons.append(f"clip on the pre-activations={opts['clip']}")
        if opts.get("direction") == "reverse":
            reasons.append("a reverse-only layer")
        return reasons + self._output_reasons()

    @property
    def module_kind(self) -> str:
        if self.cell != "lstm":
            if self.module is not None and (self.keras is not None or self.onnx_lengths or self.extra):
                return self.module
            return TORCH_MODULES[self.cell] if not self.torch_exact_reasons() else CORE_MODULES[self.cell]
        if self.keras is not None:
            return self.module or KERAS_LSTM
        if not self.torch_exact_reasons():
            return TORCH_LSTM
        return self.module or CORE_LSTM

    @property
    def torch_options(self) -> Dict[str, object]:
        """The keywords of the module beyond torch's own (``reset_after``, ``activations``, ``clip``,
        ``nonlinearity``) with the values the module needs; for a GRU or simple RNN only."""
        opts = self.module_options()
        out = {k: v for k, v in opts.items() if k != "direction"}
        if self.cell == "rnn":
            out.setdefault("nonlinearity", "tanh")
        return out

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Parameters named as ``torch.nn.LSTM`` / ``compat.lstm.LSTM`` name them.

        A one-bias source gets a zero ``bias_hh`` (and a no-``bias_ih`` source a zero ``bias_ih``) so that
        both modules load it; a source with no bias at all has none.
        """
        out: Dict[str, np.ndarray] = {}
        has_bias = self.bias
        for k in range(self.num_layers):
            for d, w in enumerate(self.directions(k)):
                suffix = f"_l{k}" + ("_reverse" if d == 1 else "")
                out[f"weight_ih{suffix}"] = w.weight_ih
                out[f"weight_hh{suffix}"] = w.weight_hh
                if has_bias:
                    zeros = np.zeros(w.weight_ih.shape[0], dtype=w.weight_ih.dtype)
                    out[f"bias_ih{suffix}"] = w.bias_ih if w.bias_ih is not None else zeros
                    out[f"bias_hh{suffix}"] = w.bias_hh if w.bias_hh is not None else zeros
                if w.weight_hr is not None:
                    out[f"weight_hr{suffix}"] = w.weight_hr
                if w.peephole is not None:
                    out[f"peephole{suffix}"] = w.peephole
        out.update(self.extra)
        return {k: np.ascontiguousarray(v) for k, v in out.items()}

    def torch_layers(self) -> list:
        """The layers as :class:`LayerWeights` of torch tensors sharing the numpy arrays' memory."""
        import torch

        def t(w: LayerWeights) -> LayerWeights:
            return LayerWeights(*(None if a is None else torch.from_numpy(np.ascontiguousarray(a)) for a in w))

        return [t(e) if isinstance(e, LayerWeights) else (t(e[0]), t(e[1])) for e in self.layers]


class SpecError(ValueError):
    """Canonical weights that do not make one LSTM (a reader's error names the file around it)."""


def _check_gru_rnn(spec: LSTMSpec) -> None:
    """Every layer's and direction's shapes of a GRU (gate rows 3H) or simple RNN (H) against the first's."""
    G, H = GATES[spec.cell], spec.hidden_size
    width = spec.input_size
    D = 2 if spec.direction == "bidirectional" else 1
    for k in range(spec.num_layers):
        dirs = spec.directions(k)
        if len(dirs) != D:
            raise SpecError(f"{spec.name}: layer {k} has {len(dirs)} directions; expected {D}")
        for d, w in enumerate(dirs):
            where = f"{spec.name}: layer {k}{' (backward)' if d else ''}"
            if w.weight_hr is not None or w.peephole is not None:
                raise SpecError(f"{where}: a {spec.cell} has no projection or peepholes")
            for name, a, shape in (("weight_ih", w.weight_ih, (G * H, width)), ("weight_hh", w.weight_hh, (G * H, H)),
                                   ("bias_ih", w.bias_ih, (G * H,)), ("bias_hh", w.bias_hh, (G * H,))):
                if a is not None and tuple(a.shape) != shape:
                    raise SpecError(f"{where}: {name} has shape {list(a.shape)}; expected {list(shape)}")
        width = D * H


def check(spec: LSTMSpec) -> None:
    """The core's own shape checks of every layer and direction; raises :class:`SpecError` naming the tensor."""
    from compat.lstm import LSTMShapeError, check_weights

    if spec.cell != "lstm":
        _check_gru_rnn(spec)
    else:
        try:
            check_weights(spec.torch_layers(), spec.input_size,
                          "bidirectional" if spec.direction == "bidirectional" else "forward")
        except LSTMShapeError as e:
            raise SpecError(f"{spec.name}: {e}") from None
    dtypes = {np.dtype(a.dtype) for k in range(spec.num_layers) for w in spec.directions(k) for a in w
              if a is not None}
    if len(dtypes) != 1:
        raise SpecError(f"{spec.name}: its tensors have different dtypes {sorted(map(str, dtypes))}")
    # The file's own tensors, before any cast: an LSTM's variables share one dtype in every source
    # framework (a float16 kernel beside a float32 bias does not run in TF, Keras, ONNX or Theano).
    source = {name: str(np.dtype(a.dtype)) for entry in spec.source for tensors in entry
              for name, a in tensors.items() if isinstance(a, np.ndarray) and a.dtype.kind == "f"}
    if len(set(source.values())) > 1:
        raise SpecError(f"{spec.name}: its tensors in the file have different dtypes {source}; the source framework "
                        "runs an LSTM in one dtype")


def numpy_weights(entry):
    """:class:`LayerWeights` (or a pair of them) of torch tensors as numpy arrays sharing their memory."""
    def one(w: LayerWeights) -> LayerWeights:
        return LayerWeights(*(None if a is None else (a.detach().numpy() if hasattr(a, "detach") else np.asarray(a))
                              for a in w))

    return one(entry) if isinstance(entry, LayerWeights) else tuple(one(w) for w in entry)


# --------------------------------------------------------------------------------- everything in the source
@dataclass
class SourceItem:
    """One tensor or layer of the source and what the conversion made of it.

    ``converted``: the converted recurrent layer it went into (its name in the output is ``converted.name``),
    or None;
    ``reason``: why it was not converted (not a recurrent layer, a kind not converted yet, a wrapper whose
    semantics cannot be honoured, ...); ``recurrent``: it is (part of) a recurrent layer, so not converting
    it makes the conversion partial; ``tensors``: what of it is carried into the output under its source
    names when it is not converted (empty when converted); ``not_carried``: tensors that could not be
    carried (a string or another dtype safetensors cannot hold), each with why.
    """

    name: str
    kind: str
    shapes: Dict[str, Tuple[int, ...]] = field(default_factory=dict)
    converted: Optional["LSTMSpec"] = None
    reason: str = ""
    recurrent: bool = False
    tensors: Dict[str, np.ndarray] = field(default_factory=dict)
    not_carried: Dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.converted is not None:
            return f"converted: {self.converted.name} ({self.converted.module_kind})"
        return f"not converted: {self.reason}"


class Found(NamedTuple):
    """What a framework's ``discover`` returns: the recurrent layers converted, every item of the source, and
    where the framework's reader understands whole models, the model (``graph``,
    :class:`compat.convert.graph.GraphSpec`) or why it is not converted whole (``whole_refused``)."""

    specs: List["LSTMSpec"]
    items: List[SourceItem]
    graph: Optional[object] = None
    whole_refused: Optional[str] = None


# The dtypes a conversion's safetensors file carries unconverted tensors in (those compat.checkpoint stores).
CARRIED_DTYPES = tuple(np.dtype(d) for d in ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32",
                                             "float64"))


def carry(item: SourceItem, name: str, value) -> None:
    """Put ``value`` into ``item.tensors`` under ``name`` when safetensors can hold it, else say why not."""
    a = np.asarray(value)
    if a.dtype not in CARRIED_DTYPES:
        item.not_carried[name] = f"dtype {a.dtype} (not storable in safetensors)"
        return
    # np.asarray(order="C"), not np.ascontiguousarray, which returns a 0-d array (a scalar such as global_step)
    # as shape [1]
    item.tensors[name] = np.asarray(a, order="C")
