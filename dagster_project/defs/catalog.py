"""Catalog layer: the DuckDB file of views users query with `archs4 sql` or any DuckDB client."""

import dagster as dg

from dagster_project.resources import DuckDBCatalogResource

EXAMPLE_QUERY = "SELECT count(*) AS n_rows, sum(count) AS total FROM counts"


@dg.asset(
    group_name="catalog",
    kinds={"duckdb"},
    deps=[
        "source_release",
        "genes",
        "samples",
        "counts",
        "qn_target",
        "expression",
        "expression_by_gene",
        "gene_metrics",
        "gene_coexpression",
        "sample_labels",
        "sample_splits",
        "predictions",
        "model_evaluation",
        "synthetic_samples",
        "gan_evaluation",
        "augmentation_curve",
    ],
    pool="duckdb_catalog",
    description=(
        "warehouse.duckdb: views over every layer that exists (sql/catalog/*.sql), rebuilt in a "
        "temporary file and renamed into place so readers never wait and never see a half state."
    ),
)
def warehouse_catalog(catalog: DuckDBCatalogResource) -> dg.MaterializeResult:
    row_counts = catalog.rebuild()
    return dg.MaterializeResult(
        metadata={
            "views": dg.MetadataValue.md(
                "| view | rows |\n|---|---|\n"
                + "\n".join(f"| {view} | {rows:,} |" for view, rows in row_counts.items())
            ),
            **{f"rows/{view}": rows for view, rows in row_counts.items()},
            "example": f'archs4 sql "{EXAMPLE_QUERY}"',
        }
    )
