"""HDF5 files read as hostile input: two readers behind one interface, and the checks both make.

The HDF5 C library, which h5py wraps, can segfault, loop for ever or allocate without bound on a damaged
file, and no Python ``try`` stops any of these; a forked child (:mod:`compat.formats.isolated`) contains
them, but forking a process that holds torch costs tens of milliseconds, several times what a small Keras
file takes to convert. So :func:`read_hdf5` runs ``reader(tree)`` one of two ways:

* in this process, with pyfive (a pure-Python HDF5 reader), when the file is at most
  :data:`IN_PROCESS_MAX_BYTES`. pyfive can only raise Python exceptions, and it reads the file through a
  :class:`BoundedFile` that ends every read at the end of the file and stops the whole read once it has
  read :data:`READ_AMPLIFICATION` times the file's size (plus :data:`READ_SLACK`): every loop pyfive makes
  over the file's own structures (B-tree nodes, object header continuations, heaps) reads the file, so
  a structure that points back into itself ends there instead of looping. A dataset is read only when
  its bytes are in the file as declared (contiguous inside the file, or unfiltered chunks storing at
  least its size), so what it allocates is bounded by the file's size;
* in a forked child running h5py under a memory limit and a deadline, for larger files, for compressed
  datasets (a deflate stream can expand a thousandfold, which only the child's memory limit bounds), and
  for every file the first way cannot read (pyfive raised, or a feature it lacks): the child's answer, or
  its death as one error naming the file, is final.

Either way each tree walk makes the same checks, and only :class:`~compat.errors.InputError`\\ s raised by
them are final without the child: external links, soft links and user-defined links are refused (they
read other files or point anywhere), as are external storage (any file on the machine), virtual datasets
and filters other than HDF5's built-in deflate, shuffle and fletcher32 (a plugin would be loaded); each
dataset's declared size is compared with the ceiling (``--max-tensor-bytes``), with the file's size and
with the bytes the file stores for it before any of it is read; attributes are read only up to a size and
a count.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, List, Optional, Tuple, Type

import numpy as np

from compat.errors import FileFormatError
from compat.formats.files import GiB, MiB
from compat.formats.isolated import run_isolated
from compat.formats.shapes import checked_count, format_shape

MISSING = "reading HDF5 files needs h5py (and, for speed, pyfive): pip install legacy-lstm[keras]"
IN_PROCESS_MAX_BYTES = 64 * MiB     # files above this go to the h5py child
READ_AMPLIFICATION = 4              # pyfive may read this many times the file's size, plus READ_SLACK,
READ_SLACK = MiB                    # in at most READ_CALLS + size / READ_CALL_BYTES reads (a Keras file
READ_CALLS = 20_000                 # takes under 1 x its size in one read per 80 bytes)
READ_CALL_BYTES = 16
MAX_NAMES = 100_000                 # members of one group; entries of one attribute
MAX_ITEMSIZE = 16
DEFLATE_MAX_RATIO = 1032            # deflate's largest expansion (compat.formats.zips)
CHILD_TIMEOUT = 10.0                # seconds for the h5py child, plus CHILD_SECONDS_PER_GIB per GiB of file
CHILD_SECONDS_PER_GIB = 60.0
CHILD_MEMORY = 512 * MiB            # the h5py child's memory, plus 3 x the file's size
# HDF5's built-in lossless filters (H5Zpublic.h); any other id would make the library look for a plugin.
FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32"}
FILTERS_DEFLATE = 1
EXTERNAL_FILES_MESSAGE = 0x0007     # HDF5 object header message "External Data Files"
COMPACT, CONTIGUOUS, CHUNKED, VIRTUAL = 0, 1, 2, 3  # the data layout message's classes


class UseChild(Exception):
    """The in-process reader cannot (or should not) read this file: the h5py child reads it instead."""


@dataclass(frozen=True)
class Storage:
    """How a dataset is stored, as its object header declares it."""

    layout: int                 # COMPACT, CONTIGUOUS, CHUNKED, VIRTUAL or another number
    external: bool              # External Data Files message present
    filters: Tuple[int, ...]
    stored: int                 # bytes the file stores for it (chunks: their sum)
    offset: Optional[int]       # contiguous: where its bytes start (None: never written)


class BoundedFile(io.RawIOBase):
    """A read-only file over ``data`` (the whole file, read once) whose reads end at its end and raise
    :class:`UseChild` once more than ``budget`` bytes or ``calls`` reads have been asked for."""

    def __init__(self, data: bytes, budget: int, calls: int, label: str):
        super().__init__()
        self._data, self._size, self._left, self._calls, self._pos = memoryview(data), len(data), budget, calls, 0
        self.path = label  # pyfive labels its datasets with it

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = 0 if whence == io.SEEK_SET else self._pos if whence == io.SEEK_CUR else self._size
        self._pos = max(0, base + int(offset))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        pos = self._pos
        end = self._size if n is None or n < 0 else min(pos + int(n), self._size)
        self._calls -= 1
        self._left -= max(end - pos, 0)
        if self._left < 0 or self._calls < 0:
            raise UseChild("the file's structures are read over and over (they point back into themselves)")
        if end <= pos:
            return b""
        self._pos = end
        return self._data[pos:end].tobytes()

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


# ------------------------------------------------------------------------------------------- the trees
class Tree:
    """One HDF5 file as the readers see it (see the module docstring); ``fail(message)`` raises ``error``."""

    def __init__(self, error: Type[FileFormatError]):
        self.error = error

    def fail(self, message: str):
        raise self.error(message)

    # -- to implement
    def attr(self, obj, name: str, where: str, cap: int):
        """Attribute ``name`` of ``obj`` (None when absent), refused above ``cap`` bytes or MAX_NAMES entries."""
        raise NotImplementedError

    def keys(self, group, where: str) -> List[str]:
        raise NotImplementedError

    def member(self, group, name: str, where: str):
        """``group[name]`` (None when absent) after checking that the link is a hard link inside the file."""
        raise NotImplementedError

    def is_group(self, obj) -> bool:
        raise NotImplementedError

    def is_dataset(self, obj) -> bool:
        raise NotImplementedError

    def describe(self, ds) -> Tuple[Optional[Tuple[int, ...]], np.dtype]:
        """(shape, or None for a null dataspace; dtype) of a dataset."""
        raise NotImplementedError

    def storage(self, ds) -> Storage:
        raise NotImplementedError

    def values(self, ds, nbytes: int) -> np.ndarray:
        raise NotImplementedError

    # -- shared
    def dataset(self, ds, where: str, size: int, max_tensor_bytes: int,
                expect: Optional[Callable[[Tuple[int, ...]], Optional[str]]] = None) -> np.ndarray:
        """The dataset's values after every check of the module docstring; ``expect(shape)`` returns why
        the shape cannot be the weight's (None: it can)."""
        def fail(message: str):
            self.fail(f"{where}: {message}")

        st = self.storage(ds)
        if st.layout == VIRTUAL:
            fail("is an HDF5 virtual dataset (its values would come from other files): refused")
        if st.external:
            fail("is stored in an external file (HDF5 external storage), which could be any file on this machine: "
                 "refused")
        for code in st.filters:
            if code not in FILTERS:
                fail(f"is compressed with HDF5 filter {code}, not one of the built-in {sorted(FILTERS.values())}: "
                     "refused (it would load a plugin)")
        shape, dtype = self.describe(ds)
        if dtype.kind not in "biuf" or dtype.itemsize > MAX_ITEMSIZE or dtype.fields is not None:
            fail(f"has dtype {dtype}; expected numbers")
        if shape is None:
            fail("has no shape (an HDF5 null dataspace)")
        nbytes = checked_count(shape, dtype.itemsize, fail, max_rank=32) * dtype.itemsize
        if expect is not None and (why := expect(shape)) is not None:
            fail(why)
        if nbytes > max_tensor_bytes:
            fail(f"has {nbytes:,} bytes; the ceiling is {max_tensor_bytes:,} (--max-tensor-bytes raises it)")
        if nbytes:
            compressed = FILTERS_DEFLATE in st.filters
            if st.stored > size:
                fail(f"claims {st.stored:,} stored bytes in a file of {size:,}")
            if st.layout == CONTIGUOUS:
                if st.stored != nbytes or st.offset is None or st.offset + nbytes > size:
                    fail(f"declares {nbytes:,} bytes but the file stores {st.stored:,} at byte {st.offset} of "
                         f"{size:,} (never written, or truncated)")
            elif st.layout == CHUNKED:
                if not compressed and st.stored < nbytes:
                    fail(f"declares {nbytes:,} bytes but its chunks store {st.stored:,} (never written, or truncated)")
                if compressed and nbytes > st.stored * DEFLATE_MAX_RATIO + MiB:
                    fail(f"declares {nbytes:,} bytes, more than its {st.stored:,} compressed bytes can hold")
            elif st.layout != COMPACT:
                fail(f"has an unknown HDF5 storage layout {st.layout}")
        out = np.asarray(self.values(ds, nbytes))
        if out.shape != tuple(shape) or out.dtype.itemsize != dtype.itemsize:
            fail(f"read as {out.dtype} {format_shape(out.shape)}, not its declared {dtype} {format_shape(shape)}")
        return out


