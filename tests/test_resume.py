"""`make run` resumes: killed with SIGKILL half-way, the next run keeps every committed block
file and finishes the rest; on a current warehouse it changes no file; it shows progress."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.headless import graph_stages
from tests.archs4_files import example_counts, write_archs4_file, write_gtf
from tests.kill import kill_headless_when

pytestmark = pytest.mark.slow

N_BLOCKS = 8


def environment(tmp_path: Path, source: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARCHS4_")}
    (tmp_path / "dagster").mkdir(exist_ok=True)
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return env | {
        "ARCHS4_SOURCE": str(source),
        "ARCHS4_GTF": str(tmp_path / "genes.gtf"),
        "ARCHS4_WAREHOUSE": str(tmp_path / "warehouse"),
        "ARCHS4_LOG_DIR": str(tmp_path / "logs"),
        "ARCHS4_BLOCK_SIZE": "20",
        "ARCHS4_WORKERS": "1",  # in-process blocks; the run queue has its own test
        "ARCHS4_RF_TREES": "10",
        "ARCHS4_GAN_EPOCHS": "5",
        "ARCHS4_CURVE_SEEDS": "1",
        "ARCHS4_CURVE_GAN_EPOCHS": "3",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }


def files_by_path(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under `root`: (modification time in ns, SHA-256)."""
    return {
        str(path.relative_to(root)): (
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.headless", "run"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_killed_run_resumes_without_redoing_committed_blocks(tmp_path: Path) -> None:
    counts = example_counts(120, 20 * N_BLOCKS, seed=5)
    source = write_archs4_file(tmp_path / "human_gene_v2.6.h5", counts, chunks=(40, 20))
    write_gtf(tmp_path / "genes.gtf", 120)
    env = environment(tmp_path, source)
    root = tmp_path / "warehouse"
    kill_headless_when("run", env, root / "raw" / "counts", 3)
    # A block is committed once its samples file exists (written after its counts).
    blocks = [p.parent.name for p in (root / "raw" / "samples").glob("block=*/part.parquet")]
    assert 2 <= len(blocks) < N_BLOCKS  # really half-way
    committed = {
        path: stamp
        for path, stamp in files_by_path(root).items()
        if path.startswith(tuple(f"raw/{layer}/{block}/" for layer in ("counts", "samples")
                                 for block in blocks))
    }  # fmt: skip

    resumed = run(env)
    assert resumed.returncode == 0, resumed.stderr
    after = files_by_path(root)
    for path, stamp in committed.items():
        assert after[path] == stamp, f"{path} was rewritten"
    assert len([p for p in after if p.startswith("raw/counts/")]) == N_BLOCKS
    lines = resumed.stdout.splitlines()
    assert any(line.startswith("stage 2/5 counts, samples: block 1/") for line in lines)
    assert any("samples/s" in line and "ETA" in line for line in lines)
    assert "Traceback" not in resumed.stdout + resumed.stderr
    assert "nanobind" not in resumed.stdout + resumed.stderr

    again = run(env)
    assert again.returncode == 0, again.stderr
    assert files_by_path(root) == after  # a current warehouse: no file touched
    stages = graph_stages()
    last = stages[-1].assets
    assert f"stage {len(stages)}/{len(stages)}: {len(last)} of {len(last)} assets current" in (
        again.stdout
    )

    quiet = subprocess.run(
        [sys.executable, "-m", "dagster_project.headless", "run", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert not any(line.startswith("stage ") for line in quiet.stdout.splitlines())
