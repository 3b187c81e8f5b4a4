"""Every dataset and file of the warehouse, named once: its path under the root, how it is
partitioned, and the catalog view over it.

The library's readers and writers, the assets (`dagster_project.outputs` says which asset writes
what), the DuckDB catalog (`archs4.catalog`) and the tests take these names from here. A
dataset's `template` is how `sql/catalog/*.sql` names it (`${raw_counts}`); a test checks that
the catalog's views are exactly the `view`s named here.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- Parquet datasets (paths under the root, without `.parquet`) ---------------------------
SAMPLES_DATASET = "raw/samples"
COUNTS_DATASET = "raw/counts"
GENES_TABLE = "raw/genes"
SAMPLE_REGISTRY_TABLE = "raw/sample_registry"
RELEASE_INFO_TABLE = "raw/release_info"
GENE_LENGTHS_TABLE = "reference/gene_lengths"
QN_TARGET_TABLE = "reference/qn_target"
EXPRESSION_DATASET = "normalized/expression"
EXPRESSION_BY_GENE_DATASET = "normalized/expression_by_gene"
GENE_METRICS_TABLE = "metrics/gene_metrics"
GENE_WINDOWS_TABLE = "metrics/gene_windows"
COEXPRESSION_TABLE = "metrics/gene_coexpression"
SAMPLE_LABELS_TABLE = "labels/sample_labels"
SAMPLE_SPLITS_TABLE = "labels/sample_splits"
SAMPLE_FEATURES_TABLE = "model/sample_features"
PREDICTIONS_TABLE = "model/predictions"
MODEL_EVALUATION_TABLE = "model/model_evaluation"
SYNTHETIC_SAMPLES_TABLE = "model/synthetic_samples"
AUGMENTED_TRAINING_TABLE = "model/augmented_training_set"
GAN_EVALUATION_TABLE = "model/gan_evaluation"
AUGMENTATION_CURVE_TABLE = "model/augmentation_curve"

# -- Other files (paths under the root) -----------------------------------------------------
RELEASE_RECORD = "raw/release.json"
EXPRESSION_BY_GENE_MANIFEST = "normalized/expression_by_gene.json"
FEATURE_SPACE_FILE = "model/feature_space.npz"
GAN_FILE = "model/gan.pt"
GAN_INFO_FILE = "model/gan.json"
CATALOG_FILE = "warehouse.duckdb"
FAILED_CHECKS_DIR = "checks/failed"
MODEL_DIR = "model"  # a classifier `name` is `<name>.skops` and its `<name>.json` here
RANDOM_FOREST_MODEL = "random_forest"
GAN_AUGMENTED_MODEL = "rf_gan_augmented"
CLASSIFIER_MODELS = (RANDOM_FOREST_MODEL, GAN_AUGMENTED_MODEL)


@dataclass(frozen=True)
class Dataset:
    """One Parquet dataset and how the catalog's views read it.

    `path` is relative to the root: a directory of `<partition>=<key>/*.parquet` files when
    `partition` is set, else the single file `<path>.parquet`. `hive` says whether the partition
    key becomes a column (always a string such as '000012', never cast to a number).
    `one_schema` says that every file must have the same columns, checked on each scan (a
    footer read per file): set where the columns change between versions of the code. `view` is
    the catalog view over it.
    """

    path: str
    view: str
    partition: str | None = None
    hive: bool = False
    one_schema: bool = False

    @property
    def template(self) -> str:
        """The dataset's name in `sql/catalog` templates, e.g. `raw_counts`."""
        return self.path.replace("/", "_")


CATALOG_DATASETS: tuple[Dataset, ...] = (
    Dataset(SAMPLES_DATASET, "samples", "block", one_schema=True),
    Dataset(COUNTS_DATASET, "counts", "block", hive=True),
    Dataset(GENES_TABLE, "genes"),
    Dataset(SAMPLE_REGISTRY_TABLE, "blocks"),
    Dataset(RELEASE_INFO_TABLE, "release_info"),
    Dataset(QN_TARGET_TABLE, "qn_target"),
    Dataset(EXPRESSION_DATASET, "expression", "block", hive=True),
    Dataset(EXPRESSION_BY_GENE_DATASET, "expression_by_gene", "chunk"),
    Dataset(GENE_METRICS_TABLE, "gene_metrics"),
    Dataset(GENE_WINDOWS_TABLE, "gene_windows"),
    Dataset(COEXPRESSION_TABLE, "gene_coexpression"),
    Dataset(SAMPLE_LABELS_TABLE, "sample_labels"),
    Dataset(SAMPLE_SPLITS_TABLE, "sample_splits"),
    Dataset(PREDICTIONS_TABLE, "predictions"),
    Dataset(MODEL_EVALUATION_TABLE, "model_evaluation"),
    Dataset(SYNTHETIC_SAMPLES_TABLE, "synthetic_samples"),
    Dataset(GAN_EVALUATION_TABLE, "gan_evaluation"),
    Dataset(AUGMENTATION_CURVE_TABLE, "augmentation_curve"),
)


def table_file(dataset: str) -> str:
    """The file of an unpartitioned table, e.g. `raw/genes` -> `raw/genes.parquet`."""
    return f"{dataset}.parquet"


def classifier_files(name: str) -> tuple[str, str]:
    """The model file (skops) and the info JSON of the classifier `name`."""
    return f"{MODEL_DIR}/{name}.skops", f"{MODEL_DIR}/{name}.json"
