"""Keras ``GRU``, ``CuDNNGRU`` and ``SimpleRNN`` layers (and ``Bidirectional`` around them) as converted GRUs
and simple RNNs.

Read from the configuration and weights (keras-team/keras 1.x ``recurrent.py`` ``GRU`` / ``SimpleRNN``, 2.x
``GRUCell`` / ``SimpleRNNCell``, ``cudnn_recurrent.py`` ``CuDNNGRU``; tf-keras ``layers/rnn/gru.py``; Keras 3
``keras/src/layers/rnn/gru.py``; oracle ``reference/keras_rnn.py``):

- ``reset_after``: absent in Keras 1 and early Keras 2 (the reset before the product); False is Keras 2's
  default, True tf.keras 2's and Keras 3's; ``CuDNNGRU`` always resets after the product. A reset-before GRU
  loads as ``compat.gru.GRU(reset_after=False)``, never as ``torch.nn.GRU``.
- ``recurrent_activation`` (``inner_activation`` in Keras 1; ``hard_sigmoid`` is Keras 1/2's
  ``clip(0.2 x + 0.5, 0, 1)``, Keras 3's ``relu6(x + 3) / 6``) and ``activation``: anything but sigmoid / tanh
  loads as the core's module with those activations.
- Keras 1's nine per-gate weights ``W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h`` or the fused three
  (``consume_less="gpu"``); ``use_bias=False``.
- ``dropout``, ``recurrent_dropout`` (``dropout_W`` / ``dropout_U`` in Keras 1): the layer loads as a
  ``KerasGRU`` / ``KerasSimpleRNN`` that drops out in training mode with the file's Keras version's masks
  (:mod:`compat.frameworks.keras.dropout`); eval mode is Keras's inference.
  ``stateful=True``: Keras carried the final state into the next batch; noted (pass it as ``hx``).
- Keras's ways of returning outputs (a model that makes masks, ``go_backwards=True``, a ``Bidirectional``
  ``merge_mode`` of sum, mul or ave) load as :class:`compat.convert.modules.KerasGRU` /
  :class:`~compat.convert.modules.KerasSimpleRNN`, as the LSTM's as ``KerasLSTM`` (the outputs at masked steps
  by Keras version, the reversed order of ``go_backwards``, the merge).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple  # noqa: F401

import numpy as np

from compat import lstm_activations, rnn_layouts
from compat.convert.spec import KERAS_GRU, KERAS_RNN, KerasSemantics, LSTMSpec, Unknown, numpy_weights
from compat.errors import InputError
from compat.frameworks.keras import dropout as keras_dropout


class KerasRecurrentError(InputError, ValueError):
    """A Keras GRU or SimpleRNN layer whose weights or settings cannot be converted; names the file and layer."""


CELL = {"GRU": "gru", "CuDNNGRU": "gru", "SimpleRNN": "rnn"}


def _activation(value, major: int, where: str, role: str) -> Tuple[str, str]:
    """(the core's activation name, reference/keras_rnn.py's) of a Keras activation setting."""
    from compat.frameworks.keras.discover import _activation_name, _reference_activation

    name = _activation_name(value, where, role)
    ref = _reference_activation(name, major)
    core = {"hard_sigmoid": "hard_sigmoid_keras2"}.get(ref, ref)
    try:
        lstm_activations.activation(core)
    except (ValueError, TypeError):
        raise KerasRecurrentError(f"{where}: {role} {name!r} is not an activation this converter runs") from None
    return core, ref


def _tensors(w: Sequence[np.ndarray], cls: str, cfg: dict, where: str) -> Dict[str, np.ndarray]:
    """The layer's tensors by their Keras 2/3 names (``kernel``, ``recurrent_kernel``, ``bias``)."""
    w = [np.asarray(a) for a in w]
    if cls == "GRU" and len(w) == 9:
        w = list(rnn_layouts.keras1_gru(w))
    use_bias = bool(cfg.get("use_bias", True)) or cls == "CuDNNGRU"
    expected = 3 if use_bias else 2
    if len(w) != expected:
        raise KerasRecurrentError(f"{where}: {len(w)} weights; a {cls}{'' if use_bias else ' with use_bias=False'} "
                                  f"has {expected} (kernel, recurrent_kernel{', bias' if expected == 3 else ''})")
    if any(a.dtype.kind != "f" for a in w) or len({a.dtype for a in w}) > 1:
        raise KerasRecurrentError(f"{where}: weights of dtypes {[str(a.dtype) for a in w]}; a Keras layer's "
                                  "variables are floating point, of one dtype")
    dtype = np.promote_types(w[0].dtype, np.float32)  # float16 runs as float32
    out = {"kernel": w[0].astype(dtype, copy=False), "recurrent_kernel": w[1].astype(dtype, copy=False)}
    if expected == 3:
        out["bias"] = w[2].astype(dtype, copy=False)
    return out


