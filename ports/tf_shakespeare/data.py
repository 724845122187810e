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

from compat.formats import jsons
from compat.errors import FileFormatError
from compat.formats import files, pickles
from compat.formats.files import MiB
from compat.formats.pickles import PickleLimits, describe

RECIPE_HEADER_CHARS = 7675
# string.punctuation without '-' and "'" (the recipe's list comprehension keeps its order).
PUNCTUATION = "".join(ch for ch in string.punctuation if ch not in ("-", "'"))
# Built as the recipe builds it: r'[{}]'.format(punctuation). '\]' inside the class escapes the bracket.
_PUNCTUATION_RE = re.compile(r"[{}]".format(PUNCTUATION))
_WHITESPACE_RE = re.compile(r"\s+")


# Caps (docs/security.md): pg100.txt is 5.6 MB; the recipe's vocabulary has about 8,000 words.
CORPUS_CAP = 256 * MiB
VOCAB_FILE_CAP = 64 * MiB
MAX_VOCAB_ID = 2 ** 31 - 1
VOCAB_PICKLE_LIMITS = PickleLimits(max_bytes=VOCAB_FILE_CAP, max_depth=4, max_containers=16,
                                   max_expanded=4 * VOCAB_FILE_CAP)


class DataError(FileFormatError):
    """A corpus or vocabulary file, or text, that cannot give the recipe's vocabulary and batches."""


def read_text(path: Union[str, os.PathLike]) -> str:
    """The file's text as the recipe holds it after ``response.content.decode('utf-8')``: byte-order
    mark and CRLF line ends kept. Regular files only, at most ``CORPUS_CAP`` bytes."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: no such file (pass the path of pg100.txt or another plain-text file)")
    try:
        return files.read_text(path, CORPUS_CAP, "text file")
    except FileFormatError as e:
        raise DataError(str(e)) from None


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
        if not isinstance(w, str):
            raise DataError(f"{source}: vocabulary key {describe(w)} is not a word (a string)")
        if not isinstance(ix, int) or isinstance(ix, bool) or not 0 <= ix <= MAX_VOCAB_ID:
            raise DataError(f"{source}: word {describe(w)} has id {describe(ix)}; ids must be integers in "
                            f"[0, {MAX_VOCAB_ID}]")
        vocab2ix[w] = ix
    ix2vocab = {ix: w for w, ix in vocab2ix.items()}
    if len(ix2vocab) != len(vocab2ix):
        raise DataError(f"{source}: two words share an id")
    return ix2vocab, vocab2ix


def read_vocab_json(path: Union[str, os.PathLike]) -> Tuple[Dict[int, str], Dict[str, int]]:
    """``(ix2vocab, vocab2ix)`` from a ``vocab.json``: a regular file under ``VOCAB_FILE_CAP``, UTF-8,
    valid JSON (deep nesting is an error, not a crash)."""
    try:
        text = files.read_text(path, VOCAB_FILE_CAP, "vocabulary file")
        obj = jsons.loads(text)
    except FileFormatError as e:
        raise DataError(str(e)) from None
    except ValueError as e:  # JSONDecodeError, or an integer of more than 4300 digits
        raise DataError(f"{path}: not a JSON vocabulary ({describe(str(e))[1:-1]})") from None
    except RecursionError:
        raise DataError(f"{path}: not a JSON vocabulary (nested too deeply)") from None
    return vocab_from_json(obj, str(path))


class UnknownWordError(KeyError):
    """A prime word outside the vocabulary (the recipe's KeyError); ``.word`` and ``.vocab_size`` say which."""

    def __init__(self, word: str, vocab_size: int):
        self.word, self.vocab_size = word, vocab_size
        super().__init__(f"prime word {word!r} is not in the vocabulary ({vocab_size} words); "
                         "use unknown='zero' to map it to id 0")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def words_to_ids(words: Iterable[str], vocab2ix: Dict[str, int], unknown: str = "error") -> List[int]:
    """Ids of prime words. ``unknown="error"`` (the recipe raises KeyError) raises :class:`UnknownWordError`
    naming the missing word; ``unknown="zero"`` maps it to id 0."""
    out = []
    for w in words:
        if w in vocab2ix:
            out.append(vocab2ix[w])
        elif unknown == "zero":
            out.append(0)
        else:
            raise UnknownWordError(w, len(vocab2ix))
    return out


def load_vocab_file(path: Union[str, os.PathLike]) -> Tuple[Dict[int, str], Dict[str, int]]:
    """``(ix2vocab, vocab2ix)`` from this port's ``vocab.json`` or the recipe's ``vocab.pkl``
    (``pickle.dump([vocab2ix, ix2vocab])``: dicts of words and ids, read with :mod:`compat.formats.pickles`,
    which refuses every global and bounds the structure before unpickling)."""
    path = Path(path)
    if path.suffix != ".pkl":
        return read_vocab_json(path)
    try:
        obj = pickles.load_file(path, cap=VOCAB_FILE_CAP, what="the vocabulary pickle", limits=VOCAB_PICKLE_LIMITS,
                                refusal_hint="a vocabulary pickle holds only dicts of words and ids")
    except FileFormatError as e:  # UnsafePickleError included: a refused global is reported the same way
        raise DataError(str(e)) from None
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2 and isinstance(obj[0], dict)):
        raise DataError(f"{path}: expected the recipe's [vocab2ix, ix2vocab] pickle")
    return vocab_from_json({"vocab2ix": obj[0]}, str(path))
