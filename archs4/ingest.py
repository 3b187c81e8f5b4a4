"""Ingest: register a release's new samples as blocks, then turn one block of the HDF5 matrix
into the raw warehouse layers (`samples`, `counts`) and the gene table (`genes`).

Registration diffs the release's GSMs against the sample registry, so re-registering the same
release adds nothing and a later release adds only its new samples. Ingesting a block reads its
columns once (one chunk-aligned HDF5 read), computes each sample's column sum from the matrix as
read (the reference the counts check compares the Parquet file against), and writes both files
atomically, `counts` first, so a block has a `samples` file only once its counts are complete.
A `samples` file whose columns are not today's sample fields (written by an older version)
does not count as committed, so the next run re-derives its block.
Reading and writing overlap: each slab of gene chunks is encoded to Parquet on a background
thread while the next is read. Memory is two slabs and one row group, never the whole block
in long form.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archs4.blocks import (
    BlockPlan,
    append_to_registry,
    block_plans,
    find_block,
    plan_new_blocks,
    read_registry,
    registry_table,
    relocate_release,
)
from archs4.datasets import COUNTS_DATASET, GENES_TABLE, SAMPLES_DATASET
from archs4.reader import (
    Archs4FormatError,
    Archs4Source,
    SampleRange,
    SourceInfo,
    file_checksum,
    open_archs4,
)
from archs4.sample_fields import SAMPLES_SCHEMA
from archs4.warehouse import Warehouse


@dataclass(frozen=True)
class ReleaseRegistration:
    info: SourceInfo
    checksum: str
    new_blocks: list[BlockPlan]
    all_blocks: list[BlockPlan]
    vanished_gsms: list[str]


@dataclass(frozen=True)
class IngestedBlock:
    plan: BlockPlan
    samples: pa.Table
    count_rows: int
    count_total: int


def register_release(
    warehouse: Warehouse, source_path: str | Path, block_size: int
) -> ReleaseRegistration:
    """Add the release's samples that the warehouse does not hold yet to the sample registry."""
    with open_archs4(source_path) as source:
        info = source.info
        gsms = source.gsms()
        aligned = source.aligned_block_size(block_size)
        check_same_genes(warehouse, source)
    checksum = file_checksum(source_path)
    registry = read_registry(warehouse)
    relocated = relocate_release(registry, checksum, info.path)
    if relocated is not None:
        registry = relocated
        warehouse.write_table(registry, warehouse.sample_registry_path)
    known = set(registry.column("gsm").to_pylist())
    existing = block_plans(registry)
    next_sample_idx = max((p.sample_idx_start + p.n_samples for p in existing), default=0)
    new_blocks = plan_new_blocks(
        gsms,
        known,
        block_size=aligned,
        source=info,
        checksum=checksum,
        next_sample_idx=next_sample_idx,
        next_block_number=len(existing),
    )
    if new_blocks:
        append_to_registry(warehouse, registry, registry_table(new_blocks, gsms))
    vanished = sorted(known - set(gsms.tolist()))
    return ReleaseRegistration(info, checksum, new_blocks, existing + new_blocks, vanished)


def check_same_genes(warehouse: Warehouse, source: Archs4Source) -> None:
    """A later release must have the genes of the warehouse, in the same order: gene_idx is
    the position in the file, and every stored block is keyed by it."""
    path = warehouse.table_path(GENES_TABLE)
    if not warehouse.exists(path):
        return
    with warehouse.fs.open(path.path, "rb") as handle:
        stored = pq.read_table(handle, columns=["ensembl_id"]).column("ensembl_id").to_pylist()
    release = source.genes().column("ensembl_id").to_pylist()
    if stored != release:
        changed = next(
            (i for i, (a, b) in enumerate(zip(stored, release, strict=False)) if a != b),
            min(len(stored), len(release)),
        )
        raise Archs4FormatError(
            source.path,
            source.info.gene_id_key,
            f"has {len(release)} genes, the warehouse {len(stored)}, first difference at "
            f"gene_idx {changed}: a release with other genes needs a new warehouse",
        )


def genes_table(source_path: str | Path) -> pa.Table:
    """The gene dimension of a release that `register_release` has validated in full."""
    with open_archs4(source_path, full_check=False) as source:
        return source.genes()


