"""Tests for archs4.splits: study groups as connected components over shared GSE ids, and
label-stratified train/validation/test splits that never cut a group."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from archs4.splits import (
    SPLITS,
    TEST,
    TRAIN,
    VALIDATION,
    _ensure_every_label_in_train,
    mark_training_set,
    split_by_study,
    split_label_counts,
    study_groups,
)

LABELS = ("immune", "nervous", "digestive", "lymphoid", "kidney", "placenta", "brain")
# Label weights per study: common labels first, then two rare ones.
LABEL_WEIGHTS = np.array([0.3, 0.25, 0.2, 0.12, 0.07, 0.03, 0.03])


def random_study_data(
    seed: int, n_samples: int = 500, n_studies: int = 80
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Groups and multi-hot labels for `n_samples` samples in `n_studies` studies of
    heavy-tailed sizes; each study profiles one or two labels, some samples are unlabelled."""
    rng = np.random.default_rng(seed)
    sizes = rng.pareto(1.5, n_studies) + 1
    study = rng.choice(n_studies, size=n_samples, p=sizes / sizes.sum())
    study_labels = [
        rng.choice(len(LABELS), size=rng.integers(1, 3), replace=False, p=LABEL_WEIGHTS)
        for _ in range(n_studies)
    ]
    sample_idx = rng.permutation(n_samples) * 3 + 7  # not 0..n-1, not in order
    groups = pl.DataFrame({"sample_idx": sample_idx, "group": study * 11})
    rows = [
        (int(s), LABELS[label])
        for s, st in zip(sample_idx, study, strict=True)
        if rng.random() > 0.1  # unlabelled samples get no split
        for label in study_labels[st]
        if rng.random() > 0.2 or label == study_labels[st][0]
    ]
    labels = pl.DataFrame(rows, schema={"sample_idx": pl.Int64, "label": pl.String}, orient="row")
    return groups, labels


# --- study groups ------------------------------------------------------------------------------


def test_samples_sharing_any_gse_are_one_group() -> None:
    samples = pl.DataFrame(
        {
            "sample_idx": [0, 1, 2, 3, 4],
            "series_id": ["GSE1", "GSE1,GSE2", "GSE2", "GSE3", None],
        }
    )
    groups = study_groups(samples)
    assert groups.columns == ["sample_idx", "group"]
    assert groups.rows() == [(0, 0), (1, 0), (2, 0), (3, 1), (4, 2)]


def test_groups_follow_chains_regardless_of_order_and_spacing() -> None:
    # E (GSE5) - F (GSE5, GSE6) - G (GSE6 ,GSE7) - H (GSE7): one chain, given out of order.
    samples = pl.DataFrame(
        {
            "sample_idx": [40, 10, 30, 20, 50],
            "series_id": ["GSE7", "GSE5", "GSE6 ,GSE7", "GSE5, GSE6", "GSE8"],
        }
    )
    groups = dict(study_groups(samples).iter_rows())
    assert groups[10] == groups[20] == groups[30] == groups[40] == 0
    assert groups[50] == 1


def test_study_groups_rejects_duplicate_samples() -> None:
    samples = pl.DataFrame({"sample_idx": [1, 1], "series_id": ["GSE1", "GSE2"]})
    with pytest.raises(ValueError, match="not unique"):
        study_groups(samples)


def test_study_groups_match_a_union_find_reference() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    series = [
        ",".join(f"GSE{g}" for g in rng.choice(700, size=rng.integers(1, 3), replace=False))
        for _ in range(n)
    ]
    groups = study_groups(pl.DataFrame({"sample_idx": np.arange(n), "series_id": series}))

    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for i, ids in enumerate(series):
        for gse in ids.split(","):
            j = first_with.setdefault(gse, i)
            parent[root(i)] = root(j)
    reference = [root(i) for i in range(n)]
    got = groups["group"].to_list()
    # Same partition: the pairs (reference, got) form a bijection.
    assert len(set(zip(reference, got, strict=True))) == len(set(reference)) == len(set(got))


