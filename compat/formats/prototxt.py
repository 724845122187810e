"""A schema-free reader and writer of the protobuf text format (``.prototxt``, ``.pbtxt``).

Caffe nets and solvers, TF ``checkpoint`` state files and graph dumps are written in this format. The
reader needs no ``.proto`` schema: every field becomes a list of values under its name, in file order
(a text file cannot tell a repeated field from an optional one; :meth:`TextMessage.get` returns the last
value, which is protobuf's rule for a non-repeated field given twice).

Grammar (protobuf ``text_format``, as ``google/protobuf/io/tokenizer.cc`` reads it): ``name: value``,
``name { ... }``, ``name: { ... }`` or ``name < ... >`` for a nested message, ``name: [v1, v2]`` for a list,
``#`` comments, optional ``,`` / ``;`` separators; values are numbers (``1``, ``-2.5e-3``, ``0x1f``, ``017``
(octal, as protobuf reads a leading zero), ``1.0f``, ``inf``, ``nan``), quoted strings (single or double
quotes, C escapes, adjacent strings concatenated) or identifiers (enum names, ``true``/``false``).
Escapes denote bytes, as in protobuf; a string whose bytes are not UTF-8 comes back as ``bytes`` (a
protobuf ``bytes`` field), every other string as ``str``.

Hostile input: the tokenizer is one regular expression whose alternatives cannot backtrack into each
other (linear time on any input), tokens are produced one at a time (no token list), numbers are
classified by unambiguous patterns (a 30,000-digit "number" is refused at once: protobuf integers have
at most 64 bits), nesting is bounded (:data:`MAX_DEPTH`), the file size is capped (:data:`MAX_BYTES`)
and so is the number of fields and list values (:data:`MAX_VALUES`), which bounds memory to about
150 bytes per value and the work to a few tokens per value. Bad input raises :class:`PrototxtError`
naming the file, line and column.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from compat.errors import FileFormatError
from compat.formats.files import MiB, read_bytes

MAX_DEPTH = 64
MAX_BYTES = 4 * MiB
MAX_VALUES = 100_000


class PrototxtError(FileFormatError):
    """A text-format file that does not parse; the message names the source, line and column."""


class Identifier(str):
    """An unquoted value: an enum name (``TEST``, ``CPU``) or ``true`` / ``false``."""

    __slots__ = ()


class TextMessage:
    """One parsed message: field name -> list of values (numbers, str, :class:`Identifier`, messages)."""

    __slots__ = ("fields",)

    def __init__(self, fields: Optional[Dict[str, list]] = None):
        self.fields: Dict[str, list] = fields if fields is not None else {}

    def add(self, name: str, value: Any) -> "TextMessage":
        values = self.fields.get(name)
        if values is None:
            self.fields[name] = [value]
        else:
            values.append(value)
        return self

    def get(self, name: str, default: Any = None) -> Any:
        """The field's last value (protobuf's rule for a non-repeated field), or ``default``."""
        values = self.fields.get(name)
        return values[-1] if values else default

    def getall(self, name: str) -> list:
        return list(self.fields.get(name, ()))

    def has(self, name: str) -> bool:
        return bool(self.fields.get(name))

    def message(self, name: str) -> "TextMessage":
        """The nested message ``name`` (an empty one when absent)."""
        value = self.get(name)
        if value is None:
            return TextMessage()
        if not isinstance(value, TextMessage):
            raise PrototxtError(f"field {name!r} is a scalar ({_short_repr(value)}), expected a message {{ ... }}")
        return value

    def __contains__(self, name: str) -> bool:
        return self.has(name)

    def __iter__(self) -> Iterator[Tuple[str, Any]]:
        for name, values in self.fields.items():
            for v in values:
                yield name, v

    def __eq__(self, other) -> bool:
        return isinstance(other, TextMessage) and self.fields == other.fields

    def __repr__(self) -> str:
        return f"TextMessage({self.fields!r})"

    def to_dict(self) -> dict:
        """Plain nested dicts and lists (every field a list), for printing or JSON."""
        return {k: [v.to_dict() if isinstance(v, TextMessage) else v for v in vs] for k, vs in self.fields.items()}


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# One pattern whose alternatives start with different characters and repeat only single character
# classes (no repeated group: re keeps a backtracking record per repetition of a group, which for a
# 16 MB string or comment run is gigabytes), so every match costs time and memory linear in its length.
# Quoted strings are scanned by _scan_string from their opening quote.
_TOKEN = re.compile(r"""
    (?P<skip>[ \t\r\n\f\v,;]+|\#[^\n]*)
  | (?P<str>["'])
  | (?P<word>[-+]?[A-Za-z0-9_.]+(?:(?<=[eE])[-+][A-Za-z0-9_.]*)?)
  | (?P<punct>[{}<>\[\]:])
""", re.VERBOSE)
_STRING_RUN = {'"': re.compile(r'[^"\\\n]*'), "'": re.compile(r"[^'\\\n]*")}

_INTEGER = re.compile(r"(?P<hex>0[xX][0-9a-fA-F]+)|(?P<octal>0[0-7]+)|(?P<bad_octal>0[0-9]+)|(?P<decimal>[1-9][0-9]*|0)")
_FLOAT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")

_MAX_UINT64 = (1 << 64) - 1
_MIN_INT64 = -(1 << 63)
_SPECIAL_FLOATS = {"inf": float("inf"), "infinity": float("inf"), "nan": float("nan")}

_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\", "'": b"'", '"': b'"', "a": b"\a", "b": b"\b",
            "f": b"\f", "v": b"\v", "?": b"?"}
_ESCAPE_RUN = re.compile(r"\\(?:[0-7]{1,3}|[xX][0-9a-fA-F]{1,2}|.)", re.DOTALL)


def _unescape(body: str) -> Union[str, bytes]:
    """A quoted string's contents: escapes are bytes (as protobuf's ``UnescapeCEscapeString``)."""
    if "\\" not in body:
        return body
    out = bytearray()
    pos = 0
    for m in _ESCAPE_RUN.finditer(body):
        out += body[pos:m.start()].encode("utf-8")
        esc = m.group()[1:]
        if esc[0] in "01234567":
            code = int(esc, 8)
            if code > 0xFF:
                raise ValueError(f"octal escape \\{esc} is above \\377")
            out.append(code)
        elif esc[0] in "xX":
            if len(esc) == 1:
                raise ValueError("\\x escape without hex digits")
            out.append(int(esc[1:], 16))
        elif esc in _ESCAPES:
            out += _ESCAPES[esc]
        else:
            raise ValueError(f"unknown escape \\{esc}")
        pos = m.end()
    out += body[pos:].encode("utf-8")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(out)


def _number(text: str) -> Union[int, float, None]:
    """The value of a word that starts like a number (an optional sign, then a digit or '.'); None if malformed."""
    sign = -1 if text[0] == "-" else 1
    body = text[1:] if text[0] in "+-" else text
    m = _INTEGER.fullmatch(body)
    if m is not None:
        kind = m.lastgroup
        if kind == "bad_octal":  # tokenizer.cc ConsumeNumber: a leading zero means octal; 8 or 9 is an error
            return None
        if len(body) > {"hex": 18, "octal": 23, "decimal": 20}[kind]:
            raise OverflowError
        value = sign * int(body, {"hex": 16, "octal": 8, "decimal": 10}[kind])
        if value > _MAX_UINT64 or value < _MIN_INT64:
            raise OverflowError
        return value
    if body[-1] in "fF":  # protobuf's float suffix: 1.5f, 2f
        body = body[:-1]
    if body and _FLOAT.fullmatch(body):
        return sign * float(body)
    return None


def _where(text: str, source: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"{source}:{line}:{col}"


def _tokens(text: str, fail) -> Iterator[Tuple[str, str, int]]:
    """``(kind, token, position)`` for every token of ``text``; whitespace, separators and comments dropped."""
    match = _TOKEN.match
    n = len(text)
    pos = 0
    while pos < n:
        m = match(text, pos)
        if m is None:
            fail(pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        end = m.end()
        if kind == "skip":
            pos = end
            continue
        if kind == "str":  # scan to the closing quote: an escape skips one character, no newline inside
            quote, run = text[pos], _STRING_RUN[text[pos]]
            while True:
                end = run.match(text, end).end()
                if end >= n or text[end] == "\n":
                    fail(pos, "unterminated string")
                if text[end] == quote:
                    end += 1
                    break
                if end + 1 >= n or text[end + 1] == "\n":
                    fail(pos, "unterminated string")
                end += 2
        yield kind, text[pos:end], pos
        pos = end


# Parser states: what the next token may be.
_NAME, _AFTER_NAME, _VALUE, _LIST = range(4)
_EXPECTED = {_AFTER_NAME: "':' or '{{' after field {name!r}", _VALUE: "a value for field {name!r}",
             _LIST: "a value or ']' in the list of field {name!r}"}


def _parse(text: str, source: str) -> TextMessage:
    """One pass over the tokens with an explicit stack of open messages (no recursion, no token list)."""
    def fail(pos: int, message: str):
        raise PrototxtError(f"{_where(text, source, pos)}: {message}")

    root = msg = TextMessage()
    closer = None
    stack = []              # (message, closer, field name, inside a list) of each enclosing message
    state, name, in_list = _NAME, "", False
    strings = None          # adjacent quoted strings not yet added: [parts, position]
    count = 0
    identifiers: Dict[str, Identifier] = {}
    for kind, tok, pos in _tokens(text, fail):
        if strings is not None:
            if kind == "str":
                strings[0].append(tok)
                count += 1
                if count > MAX_VALUES:
                    fail(pos, f"more than {MAX_VALUES:,} fields and list values; the file is too large for "
                              "this reader")
                continue
            msg.add(name, _join_strings(strings[0], strings[1], name, fail))
            strings = None
        if state == _NAME:
            if kind == "punct" and tok == closer:
                msg, closer, name, in_list = stack.pop()
                state = _LIST if in_list else _NAME
                continue
            if kind != "word" or not _IDENT.fullmatch(tok):
                fail(pos, f"expected a field name, found {_short_repr(tok)}")
            name, state = tok, _AFTER_NAME
            count += 1
            if count > MAX_VALUES:
                fail(pos, f"more than {MAX_VALUES:,} fields and list values; the file is too large for this reader")
            continue
        elif state == _AFTER_NAME:
            if kind == "punct" and tok == ":":
                state = _VALUE
                continue
            if not (kind == "punct" and tok in "{<"):
                fail(pos, f"expected ':' or '{{' after field {name!r}, found {_short_repr(tok)}")
        elif state == _LIST:
            if kind == "punct" and tok == "]":
                state, in_list = _NAME, False
                continue
            count += 1
        elif kind == "punct" and tok == "[":  # state _VALUE
            state, in_list = _LIST, True
            continue
        if count > MAX_VALUES:
            fail(pos, f"more than {MAX_VALUES:,} fields and list values; the file is too large for this reader")
        # a value of field `name`: a nested message, a string (maybe continued) or a word
        if kind == "punct" and tok in "{<":
            if len(stack) >= MAX_DEPTH:
                fail(pos, f"messages nested deeper than {MAX_DEPTH} levels")
            child = TextMessage()
            msg.add(name, child)
            stack.append((msg, closer, name, in_list))
            msg, closer, state, in_list = child, "}" if tok == "{" else ">", _NAME, False
            continue
        if kind == "str":
            strings = [[tok], pos]
        elif kind == "word":
            msg.add(name, _word_value(tok, pos, name, identifiers, fail))
        else:
            fail(pos, f"expected a value for field {name!r}, found {_short_repr(tok)}")
        if state != _LIST:
            state = _NAME
    if strings is not None:
        msg.add(name, _join_strings(strings[0], strings[1], name, fail))
    if state != _NAME:
        fail(len(text), "unexpected end of input, expected " + _EXPECTED[state].format(name=name))
    if stack:
        fail(len(text), f"unexpected end of input, expected {closer!r}")
    return root


def _word_value(tok: str, pos: int, name: str, identifiers: Dict[str, Identifier], fail):
    body = tok[1:] if tok[0] in "+-" else tok
    low = body.lower()
    if low in _SPECIAL_FLOATS:
        return -_SPECIAL_FLOATS[low] if tok[0] == "-" else _SPECIAL_FLOATS[low]
    if body[:1].isdigit() or body[:1] == ".":
        try:
            value = _number(tok)
        except OverflowError:
            fail(pos, f"integer {_short_repr(tok)} for field {name!r} does not fit in 64 bits")
        if value is None:
            fail(pos, f"bad number {_short_repr(tok)} for field {name!r}")
        return value
    if tok[0] in "+-" or not _IDENT.fullmatch(tok):
        fail(pos, f"bad value {_short_repr(tok)} for field {name!r}")
    ident = identifiers.get(tok)
    if ident is None:
        ident = identifiers[tok] = Identifier(tok)
    return ident


def _join_strings(parts: list, pos: int, name: str, fail) -> Union[str, bytes]:
    try:
        values = [_unescape(p[1:-1]) for p in parts]
    except ValueError as exc:
        fail(pos, f"bad string for field {name!r}: {exc}")
    if len(values) == 1:
        return values[0]
    if all(isinstance(v, str) for v in values):
        return "".join(values)
    joined = b"".join(v if isinstance(v, bytes) else v.encode("utf-8") for v in values)
    try:
        return joined.decode("utf-8")
    except UnicodeDecodeError:
        return joined


def parse_prototxt(text: Union[str, bytes], source: str = "<string>") -> TextMessage:
    """Parse protobuf text format into a :class:`TextMessage`."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        if len(text) > MAX_BYTES:
            raise PrototxtError(f"{source}: {len(text):,} bytes is larger than the {MAX_BYTES:,}-byte limit")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PrototxtError(f"{source}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    if len(text) > MAX_BYTES:
        raise PrototxtError(f"{source}: {len(text):,} characters is larger than the {MAX_BYTES:,} limit")
    return _parse(text, source)


def read_prototxt(path) -> TextMessage:
    """Read and parse a text-format file (a regular file of at most :data:`MAX_BYTES`); errors name the
    file, line and column."""
    try:
        data = read_bytes(path, MAX_BYTES, "text-format file")
    except FileFormatError as exc:
        raise PrototxtError(str(exc)) from None
    return parse_prototxt(data, str(path))


def _format_bytes(value: bytes) -> str:
    out = []
    for b in value:
        ch = chr(b)
        if ch in "\\\"":
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _format_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Identifier):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return _format_bytes(bytes(value))
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def format_prototxt(msg: TextMessage, indent: int = 0) -> str:
    """Text format of ``msg`` (two-space indents); ``parse_prototxt`` reads it back to an equal message."""
    pad = "  " * indent
    lines = []
    for name, value in msg:
        if isinstance(value, TextMessage):
            lines.append(f"{pad}{name} {{")
            inner = format_prototxt(value, indent + 1)
            if inner:
                lines.append(inner)
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{name}: {_format_scalar(value)}")
    return "\n".join(lines)
