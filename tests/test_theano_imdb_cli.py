"""ports.theano_imdb training loop and CLI: the tutorial's schedule, files, printed lines and stops."""
from __future__ import annotations

import functools
import json
import pickle

import numpy as np
import pytest

from ports.theano_imdb import LSTMClassifier, init_params, load_checkpoint, load_options, train_lstm
from ports.theano_imdb import cli
from ports.theano_imdb import data as D
from ports.theano_imdb import train as T
from ports.theano_imdb.unpickler import load_data_pickles


@functools.lru_cache(maxsize=1)
def _shared_pickle(path):
    """The shared imdb.pkl through the port's restricted reader, read once for this module (33 MB)."""
    return load_data_pickles(path)

TINY = ["--dim_proj", "6", "--n_words", "300", "--maxlen", "30", "--test_size", "40", "--no-progress"]


def _tiny_pkl(path, n_train=60, n_test=20, seed=0):
    rs = np.random.RandomState(seed)

    def split(n):
        ys = [int(v) for v in rs.randint(0, 2, size=n)]
        # Label-dependent words so that a few updates can learn something.
        xs = [[int(w) + 40 * y for w in rs.randint(2, 40, size=rs.randint(1, 12))] for y in ys]
        return xs, ys

    path.write_bytes(pickle.dumps(split(n_train), protocol=2) + pickle.dumps(split(n_test), protocol=2))
    return path


def test_cli_smoke_on_the_embedded_sample(tmp_path, capsys):
    saveto = tmp_path / "lstm_model.npz"
    summary = tmp_path / "summary.json"
    rc = cli.main(["--dataset", "embedded", "--max_epochs", "1", "--validFreq", "12", "--saveFreq", "15",
                   "--dispFreq", "5", "--out", str(tmp_path), "--summary", "summary.json", "--maxlen", "60",
                   "--batch_size", "32", "--floatX", "float64"] + TINY[:4] + TINY[6:])
    assert rc == 0
    out = capsys.readouterr().out
    # Every file under --out, each named in the closing lines.
    closing = out[out.index("Files written:"):]
    for path in (saveto, str(saveto) + ".pkl", summary, tmp_path / "lstm_model_errors.png"):
        assert str(path) in closing, path
    assert "  error rates: train " in out and "(validation 1, epoch 0, update 12)" in out
    for line in ("model options", "Loading data", "Building model", "Optimization", "Epoch  0 Update  5 Cost  ",
                 "Saving... Done", "Train  ", "Valid  ", "Test  ", "Seen ", "The code run for 1 epochs, with"):
        assert line in out, line
    with np.load(saveto, allow_pickle=False) as z:
        assert set(z.files) == {"Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b", "history_errs", "train_err",
                                "valid_err", "test_err"}
        assert z["Wemb"].shape == (300, 6) and z["history_errs"].shape[1] == 2
    # No epoch at all: the tutorial's line says so (lstm.py would print 1 epoch, its eidx + 1).
    assert cli.main(["--dataset", "embedded", "--max_epochs", "0", "--out", str(tmp_path / "none"), "--no-plot",
                     "--no-progress"] + TINY) == 0
    assert "The code run for 0 epochs, with" in capsys.readouterr().out
    options = load_options(str(saveto) + ".pkl")
    assert options["optimizer"] == "adadelta" and options["ydim"] == 2 and options["dim_proj"] == 6
    assert (tmp_path / "lstm_model_errors.png").stat().st_size > 1000
    s = json.loads(summary.read_text())
    assert s["dataset_kind"] == "embedded" and s["valid_updates"][0] == 12 and len(s["valid_errs"]) >= 1
    # reload_model resumes from the file just written: the run starts from its parameters.
    record = {}
    train_lstm(dataset="embedded", max_epochs=0, dim_proj=6, n_words=300, maxlen=60, test_size=40, saveto=None,
               reload_model=str(saveto), progress=False, record=record)
    best = load_checkpoint(saveto)
    got = record["model"].numpy_params()
    for k in got:
        np.testing.assert_array_equal(got[k], best[k])


