"""Hypothesis: any TF1 LSTM checkpoint of the supported shapes converts, and the converted module matches
reference/tf_lstm.py (the command's own verification, run end to end from the written files, with random
initial states and sequence lengths)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from compat.convert import convert
from compat.formats.tf import save_checkpoint


def _cell_vars(rng, scope, n_in, H, P, peep, dtype):
    width = P or H
    out = {f"{scope}/kernel": rng.uniform(-1, 1, (n_in + width, 4 * H)).astype(dtype),
           f"{scope}/bias": rng.uniform(-1, 1, 4 * H).astype(dtype)}
    if peep:
        for n in ("w_i_diag", "w_f_diag", "w_o_diag"):
            out[f"{scope}/{n}"] = rng.uniform(-1, 1, H).astype(dtype)
    if P:
        out[f"{scope}/projection/kernel"] = rng.uniform(-1, 1, (H, P)).astype(dtype)
    return out


@settings(max_examples=10)
@given(n_in=st.integers(1, 4), H=st.integers(1, 4), P=st.sampled_from([0, 1, 2]), layers=st.integers(1, 3),
       peep=st.booleans(), structure=st.sampled_from(["multi", "stack_bidi", "bidi"]),
       dtype=st.sampled_from(["float32", "float64"]), forget_bias=st.sampled_from([0.0, 1.0, -0.5]),
       seed=st.integers(0, 2 ** 16))
def test_random_tf1_checkpoints_convert_and_verify(tmp_path_factory, n_in, H, P, layers, peep, structure, dtype,
                                                  forget_bias, seed):
    rng = np.random.default_rng(seed)
    tmp = tmp_path_factory.mktemp("ckpt")
    variables = {}
    width = P or H
    if structure == "multi":
        for k in range(layers):
            variables.update(_cell_vars(rng, f"rnn/multi_rnn_cell/cell_{k}/lstm_cell", n_in if k == 0 else width, H, P,
                                        peep, dtype))
    elif structure == "stack_bidi":
        for k in range(layers):
            for d in ("fw", "bw"):
                variables.update(_cell_vars(rng, f"stack_bidirectional_rnn/cell_{k}/bidirectional_rnn/{d}/lstm_cell",
                                            n_in if k == 0 else 2 * width, H, P, peep, dtype))
    else:
        for d in ("fw", "bw"):
            variables.update(_cell_vars(rng, f"bidirectional_rnn/{d}/lstm_cell", n_in, H, P, peep, dtype))
    save_checkpoint(tmp / "model.ckpt", variables)
    specs, _, _, checks = convert(tmp / "model.ckpt", tmp / "out.safetensors", forget_bias=forget_bias)
    assert len(specs) == 1
    assert specs[0].proj_size == P and specs[0].peepholes == peep
    (check,) = checks
    assert check.ok, check
