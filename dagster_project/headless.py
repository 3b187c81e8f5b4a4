"""Headless runs, recorded in the same Dagster instance (`DAGSTER_HOME`) the UI shows.

`run` (`make run`) brings the whole asset graph up to date, stage by stage
(`dagster_project.plan`): block-partitioned layers one block per run, as a backfill from the UI
would, unpartitioned assets one run each; only what is missing or stale runs, so an
interrupted run resumes and a current warehouse is left as it is (`--rebuild`, `make rebuild`,
recomputes everything). Each stage and block prints a progress line (rate, ETA) unless
`--quiet`. With no `ARCHS4_SOURCE`, the embedded demo dataset is generated first under
`data/demo/`.

The definitions module is imported only once the settings are valid: it builds the code
location at import, so a bad variable would otherwise end in a traceback instead of one line.

`update` (`make update`) runs update cycles until the warehouse is current: each asks the same
reconciliation the sensor and the schedule use (`automation.reconcile`) for the next runs and
executes them in this process.
"""

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from archs4.blocks import block_plans, read_registry
from archs4.budget import default_budget_bytes, workers_within_budget
from archs4.failures import failure_line
from archs4.ingest import stored_gene_count
from archs4.preflight import INPUT_ERRORS, check_inputs
from archs4.process_exit import exit_without_teardown
from archs4.progress import Progress, duration
from archs4.settings import DEMO_DIR, DEMO_SOURCE, Settings, SettingsError
from dagster_project.automation import NORMALIZE_BLOCKS_JOB, RAW_BLOCKS_JOB, reconcile
from dagster_project.block_queue import run_blocks_on_the_queue
from dagster_project.partitions import SAMPLE_BLOCKS
from dagster_project.plan import (
    Stage,
    WarehouseState,
    asset_is_pending,
    blocks_to_run,
    plan_stages,
)
from dagster_project.resources import resources_from_settings, run_inputs
from dagster_project.run_log import run_log, step_error_line


class PipelineError(RuntimeError):
    """A stage failed or one of its blocking checks did; the message says which and why."""


def _run_config(log_level: str) -> dict:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


def _materialize(
    instance: dg.DagsterInstance,
    resources: dict,
    keys: Sequence[str],
    partition_key: str | None = None,
    *,
    log_level: str = "INFO",
    config: dict | None = None,
) -> None:
    from dagster_project.definitions import assets_and_checks

    result = dg.materialize(
        assets_and_checks(),
        selection=dg.AssetSelection.assets(*keys),
        partition_key=partition_key,
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config={**_run_config(log_level), **(config or {})},
    )
    where = f" (block {partition_key})" if partition_key else ""
    _raise_on_failure(result, f"materializing {', '.join(keys)}{where}")


def _raise_on_failure(result: dg.ExecuteInProcessResult, what: str) -> None:
    failed_checks = [
        f"{e.asset_key.to_user_string()}.{e.check_name}: {e.description}"
        for e in (
            event.asset_check_evaluation_data
            for event in result.all_events
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
        )
        if not e.passed
    ]
    if not result.success or failed_checks:
        details = "; ".join(failed_checks) or _first_failure(result)
        raise PipelineError(f"{what} failed: {details}")


def _first_failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        error = event.step_failure_data.error if event.is_step_failure else None
        if error is not None:
            return f"{event.step_key}: {step_error_line(error)}"
    return "see the run's logs in the Dagster UI"


def ensure_demo_source(settings: Settings, say: Callable[[str], None] = print) -> None:
    """Generate the embedded demo dataset when no source is configured and none exists yet."""
    if not settings.is_demo or DEMO_SOURCE.exists():
        return
    from archs4.demo_data import write_demo_dataset

    say(f"ARCHS4_SOURCE is not set: generating the demo dataset in {DEMO_DIR} ...")
    write_demo_dataset(DEMO_DIR)


def graph_stages() -> list[Stage]:
    """The stages of the whole asset graph (`dagster_project.plan`)."""
    return plan_stages(_asset_graph())


def _asset_graph() -> AssetGraph:
    from dagster_project.definitions import graph_definitions

    return AssetGraph.from_assets(graph_definitions().assets or [])


