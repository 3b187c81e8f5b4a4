"""Quantile normalization of ARCHS4 count blocks against a frozen, streamed target.

What it computes (the contract of DESIGN.md, "Normalization"), for a block of raw Kallisto
gene counts in ARCHS4 orientation, shape ``(n_genes, n_samples_in_block)``, genes as rows and
samples as columns:

1. ``v = log2(count + 1)``.
2. Quantile normalization against a target: ``target[r]`` is the mean over all samples of the
   r-th smallest ``v`` of each sample. A sample's r-th smallest value maps to ``target[r]``;
   tied values all get the mean of the target over the ranks they occupy (the convention of
   the ``qnorm`` package and preprocessCore).
3. Length adjustment: ``divide`` (default) ``qn / (length_bp / 1000)``, ``subtract_log2``
   ``qn - log2(length_bp / 1000)``, or ``none``.

Why it is split the way it is. The compendium never fits in memory, so the target is built
by streaming over sample blocks with a :class:`TargetAccumulator` (one per block, merged in any
order), then frozen and stored as the ``qn_target`` asset. Every block, including the samples
of later releases, is then normalized against that frozen target with
:func:`normalize_block`. A sample's normalized values therefore depend only on its own counts
and the target, never on which other samples share its block: normalizing a block alone is
bit-identical, column by column, to normalizing it inside a bigger batch.

Exactness of the streamed target. For an integer count ``c``, ``log2(c + 1)`` is either 0
(``c == 0``) or at least 1, and every float64 at least 1 is an integer multiple of 2**-52. So
each log value is an exact fixed-point integer ``v * 2**52 < 2**58``, and the per-rank sums
are accumulated as exact integers (two int64 limbs, see :class:`TargetAccumulator`). Integer
addition is associative, so the accumulated sum, and the target derived from it, do not depend
on the block size, the block order or the order in which partial accumulators are merged. The
target is the exact per-rank mean correctly rounded to float64. This relies on ``np.log2``
returning the same float64 for the same input wherever the value sits in an array, which holds
for numpy's scalar and SIMD (masked tail) paths on one machine; a different machine or libm may
change the last bit of individual log values and hence of the target.

Speed. Ranks are computed on the integer counts rather than on their logs (``log2(c + 1)`` is
strictly increasing over uint32 counts, including in float64), by sorting one packed uint64 key
per value, ``count << 32 | gene_index``: a plain sort of integers is much faster than an
argsort of floats and returns the permutation for free. Tie runs (frequent: counts are integers
with many zeros) are found with one vectorized comparison of neighbours and averaged with
``np.add.reduceat``, the same arithmetic ``qnorm`` uses, so no Python loop runs per sample.
Blocks are processed a few columns at a time to keep the temporaries in cache and the extra
memory small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

LengthAdjustment = Literal["divide", "subtract_log2", "none"]

# Every log2(c + 1) of an integer count is 0 or >= 1; a float64 >= 1 is an integer multiple
# of 2**-52, so scaling by 2**52 turns each log value into an exact integer (< 2**58, as
# log2(2**32) = 32 = 2**5).
_FIXED_POINT_FRACTION_BITS = 52
# The fixed-point logs are split into a high and a low limb so that summing a block of any
# realistic size in int64 cannot overflow: the low limb is < 2**30 and the high one < 2**28,
# so a block sum overflows only past 2**33 samples, and the carried running sum only past
# 2**34 samples (ARCHS4 has ~10**6).
_LOW_LIMB_BITS = 30
_LOW_LIMB_MASK = (1 << _LOW_LIMB_BITS) - 1
# Gene indices and counts are packed into one uint64 sort key, so both must fit in 32 bits.
_MAX_COUNT = np.iinfo(np.uint32).max
_GENE_INDEX_MASK = np.uint64(0xFFFF_FFFF)
# Columns are processed in chunks of about this many values: small enough for the sort keys,
# run boundaries and tiled target of one chunk to stay in cache, large enough that the
# per-chunk Python overhead is negligible. Measured on 20,000 x 1,000 and 60,000 x 500 blocks:
# 2**18 values per chunk was the fastest, ~25% faster than 2**22 (about the whole block).
_VALUES_PER_CHUNK = 1 << 18


def log2p1(counts: np.ndarray) -> np.ndarray:
    """``log2(counts + 1)`` as float64, for non-negative integer (or float) counts of any shape.

    The addition is done in float64, so a uint32 count of 2**32 - 1 does not wrap to 0.
    """
    counts = np.asarray(counts)
    if not (np.issubdtype(counts.dtype, np.integer) or np.issubdtype(counts.dtype, np.floating)):
        raise ValueError(f"counts must be a numeric array, got dtype {counts.dtype}")
    values = counts.astype(np.float64)
    if values.size and not (np.all(np.isfinite(values)) and values.min() >= 0):
        raise ValueError("counts must be finite and non-negative")
    values += 1.0
    return np.log2(values, out=values)


def sorted_log_columns(counts: np.ndarray) -> np.ndarray:
    """Each column's ``log2(count + 1)`` sorted ascending, float64 of shape (G, B).

    The integer counts are sorted first (faster than sorting floats, and the log is
    monotonic, so the order is the same).
    """
    counts = _validated_counts(counts)
    samples_by_genes = np.ascontiguousarray(counts.T)
    samples_by_genes.sort(axis=1)
    return log2p1(samples_by_genes).T


@dataclass(eq=False)
class TargetAccumulator:
    """Running, exact, per-rank sum of the sorted log2(count + 1) vectors of every sample seen.

    ``add_block`` folds in a block of counts; ``merge`` combines accumulators built from
    disjoint sample blocks (for example one per Dagster partition, computed in parallel);
    ``target`` returns the frozen target, the per-rank mean.

    The sum is kept exactly, as the integer ``sum_high * 2**30 + sum_low`` in units of
    2**-52 per rank (see the module docstring for why log values of integer counts are exact
    fixed-point numbers). Consequently the target is bit-identical whatever the block sizes,
    the block order and the merge order, and ``target()`` is the exact mean correctly rounded
    to float64. The brief sketched a float64 ``sum_sorted`` field; that is available as a
    read-only property (the exact sum rounded to float64) for inspection, but the state that
    must be persisted to resume or merge is ``n_samples``, ``sum_high`` and ``sum_low``.

    Start an empty accumulator with ``TargetAccumulator(n_genes=G)``.
    """

    n_genes: int
    n_samples: int = 0
    # High limb of the exact per-rank sums, int64 (G,), in units of 2**(30 - 52).
    sum_high: np.ndarray = field(default=None)  # type: ignore[assignment]
    # Low limb, int64 (G,), in units of 2**-52; kept in [0, 2**30) by carrying into sum_high.
    sum_low: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if isinstance(self.n_genes, bool) or not isinstance(self.n_genes, (int, np.integer)):
            raise ValueError(f"n_genes must be an integer, got {self.n_genes!r}")
        if self.n_genes < 0:
            raise ValueError(f"n_genes must be non-negative, got {self.n_genes}")
        if self.n_samples < 0:
            raise ValueError(f"n_samples must be non-negative, got {self.n_samples}")
        if self.n_samples > 0 and (self.sum_high is None or self.sum_low is None):
            raise ValueError("an accumulator with samples needs its sum_high and sum_low limbs")
        self.n_genes = int(self.n_genes)
        self.n_samples = int(self.n_samples)
        self.sum_high = self._limb_or_zeros(self.sum_high, "sum_high")
        self.sum_low = self._limb_or_zeros(self.sum_low, "sum_low")

    def _limb_or_zeros(self, limb: np.ndarray | None, name: str) -> np.ndarray:
        if limb is None:
            return np.zeros(self.n_genes, dtype=np.int64)
        limb = np.array(limb, dtype=np.int64)  # a copy: the accumulator owns its state
        if limb.shape != (self.n_genes,):
            raise ValueError(f"{name} must have shape ({self.n_genes},), got {limb.shape}")
        return limb

    @property
    def sum_sorted(self) -> np.ndarray:
        """Per-rank sum of the sorted log values, float64 (G,): the exact sum, rounded once."""
        high = np.ldexp(
            self.sum_high.astype(np.float64), _LOW_LIMB_BITS - _FIXED_POINT_FRACTION_BITS
        )
        low = np.ldexp(self.sum_low.astype(np.float64), -_FIXED_POINT_FRACTION_BITS)
        return high + low

    def add_block(self, counts: np.ndarray) -> None:
        """Fold a (G, B) block of counts into the running sums (in place)."""
        counts = _validated_counts(counts)
        if counts.shape[0] != self.n_genes:
            raise ValueError(
                f"block has {counts.shape[0]} genes (rows), the accumulator expects {self.n_genes}"
            )
        n_block_samples = counts.shape[1]
        for columns in _column_chunks(self.n_genes, n_block_samples):
            sorted_counts = np.ascontiguousarray(counts[:, columns].T)
            sorted_counts.sort(axis=1)
            fixed_point_logs = np.ldexp(log2p1(sorted_counts), _FIXED_POINT_FRACTION_BITS)
            fixed_point_logs = fixed_point_logs.astype(np.int64)
            self.sum_high += (fixed_point_logs >> _LOW_LIMB_BITS).sum(axis=0)
            self.sum_low += (fixed_point_logs & _LOW_LIMB_MASK).sum(axis=0)
            self._carry()
        self.n_samples += n_block_samples

    def merge(self, other: TargetAccumulator) -> TargetAccumulator:
        """A new accumulator holding the samples of both (neither input is modified)."""
        if not isinstance(other, TargetAccumulator):
            raise ValueError(f"can only merge a TargetAccumulator, got {type(other).__name__}")
        if other.n_genes != self.n_genes:
            raise ValueError(
                f"cannot merge accumulators over {self.n_genes} and {other.n_genes} genes"
            )
        merged = TargetAccumulator(
            n_genes=self.n_genes,
            n_samples=self.n_samples + other.n_samples,
            sum_high=self.sum_high + other.sum_high,
            sum_low=self.sum_low + other.sum_low,
        )
        merged._carry()
        return merged

    def target(self) -> np.ndarray:
        """The frozen target, float64 (G,), non-decreasing: the per-rank mean of the sorted logs.

        Each value is the exact mean correctly rounded (Python's int / int true division is
        correctly rounded); rounding is monotonic, so the target stays non-decreasing.
        """
        if self.n_samples == 0:
            raise ValueError("cannot compute a target from an accumulator with no samples")
        denominator = self.n_samples << _FIXED_POINT_FRACTION_BITS
        exact_means = [
            ((high << _LOW_LIMB_BITS) + low) / denominator
            for high, low in zip(self.sum_high.tolist(), self.sum_low.tolist(), strict=True)
        ]
        return np.array(exact_means, dtype=np.float64)

    def _carry(self) -> None:
        # Keep the low limb small so that the next block sum cannot overflow it.
        self.sum_high += self.sum_low >> _LOW_LIMB_BITS
        self.sum_low &= _LOW_LIMB_MASK


def quantile_normalize_block(counts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Quantile-normalize each column's ``log2(count + 1)`` onto a frozen target.

    ``counts`` is a (G, B) integer block, ``target`` a non-decreasing float64 (G,) vector
    (usually ``TargetAccumulator.target()``). Returns float64 (G, B): a value of rank r gets
    ``target[r]``; tied values get the mean of the target over their ranks, computed exactly
    as ``qnorm`` does (``np.add.reduceat`` over the run, divided by its length). Each column
    is computed independently from its own counts and the target only.

    The result is Fortran-ordered (each sample's column is contiguous), the layout the
    computation produces; use ``np.ascontiguousarray`` if row-major order is needed.
    """
    counts = _validated_counts(counts)
    n_genes, n_samples = counts.shape
    target = _validated_target(target, n_genes)
    # Samples as rows while computing, so each sample's values are contiguous.
    normalized = np.empty((n_samples, n_genes), dtype=np.float64)
    gene_index = np.arange(n_genes, dtype=np.uint64)
    for columns in _column_chunks(n_genes, n_samples):
        _normalize_columns_into(counts[:, columns], target, gene_index, normalized[columns])
    return normalized.T


