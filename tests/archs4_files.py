"""Small ARCHS4-layout HDF5 files written directly with h5py, independently of the demo
generator, in the key variants of the real releases (the "another tool" of the tests)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

LAYOUTS = {
    # release: (gene id key, symbol key, aligned reads key, has meta/info/version)
    "v2.1.2": ("ensembl_gene_id", "gene_symbol", "readsaligned", False),
    "v2.2": ("ensembl_gene_id", "gene_symbol", "readsaligned", True),
    "v2.6": ("ensembl_gene", "symbol", "alignedreads", True),
}


def example_counts(n_genes: int = 30, n_samples: int = 25, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.gamma(0.5, 40.0, size=(n_genes, 1)) * rng.lognormal(0, 0.5, size=(1, n_samples))
    return rng.poisson(means).astype(np.uint32)


def _strings(values: list[str], fixed_length: bool) -> np.ndarray:
    if fixed_length:
        return np.array([v.encode() for v in values], dtype=f"S{max(len(v) for v in values) or 1}")
    return np.array(values, dtype=object)


def write_archs4_file(
    path: Path,
    counts: np.ndarray,
    *,
    layout: str = "v2.6",
    fixed_length_strings: bool = False,
    chunks: tuple[int, int] | None = (10, 5),
    compression: str | None = "gzip",
    gsms: list[str] | None = None,
    series: list[str] | None = None,
    probability_as_text: bool = False,
) -> Path:
    """Write `counts` (genes x samples) with metadata in the key layout of `layout`."""
    gene_key, symbol_key, aligned_key, has_version = LAYOUTS[layout]
    n_genes, n_samples = counts.shape
    gsms = gsms or [f"GSM{2000000 + i}" for i in range(n_samples)]
    series = series or [
        f"GSE{100 + i // 10}" + (f",GSE{900 + i}" if i % 7 == 3 else "") for i in range(n_samples)
    ]
    with h5py.File(path, "w") as handle:
        handle.create_dataset(
            "data/expression",
            data=counts,
            chunks=chunks if chunks else None,
            compression=compression if chunks else None,
        )
        genes = {
            gene_key: [f"ENSG{i:011d}" for i in range(n_genes)],
            symbol_key: [f"GENE{i % (n_genes - 2)}" for i in range(n_genes)],  # 2 repeated
            "biotype": ["protein_coding" if i % 4 else "lncRNA" for i in range(n_genes)],
        }
        _write_strings(handle, "meta/genes", genes, fixed_length_strings)
        _write_strings(
            handle, "meta/samples", _sample_text(gsms, series, n_samples), fixed_length_strings
        )
        _write_sample_numbers(handle, counts, aligned_key, probability_as_text)
        if has_version:
            handle.create_dataset("meta/info/version", data=layout.removeprefix("v"))
            handle.create_dataset("meta/info/creation-date", data="2024-01-15")
    return path


def _sample_text(gsms: list[str], series: list[str], n_samples: int) -> dict[str, list[str]]:
    """The text metadata of the samples, by key."""
    return {
        "geo_accession": gsms,
        "series_id": series,
        "title": [f"sample {i}" for i in range(n_samples)],
        "source_name_ch1": ["HeLa cells" if i % 2 else "hippocampus" for i in range(n_samples)],
        "characteristics_ch1": [f"tissue: t{i}\tage: {20 + i}" for i in range(n_samples)],
        "organism_ch1": ["Homo sapiens"] * n_samples,
    }


def _write_strings(
    handle: h5py.File, group: str, columns: dict[str, list[str]], fixed_length: bool
) -> None:
    """One string dataset per key of `columns` under `group`: fixed-length bytes or UTF-8."""
    string_type = None if fixed_length else h5py.string_dtype("utf-8")
    for key, values in columns.items():
        handle.create_dataset(
            f"{group}/{key}", data=_strings(values, fixed_length), dtype=string_type
        )


def _write_sample_numbers(
    handle: h5py.File, counts: np.ndarray, aligned_key: str, probability_as_text: bool
) -> None:
    """The numeric sample metadata: single-cell probability (as numbers or text) and the
    aligned reads (the column sums of `counts`)."""
    probability = np.linspace(0, 1, counts.shape[1])
    if probability_as_text:
        handle.create_dataset(
            "meta/samples/singlecellprobability",
            data=_strings([f"{p:.4f}" for p in probability], True),
        )
    else:
        handle.create_dataset("meta/samples/singlecellprobability", data=probability)
    handle.create_dataset(f"meta/samples/{aligned_key}", data=counts.sum(axis=0).astype(np.int64))


def write_gtf(path: Path, n_genes: int, *, missing_every: int = 9, seed: int = 0) -> dict[str, int]:
    """A GENCODE-style GTF for the genes of `write_archs4_file` (ids with a version suffix).

    Every `missing_every`-th gene is left out. Each gene gets two transcripts; returns the
    expected longest-transcript length of each gene id (computed here, independently).
    """
    rng = np.random.default_rng(seed)
    expected: dict[str, int] = {}
    lines = ["##description: test annotation", "##provider: tests"]
    position = 1000
    for gene in range(n_genes):
        if gene % missing_every == missing_every - 1:
            continue
        gene_id = f"ENSG{gene:011d}"
        lengths = []
        for transcript in range(2):
            transcript_id = f"ENST{gene:09d}{transcript:02d}"
            start = position
            total = 0
            for exon in range(int(rng.integers(1, 5))):
                size = int(rng.integers(50, 900))
                attributes = (
                    f'gene_id "{gene_id}.3"; transcript_id "{transcript_id}.1"; '
                    f'gene_type "protein_coding"; gene_name "GENE{gene}"; exon_number {exon + 1};'
                )
                lines.append(
                    f"chr1\tHAVANA\texon\t{start}\t{start + size - 1}\t.\t+\t.\t{attributes}"
                )
                total += size
                start += size + 100
            lengths.append(total)
        expected[gene_id] = max(lengths)
        position += 20000
    path.write_text("\n".join(lines) + "\n")
    return expected
