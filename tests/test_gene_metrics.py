"""Streaming gene metrics (archs4.gene_metrics) against the definitions and the naive
reference (tests.references), on small matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archs4.gene_metrics import (
    WINDOW_SIZE,
    CosineAccumulator,
    GeneWindows,
    concat_windows,
    gene_windows,
    sample_norms,
    window_bounds,
)
from tests.references import naive_gene_metrics, naive_window_positions

P95_TOLERANCE = 1e-12
COSINE_TOLERANCE = 1e-10


def split_evenly(indices: np.ndarray, chunk_size: int) -> list[np.ndarray]:
    return [indices[i : i + chunk_size] for i in range(0, len(indices), chunk_size)]


def streaming_gene_metrics(
    matrix: np.ndarray,
    sample_idx: np.ndarray,
    gene_idx: np.ndarray,
    *,
    gene_chunk: int,
    feature_chunk: int,
    sample_block: int,
    rng: np.random.Generator,
) -> tuple[GeneWindows, np.ndarray]:
    """The three passes as a pipeline would run them, each over chunks, in shuffled order
    (so results must not depend on chunk order or on features being contiguous)."""
    n_genes, n_samples = matrix.shape
    gene_chunks = split_evenly(np.arange(n_genes), gene_chunk)
    rng.shuffle(gene_chunks)
    windows = concat_windows(
        [gene_windows(matrix[rows], sample_idx, gene_idx[rows]) for rows in gene_chunks]
    )
    norms = np.concatenate(
        [sample_norms(matrix[:, cols]) for cols in split_evenly(np.arange(n_samples), sample_block)]
    )
    accumulator = CosineAccumulator(windows, norms)
    for rows in split_evenly(rng.permutation(n_genes), feature_chunk):
        accumulator.add_feature_chunk(matrix[rows])
    return windows, accumulator.mean_cosine()


def in_gene_order(windows: GeneWindows, per_gene: np.ndarray, gene_idx: np.ndarray) -> np.ndarray:
    """Reorder a result aligned with windows.gene_idx to the matrix's row order."""
    row_of_gene = {gene: row for row, gene in enumerate(windows.gene_idx)}
    return per_gene[[row_of_gene[gene] for gene in gene_idx]]


def assert_matches_reference(
    matrix: np.ndarray,
    sample_idx: np.ndarray,
    gene_idx: np.ndarray,
    windows: GeneWindows,
    mean_cosine: np.ndarray,
) -> None:
    expected_p95, expected_cosine = naive_gene_metrics(matrix, sample_idx)
    np.testing.assert_allclose(
        in_gene_order(windows, windows.p95, gene_idx), expected_p95, rtol=0, atol=P95_TOLERANCE
    )
    np.testing.assert_allclose(
        in_gene_order(windows, mean_cosine, gene_idx),
        expected_cosine,
        rtol=0,
        atol=COSINE_TOLERANCE,
    )
    members = in_gene_order(windows, windows.members, gene_idx)
    for row in range(matrix.shape[0]):
        expected_window = naive_window_positions(matrix[row], sample_idx)
        np.testing.assert_array_equal(members[row], expected_window)
    # The recorded bounds are the values at the window's ends.
    rows = np.arange(matrix.shape[0])
    np.testing.assert_array_equal(
        in_gene_order(windows, windows.window_low, gene_idx), matrix[rows, members[:, 0]]
    )
    np.testing.assert_array_equal(
        in_gene_order(windows, windows.window_high, gene_idx), matrix[rows, members[:, -1]]
    )


def arbitrary_increasing_ids(rng: np.random.Generator, n_samples: int) -> np.ndarray:
    """Sample ids as a warehouse has them: increasing, with gaps, not starting at 0."""
    return 1_000 + np.cumsum(rng.integers(1, 5, size=n_samples))


# --- window_bounds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_samples", "expected"),
    [
        (1, (0, 1)),  # fewer than 100 samples: all of them
        (5, (0, 5)),
        (99, (0, 99)),
        # c = floor(0.95 * 99) = floor(94.05) = 94 -> 45..144, shifted down to 0..99
        (100, (0, 100)),
        # c = floor(0.95 * 100) = 95 exactly -> 46..145, shifted down to 1..100
        (101, (1, 101)),
        # c = floor(0.95 * 120) = 114 exactly -> 65..164, shifted down to 21..120
        (121, (21, 121)),
        # c = floor(0.95 * 149) = floor(141.55) = 141 -> 92..191, shifted down to 50..149
        (150, (50, 150)),
        # c = floor(0.95 * 999) = floor(949.05) = 949 -> 900..999, fits: [900, 1000)
        (1000, (900, 1000)),
        # c = floor(0.95 * 1999) = floor(1899.05) = 1899 -> 1850..1949, no shift
        (2000, (1850, 1950)),
        # c = floor(0.95 * 2000) = 1900 exactly -> 1851..1950, no shift
        (2001, (1851, 1951)),
        # c = floor(0.95 * 999999) = floor(949999.05) = 949999 -> 949950..950049
        (10**6, (949_950, 950_050)),
    ],
)
def test_window_bounds_hand_worked(n_samples: int, expected: tuple[int, int]) -> None:
    assert window_bounds(n_samples) == expected


