"""Gene-gene co-expression: the genes whose normalized values correlate most with a gene's.

"Genes correlated with X" is ARCHS4's best-known question: the Pearson correlation of two genes'
`expression` values over samples. The G x G matrix of all pairs would not fit (67,000 genes:
18 GB of float32), so it is never held. Two ways answer:

- Exact, at query time: `sql/analytics/coexpressed_genes.sql`, one streamed pass of DuckDB's
  `corr()` over the gene-clustered copy, with one aggregate state per gene. It reads the whole
  layer, so its time grows with genes x samples.
- Stored: the asset `gene_coexpression` keeps each gene's top `top_k` partners
  (`metrics/gene_coexpression.parquet`), so a query is a lookup. It is computed over a fixed
  sample set: all samples while there are at most `max_samples` (ARCHS4_COEXPRESSION_SAMPLES),
  else the first `max_samples` of a permutation of the sample positions seeded with
  SAMPLE_SEED (sorted), fewer when genes x samples float32 would not fit the memory budget.
  Each gene is standardized (centred, unit norm) so a correlation is a dot product; rows of
  genes are multiplied in blocks against every later gene (the product is symmetric, so each
  pair is computed once) and each gene's running top k kept, so memory is the genes x samples
  float32 matrix plus one block of products, whatever the number of genes.

Genes with the same value in every (chosen) sample have no correlation and are left out of
both. `coexpressed` picks the stored table when it can and the exact query otherwise.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from archs4.budget import PROCESS_BYTES
from archs4.by_gene import CHUNK, iter_gene_row_groups, read_manifest
from archs4.catalog import run_read_only_query
from archs4.datasets import EXPRESSION_BY_GENE_DATASET
from archs4.long_reads import place_rows, read_rows
from archs4.paths import SQL_DIR
from archs4.progress import Progress
from archs4.warehouse import ROWS_PER_ROW_GROUP, Warehouse

EXACT_SQL = SQL_DIR / "analytics" / "coexpressed_genes.sql"
DEFAULT_MAX_SAMPLES = 20_000
DEFAULT_TOP_K = 100
SAMPLE_SEED = 0
# Products per block of genes x genes (float32, 64 MB), and values per standardized slice.
BLOCK_VALUES = 16 << 20
STANDARDIZE_VALUES = 4 << 20
# Working memory besides the standardized matrix, per value of a row group as read (ids and
# values as Arrow and numpy, the checks of their layout: 51 B measured reading whole gene chunks;
# 34 MB for row groups of 320,000 values) and per product of a block (the product, its merge
# with the running top k, argpartition's int64 positions: 19 B counted).
BYTES_PER_READ_VALUE = 52
BYTES_PER_PRODUCT = 20
LOOKUP_SQL = """
SELECT "rank"::BIGINT AS "rank", partner_gene_idx AS gene_idx, partner_ensembl_id AS ensembl_id,
       partner_symbol AS symbol, correlation::DOUBLE AS correlation
FROM gene_coexpression
WHERE gene_idx = $gene_idx AND "rank" <= $k
ORDER BY "rank"
"""
COLUMNS = ["rank", "gene_idx", "ensembl_id", "symbol", "correlation"]


def _quiet(_line: str) -> None:
    pass


class UndefinedCorrelationError(ValueError):
    """A gene without a correlation: not in `expression` (no length), or constant."""


def sample_positions(n_total: int, n_chosen: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Positions (sorted) of the samples the stored co-expression uses among `n_total`: all of
    them, or the first `n_chosen` of a seeded permutation (so a smaller set is a subset)."""
    if n_chosen >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n_chosen])


def peak_bytes(n_genes: int, n_samples: int, n_total_samples: int) -> int:
    """The memory of computing the stored co-expression of `n_genes` over `n_samples` of
    `n_total_samples` (a row group of the copy holds about a million values, or one gene)."""
    read = BYTES_PER_READ_VALUE * max(ROWS_PER_ROW_GROUP, n_total_samples)
    working = max(read, BYTES_PER_PRODUCT * BLOCK_VALUES)  # reading, then correlating
    return PROCESS_BYTES + 4 * n_genes * n_samples + working


