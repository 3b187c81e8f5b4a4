"""The warehouse's two access paths against archs4py 1.0.4 and plain h5py on the same file.

Why: the warehouse exists so that the questions people ask of ARCHS4 are fast. The two that
archs4py serves are

- sample-wise: the full profiles of a set of GSMs, as a genes x samples matrix
  (`archs4py.data.samples(file, gsms)`);
- gene-wise: one gene across every sample. archs4py has no gene access: its way is
  `archs4py.data.index(file, all samples, gene_idx=[gene])`, which reads every sample's column
  (one process-pool task per sample, each opening the file and reading the whole column).

Each is timed three ways in the same stage process, on the same files: through DuckDB over the
warehouse's catalog (`warehouse.duckdb`, opened read-only, the views any DuckDB client sees),
through archs4py, and with plain h5py (the floor for the HDF5 file). The warehouse's raw counts
must equal archs4py's and h5py's exactly (asserted), so every ratio compares the same answer.
Warehouse and h5py times are the best of three runs; archs4py runs once (seconds to minutes
of reading, not noise). The files are in the OS page cache for all three (just written).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import h5py
import numpy as np

from archs4.warehouse import Warehouse
from benchmarks.measure import measured

N_GSMS = 100
SEED = 0
# archs4py's gene access reads every sample's column, one task per sample, each costing the
# same: it is timed on at most this many samples (spread over the file) and extrapolated
# linearly to all of them (measured: ~60 ms per sample at 20,000 genes on 2 cores, so all
# 80,000 samples would take 80 minutes).
ARCHS4PY_GENE_SAMPLES = 500


def connect_catalog(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    """The catalog every DuckDB client opens, read-only."""
    return duckdb.connect(str(Path(warehouse.catalog_path.path)), read_only=True)


def source_gsms(source: Path) -> np.ndarray:
    """Every GSM of the release file, in column order."""
    with h5py.File(source, "r") as handle:
        return handle["meta/samples/geo_accession"].asstr()[:]


def chosen_gsms(source: Path) -> list[str]:
    """N_GSMS GSMs drawn without replacement from all samples (seeded), in draw order."""
    gsms = source_gsms(source)
    rng = np.random.default_rng(SEED)
    return gsms[rng.choice(gsms.size, size=min(N_GSMS, gsms.size), replace=False)].tolist()


def _int_list(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in values)


def warehouse_profiles(
    connection: duckdb.DuckDBPyConnection, gsms: list[str], view: str, column: str
) -> np.ndarray:
    """genes x len(gsms) matrix of `view`'s `column` for `gsms`, columns in `gsms` order.

    Two queries, as a client would write them: the GSMs' `sample_idx` and `block` from
    `samples`, then `view` filtered on both. The block filter prunes whole partition files;
    within a `counts` file the row groups hold runs of whole samples, so the sample filter
    prunes all but the GSMs' row groups, while an `expression` block (row groups of genes over
    every sample) is read whole.
    """
    rows = connection.execute(
        "SELECT gsm, sample_idx, block FROM samples WHERE gsm IN (SELECT unnest($gsms))",
        {"gsms": gsms},
    ).fetchall()
    found = {gsm: (sample_idx, block) for gsm, sample_idx, block in rows}
    wanted = np.array([found[gsm][0] for gsm in gsms], dtype=np.int64)
    blocks = ", ".join(f"'{block}'" for block in sorted({b for _, b in found.values()}))
    result = connection.sql(
        f'SELECT gene_idx, sample_idx, "{column}" AS v FROM {view} '
        f"WHERE block IN ({blocks}) AND sample_idx IN ({_int_list(wanted)})"
    ).fetchnumpy()
    return _pivot(result["gene_idx"], result["sample_idx"], result["v"], wanted)


def _pivot(
    gene_idx: np.ndarray, sample_idx: np.ndarray, values: np.ndarray, wanted: np.ndarray
) -> np.ndarray:
    """Long rows as a genes x samples matrix, columns in `wanted` order (NaN/0 where absent)."""
    order = np.argsort(wanted)
    position = order[np.searchsorted(wanted[order], sample_idx)]
    fill = np.nan if np.issubdtype(values.dtype, np.floating) else 0
    matrix = np.full((int(gene_idx.max()) + 1, wanted.size), fill, dtype=values.dtype)
    matrix[gene_idx, position] = values
    return matrix


def archs4py_profiles(source: Path, gsms: list[str]) -> np.ndarray:
    """archs4py 1.0.4's sample access, columns put in `gsms` order (it returns file order)."""
    import archs4py.data

    frame = archs4py.data.samples(str(source), gsms, silent=True)
    return frame[gsms].to_numpy()


def h5py_profiles(source: Path, gsms: list[str]) -> np.ndarray:
    """Plain h5py: look the GSMs up, read their columns in one sorted fancy-index read."""
    with h5py.File(source, "r") as handle:
        position = {gsm: i for i, gsm in enumerate(handle["meta/samples/geo_accession"].asstr())}
        columns = np.array([position[gsm] for gsm in gsms])
        order = np.argsort(columns)
        block = handle["data/expression"][:, columns[order]]
    profiles = np.empty_like(block)
    profiles[:, order] = block
    return profiles


