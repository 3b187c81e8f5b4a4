"""The block layers on a local Dask cluster of two worker processes: every step of the demo's
block runs executes on the cluster, and writes byte for byte what the multiprocess executor
writes."""

import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from dask.distributed import LocalCluster

from archs4.demo_data import write_demo_dataset
from archs4.paths import PROJECT_ROOT
from archs4.settings import Settings
from dagster_project.automation import BLOCK_DATASETS, BLOCK_JOB
from dagster_project.cluster import SCHEDULER_ENV, default_executor
from dagster_project.definitions import build_definitions
from dagster_project.headless import graph_stages, materialize_stages
from dagster_project.partitions import SAMPLE_BLOCKS
from dagster_project.resources import resources_from_env
from tests.cluster_jobs import blocked_job

pytestmark = pytest.mark.slow

BLOCK_SIZE = 40


def block_job() -> dg.JobDefinition:
    """The block job as the code location defines it from the environment (workers rebuild it)."""
    return build_definitions().resolve_job_def(BLOCK_JOB)


def block_job_on_the_cluster() -> dg.JobDefinition:
    """The same, built anew once `ARCHS4_DASK_SCHEDULER` is set: Dagster caches one definition
    per reconstructable function."""
    return block_job()


def block_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for dataset in BLOCK_DATASETS
        for p in sorted((root / dataset).rglob("*.parquet"))
    }


def blocked_job_on_the_cluster() -> dg.JobDefinition:
    return blocked_job()


def run_blocks(
    job: Callable[[], dg.JobDefinition], instance: dg.DagsterInstance, root: Path
) -> tuple[dict[str, bytes], list[str], int]:
    """Delete the block layers and rerun every block: the files, the steps' Dask workers (if
    any) and the number of steps that succeeded."""
    for dataset in BLOCK_DATASETS:
        if (root / dataset).exists():  # expression is not written before the first run
            shutil.rmtree(root / dataset)
    workers: list[str] = []
    steps = 0
    for block in sorted(instance.get_dynamic_partitions(SAMPLE_BLOCKS)):
        result = dg.execute_job(
            dg.reconstructable(job), instance, tags={"dagster/partition": block}
        )
        assert result.success, block
        checks = result.get_asset_check_evaluations()
        assert checks and all(check.passed for check in checks), block
        steps += sum(event.is_step_success for event in result.all_events)
        workers += [
            str(event.event_specific_data.metadata["dask_worker"].value)
            for event in result.all_events
            if event.is_engine_event and "dask_worker" in event.event_specific_data.metadata
        ]
    return block_files(root), workers, steps


def test_block_layers_on_a_dask_cluster_match_multiprocess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    demo = write_demo_dataset(tmp_path / "demo", n_samples=150, n_genes=300, block_size=BLOCK_SIZE)
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    root = tmp_path / "warehouse"
    # Set before the cluster starts: its workers rebuild the code location from the environment.
    for name, value in {
        "DAGSTER_HOME": str(home),
        "ARCHS4_SOURCE": str(demo.h5),
        "ARCHS4_GTF": str(demo.gtf),
        "ARCHS4_WAREHOUSE": str(root),
        "ARCHS4_LABELS": "",
        "ARCHS4_BLOCK_SIZE": str(BLOCK_SIZE),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)

    with dg.DagsterInstance.get() as instance:
        # Registration, raw blocks and the frozen target, which the block job reads.
        blocks = materialize_stages(instance, resources_from_env(), graph_stages()[:3])
        assert len(blocks) >= 2  # blocks of 40 samples rounded up to the file's HDF5 chunks

        multiprocess, no_workers, steps = run_blocks(block_job, instance, root)
        assert no_workers == []
        assert len(multiprocess) == len(BLOCK_DATASETS) * len(blocks)

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
            cluster_workers = set(cluster.scheduler_info["workers"])
            assert len(cluster_workers) == 2
            monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
            on_dask, workers, steps_on_dask = run_blocks(block_job_on_the_cluster, instance, root)

    # Every step (3 assets and their checks, per block) ran on one of the cluster's workers.
    assert steps_on_dask == steps >= 3 * len(blocks)
    assert len(workers) == steps_on_dask and set(workers) <= cluster_workers
    assert on_dask == multiprocess


def step_statuses(result: dg.JobExecutionResult) -> dict[str, str]:
    """The last status event of every step."""
    return {
        event.step_key: event.event_type_value
        for event in result.all_events
        if event.step_key and event.event_type_value in STEP_STATUSES
    }


STEP_STATUSES = {"STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"}


def test_a_failed_blocking_check_stops_downstream_steps_on_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    statuses = {}
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        multiprocess = dg.execute_job(dg.reconstructable(blocked_job), instance)
        statuses["multiprocess"] = step_statuses(multiprocess)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
            monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
            on_dask = dg.execute_job(dg.reconstructable(blocked_job_on_the_cluster), instance)
        statuses["dask"] = step_statuses(on_dask)
        assert not multiprocess.success and not on_dask.success
        assert instance.get_latest_materialization_event(dg.AssetKey("downstream_asset")) is None
    assert statuses["dask"] == statuses["multiprocess"]
    assert statuses["dask"] == {
        "checked_asset": "STEP_SUCCESS",
        "checked_asset_failing_blocking_check": "STEP_FAILURE",
    }
    assert any(e.is_engine_event and "Dask worker" in e.message for e in on_dask.all_events)


def test_a_scheduler_address_makes_the_dask_executor_the_default():
    assert default_executor(None) is dg.multiprocess_executor
    executor = default_executor(
        Settings.from_env({SCHEDULER_ENV: "tcp://10.0.0.5:8786"}).dask_scheduler
    )
    assert executor.name == "dask_cluster"
    resolved = executor.config_schema.resolve_config({})
    assert resolved.value == {
        "config": {"scheduler_address": "tcp://10.0.0.5:8786", "n_workers": 2}
    }
