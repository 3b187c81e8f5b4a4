"""Every sample field of the source file, and its `meta/info`, reach the warehouse: checked
against h5py's own read of the file, on the demo release (all 22 fields of v2.6) and on an older
layout that lacks most of them (NULLs), and through `make run`'s plan on a warehouse whose
samples an older version wrote with fewer fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from archs4.catalog import MixedSchemaError, build_catalog, connect_read_only
from archs4.datasets import RELEASE_INFO_TABLE, RELEASE_RECORD, SAMPLES_DATASET
from archs4.ingest import outdated_sample_blocks
from archs4.paths import PROJECT_ROOT
from archs4.reader import Archs4FormatError, SampleRange, open_archs4
from archs4.sample_fields import SAMPLE_FIELDS, SAMPLES_SCHEMA, column_for_field
from archs4.warehouse import Warehouse
from dagster_project.headless import materialize_stages
from dagster_project.plan import Stage, pending_blocks
from tests.archs4_files import example_counts, write_archs4_file, write_gtf
from tests.conftest import resources_for

# The 22 keys of meta/samples in an ARCHS4 v2.6 file and the column each becomes (written out
# here, not taken from the registry under test).
SOURCE_COLUMNS = {
    "alignedreads": "aligned_reads",
    "characteristics_ch1": "characteristics",
    "data_processing": "data_processing",
    "extract_protocol_ch1": "extract_protocol",
    "geo_accession": "gsm",
    "instrument_model": "instrument_model",
    "last_update_date": "last_update_date",
    "library_selection": "library_selection",
    "library_source": "library_source",
    "library_strategy": "library_strategy",
    "molecule_ch1": "molecule",
    "organism_ch1": "organism",
    "platform_id": "platform_id",
    "readstotal": "reads_total",
    "relation": "relation",
    "series_id": "series_id",
    "singlecellprobability": "single_cell_probability",
    "source_name_ch1": "source_name",
    "status": "status",
    "submission_date": "submission_date",
    "title": "title",
    "type": "type",
}
# The columns `samples` had before every field was kept: their names must not change.
EARLIER_COLUMNS = [
    "sample_idx", "gsm", "series_id", "title", "source_name", "characteristics", "organism",
    "platform_id", "library_strategy", "submission_date", "single_cell_probability",
    "aligned_reads", "total_count", "block", "source_column", "source_version",
]  # fmt: skip
NUMERIC_KEYS = {"alignedreads", "readstotal", "singlecellprobability"}
BLOCKS = ("000000", "000001", "000002")
RAW_STAGES = [
    Stage(("source_release", "gene_lengths", "genes"), per_block=False),
    Stage(("samples", "counts"), per_block=True),
    Stage(("warehouse_catalog",), per_block=False),
]


def h5_values(handle: h5py.File, key: str) -> list:
    """A vector as h5py reads it: text decoded as UTF-8, numbers as they are."""
    values = handle[key][()]
    if values.dtype.kind in "SO":
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
    return values.tolist()


def h5_info(path: Path) -> dict[str, str]:
    with h5py.File(path, "r") as handle:
        group = handle["meta/info"]
        return {key: group[key][()].decode("utf-8") for key in group}


def query(root: Path, sql: str) -> list[dict]:
    with connect_read_only(Warehouse.at(root)) as connection:
        return connection.sql(sql).to_arrow_table().to_pylist()


# -- the registry ---------------------------------------------------------------------------


def test_column_for_field_maps_every_source_name_and_column() -> None:
    assert {name: column_for_field(name) for name in SOURCE_COLUMNS} == SOURCE_COLUMNS
    assert all(column_for_field(name) == name for name in SAMPLES_SCHEMA.names)
    assert column_for_field("readsaligned") == "aligned_reads"  # the v2.1-v2.2 key
    assert column_for_field(" Characteristics_CH1 ") == "characteristics"
    archs4py_defaults = ["characteristics_ch1", "extract_protocol_ch1", "source_name_ch1", "title"]
    assert [column_for_field(name) for name in archs4py_defaults] == [
        "characteristics",
        "extract_protocol",
        "source_name",
        "title",
    ]
    with pytest.raises(ValueError, match=r"'tissue'.*characteristics.*characteristics_ch1"):
        column_for_field("tissue")


def test_registry_keeps_the_earlier_columns_and_adds_every_source_field() -> None:
    names = SAMPLES_SCHEMA.names
    assert [name for name in names if name in EARLIER_COLUMNS] == EARLIER_COLUMNS
    assert set(SOURCE_COLUMNS.values()) | set(EARLIER_COLUMNS) == set(names)
    keys = [key for field in SAMPLE_FIELDS for key in field.source_keys]
    assert len(keys) == len(set(keys))
    assert str(SAMPLES_SCHEMA.field("reads_total").type) == "int64"


def test_readme_lists_every_sample_field() -> None:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("### Sample fields", 1)[1].split("\n### ", 1)[0]
    rows = {
        cells[0].strip("`"): cells[1:3]
        for line in section.splitlines()
        if line.startswith("| `")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert list(rows) == SAMPLES_SCHEMA.names
    for field in SAMPLE_FIELDS:
        keys, type_name = rows[field.column]
        assert type_name == str(field.type), field.column
        assert all(f"`{key}`" in keys for key in field.source_keys), field.column


# -- the demo release: every field, as h5py reads it -------------------------------------------


@pytest.mark.slow
def test_every_source_field_of_the_demo_equals_h5py(demo) -> None:
    paths, root, _, _ = demo
    rows = query(root, "SELECT * FROM samples ORDER BY source_column")
    with h5py.File(paths.h5, "r") as handle:
        assert sorted(handle["meta/samples"]) == sorted(SOURCE_COLUMNS)
        n_samples = handle["data/expression"].shape[1]
        assert [row["source_column"] for row in rows] == list(range(n_samples))
        for key, column in SOURCE_COLUMNS.items():
            expected = h5_values(handle, f"meta/samples/{key}")
            stored = [row[column] for row in rows]
            assert stored == expected, key
            if key in NUMERIC_KEYS:
                assert all(type(value) is type(expected[0]) for value in stored), key


@pytest.mark.slow
def test_release_info_of_the_demo_is_its_meta_info(demo) -> None:
    paths, root, _, _ = demo
    info = h5_info(paths.h5)
    assert set(info) == {"author", "contact", "creation-date", "laboratory", "version"}
    rows = query(root, "SELECT source_version, source_path, key, value FROM release_info")
    assert {row["key"]: row["value"] for row in rows} == info
    assert {(row["source_version"], row["source_path"]) for row in rows} == {
        (info["version"], str(paths.h5.resolve()))
    }
    assert json.loads((root / RELEASE_RECORD).read_text())["info"] == info


# -- an older layout, and a warehouse an older version wrote -----------------------------------


def test_fields_an_older_layout_lacks_are_null(tmp_path: Path) -> None:
    counts = example_counts(n_samples=12)
    path = write_archs4_file(tmp_path / "human_gene_v2.2.h5", counts, layout="v2.2")
    with open_archs4(path) as source:
        meta = source.sample_metadata(SampleRange(0, 12))
        assert source.info.release_info == {"version": "2.2", "creation-date": "2024-01-15"}
    with h5py.File(path, "r") as handle:
        present = {key: h5_values(handle, f"meta/samples/{key}") for key in handle["meta/samples"]}
    assert meta["aligned_reads"].to_pylist() == present.pop("readsaligned")
    for key, column in SOURCE_COLUMNS.items():
        if key in present:
            assert meta[column].to_pylist() == present[key], key
        elif key != "alignedreads":
            assert meta[column].null_count == 12, key
            assert meta[column].type == SAMPLES_SCHEMA.field(column).type, key
    assert set(meta) == set(SOURCE_COLUMNS.values())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.array([5, -3, 7] * 4, dtype=np.int64), r"4 value\(s\) outside \[0, inf\], first -3"),
        (np.array([b"12", b"many", b"3"] * 4), r"non-numeric value 'many' at index 1"),
    ],
)
def test_reads_total_is_checked_like_aligned_reads(
    tmp_path: Path, values: np.ndarray, message: str
) -> None:
    path = write_archs4_file(tmp_path / "human_gene_v2.6.h5", example_counts(n_samples=12))
    with h5py.File(path, "a") as handle:
        handle.create_dataset("meta/samples/readstotal", data=values)
    with pytest.raises(Archs4FormatError, match=r"\[meta/samples/readstotal\]: " + message):
        open_archs4(path)


@pytest.fixture
def older_layout_warehouse(tmp_path: Path) -> Iterator[tuple[Path, dict, dg.DagsterInstance]]:
    """`make run`'s raw stages and catalog on a v2.2-layout file (3 blocks of 10 samples)."""
    counts = example_counts(n_genes=20, n_samples=30, seed=5)
    source = write_archs4_file(tmp_path / "human_gene_v2.2.h5", counts, layout="v2.2")
    write_gtf(tmp_path / "genes.gtf", counts.shape[0])
    root = tmp_path / "warehouse"
    resources = resources_for(source, tmp_path / "genes.gtf", root)
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_stages(instance, resources, RAW_STAGES)
        yield root, resources, instance


