"""Normalizations of a fetched genes x samples count matrix, as archs4py users apply them.

The warehouse's `expression` layer is normalized once, against a target frozen over the whole
compendium (`archs4.quantile_norm`), so a sample's values never change when samples are added.
archs4py users instead normalize the samples they fetched, among themselves
(`archs4py.utils.normalize`). Both are useful and they differ: quantile normalization maps each
sample onto a target, and a liver-only subset's own target is not the compendium's (the frozen
values of a liver subset differ from archs4py's `log_quantile` by up to ~0.6 log2 units on the
demo). The methods here are the subset ones, each computed by the library archs4py itself uses
or by a maintained implementation:

- `log_quantile`: `qnorm.quantile_normalize(log2(1 + counts))`, archs4py's default;
- `quantile`: `qnorm.quantile_normalize(counts)`;
- `cpm`: counts per million of each sample's total;
- `tmm`: edgeR's trimmed mean of M-values (Robinson & Oshlack 2010) as CPM with TMM-scaled
  library sizes, from `rnanorm` (tested against edgeR by its authors). archs4py's method of
  that name is not TMM: it divides each sample's log2(1 + counts) by the trimmed mean of its
  positive log values, and is offered here under its own name, `log_trimmed_mean`.

The frozen (warehouse) normalization needs the stored target and lengths: see
`archs4.api.Warehouse.normalize`. `aggregate_duplicate_genes` and `filter_genes` are
archs4py's gene utilities, with the same defaults.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd
import qnorm
from rnanorm import TMM

SubsetMethod = Literal["log_quantile", "quantile", "cpm", "tmm", "log_trimmed_mean"]
SUBSET_METHODS: tuple[str, ...] = get_args(SubsetMethod)
# archs4py's trimmed fraction for its `tmm` (each end of the sorted positive log values).
LOG_TRIMMED_FRACTION = 0.05


def normalize_counts(counts: pd.DataFrame, method: SubsetMethod = "log_quantile") -> pd.DataFrame:
    """`counts` (genes x samples) normalized among its own samples; float32, same labels."""
    if method not in SUBSET_METHODS:
        raise ValueError(f"unknown normalization {method!r}; expected one of {SUBSET_METHODS}")
    values = counts.to_numpy(dtype=np.float64)
    if method == "log_quantile":
        normalized = qnorm.quantile_normalize(np.log2(1 + values))
    elif method == "quantile":
        normalized = qnorm.quantile_normalize(values)
    elif method == "cpm":
        normalized = values / (values.sum(axis=0) / 1e6)
    elif method == "tmm":
        # rnanorm works on samples x genes, as scikit-learn transformers do.
        normalized = TMM().fit_transform(values.T).T
    else:
        normalized = _log_trimmed_mean(values, LOG_TRIMMED_FRACTION)
    return pd.DataFrame(normalized, index=counts.index, columns=counts.columns, dtype=np.float32)


def _log_trimmed_mean(values: np.ndarray, fraction: float) -> np.ndarray:
    """archs4py's `tmm`: log2(1 + counts) of each sample over the trimmed mean of its
    positive log values (`fraction` cut from each end), in float32 as archs4py computes it.
    Where too few values are positive to cut any, archs4py's slice `[0:-0]` is empty and its
    mean NaN; here nothing is cut instead (the only place the two differ)."""
    logs = np.log2(1 + values).astype(np.float32)
    means = np.empty(logs.shape[1])
    for column in range(logs.shape[1]):
        positive = np.sort(logs[:, column][logs[:, column] > 0])
        cut = int(positive.size * fraction)
        means[column] = np.mean(positive[cut : positive.size - cut])
    return logs / means


def aggregate_duplicate_genes(matrix: pd.DataFrame) -> pd.DataFrame:
    """Rows summed per gene symbol (archs4py's `aggregate_duplicate_genes`): one row per symbol.

    A matrix indexed by (ensembl_id, symbol), as the warehouse returns, is summed over its
    `symbol` level; any other index is summed over its own values.
    """
    if isinstance(matrix.index, pd.MultiIndex) and "symbol" in matrix.index.names:
        return matrix.groupby(level="symbol").sum()
    return matrix.groupby(matrix.index).sum()


def filter_genes(
    counts: pd.DataFrame,
    read_threshold: int = 20,
    sample_threshold: float = 0.02,
    *,
    aggregate: bool = True,
) -> pd.DataFrame:
    """The genes (rows) with more than `read_threshold` reads in at least `sample_threshold` of
    the samples, after summing duplicate symbols when `aggregate` (archs4py's `filter_genes`)."""
    if aggregate:
        counts = aggregate_duplicate_genes(counts)
    supported = (counts > read_threshold).sum(axis=1)
    return counts[supported >= counts.shape[1] * sample_threshold]