class H5pyTree(Tree):
    """The tree through h5py (in the child)."""

    def __init__(self, error: Type[FileFormatError]):
        super().__init__(error)
        import h5py

        self.h5py = h5py

    def open(self, fh: BinaryIO):
        return self.h5py.File(fh, "r")

    def attr(self, obj, name: str, where: str, cap: int):
        if not obj.attrs.__contains__(name):
            return None
        aid = self.h5py.h5a.open(obj.id, name.encode())
        shape = aid.shape
        count = 1 if shape == () else (shape[0] if shape is not None and len(shape) == 1 else -1)
        if count < 0 or count > MAX_NAMES or count * aid.dtype.itemsize > cap:
            self.fail(f"{where}: attribute {name!r} of shape {shape} and dtype {aid.dtype}; expected text or a list "
                      f"of at most {MAX_NAMES:,} names under {cap:,} bytes")
        return obj.attrs[name]

    def keys(self, group, where: str) -> List[str]:
        if len(group) > MAX_NAMES:
            self.fail(f"{where}: a group of {len(group):,} members; the cap is {MAX_NAMES:,}")
        return list(group)

    def member(self, group, name: str, where: str):
        h5py = self.h5py
        link = group.get(name, getlink=True)
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            self.fail(f"{where}: {name!r} is an HDF5 external link to {link.filename!r}: refused (it would read "
                      "another file)")
        if isinstance(link, h5py.SoftLink):
            self.fail(f"{where}: {name!r} is an HDF5 soft link to {link.path!r}; Keras writes none: refused")
        if not isinstance(link, h5py.HardLink):
            self.fail(f"{where}: {name!r} is a user-defined HDF5 link: refused")
        return group[name]

    def is_group(self, obj) -> bool:
        return isinstance(obj, self.h5py.Group)

    def is_dataset(self, obj) -> bool:
        return isinstance(obj, self.h5py.Dataset)

    def describe(self, ds):
        shape = None if ds.shape is None else tuple(int(d) for d in ds.shape)
        return shape, ds.dtype

    def storage(self, ds) -> Storage:
        h5d = self.h5py.h5d
        dcpl = ds.id.get_create_plist()
        layout = dcpl.get_layout()
        layout = {h5d.COMPACT: COMPACT, h5d.CONTIGUOUS: CONTIGUOUS, h5d.CHUNKED: CHUNKED,
                  getattr(h5d, "VIRTUAL", VIRTUAL): VIRTUAL}.get(layout, 100 + layout)
        filters = tuple(dcpl.get_filter(i)[0] for i in range(min(dcpl.get_nfilters(), 32)))
        if layout == VIRTUAL or dcpl.get_external_count():
            return Storage(layout, bool(dcpl.get_external_count()), filters, 0, None)
        return Storage(layout, False, filters, ds.id.get_storage_size(),
                       ds.id.get_offset() if layout == CONTIGUOUS else None)

    def values(self, ds, nbytes: int) -> np.ndarray:
        return np.asarray(ds[()])