# --- splits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_split_by_study_properties(seed: int) -> None:
    groups, labels = random_study_data(seed)
    splits = split_by_study(groups, labels, seed=seed)

    assert splits.columns == ["sample_idx", "split"]
    assert set(splits["split"].unique()) <= set(SPLITS)
    # Exactly the labelled samples get a split, once.
    assert splits["sample_idx"].to_list() == sorted(labels["sample_idx"].unique().to_list())
    # No group in two splits.
    per_group = (
        splits.join(groups, on="sample_idx").group_by("group").agg(pl.col("split").n_unique())
    )
    assert per_group["split"].max() == 1
    # Every label is in train; labels with >= 3 groups are in validation and test too.
    counts = split_label_counts(splits, labels)
    n_groups = (
        labels.join(groups, on="sample_idx").group_by("label").agg(pl.col("group").n_unique())
    )
    for label, groups_of_label in n_groups.iter_rows():
        present = counts.filter((pl.col("label") == label) & (pl.col("n_samples") > 0))["split"]
        assert "train" in present.to_list(), label
        if groups_of_label >= 3:
            assert set(present.to_list()) == set(SPLITS), (label, groups_of_label)
    # Fractions roughly respected (groups are lumpy: heavy-tailed study sizes).
    share = splits["split"].value_counts(normalize=True)
    share_of = dict(share.iter_rows())
    assert share_of["train"] == pytest.approx(0.7, abs=0.12)
    assert share_of["validation"] == pytest.approx(0.15, abs=0.1)
    assert share_of["test"] == pytest.approx(0.15, abs=0.1)


def test_split_by_study_is_deterministic_and_seeded() -> None:
    groups, labels = random_study_data(11)
    first = split_by_study(groups, labels, seed=3)
    assert first.equals(split_by_study(groups, labels, seed=3))
    # Input row order does not matter.
    shuffled = split_by_study(
        groups.sample(fraction=1.0, shuffle=True, seed=1),
        labels.sample(fraction=1.0, shuffle=True, seed=2),
        seed=3,
    )
    assert first.equals(shuffled)
    others = [split_by_study(groups, labels, seed=seed) for seed in (4, 5, 6)]
    assert any(not first.equals(other) for other in others)


