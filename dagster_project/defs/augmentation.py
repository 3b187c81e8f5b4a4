"""Augmentation layer: a conditional WGAN-GP for rare labels, its synthetic rows, the augmented
training set, the Random Forest retrained on it, and an honest evaluation of all of it."""

import json
import time

import dagster as dg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import polars as pl
import polars.selectors as cs

from archs4.augmentation import (
    FIDELITY_METRICS,
    METHODS,
    POOLED_C2ST,
    LabelledRows,
    evaluate_augmentation,
    projection_2d,
    rows_to_add,
    synthetic_samples_frame,
)
from archs4.augmentation_curve import CurveConfig, TrainStudies, curve_problems, curve_table
from archs4.augmentation_curve import augmentation_curve as compute_augmentation_curve
from archs4.classifier import fit_tune_and_save
from archs4.datasets import (
    AUGMENTATION_CURVE_TABLE,
    AUGMENTED_TRAINING_TABLE,
    GAN_AUGMENTED_MODEL,
    GAN_EVALUATION_TABLE,
    SAMPLE_SPLITS_TABLE,
    SYNTHETIC_SAMPLES_TABLE,
)
from archs4.gan import GanConfig, rare_labels, synthetic_rows_for, train_gan
from archs4.training_data import (
    feature_names,
    features_and_labels,
    load_stored_gan,
    save_stored_gan,
    stored_gan_info,
    synthetic_rows,
    train_rows,
    train_studies,
)
from dagster_project.plots import figure_markdown
from dagster_project.quality import blocking_check, validate
from dagster_project.resources import (
    AugmentationResource,
    ClassifierResource,
    WarehouseResource,
)

# Synthetic values may exceed a feature's range over the real train rows by this share of that
# range on either side: a generator extrapolates a little, but values far outside what any real
# sample shows mean it has drifted. (Measured on the demo: no feature exceeds 25%, one exceeds
# 10%, 22 of 50 exceed the bare range.)
RANGE_TOLERANCE = 0.25


def _rare_and_counts(
    names: list[str], train: LabelledRows, augmentation: AugmentationResource
) -> tuple[list[str], dict[str, int]]:
    rare = _configured_rare_labels(train.labels, names, augmentation)
    return rare, rows_to_add(train.labels, names, rare)


def _configured_rare_labels(
    labels: np.ndarray, names: list[str], augmentation: AugmentationResource
) -> list[str]:
    return rare_labels(labels, names, max_train_fraction=augmentation.rare_fraction)


@dg.asset(
    group_name="augmentation",
    kinds={"pytorch"},
    deps=["sample_features", "sample_splits"],
    description=(
        "A conditional WGAN-GP (PyTorch, CPU, seeded) trained on the TRAIN split only, in the "
        "classifier's feature space, conditioned on each sample's label set; rare labels "
        "(few train rows, and `brain` always) are oversampled in its batches. Saved as tensors "
        "only (loads with weights_only)."
    ),
)
def gan_model(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    classifier: ClassifierResource,
    augmentation: AugmentationResource,
) -> dg.MaterializeResult:
    store = warehouse.get()
    names, train, _ = train_rows(store)
    config = GanConfig(epochs=augmentation.epochs, seed=classifier.seed)
    trained = train_gan(
        train.features, train.labels, config, progress=context.log.info, studies=train.studies
    )
    rare, counts = _rare_and_counts(names, train, augmentation)
    save_stored_gan(store, trained, {"labels": names, "rare": rare, "rows_per_label": counts})
    history = trained.history
    figure, axes = plt.subplots(figsize=(6, 3.2))
    axes.plot(history.critic_loss, label="critic loss")
    axes.plot(history.generator_loss, label="generator loss")
    axes.plot(history.wasserstein, label="Wasserstein estimate")
    axes.set_xlabel("epoch")
    axes.legend()
    axes.grid(alpha=0.3)
    return dg.MaterializeResult(
        metadata={
            "train_rows": train.n_rows,
            "rare_labels": ", ".join(rare),
            "train_seconds": round(trained.train_seconds, 1),
            "epochs": config.epochs,
            "final_wasserstein": float(history.wasserstein[-1]),
            "losses": dg.MetadataValue.md(figure_markdown(figure, "GAN losses")),
        }
    )


