"""The demo's HDF5 file in the ARCHS4 v2 gene-level layout (``v2.2`` or ``v2.6`` key names).

``data/expression`` (uint32, genes x samples, gzip chunks) is generated and written block by
block, ``meta/genes/*``, ``meta/samples/*`` (GEO metadata and QC fields) and ``meta/info/*``
after it. Why: the pipeline's reader must meet the real file's layout and both key spellings;
only O(samples) and O(genes) vectors are held, so any size fits in memory, and chunks are
compressed on a thread pool (zlib releases the GIL) and stored as they are, which uses every
core where h5py would compress in one thread.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from archs4.demo_data.counts import _count_block, _count_model
from archs4.demo_data.genes import GeneTable
from archs4.demo_data.metadata_text import _sample_texts
from archs4.demo_data.realism import DemoRealism
from archs4.demo_data.samples import SamplePlan
from archs4.demo_data.streams import _rng, _Stream

LAYOUTS: tuple[str, ...] = ("v2.2", "v2.6")
_EXPRESSION_CHUNK_ROWS = 2000
_EXPRESSION_CHUNK_COLUMNS = 100
_GZIP_LEVEL = 4


class _ExpressionWriter:
    """Appends sample columns to ``data/expression`` as whole compressed chunks.

    h5py compresses chunks one at a time in the writing thread, holding the GIL. Compressing
    with zlib (HDF5's gzip filter is zlib's deflate stream) on the thread pool, which zlib
    allows by releasing the GIL, and storing the chunks as they are uses every core. Columns
    that do not yet fill a chunk wait for the next block, so any block size gives the same
    chunks."""

    def __init__(self, dataset: h5py.Dataset, pool: ThreadPoolExecutor) -> None:
        self._dataset = dataset
        self._pool = pool
        self._rows, self._columns = dataset.chunks
        self._pending = np.zeros((0, dataset.shape[0]), dtype=np.uint32)
        self._next_column = 0

    def append(self, samples_by_genes: np.ndarray) -> None:
        if self._pending.shape[0]:
            samples_by_genes = np.concatenate([self._pending, samples_by_genes])
        whole = samples_by_genes.shape[0] // self._columns * self._columns
        self._write(samples_by_genes[:whole])
        self._pending = samples_by_genes[whole:].copy()

    def close(self) -> None:
        if self._pending.shape[0]:
            self._write(self._pending)
            self._pending = self._pending[:0]
        if self._next_column != self._dataset.shape[1]:
            raise RuntimeError("expression matrix incompletely written")

    def _write(self, samples_by_genes: np.ndarray) -> None:
        n_samples, n_genes = samples_by_genes.shape
        tiles = [
            (row, column)
            for column in range(0, n_samples, self._columns)
            for row in range(0, n_genes, self._rows)
        ]

        def compress(tile: tuple[int, int]) -> bytes:
            row, column = tile
            # Edge chunks are stored full size, zero padded, as HDF5 itself stores them.
            chunk = np.zeros((self._rows, self._columns), dtype=np.uint32)
            part = samples_by_genes[column : column + self._columns, row : row + self._rows].T
            chunk[: part.shape[0], : part.shape[1]] = part
            return zlib.compress(chunk, _GZIP_LEVEL)

        for (row, column), data in zip(tiles, self._pool.map(compress, tiles), strict=True):
            self._dataset.id.write_direct_chunk((row, self._next_column + column), data)
        self._next_column += n_samples


def _write_h5(
    path: Path,
    genes: GeneTable,
    plan: SamplePlan,
    *,
    layout: str,
    seed: int,
    block_size: int,
    preview_rows: Sequence[int],
    realism: DemoRealism,
) -> np.ndarray:
    """Write the HDF5 file; returns the counts of the preview genes (preview genes x samples)."""
    n_genes, n_samples = genes.n_h5, plan.n_samples
    model = _count_model(genes, seed, realism)
    aligned = np.zeros(n_samples, dtype=np.int64)
    preview = np.zeros((len(preview_rows), n_samples), dtype=np.uint32)
    chunks = (min(n_genes, _EXPRESSION_CHUNK_ROWS), min(n_samples, _EXPRESSION_CHUNK_COLUMNS))
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with (
            h5py.File(temporary, "w") as handle,
            ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
        ):
            expression = handle.create_dataset(
                "data/expression",
                shape=(n_genes, n_samples),
                dtype=np.uint32,
                chunks=chunks,
                compression="gzip",
                compression_opts=_GZIP_LEVEL,
                shuffle=False,
            )
            writer = _ExpressionWriter(expression, pool)
            for start in range(0, n_samples, block_size):
                stop = min(n_samples, start + block_size)
                counts = _count_block(plan, model, start=start, stop=stop, seed=seed, pool=pool)
                aligned[start:stop] = counts.sum(axis=1, dtype=np.int64)
                preview[:, start:stop] = counts[:, list(preview_rows)].T
                writer.append(counts)
            writer.close()
            _write_gene_meta(handle, genes, layout)
            _write_sample_meta(handle, plan, layout, seed, aligned)
            _write_info(handle, layout)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return preview


_STRING = h5py.string_dtype("utf-8")


def _write_strings(group: h5py.Group, key: str, values: Sequence[str]) -> None:
    group.create_dataset(key, data=np.array(values, dtype=object), dtype=_STRING)


def _write_gene_meta(handle: h5py.File, genes: GeneTable, layout: str) -> None:
    group = handle.create_group("meta/genes")
    id_key, symbol_key = (
        ("ensembl_gene", "symbol") if layout == "v2.6" else ("ensembl_gene_id", "gene_symbol")
    )
    _write_strings(group, id_key, genes.ensembl_id[: genes.n_h5])
    _write_strings(group, symbol_key, genes.symbol[: genes.n_h5])
    _write_strings(group, "biotype", genes.biotype[: genes.n_h5])


def _write_sample_meta(
    handle: h5py.File, plan: SamplePlan, layout: str, seed: int, aligned: np.ndarray
) -> None:
    group = handle.create_group("meta/samples")
    n = plan.n_samples
    rng = _rng(seed, _Stream.QC_FIELDS)
    single_cell = np.repeat(plan.study_single_cell, plan.study_size)
    probability = np.where(single_cell, rng.beta(8.0, 1.5, n), rng.beta(0.6, 30.0, n))
    mapping_rate = rng.uniform(0.55, 0.95, n)
    texts = _sample_texts(plan, seed)
    _write_strings(group, "geo_accession", plan.gsm)
    _write_strings(group, "series_id", [plan.series_id(s) for s in range(n)])
    for key in ("title", "source_name_ch1", "characteristics_ch1"):
        _write_strings(group, key, texts[key])
    _write_strings(group, "organism_ch1", ["Homo sapiens"] * n)
    _write_strings(group, "molecule_ch1", texts["molecule_ch1"])
    _write_strings(group, "library_strategy", ["RNA-Seq"] * n)
    for key in ("library_source", "library_selection", "platform_id", "instrument_model",
                "extract_protocol_ch1", "data_processing", "submission_date",
                "last_update_date", "status"):  # fmt: skip
        _write_strings(group, key, texts[key])
    _write_strings(group, "type", ["SRA"] * n)
    _write_strings(group, "relation", texts["relation"])
    group.create_dataset("singlecellprobability", data=probability.astype(np.float64))
    group.create_dataset("readstotal", data=np.ceil(aligned / mapping_rate).astype(np.int64))
    aligned_key = "alignedreads" if layout == "v2.6" else "readsaligned"
    group.create_dataset(aligned_key, data=aligned)


def _write_info(handle: h5py.File, layout: str) -> None:
    group = handle.create_group("meta/info")
    values = {
        "version": layout.removeprefix("v"),
        # A fixed date per layout, so same arguments give the same file.
        "creation-date": {"v2.2": "2023-03-20", "v2.6": "2024-08-26"}[layout],
        "author": "archs4.demo_data (synthetic demo release)",
        "contact": "see the project README",
        "laboratory": "synthetic data in the layout of the Ma'ayan Laboratory's ARCHS4",
    }
    for key, value in values.items():
        group.create_dataset(key, data=value, dtype=_STRING)
