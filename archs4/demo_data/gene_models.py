"""Transcript models of the demo's genes and where the genes sit on their chromosomes.

:func:`_gene_model` draws one gene's transcripts (exon offsets from the gene start, CDS in
spliced coordinates): a canonical transcript and alternative ones with cassette exons,
alternative promoters, retained introns and earlier polyA sites, as GENCODE annotates them.
:func:`_place_genes` lays the genes out along each chromosome. Why: the pipeline derives gene
lengths from the GTF (longest transcript's exonic length), so the GTF must have the overlapping
exons and transcript variety of a real annotation, and the counts are drawn in proportion to
the same lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from archs4.demo_data.tables import _CHROMOSOMES, _MITOCHONDRIAL


@dataclass(frozen=True)
class TranscriptModel:
    """One transcript: exons as (start, end) offsets from the gene start, ascending, inclusive."""

    biotype: str
    exons: tuple[tuple[int, int], ...]
    cds: tuple[int, int] | None  # CDS as [start, end) in spliced, 5'->3' coordinates

    @property
    def exonic_length(self) -> int:
        return sum(end - start + 1 for start, end in self.exons)


_SINGLE_EXON_BIOTYPES = frozenset(
    {"processed_pseudogene", "misc_RNA", "snRNA", "snoRNA", "miRNA", "Mt_rRNA"}
)
_ALTERNATIVE_TRANSCRIPT_TYPES = (
    "protein_coding",
    "retained_intron",
    "nonsense_mediated_decay",
    "protein_coding_CDS_not_defined",
)
_PAR1_END = 2_781_479  # GRCh38: PAR1 spans chrX/chrY 10,001-2,781,479 on both


def _gene_model(
    biotype: str, rng: np.random.Generator, mitochondrial_length: int | None = None
) -> tuple[TranscriptModel, ...]:
    """Transcripts of one gene: candidate exons laid out along the gene, a canonical transcript
    skipping the cassette exons, and alternative ones that include some of them, skip others,
    retain an intron or end at an earlier polyA site. Offsets are in transcription order
    (0 = transcription start); `_place_genes` never needs to know the strand."""
    if mitochondrial_length is not None:
        return (TranscriptModel(biotype, ((0, mitochondrial_length - 1),), None),)
    if biotype in _SINGLE_EXON_BIOTYPES:
        length = _single_exon_length(biotype, rng)
        return (TranscriptModel(biotype, ((0, length - 1),), None),)
    n_candidates, n_transcripts = _exon_and_transcript_numbers(biotype, rng)
    candidates, cassette = _candidate_exons(n_candidates, rng)
    chosen = _transcript_exons(candidates, cassette, n_transcripts, rng)
    models = []
    for k, exons in enumerate(chosen):
        kind = biotype
        if biotype == "protein_coding" and k > 0:
            kind = str(rng.choice(_ALTERNATIVE_TRANSCRIPT_TYPES, p=[0.55, 0.2, 0.1, 0.15]))
        models.append(TranscriptModel(kind, tuple(exons), _cds(kind, exons, rng)))
    return tuple(models)


def _single_exon_length(biotype: str, rng: np.random.Generator) -> int:
    """Length of a single-exon gene. Every range is drawn, whatever the biotype, so each such
    gene takes the same draws from the stream (the generated data depend on it)."""
    return {
        "processed_pseudogene": int(rng.integers(300, 2000)),
        "misc_RNA": int(rng.integers(80, 350)),
        "snRNA": int(rng.integers(100, 200)),
        "snoRNA": int(rng.integers(70, 250)),
        "miRNA": int(rng.integers(60, 110)),
    }.get(biotype, int(rng.integers(100, 1000)))


def _exon_and_transcript_numbers(biotype: str, rng: np.random.Generator) -> tuple[int, int]:
    """How many candidate exons a multi-exon gene lays out, and how many transcripts it tries."""
    if biotype == "protein_coding":
        n_candidates = int(np.clip(1 + rng.poisson(7), 1, 18))
        n_transcripts = int(np.clip(1 + rng.binomial(5, 0.4), 1, 6))
    elif biotype == "lncRNA":
        n_candidates = int(rng.integers(1, 7))
        n_transcripts = int(rng.integers(1, 4))
    else:
        n_candidates = int(rng.integers(1, 5))
        n_transcripts = 1
    return n_candidates, n_transcripts


def _candidate_exons(
    n_candidates: int, rng: np.random.Generator
) -> tuple[list[tuple[int, int]], set[int]]:
    """Candidate exons as (start, end) offsets separated by introns, the last one carrying the
    3' UTR, and which internal ones are cassette exons (skipped by the canonical transcript)."""
    exon_lengths = np.clip(rng.lognormal(np.log(140), 0.5, n_candidates), 40, 2000).astype(int)
    exon_lengths[0] = int(rng.integers(80, 400))
    exon_lengths[-1] = int(np.clip(rng.lognormal(np.log(1000), 0.7), 150, 8000))  # 3' UTR
    introns = np.clip(rng.lognormal(np.log(1500), 1.2, n_candidates), 80, 60_000).astype(int)
    starts = np.concatenate(([0], np.cumsum(exon_lengths[:-1] + introns[:-1])))
    candidates = [(int(s), int(s + n - 1)) for s, n in zip(starts, exon_lengths, strict=True)]
    internal = np.arange(1, n_candidates - 1)
    cassette = set(internal[rng.random(internal.size) < 0.2].tolist())
    return candidates, cassette