def _normalize_columns_into(
    counts: np.ndarray, target: np.ndarray, gene_index: np.ndarray, out: np.ndarray
) -> None:
    """Normalize a (G, b) chunk of counts into ``out``, a C-contiguous (b, G) float64 view."""
    n_columns, n_genes = out.shape
    if n_columns == 0 or n_genes == 0:
        return
    # One sort of packed integer keys gives each sample's counts in order and, in the low 32
    # bits, the gene each sorted value came from. Equal counts are ordered by gene index,
    # which does not matter: tied values all receive the same value.
    keys = counts.T.astype(np.uint64, order="C")
    keys <<= np.uint64(32)
    keys |= gene_index
    keys.sort(axis=1)

    sorted_counts = keys >> np.uint64(32)
    is_run_start = np.empty((n_columns, n_genes), dtype=bool)
    is_run_start[:, 0] = True  # also separates the samples in the flattened view below
    np.not_equal(sorted_counts[:, 1:], sorted_counts[:, :-1], out=is_run_start[:, 1:])
    del sorted_counts
    run_starts = np.flatnonzero(is_run_start)
    run_lengths = np.diff(run_starts, append=is_run_start.size)
    del is_run_start

    # Tile the target into ``out`` (it is overwritten by the scatter below) so one reduceat
    # sums every tie run of every sample. This is qnorm's arithmetic (sequential per-run sum
    # over target[start:end], then / length), so ties match it exactly, singletons get
    # target[r] exactly, and a run's mean depends only on its rank range.
    out[:] = target
    flat_out = out.reshape(-1)
    if run_starts.size == flat_out.size:
        value_by_rank = flat_out.copy()  # no ties at all: rank r simply maps to target[r]
    else:
        run_means = np.add.reduceat(flat_out, run_starts)
        run_means /= run_lengths
        value_by_rank = np.repeat(run_means, run_lengths)

    # Scatter each rank's value back to the gene it came from.
    keys &= _GENE_INDEX_MASK
    keys += (np.arange(n_columns, dtype=np.uint64) * np.uint64(n_genes))[:, None]
    flat_out[keys.view(np.int64).reshape(-1)] = value_by_rank


