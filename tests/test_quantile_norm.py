"""Tests for archs4.quantile_norm against plain-numpy formulas and the independent `qnorm` package.

Reference for quantile normalization: ``qnorm.quantile_normalize(np.log2(counts + 1), axis=1)``;
with ``axis=1`` qnorm normalizes every column, and columns are samples in ARCHS4 orientation.
"""

from fractions import Fraction
from itertools import permutations

import numpy as np
import pytest
import qnorm

from archs4 import quantile_norm
from archs4.quantile_norm import (
    TargetAccumulator,
    adjust_for_length,
    log2p1,
    normalize_block,
    quantile_normalize_block,
    sorted_log_columns,
)

TOLERANCE = 1e-12


def negative_binomial_counts(n_genes: int, n_samples: int, seed: int) -> np.ndarray:
    """RNA-seq-like counts: gene means spread over orders of magnitude, many zeros and ties."""
    rng = np.random.default_rng(seed)
    gene_means = rng.lognormal(mean=0.5, sigma=2.0, size=(n_genes, 1))
    counts = rng.negative_binomial(n=1, p=1 / (1 + gene_means), size=(n_genes, n_samples))
    return counts.astype(np.uint32)


def distinct_counts(n_genes: int, n_samples: int, seed: int) -> np.ndarray:
    """Counts with no tie inside any column."""
    rng = np.random.default_rng(seed)
    columns = [rng.choice(1_000_000, size=n_genes, replace=False) for _ in range(n_samples)]
    return np.column_stack(columns).astype(np.uint32)


def reference_logs(counts: np.ndarray) -> np.ndarray:
    # Add in float64: in uint32, the maximum count + 1 would wrap to 0.
    return np.log2(counts.astype(np.float64) + 1)


def reference_target(counts: np.ndarray) -> np.ndarray:
    return np.mean(np.sort(reference_logs(counts), axis=0), axis=1)


def reference_quantile_normalization(counts: np.ndarray) -> np.ndarray:
    return qnorm.quantile_normalize(reference_logs(counts), axis=1)


def target_of(*blocks: np.ndarray) -> np.ndarray:
    accumulator = TargetAccumulator(n_genes=blocks[0].shape[0])
    for block in blocks:
        accumulator.add_block(block)
    return accumulator.target()


def has_ties_in_some_column(counts: np.ndarray) -> bool:
    return any(np.unique(column).size < column.size for column in counts.T)


# --- log transform and sorted columns ---------------------------------------------------------


def test_log2p1_matches_numpy_and_does_not_wrap_at_the_uint32_maximum():
    counts = np.array([[0, 1, 3], [7, 1000, np.iinfo(np.uint32).max]], dtype=np.uint32)
    logs = log2p1(counts)
    assert logs.dtype == np.float64
    np.testing.assert_array_equal(logs, np.log2(counts.astype(np.float64) + 1))
    # uint32 arithmetic would wrap 2**32 - 1 + 1 to 0 and give log2(0) = -inf.
    assert logs[1, 2] == 32.0


def test_log2p1_rejects_negative_counts():
    with pytest.raises(ValueError, match="non-negative"):
        log2p1(np.array([1, -1]))


def test_sorted_log_columns_sorts_each_sample_separately():
    counts = negative_binomial_counts(50, 7, seed=3)
    np.testing.assert_array_equal(sorted_log_columns(counts), np.sort(np.log2(counts + 1), axis=0))


# --- the target -------------------------------------------------------------------------------


def test_target_is_the_mean_of_the_sorted_log_columns():
    counts = negative_binomial_counts(500, 40, seed=1)
    target = target_of(counts)
    np.testing.assert_allclose(target, reference_target(counts), rtol=0, atol=TOLERANCE)
    assert np.all(np.diff(target) >= 0)


def test_target_is_the_exact_mean_correctly_rounded():
    # Exact rational arithmetic on the float64 log values: the accumulator must not lose bits.
    counts = negative_binomial_counts(30, 13, seed=2)
    sorted_logs = np.sort(log2p1(counts), axis=0)
    exact_means = [
        float(sum(Fraction(value) for value in rank_values) / counts.shape[1])
        for rank_values in sorted_logs.tolist()
    ]
    np.testing.assert_array_equal(target_of(counts), np.array(exact_means))


