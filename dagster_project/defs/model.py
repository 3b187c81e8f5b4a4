"""Model layer: the label-free feature space, the multi-label Random Forest, its evaluation
against the original work's configuration, and predictions for unlabelled samples."""

from pathlib import Path

import dagster as dg
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_curve

from archs4.baseline import original_configuration_evaluations
from archs4.blocks import read_registry
from archs4.classifier import (
    BASELINE_MODEL_NAME,
    OVERALL_METRICS,
    PER_LABEL_METRICS,
    evaluate,
    fit_tune_and_save,
    label_probabilities,
    load_classifier,
    model_card,
    predict_labels,
)
from archs4.datasets import GAN_AUGMENTED_MODEL as OUR_MODEL_GAN
from archs4.datasets import (
    MODEL_EVALUATION_TABLE,
    PREDICTIONS_TABLE,
    SAMPLE_FEATURES_TABLE,
    SAMPLE_LABELS_TABLE,
)
from archs4.datasets import RANDOM_FOREST_MODEL as OUR_MODEL
from archs4.labels import load_vocabulary
from archs4.training_data import (
    features_of_all_samples,
    fit_feature_space_on_samples,
    labelled_samples,
    load_feature_space,
    rows_of,
    save_feature_space,
    split_samples,
    stored_features,
)
from archs4.warehouse import Warehouse
from dagster_project.plots import figure_markdown
from dagster_project.quality import blocking_check, validate
from dagster_project.resources import CheckQueryResource, ClassifierResource, WarehouseResource


@dg.asset(
    group_name="model",
    kinds={"numpy", "sklearn"},
    deps=["expression", "sample_splits"],
    description=(
        "The classifier's feature space, fitted on train samples only and without labels: the "
        "most variable genes (streamed variance over train rows), standardized, then a seeded "
        "randomized PCA. Stored as plain arrays (.npz, no pickle)."
    ),
)
def feature_space(
    warehouse: WarehouseResource, classifier: ClassifierResource
) -> dg.MaterializeResult:
    store = warehouse.get()
    train = split_samples(store, "train")
    space = fit_feature_space_on_samples(
        store,
        train,
        n_top_genes=classifier.n_top_genes,
        n_components=classifier.n_components,
        seed=classifier.seed,
    )
    save_feature_space(store, space)
    return dg.MaterializeResult(metadata={**space.describe(), "n_train_samples": train.size})


@dg.asset(
    group_name="model",
    kinds={"parquet", "numpy"},
    deps=[feature_space],
    description="Every sample's coordinates in the feature space, computed block by block.",
)
def sample_features(warehouse: WarehouseResource) -> dg.MaterializeResult:
    store = warehouse.get()
    space = load_feature_space(store)
    ids, features = features_of_all_samples(store, space)
    table = pl.DataFrame(features, schema=space.feature_names).insert_column(
        0, pl.Series("sample_idx", ids.astype(np.int32))
    )
    store.write_table(table.to_arrow(), store.table_path(SAMPLE_FEATURES_TABLE))
    return dg.MaterializeResult(
        metadata={"dagster/row_count": table.height, "features": len(space.feature_names)}
    )


@dg.asset(
    group_name="model",
    kinds={"sklearn"},
    deps=[sample_features, "sample_labels", "sample_splits"],
    description=(
        "Multi-label Random Forest on the train split (class weights balanced per bootstrap "
        "sample), with per-label decision thresholds tuned for F1 on the validation split; "
        "saved with skops (loads without executing code) with its labels and thresholds."
    ),
)
def label_classifier(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    classifier: ClassifierResource,
) -> dg.MaterializeResult:
    store = warehouse.get()
    names, labelled, truth = labelled_samples(store)
    ids, features = stored_features(store)
    train, validation = split_samples(store, "train"), split_samples(store, "validation")
    validation_truth = truth[rows_of(labelled, validation)]
    fitted, validation_probabilities = fit_tune_and_save(
        store,
        OUR_MODEL,
        train=(features[rows_of(ids, train)], truth[rows_of(labelled, train)]),
        validation=(features[rows_of(ids, validation)], validation_truth),
        label_names=names,
        n_estimators=classifier.n_estimators,
        seed=classifier.seed,
        progress=context.log.info,
    )
    validation_metrics = evaluate(
        validation_truth, validation_probabilities, fitted.thresholds, names, OUR_MODEL
    )
    space = load_feature_space(store)
    card = model_card(
        model_name=OUR_MODEL,
        model=fitted.model,
        label_names=names,
        thresholds=fitted.thresholds,
        evaluation=validation_metrics,
        data_version=_data_version(store),
        feature_space=space,
        split_sizes={"train": train.size, "validation": validation.size},
        extra={"metrics_in_card": "validation split (test metrics: model_evaluation)"},
    )
    return dg.MaterializeResult(
        metadata={
            "model_card": dg.MetadataValue.json(card),
            "n_estimators": classifier.n_estimators,
            "train_samples": train.size,
            "validation_samples": validation.size,
        }
    )


