"""Metrics layer: the per-gene signal/coherence and each gene's most co-expressed genes."""

import dagster as dg
import numpy as np
import polars as pl
import pyarrow as pa

from archs4.coexpression import (
    SAMPLE_SEED,
    compute_gene_coexpression,
    recomputation_mismatches,
    spot_correlations,
)
from archs4.datasets import (
    COEXPRESSION_TABLE,
    EXPRESSION_DATASET,
    GENE_METRICS_TABLE,
    GENE_WINDOWS_TABLE,
)
from archs4.metrics_table import compute_gene_metrics
from archs4.warehouse import Warehouse
from dagster_project.plots import metrics_figure_markdown
from dagster_project.quality import blocking_check, validate
from dagster_project.resources import CheckQueryResource, CoexpressionResource, WarehouseResource

TOP_GENES = 10


@dg.asset(
    group_name="metrics",
    kinds={"parquet", "numpy"},
    deps=["expression_by_gene"],
    description=(
        "Per gene, over all samples of `expression`: `p95` (95th percentile, linear "
        "interpolation) and `mean_cosine` (mean pairwise cosine similarity of the full "
        "normalized profiles of the 100 samples around the 95th-percentile rank), with ranks "
        "and window bounds; the window members are in `gene_windows`."
    ),
)
def gene_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    store = warehouse.get()
    result = compute_gene_metrics(
        store,
        store.blocks_present(EXPRESSION_DATASET),
        store.genes_with_length(),
        report=context.log.info,
    )
    store.write_table(result.metrics.to_arrow(), store.table_path(GENE_METRICS_TABLE))
    store.write_table(result.windows.to_arrow(), store.table_path(GENE_WINDOWS_TABLE))
    metrics = result.metrics
    columns = ["symbol", "ensembl_id", "p95", "mean_cosine"]
    context.log.info(f"gene metrics for {metrics.height} genes over {result.n_samples} samples")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": metrics.height,
            "n_samples": result.n_samples,
            "plots": dg.MetadataValue.md(
                metrics_figure_markdown(
                    metrics["p95"].to_numpy(), metrics["mean_cosine"].to_numpy()
                )
            ),
            "top_by_p95": dg.MetadataValue.md(
                metrics.sort("p95", descending=True)
                .head(TOP_GENES)
                .select(columns)
                .to_pandas()
                .to_markdown(index=False)
            ),
            "top_by_mean_cosine": dg.MetadataValue.md(
                metrics.sort("mean_cosine", descending=True)
                .head(TOP_GENES)
                .select(columns)
                .to_pandas()
                .to_markdown(index=False)
            ),
        }
    )


@dg.asset(
    group_name="metrics",
    kinds={"parquet", "numpy"},
    deps=["expression_by_gene"],
    description=(
        "For each gene with variance, its `top_k` (100) most co-expressed genes: Pearson "
        "correlation of normalized values over all samples, or over a seeded subset of "
        "ARCHS4_COEXPRESSION_SAMPLES (20,000) beyond that; genes standardized and multiplied "
        "in blocks, never the genes x genes matrix. `archs4 coexpressed` looks it up."
    ),
)
def gene_coexpression(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    coexpression: CoexpressionResource,
) -> dg.MaterializeResult:
    store = warehouse.get()
    result = compute_gene_coexpression(
        store,
        max_samples=coexpression.max_samples,
        top_k=coexpression.top_k,
        budget_bytes=coexpression.budget_bytes(),
        report=context.log.info,
    )
    store.write_table(result.table, store.table_path(COEXPRESSION_TABLE))
    reduced = result.n_samples < min(coexpression.max_samples, result.n_total_samples)
    if reduced:
        context.log.warning(
            f"gene co-expression over {result.n_samples} samples, not "
            f"{coexpression.max_samples}: the genes x samples matrix would not fit the memory "
            "budget (ARCHS4_MEMORY_GB)"
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.table.num_rows,
            "n_samples": result.n_samples,
            "n_samples_total": result.n_total_samples,
            "samples_reduced_by_memory_budget": reduced,
            "sample_seed": SAMPLE_SEED,
            "top_k": result.top_k,
            "genes": result.table.num_rows // max(result.top_k, 1),
            "genes_without_variance": result.n_constant_genes,
            "seconds_reading": round(result.read_seconds, 2),
            "seconds_correlating": round(result.correlate_seconds, 2),
            "strongest_pairs": dg.MetadataValue.md(_strongest_pairs(store, result.table)),
        }
    )


