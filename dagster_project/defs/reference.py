"""Reference layer: gene lengths from GENCODE and the frozen quantile-normalization target."""

import dagster as dg
import numpy as np
from pydantic import Field

from archs4.blocks import block_plans, read_registry
from archs4.datasets import COUNTS_DATASET, GENE_LENGTHS_TABLE, QN_TARGET_TABLE
from archs4.expression import accumulate_target, read_target, write_target
from archs4.ingest import stored_gene_count
from archs4.preflight import check_inputs
from archs4.progress import Progress
from dagster_project.plots import line_plot_markdown
from dagster_project.quality import blocking_check, validate
from dagster_project.resources import (
    Archs4SourceResource,
    GeneAnnotationResource,
    LabelSourcesResource,
    WarehouseResource,
    run_inputs,
)


@dg.asset(
    group_name="reference",
    kinds={"parquet", "polars"},
    description=(
        "Each gene's exonic length of its longest transcript, from the GENCODE/Ensembl GTF "
        "(`ARCHS4_GTF`), keyed by Ensembl id without version."
    ),
)
def gene_lengths(
    source: Archs4SourceResource,
    annotation: GeneAnnotationResource,
    label_sources: LabelSourcesResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    # Every input is checked before the first write, whichever root asset runs first.
    lengths = check_inputs(run_inputs(source, annotation, label_sources, warehouse)).gene_lengths
    store = warehouse.get()
    store.write_table(lengths.to_arrow(), store.table_path(GENE_LENGTHS_TABLE))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": lengths.height,
            "gtf": dg.MetadataValue.path(annotation.path),
            "length_method": annotation.length_method,
            "median_length_bp": float(lengths["length_bp"].median() or 0),
            "max_length_bp": int(lengths["length_bp"].max() or 0),
        }
    )


class QnTargetConfig(dg.Config):
    recompute: bool = Field(
        default=False,
        description=(
            "The target is frozen once computed, so new samples never change old values. "
            "Set to recompute it from every current block; every `expression` block must then "
            "be re-materialized (its check fails until it is)."
        ),
    )


@dg.asset(
    group_name="reference",
    kinds={"parquet", "numpy"},
    deps=["counts"],
    description=(
        "The quantile-normalization target: for each rank r, the mean over all samples of the "
        "r-th smallest log2(count + 1). Streamed over the counts blocks (exact running sum of "
        "sorted vectors), then frozen: later materializations keep it unless `recompute`."
    ),
)
def qn_target(
    context: dg.AssetExecutionContext, config: QnTargetConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    store = warehouse.get()
    existing = read_target(store)
    if existing is not None and not config.recompute:
        context.log.info(f"qn_target is frozen (sha256 {existing.digest[:12]}); kept as is")
        return dg.MaterializeResult(metadata=_target_metadata(existing, frozen=True))
    blocks = [plan.block for plan in block_plans(read_registry(store))]
    missing = sorted(set(blocks) - set(store.blocks_present(COUNTS_DATASET)))
    if missing:
        raise dg.Failure(
            f"counts blocks {missing[:10]} are registered but not ingested; materialize them "
            "before computing the target, which must cover every sample"
        )
    progress = Progress("qn_target: counts block", total=len(blocks), report=context.log.info)
    accumulator = accumulate_target(
        store, blocks, on_block=lambda block, n: progress.step(n, block)
    )
    stored = write_target(store, accumulator)
    context.log.info(f"qn_target computed over {stored.n_samples} samples in {len(blocks)} blocks")
    return dg.MaterializeResult(metadata=_target_metadata(stored, frozen=False))


def _target_metadata(stored, *, frozen: bool) -> dict:
    values = stored.values
    return {
        "dagster/row_count": int(values.size),
        "n_samples": stored.n_samples,
        "sha256": stored.digest,
        "frozen": frozen,
        "min": float(values[0]),
        "median": float(np.median(values)),
        "max": float(values[-1]),
        "target": dg.MetadataValue.md(
            line_plot_markdown(
                np.arange(1, values.size + 1), values, "rank", "log2(count + 1)", "QN target"
            )
        ),
    }


@blocking_check(
    asset=gene_lengths,
    description="GX suite `gene_lengths`: one positive length per gene id.",
)
def gene_lengths_are_valid(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    frame = store.read_table(GENE_LENGTHS_TABLE).to_pandas()
    return validate(frame, "gene_lengths")


@blocking_check(
    asset=qn_target,
    description="GX suite `qn_target`: one finite value per gene rank, non-decreasing.",
)
def qn_target_is_valid(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    frame = store.read_pandas(store.table_path(QN_TARGET_TABLE))
    frame = frame.sort_values("rank", ignore_index=True)
    return validate(frame, "qn_target", {"n_genes": stored_gene_count(store)})
