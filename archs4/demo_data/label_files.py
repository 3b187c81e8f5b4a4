"""The demo's label files: ``labels_truth.tsv`` and the ``labels/`` download directory.

``labels_truth.tsv`` holds every sample's true labels and whether its metadata names them;
``labels/<cell_lines|tissue_types>/<label>/<label>.tsv`` are incomplete label lists in the
ARCHS4 download layout (expression tables whose header row lists the label's samples). Why:
labelling is scored against the truth, and label import must meet lists as incomplete as the
real downloads.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from archs4.demo_data.genes import GeneTable
from archs4.demo_data.samples import SamplePlan
from archs4.demo_data.streams import _rng, _Stream
from archs4.demo_data.tables import ALL_LABELS, CELL_LINE_LABELS

_LISTED_IN_DOWNLOAD_PROBABILITY = 0.5


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8", newline="\n")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_truth(path: Path, plan: SamplePlan) -> None:
    lines = ["gsm\tlabel\tnamed_in_metadata\n"]
    for sample in range(plan.n_samples):
        named = "true" if plan.named_in_metadata[sample] else "false"
        lines.extend(f"{plan.gsm[sample]}\t{label}\t{named}\n" for label in plan.labels_of(sample))
    _write_text(path, "".join(lines))


def _preview_gene_rows(genes: GeneTable) -> list[int]:
    """A few well-known genes whose counts fill the rows of the label download files."""
    row_of = {symbol: g for g, symbol in enumerate(genes.symbol[: genes.n_h5])}
    rows = [row_of[s] for s in ("GAPDH", "ACTB", "B2M", "EEF1A1", "TPT1") if s in row_of]
    return rows or list(range(min(5, genes.n_h5)))


def _write_label_lists(
    labels_dir: Path,
    plan: SamplePlan,
    seed: int,
    preview_symbols: Sequence[str],
    preview_counts: np.ndarray,
) -> None:
    """``labels/<cell_lines|tissue_types>/<label>/<label>.tsv``: an expression table whose header
    row lists the label's samples. Like the real downloads the lists are incomplete: only
    samples whose metadata names the label, and about half of those. Labels with no listed
    sample get no file."""
    listed = (
        _rng(seed, _Stream.DOWNLOAD_LISTS).random(plan.n_samples) < _LISTED_IN_DOWNLOAD_PROBABILITY
    )
    truth = plan.label_matrix()
    staging = labels_dir.with_name(f".{labels_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for label_index, label in enumerate(ALL_LABELS):
        samples = np.flatnonzero(truth[:, label_index] & plan.named_in_metadata & listed)
        if samples.size == 0:
            continue
        kind = "cell_lines" if label in CELL_LINE_LABELS else "tissue_types"
        directory = staging / kind / label
        directory.mkdir(parents=True)
        lines = ["\t".join(["gene", *(plan.gsm[s] for s in samples)]) + "\n"]
        for symbol, counts in zip(preview_symbols, preview_counts, strict=True):
            lines.append("\t".join([symbol, *map(str, counts[samples].tolist())]) + "\n")
        (directory / f"{label}.tsv").write_text("".join(lines), encoding="utf-8", newline="\n")
    staging.mkdir(exist_ok=True)
    # A directory cannot replace a non-empty one in one rename: move the old one aside first.
    retired = labels_dir.with_name(f".{labels_dir.name}.old")
    shutil.rmtree(retired, ignore_errors=True)
    if labels_dir.exists():
        labels_dir.rename(retired)
    staging.replace(labels_dir)
    shutil.rmtree(retired, ignore_errors=True)
