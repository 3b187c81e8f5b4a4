"""The multi-label classifier (archs4.classifier): training, thresholds, metrics against
hand-worked values and direct sklearn calls, the original baseline, and safe skops loading."""

# X features, Y labels and P probabilities, as in the module under test.
# ruff: noqa: N803, N806

from __future__ import annotations

import copy
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import skops.io
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    hamming_loss,
    precision_score,
    recall_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from archs4.classifier import (
    ALLOWED_MODEL_TYPES,
    BASELINE_MODEL_NAME,
    UnsafeModelError,
    baseline_original,
    evaluate,
    evaluate_model_on_rows,
    label_probabilities,
    load_model,
    model_card,
    predict_labels,
    save_model,
    train_random_forest,
    tune_thresholds,
)
from archs4.features import fit_feature_space

N_SAMPLES = 600
N_GENES = 200
LABELS = ["brain", "liver", "lung", "muscle", "placenta"]
# The last label is rare (about 4% of samples, two dozen in all).
PREVALENCE = np.array([0.30, 0.25, 0.20, 0.15, 0.04])
MARKERS_PER_LABEL = 10


def synthetic_dataset(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Expression (samples x genes) where each label raises its own 10 marker genes."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((N_SAMPLES, len(LABELS))) < PREVALENCE).astype(np.int8)
    Y[:6, -1] = 1  # at least a few rare positives whatever the seed
    expression = rng.normal(size=(N_SAMPLES, N_GENES))
    for label in range(len(LABELS)):
        markers = slice(label * MARKERS_PER_LABEL, (label + 1) * MARKERS_PER_LABEL)
        expression[:, markers] += 3.0 * Y[:, label, None]
    return expression, Y


def split_rows(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(N_SAMPLES)
    return order[:360], order[360:480], order[480:]


def f1_per_label(Y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return f1_score(Y, predicted, average=None, zero_division=0)


def metric_value(frame: pl.DataFrame, label: str, metric: str) -> float:
    values = frame.filter((pl.col("label") == label) & (pl.col("metric") == metric))["value"]
    assert len(values) == 1, (label, metric)
    return float(values[0])


# ---------------------------------------------------------------------------------------------
# Training


def test_random_forest_learns_the_signal_and_tuned_thresholds_help_on_validation() -> None:
    expression, Y = synthetic_dataset()
    train, validation, test = split_rows()
    space = fit_feature_space(expression[train], np.arange(N_GENES), n_top_genes=100, seed=0)
    X = space.transform(expression)
    messages: list[str] = []

    model = train_random_forest(
        X[train], Y[train], n_estimators=80, seed=0, progress=messages.append
    )

    assert len(model.estimators_) == 80
    assert messages[-1].startswith("random forest: 80/80 trees")
    assert len(messages) == 5  # a start line and one line per warm-start stage
    P_validation = label_probabilities(model, X[validation])
    thresholds = tune_thresholds(P_validation, Y[validation])
    evaluation = evaluate(Y[test], label_probabilities(model, X[test]), thresholds, LABELS, "rf")

    # Chance: predicting every label independently at its prevalence gives micro F1 close to
    # the mean prevalence (about 0.19 here); the signal is easy, so far more is expected.
    assert metric_value(evaluation, "ALL", "f1_micro") > 0.8
    for label in LABELS[:-1]:
        assert metric_value(evaluation, label, "f1") > 0.7, label
        assert metric_value(evaluation, label, "average_precision") > 0.8, label
    # Tuning picks the best grid point on validation, and 0.5 is on the grid.
    tuned = f1_per_label(Y[validation], predict_labels(P_validation, thresholds))
    at_half = f1_per_label(Y[validation], predict_labels(P_validation, 0.5))
    assert (tuned >= at_half).all()


def test_staged_training_equals_one_fit_with_the_same_seed() -> None:
    expression, Y = synthetic_dataset()
    X = expression[:, :60]
    staged = train_random_forest(X, Y, n_estimators=30, seed=4)
    single = RandomForestClassifier(
        n_estimators=30, class_weight="balanced_subsample", random_state=4
    ).fit(X.astype(np.float32), Y)

    assert staged.warm_start is False
    expected = np.column_stack([proba[:, 1] for proba in single.predict_proba(X)])
    np.testing.assert_array_equal(label_probabilities(staged, X), expected)


def test_constant_label_columns_give_constant_probabilities() -> None:
    expression, Y = synthetic_dataset()
    Y = Y.copy()
    Y[:, 1] = 0  # never positive in train
    Y[:, 3] = 1  # always positive in train
    model = train_random_forest(expression, Y, n_estimators=10, seed=0)

    P = label_probabilities(model, expression[:50])

    assert P.shape == (50, len(LABELS))
    np.testing.assert_array_equal(P[:, 1], 0.0)
    np.testing.assert_array_equal(P[:, 3], 1.0)
    # The other labels are the forest's positive-class column.
    np.testing.assert_array_equal(P[:, 0], model.predict_proba(expression[:50])[0][:, 1])


def test_a_single_label_is_one_probability_column() -> None:
    expression, Y = synthetic_dataset()
    model = train_random_forest(expression, Y[:, 0], n_estimators=10, seed=0)
    P = label_probabilities(model, expression[:20])
    assert P.shape == (20, 1)
    np.testing.assert_array_equal(P[:, 0], model.predict_proba(expression[:20])[:, 1])


# ---------------------------------------------------------------------------------------------
# Thresholds


def test_tune_thresholds_on_a_hand_made_example() -> None:
    # Decision rule: predicted = probability > threshold. Grid 0.05, 0.10, ..., 0.95.
    P = np.array(
        [
            # clear   plateau  rare   tie    absent
            [0.90, 0.93, 0.22, 0.90, 0.70],
            [0.70, 0.88, 0.08, 0.52, 0.40],
            [0.40, 0.62, 0.03, 0.53, 0.20],
            [0.32, 0.12, 0.01, 0.47, 0.10],
            [0.20, 0.05, 0.00, 0.01, 0.60],
            [0.10, 0.01, 0.00, 0.01, 0.05],
        ]
    )
    Y = np.array(
        [
            [1, 1, 1, 1, 0],
            [1, 1, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    # clear:   only t = 0.35 keeps the three positives (0.9, 0.7, 0.4) and drops 0.32: F1 = 1.
    # plateau: F1 = 1 for t in 0.65 .. 0.85 (between 0.62 and 0.88); closest to 0.5 is 0.65.
    # rare:    F1 = 1 for t in 0.10 .. 0.20 (between 0.08 and 0.22): 0.20, far below 0.5.
    # tie:     2 positives. t in 0.55 .. 0.85 predicts {0.90}: F1 = 2/(2+1) = 2/3; t = 0.50
    #          adds two negatives (0.52, 0.53): 2/(2+2+1) = 0.4; t in 0.05 .. 0.45 adds the
    #          second positive too: 4/(4+2) = 2/3. Best 2/3 at 0.45 and 0.55, equally close to
    #          0.5: the lower one, 0.45.
    # absent:  no positive in validation: the default.
    thresholds = tune_thresholds(P, Y, default=0.3)

    np.testing.assert_allclose(thresholds, [0.35, 0.65, 0.20, 0.45, 0.3], rtol=0, atol=1e-12)
    # The chosen threshold reaches the best F1 of the grid (checked with sklearn).
    grid = np.round(np.linspace(0.05, 0.95, 19), 10)
    for label in range(4):
        best = max(f1_score(Y[:, label], P[:, label] > t, zero_division=0) for t in grid)
        chosen = f1_score(Y[:, label], P[:, label] > thresholds[label], zero_division=0)
        assert chosen == pytest.approx(best)


def test_threshold_one_half_is_exactly_one_half() -> None:
    # A positive at 0.9 and a negative at exactly 0.5: F1 = 1 for t in 0.50 .. 0.85, so 0.5
    # is chosen. np.linspace puts 0.49999999999999994 where 0.5 is meant, at which the 0.5
    # negative would count as positive and the choice would move to 0.55; the grid is rounded.
    thresholds = tune_thresholds(np.array([[0.9], [0.5]]), np.array([[1], [0]]))
    assert thresholds.tolist() == [0.5]
    assert predict_labels(np.array([[0.5, 0.51]]), 0.5).tolist() == [[False, True]]


# ---------------------------------------------------------------------------------------------
# Evaluation


def test_evaluate_matches_hand_worked_values_and_sklearn() -> None:
    Y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    P = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.8], [0.1, 0.3]])
    thresholds = np.array([0.5, 0.25])
    # Predicted (P > threshold): label a -> [1, 0, 1, 0], label b -> [0, 1, 1, 1].
    # a: TP 1 (row 0), FP 1 (row 2), FN 1 (row 1): precision 1/2, recall 1/2, F1 1/2.
    #    AP: ranking 0.9(+) 0.6(-) 0.4(+) 0.1(-): 1/2 * 1 + 1/2 * 2/3 = 5/6.
    # b: TP 2 (rows 1, 2), FP 1 (row 3), FN 0: precision 2/3, recall 1, F1 4/5.
    #    AP: both positives ranked first: 1.
    # micro: TP 3, FP 2, FN 1: F1 = 6 / (6 + 2 + 1) = 2/3.  macro: (1/2 + 4/5) / 2 = 0.65.
    # samples: row 0 {a}/{a} 1; row 1 {a,b}/{b} 2/3; row 2 {b}/{a,b} 2/3; row 3 {}/{b} 0
    #          -> (1 + 2/3 + 2/3 + 0) / 4 = 7/12.
    # hamming: wrong cells (1,a), (2,a), (3,b): 3/8.
    expected = {
        ("ALL", "f1_samples"): 7 / 12,
        ("ALL", "f1_micro"): 2 / 3,
        ("ALL", "f1_macro"): 0.65,
        ("ALL", "hamming_loss"): 3 / 8,
        ("ALL", "n_samples"): 4,
        ("a", "precision"): 1 / 2,
        ("a", "recall"): 1 / 2,
        ("a", "f1"): 1 / 2,
        ("a", "average_precision"): 5 / 6,
        ("a", "support"): 2,
        ("a", "threshold"): 0.5,
        ("b", "precision"): 2 / 3,
        ("b", "recall"): 1.0,
        ("b", "f1"): 4 / 5,
        ("b", "average_precision"): 1.0,
        ("b", "support"): 2,
        ("b", "threshold"): 0.25,
    }

    evaluation = evaluate(Y, P, thresholds, ["a", "b"], "rf")

    assert evaluation.columns == ["model", "label", "metric", "value"]
    assert evaluation["model"].unique().to_list() == ["rf"]
    assert evaluation.height == len(expected)
    for (label, metric), value in expected.items():
        assert metric_value(evaluation, label, metric) == pytest.approx(value), (label, metric)

    predicted = predict_labels(P, thresholds).astype(int)
    direct = {
        ("ALL", "f1_samples"): f1_score(Y, predicted, average="samples", zero_division=0),
        ("ALL", "f1_micro"): f1_score(Y, predicted, average="micro", zero_division=0),
        ("ALL", "f1_macro"): f1_score(Y, predicted, average="macro", zero_division=0),
        ("ALL", "hamming_loss"): hamming_loss(Y, predicted),
    }
    for column, label in enumerate(["a", "b"]):
        truth, guess = Y[:, column], predicted[:, column]
        direct[label, "precision"] = precision_score(truth, guess, zero_division=0)
        direct[label, "recall"] = recall_score(truth, guess, zero_division=0)
        direct[label, "f1"] = f1_score(truth, guess, zero_division=0)
        direct[label, "average_precision"] = average_precision_score(truth, P[:, column])
    for (label, metric), value in direct.items():
        assert metric_value(evaluation, label, metric) == pytest.approx(value), (label, metric)


def test_average_precision_is_nan_for_a_label_without_positives() -> None:
    Y = np.array([[1, 0], [0, 0], [1, 0]])
    P = np.array([[0.8, 0.6], [0.3, 0.1], [0.7, 0.2]])

    evaluation = evaluate(Y, P, 0.5, ["present", "absent"], "rf")

    assert math.isnan(metric_value(evaluation, "absent", "average_precision"))
    assert metric_value(evaluation, "absent", "support") == 0
    assert metric_value(evaluation, "absent", "precision") == 0  # one false positive
    assert metric_value(evaluation, "present", "average_precision") == 1.0


def test_evaluate_with_a_single_label() -> None:
    Y = np.array([[1], [0], [1], [0]])
    P = np.array([[0.9], [0.8], [0.2], [0.1]])
    evaluation = evaluate(Y, P, 0.5, ["only"], "rf")
    # TP 1, FP 1, FN 1: F1 1/2; samples: rows 0 (1), others 0 -> 1/4; hamming 2/4.
    assert metric_value(evaluation, "ALL", "f1_micro") == pytest.approx(0.5)
    assert metric_value(evaluation, "ALL", "f1_macro") == pytest.approx(0.5)
    assert metric_value(evaluation, "ALL", "f1_samples") == pytest.approx(0.25)
    assert metric_value(evaluation, "ALL", "hamming_loss") == pytest.approx(0.5)
    assert metric_value(evaluation, "only", "f1") == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------
# Baseline of the original work


def test_baseline_original_is_ten_trees_on_a_random_67_33_split() -> None:
    expression, Y = synthetic_dataset()

    model, test_rows = baseline_original(expression, Y, seed=7)

    assert model.n_estimators == 10
    assert len(model.estimators_) == 10
    assert model.n_features_in_ == N_GENES
    _, expected_test = train_test_split(np.arange(N_SAMPLES), test_size=0.33, random_state=7)
    np.testing.assert_array_equal(test_rows, np.sort(expected_test))
    assert len(test_rows) == 198  # ceil(0.33 * 600); 402 train rows
    # Each tree saw a bootstrap of the 402 train rows (weights 1, no class weighting).
    for tree in model.estimators_:
        assert tree.tree_.weighted_n_node_samples[0] == 402

    # At 0.5, '>' reproduces sklearn's predict, 5/10 vote ties included.
    P = label_probabilities(model, expression[test_rows])
    assert (P == 0.5).any(), "no tie in this data: the check below would prove nothing"
    np.testing.assert_array_equal(predict_labels(P, 0.5), model.predict(expression[test_rows]) == 1)

    evaluation = evaluate_model_on_rows(
        model, expression, Y, test_rows, label_names=LABELS, model_name=BASELINE_MODEL_NAME
    )
    direct = evaluate(Y[test_rows], P, 0.5, LABELS, BASELINE_MODEL_NAME)
    assert evaluation.equals(direct)


# ---------------------------------------------------------------------------------------------
# Persistence


TRIPPED: list[str] = []


class Tripwire:
    """Records it when skops rebuilds it: proof that loading executed code from the file."""

    def __init__(self) -> None:
        self.armed = True

    def __setstate__(self, state: dict[str, object]) -> None:
        TRIPPED.append("Tripwire.__setstate__")
        self.__dict__.update(state)


def tripwire_function(values: np.ndarray) -> np.ndarray:
    TRIPPED.append("tripwire_function")
    return values


def small_forest(**kwargs: object) -> RandomForestClassifier:
    expression, Y = synthetic_dataset()
    Y = Y.copy()
    Y[:, 2] = 0  # a constant column, whose classes_ has one entry
    return train_random_forest(expression[:, :30], Y, n_estimators=8, seed=1, **kwargs)


def test_skops_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model = small_forest()
    expression, _ = synthetic_dataset(seed=1)
    path = tmp_path / "model.skops"

    save_model(model, path)
    loaded = load_model(path)

    assert type(loaded) is RandomForestClassifier
    np.testing.assert_array_equal(
        label_probabilities(loaded, expression[:, :30]),
        label_probabilities(model, expression[:, :30]),
    )
    assert not list(tmp_path.glob(".tmp-*"))
    # Open binary files work too.
    buffer = io.BytesIO()
    save_model(model, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(
        load_model(buffer).predict_proba(expression[:5, :30])[0],
        model.predict_proba(expression[:5, :30])[0],
    )


def test_one_model_always_gives_one_file() -> None:
    # skops names objects by id(): a copy (every object at a new address) showed the names
    # differ, and so did two builds of the demo.
    model = small_forest()
    first, second = io.BytesIO(), io.BytesIO()
    save_model(model, first)
    save_model(copy.deepcopy(model), second)
    assert first.getvalue() == second.getvalue()
    assert b'"__id__": 0' in zipfile.ZipFile(first).read("schema.json")


def test_a_model_carrying_an_unknown_class_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    model = small_forest()
    model.tripwire = Tripwire()
    path = tmp_path / "tampered.skops"
    skops.io.dump(model, path)
    TRIPPED.clear()

    with pytest.raises(UnsafeModelError) as refused:
        load_model(path)

    assert TRIPPED == []
    assert str(path) in str(refused.value)
    assert refused.value.type_name.endswith("Tripwire")
    # Control: trusting what the file asks for (what load_model refuses to do) runs its code.
    skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    assert TRIPPED == ["Tripwire.__setstate__"]
    TRIPPED.clear()


def test_a_function_hidden_in_the_model_is_refused(tmp_path: Path) -> None:
    model = small_forest()
    model.hook = FunctionTransformer(tripwire_function)
    path = tmp_path / "hooked.skops"
    skops.io.dump(model, path)

    with pytest.raises(UnsafeModelError) as refused:
        load_model(path)

    assert refused.value.type_name in {
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        f"{__name__}.tripwire_function",
    }
    assert TRIPPED == []


def test_types_skops_trusts_by_default_are_still_refused(tmp_path: Path) -> None:
    # A Pipeline around the forest, with a numpy function: skops trusts all of it by default,
    # so only the allow-list of the whole schema stands between it and the caller.
    pipeline = Pipeline([("log", FunctionTransformer(np.log1p)), ("forest", small_forest())])
    path = tmp_path / "pipeline.skops"
    skops.io.dump(pipeline, path)
    assert set(skops.io.get_untrusted_types(file=path)) <= ALLOWED_MODEL_TYPES

    with pytest.raises(UnsafeModelError, match=r"sklearn\.pipeline\.Pipeline"):
        load_model(path)


def test_a_file_that_is_not_a_skops_model_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "junk.skops"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a skops model file"):
        load_model(path)


# ---------------------------------------------------------------------------------------------
# Model card


def test_model_card_is_plain_json_with_the_test_metrics() -> None:
    model = small_forest()
    Y = np.array([[1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [1, 1, 0, 0, 0]])
    P = np.array([[0.9, 0.1, 0.0, 0.8, 0.1], [0.2, 0.7, 0.0, 0.6, 0.0], [0.6, 0.4, 0.1, 0.3, 0.2]])
    thresholds = np.array([0.5, 0.35, 0.5, 0.45, 0.2])
    evaluation = evaluate(Y, P, thresholds, LABELS, "random_forest")

    card = model_card(
        model_name="random_forest",
        model=model,
        label_names=LABELS,
        thresholds=thresholds,
        evaluation=evaluation,
        data_version="human_gene_v2.5",
        split_sizes={"train": 3, "validation": 0, "test": 3},
    )

    json.dumps(card, allow_nan=False)  # no NaN, no numpy types
    assert card["data_version"] == "human_gene_v2.5"
    assert card["parameters"]["n_estimators"] == 8
    assert card["thresholds"] == dict(zip(LABELS, thresholds.tolist(), strict=True))
    overall = card["test_metrics"]["overall"]
    assert overall["f1_micro"] == pytest.approx(metric_value(evaluation, "ALL", "f1_micro"))
    # 'lung' and 'placenta' have no positive: their AP is None rather than NaN.
    assert card["test_metrics"]["per_label"]["lung"]["average_precision"] is None
