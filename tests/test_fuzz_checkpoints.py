"""Hostile and damaged training checkpoints (compat.checkpoint) for every port that writes them: tf_ptb
--resume, caffe_sequence --resume, tf_shakespeare model.json; plus --tf-checkpoint and --load-tf inputs.

Every case runs in a forked child (5 s, 1 GB above the parent): a refused file must raise a project
InputError; a file whose mutation leaves it valid may load; nothing may crash, hang, over-allocate or raise
anything else. A byte flip in a tensor file must always be caught by the manifest's SHA-256.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from compat import checkpoint
from compat.checkpoint import CheckpointError
from ports.caffe_sequence.config import RunConfig
from ports.caffe_sequence.train import CHECKPOINT_FORMAT as CAFFE_FORMAT, Trainer
from ports.tf_ptb import Config, PTBModel, run_epoch
from ports.tf_ptb.cli import CHECKPOINT_FORMAT as PTB_FORMAT, load_checkpoint, read_tf_npz, save_checkpoint
from ports.tf_shakespeare import LSTMModel
from ports.tf_shakespeare.config import TrainConfig
from ports.tf_shakespeare.train import (CHECKPOINT_FORMAT as SHAKESPEARE_FORMAT, load_checkpoint_file,
                                        load_tf1_model, load_trained, train)
from tests.fuzzing import run_isolated
from tests.hostile_files import CASES, Tally, fuzz_bytes, special_files, write_sparse

DEEP_KEY = b"\x80\x02})" + b"\x85" * 10 ** 6 + b"Ns."
TEST = Config.preset("test")


# ------------------------------------------------------------------------------------------- fixtures
def _ptb_checkpoint(path: Path, scale: float = 1.0, nan: bool = False) -> Path:
    torch.manual_seed(0)
    model = PTBModel(TEST)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
        if nan:
            model.cells[0].kernel[1, 2] = float("nan")
    history = {"epochs": [1], "learning_rate": [1.0], "train_perplexity": [900.0], "valid_perplexity": [950.0],
               "epoch_seconds": [1.5], "device": "cpu", "test_perplexity": None}
    save_checkpoint(path, model, TEST, "test", 1, history)
    return path


def _cuda_rng(seed: int, offset: int) -> torch.Tensor:
    """A torch.cuda.get_rng_state() tensor made without a GPU: the seed (uint64), then the Philox offset (int64)."""
    raw = seed.to_bytes(8, "little") + offset.to_bytes(8, "little", signed=True)
    return torch.tensor(list(raw), dtype=torch.uint8)


CUDA_RNG = _cuda_rng(2 ** 63 + 12345, 4 * 100_003)


def _edit(path: Path, fn) -> Path:
    """Apply ``fn`` to the manifest's JSON object (the tensor file and its digest unchanged)."""
    target = checkpoint.manifest_path(path)
    obj = json.loads(target.read_text())
    fn(obj)
    target.write_text(json.dumps(obj))
    return path


def _forge(path: Path, header: dict, data: bytes, header_len: int = None) -> Path:
    """Replace the tensor file with a hand-made one and record its true digest (what an attacker can do:
    the manifest is not signed)."""
    raw = json.dumps(header).encode()
    blob = (len(raw) if header_len is None else header_len).to_bytes(8, "little") + raw + data
    target = checkpoint.manifest_path(path)
    obj = json.loads(target.read_text())
    (target.parent / obj["tensor_file"]).write_bytes(blob)
    obj["tensor_sha256"], obj["tensor_bytes"] = hashlib.sha256(blob).hexdigest(), len(blob)
    target.write_text(json.dumps(obj))
    return path


def _resave(path: Path, fmt: str, fn) -> Path:
    """Load the content with its tensors, change it with ``fn`` and save it again (a valid digest)."""
    content = checkpoint.load(path, fmt, allow_nonfinite=True)
    fn(content)
    checkpoint.save(path, fmt, content)
    return path


