"""Headless runs, recorded in the same Dagster instance (`DAGSTER_HOME`) the UI shows.

`run` (`make run`) materializes the whole asset graph, stage by stage: partitioned layers one
block per run, as a backfill from the UI would, unpartitioned layers once after the blocks they
read. With no `ARCHS4_SOURCE`, the embedded demo dataset is generated first under `data/demo/`.

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

import dagster as dg

from archs4.failures import failure_line, one_line
from archs4.preflight import INPUT_ERRORS, check_inputs
from archs4.process_exit import exit_without_teardown
from archs4.settings import DEMO_DIR, DEMO_SOURCE, Settings, SettingsError
from dagster_project.automation import reconcile
from dagster_project.partitions import SAMPLE_BLOCKS
from dagster_project.resources import resources_from_settings, run_inputs
from dagster_project.run_log import run_log

# Stages in dependency order: unpartitioned assets, or block-partitioned ones run per block.
STAGES: list[tuple[list[str], bool]] = [
    (["source_release", "gene_lengths", "genes"], False),
    (["samples", "counts"], True),
    (["qn_target"], False),
    (["expression"], True),
    (
        [
            "expression_by_gene",
            "gene_metrics",
            "sample_labels",
            "sample_splits",
            "feature_space",
            "sample_features",
            "label_classifier",
            "gan_model",
            "synthetic_samples",
            "augmented_training_set",
            "rf_gan_augmented",
            "model_evaluation",
            "gan_evaluation",
            "predictions",
            "warehouse_catalog",
        ],
        False,
    ),
]


class PipelineError(RuntimeError):
    """A stage failed or one of its blocking checks did; the message says which and why."""


def _run_config(log_level: str) -> dict:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


def _materialize(
    instance: dg.DagsterInstance,
    resources: dict,
    keys: Sequence[str],
    partition_key: str | None = None,
    log_level: str = "INFO",
) -> None:
    from dagster_project.definitions import all_assets, all_checks

    result = dg.materialize(
        [*all_assets, *all_checks],
        selection=dg.AssetSelection.assets(*keys),
        partition_key=partition_key,
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=_run_config(log_level),
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
        while error is not None and error.cause is not None:
            error = error.cause  # the user's exception, under Dagster's wrapper
        if error is not None:
            return f"{event.step_key}: {one_line(error.message)}"
    return "see the run's logs in the Dagster UI"


def ensure_demo_source(settings: Settings, say: Callable[[str], None] = print) -> None:
    """Generate the embedded demo dataset when no source is configured and none exists yet."""
    if not settings.is_demo or DEMO_SOURCE.exists():
        return
    from archs4.demo_data import write_demo_dataset

    say(f"ARCHS4_SOURCE is not set: generating the demo dataset in {DEMO_DIR} ...")
    write_demo_dataset(DEMO_DIR)


def materialize_stages(
    instance: dg.DagsterInstance,
    resources: dict,
    stages: Sequence[tuple[list[str], bool]],
    log_level: str = "INFO",
) -> list[str]:
    """Materialize `stages` (a prefix of `STAGES`) in order; returns the block keys."""
    blocks: list[str] = []
    for keys, per_block in stages:
        if not per_block:
            _materialize(instance, resources, keys, log_level=log_level)
            continue
        blocks = sorted(instance.get_dynamic_partitions(SAMPLE_BLOCKS))
        for block in blocks:
            _materialize(instance, resources, keys, partition_key=block, log_level=log_level)
    return blocks


def materialize_everything(
    instance: dg.DagsterInstance, resources: dict, log_level: str = "INFO"
) -> list[str]:
    """Materialize every layer, stage by stage; returns the block keys."""
    return materialize_stages(instance, resources, STAGES, log_level)


MAX_UPDATE_CYCLES = 6  # register, blocks, refresh: three when nothing fails


def update_warehouse(
    instance: dg.DagsterInstance, resources: dict, log_level: str = "INFO"
) -> list[str]:
    """Run update cycles until the warehouse is current; returns what ran."""
    from dagster_project.definitions import build_definitions

    definitions = build_definitions(resources)
    inputs = run_inputs(
        resources["source"],
        resources["annotation"],
        resources["label_sources"],
        resources["warehouse"],
    )
    ran: list[str] = []
    for _ in range(MAX_UPDATE_CYCLES):
        requests, partitions = reconcile(instance, inputs)
        if partitions:
            instance.add_dynamic_partitions(SAMPLE_BLOCKS, partitions)
        if not requests:
            return ran
        for request in requests:
            job = definitions.resolve_job_def(request.job_name or "")
            result = job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                tags=dict(request.tags),
                raise_on_error=False,
                run_config=_run_config(log_level),
            )
            label = request.job_name + (
                f"[{request.partition_key}]" if request.partition_key else ""
            )
            _raise_on_failure(result, label)
            ran.append(label)
    raise PipelineError(f"the warehouse is not current after {MAX_UPDATE_CYCLES} update cycles")


def _run_command(command: str, settings: Settings) -> str:
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
            ran = update_warehouse(instance, resources, settings.log_level)
            return "the warehouse is current" + (f"; ran {', '.join(ran)}" if ran else "")
        blocks = materialize_everything(instance, resources, settings.log_level)
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
        help="run: materialize the whole asset graph; update: bring it up to date incrementally",
    )
    command = parser.parse_args(argv).command
    name = f"archs4 {command}"
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(failure_line(name, error, Settings.log_dir_from_env()), file=sys.stderr)
        return 2
    with run_log(settings.log_dir, command) as log:
        try:
            ensure_demo_source(settings, log.say)
            message = _run_command(command, settings)
        except INPUT_ERRORS as error:
            log.terminal.write(log.failure(name, error) + "\n")
            return 2
        except Exception as error:  # a failed stage or check, or a bug: one line, detail logged
            log.terminal.write(log.failure(name, error) + "\n")
            return 1
        log.say(f"{message}\n(run log: {log.path})")
    return 0


if __name__ == "__main__":
    exit_without_teardown(main())
