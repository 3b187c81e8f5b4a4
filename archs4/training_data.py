"""The classifier's matrices, gathered from the warehouse one block at a time.

Labels become a multi-hot matrix over the vocabulary's labels; expression rows are gathered
only for the samples asked for (train rows to fit the feature space, labelled rows for the
baseline), after a streamed per-gene variance over the train rows has chosen the genes, so
memory is (rows asked for) x (genes kept), never the whole layer; every sample's features are
computed block by block with the fitted feature space.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from archs4.datasets import EXPRESSION_DATASET
from archs4.features import FeatureSpace, fit_feature_space
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


def expression_rows(
    warehouse: Warehouse, sample_idx: np.ndarray, gene_idx: np.ndarray | None = None
) -> np.ndarray:
    """Rows (samples in `sample_idx` order) x genes (`gene_idx` order, default all) of
    `expression`, gathered block by block."""
    wanted = np.asarray(sample_idx)
    rows: np.ndarray | None = None
    found = np.zeros(wanted.size, dtype=bool)
    order = np.argsort(wanted)
    for block in _blocks(warehouse):
        values, samples, genes = warehouse.read_long_block(EXPRESSION_DATASET, block, "value")
        columns = np.arange(genes.size) if gene_idx is None else np.searchsorted(genes, gene_idx)
        if rows is None:
            rows = np.zeros((wanted.size, columns.size), dtype=np.float32)
        hits = np.isin(samples, wanted)
        if not hits.any():
            continue
        positions = order[np.searchsorted(wanted[order], samples[hits])]
        rows[positions] = values[columns][:, hits].T
        found[positions] = True
    if rows is None or not found.all():
        missing = wanted[~found][:5].tolist()
        raise ValueError(f"samples not in the expression layer: {missing}")
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
