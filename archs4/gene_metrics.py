"""Per-gene metrics of the normalized ``expression`` layer: ``p95`` and ``mean_cosine``.

What it computes (the contract in DESIGN.md, "Gene metrics"), for every gene over all N
samples of the normalized layer:

- ``p95``: ``numpy.percentile(x, 95)`` of the gene's values (linear interpolation).
- The window: the samples sorted by the gene's value ascending, ties broken by
  ``sample_idx``; with ``c = floor(0.95 * (N - 1))`` the window is sorted positions
  ``c-49 .. c+50`` (100 samples), shifted to stay inside ``0 .. N-1``; all samples when
  N < 100. These are the samples where the gene sits at the top of its range.
- ``mean_cosine``: the mean, over the k(k-1)/2 distinct pairs of window samples, of the
  cosine similarity of their full profiles (a sample's vector over all genes). A zero
  profile contributes similarity 0 to each of its pairs and still counts in the denominator.
  With N = 1 there is no pair and ``mean_cosine`` is NaN.

Why an algorithm and not the definition. The matrix (~67,000 genes x ~1,000,000 samples)
never fits in memory, and the naive way (gather the 100 window profiles of each gene and
form their 100 x 100 cosine matrix) costs G * k^2 * G multiply-adds, about 4.5e13 at ARCHS4
scale. Instead the metrics are computed in streaming passes, each bounded by one chunk:

1. Gene pass (``gene_windows``, once per chunk of genes with all N values of each):
   ``p95`` and the k = min(100, N) window members, found with a partial sort
   (``np.partition``) rather than a full sort, since only ranks ``start .. stop-1`` matter.
2. Sample pass (``sample_norms``, once per (G, B) sample block): the L2 norm of every
   profile, an O(N) result.
3. Feature pass (``CosineAccumulator.add_feature_chunk``, once per chunk of F genes with
   all N values of each, in any order and grouping, each gene exactly once): the mean
   pairwise cosine of k unit vectors u_1..u_k is ``(|sum_i u_i|^2 - k) / (k (k - 1))``
   because ``|sum u_i|^2 = sum_i |u_i|^2 + 2 sum_{i<j} u_i . u_j``. The squared norm of
   ``S_g = sum of the unit profiles of gene g's window`` is additive over disjoint sets of
   profile coordinates (features), so ``|S_g|^2`` is accumulated chunk by chunk as
   ``|| (W @ chunk.T)[g] ||^2`` where W is the sparse (G x N) membership matrix whose row g
   holds ``1 / norm`` at g's k members. Folding the normalization into W avoids building a
   unit-scaled copy of every chunk. A zero profile gets weight 0, so it adds nothing to
   ``|S_g|^2``; it is also left out of the self-term (``n_nonzero_members`` instead of k),
   which gives exactly "similarity 0 for its pairs". This costs G * k * G multiply-adds
   (100x fewer than the naive way) and memory O(G k) for W, O(F N) for a chunk and O(G F)
   for the product: never G x G nor G x N.

The feature pass also sums the squares of each sample's values; ``mean_cosine`` checks them
against the norms, so a missing or repeated feature chunk fails loudly instead of silently
skewing every gene's metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.sparse

WINDOW_SIZE = 100
P95_QUANTILE = 0.95

# Relative tolerance of the check that the feature chunks cover each profile exactly once:
# the same values summed in another order agree to ~1e-15, while a missing or repeated gene
# moves a sample's squared norm by its share of it. A guard, not a proof: a gene holding
# under 1e-6 of every profile's squares would slip through.
_COVERAGE_RTOL = 1e-6

# Features multiplied by the membership matrix at once; see add_feature_chunk.
_FEATURES_PER_PRODUCT = 16


def window_bounds(
    n_samples: int, window: int = WINDOW_SIZE, quantile: float = P95_QUANTILE
) -> tuple[int, int]:
    """The window as ``[start, stop)`` positions of the ascending sort of N samples.

    ``c = floor(quantile * (N - 1))``; the window starts ``(window - 1) // 2`` positions
    below ``c`` (49 for a window of 100, so it spans ``c-49 .. c+50``) and is shifted to stay
    inside ``0 .. N-1``. When N <= window it is every sample.
    """
    if n_samples < 1:
        raise ValueError(f"need at least one sample, got n_samples={n_samples}")
    if window < 1:
        raise ValueError(f"window must be positive, got {window}")
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must lie in [0, 1], got {quantile}")
    if n_samples <= window:
        return 0, n_samples
    # The definition is the decimal 0.95, not its binary approximation: exact rational
    # arithmetic keeps floor() right where 0.95 * (N - 1) is an integer, whatever the
    # rounding of the float product would be.
    exact_quantile = Fraction(str(quantile))
    centre = exact_quantile.numerator * (n_samples - 1) // exact_quantile.denominator
    start = centre - (window - 1) // 2
    start = min(max(start, 0), n_samples - window)
    return start, start + window


@dataclass(frozen=True)
class GeneWindows:
    """Pass-1 result for a set of genes (one row per gene, in ``gene_idx`` order)."""

    gene_idx: np.ndarray
    """(G,) int64, the genes in order."""
    p95: np.ndarray
    """(G,) float64, ``numpy.percentile(x, 95)``."""
    members: np.ndarray
    """(G, k) int64 positions into the sample axis (0..N-1), in window (ascending) order."""
    window_low: np.ndarray
    """(G,) float64, the value at the window's first position."""
    window_high: np.ndarray
    """(G,) float64, the value at the window's last position."""

    def __post_init__(self) -> None:
        n_genes = len(self.gene_idx)
        if self.members.ndim != 2 or self.members.shape[0] != n_genes:
            raise ValueError(f"members must be (G, k) with G={n_genes}, got {self.members.shape}")
        for name in ("p95", "window_low", "window_high"):
            if getattr(self, name).shape != (n_genes,):
                raise ValueError(f"{name} must have shape ({n_genes},)")

    @property
    def window_size(self) -> int:
        """k, the number of samples in every gene's window."""
        return self.members.shape[1]


