"""compat.formats.isolated: however the reader in the child ends, the caller gets its result or one
FileFormatError naming the file, and nothing the child's C library prints reaches the caller's streams."""
from __future__ import annotations

import ctypes
import os
import signal
import time

import numpy as np
import pytest

from compat.errors import FileFormatError, InputError
from compat.formats.isolated import run_isolated

MiB = 1 << 20


def _run(reader, timeout=5.0, memory=256 * MiB):
    return run_isolated(reader, where="/data/m.h5", what="HDF5 file", timeout=timeout, memory_bytes=memory)


def test_results_and_arrays_come_back_exactly():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([], dtype=np.int64)
    got = _run(lambda: {"x": [a, "text", 3, None, {"b": b, "big": np.full((1000, 1000), 0.5)}]})
    np.testing.assert_array_equal(got["x"][0], a)
    assert got["x"][0].dtype == np.float32 and got["x"][1:4] == ["text", 3, None]
    assert got["x"][4]["b"].shape == (0,) and got["x"][4]["big"].sum() == 500_000.0


@pytest.mark.parametrize("reader, message", [
    (lambda: os.kill(os.getpid(), signal.SIGSEGV), r"the parser crashed on it \(SIGSEGV\)"),
    (lambda: ctypes.string_at(0), r"the parser crashed on it \(SIGSEGV\)"),
    (lambda: time.sleep(60), r"no answer within 1 s"),
    (lambda: bytearray(2 << 30), r"needs more than the 256 MiB allowed"),
    (lambda: {}["layer_names"], r"cannot read the HDF5 file: KeyError: 'layer_names'"),
    (lambda: os._exit(3), r"ended without an answer \(exit status 3\)"),
])
def test_every_death_is_one_error_naming_the_file(reader, message, capfd):
    t = time.perf_counter()
    with pytest.raises(FileFormatError, match=r"^/data/m\.h5: .*" + message):
        _run(reader, timeout=1.0)
    assert time.perf_counter() - t < 4
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_an_input_error_keeps_its_message():
    def refuse():
        raise InputError("/data/m.h5: weight 'k': is stored in an external file")

    with pytest.raises(FileFormatError, match=r"^/data/m\.h5: weight 'k': is stored in an external file$"):
        _run(refuse)


def test_what_the_child_prints_is_discarded(capfd):
    def noisy():
        os.write(2, b"HDF5-DIAG: Error detected\n")
        print("chatter")
        return 1

    assert _run(noisy) == 1
    out, err = capfd.readouterr()
    assert out == "" and err == ""
