"""The two cuts of `counts` row groups, side by side: the full profiles of 100 GSMs spread over
warehouses of 2,000, 8,000 and 32,000 samples x 20,000 genes (blocks of 1,000), through DuckDB,
and the bytes each cut takes.

- by sample (stored): row groups of whole samples, gene-major within (`write_sample_grouped_slabs`);
- by gene (stored before): row groups of 64 genes over every sample of the block.

`python -m benchmarks.counts_cut` writes `benchmarks/results/counts_cut.json`. Times are the best
of three, on the same files, in one process.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from archs4.blocks import block_plans, read_registry
from archs4.datasets import COUNTS_DATASET
from archs4.demo_data import ORIGINAL, write_demo_dataset
from archs4.ingest import ingest_block, register_release
from archs4.warehouse import Warehouse
from benchmarks.run import RESULTS, WORK, machine

SIZES = (2000, 8000, 32000)
N_GENES, BLOCK_SIZE, N_GSMS = 20_000, 1000, 100


def gene_cut_copy(store: Warehouse, copy: Warehouse) -> None:
    for plan in block_plans(read_registry(store)):
        matrix, sample_idx, gene_idx = store.read_long_block(COUNTS_DATASET, plan.block, "count")
        target = copy.block_path(COUNTS_DATASET, plan.block)
        copy.write_long_block(target, matrix, sample_idx, "count", pa.uint32(), gene_idx=gene_idx)


def best_seconds(connection: duckdb.DuckDBPyConnection, query: str) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        rows = connection.sql(query).fetchnumpy()
        times.append(time.perf_counter() - started)
    assert rows["count"].size == N_GSMS * N_GENES
    return min(times)


def measure(n_samples: int, work: Path) -> dict:
    write_demo_dataset(
        work / "data", n_samples=n_samples, n_genes=N_GENES, seed=3, realism=ORIGINAL
    )
    by_sample, by_gene = Warehouse.at(work / "by_sample"), Warehouse.at(work / "by_gene")
    register_release(by_sample, work / "data" / "human_gene_v2.6_demo.h5", BLOCK_SIZE)
    for plan in block_plans(read_registry(by_sample)):
        ingest_block(by_sample, plan.block)
    gene_cut_copy(by_sample, by_gene)
    wanted = np.random.default_rng(0).choice(n_samples, N_GSMS, replace=False)
    ids = ", ".join(str(int(i)) for i in np.sort(wanted))
    record: dict = {"n_samples": n_samples}
    with duckdb.connect() as connection:
        for name, store in (("by_sample", by_sample), ("by_gene", by_gene)):
            glob = store.dataset_glob(COUNTS_DATASET)
            record[f"{name}_seconds"] = best_seconds(
                connection,
                f"SELECT gene_idx, sample_idx, count FROM read_parquet('{glob}') "
                f"WHERE sample_idx IN ({ids})",
            )
            files = (store.root / COUNTS_DATASET).rglob("*.parquet")
            record[f"{name}_bytes_per_value"] = sum(p.stat().st_size for p in files) / (
                n_samples * N_GENES
            )
    shutil.rmtree(work)
    return record


def main() -> None:
    records = [measure(n, WORK / "counts_cut" / str(n)) for n in SIZES]
    (small, large) = records[-2:]
    ratio = math.log(large["n_samples"] / small["n_samples"])
    exponents = {
        f"{name}_time_exponent_two_largest": math.log(
            large[f"{name}_seconds"] / small[f"{name}_seconds"]
        )
        / ratio
        for name in ("by_sample", "by_gene")
    }
    report = {"records": records, **exponents, "machine": machine()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "counts_cut.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
