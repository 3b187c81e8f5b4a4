"""Honest evaluation of train-split augmentation for rare labels: fidelity of the GAN's rows
and usefulness of every augmentation for the Random Forest, next to simpler remedies.

Fidelity (``fidelity``), per rare label, synthetic rows generated for that label against the
REAL TRAIN rows that carry it (the only real rows the GAN may be compared with):

- ``mean_correlation``: Pearson correlation of the per-feature means (1 = same profile);
- ``variance_correlation``: Pearson correlation of the per-feature variances (ddof 1); a
  generator that collapses to a few modes keeps the means and loses this;
- ``mmd``: squared maximum mean discrepancy, unbiased estimator (Gretton et al. 2012) with an
  RBF kernel ``exp(-||x - y||^2 / (2 sigma^2))``, ``sigma`` the median distance between the
  pooled rows (the median heuristic). 0 = same distribution; the unbiased estimate can be
  slightly negative when the two sets are alike;
- ``c2st_auroc``: classifier two-sample test (Lopez-Paz and Oquab 2017): a seeded Random
  Forest, stratified k-fold cross-validation with each synthetic row kept in the fold of its
  nearest real row (see ``c2st_auroc``), mean AUROC of telling real from synthetic.
  0.5 = indistinguishable, 1 = always told apart;
- ``nn_distance_ratio``: mean distance from each synthetic row to its nearest real row,
  divided by the mean distance from each real row to its nearest OTHER real row. About 1 or
  more = synthetic rows are as far from the real ones as those are from each other; far below
  1 = the generator copies (memorizes) train rows.

The synthetic rows of the fidelity metrics are as many per label as the label has real train
rows (a balanced two-sample comparison), conditioned as in ``synthetic_rows_for``; each metric
is the mean over the evaluation seeds.

Usefulness (``evaluate_augmentation``). For each seed and each method:

- ``none``: the Random Forest on the real train rows, no class weights;
- ``class_weights``: the same with ``class_weight="balanced_subsample"`` (the production
  setting of ``archs4.classifier``);
- ``random_oversampling``: plus copies of train rows of each rare label (full label sets);
- ``smote``: plus imbalanced-learn SMOTE rows per rare label, one-vs-rest on that label; a
  SMOTE row gets the label set of its seed row (see ``smote_rows``);
- ``gan``: plus the GAN's synthetic rows.

The three augmentations add the same number of rows per rare label (``rows_to_add``: every
rare label is brought to ``target_count`` train rows, by default twice the train count of the
most frequent rare label), and train without class weights, so each is compared at equal
budget with ``none`` and with ``class_weights``. Every model is trained with
``archs4.classifier.train_random_forest``, its thresholds tuned on the real VALIDATION rows
(``tune_thresholds``) and it is scored on the real TEST rows (``evaluate``). Added rows only
ever join the train matrix: validation and test are the arrays the caller passed, untouched.

The GAN is trained afresh for each seed (``gan_config`` with that seed) so the spread across
seeds includes the GAN's own training variance; pass ``gan`` to reuse one trained GAN instead
(faster, and then only the synthesis and forest seeds vary).

Nothing is clipped, filtered or dropped: an augmentation that does not help (or hurts) shows
as a lower F1 or AP than ``none``. A label without a positive in the test rows has AP NaN (as
in ``evaluate``); the ``ALL_RARE`` averages of F1 and AP are over the rare labels with a test
positive, computed per seed and then averaged, and the std is the sample std (ddof 1) of those
per-seed averages.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.neighbors import NearestNeighbors

from archs4.classifier import evaluate, label_probabilities, train_random_forest, tune_thresholds
from archs4.gan import GanConfig, TrainedGan, rare_labels, synthetic_rows_for, train_gan

METHODS: tuple[str, ...] = ("none", "class_weights", "random_oversampling", "smote", "gan")
AUGMENTING_METHODS: tuple[str, ...] = ("random_oversampling", "smote", "gan")
FIDELITY_METRICS: tuple[str, ...] = (
    "mean_correlation",
    "variance_correlation",
    "mmd",
    "c2st_auroc",
    "nn_distance_ratio",
)
# ALL_RARE only: one two-sample test on every rare label's real train rows (each row once)
# against all their synthetic rows, mean over the seeds.
POOLED_C2ST = "c2st_auroc_pooled"
USEFULNESS_METRICS: tuple[str, ...] = ("f1", "average_precision")
ALL_RARE = "ALL_RARE"
MIN_SEEDS = 3
# Elements per intermediate array of the SMOTE seed search (_smote_seed_rows): 32 MB of
# float64, whatever the number of rows.
_SEED_SEARCH_ELEMENTS = 4_000_000

ProgressCallback = Callable[[str], None]


@dataclass(frozen=True, eq=False)
class LabelledRows:
    """Feature rows (n x d, float32), their multi-hot label sets (n x L, int8) and, for real
    train rows, each row's study (n int64 study groups; None where unknown or synthetic)."""

    features: np.ndarray
    labels: np.ndarray
    studies: np.ndarray | None = None

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float32)
        labels = np.asarray(self.labels)
        if features.ndim != 2 or labels.ndim != 2 or features.shape[0] != labels.shape[0]:
            raise ValueError(
                f"expected (n, d) features and (n, L) labels, got {features.shape} and "
                f"{labels.shape}"
            )
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be a 0/1 matrix")
        if self.studies is not None:
            studies = np.asarray(self.studies)
            if studies.shape != (features.shape[0],) or not np.issubdtype(
                studies.dtype, np.integer
            ):
                raise ValueError(
                    f"expected {features.shape[0]} integer studies, got {studies.shape}"
                )
            object.__setattr__(self, "studies", studies.astype(np.int64))
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "labels", labels.astype(np.int8))

    @property
    def n_rows(self) -> int:
        return int(self.features.shape[0])

    @classmethod
    def empty(cls, n_features: int, n_labels: int) -> LabelledRows:
        return cls(np.empty((0, n_features), np.float32), np.empty((0, n_labels), np.int8))

    @classmethod
    def concatenate(cls, parts: Sequence[LabelledRows]) -> LabelledRows:
        """The rows of ``parts`` in order; the studies are kept only if every part has them."""
        studies = [part.studies for part in parts]
        return cls(
            np.concatenate([part.features for part in parts]),
            np.concatenate([part.labels for part in parts]),
            None if any(part is None for part in studies) else np.concatenate(studies),
        )