def _settings(walker, cls: str, cfg: dict, where: str):
    """(options, reference/keras_rnn.py settings) of one layer's configuration."""
    major = walker.kf.major
    units = cfg.get("units", cfg.get("output_dim"))
    if not isinstance(units, int) or units <= 0:
        raise KerasRecurrentError(f"{where}: no positive integer 'units' in the layer's configuration")
    cell = CELL[cls]
    if cls == "CuDNNGRU":
        return {"reset_after": True}, {"cell": "gru", "reset_after": True, "cudnn": True,
                                       "recurrent_activation": "sigmoid", "activation": "tanh"}
    act, act_ref = _activation(cfg.get("activation", "tanh"), major, where, "activation")
    if cell == "rnn":
        options = {} if act == "tanh" else {"nonlinearity": act}
        return options, {"cell": "rnn", "activation": act_ref, "cudnn": False}
    # Keras 1 and Keras 2 before 2.3 defaulted to hard_sigmoid, later versions to sigmoid; files state it.
    default_rec = "hard_sigmoid" if major < 2 else "sigmoid"
    rec, rec_ref = _activation(cfg.get("recurrent_activation", cfg.get("inner_activation", default_rec)), major,
                               where, "recurrent_activation")
    reset_after = bool(cfg.get("reset_after", False))
    options = {"reset_after": reset_after}
    if (rec, act) != ("sigmoid", "tanh"):
        options["activations"] = (rec, act)
    return options, {"cell": "gru", "reset_after": reset_after, "cudnn": False, "recurrent_activation": rec_ref,
                     "activation": act_ref}


def _weights(tensors: Dict[str, np.ndarray], cell: str, reset_after: bool, where: str):
    try:
        if cell == "rnn":
            return rnn_layouts.keras_simple_rnn(tensors["kernel"], tensors["recurrent_kernel"], tensors.get("bias"))
        return rnn_layouts.keras_gru(tensors["kernel"], tensors["recurrent_kernel"], tensors.get("bias"),
                                     reset_after=reset_after)
    except rnn_layouts.RNNLayoutError as e:
        raise KerasRecurrentError(f"{where}: {e}") from None


def _notes(cfg: dict) -> List[str]:
    notes = []
    if cfg.get("return_sequences") is False:
        notes.append("return_sequences=False: Keras returned only the last step (output[:, -1])")
    if cfg.get("return_state"):
        notes.append("return_state=True: Keras also returned h")
    if cfg.get("stateful"):
        notes.append("stateful=True: Keras carried the final state into the next batch; pass it as hx (h_n of the "
                     "previous call), and zeros where Keras's reset_states() was called")
    if cfg.get("time_major"):
        notes.append("time_major=True: Keras read [T, B, in]; the module reads [B, T, in] (transpose the input)")
    if cfg.get("unroll"):
        notes.append("unroll=True: the same numbers, computed step by step")
    return notes


def _spec(walker, name, cls, cfg, layers, source, options, semantics, notes, *, bidirectional=False,
          merge_mode="concat", cell_loop=False) -> LSTMSpec:
    """The converted layer; Keras's ways of returning outputs (masks, go_backwards, a merge) make it a KerasGRU /
    KerasSimpleRNN, as the LSTM's make a KerasLSTM (discover.py _make)."""
    version = walker.kf.keras_version or "?"
    go_backwards = bool(cfg.get("go_backwards")) and not bidirectional
    masks = walker.masking and cls != "CuDNNGRU"
    keras, unknowns = None, []
    try:
        drop, drop_notes = keras_dropout.for_layer(walker.kf, semantics["cell"], cfg, cls == "CuDNNGRU",
                                                   f"{walker.kf.path}: layer {name!r}", cell_loop)
    except keras_dropout.KerasDropoutError as e:
        raise KerasRecurrentError(str(e)) from None
    notes = notes + drop_notes
    if masks or go_backwards or merge_mode != "concat" or drop is not None:
        masked_output, unknown = walker._masked_output(cfg, bidirectional)
        keras = KerasSemantics(go_backwards=go_backwards, masked_output=masked_output, merge_mode=merge_mode,
                               keras_dropout=None if drop is None else drop.to_dict())
        if masks:
            unknowns.append(Unknown("masks", "?", "the model makes masks (Masking / mask_zero): pass mask= [B, T] "
                                                  "(0 at a masked step)"))
            if unknown is not None:
                unknowns.append(unknown)
    if go_backwards:
        options = dict(options, direction="reverse")
        notes = notes + ["go_backwards=True: Keras returns the sequence output reversed in time, and so does the "
                         "module"]
    spec = LSTMSpec(name=name, source_format="keras", variant=f"Keras {version} {cls}", layers=layers,
                    options=options, batch_first=True, source=source, oracle="keras_rnn", cell=semantics["cell"],
                    keras=keras, unknowns=unknowns, masks=masks,
                    module=None if keras is None else (KERAS_GRU if semantics["cell"] == "gru" else KERAS_RNN))
    spec.notes += notes
    spec.semantics = dict(semantics, go_backwards=go_backwards, masked_output=keras.masked_output if keras else None,
                          merge_mode=merge_mode)
    return spec


