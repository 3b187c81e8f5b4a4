"""Random streams of the demo generator: one ``numpy`` generator per (seed, purpose[, index]).

Why: every random quantity of the demo comes from its own stream keyed by (seed, purpose[,
study or sample index]), never by Python's ``hash``, so the data are the same in every process,
adding draws to one purpose leaves the others alone, and a sample's counts do not depend on
the block it is generated in.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class _Stream(IntEnum):
    """One independent random stream per purpose, so adding draws to one leaves others alone."""

    STUDIES = 1
    GENES = 2
    GENE_MODELS = 3
    GTF_IDS = 4
    PROGRAMS = 5
    BIOSOURCE_EFFECT = 6
    STUDY_EFFECT = 7
    STUDY_TEXT = 8
    SAMPLE_COUNTS = 9
    DOWNLOAD_LISTS = 10
    QC_FIELDS = 11


def _rng(seed: int, stream: _Stream, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(stream), *index])
