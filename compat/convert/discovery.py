"""Which reader a source file needs, and every LSTM it holds.

``--format`` names the reader; without it the format is told from the path: a TF checkpoint (a
directory with a ``checkpoint`` file, a prefix with ``.index``, a ``.data-*`` or ``.index`` file, a V1
file), ``.h5`` / ``.hdf5`` / ``.keras`` (Keras), ``.onnx``, ``.npz`` (the Theano tutorial) and
``.caffemodel``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from compat.convert.spec import LSTMSpec
from compat.errors import InputError
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES

FORMATS = ("tf1", "keras", "onnx", "theano", "caffe")


class UnknownFormatError(InputError, ValueError):
    """A source whose format cannot be told (and none was given), or an option that does not apply to it."""


class ConversionError(InputError, ValueError):
    """An LSTM found in a file whose weights do not make one LSTM."""


def _ends_like_a_table(p: Path) -> bool:
    """A TF V1 checkpoint is one LevelDB-style table: it ends with the table magic 0xdb4775248b80fb57."""
    from compat.formats.files import open_regular

    with open_regular(p) as fh:
        fh.seek(0, 2)
        if fh.tell() < 8:
            return False
        fh.seek(-8, 2)
        return fh.read(8) == bytes.fromhex("57fb808b247547db")


def _is_tf_checkpoint(path: Path) -> bool:
    """Whether ``path`` names a TF checkpoint (prefix, .index / .data file, V1 file or directory)."""
    from compat.formats.tf import CheckpointError, resolve_checkpoint

    try:
        resolve_checkpoint(path)
    except CheckpointError:
        return False
    return True


def detect_format(path) -> str:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".h5", ".hdf5", ".keras"):
        return "keras"
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".npz":
        return "theano"
    if suffix == ".caffemodel":
        return "caffe"
    if p.is_file() and not (str(p).endswith(".index") or ".data-" in p.name) and not _ends_like_a_table(p):
        raise UnknownFormatError(f"{p}: cannot tell the format from the name or the content; pass --format one of "
                                 f"{list(FORMATS)}")
    if _is_tf_checkpoint(p):
        return "tf1"
    if not p.exists() and not Path(str(p) + ".index").exists():
        raise UnknownFormatError(f"{p}: no such file or checkpoint")
    raise UnknownFormatError(f"{p}: cannot tell the format from the name; pass --format one of {list(FORMATS)}")


def discover(path, *, fmt: Optional[str] = None, forget_bias: Optional[float] = None,
             cell_clip: Optional[float] = None, proj_clip: Optional[float] = None,
             prototxt: Optional[str] = None, theano_doubled_bias: bool = False,
             cudnn_num_units: Optional[int] = None, cudnn_num_layers: int = 1,
             cudnn_bidirectional: bool = False, keras_version: Optional[str] = None,
             max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> List[LSTMSpec]:
    """Every LSTM in ``path``, each an :class:`LSTMSpec` (names made unique).

    ``max_tensor_bytes``: the ceiling on one tensor of a file that can declare more than it holds (Keras,
    ONNX, .npz), checked before the tensor is read."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise UnknownFormatError(f"unknown format {fmt!r}; known: {list(FORMATS)}")
    # Options of one format given for another would be dropped: refuse them.
    by_format = {"tf1": {"--forget-bias": forget_bias, "--cell-clip": cell_clip, "--proj-clip": proj_clip,
                         "--cudnn-num-units": cudnn_num_units,
                         "--cudnn-num-layers": None if cudnn_num_layers == 1 else cudnn_num_layers,
                         "--cudnn-bidirectional": cudnn_bidirectional or None},
                 "caffe": {"--prototxt": prototxt}, "theano": {"--theano-doubled-bias": theano_doubled_bias or None},
                 "keras": {"--keras-version": keras_version}}
    for owner, opts in by_format.items():
        given = [k for k, v in opts.items() if v is not None]
        if fmt != owner and given:
            what = {"tf1": "TF1 checkpoints", "caffe": "Caffe files", "theano": "Theano archives",
                    "keras": "Keras files"}[owner]
            raise UnknownFormatError(f"{path}: {', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to {what} "
                                     f"only; this source is {fmt}")
    if fmt == "tf1":
        from compat.convert import tf1

        specs = tf1.discover(path, forget_bias=forget_bias, cell_clip=cell_clip, proj_clip=proj_clip,
                             cudnn_num_units=cudnn_num_units, cudnn_num_layers=cudnn_num_layers,
                             cudnn_bidirectional=cudnn_bidirectional)
    elif fmt == "keras":
        from compat.convert import keras

        specs = keras.discover(path, keras_version=keras_version, max_tensor_bytes=max_tensor_bytes)
    elif fmt == "onnx":
        from compat.convert import onnx

        specs = onnx.discover(path, max_tensor_bytes=max_tensor_bytes)
    elif fmt == "theano":
        from compat.convert import theano

        specs = theano.discover(path, doubled_bias=theano_doubled_bias, max_tensor_bytes=max_tensor_bytes)
    else:
        from compat.convert import caffe

        specs = caffe.discover(path, prototxt=prototxt)
    from compat.convert.spec import SpecError, check

    for s in specs:
        try:
            check(s)
        except SpecError as e:
            raise ConversionError(f"{path}: {e}") from None
    seen = {}
    for s in specs:
        if s.name in seen:
            seen[s.name] += 1
            s.name = f"{s.name}#{seen[s.name]}"
        else:
            seen[s.name] = 0
    return specs
