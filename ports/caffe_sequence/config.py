"""The lstm_sequence example's configurations (junhyukoh/caffe-lstm examples/lstm_sequence): the four
solver + net pairs of its test_<config>.sh scripts, the example's constants, and one run's settings."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from compat.formats.prototxt import TextMessage

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# --config name -> (solver file, TotalLength: the third argument of the test_*.sh scripts)
CONFIGS: Dict[str, Tuple[str, int]] = {
    "lstm_short": ("lstm_short_solver.prototxt", 320),
    "lstm_long": ("lstm_long_solver.prototxt", 960),
    "deep_short": ("deep_short_solver.prototxt", 320),
    "deep_long": ("deep_long_solver.prototxt", 960),
}
FORGET_BIAS = 5.0  # lstm_sequence.cpp: "Initialize bias for the forget gate to 5"


@dataclass
class RunConfig:
    """One run of the example: which configuration, for how long, where, and the port's own options.

    ``dwh_defect``: train with the fork's dW_h gradient (its default) or the true one. ``kernel``: the
    core's kernel for the LSTM layers, ``"auto"`` (the core's choice) or a name of
    :data:`compat.recurrent.KERNELS` (benchmarks and tests)."""

    config: str
    out_dir: Path
    iters: Optional[int] = None
    device: str = "cpu"
    seed: int = 1701
    resume: Optional[Path] = None
    save: Optional[Path] = None
    checkpoint_every: int = 5000
    dwh_defect: bool = True
    kernel: str = "auto"
    progress: bool = True
    plot: bool = True


def resolve_net_path(solver_path: Path, solver: TextMessage) -> Path:
    """The net file a solver names (``net:`` or ``train_net:``), beside the solver or in the working directory."""
    net = solver.get("net") or solver.get("train_net")
    if net is None:
        raise ValueError(f"{solver_path}: the solver names no net (net: or train_net:)")
    for candidate in (solver_path.parent / str(net), Path(str(net))):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{solver_path}: net file {net!r} not found beside the solver or in the working directory")


__all__ = ["CONFIGS", "CONFIG_DIR", "FORGET_BIAS", "RunConfig", "resolve_net_path"]