def convert_layer(walker, cls: str, cfg: dict, name: str, path: str, owner, arrays=None, cell_loop=False
                  ) -> Tuple[Optional[LSTMSpec], str]:
    """(the converted layer, "") or (None, why it is not converted); ``arrays``: its weights where the layer's
    own are not them (a cell of a StackedRNNCells); ``cell_loop``: a generic ``RNN`` over the cell."""
    where = f"{walker.kf.path}: layer {name!r}"
    options, semantics = _settings(walker, cls, cfg, where)
    tensors = _tensors(walker._arrays(name, path, owner) if arrays is None else arrays, cls, cfg, where)
    w = _weights(tensors, semantics["cell"], semantics.get("reset_after", False), where)
    semantics.update(bidirectional=False)
    return _spec(walker, name, cls, cfg, [numpy_weights(w)], [(tensors,)], options, semantics, _notes(cfg),
                 cell_loop=cell_loop), ""


def convert_bidirectional(walker, cfg: dict, name: str, path: str, owner, cell_loop=False
                          ) -> Tuple[Optional[LSTMSpec], str]:
    """``Bidirectional`` around a GRU, CuDNNGRU or SimpleRNN (keras/layers/wrappers.py ``Bidirectional``: the
    backward copy reads back to front and its outputs are reversed back; torch's bidirectional layer)."""
    where = f"{walker.kf.path}: layer {name!r}"
    inner = cfg["layer"]
    cls = inner["class_name"]
    icfg = inner.get("config", {}) if isinstance(inner.get("config"), dict) else {}
    merge = cfg.get("merge_mode", "concat")
    if merge not in ("concat", "sum", "mul", "ave", None):
        raise KerasRecurrentError(f"{where}: merge_mode={merge!r} is not one of Keras's concat, sum, mul, ave or None")
    if icfg.get("go_backwards"):
        raise KerasRecurrentError(f"{where}: Bidirectional around a go_backwards=True layer is not supported")
    back = cfg.get("backward_layer")
    bcfg = icfg
    if isinstance(back, dict):
        if back.get("class_name") != cls:
            raise KerasRecurrentError(f"{where}: a backward_layer of class {back.get('class_name')!r} is not supported")
        bcfg = {k: v for k, v in (back.get("config") or {}).items() if k != "go_backwards"}
    options, semantics = _settings(walker, cls, icfg, where)
    b_options, _ = _settings(walker, cls, bcfg, where)
    if b_options != options:
        raise KerasRecurrentError(f"{where}: the backward layer runs other semantics than the forward one "
                                  f"({b_options} vs {options}); one module runs one set")
    if walker.kf.container == "h5":
        arrays = walker._arrays(name, path, owner)
        if len(arrays) % 2:
            raise KerasRecurrentError(f"{where}: {len(arrays)} weights; a Bidirectional has as many backward as "
                                      "forward")
        fw_arrays, bw_arrays = arrays[:len(arrays) // 2], arrays[len(arrays) // 2:]
    else:
        fw_arrays, bw_arrays = walker.keras_weights(path, "forward_layer"), walker.keras_weights(path, "backward_layer")
    fw_t = _tensors(fw_arrays, cls, icfg, where + " (forward)")
    bw_t = _tensors(bw_arrays, cls, bcfg, where + " (backward)")
    reset_after = semantics.get("reset_after", False)
    fw = _weights(fw_t, semantics["cell"], reset_after, where + " (forward)")
    bw = _weights(bw_t, semantics["cell"], reset_after, where + " (backward)")
    options = dict(options, direction="bidirectional")
    semantics.update(bidirectional=True)
    notes = _notes(icfg)
    if merge is None:
        notes.append("merge_mode=None: Keras returned the two halves as a list; the module returns "
                     "concat(forward, backward)")
    return _spec(walker, name, cls, icfg, [(numpy_weights(fw), numpy_weights(bw))], [(fw_t, bw_t)], options,
                 semantics, notes, bidirectional=True, merge_mode=merge or "concat", cell_loop=cell_loop), ""
