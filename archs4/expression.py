"""The normalized layer over stored blocks: the frozen quantile-normalization target and the
`expression` blocks normalized against it.

The target streams over the `counts` blocks (one block in memory at a time, an exact running
sum of sorted log vectors) and is stored once; every `expression` block, including those of
later releases, is normalized against that stored target and records the target's digest and
the length adjustment in its Parquet metadata, so a block normalized against another target
is detectable. Genes without a length are left out of `expression` (they stay in `counts`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from archs4.blocks import BlockPlan
from archs4.datasets import COUNTS_DATASET, EXPRESSION_DATASET, GENES_TABLE, QN_TARGET_TABLE
from archs4.quantile_norm import LengthAdjustment, TargetAccumulator, normalize_block
from archs4.warehouse import Warehouse

TARGET_DIGEST_KEY = "archs4.qn_target_sha256"
LENGTH_ADJUSTMENT_KEY = "archs4.length_adjustment"


@dataclass(frozen=True)
class StoredTarget:
    values: np.ndarray
    n_samples: int
    digest: str


@dataclass(frozen=True)
class NormalizedBlock:
    block: str
    n_samples: int
    n_genes: int
    rows: int
    value_min: float
    value_max: float


def target_digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f8").tobytes()).hexdigest()


def accumulate_target(
    warehouse: Warehouse,
    blocks: Sequence[str],
    on_block: Callable[[str, int], None] | None = None,
) -> TargetAccumulator:
    """Stream every block of `counts` into one exact target accumulator."""
    accumulator: TargetAccumulator | None = None
    for block in blocks:
        counts, _, _ = warehouse.read_long_block(COUNTS_DATASET, block, "count")
        if accumulator is None:
            accumulator = TargetAccumulator(n_genes=counts.shape[0])
        accumulator.add_block(counts)
        if on_block:
            on_block(block, counts.shape[1])
    if accumulator is None:
        raise ValueError("no counts blocks to compute the quantile-normalization target from")
    return accumulator


def write_target(warehouse: Warehouse, accumulator: TargetAccumulator) -> StoredTarget:
    values = accumulator.target()
    digest = target_digest(values)
    table = pa.table(
        {
            "rank": pa.array(np.arange(1, values.size + 1, dtype=np.int32)),
            "value": pa.array(values),
        },
        schema=pa.schema(
            [("rank", pa.int32()), ("value", pa.float64())],
            metadata={
                TARGET_DIGEST_KEY: digest,
                "archs4.qn_target_n_samples": str(accumulator.n_samples),
            },
        ),
    )
    warehouse.write_table(table, warehouse.table_path(QN_TARGET_TABLE))
    return StoredTarget(values, accumulator.n_samples, digest)


def read_target(warehouse: Warehouse) -> StoredTarget | None:
    path = warehouse.table_path(QN_TARGET_TABLE)
    if not warehouse.exists(path):
        return None
    with warehouse.fs.open(path.path, "rb") as handle:
        table = pq.read_table(handle)
    values = table.column("value").to_numpy()
    metadata = warehouse.file_metadata(path)
    digest = metadata.get(TARGET_DIGEST_KEY, "")
    if digest != target_digest(values):
        raise ValueError(f"{path}: content does not match its recorded digest (corrupt target?)")
    return StoredTarget(values, int(metadata.get("archs4.qn_target_n_samples", 0)), digest)


def normalize_stored_block(
    warehouse: Warehouse,
    block: str,
    target: StoredTarget,
    length_bp: np.ndarray,
    method: LengthAdjustment,
) -> NormalizedBlock:
    """Normalize one stored `counts` block and write its `expression` block.

    `length_bp` is aligned with `gene_idx` (NaN where a gene has no length); those genes are
    quantile-normalized with all the others (the target spans every gene) and then dropped.
    """
    counts, sample_idx, gene_idx = warehouse.read_long_block(COUNTS_DATASET, block, "count")
    if counts.shape[0] != target.values.size:
        raise ValueError(
            f"block {block} has {counts.shape[0]} genes but the target has {target.values.size}"
        )
    values, kept_genes = normalize_against_target(
        counts, gene_idx, target.values, length_bp, method
    )
    rows = warehouse.write_long_block(
        warehouse.block_path(EXPRESSION_DATASET, block),
        values,
        sample_idx,
        "value",
        pa.float32(),
        gene_idx=kept_genes,
        file_metadata={TARGET_DIGEST_KEY: target.digest, LENGTH_ADJUSTMENT_KEY: method},
    )
    return NormalizedBlock(
        block=block,
        n_samples=counts.shape[1],
        n_genes=kept_genes.size,
        rows=rows,
        value_min=float(values.min()) if values.size else float("nan"),
        value_max=float(values.max()) if values.size else float("nan"),
    )


def normalize_against_target(
    counts: np.ndarray,
    gene_idx: np.ndarray,
    target: np.ndarray,
    length_bp: np.ndarray,
    method: LengthAdjustment,
) -> tuple[np.ndarray, np.ndarray]:
    """`expression` values of a counts matrix of every gene (rows `gene_idx`): float32 values
    of the genes that have a length, and those genes' gene_idx.

    `length_bp` is indexed by gene_idx (NaN: no length). Ranks must come from all genes, so
    genes without a length are normalized with a placeholder length, then dropped. A sample's
    values depend only on its own counts and the target, so this gives the stored values of any
    set of samples, bit for bit.
    """
    lengths = length_bp[gene_idx]
    keep = np.isfinite(lengths)
    placeholder = np.where(keep, lengths, 1000.0)
    normalized = normalize_block(counts, target, placeholder, method)
    return np.ascontiguousarray(normalized[keep], dtype=np.float32), gene_idx[keep]


def gene_lengths_by_idx(warehouse: Warehouse) -> np.ndarray:
    """Each gene's length in bp from the `genes` table, indexed by gene_idx (NaN: no length)."""
    with warehouse.fs.open(warehouse.table_path(GENES_TABLE).path, "rb") as handle:
        table = pq.read_table(handle, columns=["gene_idx", "length_bp"])
    lengths = np.full(table.num_rows, np.nan)
    lengths[table.column("gene_idx").to_numpy()] = (
        table.column("length_bp").cast(pa.float64()).to_numpy(zero_copy_only=False)
    )
    return lengths


def recomputed_sample_idx(block: BlockPlan, at_most: int) -> list[int]:
    """The samples of `block` whose values the blocking check recomputes: all of them up to
    `at_most`, else `at_most` evenly spaced ones, the block's first and last included.

    Evenly spaced rather than random, so that the same block is always checked on the same
    samples (a re-run reproduces a failure) and every part of the block is covered.
    """
    if block.n_samples <= at_most:
        return block.sample_idx.tolist()
    positions = np.unique(np.linspace(0, block.n_samples - 1, at_most).round().astype(np.int64))
    return (block.sample_idx_start + positions).tolist()
