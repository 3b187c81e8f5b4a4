"""The classifier's matrices, gathered from the warehouse one block at a time.

Labels become a multi-hot matrix over the vocabulary's labels; expression rows are gathered
only for the samples asked for (train rows to fit the feature space, the baseline's capped
train rows), after a streamed per-gene variance over the train rows has chosen the genes, so
memory is (rows asked for) x (genes kept), never the whole layer; every sample's features are
computed block by block with the fitted feature space.

What the model and augmentation assets read beyond one plain table comes through here: a
split's samples, the labelled samples as a multi-hot matrix, every sample's features, the
feature space, the GAN and its side file, and the synthetic rows; a plain table is
`Warehouse.read_table`. So no asset module parses warehouse files itself or imports another
asset module's helpers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import polars as pl

from archs4.augmentation import LabelledRows
from archs4.augmentation_curve import TrainStudies
from archs4.datasets import (
    EXPRESSION_DATASET,
    FEATURE_SPACE_FILE,
    GAN_FILE,
    GAN_INFO_FILE,
    SAMPLE_FEATURES_TABLE,
    SAMPLE_LABELS_TABLE,
    SAMPLE_SPLITS_TABLE,
    SAMPLES_DATASET,
    SYNTHETIC_SAMPLES_TABLE,
)
from archs4.features import FeatureSpace, fit_feature_space
from archs4.gan import TrainedGan, load_gan, save_gan
from archs4.labels import load_vocabulary
from archs4.warehouse import Warehouse


def label_matrix(labels: pl.DataFrame, label_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(sample_idx sorted, multi-hot Y of shape (samples, labels)) from long label rows."""
    position = {name: column for column, name in enumerate(label_names)}
    unknown = set(labels["label"].unique().to_list()) - set(position)
    if unknown:
        raise ValueError(f"labels outside the vocabulary: {sorted(unknown)[:10]}")
    pairs = labels.select("sample_idx", "label").unique()
    sample_idx = np.sort(pairs["sample_idx"].unique().to_numpy())
    rows = np.searchsorted(sample_idx, pairs["sample_idx"].to_numpy())
    columns = np.array([position[label] for label in pairs["label"].to_list()], dtype=np.int64)
    matrix = np.zeros((sample_idx.size, len(label_names)), dtype=np.int8)
    matrix[rows, columns] = 1
    return sample_idx, matrix


def _blocks(warehouse: Warehouse) -> list[str]:
    blocks = warehouse.blocks_present(EXPRESSION_DATASET)
    if not blocks:
        raise ValueError("the expression layer is empty")
    return blocks


def gene_variance(warehouse: Warehouse, sample_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gene_idx, variance over the samples `sample_idx`) streamed over the blocks."""
    wanted = np.asarray(sample_idx)
    total = squares = genes = None
    count = 0
    for block in _blocks(warehouse):
        values, samples, gene_idx = warehouse.read_long_block(EXPRESSION_DATASET, block, "value")
        selected = values[:, np.isin(samples, wanted)].astype(np.float64)
        if total is None:
            total, squares, genes = np.zeros(len(gene_idx)), np.zeros(len(gene_idx)), gene_idx
        total += selected.sum(axis=1)
        squares += (selected**2).sum(axis=1)
        count += selected.shape[1]
    if count < 2 or total is None or squares is None or genes is None:
        raise ValueError("need at least two samples to compute gene variances")
    mean = total / count
    return genes, np.maximum(squares / count - mean**2, 0.0)


def rows_by_block(
    warehouse: Warehouse, sample_idx: np.ndarray, gene_idx: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(positions in `sample_idx`, their rows x genes of `expression`) for each block that holds
    some of `sample_idx`; genes in `gene_idx` order (default all). Memory: one block. Raises
    ValueError, once the blocks are read, if any sample was in none of them."""
    wanted = np.asarray(sample_idx)
    found = np.zeros(wanted.size, dtype=bool)
    order = np.argsort(wanted)
    for block in _blocks(warehouse):
        values, samples, genes = warehouse.read_long_block(EXPRESSION_DATASET, block, "value")
        columns = np.arange(genes.size) if gene_idx is None else np.searchsorted(genes, gene_idx)
        hits = np.isin(samples, wanted)
        if not hits.any():
            continue
        positions = order[np.searchsorted(wanted[order], samples[hits])]
        found[positions] = True
        yield positions, values[columns][:, hits].T
    if not found.all():
        raise ValueError(f"samples not in the expression layer: {wanted[~found][:5].tolist()}")


