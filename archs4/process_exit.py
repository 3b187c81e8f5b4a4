"""Ending a command's process without the DuckDB bindings' leak report.

DuckDB 2.0's Python bindings (nanobind) print dozens of "nanobind: leaked instance ..." lines at
interpreter teardown after any process that used them, success or failure; they are noise
about the binding's module-level objects, not the user's data. Commands flush their streams and
leave with `os._exit`, which skips the teardown that prints them. Only process entry points use
this; library code and tests never do.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_without_teardown(code: int) -> NoReturn:
    """Exit with `code` once standard output and error are flushed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_archs4_command() -> NoReturn:
    """The `archs4` console script: `archs4.cli.main`, then a quiet exit."""
    from archs4.cli import main

    exit_without_teardown(main())
