"""The lstm_sequence example's training and generation (junhyukoh/caffe-lstm examples/lstm_sequence/lstm_sequence.cpp).

``main``: build the solver's train net, set every Lstm layer's forget-gate bias block to 5, train on
320-step windows of the target function with clip = 1 except clip[0] = (window index > 0), then share
the weights with a one-step TEST net and run it free over the whole length with clip = (i > 0), writing
"target prediction" lines.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch

from compat import checkpoint
from compat.atomic import atomic_write_text
from compat.checkpoint import Fields, manifest_path
from compat.errors import TrainingDiverged
from compat.progress import Progress
from compat.formats.prototxt import TextMessage, read_prototxt
from ports.caffe_sequence.config import CONFIG_DIR, CONFIGS, FORGET_BIAS, RunConfig, resolve_net_path
from ports.caffe_sequence.data import target_sequence, training_windows
from ports.caffe_sequence.layers import JunhyukohLSTM
from ports.caffe_sequence.model import CaffeNet
from ports.caffe_sequence.solver import CaffeSGD

CHECKPOINT_FORMAT = "ports.caffe_sequence"
# Caps on a resumed checkpoint's counters (docs/security.md).
MAX_ITERATIONS = 1 << 40
MAX_LOG_ROWS = 10_000_000
MAX_STREAMS = 1 << 16


def set_forget_bias(net: CaffeNet, value: float = FORGET_BIAS) -> None:
    """caffe_set(h, 5, bias + h) on every Lstm layer: the f block of b (gate order i, f, o, g)."""
    with torch.no_grad():
        for m in net.layer_modules.values():
            if isinstance(m, JunhyukohLSTM):
                H = m.hidden_size
                m.b[H:2 * H] = value


def smoothed_update(losses: List[float], smoothed: float, loss: float, k: int, average_loss: int) -> float:
    """Solver::Step's running mean of the last ``average_loss`` losses (k = iterations since start)."""
    if len(losses) < average_loss:
        losses.append(loss)
        size = len(losses)
        return (smoothed * (size - 1) + loss) / size
    idx = k % average_loss
    smoothed += (loss - losses[idx]) / average_loss
    losses[idx] = loss
    return smoothed


@dataclass
class TrainState:
    it: int = 0
    losses: List[float] = field(default_factory=list)
    smoothed: float = 0.0
    log: List[Tuple[int, float, float]] = field(default_factory=list)