def test_window_bounds_follow_the_definition_for_every_small_n() -> None:
    for n_samples in range(1, 5_001):
        start, stop = window_bounds(n_samples)
        assert stop - start == min(WINDOW_SIZE, n_samples)
        assert start >= 0
        assert stop <= n_samples
        centre = (95 * (n_samples - 1)) // 100
        if n_samples >= WINDOW_SIZE:
            # Either unshifted (c-49 .. c+50) or pushed down against the last sample.
            assert start == centre - 49 or stop == n_samples
            assert start <= centre < stop


# --- streaming result equals the naive reference --------------------------------------


def expression_like(rng: np.random.Generator, n_genes: int, n_samples: int) -> np.ndarray:
    """Non-negative, skewed, a third zeros: profiles are positively correlated, as in RNA-seq."""
    values = rng.lognormal(mean=1.0, sigma=1.0, size=(n_genes, n_samples))
    values[rng.random((n_genes, n_samples)) < 0.3] = 0.0
    return values


def signed_noise(rng: np.random.Generator, n_genes: int, n_samples: int) -> np.ndarray:
    """Centred values: cosines of both signs, near zero on average."""
    return rng.normal(size=(n_genes, n_samples))


@pytest.mark.parametrize("make_matrix", [expression_like, signed_noise])
# 80: fewer than the window; 250: the window is pushed against the top sample; 1500: the
# window sits strictly inside (positions 1375..1474), with samples on both sides.
@pytest.mark.parametrize("n_samples", [80, 250, 1500])
@pytest.mark.parametrize(
    ("gene_chunk", "feature_chunk", "sample_block"),
    [(60, 60, 250), (1, 1, 1), (7, 13, 32), (16, 25, 100)],
)
def test_streaming_equals_naive_reference(
    make_matrix, n_samples: int, gene_chunk: int, feature_chunk: int, sample_block: int
) -> None:
    rng = np.random.default_rng(n_samples + gene_chunk * 1_000 + feature_chunk)
    n_genes = 60
    matrix = make_matrix(rng, n_genes, n_samples)
    sample_idx = arbitrary_increasing_ids(rng, n_samples)
    gene_idx = 7 + 3 * np.arange(n_genes)
    windows, mean_cosine = streaming_gene_metrics(
        matrix,
        sample_idx,
        gene_idx,
        gene_chunk=gene_chunk,
        feature_chunk=feature_chunk,
        sample_block=sample_block,
        rng=rng,
    )
    assert windows.window_size == min(WINDOW_SIZE, n_samples)
    assert_matches_reference(matrix, sample_idx, gene_idx, windows, mean_cosine)


def test_float32_layer_gives_the_float64_result_of_the_same_values() -> None:
    rng = np.random.default_rng(32)
    matrix = expression_like(rng, 30, 180).astype(np.float32)
    sample_idx = np.arange(180)
    gene_idx = np.arange(30)
    windows, mean_cosine = streaming_gene_metrics(
        matrix, sample_idx, gene_idx, gene_chunk=8, feature_chunk=9, sample_block=50, rng=rng
    )
    assert_matches_reference(matrix.astype(np.float64), sample_idx, gene_idx, windows, mean_cosine)


# --- ties --------------------------------------------------------------------------------