def _copy(src: Path, dst: Path) -> Path:
    """Checkpoint ``src`` copied as checkpoint ``dst`` (its manifest naming the copied tensor file)."""
    obj = json.loads(checkpoint.manifest_path(src).read_text())
    tensor_file = dst.name + obj["tensor_file"][len(src.name):]
    (dst.parent / tensor_file).write_bytes((src.parent / obj["tensor_file"]).read_bytes())
    obj["tensor_file"] = tensor_file
    checkpoint.manifest_path(dst).write_text(json.dumps(obj))
    return dst


def _tensor_path(path: Path) -> Path:
    return path.parent / json.loads(checkpoint.manifest_path(path).read_text())["tensor_file"]


# ------------------------------------------------------------------------------------------- tf_ptb
PTB_HOSTILE = {
    "hidden_size 30,000 (28.8 GB if built from the config)": lambda p: _edit(p, lambda o: o["content"]["config"].update(hidden_size=30000)),
    "vocab_size 10^9": lambda p: _edit(p, lambda o: o["content"]["config"].update(vocab_size=10 ** 9)),
    "batch_size 10^9": lambda p: _edit(p, lambda o: o["content"]["config"].update(batch_size=10 ** 9)),
    "num_layers 10^6": lambda p: _edit(p, lambda o: o["content"]["config"].update(num_layers=10 ** 6)),
    "hidden_size a string": lambda p: _edit(p, lambda o: o["content"]["config"].update(hidden_size="200")),
    "keep_prob NaN": lambda p: _edit(p, lambda o: o["content"]["config"].update(keep_prob=float("nan"))),
    "unknown config field": lambda p: _edit(p, lambda o: o["content"]["config"].update(evil=1)),
    "epoch -1": lambda p: _edit(p, lambda o: o["content"].update(epoch=-1)),
    "epoch 2^70": lambda p: _edit(p, lambda o: o["content"].update(epoch=2 ** 70)),
    "epoch a list": lambda p: _edit(p, lambda o: o["content"].update(epoch=[1])),
    "history lists of different lengths": lambda p: _edit(p, lambda o: o["content"]["history"].update(epochs=[1, 2])),
    "history with an extra key": lambda p: _edit(p, lambda o: o["content"]["history"].update(x=1)),
    "a tensor missing": lambda p: _edit(p, lambda o: o["content"]["model"].pop("softmax_b")),
    "a tensor referred to twice": lambda p: _edit(p, lambda o: o["content"]["model"].update(
        softmax_b={"$tensor": "model/embedding"})),
    "deep nesting in the content": lambda p: _edit(p, lambda o: o["content"].update(preset=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])),
    "format of another port": lambda p: _edit(p, lambda o: o.update(format=CAFFE_FORMAT)),
    "tensor_file outside the folder": lambda p: _edit(p, lambda o: o.update(tensor_file="../../x.safetensors")),
    "tensor_bytes wrong": lambda p: _edit(p, lambda o: o.update(tensor_bytes=o["tensor_bytes"] + 1)),
    "digest of other bytes": lambda p: _edit(p, lambda o: o.update(tensor_sha256="0" * 64)),
    "NaN in a weight": lambda p: _ptb_checkpoint(p, nan=True),
    "RNG state of another size": lambda p: _resave(p, PTB_FORMAT, lambda c: c.update(torch_rng=torch.zeros(100, dtype=torch.uint8))),
    "RNG state with its position out of range": lambda p: _resave(p, PTB_FORMAT, lambda c: c.update(
        torch_rng=torch.full((5056,), 255, dtype=torch.uint8))),
    "RNG state as floats": lambda p: _resave(p, PTB_FORMAT, lambda c: c.update(torch_rng=torch.zeros(5056))),
    "CUDA RNG state of another size": lambda p: _resave(p, PTB_FORMAT, lambda c: c.update(cuda_rng=CUDA_RNG[:8].clone())),
    "CUDA RNG state as int64": lambda p: _resave(p, PTB_FORMAT, lambda c: c.update(cuda_rng=CUDA_RNG.long())),
    "CUDA RNG state with an offset not a multiple of 4": lambda p: _resave(p, PTB_FORMAT, lambda c: c.update(
        cuda_rng=_cuda_rng(5, 4 * 100_003 + 2))),
    "CUDA RNG state with a negative offset": lambda p: _resave(p, PTB_FORMAT, lambda c: c.update(
        cuda_rng=_cuda_rng(5, -4))),
    "CUDA RNG state a number": lambda p: _resave(p, PTB_FORMAT, lambda c: c.update(cuda_rng=7)),
    "weights stored as int64": lambda p: _resave(p, PTB_FORMAT, lambda c: c["model"].update(
        softmax_b=torch.zeros(10000, dtype=torch.int64))),
    "a weight of the wrong shape": lambda p: _resave(p, PTB_FORMAT, lambda c: c["model"].update(softmax_b=torch.zeros(9999))),
    "an extra tensor": lambda p: _resave(p, PTB_FORMAT, lambda c: c["model"].update(extra=torch.zeros(3))),
    "header of 2^60 bytes": lambda p: _forge(p, {}, b"", header_len=2 ** 60),
    "header shape (10^12,)": lambda p: _forge(p, {"x": {"dtype": "F32", "shape": [10 ** 12], "data_offsets": [0, 4]}},
                                              b"\0" * 4),
    "header rank 100": lambda p: _forge(p, {"x": {"dtype": "F32", "shape": [1] * 100, "data_offsets": [0, 4]}}, b"\0" * 4),
    "header dtype object": lambda p: _forge(p, {"x": {"dtype": "O", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8),
    "header offsets overlapping": lambda p: _forge(p, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                                                   b"\0" * 12),
    "header nested 100,000 deep": lambda p: _forge_raw(p, b"[" * 100_000),
    "manifest nested 200,000 deep": lambda p: checkpoint.manifest_path(p).write_text("[" * 200_000 + "]" * 200_000) and p,
    "manifest of 100 MB": lambda p: write_sparse(checkpoint.manifest_path(p), 100 << 20) and p,
    "manifest not UTF-8": lambda p: checkpoint.manifest_path(p).write_bytes(b'{"format": "\xff"}') and p,
    "manifest an int of 100,000 digits": lambda p: checkpoint.manifest_path(p).write_text("1" * 100_000) and p,
}


def _forge_raw(path: Path, header: bytes) -> Path:
    target = checkpoint.manifest_path(path)
    obj = json.loads(target.read_text())
    blob = len(header).to_bytes(8, "little") + header
    (target.parent / obj["tensor_file"]).write_bytes(blob)
    obj["tensor_sha256"], obj["tensor_bytes"] = hashlib.sha256(blob).hexdigest(), len(blob)
    target.write_text(json.dumps(obj))
    return path


@pytest.fixture(scope="module")
def ptb_valid(tmp_path_factory) -> Path:
    """A checkpoint as a CUDA run writes it: with the CUDA generator's state (``cuda_rng``)."""
    path = _ptb_checkpoint(tmp_path_factory.mktemp("ptb") / "ptb.pt")
    return _resave(path, PTB_FORMAT, lambda c: c.update(cuda_rng=CUDA_RNG))


def test_hostile_tf_ptb_checkpoints(tmp_path, ptb_valid):
    tally = Tally("tf_ptb --resume (hostile constructions)")
    valid = load_checkpoint(ptb_valid)
    assert valid["epoch"] == 1 and torch.equal(valid["cuda_rng"], CUDA_RNG)
    assert "cuda_rng" not in load_checkpoint(_ptb_checkpoint(tmp_path / "cpu_run.pt")), "a CPU run keeps none"
    for k, (name, make) in enumerate(PTB_HOSTILE.items()):
        path = _copy(ptb_valid, tmp_path / f"case{k}.pt")
        make(path)
        out = tally.run(name, load_checkpoint, path)
        if out.kind == "input_error":
            assert f"case{k}.pt" in out.message, (name, out.message)
    for name, special in special_files(tmp_path):
        tally.run(f"manifest is a {name}", load_checkpoint, special.with_name(special.name))
        os.symlink(special, tmp_path / f"{special.name}.json")
        tally.run(f"manifest links to a {name}", load_checkpoint, tmp_path / special.name)
    # the tensor file replaced by a FIFO or /dev/zero
    for name, special in list(special_files(tmp_path))[1:]:
        path = _copy(ptb_valid, tmp_path / f"tensors_{special.name}.pt")
        tensor_file = _tensor_path(path)
        tensor_file.unlink()
        tensor_file.symlink_to(special)
        tally.run(f"tensor file is a {name}", load_checkpoint, path)
    # the earlier torch.save format, and a hostile pickle under its name: refused without unpickling
    torch.save({"format": "ports.tf_ptb/1", "model": {}}, tmp_path / "old.pt")
    out = tally.run("a torch.save checkpoint of the earlier format", load_checkpoint, tmp_path / "old.pt")
    assert "python -m compat.checkpoint convert" in out.message
    (tmp_path / "deep.pt").write_bytes(DEEP_KEY)
    tally.run("the deep-tuple pickle as a .pt", load_checkpoint, tmp_path / "deep.pt")
    tally.check()


def test_fuzzed_tf_ptb_checkpoints(tmp_path, ptb_valid):
    """Truncations and flips of the manifest (may stay valid: a changed digit of a float) and of the tensor
    file (never: the SHA-256 catches every one)."""
    tally = Tally("tf_ptb --resume manifest (truncations, byte flips)")
    path = _copy(ptb_valid, tmp_path / "m.pt")
    fuzz_bytes(tally, load_checkpoint, checkpoint.manifest_path(path).read_bytes(), checkpoint.manifest_path(path),
               load=path)
    tally.check()
    flips = Tally("tf_ptb --resume tensor file (truncations, byte flips)")
    path = _copy(ptb_valid, tmp_path / "t.pt")
    fuzz_bytes(flips, load_checkpoint, _tensor_path(path).read_bytes(), _tensor_path(path), load=path,
               allowed=("input_error",))
    flips.check()


def test_a_resume_with_huge_weights_reports_an_infinite_perplexity(tmp_path):
    """Weights x 1e4 load (they are finite) and give a perplexity of inf, not an OverflowError."""
    path = _ptb_checkpoint(tmp_path / "big.pt", scale=1e4)

    def evaluate(p, learning_rates=(None, 1.0)):  # None: the evaluation pass; 1.0: a training pass
        ck = load_checkpoint(p)
        model = PTBModel(Config.from_dict(ck["config"]))
        model.load_state_dict(ck["model"])
        data = list(np.random.RandomState(0).randint(0, 10000, size=400))
        for lr in learning_rates:
            ppl = run_epoch(model, data, 20, 2, lr=lr, progress=False, max_steps=3)
            if not math.isinf(ppl):
                raise AssertionError(f"perplexity {ppl}")

    evaluate(path)  # in this process first (a real traceback on failure; warms torch's lazy imports up)
    # Again in a forked child, which also catches a crash or a hang. Where a CUDA device exists, the backward
    # above started autograd's device threads, which a forked child cannot use ("Unable to handle
    # autograd's threading in combination with fork-based multiprocessing"): the child evaluates only.
    child_rates = (None,) if torch.cuda.is_available() else (None, 1.0)
    out = run_isolated(lambda p: evaluate(p, child_rates), path, timeout=20)
    assert out.kind == "ok", out
    with pytest.raises(CheckpointError, match=r"nan\.pt\.json: tensor 'model/cells\.0\.kernel': 1 of its 32 values are "
                                              r"NaN or infinite"):
        load_checkpoint(_ptb_checkpoint(tmp_path / "nan.pt", nan=True))
    assert math.isnan(load_checkpoint(tmp_path / "nan.pt", allow_nonfinite=True)["model"]["cells.0.kernel"][1, 2])


def test_a_bad_load_tf_npz_is_a_clear_error(tmp_path):
    torch.manual_seed(1)
    model = PTBModel(TEST)
    path = tmp_path / "weights.npz"
    np.savez(path, **model.export_tf1_variables())
    valid = path.read_bytes()

    def load(p):
        PTBModel(TEST).load_tf1_variables(read_tf_npz(p))

    tally = Tally("tf_ptb --load-tf .npz")
    assert run_isolated(load, path).kind == "ok"
    fuzz_bytes(tally, load, valid, tmp_path / "fuzzed.npz")
    for name, special in special_files(tmp_path):
        tally.run(name, load, special)
    tally.check()


# ------------------------------------------------------------------------------------- tf_shakespeare
def _corpus(tmp_path: Path) -> Path:
    words = ("to be or not to be that is the question whether tis nobler in the mind to suffer "
             "the slings and arrows of outrageous fortune or to take arms against a sea of troubles ").split()
    path = tmp_path / "corpus.txt"
    path.write_text(" ".join(words * 12), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shakespeare_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("shakespeare")
    cfg = TrainConfig(min_word_freq=2, rnn_size=8, epochs=2, batch_size=4, training_seq_len=5, skip_chars=0,
                      save_every=1000, eval_every=1000, seed=4)
    train(_corpus(tmp), tmp / "run", cfg, max_iterations=3, progress=False, plot=False, log=lambda line: None)
    return tmp / "run"


def _shakespeare_case(run: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in run.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst / "model"


SHAKESPEARE_HOSTILE = {
    "rnn_size 40,000 (51 GB if built from the config)": lambda p: _edit(p, lambda o: o["content"]["config"].update(rnn_size=40000)),
    "vocab_size 10^9": lambda p: _edit(p, lambda o: o["content"]["data"].update(vocab_size=10 ** 9)),
    "batches of 10^6 x 10^6 words": lambda p: _edit(p, lambda o: o["content"]["config"].update(
        batch_size=10 ** 6, training_seq_len=10 ** 6)),
    "dtype float16": lambda p: _edit(p, lambda o: o["content"]["config"].update(dtype="float16")),
    "learning rate Infinity": lambda p: _edit(p, lambda o: o["content"]["config"].update(learning_rate=float("inf"))),
    "prime_texts a dict": lambda p: _edit(p, lambda o: o["content"]["config"].update(prime_texts={"a": 1})),
    "order not a permutation": lambda p: _edit(p, lambda o: o["content"]["progress"]["order"].__setitem__(0, 0)
                                               or o["content"]["progress"]["order"].__setitem__(1, 0)),
    "batch_index past the batches": lambda p: _edit(p, lambda o: o["content"]["progress"].update(batch_index=10 ** 6)),
    "Python RNG position 700": lambda p: _edit(p, lambda o: o["content"]["progress"]["rng_state"][1].__setitem__(624, 700)),
    "Python RNG word 2^40": lambda p: _edit(p, lambda o: o["content"]["progress"]["rng_state"][1].__setitem__(3, 2 ** 40)),
    "Python RNG version 2": lambda p: _edit(p, lambda o: o["content"]["progress"]["rng_state"].__setitem__(0, 2)),
    "optimizer group with other params": lambda p: _edit(p, lambda o: o["content"]["optimizer"]["param_groups"][0].update(
        params=[0, 1])),
    "optimizer lr NaN": lambda p: _edit(p, lambda o: o["content"]["optimizer"]["param_groups"][1].update(lr=float("nan"))),
    "optimizer state for parameter 9": lambda p: _edit(p, lambda o: o["content"]["optimizer"]["state"]["$int_keys"].append(
        [9, o["content"]["optimizer"]["state"]["$int_keys"][0][1]])),
    "optimizer slot of the wrong shape": lambda p: _resave(p, SHAKESPEARE_FORMAT, lambda c: c["optimizer"]["state"][0].update(
        m=torch.zeros(3))),
    "lstm_state of the wrong shape": lambda p: _resave(p, SHAKESPEARE_FORMAT, lambda c: c.update(
        lstm_state=[torch.zeros(5, 8), torch.zeros(5, 8)])),
    "NaN in the embedding": lambda p: _resave(p, SHAKESPEARE_FORMAT, lambda c: c["model"]["embedding_mat"].__setitem__(
        (0, 0), float("nan"))),
    "train_loss of strings": lambda p: _edit(p, lambda o: o["content"].update(train_loss=["x"])),
}


def test_hostile_and_fuzzed_shakespeare_checkpoints(tmp_path, shakespeare_run):
    load_trained(shakespeare_run)
    tally = Tally("tf_shakespeare model.json (hostile constructions, truncations, byte flips)")
    for k, (name, make) in enumerate(SHAKESPEARE_HOSTILE.items()):
        path = _shakespeare_case(shakespeare_run, tmp_path / f"case{k}")
        make(path)
        out = tally.run(name, load_checkpoint_file, path.parent)
        if out.kind == "input_error":
            assert f"case{k}" in out.message, (name, out.message)
    # the vocabulary beside it
    for k, (name, blob) in enumerate({
            "vocab.json nested 200,000 deep": b"[" * 200_000, "vocab.json not UTF-8": b'{"\xff": 1}',
            "vocab.json with an id 2^70": json.dumps({"vocab2ix": {"a": 2 ** 70}}).encode(),
            "vocab.json with an id past the vocabulary": json.dumps({"vocab2ix": {"a": 10 ** 6}}).encode()}.items()):
        case = _shakespeare_case(shakespeare_run, tmp_path / f"vocab{k}")
        (case.parent / "vocab.json").write_bytes(blob)
        tally.run(name, load_trained, case.parent)
    case = _shakespeare_case(shakespeare_run, tmp_path / "vocabdir")
    (case.parent / "vocab.json").unlink()
    (case.parent / "vocab.json").mkdir()
    tally.run("vocab.json is a directory", load_trained, case.parent)
    # the earlier format, and the deep-tuple pickle as model.pt
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.pt").write_bytes(DEEP_KEY)
    tally.run("the deep-tuple pickle as model.pt", load_trained, old)
    case = _shakespeare_case(shakespeare_run, tmp_path / "fuzz")
    fuzz_bytes(tally, load_trained, (case.parent / "model.json").read_bytes(), case.parent / "model.json",
               load=case.parent, n=CASES // 2)
    tally.check()
    flips = Tally("tf_shakespeare tensor file (truncations, byte flips)")
    case = _shakespeare_case(shakespeare_run, tmp_path / "flips")
    fuzz_bytes(flips, load_trained, _tensor_path(case).read_bytes(), _tensor_path(case), load=case.parent,
               allowed=("input_error",))
    flips.check()


def test_tf_checkpoint_shapes_are_checked_before_the_model_is_built(tmp_path):
    """--tf-checkpoint: W [12000, 2] with the cell of a small model asks for 4.6 GB if trusted; W of rank 1 and
    [0, 14] have no model at all. All refused before any allocation."""
    from compat.formats.tf import save_checkpoint as save_tf

    torch.manual_seed(0)
    small = {k: v.detach().numpy() for k, v in LSTMModel(6, 14, 1, 1).tf1_variables().items()}
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps({"vocab2ix": {"unknown": 0, "thou": 1}}))
    cases = {"W [12000, 2]": np.zeros((12000, 2), np.float32), "W of rank 1": np.zeros(14, np.float32),
             "W [0, 14]": np.zeros((0, 14), np.float32), "W [6, 1]": np.zeros((6, 1), np.float32)}
    tally = Tally("tf_shakespeare --tf-checkpoint shapes")
    for k, (name, w) in enumerate(cases.items()):
        prefix = save_tf(tmp_path / f"c{k}" / "model-1", dict(small, **{"lstm_model/lstm_vars/W": w}))
        out = tally.run(name, load_tf1_model, prefix, vocab)
        assert "lstm_vars" in out.message, out
    prefix = save_tf(tmp_path / "ok" / "model-1", small)
    assert tally.run("the recipe's shapes", load_tf1_model, prefix, vocab, allowed=("ok",)).kind == "ok"
    tally.check()


# ------------------------------------------------------------------------------------- caffe_sequence
@pytest.fixture(scope="module")
def caffe_trainer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("caffe")
    trainer = Trainer(RunConfig("lstm_short", tmp, iters=2, seed=3, progress=False, save=None))
    trainer.train()
    trainer.save(tmp / "checkpoint")
    return trainer, tmp / "checkpoint"


CAFFE_HOSTILE = {
    "another --config": lambda p: _edit(p, lambda o: o["content"].update(config="deep_long")),
    "it -5": lambda p: _edit(p, lambda o: o["content"].update(it=-5)),
    "losses longer than average_loss": lambda p: _edit(p, lambda o: o["content"].update(losses=[1.0] * 100_000)),
    "log rows of 2": lambda p: _edit(p, lambda o: o["content"].update(log=[[1, 2.0]])),
    "solver history of the wrong count": lambda p: _edit(p, lambda o: o["content"]["solver"]["history"].pop()),
    "current_step a float": lambda p: _edit(p, lambda o: o["content"]["solver"].update(current_step=1.5)),
    "an LSTM state of the wrong shape": lambda p: _resave(p, CAFFE_FORMAT, lambda c: c.update(
        lstm_states=[[torch.zeros(1, 1, 7), torch.zeros(1, 1, 7)]])),
    "a weight of the wrong shape": lambda p: _resave(p, CAFFE_FORMAT, lambda c: c["params"].update(
        {next(iter(c["params"])): torch.zeros(2, 2)})),
    "infinite weight": lambda p: _resave(p, CAFFE_FORMAT, lambda c: next(iter(c["params"].values())).view(-1).__setitem__(
        0, float("inf"))),
}


def test_hostile_and_fuzzed_caffe_checkpoints(tmp_path, caffe_trainer):
    trainer, valid = caffe_trainer
    trainer.load(valid)
    tally = Tally("caffe_sequence --resume (hostile constructions, truncations, byte flips)")
    for k, (name, make) in enumerate(CAFFE_HOSTILE.items()):
        path = _copy(valid, tmp_path / f"case{k}")
        make(path)
        out = tally.run(name, trainer.load, path)
        if out.kind == "input_error":
            assert f"case{k}" in out.message, (name, out.message)
    path = _copy(valid, tmp_path / "m")
    fuzz_bytes(tally, trainer.load, checkpoint.manifest_path(path).read_bytes(), checkpoint.manifest_path(path),
               load=path, n=CASES // 2)
    path = _copy(valid, tmp_path / "t")
    fuzz_bytes(tally, trainer.load, _tensor_path(path).read_bytes(), _tensor_path(path), load=path,
               allowed=("input_error",), n=CASES // 2)
    tally.check()


# ------------------------------------------------------------------------------------------- writes
def test_saves_are_atomic_and_leave_no_temporary_files(tmp_path, monkeypatch):
    """An interrupted save (here: the manifest write fails) leaves the previous checkpoint loadable and no
    new file behind; the next save removes temporary files of saves killed earlier, and older tensor files."""
    path = _ptb_checkpoint(tmp_path / "run.pt")
    before = sorted(os.listdir(tmp_path))
    (tmp_path / ".run.pt.json.abc123.tmp").write_text("left by a kill -9")
    from compat import atomic

    real = atomic.atomic_write_text

    def failing(target, text, encoding="utf-8"):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "atomic_write_text", failing)
    torch.manual_seed(5)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, PTBModel(TEST), TEST, "test", 2, {})
    assert sorted(os.listdir(tmp_path)) == before  # the new tensor file is gone, the stale temp file too
    assert load_checkpoint(path)["epoch"] == 1
    monkeypatch.setattr(checkpoint, "atomic_write_text", real)
    _ptb_checkpoint(path, scale=2.0)
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 2 and "run.pt.json" in names, names
