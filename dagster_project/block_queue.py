"""Block stages on all cores, through Dagster's own run queue.

Blocks are independent partitions, so a stage's pending blocks are submitted as one Dagster
backfill (`dagster job backfill`), one run per block, and the Dagster daemon's run queue
launches them. The block assets share the pool `sample_blocks`; its limit, `ARCHS4_WORKERS`
bounded by the memory budget (`archs4.budget`), is the number of blocks in progress at once,
and the instance's run-granularity pools keep the other runs queued (not started and idle).
The same queue serves backfills launched from the UI. `make run` starts the daemon for the
stage (the UI's `dagster dev` runs its own), follows the runs to the end and reports each block.

Each run is a process that loads the code location (a few seconds), so the queue pays only when
blocks outnumber workers; otherwise the stage runs in-process, block after block.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg

from archs4.paths import PROJECT_ROOT
from dagster_project.run_log import step_error_line

POOL = "sample_blocks"
BACKFILL_TAG = "dagster/backfill"
POLL_SECONDS = 1.0
DAEMON_STOP_SECONDS = 30
FINISHED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


class BlockRunError(RuntimeError):
    """A block run of the queue failed; the message names the block and the reason."""


def _command(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _instance_environment(instance: dg.DagsterInstance) -> dict[str, str]:
    """This process's environment with `DAGSTER_HOME` naming `instance`, for the daemon and
    the backfill command (the instance may be one opened from a path, not from the variable)."""
    return {**os.environ, "DAGSTER_HOME": str(Path(instance.root_directory))}


@contextlib.contextmanager
def running_daemon(instance: dg.DagsterInstance) -> Iterator[subprocess.Popen[bytes]]:
    """The Dagster daemon over this project's code location (`[tool.dg]` of the checkout's
    pyproject.toml, read from the working directory), for the duration of the block. Its
    output goes where this process's does (the run log)."""
    # The sensor stays off in this daemon: `make run` itself decides what runs.
    process = subprocess.Popen(
        [_command("dagster-daemon"), "run"],
        cwd=PROJECT_ROOT,
        env={**_instance_environment(instance), "ARCHS4_SENSOR_STATUS": "stopped"},
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=DAEMON_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def submit_backfill(instance: dg.DagsterInstance, job_name: str, blocks: list[str]) -> str:
    """Submit one run per block of `job_name` to the run queue; returns the backfill id."""
    done = subprocess.run(
        [
            *(_command("dagster"), "job", "backfill", "-j", job_name),
            *("--partitions", ",".join(blocks), "--noprompt"),
        ],
        cwd=PROJECT_ROOT,
        env=_instance_environment(instance),
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Launched backfill job `([^`]+)`", done.stdout)
    if done.returncode != 0 or match is None:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BlockRunError(f"backfill of {job_name} not submitted: {detail[-1:] or ['?']}")
    return match.group(1)


def _failure_reason(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = event.step_failure_data.error if event else None
        if error is not None:
            return step_error_line(error)
    return f"run {run.run_id} ended {run.status.value}"


def follow_backfill(
    instance: dg.DagsterInstance,
    backfill_id: str,
    n_runs: int,
    on_block_done: Callable[[str], None],
    daemon: subprocess.Popen[bytes],
) -> None:
    """Wait until every run of the backfill has finished, reporting each finished block;
    raises BlockRunError naming the first failed block once the others are done."""
    reported: set[str] = set()
    failures: list[str] = []
    while len(reported) < n_runs:
        if daemon.poll() is not None:
            raise BlockRunError(f"the Dagster daemon stopped (exit {daemon.returncode})")
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}))
        for run in runs:
            if run.run_id in reported or run.status not in FINISHED:
                continue
            reported.add(run.run_id)
            block = run.tags.get("dagster/partition", "?")
            if run.status == dg.DagsterRunStatus.SUCCESS:
                on_block_done(block)
            else:
                failures.append(f"block {block}: {_failure_reason(instance, run)}")
        time.sleep(POLL_SECONDS)
    if failures:
        raise BlockRunError(f"{len(failures)} block run(s) failed, first {failures[0]}")


def run_blocks_on_the_queue(
    instance: dg.DagsterInstance,
    job_name: str,
    blocks: list[str],
    workers: int,
    on_block_done: Callable[[str], None],
) -> None:
    """Materialize `blocks` of `job_name` with `workers` runs at once on the run queue."""
    instance.event_log_storage.set_concurrency_slots(POOL, workers)
    with running_daemon(instance) as daemon:
        backfill_id = submit_backfill(instance, job_name, blocks)
        follow_backfill(instance, backfill_id, len(blocks), on_block_done, daemon)
