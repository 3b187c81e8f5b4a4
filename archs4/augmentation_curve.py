"""Learning curves of augmentation for a rare label: at which number of real training samples,
if any, does each remedy (class weights, random oversampling, SMOTE, the GAN) beat none?

For one label and one ``n_real`` the training set is the real train split with that label's
rows cut down to about ``n_real``, drawn by study: whole study groups (samples sharing a GSE
id), groups spanning the fewest studies first and in a seeded order among equals, each group
taken while the kept rows stay within ``n_real`` (the smallest group when none fits). So few
real rows also mean few studies, as in real data. The label's other train rows are dropped;
every other train row stays. ``n_real`` "all" keeps every row of the label.

Each method then trains the Random Forest on that reduced set (``archs4.augmentation``: the
same forests, thresholds tuned on the real validation split, scored on the fixed study-grouped
test split). The augmenting methods add rows for this label only until it has ``2 x`` its
train count with all real rows, so every method gets the same budget at every ``n_real``; the
GAN is trained afresh on the reduced set for each (``n_real``, seed), so the spread across
seeds includes its training. Validation and test rows never enter any training set.

Rows: ``(label, n_real, method, seed, metric, value)``, metrics ``f1`` and
``average_precision`` of the label on the test split, plus ``n_real_kept``, ``n_studies_kept``
and ``rows_added``. ``n_real`` of "all" is the label's full train count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from archs4.augmentation import METHODS, LabelledRows, added_rows, forest_evaluation
from archs4.gan import GanConfig, train_gan

CURVE_SCHEMA = {
    "label": pl.Utf8,
    "n_real": pl.Int64,
    "method": pl.Utf8,
    "seed": pl.Int64,
    "metric": pl.Utf8,
    "value": pl.Float64,
}
SCORED_METRICS = ("f1", "average_precision")
COUNT_METRICS = ("n_real_kept", "n_studies_kept", "rows_added")


@dataclass(frozen=True)
class CurveConfig:
    """What the curve covers; the cost is labels x levels x seeds GAN trainings and
    x methods forests."""

    labels: tuple[str, ...]
    n_real: tuple[int, ...] = (5, 10, 20, 50)  # "all" is always added
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    n_estimators: int = 100
    gan: GanConfig = dataclasses.field(default_factory=GanConfig)
    smote_k_neighbors: int = 5


@dataclass(frozen=True)
class TrainStudies:
    """The real train rows, which carry their study groups, and per row how many studies its
    group spans."""

    rows: LabelledRows
    n_studies: np.ndarray

    def __post_init__(self) -> None:
        if self.rows.studies is None:
            raise ValueError("the curve's train rows need their study groups")

    @property
    def group(self) -> np.ndarray:
        """Each train row's study group."""
        return self.rows.studies


def kept_carriers(
    carriers: np.ndarray, studies: TrainStudies, n_real: int | None, seed: int
) -> np.ndarray:
    """Positions (into the train rows) of the label's carriers kept for ``n_real`` (None:
    all): whole study groups, fewest studies first, seeded among equals."""
    if n_real is None:
        return carriers
    groups, sizes = np.unique(studies.group[carriers], return_counts=True)
    spans = np.array([studies.n_studies[carriers][studies.group[carriers] == g][0] for g in groups])
    shuffled = np.random.default_rng((seed, n_real)).permutation(groups.size)
    order = shuffled[np.argsort(spans[shuffled], kind="stable")]
    chosen: list[int] = []
    total = 0
    for position in order:
        if total + sizes[position] <= n_real:
            chosen.append(int(groups[position]))
            total += int(sizes[position])
    if not chosen:  # every group is larger than n_real: the smallest of the fewest-study ones
        chosen = [int(groups[order[np.argmin(sizes[order])]])]
    return carriers[np.isin(studies.group[carriers], chosen)]


def reduced_training_set(
    studies: TrainStudies, column: int, n_real: int | None, seed: int
) -> tuple[LabelledRows, np.ndarray]:
    """The train rows without the label's carriers outside ``kept_carriers``, and the kept
    carriers' positions."""
    carriers = np.flatnonzero(studies.rows.labels[:, column] == 1)
    kept = kept_carriers(carriers, studies, n_real, seed)
    keep = np.ones(studies.rows.n_rows, dtype=bool)
    keep[np.setdiff1d(carriers, kept)] = False
    reduced = LabelledRows(
        studies.rows.features[keep], studies.rows.labels[keep], studies.group[keep]
    )
    return reduced, kept


