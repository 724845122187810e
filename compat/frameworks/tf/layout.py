"""The ``tf`` layout: BasicLSTMCell, LSTMCell, LSTMBlockCell and LSTMBlockFusedCell variables (see compat/layouts.py)."""
from __future__ import annotations


from compat.layouts import (CANONICAL_ORDER, Attributes, Layout, LayoutError, activation_option, check_shape,
                            clip_value, concat, keras_activation, one_bias,
                            permute_gates, register, run_time_bias, stack, transpose)
from compat.lstm import LayerWeights


# --- TF BasicLSTMCell / LSTMCell (rnn_cell_impl.py LSTMCell.build / LSTMCell.call:
#     i, j, f, o = split(concat([x, m_prev]) @ kernel + bias); peepholes w_f_diag, w_i_diag, w_o_diag;
#     m = m @ projection/kernel)
_TF_PEEPHOLES = ("w_i_diag", "w_f_diag", "w_o_diag")


def _tf_to(p, forget_bias):
    kernel, bias = p["kernel"], p["bias"]
    if len(kernel.shape) != 2 or kernel.shape[1] % 4:
        raise LayoutError(f"tf tensor 'kernel' has shape {list(kernel.shape)}; expected [in + H, 4H]")
    hidden = kernel.shape[1] // 4
    proj_kernel = p.get("projection/kernel")
    proj = hidden
    if proj_kernel is not None:
        if len(proj_kernel.shape) != 2 or proj_kernel.shape[0] != hidden:
            raise LayoutError(f"tf tensor 'projection/kernel' has shape {list(proj_kernel.shape)}; "
                              f"expected [H={hidden}, num_proj]")
        proj = proj_kernel.shape[1]
    if kernel.shape[0] <= proj:
        what = "num_proj" if proj_kernel is not None else "H"
        raise LayoutError(f"tf tensor 'kernel' has shape {list(kernel.shape)}; expected [in + {what}, 4H] "
                          f"with {what} = {proj}")
    check_shape("bias", "tf", bias, (4 * hidden,))
    diags = [p.get(n) for n in _TF_PEEPHOLES]
    if any(d is not None for d in diags):
        missing = [n for n, d in zip(_TF_PEEPHOLES, diags) if d is None]
        if missing:
            raise LayoutError(f"tf peepholes need all of {list(_TF_PEEPHOLES)}; missing {missing}")
        for n, d in zip(_TF_PEEPHOLES, diags):
            check_shape(n, "tf", d, (hidden,))
        peephole = stack(diags)
    else:
        peephole = None
    n_in = kernel.shape[0] - proj
    w_ih = permute_gates(transpose(kernel[:n_in]), "ijfo", CANONICAL_ORDER)
    w_hh = permute_gates(transpose(kernel[n_in:]), "ijfo", CANONICAL_ORDER)
    b = permute_gates(bias, "ijfo", CANONICAL_ORDER)
    w_hr = None if proj_kernel is None else transpose(proj_kernel)
    return LayerWeights(w_ih, w_hh, b, run_time_bias(b, hidden, forget_bias), w_hr, peephole)


def _tf_from(w, forget_bias):
    kernel = transpose(concat(w.weight_ih, w.weight_hh, 1))
    out = {"kernel": permute_gates(kernel, CANONICAL_ORDER, "ijfo", axis=1),
           "bias": permute_gates(one_bias(w, forget_bias, "tf"), CANONICAL_ORDER, "ijfo")}
    if w.peephole is not None:
        for k, name in enumerate(_TF_PEEPHOLES):
            out[name] = w.peephole[k]
    if w.weight_hr is not None:
        out["projection/kernel"] = transpose(w.weight_hr)
    return out


def _tf_attributes(layout, p, attrs: Attributes, forget_bias):
    fb_attr = attrs.take("forget_bias")
    if fb_attr is not None and forget_bias is not None and float(fb_attr) != float(forget_bias):
        raise LayoutError(f"tf forget_bias given twice: attribute {fb_attr}, argument {forget_bias}")
    fb = float(fb_attr if fb_attr is not None else (forget_bias or 0.0))
    w = _tf_to(p, fb)
    attrs.expect("num_units", w.hidden_size, "H")
    use_peepholes = attrs.take("use_peepholes", attrs.take("use_peephole"))  # LSTMBlockCell: use_peephole
    if use_peepholes is not None and bool(use_peepholes) != (w.peephole is not None):
        raise LayoutError(f"tf attribute use_peepholes={use_peepholes!r} but the tensors "
                          f"{'have' if w.peephole is not None else 'lack'} {list(_TF_PEEPHOLES)}")
    num_proj = attrs.take("num_proj")
    if num_proj is not None and (w.weight_hr is None or int(num_proj) != w.proj_size):
        raise LayoutError(f"tf attribute num_proj={num_proj!r} but the tensors' projection is "
                          f"{w.proj_size or 'absent'}")
    if num_proj is None and attrs.left.get("proj_clip") is not None and w.weight_hr is None:
        raise LayoutError("tf attribute proj_clip needs a projection (num_proj, 'projection/kernel')")
    options = {}
    for name in ("cell_clip", "proj_clip"):
        v = clip_value(attrs, name)
        if v is not None:
            options[name] = v
    act = attrs.take("activation")
    if act is not None:
        options.update(activation_option("sigmoid", keras_activation(attrs, "activation", act, 2)))
    for name in ("num_unit_shards", "num_proj_shards"):
        if attrs.take(name) is not None:
            raise LayoutError(f"tf attribute {name}: sharded variables must be concatenated into one tensor first")
    attrs.take("state_is_tuple")  # how TF packs (c, h), not what they are
    attrs.inert(("initializer", "reuse", "name", "dtype", "trainable"), "initialisation or variable bookkeeping")
    return w, options


register(Layout("tf", "ijfo", ("kernel", "bias"),
                "tensorflow/python/ops/rnn_cell_impl.py BasicLSTMCell.call / LSTMCell.build, LSTMCell.call", _tf_to,
                _tf_from, _TF_PEEPHOLES + ("projection/kernel",), _tf_attributes, run_time_forget_bias=True))
