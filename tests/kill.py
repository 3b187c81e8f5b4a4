"""Kill a headless command with SIGKILL part-way, for the crash-safety tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_headless_when(
    command: str, env: dict[str, str], watched: Path, n_files: int, timeout: float = 300
) -> None:
    """Start `python -m dagster_project.headless <command>` and SIGKILL it as soon as `watched`
    holds at least `n_files` committed block files; fails if it finished first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_project.headless", command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(watched.glob("block=*/part.parquet"))) >= n_files:
            break
        time.sleep(0.02)
    assert process.poll() is None, f"`{command}` finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
