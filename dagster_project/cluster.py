"""Running the asset steps on a Dask cluster.

dagster-dask's executor hands each step's arguments to `Client.submit`, whose task parsing walks
every tuple it is given. A block-partitioned run carries a `KeyRangesPartitionsSubset`, a Dagster
record that refuses iteration, so that executor fails on every block run (dagster-dask 0.29.27
with dask 2024.10 to 2026.8). This executor submits the same worker function
(`dagster_dask.executor.query_on_dask_worker`) with the arguments sealed in one object Dask does
not look into, and otherwise schedules as dagster-dask does: one Dask task per step, the step's
upstream steps passed as futures so Dask orders them, events sent back to the run. Unlike
dagster-dask, a step whose upstream step failed is not executed, so a failed blocking asset
check stops what depends on it, as under the multiprocess executor.

The cluster is an existing scheduler (`scheduler_address`, for example one started by
`dask scheduler`, dask-jobqueue or dask-kubernetes) or, without one, a local cluster started
for the run. Workers need this project installed, the same `ARCHS4_*` environment and
`DAGSTER_HOME`, and the warehouse on storage they all reach.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import dask.distributed
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.state import KnownExecutionState
from dagster._core.execution.retries import RetryMode
from dagster._core.instance.ref import InstanceRef
from dagster_dask.executor import get_dask_resource_requirements, query_on_dask_worker

SCHEDULER_ENV = "ARCHS4_DASK_SCHEDULER"


@dataclass(frozen=True)
class StepRequest:
    """Everything a worker needs to execute one step; not a tuple, so Dask leaves it whole."""

    job: ReconstructableJob
    run: dg.DagsterRun
    run_config: dict[str, Any]
    step_key: str
    instance: InstanceRef
    known_state: KnownExecutionState | None


@dataclass(frozen=True)
class StepOutcome:
    """A step's events, the worker it ran on, whether it succeeded, and the upstream steps
    that did not (when it was not run because of them)."""

    step_key: str
    events: Sequence[DagsterEvent]
    worker: str
    succeeded: bool
    failed_upstream: Sequence[str] = ()


def execute_step(upstream: list[StepOutcome], request: StepRequest) -> StepOutcome:
    """Run on a worker: execute one step, unless a step it depends on did not succeed (a
    failed blocking check, for one), in which case it is not executed, as the multiprocess
    executor abandons it."""
    worker = dask.distributed.get_worker().address
    failed_upstream = [outcome.step_key for outcome in upstream if not outcome.succeeded]
    if failed_upstream:
        return StepOutcome(request.step_key, [], worker, False, failed_upstream)
    events = list(
        query_on_dask_worker(
            upstream,
            request.job,
            request.run,
            request.run_config,
            [request.step_key],
            request.instance,
            request.known_state,
        )
    )
    failed = any(event.is_step_failure for event in events)
    return StepOutcome(request.step_key, events, worker, succeeded=not failed)


class DaskClusterExecutor(dg.Executor):
    """Submits every step of a run to a Dask cluster, in dependency order."""

    def __init__(self, scheduler_address: str | None, n_workers: int) -> None:
        self.scheduler_address = scheduler_address
        self.n_workers = n_workers

    @property
    def retries(self) -> RetryMode:
        return RetryMode.DISABLED

    def _cluster(self) -> str | dask.distributed.LocalCluster:
        if self.scheduler_address:
            return self.scheduler_address
        return dask.distributed.LocalCluster(n_workers=self.n_workers, threads_per_worker=1)

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        if not plan_context.instance.is_persistent:
            raise dg.DagsterInvariantViolationError(
                "the Dask executor needs a persistent Dagster instance (set DAGSTER_HOME): "
                "workers record their events in it"
            )
        with dask.distributed.Client(self._cluster()) as client:
            futures: dict[str, dask.distributed.Future] = {}
            for level in execution_plan.get_steps_to_execute_by_level():
                for step in level:
                    upstream = [
                        futures[key]
                        for step_input in step.step_inputs
                        for key in step_input.dependency_keys
                    ]
                    request = StepRequest(
                        job=plan_context.reconstructable_job,
                        run=plan_context.dagster_run,
                        run_config=dict(plan_context.run_config),
                        step_key=step.key,
                        instance=plan_context.instance.get_ref(),
                        known_state=execution_plan.known_state,
                    )
                    futures[step.key] = client.submit(
                        execute_step,
                        upstream,
                        request,
                        key=f"{plan_context.run_id}.{step.key}",
                        resources=get_dask_resource_requirements(step.tags),
                    )
            for _, outcome in dask.distributed.as_completed(
                list(futures.values()), with_results=True
            ):
                if outcome.failed_upstream:
                    step = execution_plan.get_step_by_key(outcome.step_key)
                    plan_context.for_step(step).log.error(
                        f"Dependencies for step {outcome.step_key} failed: "
                        f"{list(outcome.failed_upstream)}. Not executing."
                    )
                    continue
                yield DagsterEvent.engine_event(
                    plan_context,
                    f"Step {outcome.step_key} ran on Dask worker {outcome.worker}",
                    EngineEventData(metadata={"dask_worker": outcome.worker}),
                )
                yield from outcome.events


@dg.executor(
    name="dask_cluster",
    config_schema={
        "scheduler_address": dg.Field(
            dg.StringSource,
            is_required=False,
            description="Address of a running Dask scheduler (tcp://host:8786); without it a "
            "local cluster is started for the run.",
        ),
        "n_workers": dg.Field(
            int, default_value=2, description="Workers of the local cluster (one thread each)."
        ),
    },
    requirements=dg.multiple_process_executor_requirements(),
)
def dask_cluster_executor(init_context: dg.InitExecutorContext) -> DaskClusterExecutor:
    """Runs each step as a task on a Dask cluster (see `dagster_project.cluster`)."""
    config = init_context.executor_config
    return DaskClusterExecutor(config.get("scheduler_address"), config["n_workers"])


def default_executor(scheduler_address: str | None) -> dg.ExecutorDefinition:
    """The Dask executor on the scheduler at `scheduler_address` (the setting
    `ARCHS4_DASK_SCHEDULER`), else multiprocess."""
    if scheduler_address:
        return dask_cluster_executor.configured({"scheduler_address": scheduler_address})
    return dg.multiprocess_executor
