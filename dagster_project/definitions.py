"""The code location: the `defs/` folder (every asset, check, job, sensor and schedule) with the
resources and the executor, merged here and nowhere else.

`dg.load_from_defs_folder` finds the project through `[tool.dg]` in the checkout's
pyproject.toml. A regular install (the workers of a cluster) has no pyproject.toml, so there the
same component tree is built from the `defs` module directly.
"""

from functools import cache
from pathlib import Path

import dagster as dg

from archs4.paths import IS_CHECKOUT, PROJECT_ROOT
from archs4.settings import Settings
from dagster_project import defs as defs_folder
from dagster_project.cluster import default_executor
from dagster_project.resources import resources_from_settings


@cache
def graph_definitions() -> dg.Definitions:
    """The `defs/` folder's definitions, without resources or executor."""
    if IS_CHECKOUT:
        return dg.load_from_defs_folder(path_within_project=PROJECT_ROOT)
    package_root = Path(defs_folder.__file__).resolve().parent.parent
    return dg.ComponentTree.from_module(defs_folder, package_root).build_defs()


def assets_and_checks() -> list:
    """Every asset and asset check, as `dg.materialize` takes them."""
    definitions = graph_definitions()
    return [*(definitions.assets or []), *(definitions.asset_checks or [])]


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    """The definitions over `resources` (default: configured from the validated environment; a
    bad variable fails the code location's load, naming it)."""
    settings = Settings.from_env()
    return dg.Definitions.merge(
        graph_definitions(),
        dg.Definitions(
            resources=resources or resources_from_settings(settings),
            executor=default_executor(settings.dask_scheduler),
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
