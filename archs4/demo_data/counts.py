"""The demo's expression model: negative binomial counts of every (sample, gene).

A count's mean is the library size times the exonic length of the gene's longest transcript
(the same lengths the GTF encodes) times ``exp(baseline + label marker programs + cell-line /
tissue context + biosource + study batch + treatment + sex)``, normalized per sample; counts
are gamma-Poisson draws around it. Why: label prediction must find real signal (marker
programs, a cell line sharing part of its tissue's program) under realistic nuisance (batch
effects, dispersion falling with abundance, all-zero genes), and length-normalized metrics must
see counts that scale with gene length. Each sample draws from its own stream, so its counts do
not depend on the block it is generated in; the draws run on a thread pool (numpy's samplers
release the GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from archs4.demo_data.biosources import _LABEL_INDEX, BIOSOURCES
from archs4.demo_data.genes import GeneTable
from archs4.demo_data.realism import DemoRealism
from archs4.demo_data.samples import SamplePlan
from archs4.demo_data.streams import _rng, _Stream
from archs4.demo_data.tables import (
    _LABEL_MARKERS,
    _PROLIFERATION,
    _RELATED_SYSTEM,
    _TISSUE_CONTEXT,
    ALL_LABELS,
)

_RELATED_PROGRAM_WEIGHT = 0.35
_ALL_ZERO_GENE_FRACTION = 0.01
# Real libraries hold ~5-40M reads over ~60K genes; scale so per-gene counts look real.
_READS_PER_GENE = 20e6 / 60_000


@dataclass(frozen=True)
class _CountModel:
    """Everything per gene the counts depend on; per-study and per-biosource effects are
    regenerated from their own streams when a block needs them."""

    log_base: np.ndarray  # baseline log abundance common to all samples
    length_kb: np.ndarray  # longest-transcript length, the same as the GTF encodes
    expressed: np.ndarray  # False for the ~1 % of genes that are all-zero
    y_linked: np.ndarray  # chrY genes outside PAR1: silent in female samples
    xist: np.ndarray  # one-hot XIST row (all False when absent)
    dispersion: np.ndarray  # negative binomial dispersion, 0.1-0.5
    programs: np.ndarray  # (len(ALL_LABELS), genes) label marker programs
    culture: np.ndarray  # cell-line context (proliferation up, stroma/blood down)
    tissue: np.ndarray  # tissue context (stroma, blood and immune infiltrate up)
    realism: DemoRealism  # the signal and batch-effect scales


def _count_model(genes: GeneTable, seed: int, realism: DemoRealism) -> _CountModel:
    rng = _rng(seed, _Stream.PROGRAMS)
    n = genes.n_h5
    symbols = genes.symbol[:n]
    roles = np.array(genes.role[:n], dtype=object)
    biotypes = np.array(genes.biotype[:n], dtype=object)
    log_base = _baseline_abundance(roles, biotypes, rng)
    row_of = {symbol: g for g, symbol in enumerate(symbols)}
    generated = np.flatnonzero(roles == "")  # random program members and silent genes
    programs = np.zeros((len(ALL_LABELS), n))
    for label_index, label in enumerate(ALL_LABELS):
        markers = [row_of[s] for s in _LABEL_MARKERS[label].split() if s in row_of]
        programs[label_index, markers] = np.clip(rng.normal(3.0, 0.8, len(markers)), 1.5, None)
        up = rng.choice(
            generated, size=min(generated.size, max(3, round(0.015 * n))), replace=False
        )
        down = rng.choice(
            generated, size=min(generated.size, max(1, round(0.007 * n))), replace=False
        )
        programs[label_index, up] += rng.normal(1.6, 0.6, up.size)
        programs[label_index, down] -= np.abs(rng.normal(1.3, 0.4, down.size))
    culture = np.zeros(n)
    tissue = np.zeros(n)
    culture[[row_of[s] for s in _PROLIFERATION if s in row_of]] = 1.5
    tissue[[row_of[s] for s in _TISSUE_CONTEXT if s in row_of]] = 1.5
    context = rng.choice(generated, size=min(generated.size, round(0.02 * n)), replace=False)
    tissue[context] += rng.normal(0.0, 0.8, context.size)
    culture -= 0.5 * tissue
    expressed = np.ones(n, dtype=bool)
    silent = rng.choice(
        generated, size=min(generated.size, round(_ALL_ZERO_GENE_FRACTION * n)), replace=False
    )
    expressed[silent] = False
    # Low-abundance genes are noisier between samples, as in real RNA-seq.
    dispersion = np.clip(0.1 + 0.4 / (1.0 + np.exp(log_base)) + rng.normal(0, 0.03, n), 0.1, 0.5)
    return _CountModel(
        log_base=log_base,
        length_kb=genes.length_bp[:n] / 1000.0,
        expressed=expressed,
        y_linked=np.array([c == "chrY" for c in genes.chrom[:n]]) & ~genes.pseudoautosomal[:n],
        xist=np.array([s == "XIST" for s in symbols]),
        dispersion=dispersion,
        programs=programs,
        culture=culture,
        tissue=tissue,
        realism=realism,
    )


def _baseline_abundance(
    roles: np.ndarray, biotypes: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Log abundance common to all samples. Left-skewed, as real expression is: a ceiling
    that housekeeping and mitochondrial genes sit above, and a long tail of low genes; a
    third of the generated genes are barely expressed anywhere (mostly zeros), and
    non-coding biotypes sit lower. Label markers start low so their programs decide."""
    offset = {"protein_coding": 0.0, "lncRNA": -2.5, "processed_pseudogene": -3.5,
              "unprocessed_pseudogene": -3.0, "TEC": -3.0}  # fmt: skip
    log_base = (
        np.array([offset.get(b, -1.5) for b in biotypes]) + 2.0 - rng.gamma(2.0, 1.3, roles.size)
    )
    barely = (roles == "") & (rng.random(roles.size) < 0.35)
    log_base[barely] -= 4.5
    log_base[roles == "marker"] -= 1.5
    for role, level in (("housekeeping", 4.5), ("mitochondrial", 5.0)):
        chosen = roles == role
        log_base[chosen] = level + rng.normal(0.0, 0.5, int(chosen.sum()))
    return log_base


