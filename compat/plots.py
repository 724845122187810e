"""PNG plots of training curves (matplotlib, Agg backend; imported only when a plot is written)."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple

from compat.atomic import atomic_path


def save_curves(path, series: Mapping[str, Tuple[Sequence[float], Sequence[float]]], *, title: str = "",
                xlabel: str = "", ylabel: str = "", logy: bool = False,
                hlines: Optional[Mapping[str, float]] = None) -> None:
    """Plot named (x, y) series on one axis and write a PNG atomically.

    ``hlines`` draws dashed reference levels (for example a published result) with their labels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), label=label, marker="o" if len(xs) < 40 else None, markersize=3)
    for label, y in (hlines or {}).items():
        ax.axhline(y, linestyle="--", linewidth=1, color="gray")
        ax.annotate(label, (ax.get_xlim()[0], y), textcoords="offset points", xytext=(4, 3), fontsize=8, color="gray")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
