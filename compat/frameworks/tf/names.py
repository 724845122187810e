"""TF variable names across TensorFlow generations: the one table the converter, ``compat.tf1`` and the TF
ports read.

A TF1 checkpoint holds variables only; what made them is told by the scope TF gives them and their names,
which changed twice (tensorflow/python/ops/rnn_cell.py up to 0.12, rnn_cell_impl.py from 1.0, the kernel /
bias names from 1.2; contrib/rnn/python/ops/lstm_ops.py, gru_ops.py; contrib/cudnn_rnn/python/ops/
cudnn_rnn_ops.py; tf.keras's layers; contrib/seq2seq/python/ops/attention_wrapper.py):

| what | scope (last part) | variables |
| --- | --- | --- |
| BasicLSTMCell | ``basic_lstm_cell`` (>= 1.0), ``BasicLSTMCell`` (<= 0.12) | ``kernel``, ``bias`` (>= 1.2); ``weights``, ``biases`` (1.0, 1.1); ``Linear/Matrix``, ``Linear/Bias`` (<= 0.12) |
| LSTMCell, LSTMBlockCell, LSTMBlockFusedCell | ``lstm_cell`` (>= 1.0), ``LSTMCell`` (<= 0.12) | the same, and ``w_i_diag``, ``w_f_diag``, ``w_o_diag``, ``projection/kernel`` (``projection/weights``); <= 0.12: ``W_0``, ``B``, ``W_I_diag``, ``W_F_diag``, ``W_O_diag``, ``W_P_0`` |
| CudnnCompatibleLSTMCell (CudnnLSTM saved by Saver) | ``cudnn_compatible_lstm_cell`` | ``kernel``, ``bias`` |
| GRUCell | ``gru_cell`` (``GRUCell`` <= 0.12) | ``gates/kernel``, ``gates/bias``, ``candidate/kernel``, ``candidate/bias`` (and the older names) |
| GRUBlockCell | ``gru_cell`` | ``w_ru``, ``b_ru``, ``w_c``, ``b_c`` |
| CudnnCompatibleGRUCell | ``cudnn_compatible_gru_cell`` | ``gates/kernel``, ``gates/bias``, ``candidate/input_projection/kernel``, ... |
| BasicRNNCell | ``basic_rnn_cell`` (``BasicRNNCell`` <= 0.12) | ``kernel``, ``bias`` (and the older names) |
| tf.keras LSTM / GRU / SimpleRNN | the layer's name (``lstm``, ``gru_1``, ...), its cell's (``lstm_cell``) in newer releases | ``kernel``, ``recurrent_kernel``, ``bias`` |
| cuDNN opaque buffer | ``cudnn_lstm``, ``cudnn_gru``, ``cudnn_rnn_tanh``, ``cudnn_rnn_relu`` | ``opaque_kernel`` (1-D) |
| AttentionWrapper | ``attention_wrapper`` around the cell's scope | ``attention_layer/kernel``, ``*_attention/query_layer/kernel``, ``attention_v``, ... |

Structure: ``multi_rnn_cell/cell_K`` (``MultiRNNCell/CellK`` <= 0.12) is layer K of a stack;
``bidirectional_rnn/fw|bw`` (``BiRNN/FW|BW`` <= 0.12) the two directions of ``bidirectional_dynamic_rnn``;
``stack_bidirectional_rnn/cell_K/bidirectional_rnn/fw|bw`` a ``stack_bidirectional_dynamic_rnn``.
Object-based checkpoints (``tf.train.Checkpoint``, ``model.save_weights`` in TF format) name a variable
by its path in the object graph, ``layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE``, beside
the serialized object graph ``_CHECKPOINTABLE_OBJECT_GRAPH``.
"""
from __future__ import annotations

import re
from typing import Mapping, Optional, Tuple

