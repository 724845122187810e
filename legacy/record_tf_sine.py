"""The TF book's sine regressor (``tf.contrib.learn`` Estimator) built in real TensorFlow, trained and recorded.

    python legacy/record_tf_sine.py [--out tests/golden/tf_sine.npz]       # the golden cases
    python legacy/record_tf_sine.py --full [--seed 0] [--runs 2] [--model-dir DIR] [--init-dir DIR]
                                    [--input-layout features|steps] [--json FILE]   # the book's whole program

The program (caicloud/tensorflow-tutorial ``Deep_Learning_with_TensorFlow`` chapter 8, "预测正弦函数")
trains ``lstm_model`` through ``learn.SKCompat(learn.Estimator(model_fn=lstm_model,
model_dir="Models/model_2")).fit(train_X, train_y, batch_size=32, steps=3000)``. TF 2.21 has neither
``tf.contrib`` nor ``tf.estimator``, so the graph is built here with ``tf.compat.v1`` as TF 1.x built it:

* ``MultiRNNCell([BasicLSTMCell(HIDDEN_SIZE) for _ in range(NUM_LAYERS)])``, ``dynamic_rnn(cell, X, dtype)``,
  ``reshape(output, [-1, HIDDEN_SIZE])`` (the ten-step reading: ``X`` reshaped to ``[B, TIMESTEPS, 1]`` and
  ``outputs[:, -1, :]``); the cells' kernels from ``get_variable``'s default Glorot uniform initializer;
* ``tf.contrib.layers.fully_connected(output, 1, None)``: ``variable_scope("fully_connected")`` with
  ``weights`` from ``glorot_uniform_initializer`` (``xavier_initializer()`` draws from the same uniform
  distribution, limit sqrt(6 / (fan_in + fan_out))) and zero ``biases``, ``bias_add(matmul(x, weights),
  biases)`` as contrib's layer (core ``Dense``) computes it;
* ``tf.compat.v1.losses.mean_squared_error(predictions, labels)``, arguments in the book's order;
* ``optimize_loss(loss, global_step, optimizer="Adagrad", learning_rate=0.1)`` written out as TF 1.x
  ``contrib/layers/python/layers/optimizers.py`` builds it with its defaults: ``variable_scope("OptimizeLoss")``
  holding the float32 ``learning_rate`` variable, ``AdagradOptimizer(lr).compute_gradients(loss,
  trainable_variables())``, ``apply_gradients(..., global_step=global_step, name="train")``, the train
  tensor ``with_dependencies([update], loss)``;
* the Estimator's loop (``_train_model``: ``while not should_stop(): run([train_op, loss])``, a
  ``StopAtStepHook(num_steps=steps)``, ``_FeedFnHook(feed_fn)``): one ``run`` per step, fed from
  :class:`DataFeeder`, TF 1.x ``learn_io/data_feeder.py``'s index logic;
* ``model_dir`` resume: ``Saver`` writes the variables after a fit (``model.ckpt-N`` and the ``checkpoint``
  file, as the Estimator's CheckpointSaverHook does); the next fit builds a new graph, restores them and
  feeds from a new DataFeeder;
* ``SKCompat.predict``: batches of 128 in order.

Golden cases (``--out``): TF's initial variables (drawn by TF's initializers under a graph seed), the
batches fed, every step's loss of a first fit, the variables and Adagrad accumulators after it, the test
curve's predictions and RMSE, then a second fit from the restored checkpoint (losses, variables,
predictions). The first case is the book's program at full size with a first fit of 400 steps (the
feeder's first epoch ends at step 313 with a batch of 5); its TF checkpoint after that fit is kept in
``tests/golden/tf_sine_model_dir/`` (the files an Estimator's model_dir holds), for the port to restore.

``--full`` runs the book's program as it is (3,000 steps a run, ``--runs`` runs on one model directory)
and writes what it printed, every step's loss, the predictions and the timings to ``--json``; with
``--init-dir`` it first writes TF's initial variables as a model directory of their own (global step 0),
from which both the TF run and, given a copy of it as ``--model-dir``, the port start.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import GOLDEN, import_tf, store_case, tf_session, versions, write_golden

FEEDER_SEED = 42
PREDICT_BATCH = 128


def generate_data(seq, timesteps):
    """The book's ``generate_data``."""
    X, y = [], []
    for i in range(len(seq) - timesteps - 1):
        X.append([seq[i: i + timesteps]])
        y.append([seq[i + timesteps]])
    return np.array(X, dtype=np.float32), np.array(y, dtype=np.float32)


