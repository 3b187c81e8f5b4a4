"""Where the project's static inputs live: `sql/` (queries) and `assets/` (reference data)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
ASSETS_DIR = PROJECT_ROOT / "assets"


def read_sql(relative_path: str) -> str:
    """The text of `sql/<relative_path>`."""
    return (SQL_DIR / relative_path).read_text()
