"""Which framework a source file is, and every recurrent layer (and everything else) it holds.

``--format`` names the framework (a key of :data:`compat.frameworks.FRAMEWORKS`; ``tf1`` is the older
spelling of ``tf``); without it the framework is told from the path: first by suffix, then by asking each
framework whether it claims the path (a TF checkpoint has no suffix of its own). A file that a framework
recognises but does not read (a frozen TF graph, a SavedModel's graph, a MetaGraphDef) is refused with
what to convert instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from compat import frameworks
from compat.convert.spec import Found, SpecError, check
from compat.errors import InputError
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES

FORMATS = tuple(frameworks.FRAMEWORKS)


class UnknownFormatError(InputError, ValueError):
    """A source whose format cannot be told (and none was given), or an option that does not apply to it."""


class ConversionError(InputError, ValueError):
    """A recurrent layer found in a file whose weights do not make one layer."""


def detect_format(path) -> str:
    """The key of the framework whose file ``path`` is."""
    p = Path(path)
    fw = frameworks.by_suffix(p)
    if fw is not None:
        return fw.key
    for fw in frameworks.FRAMEWORKS.values():
        if fw.explain is not None and (why := fw.explain(p)) is not None:
            raise UnknownFormatError(why)
    for fw in frameworks.FRAMEWORKS.values():
        if fw.claims is not None and fw.claims(p):
            return fw.key
    if not p.exists() and not Path(str(p) + ".index").exists():
        raise UnknownFormatError(f"{p}: no such file or checkpoint")
    raise UnknownFormatError(f"{p}: cannot tell the format from the name or the content; pass --format one of "
                             f"{list(FORMATS)}")


def discover(path, *, fmt: Optional[str] = None, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES,
             **options) -> Found:
    """Every recurrent layer of ``path`` (:class:`~compat.convert.spec.LSTMSpec`, names made unique) and every
    tensor or layer of the source (:class:`~compat.convert.spec.SourceItem`).

    ``max_tensor_bytes``: the ceiling on any one tensor read from the source, converted or carried, checked
    against its declared size before any of it is read (every framework's ``discover`` takes it).
    ``options``: the framework's own options (:attr:`compat.frameworks.Framework.options`, by ``dest``); an
    option of another framework that is given (not at its default) is refused, since it would be dropped.
    """
    if type(max_tensor_bytes) is not int or max_tensor_bytes < 1:
        raise ValueError(f"max_tensor_bytes must be a positive integer, not {max_tensor_bytes!r}")
    fw = frameworks.get(fmt) if fmt else frameworks.get(detect_format(path))
    known = frameworks.options()
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"unknown options {unknown}; known: {sorted(known)}")
    mine = {}
    foreign = []
    for dest, value in options.items():
        owner, opt = known[dest]
        if frameworks.takes(fw, dest):
            if value is not None:
                mine[dest] = value
        elif value is not None and value != opt.default:
            foreign.append((owner, opt))
    if foreign:
        flags = ", ".join(o.flag for _, o in foreign)
        owners = sorted({f.title for f, _ in foreign})
        raise UnknownFormatError(f"{path}: {flags} appl{'ies' if len(foreign) == 1 else 'y'} to {' and '.join(owners)} "
                                 f"only; this source is {fw.key} ({fw.title})")
    found = fw.discover(path, max_tensor_bytes=max_tensor_bytes, **mine)
    for s in found.specs:
        try:
            check(s)
        except SpecError as e:
            raise ConversionError(f"{path}: {e}") from None
    seen = {}
    for s in found.specs:
        if s.name in seen:
            seen[s.name] += 1
            s.name = f"{s.name}#{seen[s.name]}"
        else:
            seen[s.name] = 0
    return found
