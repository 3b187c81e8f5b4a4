"""Warehouse storage: atomic writes, long blocks round trip, stale temporaries."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archs4.long_reads import read_rows
from archs4.warehouse import TEMPORARY_PREFIX, Warehouse, samples_per_row_group


def test_long_block_round_trip_and_order(tmp_path: Path):
    store = Warehouse.at(tmp_path)
    matrix = np.arange(12, dtype=np.uint32).reshape(4, 3)  # 4 genes x 3 samples
    target = store.block_path("raw/counts", "000007")
    rows = store.write_long_block(target, matrix, np.array([10, 11, 12]), "count", pa.uint32())
    assert rows == 12
    table = pq.read_table(target)
    assert table.column("gene_idx").to_pylist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert table.column("sample_idx").to_pylist() == [10, 11, 12] * 4
    assert table.column("count").to_pylist() == list(range(12))
    values, samples, genes = store.read_long_block("raw/counts", "000007", "count")
    assert np.array_equal(values, matrix)
    assert samples.tolist() == [10, 11, 12]
    assert genes.tolist() == [0, 1, 2, 3]
    assert store.blocks_present("raw/counts") == ["000007"]


def test_sample_grouped_block_round_trip_and_pruning(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("archs4.warehouse.ROWS_PER_ROW_GROUP", 12)  # 3 samples of 4 genes
    assert samples_per_row_group(4) == 3
    store = Warehouse.at(tmp_path)
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 1000, size=(4, 7), dtype=np.uint32)  # 4 genes x 7 samples
    sample_idx = np.arange(100, 107)
    target = store.block_path("raw/counts", "000003")
    slabs = [matrix[:1], matrix[1:4]]  # as ingest gets them: runs of whole genes
    rows = store.write_sample_grouped_slabs(
        target, slabs, sample_idx, "count", pa.uint32(), gene_idx=np.arange(4)
    )
    assert rows == 28
    parquet = pq.ParquetFile(target)
    groups = [parquet.read_row_group(g) for g in range(parquet.metadata.num_row_groups)]
    assert [sorted(set(g.column("sample_idx").to_pylist())) for g in groups] == [
        [100, 101, 102], [103, 104, 105], [106],
    ]  # fmt: skip
    assert groups[0].column("gene_idx").to_pylist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    values, samples, genes = store.read_long_block("raw/counts", "000003", "count")
    assert np.array_equal(values, matrix)
    assert samples.tolist() == sample_idx.tolist() and genes.tolist() == [0, 1, 2, 3]
    # One sample's profile: only its row group is read.
    read = []
    original = pq.ParquetFile.read_row_group
    monkeypatch.setattr(
        pq.ParquetFile,
        "read_row_group",
        lambda self, group, **kw: read.append(group) or original(self, group, **kw),
    )
    with target.open("rb") as handle:
        profile = read_rows(handle, "count", sample_idx=np.array([104]))
    assert read == [1]
    assert profile.column("count").to_pylist() == matrix[:, 4].tolist()


def test_slabs_must_cover_every_gene(tmp_path: Path):
    store = Warehouse.at(tmp_path)
    target = store.block_path("raw/counts", "000000")
    with pytest.raises(ValueError, match="slabs held 2 genes, expected 3"):
        store.write_long_slabs(
            target,
            [np.zeros((2, 4), np.uint32)],
            np.arange(4),
            "count",
            pa.uint32(),
            gene_idx=np.arange(3),
        )
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary left either


def test_crash_while_writing_leaves_nothing(tmp_path: Path):
    store = Warehouse.at(tmp_path)
    target = store.block_path("raw/counts", "000001")

    def slabs():
        yield np.ones((2, 3), np.uint32)
        raise KeyboardInterrupt  # the process is stopped halfway through the block

    with pytest.raises(KeyboardInterrupt):
        store.write_long_slabs(
            target, slabs(), np.arange(3), "count", pa.uint32(), gene_idx=np.arange(4)
        )
    assert list(target.parent.iterdir()) == []


def test_rewrite_replaces_atomically(tmp_path: Path):
    store = Warehouse.at(tmp_path)
    target = store.table_path("raw/genes")
    store.write_table(pa.table({"a": [1]}), target)
    store.write_table(pa.table({"a": [2]}), target)
    assert pq.read_table(target).column("a").to_pylist() == [2]
    assert [p.name for p in target.parent.iterdir()] == ["genes.parquet"]


def test_stale_temporaries_are_removed_fresh_ones_kept(tmp_path: Path):
    store = Warehouse.at(tmp_path)
    directory = tmp_path / "raw" / "counts" / "block=000000"
    directory.mkdir(parents=True)
    stale = directory / f"{TEMPORARY_PREFIX}dead-part.parquet"
    fresh = directory / f"{TEMPORARY_PREFIX}live-part.parquet"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"writing")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    removed = store.remove_stale_temporaries()
    assert [Path(p).name for p in removed] == [stale.name]
    assert not stale.exists()
    assert fresh.exists()