def samples_table(
    metadata: dict[str, pa.Array], plan: BlockPlan, column_totals: np.ndarray
) -> pa.Table:
    """The `samples` rows of one block: warehouse ids, every sample field of the source and
    provenance, in the columns and types of `SAMPLES_SCHEMA`."""
    n = plan.n_samples
    return pa.table(
        {
            "sample_idx": pa.array(plan.sample_idx),
            **metadata,
            "total_count": pa.array(column_totals.astype(np.int64)),
            "block": pa.array([plan.block] * n, pa.string()),
            "source_column": pa.array(np.arange(plan.column_start, plan.column_stop)),
            "source_version": pa.array([plan.source_version] * n, pa.string()),
        },
        schema=SAMPLES_SCHEMA,
    )


def outdated_sample_blocks(warehouse: Warehouse) -> list[str]:
    """Blocks whose `samples` file lacks today's columns (`SAMPLES_SCHEMA`): written by an
    older version that kept fewer sample fields, or unreadable. One footer read per block."""
    outdated = []
    for block in warehouse.blocks_present(SAMPLES_DATASET):
        path = warehouse.block_path(SAMPLES_DATASET, block)
        try:
            with warehouse.fs.open(path.path, "rb") as handle:
                schema = pq.read_schema(handle)
        except (OSError, pa.ArrowInvalid):
            schema = None
        if schema is None or not schema.equals(SAMPLES_SCHEMA, check_metadata=False):
            outdated.append(block)
    return outdated


def stored_gene_count(warehouse: Warehouse) -> int:
    """Genes in the warehouse's `genes` table, from its Parquet footer (no data read)."""
    with warehouse.fs.open(warehouse.table_path(GENES_TABLE).path, "rb") as handle:
        return pq.read_metadata(handle).num_rows


def committed_blocks(warehouse: Warehouse, datasets: Collection[str]) -> set[str]:
    """Blocks with a committed file in each of `datasets`, an outdated `samples` file not
    counted: `make run` and `make update` then re-derive the block, so the samples files
    never stay in two layouts (the catalog refuses to read them mixed)."""
    committed = set.intersection(*(set(warehouse.blocks_present(d)) for d in datasets))
    if SAMPLES_DATASET in datasets:
        committed -= set(outdated_sample_blocks(warehouse))
    return committed


def ingest_block(warehouse: Warehouse, block: str) -> IngestedBlock:
    """Read one registered block from its release file and write its `samples` and `counts`."""
    registry = read_registry(warehouse)
    plan = find_block(block_plans(registry), block)
    in_block = registry.filter(pc.equal(registry.column("block"), block))
    expected_gsms = in_block.sort_by("source_column").column("gsm").to_pylist()
    rows = SampleRange(plan.column_start, plan.column_stop)
    # The file was validated in full at registration; its GSMs for this block are re-checked.
    with open_archs4(plan.source_path, full_check=False) as source:
        if source.info.version != plan.source_version:
            raise Archs4FormatError(
                plan.source_path,
                "meta/info/version",
                f"is {source.info.version!r} but block {plan.block} was registered from "
                f"version {plan.source_version!r}; the file changed since registration",
            )
        metadata = source.sample_metadata(rows)
        found = metadata["gsm"].to_pylist()
        if found != expected_gsms:
            raise Archs4FormatError(
                plan.source_path,
                "meta/samples/geo_accession",
                f"columns [{rows.start}, {rows.stop}) no longer hold the GSMs registered for "
                f"block {plan.block}; the file changed since registration",
            )
        column_totals = np.zeros(rows.size, dtype=np.uint64)

        def slabs_with_totals() -> Iterator[np.ndarray]:
            for slab in source.iter_gene_slabs(rows):
                column_totals[:] += slab.sum(axis=0, dtype=np.uint64)
                yield slab

        count_rows = warehouse.write_sample_grouped_slabs(
            warehouse.block_path(COUNTS_DATASET, plan.block),
            slabs_with_totals(),
            plan.sample_idx,
            "count",
            pa.uint32(),
            gene_idx=np.arange(source.info.n_genes),
        )
    # Samples last: a block's `samples` file exists only once its counts are complete.
    samples = samples_table(metadata, plan, column_totals)
    warehouse.write_table(samples, warehouse.block_path(SAMPLES_DATASET, plan.block))
    return IngestedBlock(plan, samples, count_rows, int(column_totals.sum()))
