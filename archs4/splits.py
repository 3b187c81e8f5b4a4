"""Train/validation/test splits by study, stratified over labels.

What it computes (DESIGN.md, "Classification and evaluation"):

* :func:`study_groups`: samples that share any GSE id are one group. ``series_id`` may list
  several GSE ids joined by commas (SuperSeries), so a group is a connected component of the
  bipartite sample-GSE graph: A (GSE1), B (GSE1,GSE2) and C (GSE2) are one group although A and
  C share no id.
* :func:`split_by_study`: each group goes wholly to ``train``, ``validation`` or ``test``, so
  no study leaks its batch effects across splits, while every split gets close to its share
  (default 70/15/15) of each label's samples.

Why this assignment. Exact stratification under group constraints is a bin-packing problem;
the greedy below is iterative stratification adapted to groups, and favours what the
evaluation needs most:

1. groups are visited larger studies first (by order of magnitude of their labelled samples),
   then rarest label first (rarity = number of groups carrying the label), in a seeded random
   order among equals. Big studies are the hard items to pack, so they go while every split
   has room, and small ones fill the gaps. (Visiting rarest label first, then by size, was
   measured too: on 300 random 80-study data sets it stratified labels worse, mean |train
   share - 0.70| per label 0.10 against 0.08, with the same presence record.)
2. A split that does not yet hold one of the group's labels earns a bonus: train the most (a
   label the model never saw in training cannot be learnt), test when the label has at least
   2 groups and validation when it has at least 3 (so rare labels can be evaluated and their
   thresholds tuned); rarer labels (1 / number of groups) weigh more.
3. The bonus is traded against the cost of the placement: how much it increases the squared
   distance, relative to each label's total, between the samples every split holds and its
   share of the samples placed so far (the running target), per label (weight
   sqrt(1 / number of groups)) and over all labelled samples (weight 1). So a group goes to
   the split furthest below its share, and a huge group never lands in a small split for the
   sake of one label.
4. A final repair moves the smallest group of any label still absent from train into train.

Only labelled samples get a split; the result is deterministic for a given seed and does not
depend on the order of the input rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SPLITS: tuple[str, ...] = ("train", "validation", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)
TRAIN, VALIDATION, TEST = range(3)
# Train samples the models are fitted on at most (see mark_training_set).
DEFAULT_MAX_TRAIN_SAMPLES = 20_000

# A label must have at least this many groups before validation (test) is asked to hold it:
# with 1 group only train can, with 2 train and test, with 3 all three.
_MIN_GROUPS_FOR_PRESENCE = {TRAIN: 1, VALIDATION: 3, TEST: 2}
# Bonus (times 1 / number of groups of the label) for bringing a label into a split that lacks
# it, against costs of order (group share)^2; absence from train matters most.
_PRESENCE_WEIGHT = {TRAIN: 2.0, VALIDATION: 1.0, TEST: 1.0}


def study_groups(samples: pl.DataFrame) -> pl.DataFrame:
    """``sample_idx, group`` for every sample: samples sharing any GSE id (``series_id``,
    comma-separated) are one group. Group ids are dense, 0.., in order of the smallest
    ``sample_idx`` of each group; a sample without a series is a group of its own."""
    _require_columns(samples, ("sample_idx", "series_id"), "samples")
    if samples["sample_idx"].is_duplicated().any():
        raise ValueError("samples: sample_idx is not unique")
    n_samples = samples.height
    edges = (
        samples.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
            pl.col("series_id").cast(pl.String).fill_null("").str.split(",").alias("gse"),
        )
        .explode("gse")
        .with_columns(pl.col("gse").str.strip_chars())
        .filter(pl.col("gse").is_not_null() & (pl.col("gse") != ""))
        .with_columns((pl.col("gse").rank("dense").cast(pl.Int64) - 1).alias("gse_code"))
    )
    n_series = int(edges["gse_code"].max()) + 1 if edges.height else 0
    # Nodes 0..n_samples-1 are samples, n_samples.. are GSE ids; edges join a sample to its ids.
    n_nodes = n_samples + n_series
    graph = coo_matrix(
        (
            np.ones(edges.height, dtype=np.int8),
            (edges["row"].to_numpy(), n_samples + edges["gse_code"].to_numpy()),
        ),
        shape=(n_nodes, n_nodes),
    )
    _, component = connected_components(graph, directed=False)
    return (
        samples.select("sample_idx")
        .with_columns(pl.Series("component", component[:n_samples], dtype=pl.Int64))
        .with_columns(
            (pl.col("sample_idx").min().over("component").rank("dense").cast(pl.Int64) - 1).alias(
                "group"
            )
        )
        .select("sample_idx", "group")
        .sort("sample_idx")
    )


def split_by_study(
    groups: pl.DataFrame,
    labels: pl.DataFrame,
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> pl.DataFrame:
    """``sample_idx, split`` for every labelled sample (``labels``: ``sample_idx, label``, one
    row per label), every ``groups`` group wholly in one of train/validation/test, stratified
    over labels as far as the groups allow (see the module docstring). Deterministic for a
    seed."""
    _require_columns(groups, ("sample_idx", "group"), "groups")
    _require_columns(labels, ("sample_idx", "label"), "labels")
    targets = _check_fractions(fractions)
    if groups["sample_idx"].is_duplicated().any():
        raise ValueError("groups: sample_idx is not unique")
    labelled = labels.select("sample_idx", "label").unique()
    ungrouped = labelled.join(groups, on="sample_idx", how="anti")["sample_idx"].unique().sort()
    if ungrouped.len():
        raise ValueError(
            f"{ungrouped.len()} labelled samples have no group, e.g. {ungrouped.head(5).to_list()}"
        )
    if labelled.height == 0:
        return pl.DataFrame(schema={"sample_idx": groups.schema["sample_idx"], "split": pl.String})

    # Dense indices: groups in id order, labels in name order, so input row order cannot matter.
    grouped = labelled.join(groups.select("sample_idx", "group"), on="sample_idx")
    group_ids = grouped["group"].unique().sort()
    label_names = grouped["label"].unique().sort()
    coded = grouped.with_columns(
        pl.col("group").replace_strict(group_ids, range(group_ids.len())).alias("g"),
        pl.col("label").replace_strict(label_names, range(label_names.len())).alias("l"),
    )
    # counts[g, l]: labelled samples of group g carrying label l.
    counts = np.zeros((group_ids.len(), label_names.len()), dtype=np.int64)
    pairs = coded.group_by("g", "l").len()
    counts[pairs["g"].to_numpy(), pairs["l"].to_numpy()] = pairs["len"].to_numpy()
    group_sizes = coded.group_by("g").agg(pl.col("sample_idx").n_unique()).sort("g")
    sizes = group_sizes["sample_idx"].to_numpy()

    assignment = _assign_groups(counts, sizes, targets, np.random.default_rng(seed))
    split_of_group = pl.DataFrame(
        {
            "group": group_ids,
            "split": [SPLITS[s] for s in assignment],
        }
    )
    return (
        grouped.select("sample_idx", "group")
        .unique()
        .join(split_of_group, on="group")
        .select("sample_idx", "split")
        .sort("sample_idx")
    )


def mark_training_set(
    splits: pl.DataFrame, labels: pl.DataFrame, *, max_samples: int, seed: int = 0
) -> pl.DataFrame:
    """``splits`` plus ``in_training_set``: the train samples the models are fitted on.

    Every train sample while the train split holds at most ``max_samples``. Beyond, a seeded
    subset of ``max_samples``: first every sample of the labels rarer than an equal share
    (``max_samples // number of labels`` train samples), then a uniform draw from the rest.
    Why: the forest's size (and the feature space's and the GAN's cost) grows with its
    training rows, a full ARCHS4 release has hundreds of thousands of labelled samples, and
    a forest's accuracy levels off long before; the rare labels are the ones that need rows.
    Validation and test samples are never in it, so evaluation still covers every split.
    """
    _require_columns(splits, ("sample_idx", "split"), "splits")
    _require_columns(labels, ("sample_idx", "label"), "labels")
    if max_samples < 1:
        raise ValueError(f"max_samples must be positive, got {max_samples}")
    train = np.sort(splits.filter(pl.col("split") == "train")["sample_idx"].to_numpy())
    chosen = train
    if train.size > max_samples:
        train_labels = (
            labels.select("sample_idx", "label").unique().filter(pl.col("sample_idx").is_in(train))
        )
        per_label = train_labels.group_by("label").len()
        quota = max_samples // max(per_label.height, 1)
        rare = per_label.filter(pl.col("len") <= quota)["label"]
        kept = np.unique(train_labels.filter(pl.col("label").is_in(rare))["sample_idx"].to_numpy())
        # At most (number of labels) x quota <= max_samples samples are kept this way.
        rest = np.setdiff1d(train, kept)
        drawn = np.random.default_rng(seed).choice(
            rest, size=max_samples - kept.size, replace=False
        )
        chosen = np.sort(np.concatenate([kept, drawn]))
    return splits.with_columns(
        (pl.col("split").eq("train") & pl.col("sample_idx").is_in(chosen)).alias("in_training_set")
    )


def split_label_counts(splits: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """``label, split, n_samples``: how many samples of each label each split holds (zeros
    included), for reports and checks."""
    counted = (
        labels.select("sample_idx", "label")
        .unique()
        .join(splits, on="sample_idx")
        .group_by("label", "split")
        .agg(pl.len().cast(pl.Int64).alias("n_samples"))
    )
    every = labels.select(pl.col("label").unique()).join(
        pl.DataFrame({"split": list(SPLITS)}), how="cross"
    )
    return (
        every.join(counted, on=["label", "split"], how="left")
        .with_columns(pl.col("n_samples").fill_null(0))
        .sort("label", pl.col("split").replace_strict(SPLITS, range(len(SPLITS))))
    )


def _assign_groups(
    counts: np.ndarray, sizes: np.ndarray, fractions: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Split index of every group (rows of ``counts``, groups x labels)."""
    n_groups, n_labels = counts.shape
    carries = counts > 0
    groups_per_label = carries.sum(axis=0)  # >= 1 for every label present
    label_weight = 1.0 / groups_per_label

    # Larger groups first (order of magnitude), then rarest label first, then seeded random.
    rarest = np.where(carries, groups_per_label[None, :], np.iinfo(np.int64).max).min(axis=1)
    magnitude = np.floor(np.log2(np.maximum(sizes, 1))).astype(np.int64)
    order = np.lexsort((rng.permutation(n_groups), rarest, -magnitude))

    # The cost is tracked per label plus one extra column, "all labelled samples" (weight 1), so
    # the overall split sizes are pursued too, not only each label's. sqrt(1/k) lets rare labels
    # count more without letting them override the stratification of common ones.
    amounts = np.hstack([counts, sizes[:, None]]).astype(np.float64)
    weights = np.append(np.sqrt(label_weight), 1.0)
    totals = amounts.sum(axis=0)
    placed = np.zeros((len(SPLITS), n_labels + 1))  # splits x (labels + all), in samples
    presence_bonus = np.zeros((len(SPLITS), n_labels))
    for split in range(len(SPLITS)):
        eligible = (groups_per_label >= _MIN_GROUPS_FOR_PRESENCE[split]) & (fractions[split] > 0)
        presence_bonus[split] = np.where(eligible, _PRESENCE_WEIGHT[split] * label_weight, 0.0)

    assignment = np.empty(n_groups, dtype=np.int64)
    for group in order:
        labels = np.flatnonzero(carries[group])
        columns = np.append(labels, n_labels)
        amount = amounts[group, columns]
        # Targets follow what is placed so far, including this group: every split should hold
        # its share of the samples placed up to now. Against final totals, train would look
        # far below target for most of the run and swallow the early groups.
        running_target = fractions[:, None] * (placed[:, columns].sum(axis=0) + amount)
        before = (placed[:, columns] - running_target) ** 2
        after = (placed[:, columns] + amount - running_target) ** 2
        # Weighted squared error of the split that takes the group, relative to each total.
        cost = (weights[columns] * (after - before) / totals[columns] ** 2).sum(axis=1)
        bonus = ((placed[:, labels] == 0) * presence_bonus[:, labels]).sum(axis=1)
        best = int(np.argmin(cost - bonus))  # ties go to the earlier split
        assignment[group] = best
        placed[best, columns] += amount

    _ensure_every_label_in_train(assignment, counts, sizes, placed[:, :n_labels])
    return assignment


def _ensure_every_label_in_train(
    assignment: np.ndarray, counts: np.ndarray, sizes: np.ndarray, placed: np.ndarray
) -> None:
    """Move the smallest group of any label absent from train into train (in place)."""
    for label in np.argsort((counts > 0).sum(axis=0), kind="stable"):
        if placed[TRAIN, label] > 0:
            continue
        holders = np.flatnonzero(counts[:, label] > 0)
        smallest = holders[np.lexsort((holders, sizes[holders]))[0]]
        placed[assignment[smallest]] -= counts[smallest]
        placed[TRAIN] += counts[smallest]
        assignment[smallest] = TRAIN


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    values = np.asarray(list(fractions), dtype=np.float64)
    if values.shape != (len(SPLITS),) or not np.isfinite(values).all() or (values < 0).any():
        raise ValueError(f"fractions must be 3 non-negative numbers for {SPLITS}, got {fractions}")
    if not np.isclose(values.sum(), 1.0) or values[TRAIN] <= 0:
        raise ValueError(f"fractions must sum to 1 with a positive train share, got {fractions}")
    return values


def _require_columns(frame: pl.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing} (has {frame.columns})")
