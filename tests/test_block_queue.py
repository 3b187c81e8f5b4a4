"""Block stages on Dagster's run queue: `make run` with ARCHS4_WORKERS=2 submits one run per
block to the queue (a backfill the daemon launches, the `sample_blocks` pool bounding how many
run at once) and builds the same files as the in-process path; the memory budget bounds the
workers."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from archs4.budget import (
    available_memory_bytes,
    block_peak_bytes,
    default_budget_bytes,
    physical_memory_bytes,
    workers_within_budget,
)
from dagster_project.automation import NORMALIZE_BLOCKS_JOB, RAW_BLOCKS_JOB
from tests.archs4_files import example_counts, write_archs4_file, write_gtf

N_BLOCKS = 8
PROJECT = Path(__file__).resolve().parent.parent


def test_workers_fit_the_memory_budget() -> None:
    peak = block_peak_bytes(67_000, 2_000)
    assert 6e9 < peak < 8e9  # ~7 GB per block of the human release at the default size
    assert workers_within_budget(32, 24 * 10**9, 67_000, 2_000) == 3
    assert workers_within_budget(2, 24 * 10**9, 20_000, 1_000) == 2
    assert workers_within_budget(8, 10**9, 67_000, 2_000) == 1  # one block always runs
    assert 0 < available_memory_bytes() <= physical_memory_bytes()
    assert default_budget_bytes() <= available_memory_bytes()  # other work keeps its memory


def data_files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
        if p.parts[len(root.parts)] in ("raw", "normalized", "reference")
    }


def build(tmp_path: Path, name: str, source: Path, workers: int) -> Path:
    home = tmp_path / name / "dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHS4_")} | {
        "ARCHS4_SOURCE": str(source),
        "ARCHS4_GTF": str(tmp_path / "genes.gtf"),
        "ARCHS4_WAREHOUSE": str(tmp_path / name / "warehouse"),
        "ARCHS4_LOG_DIR": str(tmp_path / name / "logs"),
        "ARCHS4_BLOCK_SIZE": "10",
        "ARCHS4_WORKERS": str(workers),
        "ARCHS4_RF_TREES": "10",
        "ARCHS4_GAN_EPOCHS": "3",
        "ARCHS4_CURVE_SEEDS": "1",
        "ARCHS4_CURVE_GAN_EPOCHS": "3",
        "DAGSTER_HOME": str(home),
    }
    done = subprocess.run(
        [sys.executable, "-m", "dagster_project.headless", "run"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr
    if workers > 1:
        assert f"{N_BLOCKS} blocks on the run queue, 2 at a time" in done.stdout
    return tmp_path / name


@pytest.mark.slow
def test_block_stages_on_the_run_queue_build_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = example_counts(60, 10 * N_BLOCKS, seed=8)
    source = write_archs4_file(tmp_path / "human_gene_v2.6.h5", counts, chunks=(30, 10))
    write_gtf(tmp_path / "genes.gtf", 60)
    queued = build(tmp_path, "queued", source, workers=2)
    in_process = build(tmp_path, "in_process", source, workers=1)
    assert data_files(queued / "warehouse") == data_files(in_process / "warehouse")
    monkeypatch.setenv("DAGSTER_HOME", str(queued / "dagster"))
    with dg.DagsterInstance.get() as inst:
        for job in (RAW_BLOCKS_JOB, NORMALIZE_BLOCKS_JOB):
            runs = inst.get_runs(filters=dg.RunsFilter(job_name=job))
            assert sorted(run.tags["dagster/partition"] for run in runs) == [
                f"{n:06d}" for n in range(N_BLOCKS)
            ]
            assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
            assert all("dagster/backfill" in run.tags for run in runs)
