"""The legacy frameworks' side of benchmarks/vs_legacy.py: real TensorFlow (tf.compat.v1 graphs), Theano
1.0.5 or PyTensor, and junhyukoh/caffe-lstm's own binary.

- TensorFlow: the graphs of legacy/record_tf_ptb.py and legacy/record_tf_shakespeare.py (the tutorial's
  and the cookbook's code), one ``sess.run([cost, final_state, train_op])`` a step with the state fed
  back, in a session with ``intra_op_parallelism_threads = inter_op_parallelism_threads = --threads``.
- Theano / PyTensor: the tutorial's ``build_model`` + ``adadelta`` (DeepLearningTutorials lstm.py), one
  ``f_grad_shared(x, mask, y)`` + ``f_update(lr)`` a step, compiled in the framework's default mode
  (``--legacy-mode`` to change); the dropout mask is the tutorial's ``trng.binomial``.
- Caffe: ``lstm_sequence.bin SOLVER RESULT TotalLength`` in a subprocess, one run of ``--steps``
  iterations a round (the solver's max_iter, display every few iterations), OPENBLAS_NUM_THREADS and
  OMP_NUM_THREADS = --threads. The rate is read from the binary's own log: glog's time stamps of the
  first and last "Iteration N, loss" lines, so process start, net set-up and the generation after
  training are not counted.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

import workload_data as data

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "legacy") not in sys.path:
    sys.path.insert(0, str(REPO / "legacy"))


def _timed(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------ TensorFlow
def _tf(threads: int):
    from _common import import_tf

    tf = import_tf()
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
    return tf, config


def ptb(args, train: bool):
    from record_tf_ptb import PTBGraph

    tf, config = _tf(args.threads)
    B, T = (20, 20) if train else (1, 1)
    cfg = dict(vocab_size=data.PTB_VOCAB, hidden_size=200, num_layers=2, batch_size=B, num_steps=T,
               forget_bias=0.0, dtype="float32")
    g = PTBGraph(tf, cfg)
    sess = tf.compat.v1.Session(graph=g.graph, config=config)
    with g.graph.as_default():
        sess.run(tf.compat.v1.global_variables_initializer())
        g.lr.load(1.0, sess)
    state = {"s": sess.run(g.initial_state), "k": 0}
    if train:
        batches = data.ptb_batches(B, T, args.seed)
        fetches = [g.cost, g.final_state, g.train_op]
    else:
        ids = data.ptb_tokens(args.seed)
        fetches = [g.cost, g.final_state]

    def step():
        k = state["k"]
        state["k"] += 1
        if train:
            x, y = batches[k % len(batches)]
            feed = {g.input_data: x, g.targets: y, g.max_grad_norm: 5.0}
        else:
            k = k % (len(ids) - 1)
            feed = {g.input_data: ids[k:k + 1].reshape(1, 1), g.targets: ids[k + 1:k + 2].reshape(1, 1)}
        for (c, h), (cv, hv) in zip(g.initial_state, state["s"]):
            feed[c], feed[h] = cv, hv
        out = sess.run(fetches, feed)
        state["s"] = out[1]

    return "TensorFlow " + tf.__version__, lambda n: _timed(step, n)


def shakespeare(args):
    from record_tf_shakespeare import LSTMModel

    tf, config = _tf(args.threads)
    V, H, B, T = data.SHAKESPEARE
    graph = tf.Graph()
    with graph.as_default():
        with tf.compat.v1.variable_scope("lstm_model"):
            model = LSTMModel(tf, H, B, 0.001, T, V)
        init = tf.compat.v1.global_variables_initializer()
    sess = tf.compat.v1.Session(graph=graph, config=config)
    sess.run(init)
    batches = data.shakespeare_batches(args.seed)
    state = {"s": sess.run(model.initial_state), "k": 0}

    def step():
        x, y = batches[state["k"] % len(batches)]
        state["k"] += 1
        feed = {model.x_data: x, model.y_output: y, model.initial_state: state["s"]}
        _, state["s"], _ = sess.run([model.cost, model.final_state, model.train_op], feed)

    return "TensorFlow " + tf.__version__, lambda n: _timed(step, n)


def sine(args):
    from record_tf_sine import GOLDEN_CASES, SineGraph

    tf, config = _tf(args.threads)
    g = SineGraph(tf, GOLDEN_CASES[0], seed=args.seed)
    sess = tf.compat.v1.Session(graph=g.graph, config=config)
    sess.run(g.init)
    batches = data.sine_batches(args.seed)
    state = {"k": 0}

    def step():
        x, y = batches[state["k"] % len(batches)]
        state["k"] += 1
        sess.run([g.train_op, g.loss], {g.x: x, g.y: y.reshape(-1)})  # the Estimator's run([train_op, loss])

    return "TensorFlow " + tf.__version__, lambda n: _timed(step, n)


# ------------------------------------------------------------------------------------ Theano / PyTensor
def _theano_lineage(which):
    order = [which] if which else ["theano", "pytensor"]
    errors = []
    for name in order:
        try:
            if name == "theano":
                # Theano 1.0.5 on Python 3.11: its compiled scan does not build (the pure-Python scan runs,
                # as in tox -e legacy-theano); BLAS from OpenBLAS, as the tox env links it.
                sys.modules.setdefault("theano.scan_module.scan_perform_ext", None)
                os.environ.setdefault("THEANO_FLAGS", "blas.ldflags=-lopenblas")
                import theano as th
                import theano.tensor as T
                from theano.sandbox.rng_mrg import MRG_RandomStreams

                return "Theano " + th.__version__, th, T, T.nnet.softmax, T.nnet.sigmoid, MRG_RandomStreams
            import pytensor as th
            import pytensor.tensor as T
            from pytensor.tensor.random.utils import RandomStream
            from pytensor.tensor.special import softmax

            return "PyTensor " + th.__version__, th, T, (lambda z: softmax(z, axis=-1)), T.sigmoid, RandomStream
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise SystemExit("no Theano lineage importable (" + "; ".join(errors) + "): run in tox -e legacy-theano "
                     "or tox -e legacy, or pass --no-legacy")


def imdb(args, floatX: str):
    name, th, T, softmax, sigmoid, RandomStreams = _theano_lineage(args.legacy_framework)
    if args.legacy_mode:
        mode = args.legacy_mode
    else:
        mode = None
    change = th.config.change_flags if hasattr(th.config, "change_flags") else th.change_flags
    with change(floatX=floatX):
        f_grad_shared, f_update = _imdb_graph(th, T, softmax, sigmoid, RandomStreams, floatX, args.seed, mode)
    batches = data.imdb_batches(floatX, args.seed)
    state = {"k": 0}
    lr = np.asarray(0.0001, dtype=floatX)

    def step():
        x, mask, y = batches[state["k"] % len(batches)]
        state["k"] += 1
        float(f_grad_shared(x, mask, y))
        f_update(lr)

    return f"{name} ({mode or 'default mode'})", lambda n: _timed(step, n)


def _imdb_graph(th, T, softmax, sigmoid, RandomStreams, floatX, seed, mode):
    """lstm.py build_model + adadelta, as the tutorial writes them (use_noise on: training); the LSTM, the
    pooling and adadelta are legacy/record_theano_imdb.py's."""
    from record_theano_imdb import adadelta, lstm_mean_pool

    params = data.imdb_params(floatX, seed)
    tparams = OrderedDict((k, th.shared(np.array(v), name=k)) for k, v in params.items())
    trng = RandomStreams(seed + 1)  # MRG_RandomStreams rejects 0
    x = T.matrix("x", dtype="int64")
    mask = T.matrix("mask", dtype=floatX)
    y = T.vector("y", dtype="int64")
    proj = lstm_mean_pool(th, T, sigmoid, tparams, x, mask, floatX)
    if hasattr(th, "sandbox"):  # Theano's MRG_RandomStreams, as the tutorial calls it
        keep = trng.binomial(proj.shape, p=0.5, n=1, dtype=proj.dtype)
    else:  # PyTensor's RandomStream: binomial(n, p, size)
        keep = T.cast(trng.binomial(1, 0.5, size=proj.shape), proj.dtype)
    proj = proj * keep  # dropout_layer with use_noise on
    pred = softmax(T.dot(proj, tparams["U"]) + tparams["b"])
    cost = -T.log(pred[T.arange(x.shape[1]), y] + 1e-8).mean()
    grads = T.grad(cost, wrt=list(tparams.values()))
    return adadelta(th, T, tparams, grads, [x, mask, y], cost, floatX, **({} if mode is None else {"mode": mode}))