def gene_windows(
    values_by_gene: np.ndarray, sample_idx: np.ndarray, gene_idx: np.ndarray
) -> GeneWindows:
    """``p95`` and window members of a chunk of genes.

    ``values_by_gene`` is (Gc, N): all N values of each gene of the chunk, columns in sample
    position order; ``sample_idx`` (N,) holds the sample ids whose order breaks value ties;
    ``gene_idx`` (Gc,) names the rows. Memory: a few copies of the chunk.
    """
    values, sample_idx, gene_idx = _checked_gene_chunk(values_by_gene, sample_idx, gene_idx)
    n_samples = values.shape[1]
    start, stop = window_bounds(n_samples)
    below, above, fraction = _p95_ranks(n_samples)

    # Work in id order: with the columns sorted by sample_idx, np.flatnonzero lists tied
    # samples already in tie-break order, so ties never need sorting. Sample ids are
    # normally increasing, and then no copy is made.
    is_id_order = bool(np.all(sample_idx[1:] > sample_idx[:-1]))
    positions_by_id = None if is_id_order else np.argsort(sample_idx, kind="stable")
    by_id = values if positions_by_id is None else values[:, positions_by_id]

    # A partial sort finds the values at the window's first and last ranks; every sample
    # strictly between them is in the window, and the ties at either end are cut by id.
    partitioned = np.partition(by_id, sorted({start, stop - 1, below, above}), axis=1)
    window_low = partitioned[:, start].copy()  # copies, so the partitioned chunk can go
    window_high = partitioned[:, stop - 1].copy()
    p95 = _lerp(partitioned[:, below], partitioned[:, above], fraction)
    del partitioned

    members = _chunk_window_members(by_id, window_low, window_high, start, stop - start)
    if positions_by_id is not None:
        members = positions_by_id[members]

    return GeneWindows(
        gene_idx=gene_idx,
        p95=p95,
        members=members,
        window_low=window_low,
        window_high=window_high,
    )