def sample_access(source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """100 GSMs' full profiles: warehouse `counts` and `expression` against archs4py and h5py.

    archs4py runs first: it forks a pool of 16 processes, which must not inherit DuckDB's
    threads. Its workers' memory is not in this stage's peak."""
    gsms = chosen_gsms(source)
    reference = measured(lambda: archs4py_profiles(source, gsms), repeats=1)
    plain = measured(lambda: h5py_profiles(source, gsms))
    with connect_catalog(warehouse) as connection:
        counts = measured(lambda: warehouse_profiles(connection, gsms, "counts", "count"))
        expression = measured(lambda: warehouse_profiles(connection, gsms, "expression", "value"))
    assert np.array_equal(counts.result, plain.result), "warehouse counts differ from h5py's"
    assert np.array_equal(reference.result, plain.result), "archs4py differs from h5py"
    return {
        "n_gsms": len(gsms),
        "profile_shape": list(counts.result.shape),
        "counts_equal_archs4py_and_h5py": True,
        "warehouse_counts_seconds": counts.seconds,
        "warehouse_counts_first_seconds": counts.first_seconds,
        "warehouse_expression_seconds": expression.seconds,
        "warehouse_expression_first_seconds": expression.first_seconds,
        "archs4py_seconds": reference.seconds,
        "h5py_seconds": plain.seconds,
        "warehouse_peak_mb": counts.peak_mb,
        "h5py_peak_mb": plain.peak_mb,
    }


def chosen_gene(source: Path) -> int:
    """One gene position drawn at random (seeded)."""
    with h5py.File(source, "r") as handle:
        n_genes = handle["data/expression"].shape[0]
    return int(np.random.default_rng(SEED).integers(n_genes))


def warehouse_gene(
    connection: duckdb.DuckDBPyConnection, view: str, column: str, gene: int
) -> np.ndarray:
    """One gene's values over all samples of `view`, in `sample_idx` order."""
    result = connection.sql(
        f'SELECT sample_idx, "{column}" AS v FROM {view} WHERE gene_idx = {int(gene)}'
    ).fetchnumpy()
    return result["v"][np.argsort(result["sample_idx"])]


def h5py_gene(source: Path, gene: int) -> np.ndarray:
    """Plain h5py: one row of the matrix (every sample chunk of the gene's row of chunks)."""
    with h5py.File(source, "r") as handle:
        return handle["data/expression"][gene, :]


def archs4py_gene(source: Path, gene: int, columns: np.ndarray) -> np.ndarray:
    """archs4py 1.0.4's only way to one gene: `index` over the samples, gene_idx=[gene]."""
    import archs4py.data

    frame = archs4py.data.index(str(source), columns.tolist(), gene_idx=[gene], silent=True)
    return frame.to_numpy()[0]


def gene_access(source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """One gene across all samples: `expression_by_gene` and `counts` through the catalog
    against archs4py's `index` (on at most ARCHS4PY_GENE_SAMPLES samples, extrapolated) and
    an h5py row read. archs4py runs first (see `sample_access`)."""
    gene = chosen_gene(source)
    with h5py.File(source, "r") as handle:
        n_samples = handle["data/expression"].shape[1]
    measured_samples = min(ARCHS4PY_GENE_SAMPLES, n_samples)
    columns = np.unique(np.linspace(0, n_samples - 1, measured_samples, dtype=np.int64))
    reference = measured(lambda: archs4py_gene(source, gene, columns), repeats=1)
    plain = measured(lambda: h5py_gene(source, gene))
    with connect_catalog(warehouse) as connection:
        by_gene = measured(lambda: warehouse_gene(connection, "expression_by_gene", "value", gene))
        counts = measured(lambda: warehouse_gene(connection, "counts", "count", gene))
        source_column = connection.sql(
            "SELECT source_column FROM samples ORDER BY sample_idx"
        ).fetchnumpy()["source_column"]
    assert np.array_equal(counts.result, plain.result[source_column]), "counts differ from h5py"
    assert np.array_equal(reference.result, plain.result[columns])
    assert by_gene.result.size == n_samples
    return {
        "gene_idx": gene,
        "counts_equal_archs4py_and_h5py": True,
        "warehouse_by_gene_seconds": by_gene.seconds,
        "warehouse_by_gene_first_seconds": by_gene.first_seconds,
        "warehouse_counts_seconds": counts.seconds,
        "warehouse_counts_first_seconds": counts.first_seconds,
        "h5py_seconds": plain.seconds,
        "archs4py_samples_measured": int(columns.size),
        "archs4py_seconds_measured": reference.seconds,
        "archs4py_seconds": reference.seconds * n_samples / columns.size,
    }