def _warehouse_state(resources: dict) -> WarehouseState:
    graph = _asset_graph()
    labels = resources["label_sources"].directory
    return WarehouseState(
        store=resources["warehouse"].get(),
        release=resources["source"].release_path(),
        inputs={
            "source": resources["source"].release_path(),
            "gtf": Path(resources["annotation"].path),
            "labels": Path(labels) if labels else None,
        },
        parents={
            key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
            for key in graph.get_all_asset_keys()
        },
    )


@dataclass(frozen=True)
class RunOptions:
    """How `make run` goes: the Dagster log level, where progress lines go, and whether to
    recompute everything (`make rebuild`) instead of only what is missing or stale."""

    log_level: str = "INFO"
    say: Callable[[str], None] = lambda _line: None
    rebuild: bool = False
    workers: int = 1
    memory_budget_bytes: int = field(default_factory=default_budget_bytes)


def _run_block_stage(
    instance: dg.DagsterInstance, resources: dict, stage: Stage, title: str, options: RunOptions
) -> None:
    store = resources["warehouse"].get()
    plans = {plan.block: plan for plan in block_plans(read_registry(store))}
    known = set(instance.get_dynamic_partitions(SAMPLE_BLOCKS))
    instance.add_dynamic_partitions(SAMPLE_BLOCKS, [b for b in plans if b not in known])
    blocks = blocks_to_run(stage, store, options.rebuild)
    if not blocks:
        options.say(f"{title} {', '.join(stage.assets)}: all {len(plans)} blocks committed")
        return
    progress = Progress(
        f"{title} {', '.join(stage.assets)}: block",
        total=len(blocks),
        report=options.say,
        total_units=sum(plans[b].n_samples for b in blocks),
    )
    workers = workers_within_budget(
        options.workers,
        options.memory_budget_bytes,
        stored_gene_count(store),
        max(plans[b].n_samples for b in blocks),
    )
    # Each queued run is a process that loads the code location (~5-10 s on 2 cores), so the
    # queue pays only when every worker gets several blocks.
    if workers > 1 and len(blocks) >= QUEUE_BLOCKS_PER_WORKER * workers:
        options.say(f"{title}: {len(blocks)} blocks on the run queue, {workers} at a time")
        run_blocks_on_the_queue(
            instance,
            BLOCK_STAGE_JOBS[frozenset(stage.assets)],
            blocks,
            workers,
            lambda block: progress.step(plans[block].n_samples, block),
        )
        return
    for block in blocks:
        _materialize(instance, resources, stage.assets, block, log_level=options.log_level)
        progress.step(plans[block].n_samples, block)


QUEUE_BLOCKS_PER_WORKER = 4
BLOCK_STAGE_JOBS = {
    frozenset({"samples", "counts"}): RAW_BLOCKS_JOB,
    frozenset({"expression"}): NORMALIZE_BLOCKS_JOB,
}


def _run_asset_stage(
    instance: dg.DagsterInstance, resources: dict, stage: Stage, title: str, options: RunOptions
) -> None:
    state = _warehouse_state(resources)
    current = []
    for number, name in enumerate(stage.assets, start=1):
        if not options.rebuild and not asset_is_pending(name, state):
            current.append(name)
            continue
        started = time.perf_counter()
        config = RECOMPUTE_TARGET if options.rebuild and name == "qn_target" else {}
        _materialize(instance, resources, [name], log_level=options.log_level, config=config)
        elapsed = duration(time.perf_counter() - started)
        options.say(f"{title} {name} ({number}/{len(stage.assets)}): done in {elapsed}")
    if current:
        options.say(f"{title}: {len(current)} of {len(stage.assets)} assets current")


RECOMPUTE_TARGET = {"ops": {"qn_target": {"config": {"recompute": True}}}}


def materialize_stages(
    instance: dg.DagsterInstance,
    resources: dict,
    stages: Sequence[Stage],
    options: RunOptions | None = None,
) -> list[str]:
    """Run what `stages` still have to do, in order; returns every registered block key."""
    options = options or RunOptions()
    for number, stage in enumerate(stages, start=1):
        title = f"stage {number}/{len(stages)}"
        run = _run_block_stage if stage.per_block else _run_asset_stage
        run(instance, resources, stage, title, options)
    store = resources["warehouse"].get()
    return [plan.block for plan in block_plans(read_registry(store))]


