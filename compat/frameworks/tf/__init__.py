"""TensorFlow 1 (and TF 2's object-based checkpoints): everything the converter knows about TF files.

``names.py``     the one table of TF variable names across TF generations (cells, stacks, wrappers, slots)
``layout.py``    the ``tf`` gate layout (kernel [in + P, 4H], gates i, j, f, o, forget bias at run time)
``discover.py``  every recurrent layer of a checkpoint found by names and shapes; every variable accounted for
``cudnn.py``     CudnnLSTM / CudnnGRU / CudnnRNNTanh / CudnnRNNRelu opaque parameter buffers (cuDNN's layout)
``keras.py``     tf.keras layers in TF1 graphs and object-based checkpoints (``model.save_weights``), the
                latter read through their object graph (:mod:`compat.formats.tf.object_graph`)
``meta.py``      the run-time settings the variables do not store, settled from the ``.meta`` graph beside them
``model.py``     the graph around the cells (embedding lookup, projection, softmax) read from the ``.meta`` graph:
                a language model as one whole model, its node kinds in ``layers.py``
``oracle.py``    verification against reference/tf_lstm.py and, for cuDNN buffers, reference/onnx_lstm.py

The checkpoint files themselves are read by :mod:`compat.formats.tf` (V2 bundles, V1 tables, the state
file). A frozen ``GraphDef`` (``.pb``) or a SavedModel's graph is recognised and refused with what to
convert instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from compat.errors import InputError
from compat.frameworks import Framework, Option, register

# The forget bias TF's LSTM cells add at run time when the model does not set one (rnn_cell_impl.py).
TF_FORGET_BIAS_DEFAULT = 1.0
CUDNN_RNN_MODES = ("lstm", "gru", "rnn_tanh", "rnn_relu")


class TFCellError(InputError, ValueError):
    """TF variables that do not make a recurrent layer this converter can represent exactly (the message names
    the checkpoint and the variables)."""


def _ends_like_a_table(p: Path) -> bool:
    """A TF V1 checkpoint is one LevelDB-style table: it ends with the table magic 0xdb4775248b80fb57."""
    from compat.formats.files import open_regular

    with open_regular(p) as fh:
        fh.seek(0, 2)
        if fh.tell() < 8:
            return False
        fh.seek(-8, 2)
        return fh.read(8) == bytes.fromhex("57fb808b247547db")


def claims(path: Path) -> bool:
    """Whether ``path`` names a TF checkpoint (prefix, .index / .data file, V1 file or directory)."""
    from compat.formats.tf import CheckpointError, resolve_checkpoint

    if path.is_file() and not (str(path).endswith(".index") or ".data-" in path.name) and not _ends_like_a_table(path):
        return False
    try:
        resolve_checkpoint(path)
    except CheckpointError:
        return False
    return True


def _saved_model_dir(path: Path) -> Optional[Path]:
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return path
    if path.name == "saved_model.pb" and path.parent.is_dir():
        return path.parent
    return None


def explain(path: Path) -> Optional[str]:
    """What a TF file that is not a checkpoint is, and what to convert instead."""
    saved = _saved_model_dir(path)
    if saved is not None:
        variables = saved / "variables" / "variables"
        if Path(str(variables) + ".index").exists():
            return (f"{path}: a SavedModel; its weights are the checkpoint {variables} (an object-based checkpoint): "
                    f"convert that: python -m compat.convert {variables} --to OUT")
        return f"{path}: a SavedModel without its variables/ folder; its weights are not in this file"
    suffix = path.suffix.lower()
    if suffix in (".pb", ".pbtxt") and path.is_file():
        return (f"{path}: a TensorFlow GraphDef ({'text' if suffix == '.pbtxt' else 'binary'} protobuf; a frozen graph "
                "holds its weights as Const nodes of the graph, which this converter does not read): convert the "
                "checkpoint the graph was frozen from instead (the PREFIX of PREFIX.index / PREFIX.data-*, as passed "
                "to freeze_graph --input_checkpoint), or the SavedModel's variables/variables")
    if suffix == ".meta" and path.is_file():
        prefix = str(path)[:-len(".meta")]
        return (f"{path}: a MetaGraphDef (the graph, no weights): convert the checkpoint beside it, "
                f"python -m compat.convert {prefix} --to OUT")
    return None


FRAMEWORK = register(Framework(
    key="tf",
    title="TF1 checkpoints",
    package=__name__,
    suffixes=(),
    layouts=("tf",),
    aliases=("tf1",),
    options=(
        Option("--forget-bias", "forget_bias", type=float, metavar="F",
               help="TF: the LSTM cells' run-time forget_bias, which checkpoints do not store (default: TF's 1.0, "
                    "with a warning)"),
        Option("--cell-clip", "cell_clip", type=float, metavar="V", help="TF: cell_clip of LSTMCell / LSTMBlockCell"),
        Option("--proj-clip", "proj_clip", type=float, metavar="V", help="TF: proj_clip of an LSTMCell with num_proj"),
        Option("--cudnn-num-units", "cudnn_num_units", type=int, metavar="H", positive=True,
               help="TF: num_units of a cuDNN opaque buffer (read from its TF-format copy when the checkpoint has one)"),
        Option("--cudnn-num-layers", "cudnn_num_layers", type=int, metavar="L", positive=True, default=1,
               help="TF: layers of that buffer"),
        Option("--cudnn-bidirectional", "cudnn_bidirectional", action="store_true", default=False,
               help="TF: that buffer is bidirectional"),
        Option("--cudnn-num-proj", "cudnn_num_proj", type=int, metavar="P", positive=True,
               help="TF: num_proj of that buffer (a CudnnLSTM with a projection)"),
        Option("--cudnn-rnn-mode", "cudnn_rnn_mode", choices=CUDNN_RNN_MODES, metavar="MODE",
               help="TF: the cell of that buffer, one of " + ", ".join(CUDNN_RNN_MODES) + " (default: told from the "
                    "layer's scope name, cudnn_lstm, cudnn_gru, cudnn_rnn_tanh, cudnn_rnn_relu)"),
        Option("--meta", "meta", metavar="GRAPH.meta",
               help="TF: the MetaGraphDef whose graph settles what the variables do not store (forget_bias, clips, "
                    "activation, time_major, sequence_length, dropout) (default: PREFIX.meta beside the checkpoint)"),
        Option("--keras-recurrent-activation", "keras_recurrent_activation", choices=("sigmoid", "hard_sigmoid"),
               metavar="NAME",
               help="TF: recurrent_activation of tf.keras LSTM layers in the checkpoint, which it does not store "
                    "(default: tf.keras 2's sigmoid, with a warning; tf.keras of TF 1.x defaulted to hard_sigmoid)"),
    ),
    references={"tf": "reference/tf_lstm.py", "cudnn": "reference/cudnn_params.py + onnx_lstm.py",
                "tf_rnn": "reference/tf_rnn_cells.py (CudnnCompatibleGRUCell: reference/onnx_rnn.py)",
                "cudnn_rnn": "reference/cudnn_params.py", "tf_model": "reference/tf_graph.py"},
    claims=claims,
    explain=explain,
    layers="compat.frameworks.tf.layers",
))

from compat.frameworks.tf import layout  # noqa: E402,F401  (registers its layouts)

__all__ = ["FRAMEWORK", "TF_FORGET_BIAS_DEFAULT", "CUDNN_RNN_MODES", "TFCellError", "claims", "explain"]
