"""The Theano tutorial's IMDB sentiment LSTM (DeepLearningTutorials ``code/lstm.py`` + ``code/imdb.py``).

    python -m ports.theano_imdb                      # the tutorial's __main__ run
    python -m ports.theano_imdb --dataset imdb.pkl   # on the full data set

    from ports.theano_imdb import load_data, prepare_data, load_params, LSTMClassifier, Adadelta, RMSprop, train_lstm
"""
from ports.theano_imdb.data import get_minibatches_idx, load_data, locate_dataset, prepare_data
from ports.theano_imdb.model import SEED, LSTMClassifier, init_params
from ports.theano_imdb.optimizers import SGD, Adadelta, RMSprop
from ports.theano_imdb.params_io import load_checkpoint, load_options, load_params, save_options, save_params
from ports.theano_imdb.train import pred_error, pred_probs, train_lstm
from ports.theano_imdb.unpickler import DataFileError, UnsafePickleError

__all__ = ["load_data", "prepare_data", "get_minibatches_idx", "locate_dataset", "load_params", "load_checkpoint",
           "load_options", "save_params", "save_options", "LSTMClassifier", "init_params", "SEED", "Adadelta",
           "RMSprop", "SGD", "train_lstm", "pred_error", "pred_probs", "DataFileError", "UnsafePickleError"]