def adjust_for_length(
    qn: np.ndarray, length_bp: np.ndarray, method: LengthAdjustment = "divide"
) -> np.ndarray:
    """Adjust normalized values (G, B) for gene length (G,), returning a new float64 array.

    ``divide``: ``qn / (length_bp / 1000)``; ``subtract_log2``: ``qn - log2(length_bp / 1000)``
    (the log of expression per kilobase); ``none``: ``qn`` unchanged (as a copy). Genes without
    a length must be dropped by the caller: every length must be finite and positive.
    """
    qn = np.asarray(qn)
    if qn.ndim != 2:
        raise ValueError(f"qn must be 2-dimensional (genes, samples), got {qn.ndim} dimensions")
    adjusted = qn.astype(np.float64, copy=True)
    _adjust_for_length_in_place(adjusted, length_bp, method)
    return adjusted


def _adjust_for_length_in_place(
    values: np.ndarray, length_bp: np.ndarray, method: LengthAdjustment
) -> None:
    if method not in get_args(LengthAdjustment):
        raise ValueError(
            f"unknown length adjustment {method!r}; expected one of {get_args(LengthAdjustment)}"
        )
    length_kb = _validated_lengths(length_bp, values.shape[0]) / 1000.0
    if method == "divide":
        values /= length_kb[:, None]
    elif method == "subtract_log2":
        values -= np.log2(length_kb)[:, None]


