"""PNG plots of training curves (matplotlib, Agg backend; imported only when a plot is written).

A plot never breaks a run: the ports write their results (models, logs, summaries) first, and a plot that
cannot be drawn (no matplotlib, a full disk, a backend error) is a warning on stderr, not an exception.
"""
from __future__ import annotations

import sys
from typing import Mapping, Optional, Sequence, Tuple

from compat.atomic import atomic_path


def save_curves(path, series: Mapping[str, Tuple[Sequence[float], Sequence[float]]], *, title: str = "",
                xlabel: str = "", ylabel: str = "", logy: bool = False,
                hlines: Optional[Mapping[str, float]] = None, strict: bool = False) -> bool:
    """Plot named (x, y) series on one axis and write a PNG atomically; True when it was written.

    ``hlines`` draws dashed reference levels (for example a published result) with their labels. A failure
    prints a warning naming the file and returns False (``strict=True`` raises it instead).
    """
    try:
        _save_curves(path, series, title=title, xlabel=xlabel, ylabel=ylabel, logy=logy, hlines=hlines)
    except Exception as e:  # noqa: BLE001 - a plot is never worth a failed run
        if strict:
            raise
        reason = "matplotlib is not installed" if isinstance(e, ImportError) else f"{type(e).__name__}: {e}"
        print(f"warning: plot {path} not written ({reason})", file=sys.stderr, flush=True)
        return False
    return True


def _save_curves(path, series, *, title, xlabel, ylabel, logy, hlines) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    try:
        _draw(fig, ax, series, title=title, xlabel=xlabel, ylabel=ylabel, logy=logy, hlines=hlines)
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


def _draw(fig, ax, series, *, title, xlabel, ylabel, logy, hlines) -> None:
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
