"""Labels layer: multi-hot tissue/cell-line labels per sample and the study-grouped splits."""

from pathlib import Path

import dagster as dg
import polars as pl

from archs4.datasets import SAMPLE_LABELS_TABLE, SAMPLE_SPLITS_TABLE, SAMPLES_DATASET
from archs4.labels import (
    import_labels,
    labelling_quality,
    load_vocabulary,
    read_label_directory,
    read_truth_table,
)
from archs4.splits import mark_training_set, split_by_study, split_label_counts, study_groups
from dagster_project.quality import blocking_check, validate
from dagster_project.resources import (
    CheckQueryResource,
    ClassifierResource,
    LabelSourcesResource,
    WarehouseResource,
)


@dg.asset(
    group_name="labels",
    kinds={"parquet", "polars"},
    deps=["samples"],
    description=(
        "Tissue-system and cell-line-group labels per sample (long: sample_idx, label, source): "
        "`metadata` from the vocabulary in assets/label_vocabulary.yaml matched on source name, "
        "characteristics and title; `import` from an ARCHS4 label download (`ARCHS4_LABELS`)."
    ),
)
def sample_labels(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    label_sources: LabelSourcesResource,
) -> dg.MaterializeResult:
    store = warehouse.get()
    vocabulary = load_vocabulary()
    samples = store.read_dataset(
        SAMPLES_DATASET, ["sample_idx", "gsm", "source_name", "characteristics", "title"]
    )
    parts = [vocabulary.label_samples(samples)]
    metadata: dict = {}
    if label_sources.directory:
        directory = read_label_directory(Path(label_sources.directory), vocabulary)
        imported, report = import_labels(directory, samples.select("gsm", "sample_idx"))
        parts.append(imported)
        metadata.update({f"import/{k}": v for k, v in report.as_metadata().items()})
        if report.n_unknown_gsms:
            context.log.warning(
                f"{report.n_unknown_gsms} GSMs of {label_sources.directory} are not in the "
                f"warehouse (counted, not imported), e.g. {report.unknown_gsm_examples[:5]}"
            )
    labels = pl.concat(parts).unique().sort("sample_idx", "label", "source")
    store.write_table(labels.to_arrow(), store.table_path(SAMPLE_LABELS_TABLE))
    per_label = (
        labels.group_by("label", "source")
        .len()
        .pivot("source", index="label", values="len")
        .fill_null(0)
        .sort("label")
    )
    labelled = labels["sample_idx"].n_unique()
    metadata.update(
        {
            "dagster/row_count": labels.height,
            "labelled_samples": labelled,
            "unlabelled_samples": samples.height - labelled,
            "per_label": dg.MetadataValue.md(per_label.to_pandas().to_markdown(index=False)),
        }
    )
    if label_sources.truth_path:
        quality = _labelling_quality(labels, samples, Path(label_sources.truth_path))
        overall = quality.filter(pl.col("label") == "ALL")
        for row in overall.iter_rows(named=True):
            metadata[f"quality/{row['scope']}/precision"] = row["precision"]
            metadata[f"quality/{row['scope']}/recall"] = row["recall"]
        metadata["quality/per_label"] = dg.MetadataValue.md(
            quality.filter(pl.col("scope") == "named_in_metadata")
            .select("label", "n_truth", "n_derived", "precision", "recall")
            .to_pandas()
            .to_markdown(index=False, floatfmt=".3f")
        )
    return dg.MaterializeResult(metadata=metadata)


def _labelling_quality(labels: pl.DataFrame, samples: pl.DataFrame, truth: Path) -> pl.DataFrame:
    truth_rows = read_truth_table(truth).join(samples.select("gsm", "sample_idx"), on="gsm")
    derived = labels.filter(pl.col("source") == "metadata").select("sample_idx", "label")
    return labelling_quality(derived.unique(), truth_rows)


@dg.asset(
    group_name="labels",
    kinds={"parquet", "scipy"},
    deps=[sample_labels],
    description=(
        "Train/validation/test split of the labelled samples by study: samples sharing any GSE "
        "id form one group (connected components), and a group lies wholly in one split, "
        "stratified over labels as far as the groups allow; seeded. `in_training_set` marks "
        "the train samples the models are fitted on (all of them up to `max_train_samples`)."
    ),
)
def sample_splits(
    warehouse: WarehouseResource, classifier: ClassifierResource
) -> dg.MaterializeResult:
    store = warehouse.get()
    labels = store.read_table(SAMPLE_LABELS_TABLE).select("sample_idx", "label").unique()
    groups = study_groups(store.read_dataset(SAMPLES_DATASET, ["sample_idx", "series_id"]))
    splits = mark_training_set(
        split_by_study(groups, labels, seed=classifier.seed).join(
            groups, on="sample_idx", how="left"
        ),
        labels,
        max_samples=classifier.max_train_samples,
        seed=classifier.seed,
    )
    store.write_table(splits.sort("sample_idx").to_arrow(), store.table_path(SAMPLE_SPLITS_TABLE))
    counts = split_label_counts(splits, labels)
    sizes = splits.group_by("split").len().sort("split")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": splits.height,
            **{f"samples/{row['split']}": row["len"] for row in sizes.iter_rows(named=True)},
            "study_groups": splits["group"].n_unique(),
            "samples/in_training_set": int(splits["in_training_set"].sum()),
            "per_label": dg.MetadataValue.md(counts.to_pandas().to_markdown(index=False)),
        }
    )


@blocking_check(
    asset=sample_labels,
    description="GX suite `sample_labels`: labels only from the vocabulary, known sources.",
)
def sample_labels_are_valid(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    store = warehouse.get()
    frame = store.read_table(SAMPLE_LABELS_TABLE).to_pandas()
    return validate(frame, "sample_labels", {"labels": list(load_vocabulary().labels)})


@blocking_check(
    asset=sample_splits,
    description=(
        "GX suite `split_profile` on one row per label and per study group "
        "(sql/checks/split_profile.sql): no study group or GSE id in two splits, every label "
        "in the training set."
    ),
)
def sample_splits_are_valid(
    warehouse: WarehouseResource, check_queries: CheckQueryResource
) -> dg.AssetCheckResult:
    store = warehouse.get()
    profile = check_queries.frame(
        "split_profile",
        splits_file=str(store.table_path(SAMPLE_SPLITS_TABLE)),
        labels_file=str(store.table_path(SAMPLE_LABELS_TABLE)),
        samples_glob=store.dataset_glob(SAMPLES_DATASET),
    )
    return validate(profile, "split_profile")