def test_streamed_and_merged_targets_are_bit_identical_to_the_whole_matrix():
    counts = negative_binomial_counts(400, 90, seed=4)
    whole = TargetAccumulator(n_genes=400)
    whole.add_block(counts)

    blocks = [counts[:, :1], counts[:, 1:30], counts[:, 30:37], counts[:, 37:]]
    streamed = TargetAccumulator(n_genes=400)
    for block in reversed(blocks):
        streamed.add_block(block)
    np.testing.assert_array_equal(streamed.target(), whole.target())

    partials = []
    for block in blocks:
        partial = TargetAccumulator(n_genes=400)
        partial.add_block(block)
        partials.append(partial)
    for order in permutations(range(len(partials))):
        merged = TargetAccumulator(n_genes=400)
        for index in order:
            merged = merged.merge(partials[index])
        assert merged.n_samples == 90
        np.testing.assert_array_equal(merged.target(), whole.target())
    # Tree-shaped merge, as parallel partitions would do it.
    tree = partials[0].merge(partials[1]).merge(partials[2].merge(partials[3]))
    np.testing.assert_array_equal(tree.target(), whole.target())
    np.testing.assert_allclose(tree.target(), reference_target(counts), rtol=0, atol=TOLERANCE)


def test_merge_leaves_its_inputs_untouched():
    left, right = TargetAccumulator(n_genes=20), TargetAccumulator(n_genes=20)
    left.add_block(negative_binomial_counts(20, 3, seed=5))
    right.add_block(negative_binomial_counts(20, 4, seed=6))
    left_target, right_target = left.target(), right.target()
    left.merge(right)
    assert (left.n_samples, right.n_samples) == (3, 4)
    np.testing.assert_array_equal(left.target(), left_target)
    np.testing.assert_array_equal(right.target(), right_target)


def test_sum_sorted_is_the_per_rank_sum_of_sorted_logs():
    counts = negative_binomial_counts(100, 25, seed=7)
    accumulator = TargetAccumulator(n_genes=100)
    accumulator.add_block(counts)
    np.testing.assert_allclose(
        accumulator.sum_sorted, np.sort(np.log2(counts + 1), axis=0).sum(axis=1), rtol=1e-15
    )


def test_accumulator_survives_a_round_trip_through_its_fields():
    # The pipeline persists partial accumulators per partition: the limbs are the state.
    accumulator = TargetAccumulator(n_genes=60)
    accumulator.add_block(negative_binomial_counts(60, 11, seed=8))
    restored = TargetAccumulator(
        n_genes=60,
        n_samples=accumulator.n_samples,
        sum_high=accumulator.sum_high.tolist(),
        sum_low=accumulator.sum_low.tolist(),
    )
    np.testing.assert_array_equal(restored.target(), accumulator.target())


# --- quantile normalization -------------------------------------------------------------------


def test_matches_qnorm_on_counts_with_many_ties():
    counts = negative_binomial_counts(2000, 60, seed=10)
    assert (counts == 0).mean() > 0.2 and has_ties_in_some_column(counts)
    normalized = quantile_normalize_block(counts, target_of(counts))
    np.testing.assert_allclose(
        normalized, reference_quantile_normalization(counts), rtol=0, atol=TOLERANCE
    )


def test_matches_qnorm_on_counts_without_ties():
    counts = distinct_counts(1500, 20, seed=11)
    assert not has_ties_in_some_column(counts)
    normalized = quantile_normalize_block(counts, target_of(counts))
    np.testing.assert_allclose(
        normalized, reference_quantile_normalization(counts), rtol=0, atol=TOLERANCE
    )


def test_is_bit_identical_to_qnorm_given_the_same_target():
    # Tie runs are averaged with qnorm's own arithmetic, so nothing should differ at all.
    counts = negative_binomial_counts(800, 30, seed=12)
    target = target_of(negative_binomial_counts(800, 50, seed=13))
    expected = qnorm.quantile_normalize(np.log2(counts + 1), axis=1, target=target)
    np.testing.assert_array_equal(quantile_normalize_block(counts, target), expected)


def test_hand_worked_example_with_ties():
    # sample A counts [0, 0, 3] -> logs [0, 0, 2]; sample B counts [1, 0, 7] -> logs [1, 0, 3].
    # Sorted: A [0, 0, 2], B [0, 1, 3]; target = per-rank mean = [0, 0.5, 2.5].
    # A: genes 0 and 1 tie on ranks 1-2 -> mean(0, 0.5) = 0.25; gene 2 has rank 3 -> 2.5.
    # B: gene 1 rank 1 -> 0; gene 0 rank 2 -> 0.5; gene 2 rank 3 -> 2.5.
    # Lengths [500, 1000, 2000] bp = [0.5, 1, 2] kb; divide: A [0.5, 0.25, 1.25], B [1, 0, 1.25].
    counts = np.array([[0, 1], [0, 0], [3, 7]], dtype=np.uint32)
    target = target_of(counts)
    np.testing.assert_array_equal(target, [0.0, 0.5, 2.5])
    np.testing.assert_array_equal(
        quantile_normalize_block(counts, target), [[0.25, 0.5], [0.25, 0.0], [2.5, 2.5]]
    )
    np.testing.assert_array_equal(
        normalize_block(counts, target, np.array([500.0, 1000.0, 2000.0])),
        [[0.5, 1.0], [0.25, 0.0], [1.25, 1.25]],
    )