def book_data(training_examples, testing_examples, sample_gap, timesteps):
    test_start = training_examples * sample_gap
    test_end = (training_examples + testing_examples) * sample_gap
    train_X, train_y = generate_data(np.sin(np.linspace(0, test_start, training_examples, dtype=np.float32)),
                                     timesteps)
    test_X, test_y = generate_data(np.sin(np.linspace(test_start, test_end, testing_examples, dtype=np.float32)),
                                   timesteps)
    return train_X, train_y, test_X, test_y


class DataFeeder:
    """TF 1.x ``data_feeder.py`` ``DataFeeder(x, y, n_classes=None, batch_size, shuffle=True,
    random_state=None, epochs=None)``: which rows ``_feed_dict_fn`` feeds at each call."""

    def __init__(self, x, y, batch_size):
        self._x, self._y, self._batch_size = x, y, batch_size
        self.random_state = np.random.RandomState(FEEDER_SEED)
        self.indices = self.random_state.permutation(x.shape[0])
        self.offset = 0
        self.epoch = 0

    def feed(self):
        """``(batch_indices, inp, out)`` of the next step; ``out`` is y's rows flattened to [batch]
        (``output_shape`` drops y's trailing dimension of 1)."""
        end = min(self._x.shape[0], self.offset + self._batch_size)
        batch_indices = self.indices[self.offset:end]
        inp = self._x[batch_indices]
        self.offset += self._batch_size
        if self.offset >= self._x.shape[0]:
            self.indices = self.random_state.permutation(self._x.shape[0])
            self.offset = 0
            self.epoch += 1
        out = np.zeros([batch_indices.shape[0]], dtype=np.float32)
        for i in range(out.shape[0]):
            out[i] = self._y[batch_indices[i]].reshape(())  # numpy < 2 assigned the one-element row itself
        return batch_indices, inp, out


class SineGraph:
    """lstm_model's graph with optimize_loss's train op, on placeholders as the data feeder's input_builder
    makes them (``input`` [None, 1, TIMESTEPS], ``output`` [None])."""

    def __init__(self, tf, cfg: dict, seed=None):
        v1 = tf.compat.v1
        dtype = tf.float64 if cfg["dtype"] == "float64" else tf.float32
        H, L, T = cfg["hidden_size"], cfg["num_layers"], cfg["timesteps"]
        self.graph = tf.Graph()
        with self.graph.as_default():
            if seed is not None:
                v1.set_random_seed(seed)
            self.global_step = v1.train.get_or_create_global_step()
            self.x = v1.placeholder(dtype, [None, 1, T], name="input")
            self.y = v1.placeholder(dtype, [None], name="output")
            X = self.x if cfg["input_layout"] == "features" else tf.reshape(self.x, [-1, T, 1])
            cell = v1.nn.rnn_cell.MultiRNNCell([v1.nn.rnn_cell.BasicLSTMCell(H) for _ in range(L)])
            outputs, _ = v1.nn.dynamic_rnn(cell, X, dtype=dtype)
            output = tf.reshape(outputs, [-1, H]) if cfg["input_layout"] == "features" else outputs[:, -1, :]
            with v1.variable_scope("fully_connected"):
                weights = v1.get_variable("weights", [H, 1], dtype, v1.glorot_uniform_initializer())
                biases = v1.get_variable("biases", [1], dtype, v1.zeros_initializer())
                predictions = tf.nn.bias_add(tf.matmul(output, weights), biases)
            labels = tf.reshape(self.y, [-1])
            self.predictions = tf.reshape(predictions, [-1])
            self.loss = v1.losses.mean_squared_error(self.predictions, labels)
            with v1.variable_scope(None, "OptimizeLoss", [self.loss, self.global_step]):
                lr = v1.get_variable("learning_rate", [], trainable=False,
                                     initializer=v1.constant_initializer(cfg["learning_rate"]))
                opt = v1.train.AdagradOptimizer(learning_rate=lr)
                self.trainable = v1.trainable_variables()
                gradients = opt.compute_gradients(self.loss, self.trainable, colocate_gradients_with_ops=False)
                update = opt.apply_gradients(gradients, global_step=self.global_step, name="train")
                # control_flow_ops.with_dependencies([update], loss): the loss, once the update has run.
                with tf.control_dependencies([update]):
                    self.train_op = tf.identity(self.loss)
            self.slots = {v.op.name: opt.get_slot(v, "accumulator") for v in self.trainable}
            self.saver = v1.train.Saver(max_to_keep=5)
            self.init = v1.global_variables_initializer()

    def variables(self, sess) -> dict:
        return {v.op.name: sess.run(v) for v in self.trainable}

    def accumulators(self, sess) -> dict:
        return {name: sess.run(slot) for name, slot in self.slots.items()}

    def predict(self, sess, X) -> np.ndarray:
        parts = [sess.run(self.predictions, {self.x: X[i:i + PREDICT_BATCH]}) for i in range(0, len(X), PREDICT_BATCH)]
        return np.concatenate(parts)


