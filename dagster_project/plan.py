"""The plan of `make run`: the asset graph in stages, and what each stage still has to do.

The stages come from the definitions, not from a list kept by hand: in topological order,
alternately every unpartitioned asset and every block-partitioned asset whose upstream assets are
in earlier stages. What a stage has to do comes from the warehouse itself, so an interrupted run
(`kill -9` included) resumes where it stopped and a current warehouse is left untouched:

- a block-partitioned asset is pending for every registered block that lacks its committed file
  (blocks are immutable once written, as in `make update`), or whose `samples` file an older
  version wrote with fewer sample fields (`archs4.ingest.committed_blocks`);
- `source_release` is pending until the configured release is the registered one;
- a fitted (frozen) asset is pending only while one of its files is missing: refitting is
  explicit (`make rebuild`), as in `make update`;
- an asset, or a block of one, whose blocking check failed is pending until the check passes
  (`archs4.check_failures`): its file was written before the check rejected it;
- any other asset is pending when one of its files is missing, or older than the newest file of
  an upstream asset or of the external input it reads (the GTF, the label lists).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from archs4.blocks import block_plans, read_registry
from archs4.check_failures import has_failed_check, rejected_partitions
from archs4.ingest import committed_blocks
from archs4.releases import is_registered
from archs4.warehouse import Warehouse
from dagster_project.outputs import ASSET_OUTPUTS, AssetOutputs


@dataclass(frozen=True)
class Stage:
    """Assets materialized together: unpartitioned ones in one run each, or block-partitioned
    ones in one run per block."""

    assets: tuple[str, ...]
    per_block: bool


def plan_stages(asset_graph: AssetGraph) -> list[Stage]:
    """Every asset of the graph, in stages that respect its dependencies."""
    remaining = [key.to_user_string() for key in asset_graph.toposorted_asset_keys]
    parents = {
        key.to_user_string(): {p.to_user_string() for p in asset_graph.get(key).parent_keys}
        for key in asset_graph.toposorted_asset_keys
    }
    partitioned = {
        key.to_user_string() for key in asset_graph.toposorted_asset_keys
        if asset_graph.get(key).is_partitioned
    }  # fmt: skip
    done: set[str] = set()
    stages: list[Stage] = []
    while remaining:
        for per_block in (False, True):
            ready = []
            for name in remaining:  # topological order: a parent is seen before its children
                if (name in partitioned) == per_block and parents[name] <= done | set(ready):
                    ready.append(name)
            if ready:
                stages.append(Stage(tuple(ready), per_block))
                done.update(ready)
                remaining = [name for name in remaining if name not in done]
    return stages


@dataclass(frozen=True)
class WarehouseState:
    """What the plan compares: the warehouse, the release it should hold, the external inputs
    (name -> path, as `AssetOutputs.inputs` names them) and the upstream assets of each asset."""

    store: Warehouse
    release: Path
    inputs: dict[str, Path | None]
    parents: dict[str, set[str]]

    def modified(self, path: str) -> float | None:
        """Modification time of a file under the warehouse root, or None when it is absent."""
        target = self.store.root / path
        if not self.store.exists(target):
            return None
        return self.store.fs.modified(target.path).timestamp()

    def newest_of(self, asset: str) -> float:
        """The newest file an asset has written (0 when none)."""
        outputs = ASSET_OUTPUTS[asset]
        times = [self.modified(path) for path in outputs.files]
        for dataset in outputs.block_datasets:
            pattern = f"{(self.store.root / dataset).path}/block=*/part.parquet"
            times += [self.store.fs.modified(p).timestamp() for p in self.store.fs.glob(pattern)]
        return max((t for t in times if t is not None), default=0.0)

    def input_modified(self, name: str) -> float:
        path = self.inputs.get(name)
        if path is None or not path.exists():
            return 0.0
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        return max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)


def asset_is_pending(name: str, state: WarehouseState) -> bool:
    """True when the unpartitioned asset `name` has to be (re)materialized (module docstring)."""
    outputs: AssetOutputs = ASSET_OUTPUTS[name]
    if name == "source_release" and not is_registered(state.store, state.release):
        return True
    if has_failed_check(state.store, name):
        return True
    times = [state.modified(path) for path in outputs.files]
    if any(t is None for t in times):
        return True
    if outputs.frozen or not times:
        return False
    upstream = [state.newest_of(parent) for parent in state.parents[name]]
    upstream += [state.input_modified(source) for source in outputs.inputs]
    return min(t for t in times if t is not None) < max(upstream, default=0.0)


def pending_blocks(stage: Stage, store: Warehouse) -> list[str]:
    """Registered blocks that lack a committed (and current) file of any asset of `stage`, or
    whose file a blocking check rejected."""
    registered = [plan.block for plan in block_plans(read_registry(store))]
    datasets = [d for name in stage.assets for d in ASSET_OUTPUTS[name].block_datasets]
    committed = committed_blocks(store, datasets) - rejected_partitions(store, stage.assets)
    return [block for block in registered if block not in committed]


def blocks_to_run(stage: Stage, store: Warehouse, rebuild: bool = False) -> list[str]:
    """The blocks a per-block stage has to run: the pending ones, or every one to rebuild."""
    if rebuild:
        return [plan.block for plan in block_plans(read_registry(store))]
    return pending_blocks(stage, store)