def test_split_follows_fractions_on_many_equal_studies() -> None:
    # 200 single-label studies of 5 samples: the greedy can hit the target shares exactly.
    n_studies, size = 200, 5
    sample_idx = np.arange(n_studies * size)
    groups = pl.DataFrame({"sample_idx": sample_idx, "group": sample_idx // size})
    labels = pl.DataFrame(
        {"sample_idx": sample_idx, "label": np.where(sample_idx // size % 2 == 0, "a", "b")}
    )
    splits = split_by_study(groups, labels, fractions=(0.6, 0.2, 0.2), seed=0)
    counts = {
        (label, split): n for label, split, n in split_label_counts(splits, labels).iter_rows()
    }
    for label in ("a", "b"):
        assert counts[(label, "train")] == 300
        assert counts[(label, "validation")] == 100
        assert counts[(label, "test")] == 100


def test_rare_labels_reach_every_split_they_can() -> None:
    # Label "rare" lives in 3 small studies, "pair" in 2, "single" in 1, next to a big label.
    groups = pl.DataFrame({"sample_idx": range(60), "group": [i // 5 for i in range(60)]})
    label_of_group = ["common"] * 6 + ["rare"] * 3 + ["pair"] * 2 + ["single"]
    labels = pl.DataFrame(
        {"sample_idx": range(60), "label": [label_of_group[i // 5] for i in range(60)]}
    )
    for seed in range(5):
        counts = split_label_counts(split_by_study(groups, labels, seed=seed), labels)
        present = {
            label: set(rows["split"].to_list())
            for (label,), rows in counts.filter(pl.col("n_samples") > 0).group_by("label")
        }
        assert present["rare"] == set(SPLITS)
        assert present["pair"] == {"train", "test"}
        assert present["single"] == {"train"}


def test_multi_label_study_cannot_keep_a_label_out_of_train() -> None:
    # The only "x" samples share their study with "y", which has 3 studies; the repair or the
    # presence rule must still put x's study in train.
    groups = pl.DataFrame({"sample_idx": range(9), "group": [0, 0, 0, 1, 1, 1, 2, 2, 2]})
    labels = pl.DataFrame(
        {
            "sample_idx": [0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
            "label": ["x", "y", "y", "y", "y", "y", "y", "y", "y", "y"],
        }
    )
    for seed in range(5):
        splits = split_by_study(groups, labels, seed=seed)
        assert splits.filter(pl.col("sample_idx") == 0)["split"].item() == "train"


def test_repair_moves_the_smallest_group_of_a_label_missing_from_train() -> None:
    # Label 1 sits in groups 1 (3 samples) and 2 (2 samples), both outside train.
    counts = np.array([[4, 0], [1, 3], [0, 2]])
    sizes = np.array([4, 3, 2])
    assignment = np.array([TRAIN, VALIDATION, TEST])
    placed = np.zeros((3, 2))
    for group, split in enumerate(assignment):
        placed[split] += counts[group]
    _ensure_every_label_in_train(assignment, counts, sizes, placed)
    assert assignment.tolist() == [TRAIN, VALIDATION, TRAIN]
    assert placed[TRAIN].tolist() == [4, 2]
    assert placed[TEST].tolist() == [0, 0]


def test_split_by_study_errors() -> None:
    groups = pl.DataFrame({"sample_idx": [1, 2], "group": [0, 1]})
    labels = pl.DataFrame({"sample_idx": [1, 3], "label": ["a", "a"]})
    with pytest.raises(ValueError, match=r"no group, e\.g\. \[3\]"):
        split_by_study(groups, labels)
    good_labels = labels.head(1)
    for fractions in [(0.5, 0.5), (0.8, 0.3, 0.1), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1)]:
        with pytest.raises(ValueError, match="fractions"):
            split_by_study(groups, good_labels, fractions=fractions)
    empty = split_by_study(groups, labels.clear())
    assert empty.columns == ["sample_idx", "split"]
    assert empty.height == 0


# --- the training set ------------------------------------------------------------------------


def test_training_set_is_the_train_split_while_it_fits() -> None:
    groups, labels = random_study_data(seed=4)
    splits = split_by_study(groups, labels, seed=0)
    marked = mark_training_set(splits, labels, max_samples=10_000)
    assert marked["in_training_set"].to_list() == (marked["split"] == "train").to_list()


@pytest.mark.parametrize("max_samples", [300, 450])
def test_training_set_cap_keeps_rare_labels_whole(max_samples: int) -> None:
    groups, labels = random_study_data(seed=5, n_samples=2000)
    splits = split_by_study(groups, labels, seed=0)
    marked = mark_training_set(splits, labels, max_samples=max_samples, seed=3)
    chosen = marked.filter(pl.col("in_training_set"))
    assert chosen.height == max_samples
    assert (chosen["split"] == "train").all()  # never a validation or test sample
    # Labels with at most an equal share of the cap keep every train sample.
    train_labels = labels.unique().join(marked.filter(pl.col("split") == "train"), on="sample_idx")
    quota = max_samples // train_labels["label"].n_unique()
    per_label = train_labels.group_by("label").agg(
        pl.len().alias("train"), pl.col("in_training_set").sum().alias("kept")
    )
    rare = per_label.filter(pl.col("train") <= quota)
    assert rare.height > 0 and (rare["kept"] == rare["train"]).all()
    again = mark_training_set(splits.reverse(), labels, max_samples=max_samples, seed=3)
    assert again.sort("sample_idx").equals(marked.sort("sample_idx"))
    other_seed = mark_training_set(splits, labels, max_samples=max_samples, seed=4)
    assert not other_seed["in_training_set"].equals(marked["in_training_set"])


def test_training_set_cap_must_be_positive() -> None:
    groups, labels = random_study_data(seed=4)
    with pytest.raises(ValueError, match="max_samples must be positive"):
        mark_training_set(split_by_study(groups, labels), labels, max_samples=0)
