"""The Python API (`archs4.open`) against archs4py 1.0.4 and h5py on the same demo file.

archs4py is the official client an ARCHS4 user moves from: its searches, its metadata calls and
its normalizations and gene utilities are the references here, computed on the demo's HDF5 file
itself; count matrices are read with h5py in archs4py's shape (see `archs4py_samples`).
"""

from __future__ import annotations

import archs4py
import duckdb
import h5py
import numpy as np
import pandas as pd
import polars as pl
import pytest
from rnanorm import TMM

import archs4
from archs4.api import MatrixTooLargeError, SampleLookupError
from archs4.catalog import ReadOnlyQueryError
from archs4.gene_lookup import GeneLookupError

pytestmark = pytest.mark.slow  # the session's demo warehouse

SEARCH_TERMS = ["liver", "CORTEX", "hela", "t[- ]?cell", "fibroblast|keratinocyte"]


@pytest.fixture(scope="module")
def wh(demo):
    _, root, _, _ = demo
    with archs4.open(root) as warehouse:
        yield warehouse


@pytest.fixture(scope="module")
def source(demo):
    paths, _, counts, _ = demo
    with h5py.File(paths.h5, "r") as handle:
        gsms = handle["meta/samples/geo_accession"].asstr()[:]
    return str(paths.h5), counts, gsms


def archs4py_samples(path: str, gsms: list[str]) -> pd.DataFrame:
    """What archs4py's `data.samples(path, gsms)` returns, read with h5py: genes x samples uint32
    counts indexed by symbol, columns in file order. archs4py's own call forks a pool of 16
    workers that hung under pytest (in a spawned process too); `make bench` (api_tasks) asserts
    the warehouse equal to archs4py's real call instead."""
    with h5py.File(path, "r") as handle:
        all_gsms = handle["meta/samples/geo_accession"].asstr()[:]
        columns = np.sort(np.flatnonzero(np.isin(all_gsms, gsms)))
        symbols = handle["meta/genes/symbol"].asstr()[:]
        values = handle["data/expression"][:, columns].astype(np.uint32)
    return pd.DataFrame(values, index=symbols, columns=all_gsms[columns], dtype=np.uint32)


