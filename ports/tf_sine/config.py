"""The book's constants as one dataclass, plus the two choices the port adds.

The field names are the program's module-level constants in lower case (``HIDDEN_SIZE = 30``,
``NUM_LAYERS = 2``, ``TIMESTEPS = 10``, ``TRAINING_STEPS = 3000``, ``BATCH_SIZE = 32``,
``TRAINING_EXAMPLES = 10000``, ``TESTING_EXAMPLES = 1000``, ``SAMPLE_GAP = 0.01``), then what the program
leaves to TF's defaults: ``optimize_loss(..., learning_rate=0.1)``, ``AdagradOptimizer``'s
``initial_accumulator_value=0.1``, ``BasicLSTMCell``'s ``forget_bias=1.0``, the data feeder's
``RandomState(42)`` and ``SKCompat.predict``'s batches of 128.

``dtype`` is the variables' (the program's: float32); ``loss_in_float32`` keeps TF's cast of the
predictions and labels to float32 inside ``tf.losses.mean_squared_error``, which matters only for float64
variables (False: the loss in the variables' dtype).

``input_layout`` chooses how the model reads ``generate_data``'s ``X`` of shape ``[N, 1, TIMESTEPS]``:
``"features"`` (the program as written: one time step of TIMESTEPS features, so the LSTMs never recur)
or ``"steps"`` (what the authors meant: TIMESTEPS steps of one feature, the last step's output regressed).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, Tuple

INPUT_LAYOUTS = ("features", "steps")
DTYPES = ("float32", "float64")
# What a model directory's checkpoint fixes: the variables' shapes and meaning. The other fields belong to
# one run (as in TF, where a second run rebuilds the graph from the code and restores the variables).
MODEL_FIELDS: Tuple[str, ...] = ("hidden_size", "num_layers", "timesteps", "input_layout", "forget_bias", "dtype")
# What one Config may ask for (a flag's value, or a checkpoint's config: docs/security.md): the windows of
# both curves and the LSTM's weights, each at most 2**28 values (1 GiB in float32).
MAX_DATA_VALUES = 1 << 28
MAX_WEIGHTS = 1 << 28


def _setting(default, doc: str):
    """A Config field with its one-line description (``Config.describe``; the CLI's help)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Config:
    """One run's settings; ``Config()`` is the book's program."""

    hidden_size: int = _setting(30, "LSTM units per layer (HIDDEN_SIZE)")
    num_layers: int = _setting(2, "LSTM layers (NUM_LAYERS)")
    timesteps: int = _setting(10, "values per window (TIMESTEPS)")
    training_steps: int = _setting(3000, "training steps of one run, added to the model directory's (TRAINING_STEPS)")
    batch_size: int = _setting(32, "examples per step; each epoch's last batch is shorter (BATCH_SIZE)")
    training_examples: int = _setting(10000, "points of the training curve (TRAINING_EXAMPLES)")
    testing_examples: int = _setting(1000, "points of the test curve (TESTING_EXAMPLES)")
    sample_gap: float = _setting(0.01, "the curves span TRAINING_EXAMPLES * SAMPLE_GAP and TESTING_EXAMPLES * "
                                       "SAMPLE_GAP (SAMPLE_GAP)")
    learning_rate: float = _setting(0.1, "Adagrad's learning rate for a new model directory (a restored one keeps "
                                         "its own, as TF restores OptimizeLoss/learning_rate)")
    initial_accumulator_value: float = _setting(0.1, "AdagradOptimizer's starting value of every accumulator")
    forget_bias: float = _setting(1.0, "BasicLSTMCell's forget bias, added to the forget gate at run time")
    input_layout: str = _setting("features", "features: X [N, 1, TIMESTEPS] read as one time step of TIMESTEPS "
                                             "features, as the program does; steps: TIMESTEPS time steps of one "
                                             "feature, the last step's output regressed")
    feeder_seed: int = _setting(42, "the data feeder's RandomState seed (data_feeder.py: 42 when none is given)")
    predict_batch_size: int = _setting(128, "SKCompat.predict's batch size")
    dtype: str = _setting("float32", "the variables' dtype (the program's: float32)")
    loss_in_float32: bool = _setting(True, "tf.losses.mean_squared_error's cast of the predictions and labels to "
                                           "float32 (False: the variables' dtype)")

    def __post_init__(self):
        for name in ("hidden_size", "num_layers", "timesteps", "training_steps", "batch_size",
                     "training_examples", "testing_examples", "predict_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Config.{name} must be a positive integer, got {value!r}")
        for name in ("training_examples", "testing_examples"):
            if getattr(self, name) < self.timesteps + 2:
                raise ValueError(f"Config.{name} must be at least timesteps + 2 = {self.timesteps + 2} (generate_data "
                                 f"makes len(seq) - timesteps - 1 examples); got {getattr(self, name)}")
        for name in ("sample_gap", "learning_rate", "initial_accumulator_value", "forget_bias"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value or \
                    value in (float("inf"), float("-inf")):
                raise ValueError(f"Config.{name} must be a finite number, got {value!r}")
        if not self.sample_gap > 0:
            raise ValueError(f"Config.sample_gap must be > 0, got {self.sample_gap!r}")
        if not self.learning_rate >= 0:
            raise ValueError(f"Config.learning_rate must be >= 0, got {self.learning_rate!r}")
        if not self.initial_accumulator_value > 0:  # adagrad.py refuses it too
            raise ValueError(f"Config.initial_accumulator_value must be positive, got "
                             f"{self.initial_accumulator_value!r}")
        if self.input_layout not in INPUT_LAYOUTS:
            raise ValueError(f"Config.input_layout must be one of {INPUT_LAYOUTS}, got {self.input_layout!r}")
        if not isinstance(self.loss_in_float32, bool):
            raise ValueError(f"Config.loss_in_float32 must be True or False, got {self.loss_in_float32!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"Config.dtype must be one of {DTYPES}, got {self.dtype!r}")
        data = (self.training_examples + self.testing_examples) * self.timesteps
        if data > MAX_DATA_VALUES:
            raise ValueError(f"(training_examples + testing_examples) x timesteps = {data:,} values of data; the cap "
                             f"is {MAX_DATA_VALUES:,}")
        H = self.hidden_size
        weights = sum((n_in + H) * 4 * H for n_in in [self.input_size] + [H] * (self.num_layers - 1))
        if weights > MAX_WEIGHTS:
            raise ValueError(f"hidden_size {H} in {self.num_layers} layers makes {weights:,} LSTM weights; the cap is "
                             f"{MAX_WEIGHTS:,}")
        if not isinstance(self.feeder_seed, int) or isinstance(self.feeder_seed, bool) or \
                not 0 <= self.feeder_seed < 2 ** 32:
            raise ValueError(f"Config.feeder_seed must be an integer in [0, 2**32), got {self.feeder_seed!r}")

    @property
    def input_size(self) -> int:
        """The first LSTM's input width: TIMESTEPS features, or one."""
        return self.timesteps if self.input_layout == "features" else 1

    @property
    def train_examples(self) -> int:
        """Rows of train_X: ``generate_data`` drops ``timesteps + 1`` of the sequence."""
        return self.training_examples - self.timesteps - 1

    def model_fields(self) -> Dict[str, object]:
        return {name: getattr(self, name) for name in MODEL_FIELDS}

    @staticmethod
    def describe(name: str) -> str:
        """The one-line description of field ``name``."""
        return {f.name: f.metadata["doc"] for f in dataclasses.fields(Config)}[name]

    def to_dict(self) -> Dict[str, object]:
        """The fields as a dict; ``Config(**d)`` makes it again."""
        return dataclasses.asdict(self)
