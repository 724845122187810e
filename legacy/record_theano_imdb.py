"""DeepLearningTutorials' lstm.py (the IMDB sentiment LSTM) built in real Theano or PyTensor, run and recorded.

    python legacy/record_theano_imdb.py --framework pytensor [--out tests/golden/theano_imdb_pytensor.npz]
    python legacy/record_theano_imdb.py --framework theano   [--out tests/golden/theano_imdb_theano.npz]

The graph follows lisa-lab/DeepLearningTutorials ``code/lstm.py``: shared variables ``Wemb, lstm_W,
lstm_U, lstm_b, U, b``; ``lstm_layer`` (``state_below = dot(emb, W) + b`` outside the scan; ``_step``
with gate slices i, f, o, c and the mask carry of c and h; ``tensor.alloc`` zero initial state) under
``scan``; mean pooling ``(proj * mask[:, :, None]).sum(0) / mask.sum(0)[:, None]``; ``dropout_layer``;
``softmax(dot(proj, U) + b)``; ``cost = -log(pred[arange(n), y] + 1e-8).mean()`` plus
``decay_c * (U ** 2).sum()``; ``tensor.grad``; ``adadelta``'s ``f_grad_shared`` / ``f_update`` pair.
The training path's dropout mask comes from ``RandomStreams`` in the tutorial; here it is an input
(``noise``) so the port can be fed the same mask. The evaluation path (``use_noise = 0``: proj * 0.5)
is the tutorial's own.

Recorded per case: inputs, ``f_pred_prob`` (evaluation), the training-path cost and gradients, and the
parameters after each of two adadelta updates.
"""
from __future__ import annotations

import argparse
from collections import OrderedDict

import numpy as np

from _common import GOLDEN, import_theano_lineage, store_case, write_golden

PARAM_NAMES = ("Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b")


