"""Keras's ``dropout`` / ``recurrent_dropout`` in training, with each Keras version's mask structure.

A Keras recurrent layer drops out its *input* (``dropout``; Keras 1's ``dropout_W``) and its *previous
state* ``h_tm1`` on the way into the recurrent product (``recurrent_dropout``; Keras 1's ``dropout_U``), in
training only (at inference, Keras's ``training=False``, the layer is unchanged). A mask value is 0 or
``1 / (1 - rate)`` (inverted dropout: a kept value is scaled up). The versions differ in *which* masks:

``"per_gate"``: one input mask ``[B, in]`` and one recurrent mask ``[B, H]`` per gate block (LSTM i, f, c, o;
    GRU z, r, h), drawn once per call (per batch) and reused at every step. tf-keras / Keras 2
    ``DropoutRNNCellMixin.get_dropout_mask_for_cell(inputs, training, count=4)`` (GRU ``count=3``) with
    ``implementation=1`` (``LSTMCell.call``: ``inputs_i = inputs * dp_mask[0]`` ... ``h_tm1_o = h_tm1 *
    rec_dp_mask[3]``); Keras 3 ``keras/src/layers/rnn/dropout_rnn_cell.py`` ``DropoutRNNCell`` with
    ``dropout_mask_count`` 4 / 3 (set for ``implementation=1``); Keras 1 ``recurrent.py`` ``LSTM.get_constants``
    (``B_W``, ``B_U``: four masks, one per gate, for ``consume_less`` "cpu" and "mem").
``"shared"``: the same, but the first mask serves every gate (``implementation=2``: ``inputs = inputs *
    dp_mask[0]``; Keras 3 draws a single mask then; Keras 1 ``consume_less="gpu"``: ``x * B_W[0]``,
    ``h_tm1 * B_U[0]``). A ``SimpleRNN`` always has one input and one recurrent mask (``SimpleRNNCell.call``:
    ``inputs * dp_mask``, ``prev_output * rec_dp_mask``).
``"per_step"``: tf-keras 2.x ``LSTM`` / ``GRU`` on their fused path (``tf_keras/layers/rnn/lstm.py`` and
    ``gru.py``: ``_could_use_gpu_kernel`` = tanh / sigmoid, ``recurrent_dropout == 0``, not ``unroll``,
    ``use_bias``, and for the GRU ``reset_after``; taken on CPU too): ``LSTM.call`` /
    ``GRU._defun_gru_call`` draw the mask from the *whole sequence* (``get_dropout_mask_for_cell(inputs,
    ...)`` with inputs ``[B, T, in]``) and multiply ``inputs * dropout_mask[0]`` once: a new mask at every
    step and element, shared by the gates; no recurrent dropout (the path requires none).

Other rules of the sources reproduced here:

- tf-keras and Keras 3 force ``implementation=1`` when ``recurrent_dropout`` is set (``LSTMCell.__init__``,
  ``GRUCell.__init__``: "RNN implementation=2 is not supported when recurrent_dropout is set").
- the cells apply a mask only for ``0 < rate < 1`` (``if 0 < self.dropout < 1.0``); tf-keras and Keras 3
  clamp the rates to [0, 1] (``min(1.0, max(0.0, dropout))``): a rate of 1 drops nothing. On the fused path a
  rate of 1 reaches ``tf.nn.dropout``, which refuses it: refused here when the module is built.
- Keras 2.0-2.3 (multi-backend ``keras/layers/recurrent.py`` ``GRUCell.call``, ``implementation=2``) drops
  out ``h_tm1`` in place (``h_tm1 *= rec_dp_mask[0]``) and then mixes ``h = z * h_tm1 + (1 - z) * hh`` with
  the *dropped* ``h_tm1``: ``update_uses_dropped_h``.
- each layer draws its own masks: a ``Bidirectional``'s forward and backward copies draw independently.

The masks are drawn with torch's RNG (``generator=`` or the global one), or passed in (``masks=``) to replay
masks fixed elsewhere (tests compare against the real frameworks this way). Which rule a converted layer
follows comes from the file it was read from (:func:`structure`). This module decides and draws the masks;
the recurrent core applies them (:func:`cell_masks` hands them over as :class:`compat.recurrent.masks.CellMasks`,
in the core's gate order): the per-call masks inside the cell, on the step loop; the per-step ones on the
input, before any kernel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from compat.frameworks.keras.layout import KERAS_LSTM_ORDER
from compat.layouts import gate_index
from compat.recurrent.cell import CANONICAL_GATE_ORDERS
from compat.recurrent.masks import CellMasks
from compat.rnn_layouts import ZRH_ORDER

RULES = ("per_gate", "shared", "per_step")
GENERATIONS = ("keras1", "keras2", "tf_keras", "keras3")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
# Which of Keras's gate blocks (LSTM i, f, c, o; GRU z, r, h) each canonical block (i f g o; r z n) is.
KERAS_TO_CANONICAL = {family: tuple(gate_index(keras, CANONICAL_GATE_ORDERS[family]))
                      for family, keras in (("lstm", KERAS_LSTM_ORDER), ("gru", ZRH_ORDER), ("rnn", "h"))}

#: One direction's masks: (input masks, recurrent masks). Input: ``[G, B, in]`` (G = the family's gate count,
#: Keras's order; only [0] is read under "shared"), or ``[B, T, in]`` under "per_step"; recurrent ``[G, B, H]``.
#: None where the rate is 0.
Masks = Tuple[Optional[Tensor], Optional[Tensor]]


class KerasDropoutError(ValueError):
    """Dropout settings this module cannot run as Keras ran them; names the setting."""


def _rate(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KerasDropoutError(f"{name} must be a number; got {value!r}")
    value = float(value)
    if not value == value:
        raise KerasDropoutError(f"{name} is NaN")
    return min(1.0, max(0.0, value))  # tf-keras / Keras 3 LSTMCell.__init__: min(1.0, max(0.0, dropout))


@dataclass(frozen=True)
class KerasDropout:
    """A Keras layer's training-time dropout: the rates, the mask rule (module docstring), and the GRU quirk.

    ``rate`` is ``dropout`` (Keras 1 ``dropout_W``), ``recurrent_rate`` ``recurrent_dropout`` (``dropout_U``);
    both clamped to [0, 1] as Keras does, and a mask acts only for ``0 < rate < 1``.
    """

    rate: float = 0.0
    recurrent_rate: float = 0.0
    rule: str = "per_gate"
    update_uses_dropped_h: bool = False
    generation: str = "keras3"

    def __post_init__(self):
        object.__setattr__(self, "rate", _rate("dropout", self.rate))
        object.__setattr__(self, "recurrent_rate", _rate("recurrent_dropout", self.recurrent_rate))
        if self.rule not in RULES:
            raise KerasDropoutError(f"rule must be one of {list(RULES)}, not {self.rule!r}")
        if type(self.update_uses_dropped_h) is not bool:
            raise KerasDropoutError(f"update_uses_dropped_h must be true or false; got {self.update_uses_dropped_h!r}")
        if self.generation not in GENERATIONS:
            raise KerasDropoutError(f"generation must be one of {list(GENERATIONS)}, not {self.generation!r}")
        if self.rule == "per_step":
            if self.recurrent_rate:
                raise KerasDropoutError("the per-step rule is tf-keras's fused path, which runs without "
                                        "recurrent_dropout; recurrent_dropout > 0 takes the cell's per-call masks")
            if self.rate >= 1.0:
                raise KerasDropoutError("dropout=1 on tf-keras's fused path reaches tf.nn.dropout, which refuses a "
                                        "rate of 1")

    @property
    def input_active(self) -> bool:
        return 0.0 < self.rate < 1.0  # LSTMCell.call: if 0 < self.dropout < 1.0

    @property
    def recurrent_active(self) -> bool:
        return 0.0 < self.recurrent_rate < 1.0

    @property
    def active(self) -> bool:
        return self.input_active or self.recurrent_active

    def to_dict(self) -> dict:
        return {"rate": self.rate, "recurrent_rate": self.recurrent_rate, "rule": self.rule,
                "update_uses_dropped_h": self.update_uses_dropped_h, "generation": self.generation}

    @classmethod
    def of(cls, value) -> Optional["KerasDropout"]:
        """A :class:`KerasDropout` from itself, its :meth:`to_dict`, or None."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"rate", "recurrent_rate", "rule", "update_uses_dropped_h", "generation"})
            if unknown:
                raise KerasDropoutError(f"unknown dropout settings {unknown}")
            return cls(**value)
        raise KerasDropoutError(f"keras_dropout must be a KerasDropout, a dict or None; got {type(value).__name__}")


