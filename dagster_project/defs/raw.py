"""Raw layer: the release file registered as sample blocks, and its `genes`, `samples` and
`counts` tables in long-format Parquet, each with blocking GX-backed checks."""

import dagster as dg
import polars as pl

from archs4.blocks import registered_block
from archs4.datasets import (
    COUNTS_DATASET,
    GENE_LENGTHS_TABLE,
    GENES_TABLE,
    RELEASE_INFO_TABLE,
    SAMPLES_DATASET,
)
from archs4.gene_lengths import attach_lengths
from archs4.ingest import genes_table, ingest_block, register_release, stored_gene_count
from archs4.preflight import check_inputs
from archs4.releases import Fingerprint, ReleaseRecord, write_release_info, write_release_record
from archs4.sample_fields import SAMPLES_LAYOUT_VERSION, SAMPLES_SCHEMA
from dagster_project.partitions import BLOCK_POOL, SAMPLE_BLOCKS, sample_blocks
from dagster_project.quality import blocking_check, validate
from dagster_project.resources import (
    Archs4SourceResource,
    CheckQueryResource,
    GeneAnnotationResource,
    LabelSourcesResource,
    WarehouseResource,
    run_inputs,
)

PREVIEW_ROWS = 5


@dg.asset(
    group_name="raw",
    kinds={"hdf5"},
    description=(
        "The ARCHS4 release file, validated and registered: its GSMs are diffed against the "
        "sample registry and the new samples are assigned warehouse ids and sample blocks "
        "(one dynamic partition each). Re-registering a release adds nothing. Its `meta/info` "
        "(author, contact, creation date, laboratory, version) is kept in raw/release_info."
    ),
)
def source_release(
    context: dg.AssetExecutionContext,
    source: Archs4SourceResource,
    annotation: GeneAnnotationResource,
    label_sources: LabelSourcesResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    # Every input is checked before the first write: a refused run leaves the warehouse as it was.
    release = check_inputs(run_inputs(source, annotation, label_sources, warehouse)).release
    store = warehouse.get()
    stale = store.remove_stale_temporaries()
    if stale:
        context.log.warning(f"removed {len(stale)} temporary files left by a crashed run")
    registration = register_release(store, release, source.block_size)
    existing = set(context.instance.get_dynamic_partitions(SAMPLE_BLOCKS))
    missing = [p.block for p in registration.all_blocks if p.block not in existing]
    if missing:
        context.instance.add_dynamic_partitions(SAMPLE_BLOCKS, missing)
    if registration.vanished_gsms:
        context.log.warning(
            f"{len(registration.vanished_gsms)} warehouse samples are absent from this release "
            f"(kept, not deleted), e.g. {registration.vanished_gsms[:5]}"
        )
    info = registration.info
    write_release_info(store, info.version, info.path, info.release_info)
    # Recorded last: a crash before this point registers the release again (idempotently).
    write_release_record(
        store,
        ReleaseRecord(
            fingerprint=Fingerprint.of(release),
            version=info.version,
            checksum=registration.checksum,
            n_samples=info.n_samples,
            new_blocks=[p.block for p in registration.new_blocks],
            info=info.release_info,
        ),
    )
    return dg.MaterializeResult(
        metadata={
            **info.as_metadata(),
            "release_info": dg.MetadataValue.md(
                "| meta/info | value |\n|---|---|\n"
                + "\n".join(f"| {key} | {value} |" for key, value in info.release_info.items())
            ),
            "release_info_path": dg.MetadataValue.path(str(store.table_path(RELEASE_INFO_TABLE))),
            "source_checksum_sha256": registration.checksum,
            "new_blocks": len(registration.new_blocks),
            "new_samples": sum(p.n_samples for p in registration.new_blocks),
            "total_blocks": len(registration.all_blocks),
            "vanished_samples": len(registration.vanished_gsms),
            "vanished_examples": ", ".join(registration.vanished_gsms[:10]),
            "stale_temporaries_removed": len(stale),
        }
    )


@dg.asset(
    group_name="raw",
    kinds={"parquet", "polars"},
    deps=[source_release, "gene_lengths"],
    description=(
        "The gene dimension: one row per gene of the release (Ensembl id, symbol, biotype) with "
        "its longest-transcript length from the GTF; `has_length` is false for genes the GTF "
        "lacks (they stay in `counts` but are left out of `expression`)."
    ),
)
def genes(source: Archs4SourceResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    store = warehouse.get()
    lengths = store.read_table(GENE_LENGTHS_TABLE)
    release_genes = pl.from_arrow(genes_table(source.release_path()))
    assert isinstance(release_genes, pl.DataFrame)
    table = attach_lengths(release_genes, lengths)
    store.write_table(table.to_arrow(), store.table_path(GENES_TABLE))
    without_length = table.filter(~pl.col("has_length"))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "genes_without_length": without_length.height,
            "duplicated_symbols": table.height - table["symbol"].n_unique(),
            "preview": dg.MetadataValue.md(table.head(PREVIEW_ROWS).to_pandas().to_markdown()),
            "without_length_examples": ", ".join(without_length["ensembl_id"].head(10).to_list()),
            "path": dg.MetadataValue.path(str(store.table_path(GENES_TABLE))),
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "samples",
            group_name="raw",
            kinds={"parquet"},
            deps=[source_release],
            description=(
                "The sample dimension, one file per block: every field of the release's "
                "meta/samples (GSM, series, the GEO metadata, read counts, single-cell "
                "probability; archs4.sample_fields) and the column sum of the source matrix."
            ),
            # Follows the block schema: in the UI, blocks an older layout wrote show an older one.
            code_version=SAMPLES_LAYOUT_VERSION,
        ),
        dg.AssetSpec(
            "counts",
            group_name="raw",
            kinds={"parquet"},
            deps=[source_release],
            description=(
                "Raw Kallisto gene counts in long format (sample_idx, gene_idx, count), zeros "
                "included, one file per block, in row groups of whole samples (rows by gene "
                "within each), so a few samples' full profiles read only their row groups."
            ),
        ),
    ],
    partitions_def=sample_blocks,
    can_subset=False,
    pool=BLOCK_POOL,
)
def raw_block(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Read one sample block of the HDF5 matrix once and write its samples and counts."""
    store = warehouse.get()
    block = ingest_block(store, context.partition_key)
    plan = block.plan
    provenance = {
        "source_path": plan.source_path,
        "source_version": plan.source_version,
        "source_checksum_sha256": plan.source_checksum,
        "source_columns": f"[{plan.column_start}, {plan.column_stop})",
    }
    yield dg.MaterializeResult(
        asset_key="samples",
        metadata={
            "dagster/row_count": block.samples.num_rows,
            **provenance,
            "preview": dg.MetadataValue.md(
                block.samples.select(
                    ["sample_idx", "gsm", "series_id", "source_name", "total_count"]
                )
                .slice(0, PREVIEW_ROWS)
                .to_pandas()
                .to_markdown()
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key="counts",
        metadata={
            "dagster/row_count": block.count_rows,
            "total_count": block.count_total,
            **provenance,
            "path": dg.MetadataValue.path(str(store.block_path(COUNTS_DATASET, plan.block))),
        },
    )


@blocking_check(
    asset=genes,
    description="GX suite `genes`: one row per source gene, Ensembl ids unique and well formed.",
)
def genes_are_valid(
    source: Archs4SourceResource, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    store = warehouse.get()
    frame = store.read_pandas(store.table_path(GENES_TABLE))
    with source.open() as release:
        n_genes = release.info.n_genes
    return validate(frame, "genes", {"n_genes": n_genes})


@blocking_check(
    asset="samples",
    partitions_def=sample_blocks,
    pool=BLOCK_POOL,
    description=(
        "GX suite `samples` on the block: every sample field's column, GSMs unique and well "
        "formed, series ids GSE lists, single-cell probabilities in [0, 1], read counts "
        "non-negative; and no GSM of the block in another block."
    ),
)
def samples_block_is_valid(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    check_queries: CheckQueryResource,
) -> dg.AssetCheckResult:
    store = warehouse.get()
    block = context.partition_key
    frame = store.read_pandas(store.block_path(SAMPLES_DATASET, block))
    duplicates = check_queries.frame(
        "gsm_in_other_blocks", samples_glob=store.dataset_glob(SAMPLES_DATASET), block=block
    ).to_dict("records")
    result = validate(
        frame,
        "samples",
        {"n_samples": registered_block(store, block).n_samples, "columns": SAMPLES_SCHEMA.names},
        gsms_in_other_blocks=len(duplicates),
    )
    if duplicates:
        return dg.AssetCheckResult(
            passed=False,
            description=f"GSMs already ingested in another block: {duplicates[:5]}",
            metadata=result.metadata,
        )
    return result


@blocking_check(
    asset="counts",
    partitions_def=sample_blocks,
    pool=BLOCK_POOL,
    description=(
        "GX suite `counts_block_profile` on the block's per-sample profile (computed by DuckDB): "
        "one row per gene for every sample, no nulls, no negatives, and per-sample totals equal "
        "to the source matrix's column sums."
    ),
)
def counts_block_is_valid(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    check_queries: CheckQueryResource,
) -> dg.AssetCheckResult:
    store = warehouse.get()
    block = context.partition_key
    profile = check_queries.frame(
        "counts_block_profile",
        counts_file=str(store.block_path(COUNTS_DATASET, block)),
        samples_file=str(store.block_path(SAMPLES_DATASET, block)),
    )
    n_samples = registered_block(store, block).n_samples
    return validate(
        profile,
        "counts_block_profile",
        {"n_genes": stored_gene_count(store), "n_samples": n_samples},
    )
