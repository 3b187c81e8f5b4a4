"""A release file moved (or mounted elsewhere, as on a cluster) after registration: registering
it at its new path points its blocks there, so they can be read again; another file with the
same GSMs does not take over blocks registered from a different release."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from archs4.blocks import block_plans, read_registry
from archs4.datasets import COUNTS_DATASET
from archs4.ingest import ingest_block, register_release
from archs4.warehouse import Warehouse
from tests.archs4_files import example_counts, write_archs4_file


def test_a_moved_release_is_read_from_its_new_path(tmp_path: Path):
    counts = example_counts(12, 20, seed=4)
    (tmp_path / "laptop").mkdir()
    first = write_archs4_file(tmp_path / "laptop" / "human_gene_v2.6.h5", counts)
    store = Warehouse.at(tmp_path / "warehouse")
    register_release(store, first, block_size=10)
    moved = tmp_path / "cluster" / "human_gene_v2.6.h5"
    moved.parent.mkdir()
    shutil.move(first, moved)

    register_release(store, moved, block_size=10)
    plans = block_plans(read_registry(store))
    assert {plan.source_path for plan in plans} == {str(moved.resolve())}
    for plan in plans:
        ingest_block(store, plan.block)
    values, _, _ = store.read_long_block(COUNTS_DATASET, plans[1].block, "count")
    assert np.array_equal(values, counts[:, plans[1].column_start : plans[1].column_stop])

    registry_bytes = store.sample_registry_path.read_bytes()
    register_release(store, moved, block_size=10)  # registered where it is: nothing rewritten
    assert store.sample_registry_path.read_bytes() == registry_bytes


def test_a_different_release_does_not_take_over_registered_blocks(tmp_path: Path):
    counts = example_counts(12, 20, seed=4)
    first = write_archs4_file(tmp_path / "human_gene_v2.6.h5", counts)
    store = Warehouse.at(tmp_path / "warehouse")
    register_release(store, first, block_size=10)
    changed = counts.copy()
    changed[0, 0] += 1  # same GSMs and genes, other bytes: another checksum
    (tmp_path / "copy").mkdir()
    other = write_archs4_file(tmp_path / "copy" / "human_gene_v2.6.h5", changed)

    register_release(store, other, block_size=10)
    assert {plan.source_path for plan in block_plans(read_registry(store))} == {
        str(first.resolve())
    }
