"""`write_demo_dataset`: the whole demo release (HDF5, GTF, truth, label lists) in one call.

Plans the genes and the samples once, then writes each output from them. Why: one entry
point with validated arguments for the CLI (`archs4 demo-data`), the tests and the benchmarks;
each output is written under a temporary name and renamed into place, so a crash never leaves
a half file under a final name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archs4.demo_data.genes import build_gene_table
from archs4.demo_data.gtf import _write_gtf
from archs4.demo_data.hdf5 import LAYOUTS, _write_h5
from archs4.demo_data.label_files import _preview_gene_rows, _write_label_lists, _write_truth
from archs4.demo_data.realism import DEFAULT_REALISM, DemoRealism
from archs4.demo_data.samples import plan_samples


@dataclass(frozen=True)
class DemoPaths:
    h5: Path  # <out>/human_gene_v2.6_demo.h5   (name includes the layout version)
    gtf: Path  # <out>/gencode.demo.annotation.gtf.gz
    truth: Path  # <out>/labels_truth.tsv
    labels_dir: Path  # <out>/labels   (ARCHS4 download layout)


def write_demo_dataset(
    out_dir: Path,
    *,
    n_samples: int = 4000,
    n_genes: int = 2500,
    seed: int = 7,
    layout: str = "v2.6",
    block_size: int = 1000,
    realism: DemoRealism = DEFAULT_REALISM,
) -> DemoPaths:
    """Write the demo ARCHS4 file, its GTF, the true labels and the label download directory.

    Same arguments give identical expression data and identical text files. Each output is
    written under a temporary name and renamed into place, so a crash never leaves a half file
    under a final name.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    if n_samples < 1 or n_genes < 1 or block_size < 1:
        raise ValueError("n_samples, n_genes and block_size must be positive")
    if seed < 0:
        raise ValueError("seed must be non-negative (it keys numpy SeedSequence streams)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = DemoPaths(
        h5=out_dir / f"human_gene_{layout}_demo.h5",
        gtf=out_dir / "gencode.demo.annotation.gtf.gz",
        truth=out_dir / "labels_truth.tsv",
        labels_dir=out_dir / "labels",
    )
    genes = build_gene_table(n_genes, seed)
    plan = plan_samples(n_samples, seed, realism.max_study_share)
    _write_gtf(paths.gtf, genes, seed)
    preview_rows = _preview_gene_rows(genes)
    preview_counts = _write_h5(
        paths.h5,
        genes,
        plan,
        layout=layout,
        seed=seed,
        block_size=block_size,
        preview_rows=preview_rows,
        realism=realism,
    )
    _write_truth(paths.truth, plan)
    preview_symbols = [genes.symbol[row] for row in preview_rows]
    _write_label_lists(paths.labels_dir, plan, seed, preview_symbols, preview_counts)
    return paths
