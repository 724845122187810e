"""Hyperparameters of ptb_word_lm.py (tensorflow/models tutorials/rnn/ptb) as one dataclass.

The field names are the original config classes' (``SmallConfig`` ... ``TestConfig``), plus
``forget_bias`` (0.0 in ptb_word_lm: ``BasicLSTMCell(size, forget_bias=0.0)`` / ``LSTMBlockCell(size,
forget_bias=0.0)``; 1.0 is BasicLSTMCell's own default, which the ``book`` variant uses) and three options
that choose between TF behaviours: ``shared_cell_weights`` (one kernel/bias for every layer, as
``MultiRNNCell([cell] * n)`` builds it in TF >= 1.1), ``embedding_norm`` (``"indexed_slices"``: the
embedding's gradient enters the global norm once per token occurrence, as TF does; ``"dense"``: the summed
dense gradient, as plain PyTorch would) and ``bias_init`` (``"zeros"``: TF's ``_linear`` / ``build``
create the LSTM bias with a zeros initializer even under the scope's uniform initializer).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict

EMBEDDING_NORMS = ("indexed_slices", "dense")
BIAS_INITS = ("zeros", "uniform")


@dataclass(frozen=True)
class Config:
    """One model / training configuration. ``Config.preset(name)`` gives the original's."""

    init_scale: float = 0.1
    learning_rate: float = 1.0
    max_grad_norm: float = 5.0
    num_layers: int = 2
    num_steps: int = 20
    hidden_size: int = 200
    max_epoch: int = 4
    max_max_epoch: int = 13
    keep_prob: float = 1.0
    lr_decay: float = 0.5
    batch_size: int = 20
    vocab_size: int = 10000
    forget_bias: float = 0.0
    shared_cell_weights: bool = False
    embedding_norm: str = "indexed_slices"
    bias_init: str = "zeros"

    def __post_init__(self):
        for name in ("num_layers", "num_steps", "hidden_size", "batch_size", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Config.{name} must be a positive integer, got {value!r}")
        for name in ("max_epoch", "max_max_epoch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Config.{name} must be a non-negative integer, got {value!r}")
        if not 0.0 < self.keep_prob <= 1.0:
            raise ValueError(f"Config.keep_prob is a keep probability in (0, 1], got {self.keep_prob!r}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"Config.max_grad_norm must be > 0, got {self.max_grad_norm!r}")
        if not self.init_scale >= 0:
            raise ValueError(f"Config.init_scale must be >= 0, got {self.init_scale!r}")
        if not self.learning_rate >= 0:
            raise ValueError(f"Config.learning_rate must be >= 0, got {self.learning_rate!r}")
        if self.embedding_norm not in EMBEDDING_NORMS:
            raise ValueError(f"Config.embedding_norm must be one of {EMBEDDING_NORMS}, got {self.embedding_norm!r}")
        if self.bias_init not in BIAS_INITS:
            raise ValueError(f"Config.bias_init must be one of {BIAS_INITS}, got {self.bias_init!r}")

    @staticmethod
    def preset(name: str) -> "Config":
        """The configuration called ``name``: one of ``small``, ``medium``, ``large``, ``test``, ``book``."""
        try:
            return PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None

    def eval_config(self) -> "Config":
        """The test-set configuration of ptb_word_lm's main(): batch_size 1, num_steps 1."""
        return dataclasses.replace(self, batch_size=1, num_steps=1)

    def learning_rate_at(self, epoch: int) -> float:
        """``learning_rate * lr_decay ** max(i + 1 - max_epoch, 0)`` for epoch ``i`` counted from 0."""
        return self.learning_rate * self.lr_decay ** max(epoch + 1 - self.max_epoch, 0.0)

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


# ptb_word_lm.py SmallConfig / MediumConfig / LargeConfig / TestConfig.
PRESETS: Dict[str, Config] = {
    "small": Config(init_scale=0.1, learning_rate=1.0, max_grad_norm=5, num_layers=2, num_steps=20,
                    hidden_size=200, max_epoch=4, max_max_epoch=13, keep_prob=1.0, lr_decay=0.5,
                    batch_size=20, vocab_size=10000),
    "medium": Config(init_scale=0.05, learning_rate=1.0, max_grad_norm=5, num_layers=2, num_steps=35,
                     hidden_size=650, max_epoch=6, max_max_epoch=39, keep_prob=0.5, lr_decay=0.8,
                     batch_size=20, vocab_size=10000),
    "large": Config(init_scale=0.04, learning_rate=1.0, max_grad_norm=10, num_layers=2, num_steps=35,
                    hidden_size=1500, max_epoch=14, max_max_epoch=55, keep_prob=0.35, lr_decay=1 / 1.15,
                    batch_size=20, vocab_size=10000),
    "test": Config(init_scale=0.1, learning_rate=1.0, max_grad_norm=1, num_layers=1, num_steps=2,
                   hidden_size=2, max_epoch=1, max_max_epoch=1, keep_prob=1.0, lr_decay=0.5,
                   batch_size=20, vocab_size=10000),
    # The widely copied book and tutorial variant of the PTB model: BasicLSTMCell with its default forget_bias 1.0, a constant
    # learning rate (no decay), init uniform +-0.05, MultiRNNCell([lstm_cell] * 2).
    "book": Config(init_scale=0.05, learning_rate=1.0, max_grad_norm=5, num_layers=2, num_steps=35,
                   hidden_size=200, max_epoch=2, max_max_epoch=2, keep_prob=0.5, lr_decay=1.0,
                   batch_size=20, vocab_size=10000, forget_bias=1.0),
}
