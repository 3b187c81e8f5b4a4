"""The numpy kernels beside their DuckDB SQL and Polars forms, on the same data in one stage.

Why: the normalization and the gene metrics are written in numpy; a SQL (or dataframe) form
would be shorter and readable by more people. Whether numpy stays is decided by these numbers.
Each form reads the same Parquet files and produces the same values (checked: max |diff|
against numpy), timed best of three, with its own peak memory (`benchmarks.measure`).

- Normalization of one `counts` block (log2(x+1), quantile normalization against the frozen
  target with ties getting the mean of the target over their ranks, then division by the
  length in kb, as the bench's `normalize` stage: 1,500 bp for every gene). SQL: rank each
  sample's counts with `row_number()` (ranking counts is ranking log2(count+1): the log is
  increasing, and the numpy kernel ranks the integer counts too), join the target on the rank,
  then average the target over each tie run (`avg() OVER (PARTITION BY sample, count)`).
- p95 of every gene (`numpy.percentile(x, 95)`, linear interpolation) over the gene-clustered
  copy: SQL `quantile_cont(value, 0.95) ... GROUP BY gene_idx`, one query per gene-chunk file
  (holistic aggregates hold every value of their groups: one GROUP BY over the whole layer
  would hold the layer, 13 GB at 80,000 x 20,000). The numpy form reads the same files.

Single core is the like-for-like figure: the product normalizes one block per core. DuckDB
runs with 1 thread, and again with every core; Polars with POLARS_MAX_THREADS set by
`benchmarks.run` for these stages (1). The window cosine has no SQL form here: as a join of
each gene's 100 window samples with their full profiles it is the naive G x 100 x G
computation (4e10 rows at 20,000 genes), which `metrics_naive` already times in numpy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from archs4.by_gene import CHUNK, iter_gene_chunk_values
from archs4.catalog import sql_string
from archs4.datasets import (
    COUNTS_DATASET,
    EXPRESSION_BY_GENE_DATASET,
    GENE_METRICS_TABLE,
    QN_TARGET_TABLE,
)
from archs4.expression import read_target
from archs4.quantile_norm import normalize_block
from archs4.warehouse import Warehouse
from benchmarks.measure import Measured, measured

LENGTH_BP = 1500.0  # every gene's length in the bench's `normalize` stage

NORMALIZE_SQL = """
WITH ranked AS (
    SELECT sample_idx, gene_idx, "count",
           row_number() OVER (PARTITION BY sample_idx ORDER BY "count") AS rank
    FROM read_parquet({block})
), mapped AS (
    SELECT r.sample_idx, r.gene_idx, r."count", t.value AS target
    FROM ranked r JOIN read_parquet({target}) t ON t.rank = r.rank
)
SELECT m.sample_idx, m.gene_idx,
       avg(m.target) OVER (PARTITION BY m.sample_idx, m."count") / (g.length_bp / 1000.0)
           AS value
FROM mapped m JOIN gene_lengths g ON g.gene_idx = m.gene_idx
"""

P95_SQL = (
    "SELECT gene_idx, quantile_cont(value::DOUBLE, 0.95) AS p95 "
    "FROM read_parquet({chunk}) GROUP BY gene_idx"
)


def duckdb_connection(warehouse: Warehouse, threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with `threads` threads, spilling (if ever) beside the warehouse."""
    spill = Path(warehouse.root.path).parent / "duckdb_spill"
    return duckdb.connect(config={"threads": threads, "temp_directory": str(spill)})


def _compare(
    forms: dict[str, Callable[[], object]],
    reference: np.ndarray,
    as_reference: Callable[[object], np.ndarray],
    repeats: int,
) -> dict:
    """Time every form (its own output, untimed `as_reference` then puts it in the reference's
    shape and order) and its max |diff| against `reference`."""
    figures: dict = {}
    for name, run in forms.items():
        result = measured(run, repeats)
        figures[f"{name}_seconds"] = result.seconds
        figures[f"{name}_peak_mb"] = result.peak_mb
        difference = np.abs(as_reference(result.result) - reference)
        figures[f"{name}_max_abs_diff"] = float(difference.max())
        del result, difference
    return figures


def _long_to_matrix(
    table: pa.Table | pl.DataFrame, genes: np.ndarray, samples: np.ndarray
) -> np.ndarray:
    """Long (sample_idx, gene_idx, value) rows as a genes x samples float64 matrix."""
    columns = {name: np.asarray(table[name]) for name in ("sample_idx", "gene_idx", "value")}
    matrix = np.full((genes.size, samples.size), np.nan)
    rows = np.searchsorted(genes, columns["gene_idx"])
    matrix[rows, np.searchsorted(samples, columns["sample_idx"])] = columns["value"]
    return matrix


def numpy_normalize(warehouse: Warehouse, block: str) -> np.ndarray:
    """The product's kernel, from the block file: read, normalize, divide by the length."""
    stored = read_target(warehouse)
    assert stored is not None
    counts, _, _ = warehouse.read_long_block(COUNTS_DATASET, block, "count")
    return normalize_block(counts, stored.values, np.full(counts.shape[0], LENGTH_BP))


def sql_normalize(connection: duckdb.DuckDBPyConnection, block: Path, target: Path) -> pa.Table:
    """The normalization of one block as one DuckDB query (see NORMALIZE_SQL)."""
    query = NORMALIZE_SQL.format(block=sql_string(str(block)), target=sql_string(str(target)))
    return connection.sql(query).to_arrow_table()


