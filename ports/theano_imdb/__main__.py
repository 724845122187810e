"""``python -m ports.theano_imdb``: the tutorial's ``__main__`` (``train_lstm(max_epochs=100, test_size=500)``).

Every ``train_lstm`` keyword is a flag of the same name. Without ``--dataset`` the data is located as
:mod:`ports.theano_imdb.data` describes; when that ends at the embedded sample and neither
``--max_epochs`` nor ``--validFreq`` is given, the run is shortened (``EMBEDDED_MAX_EPOCHS`` epochs,
validation once per epoch) so that it finishes in a few minutes on a CPU, and says so.
"""
from __future__ import annotations

import argparse
import json
import sys

from ports.theano_imdb.data import EMBEDDED, locate_dataset
from ports.theano_imdb.model import SEED
from ports.theano_imdb.optimizers import OPTIMIZERS
from ports.theano_imdb.train import train_lstm
from ports.theano_imdb.unpickler import DataFileError, UnsafePickleError

# lstm.py __main__: train_lstm(max_epochs=100, test_size=500); the other values are train_lstm's defaults.
MAIN_DEFAULTS = dict(dim_proj=128, patience=10, max_epochs=100, dispFreq=10, decay_c=0., lrate=0.0001, n_words=10000,
                     optimizer="adadelta", encoder="lstm", saveto="lstm_model.npz", validFreq=370, saveFreq=1110,
                     maxlen=100, batch_size=16, valid_batch_size=64, noise_std=0., use_dropout=True,
                     reload_model=None, test_size=500)
EMBEDDED_MAX_EPOCHS = 2


def build_parser() -> argparse.ArgumentParser:
    d = MAIN_DEFAULTS
    ap = argparse.ArgumentParser(
        prog="python -m ports.theano_imdb",
        description="Train the Theano tutorial's IMDB sentiment LSTM (DeepLearningTutorials lstm.py) in PyTorch.")
    ap.add_argument("--dim_proj", type=int, help=f"word embedding size and LSTM hidden units (default {d['dim_proj']})")
    ap.add_argument("--patience", type=int, help=f"validations without progress before early stop (default {d['patience']})")
    ap.add_argument("--max_epochs", type=int, help=f"maximum number of epochs (default {d['max_epochs']}, the tutorial's __main__)")
    ap.add_argument("--dispFreq", type=int, help=f"print the cost every N updates (default {d['dispFreq']})")
    ap.add_argument("--decay_c", type=float, help=f"weight decay on the classifier U (default {d['decay_c']})")
    ap.add_argument("--lrate", type=float, help=f"learning rate, used by sgd only (default {d['lrate']})")
    ap.add_argument("--n_words", type=int, help=f"vocabulary size; rarer words map to 1 (default {d['n_words']})")
    ap.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help=f"optimizer (default {d['optimizer']})")
    ap.add_argument("--encoder", choices=["lstm"], help="encoder (the tutorial's only one: lstm)")
    ap.add_argument("--saveto", help=f"where the best model is saved, '' for nowhere (default {d['saveto']})")
    ap.add_argument("--validFreq", type=int, help=f"validate every N updates, -1: once per epoch (default {d['validFreq']})")
    ap.add_argument("--saveFreq", type=int, help=f"save every N updates, -1: once per epoch (default {d['saveFreq']})")
    ap.add_argument("--maxlen", type=int, help=f"drop training sequences this long or longer, 0: keep all (default {d['maxlen']})")
    ap.add_argument("--batch_size", type=int, help=f"training batch size (default {d['batch_size']})")
    ap.add_argument("--valid_batch_size", type=int, help=f"validation/test batch size (default {d['valid_batch_size']})")
    ap.add_argument("--dataset", help="path to the tutorial's imdb.pkl (or a directory holding it), 'imdb' to "
                                      "search THEANO_IMDB_DATA, the cache and the download, or 'embedded'")
    ap.add_argument("--noise_std", type=float, help="unused, as in the tutorial (default 0)")
    ap.add_argument("--use_dropout", action=argparse.BooleanOptionalAction, default=None,
                    help="the unscaled dropout before the classifier (default on)")
    ap.add_argument("--reload_model", help="a tutorial-format .npz to start from")
    ap.add_argument("--test_size", type=int, help=f"keep this many random test examples, -1: all (default {d['test_size']})")
    ap.add_argument("--floatX", choices=["float64", "float32"], default="float64",
                    help="Theano's floatX: the float type of parameters and computation (default float64, Theano's)")
    ap.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    ap.add_argument("--seed", type=int, default=SEED, help=f"numpy seed, the tutorial's SEED (default {SEED})")
    ap.add_argument("--valid_portion", type=float, default=0.05, help="fraction of train held out for validation (default 0.05)")
    ap.add_argument("--doubled_bias", action="store_true",
                    help="compute with 2 * lstm_b, as lstm.py did before May 2015")
    ap.add_argument("--reload_doubled_bias", action="store_true",
                    help="--reload_model was written by lstm.py before May 2015 (its lstm_b is doubled on load)")
    ap.add_argument("--plot", help="PNG of the error history (default: beside --saveto, *_errors.png)")
    ap.add_argument("--summary", help="write a JSON summary of the run (validations, errors, timings) here")
    ap.add_argument("--no-download", dest="download", action="store_false",
                    help="do not try to download the data set")
    ap.add_argument("--no-progress", dest="progress", action="store_false", help="no per-epoch progress bar")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    opts = {}
    for key, default in MAIN_DEFAULTS.items():
        value = getattr(args, key)
        opts[key] = default if value is None else value
    if opts["maxlen"] == 0:
        opts["maxlen"] = None
    if opts["saveto"] == "":
        opts["saveto"] = None

    try:
        source = locate_dataset(args.dataset or "imdb", allow_download=False if not args.download else None)
    except (DataFileError, UnsafePickleError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if source.kind == "embedded" and args.dataset != EMBEDDED and args.max_epochs is None and args.validFreq is None:
        opts["max_epochs"] = EMBEDDED_MAX_EPOCHS
        opts["validFreq"] = -1
        print(f"NOTICE: embedded sample: running {EMBEDDED_MAX_EPOCHS} epochs with validation once per epoch so that "
              "the run ends in minutes (pass --max_epochs / --validFreq for the tutorial's schedule).", file=sys.stderr)
    record = {}
    try:
        train_lstm(dataset=source.path, floatX=args.floatX, device=args.device, seed=args.seed,
                   valid_portion=args.valid_portion, doubled_bias=args.doubled_bias,
                   reload_doubled_bias=args.reload_doubled_bias, plot=args.plot, progress=args.progress,
                   record=record, **opts)
    except (DataFileError, UnsafePickleError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if args.summary:
            from compat.atomic import atomic_write_text

            summary = {k: v for k, v in record.items() if k != "model"}
            summary["options"] = dict(opts, floatX=args.floatX, device=args.device, seed=args.seed)
            atomic_write_text(args.summary, json.dumps(summary, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