@dg.asset(
    group_name="augmentation",
    kinds={"parquet", "pytorch"},
    deps=[gan_model],
    description=(
        "Synthetic profiles for each rare label (long: synthetic_id, label, feature, value), "
        "as many as random oversampling adds, each conditioned on the label set of a real train "
        "row with that label. Synthetic everywhere they appear; never in validation or test."
    ),
)
def synthetic_samples(
    warehouse: WarehouseResource, classifier: ClassifierResource
) -> dg.MaterializeResult:
    store = warehouse.get()
    info = stored_gan_info(store)
    names, train, _ = train_rows(store)
    trained = load_stored_gan(store)
    parts = [
        synthetic_rows_for(
            trained,
            train.labels,
            names,
            [label],
            count,
            seed=classifier.seed + position,
            studies=train.studies,
        )
        for position, (label, count) in enumerate(info["rows_per_label"].items())
        if count
    ]
    columns = feature_names(store)
    features = (
        np.concatenate([p[0] for p in parts])
        if parts
        else np.empty((0, len(columns)), np.float32)  # no rare label to augment
    )
    label_of_row = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, str)
    frame = synthetic_samples_frame(features, label_of_row, columns)
    store.write_table(frame.to_arrow(), store.table_path(SYNTHETIC_SAMPLES_TABLE))
    figure, axes = plt.subplots(figsize=(5.5, 4.2))
    for label in info["rare"]:
        real = train.features[train.labels[:, names.index(label)] == 1]
        synthetic = features[label_of_row == label]
        if len(real) >= 2 and len(synthetic):
            real_2d, synthetic_2d = projection_2d(real, synthetic, seed=classifier.seed)
            axes.scatter(*real_2d[:, :2].T, s=8, alpha=0.6, label=f"{label} real")
            axes.scatter(*synthetic_2d[:, :2].T, s=8, alpha=0.4, marker="x", label=f"{label} GAN")
    axes.set_title("real vs synthetic (PCA of each label's real rows)")
    axes.legend(fontsize=7)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "synthetic_rows": int(features.shape[0]),
            "per_label": json.dumps(info["rows_per_label"]),
            "real_vs_synthetic": dg.MetadataValue.md(figure_markdown(figure, "projection")),
        }
    )


@dg.asset(
    group_name="augmentation",
    kinds={"parquet"},
    deps=[synthetic_samples],
    description=(
        "Real train rows plus the synthetic rows, in the feature space, with `is_synthetic` "
        "saying which is which (sample_idx for real rows, synthetic_id for synthetic ones)."
    ),
)
def augmented_training_set(warehouse: WarehouseResource) -> dg.MaterializeResult:
    store = warehouse.get()
    names, train, sample_idx = train_rows(store)
    synthetic = synthetic_rows(store, names, train.features.shape[1])
    rows = LabelledRows.concatenate([train, synthetic])
    frame = pl.DataFrame(rows.features, schema=feature_names(store)).with_columns(
        pl.Series("is_synthetic", [False] * train.n_rows + [True] * synthetic.n_rows),
        pl.Series("sample_idx", [*sample_idx.tolist(), *[None] * synthetic.n_rows], pl.Int32),
        pl.Series("synthetic_id", [*[None] * train.n_rows, *range(synthetic.n_rows)], pl.Int64),
        pl.Series("labels", [",".join(np.array(names)[r == 1]) for r in rows.labels]),
    )
    store.write_table(frame.to_arrow(), store.table_path(AUGMENTED_TRAINING_TABLE))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "real_rows": train.n_rows,
            "synthetic_rows": synthetic.n_rows,
        }
    )


