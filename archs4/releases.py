"""Release files and the warehouse's record of the one it last registered.

`ARCHS4_SOURCE` is either one release file or a directory of them (`human_gene_v2.5.h5`,
`human_gene_v2.6.h5`, ...). Each release is a full snapshot that appends samples, so only the
newest matters: its GSMs not yet in the warehouse become new blocks. A release is recognized by
a cheap fingerprint (path, size, modification time), compared on every sensor tick, and
recorded with its version and SHA-256 in `raw/release.json` once registration has finished, so a
crash before that point leaves the release to be registered again (registration is idempotent).
Every key of the release's `meta/info` goes into that record and into `raw/release_info.parquet`
(one row per release and key, the `release_info` view), which keeps the info of every release
the warehouse has registered.

ARCHS4 publishes human and mouse files side by side (`human_gene_v2.6.h5`, `mouse_gene_v2.6.h5`),
and a warehouse holds one species (its genes are checked against every release). A directory
holding both is refused unless `ARCHS4_SPECIES` names the one to build; a second warehouse
(`ARCHS4_WAREHOUSE`, with that species' GTF) takes the other.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archs4.datasets import RELEASE_INFO_TABLE, RELEASE_RECORD
from archs4.failures import InputError
from archs4.reader import species_in_name
from archs4.warehouse import Warehouse

RELEASE_INFO_SCHEMA = pa.schema(
    [
        ("source_version", pa.string()),
        ("source_path", pa.string()),
        ("key", pa.string()),
        ("value", pa.string()),
    ]
)
VERSION_IN_NAME = re.compile(r"v(\d+(?:\.\d+)*)")


@dataclass(frozen=True)
class Fingerprint:
    """One version of a file: its resolved path, size and modification time. A replaced
    file (a new download, an edited GTF) has a new fingerprint, without reading its bytes."""

    path: str
    size: int
    modified_ns: int

    @classmethod
    def of(cls, path: Path) -> Fingerprint:
        status = path.stat()
        return cls(str(path.resolve()), status.st_size, status.st_mtime_ns)


@dataclass(frozen=True)
class ReleaseRecord:
    """The registered release; `info` is its `meta/info` (empty in records older code wrote)."""

    fingerprint: Fingerprint
    version: str
    checksum: str
    n_samples: int
    new_blocks: list[str]
    info: dict[str, str] = field(default_factory=dict)


def _version_key(path: Path) -> tuple[tuple[int, ...], str]:
    match = VERSION_IN_NAME.search(path.name)
    numbers = tuple(int(part) for part in match.group(1).split(".")) if match else ()
    return numbers, path.name


def release_files(source: Path, species: str | None = None) -> list[Path]:
    """The release files of `source` (a file, or a directory of `.h5` files) of `species`,
    oldest first by the version in their names (then by name). Files whose names give no
    species count as any; a directory holding two species needs `species`."""
    if not source.exists():
        raise FileNotFoundError(f"{source}: ARCHS4 source not found")
    files = [source] if source.is_file() else _h5_files(source)
    named = sorted({species_in_name(path) for path in files} - {None})
    if species is not None:
        files = [path for path in files if species_in_name(path) in (species, None)]
        if not files:
            raise InputError(
                f"{source}: no {species} release (ARCHS4_SPECIES={species}; "
                f"the source holds {' and '.join(named)})"
            )
    elif len(named) > 1:
        raise InputError(
            f"{source}: holds {' and '.join(named)} releases; set ARCHS4_SPECIES to the one "
            "this warehouse builds (one species per warehouse)"
        )
    return sorted(files, key=_version_key)


def _h5_files(directory: Path) -> list[Path]:
    files = [p for p in directory.iterdir() if p.is_file() and p.suffix in (".h5", ".hdf5")]
    if not files:
        raise FileNotFoundError(f"{directory}: no .h5 release file in this directory")
    return files


def newest_release(source: Path, species: str | None = None) -> Path:
    return release_files(source, species)[-1]


def read_release_record(warehouse: Warehouse) -> ReleaseRecord | None:
    path = warehouse.root / RELEASE_RECORD
    if not warehouse.exists(path):
        return None
    raw = warehouse.read_json(path)
    return ReleaseRecord(**{**raw, "fingerprint": Fingerprint(**raw["fingerprint"])})


def write_release_record(warehouse: Warehouse, record: ReleaseRecord) -> None:
    warehouse.write_json(asdict(record), warehouse.root / RELEASE_RECORD)


def is_registered(warehouse: Warehouse, release: Path) -> bool:
    """Whether `release` is the registered release, its info table included (a warehouse that
    older code registered has none, and registers again, idempotently, to get it)."""
    record = read_release_record(warehouse)
    return (
        record is not None
        and record.fingerprint == Fingerprint.of(release)
        and warehouse.exists(warehouse.table_path(RELEASE_INFO_TABLE))
    )


def write_release_info(
    warehouse: Warehouse, version: str, source_path: str, info: dict[str, str]
) -> pa.Table:
    """Record the `meta/info` of the release `version` read from `source_path`: its rows
    replace those of an earlier registration of the same file and version, and the rows of
    other releases are kept. Returns the whole table."""
    path = warehouse.table_path(RELEASE_INFO_TABLE)
    kept = RELEASE_INFO_SCHEMA.empty_table()
    if warehouse.exists(path):
        with warehouse.fs.open(path.path, "rb") as handle:
            stored = pq.read_table(handle, schema=RELEASE_INFO_SCHEMA)
        same = pc.and_(
            pc.equal(stored["source_version"], version),
            pc.equal(stored["source_path"], source_path),
        )
        kept = stored.filter(pc.invert(same))
    rows = [
        {"source_version": version, "source_path": source_path, "key": key, "value": value}
        for key, value in info.items()
    ]
    table = pa.concat_tables([kept, pa.Table.from_pylist(rows, RELEASE_INFO_SCHEMA)])
    warehouse.write_table(table, path)
    return table
