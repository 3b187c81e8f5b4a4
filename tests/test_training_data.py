"""The warehouse reads of the classifier and the augmentation (archs4.training_data), the
warehouse's JSON side files, and the one function that fits, tunes and stores a classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from archs4.classifier import (
    fit_tune_and_save,
    label_probabilities,
    load_classifier,
    train_random_forest,
    tune_thresholds,
)
from archs4.datasets import (
    SAMPLE_FEATURES_TABLE,
    SAMPLE_LABELS_TABLE,
    SAMPLE_SPLITS_TABLE,
    SYNTHETIC_SAMPLES_TABLE,
)
from archs4.labels import load_vocabulary
from archs4.training_data import (
    feature_names,
    features_and_labels,
    labelled_samples,
    rows_of,
    split_samples,
    stored_features,
    synthetic_rows,
)
from archs4.warehouse import Warehouse

FEATURES = ["PC1", "PC2", "PC3"]


@pytest.fixture
def store(tmp_path: Path) -> Warehouse:
    """Labels, splits and features of 12 samples: 0-9 labelled, 10 and 11 not; train 0-5
    (5 outside the training set), validation 6-7, test 8-9."""
    warehouse = Warehouse.at(tmp_path / "warehouse")
    names = list(load_vocabulary().labels)
    labels = pl.DataFrame(
        {
            "sample_idx": [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            "label": [names[0], names[1], *[names[i % 2] for i in range(1, 10)]],
            "source": ["metadata"] * 11,
        }
    )
    splits = pl.DataFrame(
        {
            "sample_idx": list(range(10)),
            "split": ["train"] * 6 + ["validation"] * 2 + ["test"] * 2,
            "in_training_set": [True] * 5 + [False] * 5,
        }
    )
    features = pl.DataFrame(
        {"sample_idx": np.arange(12, dtype=np.int32)}
        | {name: np.arange(12, dtype=np.float32) + 100 * k for k, name in enumerate(FEATURES)}
    )
    for table, frame in (
        (SAMPLE_LABELS_TABLE, labels),
        (SAMPLE_SPLITS_TABLE, splits),
        (SAMPLE_FEATURES_TABLE, features),
    ):
        warehouse.write_table(frame.to_arrow(), warehouse.table_path(table))
    return warehouse


# ---------------------------------------------------------------------------------------------
# JSON side files


def test_write_json_keeps_the_side_files_format(tmp_path: Path) -> None:
    warehouse = Warehouse.at(tmp_path)
    value = {"labels": ["b", "a"], "thresholds": [0.5, 0.25], "seed": 0, "nested": {"z": 1}}
    warehouse.write_json(value, warehouse.root / "model" / "info.json")
    stored = (tmp_path / "model" / "info.json").read_bytes()
    assert stored == json.dumps(value, indent=1).encode()  # the bytes every writer wrote
    assert warehouse.read_json(warehouse.root / "model" / "info.json") == value
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["info.json", "model"]  # no temporary


# ---------------------------------------------------------------------------------------------
# Training data


def test_split_samples_keep_only_the_training_set_of_train(store: Warehouse) -> None:
    np.testing.assert_array_equal(split_samples(store, "train"), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(split_samples(store, "validation"), [6, 7])
    np.testing.assert_array_equal(split_samples(store, "test"), [8, 9])


def test_features_and_labels_pick_a_splits_rows(store: Warehouse) -> None:
    names = list(load_vocabulary().labels)
    split_names, sample_idx, features, labels = features_and_labels(store, "validation")
    assert split_names == names
    np.testing.assert_array_equal(sample_idx, [6, 7])
    np.testing.assert_array_equal(features[:, 0], [6, 7])
    np.testing.assert_array_equal(features[:, 2], [206, 207])
    assert labels.shape == (2, len(names))
    np.testing.assert_array_equal(labels[:, :2], [[1, 0], [0, 1]])  # 6: names[0], 7: names[1]
    labelled = labelled_samples(store)
    np.testing.assert_array_equal(labelled.sample_idx, np.arange(10))
    np.testing.assert_array_equal(labelled.matrix[0, :2], [1, 1])  # sample 0 has both
    ids, every_feature = stored_features(store)
    np.testing.assert_array_equal(ids, np.arange(12))  # unlabelled samples have features too
    np.testing.assert_array_equal(every_feature[rows_of(ids, np.array([11, 10])), 1], [111, 110])


def test_rows_of_refuses_a_missing_sample() -> None:
    np.testing.assert_array_equal(rows_of(np.array([2, 4, 6]), np.array([6, 2])), [2, 0])
    for wanted in ([5], [7]):
        with pytest.raises(ValueError, match="missing"):
            rows_of(np.array([2, 4, 6]), np.array(wanted))


def test_synthetic_rows_in_id_order_with_the_classifiers_columns(store: Warehouse) -> None:
    names = list(load_vocabulary().labels)
    path = store.table_path(SYNTHETIC_SAMPLES_TABLE)
    empty = pl.DataFrame(
        schema={"synthetic_id": pl.Int64, "label": pl.Utf8, "feature": pl.Utf8, "value": pl.Float32}
    )
    store.write_table(empty.to_arrow(), path)
    rows = synthetic_rows(store, names, len(FEATURES))
    assert rows.features.shape == (0, 3) and rows.labels.shape == (0, len(names))
    long = pl.DataFrame(
        {
            "synthetic_id": [1, 1, 1, 0, 0, 0],
            "label": [names[2]] * 3 + [names[0]] * 3,
            "feature": ["PC3", "PC1", "PC2"] * 2,
            "value": [13.0, 11.0, 12.0, 3.0, 1.0, 2.0],
        }
    )
    store.write_table(long.to_arrow(), path)
    rows = synthetic_rows(store, names, len(FEATURES))
    assert feature_names(store) == FEATURES
    np.testing.assert_array_equal(rows.features, [[1, 2, 3], [11, 12, 13]])
    assert rows.labels.sum() == 2 and rows.labels[0, 0] == 1 and rows.labels[1, 2] == 1


# ---------------------------------------------------------------------------------------------
# Fitting, tuning and storing a classifier


def test_fit_tune_and_save_equals_the_separate_steps(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 5)).astype(np.float32)  # noqa: N806
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0.5], axis=1).astype(np.int8)  # noqa: N806
    warehouse = Warehouse.at(tmp_path)
    fitted, validation_probabilities = fit_tune_and_save(
        warehouse,
        "forest",
        train=(X[:100], Y[:100]),
        validation=(X[100:], Y[100:]),
        label_names=("a", "b"),
        n_estimators=20,
        seed=3,
    )
    model = train_random_forest(X[:100], Y[:100], n_estimators=20, seed=3)
    probabilities = label_probabilities(model, X[100:])
    thresholds = tune_thresholds(probabilities, Y[100:])
    np.testing.assert_array_equal(validation_probabilities, probabilities)
    np.testing.assert_array_equal(fitted.thresholds, thresholds)
    info = {"labels": ["a", "b"], "thresholds": thresholds.tolist(), "seed": 3}
    assert (tmp_path / "model" / "forest.json").read_bytes() == json.dumps(info, indent=1).encode()
    loaded, names, loaded_thresholds = load_classifier(warehouse, "forest")
    assert names == ["a", "b"]
    np.testing.assert_array_equal(loaded_thresholds, thresholds)
    np.testing.assert_array_equal(label_probabilities(loaded, X[100:]), probabilities)
    # skops names its arrays by object id, so files differ byte-wise; the trees must not.
    for mine, theirs in zip(loaded.estimators_, model.estimators_, strict=True):
        np.testing.assert_array_equal(mine.tree_.threshold, theirs.tree_.threshold)
        np.testing.assert_array_equal(mine.tree_.value, theirs.tree_.value)
