"""Every LSTM in a Keras 1, 2 or 3 model file (``.h5`` or ``.keras``), from its configuration and weights.

Layers: ``LSTM`` (Keras 1's 12 per-gate weights or 3 fused ones; Keras 2 and 3's ``kernel``,
``recurrent_kernel``, optional ``bias``), ``CuDNNLSTM`` (Keras 2 / tf.keras 1: ``bias`` [8H] = the input
bias then the recurrent bias, cuDNN's two), ``Bidirectional`` around either, and the same inside nested
models; the generic ``RNN`` over Keras's built-in cells as the layer each cell makes
(:mod:`compat.frameworks.keras.cells`). Gate order i, f, c, o everywhere (keras/layers/recurrent.py ``LSTMCell.call``).

Read from the configuration, never executed: ``units`` (``output_dim`` in Keras 1), ``activation``,
``recurrent_activation`` (``inner_activation``; ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)`` in Keras
1/2 and ``relu6(x + 3) / 6`` in Keras 3), ``use_bias``, ``go_backwards``, ``return_sequences``,
``return_state``, ``stateful``, ``time_major``, ``Bidirectional.merge_mode``, and masks produced by a
``Masking`` layer or an ``Embedding(mask_zero=True)``. Anything that changes the numbers and cannot be
represented raises; what changes only how outputs are returned is stated in the table's notes.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from compat import layouts
from compat.frameworks.keras import dropout as keras_dropout
from compat.convert.spec import (KERAS_LSTM, Found, KerasSemantics, LSTMSpec, SourceItem, Unknown, carry,
                                 numpy_weights)
from compat.errors import InputError
from compat.formats.keras import KerasFile, parse_version, read_keras, read_keras_pair
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES

MODEL_CLASSES = ("Sequential", "Model", "Functional")
LSTM_CLASSES = ("LSTM", "CuDNNLSTM")
# GRUs and simple RNNs (compat/frameworks/keras/gru.py): converted as torch.nn.GRU / RNN or the core's modules
GRU_RNN_CLASSES = ("GRU", "CuDNNGRU", "SimpleRNN")
# Keras's other recurrent layers (keras/layers/recurrent.py, convolutional_recurrent.py, cudnn_recurrent.py):
# found and listed, not converted yet.
OTHER_RECURRENT = ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
                   "StackedRNNCells", "GRUV1", "GRUV2", "LSTMV1", "LSTMV2")
MERGE_MODES = ("concat", "sum", "mul", "ave")


class KerasLayerError(InputError, ValueError):
    """A Keras LSTM layer that cannot be converted exactly; the message names the file and layer."""


def _snake(name: str) -> str:
    # keras/src/utils/naming.py to_snake_case
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    insecure = re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()
    return insecure if insecure[0] != "_" else "private" + insecure


def _activation_name(value, where: str, role: str):
    """A Keras activation setting as its plain name (Keras 3 may serialise a built-in one as an object)."""
    if value is None:
        return None
    if isinstance(value, dict):
        config = value.get("config")
        value = config.get("name") if isinstance(config, dict) else None
        if not isinstance(value, str):
            raise KerasLayerError(f"{where}: {role} is a custom object; only built-in activations are converted")
    if not isinstance(value, str):
        raise KerasLayerError(f"{where}: {role} {value!r} is not a built-in activation name")
    return value.rsplit(".", 1)[-1]


def _reference_activation(name: Optional[str], major: int) -> str:
    """The name reference/keras_lstm.py gives the Keras activation ``name`` of this Keras version."""
    if name == "hard_sigmoid":
        return "hard_sigmoid_keras3" if major >= 3 else "hard_sigmoid"
    return "linear" if name is None else name


def _keras_tensors(w: Sequence[np.ndarray], cls: str, cfg: dict, where: str) -> Dict[str, np.ndarray]:
    """The layer's tensors by their Keras 2/3 names (``kernel``, ``recurrent_kernel``, ``bias``)."""
    w = [np.asarray(a) for a in w]
    if cls == "LSTM" and len(w) == 12:
        # Keras 1 (consume_less="cpu"/"mem"): W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o
        # (keras 1.x recurrent.py LSTM.build trainable_weights); fused here in the order i, f, c, o.
        w = [np.concatenate([w[0], w[6], w[3], w[9]], axis=1), np.concatenate([w[1], w[7], w[4], w[10]], axis=1),
             np.concatenate([w[2], w[8], w[5], w[11]])]
    use_bias = bool(cfg.get("use_bias", True))
    expected = 3 if (use_bias or cls == "CuDNNLSTM") else 2
    if len(w) != expected:
        raise KerasLayerError(f"{where}: {len(w)} weights; a {cls}{'' if use_bias else ' with use_bias=False'} has "
                              f"{expected} (kernel, recurrent_kernel{', bias' if expected == 3 else ''})")
    for a in w:
        if a.dtype.kind != "f":
            raise KerasLayerError(f"{where}: a weight of dtype {a.dtype}; LSTM weights are floating point")
    if len({a.dtype for a in w}) > 1:
        raise KerasLayerError(f"{where}: weights of different dtypes {[str(a.dtype) for a in w]}; a Keras layer's "
                              "variables share one dtype")
    dtype = np.promote_types(w[0].dtype, np.float32)  # float16 runs as float32
    out = {"kernel": w[0].astype(dtype, copy=False), "recurrent_kernel": w[1].astype(dtype, copy=False)}
    if expected == 3:
        out["bias"] = w[2].astype(dtype, copy=False)
    return out


