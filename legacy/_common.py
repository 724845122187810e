"""Shared set-up of the legacy recording scripts: environment, TensorFlow in graph mode, npz output."""
from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def import_tf():
    """TensorFlow with the TF1 graph-mode API, single-threaded and deterministic."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    tf.get_logger().setLevel("ERROR")
    return tf


def tf_session(tf, graph):
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    return tf.compat.v1.Session(graph=graph, config=config)


def import_theano_lineage(which: str):
    """``("pytensor", module, tensor_module, softmax)`` or the same for Theano 1.0.5."""
    if which == "pytensor":
        # PyTensor 3 compiles with Numba by default (minutes per function on a small machine); the
        # Python/C linker of FAST_COMPILE runs the same graph with numpy kernels.
        os.environ.setdefault("PYTENSOR_FLAGS", "mode=FAST_COMPILE")
        import pytensor
        import pytensor.tensor as pt
        from pytensor.tensor.special import softmax as special_softmax

        def softmax(z):
            # Theano's tensor.nnet.softmax is row-wise; PyTensor's special.softmax defaults to axis=None,
            # a softmax over every element of the matrix.
            return special_softmax(z, axis=-1)

        return pytensor, pt, softmax
    # Theano's compiled scan predates Python 3.11: block it so the pure-Python scan runs.
    sys.modules.setdefault("theano.scan_module.scan_perform_ext", None)
    # FAST_COMPILE: numpy implementations instead of compiling a C module per op (minutes each here).
    os.environ.setdefault("THEANO_FLAGS", "blas.ldflags=-lopenblas,mode=FAST_COMPILE")
    import theano
    import theano.tensor as tt

    return theano, tt, tt.nnet.softmax


def versions() -> dict:
    out = {"python": sys.version.split()[0], "date": datetime.date.today().isoformat()}
    for name in ("numpy", "tensorflow", "tf_keras", "pytensor", "theano", "torch"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    return out


def store_case(arrays: dict, index: int, case: dict, outputs: dict, **config_extra) -> None:
    """Put one recorded case into ``arrays`` as ``c{index}/config``, ``c{index}/in/*``, ``c{index}/out/*``."""
    import numpy as np

    arrays[f"c{index}/config"] = np.array(json.dumps({**case["config"], **config_extra}))
    for k, v in case.items():
        if k != "config":
            arrays[f"c{index}/in/{k}"] = v
    for k, v in outputs.items():
        arrays[f"c{index}/out/{k}"] = v


def write_golden(path, arrays: dict, n_cases: int) -> None:
    """Write the recorded cases with the framework versions into one compressed npz."""
    import numpy as np

    arrays["versions"] = np.array(json.dumps(versions()))
    np.savez_compressed(path, **arrays)
    print("wrote", path, n_cases, "cases")


def fresh_folder(path) -> None:
    """An empty folder at ``path`` for a recorder's files (what a previous recording left there is removed)."""
    import shutil

    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def write_expected(folder, arrays: dict) -> None:
    """``folder/expected.npz``: the recorded arrays with the framework versions."""
    import numpy as np

    arrays["versions"] = np.array(json.dumps(versions()))
    np.savez_compressed(Path(folder) / "expected.npz", **arrays)
    print("wrote", folder)
