"""The log file of one headless run: everything the run prints goes there, not to the terminal.

Dagster logs every step, and a failed step's stack trace twice; warnings and library output
add more. At ARCHS4 scale a user needs one line on failure and progress otherwise, so
`make run` and `make update` send all of it, Python's streams and the process's file
descriptors 1 and 2 (C libraries write there), to `<log dir>/<command>-<time>.log`, and keep
the terminal for what the command itself says.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dagster_shared.error import SerializableErrorInfo

from archs4.failures import one_line


@dataclass
class RunLog:
    """The log file, and the terminal's own standard output and error (what the command
    itself says: progress on output, a failure's one line on error)."""

    path: Path
    terminal: IO[str]
    terminal_out: IO[str]
    quiet: bool = False

    def say(self, line: str) -> None:
        """Print a progress line on the terminal (unless quiet) and record it in the log."""
        if not self.quiet:
            self.terminal_out.write(line + "\n")
        with self.path.open("a") as log:
            log.write(line + "\n")

    def failure(self, command: str, error: BaseException) -> str:
        """Append `error` and its traceback to the log; the one line that names both."""
        with self.path.open("a") as log:
            log.write(f"\n{command} failed: {error}\n")
            traceback.print_exception(error, file=log)
        return f"{command}: {one_line(error)} (details: {self.path})"


@contextlib.contextmanager
def run_log(log_dir: Path, command: str, quiet: bool = False) -> Iterator[RunLog]:
    """Redirect standard output and error (Python's and the descriptors') to a new log file
    for the duration of the block; restores both afterwards, even on error."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = log_dir / f"{command}-{stamp}-{os.getpid()}.log"
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    terminal = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    terminal_out = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    with path.open("a", buffering=1) as log:
        for fd in saved:
            os.dup2(log.fileno(), fd)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield RunLog(path, terminal, terminal_out, quiet)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in saved.items():
                os.dup2(original, fd)
                os.close(original)
            terminal.close()
            terminal_out.close()


def step_error_line(error: SerializableErrorInfo) -> str:
    """The user's reason of a failed step: the first error under Dagster's wrappers (not
    deeper: an `Archs4FormatError` naming the file and key is raised from the library error
    it explains, which names neither)."""
    while error.cause is not None and error.cls_name and error.cls_name.startswith("Dagster"):
        error = error.cause
    return one_line(error.message)
