"""Sample blocks: the unit of work, of storage and of Dagster partitioning.

A block is a contiguous run of columns of one release file, at most `block_size` wide and cut
at multiples of `block_size` (a multiple of the file's sample chunk width, so every read is
chunk-aligned). Blocks get warehouse sample ids (`sample_idx`) in order of arrival, so a later
release that appends samples only adds blocks: samples already in the warehouse (matched by
GSM) keep their ids and their files. The sample registry (`raw/sample_registry.parquet`) is
the single record of that assignment: one row per sample with its GSM, block, release file and
source column, written atomically before any block is read, so a crash between blocks can
never assign a GSM twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archs4.reader import SourceInfo
from archs4.warehouse import Warehouse, block_key

REGISTRY_SCHEMA = pa.schema(
    [
        ("sample_idx", pa.int32()),
        ("gsm", pa.string()),
        ("block", pa.string()),
        ("source_path", pa.string()),
        ("source_version", pa.string()),
        ("source_checksum", pa.string()),
        ("source_column", pa.int64()),
    ]
)


@dataclass(frozen=True)
class BlockPlan:
    block: str
    source_path: str
    source_version: str
    source_checksum: str
    column_start: int
    column_stop: int
    sample_idx_start: int

    @property
    def n_samples(self) -> int:
        return self.column_stop - self.column_start

    @property
    def sample_idx(self) -> np.ndarray:
        return np.arange(
            self.sample_idx_start, self.sample_idx_start + self.n_samples, dtype=np.int32
        )


def _contiguous_runs(positions: np.ndarray) -> list[tuple[int, int]]:
    if positions.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [positions.size]])
    return [
        (int(positions[a]), int(positions[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)
    ]


def plan_new_blocks(
    source_gsms: np.ndarray,
    known_gsms: Collection[str],
    *,
    block_size: int,
    source: SourceInfo,
    checksum: str,
    next_sample_idx: int = 0,
    next_block_number: int = 0,
) -> list[BlockPlan]:
    """Blocks covering the columns of `source_gsms` whose GSM the warehouse does not hold yet."""
    if block_size % source.chunk_samples:
        raise ValueError(
            f"block size {block_size} is not a multiple of the sample chunk {source.chunk_samples}"
        )
    known = set(known_gsms)
    new_positions = np.flatnonzero([gsm not in known for gsm in source_gsms])
    plans: list[BlockPlan] = []
    sample_idx = next_sample_idx
    for run_start, run_stop in _contiguous_runs(new_positions):
        start = run_start
        while start < run_stop:
            stop = min(run_stop, (start // block_size + 1) * block_size)
            plans.append(
                BlockPlan(
                    block=block_key(next_block_number + len(plans)),
                    source_path=source.path,
                    source_version=source.version,
                    source_checksum=checksum,
                    column_start=start,
                    column_stop=stop,
                    sample_idx_start=sample_idx,
                )
            )
            sample_idx += stop - start
            start = stop
    return plans


def registry_table(plans: Sequence[BlockPlan], source_gsms: np.ndarray) -> pa.Table:
    """One registry row per sample of `plans`, whose columns index `source_gsms`."""
    columns: dict[str, list] = {name: [] for name in REGISTRY_SCHEMA.names}
    for plan in plans:
        n = plan.n_samples
        columns["sample_idx"].extend(plan.sample_idx.tolist())
        columns["gsm"].extend(source_gsms[plan.column_start : plan.column_stop].tolist())
        columns["source_column"].extend(range(plan.column_start, plan.column_stop))
        for name in ("block", "source_path", "source_version", "source_checksum"):
            columns[name].extend([getattr(plan, name)] * n)
    return pa.table(columns, schema=REGISTRY_SCHEMA)


def read_registry(warehouse: Warehouse) -> pa.Table:
    """Every registered sample (an empty table for a new warehouse)."""
    path = warehouse.sample_registry_path
    if not warehouse.exists(path):
        return REGISTRY_SCHEMA.empty_table()
    with warehouse.fs.open(path.path, "rb") as handle:
        return pq.read_table(handle, schema=REGISTRY_SCHEMA)


def append_to_registry(warehouse: Warehouse, registry: pa.Table, new_rows: pa.Table) -> None:
    combined = pa.concat_tables([registry, new_rows]) if registry.num_rows else new_rows
    warehouse.write_table(combined, warehouse.sample_registry_path)


def relocate_release(registry: pa.Table, checksum: str, path: str) -> pa.Table | None:
    """The registry with `path` as the file of every block registered from the release with
    `checksum`, or None when they already name it.

    The same release moved, or mounted elsewhere (a laptop's warehouse run on a cluster): its
    blocks are read from where it is now, not from a path that no longer exists.
    """
    same = pc.equal(registry.column("source_checksum"), checksum)
    moved = pc.and_(same, pc.not_equal(registry.column("source_path"), path))
    if not pc.any(moved).as_py():
        return None
    paths = pc.if_else(same, pa.scalar(path), registry.column("source_path"))
    return registry.set_column(registry.schema.get_field_index("source_path"), "source_path", paths)


def block_plans(registry: pa.Table) -> list[BlockPlan]:
    """The blocks of the registry, in block order, each a contiguous run of source columns."""
    if registry.num_rows == 0:
        return []
    grouped = registry.group_by(
        ["block", "source_path", "source_version", "source_checksum"], use_threads=False
    ).aggregate(
        [
            ("source_column", "min"),
            ("source_column", "max"),
            ("sample_idx", "min"),
            ("sample_idx", "count"),
        ]
    )
    plans = []
    for row in grouped.to_pylist():
        plan = BlockPlan(
            block=row["block"],
            source_path=row["source_path"],
            source_version=row["source_version"],
            source_checksum=row["source_checksum"],
            column_start=row["source_column_min"],
            column_stop=row["source_column_max"] + 1,
            sample_idx_start=row["sample_idx_min"],
        )
        if plan.n_samples != row["sample_idx_count"]:
            raise ValueError(f"sample registry: block {plan.block} is not one contiguous run")
        plans.append(plan)
    if len({p.block for p in plans}) != len(plans):
        raise ValueError("sample registry: a block is registered against two release files")
    return sorted(plans, key=lambda plan: plan.block)


def find_block(plans: Sequence[BlockPlan], block: str) -> BlockPlan:
    for plan in plans:
        if plan.block == block:
            return plan
    raise KeyError(f"block {block!r} is not in the warehouse's sample registry")


def registered_block(warehouse: Warehouse, block: str) -> BlockPlan:
    return find_block(block_plans(read_registry(warehouse)), block)
