"""Blocking checks that failed, recorded in the warehouse beside the data they rejected.

An asset writes its files before its blocking checks run, so a file alone does not say the
asset passed. A failed check leaves a small JSON record under `checks/failed/`, and a passing
one removes it. `make run`'s plan (`dagster_project.plan`) treats an asset, or one block of a
block-partitioned asset, with a record as pending, whichever Dagster instance ran the check: a
rehearsal resumed with a fresh instance, or a warehouse moved to a cluster, keeps the record.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from upath import UPath

from archs4.datasets import FAILED_CHECKS_DIR
from archs4.warehouse import Warehouse

UNPARTITIONED = "all"  # the partition directory of an unpartitioned asset's records


def _record_path(store: Warehouse, asset: str, partition: str | None, check: str) -> UPath:
    return store.root / FAILED_CHECKS_DIR / asset / (partition or UNPARTITIONED) / f"{check}.json"


def record_check_outcome(
    store: Warehouse,
    asset: str,
    check: str,
    *,
    passed: bool,
    description: str = "",
    partition: str | None = None,
) -> None:
    """Write the record of a failed check, or remove the record once the check passes."""
    target = _record_path(store, asset, partition, check)
    if passed:
        if store.exists(target):
            store.fs.rm(target.path)
        return
    record = {
        "asset": asset,
        "partition": partition,
        "check": check,
        "description": description,
        "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    store.write_json(record, target)


def failed_partitions(store: Warehouse, asset: str) -> set[str]:
    """Partitions (block keys) of `asset` with a recorded failed check."""
    pattern = f"{(store.root / FAILED_CHECKS_DIR / asset).path}/*/*.json"
    return {path.rstrip("/").split("/")[-2] for path in store.fs.glob(pattern)}


def rejected_partitions(store: Warehouse, assets: Iterable[str]) -> set[str]:
    """Partitions with a recorded failed check of any of `assets`."""
    return set().union(*(failed_partitions(store, asset) for asset in assets))


def has_failed_check(store: Warehouse, asset: str, partition: str | None = None) -> bool:
    """True when a check of `asset` (of one of its partitions) failed and has not passed since."""
    return (partition or UNPARTITIONED) in failed_partitions(store, asset)
