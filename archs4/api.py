"""The Python API: the warehouse from a notebook, with archs4py's everyday calls.

    import archs4
    wh = archs4.open()                          # ARCHS4_WAREHOUSE, or the project's warehouse/
    liver = wh.search("liver", remove_sc=True)  # archs4py.meta.meta semantics
    counts = wh.counts(liver, genes=["ALB", "APOA1"])  # genes x samples pandas DataFrame
    expr = wh.expression(liver, output="anndata")      # samples x genes AnnData for scanpy
    wh.normalize(counts_of_all_genes, "log_quantile")  # or frozen, quantile, cpm, tmm
    wh.sql("SELECT count(*) FROM samples WHERE organism = $o", o="Homo sapiens")

Read-only with the guarantees of `archs4 sql` (README, "Security model"): queries run on
`archs4.catalog.connect_read_only`'s database, which has no filesystem, and matrices are read
from the resolved warehouse root's committed Parquet files by `archs4.long_reads`, reading only
the row groups that can hold the requested samples and genes. A matrix larger than
`max_values` (ARCHS4_API_MAX_VALUES) is refused before anything is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from archs4.by_gene import CHUNK, read_manifest
from archs4.catalog import connect_read_only, local_root, run_read_only_query
from archs4.count_normalization import SUBSET_METHODS, normalize_counts
from archs4.datasets import (
    COUNTS_DATASET,
    EXPRESSION_BY_GENE_DATASET,
    EXPRESSION_BY_GENE_MANIFEST,
    EXPRESSION_DATASET,
)
from archs4.expression import (
    LENGTH_ADJUSTMENT_KEY,
    gene_lengths_by_idx,
    normalize_against_target,
    read_target,
)
from archs4.gene_lookup import resolve_gene_ids
from archs4.long_reads import place_rows, read_rows
from archs4.paths import SQL_DIR
from archs4.sample_fields import column_for_field
from archs4.settings import Settings
from archs4.warehouse import ROW_GROUPS_KEY, SAMPLE_GROUPS, Warehouse, samples_per_row_group

if TYPE_CHECKING:
    import anndata

API_SQL_DIR = SQL_DIR / "api"
# archs4py.meta.meta's default fields, in its names.
DEFAULT_SEARCH_FIELDS = ("characteristics_ch1", "extract_protocol_ch1", "source_name_ch1", "title")
Frame = Literal["polars", "pandas", "arrow"]
MatrixOutput = Literal["pandas", "anndata", "polars"]
Samples = str | int | Iterable[str | int] | pl.DataFrame | pd.DataFrame | None
Genes = str | int | Iterable[str | int] | None


class MatrixTooLargeError(ValueError):
    """A requested matrix over the API's value budget: ask for fewer samples or genes."""


class SampleLookupError(ValueError):
    """GSMs or sample_idx values the warehouse does not hold."""


def open(path: str | Path | None = None, *, max_values: int | None = None) -> ReadOnlyWarehouse:
    """The warehouse at `path` (default: ARCHS4_WAREHOUSE or the project's `warehouse/`),
    read-only. `max_values` bounds any matrix it returns (default: ARCHS4_API_MAX_VALUES)."""
    settings = Settings.from_env()
    root = Path(path) if path is not None else settings.warehouse
    return ReadOnlyWarehouse(root, max_values or settings.api_max_values)


def _frame(table: pa.Table, output: Frame) -> Any:
    if output == "polars":
        return pl.from_arrow(table)
    if output == "pandas":
        return table.to_pandas()
    if output == "arrow":
        return table
    raise ValueError(f"output must be polars, pandas or arrow, got {output!r}")