class Trainer:
    """The training half of lstm_sequence.cpp on the port's net and Caffe's SGD."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        solver_file, self.total_length = CONFIGS[cfg.config]
        self.solver_path = CONFIG_DIR / solver_file
        self.solver_param = read_prototxt(self.solver_path)
        self.net_path = resolve_net_path(self.solver_path, self.solver_param)
        self.net_param = read_prototxt(self.net_path)
        self.device = torch.device(cfg.device)
        gen = torch.Generator().manual_seed(cfg.seed)
        self.net = CaffeNet(self.net_param, "TRAIN", generator=gen, source=str(self.net_path))
        for m in self.net.layer_modules.values():
            if isinstance(m, JunhyukohLSTM):
                m.dwh_defect = cfg.dwh_defect
        set_forget_bias(self.net)
        self.net.to(self.device)
        self.solver = CaffeSGD(self.net.learnable_params(), self.solver_param)
        self.max_iter = int(self.solver_param.get("max_iter", 0)) if cfg.iters is None else cfg.iters
        self.average_loss = int(self.solver_param.get("average_loss", 1))
        self.display = int(self.solver_param.get("display", 0))
        self.seq_length = self.net.input_shapes["data"][0]
        if self.total_length % self.seq_length:
            raise ValueError(f"TotalLength {self.total_length} is not a multiple of the net's {self.seq_length} steps")
        self.sequence = torch.as_tensor(target_sequence(self.total_length))
        self.windows = training_windows(self.sequence, self.seq_length, self.device)
        # lstm_sequence.cpp never writes the train net's data blob: zeros throughout
        self.data = torch.zeros(self.seq_length, 1, device=self.device)
        self.state = TrainState()

    # ---------------------------------------------------------------------------------- checkpoints
    def checkpoint(self) -> dict:
        lstm_states = []
        for m in self.net.lstm_layers():
            s = m.state
            lstm_states.append(None if s is None else [s[0].cpu(), s[1].cpu()])
        return {
            "config": self.cfg.config, "seed": self.cfg.seed, "dwh_defect": self.cfg.dwh_defect,
            "solver_text": self.solver_path.read_text(), "net_text": self.net_path.read_text(),
            "params": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "solver": self.solver.state_dict(), "lstm_states": lstm_states,
            "it": self.state.it, "losses": list(self.state.losses), "smoothed": self.state.smoothed,
            "log": [list(r) for r in self.state.log],
        }

    def save(self, path: Path) -> None:
        """Checkpoint ``path`` (``path.json`` and a ``.safetensors`` file beside it; no pickle)."""
        checkpoint.save(path, CHECKPOINT_FORMAT, self.checkpoint())

    def load(self, path: Path, *, allow_nonfinite: bool = False) -> None:
        """Resume from a checkpoint of :meth:`save`, every field checked before anything is set: the
        tensors' names and shapes against this net, the solver history, the carried LSTM states and the
        counters. NaN or infinite weights are refused by name unless ``allow_nonfinite``."""
        ck = checkpoint.read(path, CHECKPOINT_FORMAT)
        f = Fields(ck)
        # "fallbacks": counted by checkpoints of earlier versions, which are read as well
        c = f.dict(ck.content, "content", keys=("config", "seed", "dwh_defect", "solver_text", "net_text", "params",
                                                "solver", "lstm_states", "it", "losses", "smoothed", "log"),
                   optional=("fallbacks",))
        if f.str(c["config"], "config", max_length=100) != self.cfg.config:
            raise f.error("config", f"a checkpoint of --config {c['config']}, not {self.cfg.config}")
        f.int(c["seed"], "seed", -(1 << 63), (1 << 64) - 1)
        f.bool(c["dwh_defect"], "dwh_defect")
        f.str(c["solver_text"], "solver_text")
        f.str(c["net_text"], "net_text")
        f.state_dict(c["params"], "params", {k: tuple(v.shape) for k, v in self.net.state_dict().items()})
        solver = f.dict(c["solver"], "solver", keys=("history", "current_step"))
        history = f.list(solver["history"], "solver/history", length=len(self.solver.history))
        for k, (h, ref) in enumerate(zip(self.solver.history, history)):
            f.tensor(ref, f"solver/history/{k}", shape=h.shape, floating=True)
        current_step = f.int(solver["current_step"], "solver/current_step", 0, MAX_ITERATIONS)
        layers = self.net.lstm_layers()
        states = f.list(c["lstm_states"], "lstm_states", length=len(layers))
        for k, (m, s) in enumerate(zip(layers, states)):
            if s is not None:
                f.list(s, f"lstm_states/{k}", length=2)
                n = getattr(m, "batch_size", None)
                for j, ref in enumerate(s):
                    ref = f.tensor(ref, f"lstm_states/{k}/{j}", floating=True)
                    if len(ref.shape) != 3 or ref.shape[0] != 1 or ref.shape[2] != m.hidden_size or \
                            (n is not None and ref.shape[1] != n) or not 1 <= ref.shape[1] <= MAX_STREAMS:
                        raise f.error(f"lstm_states/{k}/{j}", f"shape {list(ref.shape)}; expected [1, N, "
                                                              f"{m.hidden_size}]" + (f" with N = {n}" if n else ""))
        it = f.int(c["it"], "it", 0, MAX_ITERATIONS)
        losses = f.floats(c["losses"], "losses", max_length=max(1, self.average_loss))
        smoothed = f.float(c["smoothed"], "smoothed", finite=False)
        if "fallbacks" in c:
            f.int(c["fallbacks"], "fallbacks", 0, MAX_ITERATIONS)
        log = []
        for k, row in enumerate(f.list(c["log"], "log", max_length=MAX_LOG_ROWS)):
            f.list(row, f"log/{k}", length=3)
            log.append((f.int(row[0], f"log/{k}/0", 0, MAX_ITERATIONS), f.float(row[1], f"log/{k}/1", finite=False),
                        f.float(row[2], f"log/{k}/2", finite=False)))
        tensors = ck.materialize(allow_nonfinite, {"params": c["params"], "history": history, "states": states})
        self.net.load_state_dict(tensors["params"])
        self.solver.load_state_dict({"history": tensors["history"], "current_step": current_step})
        for m, s in zip(layers, tensors["states"]):
            m.set_state(None if s is None else (s[0].to(self.device), s[1].to(self.device)))
        self.state = TrainState(it, losses, smoothed, log)

    # ---------------------------------------------------------------------------------- training
    def train_step(self, it: int) -> float:
        """One solver iteration (Solver::Step(1)): forward and backward over window ``it``, the update;
        returns the loss."""
        clip, label = self.windows[it % len(self.windows)]
        self.solver.zero_grad()
        blobs = self.net(kernel=self.cfg.kernel, data=self.data, clip=clip, label=label)
        loss = self.net.loss(blobs)
        loss.backward()
        value = loss.item()
        self.solver.step(it)
        return value

    def train(self, log_path: Optional[Path] = None, on_step: Optional[Callable[[], None]] = None) -> None:
        """Iterations from the current one to max_iter, logging every ``display`` and checkpointing every
        ``checkpoint_every``; ``on_step`` is called after each (the CLI follows the machine's load there)."""
        cfg = self.cfg
        start = self.state.it
        bar = Progress(total=self.max_iter, desc=cfg.config, unit="it/s", enabled=cfg.progress)
        bar.count = start
        log_fh = open(log_path, "a") if log_path else None
        try:
            for it in range(start, self.max_iter):
                loss = self.train_step(it)
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"the loss became {loss} at iteration {it} (the solver's base_lr "
                                           f"{self.solver.base_lr:g} may be too high)")
                self.state.smoothed = smoothed_update(self.state.losses, self.state.smoothed, loss, it,
                                                      self.average_loss)
                self.state.it = it + 1
                if self.display and it % self.display == 0:
                    self.state.log.append((it, loss, self.state.smoothed))
                    if log_fh:
                        log_fh.write(f"iter {it} loss {loss:.6g} smoothed {self.state.smoothed:.6g}\n")
                        log_fh.flush()
                bar.update(1, loss=f"{self.state.smoothed:.5f}")
                if cfg.save and cfg.checkpoint_every and (it + 1) % cfg.checkpoint_every == 0:
                    self.save(cfg.save)
                if on_step is not None:
                    on_step()
        finally:
            if log_fh:
                log_fh.close()
            bar.close()
        if cfg.save:
            self.save(cfg.save)


