"""Augmentation evaluation (archs4.augmentation): fidelity metrics on hand-checkable cases,
the SMOTE and oversampling rows, and evaluate_augmentation end to end, including that added
rows only ever reach the training matrix."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from archs4 import augmentation
from archs4.augmentation import (
    ALL_RARE,
    FIDELITY_METRICS,
    METHODS,
    POOLED_C2ST,
    LabelledRows,
    c2st_auroc,
    evaluate_augmentation,
    fidelity,
    mean_correlation,
    mmd_squared,
    nn_distance_ratio,
    projection_2d,
    random_oversampling_rows,
    rows_to_add,
    smote_rows,
    synthetic_samples_frame,
    variance_correlation,
)
from archs4.classifier import evaluate, label_probabilities, train_random_forest, tune_thresholds
from archs4.gan import GanConfig

LABELS = ["brain", "liver", "lung", "ovary", "skin"]
RARE = ["ovary", "skin"]
TINY_GAN = GanConfig(
    latent_dim=8,
    generator_hidden=(32, 32),
    critic_hidden=(32, 32),
    epochs=2,
    batch_size=64,
    n_critic=2,
    num_threads=1,
)
SEEDS = (0, 1, 2)


def gaussian_rows(seed: int, n_rows: int = 120, n_features: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n_rows, n_features))


# ---------------------------------------------------------------------------------------------
# Fidelity


def test_identical_sets_score_as_indistinguishable() -> None:
    real = gaussian_rows(0)
    copy = real.copy()
    assert mean_correlation(real, copy) == pytest.approx(1.0, abs=1e-12)
    assert variance_correlation(real, copy) == pytest.approx(1.0, abs=1e-12)
    # Unbiased MMD^2 of a set with itself is 2 (mean off-diagonal kernel - 1) / n: slightly
    # negative, and within 2 / n of 0.
    mmd = mmd_squared(real, copy)
    assert -2.0 / real.shape[0] < mmd <= 0.0
    # A copy and its original always share a fold, so every comparison is a tie.
    assert c2st_auroc(real, copy, seed=0) == pytest.approx(0.5, abs=1e-9)
    assert nn_distance_ratio(real, copy) == 0.0


def test_clearly_shifted_sets_are_told_apart() -> None:
    real, other = gaussian_rows(0), gaussian_rows(1) + 3.0
    assert c2st_auroc(real, other, seed=0) > 0.95
    assert mmd_squared(real, other) > 0.2
    # Far from every real row, unlike copies.
    assert nn_distance_ratio(real, other) > 2.0


def test_independent_samples_of_one_distribution_look_alike() -> None:
    real, other = gaussian_rows(0, n_rows=300), gaussian_rows(1, n_rows=300)
    assert abs(mmd_squared(real, other)) < 0.01
    assert 0.35 < c2st_auroc(real, other, seed=0) < 0.65
    assert 0.8 < nn_distance_ratio(real, other) < 1.25


def test_a_collapsed_generator_is_caught_by_the_two_sample_test() -> None:
    """Same means, 0.5x the spread: invisible to a linear classifier, not to the forest."""
    real, narrow = gaussian_rows(0, n_rows=200), 0.5 * gaussian_rows(1, n_rows=200)
    assert c2st_auroc(real, narrow, seed=0) > 0.85
    assert mmd_squared(real, narrow) > 0.02


def test_rows_crowded_on_one_real_row_score_near_one_not_nan() -> None:
    """Grouping every synthetic row with the same real row leaves no scorable grouped fold;
    the plain folds then see the crowd."""
    real = gaussian_rows(0, n_rows=100)
    crowd = real[:1] + 1e-3 * gaussian_rows(1, n_rows=100)
    assert c2st_auroc(real, crowd, seed=0) > 0.9


def test_mmd_matches_a_direct_double_loop() -> None:
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    synthetic = np.array([[1.0, 1.0], [3.0, 0.0]])
    pooled = np.concatenate([real, synthetic])
    distances = [
        math.dist(pooled[i], pooled[j])
        for i in range(len(pooled))
        for j in range(i + 1, len(pooled))
    ]
    sigma = float(np.median(distances))

    def kernel(x: np.ndarray, y: np.ndarray) -> float:
        return math.exp(-(math.dist(x, y) ** 2) / (2 * sigma**2))

    def within(rows: np.ndarray) -> float:
        n = len(rows)
        pairs = [kernel(rows[i], rows[j]) for i in range(n) for j in range(n) if i != j]
        return sum(pairs) / (n * (n - 1))

    cross = sum(kernel(x, y) for x in real for y in synthetic) / (len(real) * len(synthetic))
    expected = within(real) + within(synthetic) - 2 * cross
    assert mmd_squared(real, synthetic) == pytest.approx(expected, rel=1e-12)


def test_hand_computed_correlations_and_distance_ratio() -> None:
    real = np.array([[0.0, 0.0, 0.0], [2.0, 4.0, 6.0]])  # means 1, 2, 3; variances 2, 8, 18
    scaled = np.array([[0.0, 0.0, 0.0], [4.0, 8.0, 12.0]])  # means 2, 4, 6; variances 8, 32, 72
    reversed_ = real[:, ::-1]
    assert mean_correlation(real, scaled) == pytest.approx(1.0)
    assert mean_correlation(real, reversed_) == pytest.approx(-1.0)
    assert variance_correlation(real, scaled) == pytest.approx(1.0)
    # A constant side has no correlation: NaN, not a made-up number.
    assert math.isnan(mean_correlation(real, np.ones((2, 3))))

    line = np.array([[0.0], [1.0], [3.0]])  # nearest other real row: 1, 1, 2 (mean 4/3)
    assert nn_distance_ratio(line, np.array([[0.5]])) == pytest.approx(0.5 / (4 / 3))
    assert nn_distance_ratio(line, np.array([[3.0], [7.0]])) == pytest.approx(2.0 / (4 / 3))


def test_fidelity_bundles_the_five_metrics() -> None:
    values = fidelity(gaussian_rows(0), gaussian_rows(1), seed=0)
    assert tuple(values) == FIDELITY_METRICS
    assert all(np.isfinite(value) for value in values.values())


def test_projection_uses_axes_of_the_real_rows() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 5)) * [5.0, 1.0, 1.0, 1.0, 1.0]
    synthetic = real[:50] + np.array([0.0, 0.0, 0.0, 0.0, 10.0])  # shifted along a minor real axis
    real_2d, synthetic_2d = projection_2d(real, synthetic, seed=0)
    assert real_2d.shape == (200, 2) and synthetic_2d.shape == (50, 2)
    # Fitted on the real rows: they are centred, and the shift (absent from the real rows'
    # main axes) barely moves the synthetic ones, which a PCA on the pooled rows would follow.
    assert np.abs(real_2d.mean(axis=0)).max() < 1e-9
    assert np.abs(np.abs(real_2d[:50, 0]) - np.abs(synthetic_2d[:, 0])).max() < 1.0


def test_synthetic_samples_frame_is_long_and_complete() -> None:
    rows = np.arange(6, dtype=np.float32).reshape(2, 3)
    frame = synthetic_samples_frame(rows, ["ovary", "skin"], ["PC1", "PC2", "PC3"])
    assert frame.columns == ["synthetic_id", "label", "feature", "value"]
    assert frame.height == 6
    assert frame.row(4) == (1, "skin", "PC2", 4.0)


# ---------------------------------------------------------------------------------------------
# Augmentations


def problem(seed: int = 0) -> tuple[LabelledRows, LabelledRows, LabelledRows]:
    """Train 300, validation 100, test 100 rows x 10 features, 5 labels; ovary and skin are
    rare and have positives in every split. Each label shifts its own features."""
    rng = np.random.default_rng(seed)
    n_rows = 500
    labels = (rng.random((n_rows, len(LABELS))) < [0.35, 0.3, 0.25, 0.05, 0.04]).astype(np.int8)
    for start in (0, 300, 400):  # a few guaranteed positives of each rare label per split
        labels[start : start + 4, 3] = 1
        labels[start + 4 : start + 7, 4] = 1
    shifts = np.zeros((len(LABELS), 10))
    for label in range(len(LABELS)):
        shifts[label, 2 * label : 2 * label + 2] = 3.0
    features = rng.normal(size=(n_rows, 10)) + labels @ shifts
    parts = (slice(0, 300), slice(300, 400), slice(400, 500))
    train, validation, test = (LabelledRows(features[part], labels[part]) for part in parts)
    # The train rows come from 30 studies of 10 rows each, as the GAN centres them.
    train = LabelledRows(train.features, train.labels, np.arange(300) // 10)
    return train, validation, test


def test_rows_to_add_brings_every_rare_label_to_the_target() -> None:
    train, _, _ = problem()
    counts = {name: int(train.labels[:, LABELS.index(name)].sum()) for name in RARE}
    added = rows_to_add(train.labels, LABELS, RARE)
    target = 2 * max(counts.values())
    assert added == {name: target - counts[name] for name in RARE}
    assert rows_to_add(train.labels, LABELS, RARE, target_count=counts["skin"]) == {
        "ovary": max(counts["skin"] - counts["ovary"], 0),
        "skin": 0,
    }


def test_random_oversampling_copies_rows_of_the_label_with_their_label_sets() -> None:
    train, _, _ = problem()
    added = random_oversampling_rows(train, LABELS, {"ovary": 7, "skin": 4}, seed=0)
    assert added.n_rows == 11
    assert (added.labels[:7, LABELS.index("ovary")] == 1).all()
    assert (added.labels[7:, LABELS.index("skin")] == 1).all()
    for features, labels in zip(added.features, added.labels, strict=True):
        matches = np.flatnonzero((train.features == features).all(axis=1))
        assert matches.size >= 1 and (train.labels[matches[0]] == labels).all()


def test_smote_rows_lie_between_a_seed_row_and_a_neighbour_and_carry_its_label_set() -> None:
    train, _, _ = problem()
    column = LABELS.index("ovary")
    added = smote_rows(train, LABELS, {"ovary": 40}, seed=0, k_neighbors=3)
    assert added.n_rows == 40
    assert (added.labels[:, column] == 1).all()
    carriers = np.flatnonzero(train.labels[:, column])
    carrier_rows = train.features[carriers].astype(np.float64)
    for features, labels in zip(added.features.astype(np.float64), added.labels, strict=True):
        # The seed row is a carrier whose label set was copied, and the new row lies on a
        # segment from it to another carrier.
        candidates = [
            c for c in range(carriers.size) if (train.labels[carriers[c]] == labels).all()
        ]
        assert candidates

        def distance_to_segment(
            start: np.ndarray, end: np.ndarray, point: np.ndarray = features
        ) -> float:
            direction = end - start
            gap = np.clip((point - start) @ direction / (direction @ direction), 0, 1)
            return float(np.linalg.norm(point - start - gap * direction))

        assert (
            min(
                distance_to_segment(carrier_rows[c], carrier_rows[other])
                for c in candidates
                for other in range(carriers.size)
                if other != c
            )
            < 1e-4
        )


def test_smote_lowers_k_for_labels_with_few_rows() -> None:
    features = np.random.default_rng(0).normal(size=(20, 3))
    labels = np.zeros((20, 2), dtype=np.int8)
    labels[:2, 0] = 1  # two rows: k lowered from 5 to 1
    labels[5, 1] = 1  # one row: copies
    train = LabelledRows(features, labels)
    added = smote_rows(train, ["a", "b"], {"a": 6, "b": 3}, seed=0)
    assert added.n_rows == 9
    first, second = train.features[0].astype(np.float64), train.features[1].astype(np.float64)
    for row in added.features[:6].astype(np.float64):  # on the segment between the two rows
        gap = (row - first) @ (second - first) / ((second - first) @ (second - first))
        assert -1e-6 <= gap <= 1 + 1e-6
        assert np.allclose(row, first + gap * (second - first), atol=1e-5)
    assert (added.features[6:] == train.features[5]).all()


# ---------------------------------------------------------------------------------------------
# evaluate_augmentation


def metric(frame: pl.DataFrame, label: str, name: str) -> float:
    values = frame.filter((pl.col("label") == label) & (pl.col("metric") == name))["value"]
    assert len(values) == 1, (label, name)
    return float(values[0])


@pytest.fixture(scope="module")
def spied_evaluation() -> tuple[pl.DataFrame, dict[str, list], tuple[LabelledRows, ...]]:
    """evaluate_augmentation on the small problem with spies on what it trains and scores."""
    train, validation, test = problem()
    calls: dict[str, list] = {"fit": [], "probabilities": [], "gan": []}
    monkeypatch = pytest.MonkeyPatch()

    def spy_fit(features, labels, **kwargs):
        calls["fit"].append((np.array(features), np.array(labels), kwargs))
        return train_random_forest(features, labels, **kwargs)

    def spy_probabilities(model, features):
        calls["probabilities"].append(np.array(features))
        return label_probabilities(model, features)

    real_train_gan = augmentation.train_gan

    def spy_gan(features, labels, config, progress=None, *, studies=None):
        calls["gan"].append((np.array(features), config.seed, studies))
        return real_train_gan(features, labels, config, progress, studies=studies)

    monkeypatch.setattr(augmentation, "train_random_forest", spy_fit)
    monkeypatch.setattr(augmentation, "label_probabilities", spy_probabilities)
    monkeypatch.setattr(augmentation, "train_gan", spy_gan)
    try:
        frame = evaluate_augmentation(
            train,
            validation,
            test,
            LABELS,
            rare=RARE,
            seeds=SEEDS,
            n_estimators=10,
            gan_config=TINY_GAN,
            n_jobs=1,
        )
    finally:
        monkeypatch.undo()
    return frame, calls, (train, validation, test)


def test_every_metric_for_every_rare_label_and_method_is_finite(spied_evaluation) -> None:
    frame, _, _ = spied_evaluation
    assert frame.columns == ["label", "metric", "value"]
    for label in [*RARE, ALL_RARE]:
        for name in FIDELITY_METRICS:
            assert math.isfinite(metric(frame, label, name)), (label, name)
        for method in METHODS:
            for statistic in (
                "f1_mean",
                "f1_std",
                "average_precision_mean",
                "average_precision_std",
            ):
                value = metric(frame, label, f"{statistic}/{method}")
                assert math.isfinite(value), (label, statistic, method)
                if statistic.endswith("_mean"):
                    assert 0.0 <= value <= 1.0
                else:
                    assert value >= 0.0
    assert set(frame["label"].unique()) == {*RARE, ALL_RARE}
    assert frame.select("label", "metric").is_duplicated().sum() == 0
    assert 0.0 <= metric(frame, ALL_RARE, POOLED_C2ST) <= 1.0
    assert frame.filter(pl.col("metric") == POOLED_C2ST)["label"].to_list() == [ALL_RARE]


def test_added_rows_only_reach_training(spied_evaluation) -> None:
    frame, calls, (train, validation, test) = spied_evaluation
    added_total = int(metric(frame, ALL_RARE, "rows_added"))
    assert added_total == sum(rows_to_add(train.labels, LABELS, RARE).values()) > 0
    # One forest per seed and method, in METHODS order; the augmenting ones see the real
    # train rows first, unchanged, then exactly the added rows.
    assert len(calls["fit"]) == len(SEEDS) * len(METHODS)
    for (features, labels, kwargs), method in zip(
        calls["fit"], list(METHODS) * len(SEEDS), strict=True
    ):
        expected_rows = train.n_rows + (
            added_total if method in ("random_oversampling", "smote", "gan") else 0
        )
        assert features.shape[0] == labels.shape[0] == expected_rows, method
        assert np.array_equal(features[: train.n_rows], train.features)
        assert np.array_equal(labels[: train.n_rows], train.labels)
        expected_weight = "balanced_subsample" if method == "class_weights" else None
        assert kwargs["class_weight"] == expected_weight
    # Every probability asked for is of the untouched validation or test rows.
    assert len(calls["probabilities"]) == 2 * len(SEEDS) * len(METHODS)
    for position, features in enumerate(calls["probabilities"]):
        expected = validation.features if position % 2 == 0 else test.features
        assert np.array_equal(features, expected)
    # The GAN is trained once per seed, on the train rows only, with their studies.
    assert [seed for _, seed, _ in calls["gan"]] == list(SEEDS)
    for features, _, studies in calls["gan"]:
        assert np.array_equal(features, train.features)
        assert np.array_equal(studies, train.studies)


def test_reported_scores_are_the_unclipped_mean_and_std_over_seeds(spied_evaluation) -> None:
    """Recompute the 'none' method by hand with the classifier's own functions."""
    frame, _, (train, validation, test) = spied_evaluation
    per_seed = {name: [] for name in RARE}
    for seed in SEEDS:
        model = train_random_forest(
            train.features, train.labels, n_estimators=10, class_weight=None, seed=seed, n_jobs=1
        )
        thresholds = tune_thresholds(
            label_probabilities(model, validation.features), validation.labels
        )
        evaluation = evaluate(
            test.labels, label_probabilities(model, test.features), thresholds, LABELS, "none"
        )
        for name in RARE:
            per_seed[name].append(metric(evaluation.drop("model"), name, "f1"))
    for name in RARE:
        assert metric(frame, name, "f1_mean/none") == pytest.approx(np.mean(per_seed[name]))
        assert metric(frame, name, "f1_std/none") == pytest.approx(np.std(per_seed[name], ddof=1))
    rare_average = np.mean([per_seed[name] for name in RARE], axis=0)
    assert metric(frame, ALL_RARE, "f1_mean/none") == pytest.approx(np.mean(rare_average))
    assert metric(frame, ALL_RARE, "f1_std/none") == pytest.approx(np.std(rare_average, ddof=1))


def test_counts_behind_the_scores_are_reported(spied_evaluation) -> None:
    frame, _, (train, validation, test) = spied_evaluation
    for name in RARE:
        column = LABELS.index(name)
        assert metric(frame, name, "train_count") == train.labels[:, column].sum()
        assert metric(frame, name, "validation_positives") == validation.labels[:, column].sum()
        assert metric(frame, name, "test_positives") == test.labels[:, column].sum()


def test_evaluate_augmentation_needs_three_seeds() -> None:
    train, validation, test = problem()
    with pytest.raises(ValueError, match="at least 3"):
        evaluate_augmentation(train, validation, test, LABELS, rare=RARE, seeds=(0, 1))
