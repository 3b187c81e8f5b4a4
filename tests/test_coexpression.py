"""Gene co-expression (archs4.coexpression, `archs4 coexpressed`): the stored top-k and the exact
SQL path against numpy's `corrcoef` on the demo warehouse, and the row-block computation against
itself at every block size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from archs4.catalog import connect_read_only
from archs4.cli import main
from archs4.coexpression import (
    DEFAULT_TOP_K,
    UndefinedCorrelationError,
    coexpressed,
    compute_gene_coexpression,
    peak_bytes,
    recomputation_mismatches,
    sample_positions,
    samples_within_budget,
    spot_correlations,
    standardize,
    top_correlations,
)
from archs4.datasets import COEXPRESSION_TABLE
from archs4.warehouse import Warehouse
from dagster_project.defs.metrics import gene_coexpression_is_valid
from dagster_project.resources import (
    CheckQueryResource,
    CoexpressionResource,
    WarehouseResource,
)

ATOL = 1e-6


def assert_same_ranking(partners: np.ndarray, values: np.ndarray, exact: np.ndarray) -> None:
    """`partners` and their `values`, best first, are the top of the reference correlations
    `exact` (one row, the gene itself NaN): each value is its partner's, and each partner's is
    the rank's (so partners of equal correlation may come in either order)."""
    expected = np.sort(exact[~np.isnan(exact)])[::-1][: len(partners)]
    np.testing.assert_allclose(values, exact[partners], atol=ATOL)
    np.testing.assert_allclose(exact[partners], expected, atol=ATOL)


# -- the kernels, on small arrays ---------------------------------------------------------------


def random_rows(n_genes: int = 60, n_samples: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((4, n_samples))  # shared factors: strong correlations exist
    mix = rng.standard_normal((n_genes, 4))
    return (mix @ factors + rng.standard_normal((n_genes, n_samples))).astype(np.float32)


def test_row_blocks_give_the_same_top_k_whatever_the_block_size() -> None:
    values = random_rows()
    z, has_variance = standardize(values)
    assert has_variance.all()
    reference = np.corrcoef(values.astype(np.float64))
    np.fill_diagonal(reference, np.nan)
    results = [top_correlations(z, 10, block_genes=block) for block in (1, 7, 59, 60, 1000)]
    for partners, correlations in results:
        np.testing.assert_array_equal(partners, results[0][0])  # no near-ties in this data
        np.testing.assert_allclose(correlations, results[0][1], atol=ATOL)
        for gene in range(values.shape[0]):
            assert_same_ranking(partners[gene], correlations[gene], reference[gene])


class _UnevenProducts(np.ndarray):
    """An array whose products are not symmetric, as a BLAS that sums (i, j) and (j, i) in
    different orders gives: whether this machine's BLAS does depends on its build and its
    thread count (CI's did not), so the test makes it so."""

    def __matmul__(self, other: np.ndarray) -> np.ndarray:
        products = np.asarray(self) @ np.asarray(other)
        return (
            products
            + np.float32(1e-6)
            * np.arange(products.size, dtype=np.float32).reshape(products.shape)
            / products.size
        )


@pytest.mark.parametrize("uneven", [False, True], ids=["this_blas", "asymmetric_blas"])
def test_a_pair_stored_both_ways_has_one_value_whatever_the_block_size(uneven: bool) -> None:
    z, _ = standardize(random_rows(n_genes=300, n_samples=2000))
    if uneven:
        z = z.view(_UnevenProducts)
        square = z[:100] @ z[: 100 + 200].T
        assert (square[:, :100] != square[:, :100].T).any()
    partners, correlations = top_correlations(z, 100, block_genes=100)
    stored = {
        (gene, int(partner)): value
        for gene, (row, values) in enumerate(zip(partners, correlations, strict=True))
        for partner, value in zip(row, values, strict=True)
    }
    both_ways = [(pair, value) for pair, value in stored.items() if pair[::-1] in stored]
    assert both_ways
    assert all(stored[pair[::-1]] == value for pair, value in both_ways)


def test_k_is_bounded_by_the_other_genes() -> None:
    z, _ = standardize(random_rows(n_genes=5))
    partners, correlations = top_correlations(z, 100, block_genes=2)
    assert partners.shape == correlations.shape == (5, 4)
    assert all(sorted(row) == sorted(set(range(5)) - {gene}) for gene, row in enumerate(partners))
    assert top_correlations(z[:1], 100)[0].shape == (1, 0)


def test_constant_genes_are_left_out() -> None:
    values = random_rows(n_genes=4)
    values[1] = 2.5
    z, has_variance = standardize(values)
    assert has_variance.tolist() == [True, False, True, True]
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-7)


def test_sample_set_is_all_samples_up_to_the_cap_then_a_seeded_nested_subset() -> None:
    np.testing.assert_array_equal(sample_positions(50, 50), np.arange(50))
    np.testing.assert_array_equal(sample_positions(50, 80), np.arange(50))
    small, large = sample_positions(1000, 100), sample_positions(1000, 300)
    assert small.size == 100 and np.all(np.diff(small) > 0)
    assert set(small) <= set(large)
    np.testing.assert_array_equal(small, sample_positions(1000, 100))


