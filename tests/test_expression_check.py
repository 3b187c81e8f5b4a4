"""The blocking `expression` check fails on a wrong stored value: on any value of a sample whose
values it recomputes in SQL, and on a non-finite value of any sample, recomputed or not. Its
failure is recorded in the warehouse, so `make run` plans the block again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archs4.blocks import BlockPlan, registered_block
from archs4.datasets import EXPRESSION_DATASET, FAILED_CHECKS_DIR
from archs4.expression import recomputed_sample_idx
from archs4.warehouse import Warehouse
from dagster_project.definitions import assets_and_checks
from dagster_project.plan import Stage, pending_blocks
from dagster_project.resources import NormalizationResource
from tests.conftest import resources_for

pytestmark = pytest.mark.slow

BLOCK = "000001"


def plan(n_samples: int, start: int = 1000) -> BlockPlan:
    return BlockPlan(BLOCK, "f.h5", "v2.6", "sha", 0, n_samples, start)


def test_recomputed_samples_are_all_of_a_small_block_else_evenly_spaced():
    assert recomputed_sample_idx(plan(10), 10) == list(range(1000, 1010))
    chosen = recomputed_sample_idx(plan(2000), 100)
    assert len(chosen) == 100 and chosen == sorted(set(chosen))
    assert chosen[0] == 1000 and chosen[-1] == 2999  # the block's first and last sample
    assert max(np.diff(chosen)) - min(np.diff(chosen)) <= 1
    assert recomputed_sample_idx(plan(2000), 100) == chosen  # the same samples every run
    assert recomputed_sample_idx(plan(3), 2) == [1000, 1002]


def corrupt(root: Path, sample_position: int, value: float) -> int:
    """Replace one stored value of the block's `sample_position`-th sample, keeping the file's
    metadata (the target digest the check compares); returns that sample's sample_idx."""
    store = Warehouse.at(root)
    path = store.block_path(EXPRESSION_DATASET, BLOCK)
    table = pq.read_table(path)
    sample_idx = int(registered_block(store, BLOCK).sample_idx[sample_position])
    values = table.column("value").to_numpy(zero_copy_only=False).copy()
    row = int(np.flatnonzero(table.column("sample_idx").to_numpy() == sample_idx)[0])
    values[row] = value
    column = pa.array(values, type=table.schema.field("value").type)
    pq.write_table(table.set_column(table.schema.get_field_index("value"), "value", column), path)
    return sample_idx


def warehouse_copy(built, tmp_path: Path, position: int = 0, value: float | None = None) -> Path:
    """The session's warehouse copied, one value corrupted unless `value` is None."""
    copy = tmp_path / "warehouse"
    shutil.copytree(built[2], copy)
    if value is not None:
        corrupt(copy, position, value)
    return copy


def run_checks(built, root: Path, recomputed: int):
    """Run the block's `expression` checks alone on the warehouse at `root`: (passed,
    evaluation)."""
    tmp = built[0]
    resources = resources_for(tmp / "human_gene_v2.6.h5", tmp / "genes.gtf", root)
    resources["normalization"] = NormalizationResource(check_recomputed_samples=recomputed)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            assets_and_checks(),
            selection=dg.AssetSelection.checks_for_assets("expression"),
            # The partition as a tag: `partition_key` wants a selected asset.
            tags={"dagster/partition": BLOCK},
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
    (evaluation,) = [
        event.asset_check_evaluation_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    return evaluation.passed, evaluation


def check_outcome(built, tmp_path: Path, recomputed: int, position: int, value: float | None):
    return run_checks(built, warehouse_copy(built, tmp_path, position, value), recomputed)


def test_an_intact_block_passes_with_its_recomputed_samples_counted(built, tmp_path: Path):
    passed, evaluation = check_outcome(built, tmp_path, recomputed=3, position=0, value=None)
    assert passed, evaluation.description
    assert evaluation.metadata["samples_recomputed"].value == 3


def test_a_wrong_value_of_a_recomputed_sample_fails(built, tmp_path: Path):
    # 3 of the block's 10 samples are recomputed: positions 0, 4 (4.5 rounded to even) and 9.
    passed, evaluation = check_outcome(built, tmp_path, recomputed=3, position=9, value=123.0)
    assert not passed
    assert "max_relative_error" in (evaluation.description or "")


def test_a_wrong_value_fails_when_every_sample_is_recomputed(built, tmp_path: Path):
    passed, evaluation = check_outcome(built, tmp_path, recomputed=100, position=1, value=123.0)
    assert not passed
    assert "max_relative_error" in (evaluation.description or "")


def test_a_non_finite_value_fails_in_a_sample_not_recomputed(built, tmp_path: Path):
    passed, evaluation = check_outcome(built, tmp_path, recomputed=3, position=1, value=np.nan)
    assert not passed
    assert "n_not_finite" in (evaluation.description or "")


def test_a_failed_check_is_recorded_so_make_run_plans_the_block_again(built, tmp_path: Path):
    copy = warehouse_copy(built, tmp_path, position=1, value=np.nan)
    store, stage = Warehouse.at(copy), Stage(("expression",), per_block=True)
    assert pending_blocks(stage, store) == []  # the file alone looks committed
    passed, _ = run_checks(built, copy, recomputed=3)
    assert not passed
    assert pending_blocks(stage, store) == [BLOCK]
    (record,) = (copy / FAILED_CHECKS_DIR / "expression" / BLOCK).glob("*.json")
    assert json.loads(record.read_text())["check"] == "expression_block_is_valid"
    intact = built[2] / EXPRESSION_DATASET / f"block={BLOCK}" / "part.parquet"
    shutil.copy(intact, store.block_path(EXPRESSION_DATASET, BLOCK).path)  # block redone
    passed, evaluation = run_checks(built, copy, recomputed=3)
    assert passed, evaluation.description
    assert pending_blocks(stage, store) == [] and not record.exists()
