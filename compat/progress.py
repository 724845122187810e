"""A dependency-free progress bar for the ports' long runs: rate, running figures and ETA.

    bar = Progress(total=epoch_size, desc="epoch 1", unit="wps")
    for step in range(epoch_size):
        ...
        bar.update(1, items=words, perplexity=f"{ppl:.2f}")
    bar.close()

On a terminal it redraws one line; otherwise (logs, CI) it prints a line every ``every_s`` seconds.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def _fmt_seconds(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class Progress:
    """Progress over ``total`` steps. ``items`` counted per update give the rate (``unit`` per second)."""

    def __init__(self, total: Optional[int], desc: str = "", unit: str = "it/s", stream: Optional[TextIO] = None,
                 every_s: float = 10.0, enabled: bool = True):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every_s, self.enabled = every_s, enabled
        self.count = 0
        self.items = 0.0
        self.start = time.perf_counter()
        self._last_print = 0.0
        self._printed_count = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.fields: dict = {}

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        """Items (or steps, when no items are counted) per second."""
        elapsed = max(self.elapsed, 1e-9)
        return (self.items if self.items else self.count) / elapsed

    def update(self, steps: int = 1, items: float = 0.0, **fields) -> None:
        self.count += steps
        self.items += items
        self.fields.update(fields)
        now = self.elapsed
        if not self.enabled:
            return
        if self._tty or now - self._last_print >= self.every_s or (self.total and self.count >= self.total):
            self._last_print = now
            self._draw(final=False)

    def line(self) -> str:
        parts = [self.desc] if self.desc else []
        if self.total:
            frac = min(1.0, self.count / self.total)
            width = 20
            filled = int(frac * width)
            parts.append(f"[{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total}")
            eta = self.elapsed / max(self.count, 1) * (self.total - self.count)
        else:
            parts.append(f"{self.count}")
            eta = float("nan")
        rate = self.rate
        if 0 < rate < 1:
            step = self.unit[:-2] if self.unit.endswith("/s") else self.unit
            parts.append(f"{1 / rate:,.1f} s/{step}")
        else:
            parts.append(f"{rate:,.1f} {self.unit}")
        parts += [f"{k} {v}" for k, v in self.fields.items()]
        parts.append(f"elapsed {_fmt_seconds(self.elapsed)}")
        if self.total:
            parts.append(f"ETA {_fmt_seconds(eta)}")
        return "  ".join(parts)

    def _draw(self, final: bool) -> None:
        self._printed_count = self.count
        text = self.line()
        if self._tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state (a terminal gets its newline; a log gets the line unless already printed)."""
        if not self.enabled:
            return
        if self._tty:
            self._draw(final=True)
        elif self._printed_count != self.count:
            self._draw(final=True)
