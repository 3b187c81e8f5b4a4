"""Metrics layer: the gene-clustered copy of `expression` and the per-gene signal/coherence."""

import dagster as dg
import duckdb
import polars as pl

from archs4.by_gene import (
    EXPRESSION_BY_GENE_DATASET,
    build_expression_by_gene,
    plan_gene_chunks,
)
from archs4.expression import EXPRESSION_DATASET
from archs4.ingest import GENES_TABLE
from archs4.metrics_table import GENE_METRICS_TABLE, GENE_WINDOWS_TABLE, compute_gene_metrics
from archs4.progress import Progress
from dagster_project.normalized import expression
from dagster_project.plots import metrics_figure_markdown
from dagster_project.quality import check_query, validate
from dagster_project.resources import WarehouseResource

TOP_GENES = 10


def _genes_with_length(store) -> pl.DataFrame:
    return pl.read_parquet(str(store.table_path(GENES_TABLE))).filter(pl.col("has_length"))


def _n_samples(store) -> int:
    return duckdb.sql(
        "SELECT count(DISTINCT sample_idx) FROM read_parquet($glob)",
        params={"glob": store.dataset_glob(EXPRESSION_DATASET)},
    ).fetchall()[0][0]


@dg.asset(
    group_name="normalized",
    kinds={"parquet"},
    deps=[expression],
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
    genes = _genes_with_length(store)
    n_samples = _n_samples(store)
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


@dg.asset(
    group_name="metrics",
    kinds={"parquet", "numpy"},
    deps=[expression_by_gene],
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
        _genes_with_length(store),
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


@dg.asset_check(
    asset=expression_by_gene,
    blocking=True,
    description=(
        "The gene-clustered copy holds exactly the rows of `expression`: same row count, "
        "same per-gene row counts and sums (sql/checks/expression_by_gene_matches.sql)."
    ),
)
def expression_by_gene_matches_expression(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    mismatches = check_query(
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


@dg.asset_check(
    asset=gene_metrics,
    blocking=True,
    description=(
        "GX suite `gene_metrics`: one row per gene with a length, p95 finite, mean_cosine in "
        "[-1, 1], window size min(100, N)."
    ),
)
def gene_metrics_are_valid(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    frame = pl.read_parquet(str(store.table_path(GENE_METRICS_TABLE))).to_pandas()
    n_samples = _n_samples(store)
    return validate(
        frame,
        "gene_metrics",
        {
            "n_genes_with_length": _genes_with_length(store).height,
            "window_size": min(100, n_samples),
        },
    )