def test_samples_are_reduced_to_fit_the_memory_budget() -> None:
    assert samples_within_budget(1000, 5000, 5000, 100 << 30) == 5000
    reduced = samples_within_budget(67_000, 20_000, 900_000, 4 << 30)
    assert 2 <= reduced < 20_000
    assert (
        peak_bytes(67_000, reduced, 900_000) <= 4 << 30 < peak_bytes(67_000, reduced + 1, 900_000)
    )
    assert samples_within_budget(67_000, 20_000, 900_000, 1) == 2


# -- the demo warehouse -------------------------------------------------------------------------


def correlation_matrix(matrix: np.ndarray) -> np.ndarray:
    """numpy's correlations of the rows of `matrix`, NaN on the diagonal and for constant rows."""
    with np.errstate(invalid="ignore", divide="ignore"):
        correlations = np.corrcoef(matrix)
    np.fill_diagonal(correlations, np.nan)
    return correlations


@pytest.fixture(scope="module")
def reference(demo):
    """(root, gene_idx of `expression`, its genes x samples values, numpy's correlations)."""
    _, root, _, _ = demo
    with connect_read_only(Warehouse.at(root)) as connection:
        frame = connection.sql("SELECT gene_idx, sample_idx, value FROM expression").df()
    genes = np.sort(frame["gene_idx"].unique())
    matrix = np.zeros((genes.size, frame["sample_idx"].max() + 1))
    matrix[np.searchsorted(genes, frame["gene_idx"]), frame["sample_idx"]] = frame["value"]
    return root, genes, matrix, correlation_matrix(matrix)


def chosen_genes(genes: np.ndarray, correlations: np.ndarray, n: int = 4) -> list[int]:
    """`n` genes that vary, seeded, spread over the gene order."""
    varying = genes[~np.isnan(correlations).all(axis=1)]
    return sorted(np.random.default_rng(5).choice(varying, n, replace=False).tolist())


@pytest.mark.parametrize("exact", [False, True], ids=["stored", "exact"])
def test_both_paths_equal_numpy_corrcoef(reference, exact: bool) -> None:
    root, genes, _, correlations = reference
    with connect_read_only(Warehouse.at(root)) as connection:
        rows = connection.sql("SELECT gene_idx, ensembl_id, symbol FROM genes").fetchall()
        names = {gene_idx: (ensembl_id, symbol) for gene_idx, ensembl_id, symbol in rows}
        for gene in chosen_genes(genes, correlations):
            table = coexpressed(connection, gene, k=20, exact=exact)
            assert table.schema.metadata == {b"source": b"exact" if exact else b"gene_coexpression"}
            assert table.column_names == ["rank", "gene_idx", "ensembl_id", "symbol", "correlation"]
            assert table["rank"].to_pylist() == list(range(1, 21))
            partners = np.searchsorted(genes, table["gene_idx"].to_numpy())
            row = correlations[np.searchsorted(genes, gene)]
            assert_same_ranking(partners, table["correlation"].to_numpy(), row)
            named = zip(table["ensembl_id"].to_pylist(), table["symbol"].to_pylist(), strict=True)
            assert list(named) == [names[g] for g in table["gene_idx"].to_pylist()]


def test_the_stored_table_is_bounded_by_k_rows_per_gene(reference) -> None:
    root, genes, matrix, correlations = reference
    stored = pq.read_table(root / f"{COEXPRESSION_TABLE}.parquet").to_pandas()
    varying = genes[~np.isnan(correlations).all(axis=1)]
    assert len(stored) == DEFAULT_TOP_K * varying.size
    per_gene = stored.groupby("gene_idx")["rank"].agg(["count", "min", "max"])
    np.testing.assert_array_equal(per_gene.index, varying)
    assert (per_gene["count"] == DEFAULT_TOP_K).all() and (per_gene["max"] == DEFAULT_TOP_K).all()
    assert (stored["n_samples"] == matrix.shape[1]).all()  # every sample: N is under the cap


def test_beyond_the_stored_k_and_without_a_correlation(reference) -> None:
    root, genes, _, correlations = reference
    gene = chosen_genes(genes, correlations, n=1)[0]
    with connect_read_only(Warehouse.at(root)) as connection:
        table = coexpressed(connection, gene, k=DEFAULT_TOP_K + 5)
        assert table.schema.metadata == {b"source": b"exact"} and table.num_rows == 105
        without_length = connection.sql(
            "SELECT min(gene_idx) FROM genes WHERE NOT has_length"
        ).fetchall()[0][0]
        with pytest.raises(UndefinedCorrelationError, match="not in expression"):
            coexpressed(connection, without_length)
        with pytest.raises(ValueError, match="k must be at least 1"):
            coexpressed(connection, gene, k=0)


