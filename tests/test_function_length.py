"""No function of the project is over 60 lines (issue #15's rule for a codebase a newcomer can
change); ruff's statement and branch counts (PLR0915, PLR0912) do not bound lines."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("archs4", "dagster_project", "benchmarks", "tests")
MAX_LINES = 60


def test_no_function_is_over_60_lines():
    too_long = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                    if lines > MAX_LINES:
                        too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not too_long, too_long
