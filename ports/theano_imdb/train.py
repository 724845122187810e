"""lstm.py ``train_lstm``: the tutorial's training loop, schedule, early stopping and printed lines."""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from compat.step_graph import DeviceLog
from ports.theano_imdb.data import get_minibatches_idx, load_data, locate_dataset, prepare_data
from ports.theano_imdb.model import SEED, LSTMClassifier
from ports.theano_imdb.optimizers import OPTIMIZERS, make_optimizer
from ports.theano_imdb.params_io import load_options, load_params, npz_path, options_path, save_options, save_params


#: Updates whose costs the loop keeps on the device at most before it reads them.
COST_LOG_CAPACITY = 64


def pred_error(model: LSTMClassifier, data, iterator, floatX="float64") -> np.floating:
    """lstm.py ``pred_error``: 1 - the fraction of correctly classified samples (eval path)."""
    correct = 0
    labels = np.array(data[1])
    for _, index in iterator:
        x, mask, _ = prepare_data([data[0][t] for t in index], labels[index], maxlen=None, dtype=floatX)
        preds = model.predict(x, mask).cpu().numpy()
        correct += int((preds == labels[index]).sum())
    return 1. - np.asarray(correct, dtype=floatX) / len(data[0])


def pred_probs(model: LSTMClassifier, data, iterator, floatX="float64") -> np.ndarray:
    """lstm.py ``pred_probs``: the probabilities of every sample of ``data``, [n, ydim]."""
    probs = np.zeros((len(data[0]), model.ydim), dtype=floatX)
    labels = np.array(data[1])
    for _, index in iterator:
        x, mask, _ = prepare_data([data[0][t] for t in index], labels[index], maxlen=None, dtype=floatX)
        probs[index, :] = model.predict_proba(x, mask).cpu().numpy()
    return probs


def _optimizer_name(optimizer) -> str:
    if isinstance(optimizer, str):
        return optimizer
    name = getattr(optimizer, "tutorial_name", getattr(optimizer, "__name__", None))
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}: the tutorial has {sorted(OPTIMIZERS)}")
    return name


def _plot(path, record) -> bool:
    from compat.plots import save_curves

    ups = record["valid_updates"]
    if not ups:
        return False
    return save_curves(path, {"train": (ups, record["train_errs"]), "valid": (ups, record["valid_errs"]),
                       "test": (ups, record["test_errs"])},
                title="Theano IMDB LSTM: error rates", xlabel="update", ylabel="error rate")


