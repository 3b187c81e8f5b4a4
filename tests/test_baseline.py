"""The original configuration's evaluations (archs4.baseline): the same models and scores as
fitting on every labelled row in memory while under the training cap, at most the cap of rows
fitted beyond it, and test rows predicted block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from archs4 import baseline
from archs4.baseline import (
    BASELINE_OWN_SPLIT,
    capped_rows,
    original_configuration_evaluations,
    probabilities_by_block,
)
from archs4.classifier import (
    BASELINE_MODEL_NAME,
    baseline_original,
    evaluate_model_on_rows,
    fit_original_configuration,
)
from archs4.datasets import EXPRESSION_DATASET
from archs4.training_data import expression_rows, rows_of
from archs4.warehouse import Warehouse

N_SAMPLES, N_GENES, BLOCK = 90, 40, 30
LABELS = ["a", "b", "c"]


@pytest.fixture
def labelled_warehouse(tmp_path: Path) -> tuple[Warehouse, np.ndarray, np.ndarray, np.ndarray]:
    """Three expression blocks of 30 samples x 40 genes whose first genes carry the labels;
    samples 0-79 labelled, every fourth of them in the test split."""
    rng = np.random.default_rng(3)
    truth_all = (rng.random((N_SAMPLES, len(LABELS))) < 0.4).astype(np.int8)
    values = rng.normal(size=(N_SAMPLES, N_GENES)).astype(np.float32)
    values[:, : len(LABELS)] += 3 * truth_all
    warehouse = Warehouse.at(tmp_path / "warehouse")
    for number, first in enumerate(range(0, N_SAMPLES, BLOCK)):
        samples = np.arange(first, first + BLOCK)
        warehouse.write_long_block(
            warehouse.block_path(EXPRESSION_DATASET, f"{number:06d}"),
            values[samples].T,
            samples,
            "value",
            pa.float32(),
        )
    labelled = np.arange(80)
    return warehouse, labelled, truth_all[labelled], labelled[::4]


def test_block_by_block_probabilities_equal_the_gathered_rows(labelled_warehouse):
    warehouse, labelled, truth, _ = labelled_warehouse
    model = fit_original_configuration(expression_rows(warehouse, labelled), truth, seed=0)
    wanted = np.array([85, 3, 47, 31, 0, 62])  # unsorted, over every block
    gathered = baseline.label_probabilities(model, expression_rows(warehouse, wanted))
    np.testing.assert_array_equal(probabilities_by_block(warehouse, model, wanted), gathered)
    with pytest.raises(ValueError, match="not in the expression layer"):
        probabilities_by_block(warehouse, model, np.array([5, 500]))


def test_capped_rows_keep_order_and_are_seeded():
    rows = np.array([9, 2, 7, 4, 1, 8])
    assert capped_rows(rows, 6, seed=0) is rows
    kept = capped_rows(rows, 4, seed=0)
    assert kept.size == 4 and set(kept) <= set(rows)
    np.testing.assert_array_equal(kept, [r for r in rows if r in set(kept)])  # given order
    np.testing.assert_array_equal(kept, capped_rows(rows, 4, seed=0))


def test_under_the_cap_the_evaluations_equal_fitting_every_row_in_memory(labelled_warehouse):
    warehouse, labelled, truth, test = labelled_warehouse
    comparable, own = original_configuration_evaluations(
        warehouse,
        labelled=labelled,
        truth=truth,
        test=test,
        label_names=LABELS,
        seed=0,
        max_train_samples=1_000,
    )
    # The in-memory path the model_evaluation asset took before.
    all_genes = expression_rows(warehouse, labelled)
    not_test = np.setdiff1d(labelled, test)
    model = fit_original_configuration(
        all_genes[rows_of(labelled, not_test)], truth[rows_of(labelled, not_test)], seed=0
    )
    expected = evaluate_model_on_rows(
        model,
        all_genes,
        truth,
        rows_of(labelled, test),
        label_names=LABELS,
        model_name=BASELINE_MODEL_NAME,
    )
    own_model, own_rows = baseline_original(all_genes, truth, seed=0)
    expected_own = evaluate_model_on_rows(
        own_model, all_genes, truth, own_rows, label_names=LABELS, model_name=BASELINE_OWN_SPLIT
    )
    assert_frame_equal(comparable, expected)
    assert_frame_equal(own, expected_own)


def test_beyond_the_cap_at_most_the_cap_is_fitted(labelled_warehouse, monkeypatch):
    warehouse, labelled, truth, test = labelled_warehouse
    fitted_rows: list[int] = []
    real_fit = baseline.fit_original_configuration

    def recording_fit(rows, labels, *, seed):
        fitted_rows.append(rows.shape[0])
        return real_fit(rows, labels, seed=seed)

    monkeypatch.setattr(baseline, "fit_original_configuration", recording_fit)
    comparable, own = original_configuration_evaluations(
        warehouse,
        labelled=labelled,
        truth=truth,
        test=test,
        label_names=LABELS,
        seed=0,
        max_train_samples=25,
    )
    assert fitted_rows == [25, 25]  # 60 non-test rows and 53 own-split train rows, capped
    assert set(comparable["model"]) == {BASELINE_MODEL_NAME}
    assert set(own["model"]) == {BASELINE_OWN_SPLIT}
    f1 = comparable.filter((comparable["label"] == "ALL") & (comparable["metric"] == "f1_samples"))
    assert 0.0 <= f1["value"][0] <= 1.0
