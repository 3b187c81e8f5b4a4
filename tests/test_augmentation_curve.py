"""The augmentation curve's draws and training sets (archs4.augmentation_curve): real rows are
kept by whole study groups, fewest studies first; no validation or test row ever enters a
training matrix of any method; a GAN is trained afresh for every (n_real, seed)."""

from __future__ import annotations

import numpy as np
import pytest

import archs4.augmentation as augmentation_module
import archs4.augmentation_curve as curve_module
from archs4.augmentation import METHODS, LabelledRows
from archs4.augmentation_curve import (
    CurveConfig,
    TrainStudies,
    augmentation_curve,
    curve_problems,
    kept_carriers,
    reduced_training_set,
)
from archs4.gan import GanConfig

NAMES = ["rare", "common"]
# The rare label's carriers: 8 one-study groups of 1 row (groups 0-7), then 4 two-study groups
# of 3 rows (groups 8-11); the other label's rows are groups 12-19 of 10 rows each.
SINGLES, PAIRS, COMMON = 8, 4, 8


def train_studies(seed: int = 0) -> TrainStudies:
    rng = np.random.default_rng(seed)
    group = np.concatenate(
        [
            np.arange(SINGLES),
            np.repeat(np.arange(SINGLES, SINGLES + PAIRS), 3),
            np.repeat(np.arange(SINGLES + PAIRS, SINGLES + PAIRS + COMMON), 10),
        ]
    )
    n_studies = np.where((group >= SINGLES) & (group < SINGLES + PAIRS), 2, 1)
    n_carriers = SINGLES + 3 * PAIRS
    labels = np.zeros((group.size, 2), dtype=np.int8)
    labels[:n_carriers, 0] = 1
    labels[n_carriers:, 1] = 1
    features = rng.normal(size=(group.size, 4)).astype(np.float32)
    features[:n_carriers, 0] += 3.0  # the rare label is learnable
    return TrainStudies(LabelledRows(features, labels, group), n_studies)


def held_out(offset: float, seed: int) -> LabelledRows:
    """Rows far from every train row (feature 3 shifted by `offset`), both labels present."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(12, 4)).astype(np.float32)
    features[:, 3] += offset
    labels = np.zeros((12, 2), dtype=np.int8)
    labels[:4, 0] = 1
    features[:4, 0] += 3.0
    labels[4:, 1] = 1
    return LabelledRows(features, labels)


def test_whole_study_groups_fewest_studies_first() -> None:
    studies = train_studies()
    carriers = np.flatnonzero(studies.rows.labels[:, 0] == 1)
    for seed in range(5):
        five = kept_carriers(carriers, studies, 5, seed)
        assert five.size == 5 and set(studies.group[five]) < set(range(SINGLES))
        # 10: every one-study row (8), and no two-study group of 3 fits in the 2 left.
        np.testing.assert_array_equal(kept_carriers(carriers, studies, 10, seed), carriers[:8])
        # 20: the 8 one-study groups and every two-study group, whole.
        np.testing.assert_array_equal(kept_carriers(carriers, studies, 20, seed), carriers)
        for n_real in (5, 10, 14):
            kept = kept_carriers(carriers, studies, n_real, seed)
            for group in np.unique(studies.group[kept]):  # a group is kept whole or not at all
                members = carriers[studies.group[carriers] == group]
                assert np.isin(members, kept).all()
            assert kept.size <= n_real
    draws = {tuple(kept_carriers(carriers, studies, 5, seed)) for seed in range(5)}
    assert len(draws) > 1  # seeded: the draw among equals changes with the seed
    assert tuple(kept_carriers(carriers, studies, 5, 3)) in draws  # and repeats with it


def test_a_group_larger_than_n_real_is_kept_whole() -> None:
    studies = train_studies()
    pairs_only = np.flatnonzero(studies.group[: SINGLES + 3 * PAIRS] >= SINGLES)
    kept = kept_carriers(pairs_only, studies, 2, seed=0)
    assert kept.size == 3 and np.unique(studies.group[kept]).size == 1


def test_the_reduced_set_drops_only_the_labels_other_rows() -> None:
    studies = train_studies()
    train, kept = reduced_training_set(studies, 0, 5, seed=1)
    assert train.n_rows == studies.rows.n_rows - (SINGLES + 3 * PAIRS) + 5
    assert int(train.labels[:, 0].sum()) == kept.size == 5
    assert int(train.labels[:, 1].sum()) == COMMON * 10  # every other row stays
    everything, kept_all = reduced_training_set(studies, 0, None, seed=1)
    assert everything.n_rows == studies.rows.n_rows and kept_all.size == SINGLES + 3 * PAIRS


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Every matrix the curve trains a forest or a GAN on, and each GAN's seed; the real
    functions still run."""
    calls: dict[str, list] = {"forest": [], "gan": []}
    real_forest, real_gan = augmentation_module.train_random_forest, curve_module.train_gan

    def forest(features, labels, **kwargs):
        calls["forest"].append(np.array(features))
        return real_forest(features, labels, **kwargs)

    def gan(features, labels, config, **kwargs):
        calls["gan"].append((config.seed, np.array(features)))
        return real_gan(features, labels, config, **kwargs)

    monkeypatch.setattr(augmentation_module, "train_random_forest", forest)
    monkeypatch.setattr(curve_module, "train_gan", gan)
    return calls


def test_no_held_out_row_trains_anything_and_each_point_retrains_the_gan(recorded) -> None:
    studies = train_studies()
    validation, test = held_out(50.0, seed=1), held_out(100.0, seed=2)
    config = CurveConfig(
        labels=("rare",), n_real=(5, 10), seeds=(0, 1, 2), n_estimators=5, gan=GanConfig(epochs=2)
    )
    curve = augmentation_curve(studies, validation, test, NAMES, config)
    assert curve_problems(curve) == []
    levels = sorted(curve["n_real"].unique().to_list())
    assert levels == [5, 10, SINGLES + 3 * PAIRS]
    assert len(recorded["forest"]) == len(levels) * 3 * len(METHODS)
    for matrix in recorded["forest"] + [features for _, features in recorded["gan"]]:
        assert matrix[:, 3].max() < 25.0  # no validation (+50) or test (+100) row
    # One GAN per (n_real, seed), in that order, on that point's reduced set and with its seed.
    expected_rows = {5: studies.rows.n_rows - 20 + 5, 10: studies.rows.n_rows - 20 + 8}
    expected_rows[SINGLES + 3 * PAIRS] = studies.rows.n_rows
    points = [(level, seed) for level in levels for seed in (0, 1, 2)]
    assert [seed for seed, _ in recorded["gan"]] == [seed for _, seed in points]
    for (level, _), (_, features) in zip(points, recorded["gan"], strict=True):
        assert features.shape[0] == expected_rows[level]
    kept = curve.filter(curve["metric"] == "n_real_kept")
    assert set(kept.filter(kept["n_real"] == 10)["value"].to_list()) == {8.0}
