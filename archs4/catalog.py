"""The DuckDB catalog: views over the warehouse's Parquet layers, for other clients and for readers.

The views are `sql/catalog/*.sql` (created in file-name order); each names the datasets it scans
as `${dataset}` (a key of `DATASETS`), and the scan put there depends on who reads:

- `build_catalog` writes `warehouse.duckdb` for any DuckDB client: each dataset becomes a
  `read_parquet(...)` of its absolute path or glob. It is rebuilt in a temporary file and renamed
  into place: readers keep the snapshot they opened, a new reader sees the new one, and the
  writer never waits for readers (DuckDB allows one writer or many readers per file, never both).
- `connect_read_only` (`archs4 sql`) builds the same views in an in-memory database that has no
  filesystem at all: external access is switched off and the configuration locked when the
  database is created, and each dataset is a pyarrow dataset that Python built from the resolved
  warehouse root and registered under a name. DuckDB itself cannot open, write, attach or install
  anything, whatever a statement asks, so the connection is read-only by construction; the
  statement check (`check_read_only`) is a first, friendlier layer on top (README, "Security
  model").

Both refuse the `samples` files when they are in two layouts (an older version kept fewer sample
fields, and `make run` has not re-derived every block yet): a scan of mixed files takes one
file's columns and drops or NULL-fills the others' without a word.
"""

from __future__ import annotations

import functools
import re
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from archs4.datasets import CATALOG_DATASETS, GENES_TABLE, Dataset, table_file
from archs4.paths import SQL_DIR
from archs4.warehouse import TEMPORARY_PREFIX, Warehouse

CATALOG_SQL_DIR = SQL_DIR / "catalog"


# Template name in sql/catalog -> where the dataset lives and how it is partitioned.
DATASETS: dict[str, Dataset] = {dataset.template: dataset for dataset in CATALOG_DATASETS}
# The registered name of dataset `x` on a read-only connection (a temporary view of DuckDB).
ARROW_NAME_PREFIX = "_arrow_"
# Fixed when the in-memory database is created; `lock_configuration` keeps every setting so.
READ_ONLY_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,  # no scans of Python variables named in a query
    "lock_configuration": True,
}
QUERY_STATEMENTS = {duckdb.StatementType.SELECT}
READ_ONLY_STATEMENTS = QUERY_STATEMENTS | {duckdb.StatementType.EXPLAIN}
ALLOWED_TEXT = "SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, and EXPLAIN of those"
EXPLAIN_MODIFIERS = {"ANALYZE", "ANALYSE"}
VIEW_NAME = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(\w+)", re.IGNORECASE)


class ReadOnlyQueryError(ValueError):
    """A statement that is not a query was refused (the user can rewrite it)."""


class QueryError(ValueError):
    """A query that cannot run as given, e.g. a statement of a kind that cannot be checked."""


class ParameterError(ValueError):
    """A query parameter that cannot be bound: positional, or named but given no value."""


class WarehouseNotBuiltError(FileNotFoundError):
    """The warehouse root holds no built warehouse yet."""


class MixedSchemaError(QueryError):
    """A dataset's files do not all have the same columns (see the module docstring)."""


def check_one_schema(dataset: Dataset, schemas: Mapping[str, pa.Schema]) -> None:
    """Refuse `dataset` unless all its files (path -> schema) have one schema."""
    layouts: dict[pa.Schema, list[str]] = {}
    for path, schema in sorted(schemas.items()):
        layouts.setdefault(schema.remove_metadata(), []).append(path)
    if len(layouts) < 2:
        return
    (first, first_paths), (other, other_paths) = list(layouts.items())[:2]
    differing = sorted(set(first.names) ^ set(other.names)) or [
        name for name in first.names if first.field(name) != other.field(name)
    ]
    raise MixedSchemaError(
        f"{dataset.path}: its files have {len(layouts)} different layouts ({first_paths[0]} and "
        f"{len(first_paths) - 1} more vs {other_paths[0]} and {len(other_paths) - 1} more, "
        f"differing in {', '.join(differing[:8])}): an older version wrote some of them; "
        "`make run` re-derives them"
    )