def some_gsms(gsms: np.ndarray, n: int = 12, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return gsms[rng.choice(gsms.size, size=n, replace=False)].tolist()


@pytest.mark.parametrize("remove_sc", [False, True])
@pytest.mark.parametrize("term", SEARCH_TERMS)
def test_search_matches_archs4py(wh, source, term, remove_sc):
    path, _, _ = source
    expected = archs4py.meta.meta(path, term, remove_sc=remove_sc, silent=True)
    found = wh.search(term, remove_sc=remove_sc)
    assert sorted(found["gsm"].to_list()) == sorted(expected.index.tolist())
    assert found.height > 0 or term == "hela"


def test_search_fields_take_either_name(wh):
    by_source_name = wh.search("liver", fields=["source_name_ch1"])
    by_column = wh.search("liver", fields=["source_name"])
    assert by_source_name.equals(by_column)
    with pytest.raises(ValueError, match="no_such_field"):
        wh.search("liver", fields=["no_such_field"])


def test_counts_of_gsms_equal_archs4py_and_h5py(wh, source):
    path, counts, gsms = source
    chosen = some_gsms(gsms)
    matrix = wh.counts(chosen)
    expected = archs4py_samples(path, chosen)
    assert set(matrix.dtypes) == {np.dtype(np.uint32)}  # one dtype for the whole frame
    assert list(matrix.columns) == chosen
    pd.testing.assert_frame_equal(
        matrix.droplevel("ensembl_id")[expected.columns], expected, check_names=False
    )
    columns = [int(np.flatnonzero(gsms == gsm)[0]) for gsm in chosen]
    np.testing.assert_array_equal(matrix.to_numpy(), counts[:, columns])


def test_counts_of_genes_across_all_samples(wh, source):
    _, counts, _ = source
    genes = wh.genes()
    picked = [*genes["symbol"][[3, 50, 700]].to_list(), genes["ensembl_id"][9], 11]
    matrix = wh.counts(genes=picked)
    rows = [3, 50, 700, 9, 11]
    assert matrix.index.get_level_values("symbol").tolist() == genes["symbol"][rows].to_list()
    np.testing.assert_array_equal(matrix.to_numpy(), counts[rows])


def test_expression_paths_agree_with_the_view(wh, source, monkeypatch):
    _, _, gsms = source
    chosen = some_gsms(gsms, n=5, seed=1)
    from_counts = []
    original = wh._expression_from_counts
    monkeypatch.setattr(
        wh, "_expression_from_counts", lambda *args: from_counts.append(1) or original(*args)
    )
    few = wh.expression(chosen)  # every gene of a few samples: their counts row groups
    assert from_counts == [1]
    many = list(dict.fromkeys([*chosen, *some_gsms(gsms, n=300)]))
    by_blocks = wh.expression(many)  # every counts row group touched: the sample blocks
    ensembl_ids = few.index.get_level_values("ensembl_id")[:4].tolist()
    by_genes = wh.expression(genes=ensembl_ids)  # few genes x all samples: gene-clustered copy
    assert from_counts == [1]
    assert by_genes.shape == (4, len(gsms))
    assert by_blocks.index.equals(few.index)
    np.testing.assert_array_equal(by_blocks[chosen].to_numpy(), few.to_numpy())
    np.testing.assert_array_equal(by_genes[chosen].to_numpy(), few.to_numpy()[:4])
    view = wh.sql(
        "SELECT e.gene_idx, e.value FROM expression e JOIN samples s USING (sample_idx) "
        "WHERE s.gsm = $gsm ORDER BY e.gene_idx",
        gsm=chosen[0],
    )
    np.testing.assert_array_equal(few[chosen[0]].to_numpy(), view["value"].to_numpy())


def test_frozen_normalization_reproduces_expression_bit_for_bit(wh, source):
    _, _, gsms = source
    chosen = some_gsms(gsms, n=7, seed=2)
    frozen = wh.normalize(wh.counts(chosen), "frozen")
    # The stored values, through the view (wh.expression would compute these from counts too).
    stored = (
        wh.sql(
            "SELECT s.gsm, e.gene_idx, e.value FROM expression e JOIN samples s USING "
            "(sample_idx) WHERE s.gsm IN (SELECT unnest($gsms))",
            gsms=chosen,
        )
        .pivot(on="gsm", index="gene_idx", values="value")
        .sort("gene_idx")
    )
    assert frozen.index.equals(wh.expression(chosen).index)
    np.testing.assert_array_equal(frozen.to_numpy(), stored.select(chosen).to_numpy())
    with pytest.raises(ValueError, match="every gene"):
        wh.normalize(wh.counts(chosen, genes=[0, 1, 2]), "frozen")


@pytest.mark.parametrize("method", ["log_quantile", "quantile", "cpm"])
def test_subset_normalizations_equal_archs4py(wh, source, method):
    path, _, gsms = source
    chosen = some_gsms(gsms, n=30, seed=3)
    expected = archs4py.utils.normalize(archs4py_samples(path, chosen), method)
    ours = wh.normalize(wh.counts(chosen), method).droplevel("ensembl_id")[expected.columns]
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), rtol=1e-6, atol=1e-6)


def test_tmm_is_edger_tmm_and_archs4py_tmm_has_its_own_name(wh, source):
    path, _, gsms = source
    chosen = some_gsms(gsms, n=30, seed=4)
    counts = wh.counts(chosen)
    archs4py_tmm = archs4py.utils.normalize(archs4py_samples(path, chosen), "tmm")
    log_trimmed = wh.normalize(counts, "log_trimmed_mean").droplevel("ensembl_id")
    np.testing.assert_allclose(
        log_trimmed[archs4py_tmm.columns].to_numpy(), archs4py_tmm.to_numpy(), rtol=1e-6
    )
    tmm = wh.normalize(counts, "tmm")
    reference = TMM().fit_transform(counts.to_numpy(dtype=float).T).T
    np.testing.assert_allclose(tmm.to_numpy(), reference, rtol=1e-6)
    # Library sizes scaled by TMM factors: every sample sums to about a million, not 1.
    assert np.allclose(tmm.sum(axis=0) / 1e6, TMM().fit(counts.T).get_norm_factors(counts.T) ** -1)


