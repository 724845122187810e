"""Numpy oracle of the TF book's sine regressor, trained through ``tf.contrib.learn`` (float64).

Written from the book's program (caicloud/tensorflow-tutorial ``Deep_Learning_with_TensorFlow`` chapter 8,
"预测正弦函数") and the TF 1.x sources it calls, importing nothing from ``compat`` or ``ports``:

* ``generate_data(seq)``: ``X.append([seq[i: i + TIMESTEPS]])``, ``y.append([seq[i + TIMESTEPS]])`` for
  ``i in range(len(seq) - TIMESTEPS - 1)``, as float32. The extra brackets make X ``[N, 1, TIMESTEPS]``:
  ``dynamic_rnn`` reads it as *one* time step of TIMESTEPS features.
* ``SKCompat.fit(x, y, batch_size, steps)`` (``contrib/learn/python/learn/estimators/estimator.py``)
  feeds batches from ``learn_io/data_feeder.py`` ``DataFeeder(x, y, n_classes=None, batch_size,
  shuffle=True, random_state=None, epochs=None)``: ``random_state`` becomes ``np.random.RandomState(42)``,
  ``indices = random_state.permutation(N)``; each step takes ``indices[offset:min(N, offset + batch)]``
  (the last batch of an epoch is short), then ``offset += batch``; once ``offset >= N`` a new permutation
  is drawn from the same RandomState and ``offset = 0``. Every ``fit`` builds a new DataFeeder, so a second
  ``fit`` (a second run of the program on the same ``model_dir``) replays the same batch order.
* the model_fn ``lstm_model(X, y)``: ``dynamic_rnn(MultiRNNCell([BasicLSTMCell(H) ...]), X)`` from zero
  states (:mod:`reference.tf_lstm`), ``reshape(output, [-1, H])``, ``fully_connected(output, 1, None)`` =
  ``output @ weights + biases``, ``reshape(predictions, [-1])``; the ten-step reading of the data
  (``X.reshape(N, TIMESTEPS, 1)``) regresses the last step's output.
* ``tf.losses.mean_squared_error(predictions, labels)`` (``losses_impl.py``; weights 1.0): the sum of
  the squared differences over the number of elements (TF 1.0 ``_safe_mean``; ``SUM_BY_NONZERO_WEIGHTS``
  later: the same value). The book passes predictions as ``labels`` and labels as ``predictions``; the
  squared difference does not notice.
* ``optimize_loss(loss, global_step, learning_rate=0.1, optimizer="Adagrad")``
  (``contrib/layers/python/layers/optimizers.py``) with its defaults: the gradients of the loss with
  respect to every trainable variable, no noise, multipliers, clipping or learning-rate decay; the learning
  rate is a float32 variable ``OptimizeLoss/learning_rate``; ``AdagradOptimizer(lr)`` applies them and the
  global step advances by one; the op returns the loss computed before the update.
* ``AdagradOptimizer(learning_rate, initial_accumulator_value=0.1)`` (``training/adagrad.py``, the
  ``ApplyAdagrad`` kernel): ``accum += grad ** 2``; ``var -= lr * grad / sqrt(accum)``.
* ``SKCompat.predict(x)``: batches of 128 in order; ``rmse = np.sqrt(((predicted - test_y) ** 2).mean(axis=0))``.

Gradients are exact derivatives by complex-step differentiation (``Im f(theta + i h e_k) / h`` with h =
1e-30, no cancellation), independent of any hand-written backward pass.

The same chapter's numpy walk-through of a ``BasicRNNCell`` forward is :func:`basic_rnn_cell`
(``rnn_cell_impl.py`` ``BasicRNNCell.call``: ``output = new_state = tanh(concat([inputs, state]) @ kernel +
bias)``, kernel ``[in + H, H]``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from reference import tf_lstm

Params = Dict[str, object]  # {"layers": [(kernel [in + H, 4H], bias [4H]), ...], "weights" [H, 1], "biases" [1]}

FEEDER_SEED = 42  # data_feeder.py DataFeeder: random_state None -> np.random.RandomState(42)
PREDICT_BATCH = 128  # estimator.py SKCompat.predict(x, batch_size=128)
INITIAL_ACCUMULATOR = 0.1  # adagrad.py AdagradOptimizer(initial_accumulator_value=0.1)


# --------------------------------------------------------------------------------------------- data
def generate_data(seq: Sequence[float], timesteps: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """The book's ``generate_data``: X [N, 1, timesteps], y [N, 1], float32, N = len(seq) - timesteps - 1."""
    X, y = [], []
    for i in range(len(seq) - timesteps - 1):
        X.append([seq[i: i + timesteps]])
        y.append([seq[i + timesteps]])
    return np.array(X, dtype=np.float32), np.array(y, dtype=np.float32)


