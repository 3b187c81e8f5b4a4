"""Check queries run within one worker's share of the memory budget and cores, and spill to a
temporary directory of their own (a block check runs beside the other block workers)."""

from __future__ import annotations

import duckdb
import pytest

from archs4.settings import Settings
from dagster_project.resources import check_queries


# ARCHS4_MEMORY_GB is in GB (1e9 bytes); DuckDB's limit is set in MiB.
@pytest.mark.parametrize(("memory_gb", "workers", "limit"), [("4", "2", 1907), ("1", "8", 256)])
def test_a_check_gets_one_workers_share(monkeypatch, memory_gb, workers, limit):
    monkeypatch.setenv("ARCHS4_MEMORY_GB", memory_gb)
    monkeypatch.setenv("ARCHS4_WORKERS", workers)
    resource = check_queries(Settings.from_env())
    config = resource.connection_config()
    assert config["memory_limit"] == f"{limit}MiB"  # at least 256 MB, whatever the share
    with duckdb.connect(config=config) as connection:
        set_limit = connection.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        spill = connection.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
    number, unit = set_limit.split()
    assert float(number) * {"MiB": 1, "GiB": 1024}[unit] == pytest.approx(limit, rel=0.05)
    assert "archs4-check-" in spill
    assert resource.connection_config()["temp_directory"] != config["temp_directory"]
