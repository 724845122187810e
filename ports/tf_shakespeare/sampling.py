"""The recipe's ``LSTM_Model.sample`` (03_implementing_lstm.py) and weighted variants.

The recipe runs its infer model (batch 1, seq 1) one word at a time, feeding the state back through the
``initial_state`` placeholder: every prime word but the last only builds the state; from the last word it
repeats ``sample = argmax(model_output[0])`` (the softmax, not the logits), stops when the id is 0, and
otherwise appends ``ix2vocab[sample]`` and feeds it. Greedy decoding falls into loops ("for the for the");
``temperature`` and ``top_k`` draw from ``softmax(logits / temperature)`` over the ``top_k`` largest logits
with a seeded ``torch.Generator`` instead.
"""
from __future__ import annotations

from typing import List, Mapping, Optional, Tuple

import torch

from compat.seq2seq import sample_logits
from ports.tf_shakespeare.data import words_to_ids


@torch.no_grad()
def step(model, word_id: int, state) -> Tuple[torch.Tensor, torch.Tensor, tuple]:
    """The infer model on one word: ``(logits [V], model_output [V], new state)``."""
    x = torch.tensor([[int(word_id)]], device=model.W.device)
    out = model(x, state)
    return out.logits[0], torch.softmax(out.logits, dim=1)[0], out.final_state


@torch.no_grad()
def sample_ids(model, prime_ids: List[int], num: int = 10, *, temperature: Optional[float] = None,
               top_k: Optional[int] = None, generator: Optional[torch.Generator] = None,
               stop_ids: Optional[set] = None) -> List[int]:
    """The ids the recipe's loop appends after the prime ids (id 0 and ``stop_ids`` end it)."""
    if not prime_ids:
        raise ValueError("sampling needs at least one prime word")
    if num < 0:
        raise ValueError(f"num must be >= 0, got {num}")
    state = model.cell.zero_state(1)
    for word_id in prime_ids[:-1]:
        _, _, state = step(model, word_id, state)
    word_id = prime_ids[-1]
    greedy = (not temperature) and top_k is None
    out: List[int] = []
    for _ in range(num):
        logits, model_output, state = step(model, word_id, state)
        if greedy:
            choice = int(torch.argmax(model_output))
        else:
            choice = int(sample_logits(logits.unsqueeze(0), temperature, top_k, generator)[0])
        if choice == 0 or (stop_ids is not None and choice in stop_ids):
            break
        out.append(choice)
        word_id = choice
    return out


def sample(model, prime_text: str, ix2vocab: Mapping[int, str], vocab2ix: Mapping[str, int], num: int = 10, *,
           temperature: Optional[float] = None, top_k: Optional[int] = None,
           generator: Optional[torch.Generator] = None, unknown: str = "error") -> str:
    """``prime_text`` followed by up to ``num`` generated words, joined by spaces.

    Greedy (the recipe) unless ``temperature`` or ``top_k`` is given. An id without a word (the frequent
    word "unknown"'s own id, which the recipe's vocabulary leaves empty) ends the sample where the recipe
    would raise KeyError. Prime words outside the vocabulary raise KeyError naming the word, as the
    recipe does, unless ``unknown="zero"`` maps them to id 0.
    """
    words = prime_text.split()
    if not words:
        raise ValueError("prime_text has no words")
    prime_ids = words_to_ids(words, vocab2ix, unknown)
    holes = set(range(model.vocab_size)) - set(ix2vocab)
    ids = sample_ids(model, prime_ids, num, temperature=temperature, top_k=top_k, generator=generator,
                     stop_ids=holes)
    out_sentence = prime_text
    for i in ids:
        out_sentence = out_sentence + " " + ix2vocab[i]
    return out_sentence
