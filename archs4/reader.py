"""Read ARCHS4 gene-level HDF5 files in sample blocks aligned with their HDF5 chunks.

An ARCHS4 file holds raw Kallisto gene counts as `data/expression` (uint32, genes x samples)
plus gene, sample and release metadata under `meta/`. Releases name some keys differently
(`symbol`/`gene_symbol`, `ensembl_gene_id`/`ensembl_gene`, `readsaligned`/`alignedreads`), store
strings as variable- or fixed-length bytes, and are 40-60 GB, so the reader resolves the key
variants once, validates the layout up front (naming the file and key of anything wrong), and
only ever reads the count matrix one block of whole sample chunks at a time. Which sample
fields are read, from which keys, and how they are checked comes from `archs4.sample_fields`;
every key of `meta/info` is kept as text.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from archs4.failures import InputError
from archs4.sample_fields import SOURCE_FIELDS, SampleField, field_named
from archs4.settings import SPECIES

EXPRESSION_KEY = "data/expression"
SAMPLES_GROUP = "meta/samples"
GENES_GROUP = "meta/genes"
INFO_GROUP = "meta/info"

# Alternative key names across releases v2.1.2 .. v2.6+, first match wins.
GENE_ID_KEYS = ("meta/genes/ensembl_gene", "meta/genes/ensembl_gene_id")
GENE_SYMBOL_KEYS = ("meta/genes/symbol", "meta/genes/gene_symbol")
GENE_BIOTYPE_KEYS = ("meta/genes/biotype", "meta/genes/gene_biotype")


def source_keys(field: SampleField) -> tuple[str, ...]:
    """The keys a sample field may be read from, in the order they are tried."""
    return tuple(f"{SAMPLES_GROUP}/{name}" for name in field.source_keys)


GSM_KEY = source_keys(field_named("gsm"))[0]
SERIES_KEY = source_keys(field_named("series_id"))[0]
# Numeric sample vectors and the range of their values (NaN, i.e. missing, is allowed).
NUMERIC_SAMPLE_RANGES: dict[str, tuple[float, float]] = {
    key: field.valid_range
    for field in SOURCE_FIELDS
    if field.valid_range
    for key in source_keys(field)
}
GSM_FORMAT = r"^GSM[0-9]+$"
# Ensembl gene ids of any species (ENSG, ENSMUSG, ...), optionally versioned or _PAR_Y.
ENSEMBL_GENE_FORMAT = r"^ENS[A-Z]*G[0-9]+(\.[0-9]+)?(_PAR_Y)?$"

SUPPORTED_COUNT_DTYPES = (np.dtype(np.uint32), np.dtype(np.uint16), np.dtype(np.uint8))
GSE_PATTERN = re.compile(r"^GSE\d+(,GSE\d+)*$")
VERSION_IN_NAME = re.compile(r"v(\d+(?:\.\d+)+)")


class Archs4FormatError(InputError):
    """The file is not a readable ARCHS4 gene-level file; the message names the file and key."""

    def __init__(self, path: Path | str, key: str | None, problem: str) -> None:
        self.path = str(path)
        self.key = key
        where = f"{self.path}" + (f" [{key}]" if key else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class SourceInfo:
    """What a release file is: its version, size, shape and chunking, the key each sample field
    is read from (`sample_keys`, column -> key; the fields the file lacks are left out) and its
    `meta/info` (`release_info`, key -> text)."""

    path: str
    version: str
    creation_date: str
    species: str
    n_genes: int
    n_samples: int
    chunk_genes: int
    chunk_samples: int
    compression: str | None
    dtype: str
    file_bytes: int
    gene_id_key: str
    gene_symbol_key: str
    sample_keys: dict[str, str]
    release_info: dict[str, str]

    def as_metadata(self) -> dict[str, str | int]:
        missing = [field.column for field in SOURCE_FIELDS if field.column not in self.sample_keys]
        return {
            "source_path": self.path,
            "source_version": self.version,
            "creation_date": self.creation_date,
            "species": self.species,
            "n_genes": self.n_genes,
            "n_samples": self.n_samples,
            "chunks": f"{self.chunk_genes} x {self.chunk_samples}",
            "compression": self.compression or "none",
            "file_bytes": self.file_bytes,
            "sample_fields_read": len(self.sample_keys),
            "sample_fields_missing": ", ".join(missing) or "none",
        }


@dataclass(frozen=True)
class SampleRange:
    """A contiguous run of source columns `[start, stop)`."""

    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def file_checksum(path: Path | str, chunk_bytes: int = 16 << 20) -> str:
    """SHA-256 of the whole file, streamed (a release is read once per checksum)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _info_text(value: object) -> str:
    """A `meta/info` value (bytes, text or a number, scalar or array) as text."""
    items = value.ravel().tolist() if isinstance(value, np.ndarray) else [value]
    return ", ".join(
        item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in items
    )


