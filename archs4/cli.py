"""The `archs4` command: read-only SQL over the warehouse, and the demo dataset generator.

`archs4 sql`, `archs4 similar` and `archs4 coexpressed` cannot change the warehouse: see the
README, "Security model".
Every failure is one line on standard error, `archs4 <command>: <reason>`: usage errors and refused
statements exit 2, queries that fail exit 1, and an unexpected error exits 1 after writing its
detail to a log file (`archs4.failures`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tabulate import tabulate

from archs4.catalog import (
    ParameterError,
    QueryError,
    ReadOnlyQueryError,
    WarehouseNotBuiltError,
    check_read_only,
    connect_read_only,
    is_within,
    local_root,
    run_read_only_query,
)
from archs4.failures import failure_line, one_line
from archs4.paths import PROJECT_ROOT, SQL_DIR
from archs4.settings import Settings, SettingsError
from archs4.warehouse import Warehouse

OUTPUT_FORMATS = ("table", "csv", "json", "parquet")
# --output replaces the file at its path; never a device node or /dev/stdout's link.
SYSTEM_DIRECTORIES = (Path("/dev"), Path("/proc"), Path("/sys"))
TABLE_ROW_LIMIT = 1000
SQL_EPILOG = """\
Only queries run (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, and EXPLAIN or EXPLAIN
ANALYZE of those). Several statements separated by ';' run in order on the same read-only
connection; each must be a query, and the last one's result is printed. $NAME in the query is
bound to --param NAME=VALUE (an integer or a float when VALUE reads back exactly as written, so
42 and 0.5 are numbers but 007, 1e5 and nan are text) or to --text NAME=VALUE (always text);
values are bound, never spliced into the SQL. --output refuses any path that resolves inside the
warehouse and replaces the file (never writes through a link). Exit status: 0 success, 1 the
query failed, 2 a usage error or a refused statement."""


class UsageError(ValueError):
    """A bad argument from the user; printed without a traceback, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (`archs4 sql: ...`), raised, not exited."""

    def error(self, message: str) -> NoReturn:
        """Raise `message` as a `UsageError`, which `main` prints as one line (exit 2)."""
        raise UsageError(message)


def warehouse_from_settings(settings: Settings) -> Warehouse:
    """The warehouse of `ARCHS4_WAREHOUSE` (default: the project's `warehouse/`)."""
    return Warehouse.at(settings.warehouse)


# -- arguments ------------------------------------------------------------------------------------


def _number_or_text(value: str) -> str | int | float:
    """`value` as an int or a finite float when it reads back exactly as written, else text.

    So `42`, `-3` and `0.25` are numbers, and `007`, `1e5`, `+1`, `nan` and `inf` stay text
    (a zip code, an identifier): an inference that would change the text never happens.
    """
    for cast in (int, float):
        try:
            number = cast(value)
        except ValueError:
            continue
        if isinstance(number, float) and not math.isfinite(number):
            return value
        if str(number) == value:
            return number
    return value


def _parse_parameters(
    numbers_or_text: Sequence[str], texts: Sequence[str] = ()
) -> dict[str, str | int | float]:
    """The `--param` (number when exact, else text) and `--text` (always text) bindings."""
    parameters: dict[str, str | int | float] = {}
    given = [("--param", pair, _number_or_text) for pair in numbers_or_text]
    given += [("--text", pair, str) for pair in texts]
    for option, pair, convert in given:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"{option} expects NAME=VALUE, got {pair!r}")
        if name in parameters:
            raise UsageError(f"{option} {name}: ${name} is given more than once")
        parameters[name] = convert(value)
    return parameters


def _read_sql_file(path: str) -> str:
    """The SQL text of `-f path`; a missing file is a usage error, a binary one a query error."""
    sql_path = Path(path)
    if not sql_path.is_file():
        raise UsageError(f"-f {path}: no such SQL file")
    try:
        data = sql_path.read_bytes()
    except OSError as error:
        raise UsageError(f"-f {path}: cannot read it ({error.strerror})") from None
    if b"\0" in data:
        raise QueryError(f"-f {path}: a binary file, not SQL text")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is not SQL
    except UnicodeDecodeError as error:
        raise QueryError(f"-f {path}: not UTF-8 text (byte {error.start})") from None


# -- output ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputTarget:
    """A checked `--output`: its resolved directory (and that directory's identity), its name."""

    directory: Path
    name: str
    identity: tuple[int, int]  # (st_dev, st_ino) of `directory` when it was checked

    @property
    def path(self) -> Path:
        """The destination, for messages."""
        return self.directory / self.name


