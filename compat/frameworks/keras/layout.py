"""The ``keras`` and ``keras_cudnn`` layouts: Keras LSTM and CuDNNLSTM weights (see compat/layouts.py)."""
from __future__ import annotations


from compat.layouts import (CANONICAL_ORDER, Attributes, Layout, LayoutError, activation_option, check_shape,
                            concat, keras_activation, no_extras, no_run_time_forget_bias, one_bias,
                            permute_gates, register, run_time_bias, transpose, zeros_rows)
from compat.lstm import LayerWeights

#: Keras's LSTM gate blocks along the kernel's columns (LSTMCell.call: i, f, c, o).
KERAS_LSTM_ORDER = "ifco"


# --- Keras LSTM (keras/layers/recurrent.py LSTMCell.call: kernel split i, f, c, o; use_bias=False: no bias)
def _keras_dims(p, layout: str) -> int:
    k, r = p["kernel"], p["recurrent_kernel"]
    if len(r.shape) != 2 or r.shape[1] != 4 * r.shape[0]:
        raise LayoutError(f"{layout} tensor 'recurrent_kernel' has shape {list(r.shape)}; expected [H, 4H]")
    hidden = r.shape[0]
    if len(k.shape) != 2 or k.shape[1] != 4 * hidden:
        raise LayoutError(f"{layout} tensor 'kernel' has shape {list(k.shape)}; expected [in, 4H={4 * hidden}]")
    return hidden


def _keras_to(p, forget_bias):
    hidden = _keras_dims(p, "keras")
    w_ih = permute_gates(transpose(p["kernel"]), KERAS_LSTM_ORDER, CANONICAL_ORDER)
    w_hh = permute_gates(transpose(p["recurrent_kernel"]), KERAS_LSTM_ORDER, CANONICAL_ORDER)
    b = p.get("bias")
    if b is None:
        return LayerWeights(w_ih, w_hh, None, run_time_bias(w_hh, hidden, forget_bias))
    check_shape("bias", "keras", b, (4 * hidden,))
    bc = permute_gates(b, KERAS_LSTM_ORDER, CANONICAL_ORDER)
    return LayerWeights(w_ih, w_hh, bc, run_time_bias(bc, hidden, forget_bias))


def _keras_from(w, forget_bias):
    no_extras(w, "keras")
    out = {"kernel": permute_gates(transpose(w.weight_ih), CANONICAL_ORDER, KERAS_LSTM_ORDER, axis=1),
           "recurrent_kernel": permute_gates(transpose(w.weight_hh), CANONICAL_ORDER, KERAS_LSTM_ORDER, axis=1)}
    b = one_bias(w, forget_bias, "keras", keep_none=True)
    if b is not None:
        out["bias"] = permute_gates(b, CANONICAL_ORDER, KERAS_LSTM_ORDER)
    return out


# --- Keras CuDNNLSTM (keras/layers/cudnn_recurrent.py CuDNNLSTM.build / _process_batch: bias [8H],
#     input biases i, f, c, o then recurrent biases i, f, c, o)
def _keras_cudnn_to(p, forget_bias):
    hidden = _keras_dims(p, "keras_cudnn")
    no_run_time_forget_bias("keras_cudnn", forget_bias)
    b = p["bias"]
    check_shape("bias", "keras_cudnn", b, (8 * hidden,))
    return LayerWeights(permute_gates(transpose(p["kernel"]), KERAS_LSTM_ORDER, CANONICAL_ORDER),
                        permute_gates(transpose(p["recurrent_kernel"]), KERAS_LSTM_ORDER, CANONICAL_ORDER),
                        permute_gates(b[:4 * hidden], KERAS_LSTM_ORDER, CANONICAL_ORDER),
                        permute_gates(b[4 * hidden:], KERAS_LSTM_ORDER, CANONICAL_ORDER))