def _decode_strings(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "O":
        return np.array(
            [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values],
            dtype=object,
        )
    if values.dtype.kind == "S":
        return np.char.decode(values, "utf-8", "replace").astype(object)
    return values.astype(str).astype(object)


class Archs4Source:
    """An open, validated ARCHS4 gene-level file.

    Use as a context manager; every accessor reads only what it returns.
    """

    def __init__(self, path: Path | str, *, full_check: bool = True) -> None:
        self.path = Path(path)
        self._full_check = full_check
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: ARCHS4 file not found")
        if self.path.is_dir():
            raise Archs4FormatError(self.path, None, "is a directory, expected an .h5 file")
        if self.path.stat().st_size == 0:
            raise Archs4FormatError(self.path, None, "file is empty")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as error:
            raise Archs4FormatError(
                self.path, None, f"not a readable HDF5 file (truncated or wrong format): {error}"
            ) from error
        try:
            self.info = self._validate()
        except BaseException:
            self._h5.close()
            raise

    def __enter__(self) -> Archs4Source:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._h5.close()

    # -- validation -------------------------------------------------------------------------

    def _first_key(self, candidates: Sequence[str], *, required: bool) -> str | None:
        for key in candidates:
            if key in self._h5:
                return key
        if required:
            raise Archs4FormatError(
                self.path, candidates[0], f"missing required key (tried {', '.join(candidates)})"
            )
        return None

    def _dataset(self, key: str) -> h5py.Dataset:
        try:
            node = self._h5[key]
        except KeyError as error:
            raise Archs4FormatError(self.path, key, "missing required key") from error
        except OSError as error:
            raise Archs4FormatError(self.path, key, f"unreadable: {error}") from error
        if not isinstance(node, h5py.Dataset):
            raise Archs4FormatError(self.path, key, "expected a dataset, found a group")
        return node

    def _check_length(self, key: str, expected: int, axis_name: str) -> None:
        dataset = self._dataset(key)
        if dataset.ndim != 1 or dataset.shape[0] != expected:
            raise Archs4FormatError(
                self.path,
                key,
                f"has shape {dataset.shape}, expected ({expected},) to match the {axis_name} "
                f"axis of {EXPRESSION_KEY}",
            )

    def _check_matrix(self, expression: h5py.Dataset) -> tuple[int, int]:
        """The count matrix is a non-empty 2-D unsigned integer matrix; its (genes, samples)."""
        if expression.ndim != 2:
            raise Archs4FormatError(
                self.path,
                EXPRESSION_KEY,
                f"expected a 2-D genes x samples matrix, got {expression.shape}",
            )
        if expression.dtype not in SUPPORTED_COUNT_DTYPES:
            raise Archs4FormatError(
                self.path,
                EXPRESSION_KEY,
                f"dtype {expression.dtype} is not an unsigned integer count type (expected uint32)",
            )
        n_genes, n_samples = expression.shape
        if n_genes == 0 or n_samples == 0:
            raise Archs4FormatError(
                self.path, EXPRESSION_KEY, f"empty matrix of shape {expression.shape}"
            )
        return int(n_genes), int(n_samples)

    def _sample_keys(self) -> dict[str, str]:
        """Each sample field's key in this file (column -> key); refuses a missing required
        field, leaves out an optional one."""
        keys = {}
        for field in SOURCE_FIELDS:
            key = self._first_key(source_keys(field), required=field.required)
            if key is not None:
                keys[field.column] = key
        return keys

    def _validate(self) -> SourceInfo:
        expression = self._dataset(EXPRESSION_KEY)
        gene_id_key = self._first_key(GENE_ID_KEYS, required=True)
        symbol_key = self._first_key(GENE_SYMBOL_KEYS, required=True)
        sample_keys = self._sample_keys()
        assert gene_id_key is not None and symbol_key is not None

        n_genes, n_samples = self._check_matrix(expression)
        n_gene_meta = self._dataset(gene_id_key).shape[0] if self._dataset(gene_id_key).ndim else 0
        n_sample_meta = self._dataset(GSM_KEY).shape[0] if self._dataset(GSM_KEY).ndim else 0
        if (n_gene_meta, n_sample_meta) == (n_samples, n_genes) and n_genes != n_samples:
            raise Archs4FormatError(
                self.path,
                EXPRESSION_KEY,
                f"shape {expression.shape} is samples x genes; ARCHS4 stores genes x samples",
            )
        for key in (gene_id_key, symbol_key):
            self._check_length(key, n_genes, "gene")
        biotype_key = self._first_key(GENE_BIOTYPE_KEYS, required=False)
        if biotype_key:
            self._check_length(biotype_key, n_genes, "gene")
        for key in sample_keys.values():
            self._check_length(key, n_samples, "sample")

        if self._full_check:
            self._check_metadata(gene_id_key, int(n_genes), int(n_samples))

        chunks = expression.chunks or (n_genes, 1)
        release_info = self._release_info()
        return SourceInfo(
            path=str(self.path.resolve()),
            version=self._version(release_info),
            creation_date=release_info.get("creation-date") or "unknown",
            species=self._species(),
            n_genes=int(n_genes),
            n_samples=int(n_samples),
            chunk_genes=int(chunks[0]),
            chunk_samples=int(chunks[1]),
            compression=expression.compression,
            dtype=str(expression.dtype),
            file_bytes=self.path.stat().st_size,
            gene_id_key=gene_id_key,
            gene_symbol_key=symbol_key,
            sample_keys=sample_keys,
            release_info=release_info,
        )

    def _check_metadata(self, gene_id_key: str, n_genes: int, n_samples: int) -> None:
        """Every metadata vector's length, the id formats, duplicates and numeric ranges: what
        would otherwise fail a block hours in, or poison the sample registry."""
        self._check_every_vector(GENES_GROUP, n_genes, "gene")
        self._check_every_vector(SAMPLES_GROUP, n_samples, "sample")
        gene_ids = self._strings(gene_id_key)
        self._reject_malformed(gene_id_key, gene_ids, ENSEMBL_GENE_FORMAT, "Ensembl gene id")
        self._reject_duplicates(gene_id_key, gene_ids, "Ensembl gene id")
        gsms = self.gsms()
        self._reject_malformed(GSM_KEY, gsms, GSM_FORMAT, "GSM accession")
        self._reject_duplicates(GSM_KEY, gsms, "GSM")
        series = self._series(SampleRange(0, n_samples))
        self._reject_malformed(SERIES_KEY, series, GSE_PATTERN.pattern, "series (GSE list)")
        self._check_numeric_ranges(n_samples)

    def _check_every_vector(self, group_key: str, expected: int, axis_name: str) -> None:
        """Every dataset of `group_key` is a vector along the gene or sample axis: a vector one
        entry short would otherwise fail blocks later, naming neither file nor key."""
        group = self._h5.get(group_key)
        if not isinstance(group, h5py.Group):
            raise Archs4FormatError(self.path, group_key, "missing required group")
        for name in sorted(group):
            key = f"{group_key}/{name}"
            if isinstance(group[name], h5py.Dataset):
                self._check_length(key, expected, axis_name)

    def _reject_malformed(self, key: str, values: np.ndarray, pattern: str, what: str) -> None:
        matches = pc.match_substring_regex(pa.array(values, pa.string()), pattern)
        bad = np.flatnonzero(~matches.fill_null(False).to_numpy(zero_copy_only=False))
        if bad.size:
            examples = ", ".join(f"{values[i]!r} at index {int(i)}" for i in bad[:3])
            raise Archs4FormatError(
                self.path, key, f"{bad.size} malformed {what} value(s): {examples}"
            )

    def _check_numeric_ranges(self, n_samples: int) -> None:
        for key, (low, high) in NUMERIC_SAMPLE_RANGES.items():
            if key not in self._h5:
                continue
            values = self._numbers(key, SampleRange(0, n_samples), np.float64)
            bad = np.flatnonzero(~np.isnan(values) & ((values < low) | (values > high)))
            if bad.size:
                first = int(bad[0])
                raise Archs4FormatError(
                    self.path,
                    key,
                    f"{bad.size} value(s) outside [{low:g}, {high:g}], first {values[first]:g} "
                    f"at index {first}",
                )

    def _reject_duplicates(self, key: str, values: np.ndarray, what: str) -> None:
        unique, first_index, counts = np.unique(values, return_index=True, return_counts=True)
        if (counts > 1).any():
            duplicated = unique[counts > 1]
            examples = ", ".join(
                f"{value} (first at index {int(index)})"
                for value, index in zip(duplicated[:5], first_index[counts > 1][:5], strict=False)
            )
            raise Archs4FormatError(
                self.path, key, f"{len(duplicated)} duplicate {what} value(s): {examples}"
            )
        if len(unique) and unique[0] == "":  # sorted, so an empty string comes first
            raise Archs4FormatError(
                self.path, key, f"empty {what} value at index {int(first_index[0])}"
            )

    def _release_info(self) -> dict[str, str]:
        """Every dataset under `meta/info` as text, keyed by its path below the group (the
        v2.x files hold author, contact, creation-date, laboratory and version)."""
        group = self._h5.get(INFO_GROUP)
        if not isinstance(group, h5py.Group):
            return {}
        info: dict[str, str] = {}

        def keep(name: str, node: h5py.Group | h5py.Dataset) -> None:
            if isinstance(node, h5py.Dataset):
                try:
                    info[name] = _info_text(node[()])
                except OSError as error:
                    raise Archs4FormatError(
                        self.path, f"{INFO_GROUP}/{name}", f"unreadable: {error}"
                    ) from error

        group.visititems(keep)
        return info

    def _version(self, release_info: dict[str, str]) -> str:
        version = release_info.get("version", "").strip()
        if version:
            return version
        match = VERSION_IN_NAME.search(self.path.name)
        return match.group(1) if match else "unknown"

    def _species(self) -> str:
        if named := species_in_name(self.path):
            return named
        organism_key = source_keys(field_named("organism"))[0]
        if organism_key in self._h5 and self._h5[organism_key].shape[0] > 0:
            first = str(self._strings(organism_key, SampleRange(0, 1))[0]).lower()
            return {"homo sapiens": "human", "mus musculus": "mouse"}.get(first, first or "unknown")
        return "unknown"

    # -- metadata ---------------------------------------------------------------------------

    def _strings(self, key: str, rows: SampleRange | None = None) -> np.ndarray:
        dataset = self._dataset(key)
        selection = slice(None) if rows is None else slice(rows.start, rows.stop)
        try:
            return _decode_strings(dataset[selection])
        except OSError as error:
            raise Archs4FormatError(self.path, key, f"unreadable: {error}") from error

    def _numbers(self, key: str, rows: SampleRange, dtype: type) -> np.ndarray:
        raw = self._dataset(key)[rows.start : rows.stop]
        if raw.dtype.kind in "SOU":
            text = _decode_strings(raw)
            values = np.full(text.size, np.nan)
            for index, value in enumerate(text):
                if value.strip() in ("", "nan", "NA"):
                    continue
                try:
                    values[index] = float(value)
                except ValueError:
                    raise Archs4FormatError(
                        self.path,
                        key,
                        f"non-numeric value {value[:40]!r} at index {rows.start + index}",
                    ) from None
            return values.astype(dtype)
        if raw.dtype.kind not in "iufb":
            raise Archs4FormatError(self.path, key, f"dtype {raw.dtype} is not numeric")
        return raw.astype(dtype)

    def gsms(self) -> np.ndarray:
        """All GSM accessions in file order (one string per sample, ~10 MB at ARCHS4 scale)."""
        return self._strings(GSM_KEY)

    def genes(self) -> pa.Table:
        """The gene dimension: position, Ensembl id, symbol, biotype."""
        info = self.info
        biotype_key = self._first_key(GENE_BIOTYPE_KEYS, required=False)
        biotype = (
            self._strings(biotype_key) if biotype_key else np.full(info.n_genes, None, dtype=object)
        )
        return pa.table(
            {
                "gene_idx": pa.array(np.arange(info.n_genes, dtype=np.int32)),
                "ensembl_id": pa.array(self._strings(info.gene_id_key), pa.string()),
                "symbol": pa.array(self._strings(info.gene_symbol_key), pa.string()),
                "biotype": pa.array(biotype, pa.string()),
            }
        )

    def sample_metadata(self, rows: SampleRange) -> dict[str, pa.Array]:
        """Every sample field of source columns `rows` (`archs4.sample_fields`), one Arrow
        array per warehouse column, NULL throughout for a field the file lacks."""
        return {
            field.column: self._sample_field(field, self.info.sample_keys.get(field.column), rows)
            for field in SOURCE_FIELDS
        }

    def _sample_field(self, field: SampleField, key: str | None, rows: SampleRange) -> pa.Array:
        if key is None:
            return pa.nulls(rows.size, field.type)
        if key == SERIES_KEY:
            return pa.array(self._series(rows), pa.string())
        if pa.types.is_string(field.type):
            return pa.array(self._strings(key, rows), pa.string())
        # Through float64, which holds NaN (missing) and every integer below 2^53 exactly.
        values = pa.array(self._numbers(key, rows, np.float64), pa.float64(), from_pandas=True)
        return values.cast(field.type, safe=False)

    def _series(self, rows: SampleRange) -> np.ndarray:
        # Some releases pad the comma list with spaces; the warehouse keeps "GSE1,GSE2".
        series = self._strings(SERIES_KEY, rows)
        return np.array(
            [",".join(p.strip() for p in s.split(",") if p.strip()) for s in series], dtype=object
        )

    # -- counts -----------------------------------------------------------------------------

    def aligned_block_size(self, requested: int) -> int:
        """The requested block size rounded up to whole sample chunks (at least one chunk)."""
        if requested < 1:
            raise ValueError(f"block size must be positive, got {requested}")
        chunk = self.info.chunk_samples
        return max(chunk, math.ceil(requested / chunk) * chunk)

    def block_ranges(self, block_size: int) -> list[SampleRange]:
        """Chunk-aligned sample ranges covering every column of the file."""
        size = self.aligned_block_size(block_size)
        n = self.info.n_samples
        return [SampleRange(start, min(start + size, n)) for start in range(0, n, size)]

    def read_counts(self, rows: SampleRange) -> np.ndarray:
        """Counts of source columns `rows` as a C-ordered uint32 (genes, samples) matrix."""
        if not 0 <= rows.start < rows.stop <= self.info.n_samples:
            raise IndexError(
                f"{self.path}: sample range [{rows.start}, {rows.stop}) "
                f"outside 0..{self.info.n_samples}"
            )
        dataset = self._dataset(EXPRESSION_KEY)
        out = np.empty((self.info.n_genes, rows.size), dtype=dataset.dtype)
        try:
            dataset.read_direct(out, np.s_[:, rows.start : rows.stop])
        except OSError as error:
            raise Archs4FormatError(
                self.path,
                EXPRESSION_KEY,
                f"cannot read samples [{rows.start}, {rows.stop}) "
                f"(truncated or corrupt file?): {error}",
            ) from error
        return out.astype(np.uint32, copy=False)

    def iter_gene_slabs(self, rows: SampleRange) -> Iterator[np.ndarray]:
        """Counts of source columns `rows`, one slab of whole gene chunks at a time.

        Slabs follow the file's gene chunking, so no chunk is decompressed twice, and a caller
        can write one slab while the next is read.
        """
        if not 0 <= rows.start < rows.stop <= self.info.n_samples:
            raise IndexError(
                f"{self.path}: sample range [{rows.start}, {rows.stop}) "
                f"outside 0..{self.info.n_samples}"
            )
        dataset = self._dataset(EXPRESSION_KEY)
        step = self.info.chunk_genes
        for first in range(0, self.info.n_genes, step):
            last = min(first + step, self.info.n_genes)
            out = np.empty((last - first, rows.size), dtype=dataset.dtype)
            try:
                dataset.read_direct(out, np.s_[first:last, rows.start : rows.stop])
            except OSError as error:
                raise Archs4FormatError(
                    self.path,
                    EXPRESSION_KEY,
                    f"cannot read genes [{first}, {last}) of samples [{rows.start}, {rows.stop}) "
                    f"(truncated or corrupt file?): {error}",
                ) from error
            yield out.astype(np.uint32, copy=False)

    def iter_blocks(self, block_size: int) -> Iterator[tuple[SampleRange, np.ndarray]]:
        for rows in self.block_ranges(block_size):
            yield rows, self.read_counts(rows)


def species_in_name(path: Path) -> str | None:
    """The species a release file's name gives (ARCHS4 names them `human_...`, `mouse_...`)."""
    name = path.name.lower()
    return next((species for species in SPECIES if species in name), None)


def open_archs4(path: Path | str, *, full_check: bool = True) -> Archs4Source:
    """Open and validate an ARCHS4 gene-level file; errors name the file and the key.

    The full check reads every metadata vector: lengths along their axis, GSM, series and
    Ensembl id formats, duplicates and numeric ranges (a few seconds at ARCHS4 scale).
    `full_check=False` skips it for callers that re-open a file already validated, such as
    block ingestion.
    """
    return Archs4Source(path, full_check=full_check)


def is_valid_series_list(series_id: str) -> bool:
    """True for one or more comma-joined GSE accessions (`GSE123` or `GSE1,GSE2`)."""
    return bool(GSE_PATTERN.match(series_id))