def sql_string(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class ViewDefinition:
    """One `sql/catalog/*.sql` template: a view and the datasets (`${name}`) it scans."""

    name: str
    path: Path
    sql: Template

    @property
    def datasets(self) -> list[str]:
        """The `${name}` datasets the view scans, keys of `DATASETS`."""
        return self.sql.get_identifiers()


def view_definitions() -> list[ViewDefinition]:
    """Every catalog view, in file-name order (later views may read earlier ones)."""
    definitions = []
    for path in sorted(CATALOG_SQL_DIR.glob("*.sql")):
        text = path.read_text()
        match = VIEW_NAME.search(text)
        if not match:
            raise ValueError(f"{path}: no CREATE VIEW statement")
        definition = ViewDefinition(match.group(1), path, Template(text))
        unknown = set(definition.datasets) - set(DATASETS)
        if unknown:
            raise ValueError(f"{path}: unknown datasets {sorted(unknown)} (see DATASETS)")
        definitions.append(definition)
    return definitions


# -- warehouse.duckdb, for other DuckDB clients ------------------------------------------------


def dataset_locations(warehouse: Warehouse) -> dict[str, str | None]:
    """Each dataset's Parquet path or glob, or None while the layer has no committed file."""
    locations: dict[str, str | None] = {}
    for name, dataset in DATASETS.items():
        if dataset.partition:
            present = bool(warehouse.partition_keys(dataset.path, dataset.partition))
            glob = warehouse.dataset_glob(dataset.path, dataset.partition)
            locations[name] = glob if present else None
        else:
            path = warehouse.table_path(dataset.path)
            locations[name] = str(path) if warehouse.exists(path) else None
    return locations


def read_parquet_sql(dataset: Dataset, location: str) -> str:
    """The `read_parquet` scan of `dataset` at `location` that `warehouse.duckdb` views use."""
    options = (
        "hive_partitioning = true, hive_types_autocast = false"
        if dataset.hive
        else "hive_partitioning = false"
    )
    return f"read_parquet({sql_string(location)}, {options})"


def file_schemas(warehouse: Warehouse, location: str) -> dict[str, pa.Schema]:
    """The schema of every file `location` (a path or glob) matches, from its footer."""
    schemas = {}
    for path in warehouse.fs.glob(location):
        with warehouse.fs.open(path, "rb") as handle:
            schemas[str(path)] = pq.read_schema(handle)
    return schemas


def build_catalog(warehouse: Warehouse) -> dict[str, int]:
    """Rebuild `warehouse.duckdb` with every view whose layers exist; returns view -> rows."""
    locations = dataset_locations(warehouse)
    for name, dataset in DATASETS.items():
        location = locations[name]
        if dataset.one_schema and location is not None:
            check_one_schema(dataset, file_schemas(warehouse, location))
    target = Path(warehouse.catalog_path.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}-{target.name}")
    row_counts: dict[str, int] = {}
    try:
        with duckdb.connect(str(temporary)) as connection:
            for view in view_definitions():
                if any(locations.get(name) is None for name in view.datasets):
                    continue
                scans = {
                    name: read_parquet_sql(DATASETS[name], locations[name] or "")
                    for name in view.datasets
                }
                connection.execute(view.sql.substitute(scans))
                row_counts[view.name] = _row_count(connection, view.name)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    return row_counts


def _row_count(connection: duckdb.DuckDBPyConnection, view: str) -> int:
    """The rows of `view`, for the catalog asset's metadata (Parquet footers: metadata only)."""
    result = connection.execute(f'SELECT count(*) FROM "{view}"').fetchone()
    return int(result[0]) if result else 0


# -- the read-only connection -------------------------------------------------------------------


def local_root(warehouse: Warehouse) -> Path:
    """The warehouse root with every symlink and `..` resolved; refuses a non-local root."""
    if warehouse.root.protocol not in ("", "file", "local"):
        raise QueryError(f"{warehouse.root}: archs4 sql reads a local warehouse only")
    return Path(warehouse.root.path).resolve()


def is_within(path: Path, root: Path) -> bool:
    """Whether `path` is `root` or lies under it (both already resolved)."""
    return path == root or root in path.parents


def arrow_dataset(root: Path, dataset: Dataset) -> ds.Dataset | None:
    """`dataset` under the resolved `root` as a pyarrow dataset, or None while it has no file.

    Only committed files are read: `*.parquet` names that are not hidden, so the `.tmp-*` files
    a writer is still filling (and renames into place when done) are never seen.
    """
    if dataset.partition is None:
        path = root / f"{dataset.path}.parquet"
        return ds.dataset([str(path)], format="parquet") if path.is_file() else None
    base = root / dataset.path
    files = sorted(
        str(path)
        for path in base.glob(f"{dataset.partition}=*/*.parquet")
        if not path.name.startswith((".", TEMPORARY_PREFIX)) and path.is_file()
    )
    if not files:
        return None
    partitioning = (
        ds.partitioning(pa.schema([(dataset.partition, pa.string())]), flavor="hive")
        if dataset.hive
        else None
    )
    scanned = ds.dataset(
        files, format="parquet", partitioning=partitioning, partition_base_dir=str(base)
    )
    if dataset.one_schema:
        fragments = scanned.get_fragments()
        check_one_schema(dataset, {piece.path: piece.physical_schema for piece in fragments})
    return scanned


def spill_directory(root: Path) -> str:
    """Where DuckDB may spill a large query: a fresh directory, never inside the warehouse.

    DuckDB creates it only when it spills and removes it when the connection closes. When the
    system's temporary directory lies inside the warehouse, spilling is switched off (`''`).
    """
    base = Path(tempfile.gettempdir()).resolve()
    if is_within(base, root):
        return ""
    return str(base / f"archs4-sql-{uuid.uuid4().hex}")


def check_built(warehouse: Warehouse, root: Path) -> None:
    """Refuse a root that holds no built warehouse (neither its catalog nor its gene table)."""
    genes = root / table_file(GENES_TABLE)
    if not (root / Path(warehouse.catalog_path.path).name).is_file() and not genes.is_file():
        raise WarehouseNotBuiltError(
            f"{warehouse.root}: no warehouse catalog yet; build the warehouse first (`make run`)"
        )


def connect_read_only(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the catalog's views over `warehouse`, and nothing else.

    External access is off and the configuration locked from the start, so no statement can
    read or write a file, attach a database or load an extension; the data is reachable only
    through the registered pyarrow datasets, built here from the resolved root (so a copied or
    moved warehouse is read where it lies, whatever paths `warehouse.duckdb` holds).
    """
    root = local_root(warehouse)
    check_built(warehouse, root)
    config = {**READ_ONLY_CONFIG, "temp_directory": spill_directory(root)}
    connection = duckdb.connect(":memory:", config=config)
    try:
        datasets = {name: arrow_dataset(root, dataset) for name, dataset in DATASETS.items()}
        for name, dataset in datasets.items():
            if dataset is not None:
                connection.register(ARROW_NAME_PREFIX + name, dataset)
        for view in view_definitions():
            if all(datasets[name] is not None for name in view.datasets):
                scans = {name: f'"{ARROW_NAME_PREFIX}{name}"' for name in view.datasets}
                connection.execute(view.sql.substitute(scans))
    except BaseException:
        connection.close()
        raise
    return connection


# -- the statement check --------------------------------------------------------------------------


def _snippet(text: str, limit: int = 80) -> str:
    """`text` on one line, shortened: how a refused statement is quoted in a message."""
    flat = " ".join(text.split()).rstrip(";").strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _statement_type(statement: Any) -> duckdb.StatementType | None:
    """The statement's type, or None for a kind the Python package has no name for."""
    try:
        return statement.type
    except ValueError:  # e.g. UPDATE EXTENSIONS: "29 is not a valid StatementType"
        return None


def _explained_candidates(query: str) -> list[str]:
    """The texts that may be the statement an EXPLAIN explains, the likeliest reading first.

    After `EXPLAIN` come either an `(option, ...)` list or `ANALYZE`, or neither. A `(` may
    also open the explained query itself (`EXPLAIN (SELECT 1)`); that reading comes last, and
    is harmless when it is the right one: a statement that starts with `(` is a query.
    """
    tokens = [(offset, kind) for offset, kind in duckdb.tokenize(query) if kind.name != "comment"]
    bounds = [offset for offset, _ in tokens] + [len(query)]
    words = [query[bounds[i] : bounds[i + 1]].strip() for i in range(len(tokens))]
    if not words or words[0].upper() != "EXPLAIN":
        return []
    starts = []
    if len(words) > 1 and words[1].upper() in EXPLAIN_MODIFIERS:
        starts.append(2)
    elif len(words) > 1 and words[1].startswith("("):
        depth = 0
        for index in range(1, len(words)):
            if tokens[index][1].name == "operator":
                depth += words[index].count("(") - words[index].count(")")
            if depth <= 0:
                starts.append(index + 1)
                break
    starts.append(1)
    return [query[bounds[start] :] for start in starts if start < len(tokens)]


def _explained_type(connection: duckdb.DuckDBPyConnection, query: str) -> Any:
    """The type of the statement `query` (an EXPLAIN) explains: its first reading that parses
    as one statement (None for a kind without a name), or "?" when no reading parses."""
    for candidate in _explained_candidates(query):
        try:
            statements = connection.extract_statements(candidate)
        except duckdb.Error:
            continue
        if len(statements) == 1:
            return _statement_type(statements[0])
    return "?"


def _check_statement(connection: duckdb.DuckDBPyConnection, statement: Any) -> None:
    """Refuse `statement` unless it is a query or the EXPLAIN of one."""
    kind = _statement_type(statement)
    quoted = _snippet(statement.query)
    if kind is None:
        raise QueryError(f"cannot check a statement of a kind this DuckDB does not name: {quoted}")
    if kind not in READ_ONLY_STATEMENTS:
        raise ReadOnlyQueryError(
            f"only queries are allowed ({ALLOWED_TEXT}); refused a {kind.name} statement: {quoted}"
        )
    if kind == duckdb.StatementType.EXPLAIN:
        explained = _explained_type(connection, statement.query)
        if explained not in QUERY_STATEMENTS:
            name = explained.name if isinstance(explained, duckdb.StatementType) else "non-query"
            raise ReadOnlyQueryError(
                f"only queries are allowed ({ALLOWED_TEXT}); refused EXPLAIN of a {name}"
                f" statement: {quoted}"
            )


@functools.cache
def _parser() -> duckdb.DuckDBPyConnection:
    """An empty, locked in-memory database that only ever parses (opened once: ~30 ms)."""
    return duckdb.connect(":memory:", config=READ_ONLY_CONFIG)


def check_read_only(sql: str) -> list[Any]:
    """The statements of `sql` if every one is a query (or its EXPLAIN); refuses the rest.

    A parser without any data does the check, so a refused statement never reaches the
    warehouse. This is the friendly layer: the guarantee is `connect_read_only`'s construction.
    """
    parser = _parser().cursor()
    try:
        statements = parser.extract_statements(sql)
        if not statements:
            raise ReadOnlyQueryError("no SQL statement given")
        for statement in statements:
            _check_statement(parser, statement)
    finally:
        parser.close()
    return statements


def _bound(statement: Any, parameters: Mapping[str, Any]) -> dict[str, Any] | None:
    """The values of the parameters `statement` names; refuses positional or missing ones."""
    names = set(statement.named_parameters)
    if any(name.isdigit() for name in names):
        raise ParameterError(
            "positional parameters (? or $1) cannot be bound; name them ($NAME) and give "
            "--param NAME=VALUE or --text NAME=VALUE"
        )
    missing = sorted(names - set(parameters))
    if missing:
        given = ", ".join(f"--param {name}=VALUE" for name in missing)
        raise ParameterError(f"the query uses ${', $'.join(missing)} but no value: give {given}")
    return {name: parameters[name] for name in sorted(names)} or None


def run_read_only_query(
    connection: duckdb.DuckDBPyConnection,
    sql: str,
    parameters: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Run every statement of `sql` in order on `connection`; the last one's result.

    Every statement must pass `check_read_only` and have a value for each $NAME it uses, all
    checked before any runs; each gets only the parameters it names, and the results of all
    but the last are run to their end and discarded. Parameters no statement uses are ignored.
    """
    statements = check_read_only(sql)
    bound = [_bound(statement, parameters or {}) for statement in statements]
    for statement, values in zip(statements[:-1], bound[:-1], strict=True):
        connection.execute(statement.query, values)
        connection.complete()
    return connection.sql(statements[-1].query, params=bound[-1]).to_arrow_table()
