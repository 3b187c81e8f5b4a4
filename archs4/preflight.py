"""Every input of a run, checked before the run's first write.

A full release takes hours. A defect found by the block that reads it leaves a half-built
warehouse behind, and a sample registry that has recorded the defect (a malformed GSM, a
vector one entry short), so that even the corrected file fails on the same warehouse. Every
entry point therefore calls `check_inputs` before it writes anything: `make run`, `make update`,
the sensor and the schedule before they ask for runs, and the first assets of any run (the UI's
included) before their first write. It reads, never writes:

- the release file with the full check (every metadata vector's length and type, GSM, series
  and Ensembl id formats, duplicates, numeric ranges) and, when the warehouse holds genes
  already, that the release has the same genes in the same order;
- the GTF, parsed whole (positive coordinates, start <= end, ids present);
- the label download directory, every list's header row;
- the warehouse root: a directory, or absent, and writable.

Any problem raises an `InputError` (or `FileNotFoundError`) naming the file and the key, line,
index or variable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import astuple, dataclass
from pathlib import Path

import polars as pl

from archs4.datasets import GENES_TABLE
from archs4.failures import InputError
from archs4.gene_lengths import LengthMethod, gene_lengths_from_gtf
from archs4.ingest import check_same_genes
from archs4.labels import read_label_directory
from archs4.reader import SourceInfo, open_archs4
from archs4.releases import Fingerprint, newest_release
from archs4.warehouse import Warehouse

# What a refused input raises: named, and correctable by the user.
INPUT_ERRORS = (InputError, FileNotFoundError, NotADirectoryError, PermissionError)


@dataclass(frozen=True)
class RunInputs:
    """What a run reads: the configured source (a file or a directory of releases), the GTF,
    the optional label download directory, and the warehouse it writes."""

    source: Path
    gtf: Path
    labels: Path | None
    warehouse: Warehouse
    length_method: LengthMethod = "longest_transcript"
    species: str | None = None


@dataclass(frozen=True)
class CheckedInputs:
    """What the check found: the release file used, its description, the gene lengths parsed
    from the GTF (so the GTF is read once), and the label rows of the download directory."""

    release: Path
    info: SourceInfo
    gene_lengths: pl.DataFrame
    n_label_rows: int


def check_inputs(inputs: RunInputs) -> CheckedInputs:
    """Check every input of a run; raises naming the first defect, writes nothing.

    The release and GTF checks are remembered per file version (path, size, modification
    time) within a process, since a headless run checks first and its root assets again."""
    check_warehouse_root(inputs.warehouse)
    release = newest_release(inputs.source, inputs.species)
    stored_genes = _stored_genes_version(inputs.warehouse)
    info = _checked_release(_version(release), inputs.warehouse.root.as_uri(), stored_genes)
    lengths = _checked_gtf(_version(inputs.gtf), inputs.length_method)
    labels = read_label_directory(inputs.labels) if inputs.labels else None
    return CheckedInputs(
        release=release,
        info=info,
        gene_lengths=lengths,
        n_label_rows=labels.height if labels is not None else 0,
    )


def inputs_version(inputs: RunInputs) -> str:
    """A short digest of the versions (path, size, modification time) of the newest release,
    the GTF and every label file: it changes whenever a file a run reads is replaced, so a run
    that failed on one version of the inputs can be told apart from one on corrected inputs."""
    labels = sorted(p for p in inputs.labels.rglob("*") if p.is_file()) if inputs.labels else []
    files = [newest_release(inputs.source, inputs.species), inputs.gtf, *labels]
    versions = [astuple(_version(path)) for path in files]
    return hashlib.sha256(json.dumps(versions).encode()).hexdigest()[:16]


def _version(path: Path) -> Fingerprint:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found" + (" (a directory)" * path.is_dir()))
    return Fingerprint.of(path)


def _stored_genes_version(warehouse: Warehouse) -> Fingerprint | None:
    path = warehouse.table_path(GENES_TABLE)
    if not warehouse.exists(path):
        return None
    modified = warehouse.fs.modified(path.path).timestamp()
    return Fingerprint(str(path), warehouse.fs.size(path.path), int(modified * 1e9))


@functools.lru_cache(maxsize=4)
def _checked_release(
    release: Fingerprint, warehouse_uri: str, stored_genes: Fingerprint | None
) -> SourceInfo:
    del stored_genes  # part of the cache key: a changed gene table is checked again
    with open_archs4(release.path) as source:
        check_same_genes(Warehouse.at(warehouse_uri), source)
        return source.info


@functools.lru_cache(maxsize=4)
def _checked_gtf(gtf: Fingerprint, length_method: LengthMethod) -> pl.DataFrame:
    return gene_lengths_from_gtf(Path(gtf.path), method=length_method)


def check_warehouse_root(warehouse: Warehouse) -> None:
    """The root is a directory (or absent, under a directory that exists) this process can
    write: found now rather than at the first block file."""
    if warehouse.root.protocol not in ("", "file", "local"):
        return  # object storage: permissions show at the first write, which is atomic
    root = Path(warehouse.root.path)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: the warehouse root (ARCHS4_WAREHOUSE) is not a directory")
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{existing}: the warehouse root (ARCHS4_WAREHOUSE) is not writable")
