"""Which mask reaches which layer in a Keras model: ``compute_mask`` by version, as graph nodes.

A Keras 3 Functional model's file stores its masks as operations of the saved graph (a layer called with a
mask records it among its arguments), so it needs none of this; a Keras 3 Sequential model stores only its
layers, and rebuilds the graph by calling them, so its masks follow :func:`propagate_keras3` (keras
``src/layers/layer.py`` ``Layer.__call__``: a layer whose ``call`` takes ``mask`` and one tensor gets that
tensor's mask; its outputs get ``compute_mask`` when ``supports_masking``, else none). Keras 1, standalone Keras 2 and tf.keras propagate masks
while the model is built (keras 1.2 ``engine/topology.py`` ``Layer.__call__`` and ``compute_mask``; keras
2.x ``engine/base_layer.py`` ``Layer.__call__``, ``engine/network.py`` ``run_internal_graph``; tf-keras
``engine/base_layer.py`` ``_get_input_masks``, ``_set_mask_metadata``): a layer whose ``call`` takes a
``mask`` gets the mask of its first input (a list of masks for a list of inputs), and its ``compute_mask``
gives the mask of its outputs. :func:`propagate` writes the same as nodes of the converted graph
(:mod:`compat.layers.masks`), one rule per layer class, once per call of a layer (a shared layer computes each
call's masks from that call's inputs). A nested model passes its inputs' masks to its layers and its layers'
masks out: tf-keras ``Functional.call`` -> ``_run_internal_graph`` sets each input's ``_keras_mask`` and,
``_compute_output_and_mask_jointly``, returns the masks its output tensors carry; Keras 3 ``Functional.call``
sets the inputs' masks (``backend.set_keras_mask``), and its output tensors keep the masks its layers set (a
model's ``compute_mask`` is the default, so ``Layer.__call__`` adds none); a Keras 3 layer whose file records
``mask=None`` takes the mask its input carries (``Layer.__call__``, "Populate mask argument(s)"). So both
versions flatten a nested model exactly:

| layer | output mask | reads the mask |
| --- | --- | --- |
| ``Embedding(mask_zero=True)`` | ``ids != 0`` (``K.not_equal(inputs, 0)``) | no |
| ``Masking(v)`` | ``any(x != v, axis=-1)`` | no |
| ``Dropout``, ``SpatialDropout1D``, ``GaussianNoise``, ``GaussianDropout``, ``AlphaDropout``, ``Activation``, ``BatchNormalization``, ``LayerNormalization``, ``TimeDistributed``; ``Dense`` (not Keras 1) | the input's (``supports_masking = True``) | tf.keras's ``TimeDistributed`` with a fixed batch size (its ``backend.rnn`` path) |
| ``LSTM``, ``CuDNNLSTM`` (tf.keras), ``Bidirectional`` | the input's with ``return_sequences`` (each half's with ``merge_mode=None``), else none; none for states | yes (``CuDNNLSTM``: no) |
| ``GlobalAveragePooling1D`` | none | yes (Keras >= 2.2.3, tf.keras) |
| ``Add``, ``Multiply``, ``Average``, ``Subtract``, ``Maximum``, ``Minimum``, Keras 1 ``Merge`` | ``all`` of the inputs' masks | no |
| ``Concatenate`` (Keras 1 ``Merge(mode="concat")``) | the masks (ones for an unmasked input) concatenated on the axis, ``all`` over the last axis | no |
| every other layer of the set | none: tf.keras drops the mask; Keras 1 and 2 raise ``TypeError`` ("does not support masking"), so such a file cannot have been written by them and is refused | no |
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from compat.frameworks.keras.layers import CUDNN, RECURRENT, Call, KerasModelError

Ref = Tuple[str, int]
# (kind, config, args, name hint) -> the reference of the operation's output
AddOp = Callable[[str, dict, list], Ref]

PASS_THROUGH = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Activation",
                "BatchNormalization", "LayerNormalization", "TimeDistributed", "ActivityRegularization", "Dense")
MERGES = ("Add", "Multiply", "Average", "Subtract", "Maximum", "Minimum")


def _all(masks: List[Optional[Ref]], op: AddOp) -> Optional[Ref]:
    """``K.all(K.concatenate([K.expand_dims(m, 0) for m in masks if m is not None], 0), 0)``."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    expanded = [op("ExpandDims", {"axis": 0}, [m]) for m in present]
    return op("Reduce", {"op": "all", "axis": 0, "keepdims": False}, [op("Cat", {"axis": 0}, [expanded])])


