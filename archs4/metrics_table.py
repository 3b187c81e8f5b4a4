"""The `gene_metrics` and `gene_windows` tables, streamed over the stored layers.

Three passes, each holding one chunk: per-sample norms over the `expression` blocks; p95 and
the 100-sample window of every gene over the gene-clustered copy; then the mean pairwise
cosine of each window, accumulated feature chunk by feature chunk over the same copy (the
kernels and the algorithm are in `archs4.gene_metrics`). Nothing ever holds the whole matrix,
nor 100 full profiles per gene.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from archs4.by_gene import CHUNK, iter_gene_chunk_values, iter_gene_chunks
from archs4.datasets import EXPRESSION_BY_GENE_DATASET, EXPRESSION_DATASET
from archs4.gene_metrics import CosineAccumulator, GeneWindows, concat_windows, gene_windows
from archs4.gene_metrics import sample_norms as block_sample_norms
from archs4.progress import Progress
from archs4.warehouse import Warehouse


@dataclass(frozen=True)
class GeneMetrics:
    metrics: pl.DataFrame
    windows: pl.DataFrame
    n_samples: int


def sample_norms(warehouse: Warehouse, blocks: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(sample_idx sorted, L2 norm of each sample's full normalized profile)."""
    ids, norms = [], []
    for block in blocks:
        values, sample_idx, _ = warehouse.read_long_block(EXPRESSION_DATASET, block, "value")
        ids.append(sample_idx)
        norms.append(block_sample_norms(values))
    all_ids = np.concatenate(ids)
    order = np.argsort(all_ids, kind="stable")
    return all_ids[order], np.concatenate(norms)[order]


def compute_gene_metrics(
    warehouse: Warehouse,
    blocks: list[str],
    genes: pl.DataFrame,
    report: Callable[[str], None] | None = None,
) -> GeneMetrics:
    """p95 and mean window cosine of every gene of the gene-clustered copy of `expression`.

    `genes` supplies `gene_idx`, `ensembl_id`, `symbol` and `biotype` for the output; `report`
    gets a progress line per gene chunk of each of the two passes.
    """
    norm_ids, norms = sample_norms(warehouse, blocks)
    n_chunks = len(warehouse.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK))
    say = report or (lambda _line: None)
    windows_pass = Progress("gene_metrics: windows, gene chunk", n_chunks, say, "genes")
    parts: list[GeneWindows] = []
    shapes: list[tuple[int, int]] = []
    for values, sample_idx, gene_idx in iter_gene_chunks(warehouse):
        if not np.array_equal(sample_idx, norm_ids):
            raise ValueError("the gene-clustered copy and the expression blocks hold other samples")
        parts.append(gene_windows(values, sample_idx, gene_idx))
        shapes.append(values.shape)
        windows_pass.step(int(gene_idx.size))
    if not parts:
        raise ValueError("the gene-clustered copy of expression is empty")
    windows = concat_windows(parts)
    # float32 products (the layer is float32; |S|^2 still sums in float64) on every core.
    accumulator = CosineAccumulator(
        windows, norms, product_dtype=np.float32, threads=os.cpu_count() or 1
    )
    cosine_pass = Progress("gene_metrics: window cosines, gene chunk", n_chunks, say, "genes")
    for values in iter_gene_chunk_values(warehouse, shapes):
        accumulator.add_feature_chunk(values)
        cosine_pass.step(int(values.shape[0]))
    n_samples = norm_ids.size
    metrics = _metrics_frame(windows, accumulator.mean_cosine(), n_samples, genes)
    k = windows.window_size
    window_rows = pl.DataFrame(
        {
            "gene_idx": np.repeat(windows.gene_idx, k).astype(np.int32),
            "window_position": np.tile(np.arange(k, dtype=np.int32), windows.gene_idx.size),
            "sample_idx": norm_ids[windows.members.ravel()].astype(np.int32),
        }
    )
    return GeneMetrics(metrics, window_rows, n_samples)


def _metrics_frame(
    windows: GeneWindows, mean_cosine: np.ndarray, n_samples: int, genes: pl.DataFrame
) -> pl.DataFrame:
    """The `gene_metrics` table: one row per gene with its ranks and window bounds."""
    metrics = (
        pl.DataFrame(
            {
                "gene_idx": windows.gene_idx.astype(np.int32),
                "p95": windows.p95,
                "mean_cosine": mean_cosine,
                "window_low": windows.window_low,
                "window_high": windows.window_high,
                "window_size": np.full(windows.gene_idx.size, windows.window_size, np.int32),
                "n_samples": np.full(windows.gene_idx.size, n_samples, np.int64),
            }
        )
        .join(
            genes.select("gene_idx", "ensembl_id", "symbol", "biotype"), on="gene_idx", how="left"
        )
        .with_columns(
            pl.col("p95").rank("min", descending=True).cast(pl.Int32).alias("p95_rank"),
            pl.col("mean_cosine")
            .rank("min", descending=True)
            .cast(pl.Int32)
            .alias("mean_cosine_rank"),
        )
        .select(
            "gene_idx",
            "ensembl_id",
            "symbol",
            "biotype",
            "p95",
            "mean_cosine",
            "p95_rank",
            "mean_cosine_rank",
            "window_low",
            "window_high",
            "window_size",
            "n_samples",
        )
        .sort("gene_idx")
    )
    return metrics