# --- LSTM cells ---------------------------------------------------------------------------------------------
# The last scope component of each LSTM cell and the cell it names.
LSTM_CELL_SCOPES = {
    "basic_lstm_cell": "BasicLSTMCell",
    "BasicLSTMCell": "BasicLSTMCell",
    "lstm_cell": "LSTMCell",
    "LSTMCell": "LSTMCell",
    "cudnn_compatible_lstm_cell": "CudnnLSTM",
}
# (kernel, bias) of an LSTM cell by generation: >= 1.2, 1.0-1.1, BasicLSTMCell <= 0.12, LSTMCell <= 0.12.
KERNEL_BIAS: Tuple[Tuple[str, str], ...] = (("kernel", "bias"), ("weights", "biases"), ("Linear/Matrix", "Linear/Bias"),
                                            ("W_0", "B"))
PEEPHOLES = (("w_i_diag", "w_f_diag", "w_o_diag"), ("W_I_diag", "W_F_diag", "W_O_diag"))
PROJECTIONS = ("projection/kernel", "projection/weights", "W_P_0")

# BasicLSTMCell's (kernel, bias) by TF generation, as ptb_word_lm's checkpoints hold them.
GENERATIONS = ("0.12", "1.0", "1.2")
BASIC_LSTM_CELL = {
    "0.12": ("MultiRNNCell/Cell{k}/BasicLSTMCell", "Linear/Matrix", "Linear/Bias"),
    "1.0": ("multi_rnn_cell/cell_{k}/basic_lstm_cell", "weights", "biases"),
    "1.2": ("multi_rnn_cell/cell_{k}/basic_lstm_cell", "kernel", "bias"),
}

# --- the other recurrent cells: GRUCell, GRUBlockCell, CudnnCompatibleGRUCell and BasicRNNCell are converted
# (compat/frameworks/tf/gru.py reads their variables); the rest are found and listed, not converted yet ----------
OTHER_CELL_SCOPES = {
    "gru_cell": "GRUCell",
    "GRUCell": "GRUCell",
    "cudnn_compatible_gru_cell": "CudnnCompatibleGRUCell",
    "basic_rnn_cell": "BasicRNNCell",
    "BasicRNNCell": "BasicRNNCell",
    "gru_block_cell": "GRUBlockCell",
    "ugrnn_cell": "UGRNNCell",
    "nas_rnn": "NASCell",
    "layer_norm_basic_lstm_cell": "LayerNormBasicLSTMCell",
    "glstm_cell": "GLSTMCell",
    "coupled_input_forget_gate_lstm_cell": "CoupledInputForgetGateLSTMCell",
    "time_freq_lstm_cell": "TimeFreqLSTMCell",
    "grid_lstm_cell": "GridLSTMCell",
    "conv_lstm_cell": "ConvLSTMCell",
    "intersection_rnn_cell": "IntersectionRNNCell",
    "phased_lstm_cell": "PhasedLSTMCell",
    "indy_lstm_cell": "IndyLSTMCell",
    "indy_gru_cell": "IndyGRUCell",
    "sru_cell": "SRUCell",
}

# --- wrappers whose semantics the converter cannot honour ------------------------------------------------
# A cell under one of these scopes is not a plain cell: the wrapper feeds it concat(x, attention) and
# computes more around it (contrib/seq2seq attention_wrapper.py AttentionWrapper.call; contrib/rnn
# rnn_cell.py AttentionCellWrapper).
WRAPPER_SCOPES = {
    "attention_wrapper": "AttentionWrapper",
    "AttentionWrapper": "AttentionWrapper",
    "attention_cell_wrapper": "AttentionCellWrapper",
    "AttentionCellWrapper": "AttentionCellWrapper",
    "highway_wrapper": "HighwayWrapper",
}

# --- tf.keras layers in TF1 graphs ----------------------------------------------------------------------
KERAS_RECURRENT = ("kernel", "recurrent_kernel", "bias")
KERAS_CELL_SCOPES = ("lstm_cell", "gru_cell", "simple_rnn_cell")

# --- cuDNN opaque buffers ---------------------------------------------------------------------------------
OPAQUE_NAME = "opaque_kernel"
# The default scope of each cuDNN layer (cudnn_rnn.py: the layer's name is its class name in snake case).
CUDNN_LAYER_MODES = {"cudnn_lstm": "lstm", "cudnn_gru": "gru", "cudnn_rnn_tanh": "rnn_tanh", "cudnn_rnn_relu": "rnn_relu"}

# --- object-based checkpoints ----------------------------------------------------------------------------
OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"

