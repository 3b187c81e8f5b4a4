"""`archs4 sql`: read-only queries of the catalog in every output format, safely parameterized."""

from __future__ import annotations

import json
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


def test_files_outside_the_warehouse_are_not_readable(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["sql", "SELECT * FROM read_text('/etc/hostname')"]) == 1
    assert "Permission" in capsys.readouterr().err


def test_output_inside_the_warehouse_is_refused(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
):
    target = warehouse / "raw" / "evil.parquet"
    assert main(["sql", "SELECT 1", "--format", "parquet", "--output", str(target)]) == 2
    assert "inside the warehouse" in capsys.readouterr().err
    assert not target.exists()


def test_missing_catalog(tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("ARCHS4_WAREHOUSE", str(tmp_path / "nowhere"))
    assert main(["sql", "SELECT 1"]) == 2
    assert "make run" in capsys.readouterr().err
