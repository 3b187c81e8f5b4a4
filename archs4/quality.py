"""Data-quality validation with Great Expectations 1.x suites stored as data in `assets/`.

Each suite is a YAML file (`assets/expectations/<name>.yaml`) listing GX expectation types and
their arguments; runtime values (the number of genes of a release, say) are GX suite parameters
(`{"$PARAMETER": "n_genes"}`). Dimension tables are validated row by row; large layers are
validated through compact per-block profiles (one row per sample) that DuckDB computes, so a
suite never needs a whole layer in memory. The report keeps, per failed expectation, the column,
the number of unexpected rows and a few examples, which the Dagster checks show in metadata.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from archs4.paths import ASSETS_DIR

EXPECTATIONS_DIR = ASSETS_DIR / "expectations"

logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass(frozen=True)
class ExpectationFailure:
    expectation: str
    column: str | None
    unexpected_count: int | None
    examples: list[Any]
    observed: Any = None

    def describe(self) -> str:
        where = f" on `{self.column}`" if self.column else ""
        count = f": {self.unexpected_count} unexpected" if self.unexpected_count else ""
        seen = f" (observed {self.observed})" if self.observed is not None else ""
        examples = f", e.g. {self.examples[:5]}" if self.examples else ""
        return f"{self.expectation}{where}{count}{seen}{examples}"


@dataclass(frozen=True)
class ValidationReport:
    suite: str
    success: bool
    evaluated: int
    rows: int
    failures: list[ExpectationFailure] = field(default_factory=list)

    def summary(self) -> str:
        if self.success:
            return f"{self.suite}: all {self.evaluated} expectations passed on {self.rows} rows"
        return f"{self.suite}: " + "; ".join(f.describe() for f in self.failures)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "rows_validated": self.rows,
            "expectations_evaluated": self.evaluated,
            "expectations_failed": len(self.failures),
            "summary": self.summary(),
        }


@cache
def _suite_definition(name: str) -> dict[str, Any]:
    path = EXPECTATIONS_DIR / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no expectation suite named {name!r}")
    with path.open() as handle:
        definition = yaml.safe_load(handle)
    if not isinstance(definition, dict) or "expectations" not in definition:
        raise ValueError(f"{path}: expected a mapping with an `expectations` list")
    return definition


def suite_names() -> list[str]:
    return sorted(p.stem for p in Path(EXPECTATIONS_DIR).glob("*.yaml"))


def build_suite(name: str):  # -> gx.ExpectationSuite (GX imports lazily: it is slow to import)
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    definition = _suite_definition(name)
    expectations = []
    for entry in definition["expectations"]:
        ((expectation_type, kwargs),) = entry.items()
        configuration = ExpectationConfiguration(type=expectation_type, kwargs=kwargs or {})
        expectations.append(configuration.to_domain_obj())
    return gx.ExpectationSuite(name=name, expectations=expectations)


@cache
def _batch_definition():
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # Analytics off in the context's own configuration (this tool never phones home), so
    # nothing has to set GX's environment variable.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    source = context.data_sources.add_pandas("warehouse")
    return source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")


def validate_frame(
    frame: pd.DataFrame, suite_name: str, parameters: dict[str, Any] | None = None
) -> ValidationReport:
    """Run suite `suite_name` on `frame` and summarize what failed and where."""
    batch_definition = _batch_definition()  # creates the GX context the suite belongs to
    suite = build_suite(suite_name)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, expectation_parameters=parameters or {}, result_format="SUMMARY")
    failures = []
    for outcome in result.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        details = outcome.result or {}
        failures.append(
            ExpectationFailure(
                expectation=config.type,
                column=config.kwargs.get("column"),
                unexpected_count=details.get("unexpected_count"),
                examples=list(details.get("partial_unexpected_list") or []),
                observed=details.get("observed_value"),
            )
        )
        if outcome.exception_info and outcome.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"suite {suite_name}: {config.type} raised "
                f"{outcome.exception_info.get('exception_message')}"
            )
    return ValidationReport(
        suite=suite_name,
        success=bool(result.success),
        evaluated=len(result.results),
        rows=len(frame),
        failures=failures,
    )
