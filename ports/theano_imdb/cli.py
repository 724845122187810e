"""The command line of ``python -m ports.theano_imdb``: the tutorial's ``__main__``
(``train_lstm(max_epochs=100, test_size=500)``).

Every ``train_lstm`` keyword is a flag of the same name. Every file the run writes goes under ``--out``
(default ``runs/theano_imdb``). Without ``--dataset`` the data is looked for where
:mod:`ports.theano_imdb.data` says, without downloading anything (``--download`` or ``--dataset imdb``
allow the tutorial's download); when none is found the embedded sample of real reviews is used, and then,
for every option the command line does not set, the short demonstration settings of :data:`DEMO`
apply (a short run that visibly learns) and the notice says which values differ from the
tutorial's and how to run the faithful one.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compat import threads
from compat.atomic import atomic_write_text
from compat.cli import HelpFormatter, check_device, check_positive, fail, print_files, run_cli
from compat.errors import InputError
from ports.theano_imdb.config import DEMO, FULL_RUN, MAIN_DEFAULTS, OUT_DIR, TUTORIAL_FLOATX
from ports.theano_imdb.data import EMBEDDED, locate_dataset
from ports.theano_imdb.model import SEED
from ports.theano_imdb.optimizers import OPTIMIZERS
from ports.theano_imdb.params_io import npz_path, options_path
from ports.theano_imdb.train import train_lstm
from ports.theano_imdb.unpickler import DataFileError, UnsafePickleError

def build_parser() -> argparse.ArgumentParser:
    d = MAIN_DEFAULTS
    ap = argparse.ArgumentParser(
        prog="python -m ports.theano_imdb", formatter_class=HelpFormatter,
        description="Train the Theano tutorial's IMDB sentiment LSTM (DeepLearningTutorials lstm.py) in PyTorch.\n\n"
                    "With no options: a short demonstration on the embedded sample of real reviews (see the notice it\n"
                    f"prints); the tutorial's own run on its data set: {FULL_RUN}")
    ap.add_argument("--dim_proj", type=int, help=f"word embedding size and LSTM hidden units (default {d['dim_proj']})")
    ap.add_argument("--patience", type=int, help=f"validations without progress before early stop (default {d['patience']})")
    ap.add_argument("--max_epochs", type=int,
                    help=f"maximum number of epochs (default {d['max_epochs']}, the tutorial's __main__; "
                         f"{DEMO['max_epochs']} on the embedded sample)")
    ap.add_argument("--dispFreq", type=int,
                    help=f"print the cost every N updates, -1: once per epoch (default {d['dispFreq']}; "
                         "once per epoch on the embedded sample)")
    ap.add_argument("--decay_c", type=float, help=f"weight decay on the classifier U (default {d['decay_c']})")
    ap.add_argument("--lrate", type=float, help=f"learning rate, used by sgd only (default {d['lrate']})")
    ap.add_argument("--n_words", type=int, help=f"vocabulary size; rarer words map to 1 (default {d['n_words']})")
    ap.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help=f"optimizer (default {d['optimizer']})")
    ap.add_argument("--encoder", choices=["lstm"], help="encoder (default lstm, the tutorial's only one)")
    ap.add_argument("--saveto", help=f"file name of the best model under --out, or a path; '' for none "
                                     f"(default {d['saveto']})")
    ap.add_argument("--validFreq", type=int,
                    help=f"validate every N updates, -1: once per epoch (default {d['validFreq']}; "
                         "once per epoch on the embedded sample)")
    ap.add_argument("--saveFreq", type=int, help=f"save every N updates, -1: once per epoch (default {d['saveFreq']})")
    ap.add_argument("--maxlen", type=int,
                    help=f"drop training sequences this long or longer, 0: keep all (default {d['maxlen']})")
    ap.add_argument("--batch_size", type=int, help=f"training batch size (default {d['batch_size']})")
    ap.add_argument("--valid_batch_size", type=int, help=f"validation/test batch size (default {d['valid_batch_size']})")
    ap.add_argument("--dataset", help="the tutorial's imdb.pkl (or a folder holding it); 'imdb' to search "
                                      "THEANO_IMDB_DATA and the cache and then download; 'embedded' for the sample "
                                      "(default: search without downloading, else the embedded sample)")
    ap.add_argument("--download", action=argparse.BooleanOptionalAction, default=None,
                    help="download the tutorial's data set when it is not found (default: only with --dataset imdb)")
    ap.add_argument("--noise_std", type=float, help="unused, as in the tutorial (default 0)")
    ap.add_argument("--use_dropout", action=argparse.BooleanOptionalAction, default=None,
                    help="the unscaled dropout before the classifier (default on)")
    ap.add_argument("--reload_model", help="a tutorial-format .npz to start from (default: none)")
    ap.add_argument("--test_size", type=int,
                    help=f"keep this many random test examples, -1: all (default {d['test_size']})")
    ap.add_argument("--floatX", choices=["float64", "float32"],
                    help=f"Theano's floatX: the float type of parameters and computation (default {TUTORIAL_FLOATX}, "
                         f"Theano's; {DEMO['floatX']} on the embedded sample)")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="folder for every file the run writes")
    ap.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    threads.add_threads_argument(ap)
    ap.add_argument("--seed", type=int, default=SEED, help="numpy seed, the tutorial's SEED")
    ap.add_argument("--valid_portion", type=float, default=0.05, help="fraction of train held out for validation")
    ap.add_argument("--doubled_bias", action="store_true",
                    help="compute with 2 * lstm_b, as lstm.py did before May 2015")
    ap.add_argument("--reload_doubled_bias", action="store_true",
                    help="--reload_model was written by lstm.py before May 2015 (its lstm_b is doubled on load)")
    ap.add_argument("--plot", help="PNG of the error history (default: beside the model, <name>_errors.png)")
    ap.add_argument("--no-plot", dest="no_plot", action="store_true", help="write no plot")
    ap.add_argument("--summary", help="JSON summary of the run: validations, errors, timings (default: OUT/summary.json)")
    ap.add_argument("--no-progress", dest="progress", action="store_false", help="no per-epoch progress bar")
    return ap


def _under(out: Path, name):
    """A bare file name goes under --out; a path with a folder is used as given."""
    if name is None:
        return None
    p = Path(name)
    return p if p.is_absolute() or p.parent != Path(".") else out / p


def _demo_notice(applied: dict, asked: bool) -> str:
    tutorial = dict(MAIN_DEFAULTS, floatX=TUTORIAL_FLOATX)
    shown = {k: ("once per epoch" if v == "epoch" else v) for k, v in applied.items()}
    diffs = ", ".join(f"{k} {shown[k]} (tutorial: {tutorial[k]})" for k in applied)
    why = "" if asked else "No data set was given or found (nothing is downloaded unless asked), so this is "
    return (f"NOTICE: {why}a short demonstration on the embedded sample of real IMDB reviews (2,105 train reviews "
            "shorter than 100 words, 1,000 test reviews). Settings that differ from the tutorial's __main__: "
            f"{diffs}; everything else is the tutorial's. Its adadelta predicts one class (error rates stay put) "
            "for the first eight or nine epochs here, then learns. The tutorial's own run: "
            f"{FULL_RUN}")


def _main(argv=None, owns_process: bool = False) -> int:
    args = build_parser().parse_args(argv)
    check_positive(dim_proj=args.dim_proj, patience=args.patience, n_words=args.n_words, batch_size=args.batch_size,
                   valid_batch_size=args.valid_batch_size)
    for name in ("max_epochs",):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            fail(f"--{name} must be at least 0; got {getattr(args, name)}")
    for name in ("dispFreq", "validFreq", "saveFreq"):
        value = getattr(args, name)
        if value is not None and value < 1 and value != -1:
            fail(f"--{name} must be at least 1, or -1 for once per epoch; got {value}")
    check_device(args.device)
    n_threads = threads.configure_threads(args.threads, owns_process=owns_process)

    opts = {key: (default if getattr(args, key) is None else getattr(args, key))
            for key, default in MAIN_DEFAULTS.items()}
    floatX = args.floatX or TUTORIAL_FLOATX
    if opts["maxlen"] == 0:
        opts["maxlen"] = None

    # Downloads only when asked: --download, or --dataset imdb (the name of the tutorial's download).
    allow_download = args.download if args.download is not None else args.dataset == "imdb"
    try:
        source = locate_dataset(args.dataset or "imdb", allow_download=allow_download, embedded_notice=False)
    except (DataFileError, UnsafePickleError) as e:
        fail(str(e))
    demo = {}
    if source.kind == "embedded":
        given = {"floatX": args.floatX, "max_epochs": args.max_epochs, "validFreq": args.validFreq,
                 "dispFreq": args.dispFreq}
        demo = {k: v for k, v in DEMO.items() if given[k] is None}
        if "floatX" in demo:
            floatX = demo["floatX"]
        for key in ("max_epochs", "validFreq", "dispFreq"):
            if key in demo:
                opts[key] = -1 if demo[key] == "epoch" else demo[key]

    out = args.out
    opts["saveto"] = str(_under(out, opts["saveto"])) if opts["saveto"] else None
    plot = None if args.no_plot else str(_under(out, args.plot)) if args.plot else (
        str(npz_path(opts["saveto"]))[:-4] + "_errors.png" if opts["saveto"] else str(out / "errors.png"))
    summary_path = _under(out, args.summary) if args.summary else out / "summary.json"
    what = "the embedded sample" if source.kind == "embedded" else source.path
    print(f"ports.theano_imdb: the Theano tutorial's IMDB sentiment LSTM (lstm.py train_lstm) on {what}, "
          f"floatX {floatX}, {n_threads}; files go to {out}/", flush=True)
    if demo:
        print(_demo_notice(demo, asked=args.dataset == EMBEDDED), file=sys.stderr, flush=True)

    record: dict = {}
    try:
        train_lstm(dataset=source.path, floatX=floatX, device=args.device, seed=args.seed,
                   valid_portion=args.valid_portion, doubled_bias=args.doubled_bias,
                   reload_doubled_bias=args.reload_doubled_bias, plot=plot or "", progress=args.progress,
                   record=record, report_rates=True, on_step=n_threads.check, **opts)
    except (DataFileError, UnsafePickleError, ValueError, KeyError) as e:
        if isinstance(e, InputError):
            raise
        fail(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e))
    finally:
        summary = {k: v for k, v in record.items() if k != "model"}
        if summary:
            summary["options"] = dict(opts, floatX=floatX, device=args.device, seed=args.seed, threads=n_threads.count)
            atomic_write_text(summary_path, json.dumps(summary, indent=1, default=str) + "\n")
    files = []
    if opts["saveto"]:
        files += [(npz_path(opts["saveto"]), "the best parameters and error history (the tutorial's lstm_model.npz)"),
                  (options_path(opts["saveto"]), "the run's options (the tutorial's .pkl)")]
    files += [(summary_path, "every validation's error rates and timings (JSON)"),
              (record.get("plot"), "error rates per validation (PNG)")]
    print_files(files)
    return 0


def main(argv=None, *, owns_process: bool = False) -> int:
    """The program; ``owns_process``: run as ``python -m`` (it may then choose the thread count)."""
    return run_cli(lambda a: _main(a, owns_process), argv)