def train_lstm(
    dim_proj: int = 128,  # word embedding dimension and number of LSTM hidden units
    patience: int = 10,  # number of validations without progress before early stop
    max_epochs: int = 5000,
    dispFreq: int = 10,  # print the training cost every N updates
    decay_c: float = 0.,  # weight decay on the classifier's U
    lrate: float = 0.0001,  # learning rate for sgd (not used by adadelta and rmsprop)
    n_words: int = 10000,  # vocabulary size
    optimizer: Union[str, Any] = "adadelta",  # adadelta, rmsprop or sgd
    encoder: str = "lstm",
    saveto: Optional[str] = "lstm_model.npz",  # the best model is saved there
    validFreq: int = 370,  # validate after this many updates (-1: once per epoch)
    saveFreq: int = 1110,  # save after this many updates (-1: once per epoch)
    maxlen: Optional[int] = 100,  # sequences this long or longer are dropped
    batch_size: int = 16,
    valid_batch_size: int = 64,
    dataset: str = "imdb",  # "imdb" (located as ports.theano_imdb.data describes), "embedded", or a path
    noise_std: float = 0.,  # unused, as in the tutorial
    use_dropout: bool = True,
    reload_model: Optional[Union[str, bool]] = None,  # a tutorial-format .npz to start from
    test_size: int = -1,  # if > 0, keep only this many (random) test examples
    *,
    floatX: str = "float64",
    device: str = "cpu",
    seed: int = SEED,
    valid_portion: float = 0.05,
    doubled_bias: bool = False,
    reload_doubled_bias: bool = False,
    plot: Optional[str] = None,
    progress: bool = True,
    record: Optional[Dict[str, Any]] = None,
    report_rates: bool = False,
    out=None,
    on_step: Optional[Callable[[], None]] = None,
) -> Tuple[float, float, float]:
    """Train the tutorial's classifier as lstm.py ``train_lstm``; returns ``(train_err, valid_err, test_err)``.

    The keywords before ``*`` are the tutorial's, with its defaults (its ``__main__`` runs
    ``train_lstm(max_epochs=100, test_size=500)``). Extra keywords: ``floatX`` (Theano's float type),
    ``device``, ``seed`` (numpy's, the tutorial's SEED = 123; it also seeds the dropout masks),
    ``valid_portion`` (hard-coded 0.05 in the tutorial), ``doubled_bias`` (train with the pre-May-2015
    ``2 * lstm_b``), ``reload_doubled_bias`` (``reload_model`` was written by that version),
    ``plot`` (PNG of the error history; default beside ``saveto``; "" for none), ``progress``, ``record`` (a
    dict filled with the run's history), ``report_rates`` (after each of the tutorial's ``Train ... Valid ...
    Test ...`` lines, the same error rates labelled, in percent, with the accuracies), ``out`` (stream of the
    printed lines; stdout), ``on_step`` (called after every update; the CLI follows the machine's load there).
    """
    out = out or sys.stdout

    def say(*args, end="\n"):
        print(*args, end=end, file=out, flush=True)

    opt_name = _optimizer_name(optimizer)
    if encoder != "lstm":
        raise ValueError(f"encoder {encoder!r}: the tutorial's only encoder is 'lstm'")
    if patience < 1:
        raise ValueError(f"patience must be at least 1 (got {patience}): lstm.py compares with "
                         "history_errs[:-patience], which is empty for 0")
    floatX = str(np.dtype(floatX))
    dtype = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16}[floatX]
    if isinstance(reload_model, bool):
        # lstm.py reads the hard-coded 'lstm_model.npz' whatever reload_model says; here a path is used
        # as given and True means the file saveto names.
        reload_model = str(npz_path(saveto or "lstm_model.npz")) if reload_model else None

    model_options = dict(dim_proj=dim_proj, patience=patience, max_epochs=max_epochs, dispFreq=dispFreq,
                         decay_c=decay_c, lrate=lrate, n_words=n_words, optimizer=opt_name, encoder=encoder,
                         saveto=saveto, validFreq=validFreq, saveFreq=saveFreq, maxlen=maxlen, batch_size=batch_size,
                         valid_batch_size=valid_batch_size, dataset=dataset, noise_std=noise_std,
                         use_dropout=use_dropout, reload_model=reload_model, test_size=test_size)
    say("model options", model_options)
    model_options.update(floatX=floatX, seed=seed, valid_portion=valid_portion, doubled_bias=doubled_bias)

    # lstm.py seeds numpy's global generator once (SEED = 123) and then draws, in order: the validation
    # split, the test subset, the initial weights, and each epoch's shuffle. One RandomState replays that.
    rng = np.random.RandomState(seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)

    say("Loading data")
    source = locate_dataset(dataset)
    train, valid, test = load_data(source.path, n_words=n_words, valid_portion=valid_portion, maxlen=maxlen,
                                   rng=rng, verbose=False)
    if test_size > 0:
        # The test set is sorted by length; keep a random selection of test_size examples.
        idx = np.arange(len(test[0]))
        rng.shuffle(idx)
        idx = idx[:test_size]
        test = ([test[0][n] for n in idx], [test[1][n] for n in idx])
    if len(train[0]) == 0:
        raise ValueError(f"no training sequence is shorter than maxlen={maxlen} in {source.path}")

    ydim = int(np.max(train[1])) + 1
    model_options["ydim"] = ydim

    say("Building model")
    model = LSTMClassifier(n_words, dim_proj, ydim, use_dropout=use_dropout, doubled_bias=doubled_bias, dtype=dtype,
                           device=device, rng=rng, generator=generator)
    if reload_model:
        opts_file = options_path(reload_model)
        if opts_file.exists():
            saved = load_options(opts_file)
            for key in ("dim_proj", "n_words", "ydim"):
                if key in saved and saved[key] != model_options[key]:
                    raise ValueError(f"{reload_model}: saved with {key}={saved[key]}, this run has {model_options[key]}")
        params = load_params(reload_model, model.numpy_params(), doubled_bias=reload_doubled_bias)
        model.load_numpy_params(params)
        say(f"Reloaded parameters from {reload_model}")

    opt = make_optimizer(opt_name, model.parameters(), lrate)

    say("Optimization")
    kf_valid = get_minibatches_idx(len(valid[0]), valid_batch_size)
    kf_test = get_minibatches_idx(len(test[0]), valid_batch_size)
    say("%d train examples" % len(train[0]))
    say("%d valid examples" % len(valid[0]))
    say("%d test examples" % len(test[0]))

    history_errs: List[List[float]] = []
    best_p = None
    bad_counter = 0
    rec = record if record is not None else {}
    rec.update(dataset=source.path, dataset_kind=source.kind, n_train=len(train[0]), n_valid=len(valid[0]),
               n_test=len(test[0]), valid_updates=[], valid_epochs=[], train_errs=[], valid_errs=[], test_errs=[],
               epoch_seconds=[], early_stop=None, interrupted=False, bad_cost=None)

    if validFreq == -1:
        validFreq = max(1, len(train[0]) // batch_size)
    if saveFreq == -1:
        saveFreq = max(1, len(train[0]) // batch_size)
    if dispFreq == -1:
        # Not the tutorial's (its np.mod(uidx, -1) == 0 prints every update): once per epoch, as -1 means for
        # validFreq and saveFreq.
        dispFreq = max(1, len(train[0]) // batch_size)
    plot_path = plot if plot is not None else (str(npz_path(saveto))[:-4] + "_errors.png" if saveto else None)

    def save(params, **extra):
        save_params(saveto, params, history_errs=history_errs, **extra)
        save_options(saveto, model_options)

    uidx = 0  # the number of updates done
    eidx = 0
    estop = False
    # The costs stay on the device until the loop shows or acts on one: one transfer there, not one wait per
    # update (on a GPU the host then prepares the next batch while the device runs this one).
    costs = DeviceLog(COST_LOG_CAPACITY, dtype, device)
    first_unread = 1  # the update whose cost is the log's first

    def read_costs():
        """The costs since the last read, checked as lstm.py checks each one: ``(last cost, None)``, or
        ``(None, the first bad one's record)`` (the tutorial returns at it)."""
        nonlocal first_unread
        values, first = costs.read(), first_unread
        first_unread += len(values)
        for n, value in enumerate(values):
            if not np.isfinite(value):
                # Every epoch's end is a read: the unread costs are all this epoch's.
                return None, dict(update=first + n, epoch=eidx, cost=value)
        return (values[-1] if values else None), None

    def bad_cost_return(bad):
        # lstm.py: `if numpy.isnan(cost) or numpy.isinf(cost): print('bad cost detected: ', cost); return 1., 1., 1.`
        say("bad cost detected: ", np.asarray(bad["cost"], dtype=floatX)[()])
        rec["bad_cost"] = bad
        if bar is not None:
            bar.close()
        return 1., 1., 1.

    bar = None
    start_time = time.time()
    try:
        for eidx in range(max_epochs):
            n_samples = 0
            epoch_start = time.time()
            kf = get_minibatches_idx(len(train[0]), batch_size, shuffle=True, rng=rng)
            bar = torch_progress(len(kf), f"epoch {eidx}", progress)
            for batch_no, (_, train_index) in enumerate(kf):
                uidx += 1
                model.train()
                y = [train[1][t] for t in train_index]
                x = [train[0][t] for t in train_index]
                x, mask, y = prepare_data(x, y, dtype=floatX)
                n_samples += x.shape[1]

                # f_grad_shared (cost, gradients, gradient statistics) then f_update (the step).
                opt.zero_grad(set_to_none=True)
                loss = model.cost(x, mask, y, decay_c=decay_c)
                loss.backward()
                opt.step()
                costs.append(loss)
                show_due = np.mod(uidx, dispFreq) == 0
                save_due = bool(saveto) and np.mod(uidx, saveFreq) == 0
                valid_due = np.mod(uidx, validFreq) == 0
                shown = {}
                # The costs are read where the loop prints one or the progress shows one (dispFreq, an epoch's
                # end), before it saves or validates (a bad cost returns first, as in lstm.py, which checks each
                # update's), and when the log is full. Nothing is printed, saved or measured between two reads:
                # the updates after a bad cost change only parameters that are then discarded.
                if show_due or save_due or valid_due or batch_no == len(kf) - 1 or costs.full:
                    last, bad = read_costs()
                    if bad is not None:
                        return bad_cost_return(bad)
                    cost = np.asarray(last, dtype=floatX)[()]
                    shown = dict(cost=f"{float(cost):.4f}")
                if bar is not None:
                    bar.update(1, update=uidx, **shown)
                if on_step is not None:
                    on_step()

                if show_due:
                    say("Epoch ", eidx, "Update ", uidx, "Cost ", cost)

                if save_due:
                    say("Saving...", end=" ")
                    save(best_p if best_p is not None else model.numpy_params())
                    say("Done")

                if valid_due:
                    model.eval()
                    train_err = pred_error(model, train, kf, floatX)
                    valid_err = pred_error(model, valid, kf_valid, floatX)
                    test_err = pred_error(model, test, kf_test, floatX)
                    history_errs.append([valid_err, test_err])
                    for key, v in (("train_errs", train_err), ("valid_errs", valid_err), ("test_errs", test_err)):
                        rec[key].append(float(v))
                    rec["valid_updates"].append(uidx)
                    rec["valid_epochs"].append(eidx)

                    if best_p is None or valid_err <= np.array(history_errs)[:, 0].min():
                        best_p = model.numpy_params()
                        bad_counter = 0
                        rec["best_update"] = uidx

                    say("Train ", train_err, "Valid ", valid_err, "Test ", test_err)
                    if report_rates:
                        say(describe_rates(train_err, valid_err, test_err, f"validation {len(history_errs)}, "
                                                                           f"epoch {eidx}, update {uidx}"))

                    # lstm.py: once more than `patience` validations exist, a validation no better than the
                    # best of all but the last `patience` counts as bad; the run stops after more than
                    # `patience` bad ones since the last best (the counter is reset only by a new best).
                    if len(history_errs) > patience and valid_err >= np.array(history_errs)[:-patience, 0].min():
                        bad_counter += 1
                        if bad_counter > patience:
                            say("Early Stop!")
                            rec["early_stop"] = dict(update=uidx, epoch=eidx)
                            estop = True
                            break
            if bar is not None and (getattr(bar, "_tty", False) or bar.count < len(kf)):
                bar.close()  # (a finished bar has already printed its last line in a log)
            rec["epoch_seconds"].append(time.time() - epoch_start)
            say("Seen %d samples" % n_samples)
            if estop:
                break
    except KeyboardInterrupt:
        _, bad = read_costs()  # a bad cost before the interrupt: lstm.py had returned there
        if bad is not None:
            return bad_cost_return(bad)
        say("Training interupted")  # sic, lstm.py
        rec["interrupted"] = True

    end_time = time.time()
    if best_p is not None:
        model.load_numpy_params(best_p)
    else:
        best_p = model.numpy_params()

    model.eval()
    kf_train_sorted = get_minibatches_idx(len(train[0]), batch_size)
    train_err = pred_error(model, train, kf_train_sorted, floatX)
    valid_err = pred_error(model, valid, kf_valid, floatX)
    test_err = pred_error(model, test, kf_test, floatX)

    say("Train ", train_err, "Valid ", valid_err, "Test ", test_err)
    if report_rates:
        best = rec.get("best_update")
        say(describe_rates(train_err, valid_err, test_err,
                           f"the best model, update {best}" if best else "the final model"))
    if saveto:
        save(best_p, train_err=train_err, valid_err=valid_err, test_err=test_err)
    # lstm.py prints eidx + 1, the epochs begun; with max_epochs=0 none began (its loop never ran), and it
    # would print 1 (and divide by it); the count printed here is the epochs run.
    epochs_run = eidx + 1 if max_epochs > 0 else 0
    say("The code run for %d epochs, with %f sec/epochs" % (epochs_run, (end_time - start_time) / max(1., epochs_run)))
    print("Training took %.1fs" % (end_time - start_time), file=sys.stderr, flush=True)
    rec.update(final=dict(train_err=float(train_err), valid_err=float(valid_err), test_err=float(test_err)),
               epochs=epochs_run, updates=uidx, seconds=end_time - start_time,
               sec_per_epoch=(end_time - start_time) / max(1, epochs_run), model=model)
    if plot_path and _plot(plot_path, rec):
        rec["plot"] = plot_path
    return train_err, valid_err, test_err


def describe_rates(train_err, valid_err, test_err, when: str) -> str:
    """The three error rates labelled, in percent, and the held-out accuracies (the tutorial prints bare
    fractions)."""
    train, valid, test = (100 * float(e) for e in (train_err, valid_err, test_err))
    return (f"  error rates: train {train:.1f}%, valid {valid:.1f}%, test {test:.1f}%; "
            f"accuracy: valid {100 - valid:.1f}%, test {100 - test:.1f}%  ({when})")


def torch_progress(total: int, desc: str, enabled: bool):
    """A per-epoch progress bar (updates per second, cost, ETA) on stderr."""
    if not enabled:
        return None
    from compat.progress import Progress

    return Progress(total=total, desc=desc, unit="upd/s")
