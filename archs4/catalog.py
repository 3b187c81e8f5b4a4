"""The DuckDB catalog: `warehouse.duckdb`, a file of views over the warehouse's Parquet layers.

The catalog holds no data, only views (`sql/catalog/*.sql`, created in file-name order), so it
is cheap to rebuild whenever a layer changes. It is rebuilt in a temporary file and renamed
into place: readers keep the snapshot they opened, a new reader sees the new one, and the
writer never waits for readers (DuckDB allows one writer or many readers per file, never both).

Readers get a connection that cannot change anything: the database is opened read-only, file
access is confined to the warehouse directory, the configuration is locked, and only SELECT-like
statements run.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import duckdb

from archs4.paths import SQL_DIR
from archs4.warehouse import TEMPORARY_PREFIX, Warehouse

CATALOG_SQL_DIR = SQL_DIR / "catalog"

# Template name in sql/catalog -> (dataset under the warehouse root, partition key or None)
DATASETS: dict[str, tuple[str, str | None]] = {
    "raw_samples": ("raw/samples", "block"),
    "raw_counts": ("raw/counts", "block"),
    "raw_genes": ("raw/genes", None),
    "raw_sample_registry": ("raw/sample_registry", None),
    "reference_qn_target": ("reference/qn_target", None),
    "normalized_expression": ("normalized/expression", "block"),
    "normalized_expression_by_gene": ("normalized/expression_by_gene", "chunk"),
    "metrics_gene_metrics": ("metrics/gene_metrics", None),
    "metrics_gene_windows": ("metrics/gene_windows", None),
    "labels_sample_labels": ("labels/sample_labels", None),
    "labels_sample_splits": ("labels/sample_splits", None),
    "model_predictions": ("model/predictions", None),
    "model_model_evaluation": ("model/model_evaluation", None),
    "model_synthetic_samples": ("model/synthetic_samples", None),
    "model_gan_evaluation": ("model/gan_evaluation", None),
}
READ_ONLY_STATEMENTS = {
    duckdb.StatementType.SELECT,
    duckdb.StatementType.EXPLAIN,
}
VIEW_NAME = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(\w+)", re.IGNORECASE)


class ReadOnlyQueryError(ValueError):
    """A statement that could change the warehouse was refused."""


def sql_string(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class ViewDefinition:
    name: str
    path: Path
    sql: Template

    @property
    def datasets(self) -> list[str]:
        return self.sql.get_identifiers()


def view_definitions() -> list[ViewDefinition]:
    definitions = []
    for path in sorted(CATALOG_SQL_DIR.glob("*.sql")):
        text = path.read_text()
        match = VIEW_NAME.search(text)
        if not match:
            raise ValueError(f"{path}: no CREATE VIEW statement")
        definitions.append(ViewDefinition(match.group(1), path, Template(text)))
    return definitions


def dataset_locations(warehouse: Warehouse) -> dict[str, str | None]:
    """Each dataset's Parquet path or glob, or None while the layer has no committed file."""
    locations: dict[str, str | None] = {}
    for name, (dataset, key_name) in DATASETS.items():
        if key_name:
            present = bool(warehouse.partition_keys(dataset, key_name))
            locations[name] = warehouse.dataset_glob(dataset, key_name) if present else None
        else:
            path = warehouse.table_path(dataset)
            locations[name] = str(path) if warehouse.exists(path) else None
    return locations


def build_catalog(warehouse: Warehouse) -> dict[str, int]:
    """Rebuild `warehouse.duckdb` with every view whose layers exist; returns view -> rows."""
    locations = dataset_locations(warehouse)
    target = Path(warehouse.catalog_path.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}-{target.name}")
    row_counts: dict[str, int] = {}
    try:
        with duckdb.connect(str(temporary)) as connection:
            for view in view_definitions():
                if any(locations.get(name) is None for name in view.datasets):
                    continue
                connection.execute(
                    view.sql.substitute(
                        {name: sql_string(locations[name] or "") for name in view.datasets}
                    )
                )
                row_counts[view.name] = _row_count(connection, view.name)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    return row_counts


def _row_count(connection: duckdb.DuckDBPyConnection, view: str) -> int:
    # Parquet footers hold row counts, so this reads metadata only.
    result = connection.execute(f'SELECT count(*) FROM "{view}"').fetchone()
    return int(result[0]) if result else 0


def connect_read_only(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    """A connection to the catalog that can read the warehouse and nothing else."""
    catalog = Path(warehouse.catalog_path.path)
    if not catalog.exists():
        raise FileNotFoundError(
            f"{catalog}: no warehouse catalog yet; build the warehouse first (`make run`)"
        )
    connection = duckdb.connect(
        str(catalog),
        read_only=True,
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    # The order matters: directories must be allowed before external access is switched off.
    connection.execute("SET allowed_directories = [?]", [str(Path(warehouse.root.path)) + "/"])
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


def run_read_only_query(
    connection: duckdb.DuckDBPyConnection,
    sql: str,
    parameters: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyRelation | None:
    """Run the statements of `sql`, refusing any that is not a query; returns the last result."""
    statements = connection.extract_statements(sql)
    if not statements:
        raise ReadOnlyQueryError("no SQL statement given")
    for statement in statements:
        if statement.type not in READ_ONLY_STATEMENTS:
            raise ReadOnlyQueryError(
                f"only queries are allowed (SELECT, WITH, EXPLAIN); refused a "
                f"{statement.type.name} statement: {statement.query.strip()[:80]}"
            )
    *leading, last = statements
    for statement in leading:
        connection.execute(statement.query)
    used = {name: value for name, value in (parameters or {}).items() if f"${name}" in last.query}
    return connection.sql(last.query, params=used or None)
