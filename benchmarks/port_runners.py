"""The ports' steps for benchmarks/vs_legacy.py: each ``build(workload, args)`` returns ``run(n) -> seconds``.

Inputs are shared with the other sides through :mod:`workload_data` (same ids, same batches, same
weights where the sides can take them), so every side does the same work.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

import workload_data as data


def fastloop_state() -> str:
    from compat import fastloop

    return "compiled" if fastloop.available() else f"unavailable ({fastloop.unavailable_reason()})"


def _timed(step, n: int, on_step=None) -> float:
    """``n`` steps' seconds; ``on_step`` after each (the contention check follows the machine's load there,
    as the programs' own loops do)."""
    start = time.perf_counter()
    for _ in range(n):
        step()
        if on_step is not None:
            on_step()
    return time.perf_counter() - start


def ptb_train(args):
    from ports.tf_ptb.config import Config
    from ports.tf_ptb.model import PTBModel
    from ports.tf_ptb.train import make_optimizer, train_step

    cfg = Config.preset("small")
    model = PTBModel(cfg, is_training=True)
    model.reset_parameters(torch.Generator().manual_seed(args.seed))
    optimizer = make_optimizer(model)  # run_epoch keeps one for the epoch
    batches = data.ptb_batches(cfg.batch_size, cfg.num_steps, args.seed)
    state = {"s": None, "k": 0}

    def step():
        x, y = batches[state["k"] % len(batches)]
        state["k"] += 1
        _, state["s"], _ = train_step(model, torch.from_numpy(x), torch.from_numpy(y), state["s"], 1.0, optimizer)

    return lambda n: _timed(step, n, args.on_step)


def ptb_test(args):
    from ports.tf_ptb.config import Config
    from ports.tf_ptb.model import PTBModel

    cfg = Config.preset("small").eval_config()
    model = PTBModel(cfg, is_training=False)
    model.reset_parameters(torch.Generator().manual_seed(args.seed))
    ids = data.ptb_tokens(args.seed)
    state = {"s": model.initial_state(1), "k": 0}

    def step():
        k = state["k"] % (len(ids) - 1)
        state["k"] += 1
        x = torch.from_numpy(ids[k:k + 1].reshape(1, 1))
        y = torch.from_numpy(ids[k + 1:k + 2].reshape(1, 1))
        logits, state["s"] = model(x, state["s"])
        float(model.cost(logits, y))  # run_epoch accumulates the cost as a Python float

    def run(n):
        with torch.no_grad():
            return _timed(step, n, args.on_step)

    return run


def shakespeare_train(args):
    from ports.tf_shakespeare.model import LSTMModel
    from ports.tf_shakespeare.train import make_optimizer, train_step

    V, H, B, T = data.SHAKESPEARE
    model = LSTMModel(H, V, B, T, generator=torch.Generator().manual_seed(args.seed))
    opt = make_optimizer(model, 0.001)
    batches = data.shakespeare_batches(args.seed)
    state = {"s": None, "k": 0}

    def step():
        x, y = batches[state["k"] % len(batches)]
        state["k"] += 1
        _, state["s"], _ = train_step(model, opt, torch.from_numpy(x), torch.from_numpy(y), state["s"], 4.5)

    return lambda n: _timed(step, n, args.on_step)


def imdb(args, floatX: str):
    from ports.theano_imdb.model import LSTMClassifier
    from ports.theano_imdb.optimizers import Adadelta

    dtype = {"float64": torch.float64, "float32": torch.float32}[floatX]
    batches = data.imdb_batches(floatX, args.seed)
    params = data.imdb_params(floatX, args.seed)
    model = LSTMClassifier.from_params(params, dtype=dtype)
    model.generator = torch.Generator().manual_seed(args.seed)
    model.train()
    opt = Adadelta(model.parameters())
    state = {"k": 0}

    def step():
        x, mask, y = batches[state["k"] % len(batches)]
        state["k"] += 1
        opt.zero_grad(set_to_none=True)
        loss = model.cost(x, mask, y)
        loss.backward()
        opt.step()
        loss.item()  # train_lstm reads the cost every update

    return lambda n: _timed(step, n, args.on_step)


def caffe(args, config: str):
    from ports.caffe_sequence.config import RunConfig
    from ports.caffe_sequence.train import Trainer

    trainer = Trainer(RunConfig(config, Path("."), progress=False, seed=args.seed))
    state = {"it": 0}

    def step():
        trainer.train_step(state["it"])
        state["it"] += 1

    return lambda n: _timed(step, n, args.on_step)


def sine_train(args):
    from ports.tf_sine import Config, SineLSTM, make_optimizer, train_step

    config = Config()
    model = SineLSTM(config, generator=torch.Generator().manual_seed(args.seed))
    opt = make_optimizer(model, config.learning_rate, config.initial_accumulator_value)
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data.sine_batches(args.seed)]
    state = {"k": 0}

    def step():
        x, y = batches[state["k"] % len(batches)]
        state["k"] += 1
        train_step(model, opt, x, y)

    return lambda n: _timed(step, n)


def build(workload: str, args):
    """``run(n) -> seconds`` of the port's ``workload``; ``args.on_step`` (may be None) is called after each step."""
    if not hasattr(args, "on_step"):
        args.on_step = None
    return data.dispatch(sys.modules[__name__], workload, args)


__all__ = ["build", "fastloop_state", "np"]