def _checked_output_path(path: str, root: Path, force: bool) -> OutputTarget:
    """Where `--output path` will be written: resolved, and never inside the warehouse `root`.

    Both the place the file's name lives (its resolved directory) and where the path leads
    (a symlink at the destination followed) must lie outside the resolved root. The result is
    later renamed over the destination, so an existing link is replaced, never written through.
    """
    given = Path(path).expanduser()
    absolute = given if given.is_absolute() else Path.cwd() / given
    if absolute.name in ("", ".", ".."):
        raise UsageError(f"--output {path}: not a file name")
    try:
        directory = absolute.parent.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"--output {path}: directory {absolute.parent} does not exist") from None
    if not directory.is_dir():
        raise UsageError(f"--output {path}: {absolute.parent} is not a directory")
    destination = directory / absolute.name
    places = (destination, destination.resolve())  # where the name lives, where it leads
    if any(is_within(place, root) for place in places):
        raise UsageError(f"--output {path}: refusing to write inside the warehouse {root}")
    if destination.is_dir():
        raise UsageError(f"--output {path}: is a directory")
    if destination.exists() and not destination.is_file():  # a device, FIFO or socket
        raise UsageError(f"--output {path}: not a regular file")
    if any(is_within(place, system) for place in places for system in SYSTEM_DIRECTORIES):
        raise UsageError(
            f"--output {path}: refusing to replace a system file (without --output, the "
            "result goes to standard output)"
        )
    if (destination.exists() or destination.is_symlink()) and not force:
        raise UsageError(f"--output {path}: file exists (use --force to overwrite)")
    status = directory.stat()
    return OutputTarget(directory, absolute.name, (status.st_dev, status.st_ino))


def _replace_atomically(target: OutputTarget, write: Callable[[IO[bytes]], None]) -> None:
    """Write a temporary file in the checked directory with `write`, then rename it into place.

    The directory is opened once and must still be the one that was checked (no link, same
    inode), and every step is relative to it, so swapping a path component for a link after
    the check cannot redirect the write. The rename replaces the directory entry: a symlink or
    hardlink at the destination is replaced, never written through. A failed write leaves
    nothing behind.
    """
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        directory = os.open(target.directory, flags)
    except OSError as error:
        raise UsageError(f"--output {target.path}: {error.strerror}") from None
    try:
        status = os.fstat(directory)
        if (status.st_dev, status.st_ino) != target.identity:
            raise UsageError(f"--output {target.path}: its directory changed while writing")
        temporary = f".{target.name}.{uuid.uuid4().hex}.tmp"
        create = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(temporary, create, 0o666, dir_fd=directory)  # mode: umask applies
        try:
            with os.fdopen(descriptor, "wb") as handle:
                write(handle)
            os.replace(temporary, target.name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary, dir_fd=directory)
            raise
    finally:
        os.close(directory)


def _integral_decimals_as_ints(table: pa.Table) -> pa.Table:
    """HUGEINT columns (decimal(38, 0) in Arrow, e.g. DuckDB's sums of integers) as integers."""
    for index, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            try:
                column = table.column(index).cast(pa.int64())
            except pa.ArrowInvalid:
                column = table.column(index).cast(pa.string())
            table = table.set_column(index, field.name, column)
    return table


def _printable(value: object) -> object:
    """`value` with tabs and newlines escaped, so GEO fields (tab-joined) keep a table aligned."""
    return value.replace("\t", "\\t").replace("\n", "\\n") if isinstance(value, str) else value


def _table_text(table: pa.Table) -> str:
    """The first TABLE_ROW_LIMIT rows as a GitHub-style table, with a row count."""
    rows = [
        {name: _printable(value) for name, value in row.items()}
        for row in _integral_decimals_as_ints(table.slice(0, TABLE_ROW_LIMIT)).to_pylist()
    ]
    text = tabulate(rows, headers="keys", tablefmt="github", floatfmt=".6g", missingval="NULL")
    more = table.num_rows - len(rows)
    if more > 0:
        text += f"\n... {more} more rows (use --format csv/json/parquet --output FILE)"
    return text + f"\n({table.num_rows} row{'s' if table.num_rows != 1 else ''})\n"


def _json_text(table: pa.Table) -> str:
    """`table` as a JSON array of row objects (Polars' writer: dates and decimals as JSON)."""
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.write_json() + "\n"


