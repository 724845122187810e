"""Text cleaning, vocabulary and batching exactly as the TF cookbook's Shakespeare LSTM recipe
(nfmcclure/tensorflow_cookbook, 09_Recurrent_Neural_Networks/03_Implementing_LSTM/03_implementing_lstm.py).

Recipe details reproduced (users' vocabularies and batches depend on them):

* The text is Project Gutenberg's pg100.txt decoded as UTF-8 *with* its byte-order mark and CRLF line
  ends; ``s_text[7675:]`` drops the licence header counted in those characters.
* ``'\\r\\n'`` and ``'\\n'`` are removed without a space, so a line's last word and the next line's first
  word run together ("increase,\\r\\n  That" -> "increase,  That" keeps the indentation spaces, but a line
  with no indentation glues two words).
* Punctuation other than ``-`` and ``'`` becomes a space with the regex ``[<punctuation>]`` built by
  string formatting: inside that class ``\\]`` escapes the bracket, so a backslash itself is *not*
  removed (pg100.txt has none).
* Whitespace collapses with ``\\s+``, then strip and lower-case.
* ``build_vocab`` keeps words seen *more than* ``min_word_freq`` times, ids from 1 in first-seen order,
  then sets ``'unknown' -> 0``; when the word "unknown" itself is frequent (it is in pg100.txt, id 2041),
  it maps to 0 and its own id is left without a word. ``vocab_size = len(ix2vocab) + 1``.
* Batches: ``num_batches = int(len / (batch * seq)) + 1``, ``np.array_split`` into that many nearly equal
  pieces, each ``np.resize``d to [batch, seq] (so a piece shorter than batch * seq repeats its own start);
  targets ``np.roll(x, -1, axis=1)`` (each row's last target is that row's first word).
"""
from __future__ import annotations

import collections
import os
import re
import string
from pathlib import Path
from typing import Dict, Iterable, List, Tuple, Union

import numpy as np

RECIPE_HEADER_CHARS = 7675
# string.punctuation without '-' and "'" (the recipe's list comprehension keeps its order).
PUNCTUATION = "".join(ch for ch in string.punctuation if ch not in ("-", "'"))
# Built as the recipe builds it: r'[{}]'.format(punctuation). '\]' inside the class escapes the bracket.
_PUNCTUATION_RE = re.compile(r"[{}]".format(PUNCTUATION))
_WHITESPACE_RE = re.compile(r"\s+")


class DataError(ValueError):
    """Input text that cannot give the recipe's batches."""


def read_text(path: Union[str, os.PathLike]) -> str:
    """The file's text as the recipe holds it after ``response.content.decode('utf-8')``: byte-order
    mark and CRLF line ends kept."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (pass the path of pg100.txt or another plain-text file)") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None


def clean_text(s_text: str, skip_chars: int = RECIPE_HEADER_CHARS) -> str:
    """The recipe's cleaning: ``s_text[skip_chars:]``, newlines removed, punctuation but ``-`` and ``'``
    replaced by spaces, whitespace runs collapsed to one space, stripped, lower-cased."""
    if skip_chars < 0:
        raise ValueError(f"skip_chars must be >= 0, got {skip_chars}")
    s_text = s_text[skip_chars:]
    s_text = s_text.replace("\r\n", "")
    s_text = s_text.replace("\n", "")
    s_text = _PUNCTUATION_RE.sub(" ", s_text)
    return _WHITESPACE_RE.sub(" ", s_text).strip().lower()


def build_vocab(text: str, min_word_freq: int) -> Tuple[Dict[int, str], Dict[str, int]]:
    """The recipe's ``build_vocab``: ``(ix2vocab, vocab2ix)``.

    Words of ``text.split(' ')`` counted more than ``min_word_freq`` times get ids 1, 2, ... in the order
    first seen; ``'unknown'`` is then set to 0 (overriding its own id if it is a frequent word).
    """
    word_counts = collections.Counter(text.split(" "))
    kept = [w for w, n in word_counts.items() if n > min_word_freq]  # Counter keeps first-seen order
    vocab2ix = {w: ix + 1 for ix, w in enumerate(kept)}
    vocab2ix["unknown"] = 0
    ix2vocab = {ix: w for w, ix in vocab2ix.items()}
    return ix2vocab, vocab2ix


def vocab_size_of(ix2vocab: Dict[int, str]) -> int:
    """The recipe's ``vocab_size = len(ix2vocab) + 1``."""
    return len(ix2vocab) + 1


def text_to_ids(text: str, vocab2ix: Dict[str, int]) -> np.ndarray:
    """Word ids of ``text.split(' ')``; words outside the vocabulary -> 0."""
    return np.array([vocab2ix.get(w, 0) for w in text.split(" ")], dtype=np.int64)