def _transcript_exons(
    candidates: Sequence[tuple[int, int]],
    cassette: set[int],
    n_transcripts: int,
    rng: np.random.Generator,
) -> list[list[tuple[int, int]]]:
    """Exons of each distinct transcript, the canonical one first (at most 15 exons each)."""
    n_candidates = len(candidates)
    canonical = [i for i in range(n_candidates) if i not in cassette][:15]
    chosen: list[list[tuple[int, int]]] = [[candidates[i] for i in canonical]]
    for _ in range(n_transcripts - 1):
        keep = [
            i
            for i in range(n_candidates)
            if rng.random() < (0.5 if i in cassette else 0.8) or i in (0, n_candidates - 1)
        ]
        first = int(rng.integers(0, max(1, len(keep) // 3)))  # alternative promoter
        exons = [candidates[i] for i in keep[first:]][:15]
        if len(exons) > 2 and rng.random() < 0.25:  # retained intron
            at = int(rng.integers(0, len(exons) - 1))
            exons[at : at + 2] = [(exons[at][0], exons[at + 1][1])]
        if rng.random() < 0.3:  # earlier polyA site shortens the last exon
            start, end = exons[-1]
            exons[-1] = (start, start + max(30, int((end - start) * rng.uniform(0.2, 0.8))))
        if exons not in chosen:
            chosen.append(exons)
    return chosen


def _cds(
    kind: str, exons: Sequence[tuple[int, int]], rng: np.random.Generator
) -> tuple[int, int] | None:
    """CDS of a coding or NMD transcript long enough to hold one, in spliced coordinates."""
    spliced = sum(end - start + 1 for start, end in exons)
    if kind not in ("protein_coding", "nonsense_mediated_decay") or spliced <= 400:
        return None
    cds_start = int(rng.integers(30, 150))
    cds_end = cds_start + 3 * ((spliced - cds_start - int(rng.integers(60, 200))) // 3)
    return (cds_start, cds_end) if cds_end - cds_start >= 90 else None


def _place_genes(
    chroms: Sequence[str],
    symbols: Sequence[str],
    transcripts: Sequence[tuple[TranscriptModel, ...]],
    pseudoautosomal: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """1-based gene starts: genes laid out one after another with intergenic gaps, in random
    order per chromosome; pseudo-autosomal genes first on chrX (inside PAR1, where their chrY
    copies get the same coordinates), mitochondrial genes in their chrM order."""
    spans = np.array([max(end for t in ts for _, end in t.exons) + 1 for ts in transcripts])
    starts = np.zeros(len(chroms), dtype=np.int64)
    for chrom in _CHROMOSOMES:
        genes = [g for g, c in enumerate(chroms) if c == chrom]
        if not genes:
            continue
        if chrom == "chrM":
            mitochondrial_order = list(_MITOCHONDRIAL)
            genes.sort(key=lambda g: mitochondrial_order.index(symbols[g]))
            cursor = 577  # the 15 genes (~14 kb) fit in chrM's 16,569 bp
            for gene in genes:
                starts[gene] = cursor
                cursor += spans[gene] + int(rng.integers(1, 60))
            continue
        genes = [genes[i] for i in rng.permutation(len(genes))]
        genes.sort(key=lambda g: not pseudoautosomal[g])
        cursor = 60_000 + int(rng.integers(0, 100_000))
        for gene in genes:
            if chrom in ("chrX", "chrY") and not pseudoautosomal[gene]:
                cursor = max(cursor, _PAR1_END + 20_000)
            starts[gene] = cursor
            gap = rng.lognormal(np.log(15_000), 1.0)
            if pseudoautosomal[gene]:
                gap = min(gap, 20_000.0)  # stay inside PAR1
            cursor += spans[gene] + int(gap)
    return starts