def _data_version(store: Warehouse) -> str:
    registry = read_registry(store)
    releases = sorted(
        {
            f"{Path(path).name} v{version} sha256:{checksum[:12]}"
            for path, version, checksum in zip(
                registry.column("source_path").to_pylist(),
                registry.column("source_version").to_pylist(),
                registry.column("source_checksum").to_pylist(),
                strict=True,
            )
        }
    )
    return f"{'; '.join(releases)}; {registry.num_rows} samples"


def _ours_minus_baseline(ours: pl.DataFrame, comparable: pl.DataFrame) -> dict[str, float]:
    return {
        f"{metric}/ours_minus_baseline": _value(ours, metric) - _value(comparable, metric)
        for metric in ("f1_samples", "f1_macro", "f1_micro")
    }


@dg.asset(
    group_name="model",
    kinds={"parquet", "sklearn"},
    deps=[label_classifier, "rf_gan_augmented"],
    description=(
        "Test-split metrics (ALL: f1_samples, f1_micro, f1_macro, hamming_loss; per label: "
        "precision, recall, f1, average_precision) of our model, of it retrained on the "
        "GAN-augmented training set (`rf_gan_augmented`) and of the original work's "
        "configuration (10 trees, all genes, thresholds 0.5) on the same study-grouped test "
        "split; plus that configuration on its own random per-sample 67/33 split. Each "
        "baseline is fitted on at most `max_train_samples` rows and predicts block by block."
    ),
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    classifier: ClassifierResource,
) -> dg.MaterializeResult:
    store = warehouse.get()
    model, names, thresholds = load_classifier(store, OUR_MODEL)
    _, labelled, truth = labelled_samples(store)
    ids, features = stored_features(store)
    test = split_samples(store, "test")
    test_truth = truth[rows_of(labelled, test)]
    test_probabilities = label_probabilities(model, features[rows_of(ids, test)])
    ours = evaluate(test_truth, test_probabilities, thresholds, names, OUR_MODEL)
    gan_model, _, gan_thresholds = load_classifier(store, OUR_MODEL_GAN)
    augmented = evaluate(
        test_truth,
        label_probabilities(gan_model, features[rows_of(ids, test)]),
        gan_thresholds,
        names,
        OUR_MODEL_GAN,
    )
    comparable, own = original_configuration_evaluations(
        store,
        labelled=labelled,
        truth=truth,
        test=test,
        label_names=names,
        seed=classifier.seed,
        max_train_samples=classifier.max_train_samples,
        log=context.log.info,
    )
    evaluation = pl.concat([ours, augmented, comparable, own])
    store.write_table(evaluation.to_arrow(), store.table_path(MODEL_EVALUATION_TABLE))
    overall = evaluation.filter(pl.col("label") == "ALL").pivot(
        "model", index="metric", values="value"
    )
    card = model_card(
        model_name=OUR_MODEL,
        model=model,
        label_names=names,
        thresholds=thresholds,
        evaluation=ours,
        data_version=_data_version(store),
        split_sizes={"test": test.size},
        extra={"metrics_in_card": "test split"},
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": evaluation.height,
            "model_card": dg.MetadataValue.json(card),
            "overall": dg.MetadataValue.md(overall.to_pandas().to_markdown(index=False)),
            **_ours_minus_baseline(ours, comparable),
            "per_label": dg.MetadataValue.md(_per_label_table(evaluation)),
            "per_label_f1": dg.MetadataValue.md(_per_label_f1_plot(evaluation)),
            "precision_recall": dg.MetadataValue.md(
                _precision_recall_plot(test_truth, test_probabilities, names)
            ),
        }
    )


def _value(evaluation: pl.DataFrame, metric: str) -> float:
    row = evaluation.filter((pl.col("label") == "ALL") & (pl.col("metric") == metric))
    return float(row["value"][0])


def _per_label_table(evaluation: pl.DataFrame) -> str:
    table = (
        evaluation.filter(
            pl.col("model").is_in([OUR_MODEL, BASELINE_MODEL_NAME])
            & (pl.col("label") != "ALL")
            & pl.col("metric").is_in(["precision", "recall", "f1", "average_precision", "support"])
        )
        .with_columns((pl.col("model") + "/" + pl.col("metric")).alias("column"))
        .pivot("column", index="label", values="value")
        .sort("label")
    )
    return table.to_pandas().to_markdown(index=False, floatfmt=".3f")


