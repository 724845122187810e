"""Real checkpoints for the round-trip tests: a few training steps in the legacy framework, then save.

    python legacy/record_checkpoints.py [--out tests/golden/checkpoints]                    # TF models
    python legacy/record_checkpoints.py --framework pytensor [--out tests/golden/checkpoints]  # lstm_model.npz

TensorFlow: the PTB model (legacy/record_tf_ptb.py's graph, TF's own uniform initializer) and the
Shakespeare recipe's model (legacy/record_tf_shakespeare.py, random-normal initializers) train three
steps on random word ids (SGD with clip_by_global_norm; Adam with clip 4.5) and are saved with
``tf.compat.v1.train.Saver`` (V2, relative paths, every global variable: Adam slots, beta powers and the
``lr`` variable included). ``expected.npz`` holds the logits TF computes from the saved weights on a
fixed batch. The Theano lineage: lstm.py's graph trains two adadelta steps and saves ``lstm_model.npz``
the tutorial's way (``numpy.savez(saveto, history_errs=..., **unzip(tparams))``), with the evaluation
predictions on a padded batch.

The live round trip (tests/legacy/test_live_roundtrip.py) uses the same functions, then has the port
export a checkpoint and restores it in the framework.
"""
from __future__ import annotations

import argparse
import json
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np

from _common import GOLDEN, import_tf, tf_session, versions

PTB_CONFIG = dict(vocab_size=12, hidden_size=6, num_layers=2, batch_size=3, num_steps=4, forget_bias=0.0,
                  dtype="float32", learning_rate=1.0, max_grad_norm=5.0)
SHAKESPEARE_CONFIG = dict(vocab_size=14, rnn_size=6, batch_size=3, training_seq_len=4, dtype="float32",
                          learning_rate=0.01, clip=4.5)
IMDB_CONFIG = dict(n_words=30, dim_proj=6, ydim=2, dtype="float64")


# ---------------------------------------------------------------------------------------------- PTB

def ptb_train_and_save(tf, directory: Path, cfg: dict = PTB_CONFIG, steps: int = 3, seed: int = 0) -> dict:
    from record_tf_ptb import PTBGraph

    rng = np.random.default_rng(seed)
    B, T, V = cfg["batch_size"], cfg["num_steps"], cfg["vocab_size"]
    g = PTBGraph(tf, cfg)
    with g.graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        init = tf.compat.v1.global_variables_initializer()
    ids = rng.integers(0, V, (B, T))
    with tf_session(tf, g.graph) as sess:
        sess.run(init)
        g.lr.load(cfg["learning_rate"], sess)
        state = sess.run(g.initial_state)
        for _ in range(steps):
            x = rng.integers(0, V, (B, T))
            feed = {g.input_data: x, g.targets: np.roll(x, -1, axis=1), g.max_grad_norm: cfg["max_grad_norm"]}
            for (c, h), (cv, hv) in zip(g.initial_state, state):
                feed[c], feed[h] = cv, hv
            state, _ = sess.run([g.final_state, g.train_op], feed)
        prefix = saver.save(sess, str(directory / "model.ckpt"), global_step=steps, write_meta_graph=False)
        logits = sess.run(g.logits, {g.input_data: ids})
    return {"config": cfg, "inputs": ids.astype(np.int64), "logits": logits, "prefix": prefix}


def ptb_restore_logits(tf, checkpoint: str, ids: np.ndarray, cfg: dict = PTB_CONFIG) -> np.ndarray:
    """A fresh graph, ``Saver(trainable variables).restore(checkpoint)``, logits on ``ids`` (zero state)."""
    from record_tf_ptb import PTBGraph

    g = PTBGraph(tf, cfg)
    with g.graph.as_default():
        saver = tf.compat.v1.train.Saver(g.tvars)
    with tf_session(tf, g.graph) as sess:
        saver.restore(sess, checkpoint)
        return sess.run(g.logits, {g.input_data: ids})


# ---------------------------------------------------------------------------------------- Shakespeare

def _shakespeare_graph(tf, cfg):
    from record_tf_shakespeare import LSTMModel

    graph = tf.Graph()
    with graph.as_default():
        with tf.compat.v1.variable_scope("lstm_model"):
            model = LSTMModel(tf, cfg["rnn_size"], cfg["batch_size"], cfg["learning_rate"], cfg["training_seq_len"],
                              cfg["vocab_size"], cfg["clip"])
    return graph, model


def shakespeare_train_and_save(tf, directory: Path, cfg: dict = SHAKESPEARE_CONFIG, steps: int = 3,
                               seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    B, T, V = cfg["batch_size"], cfg["training_seq_len"], cfg["vocab_size"]
    graph, model = _shakespeare_graph(tf, cfg)
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables(), save_relative_paths=True)
        init = tf.compat.v1.global_variables_initializer()
    ids = rng.integers(0, V, (B, T))
    with tf_session(tf, graph) as sess:
        sess.run(init)
        state = sess.run(model.initial_state)
        for _ in range(steps):
            x = rng.integers(0, V, (B, T))
            feed = {model.x_data: x, model.y_output: np.roll(x, -1, axis=1),
                    model.initial_state.c: state.c, model.initial_state.h: state.h}
            state, _ = sess.run([model.final_state, model.train_op], feed)
        prefix = saver.save(sess, str(directory / "model"), global_step=steps, write_meta_graph=False)
        logits = sess.run(model.logit_output, {model.x_data: ids})
    return {"config": cfg, "inputs": ids.astype(np.int64), "logits": logits, "prefix": prefix}


