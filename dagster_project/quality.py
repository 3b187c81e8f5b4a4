"""Glue between GX validation reports (archs4.quality) and Dagster asset-check results, and the
decorator every blocking check is declared with."""

import functools
from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd

from archs4.check_failures import record_check_outcome
from archs4.quality import ValidationReport, validate_frame


def blocking_check(
    **spec: Any,
) -> Callable[[Callable[..., dg.AssetCheckResult]], dg.AssetChecksDefinition]:
    """`dg.asset_check(blocking=True, **spec)`, its outcome also recorded in the warehouse.

    A failed (or raising) check leaves a record there and a passing one removes it
    (`archs4.check_failures`), so `make run` reruns an asset its check rejected even with a
    new Dagster instance. The check must take the `warehouse` resource.
    """
    asset = spec["asset"]
    asset_name = asset if isinstance(asset, str) else asset.key.to_user_string()
    partitioned = spec.get("partitions_def") is not None

    def decorate(evaluate: Callable[..., dg.AssetCheckResult]) -> dg.AssetChecksDefinition:
        @functools.wraps(evaluate)
        def evaluate_and_record(*args: Any, **resources: Any) -> dg.AssetCheckResult:
            record = functools.partial(
                record_check_outcome,
                resources["warehouse"].get(),
                asset_name,
                evaluate.__name__,
                partition=args[0].partition_key if partitioned else None,
            )
            try:
                result = evaluate(*args, **resources)
            except Exception as error:
                record(passed=False, description=f"the check raised {error!r}")
                raise
            record(passed=result.passed, description=result.description or "")
            return result

        return dg.asset_check(blocking=True, **spec)(evaluate_and_record)

    return decorate


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