def _write(table: pa.Table, fmt: str, output: OutputTarget | None) -> None:
    """Print `table` in `fmt`, or write it to `output` (replaced atomically)."""
    if fmt == "parquet" and output is None:
        raise UsageError("--format parquet needs --output FILE")
    if output is None:
        if fmt == "csv":
            sys.stdout.flush()
            pacsv.write_csv(table, sys.stdout.buffer)
        else:
            sys.stdout.write(_table_text(table) if fmt == "table" else _json_text(table))
        return
    writers: dict[str, Callable[[IO[bytes]], None]] = {
        "table": lambda handle: handle.write(_table_text(table).encode()),
        "json": lambda handle: handle.write(_json_text(table).encode()),
        "csv": lambda handle: pacsv.write_csv(table, handle),
        "parquet": lambda handle: pq.write_table(table, handle),
    }
    _replace_atomically(output, writers[fmt])


# -- commands -------------------------------------------------------------------------------------


def command_sql(args: argparse.Namespace, settings: Settings) -> int:
    """`archs4 sql`: run read-only statements over the warehouse, print or write the result."""
    warehouse = warehouse_from_settings(settings)
    if (args.query is None) == (args.file is None):
        raise UsageError('give a query ("SELECT ...") or -f FILE.sql, not both')
    sql = _read_sql_file(args.file) if args.file else args.query
    parameters = _parse_parameters(args.param, args.text)
    if args.format == "parquet" and not args.output:
        raise UsageError("--format parquet needs --output FILE")
    check_read_only(sql)  # refuse a non-query before the warehouse is even opened
    root = local_root(warehouse)
    output = _checked_output_path(args.output, root, args.force) if args.output else None
    with connect_read_only(warehouse) as connection:
        table = run_read_only_query(connection, sql, parameters)
    _write(table, args.format, output)
    return 0


SIMILAR_SQL = SQL_DIR / "analytics" / "similar_samples.sql"


def command_similar(args: argparse.Namespace, settings: Settings) -> int:
    """`archs4 similar`: the samples whose normalized profiles are closest to one GSM's."""
    if args.k < 1:
        raise UsageError("-k must be at least 1")
    warehouse = warehouse_from_settings(settings)
    with connect_read_only(warehouse) as connection:
        found = connection.execute(
            "SELECT sample_idx FROM samples WHERE gsm = $gsm", {"gsm": args.gsm}
        ).fetchall()
        if not found:
            raise UsageError(f"{args.gsm} is not a sample of the warehouse")
        table = run_read_only_query(
            connection, SIMILAR_SQL.read_text(), {"sample_idx": found[0][0], "k": args.k}
        )
    _write(table, args.format, None)
    return 0


def command_coexpressed(args: argparse.Namespace, settings: Settings) -> int:
    """`archs4 coexpressed`: the genes whose normalized values correlate most with a gene's."""
    # Imported here: the other commands start without loading polars.
    from archs4.coexpression import UndefinedCorrelationError, coexpressed
    from archs4.gene_lookup import GeneLookupError, resolve_gene_ids

    if args.k < 1:
        raise UsageError("-k must be at least 1")
    name = int(args.gene) if args.gene.isdigit() else args.gene  # digits: a gene_idx
    with connect_read_only(warehouse_from_settings(settings)) as connection:
        try:
            (gene_idx,) = resolve_gene_ids(connection, [name], unique=True)
            table = coexpressed(connection, int(gene_idx), args.k, exact=args.exact)
        except (GeneLookupError, UndefinedCorrelationError) as error:
            raise UsageError(str(error)) from None
    _write(table, args.format, None)
    return 0


def command_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    """`archs4 demo-data`: write a synthetic dataset in the ARCHS4 v2 layout."""
    from archs4.demo_data import write_demo_dataset

    if args.samples < 2 or args.genes < 2:
        raise UsageError("--samples and --genes must be at least 2")
    paths = write_demo_dataset(
        Path(args.out), n_samples=args.samples, n_genes=args.genes, seed=args.seed
    )
    print(f"wrote {paths.h5}\n      {paths.gtf}\n      {paths.truth}\n      {paths.labels_dir}/")
    return 0


