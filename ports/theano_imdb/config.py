"""The tutorial's run settings: ``lstm.py``'s ``__main__`` (``train_lstm(max_epochs=100, test_size=500)``
and ``train_lstm``'s other defaults), Theano's floatX, and the short demonstration on the embedded sample."""
from __future__ import annotations

from pathlib import Path

# lstm.py __main__: train_lstm(max_epochs=100, test_size=500); the other values are train_lstm's defaults
# (saveto is the tutorial's file name, written under --out).
MAIN_DEFAULTS = dict(dim_proj=128, patience=10, max_epochs=100, dispFreq=10, decay_c=0., lrate=0.0001, n_words=10000,
                     optimizer="adadelta", encoder="lstm", saveto="lstm_model.npz", validFreq=370, saveFreq=1110,
                     maxlen=100, batch_size=16, valid_batch_size=64, noise_std=0., use_dropout=True,
                     reload_model=None, test_size=500)
TUTORIAL_FLOATX = "float64"  # Theano's default floatX
OUT_DIR = Path("runs") / "theano_imdb"
# On the embedded sample (2,000 train reviews: 125 updates an epoch) the tutorial's adadelta predicts one class
# for about 1,100 updates before it learns; these settings show it learning in a short run (its time on a
# 2-core machine is in README.md). Only train_lstm's own options (and Theano's floatX) differ; the model and
# the optimizer are the tutorial's. "epoch" stands for one pass over the training set (train_lstm's -1).
DEMO = dict(floatX="float32", max_epochs=20, validFreq="epoch", dispFreq="epoch")
FULL_RUN = "python -m ports.theano_imdb --dataset PATH/imdb.pkl"


__all__ = ["DEMO", "FULL_RUN", "MAIN_DEFAULTS", "OUT_DIR", "TUTORIAL_FLOATX"]