def generate(train_net: CaffeNet, net_param: TextMessage, total_length: int, device="cpu",
             kernel: str = "auto") -> np.ndarray:
    """The test half of lstm_sequence.cpp: a TEST-phase net sharing the trained weights, reshaped to one
    step, run ``total_length`` times with clip = (i > 0) and an all-zero data input."""
    test_net = CaffeNet(net_param, "TEST").to(device)
    test_net.share_trained_layers_with(train_net)
    if len(test_net.output_names) != 1:
        raise ValueError(f"the TEST net has outputs {test_net.output_names}; lstm_sequence expects one")
    out_name = test_net.output_names[0]
    data = torch.zeros(1, 1, device=device)
    preds = np.zeros(total_length, dtype=np.float32)
    with torch.no_grad():
        for i in range(total_length):
            clip = torch.full((1, 1), float(i > 0), device=device)
            blobs = test_net(kernel=kernel, data=data, clip=clip)
            pred = blobs[out_name]
            if pred.numel() != 1:
                raise ValueError(f"the TEST net's output {out_name} has {pred.numel()} values; expected 1")
            preds[i] = float(pred)
    return preds


def write_results(out_dir: Path, name: str, target: np.ndarray, preds: np.ndarray) -> float:
    """The result file ("target prediction" per line, as lstm_sequence.cpp's log_file); returns the MSE."""
    lines = "".join(f"{t:.6g} {p:.6g}\n" for t, p in zip(target, preds))
    atomic_write_text(out_dir / f"{name}_result.log", lines)
    return float(np.mean((preds.astype(np.float64) - target.astype(np.float64)) ** 2))


