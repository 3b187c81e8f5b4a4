"""Timing and memory helpers shared by the benchmark stages that compare several forms of one
computation inside one stage process (access paths, kernel forms).

A stage's own peak memory is its process's VmHWM (see `benchmarks.stages`). When one stage
runs several forms one after the other, `measured` resets VmHWM to the current resident size
before each form (Linux: writing 5 to /proc/self/clear_refs), so each form gets its own peak.
Memory an earlier form freed but the allocator kept counts in the next form's baseline, so a
form's peak is an upper bound, never an underestimate.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_mb(key: str) -> float | None:
    """One `kB` line of /proc/self/status (e.g. VmHWM, VmRSS) in MB, None if absent."""
    with STATUS.open() as status:
        for line in status:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    return None


def reset_peak() -> bool:
    """Set this process's VmHWM to its current resident size; False where Linux refuses."""
    gc.collect()
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Measured(Generic[T]):
    """The result of the last run, the best wall time over the runs and the peak over them."""

    result: T
    seconds: float
    first_seconds: float
    peak_mb: float | None


def measured(run: Callable[[], T], repeats: int = 3) -> Measured[T]:
    """Run `run` `repeats` times: best and first wall time, and the peak resident memory
    (VmHWM) over the runs, measured from a reset peak (None when the peak cannot be reset,
    rather than the stage's earlier peak)."""
    can_reset = reset_peak()
    times = []
    result: T | None = None
    for _ in range(max(repeats, 1)):
        result = None  # the previous run's result is not kept alive during the next run
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    peak = _status_mb("VmHWM") if can_reset else None
    return Measured(result, min(times), times[0], peak)  # type: ignore[arg-type]
