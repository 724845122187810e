"""Plain PyTorch of the same math as each port, for benchmarks/vs_legacy.py.

What an engineer would write by hand with no legacy semantics to honour: ``nn.Embedding`` +
``nn.LSTM`` + ``nn.Linear``, the same loss, ``torch.nn.utils.clip_grad_norm_`` and a ``torch.optim``
step (foreach). IMDB runs ``nn.LSTM`` over the padded batch (no packing) and pools with the masked mean,
which gives the tutorial's outputs for right-padded masks. Caffe is a bare loop over the fused kernel,
one ``nn.LSTM`` per layer with the state carried between windows, ``nn.Linear``, the Euclidean loss and
``torch.optim.SGD`` with momentum (Caffe's update at a fixed learning rate).
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import workload_data as data


def _timed(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - start


class LanguageModel(nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.proj = nn.Linear(hidden, vocab)

    def forward(self, x, state):
        out, state = self.lstm(self.embedding(x), state)
        return self.proj(out.reshape(-1, out.shape[-1])), state


def ptb_train(args):
    model = LanguageModel(data.PTB_VOCAB, 200, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0, foreach=True)
    batches = data.ptb_batches(20, 20, args.seed)
    st = {"s": None, "k": 0}

    def step():
        x, y = batches[st["k"] % len(batches)]
        st["k"] += 1
        opt.zero_grad(set_to_none=True)
        logits, state = model(torch.from_numpy(x), st["s"])
        loss = F.cross_entropy(logits, torch.from_numpy(y).reshape(-1), reduction="sum") / x.shape[0]
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0, foreach=True)
        opt.step()
        st["s"] = tuple(s.detach() for s in state)
        loss.item()

    return lambda n: _timed(step, n)


def ptb_test(args):
    model = LanguageModel(data.PTB_VOCAB, 200, 2).eval()
    ids = data.ptb_tokens(args.seed)
    st = {"s": None, "k": 0}

    def step():
        k = st["k"] % (len(ids) - 1)
        st["k"] += 1
        logits, st["s"] = model(torch.from_numpy(ids[k:k + 1].reshape(1, 1)), st["s"])
        float(F.cross_entropy(logits, torch.from_numpy(ids[k + 1:k + 2]), reduction="sum"))

    def run(n):
        with torch.no_grad():
            return _timed(step, n)

    return run


def shakespeare_train(args):
    V, H, B, T = data.SHAKESPEARE
    model = LanguageModel(V, H, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.001, foreach=True)
    batches = data.shakespeare_batches(args.seed)
    st = {"s": None, "k": 0}

    def step():
        x, y = batches[st["k"] % len(batches)]
        st["k"] += 1
        opt.zero_grad(set_to_none=True)
        logits, state = model(torch.from_numpy(x), st["s"])
        loss = F.cross_entropy(logits, torch.from_numpy(y).reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 4.5, foreach=True)
        opt.step()
        st["s"] = tuple(s.detach() for s in state)
        loss.item()

    return lambda n: _timed(step, n)


class Classifier(nn.Module):
    def __init__(self, n_words, dim, ydim, dtype):
        super().__init__()
        self.embedding = nn.Embedding(n_words, dim, dtype=dtype)
        self.lstm = nn.LSTM(dim, dim, dtype=dtype)
        self.out = nn.Linear(dim, ydim, dtype=dtype)

    def forward(self, x, mask):
        h, _ = self.lstm(self.embedding(x))
        pooled = (h * mask[:, :, None]).sum(0) / mask.sum(0)[:, None]
        pooled = pooled * torch.bernoulli(torch.full_like(pooled, 0.5))  # the tutorial's unscaled dropout
        return torch.softmax(self.out(pooled), dim=1)


def imdb(args, floatX: str):
    dtype = {"float64": torch.float64, "float32": torch.float32}[floatX]
    n_words, dim, ydim, _, _ = data.IMDB
    model = Classifier(n_words, dim, ydim, dtype)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-6, foreach=True)
    batches = [(torch.from_numpy(x), torch.from_numpy(m), torch.from_numpy(y))
               for x, m, y in data.imdb_batches(floatX, args.seed)]
    st = {"k": 0}

    def step():
        x, mask, y = batches[st["k"] % len(batches)]
        st["k"] += 1
        opt.zero_grad(set_to_none=True)
        pred = model(x, mask)
        loss = -torch.log(pred[torch.arange(pred.shape[0]), y] + 1e-8).mean()
        loss.backward()
        opt.step()
        loss.item()

    return lambda n: _timed(step, n)


def caffe(args, config: str):
    from ports.caffe_sequence.config import CONFIGS
    from ports.caffe_sequence.data import target_sequence

    layers, hidden = {"lstm_short": (1, 15), "lstm_long": (1, 50), "deep_short": (3, 7), "deep_long": (3, 23)}[config]
    T = 320
    total = CONFIGS[config][1]
    sequence = torch.as_tensor(target_sequence(total))
    lstms = nn.ModuleList(nn.LSTM(1 if k == 0 else hidden, hidden) for k in range(layers))
    ip = nn.Linear(hidden, 1)
    params = list(lstms.parameters()) + list(ip.parameters())
    opt = torch.optim.SGD(params, lr=0.0001, momentum=0.95, foreach=True)
    x = torch.zeros(T, 1, 1)
    st = {"it": 0, "h": [None] * layers}

    def step():
        k = st["it"] % (total // T)
        st["it"] += 1
        label = sequence[k * T:(k + 1) * T].reshape(T, 1)
        opt.zero_grad(set_to_none=True)
        inp = x
        for n, lstm in enumerate(lstms):
            hx = st["h"][n] if k > 0 else None  # clip[0] = (window > 0): the state carries within a sequence
            inp, hc = lstm(inp, hx)
            st["h"][n] = tuple(s.detach() for s in hc)
        pred = ip(inp.reshape(T, hidden))
        loss = ((pred - label) ** 2).sum() / T / 2
        loss.backward()
        opt.step()
        loss.item()

    return lambda n: _timed(step, n)


def sine_train(args):
    """nn.LSTM over the [B, 1, 10] windows (bias_hh frozen at TF's forget bias, 1.0 on the f block), nn.Linear,
    the mean squared error, Adagrad with TF's initial accumulator."""
    lstm, out = nn.LSTM(10, 30, 2, batch_first=True), nn.Linear(30, 1)
    for k in range(2):
        bias_hh = getattr(lstm, f"bias_hh_l{k}").requires_grad_(False)
        with torch.no_grad():
            bias_hh.zero_()[30:60] = 1.0
    params = [p for p in list(lstm.parameters()) + list(out.parameters()) if p.requires_grad]
    opt = torch.optim.Adagrad(params, lr=0.1, initial_accumulator_value=0.1, foreach=True)
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data.sine_batches(args.seed)]
    st = {"k": 0}

    def step():
        x, y = batches[st["k"] % len(batches)]
        st["k"] += 1
        opt.zero_grad(set_to_none=True)
        h, _ = lstm(x)
        loss = F.mse_loss(out(h[:, -1]).reshape(-1), y.reshape(-1))
        loss.backward()
        opt.step()
        loss.item()

    return lambda n: _timed(step, n)


def build(workload: str, args):
    return data.dispatch(sys.modules[__name__], workload, args)


__all__ = ["build", "np"]
