"""Incremental updates: a directory of releases, a new release appending samples, idempotence,
and a `kill -9` halfway through an update."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from archs4.datasets import EXPRESSION_DATASET
from archs4.expression import StoredTarget, read_target
from archs4.quantile_norm import normalize_block
from archs4.warehouse import Warehouse
from dagster_project.headless import materialize_everything, update_warehouse
from tests.archs4_files import example_counts, write_archs4_file, write_gtf
from tests.conftest import resources_for
from tests.kill import kill_headless_when

pytestmark = pytest.mark.slow

N_GENES, N_OLD, N_NEW = 40, 60, 35
# Every data file the warehouse writes, byte for byte. Left out: the skops model (skops names
# its zip entries after object ids, so its bytes vary between runs; its predictions are data)
# and raw/release.json (it records the release file's own path and modification time).
DATA_SUFFIXES = (".parquet", ".npz", ".json")
NOT_COMPARED = {"release.json"}


def data_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.suffix in DATA_SUFFIXES and not p.name.startswith(".") and p.name not in NOT_COMPARED
    }


@dataclass(frozen=True)
class UpdateRun:
    """A warehouse built from release A, then updated to release B."""

    root: Path
    ran: list[str]
    before: dict[str, bytes]
    after: dict[str, bytes]
    target_before: StoredTarget | None


def test_update_adds_exactly_the_new_samples(tmp_path: Path):
    counts = example_counts(N_GENES, N_OLD + N_NEW, seed=9)
    gsms = [f"GSM{3000000 + i}" for i in range(counts.shape[1])]
    run = build_release_a_then_update_to_b(tmp_path, counts, gsms)
    assert_only_the_new_blocks_were_written(run)
    assert_the_catalog_holds_release_b(run.root, counts, gsms)
    assert run.target_before is not None
    assert_new_values_are_normalized_against_the_frozen_target(run.root, counts, run.target_before)


def build_release_a_then_update_to_b(
    tmp_path: Path, counts: np.ndarray, gsms: list[str]
) -> UpdateRun:
    """Materialize release A (the first N_OLD samples), then update to B (all of them); checks
    that an update right after a build, and a second update, change nothing."""
    write_gtf(tmp_path / "genes.gtf", N_GENES)
    directory = tmp_path / "source"  # a directory of releases: A now, B later
    directory.mkdir()
    write_archs4_file(
        directory / "human_gene_v2.5.h5", counts[:, :N_OLD], gsms=gsms[:N_OLD], chunks=(20, 5)
    )
    root = tmp_path / "warehouse"
    resources = resources_for(directory, tmp_path / "genes.gtf", root)
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_everything(instance, resources)
        assert update_warehouse(instance, resources) == []  # just built: nothing to do
        before = data_files(root)
        target_before = read_target(Warehouse.at(root))
        write_archs4_file(directory / "human_gene_v2.6.h5", counts, gsms=gsms, chunks=(20, 5))
        ran = update_warehouse(instance, resources)
        after = data_files(root)
        assert update_warehouse(instance, resources) == []  # a second update changes nothing
        assert data_files(root) == after
    return UpdateRun(root, ran, before, after, target_before)


def assert_only_the_new_blocks_were_written(run: UpdateRun) -> None:
    new_blocks = [r for r in run.ran if r.startswith("ingest_block")]
    assert run.ran[0] == "register_release" and run.ran[-1] == "refresh_warehouse"
    # A: 60 samples in blocks 000000-000005; B's 35 new: columns 60-94, cut every 10 columns.
    assert new_blocks == [f"ingest_block[{b:06d}]" for b in range(6, 10)]
    # Every file of the old blocks is byte-identical, and so is the frozen target.
    for path, content in run.before.items():
        if "block=" in path:
            assert run.after[path] == content, path
    target_after = read_target(Warehouse.at(run.root))
    assert run.target_before is not None and target_after is not None
    assert np.array_equal(run.target_before.values, target_after.values)


def assert_the_catalog_holds_release_b(root: Path, counts: np.ndarray, gsms: list[str]) -> None:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as connection:
        n_samples, n_gsms = connection.sql(
            "SELECT count(*), count(DISTINCT gsm) FROM samples"
        ).fetchall()[0]
        new = connection.sql(
            "SELECT sample_idx, gsm, source_column FROM samples WHERE sample_idx >= $n "
            "ORDER BY sample_idx",
            params={"n": N_OLD},
        ).fetchall()
        rows = connection.sql(
            "SELECT gene_idx, sample_idx, count FROM counts WHERE sample_idx >= $n",
            params={"n": N_OLD},
        ).fetchall()
        metrics_n = connection.sql("SELECT DISTINCT n_samples FROM gene_metrics").fetchall()
    assert (n_samples, n_gsms) == (N_OLD + N_NEW, N_OLD + N_NEW)
    assert [g for _, g, _ in new] == gsms[N_OLD:]
    assert [c for _, _, c in new] == list(range(N_OLD, N_OLD + N_NEW))  # columns of release B
    rebuilt = np.zeros((N_GENES, N_NEW), dtype=np.uint32)
    for gene, sample, count in rows:
        rebuilt[gene, sample - N_OLD] = count
    assert np.array_equal(rebuilt, counts[:, N_OLD:])
    assert metrics_n == [(N_OLD + N_NEW,)]


def assert_new_values_are_normalized_against_the_frozen_target(
    root: Path, counts: np.ndarray, target_before: StoredTarget
) -> None:
    """The new samples' values are their normalization against release A's frozen target."""
    store = Warehouse.at(root)
    genes = pq.read_table(root / "raw" / "genes.parquet").to_pandas()
    lengths = genes["length_bp"].astype(float).fillna(1000.0).to_numpy()
    expected = normalize_block(counts[:, N_OLD:], target_before.values, lengths)
    expected = expected[genes["has_length"].to_numpy()].astype(np.float32)
    stored = np.zeros_like(expected)
    kept = np.flatnonzero(genes["has_length"].to_numpy())
    for block in range(6, 10):
        values, samples, gene_idx = store.read_long_block(
            EXPRESSION_DATASET, f"{block:06d}", "value"
        )
        assert gene_idx.tolist() == kept.tolist()
        stored[:, samples - N_OLD] = values
    assert np.array_equal(stored, expected)


def test_kill_9_during_an_update_then_update_gives_the_same_warehouse(tmp_path: Path):
    counts = example_counts(200, 200, seed=4)
    write_gtf(tmp_path / "genes.gtf", 200)
    gsms = [f"GSM{5000000 + i}" for i in range(200)]
    originals = tmp_path / "originals"
    originals.mkdir()
    release_a = write_archs4_file(originals / "human_gene_v2.5.h5", counts[:, :60], gsms=gsms[:60])
    release_b = write_archs4_file(originals / "human_gene_v2.6.h5", counts, gsms=gsms)
    # Both scenarios read the same release files at the same path: the registry records both.
    directory = tmp_path / "source"
    results = {}
    for name in ("uninterrupted", "killed"):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        shutil.copy2(release_a, directory / release_a.name)
        root = tmp_path / name / "warehouse"
        env = {
            **os.environ,
            "ARCHS4_SOURCE": str(directory),
            "ARCHS4_GTF": str(tmp_path / "genes.gtf"),
            "ARCHS4_WAREHOUSE": str(root),
            "ARCHS4_LABELS": "",
            "ARCHS4_BLOCK_SIZE": "20",
            "ARCHS4_RF_TREES": "20",
            "ARCHS4_LOG_DIR": str(tmp_path / name / "logs"),
            "ARCHS4_WORKERS": "1",
            "DAGSTER_HOME": str(tmp_path / name / "dagster"),
        }
        (tmp_path / name / "dagster").mkdir(parents=True)
        headless("run", env)
        shutil.copy2(release_b, directory / release_b.name)
        if name == "killed":
            # Kill as soon as the update has written part of the new blocks.
            expression = root / "normalized" / "expression"
            kill_headless_when("update", env, expression, 5, timeout=120)
            assert len(list(expression.glob("block=*/part.parquet"))) < 10  # really halfway
        headless("update", env)
        results[name] = data_files(root)
    assert results["killed"].keys() == results["uninterrupted"].keys()
    for path, content in results["uninterrupted"].items():
        assert results["killed"][path] == content, path


def headless(command: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "dagster_project.headless", command],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