class _Walker:
    def __init__(self, kf: KerasFile):
        self.kf = kf
        self.specs: List[LSTMSpec] = []
        self.masking = False
        # every layer of the configuration: (name, class, .keras path, owner, spec or None, reason, recurrent)
        self.seen: List[tuple] = []
        # every layer by its names from the outermost model in: (nested models..., layer) -> (class, .keras path)
        self.chains: Dict[Tuple[str, ...], Tuple[str, str]] = {}
        # the converted recurrent layers by those names; a cell of an RNN(StackedRNNCells) by the names of the
        # models around the layer, then the cell's converted name <layer>/<cell> (cells.stacked_name)
        self.chain_specs: Dict[Tuple[str, ...], LSTMSpec] = {}
        # the cells of an RNN(StackedRNNCells): converted name -> (the layer's names from the outermost model in,
        # the cell's name, its weights)
        self.cells: Dict[str, Tuple[Tuple[str, ...], str, List[np.ndarray]]] = {}

    # -- weights of one layer ---------------------------------------------------------------------------
    def h5_weights(self, name: str, owner: Optional[str]) -> List[Tuple[str, np.ndarray]]:
        if owner is None:
            if name not in self.kf.layer_weights:
                raise KerasLayerError(f"{self.kf.path}: layer {name!r} has no weights group in the file")
            return self.kf.layer_weights[name]
        # a layer of a nested model: its weights sit in the outer model's group, named "<layer>/..."
        return [(n, a) for n, a in self.kf.layer_weights.get(owner, [])
                if name in n.split("/")]

    def keras_weights(self, path: str, sub: str = "") -> List[np.ndarray]:
        full = f"{path}/{sub}" if sub else path
        for candidate in (f"{full}/cell", full):
            got = self.kf.keras_vars(candidate)
            if got:
                return got
        return []

    # -- walking ------------------------------------------------------------------------------------------
    def walk(self, layers: List[dict], prefix: str, owner: Optional[str], chain: Tuple[str, ...] = ()) -> None:
        counters: Dict[str, int] = {}
        for entry in layers:
            if not isinstance(entry, dict):
                raise KerasLayerError(f"{self.kf.path}: a layer entry of the configuration is not an object")
            cls = entry.get("class_name")
            cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
            name = cfg.get("name") or entry.get("name") or ""
            key = _snake(cls) if isinstance(cls, str) and cls else "layer"
            n = counters.get(key, 0)
            counters[key] = n + 1
            path = f"{prefix}layers/{key}" + (f"_{n}" if n else "")
            # Keras 3 records each layer's name beside its variables; prefer it to the counting rule.
            by_name = [p for p, nm in self.kf.names_by_path.items() if nm == name and p.startswith(prefix + "layers/")
                       and p.count("/layers/") == path.count("/layers/")]
            if len(by_name) == 1:
                path = by_name[0]
            if cls == "Masking" or (cls == "Embedding" and cfg.get("mask_zero")):
                self.masking = True
            self.chains[chain + (name,)] = (str(cls), path)
            specs_before = len(self.specs)
            if cls in MODEL_CLASSES:
                inner = entry.get("config")
                sub_layers = inner.get("layers", []) if isinstance(inner, dict) else inner
                self.walk(sub_layers if isinstance(sub_layers, list) else [], path + "/", owner or name,
                          chain + (name,))
            elif cls in LSTM_CLASSES:
                self.lstm(cls, cfg, name, path, owner)
                self.seen.append((name, cls, path, owner, self.specs[-1], "", True))
            elif cls == "Bidirectional":
                before = len(self.specs)
                reason = self.bidirectional(cfg, name, path, owner)
                spec = self.specs[-1] if len(self.specs) > before else None
                self.seen.append((name, cls, path, owner, spec, reason or "", reason is not None or spec is not None))
            elif cls in GRU_RNN_CLASSES:
                from compat.frameworks.keras.gru import convert_layer

                spec, reason = convert_layer(self, cls, cfg, name, path, owner)
                if spec is not None:
                    self.specs.append(spec)
                self.seen.append((name, cls, path, owner, spec, reason, True))
            elif cls == "RNN":
                self.rnn(cfg, name, path, owner, chain)
            elif cls in OTHER_RECURRENT:
                self.seen.append((name, cls, path, owner, None, f"a Keras {cls} layer: a recurrent kind this converter "
                                                                "does not convert yet", True))
            elif cls in ("TimeDistributed",) and _wraps_recurrent(cfg):
                self.seen.append((name, cls, path, owner, None, f"a recurrent layer inside {cls}, whose semantics "
                                                                "this converter does not read", True))
            else:
                self.seen.append((name, cls, path, owner, None, "not a recurrent layer", False))
            stacked = any(layer == chain + (name,) for layer, *_ in self.cells.values())
            if cls not in MODEL_CLASSES and len(self.specs) > specs_before and not stacked:
                self.chain_specs[chain + (name,)] = self.specs[-1]

    def _arrays(self, name, path, owner, sub="") -> List[np.ndarray]:
        if self.kf.container == "h5":
            ws = self.h5_weights(name, owner)
            if sub:
                ws = [(n, a) for n, a in ws if f"{sub}_" in n or f"/{sub}" in n]
            return [a for _, a in ws]
        return self.keras_weights(path, sub)

    def _units(self, cfg, where):
        units = cfg.get("units", cfg.get("output_dim"))
        if not isinstance(units, int) or units <= 0:
            raise KerasLayerError(f"{where}: no positive integer 'units' in the layer's configuration")
        return units

    def _attributes(self, cls: str, cfg: dict, where: str) -> Tuple[dict, Dict[str, str]]:
        """(the layer's configuration as compat.layouts attributes, reference/keras_lstm.py's activations)."""
        major = self.kf.major
        attrs = {k: v for k, v in cfg.items() if k not in ("time_major", "zero_output_for_mask")}
        attrs["keras_version"] = major if major in (1, 2, 3) else None
        if cls == "CuDNNLSTM":
            return attrs, {"recurrent_activation": "sigmoid", "activation": "tanh"}
        # Keras 1 and Keras 2 before 2.3 defaulted to hard_sigmoid, later versions to sigmoid; files state it.
        default_rec = "hard_sigmoid" if major < 2 else "sigmoid"
        rec = _activation_name(attrs.pop("recurrent_activation", attrs.pop("inner_activation", default_rec)), where,
                               "recurrent_activation")
        act = _activation_name(attrs.pop("activation", "tanh"), where, "activation")
        attrs["recurrent_activation"], attrs["activation"] = rec, act
        return attrs, {"recurrent_activation": _reference_activation(rec, major),
                       "activation": _reference_activation(act, major)}

    def _convert(self, cls: str, cfg: dict, tensors: Dict[str, np.ndarray], where: str) -> layouts.Converted:
        attrs, _ = self._attributes(cls, cfg, where)
        if attrs["keras_version"] is None:
            attrs.pop("keras_version")
        try:
            return layouts.convert("keras_cudnn" if cls == "CuDNNLSTM" else "keras", tensors, attrs)
        except layouts.LayoutError as e:
            raise KerasLayerError(f"{where}: {e}") from None

    def _masked_output(self, cfg: dict, bidirectional: bool) -> Tuple[str, Optional[Unknown]]:
        """What the layer outputs at masked steps (compat.convert.modules.KerasLSTM), and how that is known."""
        version = self.kf.keras_version
        major_minor = self.kf.version
        # Bidirectional forces zero_output_for_mask when it returns sequences (bidirectional.py
        # force_zero_output_for_mask)
        if (bidirectional and cfg.get("return_sequences")) or cfg.get("zero_output_for_mask"):
            if not (cfg.get("unroll") and cfg.get("return_sequences")):
                return "zeros", None
            # unrolled, tf_keras/src/backend.py rnn (and Keras 3's keras/src/backend/tensorflow/rnn.py) zeroes the
            # stacked outputs after the loop with the mask as given, not reversed for go_backwards
            if major_minor >= (3, 0):
                return "zeros_unrolled", Unknown(
                    "masked_output", "zeros_unrolled", "Keras 3's TensorFlow backend (keras/src/backend/tensorflow/"
                    "rnn.py; its torch backend the same reading forwards, and it fails on a go_backwards layer with a "
                    "mask); its JAX backend outputs the previous output at masked steps when unrolled")
            if major_minor >= (2, 3) or (version or "").endswith("-tf"):
                return "zeros_unrolled", None
            return "zeros", None   # Keras 2.0-2.2's own backend: its unrolled loop is not read
        # Keras 2.0-2.2's TF backend returns the previous h at a masked step, except when unrolled
        # (keras/backend/tensorflow_backend.py rnn, unroll=True: the previous output); later versions always
        # the previous output.
        if major_minor >= (2, 3) or version.endswith("-tf") or cfg.get("unroll"):
            return "previous_output", None
        return "previous_h", Unknown("masked_output", "previous_h", f"Keras {version or '?'}'s TensorFlow backend "
                                     "outputs the previous h at a masked step; other backends may differ before the "
                                     "first unmasked step when the initial state is not zero")

    def _notes(self, cfg) -> List[str]:
        notes = []
        if cfg.get("return_sequences") is False:
            notes.append("return_sequences=False: Keras returned only the last step (output[:, -1])")
        if cfg.get("return_state"):
            notes.append("return_state=True: Keras also returned [h, c]")
        if cfg.get("stateful"):
            notes.append("stateful=True: Keras carried the state between batches; pass it as hx")
        if cfg.get("time_major"):
            notes.append("time_major=True: Keras read [T, B, in]; the module reads [B, T, in] (transpose the input)")
        return notes

    def _make(self, name, cls, cfg, layers, source, options, converted_notes, where, *, bidirectional=False,
              merge_mode="concat", extra_notes=(), cell_loop=False):
        _, ref_acts = self._attributes(cls, cfg, where)
        version = self.kf.keras_version or "?"
        unknowns = []
        keras = None
        go_backwards = options.get("direction") == "reverse"
        try:
            drop, drop_notes = keras_dropout.for_layer(self.kf, "lstm", cfg, cls == "CuDNNLSTM", where, cell_loop)
        except keras_dropout.KerasDropoutError as e:
            raise KerasLayerError(str(e)) from None
        if drop is not None:  # the module drops out itself: say so instead of the layout's "training only"
            converted_notes = [(a, w) for a, w in converted_notes if "dropout" not in a.lower()]
            extra_notes = list(extra_notes) + drop_notes
        if self.masking or go_backwards or merge_mode != "concat" or drop is not None:
            masked_output, unknown = self._masked_output(cfg, bidirectional)
            keras = KerasSemantics(go_backwards=go_backwards, masked_output=masked_output,
                                   merge_mode=merge_mode, keras_dropout=None if drop is None else drop.to_dict())
            if self.masking:
                unknowns.append(Unknown("masks", "?", "the model makes masks (Masking / mask_zero): pass mask= [B, T] "
                                                      "(0 at a masked step)"))
                if unknown is not None:
                    unknowns.append(unknown)
        spec = LSTMSpec(name=name, source_format="keras", variant=f"Keras {version} {cls}", layers=layers,
                        options=options, batch_first=True, keras=keras, unknowns=unknowns, source=source,
                        oracle="keras", module=KERAS_LSTM if keras is not None else None, masks=self.masking and cls != "CuDNNLSTM")
        spec.notes += self._notes(cfg) + list(extra_notes)
        spec.notes += [f"{attr}: {why}" for attr, why in converted_notes]
        spec.semantics = {**ref_acts, "go_backwards": go_backwards, "bidirectional": bidirectional,
                          "cudnn": cls == "CuDNNLSTM", "merge_mode": merge_mode,
                          "masked_output": keras.masked_output if keras else None, "masks": self.masking}
        self.specs.append(spec)

    def lstm(self, cls, cfg, name, path, owner, arrays=None, cell_loop=False):
        where = f"{self.kf.path}: layer {name!r}"
        self._units(cfg, where)
        arrays = self._arrays(name, path, owner) if arrays is None else arrays
        tensors = _keras_tensors(arrays, cls, cfg, where)
        converted = self._convert(cls, cfg, tensors, where)
        notes = []
        if converted.options.get("direction") == "reverse":
            notes.append("go_backwards=True: Keras returns the sequence output reversed in time, and so does the "
                         "module (KerasLSTM)")
        self._make(name, cls, cfg, [numpy_weights(converted.weights)], [(tensors,)], dict(converted.options),
                   converted.not_applied,
                   where, extra_notes=notes, cell_loop=cell_loop)

    def rnn(self, cfg, name, path, owner, chain=()):
        """Keras's ``RNN`` layer over built-in cells (:mod:`compat.frameworks.keras.cells`): one cell converts as
        the layer it runs as; each cell of a ``StackedRNNCells`` as one such layer, named ``<layer>/<cell>``
        (``chain``: the names of the models around the layer, from the outermost in)."""
        from compat.frameworks.keras import cells as keras_cells

        found, stacked, reason = keras_cells.cells(cfg)
        if found is not None and stacked:
            reason = keras_cells.stack_refusal(cfg, self.kf.version or (0, 0), _tf_keras(self.kf))
        if found is None or reason:
            self.seen.append((name, "RNN", path, owner, None, reason, True))
            return
        if not stacked:
            cls, ccfg = keras_cells.as_layer("RNN", cfg)
            self._as(cls, ccfg, name, path, owner, None, f"RNN({found[0].cls})")
            self.seen.append((name, "RNN", path, owner, self.specs[-1], "", True))
            return
        for k, cell in enumerate(found):
            last = k == len(found) - 1
            cname = keras_cells.stacked_name(name, cell)
            ccfg = dict(cell.config, name=cname)
            if not last:   # every cell but the last returns its whole output sequence: the next cell's input
                ccfg["return_sequences"] = True
            if self.kf.container == "h5":   # the layer's weights (a nested model's layer: by its chain of names)
                pairs = self.h5_weights(name, None) if owner is None else _h5_weights(self.kf, chain + (name,))
                arrays = [a for n, a in pairs if cell.name in n.split("/")]
            else:
                arrays = self.kf.keras_vars(f"{path}/{cell.path}")
            self._as(cell.layer, ccfg, cname, path, owner, arrays, f"RNN(StackedRNNCells) cell {k} ({cell.cls})")
            spec = self.specs[-1]
            spec.notes.append(f"cell {k} of {len(found)} of the StackedRNNCells of layer {name!r}" +
                              ("" if last else ": its output sequence is the next cell's input"))
            self.cells[cname] = (chain + (name,), cell.name, arrays)
            self.chain_specs[chain + (cname,)] = spec
            self.seen.append((cname, cell.cls, f"{path}/{cell.path}", owner, spec, "", True))

    def _as(self, cls, cfg, name, path, owner, arrays, variant):
        """Convert ``cfg`` as a layer of class ``cls`` (LSTM, GRU or SimpleRNN) named ``name``."""
        if cls == "LSTM":
            self.lstm(cls, cfg, name, path, owner, arrays, cell_loop=True)
        else:
            from compat.frameworks.keras.gru import convert_layer

            self.specs.append(convert_layer(self, cls, cfg, name, path, owner, arrays, cell_loop=True)[0])
        self.specs[-1].variant = f"Keras {self.kf.keras_version or '?'} {variant}"

    def bidirectional(self, cfg, name, path, owner):
        where = f"{self.kf.path}: layer {name!r}"
        from compat.frameworks.keras import cells as keras_cells

        inner = cfg.get("layer")
        cell_loop = isinstance(inner, dict) and inner.get("class_name") == "RNN"
        if cell_loop:
            found, stacked, reason = keras_cells.cells(inner.get("config") if isinstance(inner.get("config"),
                                                                                         dict) else {})
            if found is None or stacked:
                return f"Bidirectional(RNN): {reason or 'a StackedRNNCells inside Bidirectional is not converted yet'}"
            cfg = keras_cells.as_layer("Bidirectional", cfg)[1]
            inner = cfg.get("layer")
        if isinstance(inner, dict) and inner.get("class_name") in GRU_RNN_CLASSES:
            from compat.frameworks.keras.gru import convert_bidirectional

            spec, reason = convert_bidirectional(self, cfg, name, path, owner, cell_loop)
            if spec is not None:
                self.specs.append(spec)
            return reason or None
        if not isinstance(inner, dict) or inner.get("class_name") not in LSTM_CLASSES:
            kind = inner.get("class_name") if isinstance(inner, dict) else inner
            return f"Bidirectional({kind}): a recurrent kind this converter does not convert yet"
        cls = inner["class_name"]
        icfg = inner.get("config", {}) if isinstance(inner.get("config"), dict) else {}
        if icfg.get("go_backwards"):
            raise KerasLayerError(f"{where}: Bidirectional around a go_backwards=True layer is not supported")
        back = cfg.get("backward_layer")
        bcfg = icfg
        if isinstance(back, dict):
            # Keras 3 saves the backward copy's configuration (go_backwards=True: Bidirectional reads it back to
            # front and reverses its outputs back, which direction="bidirectional" does).
            if back.get("class_name") != cls:
                raise KerasLayerError(f"{where}: a backward_layer of class {back.get('class_name')!r} is not supported")
            bcfg = back.get("config", {}) if isinstance(back.get("config"), dict) else {}
            bcfg = {k: v for k, v in bcfg.items() if k != "go_backwards"}
        merge = cfg.get("merge_mode", "concat")
        if merge not in MERGE_MODES and merge is not None:
            raise KerasLayerError(f"{where}: merge_mode={merge!r} is not one of Keras's {list(MERGE_MODES)} or None")
        self._units(icfg, where)
        if self.kf.container == "h5":
            arrays = [a for _, a in self.h5_weights(name, owner)]
            half = len(arrays) // 2
            if len(arrays) % 2:
                raise KerasLayerError(f"{where}: {len(arrays)} weights; a Bidirectional has as many backward as forward")
            fw_arrays, bw_arrays = arrays[:half], arrays[half:]
        else:
            fw_arrays = self.keras_weights(path, "forward_layer")
            bw_arrays = self.keras_weights(path, "backward_layer")
        fw_t = _keras_tensors(fw_arrays, cls, icfg, where + " (forward)")
        bw_t = _keras_tensors(bw_arrays, cls, bcfg, where + " (backward)")
        fw = self._convert(cls, icfg, fw_t, where + " (forward)")
        bw = self._convert(cls, bcfg, bw_t, where + " (backward)")
        if fw.options != bw.options or self._units(icfg, where) != self._units(bcfg, where):
            raise KerasLayerError(f"{where}: the backward layer runs other semantics than the forward one "
                                  f"({bw.options} vs {fw.options}); one module runs one set")
        options = dict(fw.options)
        options["direction"] = "bidirectional"
        notes = []
        if merge is None:
            notes.append("merge_mode=None: Keras returned the two halves as a list; the module returns "
                         "concat(forward, backward)")
        self._make(name, cls, icfg, [(numpy_weights(fw.weights), numpy_weights(bw.weights))], [(fw_t, bw_t)], options,
                   fw.not_applied, where, bidirectional=True, merge_mode=merge or "concat", extra_notes=notes,
                   cell_loop=cell_loop)
        return None