def augmentation_curve(
    studies: TrainStudies,
    validation: LabelledRows,
    test: LabelledRows,
    label_names: Sequence[str],
    config: CurveConfig,
    *,
    progress: Callable[[str], None] | None = None,
) -> pl.DataFrame:
    """Every (label, n_real, method, seed) of ``config``: the label's test F1 and average
    precision, and the counts behind them (module docstring)."""
    names = [str(name) for name in label_names]
    report = progress or (lambda _message: None)
    rows: list[tuple] = []
    for label in config.labels:
        column = names.index(label)
        full_count = int(studies.rows.labels[:, column].sum())
        if full_count == 0:  # nothing to cut or to augment: the label has no curve
            report(f"augmentation curve {label}: no train row carries it, skipped")
            continue
        for n_real in [*(n for n in config.n_real if n < full_count), None]:
            for seed in config.seeds:
                point = CurvePoint(label, column, full_count, n_real, seed)
                rows += _curve_rows(_Setup(studies, validation, test, names, config), point)
                report(
                    f"augmentation curve {label}: n_real {point.level}, seed {seed}: "
                    f"{len(METHODS)} methods done"
                )
    return pl.DataFrame(rows, schema=CURVE_SCHEMA, orient="row")


@dataclass(frozen=True)
class CurvePoint:
    """One (label, n_real, seed) of the curve; ``n_real`` None is "all"."""

    label: str
    column: int
    full_count: int
    n_real: int | None
    seed: int

    @property
    def level(self) -> int:
        return self.full_count if self.n_real is None else self.n_real


@dataclass(frozen=True, eq=False)
class _Setup:
    """What every point of the curve shares."""

    studies: TrainStudies
    validation: LabelledRows
    test: LabelledRows
    names: list[str]
    config: CurveConfig


def _curve_rows(setup: _Setup, point: CurvePoint) -> list[tuple]:
    """The rows of every method at one point: a GAN trained on this reduced set, then one
    forest per method."""
    studies, config = setup.studies, setup.config
    train, kept = reduced_training_set(studies, point.column, point.n_real, point.seed)
    added = {point.label: max(2 * point.full_count - kept.size, 0)}
    gan_config = dataclasses.replace(config.gan, seed=point.seed)
    gan = train_gan(train.features, train.labels, gan_config, studies=train.studies)
    counts = {
        "n_real_kept": kept.size,
        "n_studies_kept": int(np.unique(studies.group[kept]).size),
    }
    rows = []
    for method in METHODS:
        extra = added_rows(
            method,
            gan,
            train,
            setup.names,
            added,
            seed=point.seed,
            k_neighbors=config.smote_k_neighbors,
        )
        fit_rows = LabelledRows.concatenate([train, extra]) if extra.n_rows else train
        scores = _label_scores(setup, fit_rows, point, method)
        for metric, value in {**scores, **counts, "rows_added": extra.n_rows}.items():
            rows.append((point.label, point.level, method, point.seed, metric, float(value)))
    return rows


def _label_scores(
    setup: _Setup, fit_rows: LabelledRows, point: CurvePoint, method: str
) -> dict[str, float]:
    """The label's test F1 and average precision of the forest on ``fit_rows``."""
    evaluation = forest_evaluation(
        fit_rows,
        setup.validation,
        setup.test,
        setup.names,
        method,
        seed=point.seed,
        n_estimators=setup.config.n_estimators,
    )
    mine = evaluation.filter(pl.col("label") == point.label)
    return {
        metric: float(mine.filter(pl.col("metric") == metric)["value"][0])
        for metric in SCORED_METRICS
    }


def curve_table(curve: pl.DataFrame) -> pl.DataFrame:
    """Mean test F1 over the seeds per (label, n_real), one column per method."""
    return (
        curve.filter(pl.col("metric") == "f1")
        .group_by("label", "n_real", "method")
        .agg(pl.col("value").mean())
        .pivot("method", index=["label", "n_real"], values="value")
        .select("label", "n_real", *[m for m in METHODS if m in curve["method"].unique()])
        .sort("label", "n_real")
    )


def curve_problems(curve: pl.DataFrame) -> list[str]:
    """What is wrong with a stored curve: a point missing a metric, an F1 outside [0, 1], more
    rows kept than the label has (the level "all" is the label's count), rows added by a
    method that adds none."""
    point = ["label", "n_real", "method", "seed"]
    metrics = {*SCORED_METRICS, *COUNT_METRICS}
    problems = [
        f"{row['label']} n_real {row['n_real']} {row['method']} seed {row['seed']}: "
        f"missing {sorted(metrics - set(row['metric']))}"
        for row in curve.group_by(point).agg("metric").iter_rows(named=True)
        if metrics - set(row["metric"])
    ]
    f1 = curve.filter(pl.col("metric") == "f1")["value"]
    if ((f1 < 0) | (f1 > 1)).any():
        problems.append("an F1 outside [0, 1]")
    full = curve.group_by("label").agg(pl.col("n_real").max().alias("full"))
    kept = curve.filter(pl.col("metric") == "n_real_kept").join(full, on="label")
    if (kept["value"] > kept["full"]).any():
        problems.append("more real rows kept than the label has")
    added = curve.filter(
        (pl.col("metric") == "rows_added") & pl.col("method").is_in(["none", "class_weights"])
    )
    if (added["value"] != 0).any():
        problems.append("rows added by none or class_weights")
    return problems
