"""ptb_word_lm.py (tensorflow/models tutorials/rnn/ptb, Zaremba et al. 2014) in PyTorch, with its numbers.

    from ports.tf_ptb import Config, PTBModel, ptb_raw_data, ptb_iterator, train_step
    config = Config.preset("small")
    model = PTBModel(config, is_training=True)
    model.load_tf1_variables("path/to/model.ckpt")      # optional: TF1 weights, any TF generation

CLI: ``python -m ports.tf_ptb --model small --data-path DIR``. See docs/migration/tf1.md.
"""
from .config import PRESETS, Config
from .model import PTBModel, TFVariableError
from .data import PTBDataError, epoch_size, ptb_iterator, ptb_producer, ptb_raw_data, ptb_vocabulary
from .train import make_optimizer, run_epoch, train_step

__all__ = ["Config", "PRESETS", "PTBModel", "TFVariableError", "ptb_raw_data", "ptb_vocabulary", "ptb_iterator",
           "ptb_producer", "epoch_size", "PTBDataError", "make_optimizer", "train_step", "run_epoch"]