def _precision_recall_plot(truth: np.ndarray, probabilities: np.ndarray, names: list[str]) -> str:
    """Micro-averaged precision-recall curve of our model on the test split, and the rarest
    labels' own curves."""
    figure, axes = plt.subplots(figsize=(5.5, 4))
    precision, recall, _ = precision_recall_curve(truth.ravel(), probabilities.ravel())
    axes.plot(recall, precision, label="all labels (micro)", linewidth=2)
    support = truth.sum(axis=0)
    for column in [c for c in np.argsort(support) if support[c] > 0][:3]:
        precision, recall, _ = precision_recall_curve(truth[:, column], probabilities[:, column])
        axes.plot(recall, precision, label=f"{names[column]} ({support[column]})", alpha=0.8)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title("random_forest, test split")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    return figure_markdown(figure, "precision-recall")


def _per_label_f1_plot(evaluation: pl.DataFrame) -> str:
    per_label = (
        evaluation.filter((pl.col("metric") == "f1") & (pl.col("label") != "ALL"))
        .pivot("model", index="label", values="value")
        .sort("label")
    )
    figure, axes = plt.subplots(figsize=(11, 3.6))
    models = [m for m in (OUR_MODEL, BASELINE_MODEL_NAME) if m in per_label.columns]
    positions = np.arange(per_label.height)
    for offset, name in enumerate(models):
        axes.bar(positions + offset * 0.4, per_label[name].fill_null(0), width=0.4, label=name)
    axes.set_xticks(positions + 0.2, per_label["label"].to_list(), rotation=70, fontsize=8)
    axes.set_ylabel("F1 on the test split")
    axes.legend()
    figure.tight_layout()
    return figure_markdown(figure, "per-label F1")


@dg.asset(
    group_name="model",
    kinds={"parquet", "sklearn"},
    deps=[label_classifier],
    description=(
        "Label probabilities and decisions (probability above the label's tuned threshold) for "
        "every sample without a label."
    ),
)
def predictions(warehouse: WarehouseResource) -> dg.MaterializeResult:
    store = warehouse.get()
    model, names, thresholds = load_classifier(store, OUR_MODEL)
    labelled = store.read_table(SAMPLE_LABELS_TABLE)["sample_idx"].unique().to_numpy()
    ids, features = stored_features(store)
    unlabelled = ~np.isin(ids, labelled)
    n_samples, n_labels = int(unlabelled.sum()), len(names)
    probabilities = (
        label_probabilities(model, features[unlabelled])
        if n_samples
        else np.zeros((0, n_labels))  # every sample has a label: nothing to predict
    )
    decided = predict_labels(probabilities, thresholds)
    table = pl.DataFrame(
        {
            "sample_idx": np.repeat(ids[unlabelled], n_labels).astype(np.int32),
            "label": np.tile(np.array(names), n_samples),
            "probability": probabilities.ravel(),
            "predicted": decided.ravel().astype(bool),
        }
    )
    store.write_table(table.to_arrow(), store.table_path(PREDICTIONS_TABLE))
    counts = table.filter(pl.col("predicted")).group_by("label").len().sort("len", descending=True)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "unlabelled_samples": n_samples,
            "samples_with_a_predicted_label": int(decided.any(axis=1).sum()),
            "predicted_per_label": dg.MetadataValue.md(counts.to_pandas().to_markdown(index=False)),
        }
    )


@blocking_check(
    asset=predictions,
    description=(
        "GX suite `prediction_profile` (sql/checks/prediction_profile.sql): probabilities in "
        "[0, 1], one row per label for each sample, and predictions only for unlabelled samples."
    ),
)
def predictions_are_valid(
    warehouse: WarehouseResource, check_queries: CheckQueryResource
) -> dg.AssetCheckResult:
    store = warehouse.get()
    profile = check_queries.frame(
        "prediction_profile",
        predictions_file=str(store.table_path(PREDICTIONS_TABLE)),
        labels_file=str(store.table_path(SAMPLE_LABELS_TABLE)),
    )
    return validate(profile, "prediction_profile", {"n_labels": len(load_vocabulary().labels)})


@blocking_check(
    asset=model_evaluation,
    description="Every model has every metric of the contract, for ALL and per label.",
)
def model_evaluation_is_complete(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    frame = store.read_table(MODEL_EVALUATION_TABLE)
    required, per_label = set(OVERALL_METRICS), set(PER_LABEL_METRICS)
    missing = []
    for model_name in frame["model"].unique().to_list():
        rows = frame.filter(pl.col("model") == model_name)
        overall = set(rows.filter(pl.col("label") == "ALL")["metric"].to_list())
        labelled = set(rows.filter(pl.col("label") != "ALL")["metric"].to_list())
        missing += [f"{model_name}: {m}" for m in sorted(required - overall)]
        missing += [f"{model_name}: {m} per label" for m in sorted(per_label - labelled)]
    return dg.AssetCheckResult(
        passed=not missing,
        description="every metric present" if not missing else f"missing: {missing}",
        metadata={"models": frame["model"].n_unique()},
    )