def normalize_block(
    counts: np.ndarray,
    target: np.ndarray,
    length_bp: np.ndarray,
    method: LengthAdjustment = "divide",
) -> np.ndarray:
    """The pipeline's entry point: log2(count + 1), quantile normalization, length adjustment.

    ``counts`` (G, B) integer block of the genes that have a length, ``target`` the frozen
    float64 (G,) target over those same genes, ``length_bp`` float64 (G,) finite positive
    lengths. Returns float64 (G, B), Fortran-ordered (see :func:`quantile_normalize_block`).
    Identical to ``adjust_for_length(quantile_normalize_block(counts, target), length_bp,
    method)``, adjusted in place to save one copy of the block.
    """
    counts = _validated_counts(counts)
    # Validate everything before the expensive part.
    _validated_lengths(length_bp, counts.shape[0])
    if method not in get_args(LengthAdjustment):
        raise ValueError(
            f"unknown length adjustment {method!r}; expected one of {get_args(LengthAdjustment)}"
        )
    normalized = quantile_normalize_block(counts, target)
    _adjust_for_length_in_place(normalized, length_bp, method)
    return normalized


def _column_chunks(n_genes: int, n_samples: int) -> list[slice]:
    step = max(1, _VALUES_PER_CHUNK // max(n_genes, 1))
    return [slice(start, min(start + step, n_samples)) for start in range(0, n_samples, step)]


def _validated_counts(counts: np.ndarray) -> np.ndarray:
    """The block as an integer (G, B) array with counts in [0, 2**32); ValueError otherwise."""
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(
            f"counts must be 2-dimensional (genes, samples), got {counts.ndim} dimensions"
        )
    if not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(
            f"counts must be an integer array (ARCHS4 uses uint32), got {counts.dtype}"
        )
    if counts.dtype == np.uint32 or counts.size == 0:
        return counts
    if counts.min() < 0 or counts.max() > _MAX_COUNT:
        raise ValueError(f"counts must lie in [0, {_MAX_COUNT}] (uint32)")
    return counts.astype(np.uint32)


def _validated_target(target: np.ndarray, n_genes: int) -> np.ndarray:
    target = np.asarray(target, dtype=np.float64)
    if target.ndim != 1:
        raise ValueError(f"target must be 1-dimensional, got {target.ndim} dimensions")
    if target.shape[0] != n_genes:
        raise ValueError(
            f"target has {target.shape[0]} values but the block has {n_genes} genes (rows)"
        )
    if not np.all(np.isfinite(target)):
        raise ValueError("target must be finite")
    if np.any(np.diff(target) < 0):
        raise ValueError("target must be sorted in non-decreasing order (rank 1 first)")
    return target


def _validated_lengths(length_bp: np.ndarray, n_genes: int) -> np.ndarray:
    length_bp = np.asarray(length_bp, dtype=np.float64)
    if length_bp.ndim != 1:
        raise ValueError(f"length_bp must be 1-dimensional, got {length_bp.ndim} dimensions")
    if length_bp.shape[0] != n_genes:
        raise ValueError(
            f"length_bp has {length_bp.shape[0]} values but there are {n_genes} genes (rows)"
        )
    if not np.all(np.isfinite(length_bp)):
        raise ValueError(
            "length_bp must be finite; drop genes without a length (NaN/null) before normalizing"
        )
    if np.any(length_bp <= 0):
        raise ValueError("length_bp must be positive")
    return length_bp