def polars_normalize(block: Path, target: Path, genes: np.ndarray) -> pl.DataFrame:
    """The same steps in Polars: ordinal rank over each sample, join, mean over tie runs."""
    target_frame = pl.scan_parquet(target).select(
        pl.col("rank").cast(pl.UInt32), pl.col("value").alias("target")
    )
    lengths = pl.LazyFrame({"gene_idx": genes.astype(np.int32), "length_kb": LENGTH_BP / 1000})
    return (
        pl.scan_parquet(block)
        .with_columns(pl.col("count").rank("ordinal").over("sample_idx").alias("rank"))
        .join(target_frame, on="rank")
        .join(lengths, on="gene_idx")
        .select(
            "sample_idx",
            "gene_idx",
            (pl.col("target").mean().over("sample_idx", "count") / pl.col("length_kb")).alias(
                "value"
            ),
        )
        .collect()
    )


def normalize_forms(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """One `counts` block normalized by numpy, DuckDB (1 thread, all cores) and Polars."""
    block = warehouse.blocks_present(COUNTS_DATASET)[0]
    block_path = Path(warehouse.block_path(COUNTS_DATASET, block).path)
    target_path = Path(warehouse.table_path(QN_TARGET_TABLE).path)
    ids = pq.read_table(block_path, columns=["sample_idx", "gene_idx"])
    samples = np.unique(ids.column("sample_idx").to_numpy())
    genes = np.unique(ids.column("gene_idx").to_numpy())
    del ids
    reference: Measured[np.ndarray] = measured(lambda: numpy_normalize(warehouse, block))
    lengths = pa.table(
        {"gene_idx": genes.astype(np.int32), "length_bp": np.full(genes.size, LENGTH_BP)}
    )
    single = duckdb_connection(warehouse, 1)
    every = duckdb_connection(warehouse, os.cpu_count() or 1)
    for connection in (single, every):
        connection.register("gene_lengths", lengths)
    forms: dict[str, Callable[[], object]] = {
        "duckdb": lambda: sql_normalize(single, block_path, target_path),
        "duckdb_all_cores": lambda: sql_normalize(every, block_path, target_path),
        "polars": lambda: polars_normalize(block_path, target_path, genes),
    }
    figures = _compare(
        forms,
        reference.result,
        lambda table: _long_to_matrix(table, genes, samples),  # type: ignore[arg-type]
        repeats=3,
    )
    single.close()
    every.close()
    return {
        "block_shape": [int(genes.size), int(samples.size)],
        "numpy_seconds": reference.seconds,
        "numpy_peak_mb": reference.peak_mb,
        "duckdb_threads": 1,
        "duckdb_all_cores_threads": os.cpu_count() or 1,
        "polars_threads": pl.thread_pool_size(),
        **figures,
    }


def _chunk_paths(warehouse: Warehouse) -> list[Path]:
    return [
        Path(warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, key).path)
        for key in warehouse.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK)
    ]


def numpy_p95(warehouse: Warehouse, shapes: list[tuple[int, int]]) -> np.ndarray:
    """numpy.percentile(x, 95) of every gene, in float64, chunk by chunk, in gene order."""
    return np.concatenate(
        [
            np.percentile(values.astype(np.float64), 95, axis=1)
            for values in iter_gene_chunk_values(warehouse, shapes)
        ]
    )


def sql_p95(connection: duckdb.DuckDBPyConnection, chunks: list[Path]) -> np.ndarray:
    """quantile_cont(value, 0.95) per gene, one query per gene-chunk file, in gene order."""
    parts = [
        connection.sql(P95_SQL.format(chunk=sql_string(str(chunk)))).fetchnumpy()
        for chunk in chunks
    ]
    gene_idx = np.concatenate([part["gene_idx"] for part in parts])
    return np.concatenate([part["p95"] for part in parts])[np.argsort(gene_idx)]


def polars_p95(chunks: list[Path]) -> np.ndarray:
    """The same per chunk in Polars: group_by(gene_idx).quantile(0.95, "linear")."""
    parts = [
        pl.read_parquet(chunk, columns=["gene_idx", "value"])
        .group_by("gene_idx")
        .agg(pl.col("value").cast(pl.Float64).quantile(0.95, interpolation="linear"))
        for chunk in chunks
    ]
    return pl.concat(parts).sort("gene_idx")["value"].to_numpy()


def p95_forms(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """p95 of every gene by numpy, DuckDB (1 thread, all cores) and Polars over the
    gene-clustered copy; numpy's is also checked against the stored `gene_metrics` p95."""
    stored = pq.read_table(
        Path(warehouse.table_path(GENE_METRICS_TABLE).path), columns=["gene_idx", "p95"]
    )
    chunks = _chunk_paths(warehouse)
    rows = [pq.read_metadata(chunk).num_rows for chunk in chunks]
    n_samples = sum(rows) // stored.num_rows
    shapes = [(count // n_samples, n_samples) for count in rows]
    reference: Measured[np.ndarray] = measured(lambda: numpy_p95(warehouse, shapes))
    single = duckdb_connection(warehouse, 1)
    every = duckdb_connection(warehouse, os.cpu_count() or 1)
    forms: dict[str, Callable[[], object]] = {
        "duckdb": lambda: sql_p95(single, chunks),
        "duckdb_all_cores": lambda: sql_p95(every, chunks),
        "polars": lambda: polars_p95(chunks),
    }
    figures = _compare(forms, reference.result, np.asarray, repeats=3)
    single.close()
    every.close()
    stored_p95 = stored.sort_by("gene_idx").column("p95").to_numpy()
    return {
        "genes": stored.num_rows,
        "gene_chunks": len(chunks),
        "numpy_seconds": reference.seconds,
        "numpy_peak_mb": reference.peak_mb,
        "numpy_max_abs_diff_stored_p95": float(np.abs(reference.result - stored_p95).max()),
        "duckdb_threads": 1,
        "duckdb_all_cores_threads": os.cpu_count() or 1,
        "polars_threads": pl.thread_pool_size(),
        **figures,
    }