# ------------------------------------------------------------------------------------- from a file
def generation(major: int, version: Tuple[int, int], version_text: str) -> str:
    """Which Keras wrote a file: ``keras1``, ``keras2`` (multi-backend 2.0-2.3), ``tf_keras`` (tf.keras 2.x:
    versions ending in ``-tf`` and 2.4 on), ``keras3``."""
    if major == 1:
        return "keras1"
    if major >= 3:
        return "keras3"
    if version_text.endswith("-tf") or tuple(version) >= (2, 4):
        return "tf_keras"
    return "keras2"


def _name(value) -> str:
    if isinstance(value, dict):  # Keras 3 / tf-keras serialised activations
        value = value.get("config", {}).get("name", value.get("class_name", "")) if isinstance(value.get("config"), dict) \
            else value.get("class_name", "")
    return str(value).lower() if value is not None else ""


def structure(gen: str, family: str, cfg: dict, cudnn: bool = False, cell_loop: bool = False
              ) -> Optional[KerasDropout]:
    """The dropout a layer of configuration ``cfg`` (its ``get_config()``) ran in training, in the Keras
    generation ``gen``; None when it has none (rates 0, or a CuDNN layer, which has no dropout).
    ``cell_loop``: a generic ``RNN`` over the cell, which never takes tf-keras's fused path (tf-keras
    ``base_rnn.py`` ``RNN.call`` steps ``cell.call`` through ``backend.rnn``: the cell's per-call masks)."""
    if cudnn:
        return None
    if gen == "keras1":
        rate, rec = cfg.get("dropout_W", 0.0) or 0.0, cfg.get("dropout_U", 0.0) or 0.0
    else:
        rate, rec = cfg.get("dropout", 0.0) or 0.0, cfg.get("recurrent_dropout", 0.0) or 0.0
    rate, rec = _rate("dropout", rate), _rate("recurrent_dropout", rec)
    if not rate and not rec:
        return None
    if family == "rnn":  # SimpleRNNCell: one mask each
        return KerasDropout(rate, rec, "shared", generation=gen)
    if gen == "keras1":  # LSTM.get_constants: per gate; consume_less="gpu" reads B_W[0], B_U[0] only
        return KerasDropout(rate, rec, "shared" if cfg.get("consume_less", "cpu") == "gpu" else "per_gate",
                            generation=gen)
    if gen == "keras2":  # multi-backend GRUCell / LSTMCell.call; h_tm1 *= rec_dp_mask[0] under implementation=2
        shared = cfg.get("implementation", 1) == 2
        return KerasDropout(rate, rec, "shared" if shared else "per_gate",
                            update_uses_dropped_h=shared and family == "gru" and 0.0 < rec < 1.0, generation=gen)
    implementation = 1 if rec else cfg.get("implementation", 2)  # LSTMCell.__init__ forces 1 with rec dropout
    if gen == "tf_keras":
        fused = (not cell_loop and _name(cfg.get("activation", "tanh")) == "tanh"
                 and _name(cfg.get("recurrent_activation", "sigmoid")) == "sigmoid"
                 and not rec and not cfg.get("unroll", False) and cfg.get("use_bias", True)
                 and (family == "lstm" or cfg.get("reset_after", True)))
        if fused and 0.0 < rate < 1.0:
            return KerasDropout(rate, rec, "per_step", generation=gen)
        if fused and rate >= 1.0:
            raise KerasDropoutError("dropout=1 on tf-keras's fused LSTM / GRU path: tf.nn.dropout refuses a rate "
                                    "of 1, so the layer could not run in training")
    return KerasDropout(rate, rec, "per_gate" if implementation == 1 else "shared", generation=gen)