@dg.asset(
    group_name="augmentation",
    kinds={"sklearn"},
    deps=[augmented_training_set],
    description=(
        "The classifier's Random Forest retrained on the augmented training set (thresholds "
        "tuned on the real validation split); evaluated as `rf_gan_augmented`."
    ),
)
def rf_gan_augmented(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    classifier: ClassifierResource,
) -> dg.MaterializeResult:
    store = warehouse.get()
    names, train, _ = train_rows(store)
    synthetic = synthetic_rows(store, names, train.features.shape[1])
    rows = LabelledRows.concatenate([train, synthetic])
    _, _, validation_features, validation_labels = features_and_labels(store, "validation")
    fit_tune_and_save(
        store,
        GAN_AUGMENTED_MODEL,
        train=(rows.features, rows.labels),
        validation=(validation_features, validation_labels),
        label_names=names,
        n_estimators=classifier.n_estimators,
        seed=classifier.seed,
        progress=context.log.info,
    )
    return dg.MaterializeResult(
        metadata={"training_rows": rows.n_rows, "model": GAN_AUGMENTED_MODEL}
    )


@dg.asset(
    group_name="augmentation",
    kinds={"parquet", "sklearn"},
    deps=[gan_model, "sample_splits"],
    description=(
        "Fidelity of the synthetic rows of each rare label against the real train rows of that "
        "label (per-feature mean and variance correlation, MMD, classifier two-sample AUROC, "
        "nearest-real-neighbour distance ratio) and usefulness (rare-label F1 and average "
        "precision on the real test split for no augmentation, class weights, random "
        "oversampling, SMOTE and the GAN; mean and std over seeds). Reported as measured."
    ),
)
def gan_evaluation(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    augmentation: AugmentationResource,
) -> dg.MaterializeResult:
    store = warehouse.get()
    info = stored_gan_info(store)
    names, train, _ = train_rows(store)  # with their studies, where the GAN places its rows
    parts = {"train": train}
    for split in ("validation", "test"):
        _, _, features, labels = features_and_labels(store, split)
        parts[split] = LabelledRows(features, labels)
    evaluation = (
        evaluate_augmentation(
            parts["train"],
            parts["validation"],
            parts["test"],
            names,
            rare=info["rare"],
            seeds=tuple(range(augmentation.evaluation_seeds)),
            n_estimators=augmentation.evaluation_trees,
            gan=load_stored_gan(store),
            progress=context.log.info,
        )
        if info["rare"]
        else pl.DataFrame(schema={"label": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64})
    )
    store.write_table(evaluation.to_arrow(), store.table_path(GAN_EVALUATION_TABLE))
    overall = evaluation.filter(pl.col("label") == "ALL_RARE")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": evaluation.height,
            "rare_labels": ", ".join(info["rare"]),
            "all_rare": dg.MetadataValue.md(overall.to_pandas().to_markdown(index=False)),
            "fidelity_per_label": dg.MetadataValue.md(_fidelity_table(evaluation)),
            "usefulness": dg.MetadataValue.md(_usefulness_plot(evaluation)),
        }
    )


def _fidelity_table(evaluation: pl.DataFrame) -> str:
    """One row per rare label (and ALL_RARE), one column per fidelity metric."""
    if evaluation.is_empty():
        return "no rare label"
    wide = (
        evaluation.filter(pl.col("metric").is_in([*FIDELITY_METRICS, POOLED_C2ST, "train_count"]))
        .pivot(on="metric", index="label", values="value")
        .with_columns(cs.float().round(3))
    )
    return wide.to_pandas().to_markdown(index=False)


def _usefulness_plot(evaluation: pl.DataFrame) -> str:
    rows = evaluation.filter(
        (pl.col("label") == "ALL_RARE") & pl.col("metric").str.starts_with("f1_")
    )
    methods = sorted({m.split("/", 1)[1] for m in rows["metric"].to_list()})
    means = [_metric(rows, f"f1_mean/{m}") for m in methods]
    spreads = [_metric(rows, f"f1_std/{m}") for m in methods]
    figure, axes = plt.subplots(figsize=(6, 3.2))
    axes.bar(methods, means, yerr=spreads, capsize=4)
    axes.set_ylabel("rare-label F1 (test, mean ± std)")
    axes.set_title("usefulness of each augmentation")
    axes.grid(alpha=0.3, axis="y")
    return figure_markdown(figure, "usefulness")