def _add_sql_parser(commands: argparse._SubParsersAction) -> None:
    """The `archs4 sql` subcommand, its options and the rules of its --help epilog."""
    sql = commands.add_parser(
        "sql",
        help="read-only SQL over the warehouse catalog",
        description="Run read-only SQL over the warehouse's views.",
        epilog=SQL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sql.add_argument("query", nargs="?", help="a query (several may be separated by ';')")
    sql.add_argument("-f", "--file", help="run the statements in this .sql file")
    sql.add_argument("--format", choices=OUTPUT_FORMATS, default="table")
    sql.add_argument("--output", help="write the result to this file (outside the warehouse)")
    sql.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    sql.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind $NAME to VALUE: a number when it reads back exactly as written, else text",
    )
    sql.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind $NAME to VALUE as text, always (e.g. --text zip=007)",
    )
    sql.set_defaults(handler=command_sql)


def build_parser() -> argparse.ArgumentParser:
    """The `archs4` argument parser, whose errors are one-line `UsageError`s."""
    parser = OneLineParser(prog="archs4", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_sql_parser(commands)

    similar = commands.add_parser(
        "similar", help="the samples most similar to a GSM (cosine of normalized profiles)"
    )
    similar.add_argument("gsm", help="a GSM accession of the warehouse")
    similar.add_argument("-k", type=int, default=10, help="how many samples (default 10)")
    similar.add_argument("--format", choices=OUTPUT_FORMATS[:3], default="table")
    similar.set_defaults(handler=command_similar)

    coexpressed_parser = commands.add_parser(
        "coexpressed",
        help="the genes most correlated with a gene across samples (Pearson, normalized values)",
        description="The genes whose normalized values correlate most with GENE's: from the "
        "stored top partners (gene_coexpression) when they hold k, else exactly over all "
        "samples (one pass over the layer).",
    )
    coexpressed_parser.add_argument(
        "gene", metavar="GENE", help="a symbol, an Ensembl gene id or a gene_idx"
    )
    coexpressed_parser.add_argument("-k", type=int, default=20, help="how many genes (default 20)")
    coexpressed_parser.add_argument(
        "--exact",
        action="store_true",
        help="always compute over all samples, never the stored top partners",
    )
    coexpressed_parser.add_argument("--format", choices=OUTPUT_FORMATS[:3], default="table")
    coexpressed_parser.set_defaults(handler=command_coexpressed)

    demo = commands.add_parser("demo-data", help="write a demo dataset in the ARCHS4 v2 layout")
    demo.add_argument("--samples", type=int, default=4000)
    demo.add_argument("--genes", type=int, default=2500)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--out", default=str(PROJECT_ROOT / "data" / "demo"))
    demo.set_defaults(handler=command_demo_data)
    return parser


USAGE_ERRORS = (UsageError, ReadOnlyQueryError, ParameterError, WarehouseNotBuiltError)
PERMISSION_HINT = (
    "file access is disabled (queries read the warehouse only through its views; "
    "write a result with --output FILE)"
)


def _command_name(argv: Sequence[str] | None) -> str:
    """`archs4 <command>` for messages, even when the arguments do not parse."""
    words = list(sys.argv[1:] if argv is None else argv)
    known = [word for word in words if word in ("sql", "similar", "coexpressed", "demo-data")]
    return f"archs4 {known[0]}" if known else "archs4"


def _run(argv: Sequence[str] | None) -> int:
    """Parse the arguments and run the command; exceptions go to `main`."""
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    return int(args.handler(args, settings))


def main(argv: Sequence[str] | None = None) -> int:
    """Run `archs4`; every failure is one line on stderr and an exit status (see the module)."""
    command = _command_name(argv)
    status, message = 0, ""
    try:
        status = _run(argv)
    except (*USAGE_ERRORS, SettingsError) as error:
        status, message = 2, f"{command}: {one_line(error)}"
    except (QueryError, duckdb.PermissionException) as error:
        hint = f"{PERMISSION_HINT}: " if isinstance(error, duckdb.PermissionException) else ""
        status, message = 1, f"{command}: {hint}{one_line(error)}"
    except duckdb.Error as error:  # syntax errors, missing views, failed casts: the query's fault
        status, message = 1, f"{command}: {one_line(error)}"
    except Exception as error:  # a bug or the environment: one line here, the detail in a log
        status, message = 1, failure_line(command, error, _log_dir())
    if message:
        print(message, file=sys.stderr)
    return status


def _log_dir() -> Path:
    """Where detail logs go: `ARCHS4_LOG_DIR`, or the default when the settings do not parse."""
    try:
        return Settings.from_env().log_dir
    except SettingsError:
        return Settings().log_dir


if __name__ == "__main__":
    sys.exit(main())