RULE_WORDS = {
    "per_gate": "one input and one recurrent mask per gate, drawn once per call and reused at every step",
    "shared": "one input and one recurrent mask for every gate, drawn once per call and reused at every step",
    "per_step": "a new input mask at every step (tf-keras's fused LSTM / GRU path), shared by the gates",
}
GENERATION_WORDS = {"keras1": "Keras 1", "keras2": "Keras 2.0-2.3", "tf_keras": "tf.keras 2", "keras3": "Keras 3"}


def for_layer(kf, family: str, cfg: dict, cudnn: bool, where: str, cell_loop: bool = False
              ) -> Tuple[Optional[KerasDropout], List[str]]:
    """(the dropout a converted layer runs in training, its notes) for a layer of Keras file ``kf``;
    ``cell_loop``: see :func:`structure`."""
    if kf.version is None:  # a file that states no version: Keras 3's .keras, else the tf.keras 2 era
        gen = "keras3" if getattr(kf, "container", "") == "keras" else "tf_keras"
    else:
        gen = generation(kf.major, kf.version, kf.keras_version or "")
    try:
        spec = structure(gen, family, cfg, cudnn, cell_loop)
    except KerasDropoutError as e:
        raise KerasDropoutError(f"{where}: {e}") from None
    if spec is None:
        return None, []
    eq = f"dropout={spec.rate}, recurrent_dropout={spec.recurrent_rate}"
    note = (f"{eq}: in training (module.train()) the module drops out as {GENERATION_WORDS[gen]} did: "
            f"{RULE_WORDS[spec.rule]}; in eval mode it computes Keras's inference (training=False)")
    if not spec.active:
        note = f"{eq}: a rate of 1 makes Keras's cell skip its dropout (0 < rate < 1); none in training either"
    notes = [note]
    if spec.rule == "per_step" and (kf.keras_version or "").endswith("-tf"):
        notes.append("a tf.keras file of the TF 1.x era ('-tf' versions) may have run the cells' per-call masks "
                     "(TF 1.x graph mode has no fused path): set the module's keras_dropout to "
                     "KerasDropout(rate, 0.0, 'shared') (implementation=2) or 'per_gate' (1) for those")
    if spec.update_uses_dropped_h:
        notes.append("Keras 2.0-2.3 GRUCell (implementation=2) mixes the update with the dropped-out h_tm1 "
                     "(h_tm1 *= rec_dp_mask[0]); the module does the same in training")
    return spec, notes


