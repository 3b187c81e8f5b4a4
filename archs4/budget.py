"""How many sample blocks can be processed at once within a memory budget.

Block stages run one block per worker process, and every block holds the same memory whatever
the number of samples, so the number of workers is the memory budget over one block's peak.
The peak is normalization's (`make bench`: 3.4 GB at 67,000 genes x 1,000 samples, about 50
bytes per value of the block: the uint32 counts, float64 working copies, the sort keys and one
Parquet row group), plus the process itself (Python, Dagster, the libraries: ~0.4 GB).
"""

from __future__ import annotations

import os
from pathlib import Path

BYTES_PER_BLOCK_VALUE = 52
PROCESS_BYTES = 400 << 20


def block_peak_bytes(n_genes: int, block_samples: int) -> int:
    """The peak memory of one worker processing one block of `block_samples` samples."""
    return PROCESS_BYTES + BYTES_PER_BLOCK_VALUE * n_genes * block_samples


def physical_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def available_memory_bytes() -> int:
    """Memory the system can give now without swapping (Linux `MemAvailable`, else free)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def default_budget_bytes() -> int:
    """Three quarters of the machine, but no more than 90% of what is available now: other
    work on the machine (measured: a test suite beside a rehearsal) would otherwise push the
    workers into thrashing."""
    return min(physical_memory_bytes() * 3 // 4, available_memory_bytes() * 9 // 10)


def workers_within_budget(
    requested: int, budget_bytes: int, n_genes: int, block_samples: int
) -> int:
    """`requested` workers, fewer when their blocks would not fit in `budget_bytes` (at least
    one: a single block must run whatever the budget)."""
    fitting = budget_bytes // block_peak_bytes(n_genes, block_samples)
    return max(1, min(requested, fitting))
