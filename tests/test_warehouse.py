"""Warehouse storage: atomic writes, long blocks round trip, stale temporaries."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archs4.warehouse import TEMPORARY_PREFIX, Warehouse


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
