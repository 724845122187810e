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
from dataclasses import dataclass
from typing import Dict, Tuple

INPUT_LAYOUTS = ("features", "steps")
DTYPES = ("float32", "float64")
# What a model directory's checkpoint fixes: the variables' shapes and meaning. The other fields belong to
# one run (as in TF, where a second run rebuilds the graph from the code and restores the variables).
MODEL_FIELDS: Tuple[str, ...] = ("hidden_size", "num_layers", "timesteps", "input_layout", "forget_bias", "dtype")


@dataclass(frozen=True)
class Config:
    """One run's settings; ``Config()`` is the book's program."""

    hidden_size: int = 30
    num_layers: int = 2
    timesteps: int = 10
    training_steps: int = 3000
    batch_size: int = 32
    training_examples: int = 10000
    testing_examples: int = 1000
    sample_gap: float = 0.01
    learning_rate: float = 0.1
    initial_accumulator_value: float = 0.1
    forget_bias: float = 1.0
    input_layout: str = "features"
    feeder_seed: int = 42
    predict_batch_size: int = 128
    dtype: str = "float32"
    loss_in_float32: bool = True

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

    def to_dict(self) -> Dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, object]) -> "Config":
        """A Config from :meth:`to_dict` output; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown Config fields {unknown}; known: {sorted(known)}")
        return cls(**values)