def test_no_arguments_is_the_demonstration_on_the_embedded_sample_without_download(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(D.ENV_OFFLINE, raising=False)  # downloads would be allowed by the environment
    monkeypatch.delenv(D.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(D, "cache_dir", lambda: tmp_path / "empty-cache")

    def no_download(*a, **k):
        raise AssertionError("no download may be attempted unless asked")

    monkeypatch.setattr(D, "download", no_download)
    seen = {}
    monkeypatch.setattr(cli, "train_lstm", lambda **kw: seen.update(kw))
    monkeypatch.chdir(tmp_path)
    assert cli.main([]) == 0
    captured = capsys.readouterr()
    assert "NOTICE: No data set was given or found (nothing is downloaded unless asked)" in captured.err
    # The notice names every setting that differs from the tutorial's __main__ and the faithful command.
    for text in ("floatX float32 (tutorial: float64)", "max_epochs 20 (tutorial: 100)",
                 "validFreq once per epoch (tutorial: 370)", "dispFreq once per epoch (tutorial: 10)", cli.FULL_RUN):
        assert text in captured.err, text
    assert "files go to runs/theano_imdb/" in captured.out
    want = dict(cli.MAIN_DEFAULTS, max_epochs=20, validFreq=-1, dispFreq=-1,
                saveto=str(cli.OUT_DIR / "lstm_model.npz"))
    assert {k: seen[k] for k in want} == want
    assert seen["dataset"] == "embedded" and seen["floatX"] == "float32" and seen["seed"] == 123
    assert seen["plot"] == str(cli.OUT_DIR / "lstm_model_errors.png")
    # The tutorial's __main__ values themselves: train_lstm(max_epochs=100, test_size=500).
    assert cli.MAIN_DEFAULTS["max_epochs"] == 100 and cli.MAIN_DEFAULTS["test_size"] == 500
    # A flag given on the command line is kept; the other demonstration settings still apply.
    seen.clear()
    cli.main(["--max_epochs", "7", "--use_dropout", "--no-use_dropout", "--floatX", "float64", "--no-plot"])
    assert seen["max_epochs"] == 7 and seen["validFreq"] == -1 and seen["use_dropout"] is False
    assert seen["floatX"] == "float64" and seen["plot"] == ""
    assert "floatX" not in capsys.readouterr().err.split("differ")[1].split(";")[0]


def test_dataset_imdb_asks_for_the_download(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(D.ENV_OFFLINE, raising=False)
    monkeypatch.delenv(D.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(D, "cache_dir", lambda: tmp_path / "cache")
    asked = []

    def refused(url, dest, **kw):
        asked.append(url)
        raise D.DownloadError(f"could not download {url}: no network here")

    monkeypatch.setattr(D, "download", refused)
    monkeypatch.setattr(cli, "train_lstm", lambda **kw: None)
    assert cli.main(["--dataset", "imdb", "--out", str(tmp_path / "out")]) == 0
    assert asked == [D.TUTORIAL_URL] and "no network here" in capsys.readouterr().err
    asked.clear()
    assert cli.main(["--download", "--out", str(tmp_path / "out")]) == 0
    assert asked == [D.TUTORIAL_URL]


def test_bad_flag_values_are_one_line_errors(capsys, tmp_path):
    for argv, text in ((["--batch_size", "0"], "--batch_size: must be an integer at least 1; got 0"),
                       (["--validFreq", "0"], "--validFreq: must be an integer at least 1, or -1; got 0"),
                       (["--device", "cuda:7"], "--device: cuda:7")):
        if argv[0] == "--device" and __import__("torch").cuda.is_available():
            continue
        assert cli.main(argv + ["--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and text in err and err.count("\n") == 1, err


def test_cli_reports_bad_files_without_a_traceback(tmp_path, capsys):
    assert cli.main(["--dataset", str(tmp_path / "absent.pkl")]) == 2
    assert "error: " in capsys.readouterr().err
    bad = tmp_path / "imdb.pkl"
    bad.write_bytes(b"\x80\x02cos\nsystem\nq\x00.")
    assert cli.main(["--dataset", str(bad), "--no-progress", "--saveto", ""]) == 2
    assert "refused to load global os.system" in capsys.readouterr().err


def test_every_train_lstm_keyword_is_a_flag():
    import inspect

    tutorial = [p.name for p in inspect.signature(train_lstm).parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
    flags = {a.dest for a in cli.build_parser()._actions}
    assert set(tutorial) <= flags and {"device", "seed", "dataset", "floatX"} <= flags


def test_initial_weights_follow_the_tutorials_random_sequence(tmp_path):
    path = _tiny_pkl(tmp_path / "imdb.pkl")
    record = {}
    train_lstm(dataset=str(path), max_epochs=0, dim_proj=5, n_words=50, maxlen=10, test_size=7, saveto=None,
               progress=False, record=record)
    # lstm.py: seed(123); load_data's permutation; test subset shuffle; init_params.
    (tx, _), (sx, _) = D.read_dataset(path)
    rs = np.random.RandomState(123)
    rs.permutation(sum(len(s) < 10 for s in tx))
    rs.shuffle(np.arange(len(sx)))
    want = init_params(50, 5, 2, rs)
    got = record["model"].numpy_params()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def test_early_stop_nan_stop_and_interrupt(tmp_path, monkeypatch, capsys):
    path = _tiny_pkl(tmp_path / "imdb.pkl")
    common = dict(dataset=str(path), dim_proj=4, n_words=100, maxlen=None, batch_size=8, valid_batch_size=16,
                  progress=False, saveto=None)
    # Early stop, lstm.py's rule, on a scripted validation history (patience 1): 0.5 best, 0.4 best,
    # 0.45 (>= min of all but the last 1: bad 1), 0.45 (bad 2 > patience): stop at the 4th validation.
    script = iter([0.5, 0.4, 0.45, 0.45, 0.45, 0.45])
    calls = [0]

    def scripted(model, data, iterator, floatX="float64"):
        calls[0] += 1
        return next(script) if calls[0] % 3 == 2 else 0.25

    with monkeypatch.context() as m:
        m.setattr(T, "pred_error", scripted)
        rec = {}
        train_lstm(patience=1, validFreq=1, max_epochs=5, record=rec, **common)
    assert "Early Stop!" in capsys.readouterr().out
    assert rec["early_stop"] == {"update": 4, "epoch": 0} and rec["best_update"] == 2
    with pytest.raises(ValueError, match="patience"):
        train_lstm(patience=0, **common)
    # Equal validation errors reset the counter (valid_err <= best), so patience 1 never stops a flat run.
    rec = {}
    train_lstm(optimizer="sgd", lrate=0.0, patience=1, validFreq=1, max_epochs=2, record=rec, **common)
    assert rec["early_stop"] is None and len(rec["valid_errs"]) == 2 * 8  # 57 examples: 7 batches of 8 + 1
    # A NaN or inf cost returns (1, 1, 1) as the tutorial does. Whether a huge learning rate overflows to
    # NaN or saturates the softmax depends on the CPU's float paths, so the bad cost is made exactly: the
    # third update's cost is the real cost plus nan (or inf), through the same backward and step.
    real_cost = T.LSTMClassifier.cost
    for bad in (float("nan"), float("inf")):
        calls = [0]

        def spoiled(self, *a, bad=bad, **k):
            calls[0] += 1
            cost = real_cost(self, *a, **k)
            return cost + bad if calls[0] == 3 else cost

        with monkeypatch.context() as m:
            m.setattr(T.LSTMClassifier, "cost", spoiled)
            rec = {}
            assert train_lstm(max_epochs=3, record=rec, **common) == (1., 1., 1.)
        assert "bad cost detected" in capsys.readouterr().out
        assert rec["bad_cost"]["update"] == 3 and not np.isfinite(rec["bad_cost"]["cost"])

    # Ctrl-C: stops cleanly, restores and saves the best parameters.
    real = T.make_optimizer

    def interrupting(name, params, lrate):
        opt = real(name, params, lrate)
        step, calls = opt.step, [0]

        def interrupted_step(*a, **k):
            calls[0] += 1
            if calls[0] == 5:
                raise KeyboardInterrupt
            return step(*a, **k)

        opt.step = interrupted_step
        return opt

    monkeypatch.setattr(T, "make_optimizer", interrupting)
    rec = {}
    saveto = tmp_path / "interrupted.npz"
    errs = train_lstm(**dict(common, saveto=str(saveto)), validFreq=2, max_epochs=3, record=rec)
    assert "Training interupted" in capsys.readouterr().out and rec["interrupted"]
    saved = load_checkpoint(saveto)
    assert float(saved["test_err"]) == pytest.approx(errs[2])
    assert len(saved["history_errs"]) == 2 and rec["best_update"] in (2, 4)
    for k, v in rec["model"].numpy_params().items():
        np.testing.assert_array_equal(saved[k], v)


def test_costs_read_in_batches_give_the_per_update_checks_lines(tmp_path, monkeypatch, capsys):
    """The loop keeps the costs on the device between the points where it shows or acts on one. Against
    lstm.py's loop, which reads and checks every update's cost (a log of capacity 1 here): the same printed
    lines, saves, validations and record, with a bad cost before a save and a validation of its epoch, after
    the epoch's end, and none; and far fewer reads."""
    path = _tiny_pkl(tmp_path / "imdb.pkl")
    real_cost = T.LSTMClassifier.cost
    reads = [0]
    real_read = T.DeviceLog.read

    def counted_read(self):
        reads[0] += 1
        return real_read(self)

    monkeypatch.setattr(T.DeviceLog, "read", counted_read)

    def run(capacity, bad_update, tag):
        calls = [0]

        def spoiled(self, *a, **k):
            calls[0] += 1
            cost = real_cost(self, *a, **k)
            return cost + float("nan") if calls[0] == bad_update else cost

        reads[0] = 0
        rec = {}
        saveto = tmp_path / f"{tag}-{capacity}.npz"
        with monkeypatch.context() as m:
            m.setattr(T, "COST_LOG_CAPACITY", capacity)
            m.setattr(T.LSTMClassifier, "cost", spoiled)
            errs = train_lstm(dataset=str(path), dim_proj=4, n_words=100, maxlen=None, batch_size=8,
                              valid_batch_size=16, progress=False, saveto=str(saveto), dispFreq=3, saveFreq=5,
                              validFreq=6, max_epochs=2, plot="", record=rec)
        out = [line for line in capsys.readouterr().out.replace(str(saveto), "SAVETO").splitlines()
               if not line.startswith("The code run for")]  # (its seconds)
        kept = {k: rec[k] for k in ("bad_cost", "valid_updates", "valid_errs", "test_errs", "best_update",
                                    "updates") if k in rec}
        if rec.get("bad_cost"):
            kept["bad_cost"] = dict(rec["bad_cost"], cost=repr(rec["bad_cost"]["cost"]))  # nan != nan
        return errs, out, kept, saveto.exists(), reads[0]

    # 57 training examples: 8 updates per epoch; prints at 3, 6, ...; saves at 5, 10, ...; validates at 6, 12.
    for bad_update, tag in ((4, "before-save"), (10, "second-epoch"), (0, "none")):
        per_update, batched = run(1, bad_update, tag), run(T.COST_LOG_CAPACITY, bad_update, tag)
        assert per_update[:4] == batched[:4], tag
        if bad_update:
            assert batched[0] == (1., 1., 1.) and batched[2]["bad_cost"]["update"] == bad_update
            assert "bad cost detected:  nan" in batched[1]
        else:
            assert batched[2]["updates"] == 16
        assert batched[4] < per_update[4], tag
    # No bad cost: reads at 3, 5, 6, 8 (the epoch's end), 9, 10, 12, 15, 16 only.
    assert batched[4] == 9


def test_float32_training_and_rmsprop(tmp_path):
    path = _tiny_pkl(tmp_path / "imdb.pkl", n_train=40)
    rec = {}
    errs = train_lstm(dataset=str(path), dim_proj=4, n_words=100, maxlen=None, optimizer="rmsprop",
                      floatX="float32", max_epochs=1, validFreq=2, saveto=None, progress=False, record=rec)
    assert rec["model"].Wemb.dtype.is_floating_point and str(rec["model"].Wemb.dtype) == "torch.float32"
    assert all(0.0 <= e <= 1.0 for e in errs)


def test_doubled_bias_checkpoint_gives_the_old_predictions(tmp_path):
    from ports.theano_imdb import load_params, save_params

    rs = np.random.RandomState(4)
    params = {k: v + 0.3 * rs.randn(*v.shape) for k, v in init_params(20, 3, 2, rs).items()}
    path = save_params(tmp_path / "old.npz", params)
    x, mask = rs.randint(0, 20, size=(5, 3)), np.ones((5, 3))
    old_semantics = LSTMClassifier.from_params(params, doubled_bias=True).predict_proba(x, mask)
    converted = LSTMClassifier.from_params(load_params(path, doubled_bias=True)).predict_proba(x, mask)
    np.testing.assert_allclose(converted.numpy(), old_semantics.numpy(), rtol=1e-12, atol=1e-14)
    assert not np.allclose(LSTMClassifier.from_params(params).predict_proba(x, mask).numpy(), old_semantics.numpy())


def test_embedded_sample_holds_real_reviews(shared_data):
    (tx, ty), (sx, sy) = _shared_pickle(shared_data("imdb", "imdb.pkl"))
    assert (len(tx), len(sx)) == (25000, 25000)
    with np.load(D.EMBEDDED_PATH, allow_pickle=False) as z:
        train_index, test_index = z["train_source_index"].tolist(), z["test_source_index"].tolist()
    (ex, ey), (fx, fy) = D.read_dataset("embedded")
    assert train_index == [k for k, s in enumerate(tx) if len(s) < 100]
    assert ex == [tx[k] for k in train_index] and ey == [ty[k] for k in train_index]
    assert fx == [sx[k] for k in test_index] and fy == [sy[k] for k in test_index]


def test_cli_on_the_shared_data(shared_data, tmp_path, capsys, monkeypatch):
    pkl = shared_data("imdb", "imdb.pkl")
    monkeypatch.setattr(D, "load_data_pickles", lambda path: _shared_pickle(path))  # read once per module
    rc = cli.main(["--dataset", str(pkl), "--max_epochs", "1", "--validFreq", "10", "--saveto",
                   str(tmp_path / "m.npz"), "--dim_proj", "6", "--n_words", "2000", "--maxlen", "50",
                   "--test_size", "64", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    # maxlen 50 keeps the train reviews shorter than 50 words, split 95/5.
    (tx, _), _ = _shared_pickle(pkl)
    kept = sum(len(s) < 50 for s in tx)
    n_valid = kept - int(np.round(kept * 0.95))
    assert f"{kept - n_valid} train examples" in out and f"{n_valid} valid examples" in out
    assert "64 test examples" in out and "Train  " in out