@pytest.mark.parametrize("ids_follow_positions", [False, True])
@pytest.mark.parametrize("n_samples", [250, 1500])
def test_ties_are_broken_by_sample_idx(n_samples: int, ids_follow_positions: bool) -> None:
    rng = np.random.default_rng(n_samples)
    n_genes = 40
    # Mostly zeros and a handful of small integers: the window's ends fall inside runs of
    # equal values, so which tied samples get in is decided by the tie-break alone.
    matrix = rng.integers(1, 4, size=(n_genes, n_samples)).astype(np.float64)
    matrix[rng.random((n_genes, n_samples)) < 0.9] = 0.0
    matrix[0] = 0.0  # a gene with one value only: the window is 100 samples in id order
    # Increasing ids (the warehouse's case), or ids in an order unrelated to the positions.
    sample_idx = np.arange(5_000, 5_000 + 3 * n_samples, 3)
    if not ids_follow_positions:
        sample_idx = rng.permutation(sample_idx)
    gene_idx = np.arange(n_genes)

    start, stop = window_bounds(n_samples)
    # Preconditions: runs of tied values are cut by the window's lower end and, when the
    # window does not reach the top sample, by its upper end too ...
    sorted_values = np.sort(matrix, axis=1)
    assert (sorted_values[:, start - 1] == sorted_values[:, start]).sum() > n_genes // 2
    if stop < n_samples:
        assert (sorted_values[:, stop - 1] == sorted_values[:, stop]).sum() > n_genes // 2
    # ... and, with permuted ids, breaking ties by position would give other windows.
    if not ids_follow_positions:
        by_position = [np.lexsort((np.arange(n_samples), row))[start:stop] for row in matrix]
        by_id = [naive_window_positions(row, sample_idx) for row in matrix]
        assert (
            sum(not np.array_equal(a, b) for a, b in zip(by_position, by_id, strict=True))
            > n_genes // 2
        )

    windows, mean_cosine = streaming_gene_metrics(
        matrix, sample_idx, gene_idx, gene_chunk=9, feature_chunk=11, sample_block=64, rng=rng
    )
    assert_matches_reference(matrix, sample_idx, gene_idx, windows, mean_cosine)
    all_zero_gene = int(np.flatnonzero(windows.gene_idx == 0)[0])
    np.testing.assert_array_equal(
        windows.members[all_zero_gene], np.argsort(sample_idx)[start:stop]
    )


# --- zero profiles -----------------------------------------------------------------------