def _checked_gene_chunk(
    values_by_gene: np.ndarray, sample_idx: np.ndarray, gene_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arguments of ``gene_windows`` as arrays, checked for shape and finiteness."""
    # float64 throughout, so p95 of a float32 layer is interpolated at full precision.
    values = np.asarray(values_by_gene, dtype=np.float64)
    sample_idx = np.asarray(sample_idx)
    gene_idx = np.asarray(gene_idx, dtype=np.int64)
    if values.ndim != 2:
        raise ValueError(f"values_by_gene must be 2-D (genes, samples), got {values.shape}")
    n_genes, n_samples = values.shape
    if sample_idx.shape != (n_samples,):
        raise ValueError(f"sample_idx must have shape ({n_samples},), got {sample_idx.shape}")
    if gene_idx.shape != (n_genes,):
        raise ValueError(f"gene_idx must have shape ({n_genes},), got {gene_idx.shape}")
    if n_samples < 1:
        raise ValueError("need at least one sample")
    if not np.isfinite(values).all():
        raise ValueError("values_by_gene holds NaN or infinite values")
    return values, sample_idx, gene_idx


def _p95_ranks(n_samples: int) -> tuple[int, int, float]:
    """The two sorted ranks ``numpy.percentile`` interpolates between for p95, and the
    interpolation fraction.

    numpy's linear method: the order statistics at floor(h) and the next rank,
    h = 0.95 (N - 1); computed here so that one partial sort serves both p95 and the window
    (np.percentile would partition the whole chunk again).
    """
    virtual_index = P95_QUANTILE * (n_samples - 1)
    below = int(np.floor(virtual_index))
    above = min(below + 1, n_samples - 1)
    return below, above, virtual_index - below


def _chunk_window_members(
    values_in_id_order: np.ndarray,
    window_low: np.ndarray,
    window_high: np.ndarray,
    start: int,
    window_size: int,
) -> np.ndarray:
    """(G, k) ``_window_members`` of every gene (row) of a chunk, as id-order columns."""
    members = np.empty((values_in_id_order.shape[0], window_size), dtype=np.int64)
    for row, (gene_values, low, high) in enumerate(
        zip(values_in_id_order, window_low, window_high, strict=True)
    ):
        members[row] = _window_members(gene_values, low, high, start, window_size)
    return members


def _lerp(low: np.ndarray, high: np.ndarray, fraction: float) -> np.ndarray:
    """numpy.percentile's interpolation, term for term (it switches form at 0.5 for accuracy)."""
    difference = high - low
    if fraction >= 0.5:
        return high - difference * (1 - fraction)
    return low + difference * fraction


def _window_members(
    values_in_id_order: np.ndarray, low: float, high: float, start: int, window_size: int
) -> np.ndarray:
    """Columns holding sorted ranks ``start .. start+window_size-1`` of one gene, in window
    order, given the values ``low``/``high`` found at the first and last of those ranks."""
    n_below = int(np.count_nonzero(values_in_id_order < low))
    # The window's first rank falls inside the run of values equal to `low`; skip the
    # lower-id samples of that run that sit below the window.
    skip_in_low_run = start - n_below
    equal_low = np.flatnonzero(values_in_id_order == low)
    if low == high:
        return equal_low[skip_in_low_run : skip_in_low_run + window_size]
    low_part = equal_low[skip_in_low_run:]
    between = np.flatnonzero((values_in_id_order > low) & (values_in_id_order < high))
    # A stable sort keeps ties inside `between` in id order.
    between = between[np.argsort(values_in_id_order[between], kind="stable")]
    n_high = window_size - len(low_part) - len(between)
    high_part = np.flatnonzero(values_in_id_order == high)[:n_high]
    return np.concatenate([low_part, between, high_part])


def concat_windows(parts: Sequence[GeneWindows]) -> GeneWindows:
    """Join the pass-1 results of several gene chunks, in the order given."""
    if not parts:
        raise ValueError("no GeneWindows to concatenate")
    window_sizes = {part.window_size for part in parts}
    if len(window_sizes) != 1:
        raise ValueError(f"parts come from different sample sets (window sizes {window_sizes})")
    return GeneWindows(
        gene_idx=np.concatenate([part.gene_idx for part in parts]),
        p95=np.concatenate([part.p95 for part in parts]),
        members=np.concatenate([part.members for part in parts]),
        window_low=np.concatenate([part.window_low for part in parts]),
        window_high=np.concatenate([part.window_high for part in parts]),
    )


def sample_norms(block: np.ndarray) -> np.ndarray:
    """(B,) float64 L2 norm of each column (sample profile) of a (G, B) block."""
    block = np.asarray(block)
    if block.ndim != 2:
        raise ValueError(f"block must be 2-D (genes, samples), got {block.shape}")
    # Accumulate in float64 even for float32 blocks: a profile sums ~67,000 squares.
    return np.sqrt(np.einsum("gb,gb->b", block, block, dtype=np.float64))


class CosineAccumulator:
    """Pass 3: accumulates ``|S_g|^2`` over feature chunks, then gives ``mean_cosine``.

    ``norms`` (N,) are the profile norms aligned with the sample positions that
    ``windows.members`` index. Feed every feature (gene of the profile) exactly once, in
    chunks of any size and order, with ``add_feature_chunk``; then call ``mean_cosine``.
    """

    def __init__(
        self,
        windows: GeneWindows,
        norms: np.ndarray,
        *,
        product_dtype: type[np.floating] = np.float64,
        threads: int = 1,
    ) -> None:
        """`product_dtype=np.float32` halves the memory traffic of the sparse products (the
        squared sums still accumulate in float64; measured relative error of |S|^2 ~3e-8);
        `threads` > 1 splits each chunk's features across threads (scipy's sparse products
        release the GIL)."""
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        norms = np.asarray(norms, dtype=np.float64)
        if norms.ndim != 1:
            raise ValueError(f"norms must be 1-D (samples,), got {norms.shape}")
        members = windows.members
        n_genes, window_size = members.shape
        n_samples = len(norms)
        if members.size and (members.min() < 0 or members.max() >= n_samples):
            raise ValueError(f"window members fall outside the {n_samples} samples of norms")

        self._norms = norms
        self._window_size = window_size
        nonzero = norms > 0
        inverse_norms = np.divide(1.0, norms, out=np.zeros_like(norms), where=nonzero)
        self._nonzero_members = np.count_nonzero(nonzero[members], axis=1)
        # Row g holds 1/norm at g's members, so (W @ chunk.T)[g] is S_g restricted to the
        # chunk's features. Assembled as CSR (k entries per row), kept as CSC: its product
        # with a transposed chunk walks the chunk's columns in order, ~2x faster than CSR
        # at N = 50,000 (measured, scipy 1.17).
        sorted_members = np.sort(members, axis=1)
        membership = scipy.sparse.csr_array(
            (
                inverse_norms[sorted_members].ravel(),
                sorted_members.ravel(),
                np.arange(0, n_genes * window_size + 1, window_size),
            ),
            shape=(n_genes, n_samples),
        )
        self._membership = membership.tocsc().astype(product_dtype)
        self._product_dtype = product_dtype
        self._threads = threads
        self._squared_sums = np.zeros(n_genes, dtype=np.float64)
        self._profile_squares = np.zeros(n_samples, dtype=np.float64)
        self._features_added = 0

    @property
    def features_added(self) -> int:
        """How many feature rows have been added so far."""
        return self._features_added

    def add_feature_chunk(self, values_by_gene: np.ndarray) -> None:
        """Add an (F, N) chunk: all N values of F features not added before."""
        values = np.asarray(values_by_gene)
        if values.ndim != 2 or values.shape[1] != len(self._norms):
            raise ValueError(
                f"chunk must be (features, {len(self._norms)} samples), got {values.shape}"
            )
        # A few features at a time: the (G, sub-chunk) product then stays in cache while the
        # sparse product scatters into it (~3x faster than the whole chunk at once at
        # G = 67,000, measured).
        starts = range(0, values.shape[0], _FEATURES_PER_PRODUCT)
        shares = [starts[thread :: self._threads] for thread in range(self._threads)]
        if self._threads == 1:
            self._squared_sums += self._squared_window_sums(values, starts)
        else:
            with ThreadPoolExecutor(self._threads) as pool:
                for partial in pool.map(
                    lambda share: self._squared_window_sums(values, share), shares
                ):
                    self._squared_sums += partial
        self._profile_squares += np.einsum("fn,fn->n", values, values, dtype=np.float64)
        self._features_added += values.shape[0]

    def _squared_window_sums(self, values: np.ndarray, starts: Sequence[int]) -> np.ndarray:
        """Sum over the sub-chunks starting at `starts` of |S_g restricted to them|^2."""
        squared = np.zeros(self._membership.shape[0], dtype=np.float64)
        for first in starts:
            features = np.ascontiguousarray(
                values[first : first + _FEATURES_PER_PRODUCT].T, dtype=self._product_dtype
            )
            window_sums = self._membership @ features  # S_g restricted to these features
            squared += np.einsum("gf,gf->g", window_sums, window_sums, dtype=np.float64)
        return squared

    def mean_cosine(self) -> np.ndarray:
        """(G,) mean pairwise cosine of each gene's window, aligned with ``windows.gene_idx``.

        NaN for every gene when k = 1 (a single sample has no pair). Raises ValueError if
        the chunks added do not reproduce the profile norms (a feature missed or repeated).
        """
        expected = self._norms**2
        mismatch = np.abs(self._profile_squares - expected) > _COVERAGE_RTOL * expected
        if mismatch.any():
            first = int(np.flatnonzero(mismatch)[0])
            raise ValueError(
                f"feature chunks do not cover the profiles exactly once: {int(mismatch.sum())}"
                f" samples disagree with their norms (position {first}: sum of squares "
                f"{self._profile_squares[first]:.6g}, norm^2 {expected[first]:.6g}) after "
                f"{self._features_added} feature rows"
            )
        k = self._window_size
        if k < 2:
            return np.full(len(self._squared_sums), np.nan)
        # |S|^2 = sum_i |u_i|^2 + 2 sum_{i<j} u_i.u_j, and |u_i|^2 is 1 for a nonzero profile
        # and 0 for a zero one, so removing the self-terms leaves twice the pairwise sum.
        return (self._squared_sums - self._nonzero_members) / (k * (k - 1))
