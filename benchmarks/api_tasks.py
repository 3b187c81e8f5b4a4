"""The Python API (`archs4.open`) on an ARCHS4 user's everyday tasks, against archs4py 1.0.4.

Why: a user moving from archs4py judges the warehouse by the calls they make in a notebook.
Each task gets the same answer both ways, in the same stage process on the same file (counts
asserted equal), so the ratio compares like with like:

- search then 50 genes: `meta.meta(file, SEARCH_TERM)` then `data.samples` of the matches
  (archs4py has no gene filter: it reads every gene) against `wh.search` then
  `wh.counts(found, genes)`;
- 100 GSMs' full profiles as a genes x samples DataFrame: `data.samples` against `wh.counts`;
- one gene across all samples: archs4py's only way, `data.index(file, samples, gene_idx=[g])`
  (timed on at most ARCHS4PY_GENE_SAMPLES samples and extrapolated, as in
  `benchmarks.access_paths`) against `wh.counts(genes=[g])`;
- co-expression of one gene: archs4py has none; its user would fetch every sample's counts
  (the same per-sample cost as the gene task, extrapolated alike) and correlate. The warehouse
  answers with `wh.coexpressed(g)`.

The bench's warehouse has no `genes` table (its normalization uses one length, 1500 bp, for
every gene): this stage writes that table from the source first, with that length.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa

import archs4
from archs4.catalog import build_catalog
from archs4.datasets import GENES_TABLE
from archs4.reader import Archs4Source
from archs4.warehouse import Warehouse
from benchmarks.access_paths import (
    ARCHS4PY_GENE_SAMPLES,
    archs4py_gene,
    archs4py_profiles,
    chosen_gene,
    chosen_gsms,
)
from benchmarks.measure import measured

# A regular expression, as archs4py takes it: some of these tissues are in every bench size.
SEARCH_TERM = "brain|liver|blood"
N_SEARCH_GENES = 50
BENCH_LENGTH_BP = 1500  # what benchmarks.stages.normalize divides by


def write_bench_genes(source: Path, warehouse: Warehouse) -> None:
    """The `genes` table of the release, every gene with the bench's single length."""
    with Archs4Source(source) as release:
        genes = release.genes()
    n = genes.num_rows
    table = genes.append_column("length_bp", pa.array(np.full(n, BENCH_LENGTH_BP), pa.int64()))
    table = table.append_column("has_length", pa.array(np.ones(n, dtype=bool)))
    warehouse.write_table(table, warehouse.table_path(GENES_TABLE))
    build_catalog(warehouse)


def _search_then_genes(wh: archs4.ReadOnlyWarehouse) -> np.ndarray:
    return wh.counts(wh.search(SEARCH_TERM), genes=list(range(N_SEARCH_GENES))).to_numpy()


def _archs4py_search_then_genes(source: Path) -> np.ndarray:
    """archs4py's columns come in file order, as the warehouse's search gives them."""
    import archs4py

    found = archs4py.meta.meta(str(source), SEARCH_TERM, silent=True)
    frame = archs4py.data.samples(str(source), found.index.tolist(), silent=True)
    return frame.iloc[:N_SEARCH_GENES].to_numpy()


def api_tasks(source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """The four tasks, each archs4py first (its process pool must not inherit DuckDB's threads)."""
    gsms = chosen_gsms(source)
    gene = chosen_gene(source)
    with h5py.File(source, "r") as handle:
        n_samples = handle["data/expression"].shape[1]
    columns = np.unique(np.linspace(0, n_samples - 1, min(ARCHS4PY_GENE_SAMPLES, n_samples)))
    columns = columns.astype(np.int64)
    reference = {
        "search_then_genes": measured(lambda: _archs4py_search_then_genes(source), repeats=1),
        "profiles_100": measured(lambda: archs4py_profiles(source, gsms), repeats=1),
        "one_gene": measured(lambda: archs4py_gene(source, gene, columns), repeats=1),
    }
    write_bench_genes(source, warehouse)  # after archs4py: it opens DuckDB
    with archs4.open(Path(warehouse.root.path)) as wh:
        ours = {
            "search_then_genes": measured(lambda: _search_then_genes(wh)),
            "profiles_100": measured(lambda: wh.counts(gsms).to_numpy()),
            "one_gene": measured(lambda: wh.counts(genes=[gene]).to_numpy()[0]),
            "coexpression": measured(lambda: wh.coexpressed(gene, k=20)),
        }
    assert np.array_equal(ours["profiles_100"].result, reference["profiles_100"].result)
    assert np.array_equal(ours["one_gene"].result[columns], reference["one_gene"].result)
    found = ours["search_then_genes"].result
    assert np.array_equal(found, reference["search_then_genes"].result)
    extrapolate = n_samples / columns.size
    archs4py_seconds = {task: m.seconds for task, m in reference.items()}
    archs4py_seconds["one_gene"] *= extrapolate
    archs4py_seconds["coexpression"] = archs4py_seconds["one_gene"]  # every sample's column
    return {
        "tasks": sorted(ours),
        "answers_equal_archs4py": True,
        "search_matches": int(found.shape[1]),
        "archs4py_samples_measured": int(columns.size),
        **{f"api_{task}_seconds": m.seconds for task, m in ours.items()},
        **{f"api_{task}_first_seconds": m.first_seconds for task, m in ours.items()},
        **{f"archs4py_{task}_seconds": s for task, s in archs4py_seconds.items()},
        "api_peak_mb": max((m.peak_mb or 0.0) for m in ours.values()),
    }
