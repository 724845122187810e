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

Hostile input: the tokenizer is one regular expression whose alternatives cannot backtract into each
other (linear time on any input), tokens are produced one at a time (no token list), numbers are
classified by unambiguous patterns (a 30,000-digit "number" is refused at once: protobuf integers have
at most 64 bits), nesting is bounded (:data:`MAX_DEPTH`), the file size is capped (:data:`MAX_BYTES`)
and so is the number of values and messages (:data:`MAX_VALUES`), which bounds memory to about
100 bytes per value. Bad input raises :class:`PrototxtError` naming the file, line and column.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from compat.errors import FileFormatError
from compat.formats.files import MiB, read_bytes

MAX_DEPTH = 64
MAX_BYTES = 16 * MiB
MAX_VALUES = 1_000_000


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


# One pattern, four alternatives that start with different characters, none of them with two
# quantifiers competing for the same characters: every match is found in time linear in its length.
_TOKEN = re.compile(r"""
    (?P<skip>(?:[ \t\r\n\f\v,;]|\#[^\n]*)+)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<word>[-+]?[A-Za-z0-9_.]+(?:(?<=[eE])[-+][A-Za-z0-9_.]*)?)
  | (?P<punct>[{}<>\[\]:])
""", re.VERBOSE)

_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_OCTAL = re.compile(r"0[0-7]+")
_DECIMAL = re.compile(r"[1-9][0-9]*|0")
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
    if _HEX.fullmatch(body):
        if len(body) > 2 + 16:
            raise OverflowError
        value = int(body, 16)
    elif len(body) > 1 and body[0] == "0" and body[1].isdigit():
        # tokenizer.cc ConsumeNumber: a leading zero means octal; 8 or 9 after it is an error.
        if not _OCTAL.fullmatch(body):
            return None
        if len(body) > 23:
            raise OverflowError
        value = int(body, 8)
    elif _DECIMAL.fullmatch(body):
        if len(body) > 20:
            raise OverflowError
        value = int(body)
    else:
        if body[-1] in "fF":  # protobuf's float suffix: 1.5f, 2f
            body = body[:-1]
        if body and _FLOAT.fullmatch(body):
            return sign * float(body)
        return None
    value *= sign
    if value > _MAX_UINT64 or value < _MIN_INT64:
        raise OverflowError
    return value


class _Parser:
    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.pos = 0
        self.lookahead: Optional[Tuple[str, str, int]] = None
        self.values = 0
        self.identifiers: Dict[str, Identifier] = {}

    # -- tokens --------------------------------------------------------------------------------------
    def _scan(self) -> Optional[Tuple[str, str, int]]:
        text, n = self.text, len(self.text)
        while self.pos < n:
            m = _TOKEN.match(text, self.pos)
            if m is None:
                self._fail(self.pos, f"unexpected character {text[self.pos]!r}")
            start, self.pos = self.pos, m.end()
            kind = m.lastgroup
            if kind != "skip":
                return kind, m.group(), start
        return None

    def _peek(self) -> Optional[Tuple[str, str, int]]:
        if self.lookahead is None:
            self.lookahead = self._scan()
        return self.lookahead

    def _next(self, what: str) -> Tuple[str, str, int]:
        tok = self._peek()
        if tok is None:
            self._fail(len(self.text), f"unexpected end of input, expected {what}")
        self.lookahead = None
        return tok

    def _where(self, pos: int) -> str:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return f"{self.source}:{line}:{col}"

    def _fail(self, pos: int, message: str):
        raise PrototxtError(f"{self._where(pos)}: {message}")

    def _count(self, pos: int) -> None:
        self.values += 1
        if self.values > MAX_VALUES:
            self._fail(pos, f"more than {MAX_VALUES:,} values and messages; the file is too large for this reader")

    # -- grammar -------------------------------------------------------------------------------------
    def parse_message(self, depth: int, closer: Optional[str]) -> TextMessage:
        if depth > MAX_DEPTH:
            tok = self._peek()
            self._fail(tok[2] if tok else len(self.text), f"messages nested deeper than {MAX_DEPTH} levels")
        msg = TextMessage()
        while True:
            tok = self._peek()
            if tok is None:
                if closer is not None:
                    self._fail(len(self.text), f"unexpected end of input, expected {closer!r}")
                return msg
            kind, text, pos = tok
            self.lookahead = None
            if kind == "punct" and text == closer:
                return msg
            if kind != "word" or not _IDENT.fullmatch(text):
                self._fail(pos, f"expected a field name, found {_short_repr(text)}")
            name = text
            kind, text, pos = self._next(f"':' or '{{' after field {name!r}")
            if kind == "punct" and text == ":":
                kind, text, pos = self._next(f"a value for field {name!r}")
                if kind == "punct" and text == "[":
                    self._list(msg, name, depth)
                    continue
            elif not (kind == "punct" and text in "{<"):
                self._fail(pos, f"expected ':' or '{{' after field {name!r}, found {_short_repr(text)}")
            self._count(pos)
            if kind == "punct" and text in "{<":
                msg.add(name, self.parse_message(depth + 1, "}" if text == "{" else ">"))
            else:
                msg.add(name, self._scalar(kind, text, pos, name))

    def _list(self, msg: TextMessage, name: str, depth: int) -> None:
        while True:
            kind, text, pos = self._next(f"a value or ']' in the list of field {name!r}")
            if kind == "punct" and text == "]":
                return
            self._count(pos)
            if kind == "punct" and text in "{<":
                msg.add(name, self.parse_message(depth + 1, "}" if text == "{" else ">"))
            else:
                msg.add(name, self._scalar(kind, text, pos, name))

    def _scalar(self, kind: str, text: str, pos: int, name: str):
        if kind == "word":
            body = text[1:] if text[0] in "+-" else text
            low = body.lower()
            if low in _SPECIAL_FLOATS:
                return -_SPECIAL_FLOATS[low] if text[0] == "-" else _SPECIAL_FLOATS[low]
            if body[:1].isdigit() or body[:1] == ".":
                try:
                    value = _number(text)
                except OverflowError:
                    self._fail(pos, f"integer {_short_repr(text)} for field {name!r} does not fit in 64 bits")
                if value is None:
                    self._fail(pos, f"bad number {_short_repr(text)} for field {name!r}")
                return value
            if text[0] in "+-" or not _IDENT.fullmatch(text):
                self._fail(pos, f"bad value {_short_repr(text)} for field {name!r}")
            ident = self.identifiers.get(text)
            if ident is None:
                ident = self.identifiers[text] = Identifier(text)
            return ident
        if kind == "str":
            parts = [text]
            while True:
                nxt = self._peek()
                if nxt is None or nxt[0] != "str":
                    break
                self.lookahead = None
                parts.append(nxt[1])
            try:
                values = [_unescape(p[1:-1]) for p in parts]
            except ValueError as exc:
                self._fail(pos, f"bad string for field {name!r}: {exc}")
            if len(values) == 1:
                return values[0]
            if all(isinstance(v, str) for v in values):
                return "".join(values)
            joined = b"".join(v if isinstance(v, bytes) else v.encode("utf-8") for v in values)
            try:
                return joined.decode("utf-8")
            except UnicodeDecodeError:
                return joined
        self._fail(pos, f"expected a value for field {name!r}, found {_short_repr(text)}")


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
    return _Parser(text, source).parse_message(0, None)


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
