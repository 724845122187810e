"""The ``caffe`` (BVLC LSTM) and ``junhyukoh`` (caffe-lstm Lstm) layouts (see compat/layouts.py)."""
from __future__ import annotations


from compat.layouts import (CANONICAL_ORDER, Attributes, Layout, LayoutError, check_shape,
                            no_extras, one_bias,
                            permute_gates, register, run_time_bias)
from compat.lstm import LayerWeights


# --- Caffe-style [4H, ...] blobs in gate order i, f, o, g
def _caffe_like_to(layout, names):
    wx_name, b_name, wh_name = names

    def to(p, forget_bias):
        wx, b, wh = p[wx_name], p[b_name], p[wh_name]
        if len(wh.shape) != 2 or wh.shape[0] != 4 * wh.shape[1]:
            raise LayoutError(f"{layout} tensor {wh_name!r} has shape {list(wh.shape)}; expected [4H, H]")
        hidden = wh.shape[1]
        if len(wx.shape) != 2 or wx.shape[0] != 4 * hidden:
            raise LayoutError(f"{layout} tensor {wx_name!r} has shape {list(wx.shape)}; expected [4H={4 * hidden}, in]")
        check_shape(b_name, layout, b, (4 * hidden,))
        bc = permute_gates(b, "ifog", CANONICAL_ORDER)
        return LayerWeights(permute_gates(wx, "ifog", CANONICAL_ORDER), permute_gates(wh, "ifog", CANONICAL_ORDER),
                            bc, run_time_bias(bc, hidden, forget_bias))

    def frm(w, forget_bias):
        no_extras(w, layout)
        return {wx_name: permute_gates(w.weight_ih, CANONICAL_ORDER, "ifog"),
                b_name: permute_gates(one_bias(w, forget_bias, layout), CANONICAL_ORDER, "ifog"),
                wh_name: permute_gates(w.weight_hh, CANONICAL_ORDER, "ifog")}

    return to, frm


_caffe_to, _caffe_from = _caffe_like_to("caffe", ("W_xc", "b_c", "W_hc"))
_junhyukoh_to, _junhyukoh_from = _caffe_like_to("junhyukoh", ("W_x", "b", "W_h"))


def _caffe_attributes(layout, p, attrs: Attributes, forget_bias):
    w = _caffe_to(p, 0.0 if forget_bias is None else forget_bias)
    attrs.expect("num_output", w.hidden_size, "H")
    attrs.take("expose_hidden")  # whether h0/c0 and h_T/c_T are blobs; not the recurrence
    attrs.inert(("weight_filler", "bias_filler"), "initialisation")
    if attrs.take("caffe_tanh"):
        # lstm_unit_layer.cpp computes tanh as 2 * sigmoid(2x) - 1: the same to rounding
        return w, {"activations": ("sigmoid", "caffe_tanh", "caffe_tanh")}
    return w, {}


def _junhyukoh_attributes(layout, p, attrs: Attributes, forget_bias):
    w = _junhyukoh_to(p, 0.0 if forget_bias is None else forget_bias)
    attrs.expect("num_output", w.hidden_size, "H")
    attrs.inert(("weight_filler", "bias_filler"), "initialisation")
    # caffe-lstm lstm_layer.cpp Backward_cpu: clipping_threshold clamps the gate gradients (training only;
    # the same layer's dW_h defect is lstm()'s recurrent_weight_grad_ignores_cont=True).
    clip = attrs.take("clipping_threshold")
    if clip:
        return w, {"preact_grad_clip": float(clip)}
    return w, {}


register(Layout("caffe", "ifog", ("W_xc", "b_c", "W_hc"),
                "BVLC caffe src/caffe/layers/lstm_layer.cpp FillUnrolledNet; lstm_unit_layer.cpp", _caffe_to, _caffe_from,
                (), _caffe_attributes))
register(Layout("junhyukoh", "ifog", ("W_x", "W_h", "b"),
                "junhyukoh/caffe-lstm src/caffe/layers/lstm_layer.cpp LayerSetUp / Forward_cpu", _junhyukoh_to,
                _junhyukoh_from, (), _junhyukoh_attributes))
