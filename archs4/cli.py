"""The `archs4` command: read-only SQL over the warehouse, and the demo dataset generator."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tabulate import tabulate

from archs4.catalog import ReadOnlyQueryError, connect_read_only, run_read_only_query
from archs4.paths import PROJECT_ROOT
from archs4.warehouse import Warehouse

OUTPUT_FORMATS = ("table", "csv", "json", "parquet")
TABLE_ROW_LIMIT = 1000


class UsageError(ValueError):
    """A bad argument from the user; printed without a traceback."""


def warehouse_from_env() -> Warehouse:
    return Warehouse.at(os.environ.get("ARCHS4_WAREHOUSE") or PROJECT_ROOT / "warehouse")


def _parse_parameters(pairs: Sequence[str]) -> dict[str, str | int | float]:
    parameters: dict[str, str | int | float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"--param expects NAME=VALUE, got {pair!r}")
        for cast in (int, float):
            try:
                parameters[name] = cast(value)
                break
            except ValueError:
                continue
        else:
            parameters[name] = value
    return parameters


def _checked_output_path(path: str, warehouse: Warehouse, force: bool) -> Path:
    output = Path(path).expanduser().absolute()
    if not output.parent.is_dir():
        raise UsageError(f"--output {path}: directory {output.parent} does not exist")
    if output.is_dir():
        raise UsageError(f"--output {path}: is a directory")
    root = Path(warehouse.root.path).absolute()
    if output == root or root in output.parents:
        raise UsageError(f"--output {path}: refusing to write inside the warehouse {root}")
    if output.exists() and not force:
        raise UsageError(f"--output {path}: file exists (use --force to overwrite)")
    return output


def _integral_decimals_as_ints(table: pa.Table) -> pa.Table:
    # DuckDB sums integers into HUGEINT (decimal(38, 0) in Arrow); print those as integers.
    for index, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            try:
                column = table.column(index).cast(pa.int64())
            except pa.ArrowInvalid:
                column = table.column(index).cast(pa.string())
            table = table.set_column(index, field.name, column)
    return table


def _printable(value: object) -> object:
    # GEO fields hold tabs (ARCHS4 joins characteristics with them); keep the table aligned.
    return value.replace("\t", "\\t").replace("\n", "\\n") if isinstance(value, str) else value


def _write(table: pa.Table, fmt: str, output: Path | None) -> None:
    if fmt == "table":
        rows = [
            {name: _printable(value) for name, value in row.items()}
            for row in _integral_decimals_as_ints(table.slice(0, TABLE_ROW_LIMIT)).to_pylist()
        ]
        text = tabulate(rows, headers="keys", tablefmt="github", floatfmt=".6g", missingval="NULL")
        more = table.num_rows - len(rows)
        if more > 0:
            text += f"\n... {more} more rows (use --format csv/json/parquet --output FILE)"
        text += f"\n({table.num_rows} row{'s' if table.num_rows != 1 else ''})\n"
        if output:
            output.write_text(text)
        else:
            sys.stdout.write(text)
    elif fmt == "csv":
        pacsv.write_csv(table, str(output) if output else sys.stdout.buffer)
    elif fmt == "json":
        import polars as pl

        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        text = frame.write_json()
        if output:
            output.write_text(text)
        else:
            sys.stdout.write(text + "\n")
    else:
        if output is None:
            raise UsageError("--format parquet needs --output FILE")
        pq.write_table(table, output)


def command_sql(args: argparse.Namespace) -> int:
    warehouse = warehouse_from_env()
    if bool(args.query) == bool(args.file):
        raise UsageError('give a query ("SELECT ...") or -f FILE.sql, not both')
    if args.file:
        sql_path = Path(args.file)
        if not sql_path.is_file():
            raise UsageError(f"-f {args.file}: no such SQL file")
        sql = sql_path.read_text()
    else:
        sql = args.query
    output = _checked_output_path(args.output, warehouse, args.force) if args.output else None
    with connect_read_only(warehouse) as connection:
        relation = run_read_only_query(connection, sql, _parse_parameters(args.param))
        table = relation.to_arrow_table() if relation is not None else pa.table({})
    _write(table, args.format, output)
    return 0


SIMILAR_SQL = PROJECT_ROOT / "sql" / "analytics" / "similar_samples.sql"


def command_similar(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise UsageError("-k must be at least 1")
    warehouse = warehouse_from_env()
    with connect_read_only(warehouse) as connection:
        found = connection.execute(
            "SELECT sample_idx FROM samples WHERE gsm = $gsm", {"gsm": args.gsm}
        ).fetchall()
        if not found:
            raise UsageError(f"{args.gsm} is not a sample of the warehouse")
        relation = run_read_only_query(
            connection, SIMILAR_SQL.read_text(), {"sample_idx": found[0][0], "k": args.k}
        )
        table = relation.to_arrow_table() if relation is not None else pa.table({})
    _write(table, args.format, None)
    return 0


def command_demo_data(args: argparse.Namespace) -> int:
    from archs4.demo_data import write_demo_dataset

    if args.samples < 2 or args.genes < 2:
        raise UsageError("--samples and --genes must be at least 2")
    paths = write_demo_dataset(
        Path(args.out), n_samples=args.samples, n_genes=args.genes, seed=args.seed
    )
    print(f"wrote {paths.h5}\n      {paths.gtf}\n      {paths.truth}\n      {paths.labels_dir}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archs4", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sql = commands.add_parser("sql", help="read-only SQL over the warehouse catalog")
    sql.add_argument("query", nargs="?", help="a SELECT statement")
    sql.add_argument("-f", "--file", help="run the query in this .sql file")
    sql.add_argument("--format", choices=OUTPUT_FORMATS, default="table")
    sql.add_argument("--output", help="write the result to this file instead of stdout")
    sql.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    sql.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind $NAME in the query to VALUE (safely, never spliced into the SQL)",
    )
    sql.set_defaults(handler=command_sql)

    similar = commands.add_parser(
        "similar", help="the samples most similar to a GSM (cosine of normalized profiles)"
    )
    similar.add_argument("gsm", help="a GSM accession of the warehouse")
    similar.add_argument("-k", type=int, default=10, help="how many samples (default 10)")
    similar.add_argument("--format", choices=OUTPUT_FORMATS[:3], default="table")
    similar.set_defaults(handler=command_similar)

    demo = commands.add_parser("demo-data", help="write a demo dataset in the ARCHS4 v2 layout")
    demo.add_argument("--samples", type=int, default=4000)
    demo.add_argument("--genes", type=int, default=2500)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--out", default=str(PROJECT_ROOT / "data" / "demo"))
    demo.set_defaults(handler=command_demo_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (UsageError, ReadOnlyQueryError, FileNotFoundError) as error:
        print(f"archs4 {args.command}: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # DuckDB errors (syntax, missing view) are user errors here
        if type(error).__module__.startswith(("duckdb", "_duckdb")):
            print(f"archs4 {args.command}: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
