"""The recipe's settings (03_implementing_lstm.py's module-level constants) and the port's run controls."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import List

import torch

from ports.tf_shakespeare.data import RECIPE_HEADER_CHARS

RECIPE_PRIME_TEXTS = ("thou art more", "to be or not to", "wherefore art thou")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainConfig:
    """The recipe's settings (its module-level constants) plus the port's run controls."""

    min_word_freq: int = 5
    rnn_size: int = 128
    epochs: int = 10
    batch_size: int = 100
    learning_rate: float = 0.001
    training_seq_len: int = 50
    save_every: int = 500
    eval_every: int = 50
    prime_texts: List[str] = field(default_factory=lambda: list(RECIPE_PRIME_TEXTS))
    clip_norm: float = 4.5
    forget_bias: float = 1.0
    skip_chars: int = RECIPE_HEADER_CHARS
    seed: int = 0
    dtype: str = "float32"
    print_every: int = 10
    recipe_batch_count: bool = False  # print "out of num_batches + 1" as the recipe does

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ValueError(f"checkpoint config has unknown fields {unknown}")
        return cls(**obj)


__all__ = ["DTYPES", "RECIPE_PRIME_TEXTS", "TrainConfig"]
