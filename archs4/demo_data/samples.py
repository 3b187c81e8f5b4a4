"""The sample plan: the demo's studies, their samples and each sample's true labels.

:func:`plan_samples` draws studies of heavy-tailed size, gives each study one or two
biosources so that label frequencies follow the shares of ``assets/demo/labels.yaml``, and
draws accession numbers, SuperSeries, dates, conditions, donor sex and library sizes. Why:
label prediction needs a known truth to be scored against, with the imbalance, multi-hot
labels, uninformative metadata and low-quality libraries of the real compendium. Every field
of :class:`SamplePlan` is a per-sample or per-study vector, so the plan stays small.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from archs4.demo_data.biosources import _LABEL_INDEX, BIOSOURCES
from archs4.demo_data.realism import DEFAULT_REALISM
from archs4.demo_data.streams import _rng, _Stream
from archs4.demo_data.tables import (
    _FEMALE_LINE_LABELS,
    _LABEL_SHARE,
    _MALE_LINE_LABELS,
    ALL_LABELS,
)

_LOW_QUALITY_FRACTION = 0.02
_MULTI_SERIES_FRACTION = 0.03
_UNINFORMATIVE_STUDY_PROBABILITY = 0.22
_UNINFORMATIVE_SAMPLE_PROBABILITY = 0.03
_SINGLE_CELL_STUDY_PROBABILITY = 0.04


@dataclass(frozen=True)
class SamplePlan:
    """Who every sample is: its study, biosource(s), condition and true labels. Every field is
    a per-sample or per-study vector, so the plan stays small whatever the size."""

    gsm: list[str]
    study: np.ndarray  # study index of each sample; samples of a study are contiguous
    biosource: np.ndarray  # index into BIOSOURCES
    condition: np.ndarray  # 0 control, 1 perturbed (treatment, knockdown or disease)
    male: np.ndarray
    named_in_metadata: np.ndarray  # the metadata text names the sample's tissue / cell line
    depth: np.ndarray  # library size relative to a typical library (median ~1)
    study_gse: list[str]
    study_superseries: list[str]  # "" or the GSE of a SuperSeries the study belongs to
    study_start: np.ndarray  # first sample of each study
    study_size: np.ndarray
    study_submitted: list[date]
    study_single_cell: np.ndarray

    @property
    def n_samples(self) -> int:
        return len(self.gsm)

    def series_id(self, sample: int) -> str:
        study = int(self.study[sample])
        superseries = self.study_superseries[study]
        own = self.study_gse[study]
        return f"{own},{superseries}" if superseries else own

    def labels_of(self, sample: int) -> tuple[str, ...]:
        return BIOSOURCES[int(self.biosource[sample])].labels

    def label_matrix(self) -> np.ndarray:
        """Multi-hot truth, samples x ALL_LABELS."""
        per_source = np.zeros((len(BIOSOURCES), len(ALL_LABELS)), dtype=bool)
        for b, source in enumerate(BIOSOURCES):
            per_source[b, [_LABEL_INDEX[label] for label in source.labels]] = True
        return per_source[self.biosource]


def plan_samples(
    n_samples: int, seed: int, max_study_share: float = DEFAULT_REALISM.max_study_share
) -> SamplePlan:
    """Studies of heavy-tailed size, their biosources (so that label frequencies follow
    `_LABEL_SHARE`, no study taking over `max_study_share` of a label's samples), accession
    numbers, dates, conditions and library sizes."""
    rng = _rng(seed, _Stream.STUDIES)
    sizes = _study_sizes(n_samples, rng)
    n_studies = sizes.size
    sources, informative = _assign_biosources(sizes, rng, max_study_share)
    study_start = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    study = np.repeat(np.arange(n_studies), sizes)

    biosource = np.empty(n_samples, dtype=np.int32)
    condition = np.zeros(n_samples, dtype=np.int8)
    for s in range(n_studies):
        first, size = int(study_start[s]), int(sizes[s])
        split = first + (size + 1) // 2  # a second biosource takes the second half
        biosource[first:split] = sources[s][0]
        biosource[split : first + size] = sources[s][-1]
        if rng.random() < 0.7:  # the other studies profile a single condition
            replicates = int(rng.integers(1, 5))
            condition[first : first + size] = (np.arange(size) // replicates) % 2
    male = _sample_sex(biosource, rng)
    named = np.repeat(informative, sizes) & (
        rng.random(n_samples) >= _UNINFORMATIVE_SAMPLE_PROBABILITY
    )

    depth = np.repeat(rng.normal(0.0, 0.45, n_studies), sizes) + rng.normal(0.0, 0.3, n_samples)
    low_quality = rng.random(n_samples) < _LOW_QUALITY_FRACTION
    tiny = np.exp(rng.uniform(np.log(5e-4), np.log(1e-2), n_samples))
    depth = np.exp(depth) * np.where(low_quality, tiny, 1.0)

    gsm_numbers = _accession_numbers(sizes, rng)
    # GSE numbers stay in the real range (~10,000-250,000) whatever the number of studies;
    # all even, so a SuperSeries can take the odd number after one
    gse_gap = max(2, 120_000 // n_studies)
    gse_numbers = 10_000 + np.cumsum(rng.integers(1, gse_gap, n_studies) * 2)
    superseries = _superseries(sizes, gse_numbers, rng)
    first_day = date(2011, 1, 3)
    span = (date(2024, 6, 28) - first_day).days
    days = np.sort(rng.integers(0, span, n_studies))
    return SamplePlan(
        gsm=[f"GSM{number}" for number in gsm_numbers],
        study=study,
        biosource=biosource,
        condition=condition,
        male=male,
        named_in_metadata=named,
        depth=depth,
        study_gse=[f"GSE{number}" for number in gse_numbers],
        study_superseries=superseries,
        study_start=study_start,
        study_size=sizes,
        study_submitted=[first_day + timedelta(days=int(d)) for d in days],
        study_single_cell=rng.random(n_studies) < _SINGLE_CELL_STUDY_PROBABILITY,
    )


def label_sample_counts(plan: SamplePlan) -> dict[str, int]:
    """Number of samples carrying each label."""
    return dict(zip(ALL_LABELS, plan.label_matrix().sum(axis=0).tolist(), strict=True))


def _study_sizes(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Log-normal sizes: most studies have 2-20 samples, ~1 % have 100 or more."""
    cap = max(2, n_samples // 8)
    sizes: list[int] = []
    total = 0
    while total < n_samples:
        size = int(np.clip(round(np.exp(rng.normal(1.6, 1.3))), 2, cap))
        size = min(size, n_samples - total)
        sizes.append(size)
        total += size
    if len(sizes) > 1 and sizes[-1] < 2:  # no one-sample study at the end: merge it
        last = sizes.pop()
        sizes[-1] += last
    return np.array(sizes, dtype=np.int64)


def _assign_biosources(
    sizes: np.ndarray, rng: np.random.Generator, max_study_share: float = 1.0
) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Biosources of each study, filling per-label quotas: the largest studies go first, each to
    a label with room for it (chance in proportion to the room left). Returns the biosources
    and whether each study's metadata names them; the largest study of each label always does,
    so every label is discoverable from metadata."""
    share = np.array([_LABEL_SHARE[label] for label in ALL_LABELS])
    room = share / share.sum() * sizes.sum()
    largest_study = max_study_share * room if max_study_share < 1.0 else np.full_like(room, np.inf)
    by_label = [[b for b, s in enumerate(BIOSOURCES) if label in s.labels] for label in ALL_LABELS]
    named_label = np.zeros(len(ALL_LABELS), dtype=bool)
    sources: list[tuple[int, ...]] = [()] * sizes.size
    informative = np.ones(sizes.size, dtype=bool)
    for study in np.argsort(-sizes, kind="stable"):
        size = int(sizes[study])
        fits = np.flatnonzero((room >= 0.5 * size) & (size <= largest_study))
        if fits.size:
            label = int(rng.choice(fits, p=room[fits] / room[fits].sum()))
        else:
            label = int(np.argmax(room))
        candidates = by_label[label]
        # Earlier entries are the commonly used ones (MCF7 before SUM159); two-label sources
        # are rarer than single-label ones.
        weights = np.array([
            0.35 if len(BIOSOURCES[b].labels) > 1 else 1.0 / (rank + 1) ** 0.7
            for rank, b in enumerate(candidates)
        ])  # fmt: skip
        picked = [candidates[rng.choice(len(candidates), p=weights / weights.sum())]]
        if size >= 4 and len(candidates) > 1 and rng.random() < 0.3:
            others = [b for b in candidates if b != picked[0]]
            picked.append(others[rng.integers(len(others))])
        sources[study] = tuple(picked)
        half = (size + 1) // 2
        for b, n in zip(picked, [half, size - half] if len(picked) > 1 else [size], strict=True):
            for name in BIOSOURCES[b].labels:
                room[_LABEL_INDEX[name]] -= n
        labels = [_LABEL_INDEX[name] for b in picked for name in BIOSOURCES[b].labels]
        informative[study] = rng.random() >= _UNINFORMATIVE_STUDY_PROBABILITY or not all(
            named_label[labels]
        )
        if informative[study]:
            named_label[labels] = True
    return sources, informative


def _sample_sex(biosource: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Donor sex for tissues; fixed per cell line (female lines for breast, cervix, ovary and
    placenta, male for prostate, alternating otherwise: `assets/demo/labels.yaml`)."""
    line_male = np.array([
        s.labels[0] in _MALE_LINE_LABELS
        or (s.labels[0] not in _FEMALE_LINE_LABELS and b % 2 == 1)
        for b, s in enumerate(BIOSOURCES)
    ])  # fmt: skip
    is_line = np.array([s.kind == "cell_line" for s in BIOSOURCES])
    donor_male = rng.random(biosource.size) < 0.5
    return np.where(is_line[biosource], line_male[biosource], donor_male)


def _accession_numbers(sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Increasing GSM numbers from 1,000,000: consecutive within a study (with rare skips),
    gaps between studies."""
    steps = np.ones(int(sizes.sum()), dtype=np.int64)
    steps[rng.random(steps.size) < 0.02] = 2
    study_first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    steps[study_first] = rng.integers(1, max(2, min(3000, 5_000_000 // sizes.size)), sizes.size)
    return 1_000_000 + np.cumsum(steps) - 1


def _superseries(sizes: np.ndarray, gse_numbers: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Pairs of consecutive studies grouped under a SuperSeries until ~3 % of the samples carry
    two GSE ids (ARCHS4 writes them comma-joined). A SuperSeries gets the odd number after the
    later study's (all study numbers are even), so it never collides."""
    superseries = [""] * sizes.size
    budget = round(_MULTI_SERIES_FRACTION * sizes.sum())
    for first in rng.permutation(max(0, sizes.size - 1)):
        pair_size = int(sizes[first] + sizes[first + 1])
        if budget <= 0:
            break
        if superseries[first] or superseries[first + 1] or pair_size > budget + 2:
            continue
        superseries[first] = superseries[first + 1] = f"GSE{gse_numbers[first + 1] + 1}"
        budget -= pair_size
    return superseries
