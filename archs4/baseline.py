"""The original work's configuration (a 10-tree Random Forest on all genes, thresholds 0.5),
scored beside ours, in memory bounded by the training cap and one block whatever the release.

On all genes a training matrix is rows x genes float32. Gathering every labelled sample, as
`model_evaluation` did before, grows with the release: the demo labels 79% of its samples, which at
the 50,000 x 60,000 rehearsal is about 39,000 rows, 9.4 GB, plus an 8 GB copy of the non-test rows
(an estimate, not a measurement, but the likely cause of that run's 22.8 GB peak); at that share a
full release's 900,000 samples give ~700,000 rows, 190 GB. So each baseline is fitted on at most
`max_train_samples` rows (the cap of our own model's training set, `splits.mark_training_set`;
20,000 x 67,000 genes is 5.4 GB), a seeded uniform draw, and its test rows are predicted one block
of `expression` at a time, never gathered. Below the cap the rows, their order and so the models
are those of fitting on every row (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from archs4.classifier import (
    BASELINE_MODEL_NAME,
    BASELINE_TEST_FRACTION,
    BASELINE_THRESHOLD,
    evaluate,
    fit_original_configuration,
    label_probabilities,
)
from archs4.training_data import expression_rows, rows_by_block, rows_of
from archs4.warehouse import Warehouse

BASELINE_OWN_SPLIT = "baseline_original_random_split"


def probabilities_by_block(
    warehouse: Warehouse, model: RandomForestClassifier, sample_idx: np.ndarray
) -> np.ndarray:
    """`label_probabilities` of an all-gene `model` on the samples `sample_idx` (in that order),
    predicted one block at a time."""
    probabilities = np.zeros((np.asarray(sample_idx).size, model.n_outputs_), dtype=np.float64)
    for positions, rows in rows_by_block(warehouse, sample_idx):
        probabilities[positions] = label_probabilities(model, rows)
    return probabilities


def capped_rows(rows: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """`rows` when there are at most `max_rows`; otherwise a seeded uniform draw of `max_rows`
    of them, in their given order."""
    if rows.size <= max_rows:
        return rows
    keep = np.random.default_rng(seed).choice(rows.size, size=max_rows, replace=False)
    return rows[np.sort(keep)]


def original_configuration_evaluations(
    warehouse: Warehouse,
    *,
    labelled: np.ndarray,
    truth: np.ndarray,
    test: np.ndarray,
    label_names: Sequence[str],
    seed: int,
    max_train_samples: int,
    log: Callable[[str], None] = lambda _message: None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The baseline fitted on the non-test labelled samples and scored on our test split
    (comparable with ours), and the baseline on its own random per-sample 67/33 split of the
    labelled samples (as published). `labelled` is sorted, `truth` its multi-hot rows."""

    def fit_and_score(
        train: np.ndarray, labels: np.ndarray, test_samples: np.ndarray, name: str
    ) -> pl.DataFrame:
        rows = expression_rows(warehouse, train)
        log(f"{name}: fitted on {rows.shape[1]} genes x {rows.shape[0]} train samples")
        model = fit_original_configuration(rows, labels, seed=seed)
        del rows  # the test rows are read block by block after it
        probabilities = probabilities_by_block(warehouse, model, test_samples)
        test_truth = truth[rows_of(labelled, test_samples)]
        return evaluate(test_truth, probabilities, BASELINE_THRESHOLD, label_names, name)

    not_test = capped_rows(np.setdiff1d(labelled, test), max_train_samples, seed)
    comparable = fit_and_score(
        not_test, truth[rows_of(labelled, not_test)], test, BASELINE_MODEL_NAME
    )
    train_rows, test_rows = train_test_split(
        np.arange(labelled.size), test_size=BASELINE_TEST_FRACTION, random_state=seed
    )
    train_rows = capped_rows(train_rows, max_train_samples, seed)
    own = fit_and_score(
        labelled[train_rows], truth[train_rows], labelled[np.sort(test_rows)], BASELINE_OWN_SPLIT
    )
    return comparable, own