KERAS_MAJORS = (1, 2, 3)


def _settle_version(kf: KerasFile, keras_version: Optional[str]) -> None:
    """The Keras version the semantics follow: the file's, or the user's ``--keras-version`` where the file
    does not say it readably; never guessed (hard_sigmoid, the default activations and the masked outputs
    differ between versions)."""
    stated = kf.version
    if keras_version is not None:
        given = parse_version(keras_version)
        if given is None:
            raise KerasLayerError(f"--keras-version {keras_version[:40]!r}: expected a version such as 2.2.4")
        if stated is not None and stated != given:
            raise KerasLayerError(f"{kf.path}: the file says Keras {kf.keras_version[:40]}; --keras-version says "
                                  f"{keras_version[:40]}")
        if stated is None:
            kf.keras_version = keras_version.strip()
        stated = given
    if stated is None:
        where = "metadata.json" if kf.container == "keras" else "the keras_version attribute"
        shown = f" ({kf.keras_version[:40]!r})" if kf.keras_version else ""
        raise KerasLayerError(f"{kf.path}: the file does not say readably which Keras wrote it ({where}{shown}); "
                              "the LSTM's semantics depend on it (hard_sigmoid, default activations, masked outputs): "
                              "pass --keras-version (e.g. 2.2.4)")
    if stated[0] not in KERAS_MAJORS:
        raise KerasLayerError(f"{kf.path}: Keras {kf.keras_version[:40]}: this converter knows the semantics of "
                              f"Keras {', '.join(map(str, KERAS_MAJORS))}")


