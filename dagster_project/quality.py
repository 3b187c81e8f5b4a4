"""Glue between GX validation reports (archs4.quality) and Dagster asset-check results."""

from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from archs4.paths import read_sql
from archs4.quality import ValidationReport, validate_frame


def check_result(report: ValidationReport, **extra: Any) -> dg.AssetCheckResult:
    """Pass/fail with the suite's summary, and a table of what failed and where."""
    metadata: dict[str, Any] = {**report.as_metadata(), **extra}
    if report.failures:
        metadata["failures"] = dg.MetadataValue.md(
            "| expectation | column | unexpected | examples / observed |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {f.expectation} | {f.column or ''} | {f.unexpected_count or ''} "
                f"| {f.examples[:5] if f.examples else f.observed} |"
                for f in report.failures
            )
        )
    return dg.AssetCheckResult(
        passed=report.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=report.summary(),
        metadata=metadata,
    )


def validate(
    frame: pd.DataFrame, suite: str, parameters: dict[str, Any] | None = None, **extra: Any
) -> dg.AssetCheckResult:
    return check_result(validate_frame(frame, suite, parameters), **extra)


def check_query(name: str, **parameters: object) -> pd.DataFrame:
    """The result of `sql/checks/<name>.sql` with its `$parameters` bound."""
    return duckdb.sql(read_sql(f"checks/{name}.sql"), params=parameters).df()


def parquet_frame(path: object) -> pd.DataFrame:
    """A whole Parquet file (a dimension table or a small result) as a DataFrame."""
    return duckdb.sql("SELECT * FROM read_parquet($path)", params={"path": str(path)}).df()