def rmse(predicted, test_y) -> float:
    """The book's ``np.sqrt(((predicted - test_y) ** 2).mean(axis=0))[0]``."""
    predicted = [[pred] for pred in predicted]
    return float(np.sqrt(((predicted - test_y) ** 2).mean(axis=0))[0])


def fit(tf, cfg, model_dir: Path, steps: int, train_X, train_y, *, seed=None, init_values=None, log=None):
    """One ``SKCompat.fit``: a new graph, the model_dir's checkpoint restored (else initialised, or set to
    ``init_values``), ``steps`` runs of ``[train_op, loss]`` fed by a new DataFeeder, then a checkpoint.
    Returns ``(graph, session, losses, batch rows, seconds)``; the caller closes the session."""
    g = SineGraph(tf, cfg, seed)
    dtype = np.float64 if cfg["dtype"] == "float64" else np.float32
    sess = tf_session(tf, g.graph)
    latest = tf.train.latest_checkpoint(str(model_dir))
    if latest:
        g.saver.restore(sess, latest)
    else:
        sess.run(g.init)
        if init_values:
            with g.graph.as_default():
                for v in g.trainable:
                    v.load(init_values[v.op.name], sess)
    feeder = DataFeeder(train_X, train_y, cfg["batch_size"])
    losses, rows = [], []
    start = time.perf_counter()
    for k in range(steps):
        idx, inp, out = feeder.feed()
        _, loss, step = sess.run([g.train_op, g.loss, g.global_step], {g.x: inp.astype(dtype), g.y: out.astype(dtype)})
        losses.append(float(loss))
        rows.append(idx)
        if log and k % 100 == 0:
            # TF 1.x's LoggingTensorHook read the global step (a ref variable) after the train op's increment;
            # TF 2's resource variable is read before it: + 1 prints the Estimator's "step = 1, 101, ...".
            log(f"loss = {loss:g}, step = {step + 1}")
    seconds = time.perf_counter() - start
    prefix = g.saver.save(sess, str(model_dir / "model.ckpt"), global_step=g.global_step, write_meta_graph=False)
    # The state file names the prefix relative to the directory, as an Estimator with a relative model_dir
    # ("Models/model_2") writes it, so that the directory can be moved.
    tf.compat.v1.train.update_checkpoint_state(str(model_dir), Path(prefix).name)
    return g, sess, losses, rows, seconds


GOLDEN_CASES = [
    # the book's program at full size (first fit 400 steps: the feeder's epoch ends at step 313), then a
    # second run of 50 steps on the same model_dir
    dict(hidden_size=30, num_layers=2, timesteps=10, batch_size=32, training_examples=10000, testing_examples=1000,
         sample_gap=0.01, learning_rate=0.1, input_layout="features", dtype="float32", steps=400, steps2=50),
    dict(hidden_size=30, num_layers=2, timesteps=10, batch_size=32, training_examples=10000, testing_examples=1000,
         sample_gap=0.01, learning_rate=0.1, input_layout="steps", dtype="float32", steps=200, steps2=20),
    # float64: the same arithmetic without float32 rounding, small sizes, several epochs
    dict(hidden_size=6, num_layers=3, timesteps=4, batch_size=7, training_examples=120, testing_examples=40,
         sample_gap=0.05, learning_rate=0.3, input_layout="features", dtype="float64", steps=60, steps2=10),
    dict(hidden_size=5, num_layers=2, timesteps=6, batch_size=5, training_examples=90, testing_examples=30,
         sample_gap=0.1, learning_rate=0.1, input_layout="steps", dtype="float64", steps=60, steps2=10),
]


def run_case(tf, cfg: dict, seed: int, keep_model_dir: Path = None) -> dict:
    """Both fits of one case; the outputs to record (``keep_model_dir``: copy the model_dir there after the
    first fit)."""
    train_X, train_y, test_X, test_y = book_data(cfg["training_examples"], cfg["testing_examples"],
                                                 cfg["sample_gap"], cfg["timesteps"])
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp)
        # The initial variables, as TF's initializers draw them under the graph seed.
        g0 = SineGraph(tf, cfg, seed)
        with tf_session(tf, g0.graph) as sess:
            sess.run(g0.init)
            init = g0.variables(sess)
        for fit_no, steps in ((1, cfg["steps"]), (2, cfg["steps2"])):
            g, sess, losses, rows, _ = fit(tf, cfg, model_dir, steps, train_X, train_y, init_values=init)
            with sess:
                out[f"fit{fit_no}/loss"] = np.asarray(losses)
                out[f"fit{fit_no}/rows"] = np.concatenate(rows).astype(np.int32)
                out[f"fit{fit_no}/global_step"] = np.asarray(sess.run(g.global_step))
                for name, value in g.variables(sess).items():
                    out[f"fit{fit_no}/var/{name}"] = value
                for name, value in g.accumulators(sess).items():
                    out[f"fit{fit_no}/accumulator/{name}"] = value
                predicted = g.predict(sess, test_X)
                out[f"fit{fit_no}/predictions"] = predicted
                out[f"fit{fit_no}/rmse"] = np.asarray(rmse(predicted, test_y))
            if fit_no == 1 and keep_model_dir is not None:
                if keep_model_dir.exists():
                    shutil.rmtree(keep_model_dir)
                shutil.copytree(model_dir, keep_model_dir)
        out.update({f"init/{name}": value for name, value in init.items()})
    return out


