"""`reconcile()` and `release_sensor` on an ephemeral instance and a small release, in seconds:
a new warehouse asks for the release's registration; a registered one asks for every block and
registers the block partitions; a block being processed is not asked for twice; a warehouse
whose `make run` is busy with blocks is left alone; a run that keeps failing on the same inputs
is not asked for at every tick."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import dagster as dg
import pytest

from archs4.preflight import inputs_version
from archs4.settings import Settings
from dagster_project.automation import (
    BLOCK_JOB,
    INPUTS_TAG,
    NORMALIZE_BLOCKS_JOB,
    REGISTER_JOB,
    SENSOR_FAILED_RUNS_LIMIT,
    build_release_sensor,
    reconcile,
)
from dagster_project.definitions import assets_and_checks, build_definitions
from dagster_project.resources import resources_from_settings, run_inputs
from tests.archs4_files import example_counts, write_archs4_file, write_gtf

BLOCK_SIZE = 10
N_SAMPLES = 30


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    source = write_archs4_file(tmp_path / "human_gene_v2.6.h5", example_counts(20, N_SAMPLES))
    write_gtf(tmp_path / "genes.gtf", 20)
    return Settings(
        source=source,
        gtf=tmp_path / "genes.gtf",
        warehouse=tmp_path / "warehouse",
        log_dir=tmp_path / "logs",
        block_size=BLOCK_SIZE,
    )


def inputs_of(resources: dict):
    return run_inputs(
        resources["source"],
        resources["annotation"],
        resources["label_sources"],
        resources["warehouse"],
    )


def register(instance: dg.DagsterInstance, resources: dict) -> None:
    """What REGISTER_JOB runs: the release, its genes and their lengths."""
    dg.materialize(
        assets_and_checks(),
        selection=dg.AssetSelection.assets("source_release", "gene_lengths", "genes"),
        instance=instance,
        resources=resources,
    )


def start_run(instance: dg.DagsterInstance, job_name: str, block: str) -> None:
    """A run of `job_name` on `block` in progress (as the run queue or the sensor left it)."""
    instance.add_run(
        dg.DagsterRun(
            job_name=job_name,
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,
            tags={"dagster/partition": block},
        )
    )


def test_a_new_warehouse_asks_for_the_registration(settings: Settings):
    resources = resources_from_settings(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        requests, partitions = reconcile(instance, inputs_of(resources), log=lambda _: None)
    assert [request.job_name for request in requests] == [REGISTER_JOB]
    assert requests[0].tags["archs4/release"] == str(settings.source)
    assert partitions == []
    assert not settings.warehouse.exists()  # asking writes nothing


def test_a_registered_release_asks_for_every_block_once(settings: Settings):
    resources = resources_from_settings(settings)
    blocks = [f"{n:06d}" for n in range(N_SAMPLES // BLOCK_SIZE)]
    with dg.DagsterInstance.ephemeral() as instance:
        register(instance, resources)  # source_release adds the block partitions
        assert instance.get_dynamic_partitions("sample_blocks") == blocks
        requests, partitions = reconcile(instance, inputs_of(resources), log=lambda _: None)
        assert [(r.job_name, r.partition_key) for r in requests] == [(BLOCK_JOB, b) for b in blocks]
        assert partitions == []

        start_run(instance, BLOCK_JOB, blocks[1])
        requests, _ = reconcile(instance, inputs_of(resources), log=lambda _: None)
        assert [r.partition_key for r in requests] == [blocks[0], blocks[2]]

        start_run(instance, NORMALIZE_BLOCKS_JOB, blocks[0])  # a `make run` at work
        messages: list[str] = []
        assert reconcile(instance, inputs_of(resources), log=messages.append) == ([], [])
        assert messages == ["a `make run` is processing blocks: waiting for it"]


def test_the_sensor_registers_partitions_a_new_instance_lacks(settings: Settings):
    resources = resources_from_settings(settings)
    blocks = [f"{n:06d}" for n in range(N_SAMPLES // BLOCK_SIZE)]
    with dg.DagsterInstance.ephemeral() as instance:
        register(instance, resources)
    with dg.DagsterInstance.ephemeral() as fresh:  # the same warehouse, another instance
        result = build_release_sensor(settings)(
            dg.build_sensor_context(instance=fresh, resources=resources)
        )
    assert isinstance(result, dg.SensorResult)
    assert [(r.job_name, r.partition_key) for r in result.run_requests or []] == [
        (BLOCK_JOB, b) for b in blocks
    ]
    (added,) = result.dynamic_partitions_requests or []
    assert list(added.partition_keys or []) == blocks


def test_the_sensor_stops_asking_for_a_run_that_keeps_failing_on_the_same_inputs(
    settings: Settings,
):
    resources = resources_from_settings(settings)
    sensor = build_release_sensor(settings)
    blocks = [f"{n:06d}" for n in range(N_SAMPLES // BLOCK_SIZE)]

    def asked(instance: dg.DagsterInstance) -> list[str | None]:
        result = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        return [r.partition_key for r in getattr(result, "run_requests", None) or []]

    with dg.DagsterInstance.ephemeral() as instance:
        register(instance, resources)
        requests, _ = reconcile(instance, inputs_of(resources), log=lambda _: None)
        first = requests[0]
        assert first.tags[INPUTS_TAG] == inputs_version(inputs_of(resources))
        # The block's real run, with the sensor's tags: its expression has no frozen target yet,
        # so every attempt fails, the way a block its blocking check rejects does.
        job = build_definitions(resources).resolve_job_def(BLOCK_JOB)
        for attempt in range(1, SENSOR_FAILED_RUNS_LIMIT + 1):
            assert asked(instance) == blocks, attempt
            result = job.execute_in_process(
                instance=instance,
                partition_key=first.partition_key,
                tags=dict(first.tags),
                raise_on_error=False,
            )
            assert not result.success
        assert asked(instance) == blocks[1:]  # not launched again at every tick
        # `make update` (reconcile itself) still runs what it is asked.
        requests, _ = reconcile(instance, inputs_of(resources), log=lambda _: None)
        assert [r.partition_key for r in requests] == blocks

        gtf = settings.gtf
        os.utime(gtf, ns=(gtf.stat().st_atime_ns, gtf.stat().st_mtime_ns + 10**9))
        assert asked(instance) == blocks  # a changed input: asked for again