def _concatenate(inputs: List[Ref], masks: List[Optional[Ref]], axis: int, ranks: List[Optional[int]],
                 op: AddOp) -> Optional[Ref]:
    """keras 2.x ``merge.py`` ``Concatenate.compute_mask`` (tf.keras's and Keras 1's ``Merge`` the same)."""
    if all(m is None for m in masks):
        return None
    parts = []
    for x, m, rank in zip(inputs, masks, ranks):
        if m is None:
            parts.append(op("Fill", {"value": True}, [x]))
        elif rank is None or rank > 2:   # K.ndim(mask) < K.ndim(input): a [B, T] mask of a [B, T, F] input
            parts.append(op("ExpandDims", {"axis": -1}, [m]))
        else:
            parts.append(m)
    return op("Reduce", {"op": "all", "axis": -1, "keepdims": False}, [op("Cat", {"axis": axis}, [parts])])


def propagate(call: Call, inputs: List[Ref], masks: List[Optional[Ref]], n_outputs: int, op: AddOp,
              static_batch: bool) -> Tuple[Optional[Ref], List[Optional[Ref]], Optional[str]]:
    """(the mask the layer reads, the masks of its outputs, a TimeDistributed's ``masked_steps``) for a layer
    of Keras 1, standalone Keras 2 or tf.keras (``call.version``) called on ``inputs`` whose masks are
    ``masks``. ``op`` adds an operation on masks to the graph."""
    v, cls, cfg = call.version, call.cls, call.config
    first = masks[0] if masks else None
    none = [None] * n_outputs
    if cls == "Embedding":
        return None, ([op("NotEqual", {"other": 0}, [inputs[0]])] if cfg.get("mask_zero") else [None]), None
    if cls == "Masking":
        value = cfg.get("mask_value", 0.0)
        return None, [op("Reduce", {"op": "any", "axis": -1, "keepdims": False},
                         [op("NotEqual", {"other": float(value)}, [inputs[0]])])], None
    if cls == "Bidirectional" or (cls in RECURRENT and cls not in CUDNN):
        outs = none[:]
        if cfg.get("return_sequences") or _inner_sequences(cfg):
            halves = 2 if cls == "Bidirectional" and cfg.get("merge_mode", "concat") is None else 1
            outs[:halves] = [first] * halves
        return first, outs, None
    if cls in CUDNN:
        _unsupported(call, first)
        return None, none, None
    if cls == "GlobalAveragePooling1D":
        # keras 2.2.3 pooling.py: GlobalAveragePooling1D gained supports_masking and call(inputs, mask)
        if v.tf_keras or (v.standalone2 and (v.minor, v.patch) >= (2, 3)):
            return first, [None], None
        _unsupported(call, first)
        return None, [None], None
    if cls in PASS_THROUGH and not (cls == "Dense" and v.major == 1):
        masked_steps = None
        if cls == "TimeDistributed" and first is not None and v.tf_keras and static_batch:
            masked_steps = "previous_output"
            return first, [first], masked_steps
        return None, [first] + none[1:], None
    if cls in MERGES or (cls == "Merge" and cfg.get("mode") in ("sum", "mul", "ave", "max")):
        return None, [_all(masks, op)], None
    if cls == "Concatenate" or (cls == "Merge" and cfg.get("mode") == "concat"):
        axis = cfg.get("axis", cfg.get("concat_axis", -1))
        ranks = [len(s) if s else None for s in (call.input_shapes or [None] * len(inputs))]
        ranks += [None] * (len(inputs) - len(ranks))
        return None, [_concatenate(inputs, masks, axis, ranks, op)], None
    _unsupported(call, first if len(masks) <= 1 else next((m for m in masks if m is not None), None))
    return None, none, None


