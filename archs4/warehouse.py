"""Warehouse storage: where each layer lives, and how files get there atomically.

The warehouse is a tree of Parquet files under one root (local or shared storage, addressed
through fsspec/UPath), partitioned by sample block in Hive style (`block=000012/`), plus a DuckDB
catalog of views over them. Every file is written under a hidden temporary name in its final
directory and then renamed, so readers (and the catalog's globs, which match `*.parquet` only)
never see a half-written file, and a crashed run leaves nothing visible behind.

Matrices arrive in ARCHS4 orientation (genes x samples) and are stored in long format, gene-major
(`gene_idx`, then `sample_idx`) within each row group: that is the matrix's own memory order, so
no transpose is needed. Row groups come in two cuts:

- runs of genes over every sample of the block (`write_long_slabs`: `expression`, and the gene
  chunks of `expression_by_gene`): statistics on `gene_idx` let a one-gene read skip almost every
  row group, and the gene-clustered copy reads exactly its genes from each block;
- runs of whole samples over every gene (`write_sample_grouped_slabs`: `counts`): statistics on
  `sample_idx` let a read of a few samples' full profiles skip almost every row group, so the
  full profiles of 100 GSMs cost the same whatever the number of samples in the warehouse.

A file says which cut it has in its key-value metadata (ROW_GROUPS_KEY); readers check it.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import duckdb
import fsspec
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from archs4.datasets import CATALOG_FILE, GENES_TABLE, SAMPLE_REGISTRY_TABLE, table_file

BLOCK_KEY_WIDTH = 6
ROWS_PER_ROW_GROUP = 1 << 20
# Row groups of the long files start at gene positions that are multiples of this (fewer genes
# when a file has over ROWS_PER_ROW_GROUP / 64 samples), so the gene-clustered copy, whose
# chunks are whole multiples of it, reads exactly its genes from each block file: with row
# groups of ~1,000 genes, a chunk of 100 genes read 10x the data it kept, and the copy's cost
# grew as N^2 (measured: `make bench`, by_gene).
GENES_PER_ROW_GROUP = 64
# File metadata naming a sample-grouped file (`write_sample_grouped_slabs`); gene-grouped files
# (and every file written before this key existed) have none.
ROW_GROUPS_KEY = "archs4.row_groups"
SAMPLE_GROUPS = "whole samples"
PARQUET_OPTIONS: dict[str, object] = {"compression": "zstd", "compression_level": 3}
# Long blocks, chosen by measurement (benchmarks): the id columns are runs and arithmetic
# sequences (delta encoding stores them in almost nothing) and byte-stream-split lets zstd see
# the mostly-zero high bytes of counts and floats. Against dictionary encoding and zstd level 3,
# writing is ~40% faster and files ~30% smaller, and DuckDB scans them as fast.
LONG_BLOCK_OPTIONS: dict[str, object] = {"compression": "zstd", "compression_level": 1}


def long_block_encodings(value_name: str) -> dict[str, str]:
    return {
        "sample_idx": "DELTA_BINARY_PACKED",
        "gene_idx": "DELTA_BINARY_PACKED",
        value_name: "BYTE_STREAM_SPLIT",
    }


TEMPORARY_PREFIX = ".tmp-"
TEMPORARY_SUFFIX = ".partial"


def block_key(number: int) -> str:
    """The partition key of block `number`: zero-padded so keys sort like numbers."""
    return f"{number:0{BLOCK_KEY_WIDTH}d}"


def genes_per_row_group(n_samples: int) -> int:
    """Genes per row group of a long file of `n_samples` samples (see GENES_PER_ROW_GROUP)."""
    return max(1, min(GENES_PER_ROW_GROUP, ROWS_PER_ROW_GROUP // max(n_samples, 1)))


def samples_per_row_group(n_genes: int) -> int:
    """Samples per row group of a sample-grouped file of `n_genes` genes: about
    ROWS_PER_ROW_GROUP rows of whole samples (17 samples at 60,000 genes)."""
    return max(1, ROWS_PER_ROW_GROUP // max(n_genes, 1))


@dataclass(frozen=True)
class Warehouse:
    """Paths of every layer under one root."""

    root: UPath

    @classmethod
    def at(cls, root: str | UPath) -> Warehouse:
        path = UPath(root)
        if path.protocol in ("", "file", "local"):
            path = UPath(path.absolute())
        return cls(path)

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return self.root.fs

    @property
    def catalog_path(self) -> UPath:
        return self.root / CATALOG_FILE  # the DuckDB catalog of views

    @property
    def sample_registry_path(self) -> UPath:
        return self.root / table_file(SAMPLE_REGISTRY_TABLE)

    def table_path(self, dataset: str) -> UPath:
        """An unpartitioned table, e.g. `raw/genes` -> <root>/raw/genes.parquet."""
        return self.root / f"{dataset}.parquet"

    def block_path(self, dataset: str, block: str) -> UPath:
        """One block of a partitioned dataset, e.g. <root>/raw/counts/block=000003/part.parquet."""
        return self.partition_path(dataset, "block", block)

    def partition_path(self, dataset: str, key_name: str, key: str) -> UPath:
        return self.root / dataset / f"{key_name}={key}" / "part.parquet"

    def partition_keys(self, dataset: str, key_name: str) -> list[str]:
        """Keys that have a committed (renamed) file in `dataset`, sorted."""
        return sorted(
            UPath(p).parent.name.removeprefix(f"{key_name}=")
            for p in self.fs.glob(f"{(self.root / dataset).path}/{key_name}=*/part.parquet")
        )

    def dataset_glob(self, dataset: str, key_name: str = "block") -> str:
        return f"{self.root / dataset}/{key_name}=*/*.parquet"

    def exists(self, path: UPath) -> bool:
        return self.fs.exists(path.path)

    def blocks_present(self, dataset: str) -> list[str]:
        """Block keys that have a committed (renamed) file in `dataset`."""
        return self.partition_keys(dataset, "block")

    # -- atomic writes ----------------------------------------------------------------------

    @contextmanager
    def atomic_file(self, target: UPath) -> Iterator[IO[bytes]]:
        """Open a hidden temporary file beside `target`; rename it over `target` on success."""
        self.fs.makedirs(target.parent.path, exist_ok=True)
        # Hidden, and not ending in the target's suffix: no `*.parquet` glob of a reader (DuckDB
        # matches hidden names) ever sees a file that is still being written.
        temporary = target.parent / (
            f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}-{target.name}{TEMPORARY_SUFFIX}"
        )
        try:
            with self.fs.open(temporary.path, "wb") as handle:
                yield handle
            self.fs.mv(temporary.path, target.path)
        except BaseException:
            if self.fs.exists(temporary.path):
                self.fs.rm(temporary.path)
            raise

    def write_table(self, table: pa.Table, target: UPath) -> None:
        with self.atomic_file(target) as handle:
            pq.write_table(table, handle, **PARQUET_OPTIONS)  # type: ignore[arg-type]

    def read_table(self, table: str) -> pl.DataFrame:
        """An unpartitioned table (a name of `archs4.datasets`) as a Polars frame."""
        return pl.read_parquet(str(self.table_path(table)))

    def genes_with_length(self) -> pl.DataFrame:
        """The rows of `genes` that have a length: the genes `expression` holds."""
        return self.read_table(GENES_TABLE).filter(pl.col("has_length"))

    def read_pandas(self, path: UPath) -> pd.DataFrame:
        """A whole Parquet file (a dimension table, a block of `samples`) as pandas, read by
        DuckDB: the dtypes the GX suites of the checks are written against."""
        return duckdb.sql("SELECT * FROM read_parquet($path)", params={"path": str(path)}).df()

    def count_samples(self, dataset: str) -> int:
        """Distinct `sample_idx` over every block of a partitioned dataset."""
        return duckdb.sql(
            "SELECT count(DISTINCT sample_idx) FROM read_parquet($glob)",
            params={"glob": self.dataset_glob(dataset)},
        ).fetchall()[0][0]

    def read_dataset(self, dataset: str, columns: list[str]) -> pl.DataFrame:
        """`columns` of every block of a partitioned dataset (e.g. `raw/samples`)."""
        return pl.read_parquet(self.dataset_glob(dataset), columns=columns)

    def read_json(self, path: UPath) -> Any:
        """A side file (release record, manifest, model info) written by `write_json`."""
        with self.fs.open(path.path, "rb") as handle:
            return json.loads(handle.read())

    def write_json(self, value: Any, target: UPath) -> None:
        """`value` as indented JSON at `target`, atomically (see `atomic_file`)."""
        with self.atomic_file(target) as handle:
            handle.write(json.dumps(value, indent=1).encode())

    def write_long_block(
        self,
        target: UPath,
        matrix: np.ndarray,
        sample_idx: np.ndarray,
        value_name: str,
        value_type: pa.DataType,
        *,
        gene_idx: np.ndarray | None = None,
        file_metadata: dict[str, str] | None = None,
    ) -> int:
        """Write a genes x samples matrix as long rows (`sample_idx`, `gene_idx`, value)."""
        return self.write_long_slabs(
            target,
            [matrix],
            sample_idx,
            value_name,
            value_type,
            gene_idx=np.arange(matrix.shape[0]) if gene_idx is None else gene_idx,
            file_metadata=file_metadata,
        )

    def write_long_slabs(
        self,
        target: UPath,
        slabs: Iterable[np.ndarray],
        sample_idx: np.ndarray,
        value_name: str,
        value_type: pa.DataType,
        *,
        gene_idx: np.ndarray,
        file_metadata: dict[str, str] | None = None,
    ) -> int:
        """Write consecutive slabs of a genes x samples matrix as gene-major long rows.

        Each slab (whole genes, all samples of the block) becomes row groups that start at
        multiples of `genes_per_row_group(n_samples)` genes, encoded and written on a
        background thread while the caller produces the next slab (Parquet encoding releases
        the GIL), so reading the source and writing Parquet overlap. At most two slabs are in
        memory. Returns the row count.
        """
        samples = np.asarray(sample_idx, dtype=np.int32)
        genes = np.asarray(gene_idx, dtype=np.int32)
        n_samples = samples.size
        schema = _long_schema(value_name, value_type, file_metadata)
        genes_per_group = genes_per_row_group(n_samples)

        def write_slab(writer: pq.ParquetWriter, first_gene: int, slab: np.ndarray) -> None:
            end = first_gene + slab.shape[0]
            aligned = range(first_gene - first_gene % genes_per_group, end, genes_per_group)
            cuts = sorted({first_gene, *(g for g in aligned if g > first_gene), end})
            for start, stop in itertools.pairwise(cuts):
                values = slab[start - first_gene : stop - first_gene]
                _write_row_group(writer, schema, samples, genes[start:stop], values)

        written = 0
        with (
            self.atomic_file(target) as handle,
            pq.ParquetWriter(
                handle,
                schema,
                sorting_columns=[pq.SortingColumn(1), pq.SortingColumn(0)],
                use_dictionary=False,
                column_encoding=long_block_encodings(value_name),
                **LONG_BLOCK_OPTIONS,  # type: ignore[arg-type]
            ) as writer,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet") as pool,
        ):
            pending: Future[None] | None = None
            for slab in slabs:
                if slab.ndim != 2 or slab.shape[1] != n_samples:
                    raise ValueError(f"slab of shape {slab.shape}, expected (genes, {n_samples})")
                if pending is not None:
                    pending.result()
                pending = pool.submit(write_slab, writer, written, slab)
                written += slab.shape[0]
            if pending is not None:
                pending.result()
            if written != genes.size:
                raise ValueError(f"slabs held {written} genes, expected {genes.size}")
        return written * n_samples

    def write_sample_grouped_slabs(
        self,
        target: UPath,
        slabs: Iterable[np.ndarray],
        sample_idx: np.ndarray,
        value_name: str,
        value_type: pa.DataType,
        *,
        gene_idx: np.ndarray,
    ) -> int:
        """Write consecutive slabs of a genes x samples matrix in row groups of whole samples
        (`samples_per_row_group`), gene-major within each; returns the row count.

        The whole block is gathered first (67,000 x 2,000 uint32: 536 MB), since every row
        group holds every gene. Measured on a rehearsal block of counts (60,000 x 2,000): 0.96
        bytes per value against 0.90 gene-grouped (17-sample groups; sample-major rows: 1.05).
        """
        samples = np.asarray(sample_idx, dtype=np.int32)
        genes = np.asarray(gene_idx, dtype=np.int32)
        matrix = _gathered(slabs, genes.size, samples.size)
        schema = _long_schema(value_name, value_type, {ROW_GROUPS_KEY: SAMPLE_GROUPS})
        step = samples_per_row_group(genes.size)
        with (
            self.atomic_file(target) as handle,
            pq.ParquetWriter(
                handle,
                schema,
                use_dictionary=False,
                column_encoding=long_block_encodings(value_name),
                **LONG_BLOCK_OPTIONS,  # type: ignore[arg-type]
            ) as writer,
        ):
            for start in range(0, samples.size, step):
                values = matrix[:, start : start + step]
                _write_row_group(writer, schema, samples[start : start + step], genes, values)
        return matrix.size

    def read_long_block(
        self, dataset: str, block: str, value_name: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Read one block written by `write_long_block` back into (matrix, sample_idx, gene_idx)."""
        return self.read_long_file(self.block_path(dataset, block), value_name)

    def read_long_file(
        self, path: UPath, value_name: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A long file as (genes x samples matrix, sample_idx, gene_idx), in either cut of its
        row groups (see the module's docstring).

        The order is verified, not assumed: a file in any other order is an error.
        """
        columns = ["sample_idx", "gene_idx", value_name]
        with self.fs.open(path.path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            metadata = parquet.schema_arrow.metadata or {}
            if metadata.get(ROW_GROUPS_KEY.encode()) != SAMPLE_GROUPS.encode():
                return gene_major_matrix(parquet.read(columns=columns), value_name, path)
            groups = [
                gene_major_matrix(
                    parquet.read_row_group(group, columns=columns),
                    value_name,
                    f"{path} row group {group}",
                )
                for group in range(parquet.metadata.num_row_groups)
            ]
        gene_idx = groups[0][2]
        if any(not np.array_equal(genes, gene_idx) for _, _, genes in groups):
            raise ValueError(f"{path}: row groups of whole samples hold different genes")
        values = np.hstack([values for values, _, _ in groups])
        return values, np.concatenate([samples for _, samples, _ in groups]), gene_idx

    def file_metadata(self, path: UPath) -> dict[str, str]:
        """The key-value metadata a file was written with (e.g. which target normalized it)."""
        with self.fs.open(path.path, "rb") as handle:
            raw = pq.read_schema(handle).metadata or {}
        return {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"ARROW")}

    def remove_stale_temporaries(self, older_than_seconds: float = 3600) -> list[str]:
        """Delete temporary files a crashed run left behind; returns their paths.

        Only files older than `older_than_seconds` go, so a run writing right now keeps its own.
        Temporaries are never visible to readers (the catalog's globs match `*.parquet`).
        """
        cutoff = time.time() - older_than_seconds
        removed = []
        for path in sorted(self.fs.glob(f"{self.root.path}/**/{TEMPORARY_PREFIX}*")):
            modified = self.fs.modified(path)
            if modified.timestamp() < cutoff:
                self.fs.rm(path)
                removed.append(path)
        return removed


def _long_schema(
    value_name: str, value_type: pa.DataType, metadata: dict[str, str] | None
) -> pa.Schema:
    return pa.schema(
        [("sample_idx", pa.int32()), ("gene_idx", pa.int32()), (value_name, value_type)],
        metadata=metadata,
    )


def _write_row_group(
    writer: pq.ParquetWriter,
    schema: pa.Schema,
    samples: np.ndarray,
    genes: np.ndarray,
    values: np.ndarray,
) -> None:
    """One row group of a genes x samples `values` matrix, gene-major long rows."""
    table = pa.table(
        {
            "sample_idx": np.tile(samples, genes.size),
            "gene_idx": np.repeat(genes, samples.size),
            schema.field(2).name: pa.array(
                np.ascontiguousarray(values).ravel(), schema.field(2).type
            ),
        },
        schema=schema,
    )
    writer.write_table(table, row_group_size=table.num_rows)


def _gathered(slabs: Iterable[np.ndarray], n_genes: int, n_samples: int) -> np.ndarray:
    """Consecutive gene slabs (whole genes, every sample) stacked into one genes x samples
    matrix, allocated once."""
    matrix: np.ndarray | None = None
    written = 0
    for slab in slabs:
        if slab.ndim != 2 or slab.shape[1] != n_samples:
            raise ValueError(f"slab of shape {slab.shape}, expected (genes, {n_samples})")
        if written + slab.shape[0] > n_genes:
            raise ValueError(f"slabs held over {n_genes} genes")
        if matrix is None:
            matrix = np.empty((n_genes, n_samples), dtype=slab.dtype)
        matrix[written : written + slab.shape[0]] = slab
        written += slab.shape[0]
    if written != n_genes or matrix is None:
        raise ValueError(f"slabs held {written} genes, expected {n_genes}")
    return matrix


def gene_major_matrix(
    table: pa.Table, value_name: str, where: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gene-major long rows (a file, or whole genes of one) as (genes x samples matrix,
    sample_idx, gene_idx); rows in any other order are an error naming `where`."""
    genes_column = table.column("gene_idx").to_numpy()
    samples_column = table.column("sample_idx").to_numpy()
    n_samples = int(np.searchsorted(genes_column, genes_column[0], side="right"))
    n_genes = len(genes_column) // max(n_samples, 1)
    # Copies: views would keep the whole id columns (one id per value) alive as long as
    # a caller keeps the ids, which is the size of the data itself over many files.
    sample_idx = samples_column[:n_samples].copy()
    gene_idx = (genes_column[::n_samples] if n_samples else genes_column).copy()
    # Compared as (genes, samples) views against broadcast ids: no tiled copies.
    if (
        n_genes * n_samples != table.num_rows
        or not (samples_column.reshape(n_genes, n_samples) == sample_idx).all()
        or not (genes_column.reshape(n_genes, n_samples) == gene_idx[:, None]).all()
    ):
        raise ValueError(f"{where}: rows are not a complete gene-major genes x samples block")
    values = table.column(value_name).to_numpy().reshape(n_genes, n_samples)
    return values, sample_idx, gene_idx
