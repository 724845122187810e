"""The ``theano`` layout: the DeepLearningTutorials lstm.py parameters (see compat/layouts.py)."""
from __future__ import annotations


from compat.layouts import (CANONICAL_ORDER, Attributes, Layout, LayoutError, check_shape,
                            no_extras, one_bias,
                            permute_gates, register, run_time_bias, transpose)
from compat.lstm import LayerWeights


# --- Theano tutorial (DeepLearningTutorials code/lstm.py lstm_layer._step: _slice 0 i, 1 f, 2 o, 3 c)
def _theano_to(p, forget_bias):
    W, U, b = p["W"], p["U"], p["b"]
    if len(U.shape) != 2 or U.shape[1] != 4 * U.shape[0]:
        raise LayoutError(f"theano tensor 'U' has shape {list(U.shape)}; expected [H, 4H]")
    hidden = U.shape[0]
    if len(W.shape) != 2 or W.shape[1] != 4 * hidden:
        raise LayoutError(f"theano tensor 'W' has shape {list(W.shape)}; expected [in, 4H={4 * hidden}]")
    check_shape("b", "theano", b, (4 * hidden,))
    bc = permute_gates(b, "ifoc", CANONICAL_ORDER)
    return LayerWeights(permute_gates(transpose(W), "ifoc", CANONICAL_ORDER), permute_gates(transpose(U), "ifoc", CANONICAL_ORDER),
                        bc, run_time_bias(bc, hidden, forget_bias))


def _theano_from(w, forget_bias):
    no_extras(w, "theano")
    return {"W": permute_gates(transpose(w.weight_ih), CANONICAL_ORDER, "ifoc", axis=1),
            "U": permute_gates(transpose(w.weight_hh), CANONICAL_ORDER, "ifoc", axis=1),
            "b": permute_gates(one_bias(w, forget_bias, "theano"), CANONICAL_ORDER, "ifoc")}


def _theano_attributes(layout, p, attrs: Attributes, forget_bias):
    w = _theano_to(p, 0.0 if forget_bias is None else forget_bias)
    attrs.expect("dim_proj", w.hidden_size, "H")
    return w, {}


register(Layout("theano", "ifoc", ("W", "U", "b"),
                "DeepLearningTutorials code/lstm.py param_init_lstm / lstm_layer._step", _theano_to, _theano_from, (),
                _theano_attributes))