def samples_within_budget(
    n_genes: int, n_samples: int, n_total_samples: int, budget_bytes: int
) -> int:
    """`n_samples`, fewer when genes x samples float32 would not fit `budget_bytes` (at least
    two: a correlation needs them)."""
    spare = budget_bytes - peak_bytes(n_genes, 0, n_total_samples)
    return max(2, min(n_samples, spare // (4 * max(n_genes, 1))))


def standardize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float32 rows centred to mean 0 and scaled to norm 1, of the rows with variance; which
    rows have variance). A row's dot product with another is then their correlation."""
    has_variance = values.max(axis=1) > values.min(axis=1)
    rows = values[has_variance].astype(np.float64)
    rows -= rows.mean(axis=1, keepdims=True)
    rows /= np.sqrt(np.einsum("ij,ij->i", rows, rows))[:, None]
    return rows.astype(np.float32), has_variance


@dataclass(frozen=True)
class StandardizedGenes:
    """The standardized rows of the genes with variance over the chosen samples."""

    z: np.ndarray  # genes x samples, float32
    gene_idx: np.ndarray
    constant_gene_idx: np.ndarray
    n_total_samples: int


def _row_groups(warehouse: Warehouse, n_total: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(chunk key, values genes x samples, gene_idx) of each row group of the gene-clustered
    copy, checked: every one over the same `n_total` samples, genes in increasing order."""
    first_samples, last_gene = None, -1
    for key, values, sample_idx, gene_idx in iter_gene_row_groups(warehouse):
        if first_samples is None:
            first_samples = sample_idx
        if sample_idx.size != n_total or not np.array_equal(sample_idx, first_samples):
            raise ValueError("the gene chunks of expression_by_gene hold other samples")
        if gene_idx[0] <= last_gene:
            raise ValueError("the gene chunks of expression_by_gene are not in gene order")
        last_gene = int(gene_idx[-1])
        yield key, values, gene_idx


def read_standardized(
    warehouse: Warehouse, n_samples: int, report: Callable[[str], None] | None = None
) -> StandardizedGenes:
    """Every gene of the gene-clustered copy over `sample_positions(N, n_samples)`, in one
    pass over its row groups; the matrix is allocated once (rows of constant genes stay
    unused, so never resident)."""
    manifest = read_manifest(warehouse)
    n_total = int(manifest["n_samples"])
    positions = sample_positions(n_total, n_samples)
    z = np.empty((int(manifest["n_genes"]), positions.size), np.float32)
    kept, constant, filled = [], [], 0
    progress = Progress(
        "gene_coexpression: read, gene chunk", len(manifest["chunks"]), report or _quiet, "genes"
    )
    rows_per_slice = max(1, STANDARDIZE_VALUES // max(positions.size, 1))
    for _, row_groups in itertools.groupby(_row_groups(warehouse, n_total), key=lambda g: g[0]):
        chunk_genes = 0
        for _, values, gene_idx in row_groups:
            for start in range(0, gene_idx.size, rows_per_slice):
                genes = gene_idx[start : start + rows_per_slice]
                rows, has_variance = standardize(
                    values[start : start + rows_per_slice][:, positions]
                )
                z[filled : filled + rows.shape[0]] = rows
                filled += rows.shape[0]
                kept.append(genes[has_variance])
                constant.append(genes[~has_variance])
            chunk_genes += gene_idx.size
        progress.step(chunk_genes)
    if filled + sum(part.size for part in constant) != z.shape[0]:
        raise ValueError("expression_by_gene holds other genes than its manifest")
    empty = np.empty(0, np.int64)
    return StandardizedGenes(
        z[:filled], np.concatenate([empty, *kept]), np.concatenate([empty, *constant]), n_total
    )


class _TopK:
    """Each row's k highest candidates seen so far (values and column positions)."""

    def __init__(self, n_rows: int, k: int) -> None:
        self.k = k
        self.values = np.full((n_rows, k), -np.inf, np.float32)
        self.partners = np.full((n_rows, k), -1, np.int64)

    def offer(self, first_row: int, candidates: np.ndarray, first_partner: int) -> None:
        """Merge `candidates` (rows from `first_row`, columns = partners from
        `first_partner`), a slice of rows at a time so the merge stays within BLOCK_VALUES."""
        k = self.k
        step = max(1, BLOCK_VALUES // (k + candidates.shape[1]))
        for start in range(0, candidates.shape[0], step):
            rows = slice(first_row + start, first_row + min(start + step, candidates.shape[0]))
            merged = np.concatenate([self.values[rows], candidates[start : start + step]], 1)
            top = np.argpartition(merged, -k, axis=1)[:, -k:]
            known = np.take_along_axis(self.partners[rows], np.minimum(top, k - 1), 1)
            self.partners[rows] = np.where(top < k, known, first_partner + top - k)
            self.values[rows] = np.take_along_axis(merged, top, 1)

    def ranked(self) -> tuple[np.ndarray, np.ndarray]:
        """(partners, values), each row by value descending, then by partner."""
        order = np.lexsort((self.partners, -self.values), axis=1)
        values = np.take_along_axis(self.values, order, 1)
        return np.take_along_axis(self.partners, order, 1), np.clip(values, -1.0, 1.0)


def top_correlations(
    z: np.ndarray,
    k: int,
    block_genes: int | None = None,
    report: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(partner rows, correlations), each rows x min(k, rows - 1): for every row of the
    standardized `z`, the other rows with the highest dot products, descending.

    Block by block of `block_genes` rows (default: BLOCK_VALUES products per block), each
    block's rows against themselves and every later row: a block's rows then have seen every
    partner (the earlier ones offered them their transposed products) and the later rows get
    this block as candidates.
    """
    n_genes = z.shape[0]
    k = min(k, n_genes - 1)
    if k < 1:
        return np.empty((n_genes, 0), np.int64), np.empty((n_genes, 0), np.float32)
    block = block_genes or max(1, BLOCK_VALUES // n_genes)
    best = _TopK(n_genes, k)
    starts = range(0, n_genes, block)
    pairs = [(min(start + block, n_genes) - start) * (n_genes - start) for start in starts]
    progress = Progress(
        "gene_coexpression: correlate, gene block",
        len(starts),
        report or _quiet,
        "pairs",  # blocks shrink along the triangle: the time left follows the pairs left
        total_units=sum(pairs),
    )
    for start, block_pairs in zip(starts, pairs, strict=True):
        stop = min(start + block, n_genes)
        products = z[start:stop] @ z[start:].T
        # A rectangular product's square part is not exactly symmetric (BLAS sums (i, j) and
        # (j, i) in different orders): mirror its upper triangle, so a pair stored both ways has
        # one value (the rehearsal's check found 54 genes with pairs that differed).
        upper, lower = np.triu_indices(stop - start, 1)
        products[lower, upper] = products[upper, lower]
        diagonal = np.arange(stop - start)
        products[diagonal, diagonal] = -np.inf  # a gene is not its own partner
        best.offer(start, products, first_partner=start)
        if stop < n_genes:
            best.offer(stop, products[:, stop - start :].T, first_partner=start)
        progress.step(block_pairs)
    return best.ranked()


@dataclass(frozen=True)
class Coexpression:
    """The stored table, what it was computed over, and the seconds of its two phases."""

    table: pa.Table
    n_samples: int
    n_total_samples: int
    n_constant_genes: int
    top_k: int
    read_seconds: float
    correlate_seconds: float


def compute_gene_coexpression(
    warehouse: Warehouse,
    *,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    top_k: int = DEFAULT_TOP_K,
    budget_bytes: int,
    report: Callable[[str], None] | None = None,
) -> Coexpression:
    """The top `top_k` partners of every gene with variance (module docstring)."""
    manifest = read_manifest(warehouse)
    n_total = int(manifest["n_samples"])
    wanted = min(n_total, max_samples)
    n_samples = samples_within_budget(int(manifest["n_genes"]), wanted, n_total, budget_bytes)
    started = time.perf_counter()
    genes = read_standardized(warehouse, n_samples, report)
    read = time.perf_counter()
    partners, values = top_correlations(genes.z, top_k, report=report)
    correlated = time.perf_counter()
    k = partners.shape[1]
    table = pa.table(
        {
            "gene_idx": pa.array(np.repeat(genes.gene_idx, k), pa.int32()),
            "rank": pa.array(np.tile(np.arange(1, k + 1), genes.gene_idx.size), pa.int32()),
            "partner_gene_idx": pa.array(genes.gene_idx[partners.ravel()], pa.int32()),
            "correlation": pa.array(values.ravel(), pa.float32()),
            "n_samples": pa.array(np.full(partners.size, genes.z.shape[1]), pa.int32()),
        }
    )
    return Coexpression(
        table,
        genes.z.shape[1],
        genes.n_total_samples,
        genes.constant_gene_idx.size,
        k,
        read_seconds=read - started,
        correlate_seconds=correlated - read,
    )


def _centred_unit(rows: np.ndarray) -> np.ndarray:
    """float64 rows centred and scaled to norm 1 (NaN for constant rows)."""
    rows = rows.astype(np.float64)
    rows -= rows.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def spot_correlations(
    warehouse: Warehouse, spot_gene_idx: np.ndarray, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """(gene_idx of every gene, spots x genes correlations) over the stored table's samples,
    recomputed in float64 from the stored values (NaN for constant genes): the reference the
    asset check compares the stored table with. The spots' rows come from their own row groups,
    then one pass over the copy correlates them with every gene."""
    n_total = int(read_manifest(warehouse)["n_samples"])
    positions = sample_positions(n_total, n_samples)
    tables = []
    for key in warehouse.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK):
        path = warehouse.partition_path(EXPRESSION_BY_GENE_DATASET, CHUNK, key)
        with warehouse.fs.open(path.path, "rb") as handle:
            tables.append(read_rows(handle, "value", gene_idx=spot_gene_idx))
    samples = np.unique(np.concatenate([t["sample_idx"].to_numpy() for t in tables]))
    spots = place_rows(tables, "value", np.asarray(spot_gene_idx), samples, np.dtype(np.float32))
    spot_rows = _centred_unit(spots[:, positions])
    all_genes, parts = [], []
    for _, values, gene_idx in _row_groups(warehouse, n_total):
        parts.append(spot_rows @ _centred_unit(values[:, positions]).T)
        all_genes.append(gene_idx)
    return np.concatenate(all_genes), np.hstack(parts)


def recomputation_mismatches(
    stored: pa.Table,
    spot_gene_idx: np.ndarray,
    gene_idx: np.ndarray,
    correlations: np.ndarray,
    tolerance: float = 1e-5,
) -> list[str]:
    """What differs between the stored partners of each spot gene and `spot_correlations`:
    at every rank, the stored value against the recomputed correlation of the stored partner,
    and that against the rank's recomputed correlation (so a partner swapped with another of
    equal correlation is no error, a missing stronger partner is)."""
    problems = []
    for spot, row in zip(spot_gene_idx, correlations, strict=True):
        exact = np.where(gene_idx == spot, np.nan, row)
        mine = stored.filter(pc.equal(stored["gene_idx"], int(spot))).sort_by("rank")
        expected = np.sort(exact[~np.isnan(exact)])[::-1][: mine.num_rows]
        partners = np.searchsorted(gene_idx, mine["partner_gene_idx"].to_numpy())
        of_partners = exact[partners]
        if mine.num_rows == 0 or expected.size < mine.num_rows:
            problems.append(f"gene_idx {spot}: {mine.num_rows} stored partners")
            continue
        stored_error = np.abs(mine["correlation"].to_numpy() - of_partners).max()
        rank_error = np.abs(of_partners - expected).max()
        if not max(stored_error, rank_error) <= tolerance:  # NaN (a constant partner) fails
            problems.append(
                f"gene_idx {spot}: stored values off by {stored_error:.2g}, ranking by "
                f"{rank_error:.2g} (tolerance {tolerance:g})"
            )
    return problems


# -- queries ------------------------------------------------------------------------------------


def _has_view(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    # fetchall: a result left unfinished would block the connection's next query.
    ((found,),) = connection.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = $name", {"name": name}
    ).fetchall()
    return bool(found)


def _no_correlation(connection: duckdb.DuckDBPyConnection, gene_idx: int) -> str:
    """Why gene `gene_idx` has no correlation with any gene (the message of the error)."""
    ((n_values, spread),) = connection.execute(
        "SELECT count(*), max(value) - min(value) FROM expression_by_gene WHERE gene_idx = $g",
        {"g": gene_idx},
    ).fetchall()
    if not n_values:
        return f"gene_idx {gene_idx} is not in expression (a gene without a length)"
    if not spread:
        return f"gene_idx {gene_idx} has the same value in every sample: no correlation"
    return f"gene_idx {gene_idx}: no other gene varies across samples"


def coexpressed(
    connection: duckdb.DuckDBPyConnection, gene_idx: int, k: int = 20, *, exact: bool = False
) -> pa.Table:
    """The `k` genes most correlated with gene `gene_idx` (`rank`, `gene_idx`, `ensembl_id`,
    `symbol`, `correlation`), on a read-only connection (`archs4.catalog.connect_read_only`).

    The stored `gene_coexpression` answers when it holds k partners of the gene and `exact` is
    False (a lookup; over its sample set); otherwise the exact query over all samples
    (`sql/analytics/coexpressed_genes.sql`, one pass over the layer). The table's schema
    metadata says which answered (`source`: `gene_coexpression` or `exact`). A gene without a
    correlation (no length, or constant) raises `UndefinedCorrelationError`.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    parameters = {"gene_idx": int(gene_idx), "k": int(k)}
    if not exact and _has_view(connection, "gene_coexpression"):
        stored = run_read_only_query(connection, LOOKUP_SQL, parameters)
        if stored.num_rows == k:
            return stored.select(COLUMNS).replace_schema_metadata({"source": "gene_coexpression"})
    table = run_read_only_query(connection, EXACT_SQL.read_text(), parameters)
    if table.num_rows == 0:
        raise UndefinedCorrelationError(_no_correlation(connection, int(gene_idx)))
    return table.select(COLUMNS).replace_schema_metadata({"source": "exact"})
