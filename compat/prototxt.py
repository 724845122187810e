"""A schema-free reader and writer of the protobuf text format (``.prototxt``, ``.pbtxt``).

Caffe nets and solvers, TF ``checkpoint`` index files and graph dumps are written in this format. The
reader needs no ``.proto`` schema: every field becomes a list of values under its name, in file order
(a text file cannot tell a repeated field from an optional one; :meth:`TextMessage.get` returns the last
value, which is protobuf's rule for a non-repeated field given twice).

Grammar (protobuf ``text_format``): ``name: value``, ``name { ... }``, ``name: { ... }`` or ``name < ... >``
for a nested message, ``name: [v1, v2]`` for a list, ``#`` comments, optional ``,`` / ``;`` separators;
values are numbers (``1``, ``-2.5e-3``, ``0x1f``, ``1.0f``, ``inf``, ``nan``), quoted strings (single or
double quotes, C escapes, adjacent strings concatenated) or identifiers (enum names, ``true``/``false``).

Bad input raises :class:`PrototxtError` naming the file, line and column. Nesting depth and input size
are bounded, so a hostile file cannot exhaust the stack or memory.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

MAX_DEPTH = 64
MAX_BYTES = 64 * 1024 * 1024


class PrototxtError(ValueError):
    """A text-format file that does not parse; the message names the source, line and column."""


class Identifier(str):
    """An unquoted value: an enum name (``TEST``, ``CPU``) or ``true`` / ``false``."""


class TextMessage:
    """One parsed message: field name -> list of values (numbers, str, :class:`Identifier`, messages)."""

    __slots__ = ("fields",)

    def __init__(self, fields: Optional[Dict[str, list]] = None):
        self.fields: Dict[str, list] = fields if fields is not None else {}

    def add(self, name: str, value: Any) -> "TextMessage":
        self.fields.setdefault(name, []).append(value)
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
            raise PrototxtError(f"field {name!r} is a scalar ({value!r}), expected a message {{ ... }}")
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


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n\f\v,;]+|\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<num>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[fF]?)(?![A-Za-z0-9_]))
  | (?P<ident>[-+]?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}<>\[\]:])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "?": "?"}


def _unescape(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
            if not m:
                raise ValueError("\\x escape without hex digits")
            out.append(chr(int(m.group(), 16)))
            i += 2 + len(m.group())
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(chr(int(m.group(), 8)))
            i += 1 + len(m.group())
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return "".join(out)


def _number(text: str) -> Union[int, float]:
    t = text
    if t[-1] in "fF" and not t.lower().startswith(("0x", "-0x", "+0x")):
        t = t[:-1]
    if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", t):
        return int(t, 16)
    if re.fullmatch(r"[-+]?\d+", t):
        return int(t)
    return float(t)


_SPECIAL_FLOATS = {"inf": float("inf"), "infinity": float("inf"), "-inf": float("-inf"),
                   "-infinity": float("-inf"), "nan": float("nan"), "-nan": float("nan")}


class _Parser:
    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.tokens: List[Tuple[str, str, int]] = []
        pos = 0
        n = len(text)
        while pos < n:
            m = _TOKEN.match(text, pos)
            if m is None:
                self._fail(pos, f"unexpected character {text[pos]!r}")
            kind = m.lastgroup
            if kind != "ws":
                self.tokens.append((kind, m.group(), pos))
            pos = m.end()
        self.i = 0

    def _where(self, pos: int) -> str:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return f"{self.source}:{line}:{col}"

    def _fail(self, pos: int, message: str):
        raise PrototxtError(f"{self._where(pos)}: {message}")

    def _peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self, what: str):
        tok = self._peek()
        if tok is None:
            self._fail(len(self.text), f"unexpected end of input, expected {what}")
        self.i += 1
        return tok

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
            if kind == "punct" and text == closer:
                self.i += 1
                return msg
            if kind != "ident" or text[0] in "+-":
                self._fail(pos, f"expected a field name, found {text!r}")
            self.i += 1
            name = text
            tok = self._next(f"':' or '{{' after field {name!r}")
            colon = tok[0] == "punct" and tok[1] == ":"
            if colon:
                tok = self._next(f"a value for field {name!r}")
                if tok[0] == "punct" and tok[1] == "[":
                    for value in self._list(name, depth):
                        msg.add(name, value)
                    continue
            elif not (tok[0] == "punct" and tok[1] in "{<"):
                self._fail(tok[2], f"expected ':' or '{{' after field {name!r}, found {tok[1]!r}")
            if tok[0] == "punct" and tok[1] in "{<":
                msg.add(name, self.parse_message(depth + 1, "}" if tok[1] == "{" else ">"))
            else:
                msg.add(name, self._scalar(tok, name))

    def _list(self, name: str, depth: int) -> list:
        values = []
        while True:
            tok = self._next(f"a value or ']' in the list of field {name!r}")
            if tok[0] == "punct" and tok[1] == "]":
                return values
            if tok[0] == "punct" and tok[1] in "{<":
                values.append(self.parse_message(depth + 1, "}" if tok[1] == "{" else ">"))
            else:
                values.append(self._scalar(tok, name))

    def _scalar(self, tok, name: str):
        kind, text, pos = tok
        if kind == "num":
            return _number(text)
        if kind == "str":
            parts = [text]
            while self._peek() is not None and self._peek()[0] == "str":
                parts.append(self._next("string")[1])
            try:
                return "".join(_unescape(p[1:-1]) for p in parts)
            except (ValueError, IndexError) as exc:
                self._fail(pos, f"bad string for field {name!r}: {exc}")
        if kind == "ident":
            low = text.lower()
            if low in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[low]
            if text[0] in "+-":
                self._fail(pos, f"bad value {text!r} for field {name!r}")
            return Identifier(text)
        self._fail(pos, f"expected a value for field {name!r}, found {text!r}")


def parse_prototxt(text: Union[str, bytes], source: str = "<string>") -> TextMessage:
    """Parse protobuf text format into a :class:`TextMessage`."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise PrototxtError(f"{source}: {len(text)} bytes is larger than the {MAX_BYTES}-byte limit")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PrototxtError(f"{source}: not UTF-8 text ({exc})") from None
    if len(text) > MAX_BYTES:
        raise PrototxtError(f"{source}: {len(text)} characters is larger than the {MAX_BYTES} limit")
    return _Parser(text, source).parse_message(0, None)


def read_prototxt(path) -> TextMessage:
    """Read and parse a text-format file; errors name the file, line and column."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PrototxtError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_prototxt(data, str(path))


def _format_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Identifier):
        return str(value)
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