# ---------------------------------------------------------------------------------------------
# Fidelity


def mean_correlation(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Pearson correlation of the per-feature means; NaN when either side's means are all
    equal (or there is a single feature): a correlation is undefined there."""
    return _pearson(_rows(real).mean(axis=0), _rows(synthetic).mean(axis=0))


def variance_correlation(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Pearson correlation of the per-feature variances (ddof 1); NaN with fewer than 2 rows
    on a side or when either side's variances are all equal."""
    real, synthetic = _rows(real), _rows(synthetic)
    if real.shape[0] < 2 or synthetic.shape[0] < 2:
        return float("nan")
    return _pearson(real.var(axis=0, ddof=1), synthetic.var(axis=0, ddof=1))


def mmd_squared(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Unbiased squared MMD with an RBF kernel whose bandwidth is the median pairwise distance
    of the pooled rows (see the module docstring). NaN with fewer than 2 rows on a side; 0 when
    every pooled row is the same point."""
    real, synthetic = _rows(real).astype(np.float64), _rows(synthetic).astype(np.float64)
    n_real, n_synthetic = real.shape[0], synthetic.shape[0]
    if n_real < 2 or n_synthetic < 2:
        return float("nan")
    pooled = np.concatenate([real, synthetic])
    squared = _squared_distances(pooled, pooled)
    upper = squared[np.triu_indices(pooled.shape[0], k=1)]
    sigma_squared = float(np.median(np.sqrt(upper))) ** 2
    if sigma_squared == 0.0:
        # The median pair coincides; fall back to the median of the pairs that do not.
        positive = upper[upper > 0]
        if positive.size == 0:
            return 0.0
        sigma_squared = float(np.median(np.sqrt(positive))) ** 2
    kernel = np.exp(-squared / (2.0 * sigma_squared))
    real_real = kernel[:n_real, :n_real]
    synthetic_synthetic = kernel[n_real:, n_real:]
    cross = kernel[:n_real, n_real:]
    # Unbiased: the within-set means leave out the diagonal (a row with itself).
    within_real = (real_real.sum() - np.trace(real_real)) / (n_real * (n_real - 1))
    within_synthetic = (synthetic_synthetic.sum() - np.trace(synthetic_synthetic)) / (
        n_synthetic * (n_synthetic - 1)
    )
    return float(within_real + within_synthetic - 2.0 * cross.mean())


def c2st_auroc(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    seed: int = 0,
    n_splits: int = 5,
    n_estimators: int = 100,
) -> float:
    """Classifier two-sample test: mean AUROC over the folds of a seeded Random Forest telling
    real (0) from synthetic (1) rows; NaN when a set has fewer than 2 rows.

    Folds: ``StratifiedGroupKFold`` (``n_splits``, lowered to the smaller set's size, shuffled
    with ``seed``), where each synthetic row is grouped with its nearest real row. Without the
    groups a synthetic COPY of a real row would sit in the training folds with the other label
    while its original is held out, and copies would score far below 0.5 (about 0.2-0.3 on
    exact copies, measured) for a reason that is not the distributions'; copying is what
    ``nn_distance_ratio`` measures. With the groups, identical sets give exactly 0.5.

    A fold can be scored only when its training and held-out rows both hold the two classes.
    When the synthetic rows crowd around so few real rows that fewer than 2 grouped folds can
    be scored (a collapsed generator), the groups are dropped and plain stratified folds are
    used: there the crowd is what the test must see, and it scores near 1 as it should.
    """
    real, synthetic = _rows(real).astype(np.float64), _rows(synthetic).astype(np.float64)
    folds = min(n_splits, real.shape[0], synthetic.shape[0])
    if folds < 2:
        return float("nan")
    pooled = np.concatenate([real, synthetic])
    is_synthetic = np.concatenate(
        [np.zeros(real.shape[0], np.int8), np.ones(synthetic.shape[0], np.int8)]
    )
    nearest_real = NearestNeighbors(n_neighbors=1).fit(real).kneighbors(synthetic)[1][:, 0]
    groups = np.concatenate([np.arange(real.shape[0]), nearest_real])
    grouped = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = [
        (fit_rows, held_out)
        for fit_rows, held_out in grouped.split(pooled, is_synthetic, groups)
        if _both_classes(is_synthetic[fit_rows]) and _both_classes(is_synthetic[held_out])
    ]
    if len(splits) < 2:
        plain = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(plain.split(pooled, is_synthetic))
    scores = []
    for fit_rows, held_out in splits:
        # A forest, not a linear model: a generator's usual failure, too narrow a distribution
        # (mode collapse), leaves the means alone and a linear classifier blind (AUROC 0.5 for
        # rows at 0.6x the real spread, measured, where this forest gives 0.95).
        forest = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
        forest.fit(pooled[fit_rows], is_synthetic[fit_rows])
        probability = forest.predict_proba(pooled[held_out])[:, 1]
        scores.append(roc_auc_score(is_synthetic[held_out], probability))
    return float(np.mean(scores))


def nn_distance_ratio(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Mean synthetic-to-nearest-real distance over mean real-to-nearest-other-real distance.

    Exact copies of real rows give 0. NaN with fewer than 2 real rows or no synthetic row;
    when all real rows coincide the denominator is 0 and the ratio inf (or NaN for 0 / 0),
    reported as computed.
    """
    real, synthetic = _rows(real).astype(np.float64), _rows(synthetic).astype(np.float64)
    if real.shape[0] < 2 or synthetic.shape[0] == 0:
        return float("nan")
    index = NearestNeighbors(n_neighbors=2).fit(real)
    synthetic_to_real = index.kneighbors(synthetic, n_neighbors=1)[0][:, 0]
    # Each real row's first neighbour is itself (distance 0), or an exact duplicate of it,
    # which is its nearest other row anyway: the second distance is the one wanted.
    real_to_other = index.kneighbors(real, n_neighbors=2)[0][:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(synthetic_to_real.mean()) / np.float64(real_to_other.mean()))


def fidelity(real: np.ndarray, synthetic: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """All five fidelity metrics of ``synthetic`` rows against ``real`` rows."""
    return {
        "mean_correlation": mean_correlation(real, synthetic),
        "variance_correlation": variance_correlation(real, synthetic),
        "mmd": mmd_squared(real, synthetic),
        "c2st_auroc": c2st_auroc(real, synthetic, seed=seed),
        "nn_distance_ratio": nn_distance_ratio(real, synthetic),
    }


def projection_2d(
    real: np.ndarray, synthetic: np.ndarray, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Real and synthetic rows on the first two principal axes of the REAL rows, for a scatter
    plot; the axes come from the real rows only, so synthetic rows cannot pull them."""
    real, synthetic = _rows(real).astype(np.float64), _rows(synthetic).astype(np.float64)
    n_components = min(2, real.shape[0], real.shape[1])
    pca = PCA(n_components=n_components, random_state=seed).fit(real)
    return pca.transform(real), pca.transform(synthetic)


def synthetic_samples_frame(
    features: np.ndarray, label_of_row: Sequence[str], feature_names: Sequence[str]
) -> pl.DataFrame:
    """Long rows ``(synthetic_id, label, feature, value)`` of synthetic rows, the layout of the
    ``synthetic_samples`` view; ``synthetic_id`` is the row's position."""
    matrix = _rows(features)
    labels = np.asarray(label_of_row, dtype=str)
    names = [str(name) for name in feature_names]
    if labels.shape != (matrix.shape[0],) or len(names) != matrix.shape[1]:
        raise ValueError(
            f"{matrix.shape} features, {labels.shape} row labels and {len(names)} feature names"
        )
    n_rows, n_features = matrix.shape
    return pl.DataFrame(
        {
            "synthetic_id": np.repeat(np.arange(n_rows, dtype=np.int64), n_features),
            "label": np.repeat(labels, n_features),
            "feature": np.tile(np.array(names, dtype=str), n_rows),
            "value": matrix.reshape(-1).astype(np.float32),
        },
        schema={
            "synthetic_id": pl.Int64,
            "label": pl.Utf8,
            "feature": pl.Utf8,
            "value": pl.Float32,
        },
    )


# ---------------------------------------------------------------------------------------------
# Augmentations (each returns the ADDED train rows only)


def rows_to_add(
    train_labels: np.ndarray,
    label_names: Sequence[str],
    rare: Sequence[str],
    target_count: int | None = None,
) -> dict[str, int]:
    """Rows each augmentation adds per rare label: ``max(target_count - train count, 0)``.

    ``target_count`` defaults to twice the train count of the most frequent rare label, so
    every rare label gets rows and the most frequent one is doubled.
    """
    names = [str(name) for name in label_names]
    counts = {name: int(np.asarray(train_labels)[:, names.index(name)].sum()) for name in rare}
    if target_count is None:
        target_count = 2 * max(counts.values(), default=0)
    return {name: max(int(target_count) - count, 0) for name, count in counts.items()}


def random_oversampling_rows(
    train: LabelledRows,
    label_names: Sequence[str],
    added: dict[str, int],
    *,
    seed: int,
) -> LabelledRows:
    """Copies of train rows carrying each rare label (uniform, with replacement, seeded), with
    their full label sets."""
    names = [str(name) for name in label_names]
    parts = [LabelledRows.empty(train.features.shape[1], train.labels.shape[1])]
    for position, (name, n_new) in enumerate(added.items()):
        carriers = _carriers(train, names, name)
        chosen = np.random.default_rng((seed, position)).choice(carriers, n_new, replace=True)
        parts.append(LabelledRows(train.features[chosen], train.labels[chosen]))
    return LabelledRows.concatenate(parts)


def smote_rows(
    train: LabelledRows,
    label_names: Sequence[str],
    added: dict[str, int],
    *,
    seed: int,
    k_neighbors: int = 5,
) -> LabelledRows:
    """imbalanced-learn SMOTE rows for each rare label, one-vs-rest on that label.

    SMOTE draws a row of the label (the seed row) and one of its ``k`` nearest rows of the
    label, and returns a random point on the segment between them. ``k`` is lowered to the
    label's train count - 1 when the label has too few rows; a label with a single train row
    gets copies of it (the segment from a row to itself). imbalanced-learn does not say which
    row seeded a sample, so ``_smote_seed_rows`` finds it back geometrically, and the sample
    gets the seed row's full label set.
    """
    from imblearn.over_sampling import SMOTE  # ~2 s to import; only this baseline uses it

    names = [str(name) for name in label_names]
    n_rows = train.n_rows
    features = train.features.astype(np.float64)
    parts = [LabelledRows.empty(train.features.shape[1], train.labels.shape[1])]
    for position, (name, n_new) in enumerate(added.items()):
        if n_new == 0:
            continue
        carriers = _carriers(train, names, name)
        if carriers.size == 1:
            chosen = np.repeat(carriers, n_new)
            parts.append(LabelledRows(train.features[chosen], train.labels[chosen]))
            continue
        k = min(k_neighbors, carriers.size - 1)
        target = train.labels[:, names.index(name)]
        sampler = SMOTE(
            sampling_strategy={1: carriers.size + n_new},
            k_neighbors=k,
            random_state=_derived_seed(seed, position),
        )
        resampled, _ = sampler.fit_resample(features, target)
        # imbalanced-learn returns the input rows first, unchanged, then the new ones.
        new_rows = resampled[n_rows:]
        seeds = carriers[_smote_seed_rows(new_rows, features[carriers], k)]
        parts.append(LabelledRows(new_rows, train.labels[seeds]))
    return LabelledRows.concatenate(parts)


def gan_rows(
    trained: TrainedGan,
    train: LabelledRows,
    label_names: Sequence[str],
    added: dict[str, int],
    *,
    seed: int,
) -> LabelledRows:
    """The GAN's synthetic rows (``synthetic_rows_for``), ``added[label]`` per rare label."""
    parts = [LabelledRows.empty(train.features.shape[1], train.labels.shape[1])]
    for position, (name, n_new) in enumerate(added.items()):
        features, labels, _ = synthetic_rows_for(
            trained,
            train.labels,
            label_names,
            [name],
            n_new,
            seed=_derived_seed(seed, position),
            studies=train.studies,
        )
        parts.append(LabelledRows(features, labels))
    return LabelledRows.concatenate(parts)


def _smote_seed_rows(synthetic: np.ndarray, minority: np.ndarray, k: int) -> np.ndarray:
    """For each SMOTE row, the position in ``minority`` of the row it was grown from.

    SMOTE puts a sample at ``x_i + g (x_j - x_i)``, g in [0, 1), with j among the k nearest
    neighbours of i (the same neighbour graph imbalanced-learn builds). The directed pair
    (i, j) whose segment passes closest to the sample is its pair and i its seed. For mutual
    neighbours the segment is the same both ways and the choice between the two ends is
    arbitrary; both carry the label.
    """
    neighbours = (
        NearestNeighbors(n_neighbors=k + 1)
        .fit(minority)
        .kneighbors(minority, return_distance=False)
    )[:, 1:]
    starts = minority[:, None, :]  # (n, 1, d)
    directions = minority[neighbours] - starts  # (n, k, d)
    lengths = np.einsum("nkd,nkd->nk", directions, directions)
    safe_lengths = np.where(lengths > 0, lengths, 1.0)  # duplicate rows: a zero-length segment
    per_sample = directions.size
    chunk = max(1, _SEED_SEARCH_ELEMENTS // per_sample)
    seeds = np.empty(synthetic.shape[0], dtype=np.int64)
    for start in range(0, synthetic.shape[0], chunk):
        batch = synthetic[start : start + chunk]
        offsets = batch[:, None, None, :] - starts[None]  # (b, n, 1, d)
        gap = np.clip(np.einsum("bnkd,nkd->bnk", offsets, directions) / safe_lengths, 0.0, 1.0)
        residual = offsets - gap[..., None] * directions[None]
        distance = np.einsum("bnkd,bnkd->bnk", residual, residual)
        flat = distance.reshape(batch.shape[0], -1).argmin(axis=1)
        seeds[start : start + chunk] = flat // neighbours.shape[1]
    return seeds


# ---------------------------------------------------------------------------------------------
# The evaluation


def evaluate_augmentation(
    train: LabelledRows,
    validation: LabelledRows,
    test: LabelledRows,
    label_names: Sequence[str],
    *,
    rare: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    target_count: int | None = None,
    n_estimators: int = 100,
    gan: TrainedGan | None = None,
    gan_config: GanConfig | None = None,
    smote_k_neighbors: int = 5,
    n_jobs: int = 2,
    progress: ProgressCallback | None = None,
) -> pl.DataFrame:
    """Long rows ``(label, metric, value)`` of fidelity and usefulness (module docstring).

    Per rare label: the five ``FIDELITY_METRICS``; ``f1_mean/<method>``, ``f1_std/<method>``,
    ``average_precision_mean/<method>`` and ``average_precision_std/<method>`` for every
    method of ``METHODS``; and the counts behind them, ``train_count`` (real train rows),
    ``rows_added`` (per augmenting method), ``validation_positives`` and ``test_positives``.
    ``label = 'ALL_RARE'`` holds the same metrics averaged over the rare labels (counts
    summed).

    ``rare`` defaults to ``rare_labels`` of the train rows. ``gan`` reuses one trained GAN for
    every seed; without it a GAN is trained per seed with ``gan_config`` (default
    ``GanConfig()``) and that seed.
    """
    names = [str(name) for name in label_names]
    rare = _checked_rare_labels(train, validation, test, names, rare=rare, seeds=seeds)
    added = rows_to_add(train.labels, names, rare, target_count)
    rare_columns = [names.index(name) for name in rare]
    setup = _EvaluationSetup(
        train=train,
        validation=validation,
        test=test,
        names=names,
        rare=rare,
        rare_columns=rare_columns,
        added=added,
        test_positives=test.labels[:, rare_columns].sum(axis=0),
        n_estimators=n_estimators,
        smote_k_neighbors=smote_k_neighbors,
        n_jobs=n_jobs,
        report=progress or (lambda _message: None),
    )

    fidelity_values, pooled_c2st, scores = _scores_of_every_seed(setup, seeds, gan, gan_config)
    rows = _label_rows(setup, fidelity_values, scores) + _all_rare_rows(
        setup, fidelity_values, scores
    )
    rows.append((ALL_RARE, POOLED_C2ST, float(np.mean(pooled_c2st))))
    return pl.DataFrame(
        rows, schema={"label": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64}, orient="row"
    )


@dataclass(frozen=True, eq=False)
class _EvaluationSetup:
    """The inputs every seed and method of ``evaluate_augmentation`` shares."""

    train: LabelledRows
    validation: LabelledRows
    test: LabelledRows
    names: list[str]
    rare: list[str]
    rare_columns: list[int]
    added: dict[str, int]
    test_positives: np.ndarray
    n_estimators: int
    smote_k_neighbors: int
    n_jobs: int
    report: ProgressCallback


def _scores_of_every_seed(
    setup: _EvaluationSetup,
    seeds: Sequence[int],
    gan: TrainedGan | None,
    gan_config: GanConfig | None,
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """``fidelity_values[metric]`` and ``scores[method][metric]``, each (seeds x rare labels),
    and the pooled two-sample AUROC of each seed; the GAN is ``gan``, or one trained per seed
    with ``gan_config``."""
    shape = (len(seeds), len(setup.rare))
    scores = {
        method: {metric: np.full(shape, np.nan) for metric in USEFULNESS_METRICS}
        for method in METHODS
    }
    fidelity_values = {metric: np.full(shape, np.nan) for metric in FIDELITY_METRICS}
    pooled_c2st = np.full(len(seeds), np.nan)
    for seed_position, seed in enumerate(seeds):
        trained = gan if gan is not None else _seed_gan(setup, gan_config, seed)
        per_label, pooled_c2st[seed_position] = _seed_fidelity(setup, trained, seed)
        for metric, values in per_label.items():
            fidelity_values[metric][seed_position] = values
        for method in METHODS:
            for metric, values in _method_scores(setup, method, trained, seed).items():
                scores[method][metric][seed_position] = values
    return fidelity_values, pooled_c2st, scores


def _checked_rare_labels(
    train: LabelledRows,
    validation: LabelledRows,
    test: LabelledRows,
    names: list[str],
    *,
    rare: Sequence[str] | None,
    seeds: Sequence[int],
) -> list[str]:
    """The rare labels to evaluate (``rare_labels`` of the train rows by default), after
    checking the splits against the label names and that there are enough seeds."""
    for part_name, part in (("train", train), ("validation", validation), ("test", test)):
        if part.labels.shape[1] != len(names):
            raise ValueError(f"{part_name} has {part.labels.shape[1]} labels, {len(names)} names")
    if len(set(seeds)) < MIN_SEEDS:
        raise ValueError(f"need at least {MIN_SEEDS} distinct seeds, got {list(seeds)}")
    rare = list(rare) if rare is not None else rare_labels(train.labels, names)
    if not rare:
        raise ValueError("no rare label to evaluate")
    unknown = [name for name in rare if name not in names]
    if unknown:
        raise ValueError(f"unknown rare labels {unknown}")
    return rare


def _seed_gan(setup: _EvaluationSetup, gan_config: GanConfig | None, seed: int) -> TrainedGan:
    """A GAN trained on the train rows with ``gan_config`` and this seed."""
    config = dataclasses.replace(gan_config or GanConfig(), seed=int(seed))
    setup.report(f"augmentation seed {seed}: training the GAN on {setup.train.n_rows} train rows")
    train = setup.train
    return train_gan(
        train.features, train.labels, config, progress=setup.report, studies=train.studies
    )


def _seed_fidelity(
    setup: _EvaluationSetup, trained: TrainedGan, seed: int
) -> tuple[dict[str, np.ndarray], float]:
    """Each fidelity metric of one seed, per rare label (in ``setup.rare`` order), and the
    two-sample AUROC of all rare labels' real rows, each once, against all their synthetic
    rows."""
    values = {metric: np.full(len(setup.rare), np.nan) for metric in FIDELITY_METRICS}
    synthetic_parts = []
    for position, name in enumerate(setup.rare):
        real = setup.train.features[_carriers(setup.train, setup.names, name)]
        synthetic, _, _ = synthetic_rows_for(
            trained,
            setup.train.labels,
            setup.names,
            [name],
            real.shape[0],
            seed=_derived_seed(seed, 1000 + position),
            studies=setup.train.studies,
        )
        synthetic_parts.append(synthetic)
        for metric, value in fidelity(real, synthetic, seed=int(seed)).items():
            values[metric][position] = value
    carries_rare = setup.train.labels[:, setup.rare_columns].any(axis=1)
    pooled = c2st_auroc(
        setup.train.features[carries_rare], np.concatenate(synthetic_parts), seed=int(seed)
    )
    return values, pooled


def _method_scores(
    setup: _EvaluationSetup, method: str, trained: TrainedGan, seed: int
) -> dict[str, np.ndarray]:
    """Each usefulness metric of one method and seed, per rare label: the forest trained on the
    train rows plus the method's added rows, tuned on validation, scored on test."""
    started = time.perf_counter()
    train, validation, test = setup.train, setup.validation, setup.test
    extra = added_rows(
        method,
        trained,
        train,
        setup.names,
        setup.added,
        seed=int(seed),
        k_neighbors=setup.smote_k_neighbors,
    )
    fit_rows = LabelledRows.concatenate([train, extra]) if extra.n_rows else train
    evaluation = forest_evaluation(
        fit_rows,
        validation,
        test,
        setup.names,
        method,
        seed=int(seed),
        n_estimators=setup.n_estimators,
        n_jobs=setup.n_jobs,
    )
    scores = {metric: _per_label(evaluation, setup.rare, metric) for metric in USEFULNESS_METRICS}
    setup.report(
        f"augmentation seed {seed}: {method}: {fit_rows.n_rows} train rows "
        f"({extra.n_rows} added), rare-label F1 "
        f"{_rare_average(scores['f1'], setup.test_positives):.3f} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return scores


def forest_evaluation(
    fit_rows: LabelledRows,
    validation: LabelledRows,
    test: LabelledRows,
    label_names: Sequence[str],
    method: str,
    *,
    seed: int,
    n_estimators: int,
    n_jobs: int = 2,
) -> pl.DataFrame:
    """A method's test scores: the Random Forest on ``fit_rows`` (without class weights, except
    for the method ``class_weights``), thresholds tuned on the validation rows, ``evaluate`` on
    the test rows."""
    model = train_random_forest(
        fit_rows.features,
        fit_rows.labels,
        n_estimators=n_estimators,
        class_weight="balanced_subsample" if method == "class_weights" else None,
        seed=seed,
        n_jobs=n_jobs,
    )
    thresholds = tune_thresholds(label_probabilities(model, validation.features), validation.labels)
    return evaluate(
        test.labels, label_probabilities(model, test.features), thresholds, label_names, method
    )


def _label_rows(
    setup: _EvaluationSetup,
    fidelity_values: dict[str, np.ndarray],
    scores: dict[str, dict[str, np.ndarray]],
) -> list[tuple[str, str, float]]:
    """The report rows of each rare label: means over the seeds, stds, and counts."""
    rows: list[tuple[str, str, float]] = []
    for position, name in enumerate(setup.rare):
        column = setup.rare_columns[position]
        for metric, values in fidelity_values.items():
            rows.append((name, metric, float(np.mean(values[:, position]))))
        for method in METHODS:
            for metric in USEFULNESS_METRICS:
                per_seed = scores[method][metric][:, position]
                rows.append((name, f"{metric}_mean/{method}", float(np.mean(per_seed))))
                rows.append((name, f"{metric}_std/{method}", _sample_std(per_seed)))
        rows.append((name, "train_count", float(setup.train.labels[:, column].sum())))
        rows.append((name, "rows_added", float(setup.added[name])))
        rows.append((name, "validation_positives", float(setup.validation.labels[:, column].sum())))
        rows.append((name, "test_positives", float(setup.test_positives[position])))
    return rows


def _all_rare_rows(
    setup: _EvaluationSetup,
    fidelity_values: dict[str, np.ndarray],
    scores: dict[str, dict[str, np.ndarray]],
) -> list[tuple[str, str, float]]:
    """The ``ALL_RARE`` report rows.

    Fidelity is averaged over labels (per seed, then over seeds: the same thing for a mean);
    usefulness is averaged over the labels with a test positive, per seed.
    """
    rows: list[tuple[str, str, float]] = []
    for metric, values in fidelity_values.items():
        rows.append((ALL_RARE, metric, float(np.mean(values))))
    for method in METHODS:
        for metric in USEFULNESS_METRICS:
            per_seed = np.array(
                [_rare_average(values, setup.test_positives) for values in scores[method][metric]]
            )
            rows.append((ALL_RARE, f"{metric}_mean/{method}", float(np.mean(per_seed))))
            rows.append((ALL_RARE, f"{metric}_std/{method}", _sample_std(per_seed)))
    columns = setup.rare_columns
    rows.append((ALL_RARE, "train_count", float(setup.train.labels[:, columns].sum())))
    rows.append((ALL_RARE, "rows_added", float(sum(setup.added.values()))))
    rows.append(
        (ALL_RARE, "validation_positives", float(setup.validation.labels[:, columns].sum()))
    )
    rows.append((ALL_RARE, "test_positives", float(setup.test_positives.sum())))
    return rows


def added_rows(
    method: str,
    trained: TrainedGan,
    train: LabelledRows,
    names: list[str],
    added: dict[str, int],
    *,
    seed: int,
    k_neighbors: int,
) -> LabelledRows:
    if method == "random_oversampling":
        return random_oversampling_rows(train, names, added, seed=seed)
    if method == "smote":
        return smote_rows(train, names, added, seed=seed, k_neighbors=k_neighbors)
    if method == "gan":
        return gan_rows(trained, train, names, added, seed=seed)
    if method in ("none", "class_weights"):
        return LabelledRows.empty(train.features.shape[1], train.labels.shape[1])
    raise ValueError(f"unknown method {method!r}")


# ---------------------------------------------------------------------------------------------
# Helpers


def _rows(matrix: np.ndarray) -> np.ndarray:
    rows = np.asarray(matrix)
    if rows.ndim != 2:
        raise ValueError(f"expected a (rows, features) matrix, got shape {rows.shape}")
    return rows


def _both_classes(is_synthetic: np.ndarray) -> bool:
    return np.unique(is_synthetic).size == 2


def _pearson(first: np.ndarray, second: np.ndarray) -> float:
    first = np.asarray(first, dtype=np.float64) - np.mean(first)
    second = np.asarray(second, dtype=np.float64) - np.mean(second)
    denominator = np.sqrt((first**2).sum() * (second**2).sum())
    if denominator == 0.0:
        return float("nan")
    return float((first * second).sum() / denominator)


def _squared_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    squared = (
        (first**2).sum(axis=1)[:, None] + (second**2).sum(axis=1)[None, :] - 2.0 * first @ second.T
    )
    # Rounding can leave tiny negatives where the distance is 0.
    return np.maximum(squared, 0.0)


def _carriers(train: LabelledRows, names: list[str], name: str) -> np.ndarray:
    carriers = np.flatnonzero(train.labels[:, names.index(name)])
    if carriers.size == 0:
        raise ValueError(f"no train row carries {name!r}: it cannot be augmented")
    return carriers


def _derived_seed(seed: int, stream: int) -> int:
    """An independent 32-bit seed for (seed, stream), so labels and purposes draw apart."""
    return int(np.random.SeedSequence((int(seed), int(stream))).generate_state(1)[0])


def _per_label(evaluation: pl.DataFrame, rare: Sequence[str], metric: str) -> np.ndarray:
    values = dict(
        evaluation.filter(pl.col("metric") == metric).select("label", "value").iter_rows()
    )
    return np.array([values[name] for name in rare], dtype=np.float64)


def _rare_average(values: np.ndarray, test_positives: np.ndarray) -> float:
    """Mean over the rare labels with a test positive (F1 and AP say nothing on the others)."""
    scored = np.asarray(values)[np.asarray(test_positives) > 0]
    return float(np.mean(scored)) if scored.size else float("nan")


def _sample_std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
