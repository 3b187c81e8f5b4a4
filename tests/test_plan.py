"""The plan of `make run`: every asset of the graph in dependency order, and what is pending
judged from the warehouse's files (missing, stale, frozen, uncommitted blocks)."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pyarrow as pa
import pytest

from archs4.blocks import REGISTRY_SCHEMA
from archs4.check_failures import record_check_outcome
from archs4.datasets import SAMPLES_DATASET
from archs4.sample_fields import SAMPLES_SCHEMA
from archs4.warehouse import Warehouse
from dagster_project.automation import refresh_job
from dagster_project.headless import _asset_graph, graph_stages
from dagster_project.outputs import ASSET_OUTPUTS, refreshed_assets
from dagster_project.plan import Stage, WarehouseState, asset_is_pending, pending_blocks


def test_every_asset_is_planned_once_after_its_parents() -> None:
    graph = _asset_graph()
    names = {key.to_user_string() for key in graph.get_all_asset_keys()}
    stages = graph_stages()
    planned = [name for stage in stages for name in stage.assets]
    assert sorted(planned) == sorted(names)  # an asset added to the graph is planned
    position = {name: i for i, stage in enumerate(stages) for name in stage.assets}
    order = {name: n for n, name in enumerate(planned)}
    for key in graph.get_all_asset_keys():
        name = key.to_user_string()
        for parent in graph.get(key).parent_keys:
            assert position[parent.to_user_string()] <= position[name]
            assert order[parent.to_user_string()] < order[name]
    partitioned = {
        key.to_user_string(): graph.get(key).is_partitioned for key in graph.get_all_asset_keys()
    }
    for stage in stages:
        assert {partitioned[name] for name in stage.assets} == {stage.per_block}


def test_every_asset_says_what_it_writes() -> None:
    names = {key.to_user_string() for key in _asset_graph().get_all_asset_keys()}
    assert set(ASSET_OUTPUTS) == names
    for name in names:
        outputs = ASSET_OUTPUTS[name]
        assert outputs.files or outputs.block_datasets, name


def test_update_refreshes_exactly_the_unfitted_cross_sample_assets() -> None:
    selected = refresh_job.selection.resolve(_asset_graph())
    assert {key.to_user_string() for key in selected} == set(refreshed_assets())


def _touch(root: Path, relative: str, mtime: float) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))


@pytest.fixture
def state(tmp_path: Path) -> WarehouseState:
    gtf = tmp_path / "genes.gtf"
    gtf.write_text("x")
    os.utime(gtf, (100, 100))
    return WarehouseState(
        store=Warehouse.at(tmp_path / "wh"),
        release=tmp_path / "release.h5",
        inputs={"gtf": gtf, "labels": None, "source": None},
        parents={
            "gene_lengths": set(),
            "genes": {"gene_lengths"},
            "gene_metrics": {"expression_by_gene"},
            "qn_target": {"counts"},
        },
    )


def test_missing_stale_and_current(state: WarehouseState, tmp_path: Path) -> None:
    root = tmp_path / "wh"
    assert asset_is_pending("gene_lengths", state)  # missing
    _touch(root, "reference/gene_lengths.parquet", 50)
    assert asset_is_pending("gene_lengths", state)  # older than the GTF it reads
    _touch(root, "reference/gene_lengths.parquet", 200)
    assert not asset_is_pending("gene_lengths", state)
    _touch(root, "raw/genes.parquet", 150)
    assert asset_is_pending("genes", state)  # older than its upstream asset's file
    _touch(root, "raw/genes.parquet", 300)
    assert not asset_is_pending("genes", state)
    _touch(root, "normalized/expression_by_gene.json", 400)
    _touch(root, "metrics/gene_metrics.parquet", 500)
    assert asset_is_pending("gene_metrics", state)  # one of its two files is missing
    _touch(root, "metrics/gene_windows.parquet", 500)
    assert not asset_is_pending("gene_metrics", state)


def test_a_fitted_asset_is_pending_only_when_missing(state: WarehouseState, tmp_path: Path):
    root = tmp_path / "wh"
    assert asset_is_pending("qn_target", state)
    _touch(root, "reference/qn_target.parquet", 10)
    _touch(root, "raw/counts/block=000000/part.parquet", 1000)  # newer counts: kept frozen
    assert not asset_is_pending("qn_target", state)


def test_pending_blocks_are_registered_blocks_without_a_committed_file(tmp_path: Path):
    store = Warehouse.at(tmp_path / "wh")
    rows = [
        {"sample_idx": i, "gsm": f"GSM{i}", "block": f"00000{i // 2}", "source_path": "f.h5",
         "source_version": "2.6", "source_checksum": "c", "source_column": i}
        for i in range(6)
    ]  # fmt: skip
    store.write_table(pa.Table.from_pylist(rows, REGISTRY_SCHEMA), store.sample_registry_path)
    stage = Stage(("counts", "samples"), per_block=True)
    assert pending_blocks(stage, store) == ["000000", "000001", "000002"]
    _touch(tmp_path / "wh", "raw/counts/block=000001/part.parquet", 1)
    assert pending_blocks(stage, store) == ["000000", "000001", "000002"]  # samples missing
    samples = store.block_path(SAMPLES_DATASET, "000001")
    store.write_table(SAMPLES_SCHEMA.empty_table(), samples)
    _touch(tmp_path / "wh", "raw/counts/block=000002/.tmp-half.parquet", 1)  # not committed
    assert pending_blocks(stage, store) == ["000000", "000002"]
    # Samples an older version wrote, with fewer sample fields: the block is derived again.
    store.write_table(SAMPLES_SCHEMA.empty_table().drop_columns(["reads_total"]), samples)
    assert pending_blocks(stage, store) == ["000000", "000001", "000002"]
    assert pending_blocks(Stage(("counts",), per_block=True), store) == ["000000", "000002"]
    # A block whose file a blocking check rejected is pending for the stages of that asset.
    _touch(tmp_path / "wh", "raw/counts/block=000000/part.parquet", 1)
    record_check_outcome(store, "counts", "counts_block_is_valid", passed=False, partition="000000")
    assert pending_blocks(Stage(("counts",), per_block=True), store) == ["000000", "000002"]
    assert pending_blocks(Stage(("expression",), per_block=True), store) == [
        "000000", "000001", "000002"
    ]  # fmt: skip
    record_check_outcome(store, "counts", "counts_block_is_valid", passed=True, partition="000000")
    assert pending_blocks(Stage(("counts",), per_block=True), store) == ["000002"]


def test_an_asset_whose_check_failed_is_pending_until_the_check_passes(
    state: WarehouseState, tmp_path: Path
) -> None:
    _touch(tmp_path / "wh", "reference/gene_lengths.parquet", 200)
    assert not asset_is_pending("gene_lengths", state)
    record = partial(record_check_outcome, state.store, "gene_lengths", "gene_lengths_are_valid")
    record(passed=False, description="12 genes without a length")
    assert asset_is_pending("gene_lengths", state)  # the file is newer, but rejected
    record(passed=True)
    assert not asset_is_pending("gene_lengths", state)