def test_gene_utilities_equal_archs4py(wh, source):
    _, _, gsms = source
    counts = wh.counts(some_gsms(gsms, n=40, seed=5))
    by_symbol = counts.droplevel("ensembl_id")
    pd.testing.assert_frame_equal(
        archs4.aggregate_duplicate_genes(counts),
        archs4py.utils.aggregate_duplicate_genes(by_symbol),
        check_names=False,
    )
    pd.testing.assert_frame_equal(
        archs4.filter_genes(counts), archs4py.utils.filter_genes(by_symbol), check_names=False
    )


def test_series_and_sample_metadata(wh, source):
    path, _, gsms = source
    series = wh.sql("SELECT series_id FROM samples WHERE series_id LIKE '%,%' LIMIT 1")
    gse = series["series_id"][0].split(",")[1] if series.height else wh.samples(0)["series_id"][0]
    found = set(wh.series(gse)["gsm"])
    expected = set(archs4py.meta.series(path, gse, silent=True).index)
    assert expected <= found  # archs4py misses samples listed in several series
    chosen = some_gsms(gsms, n=6, seed=6)
    metadata = wh.samples(chosen)
    assert metadata["gsm"].to_list() == chosen
    reference = archs4py.meta.samples(path, chosen, silent=True)
    titles = dict(zip(reference["geo_accession"], reference["title"], strict=True))
    assert metadata["title"].to_list() == [titles[gsm] for gsm in chosen]


def test_matrices_come_long_or_as_anndata(wh, source):
    _, _, gsms = source
    chosen = some_gsms(gsms, n=3, seed=7)
    wide = wh.counts(chosen, genes=[0, 1])
    long = wh.counts(chosen, genes=[0, 1], wide=False)
    assert long.columns == ["gsm", "sample_idx", "gene_idx", "ensembl_id", "symbol", "value"]
    assert long.height == 6
    pivot = long.pivot(on="gsm", index="gene_idx", values="value").select(chosen)
    np.testing.assert_array_equal(pivot.to_numpy(), wide.to_numpy())
    adata = wh.expression(chosen, output="anndata")
    assert adata.shape == (3, int(wh.genes()["has_length"].sum()))
    assert adata.obs_names.tolist() == chosen
    assert "title" in adata.obs.columns and "symbol" in adata.var.columns


def test_bad_requests_are_refused_clearly(wh, source):
    _, _, gsms = source
    with pytest.raises(SampleLookupError, match="GSM0000000"):
        wh.counts(["GSM0000000", gsms[0]])
    with pytest.raises(GeneLookupError, match="NOT_A_GENE"):
        wh.counts(gsms[:2].tolist(), genes=["NOT_A_GENE"])
    with (
        archs4.open(wh._root, max_values=1000) as small,
        pytest.raises(MatrixTooLargeError, match="ARCHS4_API_MAX_VALUES"),
    ):
        small.counts(gsms[:10].tolist())


def test_sql_is_read_only_and_binds_parameters(wh, tmp_path):
    first = wh.sql("SELECT gsm FROM samples WHERE sample_idx = $i", i=0)
    assert first.height == 1 and isinstance(first, pl.DataFrame)
    assert isinstance(wh.sql("SELECT 1 AS x", output="pandas"), pd.DataFrame)
    with pytest.raises(ReadOnlyQueryError):
        wh.sql("CREATE TABLE t AS SELECT 1")
    with pytest.raises(duckdb.Error):
        wh.sql(f"SELECT * FROM read_csv('{tmp_path}/x.csv')")
