"""`archs4 sql`: read-only queries of the catalog in every output format, safely parameterized."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from archs4.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture
def warehouse(built, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = built[2]
    monkeypatch.setenv("ARCHS4_WAREHOUSE", str(root))
    return root


def test_table_output(warehouse: Path, built, capsys: pytest.CaptureFixture[str]):
    counts = built[1]
    assert main(["sql", "SELECT count(*) AS n, sum(count) AS total FROM counts"]) == 0
    out = capsys.readouterr().out
    header, _, row = out.splitlines()[:3]
    assert [h.strip() for h in header.strip("|").split("|")] == ["n", "total"]
    assert [int(v) for v in row.strip("|").split("|")] == [counts.size, counts.sum()]
    assert "(1 row)" in out


def test_json_csv_parquet(warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    query = "SELECT gene_idx, ensembl_id FROM genes ORDER BY gene_idx LIMIT 3"
    assert main(["sql", query, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["gene_idx"] for r in rows] == [0, 1, 2]
    assert main(["sql", query, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == '"gene_idx","ensembl_id"'
    target = tmp_path / "genes.parquet"
    assert main(["sql", query, "--format", "parquet", "--output", str(target)]) == 0
    assert pq.read_table(target).column("gene_idx").to_pylist() == [0, 1, 2]
    assert main(["sql", query, "--format", "parquet", "--output", str(target)]) == 2
    assert "exists" in capsys.readouterr().err


def test_query_from_file_with_parameters(
    warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    sql = tmp_path / "one_sample.sql"
    sql.write_text("-- the GSM of one sample\nSELECT gsm FROM samples WHERE sample_idx = $idx\n")
    assert main(["sql", "-f", str(sql), "--param", "idx=4", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == '"GSM2000004"'
    # A value is bound, never spliced: an injection attempt is just a string that matches nothing.
    assert main(["sql", "SELECT gsm FROM samples WHERE gsm = $g", "--param", "g=x' OR '1'='1"]) == 0
    assert "(0 rows)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE x AS SELECT 1",
        "DROP VIEW counts",
        "COPY (SELECT 1) TO 'leak.csv'",
        "INSERT INTO genes VALUES (1)",
        "ATTACH 'other.duckdb' AS other",
        "SELECT 1; DROP VIEW counts",
        "SET enable_external_access = true",
    ],
)
def test_writes_are_refused(warehouse: Path, statement: str, capsys: pytest.CaptureFixture[str]):
    assert main(["sql", statement]) == 2
    assert "only queries are allowed" in capsys.readouterr().err
    assert main(["sql", "SELECT count(*) FROM genes"]) == 0


def test_files_are_not_readable(warehouse: Path, capsys: pytest.CaptureFixture[str]):
    # The connection has no filesystem: neither files outside the warehouse nor its own Parquet
    # files can be named; the data is reachable only through the views.
    for path in ("/etc/hostname", str(warehouse / "raw" / "genes.parquet")):
        assert main(["sql", f"SELECT * FROM read_text('{path}')"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("archs4 sql: file access is disabled") and err.count("\n") == 1


def test_explain_analyze_cannot_write(warehouse: Path, capsys: pytest.CaptureFixture[str]):
    catalog = warehouse / "warehouse.duckdb"
    before = catalog.read_bytes()
    statement = f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{catalog}' (FORMAT csv)"
    assert main(["sql", statement]) == 2
    assert "refused EXPLAIN of a COPY statement" in capsys.readouterr().err
    assert catalog.read_bytes() == before


def test_several_statements_and_text_parameters(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["sql", "SELECT 1 AS a; SELECT 2 AS b", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ['"b"', "2"]
    query = "SELECT $z AS z, typeof($z) AS t, $n AS n, typeof($n) AS u"
    assert main(["sql", query, "--param", "z=007", "--param", "n=7", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == '"007","VARCHAR",7,"INTEGER"'
    assert main(["sql", query, "--text", "z=1", "--text", "n=7", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == '"1","VARCHAR","7","VARCHAR"'


def test_help_documents_text_and_several_statements(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exited:
        main(["sql", "--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--text NAME=VALUE" in out and "the last one's result is printed" in out


def test_output_inside_the_warehouse_is_refused(
    warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    target = warehouse / "raw" / "evil.parquet"
    assert main(["sql", "SELECT 1", "--format", "parquet", "--output", str(target)]) == 2
    assert "inside the warehouse" in capsys.readouterr().err
    assert not target.exists()
    # Checked on the resolved path: `..` and symlinks do not get around it.
    sneaky = tmp_path / os.path.relpath(warehouse, tmp_path) / "o.csv"  # <tmp>/../..
    (tmp_path / "link").symlink_to(warehouse, target_is_directory=True)
    for path in (sneaky, tmp_path / "link" / "o.csv"):
        assert main(["sql", "SELECT 1", "--output", str(path), "--force"]) == 2
        assert "inside the warehouse" in capsys.readouterr().err
        assert not (warehouse / "o.csv").exists()


def test_missing_catalog(tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("ARCHS4_WAREHOUSE", str(tmp_path / "nowhere"))
    assert main(["sql", "SELECT 1"]) == 2
    assert "make run" in capsys.readouterr().err
