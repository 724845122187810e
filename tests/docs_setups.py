"""The inputs of the docs' code fragments (tests/test_docs.py): each setup makes, in the block's working
folder, the names and files a fragment uses as if they were the reader's own, and returns the names."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict

import numpy as np
import torch

SETUPS: Dict[str, Callable[[Path], dict]] = {}


def setup(name: str):
    def register(fn):
        SETUPS[name] = fn
        return fn
    return register


def _rng() -> np.random.RandomState:
    return np.random.RandomState(0)


@setup("lstm-inputs")
def lstm_inputs(folder: Path) -> dict:
    """A TF BasicLSTMCell's kernel and bias (numpy, as a checkpoint holds them) and a batch: x [T, B, in],
    Caffe's cont and Theano's mask [T, B]."""
    rng, T, B, I, H = _rng(), 5, 3, 4, 6
    kernel = rng.uniform(-0.3, 0.3, (I + H, 4 * H)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, 4 * H).astype(np.float32)
    x = torch.from_numpy(rng.randn(T, B, I).astype(np.float32))
    cont = torch.ones(T, B)
    cont[0] = 0
    cont[3, 1] = 0  # stream 1 restarts at step 3
    mask = torch.ones(T, B)
    mask[3:, 2] = 0  # sequence 2 is 3 steps long
    return dict(kernel=kernel, bias=bias, x=x, cont=cont, mask=mask, h0=torch.zeros(1, B, H),
                c0=torch.zeros(1, B, H))


def _tf_cell_checkpoint(folder: Path, prefix: str, with_embedding: bool = False) -> None:
    """A TF1 checkpoint of one BasicLSTMCell under ``rnn/lstm_cell`` (and an embedding it leaves unconverted)."""
    from compat.formats.tf import save_checkpoint

    rng, I, H = _rng(), 4, 6
    variables = {"rnn/lstm_cell/kernel": rng.uniform(-0.3, 0.3, (I + H, 4 * H)).astype(np.float32),
                 "rnn/lstm_cell/bias": rng.uniform(-0.1, 0.1, 4 * H).astype(np.float32)}
    if with_embedding:
        variables["embedding"] = rng.randn(10, I).astype(np.float32)
    save_checkpoint(folder / prefix, variables)


@setup("converted")
def converted(folder: Path) -> dict:
    """OUT.safetensors: a converted TF1 checkpoint whose LSTM is named ``rnn/lstm_cell``; x [T, B, 4]."""
    from compat.convert import convert

    _tf_cell_checkpoint(folder, "model.ckpt")
    convert(folder / "model.ckpt", folder / "OUT.safetensors", forget_bias=1.0)
    return dict(x=torch.randn(5, 3, 4))


@setup("converted-with-carried")
def converted_with_carried(folder: Path) -> dict:
    """model.safetensors: a converted TF1 checkpoint with a tensor carried unconverted (an embedding)."""
    from compat.convert import convert

    _tf_cell_checkpoint(folder, "model.ckpt", with_embedding=True)
    convert(folder / "model.ckpt", folder / "model.safetensors", forget_bias=1.0)
    return {}


@setup("ptb-checkpoint")
def ptb_checkpoint(folder: Path) -> dict:
    """runs/ptb: a TF1 checkpoint directory of ptb_word_lm's test model (``model.ckpt-13``), and that model."""
    from compat.formats.tf import save_checkpoint
    from ports.tf_ptb import Config, PTBModel

    model = PTBModel(Config.preset("test"))
    save_checkpoint(folder / "runs" / "ptb" / "model.ckpt-13", model.export_tf1_variables())
    return dict(model=model)


@setup("layout-tensors")
def layout_tensors(folder: Path) -> dict:
    """Every name docs/layouts.md's fragment uses, shaped as each framework stores it."""
    rng, T, B, I, H = _rng(), 5, 3, 4, 6
    f32 = lambda *shape: rng.uniform(-0.3, 0.3, shape).astype(np.float32)  # noqa: E731
    onnx_h, proj = 64, 128
    return dict(
        kernel=f32(I + H, 4 * H), bias=f32(4 * H), x=torch.from_numpy(f32(T, B, I)),
        h0=torch.zeros(1, B, H), c0=torch.zeros(1, B, H),
        lstm_W=f32(I, 4 * H), lstm_U=f32(H, 4 * H), lstm_b=f32(4 * H),
        blobs=[f32(4 * H, I), f32(4 * H), f32(4 * H, H)],
        W=f32(1, 4 * onnx_h, I), R=f32(1, 4 * onnx_h, onnx_h), B=f32(1, 8 * onnx_h), P=f32(1, 3 * onnx_h),
        sequence_lens=torch.tensor([5, 3, 4]),
        k=f32(I + proj, 4 * H), b=f32(4 * H), wi=f32(H), wf=f32(H), wo=f32(H), p=f32(H, proj), r=f32(H, 4 * H))


