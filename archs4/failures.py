"""How a failure reaches the user: one line on the terminal, the detail in a log file.

Bad input (a file, key, line or environment variable) is the commonest failure at ARCHS4 scale,
and the person who meets it needs the one fact that names it, not a stack trace. Every command
(`archs4 ...`, `make run`, `make update`) prints `<command>: <reason> (details: <log>)` as the
only line on standard error and writes the reason, the traceback and any context to a new log
file in the log directory (`ARCHS4_LOG_DIR`).
"""

from __future__ import annotations

import datetime as dt
import os
import traceback
from pathlib import Path


class InputError(ValueError):
    """Input the user can correct: a file, key, line, index or variable, named in the message."""


def write_failure_log(log_dir: Path, command: str, error: BaseException, context: str = "") -> Path:
    """Write `error` (message, traceback, `context`) to a new file under `log_dir`; its path."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = command.replace(" ", "-")
    path = log_dir / f"{name}-{stamp}-{os.getpid()}.log"
    detail = "".join(traceback.format_exception(error))
    path.write_text(
        f"command: {command}\nerror: {error}\n\n{context.rstrip()}\n\n{detail}".replace(
            "\n\n\n", "\n\n"
        )
    )
    return path


def one_line(text: object) -> str:
    """`text` on one line: the first line of a multi-line message, whitespace collapsed."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return " ".join(lines[0].split()) if lines else "failed"


def failure_line(command: str, error: BaseException, log_dir: Path, context: str = "") -> str:
    """The single line a failed command prints, after writing its detail log."""
    try:
        log = write_failure_log(log_dir, command, error, context)
        where = f" (details: {log})"
    except OSError as log_error:
        where = f" (no detail log: {log_dir}: {log_error.strerror})"
    return f"{command}: {one_line(error)}{where}"