# --- optimizer slots and training bookkeeping ----------------------------------------------------------------
_SLOT = re.compile(r"/(Adam|Adam_\d+|Momentum|Adagrad|Adadelta|Adadelta_\d+|RMSProp|RMSProp_\d+|Ftrl|Ftrl_\d+|"
                   r"ExponentialMovingAverage|AdamW|AdamW_\d+|accumulator|accum|slot_\w+)$")
OPTIMIZER_SLOT_SUFFIXES = ("/Adam", "/Adam_1", "/Momentum", "/Adagrad", "/RMSProp", "/RMSProp_1",
                           "/ExponentialMovingAverage")


def is_slot(name: str) -> bool:
    """An optimizer slot or moving average of a variable (``.../kernel/Adam``), which is not a weight."""
    # object-based checkpoints: a legacy optimizer's slots hang under the variable (.OPTIMIZER_SLOT), a Keras 2.11+
    # optimizer's under the optimizer object (optimizer/_variables/N, model/optimizer/... in tf.train.Checkpoint)
    return bool(_SLOT.search("/" + name)) or "/.OPTIMIZER_SLOT/" in name or "optimizer" in name.split("/")[:-1]


def is_bookkeeping(name: str) -> bool:
    """Optimizer slots and training bookkeeping (global_step, the lr variable, beta powers, save counters)."""
    last = name.rsplit("/", 1)[-1]
    return (is_slot(name) or name.endswith(OPTIMIZER_SLOT_SUFFIXES) or last in ("global_step", "lr")
            or re.fullmatch(r"Variable(_\d+)?", last) is not None
            or last.startswith(("beta1_power", "beta2_power")) or name.startswith("save_counter/")
            or name == OBJECT_GRAPH)


def basic_lstm_cell_variables(variables: Mapping[str, object], cell_scope: str) -> Tuple[object, object, Tuple[str, str]]:
    """A BasicLSTMCell's (kernel, bias) under ``cell_scope`` in any TF generation's names.

    Returns ``(kernel, bias, (kernel_name, bias_name))``. Raises KeyError naming the candidates tried.
    """
    scope = cell_scope.rstrip("/")
    for kernel_name, bias_name in KERNEL_BIAS[:3]:
        k, b = f"{scope}/{kernel_name}", f"{scope}/{bias_name}"
        if k in variables and b in variables:
            return variables[k], variables[b], (k, b)
    tried = [f"{scope}/{k}" + " + " + f"{scope}/{b}" for k, b in KERNEL_BIAS[:3]]
    near = sorted(n for n in variables if n.startswith(scope))[:6]
    raise KeyError(f"no BasicLSTMCell variables under {scope!r}; tried {tried}"
                   + (f"; names under that scope: {near}" if near else ""))


def wrapper_of(scope: str) -> Optional[str]:
    """The wrapper class whose scope encloses ``scope`` (None: a plain cell)."""
    for part in scope.split("/"):
        if part in WRAPPER_SCOPES:
            return WRAPPER_SCOPES[part]
    return None


def other_cell_of(name: str) -> Optional[Tuple[str, str]]:
    """(scope, cell class) when ``name`` is a variable of a recurrent cell other than the LSTM cells."""
    parts = name.split("/")
    for depth in range(len(parts) - 1, 0, -1):
        if parts[depth - 1] in OTHER_CELL_SCOPES:
            return "/".join(parts[:depth]), OTHER_CELL_SCOPES[parts[depth - 1]]
    return None


__all__ = ["LSTM_CELL_SCOPES", "KERNEL_BIAS", "PEEPHOLES", "PROJECTIONS", "GENERATIONS", "BASIC_LSTM_CELL",
           "OTHER_CELL_SCOPES", "WRAPPER_SCOPES", "KERAS_RECURRENT", "KERAS_CELL_SCOPES", "OPAQUE_NAME",
           "CUDNN_LAYER_MODES", "OBJECT_GRAPH", "VARIABLE_VALUE", "OPTIMIZER_SLOT_SUFFIXES", "is_slot",
           "is_bookkeeping", "basic_lstm_cell_variables", "wrapper_of", "other_cell_of"]