def book_datasets(training_examples: int = 10000, testing_examples: int = 1000, sample_gap: float = 0.01,
                  timesteps: int = 10):
    """``(train_X, train_y, test_X, test_y)`` as the book draws them from float32 sine curves."""
    test_start = training_examples * sample_gap
    test_end = (training_examples + testing_examples) * sample_gap
    train = generate_data(np.sin(np.linspace(0, test_start, training_examples, dtype=np.float32)), timesteps)
    test = generate_data(np.sin(np.linspace(test_start, test_end, testing_examples, dtype=np.float32)), timesteps)
    return train + test


class DataFeeder:
    """The row order of ``data_feeder.py`` ``DataFeeder`` (shuffle=True, epochs=None) over ``n`` rows."""

    def __init__(self, n: int, batch_size: int, random_state: Optional[np.random.RandomState] = None):
        self.n, self.batch_size = n, batch_size
        self.random_state = np.random.RandomState(FEEDER_SEED) if random_state is None else random_state
        self.indices = self.random_state.permutation(n)
        self.offset = 0
        self.epoch = 0

    def next_indices(self) -> np.ndarray:
        """``_feed_dict_fn``'s ``batch_indices`` of one step, moving the offset as it does."""
        end = min(self.n, self.offset + self.batch_size)
        batch_indices = self.indices[self.offset:end]
        self.offset += self.batch_size
        if self.offset >= self.n:
            self.indices = self.random_state.permutation(self.n)
            self.offset = 0
            self.epoch += 1
        return batch_indices


# -------------------------------------------------------------------------------------------- model
def model_inputs(X: np.ndarray, layout: str = "features") -> np.ndarray:
    """``[B, T, F]`` as dynamic_rnn reads X: the book's ``[B, 1, TIMESTEPS]`` ("features"), or ten steps of
    one feature ("steps")."""
    X = np.asarray(X)
    if layout == "features":
        return X
    if layout == "steps":
        return X.reshape(X.shape[0], -1, 1)
    raise ValueError(f"layout must be 'features' or 'steps', not {layout!r}")


def forward(params: Params, X: np.ndarray, layout: str = "features", forget_bias: float = 1.0) -> np.ndarray:
    """predictions [B] of ``lstm_model``: dynamic_rnn over X, fully_connected, reshape to [-1]."""
    seq = model_inputs(X, layout).astype(np.float64).transpose(1, 0, 2)  # time-major [T, B, F]
    layers = params["layers"]
    hidden = layers[0][0].shape[1] // 4

    def cell(x, states):
        return tf_lstm.multi_rnn_cell(x, states, layers, forget_bias)

    outputs, _ = tf_lstm.dynamic_rnn(cell, seq, tf_lstm.zero_states(len(layers), seq.shape[1], hidden))
    if layout == "features":
        output = outputs.transpose(1, 0, 2).reshape(-1, hidden)  # reshape(output, [-1, HIDDEN_SIZE])
    else:
        output = outputs[-1]  # outputs[:, -1, :]
    return (output @ params["weights"] + params["biases"]).reshape(-1)


