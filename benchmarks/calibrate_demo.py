"""Calibrate the demo's realism (archs4/demo_data/realism.py) on the original work's
configuration alone: for each setting, the gap between its f1_samples on a random per-sample
split and on the study-grouped test split, as `model_evaluation` measures it.

For each setting the demo is generated (4,000 x 2,500, seed 7) and normalized as the
`expression` asset does it (the genes its GTF lacks left out; log2(x+1), quantile-normalized
against the target of all samples, divided by the length in kb), and the original
configuration (10 trees, all genes, thresholds 0.5) is trained on the labels the
`sample_labels` asset derives (metadata matches and the demo's label download):

- `study_split`: trained on every labelled sample outside the study-grouped test split
  (`archs4.splits.split_by_study`, seed 0) and scored on that test split;
- `random_split`: trained and scored on its own random 67/33 per-sample split.

No augmentation is run or read here: the realism is set before any augmentation result exists.

    python -m benchmarks.calibrate_demo            # the grid; writes results/demo_calibration.json
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pyarrow as pa

from archs4.classifier import baseline_original, evaluate_model_on_rows, fit_original_configuration
from archs4.demo_data import write_demo_dataset
from archs4.demo_data.realism import DemoRealism
from archs4.gene_lengths import attach_lengths, gene_lengths_from_gtf
from archs4.labels import import_labels, load_vocabulary, read_label_directory
from archs4.quantile_norm import TargetAccumulator, normalize_block
from archs4.reader import SampleRange, open_archs4
from archs4.splits import split_by_study, study_groups
from archs4.training_data import label_matrix

RESULTS = Path(__file__).parent / "results" / "demo_calibration.json"
# A coarse grid, then finer steps around the published figure; 3 split seeds each (one split's
# test set holds a few dozen studies, so a single seed moves the gap by about 0.05).
GRIDS = (
    {"label_signal": (1.0,), "study_batch": (1.0, 1.5, 2.0, 2.5, 3.0), "max_study_share": (1.0,)},
    {"label_signal": (1.0,), "study_batch": (1.5, 2.0, 2.5, 3.0), "max_study_share": (0.25,)},
)
SEEDS = (0, 1, 2)
TARGET = {"random": 0.80, "study": 0.48}  # Heil, Crawford & Greene (2023), balanced accuracy


@dataclass(frozen=True)
class DemoMatrix:
    """A generated demo's normalized expression and true labels."""

    expression: np.ndarray  # labelled samples x genes
    labels: np.ndarray  # multi-hot, labelled samples x labels
    label_rows: pl.DataFrame  # sample_idx, label (true labels)
    samples: pl.DataFrame  # sample_idx, gsm, series_id
    names: list[str]


def demo_matrix(realism: DemoRealism) -> DemoMatrix:
    """The demo of `realism`, labelled as the `sample_labels` asset labels it: the vocabulary's
    metadata matches plus the demo's label download, so the samples a study's uninformative
    metadata leaves unlabelled are left out here too."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_demo_dataset(Path(tmp), realism=realism)
        with open_archs4(paths.h5) as release:
            n_samples = release.info.n_samples
            metadata = release.sample_metadata(SampleRange(0, n_samples))
            genes = attach_lengths(pl.from_arrow(release.genes()), gene_lengths_from_gtf(paths.gtf))
        with h5py.File(paths.h5, "r") as handle:
            counts = handle["data/expression"][:][genes["has_length"].to_numpy()]
        vocabulary = load_vocabulary()
        samples = pl.from_arrow(pa.table(metadata)).with_columns(
            pl.int_range(n_samples).alias("sample_idx")
        )
        imported, _ = import_labels(
            read_label_directory(paths.labels_dir, vocabulary), samples.select("gsm", "sample_idx")
        )
    # As the `expression` asset: genes the GTF lacks left out, divided by the length in kb.
    accumulator = TargetAccumulator(n_genes=counts.shape[0])
    accumulator.add_block(counts)
    length_bp = genes.filter(pl.col("has_length"))["length_bp"].to_numpy().astype(np.float64)
    expression = normalize_block(counts, accumulator.target(), length_bp).T
    label_rows = (
        pl.concat([vocabulary.label_samples(samples), imported])
        .select("sample_idx", "label")
        .unique()
    )
    names = list(vocabulary.labels)
    labelled, matrix = label_matrix(label_rows, names)
    return DemoMatrix(
        expression[labelled],
        matrix,
        label_rows,
        samples.select("sample_idx", "gsm", "series_id"),
        names,
    )


def split_scores(demo: DemoMatrix, seed: int) -> dict[str, float]:
    """f1_samples and f1_macro of the original configuration on both splits, one seed."""
    labelled = np.sort(demo.label_rows["sample_idx"].unique().to_numpy())
    splits = split_by_study(study_groups(demo.samples), demo.label_rows, seed=seed)
    test = np.sort(splits.filter(pl.col("split") == "test")["sample_idx"].to_numpy())
    test_rows = np.searchsorted(labelled, test)
    not_test = np.setdiff1d(np.arange(labelled.size), test_rows)
    rows, matrix, names = demo.expression, demo.labels, demo.names
    study_model = fit_original_configuration(rows[not_test], matrix[not_test], seed=seed)
    study = evaluate_model_on_rows(
        study_model, rows, matrix, test_rows, label_names=names, model_name="study_split"
    )
    random_model, random_rows = baseline_original(rows, matrix, seed=seed)
    random = evaluate_model_on_rows(
        random_model, rows, matrix, random_rows, label_names=names, model_name="random_split"
    )
    return {
        f"{metric}/{split}": _overall(frame, metric)
        for split, frame in (("study", study), ("random", random))
        for metric in ("f1_samples", "f1_macro")
    }


def calibration_row(realism: DemoRealism) -> dict:
    """Means over `SEEDS` of each split's scores, the gaps, and the brain label's studies."""
    started = time.perf_counter()
    demo = demo_matrix(realism)
    per_seed = [split_scores(demo, seed) for seed in SEEDS]
    means = {key: round(float(np.mean([s[key] for s in per_seed])), 4) for key in per_seed[0]}
    brain = demo.label_rows.filter(pl.col("label") == "brain").join(demo.samples, on="sample_idx")
    return {
        **asdict(realism),
        **means,
        **{
            f"{metric}_gap": round(means[f"{metric}/random"] - means[f"{metric}/study"], 4)
            for metric in ("f1_samples", "f1_macro")
        },
        "brain_samples": brain.height,
        "brain_studies": brain["series_id"].n_unique(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _overall(evaluation: pl.DataFrame, metric: str) -> float:
    row = evaluation.filter((pl.col("label") == "ALL") & (pl.col("metric") == metric))
    return round(float(row["value"][0]), 4)


def main() -> None:
    results = []
    for grid in GRIDS:
        for values in itertools.product(*grid.values()):
            row = calibration_row(DemoRealism(**dict(zip(grid, values, strict=True))))
            results.append(row)
            print(json.dumps(row), flush=True)
    RESULTS.write_text(json.dumps({"target": TARGET, "seeds": SEEDS, "rows": results}, indent=1))


if __name__ == "__main__":
    main()