def _tf_keras(kf: KerasFile) -> bool:
    from compat.frameworks.keras.model import version_of

    return version_of(kf).tf_keras


def _wraps_recurrent(cfg: dict) -> bool:
    inner = cfg.get("layer")
    kind = inner.get("class_name") if isinstance(inner, dict) else None
    return kind in LSTM_CLASSES + GRU_RNN_CLASSES + OTHER_RECURRENT + ("Bidirectional", "RNN")


def _inventory(walker: _Walker) -> List[SourceItem]:
    """One item per layer of the configuration with its weights, and one per weight no layer claims."""
    kf = walker.kf
    if kf.container == "h5":
        weights = {f"{group}/{n}": a for group, pairs in kf.layer_weights.items() for n, a in pairs}
    else:
        weights = dict(kf.vars_by_path)
    claimed = set()
    items = []
    for name, cls, path, owner, spec, reason, recurrent in walker.seen:
        if kf.container == "h5" and name in walker.cells:   # a cell of an RNN(StackedRNNCells)
            layer, cell = walker.cells[name][:2]
            mine = [f"{layer[0]}/{n}" for n, _ in _h5_weights(kf, layer) if cell in n.split("/")]
        elif kf.container == "h5":
            if owner is None:
                mine = [f"{name}/{n}" for n, _ in kf.layer_weights.get(name, [])]
            else:
                mine = [f"{owner}/{n}" for n, _ in kf.layer_weights.get(owner, []) if name in n.split("/")]
        else:
            mine = [k for k in kf.vars_by_path if k.startswith(path + "/")]
        mine = [k for k in mine if k not in claimed]
        claimed.update(mine)
        item = SourceItem(name, f"{cls} layer", {k: tuple(weights[k].shape) for k in mine}, converted=spec,
                          reason=reason, recurrent=recurrent)
        if spec is None:
            for k in mine:
                carry(item, k, weights[k])
        items.append(item)
    for k in sorted(set(weights) - claimed):
        item = SourceItem(k, "weight", {k: tuple(weights[k].shape)},
                          reason="a weight of no layer of the configuration (a nested model's or an optimizer's)")
        carry(item, k, weights[k])
        items.append(item)
    for k, why in sorted(kf.unread.items()):
        items.append(SourceItem(k, "dataset", reason="not a tensor of numbers: not read", not_carried={k: why}))
    return items


