"""The sample fields of the warehouse: every column of the `samples` view, in one registry.

An ARCHS4 v2.x file holds 22 per-sample vectors under `meta/samples` (GEO's fields, named as
archs4py names them, plus ARCHS4's own read counts and single-cell probability). Each becomes
one column of `samples`, with the warehouse's snake_case name, its Arrow type and the key (or,
across releases, the keys) it is read from; the columns the warehouse adds (ids, the source
matrix's column sum, provenance) have no source key. The reader, the block schema, the staleness
of stored blocks, the README's list of columns and `column_for_field` (which maps archs4py's
`meta_fields` to columns) all come from this one list, so a field added here is read, stored,
checked and re-derived in older warehouses without another list to keep in step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class SampleField:
    """One column of `samples`.

    `source_keys` are names under `meta/samples`, first match wins (later releases renamed some
    keys); empty for columns the warehouse derives. A missing optional key gives NULLs; a
    missing `required` one refuses the file. `valid_range` bounds a numeric field's values
    (NaN, i.e. missing, is allowed): a file with a value outside it is refused up front.
    """

    column: str
    type: pa.DataType
    description: str
    source_keys: tuple[str, ...] = ()
    required: bool = False
    valid_range: tuple[float, float] | None = None

    @property
    def source_name(self) -> str | None:
        """The field's name in current ARCHS4 files and in archs4py, if read from the file."""
        return self.source_keys[0] if self.source_keys else None


READ_COUNT = (0.0, float("inf"))

SAMPLE_FIELDS: tuple[SampleField, ...] = (
    SampleField("sample_idx", pa.int32(), "warehouse sample id, in order of arrival"),
    SampleField(
        "gsm", pa.string(), "GEO sample accession (GSM...)", ("geo_accession",), required=True
    ),
    SampleField(
        "series_id", pa.string(), "GEO series (GSE...), comma-joined when several",
        ("series_id",), required=True,
    ),
    SampleField("title", pa.string(), "sample title given by the submitter", ("title",)),
    SampleField("source_name", pa.string(), "biological source", ("source_name_ch1",)),
    SampleField(
        "characteristics", pa.string(), "characteristics, `key: value` pairs",
        ("characteristics_ch1",),
    ),
    SampleField("organism", pa.string(), "organism", ("organism_ch1",)),
    SampleField("platform_id", pa.string(), "GEO platform (GPL...)", ("platform_id",)),
    SampleField("library_strategy", pa.string(), "e.g. RNA-Seq", ("library_strategy",)),
    SampleField("submission_date", pa.string(), "date submitted to GEO", ("submission_date",)),
    SampleField(
        "extract_protocol", pa.string(), "how the RNA was extracted", ("extract_protocol_ch1",)
    ),
    SampleField(
        "data_processing", pa.string(), "the submitter's processing", ("data_processing",)
    ),
    SampleField("instrument_model", pa.string(), "sequencer model", ("instrument_model",)),
    SampleField("molecule", pa.string(), "extracted molecule, e.g. total RNA", ("molecule_ch1",)),
    SampleField("library_source", pa.string(), "e.g. transcriptomic", ("library_source",)),
    SampleField("library_selection", pa.string(), "e.g. cDNA, PolyA", ("library_selection",)),
    SampleField("last_update_date", pa.string(), "date last updated in GEO", ("last_update_date",)),
    SampleField("relation", pa.string(), "links to SRA, BioSample, ...", ("relation",)),
    SampleField("status", pa.string(), "GEO status, e.g. `Public on ...`", ("status",)),
    SampleField("type", pa.string(), "GEO sample type, e.g. SRA", ("type",)),
    SampleField(
        "single_cell_probability", pa.float64(),
        "ARCHS4's estimate that the sample is single-cell, in [0, 1]",
        ("singlecellprobability",), valid_range=(0.0, 1.0),
    ),
    SampleField(
        "aligned_reads", pa.int64(), "reads Kallisto aligned",
        ("alignedreads", "readsaligned"), valid_range=READ_COUNT,
    ),
    SampleField(
        "reads_total", pa.int64(), "reads of the sample's runs", ("readstotal",),
        valid_range=READ_COUNT,
    ),
    SampleField("total_count", pa.int64(), "column sum of the source matrix, computed on reading"),
    SampleField("block", pa.string(), "the sample block (partition) holding the sample"),
    SampleField("source_column", pa.int64(), "column of the sample in the release file"),
    SampleField("source_version", pa.string(), "version of the release file read"),
)  # fmt: skip

SOURCE_FIELDS = tuple(field for field in SAMPLE_FIELDS if field.source_keys)
# The schema of every `raw/samples` block file, columns in view order.
SAMPLES_SCHEMA = pa.schema([(field.column, field.type) for field in SAMPLE_FIELDS])
# Changes exactly when the block schema does: the samples asset's Dagster code version.
SAMPLES_LAYOUT_VERSION = hashlib.sha256(
    ",".join(f"{field.name}:{field.type}" for field in SAMPLES_SCHEMA).encode()
).hexdigest()[:12]

_BY_COLUMN = {field.column: field for field in SAMPLE_FIELDS}
_COLUMN_BY_NAME = {
    name: field.column for field in SAMPLE_FIELDS for name in (field.column, *field.source_keys)
}


def field_named(column: str) -> SampleField:
    """The field of column `column` of `samples`."""
    return _BY_COLUMN[column]


def column_for_field(name: str) -> str:
    """The `samples` column of a field named as archs4py and ARCHS4 files name it (e.g.
    `characteristics_ch1`, `geo_accession`, older keys such as `readsaligned` included) or as
    the warehouse does (`characteristics`, `gsm`); case does not matter."""
    column = _COLUMN_BY_NAME.get(name.strip().lower())
    if column is None:
        sources = [key for field in SOURCE_FIELDS for key in field.source_keys]
        raise ValueError(
            f"unknown sample field {name!r}: use a column of `samples` "
            f"({', '.join(_BY_COLUMN)}) or an ARCHS4 field name ({', '.join(sources)})"
        )
    return column
