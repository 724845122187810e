"""Every LSTM in a Keras 1, 2 or 3 model file (``.h5`` or ``.keras``), from its configuration and weights.

Layers: ``LSTM`` (Keras 1's 12 per-gate weights or 3 fused ones; Keras 2 and 3's ``kernel``,
``recurrent_kernel``, optional ``bias``), ``CuDNNLSTM`` (Keras 2 / tf.keras 1: ``bias`` [8H] = the input
bias then the recurrent bias, cuDNN's two), ``Bidirectional`` around either, and the same inside nested
models. Gate order i, f, c, o everywhere (keras/layers/recurrent.py ``LSTMCell.call``).

Read from the configuration, never executed: ``units`` (``output_dim`` in Keras 1), ``activation``,
``recurrent_activation`` (``inner_activation``; ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)`` in Keras
1/2 and ``relu6(x + 3) / 6`` in Keras 3), ``use_bias``, ``go_backwards``, ``return_sequences``,
``return_state``, ``stateful``, ``time_major``, ``Bidirectional.merge_mode``, and masks produced by a
``Masking`` layer or an ``Embedding(mask_zero=True)``. Anything that changes the numbers and cannot be
represented raises; what changes only how outputs are returned is stated in the table's notes.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from compat.convert.spec import LSTMSpec, Unknown, check_shapes
from compat.errors import InputError
from compat.formats.keras import KerasFile, read_keras
from compat.layouts import permute_gates

MODEL_CLASSES = ("Sequential", "Model", "Functional")
LSTM_CLASSES = ("LSTM", "CuDNNLSTM")


class KerasLayerError(InputError, ValueError):
    """A Keras LSTM layer that cannot be converted exactly; the message names the file and layer."""


def _snake(name: str) -> str:
    # keras/src/utils/naming.py to_snake_case
    import re

    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    insecure = re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()
    return insecure if insecure[0] != "_" else "private" + insecure


def _activation(value, major: int, where: str, role: str):
    """(compat.lstm activation name, reference.keras_lstm name) of a Keras activation setting."""
    if isinstance(value, dict):  # Keras 3 may serialise a built-in activation as {"class_name": ..., "config": ...}
        value = value.get("config", {}).get("name") if isinstance(value.get("config"), dict) else None
        value = value or "(a custom object)"
    if not isinstance(value, str):
        raise KerasLayerError(f"{where}: {role} {value!r} is not a built-in activation name")
    name = value.rsplit(".", 1)[-1]
    table = {
        "sigmoid": ("sigmoid", "sigmoid"),
        "tanh": ("tanh", "tanh"),
        "hard_sigmoid": (("hard_sigmoid_keras3", "hard_sigmoid_keras3") if major >= 3
                         else ("hard_sigmoid_keras2", "hard_sigmoid")),
        "relu": ("Relu", "relu"),
        "linear": (("Affine", 1.0, 0.0), "linear"),
    }
    if name not in table:
        raise KerasLayerError(f"{where}: {role}={value!r} is not supported (supported: {sorted(table)})")
    return table[name]


def _keras_weights(w: Sequence[np.ndarray], cls: str, cfg: dict, units: int, where: str
                   ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """(canonical weights, the Keras tensors by name) of one LSTM layer's weight list."""
    w = [np.asarray(a) for a in w]
    if cls == "LSTM" and len(w) == 12:
        # Keras 1 (consume_less="cpu"/"mem"): W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o
        # (keras 1.x recurrent.py LSTM.build trainable_weights); fused here in the order i, f, c, o.
        W = np.concatenate([w[0], w[6], w[3], w[9]], axis=1)
        U = np.concatenate([w[1], w[7], w[4], w[10]], axis=1)
        b = np.concatenate([w[2], w[8], w[5], w[11]])
        w = [W, U, b]
    use_bias = bool(cfg.get("use_bias", True))
    expected = 3 if (use_bias or cls == "CuDNNLSTM") else 2
    if len(w) != expected:
        raise KerasLayerError(f"{where}: {len(w)} weights; a {cls}{'' if use_bias else ' with use_bias=False'} has "
                              f"{expected} (kernel, recurrent_kernel{', bias' if expected == 3 else ''})")
    kernel, rec = w[0], w[1]
    H = units
    if rec.shape != (H, 4 * H):
        raise KerasLayerError(f"{where}: recurrent_kernel has shape {list(rec.shape)}; expected [{H}, {4 * H}]")
    if kernel.ndim != 2 or kernel.shape[1] != 4 * H:
        raise KerasLayerError(f"{where}: kernel has shape {list(kernel.shape)}; expected [in, {4 * H}]")
    dtype = np.promote_types(kernel.dtype, np.float32)
    out = {"weight_ih": np.ascontiguousarray(permute_gates(kernel.T.astype(dtype), "ifco", "ifgo")),
           "weight_hh": np.ascontiguousarray(permute_gates(rec.T.astype(dtype), "ifco", "ifgo"))}
    if expected == 3:
        b = w[2].astype(dtype)
        if cls == "CuDNNLSTM":
            if b.shape != (8 * H,):
                raise KerasLayerError(f"{where}: bias has shape {list(b.shape)}; a CuDNNLSTM bias is [8H = {8 * H}]")
            out["bias_ih"] = np.ascontiguousarray(permute_gates(b[:4 * H], "ifco", "ifgo"))
            out["bias_hh"] = np.ascontiguousarray(permute_gates(b[4 * H:], "ifco", "ifgo"))
        else:
            if b.shape != (4 * H,):
                raise KerasLayerError(f"{where}: bias has shape {list(b.shape)}; expected [4H = {4 * H}]")
            out["bias_ih"] = np.ascontiguousarray(permute_gates(b, "ifco", "ifgo"))
    raw = {"kernel": kernel, "recurrent_kernel": rec}
    if expected == 3:
        raw["bias"] = w[2]
    return out, raw


