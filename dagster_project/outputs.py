"""What each asset writes under the warehouse root, and what it reads from outside it.

`make run` compares these files with their inputs to know what is missing or stale
(`dagster_project.plan`), and `make update` refreshes the assets that are not fitted. A test
checks that every asset of the graph is here, so an asset added to the graph cannot be
skipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from archs4 import datasets as d
from archs4.datasets import classifier_files, table_file


@dataclass(frozen=True)
class AssetOutputs:
    """Files (paths under the root), block-partitioned datasets, external inputs read
    (`source`, `gtf`, `labels`), and whether the asset is fitted once and then kept."""

    files: tuple[str, ...] = ()
    block_datasets: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    frozen: bool = False


ASSET_OUTPUTS: dict[str, AssetOutputs] = {
    "source_release": AssetOutputs(
        files=(
            d.RELEASE_RECORD,
            table_file(d.SAMPLE_REGISTRY_TABLE),
            table_file(d.RELEASE_INFO_TABLE),
        ),
        inputs=("source",),
    ),
    "gene_lengths": AssetOutputs(files=(table_file(d.GENE_LENGTHS_TABLE),), inputs=("gtf",)),
    "genes": AssetOutputs(files=(table_file(d.GENES_TABLE),)),
    "samples": AssetOutputs(block_datasets=(d.SAMPLES_DATASET,)),
    "counts": AssetOutputs(block_datasets=(d.COUNTS_DATASET,)),
    "qn_target": AssetOutputs(files=(table_file(d.QN_TARGET_TABLE),), frozen=True),
    "expression": AssetOutputs(block_datasets=(d.EXPRESSION_DATASET,)),
    "expression_by_gene": AssetOutputs(files=(d.EXPRESSION_BY_GENE_MANIFEST,)),
    "gene_metrics": AssetOutputs(
        files=(table_file(d.GENE_METRICS_TABLE), table_file(d.GENE_WINDOWS_TABLE))
    ),
    "gene_coexpression": AssetOutputs(files=(table_file(d.COEXPRESSION_TABLE),)),
    "sample_labels": AssetOutputs(files=(table_file(d.SAMPLE_LABELS_TABLE),), inputs=("labels",)),
    "sample_splits": AssetOutputs(files=(table_file(d.SAMPLE_SPLITS_TABLE),), frozen=True),
    "feature_space": AssetOutputs(files=(d.FEATURE_SPACE_FILE,), frozen=True),
    "sample_features": AssetOutputs(files=(table_file(d.SAMPLE_FEATURES_TABLE),)),
    "label_classifier": AssetOutputs(files=classifier_files(d.RANDOM_FOREST_MODEL), frozen=True),
    "predictions": AssetOutputs(files=(table_file(d.PREDICTIONS_TABLE),)),
    "model_evaluation": AssetOutputs(files=(table_file(d.MODEL_EVALUATION_TABLE),), frozen=True),
    "gan_model": AssetOutputs(files=(d.GAN_FILE, d.GAN_INFO_FILE), frozen=True),
    "synthetic_samples": AssetOutputs(files=(table_file(d.SYNTHETIC_SAMPLES_TABLE),), frozen=True),
    "augmented_training_set": AssetOutputs(
        files=(table_file(d.AUGMENTED_TRAINING_TABLE),), frozen=True
    ),
    "rf_gan_augmented": AssetOutputs(files=classifier_files(d.GAN_AUGMENTED_MODEL), frozen=True),
    "gan_evaluation": AssetOutputs(files=(table_file(d.GAN_EVALUATION_TABLE),), frozen=True),
    "augmentation_curve": AssetOutputs(
        files=(table_file(d.AUGMENTATION_CURVE_TABLE),), frozen=True
    ),
    "warehouse_catalog": AssetOutputs(files=(d.CATALOG_FILE,)),
}


def refreshed_assets() -> list[str]:
    """The cross-sample assets `make update` refreshes after new blocks: every unpartitioned
    asset that is neither fitted nor a registration step."""
    registration = {"source_release", "gene_lengths", "genes"}
    return [
        name
        for name, outputs in ASSET_OUTPUTS.items()
        if not outputs.frozen and not outputs.block_datasets and name not in registration
    ]
