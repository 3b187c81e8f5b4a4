"""Automation: keep the warehouse current as ARCHS4 publishes releases.

One reconciliation function compares the warehouse with the source and asks for what is
missing, one step at a time: register the newest release if the warehouse has not (new GSMs
become new sample blocks and dynamic partitions); then ingest and normalize every registered
block that lacks a committed file (or whose samples an older version wrote with fewer sample
fields), against the frozen target, never touching complete blocks; then refresh the
cross-sample assets (the gene-clustered copy, gene metrics and co-expression, labels, features
and predictions of new samples with the existing model, the catalog) once every block is
complete. The fitted assets (target, feature space, model) stay frozen; refitting them is an
explicit materialization.

The sensor, the daily schedule and `make update` all call it, so a crashed update is simply
resumed: whatever is missing is asked for again, and complete work is left alone. Each request
carries the version of the inputs it reads; the sensor stops asking for a run that has failed
`SENSOR_FAILED_RUNS_LIMIT` times on the same version (a block its blocking check rejects, a
refresh that cannot succeed), instead of launching it again at every tick, until an input
changes. `make update` and the UI always run what they are asked.
"""

from collections import Counter
from collections.abc import Callable

import dagster as dg

from archs4.blocks import block_plans, read_registry
from archs4.check_failures import has_failed_check, rejected_partitions
from archs4.datasets import (
    COEXPRESSION_TABLE,
    COUNTS_DATASET,
    EXPRESSION_DATASET,
    GENE_METRICS_TABLE,
    SAMPLES_DATASET,
)
from archs4.failures import one_line
from archs4.ingest import committed_blocks
from archs4.preflight import INPUT_ERRORS, RunInputs, check_inputs, inputs_version
from archs4.releases import is_registered, newest_release
from archs4.settings import Settings
from archs4.warehouse import Warehouse
from dagster_project.outputs import refreshed_assets
from dagster_project.partitions import SAMPLE_BLOCKS, sample_blocks
from dagster_project.resources import (
    Archs4SourceResource,
    GeneAnnotationResource,
    LabelSourcesResource,
    WarehouseResource,
    run_inputs,
)

REGISTER_JOB = "register_release"
BLOCK_JOB = "ingest_block"
REFRESH_JOB = "refresh_warehouse"
RAW_BLOCKS_JOB = "ingest_raw_blocks"
NORMALIZE_BLOCKS_JOB = "normalize_blocks"
BLOCK_DATASETS = (SAMPLES_DATASET, COUNTS_DATASET, EXPRESSION_DATASET)
BLOCK_ASSETS = ("samples", "counts", "expression")
INPUTS_TAG = "archs4/inputs"
PARTITION_TAG = "dagster/partition"
# Failed runs of one job (and block) on one version of the inputs after which the sensor stops
# asking for it: a crash or a transient error is retried twice, a rejected input is not retried
# at every tick for ever.
SENSOR_FAILED_RUNS_LIMIT = 3
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

register_job = dg.define_asset_job(
    REGISTER_JOB,
    selection=["source_release", "gene_lengths", "genes"],
    description="Register the newest release: new GSMs become sample blocks (partitions).",
)
block_job = dg.define_asset_job(
    BLOCK_JOB,
    selection=list(BLOCK_ASSETS),
    partitions_def=sample_blocks,
    description="Ingest one sample block and normalize it against the frozen target.",
)
refresh_job = dg.define_asset_job(
    REFRESH_JOB,
    selection=refreshed_assets(),
    description="Refresh the cross-sample assets over every block, fitted assets kept frozen.",
)
# The two block stages of `make run` (their blocks go to the run queue as one backfill); one
# block per run, its steps in the run's own process (no process per step to start).
raw_blocks_job = dg.define_asset_job(
    RAW_BLOCKS_JOB,
    selection=["samples", "counts"],
    partitions_def=sample_blocks,
    executor_def=dg.in_process_executor,
    description="Read one sample block of the release and write its samples and counts.",
)
normalize_blocks_job = dg.define_asset_job(
    NORMALIZE_BLOCKS_JOB,
    selection=["expression"],
    partitions_def=sample_blocks,
    executor_def=dg.in_process_executor,
    description="Normalize one committed counts block against the frozen target.",
)
JOBS = [register_job, block_job, refresh_job, raw_blocks_job, normalize_blocks_job]


