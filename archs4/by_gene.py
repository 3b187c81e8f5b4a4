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

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from archs4.datasets import (
    EXPRESSION_BY_GENE_DATASET,
    EXPRESSION_BY_GENE_MANIFEST,
    EXPRESSION_DATASET,
)
from archs4.warehouse import GENES_PER_ROW_GROUP, Warehouse, block_key, gene_major_matrix

CHUNK = "chunk"
# Values per gene chunk (float32): 64M = 256 MB, a few times that in working memory; at
# 900,000 samples that is 64 genes, one row group of the block files (ARCHS4_GENE_CHUNK_VALUES).
DEFAULT_VALUES_PER_CHUNK = 64 << 20


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


class _BlockGeneReader:
    """Reads runs of genes from the `expression` block files. Each file's row groups are
    located from its footer statistics once, then read by index: a filtered dataset read costs
    ~4x more per call (measured: 11 ms against 3 ms for 6 row groups of a 20,000 x 1,000
    block), and the transpose makes one call per gene chunk and block."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse
        self._first_genes: dict[str, np.ndarray] = {}

    def read(self, block: str, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values genes x samples, sample_idx) of the consecutive genes `genes` of a block."""
        path = self._warehouse.block_path(EXPRESSION_DATASET, block)
        low, high = int(genes[0]), int(genes[-1])
        with self._warehouse.fs.open(path.path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            first_genes = self._first_genes.get(block)
            if first_genes is None:
                first_genes = self._first_genes[block] = _row_group_first_genes(parquet, path)
            first = max(int(np.searchsorted(first_genes, low, side="right")) - 1, 0)
            stop = int(np.searchsorted(first_genes, high, side="right"))
            table = parquet.read_row_groups(
                range(first, stop), columns=["sample_idx", "gene_idx", "value"]
            )
        gene_column = table.column("gene_idx").to_numpy()
        start = int(np.searchsorted(gene_column, low))
        table = table.slice(start, int(np.searchsorted(gene_column, high, side="right")) - start)
        gene_column = table.column("gene_idx").to_numpy()
        n_samples = table.num_rows // genes.size
        if n_samples * genes.size != table.num_rows or not np.array_equal(
            gene_column, np.repeat(genes, n_samples)
        ):
            raise ValueError(f"{path}: genes {low}..{high} are not complete gene-major rows")
        sample_idx = table.column("sample_idx").to_numpy()[:n_samples].copy()
        return table.column("value").to_numpy().reshape(genes.size, n_samples), sample_idx


def _row_group_first_genes(parquet: pq.ParquetFile, path: object) -> np.ndarray:
    metadata = parquet.metadata
    column = parquet.schema_arrow.get_field_index("gene_idx")
    first_genes = []
    for number in range(metadata.num_row_groups):
        statistics = metadata.row_group(number).column(column).statistics
        if statistics is None or not statistics.has_min_max:
            raise ValueError(f"{path}: row group {number} has no gene_idx statistics")
        first_genes.append(statistics.min)
    if any(b < a for a, b in itertools.pairwise(first_genes)):
        raise ValueError(f"{path}: row groups are not in gene order")
    return np.asarray(first_genes, dtype=np.int64)


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
    reader = _BlockGeneReader(warehouse)

    def write(chunk: GeneChunk, values: np.ndarray, sample_idx: np.ndarray) -> GeneChunk:
        warehouse.write_long_block(
            warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, chunk.key),
            values,
            sample_idx,
            "value",
            pa.float32(),
            gene_idx=chunk.gene_idx,
        )
        return chunk

    def written(chunk: GeneChunk) -> None:
        if on_chunk:
            on_chunk(chunk)

    # Writing a chunk (Parquet encoding releases the GIL) overlaps reading the next one, so
    # two chunks are in memory at most.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="by-gene") as writer:
        pending: Future[GeneChunk] | None = None
        for chunk in chunks:
            parts = [reader.read(block, chunk.gene_idx) for block in blocks]
            values = np.hstack([part for part, _ in parts])
            sample_idx = np.concatenate([samples for _, samples in parts])
            if np.any(sample_idx[1:] < sample_idx[:-1]):  # blocks given out of sample order
                order = np.argsort(sample_idx, kind="stable")
                values, sample_idx = np.ascontiguousarray(values[:, order]), sample_idx[order]
            if pending is not None:
                written(pending.result())
            pending = writer.submit(write, chunk, values, sample_idx)
        if pending is not None:
            written(pending.result())
    planned = {chunk.key for chunk in chunks}
    for key in warehouse.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK):
        if key not in planned:  # a chunk of an earlier, differently sized plan
            path = warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, key)
            warehouse.fs.rm(path.parent.path, recursive=True)
    _write_manifest(warehouse, chunks, n_samples)
    return chunks


def _write_manifest(warehouse: Warehouse, chunks: list[GeneChunk], n_samples: int) -> None:
    # Written last: the copy is complete once its manifest is newer than every block file, so
    # a copy interrupted half-way (chunks written, later ones missing) is never taken as done.
    manifest = {
        "n_samples": n_samples,
        "n_genes": int(sum(chunk.gene_idx.size for chunk in chunks)),
        "chunks": [chunk.key for chunk in chunks],
    }
    warehouse.write_json(manifest, warehouse.root / EXPRESSION_BY_GENE_MANIFEST)


def read_manifest(warehouse: Warehouse) -> dict[str, Any]:
    """The manifest of the copy: `n_samples`, `n_genes` and its `chunks` (keys)."""
    return warehouse.read_json(warehouse.root / EXPRESSION_BY_GENE_MANIFEST)


def iter_gene_chunks(warehouse: Warehouse) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(values genes x samples, sample_idx, gene_idx) for each gene chunk, in gene order."""
    for key in warehouse.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK):
        path = warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, key)
        yield warehouse.read_long_file(path, "value")


def iter_gene_row_groups(
    warehouse: Warehouse,
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(chunk key, values genes x samples, sample_idx, gene_idx) for each row group of each gene
    chunk, in gene order: the whole copy with one row group in memory (at most 64 genes and
    about a million values, or one gene) rather than one chunk (up to 64M values)."""
    for key in warehouse.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK):
        path = warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, key)
        with warehouse.fs.open(path.path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, columns=["sample_idx", "gene_idx", "value"])
                yield (key, *gene_major_matrix(table, "value", f"{path} row group {group}"))


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