# ---------------------------------------------------------------------------------------------- Caffe
CAFFE_SOLVERS = {"lstm_short": ("lstm_short_solver.prototxt", 320), "lstm_long": ("lstm_long_solver.prototxt", 960),
                 "deep_short": ("deep_short_solver.prototxt", 320), "deep_long": ("deep_long_solver.prototxt", 960)}
_GLOG_ITER = re.compile(r"^I\d{4,8} (\d\d):(\d\d):(\d\d\.\d+) .*\] Iteration (\d+), loss")


CAFFE_BIN = Path(".build_release") / "examples" / "lstm_sequence" / "lstm_sequence.bin"


def find_caffe_bin(given):
    """--caffe-bin, else $CAFFE_LSTM_BIN, else a caffe-lstm build in legacy-builds/ beside the checkout."""
    if given:
        return given
    for root in (REPO.parent, REPO.parent.parent):
        candidate = root / "legacy-builds" / "caffe-lstm" / CAFFE_BIN
        if candidate.is_file():
            return str(candidate)
    return None


def caffe(args, config: str):
    binary = find_caffe_bin(args.caffe_bin)
    if not binary or not Path(binary).is_file():
        raise SystemExit("Caffe side: pass --caffe-bin PATH/.build_release/examples/lstm_sequence/lstm_sequence.bin "
                         "(or CAFFE_LSTM_BIN), or --no-legacy")
    solver_file, total = CAFFE_SOLVERS[config]
    configs = REPO / "ports" / "caffe_sequence" / "configs"
    work = Path(tempfile.mkdtemp(prefix="vs_legacy_caffe_"))
    solver_text = (configs / solver_file).read_text()
    net_name = re.search(r'net:\s*"([^"]+)"', solver_text).group(1)
    (work / net_name).write_text((configs / net_name).read_text())
    env = dict(os.environ, GLOG_logtostderr="1", OPENBLAS_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))

    def run(n: int) -> float:
        display = max(1, n // 20)
        text = re.sub(r"max_iter:\s*\d+", f"max_iter: {n + display}", solver_text)
        text = re.sub(r"display:\s*\d+", f"display: {display}", text) + f"\nrandom_seed: {args.seed + 1701}\n"
        (work / "timing_solver.prototxt").write_text(text)
        proc = subprocess.run([binary, "timing_solver.prototxt", str(work / "result.log"), str(total)], cwd=work,
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{binary} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        stamps = []
        for line in proc.stderr.splitlines():
            m = _GLOG_ITER.match(line)
            if m:
                hh, mm, ss, it = int(m.group(1)), int(m.group(2)), float(m.group(3)), int(m.group(4))
                stamps.append((it, hh * 3600 + mm * 60 + ss))
        if len(stamps) < 2:
            raise RuntimeError(f"{binary}: fewer than two 'Iteration N, loss' lines in its log")
        (i0, t0), (i1, t1) = stamps[0], stamps[-1]
        seconds = (t1 - t0) % 86400
        return seconds * n / (i1 - i0)  # the log's time for n iterations

    return "Caffe (junhyukoh lstm_sequence.bin)", run


def build(workload: str, args):
    if workload == "ptb-train":
        return ptb(args, True)
    if workload == "ptb-test":
        return ptb(args, False)
    if workload == "shakespeare-train":
        return shakespeare(args)
    if workload.startswith("imdb-"):
        return imdb(args, {"imdb-f64": "float64", "imdb-f32": "float32"}[workload])
    if workload.startswith("caffe-"):
        return caffe(args, workload[len("caffe-"):])
    if workload == "sine-train":
        return sine(args)
    raise ValueError(workload)