def _metric(rows: pl.DataFrame, metric: str) -> float:
    values = rows.filter(pl.col("metric") == metric)["value"]
    return float(values[0]) if values.len() else float("nan")


@blocking_check(
    asset=gan_model,
    description="GX suite `gan_losses`: training finished without divergence (losses finite).",
)
def gan_training_converged(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    history = load_stored_gan(warehouse.get()).history.as_array()
    frame = pd.DataFrame(history, columns=["critic_loss", "generator_loss", "wasserstein"])
    return validate(frame, "gan_losses")


@blocking_check(
    asset=synthetic_samples,
    description=(
        "GX suite `synthetic_profile` on one row per (rare label, feature): values finite and "
        "inside the feature's range over the real train rows widened by "
        f"{RANGE_TOLERANCE:.0%} of it on each side, and as many rows per label as configured."
    ),
)
def synthetic_samples_are_plausible(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    info = stored_gan_info(store)
    _, train, _ = train_rows(store)
    real_range = pl.DataFrame(
        {
            "feature": feature_names(store),
            "real_min": train.features.min(axis=0),
            "real_max": train.features.max(axis=0),
        }
    )
    synthetic = (
        store.read_table(SYNTHETIC_SAMPLES_TABLE)
        .group_by("label", "feature")
        .agg(
            pl.col("synthetic_id").n_unique().alias("n_rows"),
            pl.col("value").min().alias("synthetic_min"),
            pl.col("value").max().alias("synthetic_max"),
            (~pl.col("value").is_finite()).sum().alias("n_not_finite"),
        )
    )
    expected = pl.DataFrame(
        {
            "label": list(info["rows_per_label"]),
            "expected_rows": list(info["rows_per_label"].values()),
        },
        schema={"label": pl.Utf8, "expected_rows": pl.Int64},
    )
    margin = (pl.col("real_max") - pl.col("real_min")) * RANGE_TOLERANCE
    profile = (
        synthetic.join(real_range, on="feature", how="left")
        .join(expected, on="label", how="left")
        .with_columns(
            (pl.col("real_min") - margin).alias("low_bound"),
            (pl.col("real_max") + margin).alias("high_bound"),
        )
    )
    return validate(profile.to_pandas(), "synthetic_profile", tolerance=RANGE_TOLERANCE)


@blocking_check(
    asset=augmented_training_set,
    description=(
        "GX suite `augmented_rows`: every real row is in the training set (train samples "
        "`in_training_set`) and every synthetic row has no sample id, so no synthetic row (and "
        "no validation or test sample) is in it."
    ),
)
def augmented_rows_are_train_only(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    splits = store.read_table(SAMPLE_SPLITS_TABLE).select("sample_idx", "in_training_set")
    rows = (
        store.read_table(AUGMENTED_TRAINING_TABLE)
        .select("sample_idx", "synthetic_id", "is_synthetic")
        .join(splits, on="sample_idx", how="left")
        .with_columns(
            pl.when(pl.col("is_synthetic"))
            .then(pl.col("sample_idx").is_null() & pl.col("synthetic_id").is_not_null())
            .otherwise(pl.col("in_training_set"))
            .fill_null(False)
            .alias("allowed")
        )
    )
    return validate(rows.to_pandas(), "augmented_rows")


@dg.asset(
    group_name="augmentation",
    kinds={"parquet", "pytorch", "sklearn"},
    deps=["sample_features", "sample_splits", "samples"],
    description=(
        "Learning curves for rare labels (long: label, n_real, method, seed, metric, value): "
        "the label's real train rows cut to about n_real by whole study groups (fewest studies "
        "first), then no augmentation, class weights, random oversampling, SMOTE and a GAN "
        "retrained for each (n_real, seed), scored by the label's F1 and average precision on "
        "the fixed study-grouped test split. Default: brain, 3 seeds (ARCHS4_CURVE_*)."
    ),
)
def augmentation_curve(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    augmentation: AugmentationResource,
) -> dg.MaterializeResult:
    store = warehouse.get()
    studies = train_studies(store)
    names, _, validation_features, validation_labels = features_and_labels(store, "validation")
    _, _, test_features, test_labels = features_and_labels(store, "test")
    config = _curve_config(augmentation, names, studies)
    started = time.perf_counter()
    curve = compute_augmentation_curve(
        studies,
        LabelledRows(validation_features, validation_labels),
        LabelledRows(test_features, test_labels),
        names,
        config,
        progress=context.log.info,
    )
    store.write_table(curve.to_arrow(), store.table_path(AUGMENTATION_CURVE_TABLE))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": curve.height,
            "labels": ", ".join(config.labels),
            "seeds": len(config.seeds),
            "gan_epochs": config.gan.epochs,
            "seconds": round(time.perf_counter() - started, 1),
            **(_curve_metadata(curve) if curve.height else {}),
        }
    )


def _curve_metadata(curve: pl.DataFrame) -> dict:
    return {
        "mean_f1": dg.MetadataValue.md(curve_table(curve).to_pandas().to_markdown(index=False)),
        "f1_by_n_real": dg.MetadataValue.md(_curve_plot(curve)),
    }


def _curve_config(
    augmentation: AugmentationResource, names: list[str], studies: TrainStudies
) -> CurveConfig:
    labels = ["brain"]
    if augmentation.curve_labels == "rare":
        rare = _configured_rare_labels(studies.rows.labels, names, augmentation)
        labels += [label for label in rare if label != "brain"]
    return CurveConfig(
        labels=tuple(labels),
        n_real=tuple(augmentation.curve_n_real),
        seeds=tuple(range(augmentation.curve_seeds)),
        n_estimators=augmentation.curve_trees,
        gan=GanConfig(epochs=augmentation.curve_gan_epochs),
    )


def _curve_plot(curve: pl.DataFrame) -> str:
    """F1 against n_real per method, one panel per label: the mean over seeds and a band from
    the lowest to the highest seed."""
    f1 = curve.filter(pl.col("metric") == "f1")
    labels = f1["label"].unique(maintain_order=True).to_list()
    figure, panels = plt.subplots(1, len(labels), figsize=(5 * len(labels), 3.4), squeeze=False)
    for axes, label in zip(panels[0], labels, strict=True):
        for method in METHODS:
            points = (
                f1.filter((pl.col("label") == label) & (pl.col("method") == method))
                .group_by("n_real")
                .agg(
                    pl.col("value").mean().alias("mean"),
                    pl.col("value").min().alias("low"),
                    pl.col("value").max().alias("high"),
                )
                .sort("n_real")
            )
            axes.plot(points["n_real"], points["mean"], marker="o", label=method)
            axes.fill_between(points["n_real"], points["low"], points["high"], alpha=0.15)
        axes.set_xscale("log")
        axes.set_xlabel("real train samples of the label kept (n_real)")
        axes.set_ylabel(f"{label}: test F1")
        axes.grid(alpha=0.3)
    panels[0][0].legend(fontsize=7)
    figure.tight_layout()
    return figure_markdown(figure, "augmentation curve")


@blocking_check(
    asset=augmentation_curve,
    description=(
        "Every (label, n_real, method, seed) has f1, average_precision, n_real_kept, "
        "n_studies_kept and rows_added; F1 in [0, 1]; n_real_kept never above the label's "
        "train count; only the augmenting methods add rows."
    ),
)
def augmentation_curve_is_complete(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    problems = curve_problems(warehouse.get().read_table(AUGMENTATION_CURVE_TABLE))
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems[:10]) or "every point complete",
        metadata={"problems": len(problems)},
    )