def mean_squared_error(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """``tf.losses.mean_squared_error``: sum((predictions - labels)^2) / number of elements."""
    d = np.asarray(predictions) - np.asarray(labels)
    return (d * d).sum() / d.size


def loss(params: Params, X, y, layout: str = "features", forget_bias: float = 1.0):
    """The model_fn's loss: ``mean_squared_error(predictions, reshape(y, [-1]))`` in the book's order."""
    return mean_squared_error(forward(params, X, layout, forget_bias), np.asarray(y).reshape(-1))


def trainable_variables(params: Params) -> List[np.ndarray]:
    """``tf.trainable_variables()`` order: each cell's kernel and bias, then the weights and biases."""
    out = []
    for kernel, bias in params["layers"]:
        out += [kernel, bias]
    return out + [params["weights"], params["biases"]]


def from_variables(arrays: Sequence[np.ndarray]) -> Params:
    """The inverse of :func:`trainable_variables`."""
    arrays = list(arrays)
    n = (len(arrays) - 2) // 2
    return {"layers": [(arrays[2 * k], arrays[2 * k + 1]) for k in range(n)], "weights": arrays[-2],
            "biases": arrays[-1]}


def gradients(params: Params, X, y, layout: str = "features", forget_bias: float = 1.0,
              step: float = 1e-30) -> List[np.ndarray]:
    """d loss / d each trainable variable (in :func:`trainable_variables` order), by complex step."""
    arrays = [np.asarray(a, dtype=np.float64) for a in trainable_variables(params)]
    grads = []
    for which, a in enumerate(arrays):
        g = np.zeros(a.shape)
        for idx in np.ndindex(a.shape):
            probe = list(arrays)
            probe[which] = a.astype(np.complex128)
            probe[which][idx] += 1j * step
            g[idx] = loss(from_variables(probe), X, y, layout, forget_bias).imag / step
        grads.append(g)
    return grads


# --------------------------------------------------------------------------------------- training
def adagrad_apply(var: np.ndarray, accum: np.ndarray, grad: np.ndarray, lr: float) -> Tuple[np.ndarray, np.ndarray]:
    """``ApplyAdagrad`` (new arrays): ``accum += grad^2``; ``var -= lr * grad / sqrt(accum)``. ``lr`` is the
    float32 learning-rate variable's value, cast to the variable's dtype."""
    lr = float(np.float32(lr))
    accum = accum + grad * grad
    return var - lr * grad / np.sqrt(accum), accum


def initial_accumulators(params: Params, value: float = INITIAL_ACCUMULATOR) -> List[np.ndarray]:
    """One Adagrad slot per trainable variable, filled with ``initial_accumulator_value``."""
    return [np.full(np.shape(a), value, dtype=np.float64) for a in trainable_variables(params)]


def train_step(params: Params, accums: List[np.ndarray], X, y, lr: float = 0.1, layout: str = "features",
               forget_bias: float = 1.0):
    """One ``sess.run([train_op, loss])``: ``(loss before the update, new params, new accumulators)``."""
    value = float(loss(params, X, y, layout, forget_bias))
    grads = gradients(params, X, y, layout, forget_bias)
    new_vars, new_accums = [], []
    for var, acc, g in zip(trainable_variables(params), accums, grads):
        v, a = adagrad_apply(np.asarray(var, np.float64), acc, g, lr)
        new_vars.append(v)
        new_accums.append(a)
    return value, from_variables(new_vars), new_accums


def fit(params: Params, accums: List[np.ndarray], train_X, train_y, steps: int, batch_size: int, lr: float = 0.1,
        layout: str = "features", forget_bias: float = 1.0):
    """``SKCompat.fit(train_X, train_y, batch_size, steps)`` from ``params`` and ``accums`` with a new
    DataFeeder: ``(losses per step, params, accumulators, batch indices per step)``."""
    feeder = DataFeeder(len(train_X), batch_size)
    losses, order = [], []
    for _ in range(steps):
        idx = feeder.next_indices()
        value, params, accums = train_step(params, accums, train_X[idx], train_y[idx], lr, layout, forget_bias)
        losses.append(value)
        order.append(idx)
    return losses, params, accums, order


def predict(params: Params, X, layout: str = "features", forget_bias: float = 1.0,
            batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """``SKCompat.predict(X)``: the model's predictions in batches of 128, concatenated."""
    parts = [forward(params, X[i:i + batch_size], layout, forget_bias) for i in range(0, len(X), batch_size)]
    return np.concatenate(parts)


def rmse(predicted: np.ndarray, test_y: np.ndarray) -> float:
    """The book's ``np.sqrt(((predicted - test_y) ** 2).mean(axis=0))[0]`` for predicted [N] and test_y [N, 1]."""
    column = np.asarray(predicted).reshape(-1, 1)
    return float(np.sqrt(((column - test_y) ** 2).mean(axis=0))[0])


# ----------------------------------------------------------------------------- the RNN walk-through
def basic_rnn_cell(x: np.ndarray, state: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``BasicRNNCell`` (tanh): x [B, in], state [B, H] -> the new state (also the output)."""
    return np.tanh(np.concatenate([np.asarray(x, np.float64), np.asarray(state, np.float64)], axis=1) @ kernel + bias)
