"""Progress of long work: item k of N, rate and time left, as plain lines.

A full release takes hours, so every long loop (blocks of a stage, gene chunks of the metrics,
blocks of the target) says how far it is. Lines are plain text, one per step, so they read the
same on a terminal, in CI and in a log file (no carriage returns, no colours).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


def duration(seconds: float) -> str:
    """`seconds` as a short human duration: 42 s, 3.5 min, 2.1 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Progress:
    """Counts finished steps of `total` and reports each with its rate and the time left.

    `unit` names what the rate counts (samples, genes); each `step(done_units)` adds the units
    the step finished. The estimate is the mean rate so far, which suits the equal-sized blocks
    and chunks this project loops over.
    """

    what: str
    total: int
    report: Callable[[str], None]
    unit: str = "samples"
    total_units: int | None = None
    _done: int = 0
    _units: int = 0
    _started: float = field(default_factory=time.perf_counter)

    def step(self, units: int = 0, label: str = "") -> str:
        """Record one finished step of `units` units; returns (and reports) its line."""
        self._done += 1
        self._units += units
        elapsed = time.perf_counter() - self._started
        parts = [f"{self.what} {self._done}/{self.total}" + (f" ({label})" if label else "")]
        if self._units and elapsed > 0:
            parts.append(f"{self._units / elapsed:,.0f} {self.unit}/s")
        left = self._seconds_left(elapsed)
        parts.append(f"ETA {duration(left)}" if left is not None else f"in {duration(elapsed)}")
        line = ", ".join(parts)
        self.report(line)
        return line

    def _seconds_left(self, elapsed: float) -> float | None:
        if self._done >= self.total:
            return None
        if self.total_units and self._units:
            return elapsed * (self.total_units - self._units) / self._units
        return elapsed * (self.total - self._done) / self._done
