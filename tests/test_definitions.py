"""The code location in seconds, without materializing anything: the definitions load, and the
asset graph (keys, groups, kinds, partitioning, dependencies, checks, jobs, sensors, schedules)
equals its snapshot, `tests/data/asset_graph.json`.

A change to the graph must update the snapshot on purpose:
`UPDATE_GRAPH_SNAPSHOT=1 python -m pytest tests/test_definitions.py` rewrites it, and the
diff shows in review what changed.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import dagster as dg

import dagster_project.defs
from dagster_project.definitions import build_definitions

SNAPSHOT = Path(__file__).parent / "data" / "asset_graph.json"
UPDATE_VARIABLE = "UPDATE_GRAPH_SNAPSHOT"


def graph_snapshot(definitions: dg.Definitions) -> dict:
    """What a reviewer should see change: everything but descriptions and code."""
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitioned": node.partitions_def is not None,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "checks": sorted(
                check.name for check in graph.asset_check_keys if check.asset_key == key
            ),
        }
    jobs = {
        job.name: sorted(
            key.to_user_string()
            for key in job.selection.resolve(graph)  # type: ignore[union-attr]
        )
        for job in definitions.jobs or []  # every job is an asset job (define_asset_job)
    }
    return {
        "assets": assets,
        "jobs": jobs,
        "sensors": sorted(sensor.name for sensor in definitions.sensors or []),
        "schedules": sorted(schedule.name for schedule in definitions.schedules or []),
    }


def test_definitions_load():
    dg.Definitions.validate_loadable(build_definitions())


def test_asset_graph_equals_its_snapshot():
    current = graph_snapshot(build_definitions())
    if os.environ.get(UPDATE_VARIABLE):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, (
        f"the asset graph changed: if on purpose, rerun with {UPDATE_VARIABLE}=1 and commit "
        f"{SNAPSHOT.relative_to(Path.cwd()) if SNAPSHOT.is_relative_to(Path.cwd()) else SNAPSHOT}"
    )


def test_every_asset_has_a_group_a_kind_and_a_description():
    graph = build_definitions().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        assert node.group_name != "default", f"{name} has no group"
        assert node.kinds, f"{name} has no kind"
        assert (node.description or "").strip(), f"{name} has no description"


def test_each_defs_module_holds_the_assets_of_its_own_group():
    """A newcomer looks for an asset in the module named after its group."""
    defs_folder = Path(dagster_project.defs.__file__).parent
    misplaced = []
    for module_file in sorted(defs_folder.glob("*.py")):
        module = importlib.import_module(f"dagster_project.defs.{module_file.stem}")
        for name, value in vars(module).items():
            if isinstance(value, dg.AssetsDefinition) and value.keys:
                groups = set(value.group_names_by_key.values())
                if groups != {module_file.stem}:
                    misplaced.append(f"{module_file.name}:{name} is in group(s) {sorted(groups)}")
    assert not misplaced, misplaced
