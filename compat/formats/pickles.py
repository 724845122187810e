"""Restricted unpickling of data pickles: the opcodes are scanned and bounded before anything is built.

A pickle is a program for a stack machine. Even with every global refused it can still build structures
that hurt whoever touches them: a tuple nested 10^6 deep used as a dict key overflows CPython's C stack
while it is hashed (a segfault, not an exception), a memo index of 2^32 makes the C unpickler allocate
and clear a 32 GB memo table, and 300,000 references to one 20,000-element list cost 1 MB in the file
but 48 GB to anyone who copies them. So :func:`load` first runs :func:`scan`, a single linear pass over the
opcodes that simulates the stack with one entry per object and refuses, with a message naming the file:

* any global (``GLOBAL``, ``INST``; ``STACK_GLOBAL`` at load time) that the caller did not allow, and the
  opcodes that reach outside the data (persistent ids, the copyreg extension registry, out-of-band buffers);
* nesting deeper than ``max_depth`` (checked as each container is built, and for the final graph), and
  structures that contain themselves;
* memo indices above ``max_memo``, more than ``max_containers`` containers, length fields that point past
  the end of the data, and an *expanded size* above ``max_expanded``: the bytes the data would take if
  every shared reference were copied, which bounds what callers spend walking or copying the result.

Only then does the C unpickler run, on exactly the scanned bytes, with ``find_class`` resolving only the
globals the caller maps to safe replacements. Runs of small-integer opcodes (the bulk of a data set such as
the IMDB pickle's word ids) are skipped by one regular expression, so the scan costs a fraction of the load.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import reprlib
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from compat.errors import FileFormatError
from compat.formats.files import MiB, file_size, open_regular

PathLike = Union[str, os.PathLike]
Globals = Mapping[Tuple[str, str], Any]


class UnsafePickleError(FileFormatError, pickle.UnpicklingError):
    """A pickle that names a global (or an external reference) this reader does not allow: it could run code."""


@dataclass(frozen=True)
class PickleLimits:
    """Bounds checked by :func:`scan` before a pickle is unpickled (see docs/security.md)."""

    max_bytes: int = 64 * MiB       # the opcodes of one pickle
    max_depth: int = 32             # containers inside containers
    max_memo: int = 1 << 20         # the largest memo index (the C unpickler allocates a table that long)
    max_containers: int = 1 << 20   # lists, tuples, dicts, sets and objects built
    max_expanded: int = 256 * MiB   # bytes of the data with every shared reference copied


# -------------------------------------------------------------------------------------------- messages
_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother, _short.maxlist, _short.maxdict = 3, 60, 60, 6, 4


def describe(value: Any) -> str:
    """A short, safe description of a value for an error message: never recursive, never huge."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 64:
            return f"an integer of {value.bit_length()} bits"
        return repr(value)
    if isinstance(value, (float, str, bytes)):
        return _short.repr(value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


# ------------------------------------------------------------------------------------------------- scan
# Opcodes that push one plain value and touch nothing else: BININT1, BININT2, BININT, BINFLOAT, NONE,
# NEWTRUE, NEWFALSE and protocol 0's INT. Every alternative starts with its own byte, so the match is linear.
_RUN = re.compile(rb"(?:K.|M..|J....|G.{8}|N|\x88|\x89|I[0-9-]{1,20}\n)+", re.S)
_RUN_FIRST = frozenset(b"KMJGN\x88\x89I")
_RUN_SIZE = {ord("K"): 2, ord("M"): 3, ord("J"): 5, ord("G"): 9, ord("N"): 1, 0x88: 1, 0x89: 1}

# Opcodes with a fixed-size argument and no effect beyond pushing one plain value.
_PUSH_FIXED = {ord("K"): 1, ord("M"): 2, ord("J"): 4, ord("G"): 8, 0x82: 1, 0x83: 2, 0x84: 4}
_PUSH_NOARG = frozenset(b"N\x88\x89")
# Opcodes with a length prefix (bytes of the prefix, signed) pushing one plain value (strings, bytes, longs).
_PUSH_COUNTED = {ord("T"): (4, True), ord("U"): (1, False), ord("X"): (4, False), ord("B"): (4, False),
                 ord("C"): (1, False), 0x8A: (1, False), 0x8B: (4, True), 0x8C: (1, False), 0x8D: (8, False),
                 0x8E: (8, False), 0x96: (8, False)}
# Protocol 0's newline-terminated plain values: INT, LONG, FLOAT, STRING, UNICODE.
_PUSH_LINE = frozenset(b"ILFSV")
_REFUSED = {ord("P"): "a persistent id (PERSID)", ord("Q"): "a persistent id (BINPERSID)",
            0x82: "the copyreg extension registry (EXT1)", 0x83: "the copyreg extension registry (EXT2)",
            0x84: "the copyreg extension registry (EXT4)", 0x97: "an out-of-band buffer (NEXT_BUFFER)",
            0x98: "an out-of-band buffer (READONLY_BUFFER)"}

_LIST, _TUPLE, _DICT, _SET, _FROZENSET, _OBJECT = range(6)
_KIND_NAMES = ("list", "tuple", "dict", "set", "frozenset", "object")


@dataclass(frozen=True)
class ScanResult:
    end: int             # offset just past the STOP opcode
    protocol: int
    depth: int           # deepest nesting of containers
    containers: int
    expanded: int        # bytes with every shared reference copied


class _Scanner:
    def __init__(self, data, start: int, source: str, what: str, limits: PickleLimits,
                 allowed_globals: Optional[Globals], refusal_hint: str):
        self.data, self.pos, self.source, self.what, self.limits = data, start, source, what, limits
        self.start = start
        self.allowed = allowed_globals or {}
        self.refusal_hint = refusal_hint
        self.stack: list = []   # node id (>= 0), scalar (-weight) or a run (start, end) of scalar opcodes
        self.marks: List[int] = []
        self.memo: Dict[int, Any] = {}
        self.kind: List[int] = []
        self.own: List[int] = []
        self.children: List[Optional[List[int]]] = []
        self.depth: List[int] = []  # a lower bound while building; exact for tuples and frozensets
        self.protocol = 0

    # -- errors -----------------------------------------------------------------------------------
    def fail(self, message: str, at: Optional[int] = None) -> FileFormatError:
        where = self.pos if at is None else at
        return FileFormatError(f"{self.source}: {self.what} is not a readable pickle: {message} "
                               f"(opcode at byte {where})")

    def refuse_global(self, module: str, name: str) -> UnsafePickleError:
        return refusal(self.source, module, name, self.refusal_hint)

    # -- stack ------------------------------------------------------------------------------------
    def _fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def _expand_top_run(self) -> None:
        start, end = self.stack.pop()
        data, p = self.data, start
        items = []
        while p < end:
            op = data[p]
            if op == 0x49:  # INT: up to its newline
                nl = data.index(b"\n", p)
                items.append(-(nl + 1 - p))
                p = nl + 1
            else:
                size = _RUN_SIZE[op]
                items.append(-size)
                p += size
        self.stack.extend(items)

    def pop(self):
        if len(self.stack) <= self._fence():
            raise self.fail("the stack is empty where an opcode needs a value")
        if type(self.stack[-1]) is tuple:
            self._expand_top_run()
        return self.stack.pop()

    def top(self):
        if len(self.stack) <= self._fence():
            raise self.fail("the stack is empty where an opcode needs a value")
        if type(self.stack[-1]) is tuple:
            self._expand_top_run()
        return self.stack[-1]

    def pop_mark(self) -> list:
        if not self.marks:
            raise self.fail("an opcode needs a MARK and there is none")
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        return items

    # -- containers -------------------------------------------------------------------------------
    def new_node(self, kind: int, items=()) -> int:
        n = len(self.kind)
        if n >= self.limits.max_containers:
            raise self.fail(f"more than {self.limits.max_containers:,} containers")
        self.kind.append(kind)
        self.own.append(1)
        self.children.append(None)
        self.depth.append(1)
        if items:
            self.add(n, items)
        return n

    def add(self, node: int, items) -> None:
        own = 0
        kids = None
        deepest = 0
        for e in items:
            t = type(e)
            if t is tuple:
                own += e[1] - e[0]
            elif e < 0:
                own -= e
            else:
                if kids is None:
                    kids = self.children[node]
                    if kids is None:
                        kids = self.children[node] = []
                kids.append(e)
                d = self.depth[e]
                if d > deepest:
                    deepest = d
        self.own[node] += own
        if deepest >= self.depth[node]:
            self.depth[node] = deepest + 1
            if deepest + 1 > self.limits.max_depth:
                raise self.fail(f"containers nested more than {self.limits.max_depth} deep")

    def container(self, e, kinds: Tuple[int, ...], opname: str) -> int:
        if type(e) is tuple or e < 0 or self.kind[e] not in kinds:
            got = "a plain value" if type(e) is tuple or e < 0 else f"a {_KIND_NAMES[self.kind[e]]}"
            raise self.fail(f"{opname} applies to {got}")
        return e

    # -- arguments --------------------------------------------------------------------------------
    def need(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise self.fail("the data ends inside an opcode (truncated)")

    def line(self, start: int) -> bytes:
        """The text from ``start`` to the next newline; the position moves past the newline."""
        nl = self.data.find(b"\n", start)
        if nl < 0:
            raise self.fail("the data ends inside an opcode (truncated)")
        self.pos = nl + 1
        return bytes(self.data[start:nl])

    def memo_index(self, value: int) -> int:
        if not 0 <= value <= self.limits.max_memo:
            raise self.fail(f"memo index {value} is over the cap of {self.limits.max_memo:,}")
        return value

    def text_index(self, text: bytes) -> int:
        if not text.isdigit() or len(text) > 12:
            raise self.fail(f"bad memo index {text[:20]!r}")
        return self.memo_index(int(text))

    def global_name(self, module: bytes, name: bytes) -> Tuple[str, str]:
        try:
            m, n = module.decode("utf-8"), name.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a global's name is not UTF-8") from None
        if (m, n) not in self.allowed:
            raise self.refuse_global(m, n)
        return m, n

    # -- the pass ---------------------------------------------------------------------------------
    def run(self) -> ScanResult:
        data, n = self.data, len(self.data)
        stack = self.stack
        limit = self.start + self.limits.max_bytes
        while True:
            pos = self.pos
            if pos >= n:
                raise self.fail("the data ends before the STOP opcode (truncated or empty)")
            if pos > limit:
                raise self.fail(f"more than {self.limits.max_bytes:,} bytes of opcodes")
            op = data[pos]
            if op in _RUN_FIRST:
                m = _RUN.match(data, pos)
                if m is not None and m.end() - pos > 12:
                    stack.append((pos, m.end()))
                    self.pos = m.end()
                    continue
            if op in _PUSH_FIXED:
                if op in _REFUSED:
                    raise UnsafePickleError(f"{self.source}: {self.what} refers to {_REFUSED[op]}, which this "
                                            f"reader does not allow (byte {pos})")
                size = _PUSH_FIXED[op]
                self.need(1 + size)
                stack.append(-(1 + size))
                self.pos = pos + 1 + size
            elif op in _PUSH_NOARG:
                stack.append(-1)
                self.pos = pos + 1
            elif op in _PUSH_COUNTED:
                width, signed = _PUSH_COUNTED[op]
                self.need(1 + width)
                length = int.from_bytes(data[pos + 1:pos + 1 + width], "little", signed=signed)
                if length < 0:
                    raise self.fail(f"negative length {length}")
                self.need(1 + width + length)
                stack.append(-(1 + width + length))
                self.pos = pos + 1 + width + length
            elif op in _PUSH_LINE:
                text = self.line(pos + 1)
                if op == ord("I") and text not in (b"00", b"01") and len(text) > 4300:
                    raise self.fail("an INT of more than 4300 digits")
                stack.append(-(self.pos - pos))
            elif op == 0x28:  # MARK
                self.marks.append(len(stack))
                self.pos = pos + 1
            elif op == 0x2E:  # STOP
                root = self.top()
                self.pos = pos + 1
                return self.finish(root)
            elif op == 0x30:  # POP
                if self.marks and self.marks[-1] == len(stack):
                    self.marks.pop()
                else:
                    self.pop()
                self.pos = pos + 1
            elif op == 0x31:  # POP_MARK
                self.pop_mark()
                self.pos = pos + 1
            elif op == 0x32:  # DUP
                stack.append(self.top())
                self.pos = pos + 1
            elif op in (0x5D, 0x29, 0x7D, 0x8F):  # EMPTY_LIST, EMPTY_TUPLE, EMPTY_DICT, EMPTY_SET
                kind = {0x5D: _LIST, 0x29: _TUPLE, 0x7D: _DICT, 0x8F: _SET}[op]
                stack.append(self.new_node(kind))
                self.pos = pos + 1
            elif op in (0x85, 0x86, 0x87):  # TUPLE1, TUPLE2, TUPLE3
                k = op - 0x84
                items = [self.pop() for _ in range(k)]
                stack.append(self.new_node(_TUPLE, items))
                self.pos = pos + 1
            elif op in (0x74, 0x6C, 0x64, 0x91):  # TUPLE, LIST, DICT, FROZENSET
                items = self.pop_mark()
                kind = {0x74: _TUPLE, 0x6C: _LIST, 0x64: _DICT, 0x91: _FROZENSET}[op]
                if kind == _DICT and len(items) % 2:
                    raise self.fail("DICT with an odd number of items")
                stack.append(self.new_node(kind, items))
                self.pos = pos + 1
            elif op == 0x61:  # APPEND
                value = self.pop()
                self.add(self.container(self.top(), (_LIST,), "APPEND"), [value])
                self.pos = pos + 1
            elif op == 0x65:  # APPENDS
                items = self.pop_mark()
                self.add(self.container(self.top(), (_LIST,), "APPENDS"), items)
                self.pos = pos + 1
            elif op == 0x73:  # SETITEM
                value = self.pop()
                key = self.pop()
                self.add(self.container(self.top(), (_DICT,), "SETITEM"), [key, value])
                self.pos = pos + 1
            elif op == 0x75:  # SETITEMS
                items = self.pop_mark()
                if len(items) % 2:
                    raise self.fail("SETITEMS with an odd number of items")
                self.add(self.container(self.top(), (_DICT,), "SETITEMS"), items)
                self.pos = pos + 1
            elif op == 0x90:  # ADDITEMS
                items = self.pop_mark()
                self.add(self.container(self.top(), (_SET,), "ADDITEMS"), items)
                self.pos = pos + 1
            elif op == 0x62:  # BUILD
                state = self.pop()
                target = self.top()
                if type(target) is not tuple and target >= 0:
                    self.add(self.container(target, (_OBJECT,), "BUILD"), [state])
                self.pos = pos + 1
            elif op == 0x63:  # GLOBAL
                module = self.line(pos + 1)
                name = self.line(self.pos)
                self.global_name(module, name)
                stack.append(-(self.pos - pos))
            elif op == 0x69:  # INST
                module = self.line(pos + 1)
                name = self.line(self.pos)
                self.global_name(module, name)
                stack.append(self.new_node(_OBJECT, self.pop_mark()))
            elif op == 0x6F:  # OBJ
                items = self.pop_mark()
                if not items:
                    raise self.fail("OBJ without a class")
                stack.append(self.new_node(_OBJECT, items))
                self.pos = pos + 1
            elif op in (0x52, 0x81):  # REDUCE, NEWOBJ
                args = self.pop()
                func = self.pop()
                stack.append(self.new_node(_OBJECT, [func, args]))
                self.pos = pos + 1
            elif op == 0x92:  # NEWOBJ_EX
                items = [self.pop() for _ in range(3)]
                stack.append(self.new_node(_OBJECT, items))
                self.pos = pos + 1
            elif op == 0x93:  # STACK_GLOBAL: the names are checked by find_class at load time
                self.pop()
                self.pop()
                stack.append(-1)
                self.pos = pos + 1
            elif op in (0x70, 0x71, 0x72, 0x94):  # PUT, BINPUT, LONG_BINPUT, MEMOIZE
                if op == 0x70:
                    idx = self.text_index(self.line(pos + 1))
                elif op == 0x71:
                    self.need(2)
                    idx = self.memo_index(data[pos + 1])
                    self.pos = pos + 2
                elif op == 0x72:
                    self.need(5)
                    idx = self.memo_index(int.from_bytes(data[pos + 1:pos + 5], "little"))
                    self.pos = pos + 5
                else:
                    idx = self.memo_index(len(self.memo))
                    self.pos = pos + 1
                self.memo[idx] = self.top()
            elif op in (0x67, 0x68, 0x6A):  # GET, BINGET, LONG_BINGET
                if op == 0x67:
                    idx = self.text_index(self.line(pos + 1))
                elif op == 0x68:
                    self.need(2)
                    idx = data[pos + 1]
                    self.pos = pos + 2
                else:
                    self.need(5)
                    idx = int.from_bytes(data[pos + 1:pos + 5], "little")
                    self.pos = pos + 5
                if idx not in self.memo:
                    raise self.fail(f"memo index {idx} is read before it is written", pos)
                stack.append(self.memo[idx])
            elif op == 0x80:  # PROTO
                self.need(2)
                self.protocol = data[pos + 1]
                if self.protocol > pickle.HIGHEST_PROTOCOL:
                    raise self.fail(f"unsupported pickle protocol {self.protocol}")
                self.pos = pos + 2
            elif op == 0x95:  # FRAME: the framed opcodes follow inline
                self.need(9)
                length = int.from_bytes(data[pos + 1:pos + 9], "little")
                if length > n - pos - 9:
                    raise self.fail(f"a frame of {length:,} bytes runs past the end of the data")
                self.pos = pos + 9
            elif op in _REFUSED:
                raise UnsafePickleError(f"{self.source}: {self.what} refers to {_REFUSED[op]}, which this reader "
                                        f"does not allow (byte {pos})")
            else:
                raise self.fail(f"unknown opcode 0x{op:02x}")

    def finish(self, root) -> ScanResult:
        """Depth over every container and expanded size from the root, on the final graph (iterative)."""
        limits = self.limits
        n = len(self.kind)
        depth = [0] * n
        expanded = [0] * n
        state = bytearray(n)  # 0 new, 1 on the path, 2 done
        cap = limits.max_expanded
        for start in range(n):
            if state[start]:
                continue
            path = [(start, 0)]
            state[start] = 1
            while path:
                node, i = path[-1]
                kids = self.children[node]
                if kids is not None and i < len(kids):
                    path[-1] = (node, i + 1)
                    child = kids[i]
                    if state[child] == 1:
                        raise self.fail(f"a {_KIND_NAMES[self.kind[child]]} contains itself")
                    if state[child] == 0:
                        state[child] = 1
                        path.append((child, 0))
                    continue
                path.pop()
                state[node] = 2
                d, size = 0, self.own[node]
                if kids is not None:
                    for c in kids:
                        if depth[c] > d:
                            d = depth[c]
                        size += expanded[c]
                depth[node] = d + 1
                if d + 1 > limits.max_depth:
                    raise self.fail(f"containers nested more than {limits.max_depth} deep")
                expanded[node] = min(size, cap + 1)
        if type(root) is tuple:
            total = root[1] - root[0]
        elif root < 0:
            total = -root
        else:
            total = expanded[root]
        if total > cap:
            raise self.fail(f"its data would take more than {cap:,} bytes with every shared reference copied "
                            f"(a small file can refer to one object many times)")
        return ScanResult(self.pos, self.protocol, max(depth, default=0), n, total)


def refusal(source: str, module: str, name: str, hint: str) -> UnsafePickleError:
    return UnsafePickleError(f"{source}: refused to load global {module}.{name}: {hint}; a pickle that names "
                             f"other globals can run arbitrary code when loaded")


def scan(data, start: int = 0, *, source: str = "<pickle>", what: str = "the pickle",
         limits: PickleLimits = PickleLimits(), allowed_globals: Optional[Globals] = None,
         refusal_hint: str = "this file may only hold plain data") -> ScanResult:
    """Check one pickle starting at ``start`` against ``limits`` without building anything."""
    return _Scanner(data, start, source, what, limits, allowed_globals, refusal_hint).run()


class RestrictedUnpickler(pickle.Unpickler):
    """The C unpickler with ``find_class`` limited to ``allowed_globals`` (``(module, name) -> object``)."""

    def __init__(self, file, *, source: str, allowed_globals: Optional[Globals] = None,
                 refusal_hint: str = "this file may only hold plain data", encoding: str = "latin-1"):
        super().__init__(file, encoding=encoding)
        self.source = source
        self.allowed_globals = allowed_globals or {}
        self.refusal_hint = refusal_hint

    def find_class(self, module: str, name: str):
        try:
            return self.allowed_globals[(module, name)]
        except (KeyError, TypeError):
            raise refusal(self.source, module, name, self.refusal_hint) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: refused a persistent id: this file may only hold plain data")


def load(data, start: int = 0, *, source: str = "<pickle>", what: str = "the pickle",
         limits: PickleLimits = PickleLimits(), allowed_globals: Optional[Globals] = None,
         refusal_hint: str = "this file may only hold plain data") -> Tuple[Any, int]:
    """``(object, end)``: one pickle at ``start`` of ``data``, scanned (:func:`scan`) and then unpickled.

    Python 2 strings are decoded as latin-1 (lossless). Every failure is a :class:`FileFormatError` or
    :class:`UnsafePickleError` naming ``source``.
    """
    if start >= len(data):
        raise FileFormatError(f"{source}: the file ends before {what} (truncated or empty)")
    result = scan(data, start, source=source, what=what, limits=limits, allowed_globals=allowed_globals,
                  refusal_hint=refusal_hint)
    view = memoryview(data)[start:result.end]
    try:
        obj = RestrictedUnpickler(io.BytesIO(view), source=source, allowed_globals=allowed_globals,
                                  refusal_hint=refusal_hint).load()
    except FileFormatError:
        raise
    except EOFError:
        raise FileFormatError(f"{source}: the file ends inside {what} (truncated)") from None
    except MemoryError:
        raise FileFormatError(f"{source}: {what} does not fit in memory") from None
    except Exception as e:  # noqa: BLE001 - any other failure of the C unpickler on scanned bytes
        raise FileFormatError(f"{source}: {what} is not a readable pickle ({type(e).__name__}: "
                              f"{describe(str(e))[1:-1]})") from None
    return obj, result.end


# ------------------------------------------------------------------------------------------ reading
def read_pickle_bytes(path: PathLike, cap: int, what: str = "pickle file") -> Union[bytes, bytearray]:
    """A pickle file's bytes, regular files only, at most ``cap`` bytes; ``*.gz`` is decompressed as a
    stream and refused as soon as it expands past ``cap`` (a small gzip file can expand to gigabytes)."""
    p = str(path)
    with open_regular(path, what) as fh:
        size = file_size(fh)
        if size > cap:
            raise FileFormatError(f"{p}: the {what} has {size:,} bytes; the cap is {cap:,}")
        if not p.endswith(".gz"):
            data = fh.read(cap + 1)
            if len(data) > cap:
                raise FileFormatError(f"{p}: the {what} is larger than the cap of {cap:,} bytes")
            return data
        out = bytearray()  # grown in place: no list of chunks joined into a second copy
        try:
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                while True:
                    chunk = gz.read(min(4 * MiB, cap + 1 - len(out)))
                    if not chunk:
                        break
                    out += chunk
                    if len(out) > cap:
                        raise FileFormatError(f"{p}: the gzip {what} decompresses to more than the cap of "
                                              f"{cap:,} bytes")
        except FileFormatError:
            raise
        except (OSError, EOFError, zlib.error, struct.error) as e:
            raise FileFormatError(f"{p}: not a readable gzip file ({type(e).__name__}: {e})") from None
        return out


def load_file(path: PathLike, *, cap: int, what: str = "the pickle", limits: Optional[PickleLimits] = None,
              allowed_globals: Optional[Globals] = None,
              refusal_hint: str = "this file may only hold plain data") -> Any:
    """The single pickle in ``path`` (``.gz`` too), read with :func:`read_pickle_bytes` and :func:`load`."""
    data = read_pickle_bytes(path, cap)
    limits = limits or PickleLimits(max_bytes=cap)
    obj, _ = load(data, source=str(path), what=what, limits=limits, allowed_globals=allowed_globals,
                  refusal_hint=refusal_hint)
    return obj


__all__ = ["PickleLimits", "ScanResult", "UnsafePickleError", "RestrictedUnpickler", "describe", "scan", "load",
           "load_file", "read_pickle_bytes", "refusal"]
