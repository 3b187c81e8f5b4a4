"""A gene-clustered copy of `expression`: every sample of a gene stored together.

The `expression` layer is partitioned by sample block, which serves per-sample work and
appends; a question about one gene across all samples would touch every block file. This copy
holds the same rows partitioned by gene chunk (`chunk=000003/part.parquet`: a run of genes, all
samples, ordered by gene then sample, row groups of about a million rows), so a one-gene query
reads one row group of one file, and the gene metrics stream over genes with all N values of a
chunk in memory and nothing more.

Building it is one pass over the block files per gene chunk, reading only the row groups whose
`gene_idx` statistics overlap the chunk (the block files are gene-major, with row groups cut
at multiples of 64 genes, and chunks are whole multiples of that): the whole layer is read
once, and memory is one chunk, whose size is set by a budget of values rather than by N.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from archs4.expression import EXPRESSION_DATASET
from archs4.warehouse import GENES_PER_ROW_GROUP, Warehouse, block_key

EXPRESSION_BY_GENE_DATASET = "normalized/expression_by_gene"
CHUNK = "chunk"
# Values per gene chunk (float32): 64M = 256 MB, a few times that in working memory; at
# 900,000 samples that is 64 genes, one row group of the block files.
DEFAULT_VALUES_PER_CHUNK = int(os.environ.get("ARCHS4_GENE_CHUNK_VALUES", str(64 << 20)))


@dataclass(frozen=True)
class GeneChunk:
    key: str
    gene_idx: np.ndarray


def plan_gene_chunks(
    gene_idx: np.ndarray, n_samples: int, values_per_chunk: int = DEFAULT_VALUES_PER_CHUNK
) -> list[GeneChunk]:
    """Consecutive runs of genes holding at most `values_per_chunk` values each, in whole
    multiples of the block files' row groups when the budget allows (so building the copy reads
    each block file's row groups once, and only the chunk's genes)."""
    genes_per_chunk = max(1, values_per_chunk // max(n_samples, 1))
    if genes_per_chunk >= GENES_PER_ROW_GROUP:
        genes_per_chunk -= genes_per_chunk % GENES_PER_ROW_GROUP
    return [
        GeneChunk(block_key(number), gene_idx[start : start + genes_per_chunk])
        for number, start in enumerate(range(0, gene_idx.size, genes_per_chunk))
    ]


def _chunk_of_block(
    warehouse: Warehouse, block: str, genes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    path = warehouse.block_path(EXPRESSION_DATASET, block)
    low, high = int(genes[0]), int(genes[-1])
    with warehouse.fs.open(path.path, "rb") as handle:
        table = pq.read_table(
            handle,
            columns=["sample_idx", "gene_idx", "value"],
            filters=[("gene_idx", ">=", low), ("gene_idx", "<=", high)],
        )
    gene_column = table.column("gene_idx").to_numpy()
    n_samples = table.num_rows // genes.size
    if n_samples * genes.size != table.num_rows or not np.array_equal(
        gene_column, np.repeat(genes, n_samples)
    ):
        raise ValueError(f"{path}: genes {low}..{high} are not complete gene-major rows")
    sample_idx = table.column("sample_idx").to_numpy()[:n_samples]
    return table.column("value").to_numpy().reshape(genes.size, n_samples), sample_idx


def build_expression_by_gene(
    warehouse: Warehouse,
    blocks: list[str],
    gene_idx: np.ndarray,
    n_samples: int,
    *,
    values_per_chunk: int = DEFAULT_VALUES_PER_CHUNK,
    on_chunk: Callable[[GeneChunk], None] | None = None,
) -> list[GeneChunk]:
    """Write the gene-clustered copy of `expression` over `blocks`; returns its chunks."""
    chunks = plan_gene_chunks(gene_idx, n_samples, values_per_chunk)
    for chunk in chunks:
        parts = [_chunk_of_block(warehouse, block, chunk.gene_idx) for block in blocks]
        values = np.hstack([part for part, _ in parts])
        sample_idx = np.concatenate([samples for _, samples in parts])
        order = np.argsort(sample_idx, kind="stable")
        warehouse.write_long_block(
            warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, chunk.key),
            np.ascontiguousarray(values[:, order]),
            sample_idx[order],
            "value",
            pa.float32(),
            gene_idx=chunk.gene_idx,
        )
        if on_chunk:
            on_chunk(chunk)
    planned = {chunk.key for chunk in chunks}
    for key in warehouse.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK):
        if key not in planned:  # a chunk of an earlier, differently sized plan
            path = warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, key)
            warehouse.fs.rm(path.parent.path, recursive=True)
    return chunks


def iter_gene_chunks(warehouse: Warehouse) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(values genes x samples, sample_idx, gene_idx) for each gene chunk, in gene order."""
    for key in warehouse.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK):
        path = warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, key)
        yield warehouse.read_long_file(path, "value")


def iter_gene_chunk_values(
    warehouse: Warehouse, shapes: list[tuple[int, int]]
) -> Iterator[np.ndarray]:
    """Only the values of each chunk, for a second pass over chunks whose layout an earlier
    `iter_gene_chunks` pass verified (`shapes`: their (genes, samples)); half the reading."""
    keys = warehouse.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK)
    if len(keys) != len(shapes):
        raise ValueError("the gene-clustered copy changed between passes")
    for key, shape in zip(keys, shapes, strict=True):
        path = warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, key)
        with warehouse.fs.open(path.path, "rb") as handle:
            values = pq.read_table(handle, columns=["value"]).column("value").to_numpy()
        yield values.reshape(shape)