def plot_generation(out_dir: Path, name: str, target: np.ndarray, preds: np.ndarray, mse: float) -> None:
    from compat.plots import save_curves

    steps = np.arange(len(target))
    save_curves(out_dir / f"{name}_generation.png", {"target": (steps, target), "generated": (steps, preds)},
                title=f"{name}: target vs free-running generation (MSE {mse:.4g})",
                xlabel="step i (t = 0.01 i)", ylabel="value")


def plot_loss(out_dir: Path, name: str, log: List[Tuple[int, float, float]]) -> None:
    if not log:
        return
    from compat.plots import save_curves

    xs = [r[0] for r in log]
    save_curves(out_dir / f"{name}_loss.png", {"loss (display iterations)": (xs, [r[1] for r in log]),
                                               "smoothed (average_loss)": (xs, [r[2] for r in log])},
                title=f"{name}: EuclideanLoss", xlabel="iteration", ylabel="loss", logy=True)


def output_files(out_dir: Path, name: str, iterations: int, save: Optional[Path]) -> List[Tuple[Path, str]]:
    """Every file a run may write, with what it holds (for the closing lines)."""
    return [(out_dir / "train.log", "loss and smoothed loss every display iterations"),
            (out_dir / f"{name}_result.log", "'target prediction' per step, as lstm_sequence.cpp writes it"),
            (out_dir / f"{name}_iter_{iterations}.caffemodel", "the trained net, Caffe's binary format"),
            (save and manifest_path(save), "checkpoint (with the .safetensors file beside it); --resume reads it"),
            (out_dir / "summary.json", "losses, generation MSE, timings (JSON)"),
            (out_dir / f"{name}_generation.png", "target vs generated sequence (PNG)"),
            (out_dir / f"{name}_loss.png", "loss curve (PNG)")]


def run(cfg: RunConfig, *, caffemodel_in: Optional[Path] = None, generate_only: bool = False,
        on_step: Optional[Callable[[], None]] = None) -> dict:
    """Train (or load) and generate; returns a summary dict also written as summary.json. ``on_step``: called
    after every training iteration."""
    out_dir = cfg.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    trainer = Trainer(cfg)
    if cfg.resume:
        trainer.load(cfg.resume)
    if caffemodel_in is not None:
        from compat.formats.caffemodel import read_caffemodel

        copied = trainer.net.copy_trained_layers_from(read_caffemodel(caffemodel_in), str(caffemodel_in))
        if not copied:
            raise ValueError(f"{caffemodel_in}: no layer name matches the net's layers "
                             f"{list(trainer.net.layer_modules)}")
    t0 = time.perf_counter()
    if not generate_only and caffemodel_in is None:
        trainer.train(out_dir / "train.log", on_step)
    train_s = time.perf_counter() - t0
    preds = generate(trainer.net, trainer.net_param, trainer.total_length, trainer.device, cfg.kernel)
    target = trainer.sequence.numpy()
    mse = write_results(out_dir, cfg.config, target, preds)
    summary = {"config": cfg.config, "iterations": trainer.state.it, "smoothed_loss": trainer.state.smoothed,
               "generation_mse": mse, "train_seconds_this_run": round(train_s, 1), "seed": cfg.seed, "dwh_defect": cfg.dwh_defect,
               "smoothed_at": {str(it): s for it, _, s in trainer.state.log
                               if it in (1000, 10000, 50000) or it == trainer.state.log[-1][0]}}
    from compat.formats.caffemodel import write_caffemodel

    write_caffemodel(out_dir / f"{cfg.config}_iter_{trainer.state.it}.caffemodel", trainer.net.blobs_by_layer(),
                     name=trainer.net.name)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    if cfg.plot:  # after every result: a plot never costs one
        plot_generation(out_dir, cfg.config, target, preds, mse)
        plot_loss(out_dir, cfg.config, trainer.state.log)
    return summary
