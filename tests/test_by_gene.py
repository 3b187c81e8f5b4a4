"""The gene-clustered copy of `expression` holds exactly its rows, in any chunking."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from archs4.by_gene import (
    CHUNK,
    build_expression_by_gene,
    iter_gene_chunks,
    iter_gene_row_groups,
    plan_gene_chunks,
)
from archs4.datasets import EXPRESSION_BY_GENE_DATASET, EXPRESSION_DATASET
from archs4.warehouse import GENES_PER_ROW_GROUP, Warehouse

pytestmark = pytest.mark.slow


def test_plan_gene_chunks_respects_the_value_budget():
    chunks = plan_gene_chunks(np.arange(10), n_samples=30, values_per_chunk=100)
    assert [c.gene_idx.tolist() for c in chunks] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert [c.key for c in chunks] == ["000000", "000001", "000002", "000003"]
    # A gene always fits, however many samples.
    assert len(plan_gene_chunks(np.arange(3), n_samples=10**6, values_per_chunk=10)) == 3


def test_rebuilt_in_small_chunks_equals_the_block_layer(built, tmp_path: Path):
    root = tmp_path / "warehouse"
    shutil.copytree(built[2], root)
    store = Warehouse.at(root)
    blocks = store.blocks_present(EXPRESSION_DATASET)
    genes = np.array(
        sorted(
            g
            for (g,) in duckdb.sql(
                "SELECT DISTINCT gene_idx FROM read_parquet($glob)",
                params={"glob": store.dataset_glob(EXPRESSION_DATASET)},
            ).fetchall()
        )
    )
    n_samples = 47
    chunks = build_expression_by_gene(store, blocks, genes, n_samples, values_per_chunk=47 * 7)
    assert len(chunks) == -(-genes.size // 7)
    assert store.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK) == [c.key for c in chunks]
    rebuilt = np.vstack([values for values, _, _ in iter_gene_chunks(store)])
    sample_idx = next(iter_gene_chunks(store))[1]
    assert sample_idx.tolist() == list(range(n_samples))
    expected = np.zeros_like(rebuilt)
    for block in blocks:
        values, samples, block_genes = store.read_long_block(EXPRESSION_DATASET, block, "value")
        assert block_genes.tolist() == genes.tolist()
        expected[:, samples] = values
    assert np.array_equal(rebuilt, expected)
    row_groups = list(iter_gene_row_groups(store))  # the same rows, a row group at a time
    assert np.array_equal(np.vstack([values for _, values, _, _ in row_groups]), expected)
    assert all(samples.tolist() == list(range(n_samples)) for _, _, samples, _ in row_groups)
    assert np.array_equal(np.concatenate([g for _, _, _, g in row_groups]), genes)
    # Re-chunking coarser removes the chunks of the finer plan.
    coarse = build_expression_by_gene(store, blocks, genes, n_samples)
    assert store.partition_keys(EXPRESSION_BY_GENE_DATASET, CHUNK) == [c.key for c in coarse]
    assert len(coarse) == 1


def test_gene_chunks_are_whole_row_groups_of_the_block_files_when_the_budget_allows():
    chunks = plan_gene_chunks(np.arange(1000), n_samples=1000, values_per_chunk=200 * 1000)
    assert {c.gene_idx.size for c in chunks[:-1]} == {3 * GENES_PER_ROW_GROUP}


def test_block_files_cut_row_groups_at_multiples_of_64_genes(tmp_path: Path):
    store = Warehouse.at(tmp_path)
    matrix = np.arange(300 * 5, dtype=np.float32).reshape(300, 5)
    path = tmp_path / "block.parquet"
    # Slabs that do not end on a multiple of 64: row groups still start on one.
    slabs = [matrix[:50], matrix[50:200], matrix[200:]]
    store.write_long_slabs(
        UPath(path), slabs, np.arange(5), "value", pa.float32(), gene_idx=np.arange(300)
    )
    metadata = pq.read_metadata(path)
    starts = [
        metadata.row_group(i).column(1).statistics.min for i in range(metadata.num_row_groups)
    ]
    assert starts == [0, 50, 64, 128, 192, 200, 256]
    values, _, _ = store.read_long_file(UPath(path), "value")
    assert np.array_equal(values, matrix)