def expression_rows(
    warehouse: Warehouse, sample_idx: np.ndarray, gene_idx: np.ndarray | None = None
) -> np.ndarray:
    """Rows (samples in `sample_idx` order) x genes (`gene_idx` order, default all) of
    `expression`, gathered block by block."""
    n_rows = np.asarray(sample_idx).size
    rows = np.zeros((0, 0 if gene_idx is None else np.asarray(gene_idx).size), dtype=np.float32)
    for positions, block_rows in rows_by_block(warehouse, sample_idx, gene_idx):
        if rows.shape[0] != n_rows:
            rows = np.zeros((n_rows, block_rows.shape[1]), dtype=np.float32)
        rows[positions] = block_rows
    return rows


def features_of_all_samples(
    warehouse: Warehouse, space: FeatureSpace
) -> tuple[np.ndarray, np.ndarray]:
    """(sample_idx, features) of every sample of `expression`, one block at a time."""
    ids, features = [], []
    for block in _blocks(warehouse):
        values, samples, genes = warehouse.read_long_block(EXPRESSION_DATASET, block, "value")
        columns = np.minimum(np.searchsorted(genes, space.gene_idx), genes.size - 1)
        if not np.array_equal(genes[columns], space.gene_idx):
            raise ValueError(f"block {block} lacks genes the feature space was fitted on")
        ids.append(samples)
        features.append(space.transform(values[columns].T))
    sample_ids = np.concatenate(ids)
    order = np.argsort(sample_ids, kind="stable")
    return sample_ids[order], np.vstack(features)[order]


def fit_feature_space_on_samples(
    warehouse: Warehouse,
    sample_idx: np.ndarray,
    *,
    n_top_genes: int,
    n_components: int,
    seed: int,
) -> FeatureSpace:
    """The feature space fitted on the samples `sample_idx` of `expression`: their most variable
    genes (variance streamed over the blocks), then only those genes' rows gathered for the
    fit, so memory is the training rows x `n_top_genes`, never x all genes."""
    genes, variance = gene_variance(warehouse, sample_idx)
    keep = np.sort(genes[np.argsort(-variance, kind="stable")[:n_top_genes]])
    return fit_feature_space(
        expression_rows(warehouse, sample_idx, keep),
        keep,
        n_top_genes=keep.size,
        n_components=n_components,
        seed=seed,
    )


class LabelledSamples(NamedTuple):
    """The vocabulary's label names, the labelled samples (sorted) and their multi-hot labels."""

    names: list[str]
    sample_idx: np.ndarray
    matrix: np.ndarray


def labelled_samples(warehouse: Warehouse) -> LabelledSamples:
    names = list(load_vocabulary().labels)
    ids, matrix = label_matrix(warehouse.read_table(SAMPLE_LABELS_TABLE), names)
    return LabelledSamples(names, ids, matrix)


def split_samples(warehouse: Warehouse, split: str) -> np.ndarray:
    """Samples of a split, sorted; for train, those the models are fitted on
    (`in_training_set`)."""
    splits = warehouse.read_table(SAMPLE_SPLITS_TABLE)
    wanted = pl.col("split") == split
    if split == "train":
        wanted &= pl.col("in_training_set")
    return np.sort(splits.filter(wanted)["sample_idx"].to_numpy())


def stored_features(warehouse: Warehouse) -> tuple[np.ndarray, np.ndarray]:
    """(sample_idx, features) of every sample, from `model/sample_features`."""
    table = warehouse.read_table(SAMPLE_FEATURES_TABLE)
    return table["sample_idx"].to_numpy(), table.drop("sample_idx").to_numpy()


def feature_names(warehouse: Warehouse) -> list[str]:
    """The classifier's feature names (PC1, PC2, ...), in column order."""
    return warehouse.read_table(SAMPLE_FEATURES_TABLE).columns[1:]


def rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions of the samples `wanted` in the sorted `ids`; every one must be there."""
    positions = np.searchsorted(ids, wanted)
    if np.any(positions >= ids.size) or not np.array_equal(ids[positions], wanted):
        raise ValueError("samples missing from a table they should be in")
    return positions


def features_and_labels(
    warehouse: Warehouse, split: str
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(label names, sample_idx, features, multi-hot labels) of the samples of one split."""
    labelled = labelled_samples(warehouse)
    ids, features = stored_features(warehouse)
    wanted = split_samples(warehouse, split)
    return (
        labelled.names,
        wanted,
        features[rows_of(ids, wanted)],
        labelled.matrix[rows_of(labelled.sample_idx, wanted)],
    )


def train_rows(warehouse: Warehouse) -> tuple[list[str], LabelledRows, np.ndarray]:
    """(label names, the train split's rows with their study groups, their sample_idx)."""
    names, sample_idx, features, labels = features_and_labels(warehouse, "train")
    return names, LabelledRows(features, labels, study_groups(warehouse, sample_idx)), sample_idx


def study_groups(warehouse: Warehouse, sample_idx: np.ndarray) -> np.ndarray:
    """Each sample's study group (`sample_splits.group`: the GSE series it shares, joined)."""
    splits = warehouse.read_table(SAMPLE_SPLITS_TABLE).select("sample_idx", "group")
    rows = pl.DataFrame({"sample_idx": sample_idx}).join(
        splits, on="sample_idx", how="left", maintain_order="left"
    )
    return rows["group"].to_numpy()


def save_feature_space(warehouse: Warehouse, space: FeatureSpace) -> None:
    with warehouse.atomic_file(warehouse.root / FEATURE_SPACE_FILE) as handle:
        space.to_npz(handle)


def load_feature_space(warehouse: Warehouse) -> FeatureSpace:
    with warehouse.fs.open((warehouse.root / FEATURE_SPACE_FILE).path, "rb") as handle:
        return FeatureSpace.from_npz(handle)


def save_stored_gan(warehouse: Warehouse, trained: TrainedGan, info: dict) -> None:
    """The GAN's tensors, then its side file (labels, rare labels, rows to add per label)."""
    with warehouse.atomic_file(warehouse.root / GAN_FILE) as handle:
        save_gan(trained, handle)
    warehouse.write_json(info, warehouse.root / GAN_INFO_FILE)


def load_stored_gan(warehouse: Warehouse) -> TrainedGan:
    with warehouse.fs.open((warehouse.root / GAN_FILE).path, "rb") as handle:
        return load_gan(handle)


def stored_gan_info(warehouse: Warehouse) -> dict:
    return warehouse.read_json(warehouse.root / GAN_INFO_FILE)


def synthetic_rows(warehouse: Warehouse, names: list[str], n_features: int) -> LabelledRows:
    """The GAN's synthetic rows (`synthetic_samples`), wide, each with its one label."""
    frame = warehouse.read_table(SYNTHETIC_SAMPLES_TABLE)
    if frame.height == 0:
        return LabelledRows.empty(n_features, len(names))
    wide = frame.pivot("feature", index=["synthetic_id", "label"], values="value").sort(
        "synthetic_id"
    )
    labels = np.zeros((wide.height, len(names)), dtype=np.int8)
    labels[np.arange(wide.height), [names.index(label) for label in wide["label"]]] = 1
    return LabelledRows(wide.select(feature_names(warehouse)).to_numpy(), labels)


def train_studies(warehouse: Warehouse) -> TrainStudies:
    """The train rows with each row's study group (`sample_splits.group`) and the number of
    studies (distinct GSE ids) its group spans, for the augmentation curve's draws."""
    _, sample_idx, features, labels = features_and_labels(warehouse, "train")
    splits = warehouse.read_table(SAMPLE_SPLITS_TABLE).select("sample_idx", "group")
    series = warehouse.read_dataset(SAMPLES_DATASET, ["sample_idx", "series_id"])
    spans = (
        splits.join(series, on="sample_idx")
        .with_columns(pl.col("series_id").fill_null("").str.split(","))
        .explode("series_id")
        .with_columns(pl.col("series_id").str.strip_chars())
        .group_by("group")
        .agg(pl.col("series_id").filter(pl.col("series_id") != "").n_unique().alias("n_studies"))
    )
    rows = pl.DataFrame({"sample_idx": sample_idx}).join(
        splits.join(spans, on="group"), on="sample_idx", how="left", maintain_order="left"
    )
    return TrainStudies(
        LabelledRows(features, labels, rows["group"].to_numpy()),
        np.maximum(rows["n_studies"].to_numpy(), 1),
    )
