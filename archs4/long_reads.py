"""Reading chosen (sample, gene) rows out of the warehouse's long Parquet files.

A long file (`counts` or `expression` blocks, gene chunks of `expression_by_gene`) holds rows
(`sample_idx`, `gene_idx`, value) sorted on one id, in row groups whose footer statistics give
each group's id range. A request for some samples or some genes reads only the row groups whose
ranges can hold them, then keeps exactly the wanted rows, one row group at a time, so memory is
bounded by a row group plus the answer whatever the file's size. Which id a file is sorted on
does not matter: the statistics of both are used.

The rows are then placed into a dense genes x samples matrix (`place_rows`), the orientation of
ARCHS4 and of archs4py's DataFrames.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ID_COLUMNS = ("sample_idx", "gene_idx")


def _row_group_may_hold(
    metadata: pq.FileMetaData, group: int, column: int, wanted: np.ndarray
) -> bool:
    """Whether row group `group` may hold any of the sorted ids `wanted` in column `column`."""
    statistics = metadata.row_group(group).column(column).statistics
    if statistics is None or not statistics.has_min_max:
        return True
    first = int(np.searchsorted(wanted, statistics.min, side="left"))
    return first < wanted.size and wanted[first] <= statistics.max


def read_rows(
    handle: IO[bytes],
    value_column: str,
    *,
    sample_idx: np.ndarray | None = None,
    gene_idx: np.ndarray | None = None,
) -> pa.Table:
    """The rows of one long file whose ids are in `sample_idx` and `gene_idx` (None: all)."""
    parquet = pq.ParquetFile(handle)
    names = parquet.schema_arrow.names
    wanted = {
        name: np.unique(np.asarray(ids, dtype=np.int64))
        for name, ids in zip(ID_COLUMNS, (sample_idx, gene_idx), strict=True)
        if ids is not None
    }
    tables = []
    for group in range(parquet.metadata.num_row_groups):
        if not all(
            _row_group_may_hold(parquet.metadata, group, names.index(name), ids)
            for name, ids in wanted.items()
        ):
            continue
        table = parquet.read_row_group(group, columns=[*ID_COLUMNS, value_column])
        for name, ids in wanted.items():
            table = table.filter(pc.is_in(table.column(name), pa.array(ids, pa.int32())))
        if table.num_rows:
            tables.append(table)
    if not tables:
        schema = parquet.schema_arrow
        return pa.table(
            {name: pa.array([], schema.field(name).type) for name in [*ID_COLUMNS, value_column]}
        )
    return pa.concat_tables(tables)


def place_rows(
    tables: Iterable[pa.Table],
    value_column: str,
    gene_idx: np.ndarray,
    sample_idx: np.ndarray,
    dtype: np.dtype,
) -> np.ndarray:
    """A dense len(gene_idx) x len(sample_idx) matrix of the rows of `tables`.

    Rows and columns follow the order of `gene_idx` and `sample_idx` (each without repeats);
    every (gene, sample) pair must be present exactly once, so a missing block or a partial
    file is an error rather than a silent zero.
    """
    gene_order = np.argsort(gene_idx, kind="stable")
    sample_order = np.argsort(sample_idx, kind="stable")
    sorted_genes, sorted_samples = gene_idx[gene_order], sample_idx[sample_order]
    matrix = np.zeros((gene_idx.size, sample_idx.size), dtype=dtype)
    filled = 0
    for table in tables:
        genes = table.column("gene_idx").to_numpy()
        samples = table.column("sample_idx").to_numpy()
        rows = gene_order[np.searchsorted(sorted_genes, genes)]
        columns = sample_order[np.searchsorted(sorted_samples, samples)]
        matrix[rows, columns] = table.column(value_column).to_numpy()
        filled += table.num_rows
    if filled != matrix.size:
        raise ValueError(
            f"expected {matrix.size:,} values ({gene_idx.size} genes x {sample_idx.size} "
            f"samples) but the warehouse holds {filled:,}: is a layer incomplete?"
        )
    return matrix
