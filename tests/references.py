"""Plain-numpy references that follow the DESIGN.md definitions literally.

They hold the whole matrix in memory and share no code with the ``archs4`` modules, so a
test that compares the two catches a mistake in either. Used by the unit tests and by the
benchmarks (as the naive baseline).
"""

from __future__ import annotations

import numpy as np

REFERENCE_WINDOW = 100


def naive_window_positions(values: np.ndarray, sample_idx: np.ndarray) -> np.ndarray:
    """Sample positions in one gene's window, in ascending (value, sample_idx) order.

    Sort all samples by value, ties by sample id; ``c = floor(0.95 * (N - 1))``; take sorted
    positions ``c-49 .. c+50``, shifted to stay inside ``0 .. N-1``; all samples if N < 100.
    """
    n_samples = len(values)
    order = np.lexsort((sample_idx, values))  # last key is the primary one
    if n_samples < REFERENCE_WINDOW:
        return order
    centre = (95 * (n_samples - 1)) // 100  # floor(0.95 * (N - 1)) in integers
    first = centre - 49
    last = centre + 50
    if last > n_samples - 1:  # shift down to end at the last sample
        first -= last - (n_samples - 1)
    first = max(first, 0)
    return order[first : first + REFERENCE_WINDOW]


def naive_mean_pairwise_cosine(profiles: np.ndarray) -> float:
    """Mean cosine similarity over the distinct pairs of rows of a (k, G) array.

    A zero row has similarity 0 with every other row; NaN when k < 2 (no pair).
    """
    n_profiles = profiles.shape[0]
    if n_profiles < 2:
        return float("nan")
    norms = np.linalg.norm(profiles, axis=1)
    dots = profiles @ profiles.T
    norm_products = np.outer(norms, norms)
    cosines = np.divide(dots, norm_products, out=np.zeros_like(dots), where=norm_products > 0)
    upper_rows, upper_cols = np.triu_indices(n_profiles, k=1)
    return float(cosines[upper_rows, upper_cols].mean())


def naive_gene_metrics(
    matrix: np.ndarray, sample_idx: np.ndarray, n_genes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(p95, mean_cosine)`` for the first `n_genes` (default: every) gene of a whole (G, N)
    matrix, gene by gene, profiles always over all G genes."""
    matrix = np.asarray(matrix, dtype=np.float64)
    n_genes = matrix.shape[0] if n_genes is None else n_genes
    p95 = np.empty(n_genes)
    mean_cosine = np.empty(n_genes)
    for gene in range(n_genes):
        values = matrix[gene]
        p95[gene] = np.percentile(values, 95)
        window = naive_window_positions(values, sample_idx)
        window_profiles = matrix[:, window].T  # (k, G): each window sample's full profile
        mean_cosine[gene] = naive_mean_pairwise_cosine(window_profiles)
    return p95, mean_cosine