@setup("junhyukoh-blobs")
def junhyukoh_blobs(folder: Path) -> dict:
    """The fork's Lstm blobs W_x [4H, I], W_h [4H, H], b [4H] (numpy) and an input x [T, N, I]."""
    rng, T, N, I, H = _rng(), 5, 2, 3, 4
    return dict(W_x=rng.randn(4 * H, I).astype(np.float32), W_h=rng.randn(4 * H, H).astype(np.float32),
                b=rng.randn(4 * H).astype(np.float32), I=I, H=H, x=torch.randn(T, N, I))


@setup("caffe-files")
def caffe_files(folder: Path) -> dict:
    """The fork's lstm_sequence net as deploy.prototxt with its weights (weights.caffemodel, and the same as
    lstm_short_iter_100000.caffemodel), a BVLC LSTM layer's captioner.caffemodel, and inputs for each."""
    import shutil

    from compat.formats.caffemodel import write_caffemodel
    from ports.caffe_sequence.model import CaffeNet

    config = Path(__file__).resolve().parent.parent / "ports" / "caffe_sequence" / "configs" / "lstm_short.prototxt"
    shutil.copy(config, folder / "deploy.prototxt")
    net = CaffeNet.from_files(folder / "deploy.prototxt", None, phase="TEST")
    for name in ("weights.caffemodel", "lstm_short_iter_100000.caffemodel"):
        write_caffemodel(folder / name, net.blobs_by_layer())
    rng, I, H = _rng(), 3, 5
    write_caffemodel(folder / "captioner.caffemodel",
                     [("lstm1", "LSTM", [rng.randn(4 * H, I).astype(np.float32), np.zeros(4 * H, np.float32),
                                         rng.randn(4 * H, H).astype(np.float32)])])
    clip = torch.ones(320, 1)
    clip[0] = 0
    return dict(data=torch.randn(320, 1), clip=clip, x=torch.randn(6, 2, I), cont=torch.ones(6, 2))


@setup("ptb-files")
def ptb_files(folder: Path) -> dict:
    """simple-examples/data: a PTB-format corpus of the small model's 10,000 words (a few hundred steps
    shorter than PTB: 25 steps), and train_dir/model.ckpt-12345: the small model's weights as TF1 wrote them."""
    from compat.formats.tf import save_checkpoint
    from ports.tf_ptb import Config, PTBModel

    data = folder / "simple-examples" / "data"
    data.mkdir(parents=True)
    words = _rng().permutation([f"w{i}" for i in range(9999)])  # and <eos>: 10,000
    for part, lines in (("train", 1), ("valid", 1), ("test", 1)):
        (data / f"ptb.{part}.txt").write_text("".join(f" {' '.join(words)} \n" for _ in range(lines)))
    save_checkpoint(folder / "train_dir" / "model.ckpt-12345", PTBModel(Config.preset("small")).export_tf1_variables())
    return {}


@setup("shakespeare-files")
def shakespeare_files(folder: Path) -> dict:
    """pg100.txt (../shared/data's copy) and temp/shakespeare_model/model-1500: the recipe's model as TF1
    wrote it (128 units, the vocabulary of 8,008 words and 'unknown')."""
    from compat.formats.tf import save_checkpoint
    from ports.tf_shakespeare import LSTMModel
    from tests.conftest import shared_data_path

    (folder / "pg100.txt").symlink_to(shared_data_path("shakespeare", "pg100.txt"))
    torch.manual_seed(0)
    model = LSTMModel(128, 8009, batch_size=100, training_seq_len=50)
    variables = {k: v.detach().numpy() for k, v in model.tf1_variables().items()}
    save_checkpoint(folder / "temp" / "shakespeare_model" / "model-1500", variables)
    return {}


@setup("theano-npz")
def theano_npz(folder: Path) -> dict:
    """lstm_model.npz as the tutorial writes it (init_params of a small model), and a few reviews."""
    from ports.theano_imdb import init_params, save_params

    save_params(folder / "lstm_model.npz", init_params(n_words=100, dim_proj=8, ydim=2))
    rng = _rng()
    seqs = [list(rng.randint(1, 100, n)) for n in (5, 9, 3)]
    return dict(seqs=seqs, labels=[0, 1, 1])


@setup("one-thread")
def one_thread(folder: Path) -> dict:
    """One CPU thread, as ``python -m ports.tf_sine`` chooses for these products (the suite restores its count)."""
    torch.set_num_threads(1)
    return {}