class _Walker:
    def __init__(self, kf: KerasFile):
        self.kf = kf
        self.specs: List[LSTMSpec] = []
        self.masking = False

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
    def walk(self, layers: List[dict], prefix: str, owner: Optional[str]) -> None:
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
            if cls in MODEL_CLASSES:
                inner = cfg if isinstance(cfg, dict) else {}
                sub_layers = inner.get("layers", cfg if isinstance(cfg, list) else [])
                self.walk(sub_layers, path + "/", owner or name)
            elif cls in LSTM_CLASSES:
                self.lstm(cls, cfg, name, path, owner)
            elif cls == "Bidirectional":
                self.bidirectional(cfg, name, path, owner)
            elif cls in ("RNN", "TimeDistributed", "ConvLSTM2D", "StackedRNNCells") and "lstm" in str(cfg).lower():
                raise KerasLayerError(f"{self.kf.path}: layer {name!r} ({cls}) wraps LSTM cells in a way this converter "
                                      "does not read; nothing is converted silently")

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

    def _options(self, cls, cfg, where):
        major = self.kf.major
        if cls == "CuDNNLSTM":
            return ("sigmoid", "tanh", "tanh"), ("sigmoid", "tanh")
        rec = cfg.get("recurrent_activation", cfg.get("inner_activation", "hard_sigmoid" if major < 2 else "sigmoid"))
        act = cfg.get("activation", "tanh")
        rec_c, rec_r = _activation(rec, major, where, "recurrent_activation")
        act_c, act_r = _activation(act, major, where, "activation")
        return (rec_c, act_c, act_c), (rec_r, act_r)

    def _notes(self, cls, cfg) -> List[str]:
        notes = []
        if cfg.get("return_sequences") is False:
            notes.append("return_sequences=False: Keras returned only the last step (output[:, -1])")
        if cfg.get("return_state"):
            notes.append("return_state=True: Keras also returned [h, c]")
        if cfg.get("stateful"):
            notes.append("stateful=True: Keras carried the state between batches; pass it as hx")
        if cfg.get("dropout") or cfg.get("recurrent_dropout") or cfg.get("dropout_W") or cfg.get("dropout_U"):
            notes.append("dropout/recurrent_dropout act in training only; not converted")
        if cfg.get("unroll"):
            notes.append("unroll=True")
        return notes

    def _make(self, name, cls, cfg, layers, source, direction, where, extra_notes=()):
        units = self._units(cfg, where)
        acts, ref_acts = self._options(cls, cfg, where)
        check_shapes(name, layers)
        version = self.kf.keras_version or "?"
        unknowns = []
        if self.masking:
            unknowns.append(Unknown("masks", "?", "the model makes masks (Masking / mask_zero): pass mask= (0/1 [B, T]) "
                                             "or a PackedSequence for right padding"))
        spec = LSTMSpec(name=name, source_format="keras", variant=f"Keras {version} {cls}", layers=layers,
                        direction=direction, batch_first=not cfg.get("time_major", False), activations=acts,
                        unknowns=unknowns, source=source)
        spec.notes += self._notes(cls, cfg) + list(extra_notes)
        spec.semantics = {"oracle": "keras", "recurrent_activation": ref_acts[0], "activation": ref_acts[1],
                          "go_backwards": bool(cfg.get("go_backwards")) and direction == "reverse",
                          "bidirectional": direction == "bidirectional", "units": units,
                          "cudnn": cls == "CuDNNLSTM", "merge_mode": cfg.get("merge_mode", "concat")}
        self.specs.append(spec)

    def lstm(self, cls, cfg, name, path, owner):
        where = f"{self.kf.path}: layer {name!r}"
        units = self._units(cfg, where)
        arrays = self._arrays(name, path, owner)
        w, raw = _keras_weights(arrays, cls, cfg, units, where)
        direction = "reverse" if cfg.get("go_backwards") else "forward"
        notes = []
        if direction == "reverse":
            notes.append("go_backwards=True: Keras returned the sequence output in reversed time order "
                         "(output.flip(1) matches it)")
        self._make(name, cls, cfg, [w], [(raw,)], direction, where, notes)

    def bidirectional(self, cfg, name, path, owner):
        where = f"{self.kf.path}: layer {name!r}"
        inner = cfg.get("layer")
        if not isinstance(inner, dict) or inner.get("class_name") not in LSTM_CLASSES:
            kind = inner.get("class_name") if isinstance(inner, dict) else inner
            if isinstance(kind, str) and "LSTM" in kind:
                raise KerasLayerError(f"{where}: Bidirectional({kind}) is not supported")
            return
        cls = inner["class_name"]
        icfg = inner.get("config", {})
        if icfg.get("go_backwards"):
            raise KerasLayerError(f"{where}: Bidirectional around a go_backwards=True layer is not supported")
        back = cfg.get("backward_layer")
        if isinstance(back, dict) and back.get("config", {}).get("units", icfg.get("units")) != icfg.get("units", icfg.get("output_dim")):
            raise KerasLayerError(f"{where}: a backward_layer of another size is not supported")
        units = self._units(icfg, where)
        if self.kf.container == "h5":
            arrays = [a for _, a in self.h5_weights(name, owner)]
            half = len(arrays) // 2
            if len(arrays) % 2:
                raise KerasLayerError(f"{where}: {len(arrays)} weights; a Bidirectional has as many backward as forward")
            fw_arrays, bw_arrays = arrays[:half], arrays[half:]
        else:
            fw_arrays = self.keras_weights(path, "forward_layer")
            bw_arrays = self.keras_weights(path, "backward_layer")
        fw, fw_raw = _keras_weights(fw_arrays, cls, icfg, units, where + " (forward)")
        bw, bw_raw = _keras_weights(bw_arrays, cls, icfg, units, where + " (backward)")
        merge = cfg.get("merge_mode", "concat")
        notes = []
        if merge != "concat":
            notes.append(f"merge_mode={merge!r}: the output here is concat(fw, bw); Keras combined the halves "
                         f"({merge})")
        self._make(name, cls, icfg, [(fw, bw)], [(fw_raw, bw_raw)], "bidirectional", where, notes)


def discover(path) -> List[LSTMSpec]:
    """Every LSTM in the Keras file at ``path``."""
    kf = read_keras(path)
    if kf.config is None:
        raise KerasLayerError(f"{path}: the file holds weights only (save_weights): without the model's "
                              "configuration the LSTM settings cannot be known")
    walker = _Walker(kf)
    cls = kf.config.get("class_name")
    cfg = kf.config.get("config")
    if cls in MODEL_CLASSES:
        layers = cfg if isinstance(cfg, list) else (cfg or {}).get("layers", [])
        walker.walk(layers, "", None)
    else:
        walker.walk([kf.config], "", None)
    return walker.specs
