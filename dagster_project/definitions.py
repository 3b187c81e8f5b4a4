"""The code location: every asset, check, resource and automation of the warehouse."""

import dagster as dg

from dagster_project import catalog, labels, metrics, model, normalized, raw, reference
from dagster_project.resources import resources_from_env

ASSET_MODULES = [raw, reference, normalized, metrics, labels, model, catalog]

all_assets = dg.load_assets_from_modules(ASSET_MODULES)
all_checks = dg.load_asset_checks_from_modules(ASSET_MODULES)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    resources=resources_from_env(),
    executor=dg.multiprocess_executor,
)
