"""The code location: every asset, check, resource, job, sensor and schedule of the warehouse."""

import dagster as dg

from archs4.settings import Settings
from dagster_project import (
    augmentation,
    catalog,
    labels,
    metrics,
    model,
    normalized,
    raw,
    reference,
)
from dagster_project.automation import JOBS, build_daily_update, build_release_sensor
from dagster_project.cluster import default_executor
from dagster_project.resources import resources_from_settings

ASSET_MODULES = [raw, reference, normalized, metrics, labels, model, augmentation, catalog]

all_assets = dg.load_assets_from_modules(ASSET_MODULES)
all_checks = dg.load_asset_checks_from_modules(ASSET_MODULES)


def build_definitions(
    resources: dict | None = None, settings: Settings | None = None
) -> dg.Definitions:
    """The definitions over `resources` (default: configured from `settings`, by default the
    validated environment; a bad variable fails the code location's load, naming it)."""
    settings = settings or Settings.from_env()
    return dg.Definitions(
        assets=all_assets,
        asset_checks=all_checks,
        jobs=JOBS,
        sensors=[build_release_sensor(settings)],
        schedules=[build_daily_update(settings)],
        resources=resources or resources_from_settings(settings),
        executor=default_executor(settings.dask_scheduler),
    )


defs = build_definitions()