def _read(path, weights: Optional[str], keras_version: Optional[str], max_tensor_bytes: int) -> KerasFile:
    if str(path).lower().endswith(".json"):
        if weights is None:
            raise KerasLayerError(f"{path}: a model's to_json() holds no weights: pass its save_weights() file with "
                                  "--weights WEIGHTS.h5")
        kf = read_keras_pair(path, weights, max_tensor_bytes=max_tensor_bytes)
        if not kf.keras_version and keras_version is None and ("module" in kf.config or "registered_name" in kf.config):
            kf.keras_version = "3.0"   # Keras 3 writes no version into to_json(); its format says Keras 3
            kf.version_note = ("the JSON states no Keras version; its format (module, registered_name) is Keras 3's, "
                               "whose semantics this converter follows")
        return kf
    if weights is not None:
        raise KerasLayerError(f"--weights applies to a model given as its to_json() file (model.json), not to {path}")
    return read_keras(path, max_tensor_bytes=max_tensor_bytes)


def discover(path, *, keras_version: Optional[str] = None, weights: Optional[str] = None,
             max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> Found:
    """Every LSTM in the Keras file at ``path``, every layer of the file accounted for, and the whole model where
    every layer is one the converter converts (:mod:`compat.frameworks.keras.model`); ``keras_version``: the
    version that wrote it, where the file does not say; ``weights``: the ``save_weights()`` file of a
    ``to_json()`` model; ``max_tensor_bytes``: the ceiling on one weight, converted or carried."""
    kf = _read(path, weights, keras_version, max_tensor_bytes)
    if kf.config is None:
        raise KerasLayerError(f"{path}: the file holds weights only (save_weights): without the model's "
                              "configuration the LSTM settings cannot be known (give its to_json() file as the "
                              "source and this file with --weights)")
    _settle_version(kf, keras_version)
    walker = _Walker(kf)
    cls = kf.config.get("class_name")
    cfg = kf.config.get("config")
    if cls in MODEL_CLASSES:
        layers = cfg if isinstance(cfg, list) else (cfg or {}).get("layers", [])
        walker.walk(layers, "", None)
    else:
        walker.walk([kf.config], "", None)
    items = _inventory(walker)
    graph, refused = _whole_model(walker)
    return Found(walker.specs, items, graph, refused)


def _whole_model(walker: _Walker):
    """(the whole model as a graph, None) or (None, why it is not converted whole)."""
    from compat.frameworks.keras.model import read_model
    from compat.frameworks.keras.layers import KerasModelError

    kf = walker.kf

    def weights(chain: Tuple[str, ...], cls: str) -> List[np.ndarray]:
        if kf.container == "h5":
            return [a for _, a in _h5_weights(kf, chain)]
        path = walker.chains.get(chain, ("", ""))[1]
        return kf.keras_vars(f"{path}/layer") if cls == "TimeDistributed" else kf.keras_vars(path)

    specs = walker.chain_specs
    try:
        if kf.container == "h5":
            _check_nested_h5(walker)
        graph = read_model(kf, specs, weights)
    except KerasModelError as e:
        return None, str(e)
    note = getattr(kf, "version_note", None)
    if note:
        graph.notes.insert(0, note)
    graph.source = _reference_source(walker)
    return graph, None


def _h5_weights(kf: KerasFile, chain: Tuple[str, ...]) -> List[Tuple[str, np.ndarray]]:
    """A layer's weights in a ``.h5`` file, by its names from the outermost model in. A nested model's layers
    keep theirs in the outermost model's group, each under its own name, after the names of the models around
    it where the version writes them (tf-keras ``lstm/lstm_cell/kernel:0``; Keras 3, a nested Sequential's
    ``encoder/lstm/lstm_cell/kernel``)."""
    pairs = kf.layer_weights.get(chain[0], [])
    if len(chain) == 1:
        return list(pairs)
    out = []
    for n, a in pairs:
        parts = n.split("/")
        i = 0
        for model in chain[:-1]:
            if i < len(parts) - 1 and parts[i] == model:
                i += 1
        if len(parts) > i + 1 and parts[i] == chain[-1]:
            out.append((n, a))
    return out


def _check_nested_h5(walker: _Walker) -> None:
    """Every weight of a nested model's group is its layers', each one layer's: else the names do not say whose
    a weight is, and the model is not converted whole."""
    from compat.frameworks.keras.layers import KerasModelError

    kf = walker.kf
    nested = {c[0] for c in walker.chains if len(c) > 1}
    for model in sorted(nested):
        claims: Dict[str, int] = {}
        for chain, (cls, _) in walker.chains.items():
            if len(chain) > 1 and chain[0] == model and cls not in MODEL_CLASSES:
                for n, _ in _h5_weights(kf, chain):
                    claims[n] = claims.get(n, 0) + 1
        for n, _ in kf.layer_weights.get(model, []):
            if claims.get(n, 0) != 1:
                raise KerasModelError(f"{kf.path}: the weight {model}/{n} of the nested model {model!r} is "
                                      f"{'no' if not claims.get(n) else 'more than one'} layer's by its name; "
                                      "not converted whole")


def _reference_source(walker: _Walker) -> dict:
    """What reference/keras_model.py reads: the configuration, every layer's weights as the file holds them in
    Keras's order (a nested model's layer by ``model/layer``), the version and the backend."""
    from compat.frameworks.keras.model import version_of

    kf = walker.kf
    weights: Dict[str, List[np.ndarray]] = {}
    for chain, (cls, path) in walker.chains.items():
        name = "/".join(chain)
        if cls in MODEL_CLASSES:
            continue
        stack = [arrays for layer, _, arrays in walker.cells.values() if layer == chain]
        if stack:   # an RNN(StackedRNNCells): each cell's weights, in order
            weights[name] = [a for arrays in stack for a in arrays]
        elif kf.container == "h5":
            weights[name] = [a for _, a in _h5_weights(kf, chain)]
        elif cls == "Bidirectional":
            weights[name] = walker.keras_weights(path, "forward_layer") + walker.keras_weights(path, "backward_layer")
        elif cls in LSTM_CLASSES + GRU_RNN_CLASSES + ("RNN",):
            weights[name] = walker.keras_weights(path)
        elif cls == "TimeDistributed":
            weights[name] = kf.keras_vars(f"{path}/layer")
        else:
            weights[name] = kf.keras_vars(path)
    v = version_of(kf)
    return {"config": kf.config, "weights": weights, "version": (v.major, v.minor, v.patch, v.tf_keras),
            "backend": v.backend}