def _keras_cudnn_from(w, forget_bias):
    no_extras(w, "keras_cudnn")
    no_run_time_forget_bias("keras_cudnn", forget_bias)
    hidden = w.hidden_size
    b_ih = w.bias_ih if w.bias_ih is not None else zeros_rows(w.weight_hh, 4 * hidden)
    b_hh = w.bias_hh if w.bias_hh is not None else zeros_rows(w.weight_hh, 4 * hidden)
    return {"kernel": permute_gates(transpose(w.weight_ih), CANONICAL_ORDER, KERAS_LSTM_ORDER, axis=1),
            "recurrent_kernel": permute_gates(transpose(w.weight_hh), CANONICAL_ORDER, KERAS_LSTM_ORDER, axis=1),
            "bias": concat(permute_gates(b_ih, CANONICAL_ORDER, KERAS_LSTM_ORDER), permute_gates(b_hh, CANONICAL_ORDER, KERAS_LSTM_ORDER), 0)}


_KERAS_INERT = ("kernel_initializer", "recurrent_initializer", "bias_initializer", "unit_forget_bias",
                "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                "kernel_constraint", "recurrent_constraint", "bias_constraint", "name", "trainable", "dtype",
                "implementation", "unroll", "time_major", "seed", "batch_input_shape", "input_shape", "batch_size",
                "init", "inner_init", "forget_bias_init", "W_regularizer", "U_regularizer", "b_regularizer",
                "input_dim", "input_length", "use_cudnn", "input_dtype", "consume_less")
_KERAS_OUTPUT_SHAPE = ("return_sequences", "return_state", "stateful")


def _keras_common(layout, w, attrs: Attributes, options: dict) -> None:
    units = attrs.take("units", attrs.take("output_dim"))  # Keras 1 called it output_dim
    if units is not None and int(units) != w.hidden_size:
        raise LayoutError(f"{layout.name} attribute units={units!r} does not match the tensors (H {w.hidden_size})")
    if attrs.take("go_backwards"):
        # Keras returns the outputs in the order it read them (reversed); lstm() returns them in time order.
        options["direction"] = "reverse"
    attrs.inert(("dropout", "recurrent_dropout", "W_dropout", "U_dropout", "dropout_W", "dropout_U"),
                "dropout acts in training only")
    attrs.inert(_KERAS_INERT, "initialisation, regularisation or bookkeeping")
    for name in _KERAS_OUTPUT_SHAPE:
        attrs.take(name)  # which outputs the layer returns; the caller picks them from lstm()'s


def _keras_attributes(layout, p, attrs: Attributes, forget_bias):
    w = _keras_to(p, 0.0 if forget_bias is None else forget_bias)
    use_bias = attrs.take("use_bias")
    if use_bias is not None and bool(use_bias) != ("bias" in p):
        raise LayoutError(f"keras attribute use_bias={use_bias!r} but the tensors {'have' if 'bias' in p else 'lack'} "
                          "'bias'")
    version = attrs.take("keras_version")
    if version is not None and int(version) not in (1, 2, 3):
        raise LayoutError(f"keras attribute keras_version={version!r}: 1, 2 or 3")
    gate = keras_activation(attrs, "recurrent_activation",
                             attrs.take("recurrent_activation", attrs.take("inner_activation", "sigmoid")), version)
    cell = keras_activation(attrs, "activation", attrs.take("activation", "tanh"), version)
    options = activation_option(gate, cell)
    _keras_common(layout, w, attrs, options)
    return w, options


def _keras_cudnn_attributes(layout, p, attrs: Attributes, forget_bias):
    w = _keras_cudnn_to(p, 0.0 if forget_bias is None else forget_bias)
    attrs.take("keras_version")
    options: dict = {}
    _keras_common(layout, w, attrs, options)
    return w, options


register(Layout("keras", KERAS_LSTM_ORDER, ("kernel", "recurrent_kernel"),
                "keras/layers/recurrent.py LSTMCell.build / LSTMCell.call", _keras_to, _keras_from, ("bias",),
                _keras_attributes))
register(Layout("keras_cudnn", KERAS_LSTM_ORDER, ("kernel", "recurrent_kernel", "bias"),
                "keras/layers/cudnn_recurrent.py CuDNNLSTM.build / _process_batch", _keras_cudnn_to, _keras_cudnn_from,
                (), _keras_cudnn_attributes))