class PyfiveTree(Tree):
    """The tree through pyfive, in this process (pyfive's private ``_links`` and ``_get_dataobjects`` give
    the links and object headers before anything is followed; pyfive is pinned to the versions tested)."""

    def __init__(self, error: Type[FileFormatError], data: bytes):
        super().__init__(error)
        import pyfive

        self.pyfive = pyfive
        self.data = data
        size = self.size = len(data)
        self.budget = READ_AMPLIFICATION * size + READ_SLACK   # bytes of datasets it may allocate, too
        # (group path, name) -> the object: pyfive parses a group's links again each time one is opened
        self._opened: dict = {}

    def open(self, fh: BinaryIO):
        return self.pyfive.File(fh)

    def attr(self, obj, name: str, where: str, cap: int):
        attrs = obj.attrs
        if name not in attrs:
            return None
        value = attrs[name]
        items = np.asarray(value, dtype=object).ravel() if not isinstance(value, (bytes, str)) else [value]
        if len(items) > MAX_NAMES or sum(len(v) if isinstance(v, (bytes, str)) else 8 for v in items) > cap:
            self.fail(f"{where}: attribute {name!r} holds {len(items):,} values; expected text or a list of at most "
                      f"{MAX_NAMES:,} names under {cap:,} bytes")
        return value

    def keys(self, group, where: str) -> List[str]:
        links = group._links
        if len(links) > MAX_NAMES:
            self.fail(f"{where}: a group of {len(links):,} members; the cap is {MAX_NAMES:,}")
        return list(links)

    def member(self, group, name: str, where: str):
        link = group._links.get(name)
        if link is None:
            return None
        if isinstance(link, str):
            self.fail(f"{where}: {name!r} is an HDF5 soft link to {link[:200]!r}; Keras writes none: refused")
        if not isinstance(link, int):
            raise UseChild(f"a link of type {type(link).__name__}")
        key = (group.name, name)
        if key not in self._opened:
            self._opened[key] = group[name]
        return self._opened[key]

    def is_group(self, obj) -> bool:
        return isinstance(obj, self.pyfive.Group)

    def is_dataset(self, obj) -> bool:
        return isinstance(obj, self.pyfive.Dataset)

    def _header(self, ds):
        return ds.file._get_dataobjects(ds._dataobjects.offset)

    def describe(self, ds):
        shape = ds.shape
        return (None if shape is None else tuple(int(d) for d in shape)), np.dtype(ds.dtype)

    def storage(self, ds) -> Storage:
        header = self._header(ds)
        external = any(m["type"] == EXTERNAL_FILES_MESSAGE for m in header.msgs)
        filters = tuple(int(f["filter_id"]) for f in (header.filter_pipeline or ()))
        layout = ds.id.layout_class
        if layout == CHUNKED:
            index = ds.id._index or {}
            return Storage(layout, external, filters, sum(int(s.size) for s in index.values()), None)
        if layout == CONTIGUOUS:
            from pyfive.core import UNDEFINED_ADDRESS

            offset = ds.id.data_offset
            shape, dtype = self.describe(ds)
            stored = 0 if shape is None else int(np.prod(shape, dtype=object)) * dtype.itemsize
            return Storage(layout, external, filters, 0 if offset == UNDEFINED_ADDRESS else stored,
                           None if offset == UNDEFINED_ADDRESS else int(offset))
        return Storage(layout, external, filters, 0, None)

    def values(self, ds, nbytes: int) -> np.ndarray:
        st = self.storage(ds)
        if st.filters:
            raise UseChild("a compressed dataset (only the child's memory limit bounds what it inflates to)")
        self.budget -= nbytes
        if self.budget < 0:
            raise UseChild("more data than the in-process reader allocates")
        if st.layout == CONTIGUOUS and st.offset is not None:
            # its bytes, checked to lie inside the file, taken as they are (pyfive's selection machinery
            # costs more than the copy for a weight)
            shape, dtype = self.describe(ds)
            return np.frombuffer(self.data, dtype, nbytes // max(dtype.itemsize, 1), st.offset).reshape(shape).copy()
        return np.asarray(ds[()])


# ------------------------------------------------------------------------------------------ the reading
def read_hdf5(fh: BinaryIO, size: int, where: str, reader: Callable[[Tree, Any], Any], *,
              error: Type[FileFormatError]):
    """``reader(tree, root)`` over the HDF5 file ``fh`` of ``size`` bytes (see the module docstring): in this
    process with pyfive where that is bounded, else (or when that fails) in the h5py child. ``reader``'s
    result must be made of dicts, lists, strings, numbers, None and numpy arrays (the child sends it back)."""
    if size <= IN_PROCESS_MAX_BYTES and _has_pyfive():
        try:
            fh.seek(0)
            data = fh.read(size + 1)
            if len(data) != size:
                raise UseChild("the file changed size while it was read")
            tree = PyfiveTree(error, data)
            bounded = BoundedFile(data, READ_AMPLIFICATION * size + READ_SLACK, READ_CALLS + size // READ_CALL_BYTES,
                                  where)
            return reader(tree, tree.open(bounded))
        except error:
            raise
        except Exception:  # noqa: BLE001 - pyfive's own exceptions, UseChild: the child decides
            pass

    try:
        import h5py  # noqa: F401 - imported here, before the fork, so that the child starts at once
    except ImportError:
        raise error(f"{where}: {MISSING}") from None

    def child():
        tree = H5pyTree(error)
        fh.seek(0)
        with tree.open(fh) as root:
            return reader(tree, root)

    return run_isolated(child, where=where, what="HDF5 file", error=error,
                        timeout=CHILD_TIMEOUT + CHILD_SECONDS_PER_GIB * size / GiB,
                        memory_bytes=CHILD_MEMORY + 3 * size)


def _has_pyfive() -> bool:
    try:
        import pyfive  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = ["read_hdf5", "Tree", "UseChild", "IN_PROCESS_MAX_BYTES", "FILTERS"]