def test_zero_profiles_count_as_similarity_zero_hand_worked() -> None:
    # 5 samples (< 100, so every gene's window is all 5), 2 genes. Samples 0, 2, 4 have the
    # same profile (1, 2); samples 1 and 3 are all zero. Pairs: C(5, 2) = 10, of which only
    # (0,2), (0,4), (2,4) have cosine 1; the 7 pairs with a zero profile count 0.
    # mean_cosine = 3 / 10 = 0.3 for both genes.
    matrix = np.array(
        [
            [1.0, 0.0, 1.0, 0.0, 1.0],
            [2.0, 0.0, 2.0, 0.0, 2.0],
        ]
    )
    windows = gene_windows(matrix, np.arange(5), np.arange(2))
    accumulator = CosineAccumulator(windows, sample_norms(matrix))
    accumulator.add_feature_chunk(matrix)
    np.testing.assert_allclose(accumulator.mean_cosine(), [0.3, 0.3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(naive_gene_metrics(matrix, np.arange(5))[1], [0.3, 0.3])


def test_zero_profiles_inside_windows_match_reference() -> None:
    rng = np.random.default_rng(5)
    n_genes, n_samples = 50, 250
    # Values are negative except ~3% positive per gene, and 12 samples are zero everywhere:
    # sorted, the zeros sit just below the positives, around the 95th percentile.
    matrix = -np.abs(rng.normal(size=(n_genes, n_samples)))
    positive = rng.random((n_genes, n_samples)) < 0.03
    matrix[positive] = np.abs(matrix[positive])
    zero_samples = rng.choice(n_samples, size=12, replace=False)
    matrix[:, zero_samples] = 0.0
    sample_idx = arbitrary_increasing_ids(rng, n_samples)
    gene_idx = np.arange(n_genes)

    windows, mean_cosine = streaming_gene_metrics(
        matrix, sample_idx, gene_idx, gene_chunk=10, feature_chunk=7, sample_block=40, rng=rng
    )
    # Precondition: every window holds the zero profiles.
    assert all(np.isin(zero_samples, row).all() for row in windows.members)
    assert_matches_reference(matrix, sample_idx, gene_idx, windows, mean_cosine)


# --- small N -----------------------------------------------------------------------------


def test_fewer_samples_than_the_window_use_every_sample() -> None:
    rng = np.random.default_rng(80)
    matrix = rng.normal(size=(12, 80))
    windows = gene_windows(matrix, np.arange(80), np.arange(12))
    assert windows.members.shape == (12, 80)
    for row, members in enumerate(windows.members):
        np.testing.assert_array_equal(np.sort(members), np.arange(80))
        assert np.all(np.diff(matrix[row, members]) >= 0)  # window order is ascending


def test_hand_worked_three_samples_two_genes() -> None:
    # genes x samples:      s0   s1   s2
    matrix = np.array(
        [
            [1.0, 0.0, 2.0],  # gene 0
            [0.0, 1.0, 2.0],  # gene 1
        ]
    )
    # Profiles: s0 = (1, 0), s1 = (0, 1), s2 = (2, 2), norms 1, 1, 2*sqrt(2).
    # cos(s0, s1) = 0; cos(s0, s2) = 2 / (2 sqrt 2) = 1/sqrt 2; cos(s1, s2) = 1/sqrt 2.
    # N = 3 < 100, so both windows are all 3 samples:
    # mean_cosine = (0 + 2/sqrt 2) / 3 = sqrt(2) / 3 = 0.4714045...
    # p95: sorted (0, 1, 2), index 0.95 * 2 = 1.9 -> 1 + 0.9 * (2 - 1) = 1.9 for both genes.
    # Windows in ascending order: gene 0 -> s1 (0), s0 (1), s2 (2); gene 1 -> s0, s1, s2.
    windows = gene_windows(matrix, np.array([10, 20, 30]), np.array([0, 1]))
    np.testing.assert_allclose(windows.p95, [1.9, 1.9], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(windows.members, [[1, 0, 2], [0, 1, 2]])
    np.testing.assert_array_equal(windows.window_low, [0.0, 0.0])
    np.testing.assert_array_equal(windows.window_high, [2.0, 2.0])
    norms = sample_norms(matrix)
    np.testing.assert_allclose(norms, [1.0, 1.0, 2 * math.sqrt(2)], rtol=1e-15)
    accumulator = CosineAccumulator(windows, norms)
    accumulator.add_feature_chunk(matrix[[1]])
    accumulator.add_feature_chunk(matrix[[0]])
    expected = math.sqrt(2) / 3
    np.testing.assert_allclose(accumulator.mean_cosine(), [expected, expected], rtol=1e-14)


def test_a_single_sample_has_no_pair_so_mean_cosine_is_nan() -> None:
    matrix = np.array([[3.0], [4.0]])
    windows = gene_windows(matrix, np.array([42]), np.array([0, 1]))
    np.testing.assert_array_equal(windows.p95, [3.0, 4.0])
    np.testing.assert_array_equal(windows.members, [[0], [0]])
    accumulator = CosineAccumulator(windows, sample_norms(matrix))
    accumulator.add_feature_chunk(matrix)
    assert np.isnan(accumulator.mean_cosine()).all()


# --- misuse fails loudly ----------------------------------------------------------------


@pytest.mark.parametrize(
    "feature_rows",
    [[0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 4]],
    ids=["a feature missing", "a feature added twice"],
)
def test_feature_chunks_must_cover_each_feature_once(feature_rows: list[int]) -> None:
    rng = np.random.default_rng(3)
    matrix = rng.lognormal(size=(6, 120))
    windows = gene_windows(matrix, np.arange(120), np.arange(6))
    accumulator = CosineAccumulator(windows, sample_norms(matrix))
    for row in feature_rows:
        accumulator.add_feature_chunk(matrix[[row]])
    with pytest.raises(ValueError, match="exactly once"):
        accumulator.mean_cosine()


def test_concat_rejects_windows_from_different_sample_sets() -> None:
    rng = np.random.default_rng(4)
    large = gene_windows(rng.normal(size=(2, 150)), np.arange(150), np.arange(2))
    small = gene_windows(rng.normal(size=(2, 50)), np.arange(50), np.arange(2, 4))
    with pytest.raises(ValueError, match="different sample sets"):
        concat_windows([large, small])


def test_float32_products_on_two_threads_agree_with_float64() -> None:
    rng = np.random.default_rng(5)
    values = rng.lognormal(0, 1, size=(70, 400)) * (rng.random((70, 400)) > 0.3)
    sample_idx = np.arange(400)
    windows = gene_windows(values, sample_idx, np.arange(70))
    norms = sample_norms(values)
    exact = CosineAccumulator(windows, norms)
    fast = CosineAccumulator(windows, norms, product_dtype=np.float32, threads=2)
    for start in range(0, 70, 23):
        exact.add_feature_chunk(values[start : start + 23])
        fast.add_feature_chunk(values[start : start + 23].astype(np.float32))
    np.testing.assert_allclose(fast.mean_cosine(), exact.mean_cosine(), rtol=0, atol=1e-6)
    assert not np.array_equal(fast.mean_cosine(), exact.mean_cosine())  # really float32
