"""The demo's gene table: ids, symbols, biotypes, positions and transcripts of every gene.

:func:`build_gene_table` mixes real genes (label markers, housekeeping, mitochondrial,
sex-linked and pseudo-autosomal genes of ``assets/demo/genes.yaml``, so a person recognizes the
data) with generated HGNC-style ones that follow GENCODE's biotype mix. Why: the pipeline must
cope with what the real compendium has, so ~3 % of the genes share a symbol, ~2 % carry their
Ensembl id as symbol, ~3 % are missing from the GTF and ~1 % exist only in the GTF.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from archs4.demo_data.gene_models import TranscriptModel, _gene_model, _place_genes
from archs4.demo_data.streams import _rng, _Stream
from archs4.demo_data.tables import (
    _BIOTYPE_MIX,
    _CHROMOSOME_WEIGHT,
    _CHROMOSOMES,
    _FAMILY_SYMBOL,
    _HOUSEKEEPING,
    _KNOWN_GENES,
    _LABEL_MARKERS,
    _MITOCHONDRIAL,
    _OTHER_REAL,
    _PROLIFERATION,
    _PSEUDOAUTOSOMAL,
    _REAL_BIOTYPES,
    _SYMBOL_TEMPLATES,
    _TISSUE_CONTEXT,
    _Y_LINKED,
    ALL_LABELS,
)

_DUPLICATED_SYMBOL_FRACTION = 0.03
_PLACEHOLDER_SYMBOL_FRACTION = 0.02
_MISSING_FROM_GTF_FRACTION = 0.03
_GTF_ONLY_FRACTION = 0.01  # GENCODE has genes ARCHS4 lacks; the pipeline must ignore them


@dataclass(frozen=True)
class GeneTable:
    """The annotated genes: the first `n_h5` rows are the h5's genes in file order (sorted by
    Ensembl id); the rest exist only in the GTF."""

    n_h5: int
    ensembl_id: list[str]  # without version, as ARCHS4 stores it
    version: np.ndarray
    symbol: list[str]
    biotype: list[str]
    chrom: list[str]
    strand: list[str]
    start: np.ndarray  # 1-based genomic start of the gene
    transcripts: list[tuple[TranscriptModel, ...]]
    length_bp: np.ndarray  # exonic length of the longest transcript
    in_gtf: np.ndarray
    pseudoautosomal: np.ndarray  # also annotated on chrY as a `_PAR_Y` copy
    role: list[str]  # housekeeping / marker / proliferation / context / y_linked / ... / ""


def build_gene_table(n_genes: int, seed: int) -> GeneTable:
    """Genes with ids, symbols, biotypes, positions and transcript models."""
    rng = _rng(seed, _Stream.GENES)
    n_extra = round(_GTF_ONLY_FRACTION * n_genes)
    real = _real_gene_selection(n_genes)
    real_symbols = [symbol for symbol, _ in real]
    made_up_biotypes = _made_up_biotypes(real_symbols, n_genes - len(real) + n_extra, rng)
    symbols = real_symbols + _made_up_symbols(made_up_biotypes, real_symbols, rng)
    biotypes = [_REAL_BIOTYPES.get(s, "protein_coding") for s in real_symbols] + made_up_biotypes
    roles = [role for _, role in real] + [""] * len(made_up_biotypes)
    n_total = n_genes + n_extra
    ids = _ensembl_ids(symbols, rng)
    is_extra = np.zeros(n_total, dtype=bool)
    is_extra[n_genes:] = True
    _duplicate_and_placeholder_symbols(
        symbols, biotypes=biotypes, ids=ids, roles=roles, is_extra=is_extra, rng=rng
    )

    # h5 genes in Ensembl id order, then the GTF-only genes
    order = sorted(range(n_genes), key=lambda g: ids[g]) + list(range(n_genes, n_total))
    ids = [ids[g] for g in order]
    symbols = [symbols[g] for g in order]
    biotypes = [biotypes[g] for g in order]
    roles = [roles[g] for g in order]

    chroms = _chromosomes(symbols, roles, rng)
    model_rng = _rng(seed, _Stream.GENE_MODELS)
    transcripts = [
        _gene_model(biotype, model_rng, _MITOCHONDRIAL.get(symbol))
        for biotype, symbol in zip(biotypes, symbols, strict=True)
    ]
    strands = ["-" if flip else "+" for flip in model_rng.random(n_total) < 0.5]
    pseudoautosomal = np.array([s in _PSEUDOAUTOSOMAL for s in symbols], dtype=bool)
    starts = _place_genes(chroms, symbols, transcripts, pseudoautosomal, model_rng)
    in_gtf = np.ones(n_total, dtype=bool)
    droppable = np.flatnonzero(~pseudoautosomal[:n_genes])
    n_missing = min(round(_MISSING_FROM_GTF_FRACTION * n_genes), droppable.size)
    in_gtf[rng.choice(droppable, size=n_missing, replace=False)] = False
    return GeneTable(
        n_h5=n_genes,
        ensembl_id=ids,
        version=rng.integers(1, 20, size=n_total),
        symbol=symbols,
        biotype=biotypes,
        chrom=chroms,
        strand=strands,
        start=starts,
        transcripts=transcripts,
        length_bp=np.array([max(t.exonic_length for t in ts) for ts in transcripts], np.int64),
        in_gtf=in_gtf,
        pseudoautosomal=pseudoautosomal,
        role=roles,
    )


def _made_up_biotypes(
    real_symbols: Sequence[str], n_made_up: int, rng: np.random.Generator
) -> list[str]:
    """Biotypes of the generated genes, so that with the (mostly coding) real genes the whole
    table follows `_BIOTYPE_MIX`."""
    names = list(_BIOTYPE_MIX)
    real = Counter(_REAL_BIOTYPES.get(s, "protein_coding") for s in real_symbols)
    wanted = np.array([_BIOTYPE_MIX[b] for b in names]) * (len(real_symbols) + n_made_up)
    room = np.maximum(wanted - np.array([real[b] for b in names]), 0.0) + 1e-9
    return [names[i] for i in rng.choice(len(names), size=n_made_up, p=room / room.sum())]


def _real_gene_selection(n_genes: int) -> list[tuple[str, str]]:
    """(symbol, role) of the real genes used, at most half of the genes, most important first:
    pseudo-autosomal, mitochondrial, sex-linked, housekeeping, then label markers taken
    round-robin so every label keeps some when there is little room."""
    ordered: dict[str, str] = {}

    def take(symbols: Sequence[str], role: str) -> None:
        for symbol in symbols:
            ordered.setdefault(symbol, role)

    take(_PSEUDOAUTOSOMAL, "pseudoautosomal")
    take(list(_MITOCHONDRIAL), "mitochondrial")
    take(["XIST"], "x_inactivation")
    take(_Y_LINKED, "y_linked")
    take(_HOUSEKEEPING, "housekeeping")
    marker_lists = [_LABEL_MARKERS[label].split() for label in ALL_LABELS]
    for rank in range(max(len(markers) for markers in marker_lists)):
        take([markers[rank] for markers in marker_lists if rank < len(markers)], "marker")
    take(_PROLIFERATION, "proliferation")
    take(_TISSUE_CONTEXT, "context")
    take(_OTHER_REAL, "other")
    return list(ordered.items())[: n_genes // 2]


_MAX_SYMBOL_DRAWS = 50


def _made_up_symbols(
    biotypes: Sequence[str], real_symbols: Sequence[str], rng: np.random.Generator
) -> list[str]:
    """Unique HGNC-style symbols; antisense lncRNAs and pseudogenes are named after protein
    coding genes. Pools are lists in a fixed order, never iterated sets, whose order would
    follow Python's per-process string hashing."""
    taken = set(real_symbols)
    protein_coding = [s for s in real_symbols if _REAL_BIOTYPES.get(s) is None] or ["GENE"]
    symbols: list[str] = []
    for biotype in biotypes:
        templates = _SYMBOL_TEMPLATES[biotype]
        for draw in itertools.count(1):
            fields = {
                "n1": rng.integers(1, 10), "n2": rng.integers(1, 60), "n3": rng.integers(100, 800),
                "n4": rng.integers(1000, 2000), "n5": f"{rng.integers(100, 2900):05d}",
                "n6": f"{rng.integers(1000, 999_999):06d}", "L": "ABCDEFGHJK"[rng.integers(10)],
                "chr": rng.integers(1, 23), "pc": protein_coding[rng.integers(len(protein_coding))],
            }  # fmt: skip
            symbol = templates[rng.integers(len(templates))].format(**fields)
            if symbol not in taken:
                break
            if draw == _MAX_SYMBOL_DRAWS:
                # The biotype's templates are nearly used up (a few hundred names each for
                # small RNAs, reached near 40,000 genes): number the last draw instead.
                numbered = (f"{symbol}-{n}" for n in itertools.count(2))
                symbol = next(name for name in numbered if name not in taken)
                break
        taken.add(symbol)
        symbols.append(symbol)
        if biotype == "protein_coding":
            protein_coding.append(symbol)
    return symbols


