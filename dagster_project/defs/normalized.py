"""Normalized layer: `expression`, each counts block normalized against the frozen target, and
`expression_by_gene`, the same rows clustered by gene."""

import dagster as dg

from archs4.blocks import registered_block
from archs4.by_gene import build_expression_by_gene, plan_gene_chunks
from archs4.datasets import (
    COUNTS_DATASET,
    EXPRESSION_BY_GENE_DATASET,
    EXPRESSION_DATASET,
    GENES_TABLE,
    QN_TARGET_TABLE,
)
from archs4.expression import (
    LENGTH_ADJUSTMENT_KEY,
    TARGET_DIGEST_KEY,
    gene_lengths_by_idx,
    normalize_stored_block,
    read_target,
    recomputed_sample_idx,
)
from archs4.progress import Progress
from dagster_project.partitions import BLOCK_POOL, sample_blocks
from dagster_project.quality import blocking_check, validate
from dagster_project.resources import CheckQueryResource, NormalizationResource, WarehouseResource

# Values are stored as float32 (relative precision 6e-8); the check allows 1e-5.
RELATIVE_TOLERANCE = 1e-5


@dg.asset(
    group_name="normalized",
    kinds={"parquet", "numpy"},
    partitions_def=sample_blocks,
    pool=BLOCK_POOL,
    deps=["counts", "qn_target", "genes"],
    description=(
        "Normalized expression, one file per block, long format (sample_idx, gene_idx, value): "
        "log2(count + 1), quantile-normalized against the frozen `qn_target` (ties get the "
        "target's mean over their ranks), then adjusted for gene length (default: divided by "
        "the longest transcript's length in kb). Genes without a length are left out."
    ),
)
def expression(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    normalization: NormalizationResource,
) -> dg.MaterializeResult:
    store = warehouse.get()
    target = read_target(store)
    if target is None:
        raise dg.Failure("qn_target has not been computed yet; materialize it first")
    method = normalization.length_adjustment
    block = normalize_stored_block(
        store, context.partition_key, target, gene_lengths_by_idx(store), method
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": block.rows,
            "n_samples": block.n_samples,
            "n_genes_with_length": block.n_genes,
            "length_adjustment": method,
            "qn_target_sha256": target.digest,
            "value_min": block.value_min,
            "value_max": block.value_max,
        }
    )


@blocking_check(
    asset=expression,
    partitions_def=sample_blocks,
    pool=BLOCK_POOL,
    description=(
        "GX suite `expression_block_profile`: every sample has one finite value per gene with a "
        "length and none without; every value of the recomputed samples (all of a block of "
        "up to ARCHS4_CHECK_RECOMPUTED_SAMPLES (100), else that many evenly spaced ones), "
        "length adjustment undone, equals the quantile-normalized value recomputed in SQL from "
        "counts and the frozen target; and the block was normalized against the current target."
    ),
)
def expression_block_is_valid(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    normalization: NormalizationResource,
    check_queries: CheckQueryResource,
) -> dg.AssetCheckResult:
    store = warehouse.get()
    block = context.partition_key
    expression_file = store.block_path(EXPRESSION_DATASET, block)
    written_with = store.file_metadata(expression_file)
    target = read_target(store)
    current_digest = target.digest if target else ""
    if written_with.get(TARGET_DIGEST_KEY) != current_digest:
        return dg.AssetCheckResult(
            passed=False,
            description=(
                f"block {block} was normalized against target "
                f"{written_with.get(TARGET_DIGEST_KEY, '?')[:12]}, the current target is "
                f"{current_digest[:12]}: re-materialize it"
            ),
        )
    method = written_with.get(LENGTH_ADJUSTMENT_KEY, "")
    if method != normalization.length_adjustment:
        return dg.AssetCheckResult(
            passed=False,
            description=(
                f"block {block} used length adjustment {method!r}, the warehouse is configured "
                f"for {normalization.length_adjustment!r}: re-materialize it"
            ),
        )
    genes_file = str(store.table_path(GENES_TABLE))
    plan = registered_block(store, block)
    recomputed = recomputed_sample_idx(plan, normalization.check_recomputed_samples)
    profile = check_queries.frame(
        "expression_block_profile",
        counts_file=str(store.block_path(COUNTS_DATASET, block)),
        expression_file=str(expression_file),
        target_file=str(store.table_path(QN_TARGET_TABLE)),
        genes_file=genes_file,
        method=method,
        recomputed_samples=recomputed,
    )
    n_with_length = store.genes_with_length().height
    return validate(
        profile,
        "expression_block_profile",
        {
            "n_genes_with_length": n_with_length,
            "n_samples": plan.n_samples,
            "n_recomputed": len(recomputed),
            "tolerance": RELATIVE_TOLERANCE,
        },
        samples_recomputed=len(recomputed),
        max_relative_error=float(profile["max_relative_error"].max()) if len(profile) else 0.0,
    )


@dg.asset(
    group_name="normalized",
    kinds={"parquet"},
    deps=["expression"],
    description=(
        "The same rows as `expression`, clustered by gene: files by gene chunk, all samples of "
        "a gene together, ordered by gene then sample. A one-gene query reads one row group "
        "of one file; the gene metrics stream over it one chunk at a time."
    ),
)
def expression_by_gene(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    store = warehouse.get()
    blocks = store.blocks_present(EXPRESSION_DATASET)
    genes = store.genes_with_length()
    n_samples = store.count_samples(EXPRESSION_DATASET)
    gene_idx = genes["gene_idx"].to_numpy()
    progress = Progress(
        "expression_by_gene: gene chunk",
        total=len(plan_gene_chunks(gene_idx, n_samples, warehouse.gene_chunk_values)),
        report=context.log.info,
        unit="genes",
        total_units=int(gene_idx.size),
    )
    chunks = build_expression_by_gene(
        store,
        blocks,
        gene_idx,
        n_samples,
        values_per_chunk=warehouse.gene_chunk_values,
        on_chunk=lambda chunk: progress.step(int(chunk.gene_idx.size), chunk.key),
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": genes.height * n_samples,
            "gene_chunks": len(chunks),
            "genes_per_chunk": int(chunks[0].gene_idx.size) if chunks else 0,
            "n_samples": n_samples,
        }
    )


@blocking_check(
    asset=expression_by_gene,
    description=(
        "The gene-clustered copy holds exactly the rows of `expression`: same row count, "
        "same per-gene row counts and sums (sql/checks/expression_by_gene_matches.sql)."
    ),
)
def expression_by_gene_matches_expression(
    warehouse: WarehouseResource, check_queries: CheckQueryResource
) -> dg.AssetCheckResult:
    store = warehouse.get()
    mismatches = check_queries.frame(
        "expression_by_gene_matches",
        blocks_glob=store.dataset_glob(EXPRESSION_DATASET),
        chunks_glob=store.dataset_glob(EXPRESSION_BY_GENE_DATASET, "chunk"),
    ).to_dict("records")
    return dg.AssetCheckResult(
        passed=not mismatches,
        description=(
            "every gene matches" if not mismatches else f"genes that differ: {mismatches[:10]}"
        ),
        metadata={"genes_differing": len(mismatches)},
    )