def _in_progress(instance: dg.DagsterInstance, job_name: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=IN_PROGRESS)))


def _newest_committed(store: Warehouse, dataset: str) -> float:
    paths = store.fs.glob(f"{(store.root / dataset).path}/block=*/part.parquet")
    return max((store.fs.modified(p).timestamp() for p in paths), default=0.0)


def needs_refresh(store: Warehouse) -> bool:
    """True when a cross-sample output is missing, older than the newest expression block, or
    rejected by its blocking check."""
    newest_block = _newest_committed(store, EXPRESSION_DATASET)
    outputs = [
        store.table_path(GENE_METRICS_TABLE),
        store.table_path(COEXPRESSION_TABLE),
        store.catalog_path,
    ]
    return any(
        not store.exists(path) or store.fs.modified(path.path).timestamp() < newest_block
        for path in outputs
    ) or any(has_failed_check(store, asset) for asset in refreshed_assets())


def reconcile(
    instance: dg.DagsterInstance,
    inputs: RunInputs,
    log: Callable[[str], None] = print,
) -> tuple[list[dg.RunRequest], list[str]]:
    """The next runs that bring the warehouse up to date with the source, and the block
    partitions to register first. Empty when the warehouse is current.

    A new or changed release has every input checked before its registration is asked for
    (`archs4.preflight`), so invalid input raises here and no run starts."""
    store = inputs.warehouse
    if any(_in_progress(instance, job) for job in (RAW_BLOCKS_JOB, NORMALIZE_BLOCKS_JOB)):
        log("a `make run` is processing blocks: waiting for it")
        return [], []
    release = newest_release(inputs.source, inputs.species)
    if not is_registered(store, release):
        if _in_progress(instance, REGISTER_JOB):
            return [], []
        check_inputs(inputs)
        log(f"new or changed release {release}: registering it")
        tags = {"archs4/release": str(release), INPUTS_TAG: inputs_version(inputs)}
        return [dg.RunRequest(job_name=REGISTER_JOB, tags=tags)], []
    blocks = [plan.block for plan in block_plans(read_registry(store))]
    known = set(instance.get_dynamic_partitions(SAMPLE_BLOCKS))
    unregistered_partitions = [block for block in blocks if block not in known]
    complete = committed_blocks(store, BLOCK_DATASETS) - rejected_partitions(store, BLOCK_ASSETS)
    running = {run.tags.get(PARTITION_TAG) for run in _in_progress(instance, BLOCK_JOB)}
    tags = {INPUTS_TAG: inputs_version(inputs)}
    incomplete = [block for block in blocks if block not in complete]
    if incomplete:
        requests = [
            dg.RunRequest(job_name=BLOCK_JOB, partition_key=block, tags=tags)
            for block in incomplete
            if block not in running
        ]
        log(f"{len(incomplete)} blocks to ingest and normalize ({len(requests)} to start)")
        return requests, unregistered_partitions
    if needs_refresh(store) and not _in_progress(instance, REFRESH_JOB):
        log("every block is complete: refreshing the cross-sample assets")
        return [dg.RunRequest(job_name=REFRESH_JOB, tags=tags)], unregistered_partitions
    return [], unregistered_partitions


