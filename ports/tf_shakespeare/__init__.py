"""The TF cookbook's Shakespeare word LSTM (``LSTM_Model`` with legacy ``rnn_decoder``) on PyTorch.

``python -m ports.tf_shakespeare train --data-path pg100.txt`` trains as the recipe;
``python -m ports.tf_shakespeare sample --model runs/shakespeare --prime "thou art more"`` samples.
"""
from ports.tf_shakespeare.data import (build_vocab, clean_text, load_corpus, make_batches, read_text, targets_of,
                                       text_to_ids, vocab_size_of)
from ports.tf_shakespeare.model import LSTMModel, TF1VariableError
from ports.tf_shakespeare.sampling import sample, sample_ids
from ports.tf_shakespeare.config import TrainConfig
from ports.tf_shakespeare.train import load_trained, train, train_step

__all__ = ["LSTMModel", "TF1VariableError", "build_vocab", "clean_text", "load_corpus", "make_batches",
           "read_text", "targets_of", "text_to_ids", "vocab_size_of", "sample", "sample_ids", "TrainConfig",
           "load_trained", "train", "train_step"]
