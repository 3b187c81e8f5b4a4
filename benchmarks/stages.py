"""One benchmark stage, run in a fresh process so its peak memory is its own.

`python -m benchmarks.stages STAGE SOURCE WAREHOUSE BLOCK_SIZE` prints one JSON object with the
stage's wall time, peak resident memory (ru_maxrss) and stage-specific figures. The reference
stages (a plain h5py block read, `qnorm.quantile_normalize`) run on the same data in the same
benchmark run, so every ratio compares like with like on this machine.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from archs4.blocks import block_plans, read_registry
from archs4.expression import accumulate_target, normalize_stored_block, read_target, write_target
from archs4.ingest import COUNTS_DATASET, ingest_block, register_release
from archs4.warehouse import Warehouse

MB = 1 << 20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _counts_mb(source: Path) -> float:
    with h5py.File(source, "r") as handle:
        n_genes, n_samples = handle["data/expression"].shape
    return n_genes * n_samples * 4 / MB


def plain_read(source: Path, _warehouse: Warehouse, block_size: int) -> dict:
    """The floor for ingest: read every block of the matrix with h5py, nothing else."""
    with h5py.File(source, "r") as handle:
        dataset = handle["data/expression"]
        chunk = dataset.chunks[1] if dataset.chunks else 1
        step = -(-block_size // chunk) * chunk
        checksum = 0
        for start in range(0, dataset.shape[1], step):
            checksum += int(dataset[:, start : start + step].sum(dtype=np.uint64))
    return {"total_count": checksum}


def register(source: Path, warehouse: Warehouse, block_size: int) -> dict:
    """Once per release: validate the file, checksum it, diff its GSMs, register blocks."""
    registration = register_release(warehouse, source, block_size)
    return {"blocks": len(registration.new_blocks)}


def ingest(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """Every block: read from HDF5, write samples and counts Parquet."""
    total = 0
    for plan in block_plans(read_registry(warehouse)):
        total += ingest_block(warehouse, plan.block).count_total
    return {"total_count": total}


def target(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    blocks = warehouse.blocks_present(COUNTS_DATASET)
    stored = write_target(warehouse, accumulate_target(warehouse, blocks))
    return {"n_samples": stored.n_samples}


def normalize(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    stored = read_target(warehouse)
    assert stored is not None
    lengths = np.full(stored.values.size, 1500.0)
    rows = 0
    for block in warehouse.blocks_present(COUNTS_DATASET):
        rows += normalize_stored_block(warehouse, block, stored, lengths, "divide").rows
    return {"rows": rows}


def kernel_vs_qnorm(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """Per-block normalization kernel against qnorm on the same block, single core."""
    import qnorm

    from archs4.quantile_norm import normalize_block

    stored = read_target(warehouse)
    assert stored is not None
    block = warehouse.blocks_present(COUNTS_DATASET)[0]
    counts, _, _ = warehouse.read_long_block(COUNTS_DATASET, block, "count")
    lengths = np.full(counts.shape[0], 1500.0)
    ours, reference = [], []
    for _ in range(3):
        started = time.perf_counter()
        normalize_block(counts, stored.values, lengths)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        qnorm.quantile_normalize(np.log2(counts + 1.0), axis=1, ncpus=1)
        reference.append(time.perf_counter() - started)
    return {
        "block_shape": list(counts.shape),
        "ours_seconds": min(ours),
        "qnorm_seconds": min(reference),
    }


STAGES = {
    "plain_read": plain_read,
    "register": register,
    "ingest": ingest,
    "target": target,
    "normalize": normalize,
    "kernel_vs_qnorm": kernel_vs_qnorm,
}


def main() -> None:
    stage, source, root, block_size = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    started = time.perf_counter()
    figures = STAGES[stage](source, Warehouse.at(root), block_size)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "stage": stage,
                "seconds": seconds,
                "peak_rss_mb": _peak_rss_mb(),
                "counts_mb": _counts_mb(source),
                **figures,
            }
        )
    )


if __name__ == "__main__":
    main()