# ------------------------------------------------------------------------------------- the masks
def _mask(shape, rate: float, like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """``backend.random.dropout(ones, rate)``: 0 with probability ``rate``, else ``1 / (1 - rate)``."""
    u = torch.rand(shape, dtype=like.dtype, device=like.device, generator=generator)
    return (u >= rate).to(like.dtype) * (1.0 / (1.0 - rate))


def draw(spec: KerasDropout, family: str, batch: int, steps: int, input_size: int, hidden_size: int, like: Tensor,
         directions: int = 1, generator: Optional[torch.Generator] = None) -> List[Masks]:
    """Fresh masks for one call, one ``(input, recurrent)`` pair per direction (see :data:`Masks`)."""
    G = GATES[family]
    out = []
    for _ in range(directions):
        inp = rec = None
        if spec.input_active:
            shape = (batch, steps, input_size) if spec.rule == "per_step" else (G, batch, input_size)
            inp = _mask(shape, spec.rate, like, generator)
        if spec.recurrent_active:
            rec = _mask((G, batch, hidden_size), spec.recurrent_rate, like, generator)
        out.append((inp, rec))
    return out


def _check(masks: Sequence[Masks], spec: KerasDropout, family: str, B: int, T: int, n_in: int, H: int,
           D: int, like: Tensor) -> List[Masks]:
    masks = [tuple(None if m is None else torch.as_tensor(m, dtype=like.dtype, device=like.device) for m in pair)
             if isinstance(pair, (tuple, list)) else pair for pair in masks]
    if len(masks) != D:
        raise KerasDropoutError(f"dropout_masks: {len(masks)} directions' masks; the layer has {D}")
    G = GATES[family]
    for d, pair in enumerate(masks):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise KerasDropoutError(f"dropout_masks[{d}] must be (input masks, recurrent masks)")
        inp, rec = pair
        want_in = (B, T, n_in) if spec.rule == "per_step" else (G, B, n_in)
        for what, m, want, on in (("input", inp, want_in, spec.input_active),
                                  ("recurrent", rec, (G, B, H), spec.recurrent_active)):
            if on and m is None:
                raise KerasDropoutError(f"dropout_masks[{d}]: no {what} mask, but the layer drops out its {what}")
            if m is not None and tuple(m.shape) != want:
                raise KerasDropoutError(f"dropout_masks[{d}] {what} mask has shape {list(m.shape)}; expected "
                                        f"{list(want)}")
    return masks


# ------------------------------------------------------------------------------------- for the core
def arrange(masks: Sequence[Masks], spec: KerasDropout, family: str) -> CellMasks:
    """Keras's masks (:data:`Masks`, Keras's gate order) as the core's :class:`CellMasks` (its canonical gate
    order): per gate under "per_gate"; the first mask alone under "shared" (``inputs * dp_mask[0]``: every gate
    reads it); under "per_step" the input mask of the batch-first input's shape."""
    order = list(KERAS_TO_CANONICAL[family])

    def one(m: Optional[Tensor]) -> Optional[Tensor]:
        if m is None or spec.rule == "per_step":
            return m
        return m[0] if spec.rule == "shared" else m[order]

    inputs = tuple(one(pair[0]) for pair in masks)
    recurrent = tuple(one(pair[1]) for pair in masks)
    dropped_h = spec.update_uses_dropped_h and family == "gru" and any(m is not None for m in recurrent)
    return CellMasks(inputs, recurrent, input_per_step=spec.rule == "per_step", update_uses_dropped_h=dropped_h)


def cell_masks(module, family: str, spec: KerasDropout, x: Tensor, masks: Optional[Sequence[Masks]] = None,
               generator: Optional[torch.Generator] = None) -> CellMasks:
    """The masks of a Keras layer's training-mode call on the converted module (one Keras layer; x batch-first
    [B, T, in]): ``masks`` checked, or drawn, and arranged for the core, which runs Keras's cell with them
    (``LSTMCell.call``, ``GRUCell.call``, ``SimpleRNNCell.call``; the states carried at masked steps, ``K.rnn``)."""
    if module.num_layers != 1 or getattr(module, "proj_size", 0) or getattr(module, "peepholes", False):
        raise KerasDropoutError("Keras's dropout runs on one Keras layer: one layer, no projection or peepholes")
    cell = module.cell
    if cell.preact_clip is not None or (family == "lstm" and (cell.cell_clip is not None or cell.input_forget)):
        raise KerasDropoutError("Keras's dropout runs Keras's cell: no clips or coupled gates")
    if x.dim() != 3:
        raise KerasDropoutError(f"x has shape {list(x.shape)}; a Keras layer reads [B, T, in]")
    B, T, n_in = x.shape
    H, D = module.hidden_size, 2 if module.bidirectional else 1
    if masks is None:
        masks = draw(spec, family, B, T, n_in, H, x, D, generator)
    return arrange(_check(masks, spec, family, B, T, n_in, H, D, x), spec, family)