def within_failure_limit(
    instance: dg.DagsterInstance, requests: list[dg.RunRequest]
) -> tuple[list[dg.RunRequest], list[str]]:
    """The requests whose job (and block) has failed fewer than `SENSOR_FAILED_RUNS_LIMIT`
    times on the inputs' version they carry, and the names of the others."""
    failed: Counter[tuple[str, str | None]] = Counter()
    for version in {request.tags[INPUTS_TAG] for request in requests if INPUTS_TAG in request.tags}:
        runs = instance.get_runs(
            filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.FAILURE], tags={INPUTS_TAG: version}
            )
        )
        failed.update((run.job_name, run.tags.get(PARTITION_TAG)) for run in runs)
    kept: list[dg.RunRequest] = []
    exhausted: list[str] = []
    for request in requests:
        name = request.job_name or ""
        if failed[(name, request.partition_key)] >= SENSOR_FAILED_RUNS_LIMIT:
            exhausted.append(name + (f"[{request.partition_key}]" * bool(request.partition_key)))
        else:
            kept.append(request)
    return kept, exhausted


def build_release_sensor(settings: Settings) -> dg.SensorDefinition:
    """`release_sensor`, ticking every `ARCHS4_SENSOR_INTERVAL` seconds."""

    @dg.sensor(
        name="release_sensor",
        jobs=JOBS,
        minimum_interval_seconds=settings.sensor_interval,
        default_status=(
            dg.DefaultSensorStatus.STOPPED
            if settings.sensor_status == "stopped"
            else dg.DefaultSensorStatus.RUNNING
        ),
        description=(
            "Watches ARCHS4_SOURCE (a release file or a directory of them) and the warehouse: "
            "registers a new or changed release, ingests its new blocks, then refreshes the "
            "cross-sample assets; resumes whatever a crashed run left missing. Invalid inputs "
            "are refused before any run is asked for (the tick says why)."
        ),
    )
    def release_sensor(
        context: dg.SensorEvaluationContext,
        source: Archs4SourceResource,
        annotation: GeneAnnotationResource,
        label_sources: LabelSourcesResource,
        warehouse: WarehouseResource,
    ) -> dg.SensorResult | dg.SkipReason:
        inputs = run_inputs(source, annotation, label_sources, warehouse)
        try:
            requests, partitions = reconcile(context.instance, inputs, context.log.info)
        except INPUT_ERRORS as error:
            return dg.SkipReason(f"inputs refused, nothing run: {one_line(error)}")
        requests, exhausted = within_failure_limit(context.instance, requests)
        if exhausted:
            context.log.warning(
                f"{', '.join(exhausted)}: failed {SENSOR_FAILED_RUNS_LIMIT} times on these "
                "inputs, not asked for again until an input changes (see those runs' logs; "
                "`make run` or the UI runs them on request)"
            )
        if not requests and not partitions:
            return dg.SkipReason(
                f"{', '.join(exhausted)} failed {SENSOR_FAILED_RUNS_LIMIT} times on these "
                "inputs: waiting for an input to change"
                if exhausted
                else "the warehouse is current with the newest release"
            )
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=(
                [sample_blocks.build_add_request(partitions)] if partitions else []
            ),
        )

    return release_sensor


def build_daily_update(settings: Settings) -> dg.ScheduleDefinition:
    """`daily_update`, on the `ARCHS4_UPDATE_CRON` schedule."""

    @dg.schedule(
        name="daily_update",
        cron_schedule=settings.update_cron,
        job=register_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Daily release check (ARCHS4_UPDATE_CRON, default 03:00): registers the newest "
            "release when the warehouse has not; `release_sensor` then ingests its blocks and "
            "refreshes. Invalid inputs are refused before any run is asked for."
        ),
    )
    def daily_update(
        context: dg.ScheduleEvaluationContext,
        source: Archs4SourceResource,
        annotation: GeneAnnotationResource,
        label_sources: LabelSourcesResource,
        warehouse: WarehouseResource,
    ) -> list[dg.RunRequest] | dg.SkipReason:
        inputs = run_inputs(source, annotation, label_sources, warehouse)
        try:
            requests, _ = reconcile(context.instance, inputs, context.log.info)
        except INPUT_ERRORS as error:
            return dg.SkipReason(f"inputs refused, nothing run: {one_line(error)}")
        registrations = [request for request in requests if request.job_name == REGISTER_JOB]
        return registrations or dg.SkipReason("the newest release is registered already")

    return daily_update
