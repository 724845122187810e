"""cuDNN LSTM parameter buffers as JAX packs them, JAX's reading of them and JAX's LSTM on them, recorded.

    python legacy/record_cudnn_jax.py [--out tests/golden/convert/cudnn_jax/expected.npz]

A second implementation of cuDNN's opaque LSTM weight layout, independent of this project and of TF: JAX's
``jax/experimental/rnn.py`` hands cuDNN one flat buffer (``init_lstm_weight``: every pseudo-layer's W_ih and
W_hh, forward then reverse layer by layer, then every pseudo-layer's b_ih and b_hh; gates i, f, g, o),
reads it back with ``unpack_lstm_weights``, and runs ``lstm_ref``, the reference its tests check the cuDNN
kernel against on GPUs (outputs, final states and gradients, with ``seq_lengths``). All of it runs on the
CPU. Per case (layers x directions): the buffer, JAX's canonical weights per pseudo-layer, and JAX's
``lstm_ref`` outputs (zero past each sequence's length), final h and c on a random input, initial state and
sequence lengths.

Needs only ``jax`` and ``numpy`` (``pip install jax``; CPU). Not a GPU run: a buffer written by cuDNN itself
is not among the recordings.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "golden" / "convert" / "cudnn_jax" / "expected.npz"
CASES = [(1, False), (1, True), (2, False), (2, True), (3, True)]
INPUT, HIDDEN, BATCH, STEPS, SEED = 3, 4, 3, 5, 31


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    import jax

    jax.config.update("jax_platforms", "cpu")
    import jax.numpy as jnp
    from jax.experimental import rnn

    rng = np.random.default_rng(SEED)
    arrays = {}
    for k, (layers, bidi) in enumerate(CASES):
        name = f"l{layers}_{'bi' if bidi else 'uni'}"
        D = 2 if bidi else 1
        buf = rnn.init_lstm_weight(jax.random.PRNGKey(SEED + k), INPUT, HIDDEN, layers, bidi) * 3.0
        assert buf.shape == (rnn.get_num_params_in_lstm(INPUT, HIDDEN, layers, bidi),)
        W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(buf, INPUT, HIDDEN, layers, bidi)
        x = rng.uniform(-1.5, 1.5, (BATCH, STEPS, INPUT)).astype(np.float32)
        h0 = rng.uniform(-0.5, 0.5, (layers * D, BATCH, HIDDEN)).astype(np.float32)
        c0 = rng.uniform(-0.5, 0.5, (layers * D, BATCH, HIDDEN)).astype(np.float32)
        lengths = np.array([STEPS, 3, 1], dtype=np.int32)
        y, h_n, c_n = rnn.lstm_ref(jnp.asarray(x), jnp.asarray(h0), jnp.asarray(c0), W_ih, W_hh, b_ih, b_hh,
                                   jnp.asarray(lengths), INPUT, HIDDEN, layers, 0.0, bidi)
        arrays[f"{name}/config"] = np.array(json.dumps({"input_size": INPUT, "num_units": HIDDEN,
                                                        "num_layers": layers, "bidirectional": bidi}))
        arrays[f"{name}/buffer"] = np.asarray(buf)
        for p in range(layers * D):
            for label, d in (("W_ih", W_ih), ("W_hh", W_hh), ("b_ih", b_ih), ("b_hh", b_hh)):
                arrays[f"{name}/{label}/{p}"] = np.asarray(d[p])
        arrays[f"{name}/x"], arrays[f"{name}/h0"], arrays[f"{name}/c0"] = x, h0, c0
        arrays[f"{name}/lengths"] = lengths
        arrays[f"{name}/y"], arrays[f"{name}/h_n"], arrays[f"{name}/c_n"] = map(np.asarray, (y, h_n, c_n))
        print(name, buf.shape[0], "parameters")
    import jaxlib

    arrays["versions"] = np.array(json.dumps({"python": sys.version.split()[0], "date": datetime.date.today().isoformat(),
                                              "jax": jax.__version__, "jaxlib": jaxlib.__version__,
                                              "numpy": np.__version__, "platform": "cpu"}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
