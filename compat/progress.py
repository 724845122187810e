"""The ports' progress bar for long runs: rate, running figures and ETA.

Hand-written, not tqdm: tqdm redraws with carriage returns, which a log (CI, ``nohup``, a pipe) keeps as one
ever-growing line, and its rate average weighs in the warm-up step; here a log gets a whole line every
``every_s`` seconds and the ETA leaves the warm-up step out (below).

    bar = Progress(total=epoch_size, desc="epoch 1", unit="wps")
    for step in range(epoch_size):
        ...
        bar.update(1, items=words, perplexity=f"{ppl:.2f}")
    bar.close()

On a terminal it redraws one line; otherwise (logs, CI) it prints a line every ``every_s`` seconds.

The ETA comes from a smoothed time per step: the first update (which pays for warm-up: allocations,
kernel selection, caches) is left out as soon as a second one exists, the first steps are averaged, and
later ones enter an exponential moving average, so the first ETA printed is already close to the truth
and later ones follow a rate that changes (a busy machine, longer batches) without jumping.
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
        self._last_update = self.start
        self._first_step_s: Optional[float] = None  # the warm-up update's time per step
        self._step_s: Optional[float] = None  # smoothed time per step after the first update
        self._smoothed_steps = 0

    # Weight of a new measurement once the running mean has settled (about the last 20 updates).
    SMOOTHING = 0.05

    def _observe(self, steps: int) -> None:
        now = time.perf_counter()
        dt, self._last_update = now - self._last_update, now
        if steps <= 0:
            return
        per_step = dt / steps
        if self._first_step_s is None:
            self._first_step_s = per_step
            return
        self._smoothed_steps += 1
        weight = max(self.SMOOTHING, 1.0 / self._smoothed_steps)  # a plain mean at first, then an EMA
        self._step_s = per_step if self._step_s is None else self._step_s + weight * (per_step - self._step_s)

    def seconds_per_step(self) -> float:
        """The smoothed time per step (NaN before any update)."""
        if self._step_s is not None:
            return self._step_s
        return self._first_step_s if self._first_step_s is not None else float("nan")

    def eta(self) -> float:
        """Seconds left, from the smoothed time per step (NaN without a total or a measurement)."""
        if not self.total:
            return float("nan")
        return max(0, self.total - self.count) * self.seconds_per_step()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        """Items (or steps, when no items are counted) per second."""
        elapsed = max(self.elapsed, 1e-9)
        return (self.items if self.items else self.count) / elapsed

    def update(self, steps: int = 1, items: float = 0.0, **fields) -> None:
        self._observe(steps)
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
        else:
            parts.append(f"{self.count}")
        eta = self.eta()
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