def _unsupported(call: Call, mask: Optional[Ref]) -> None:
    """A mask reaching a layer that does not support masking: tf.keras drops it; Keras 1 and 2 raise."""
    if mask is None or call.version.tf_keras:
        return
    raise KerasModelError(f"{call.where}: a mask reaches this {call.cls} layer, which does not support masking in "
                          f"Keras {call.version.major}.{call.version.minor} (its compute_mask raises TypeError): "
                          "Keras could not have built this model")


# Keras 3 (keras/src/layers/**): supports_masking True, compute_mask the default (the input's mask)
KERAS3_PASS = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Activation",
               "BatchNormalization", "LayerNormalization", "ActivityRegularization", "Dense", "Identity")
KERAS3_READS = RECURRENT + ("Bidirectional", "TimeDistributed", "GlobalAveragePooling1D")


def propagate_keras3(call: Call, inputs: List[Ref], masks: List[Optional[Ref]], n_outputs: int, op: AddOp,
                     more_tensors: bool = False) -> Tuple[Optional[Ref], List[Optional[Ref]], Optional[str]]:
    """:func:`propagate` for a Keras 3 model that rebuilds its graph (Sequential). Recurrent layers,
    ``Bidirectional`` and ``TimeDistributed`` pass masks on up to Keras 3.15; Keras 3.16 turned their
    ``supports_masking`` off (keras-team/keras a8b52ca, "Disable automatic mask propagation in RNN layers"), so
    their outputs carry none. ``Concatenate`` combines masks with ``any`` (Keras 2 used ``all``); from Keras 3.4
    ``Multiply``, ``Maximum`` and ``Minimum`` whose inputs are all masked give the ``or`` of the masks
    (``_merge_function`` sets it), the other merges the ``and``. A layer called with more than one tensor
    (``initial_state=``) gets no mask (``Layer.__call__`` fills ``mask`` only for a single tensor argument)."""
    v, cls, cfg = call.version, call.cls, call.config
    first = masks[0] if masks else None
    none = [None] * n_outputs
    reads = first if cls in KERAS3_READS and len(inputs) == 1 and not more_tensors else None
    if cls == "Embedding":
        return None, ([op("NotEqual", {"other": 0}, [inputs[0]])] if cfg.get("mask_zero") else [None]), None
    if cls == "Masking":
        return None, [op("Reduce", {"op": "any", "axis": -1, "keepdims": False},
                         [op("NotEqual", {"other": float(cfg.get("mask_value", 0.0))}, [inputs[0]])])], None
    rnn_masks = (v.major, v.minor) < (3, 16)
    if cls == "Bidirectional" or cls in RECURRENT:
        outs = none[:]
        if rnn_masks and (cfg.get("return_sequences") or _inner_sequences(cfg)):
            halves = 2 if cls == "Bidirectional" and cfg.get("merge_mode", "concat") is None else 1
            outs[:halves] = [first] * halves
        return reads, outs, None
    if cls == "TimeDistributed":
        return reads, [first if rnn_masks else None], None
    if cls in KERAS3_PASS:
        return reads, [first] + none[1:], None
    if cls in MERGES:
        if cls in ("Multiply", "Maximum", "Minimum") and (v.major, v.minor) >= (3, 4) and masks and all(
                m is not None for m in masks):
            out = masks[0]
            for m in masks[1:]:
                out = op("Logical", {"op": "or"}, [out, m])
            return None, [out], None
        return None, [_all(masks, op)], None
    if cls == "Concatenate":
        if all(m is None for m in masks):
            return None, [None], None
        parts = []
        ranks = [len(s) if s else None for s in (call.input_shapes or [None] * len(inputs))]
        for x, m, rank in zip(inputs, masks, ranks + [None] * len(inputs)):
            if m is None:
                parts.append(op("Fill", {"value": True}, [x]))
            else:
                parts.append(op("Logical", {"op": "or"}, [op("ExpandDims", {"axis": -1}, [m]),
                                                          op("Fill", {"value": False}, [x])]))
        return None, [op("Reduce", {"op": "any", "axis": -1, "keepdims": False},
                         [op("Cat", {"axis": cfg.get("axis", -1)}, [parts])])], None
    return reads, none, None


def _inner_sequences(cfg: dict) -> bool:
    inner = cfg.get("layer")
    return isinstance(inner, dict) and bool((inner.get("config") or {}).get("return_sequences"))
