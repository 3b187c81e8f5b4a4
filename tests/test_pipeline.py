"""The Dagster graph end to end on small ARCHS4 files: raw layer, normalization, catalog,
against independent references (the source matrix, numpy, the qnorm package)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
import qnorm

import dagster_project.defs.raw
from archs4.datasets import EXPRESSION_DATASET, SAMPLES_DATASET
from archs4.expression import accumulate_target, read_target, write_target
from archs4.quantile_norm import normalize_block
from archs4.warehouse import Warehouse
from dagster_project.definitions import assets_and_checks, build_definitions
from dagster_project.headless import PipelineError, materialize_everything
from tests.archs4_files import example_counts, write_archs4_file, write_gtf
from tests.conftest import (
    N_GENES,
    N_SAMPLES,
    SOURCE_COLUMNS_DIFFERING_BY_FILE,
    build,
    resources_for,
)

pytestmark = pytest.mark.slow


def query(root: Path, sql: str, **params):
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as connection:
        return connection.execute(sql, params or None).fetchall()


def test_definitions_load():
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"samples", "genes", "counts", "qn_target", "expression", "warehouse_catalog"} <= keys


def test_counts_equal_the_source_matrix(built):
    _, counts, root, _ = built
    ((n_rows, total),) = query(root, "SELECT count(*), sum(count) FROM counts")
    assert n_rows == counts.size
    assert total == counts.sum()
    rows = query(root, "SELECT gene_idx, sample_idx, count FROM counts")
    rebuilt = np.zeros_like(counts)
    genes, samples, values = map(np.array, zip(*rows, strict=True))
    rebuilt[genes, samples] = values
    assert np.array_equal(rebuilt, counts)
    assert query(root, "SELECT count(*) FROM counts WHERE count = 0")[0][0] == (counts == 0).sum()


def test_samples_and_blocks(built):
    _, counts, root, _ = built
    rows = query(root, "SELECT sample_idx, gsm, total_count, block FROM samples ORDER BY 1")
    assert [r[0] for r in rows] == list(range(N_SAMPLES))
    assert rows[0][1] == "GSM2000000"
    assert [r[2] for r in rows] == counts.sum(axis=0).tolist()
    blocks = query(root, "SELECT block, column_start, column_stop FROM blocks ORDER BY block")
    assert blocks == [
        ("000000", 0, 10),
        ("000001", 10, 20),
        ("000002", 20, 30),
        ("000003", 30, 40),
        ("000004", 40, 47),
    ]
    assert query(root, "SELECT count(*) FROM samples WHERE series_id LIKE '%,%'")[0][0] > 0


def test_gene_lengths_match_the_gtf(built):
    _, _, root, expected = built
    rows = query(root, "SELECT ensembl_id, length_bp, has_length FROM genes ORDER BY gene_idx")
    assert len(rows) == N_GENES
    for ensembl_id, length, has_length in rows:
        assert has_length == (ensembl_id in expected)
        assert length == expected.get(ensembl_id)


def test_expression_equals_qnorm_divided_by_length(built):
    _, counts, root, expected = built
    reference = qnorm.quantile_normalize(np.log2(counts + 1.0), axis=1)
    rows = query(
        root,
        "SELECT e.gene_idx, e.sample_idx, e.value, g.ensembl_id FROM expression e "
        "JOIN genes g USING (gene_idx)",
    )
    genes, samples, values, ids = zip(*rows, strict=True)
    lengths_kb = np.array([expected[i] for i in ids]) / 1000
    wanted = reference[list(genes), list(samples)] / lengths_kb
    np.testing.assert_allclose(np.array(values), wanted, rtol=1e-5, atol=0)
    assert len(rows) == len(expected) * N_SAMPLES  # every gene with a length, no other


def test_target_is_the_mean_of_sorted_logs(built):
    _, counts, root, _ = built
    target = np.array([v for (v,) in query(root, "SELECT value FROM qn_target ORDER BY rank")])
    np.testing.assert_allclose(target, np.sort(np.log2(counts + 1.0), axis=0).mean(axis=1), 1e-12)


def test_one_block_alone_is_bit_identical(built):
    _, counts, root, expected = built
    store = Warehouse.at(root)
    target = read_target(store)
    assert target is not None
    stored = pq.read_table(str(store.block_path(EXPRESSION_DATASET, "000002"))).to_pandas()
    genes = query(root, "SELECT gene_idx, ensembl_id FROM genes WHERE has_length ORDER BY 1")
    lengths = np.full(N_GENES, 1000.0)
    for gene, ensembl_id in genes:
        lengths[gene] = expected[ensembl_id]
    alone = normalize_block(counts[:, 20:30], target.values, lengths).astype(np.float32)
    kept = [g for g, _ in genes]
    assert np.array_equal(stored["value"].to_numpy().reshape(len(kept), 10), alone[kept])


@pytest.mark.parametrize(
    "layout",
    [
        {"layout": "v2.2", "fixed_length_strings": True, "chunks": (45, 7), "compression": None},
        {"layout": "v2.1.2", "chunks": None},
    ],
)
def test_other_release_layouts_ingest_identically(built, tmp_path: Path, layout: dict):
    _, counts, root, _ = built
    other, _ = build(tmp_path, f"human_gene_{layout['layout']}", counts, **layout)
    for dataset in ("raw/samples", "raw/counts", "normalized/expression"):
        mine = pq.read_table(str(root / dataset), partitioning=None).to_pandas()
        theirs = pq.read_table(str(other / dataset), partitioning=None).to_pandas()
        keep = [c for c in mine.columns if c not in SOURCE_COLUMNS_DIFFERING_BY_FILE]
        sort = ["sample_idx"] + (["gene_idx"] if "gene_idx" in keep else [])
        mine = mine[keep].sort_values(sort, ignore_index=True)
        theirs = theirs[keep].sort_values(sort, ignore_index=True)
        assert mine.equals(theirs), dataset
    genes_mine = pq.read_table(str(root / "raw/genes.parquet")).to_pandas()
    genes_theirs = pq.read_table(str(other / "raw/genes.parquet")).to_pandas()
    assert genes_mine.equals(genes_theirs)


def test_bad_source_leaves_no_output(tmp_path: Path):
    gsms = [f"GSM{i}" for i in range(20)]
    gsms[9] = "GSM3"
    source = write_archs4_file(tmp_path / "dup.h5", example_counts(12, 20), gsms=gsms)
    write_gtf(tmp_path / "g.gtf", 12)
    root = tmp_path / "warehouse"
    with (
        dg.DagsterInstance.ephemeral() as instance,
        pytest.raises(PipelineError, match=r"dup\.h5 \[meta/samples/geo_accession\]: 1 dup"),
    ):
        materialize_everything(instance, resources_for(source, tmp_path / "g.gtf", root))
    written = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    assert [p for p in written if "raw" in p.parts or p.suffix == ".duckdb"] == []


def test_failed_counts_check_blocks_normalization(built, tmp_path: Path, monkeypatch):
    tmp, counts, _, _ = built
    source = write_archs4_file(tmp_path / "human_gene_v2.6.h5", counts)
    root = tmp_path / "warehouse"
    resources = resources_for(source, tmp / "genes.gtf", root)
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_everything(instance, resources)
        real_ingest = dagster_project.defs.raw.ingest_block

        def ingest_then_corrupt(store: Warehouse, block: str):
            ingested = real_ingest(store, block)
            # The source column sums no longer match what was written to counts.
            table = ingested.samples
            broken = table.set_column(
                table.schema.get_field_index("total_count"),
                "total_count",
                [[t + 1 for t in table.column("total_count").to_pylist()]],
            )
            store.write_table(broken, store.block_path(SAMPLES_DATASET, block))
            return ingested

        monkeypatch.setattr(dagster_project.defs.raw, "ingest_block", ingest_then_corrupt)
        before = (root / EXPRESSION_DATASET / "block=000001" / "part.parquet").stat().st_mtime_ns
        result = dg.materialize(
            assets_and_checks(),
            selection=dg.AssetSelection.assets("samples", "counts", "expression"),
            partition_key="000001",
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
    evaluations = {
        event.asset_check_evaluation_data.check_name: event.asset_check_evaluation_data.passed
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert evaluations["counts_block_is_valid"] is False
    assert "expression_block_is_valid" not in evaluations
    materialized = {
        event.asset_key.to_user_string()
        for event in result.all_events
        if event.event_type_value == "ASSET_MATERIALIZATION"
    }
    assert "expression" not in materialized
    after = (root / EXPRESSION_DATASET / "block=000001" / "part.parquet").stat().st_mtime_ns
    assert after == before


def test_source_file_unchanged_by_the_run(built):
    tmp, counts, _, _ = built
    with h5py.File(tmp / "human_gene_v2.6.h5", "r") as handle:
        assert np.array_equal(handle["data/expression"][:], counts)


def test_recomputed_target_flags_blocks_normalized_against_the_old_one(built, tmp_path: Path):
    tmp, counts, _, _ = built
    source = write_archs4_file(tmp_path / "human_gene_v2.6.h5", counts)
    root = tmp_path / "warehouse"
    resources = resources_for(source, tmp / "genes.gtf", root)
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_everything(instance, resources)
        store = Warehouse.at(root)
        old = read_target(store)
        # Recompute explicitly from the first block only: a different target.
        write_target(store, accumulate_target(store, ["000000"]))
        result = dg.materialize(
            assets_and_checks(),
            # Re-ingesting the block leaves its counts as they were; only the check matters here.
            selection=dg.AssetSelection.assets("samples", "counts")
            | dg.AssetSelection.checks_for_assets("expression"),
            partition_key="000003",
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
    (evaluation,) = [
        event.asset_check_evaluation_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
        and event.asset_check_evaluation_data.check_name == "expression_block_is_valid"
    ]
    assert old is not None
    assert not evaluation.passed
    assert f"against target {old.digest[:12]}" in (evaluation.description or "")
