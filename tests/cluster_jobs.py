"""A job for the Dask executor's own tests, importable by the cluster's workers: an asset, a
blocking check on it that fails, and an asset downstream of the check."""

import dagster as dg

from archs4.settings import Settings
from dagster_project.cluster import default_executor


@dg.asset
def checked_asset() -> int:
    return 1


@dg.asset_check(asset=checked_asset, blocking=True)
def failing_blocking_check() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="fails on purpose")


@dg.asset(deps=[checked_asset])
def downstream_asset() -> int:
    return 2


def blocked_job() -> dg.JobDefinition:
    """On the Dask cluster when `ARCHS4_DASK_SCHEDULER` is set, else multiprocess."""
    definitions = dg.Definitions(
        assets=[checked_asset, downstream_asset],
        asset_checks=[failing_blocking_check],
        jobs=[dg.define_asset_job("blocked")],
        executor=default_executor(Settings.from_env().dask_scheduler),
    )
    return definitions.resolve_job_def("blocked")