def shakespeare_restore_logits(tf, checkpoint: str, ids: np.ndarray, cfg: dict = SHAKESPEARE_CONFIG) -> np.ndarray:
    graph, model = _shakespeare_graph(tf, cfg)
    with graph.as_default():
        saver = tf.compat.v1.train.Saver(model.tvars)
    with tf_session(tf, graph) as sess:
        saver.restore(sess, checkpoint)
        return sess.run(model.logit_output, {model.x_data: ids})


# ---------------------------------------------------------------------------------- Theano lineage

def _imdb_batch(rng, cfg, maxlen=5, n=4):
    lengths = [maxlen, 1] + list(rng.integers(1, maxlen + 1, n - 2))
    x = np.zeros((maxlen, n), np.int64)
    mask = np.zeros((maxlen, n), cfg["dtype"])
    for j, length in enumerate(lengths):
        x[:length, j] = rng.integers(1, cfg["n_words"], length)
        mask[:length, j] = 1
    return x, mask, rng.integers(0, cfg["ydim"], n).astype(np.int64)


def imdb_train_and_save(framework: str, path: Path, cfg: dict = IMDB_CONFIG, steps: int = 2, seed: int = 2) -> dict:
    """lstm.py's init_params (ortho_weight etc.), two adadelta steps, then the tutorial's numpy.savez."""
    from record_theano_imdb import PARAM_NAMES, build_and_run

    rng = np.random.default_rng(seed)
    dim, dt = cfg["dim_proj"], cfg["dtype"]

    def ortho_weight(ndim):
        u, _s, _v = np.linalg.svd(rng.standard_normal((ndim, ndim)))
        return u.astype(dt)

    params = OrderedDict()
    params["Wemb"] = (0.01 * rng.random((cfg["n_words"], dim))).astype(dt)
    params["lstm_W"] = np.concatenate([ortho_weight(dim) for _ in range(4)], axis=1)
    params["lstm_U"] = np.concatenate([ortho_weight(dim) for _ in range(4)], axis=1)
    params["lstm_b"] = np.zeros(4 * dim, dt)
    params["U"] = (0.01 * rng.standard_normal((dim, cfg["ydim"]))).astype(dt)
    params["b"] = np.zeros(cfg["ydim"], dt)
    x, mask, y = _imdb_batch(rng, cfg)
    case = dict(params, x=x, mask=mask, y=y, noise=rng.integers(0, 2, (x.shape[1], dim)).astype(dt),
                config=dict(cfg, decay_c=0.0, maxlen=x.shape[0], n_samples=x.shape[1]))
    trained = params
    for _ in range(steps):
        out = build_and_run(framework, dict(case, **trained))
        trained = OrderedDict((k, out[f"adadelta1/{k}"]) for k in PARAM_NAMES)
    history_errs = np.array([[0.5, 0.5]])
    np.savez(path, history_errs=history_errs, **trained)  # lstm.py train_lstm: numpy.savez(saveto, history_errs=..., **params)
    px, pmask, _ = _imdb_batch(np.random.default_rng(seed + 1), cfg)
    pred = imdb_predict(framework, path, px, pmask, cfg)
    return {"config": cfg, "x": px, "mask": pmask, "pred_prob": pred}


def imdb_predict(framework: str, path: Path, x, mask, cfg: dict = IMDB_CONFIG) -> np.ndarray:
    """lstm.py ``load_params(path, params)`` then ``f_pred_prob(x, mask)`` (evaluation path)."""
    from record_theano_imdb import PARAM_NAMES, build_and_run

    pp = np.load(path)
    params = {k: pp[k] for k in PARAM_NAMES}
    n = x.shape[1]
    case = dict(params, x=x, mask=mask, y=np.zeros(n, np.int64), noise=np.ones((n, cfg["dim_proj"]), cfg["dtype"]),
                config=dict(cfg, decay_c=0.0, maxlen=x.shape[0], n_samples=n))
    return build_and_run(framework, case)["pred_prob"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN / "checkpoints", help="output folder")
    parser.add_argument("--framework", choices=("tensorflow", "pytensor", "theano"), default="tensorflow",
                        help="which framework's files to write")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.framework == "tensorflow":
        tf = import_tf()
        arrays = {}
        for name, fn in (("tf_ptb", ptb_train_and_save), ("tf_shakespeare", shakespeare_train_and_save)):
            target = args.out / name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir()
            rec = fn(tf, target)
            arrays[f"{name}/config"] = np.array(json.dumps(rec["config"]))
            arrays[f"{name}/inputs"] = rec["inputs"]
            arrays[f"{name}/logits"] = rec["logits"]
        arrays["models"] = np.array(json.dumps(["tf_ptb", "tf_shakespeare"]))
        arrays["versions"] = np.array(json.dumps(versions()))
        np.savez(args.out / "expected.npz", **arrays)
    else:
        target = args.out / f"theano_imdb_{args.framework}"
        target.mkdir(exist_ok=True)
        # train_lstm's saveto (default 'lstm_model.npz', a name this repository's .gitignore keeps out)
        rec = imdb_train_and_save(args.framework, target / "saveto_lstm_model.npz")
        np.savez(target / "expected.npz", config=np.array(json.dumps(rec["config"])), x=rec["x"], mask=rec["mask"],
                 pred_prob=rec["pred_prob"], versions=np.array(json.dumps(versions())))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