def test_a_sample_subset_equals_numpy_on_the_same_samples(reference) -> None:
    root, genes, matrix, _ = reference
    correlations = correlation_matrix(matrix[:, sample_positions(matrix.shape[1], 500)])
    result = compute_gene_coexpression(
        Warehouse.at(root), max_samples=500, top_k=10, budget_bytes=8 << 30
    )
    assert result.n_samples == 500 and result.n_total_samples == matrix.shape[1]
    table = result.table.to_pandas()
    for gene in chosen_genes(genes, correlations):
        rows = table[table["gene_idx"] == gene].sort_values("rank")
        partners = np.searchsorted(genes, rows["partner_gene_idx"].to_numpy())
        row = correlations[np.searchsorted(genes, gene)]
        assert_same_ranking(partners, rows["correlation"].to_numpy(), row)


def test_the_recomputation_check_finds_a_wrong_partner(reference) -> None:
    root, genes, _, correlations = reference
    store = Warehouse.at(root)
    stored = pq.read_table(root / f"{COEXPRESSION_TABLE}.parquet")
    spots = np.array(chosen_genes(genes, correlations, n=2))
    gene_idx, recomputed = spot_correlations(store, spots, 4000)
    assert recomputation_mismatches(stored, spots, gene_idx, recomputed) == []
    frame = stored.to_pandas()
    first = frame.index[(frame["gene_idx"] == spots[0]) & (frame["rank"] == 1)][0]
    last = frame.index[(frame["gene_idx"] == spots[0]) & (frame["rank"] == DEFAULT_TOP_K)][0]
    frame.loc[first, "partner_gene_idx"] = frame.loc[last, "partner_gene_idx"]  # a weaker one
    tampered = type(stored).from_pandas(frame, preserve_index=False)
    problems = recomputation_mismatches(tampered, spots, gene_idx, recomputed)
    assert len(problems) == 1 and problems[0].startswith(f"gene_idx {spots[0]}: stored values")


def test_the_profile_check_passes_the_stored_table_and_fails_a_broken_one(
    reference, tmp_path: Path
) -> None:
    root = reference[0]
    stored = pq.read_table(root / f"{COEXPRESSION_TABLE}.parquet")
    coexpression, queries = CoexpressionResource(), CheckQueryResource()
    assert gene_coexpression_is_valid(
        warehouse=WarehouseResource(root=str(root)),
        coexpression=coexpression,
        check_queries=queries,
    ).passed
    frame = stored.to_pandas()
    frame.loc[0, "partner_gene_idx"] = frame.loc[0, "gene_idx"]  # its own partner
    frame.loc[1, "correlation"] = 1.5  # out of range, and above rank 1
    pairs = frame.reset_index().merge(
        frame, left_on=["gene_idx", "partner_gene_idx"], right_on=["partner_gene_idx", "gene_idx"]
    )
    frame.loc[pairs["index"].iloc[-1], "correlation"] -= 1e-3  # its reverse pair keeps the value
    broken = tmp_path / f"{COEXPRESSION_TABLE}.parquet"
    broken.parent.mkdir(parents=True)
    pq.write_table(type(stored).from_pandas(frame, preserve_index=False), broken)
    result = gene_coexpression_is_valid(
        warehouse=WarehouseResource(root=str(tmp_path)),
        coexpression=coexpression,
        check_queries=queries,
    )
    assert not result.passed
    failed = result.description or ""
    for column in ("self_partners", "max_correlation", "misordered", "asymmetric"):
        assert f"on `{column}`" in failed, column


# -- the command line ---------------------------------------------------------------------------


def test_cli_prints_the_top_genes_and_refuses_an_unknown_gene(
    reference, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, genes, _, correlations = reference
    monkeypatch.setenv("ARCHS4_WAREHOUSE", str(Path(root)))
    gene = chosen_genes(genes, correlations, n=1)[0]
    with connect_read_only(Warehouse.at(root)) as connection:
        symbol, ensembl_id = connection.execute(
            "SELECT symbol, ensembl_id FROM genes WHERE gene_idx = $g", {"g": gene}
        ).fetchall()[0]
        unique = connection.execute(
            "SELECT count(*) = 1 FROM genes WHERE symbol = $s", {"s": symbol}
        ).fetchall()[0][0]
    name = symbol if unique else ensembl_id
    row = correlations[np.searchsorted(genes, gene)]
    for extra in ([], ["--exact"]):
        assert main(["coexpressed", name, "-k", "5", "--format", "json", *extra]) == 0
        rows = json.loads(capsys.readouterr().out)
        partners = np.searchsorted(genes, [r["gene_idx"] for r in rows])
        assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
        assert_same_ranking(partners, np.array([r["correlation"] for r in rows]), row)
    assert main(["coexpressed", name, "-k", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split("|")[1].strip() == "rank" and table[-1] == "(3 rows)"
    assert main(["coexpressed", "NOT_A_GENE"]) == 2
    error = capsys.readouterr().err
    assert error == "archs4 coexpressed: unknown gene(s): NOT_A_GENE\n"
    assert main(["coexpressed", name, "-k", "0"]) == 2
    assert capsys.readouterr().err == "archs4 coexpressed: -k must be at least 1\n"