def make_batches(ids: np.ndarray, batch_size: int, seq_len: int) -> List[np.ndarray]:
    """The recipe's batches: ``int(len / (batch * seq)) + 1`` pieces of ``np.array_split``, each
    ``np.resize``d to [batch_size, seq_len]."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise DataError(f"word ids must be one-dimensional; got shape {list(ids.shape)}")
    if batch_size < 1 or seq_len < 1:
        raise DataError(f"batch_size and seq_len must be >= 1; got {batch_size}, {seq_len}")
    if ids.size == 0:
        raise DataError("the cleaned text has no words: nothing to batch")
    num_batches = int(len(ids) / (batch_size * seq_len)) + 1
    pieces = np.array_split(ids, num_batches)
    empty = [k for k, p in enumerate(pieces) if p.size == 0]
    if empty:
        raise DataError(f"{len(ids)} words split into {num_batches} batches leaves batch {empty[0]} empty")
    return [np.resize(p, [batch_size, seq_len]) for p in pieces]


def targets_of(batch: np.ndarray) -> np.ndarray:
    """``np.roll(x, -1, axis=1)``: each row shifted left by one, its first word moving to the end."""
    return np.roll(batch, -1, axis=1)


def load_corpus(path: Union[str, os.PathLike], min_word_freq: int = 5, skip_chars: int = RECIPE_HEADER_CHARS
                ) -> Tuple[np.ndarray, Dict[int, str], Dict[str, int]]:
    """Read, clean, build the vocabulary and convert: ``(ids, ix2vocab, vocab2ix)``."""
    text = clean_text(read_text(path), skip_chars)
    if not text:
        raise DataError(f"{path}: no words left after skipping {skip_chars} characters and cleaning")
    ix2vocab, vocab2ix = build_vocab(text, min_word_freq)
    return text_to_ids(text, vocab2ix), ix2vocab, vocab2ix


def vocab_to_json(vocab2ix: Dict[str, int]) -> dict:
    """A JSON-ready vocabulary (``ix2vocab`` is its inverse, as in the recipe)."""
    return {"format": "tf_shakespeare.vocab", "version": 1, "vocab2ix": dict(vocab2ix)}


def vocab_from_json(obj: dict, source: str = "vocabulary") -> Tuple[Dict[int, str], Dict[str, int]]:
    """``(ix2vocab, vocab2ix)`` from :func:`vocab_to_json`'s form; clear errors on anything else."""
    if not isinstance(obj, dict) or not isinstance(obj.get("vocab2ix"), dict):
        raise DataError(f"{source}: expected a JSON object with a 'vocab2ix' mapping")
    vocab2ix = {}
    for w, ix in obj["vocab2ix"].items():
        if not isinstance(ix, int) or isinstance(ix, bool) or ix < 0:
            raise DataError(f"{source}: word {w!r} has id {ix!r}; ids must be integers >= 0")
        vocab2ix[w] = ix
    ix2vocab = {ix: w for w, ix in vocab2ix.items()}
    if len(ix2vocab) != len(vocab2ix):
        raise DataError(f"{source}: two words share an id")
    return ix2vocab, vocab2ix


def words_to_ids(words: Iterable[str], vocab2ix: Dict[str, int], unknown: str = "error") -> List[int]:
    """Ids of prime words. ``unknown="error"`` (the recipe raises KeyError) names the missing word;
    ``unknown="zero"`` maps it to id 0."""
    out = []
    for w in words:
        if w in vocab2ix:
            out.append(vocab2ix[w])
        elif unknown == "zero":
            out.append(0)
        else:
            raise KeyError(f"prime word {w!r} is not in the vocabulary ({len(vocab2ix)} words); "
                           "use unknown='zero' to map it to id 0")
    return out


class _NoClassesUnpickler:
    """A pickle reader that refuses every class or function reference: the recipe's ``vocab.pkl``
    (``pickle.dump([vocab2ix, ix2vocab])``) holds only dicts, strings and ints."""

    @staticmethod
    def load(fh, source: str):
        import pickle

        class Restricted(pickle.Unpickler):
            def find_class(self, module, name):
                raise DataError(f"{source}: refuses to load {module}.{name}: a vocabulary pickle holds only "
                                "dicts of words and ids")

        try:
            return Restricted(fh).load()
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001 - any malformed pickle gets one clear message
            raise DataError(f"{source}: not a readable vocabulary pickle ({type(e).__name__}: {e})") from None


def load_vocab_file(path: Union[str, os.PathLike]) -> Tuple[Dict[int, str], Dict[str, int]]:
    """``(ix2vocab, vocab2ix)`` from this port's ``vocab.json`` or the recipe's ``vocab.pkl``
    (``[vocab2ix, ix2vocab]``, read without executing anything)."""
    import json

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such vocabulary file")
    if path.suffix == ".pkl":
        with open(path, "rb") as fh:
            obj = _NoClassesUnpickler.load(fh, str(path))
        if not (isinstance(obj, (list, tuple)) and len(obj) == 2 and isinstance(obj[0], dict)):
            raise DataError(f"{path}: expected the recipe's [vocab2ix, ix2vocab] pickle")
        return vocab_from_json({"vocab2ix": obj[0]}, str(path))
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a JSON vocabulary ({e})") from None
    return vocab_from_json(obj, str(path))