def _ensembl_ids(symbols: Sequence[str], rng: np.random.Generator) -> list[str]:
    known = {_KNOWN_GENES[s][0] for s in symbols if s in _KNOWN_GENES}
    pool = rng.choice(np.arange(1, 320_000), size=len(symbols) + len(known), replace=False)
    fresh = (f"ENSG{number:011d}" for number in pool if f"ENSG{number:011d}" not in known)
    return [_KNOWN_GENES[s][0] if s in _KNOWN_GENES else next(fresh) for s in symbols]


def _duplicate_and_placeholder_symbols(
    symbols: list[str],
    *,
    biotypes: Sequence[str],
    ids: Sequence[str],
    roles: Sequence[str],
    is_extra: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Give ~3 % of the h5 genes a symbol another gene also has (different ids, same symbol),
    and ~2 % their own Ensembl id as symbol, as ARCHS4 does for unnamed genes."""
    n_h5 = int((~is_extra).sum())
    generated = [g for g in range(n_h5) if not roles[g]]
    rng.shuffle(generated)
    n_duplicated = round(_DUPLICATED_SYMBOL_FRACTION * n_h5)
    n_placeholder = round(_PLACEHOLDER_SYMBOL_FRACTION * n_h5)
    # same-biotype genes side by side, so groups rarely mix biotypes
    duplicated = sorted(generated[:n_duplicated], key=lambda g: biotypes[g])
    # Groups of two or three genes share the first member's symbol, or an Rfam family name
    # like Y_RNA when the first member is a small RNA.
    position = 0
    while position + 1 < len(duplicated):
        size = 3 if rng.random() < 0.25 and position + 3 <= len(duplicated) else 2
        group = duplicated[position : position + size]
        shared = _FAMILY_SYMBOL.get(biotypes[group[0]], symbols[group[0]])
        for gene in group:
            symbols[gene] = shared
        position += size
    # Unnamed genes are mostly lncRNAs, pseudogenes and TECs.
    rest = generated[n_duplicated:]
    unnamed_first = sorted(rest, key=lambda g: biotypes[g] == "protein_coding")
    for gene in unnamed_first[:n_placeholder]:
        symbols[gene] = ids[gene]


def _chromosomes(
    symbols: Sequence[str], roles: Sequence[str], rng: np.random.Generator
) -> list[str]:
    weights = np.array(_CHROMOSOME_WEIGHT, dtype=float)
    drawn = rng.choice(len(_CHROMOSOMES), size=len(symbols), p=weights / weights.sum())
    chroms = []
    for symbol, role, index in zip(symbols, roles, drawn, strict=True):
        if symbol in _KNOWN_GENES:
            chroms.append(_KNOWN_GENES[symbol][1])
        elif role == "y_linked":
            chroms.append("chrY")
        else:
            chroms.append(_CHROMOSOMES[index])
    return chroms