def materialize_everything(
    instance: dg.DagsterInstance, resources: dict, options: RunOptions | None = None
) -> list[str]:
    """Bring every asset of the graph up to date (or recompute all with `rebuild`); returns
    the block keys."""
    return materialize_stages(instance, resources, graph_stages(), options)


MAX_UPDATE_CYCLES = 6  # register, blocks, refresh: three when nothing fails


def update_warehouse(
    instance: dg.DagsterInstance, resources: dict, options: RunOptions | None = None
) -> list[str]:
    """Run update cycles until the warehouse is current; returns what ran."""
    options = options or RunOptions()
    from dagster_project.definitions import build_definitions

    definitions = build_definitions(resources)
    inputs = run_inputs(
        resources["source"],
        resources["annotation"],
        resources["label_sources"],
        resources["warehouse"],
    )
    ran: list[str] = []
    for cycle in range(1, MAX_UPDATE_CYCLES + 1):
        requests, partitions = reconcile(instance, inputs, options.say)
        if partitions:
            instance.add_dynamic_partitions(SAMPLE_BLOCKS, partitions)
        if not requests:
            return ran
        progress = Progress(f"update cycle {cycle}: run", len(requests), options.say, "runs")
        for request in requests:
            job = definitions.resolve_job_def(request.job_name or "")
            result = job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                tags=dict(request.tags),
                raise_on_error=False,
                run_config=_run_config(options.log_level),
            )
            label = request.job_name + (
                f"[{request.partition_key}]" if request.partition_key else ""
            )
            _raise_on_failure(result, label)
            ran.append(label)
            progress.step(label=label)
    raise PipelineError(f"the warehouse is not current after {MAX_UPDATE_CYCLES} update cycles")


def _run_command(command: str, settings: Settings, options: RunOptions) -> str:
    """Check every input, then run `command`; the line to print when it succeeds."""
    resources = resources_from_settings(settings)
    check_inputs(
        run_inputs(
            resources["source"],
            resources["annotation"],
            resources["label_sources"],
            resources["warehouse"],
        )
    )
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        if command == "update":
            ran = update_warehouse(instance, resources, options)
            return "the warehouse is current" + (f"; ran {len(ran)} runs" if ran else "")
        blocks = materialize_everything(instance, resources, options)
    root = settings.warehouse
    return (
        f"\nBuilt the warehouse at {root} in {time.perf_counter() - started:.0f} s: "
        f"{len(blocks)} sample blocks; catalog {root}/warehouse.duckdb\n"
        "Try:\n"
        '  .venv/bin/archs4 sql "SELECT count(*) AS n_rows, sum(count) AS total FROM counts"\n'
        '  .venv/bin/archs4 sql "SELECT gsm, series_id, source_name FROM samples LIMIT 5"'
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`make run` / `make update`: one line on standard error on failure, the detail (and every
    Dagster log line) in a run log under ARCHS4_LOG_DIR."""
    parser = argparse.ArgumentParser(prog="python -m dagster_project.headless")
    parser.add_argument(
        "command",
        choices=["run", "update"],
        help="run: bring every asset up to date (only what is missing or stale); "
        "update: register a new release and refresh incrementally",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--rebuild", action="store_true", help="run: recompute everything, fitted assets too"
    )
    arguments = parser.parse_args(argv)
    command = arguments.command
    name = f"archs4 {command}"
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(failure_line(name, error, Settings.log_dir_from_env()), file=sys.stderr)
        return 2
    with run_log(settings.log_dir, command, quiet=arguments.quiet) as log:
        options = RunOptions(
            settings.log_level,
            log.say,
            arguments.rebuild,
            settings.worker_count,
            settings.memory_budget_bytes,
        )
        try:
            ensure_demo_source(settings, log.say)
            message = _run_command(command, settings, options)
        except INPUT_ERRORS as error:
            log.terminal.write(log.failure(name, error) + "\n")
            return 2
        except Exception as error:  # a failed stage or check, or a bug: one line, detail logged
            log.terminal.write(log.failure(name, error) + "\n")
            return 1
        log.terminal_out.write(f"{message}\n(run log: {log.path})\n")
    return 0


if __name__ == "__main__":
    exit_without_teardown(main())