def record(tf, seed0: int, model_dir_copy: Path) -> dict:
    arrays = {}
    for i, cfg in enumerate(GOLDEN_CASES):
        case = {"config": dict(cfg, seed=seed0 + i)}
        outputs = run_case(tf, cfg, seed0 + i, keep_model_dir=model_dir_copy if i == 0 else None)
        store_case(arrays, i, case, outputs)
    return arrays


def full_run(tf, args) -> dict:
    """The book's program, ``args.runs`` times on one model directory: what it prints, every step's loss,
    the predictions after each run and the time each fit took."""
    cfg = dict(GOLDEN_CASES[0], input_layout=args.input_layout)
    train_X, train_y, test_X, test_y = book_data(cfg["training_examples"], cfg["testing_examples"],
                                                 cfg["sample_gap"], cfg["timesteps"])
    model_dir = Path(args.model_dir or tempfile.mkdtemp(prefix="tf_sine_"))
    model_dir.mkdir(parents=True, exist_ok=True)
    if args.init_dir and not tf.train.latest_checkpoint(str(model_dir)):
        # TF's initial variables (drawn under the graph seed, accumulators at 0.1, global step 0) as a model
        # directory of their own, which the first fit starts from too: the port can start from it.
        init_dir = Path(args.init_dir)
        init_dir.mkdir(parents=True, exist_ok=True)
        g = SineGraph(tf, cfg, args.seed)
        with tf_session(tf, g.graph) as sess:
            sess.run(g.init)
            prefix = g.saver.save(sess, str(init_dir / "model.ckpt"), global_step=0, write_meta_graph=False)
        tf.compat.v1.train.update_checkpoint_state(str(init_dir), Path(prefix).name)
        for path in init_dir.iterdir():
            shutil.copy(path, model_dir / path.name)
    result = {"versions": versions(), "config": cfg, "seed": args.seed, "model_dir": str(model_dir), "runs": []}
    for run in range(args.runs):
        g, sess, losses, _, seconds = fit(tf, cfg, model_dir, args.steps, train_X, train_y, seed=args.seed,
                                          log=print)
        with sess:
            predicted = g.predict(sess, test_X)
            error = rmse(predicted, test_y)
            step = int(sess.run(g.global_step))
        print(f"Loss for final step: {losses[-1]:g}.")
        print("Mean Square Error is: %f" % error)
        result["runs"].append({"global_step": step, "rmse": error, "fit_seconds": seconds, "losses": losses,
                               "predicted": [float(v) for v in predicted]})
    result["real_sin"] = [float(v) for v in test_y.reshape(-1)]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(GOLDEN / "tf_sine.npz"), help="npz file of the golden cases")
    parser.add_argument("--model-dir-copy", default=str(GOLDEN / "tf_sine_model_dir"),
                        help="where the first case's TF model directory after its first fit is kept")
    parser.add_argument("--seed", type=int, default=0, help="graph seed (of the first case; then +1 per case)")
    parser.add_argument("--full", action="store_true", help="run the book's whole program instead")
    parser.add_argument("--steps", type=int, default=3000, help="--full: steps per run (TRAINING_STEPS)")
    parser.add_argument("--runs", type=int, default=2, help="--full: runs of the program on one model directory")
    parser.add_argument("--input-layout", choices=["features", "steps"], default="features",
                        help="--full: how X is read")
    parser.add_argument("--model-dir", default=None, help="--full: the model directory (default: a new temporary one)")
    parser.add_argument("--init-dir", default=None,
                        help="--full: also write TF's initial variables as a model directory here (step 0)")
    parser.add_argument("--json", default=None, help="--full: write the results here")
    args = parser.parse_args()
    tf = import_tf()
    if args.full:
        result = full_run(tf, args)
        if args.json:
            Path(args.json).write_text(json.dumps(result) + "\n")
            print("wrote", args.json)
        return
    arrays = record(tf, args.seed, Path(args.model_dir_copy))
    write_golden(args.out, arrays, len(GOLDEN_CASES))


if __name__ == "__main__":
    main()