@pytest.mark.slow
def test_older_layout_in_the_warehouse(older_layout_warehouse) -> None:
    root, _, instance = older_layout_warehouse
    rows = query(root, "SELECT * FROM samples ORDER BY sample_idx")
    assert list(rows[0]) == SAMPLES_SCHEMA.names
    assert all(row["extract_protocol"] is None and row["reads_total"] is None for row in rows)
    assert [row["title"] for row in rows[:2]] == ["sample 0", "sample 1"]
    info = query(root, "SELECT key, value FROM release_info ORDER BY key")
    assert info == [
        {"key": "creation-date", "value": "2024-01-15"},
        {"key": "version", "value": "2.2"},
    ]
    event = instance.get_latest_materialization_event(dg.AssetKey("source_release"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert "| version | 2.2 |" in metadata["release_info"].value  # type: ignore[attr-defined]
    assert "extract_protocol" in metadata["sample_fields_missing"].value  # type: ignore[attr-defined]


@pytest.mark.slow
def test_samples_an_older_version_wrote_are_derived_again(older_layout_warehouse) -> None:
    root, resources, instance = older_layout_warehouse
    store = Warehouse.at(root)
    files = {block: Path(store.block_path(SAMPLES_DATASET, block).path) for block in BLOCKS}
    earlier = pq.read_table(files["000001"]).select(EARLIER_COLUMNS)
    pq.write_table(earlier, files["000001"])  # the layout of the version that kept 11 fields
    kept = {block: files[block].read_bytes() for block in ("000000", "000002")}
    (root / f"{RELEASE_INFO_TABLE}.parquet").unlink()  # nor did it keep meta/info
    assert outdated_sample_blocks(store) == ["000001"]
    assert pending_blocks(RAW_STAGES[1], store) == ["000001"]
    # Mixed layouts are refused by both ways of reading, never scanned with NULLs filled in.
    with pytest.raises(MixedSchemaError, match=r"raw/samples.*reads_total.*make run"):
        build_catalog(store)
    with pytest.raises(MixedSchemaError, match="raw/samples"):
        connect_read_only(store)

    materialize_stages(instance, resources, RAW_STAGES)
    assert outdated_sample_blocks(store) == []
    for block, content in kept.items():  # the current blocks are left as they were
        assert files[block].read_bytes() == content
    rows = query(root, "SELECT title FROM samples WHERE block = '000001' ORDER BY sample_idx")
    assert [row["title"] for row in rows] == [f"sample {i}" for i in range(10, 20)]
    assert query(root, "SELECT count(*) AS n FROM release_info") == [{"n": 2}]