def make_case(seed: int, *, n_words: int, dim: int, ydim: int, maxlen: int, n: int, dtype: str,
              decay_c: float = 0.0) -> dict:
    """Random parameters at the tutorial's scales and a padded batch with very unequal lengths."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    lengths = rng.integers(1, maxlen + 1, n)
    lengths[0] = maxlen  # at least one full-length sequence; others end early (padding-only steps)
    lengths[-1] = 1
    x = np.zeros((maxlen, n), np.int64)
    mask = np.zeros((maxlen, n), dt)
    for j, length in enumerate(lengths):
        x[:length, j] = rng.integers(1, n_words, length)
        mask[:length, j] = 1
    case = {
        "Wemb": (0.5 * rng.standard_normal((n_words, dim))).astype(dt),
        "lstm_W": (rng.standard_normal((dim, 4 * dim)) / np.sqrt(dim)).astype(dt),
        "lstm_U": (rng.standard_normal((dim, 4 * dim)) / np.sqrt(dim)).astype(dt),
        "lstm_b": (0.1 * rng.standard_normal(4 * dim)).astype(dt),
        "U": (0.5 * rng.standard_normal((dim, ydim))).astype(dt),
        "b": (0.1 * rng.standard_normal(ydim)).astype(dt),
        "x": x, "mask": mask, "y": rng.integers(0, ydim, n).astype(np.int64),
        "noise": rng.integers(0, 2, (n, dim)).astype(dt),
    }
    case["config"] = dict(n_words=n_words, dim_proj=dim, ydim=ydim, maxlen=maxlen, n_samples=n, dtype=dtype,
                          decay_c=decay_c, seed=seed)
    return case


def build_and_run(framework: str, case: dict) -> dict:
    """Build and run the graph with ``config.floatX`` set to the case's dtype, as the tutorial runs
    under THEANO_FLAGS=floatX=... (Python float constants then take that type)."""
    th, _T, _softmax = import_theano_lineage(framework)
    change_flags = th.config.change_flags if hasattr(th.config, "change_flags") else th.change_flags
    with change_flags(floatX=case["config"]["dtype"]):
        return _build_and_run(framework, case)


def lstm_mean_pool(th, T, sigmoid, tparams, x, mask, floatX: str):
    """lstm.py ``build_model`` up to the dropout: the embedding lookup, ``lstm_layer`` (its ``_step`` under
    ``scan``) and the masked mean over time. Shared with benchmarks/legacy_sides.py."""
    dim = tparams["Wemb"].get_value().shape[1]

    def numpy_floatX(data):
        return np.asarray(data, dtype=floatX)

    def _slice(_x, k, d):
        if _x.ndim == 3:
            return _x[:, :, k * d:(k + 1) * d]
        return _x[:, k * d:(k + 1) * d]

    def _step(m_, x_, h_, c_):
        preact = T.dot(h_, tparams["lstm_U"])
        preact += x_
        i = sigmoid(_slice(preact, 0, dim))
        f = sigmoid(_slice(preact, 1, dim))
        o = sigmoid(_slice(preact, 2, dim))
        c = T.tanh(_slice(preact, 3, dim))
        c = f * c_ + i * c
        c = m_[:, None] * c + (1. - m_)[:, None] * c_
        h = o * T.tanh(c)
        h = m_[:, None] * h + (1. - m_)[:, None] * h_
        return h, c

    n_timesteps, n_samples = x.shape[0], x.shape[1]
    emb = tparams["Wemb"][x.flatten()].reshape([n_timesteps, n_samples, dim])
    state_below = T.dot(emb, tparams["lstm_W"]) + tparams["lstm_b"]
    rval, _updates = th.scan(_step, sequences=[mask, state_below],
                             outputs_info=[T.alloc(numpy_floatX(0.), n_samples, dim),
                                           T.alloc(numpy_floatX(0.), n_samples, dim)],
                             name="lstm__layers", n_steps=n_timesteps)
    proj = (rval[0] * mask[:, :, None]).sum(axis=0)
    return proj / mask.sum(axis=0)[:, None]


def adadelta(th, T, tparams, grads, inputs, cost, floatX: str, **function_kwargs):
    """lstm.py ``adadelta``: ``(f_grad_shared, f_update)``. Shared with benchmarks/legacy_sides.py."""
    def numpy_floatX(data):
        return np.asarray(data, dtype=floatX)

    lr = T.scalar(name="lr", dtype=floatX)
    zipped_grads = [th.shared(p.get_value() * numpy_floatX(0.), name="%s_grad" % k) for k, p in tparams.items()]
    running_up2 = [th.shared(p.get_value() * numpy_floatX(0.), name="%s_rup2" % k) for k, p in tparams.items()]
    running_grads2 = [th.shared(p.get_value() * numpy_floatX(0.), name="%s_rgrad2" % k) for k, p in tparams.items()]
    zgup = [(zg, g) for zg, g in zip(zipped_grads, grads)]
    rg2up = [(rg2, 0.95 * rg2 + 0.05 * (g ** 2)) for rg2, g in zip(running_grads2, grads)]
    f_grad_shared = th.function(inputs, cost, updates=zgup + rg2up, name="adadelta_f_grad_shared",
                                **function_kwargs)
    updir = [-T.sqrt(ru2 + 1e-6) / T.sqrt(rg2 + 1e-6) * zg
             for zg, ru2, rg2 in zip(zipped_grads, running_up2, running_grads2)]
    ru2up = [(ru2, 0.95 * ru2 + 0.05 * (ud ** 2)) for ru2, ud in zip(running_up2, updir)]
    param_up = [(p, p + ud) for p, ud in zip(tparams.values(), updir)]
    f_update = th.function([lr], [], updates=ru2up + param_up, on_unused_input="ignore", name="adadelta_f_update",
                           **function_kwargs)
    return f_grad_shared, f_update


def _build_and_run(framework: str, case: dict) -> dict:
    th, T, softmax = import_theano_lineage(framework)
    sigmoid = T.sigmoid if framework == "pytensor" else T.nnet.sigmoid
    cfg = case["config"]
    floatX = cfg["dtype"]

    def numpy_floatX(data):
        return np.asarray(data, dtype=floatX)

    tparams = OrderedDict((k, th.shared(case[k].copy(), name=k)) for k in PARAM_NAMES)
    x = T.matrix("x", dtype="int64")
    mask = T.matrix("mask", dtype=floatX)
    y = T.vector("y", dtype="int64")
    noise = T.matrix("noise", dtype=floatX)
    use_noise = th.shared(numpy_floatX(0.))
    n_samples = x.shape[1]
    proj = lstm_mean_pool(th, T, sigmoid, tparams, x, mask, floatX)
    # dropout_layer, with the binomial draw replaced by the fed mask
    proj = T.switch(use_noise, proj * noise, proj * 0.5)
    pred = softmax(T.dot(proj, tparams["U"]) + tparams["b"])
    f_pred_prob = th.function([x, mask, noise], pred, on_unused_input="ignore")
    off = 1e-8
    cost = -T.log(pred[T.arange(n_samples), y] + off).mean()
    if cfg["decay_c"] > 0.:
        decay_c = th.shared(numpy_floatX(cfg["decay_c"]), name="decay_c")
        cost += decay_c * (tparams["U"] ** 2).sum()
    f_cost = th.function([x, mask, y, noise], cost)
    grads = T.grad(cost, wrt=list(tparams.values()))
    f_grad = th.function([x, mask, y, noise], grads)
    f_grad_shared, f_update = adadelta(th, T, tparams, grads, [x, mask, y, noise], cost, floatX)

    args = (case["x"], case["mask"])
    out = {}
    use_noise.set_value(numpy_floatX(0.))
    out["pred_prob"] = f_pred_prob(*args, case["noise"])
    out["cost_eval"] = np.asarray(f_cost(*args, case["y"], case["noise"]))
    use_noise.set_value(numpy_floatX(1.))
    out["cost"] = np.asarray(f_cost(*args, case["y"], case["noise"]))
    for k, g in zip(PARAM_NAMES, f_grad(*args, case["y"], case["noise"])):
        out[f"grad/{k}"] = np.asarray(g)
    for step in (1, 2):
        f_grad_shared(*args, case["y"], case["noise"])
        f_update(numpy_floatX(0.0001))
        for k, p in tparams.items():
            out[f"adadelta{step}/{k}"] = p.get_value()
    return out


GOLDEN_CASES = [  # (n_words, dim, ydim, maxlen, n, dtype, decay_c)
    (20, 5, 2, 6, 4, "float64", 0.0),
    (15, 4, 3, 4, 3, "float64", 0.01),
    (25, 6, 2, 5, 5, "float32", 0.0),
]


def record(framework: str, cases, seed0: int) -> dict:
    arrays = {}
    for i, (n_words, dim, ydim, maxlen, n, dtype, decay_c) in enumerate(cases):
        case = make_case(seed0 + i, n_words=n_words, dim=dim, ydim=ydim, maxlen=maxlen, n=n, dtype=dtype,
                         decay_c=decay_c)
        out = build_and_run(framework, case)
        store_case(arrays, i, case, out, framework=framework)
    return arrays


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("pytensor", "theano"), default="pytensor",
                        help="which Theano lineage builds the graph")
    parser.add_argument("--out", default=None, help="npz file (default tests/golden/theano_imdb_<framework>.npz)")
    parser.add_argument("--seed", type=int, default=200, help="seed of the first case (then +1 per case)")
    args = parser.parse_args()
    out = args.out or str(GOLDEN / f"theano_imdb_{args.framework}.npz")
    arrays = record(args.framework, GOLDEN_CASES, args.seed)
    write_golden(out, arrays, len(GOLDEN_CASES))


if __name__ == "__main__":
    main()
