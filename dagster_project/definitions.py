"""The code location: every asset, check, resource, job, sensor and schedule of the warehouse."""

import os

import dagster as dg

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
from dagster_project.automation import JOBS, daily_update, release_sensor
from dagster_project.cluster import default_executor
from dagster_project.resources import resources_from_env

ASSET_MODULES = [raw, reference, normalized, metrics, labels, model, augmentation, catalog]

all_assets = dg.load_assets_from_modules(ASSET_MODULES)
all_checks = dg.load_asset_checks_from_modules(ASSET_MODULES)


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    """The definitions over `resources` (default: configured from the environment)."""
    return dg.Definitions(
        assets=all_assets,
        asset_checks=all_checks,
        jobs=JOBS,
        sensors=[release_sensor],
        schedules=[daily_update],
        resources=resources or resources_from_env(),
        executor=default_executor(dict(os.environ)),
    )


defs = build_definitions()