def _strongest_pairs(store: Warehouse, table: pa.Table) -> str:
    """The most correlated pairs (each once), with symbols, as a Markdown table."""
    symbols = store.genes_with_length().select("gene_idx", "symbol")
    pairs = (
        pl.from_arrow(table)
        .filter(pl.col("gene_idx") < pl.col("partner_gene_idx"))
        .sort("correlation", descending=True)
        .head(TOP_GENES)
        .join(symbols, on="gene_idx", how="left")
        .join(symbols, left_on="partner_gene_idx", right_on="gene_idx", how="left")
        .select("symbol", pl.col("symbol_right").alias("partner_symbol"), "correlation")
    )
    return pairs.to_pandas().to_markdown(index=False)


@blocking_check(
    asset=gene_metrics,
    description=(
        "GX suite `gene_metrics`: one row per gene with a length, p95 finite, mean_cosine in "
        "[-1, 1], window size min(100, N)."
    ),
)
def gene_metrics_are_valid(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    frame = store.read_table(GENE_METRICS_TABLE).to_pandas()
    n_samples = store.count_samples(EXPRESSION_DATASET)
    return validate(
        frame,
        "gene_metrics",
        {
            "n_genes_with_length": store.genes_with_length().height,
            "window_size": min(100, n_samples),
        },
    )


SPOT_GENES = 3


@blocking_check(
    asset=gene_coexpression,
    description=(
        "GX suite `gene_coexpression` on a per-gene profile (sql/checks/"
        "gene_coexpression_profile.sql): top_k rows per gene (fewer only when fewer genes "
        "vary), ranks 1..k in correlation order, distinct partners that vary, never the gene "
        "itself, correlations in [-1, 1], each pair stored both ways with the same value."
    ),
)
def gene_coexpression_is_valid(
    warehouse: WarehouseResource,
    coexpression: CoexpressionResource,
    check_queries: CheckQueryResource,
) -> dg.AssetCheckResult:
    store = warehouse.get()
    profile = check_queries.frame(
        "gene_coexpression_profile", table=str(store.table_path(COEXPRESSION_TABLE))
    )
    k = min(coexpression.top_k, len(profile) - 1)
    return validate(profile, "gene_coexpression", {"k": k})


@blocking_check(
    asset=gene_coexpression,
    description=(
        f"{SPOT_GENES} seeded genes recomputed in float64 from `expression_by_gene` over the "
        "same samples: at every rank, the stored correlation equals the stored partner's, and "
        "that the rank's (so no stronger partner is missing), within 1e-5."
    ),
)
def gene_coexpression_matches_recomputation(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    stored = store.read_table(COEXPRESSION_TABLE).to_arrow()
    genes = np.unique(stored["gene_idx"].to_numpy())
    if genes.size == 0:
        return dg.AssetCheckResult(passed=True, description="no gene varies: nothing stored")
    rng = np.random.default_rng(SAMPLE_SEED)
    spots = rng.choice(genes, min(SPOT_GENES, genes.size), replace=False)
    n_samples = int(stored["n_samples"][0].as_py())
    gene_idx, correlations = spot_correlations(store, spots, n_samples)
    problems = recomputation_mismatches(stored, spots, gene_idx, correlations)
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) or f"genes {spots.tolist()} match their recomputation",
        metadata={"spot_genes": spots.tolist(), "n_samples": n_samples},
    )
