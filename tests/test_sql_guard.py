"""`archs4 sql` against hostile input: nothing under the warehouse, or outside it, ever changes.

Every case runs `archs4.cli.main` in-process on a copy of the session's small warehouse (a copy,
so a symlink and a writer's hidden temporary file can be planted in it), with a canary directory
outside the warehouse and a scratch current directory, and checks the exit status, the one line
on stderr, and that the SHA-256 of every file under all of them is unchanged (and no detail log
was written: every failure is an anticipated one). `test_generated_statement_shapes` runs every
`duckdb.StatementType` through every wrapper (EXPLAIN, EXPLAIN ANALYZE, a CTE, after `SELECT 1;`,
a -f file, the path bound as a parameter); `test_the_connection_itself_*` bypass the statement
check and show that the connection cannot touch a file whatever it is asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from archs4 import cli
from archs4.catalog import connect_read_only
from archs4.cli import main
from archs4.warehouse import Warehouse

pytestmark = pytest.mark.slow

ST = duckdb.StatementType


# -- the stage: a warehouse copy, a canary, links, a scratch cwd ---------------------------------


@dataclass(frozen=True)
class Stage:
    """The directories of the hostile suite; `watched` ones must never change."""

    root: Path  # a copy of the built warehouse, with `link` -> canary/deep/inner
    canary: Path  # outside the warehouse: canary/secret.txt, canary/deep/{secret.txt,inner/}
    links: Path  # outside: links into the warehouse (directory, file, dangling, hardlink)
    cwd: Path  # the current directory of every case
    logs: Path  # ARCHS4_LOG_DIR: a detail log here means an unexpected exception
    scratch: Path  # not watched: -f files and allowed outputs
    counts: int  # rows of `counts`
    total: int  # sum of `counts.count`
    baseline: dict[str, str]  # snapshot of `watched`, taken once: every case compares to it

    @property
    def watched(self) -> list[Path]:
        return [self.root, self.canary, self.links, self.cwd, self.logs]


def snapshot(*tops: Path) -> dict[str, str]:
    """Path -> SHA-256 of every file, link target of every symlink, 'dir' of every directory."""
    state: dict[str, str] = {}
    for top in tops:
        for directory, dirnames, filenames in os.walk(top):
            here = Path(directory)
            state[str(here)] = "dir"
            for name in dirnames + filenames:
                path = here / name
                if path.is_symlink():
                    state[str(path)] = "link:" + str(path.readlink())
                elif path.is_file():
                    state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture(scope="module")
def stage(built, tmp_path_factory: pytest.TempPathFactory) -> Stage:
    base = tmp_path_factory.mktemp("hostile")
    root = base / "warehouse"
    shutil.copytree(built[2], root, symlinks=True)
    canary = base / "canary"
    (canary / "deep" / "inner").mkdir(parents=True)
    (canary / "secret.txt").write_text("canary,secret\n1,2\n")
    (canary / "deep" / "secret.txt").write_text("deep,secret\n3,4\n")
    (canary / "deep" / "o.csv").write_text("x\n")
    (root / "link").symlink_to(canary / "deep" / "inner", target_is_directory=True)
    block = root / "raw" / "counts" / "block=000000"
    shutil.copy(block / "part.parquet", block / ".tmp-deadbeef-part.parquet")  # a writer's
    links = base / "links"
    links.mkdir()
    (links / "to_warehouse").symlink_to(root, target_is_directory=True)
    (links / "to_catalog").symlink_to(root / "warehouse.duckdb")
    (links / "dangling_into_warehouse").symlink_to(root / "new.csv")
    for name in ("cwd", "logs", "scratch"):
        (base / name).mkdir()
    watched = [root, canary, links, base / "cwd", base / "logs"]
    counts = built[1]
    return Stage(
        root, canary, links, base / "cwd", base / "logs", base / "scratch", counts.size,
        int(counts.sum()), snapshot(*watched),
    )  # fmt: skip


@dataclass
class Run:
    code: int
    out: str
    err: str


class Scene:
    """One case on the stage: runs `archs4 sql`, and checks that nothing watched changed."""

    def __init__(self, stage: Stage, capsys: pytest.CaptureFixture[str]) -> None:
        self.stage = stage
        self.capsys = capsys
        self.before = stage.baseline
        self.unverified = True  # something may have run since the last `changes()`

    def sql(self, *argv: str) -> Run:
        self.unverified = True
        code = main(["sql", *argv])
        captured = self.capsys.readouterr()
        return Run(code, captured.out, captured.err)

    def changes(self) -> dict[str, tuple[str | None, str | None]]:
        self.unverified = False
        after = snapshot(*self.stage.watched)
        return {
            path: (self.before.get(path), after.get(path))
            for path in sorted(set(self.before) | set(after))
            if self.before.get(path) != after.get(path)
        }

    def refused(self, run: Run, code: int, pattern: str) -> None:
        """`run` failed with `code` and one stderr line matching `pattern`; nothing changed."""
        lines = run.err.splitlines()
        assert run.code == code, run.err
        assert len(lines) == 1 and lines[0].startswith("archs4 sql: "), run.err
        assert re.search(pattern, lines[0]), lines[0]
        assert "Traceback" not in run.err and run.out == ""
        assert self.changes() == {}


@pytest.fixture
def scene(
    stage: Stage, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Scene]:
    monkeypatch.setenv("ARCHS4_WAREHOUSE", str(stage.root))
    monkeypatch.setenv("ARCHS4_LOG_DIR", str(stage.logs))
    monkeypatch.chdir(stage.cwd)
    current = Scene(stage, capsys)
    yield current
    if current.unverified:  # a case checked by `refused` is not hashed twice
        assert current.changes() == {}


def csv_rows(run: Run) -> list[list[str]]:
    assert run.code == 0, run.err
    return [line.replace('"', "").split(",") for line in run.out.splitlines()]


REFUSED = "only queries are allowed"
NO_FILES = "file access is disabled"


# -- 1. EXPLAIN ANALYZE runs its statement: refused, and powerless anyway ------------------------


def explain_copy_attacks(stage: Stage) -> dict[str, str]:
    root = stage.root
    return {
        "deletes the expression layer": (
            f"EXPLAIN ANALYZE COPY (SELECT 1 AS x, 'a' AS p) TO '{root}/normalized' "
            "(FORMAT parquet, PARTITION_BY (p), OVERWRITE)"
        ),
        "replaces the catalog": (
            f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{root}/warehouse.duckdb' (FORMAT csv)"
        ),
        "adds rows to counts": (
            "EXPLAIN ANALYZE COPY (SELECT 1::INT AS sample_idx, 1::INT AS gene_idx, "
            f"1::UINTEGER AS count) TO '{root}/raw/counts/block=000000/x.parquet'"
        ),
        "json": (
            "EXPLAIN (ANALYZE, FORMAT json) COPY (SELECT 1 AS x) "
            f"TO '{root}/warehouse.duckdb' (FORMAT csv)"
        ),
        "after a query": f"SELECT 1; EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{root}/x.csv'",
        "commented": f"/* hi */ EXPLAIN -- x\n ANALYZE COPY (SELECT 1) TO '{root}/x.csv'",
        "set through explain": "EXPLAIN ANALYZE SET enable_external_access = true",
        "checkpoint through explain": "EXPLAIN (ANALYZE, FORMAT json) CHECKPOINT",
    }


@pytest.mark.parametrize(
    "attack",
    [
        "deletes the expression layer",
        "replaces the catalog",
        "adds rows to counts",
        "json",
        "after a query",
        "commented",
        "set through explain",
        "checkpoint through explain",
    ],
)
def test_explain_analyze_of_a_write_is_refused(scene: Scene, stage: Stage, attack: str):
    statement = explain_copy_attacks(stage)[attack]
    scene.refused(scene.sql(statement), 2, rf"{REFUSED}.*refused (EXPLAIN of a \w+|a \w+)")


def test_explain_analyze_from_a_file_and_through_a_parameter(scene: Scene, stage: Stage):
    sql_file = stage.scratch / "attack.sql"
    sql_file.write_text(explain_copy_attacks(stage)["replaces the catalog"])
    scene.refused(scene.sql("-f", str(sql_file)), 2, rf"{REFUSED}.*EXPLAIN of a COPY")
    target = f"{stage.root}/warehouse.duckdb"
    run = scene.sql("EXPLAIN ANALYZE COPY (SELECT 1) TO $p (FORMAT csv)", "--param", f"p={target}")
    scene.refused(run, 2, rf"{REFUSED}.*EXPLAIN of a COPY")
    run = scene.sql("EXPLAIN ANALYZE COPY (SELECT 1) TO $p", "--text", f"p={target}")
    scene.refused(run, 2, rf"{REFUSED}.*EXPLAIN of a COPY")


def test_explain_of_queries_still_runs(scene: Scene):
    run = scene.sql("EXPLAIN (ANALYZE, FORMAT json) SELECT count(*) FROM counts", "--format", "csv")
    assert run.code == 0 and "explain_value" in run.out
    for query in ("EXPLAIN SELECT 1", "EXPLAIN ANALYZE SELECT 1", "EXPLAIN (SELECT 1)"):
        assert scene.sql(query).code == 0


# -- 2. --output: resolved, never inside the warehouse, never written through -------------------


def output_attacks(stage: Stage) -> dict[str, str]:
    name = stage.root.name
    return {
        "dot-dot": f"{stage.canary}/../{name}/o.csv",
        "relative": f"../{name}/o.csv",
        "through a symlinked directory": f"{stage.links}/to_warehouse/o.csv",
        "a symlink to the catalog": f"{stage.links}/to_catalog",
        "a dangling symlink into the warehouse": f"{stage.links}/dangling_into_warehouse",
        "the root itself": str(stage.root),
        "through the planted link": f"{stage.root}/link/../o.csv",
    }


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(
    "attack",
    [
        "dot-dot",
        "relative",
        "through a symlinked directory",
        "a symlink to the catalog",
        "a dangling symlink into the warehouse",
        "the root itself",
    ],
)
def test_output_into_the_warehouse_is_refused(scene: Scene, stage: Stage, attack: str, force: bool):
    target = output_attacks(stage)[attack]
    run = scene.sql("SELECT 1 AS x", "--format", "csv", "--output", target, *["--force"] * force)
    scene.refused(run, 2, r"inside the warehouse|not a file name")


def test_output_through_a_link_inside_the_warehouse(scene: Scene, stage: Stage):
    # <root>/link/.. is canary/deep on disk, outside the warehouse, so writing there is allowed;
    # the canary is watched, so ask for its existing o.csv without --force: "file exists".
    run = scene.sql("SELECT 1 AS x", "--output", output_attacks(stage)["through the planted link"])
    scene.refused(run, 2, "file exists")


def test_output_replaces_a_hardlink_and_a_symlink_never_writes_through(scene: Scene, stage: Stage):
    catalog = stage.root / "warehouse.duckdb"
    hard = stage.scratch / "hard.duckdb"
    hard.unlink(missing_ok=True)
    try:
        os.link(catalog, hard)
    except OSError:
        pytest.skip("no hardlinks on this filesystem")
    scene.refused(scene.sql("SELECT 1 AS x", "--output", str(hard)), 2, "file exists")
    run = scene.sql("SELECT 1 AS x", "--format", "csv", "--output", str(hard), "--force")
    assert run.code == 0, run.err
    assert hard.read_text().splitlines() == ['"x"', "1"]
    assert hard.stat().st_ino != catalog.stat().st_ino
    outside = stage.scratch / "outside.csv"
    outside.write_text("keep\n")
    soft = stage.scratch / "soft.csv"
    soft.unlink(missing_ok=True)
    soft.symlink_to(outside)
    run = scene.sql("SELECT 2 AS y", "--format", "csv", "--output", str(soft), "--force")
    assert run.code == 0 and not soft.is_symlink() and outside.read_text() == "keep\n"
    assert [p.name for p in stage.scratch.glob(".*.tmp")] == []  # no temporary left


def test_output_never_replaces_special_files(
    scene: Scene, stage: Stage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # Stand-ins, so that a regression cannot replace the real /dev/stdout or /dev/null.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    run = scene.sql("SELECT 1", "--output", str(fifo), "--force")
    scene.refused(run, 2, "not a regular file")
    fake_dev = tmp_path / "dev"
    fake_dev.mkdir()
    terminal = tmp_path / "terminal.txt"
    terminal.write_text("")
    (fake_dev / "stdout").symlink_to(terminal)
    monkeypatch.setattr(cli, "SYSTEM_DIRECTORIES", (fake_dev,))
    run = scene.sql("SELECT 1", "--output", str(fake_dev / "stdout"), "--force")
    scene.refused(run, 2, "refusing to replace a system file")
    assert (fake_dev / "stdout").is_symlink() and terminal.read_text() == ""


def test_relative_output_lands_in_the_current_directory(scene: Scene, stage: Stage):
    run = scene.sql("SELECT 1 AS x", "--format", "parquet", "--output", "result.parquet")
    assert run.code == 0, run.err
    written = stage.cwd / "result.parquet"
    assert pq.read_table(written).column("x").to_pylist() == [1]
    assert set(scene.changes()) == {str(written)}
    written.unlink()
    assert scene.changes() == {}


# -- 3. a symlink inside the warehouse plus `..` --------------------------------------------------


def test_symlink_escape_reads_and_writes_nothing(scene: Scene, stage: Stage):
    escaped = f"{stage.root}/link/../secret.txt"  # canary/deep/secret.txt on disk
    for query in (
        f"SELECT * FROM read_csv('{escaped}')",
        f"SELECT * FROM read_text('{stage.root}/link/../../secret.txt')",
        f"SELECT * FROM glob('{stage.root}/link/../*')",
        f"SELECT * FROM read_parquet('{stage.root}/raw/genes.parquet')",
    ):
        scene.refused(scene.sql(query), 1, NO_FILES)
    run = scene.sql(f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{stage.root}/link/../written.csv'")
    scene.refused(run, 2, REFUSED)
    assert not (stage.canary / "deep" / "written.csv").exists()


def test_hidden_temporary_files_are_not_read(scene: Scene, stage: Stage):
    run = scene.sql("SELECT count(*) AS n, sum(count) AS total FROM counts", "--format", "csv")
    assert csv_rows(run)[1] == [str(stage.counts), str(stage.total)]


# -- 4. several statements, odd statements, odd files, odd parameters -----------------------------


def test_several_statements_print_the_last_result(scene: Scene):
    run = scene.sql("SELECT 1 AS a; SELECT 2 AS b", "--format", "csv")
    assert csv_rows(run) == [["b"], ["2"]]
    run = scene.sql(
        "SELECT $v AS v; SELECT $w AS w;", "--param", "v=3", "--text", "w=4", "--format", "csv"
    )
    assert csv_rows(run) == [["w"], ["4"]]
    scene.refused(scene.sql("SELECT 1; DROP VIEW counts"), 2, rf"{REFUSED}.*DROP")


@pytest.mark.parametrize(
    ("statement", "code", "pattern"),
    [
        ("UPDATE EXTENSIONS", 1, "cannot check a statement of a kind"),
        ("UPDATE EXTENSIONS (httpfs)", 1, "cannot check a statement of a kind"),
        ("PRAGMA version", 2, rf"{REFUSED}.*PRAGMA"),
        ("CALL pragma_version()", 2, rf"{REFUSED}.*CALL"),
        ("PIVOT genes ON biotype USING count(*)", 2, rf"{REFUSED}.*MULTI"),
        ("", 2, "no SQL statement given"),
        ("-- only a comment", 2, "no SQL statement given"),
        ("SELEC 1", 1, "Parser Error"),
        ("SELECT * FROM nowhere", 1, "Catalog Error"),
        ("SELECT * FROM args", 1, "Catalog Error"),  # no scans of Python variables
        ("SELECT ?", 2, "positional parameters"),
        ("SELECT $1", 2, "positional parameters"),
        ("SELECT $missing", 2, r"uses \$missing"),
    ],
)
def test_odd_statements_fail_in_one_line(scene: Scene, statement: str, code: int, pattern: str):
    scene.refused(scene.sql(statement), code, pattern)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"SELECT 1\x00\x01\x02", "a binary file"),
        (bytes(range(256)), "a binary file"),
        ("SELECT 'caf\u00e9'".encode("latin-1"), "not UTF-8"),
    ],
)
def test_binary_sql_files_fail_in_one_line(scene: Scene, stage: Stage, content: bytes, pattern):
    sql_file = stage.scratch / "binary.sql"
    sql_file.write_bytes(content)
    scene.refused(scene.sql("-f", str(sql_file)), 1, pattern)


def test_usage_errors_are_one_line(scene: Scene, stage: Stage):
    scene.refused(scene.sql("-f", str(stage.scratch / "missing.sql")), 2, "no such SQL file")
    scene.refused(scene.sql("SELECT 1", "-f", "x.sql"), 2, "not both")
    scene.refused(scene.sql("SELECT 1", "--bogus"), 2, "unrecognized arguments")
    scene.refused(scene.sql("SELECT 1", "--param", "1x=2"), 2, "expects NAME=VALUE")
    scene.refused(scene.sql("SELECT $a", "--param", "a=1", "--text", "a=1"), 2, "more than once")
    scene.refused(scene.sql("SELECT 1", "--format", "parquet"), 2, "needs --output")


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--param", "007", ("007", "VARCHAR")),
        ("--param", "1e5", ("1e5", "VARCHAR")),
        ("--param", "nan", ("nan", "VARCHAR")),
        ("--param", "inf", ("inf", "VARCHAR")),
        ("--param", "+1", ("+1", "VARCHAR")),
        ("--param", " 1", (" 1", "VARCHAR")),
        ("--param", "42", ("42", "INTEGER")),
        ("--param", "-3", ("-3", "INTEGER")),
        ("--param", "0.25", ("0.25", "DOUBLE")),
        ("--text", "42", ("42", "VARCHAR")),
        ("--text", "x' OR '1'='1", ("x' OR '1'='1", "VARCHAR")),
    ],
)
def test_parameters_are_numbers_only_when_exact(scene: Scene, option, value, expected):
    run = scene.sql(
        "SELECT $v::VARCHAR AS v, typeof($v) AS t", option, f"v={value}", "--format", "json"
    )
    assert run.code == 0, run.err
    assert [(row["v"], row["t"]) for row in json.loads(run.out)] == [expected]


def test_an_unexpected_error_names_a_detail_log(
    scene: Scene, stage: Stage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("ARCHS4_LOG_DIR", str(tmp_path / "logs"))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(cli, "run_read_only_query", broken)
    run = scene.sql("SELECT 1")
    scene.refused(run, 1, r"something broke \(details: .*\.log\)")
    (log,) = (tmp_path / "logs").iterdir()
    assert "Traceback" in log.read_text() and "second line" in log.read_text()


def test_a_bad_setting_is_one_line(scene: Scene, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ARCHS4_BLOCK_SIZE", "abc")
    scene.refused(scene.sql("SELECT 1"), 2, "ARCHS4_BLOCK_SIZE='abc': is not a whole number")
    monkeypatch.delenv("ARCHS4_BLOCK_SIZE")
    monkeypatch.setenv("ARCHS4_WAREHOUS", "x")
    scene.refused(scene.sql("SELECT 1"), 2, "did you mean ARCHS4_WAREHOUSE")


def test_similar_fails_in_one_line(scene: Scene, capsys: pytest.CaptureFixture[str]):
    assert main(["similar", "GSM0", "-k", "3"]) == 2
    assert capsys.readouterr().err == "archs4 similar: GSM0 is not a sample of the warehouse\n"
    assert main(["similar", "GSM0", "-k", "0"]) == 2
    assert capsys.readouterr().err == "archs4 similar: -k must be at least 1\n"


# -- 5. a copied, moved or symlinked warehouse -----------------------------------------------------


def test_a_moved_warehouse_is_read_where_it_lies(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    original = snapshot(built[2])
    copied = tmp_path / "copied"
    shutil.copytree(built[2], copied)
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    copied.rename(moved)  # warehouse.duckdb still names the original's absolute paths
    monkeypatch.setenv("ARCHS4_WAREHOUSE", str(moved))
    query = "SELECT (SELECT sum(count) FROM counts) AS total, (SELECT count(*) FROM samples) AS n"
    assert main(["sql", query, "--format", "csv"]) == 0
    expected = [str(int(built[1].sum())), str(built[1].shape[1])]
    assert capsys.readouterr().out.splitlines()[1].split(",") == expected
    (moved / "warehouse.duckdb").unlink()  # the catalog file is not needed to read
    assert main(["sql", query, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",") == expected
    (moved / "raw" / "genes.parquet").unlink()  # nor built, without either
    assert main(["sql", query]) == 2
    assert "build the warehouse first (`make run`)" in capsys.readouterr().err
    link = tmp_path / "link_to_original"
    link.symlink_to(built[2], target_is_directory=True)
    monkeypatch.setenv("ARCHS4_WAREHOUSE", str(link))
    assert main(["sql", query, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",") == expected
    assert main(["sql", "SELECT 1", "--output", str(link / "o.csv")]) == 2
    assert "inside the warehouse" in capsys.readouterr().err
    assert snapshot(built[2]) == original


# -- the construction: the connection itself cannot touch a file -----------------------------------


def direct_attacks(stage: Stage) -> list[str]:
    root, canary = stage.root, stage.canary
    return [
        f"COPY (SELECT 1 AS x) TO '{root}/warehouse.duckdb' (FORMAT csv)",
        f"COPY (SELECT 1 AS x, 'a' AS p) TO '{root}/normalized' "
        "(FORMAT parquet, PARTITION_BY (p), OVERWRITE)",
        f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{root}/raw/counts/block=000000/x.parquet'",
        f"COPY (SELECT 1 AS x) TO '{canary}/written.csv'",
        f"COPY (SELECT 1 AS x) TO '{root}/link/../escaped.csv'",
        f"COPY sink FROM '{canary}/secret.txt'",
        f"ATTACH '{root}/warehouse.duckdb' AS w",
        f"ATTACH '{canary}/new.duckdb' AS n",
        "SELECT * FROM read_text('/etc/hostname')",
        f"SELECT * FROM read_csv('{root}/link/../secret.txt')",
        f"SELECT * FROM read_parquet('{root}/raw/genes.parquet')",
        "SELECT * FROM glob('/*')",
        "INSTALL httpfs",
        "LOAD httpfs",
        "UPDATE EXTENSIONS",
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
        f"SET allowed_directories = ['{root}']",
        "SET temp_directory = '.'",
        f"EXPORT DATABASE '{canary}/export'",
        f"IMPORT DATABASE '{canary}'",
        "CREATE PERSISTENT SECRET p (TYPE s3, KEY_ID 'a', SECRET 'b')",
    ]


def test_the_connection_itself_refuses_every_file_access(scene: Scene, stage: Stage):
    with connect_read_only(Warehouse.at(stage.root)) as connection:
        connection.execute("CREATE TABLE sink (a VARCHAR, b VARCHAR)")  # in memory
        for statement in direct_attacks(stage):
            with pytest.raises(duckdb.Error) as raised:
                connection.execute(statement).fetchall()
            assert re.search(
                r"disabled by configuration|disabled through configuration|configuration has been"
                r" locked|Permission Error",
                str(raised.value),
            ), (statement, raised.value)
        settings = connection.execute(
            "SELECT current_setting('enable_external_access'), "
            "current_setting('lock_configuration'), current_setting('temp_directory')"
        ).fetchone()
        assert settings is not None and settings[:2] == (False, True)
        assert not Path(settings[2]).resolve().is_relative_to(stage.root.resolve())
        rows = connection.execute("SELECT count(*), sum(count) FROM counts").fetchone()
        assert rows == (stage.counts, stage.total)
    assert not (stage.canary / "deep" / "escaped.csv").exists()
    assert scene.changes() == {}


def test_the_connection_itself_changes_only_its_own_memory(scene: Scene, stage: Stage):
    with connect_read_only(Warehouse.at(stage.root)) as connection:
        connection.execute("DROP VIEW counts")
        connection.execute("CREATE TABLE copy AS SELECT * FROM genes")
        connection.execute("CHECKPOINT")
    with connect_read_only(Warehouse.at(stage.root)) as connection:
        assert connection.execute("SELECT count(*) FROM counts").fetchone() == (stage.counts,)
    assert scene.changes() == {}


def test_views_match_the_catalog_file(stage: Stage):
    """Same views, columns and types as `warehouse.duckdb` (block stays a string)."""
    describe = "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary"

    def shapes(connection: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
        views = sorted(row[0] for row in connection.execute(describe).fetchall())
        return {
            view: [(r[0], r[1]) for r in connection.execute(f'DESCRIBE "{view}"').fetchall()]
            for view in views
        }

    with duckdb.connect(str(stage.root / "warehouse.duckdb"), read_only=True) as native:
        expected = shapes(native)
    with connect_read_only(Warehouse.at(stage.root)) as connection:
        assert shapes(connection) == expected
    assert ("block", "VARCHAR") in expected["counts"]


# -- generated: every statement type, in every wrapper ---------------------------------------------

# {path} is replaced by a target path (or $path, bound through --param). Statement types that SQL
# text never produces in this DuckDB are listed in UNREACHABLE; types DuckDB parses as another
# one are in PARSED_AS; `None` holds statements of a kind the Python enum has no member for.
EXAMPLES: dict[ST | None, list[str]] = {
    ST.SELECT: [
        "SELECT * FROM read_csv({path})",
        "SELECT * FROM read_text({path})",
        "SELECT * FROM glob({path})",
    ],
    ST.INSERT: ["INSERT INTO genes VALUES (1)", "INSERT OR REPLACE INTO genes SELECT * FROM genes"],
    ST.UPDATE: ["UPDATE genes SET symbol = 'x'"],
    ST.CREATE: [
        "CREATE TABLE t AS SELECT * FROM read_csv({path})",
        "CREATE OR REPLACE VIEW counts AS SELECT 1 AS x",
        "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
        "CREATE SEQUENCE q",
    ],
    ST.DELETE: ["DELETE FROM genes", "TRUNCATE genes"],
    ST.PREPARE: ["PREPARE p AS COPY (SELECT 1) TO {path}"],
    ST.EXECUTE: ["EXECUTE p"],
    ST.ALTER: ["ALTER VIEW counts RENAME TO c2", "COMMENT ON VIEW counts IS 'x'"],
    ST.TRANSACTION: ["BEGIN TRANSACTION", "COMMIT", "ROLLBACK"],
    ST.COPY: [
        "COPY (SELECT 1 AS x) TO {path}",
        "COPY (SELECT 1 AS x, 'a' AS p) TO {path} (FORMAT parquet, PARTITION_BY (p), OVERWRITE)",
        "COPY genes FROM {path}",
    ],
    ST.ANALYZE: ["ANALYZE", "ANALYZE genes"],
    ST.VARIABLE_SET: ["SET VARIABLE v = 1"],
    ST.CREATE_FUNC: ["CREATE MACRO m(x) AS x + 1"],
    ST.EXPLAIN: ["EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO {path}"],
    ST.DROP: ["DROP VIEW counts", "DEALLOCATE p", "DROP SECRET s"],
    ST.EXPORT: ["EXPORT DATABASE {path}"],
    ST.PRAGMA: ["PRAGMA enable_profiling", "PRAGMA version", "IMPORT DATABASE {path}"],
    ST.VACUUM: ["VACUUM", "VACUUM ANALYZE"],
    ST.CALL: ["CALL pragma_version()", "CHECKPOINT", "FORCE CHECKPOINT"],
    ST.SET: [
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "SET temp_directory = {path}",
        "USE memory",
    ],
    ST.LOAD: ["LOAD httpfs", "INSTALL httpfs", "FORCE INSTALL httpfs", "LOAD {path}"],
    ST.ATTACH: ["ATTACH {path} AS w", "ATTACH {path} AS w (READ_ONLY)"],
    ST.DETACH: ["DETACH w", "DETACH DATABASE IF EXISTS memory"],
    ST.MULTI: ["PIVOT genes ON biotype USING count(*)"],
    ST.COPY_DATABASE: ["COPY FROM DATABASE memory TO w"],
    ST.MERGE_INTO: [
        "MERGE INTO genes USING (SELECT 1 AS gene_idx) AS s ON genes.gene_idx = s.gene_idx "
        "WHEN MATCHED THEN DELETE"
    ],
    None: ["UPDATE EXTENSIONS", "UPDATE EXTENSIONS (httpfs)"],
}
PARSED_AS = {ST.ANALYZE: ST.VACUUM, ST.VARIABLE_SET: ST.SET, ST.CREATE_FUNC: ST.CREATE}
PARSED_AS_PER_STATEMENT = {
    "IMPORT DATABASE {path}": ST.PRAGMA,
    "CHECKPOINT": ST.CALL,
    "FORCE CHECKPOINT": ST.CALL,
    "COPY FROM DATABASE memory TO w": ST.PRAGMA,
}
UNREACHABLE = {
    ST.INVALID: "a statement that does not parse has no type",
    ST.RELATION: "Python relation objects only, never SQL text",
    ST.LOGICAL_PLAN: "internal plans only",
    ST.EXTENSION: "statements of parser extensions; none can be loaded",
}


def targets(stage: Stage) -> dict[str, str]:
    return {
        "catalog": f"{stage.root}/warehouse.duckdb",
        "data": f"{stage.root}/raw/counts/block=000000/part.parquet",
        "escape": f"{stage.root}/link/../escaped",
        "outside": f"{stage.canary}/written",
    }


WRAPPERS: dict[str, Callable[[str], str]] = {
    "plain": lambda s: s,
    "explain": lambda s: f"EXPLAIN {s}",
    "explain_analyze": lambda s: f"EXPLAIN ANALYZE {s}",
    "explain_json": lambda s: f"EXPLAIN (ANALYZE, FORMAT json) {s}",
    "cte": lambda s: f"WITH t AS (SELECT 1 AS x) {s}",
    "after_select": lambda s: f"SELECT 1; {s}",
    "file": lambda s: s,
    "file_explain_analyze": lambda s: f"EXPLAIN ANALYZE {s}",
    "param": lambda s: s,
    "param_explain_analyze": lambda s: f"EXPLAIN ANALYZE {s}",
}


# Every wrapper gets a target inside the warehouse (the catalog) and one outside it; the
# wrappers that run a statement get the data-file and symlink-escape targets too.
ALL_TARGETS = {"plain", "explain_analyze", "param_explain_analyze"}


def generated_cases() -> list[tuple[ST | None, str, str, str]]:
    """(kind, statement template, wrapper, target) for every combination that applies."""
    cases = []
    for kind, statements in EXAMPLES.items():
        for statement in statements:
            for wrapper in WRAPPERS:
                with_path = "{path}" in statement
                if wrapper.startswith("param") and not with_path:
                    continue
                chosen = ["catalog", "outside"]
                if wrapper in ALL_TARGETS:
                    chosen += ["data", "escape"]
                for target in chosen if with_path else ["-"]:
                    cases.append((kind, statement, wrapper, target))
    return cases


PARSER = duckdb.connect(":memory:")


def expected_outcome(sql: str, kind: ST | None, wrapper: str) -> tuple[int, str]:
    """Exit status and message of `sql`, from DuckDB's own parser and the example's kind."""
    try:
        PARSER.extract_statements(sql)
    except duckdb.Error:
        return 1, r"(Parser|Syntax|Binder|Not implemented|Invalid Input) Error"
    explained = wrapper.startswith(("explain", "file_explain", "param_explain"))
    if kind is None and not explained:
        return 1, "cannot check a statement of a kind"
    if kind == ST.SELECT:
        return 1, rf"{NO_FILES}|Binder Error"
    return 2, REFUSED


@dataclass(frozen=True)
class Case:
    kind: ST | None
    statement: str
    wrapper: str
    target: str

    @property
    def id(self) -> str:
        kind = self.kind.name if self.kind else "UNNAMED"
        return f"{kind}-{self.statement[:24]}-{self.wrapper}-{self.target}"


CASES = [Case(*case) for case in generated_cases()]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_generated_statement_shapes(scene: Scene, stage: Stage, case: Case):
    """Every example in every wrapper fails as DuckDB's parser and its kind say; nothing changes."""
    kind, statement, wrapper, target = case.kind, case.statement, case.wrapper, case.target
    path = targets(stage).get(target, "")
    bound = wrapper.startswith("param")
    sql = WRAPPERS[wrapper](statement.replace("{path}", "$path" if bound else f"'{path}'"))
    argv = [sql]
    if wrapper.startswith("file"):
        sql_file = stage.scratch / "case.sql"
        sql_file.write_text(sql)
        argv = ["-f", str(sql_file)]
    if bound:
        argv += ["--param", f"path={path}"]
    code, pattern = expected_outcome(sql, kind, wrapper)
    scene.refused(scene.sql(*argv), code, pattern)


def test_every_statement_type_has_examples():
    assert set(EXAMPLES) - {None} | set(UNREACHABLE) == set(ST.__members__.values())
    for kind, statements in EXAMPLES.items():
        for statement in statements:
            (parsed,) = PARSER.extract_statements(statement.replace("{path}", "'x'"))
            if kind is None:
                with pytest.raises(ValueError):
                    _ = parsed.type
                continue
            claimed = PARSED_AS_PER_STATEMENT.get(statement, PARSED_AS.get(kind, kind))
            assert parsed.type == claimed, statement