def test_frozen_target_columns_alone_equal_columns_inside_a_bigger_block():
    # 3,000 genes x 200 samples spans several internal chunks, so chunk boundaries differ
    # between the big block and the pieces.
    counts = negative_binomial_counts(3000, 200, seed=14)
    target = target_of(negative_binomial_counts(3000, 100, seed=15))
    whole = quantile_normalize_block(counts, target)
    for column in (0, 1, 99, 150, 199):
        alone = quantile_normalize_block(counts[:, [column]], target)
        assert np.array_equal(alone[:, 0], whole[:, column])
    piece = quantile_normalize_block(counts[:, 57:143], target)
    assert np.array_equal(piece, whole[:, 57:143])
    shuffled_order = np.random.default_rng(16).permutation(200)
    shuffled = quantile_normalize_block(counts[:, shuffled_order], target)
    assert np.array_equal(shuffled, whole[:, shuffled_order])


def test_result_does_not_depend_on_the_internal_chunk_size(monkeypatch):
    counts = negative_binomial_counts(300, 40, seed=17)
    target = target_of(counts)
    monkeypatch.setattr(quantile_norm, "_VALUES_PER_CHUNK", 1)  # one column per chunk
    one_column_chunks = quantile_normalize_block(counts, target)
    monkeypatch.setattr(quantile_norm, "_VALUES_PER_CHUNK", 10**9)  # a single chunk
    assert np.array_equal(quantile_normalize_block(counts, target), one_column_chunks)


def test_other_integer_dtypes_give_the_same_result_as_uint32():
    counts = negative_binomial_counts(200, 10, seed=18)
    target = target_of(counts)
    expected = quantile_normalize_block(counts, target)
    for dtype in (np.int64, np.uint16, np.int32):
        assert np.array_equal(quantile_normalize_block(counts.astype(dtype), target), expected)


def test_counts_up_to_the_uint32_maximum_are_ranked_correctly():
    rng = np.random.default_rng(19)
    counts = rng.integers(0, np.iinfo(np.uint32).max, size=(100, 6), dtype=np.uint32)
    counts[:5, 0] = np.iinfo(np.uint32).max  # tied at the very top
    counts[5:9, 1] = 0
    normalized = quantile_normalize_block(counts, target_of(counts))
    np.testing.assert_allclose(
        normalized, reference_quantile_normalization(counts), rtol=0, atol=TOLERANCE
    )