class ReadOnlyWarehouse:
    """A read-only view of one built warehouse: SQL, metadata search and matrices."""

    def __init__(self, root: Path, max_values: int) -> None:
        self._storage = Warehouse.at(root)
        self._root = local_root(self._storage)
        self._connection = connect_read_only(self._storage)
        self.max_values = max_values
        self._samples: pl.DataFrame | None = None
        self._genes: pl.DataFrame | None = None

    def __enter__(self) -> ReadOnlyWarehouse:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def __repr__(self) -> str:
        return f"archs4.open({str(self._root)!r})"

    # -- SQL and metadata -------------------------------------------------------------------

    def sql(self, query: str, /, *, output: Frame = "polars", **params: Any) -> Any:
        """The result of a read-only query; `$name` in it is bound to `params[name]`."""
        return _frame(run_read_only_query(self._connection, query, params), output)

    def _sql_file(self, name: str, output: Frame = "polars", **params: Any) -> Any:
        return self.sql((API_SQL_DIR / f"{name}.sql").read_text(), output=output, **params)

    def genes(self) -> pl.DataFrame:
        """The gene table (gene_idx, ensembl_id, symbol, biotype, length_bp, has_length)."""
        if self._genes is None:
            self._genes = self.sql("SELECT * FROM genes ORDER BY gene_idx")
        return self._genes

    def search(
        self,
        term: str,
        fields: Iterable[str] = DEFAULT_SEARCH_FIELDS,
        *,
        remove_sc: bool = False,
        output: Frame = "polars",
    ) -> Any:
        """Samples whose metadata matches `term` (a regular expression, case-insensitive) in any
        of `fields` (archs4py's names or the warehouse's), as archs4py's `meta.meta`: with
        `remove_sc`, only samples whose single-cell probability is below 0.5 are kept."""
        columns = [column_for_field(field) for field in fields]
        if not columns:
            raise ValueError("search needs at least one field")
        matches = " OR ".join(f"regexp_matches(\"{c}\", $term, 'i')" for c in columns)
        query = (API_SQL_DIR / "search_samples.sql").read_text().replace("${matches}", matches)
        return self.sql(query, output=output, term=term, remove_sc=remove_sc)

    def series(self, gse: str, *, output: Frame = "polars") -> Any:
        """The samples of series `gse` (also those listed in several series), in sample order."""
        return self._sql_file("series_samples", output, gse=gse)

    def samples(self, samples: Samples = None, *, output: Frame = "polars") -> Any:
        """Every metadata field of `samples` (GSMs, sample_idx values or a frame holding a
        `sample_idx` column; None: all), in the order given."""
        chosen = self._select_samples(samples)
        frame = self.sql(
            "SELECT * FROM samples WHERE sample_idx IN (SELECT unnest($idx))",
            idx=chosen["sample_idx"].to_list(),
        )
        ordered = chosen.select("sample_idx").join(frame, on="sample_idx", how="left")
        return _frame(ordered.to_arrow(), output)

    # -- selections -------------------------------------------------------------------------

    def _sample_index(self) -> pl.DataFrame:
        if self._samples is None:
            self._samples = self.sql(
                "SELECT sample_idx, gsm, block FROM samples ORDER BY sample_idx"
            )
        return self._samples

    def _select_samples(self, samples: Samples) -> pl.DataFrame:
        """(sample_idx, gsm, block) of `samples`, in the order given, without repeats."""
        index = self._sample_index()
        if samples is None:
            return index
        if isinstance(samples, pd.DataFrame):
            samples = pl.from_pandas(samples.reset_index(drop=samples.index.name != "sample_idx"))
        if isinstance(samples, pl.DataFrame):
            if "sample_idx" not in samples.columns:
                raise ValueError("a frame of samples needs a sample_idx column (as search gives)")
            wanted = samples["sample_idx"].to_list()
        else:
            wanted = [samples] if isinstance(samples, str | int) else list(samples)
        key = "sample_idx" if all(isinstance(w, int | np.integer) for w in wanted) else "gsm"
        wanted = list(dict.fromkeys(int(w) if key == "sample_idx" else str(w) for w in wanted))
        order = pl.DataFrame({key: wanted}, schema={key: index.schema[key]})
        chosen = order.join(index, on=key, how="left", maintain_order="left")
        missing = chosen.filter(pl.col("block").is_null())[key].to_list()
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise SampleLookupError(f"{len(missing)} sample(s) not in the warehouse: {shown}")
        return chosen.select("sample_idx", "gsm", "block")

    def _select_genes(self, genes: Genes, *, expression: bool) -> pl.DataFrame:
        """(gene_idx, ensembl_id, symbol) of `genes` (None: every gene of the layer)."""
        table = self.genes()
        if expression:
            table = table.filter(pl.col("has_length"))
        if genes is None:
            return table.select("gene_idx", "ensembl_id", "symbol")
        names = [genes] if isinstance(genes, str | int) else list(genes)
        idx = resolve_gene_ids(self.genes().select("gene_idx", "ensembl_id", "symbol"), names)
        chosen = pl.DataFrame({"gene_idx": idx}, schema={"gene_idx": pl.Int32})
        chosen = chosen.join(table, on="gene_idx", how="left", maintain_order="left")
        absent = chosen.filter(pl.col("ensembl_id").is_null())["gene_idx"].to_list()
        if absent:
            raise ValueError(f"genes without a length are not in `expression`: gene_idx {absent}")
        return chosen.select("gene_idx", "ensembl_id", "symbol")

    def _check_size(self, n_genes: int, n_samples: int) -> None:
        if n_genes * n_samples > self.max_values:
            raise MatrixTooLargeError(
                f"{n_genes:,} genes x {n_samples:,} samples = {n_genes * n_samples:,} values, over "
                f"the limit of {self.max_values:,}: ask for fewer samples or genes, or raise it "
                "(archs4.open(max_values=...) or ARCHS4_API_MAX_VALUES)"
            )

    # -- matrices ---------------------------------------------------------------------------

    def counts(
        self,
        samples: Samples = None,
        genes: Genes = None,
        *,
        wide: bool = True,
        output: MatrixOutput = "pandas",
    ) -> Any:
        """Raw counts of `samples` x `genes` (None: all), exactly as in the source file.

        Wide: a genes x samples uint32 pandas DataFrame indexed by (ensembl_id, symbol) with one
        column per GSM, or a samples x genes AnnData (`output="anndata"`). Long (`wide=False`):
        a Polars frame of (gsm, sample_idx, gene_idx, ensembl_id, symbol, value).
        """
        return self._matrix(samples, genes, expression=False, wide=wide, output=output)

    def expression(
        self,
        samples: Samples = None,
        genes: Genes = None,
        *,
        wide: bool = True,
        output: MatrixOutput = "pandas",
    ) -> Any:
        """The `expression` layer (float32) of `samples` x `genes`, shaped as `counts` gives.

        Only genes with a length are in the layer. A few genes across many samples are read
        from the gene-clustered copy, all the genes of a few samples are computed from their
        `counts` (the stored values bit for bit: a sample's values depend only on its counts
        and the frozen target), and many samples are read from the sample blocks: whichever
        reads the fewest values.
        """
        return self._matrix(samples, genes, expression=True, wide=wide, output=output)

    def _matrix(
        self, samples: Samples, genes: Genes, *, expression: bool, wide: bool, output: MatrixOutput
    ) -> Any:
        """`counts` or `expression` of `samples` x `genes`, read and shaped."""
        chosen = self._select_samples(samples)
        gene_rows = self._select_genes(genes, expression=expression)
        self._check_size(gene_rows.height, chosen.height)
        if expression:
            matrix = self._expression_matrix(chosen, gene_rows, gene_subset=genes is not None)
        else:
            matrix = self._read_matrix(
                self._block_files(COUNTS_DATASET, chosen),
                "count",
                chosen=chosen,
                gene_rows=gene_rows,
                gene_subset=genes is not None,
                dtype=np.uint32,
            )
        return self._shaped(matrix, chosen, gene_rows, wide=wide, output=output)

    def _expression_matrix(
        self, chosen: pl.DataFrame, gene_rows: pl.DataFrame, *, gene_subset: bool
    ) -> np.ndarray:
        """`expression` values from whichever source reads the fewest values: the sample
        blocks, the gene-clustered copy, or the chosen samples' `counts` row groups normalized
        against the frozen target (the stored values bit for bit, `normalize_against_target`).
        """
        by_gene, blocks = self._expression_read_values(chosen, gene_rows.height)
        from_counts = self._counts_read_values(chosen)
        stored = blocks if by_gene is None else min(by_gene, blocks)
        if from_counts is not None and from_counts < stored:
            return self._expression_from_counts(chosen, gene_rows)
        if by_gene is not None and by_gene < blocks:
            chunks = self._storage.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK)
            files = [
                Path(self._storage.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, k).path)
                for k in chunks
            ]
        else:
            files = self._block_files(EXPRESSION_DATASET, chosen)
        return self._read_matrix(
            files,
            "value",
            chosen=chosen,
            gene_rows=gene_rows,
            gene_subset=gene_subset,
            dtype=np.float32,
        )

    def _block_files(self, dataset: str, chosen: pl.DataFrame) -> list[Path]:
        blocks = chosen["block"].unique().sort().to_list()
        return [Path(self._storage.block_path(dataset, block).path) for block in blocks]

    def _expression_read_values(self, chosen: pl.DataFrame, n_genes: int) -> tuple[int | None, int]:
        """Values read for `chosen` x `n_genes` from the gene-clustered copy (None when it is
        absent or older than the last samples) and from the `expression` blocks."""
        index = self._sample_index()
        touched = index.filter(pl.col("block").is_in(chosen["block"].unique())).height
        blocks = touched * int(self.genes()["has_length"].sum())
        manifest_path = self._root / EXPRESSION_BY_GENE_MANIFEST
        if manifest_path.is_file() and read_manifest(self._storage)["n_samples"] == index.height:
            return n_genes * index.height, blocks
        return None, blocks

    def _counts_read_values(self, chosen: pl.DataFrame) -> int | None:
        """Values read for every gene of `chosen` from `counts` files cut in row groups of
        whole samples (None when a file it would read is cut by gene, as before that cut)."""
        for block in chosen["block"].unique().to_list():
            path = self._storage.block_path(COUNTS_DATASET, block)
            if self._storage.file_metadata(path).get(ROW_GROUPS_KEY) != SAMPLE_GROUPS:
                return None
        n_genes = self.genes().height
        step = samples_per_row_group(n_genes)
        starts = self._sample_index().group_by("block").agg(pl.col("sample_idx").min())
        groups = (
            chosen.join(starts, on="block", suffix="_start")
            .select("block", (pl.col("sample_idx") - pl.col("sample_idx_start")) // step)
            .unique()
            .height
        )
        values = groups * step * n_genes
        return values if values <= self.max_values else None

    def _expression_from_counts(self, chosen: pl.DataFrame, gene_rows: pl.DataFrame) -> np.ndarray:
        every_gene = self._select_genes(None, expression=False)
        counts = self._read_matrix(
            self._block_files(COUNTS_DATASET, chosen),
            "count",
            chosen=chosen,
            gene_rows=every_gene,
            gene_subset=False,
            dtype=np.uint32,
        )
        values, kept = self._frozen_values(counts, every_gene["gene_idx"].to_numpy())
        return values[np.searchsorted(kept, gene_rows["gene_idx"].to_numpy())]

    def _read_matrix(
        self,
        files: list[Path],
        column: str,
        *,
        chosen: pl.DataFrame,
        gene_rows: pl.DataFrame,
        gene_subset: bool,
        dtype: type,
    ) -> np.ndarray:
        sample_idx = chosen["sample_idx"].to_numpy().astype(np.int64)
        gene_idx = gene_rows["gene_idx"].to_numpy().astype(np.int64)
        all_samples = chosen.height == self._sample_index().height

        def tables() -> Iterable[pa.Table]:
            for path in files:
                with path.open("rb") as handle:
                    yield read_rows(
                        handle,
                        column,
                        sample_idx=None if all_samples else sample_idx,
                        gene_idx=gene_idx if gene_subset else None,
                    )

        return place_rows(tables(), column, gene_idx, sample_idx, np.dtype(dtype))

    def _shaped(
        self,
        matrix: np.ndarray,
        chosen: pl.DataFrame,
        gene_rows: pl.DataFrame,
        *,
        wide: bool,
        output: MatrixOutput,
    ) -> Any:
        if not wide:
            return _long_frame(matrix, chosen, gene_rows)
        index = pd.MultiIndex.from_arrays(
            [gene_rows["ensembl_id"].to_list(), gene_rows["symbol"].to_list()],
            names=["ensembl_id", "symbol"],
        )
        columns = pd.Index(chosen["gsm"].to_list(), name="gsm")
        if output == "pandas":
            return pd.DataFrame(matrix, index=index, columns=columns, copy=False)
        if output == "anndata":
            return self._anndata(matrix, chosen, gene_rows)
        raise ValueError(f"wide output must be pandas or anndata, got {output!r}")

    def _anndata(
        self, matrix: np.ndarray, chosen: pl.DataFrame, gene_rows: pl.DataFrame
    ) -> anndata.AnnData:
        """Samples x genes, as scanpy expects: obs = sample metadata, var = genes."""
        import anndata

        obs = self.samples(chosen, output="pandas").set_index("gsm")
        obs.index = obs.index.astype(str)
        var = gene_rows.to_pandas().set_index("ensembl_id")
        return anndata.AnnData(X=np.ascontiguousarray(matrix.T), obs=obs, var=var)

    # -- normalization and co-expression ----------------------------------------------------

    def normalize(self, counts: pd.DataFrame, method: str = "log_quantile") -> pd.DataFrame:
        """`counts` (genes x samples, as `counts()` returns) normalized by `method`.

        `frozen` gives the warehouse's own `expression` values (the compendium's target and
        the gene lengths; `counts` must hold every gene, as ranks span all of them). The others
        normalize the given samples among themselves, as archs4py does: see
        `archs4.count_normalization`.
        """
        if method != "frozen":
            if method not in SUBSET_METHODS:
                raise ValueError(f"unknown method {method!r}: frozen or one of {SUBSET_METHODS}")
            return normalize_counts(counts, method)  # type: ignore[arg-type]
        return self._normalize_frozen(counts)

    def _normalize_frozen(self, counts: pd.DataFrame) -> pd.DataFrame:
        genes = self.genes()
        ensembl = (
            counts.index.get_level_values("ensembl_id")
            if isinstance(counts.index, pd.MultiIndex)
            else counts.index
        )
        if list(ensembl) != genes["ensembl_id"].to_list():
            raise ValueError(
                "frozen normalization needs the counts of every gene in warehouse order "
                "(wh.counts(samples) with genes=None): quantile ranks span all genes"
            )
        gene_idx = genes["gene_idx"].to_numpy()
        values, kept = self._frozen_values(counts.to_numpy(dtype=np.uint32), gene_idx)
        return pd.DataFrame(
            values, index=counts.index[np.isin(gene_idx, kept)], columns=counts.columns
        )

    def _frozen_values(
        self, counts: np.ndarray, gene_idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The warehouse's normalization of a counts matrix of every gene (rows `gene_idx`, in
        order): float32 values of the genes with a length, and their gene_idx."""
        target = read_target(self._storage)
        if target is None:
            raise ValueError("the warehouse has no qn_target yet")
        return normalize_against_target(
            counts,
            gene_idx.astype(np.int64),
            target.values,
            gene_lengths_by_idx(self._storage),
            self._length_adjustment(),
        )

    def _length_adjustment(self) -> Any:
        blocks = self._storage.blocks_present(EXPRESSION_DATASET)
        if not blocks:
            raise ValueError("the warehouse has no expression layer yet")
        path = self._storage.block_path(EXPRESSION_DATASET, blocks[0])
        return self._storage.file_metadata(path)[LENGTH_ADJUSTMENT_KEY]

    def coexpressed(
        self, gene: str | int, k: int = 20, *, exact: bool = False, output: Frame = "polars"
    ) -> Any:
        """The `k` genes whose `expression` correlates most with `gene` (Pearson, all samples)."""
        (gene_idx,) = resolve_gene_ids(
            self.genes().select("gene_idx", "ensembl_id", "symbol"), [gene], unique=True
        )
        from archs4 import coexpression

        table = coexpression.coexpressed(self._connection, int(gene_idx), k, exact=exact)
        return _frame(table, output)


def _long_frame(matrix: np.ndarray, chosen: pl.DataFrame, gene_rows: pl.DataFrame) -> pl.DataFrame:
    """Long rows (gsm, sample_idx, gene_idx, ensembl_id, symbol, value), sample-major."""
    n_genes, n_samples = matrix.shape
    samples = chosen.select("gsm", "sample_idx").select(pl.all().repeat_by(n_genes).explode())
    genes = pl.concat([gene_rows] * n_samples) if n_samples else gene_rows.clear()
    return pl.concat(
        [samples, genes, pl.DataFrame({"value": matrix.T.reshape(-1)})], how="horizontal"
    )


__all__ = ["MatrixTooLargeError", "ReadOnlyWarehouse", "SampleLookupError", "open"]
