"""What the converter knows about one LSTM found in a legacy file: :class:`LSTMSpec`.

A reader of a legacy format turns each LSTM it finds into an :class:`LSTMSpec`: its name in the file
(the TF variable scope, the Keras layer name, the ONNX node name, ...), what kind of LSTM it is, its
weights already in PyTorch's canonical layout (gate blocks i, f, g, o; ``weight_ih [4H, in]``,
``weight_hh [4H, H or P]``, ``bias_ih``, ``bias_hh`` ``[4H]``, ``weight_hr [P, H]``, ``peephole [3, H]``
rows i, f, o), the semantics options the PyTorch side needs to compute what the source framework
computed, and, for the report, what the file could not say.

Weights are numpy arrays in the file's own dtype. A layer is a dict of those names; a bidirectional
layer is a pair ``(forward, backward)`` of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

Layer = Dict[str, np.ndarray]
LayerEntry = Union[Layer, Tuple[Layer, Layer]]

DIRECTIONS = ("forward", "reverse", "bidirectional")
# The default activations of every framework here: gates sigmoid, cell input tanh, cell output tanh.
DEFAULT_ACTIVATIONS = ("sigmoid", "tanh", "tanh")

# The tensor names of one canonical direction, in the order torch.nn.LSTM names them.
CANONICAL_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "peephole")


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
class LSTMSpec:
    """One LSTM of a legacy file, ready for PyTorch."""

    name: str
    source_format: str          # "tf1", "keras", "onnx", "theano", "caffe"
    variant: str                # e.g. "LSTMCell (peepholes, num_proj=2)", "Keras 2 LSTM", "ONNX LSTM"
    layers: List[LayerEntry]
    direction: str = "forward"
    batch_first: bool = False
    activations: Tuple = DEFAULT_ACTIVATIONS
    cell_clip: Optional[float] = None
    proj_clip: Optional[float] = None
    preact_clip: Optional[float] = None
    input_forget: bool = False
    forget_bias: float = 0.0    # already folded into bias_hh; kept for the report
    unknowns: List[Unknown] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    # How the source framework runs it and its tensors in the source's own layout and names, for the
    # verification against reference/ (verify.py): one entry per layer, a tuple of one dict per direction.
    semantics: Dict[str, object] = field(default_factory=dict)
    source: List[Tuple[Dict[str, np.ndarray], ...]] = field(default_factory=list)

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {self.direction!r}")
        if not self.layers:
            raise ValueError(f"{self.name}: an LSTM needs at least one layer")

    # --- sizes --------------------------------------------------------------------------------------
    def directions(self, layer: int) -> Tuple[Layer, ...]:
        entry = self.layers[layer]
        return tuple(entry) if isinstance(entry, tuple) else (entry,)

    @property
    def first(self) -> Layer:
        return self.directions(0)[0]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def input_size(self) -> int:
        return int(self.first["weight_ih"].shape[1])

    @property
    def hidden_size(self) -> int:
        return int(self.first["weight_ih"].shape[0] // 4)

    @property
    def proj_size(self) -> int:
        w = self.first.get("weight_hr")
        return 0 if w is None else int(w.shape[0])

    @property
    def output_size(self) -> int:
        """Features of the output at each step (both directions for a bidirectional LSTM)."""
        width = self.proj_size or self.hidden_size
        return width * (2 if self.direction == "bidirectional" else 1)

    @property
    def bias(self) -> bool:
        return self.first.get("bias_ih") is not None or self.first.get("bias_hh") is not None

    @property
    def peepholes(self) -> bool:
        return self.first.get("peephole") is not None

    @property
    def dtype(self) -> np.dtype:
        return self.first["weight_ih"].dtype

    # --- what PyTorch runs ------------------------------------------------------------------------------
    def torch_exact_reasons(self) -> List[str]:
        """Why plain ``torch.nn.LSTM`` cannot compute this LSTM exactly (empty: it can)."""
        reasons = []
        if tuple(self.activations) != DEFAULT_ACTIVATIONS:
            reasons.append(f"activations {list(self.activations)}")
        if self.peepholes:
            reasons.append("peepholes")
        if self.cell_clip is not None:
            reasons.append(f"cell_clip={self.cell_clip}")
        if self.proj_clip is not None:
            reasons.append(f"proj_clip={self.proj_clip}")
        if self.preact_clip is not None:
            reasons.append(f"clip={self.preact_clip} on the pre-activations")
        if self.input_forget:
            reasons.append("input_forget (f = 1 - i)")
        if self.direction == "reverse":
            reasons.append("a reverse-only layer")
        if self.proj_size and self.proj_size >= self.hidden_size:
            reasons.append(f"a projection to {self.proj_size} >= hidden size {self.hidden_size} (proj_size must be smaller)")
        return reasons

    @property
    def module_kind(self) -> str:
        return "compat.lstm.LSTM" if self.torch_exact_reasons() else "torch.nn.LSTM"

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
                out[f"weight_ih{suffix}"] = w["weight_ih"]
                out[f"weight_hh{suffix}"] = w["weight_hh"]
                if has_bias:
                    zeros = np.zeros(w["weight_ih"].shape[0], dtype=w["weight_ih"].dtype)
                    out[f"bias_ih{suffix}"] = w["bias_ih"] if w.get("bias_ih") is not None else zeros
                    out[f"bias_hh{suffix}"] = w["bias_hh"] if w.get("bias_hh") is not None else zeros
                if w.get("weight_hr") is not None:
                    out[f"weight_hr{suffix}"] = w["weight_hr"]
                if w.get("peephole") is not None:
                    out[f"peephole{suffix}"] = w["peephole"]
        return out

    def semantics_options(self) -> Dict[str, object]:
        """The keyword options of ``compat.lstm.LSTM`` beyond the sizes (empty for plain PyTorch)."""
        opts: Dict[str, object] = {}
        if tuple(self.activations) != DEFAULT_ACTIVATIONS:
            opts["activations"] = [list(a) if isinstance(a, (list, tuple)) else a for a in self.activations]
        for name in ("cell_clip", "proj_clip", "preact_clip"):
            if getattr(self, name) is not None:
                opts[name] = getattr(self, name)
        if self.input_forget:
            opts["input_forget"] = True
        if self.direction == "reverse":
            opts["direction"] = "reverse"
        return opts


def check_shapes(spec_name: str, layers: Sequence[LayerEntry]) -> None:
    """Every direction of every layer has consistent canonical shapes; raises ValueError naming the tensor."""
    hidden = None
    for k, entry in enumerate(layers):
        for d, w in enumerate(entry if isinstance(entry, tuple) else (entry,)):
            where = f"{spec_name} layer {k}" + (" backward" if d == 1 else "")
            unknown = set(w) - set(CANONICAL_NAMES)
            if unknown:
                raise ValueError(f"{where}: unexpected tensors {sorted(unknown)}")
            w_ih, w_hh = w["weight_ih"], w["weight_hh"]
            four_h = w_ih.shape[0]
            if w_ih.ndim != 2 or four_h % 4 or four_h == 0:
                raise ValueError(f"{where}: weight_ih has shape {list(w_ih.shape)}; expected [4H, in]")
            h = four_h // 4
            hidden = h if hidden is None else hidden
            if h != hidden:
                raise ValueError(f"{where}: hidden size {h}; layer 0 has {hidden}")
            width = h if w.get("weight_hr") is None else w["weight_hr"].shape[0]
            if w_hh.shape != (four_h, width):
                raise ValueError(f"{where}: weight_hh has shape {list(w_hh.shape)}; expected [{four_h}, {width}]")
            for b in ("bias_ih", "bias_hh"):
                if w.get(b) is not None and w[b].shape != (four_h,):
                    raise ValueError(f"{where}: {b} has shape {list(w[b].shape)}; expected [{four_h}]")
            if w.get("weight_hr") is not None and w["weight_hr"].shape[1] != h:
                raise ValueError(f"{where}: weight_hr has shape {list(w['weight_hr'].shape)}; expected [P, {h}]")
            if w.get("peephole") is not None and w["peephole"].shape != (3, h):
                raise ValueError(f"{where}: peephole has shape {list(w['peephole'].shape)}; expected [3, {h}]")