@pytest.mark.parametrize(
    ("n_genes", "n_samples", "seed"),
    [(1, 1, 0), (1, 5, 1), (2, 1, 2), (7, 3, 3), (64, 64, 4), (257, 9, 5), (1000, 33, 6)],
)
def test_randomized_shapes_against_the_references(n_genes, n_samples, seed):
    counts = negative_binomial_counts(n_genes, n_samples, seed)
    rng = np.random.default_rng(seed)
    counts[:, rng.integers(n_samples)] = 0  # an all-zero sample: one run over every rank
    counts[:, rng.integers(n_samples)] = 5  # a constant sample
    target = target_of(counts)
    np.testing.assert_allclose(target, reference_target(counts), rtol=0, atol=TOLERANCE)
    normalized = quantile_normalize_block(counts, target)
    assert normalized.shape == (n_genes, n_samples) and normalized.dtype == np.float64
    np.testing.assert_allclose(
        normalized, reference_quantile_normalization(counts), rtol=0, atol=TOLERANCE
    )
    split = max(1, n_samples // 3)
    np.testing.assert_array_equal(target_of(counts[:, split:], counts[:, :split]), target)
    assert np.array_equal(
        quantile_normalize_block(counts[:, :split], target), normalized[:, :split]
    )


def test_empty_block_gives_an_empty_result():
    target = target_of(negative_binomial_counts(10, 3, seed=20))
    empty = np.zeros((10, 0), dtype=np.uint32)
    assert quantile_normalize_block(empty, target).shape == (10, 0)
    accumulator = TargetAccumulator(n_genes=10)
    accumulator.add_block(empty)
    assert accumulator.n_samples == 0


# --- length adjustment ------------------------------------------------------------------------


@pytest.fixture
def normalized_and_lengths():
    counts = negative_binomial_counts(150, 12, seed=21)
    normalized = quantile_normalize_block(counts, target_of(counts))
    lengths = np.random.default_rng(22).uniform(100, 50_000, size=150)
    return counts, normalized, lengths


def test_divide_by_length_in_kilobases(normalized_and_lengths):
    _, normalized, lengths = normalized_and_lengths
    expected = normalized / (lengths[:, None] / 1000)
    np.testing.assert_array_equal(adjust_for_length(normalized, lengths), expected)
    np.testing.assert_array_equal(adjust_for_length(normalized, lengths, "divide"), expected)


def test_subtract_log2_length_in_kilobases(normalized_and_lengths):
    _, normalized, lengths = normalized_and_lengths
    expected = normalized - np.log2(lengths[:, None] / 1000)
    np.testing.assert_array_equal(adjust_for_length(normalized, lengths, "subtract_log2"), expected)


def test_no_length_adjustment_returns_an_unchanged_copy(normalized_and_lengths):
    _, normalized, lengths = normalized_and_lengths
    unchanged = adjust_for_length(normalized, lengths, "none")
    np.testing.assert_array_equal(unchanged, normalized)
    assert not np.shares_memory(unchanged, normalized)


def test_adjustment_does_not_modify_its_input(normalized_and_lengths):
    _, normalized, lengths = normalized_and_lengths
    before = normalized.copy()
    adjust_for_length(normalized, lengths, "divide")
    np.testing.assert_array_equal(normalized, before)


@pytest.mark.parametrize("method", ["divide", "subtract_log2", "none"])
def test_normalize_block_chains_the_three_steps(normalized_and_lengths, method):
    counts, normalized, lengths = normalized_and_lengths
    target = target_of(counts)
    np.testing.assert_array_equal(
        normalize_block(counts, target, lengths, method),
        adjust_for_length(normalized, lengths, method),
    )


# --- input validation -------------------------------------------------------------------------


def test_counts_must_be_a_two_dimensional_integer_array():
    target = np.zeros(3)
    with pytest.raises(ValueError, match="2-dimensional"):
        quantile_normalize_block(np.zeros(3, dtype=np.uint32), target)
    with pytest.raises(ValueError, match="2-dimensional"):
        quantile_normalize_block(np.zeros((3, 2, 1), dtype=np.uint32), target)
    with pytest.raises(ValueError, match="integer"):
        quantile_normalize_block(np.zeros((3, 2)), target)
    with pytest.raises(ValueError, match=r"\[0, 4294967295\]"):
        quantile_normalize_block(np.array([[1], [-1], [2]]), target)
    with pytest.raises(ValueError, match="2-dimensional"):
        TargetAccumulator(n_genes=3).add_block(np.zeros(3, dtype=np.uint32))


def test_target_must_match_the_genes_and_be_sorted_and_finite():
    counts = np.zeros((3, 2), dtype=np.uint32)
    with pytest.raises(ValueError, match="target has 4 values but the block has 3 genes"):
        quantile_normalize_block(counts, np.zeros(4))
    with pytest.raises(ValueError, match="1-dimensional"):
        quantile_normalize_block(counts, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="non-decreasing"):
        quantile_normalize_block(counts, np.array([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="finite"):
        quantile_normalize_block(counts, np.array([0.0, 1.0, np.nan]))


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ([1000.0, np.nan, 500.0], "finite"),
        ([1000.0, np.inf, 500.0], "finite"),
        ([1000.0, -5.0, 500.0], "positive"),
        ([1000.0, 0.0, 500.0], "positive"),
        ([1000.0, 500.0], "2 values but there are 3 genes"),
    ],
)
def test_lengths_must_be_finite_positive_and_one_per_gene(lengths, message):
    counts = np.array([[0, 1], [0, 0], [3, 7]], dtype=np.uint32)
    target = target_of(counts)
    with pytest.raises(ValueError, match=message):
        normalize_block(counts, target, np.array(lengths))
    with pytest.raises(ValueError, match=message):
        adjust_for_length(np.ones((3, 2)), np.array(lengths))


def test_unknown_length_adjustment_is_rejected():
    counts = np.array([[0, 1], [0, 0], [3, 7]], dtype=np.uint32)
    with pytest.raises(ValueError, match="unknown length adjustment 'tpm'"):
        normalize_block(counts, target_of(counts), np.ones(3), method="tpm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown length adjustment"):
        adjust_for_length(np.ones((3, 2)), np.ones(3), method="log")  # type: ignore[arg-type]


def test_accumulator_checks_gene_counts_and_emptiness():
    accumulator = TargetAccumulator(n_genes=3)
    with pytest.raises(ValueError, match="no samples"):
        accumulator.target()
    with pytest.raises(ValueError, match="block has 4 genes"):
        accumulator.add_block(np.zeros((4, 2), dtype=np.uint32))
    with pytest.raises(ValueError, match="cannot merge accumulators over 3 and 5 genes"):
        accumulator.merge(TargetAccumulator(n_genes=5))
    with pytest.raises(ValueError, match="sum_high must have shape"):
        TargetAccumulator(n_genes=3, n_samples=1, sum_high=np.zeros(2), sum_low=np.zeros(3))