def _biosource_effect(seed: int, biosource: int, n_genes: int) -> np.ndarray:
    """What sets one cell line or tissue apart from the others of its label (~1 % of genes)."""
    rng = _rng(seed, _Stream.BIOSOURCE_EFFECT, biosource)
    effect = np.zeros(n_genes)
    genes = rng.choice(n_genes, size=max(1, round(0.01 * n_genes)), replace=False)
    effect[genes] = rng.normal(0.0, 1.0, genes.size)
    return effect


def _study_effects(
    seed: int, study: int, n_genes: int, batch_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """A study's batch effect (per-gene log-normal noise shared by its samples, its standard
    deviation scaled by `batch_scale`) and the effect of its perturbation (treatment,
    knockdown or disease) on ~1 % of genes."""
    rng = _rng(seed, _Stream.STUDY_EFFECT, study)
    batch = rng.normal(0.0, rng.uniform(0.15, 0.45) * batch_scale, n_genes)
    perturbation = np.zeros(n_genes)
    genes = rng.choice(n_genes, size=max(1, round(0.01 * n_genes)), replace=False)
    perturbation[genes] = rng.normal(0.0, 1.0, genes.size)
    return batch, perturbation


def _mean_profile(
    model: _CountModel,
    biosource: int,
    *,
    batch: np.ndarray,
    perturbation: np.ndarray | None,
    male: bool,
    seed: int,
) -> np.ndarray:
    """Expected fraction of a library each gene takes, for one (study, biosource, condition,
    sex) group: abundance x longest-transcript length, normalized to sum to 1."""
    source = BIOSOURCES[biosource]
    log_mean = model.log_base + batch + _biosource_effect(seed, biosource, model.log_base.size)
    signal = model.realism.label_signal
    for label in source.labels:
        log_mean = log_mean + signal * model.programs[_LABEL_INDEX[label]]
        if label in _RELATED_SYSTEM:
            related = model.programs[_LABEL_INDEX[_RELATED_SYSTEM[label]]]
            log_mean = log_mean + _RELATED_PROGRAM_WEIGHT * (signal * related)
    log_mean = log_mean + (model.culture if source.kind == "cell_line" else model.tissue)
    if perturbation is not None:
        log_mean = log_mean + perturbation
    log_mean = log_mean + np.where(model.xist, -6.0 if male else 3.0, 0.0)
    weight = np.exp(log_mean - log_mean.max()) * model.length_kb
    weight[~model.expressed] = 0.0
    if not male:
        weight[model.y_linked] = 0.0
    total = weight.sum()
    return weight / total if total > 0 else weight


def _count_block(
    plan: SamplePlan,
    model: _CountModel,
    *,
    start: int,
    stop: int,
    seed: int,
    pool: ThreadPoolExecutor,
) -> np.ndarray:
    """Counts of samples start..stop-1 as a (samples, genes) uint32 array.

    Samples sharing study, biosource, condition and sex share one mean profile. Each sample
    then draws gamma-Poisson (= negative binomial) counts from its own stream, so its counts
    are the same whatever block it falls in; the draws run on the thread pool."""
    n_genes = model.log_base.size
    profiles: dict[tuple[int, int, int, bool], np.ndarray] = {}
    study_effects: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    profile_of_sample = []
    for sample in range(start, stop):
        study = int(plan.study[sample])
        key = (
            study,
            int(plan.biosource[sample]),
            int(plan.condition[sample]),
            bool(plan.male[sample]),
        )
        if key not in profiles:
            if study not in study_effects:
                study_effects[study] = _study_effects(
                    seed, study, n_genes, model.realism.study_batch
                )
            batch, perturbation = study_effects[study]
            profiles[key] = _mean_profile(
                model,
                key[1],
                batch=batch,
                perturbation=perturbation if key[2] else None,
                male=key[3],
                seed=seed,
            )
        profile_of_sample.append(profiles[key])
    counts = np.empty((stop - start, n_genes), dtype=np.uint32)
    gamma_shape = 1.0 / model.dispersion

    def draw(offset: int) -> None:
        sample = start + offset
        rng = _rng(seed, _Stream.SAMPLE_COUNTS, sample)
        library_size = plan.depth[sample] * _READS_PER_GENE * n_genes
        scale = profile_of_sample[offset] * (library_size * model.dispersion)
        counts[offset] = rng.poisson(rng.standard_gamma(gamma_shape) * scale)

    list(pool.map(draw, range(stop - start)))
    return counts
