"""What each asset writes under the warehouse root, and what it reads from outside it.

`make run` compares these files with their inputs to know what is missing or stale
(`dagster_project.plan`), and `make update` refreshes the assets that are not fitted. A test
checks that every asset of the graph is here, so an asset added to the graph cannot be
skipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from archs4.by_gene import EXPRESSION_BY_GENE_MANIFEST
from archs4.coexpression import COEXPRESSION_TABLE
from archs4.expression import EXPRESSION_DATASET, QN_TARGET_TABLE
from archs4.ingest import COUNTS_DATASET, GENES_TABLE, SAMPLES_DATASET
from archs4.metrics_table import GENE_METRICS_TABLE, GENE_WINDOWS_TABLE
from archs4.releases import RELEASE_INFO_TABLE, RELEASE_RECORD


def table(dataset: str) -> str:
    return f"{dataset}.parquet"


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
        files=(RELEASE_RECORD, "raw/sample_registry.parquet", table(RELEASE_INFO_TABLE)),
        inputs=("source",),
    ),
    "gene_lengths": AssetOutputs(files=("reference/gene_lengths.parquet",), inputs=("gtf",)),
    "genes": AssetOutputs(files=(table(GENES_TABLE),)),
    "samples": AssetOutputs(block_datasets=(SAMPLES_DATASET,)),
    "counts": AssetOutputs(block_datasets=(COUNTS_DATASET,)),
    "qn_target": AssetOutputs(files=(table(QN_TARGET_TABLE),), frozen=True),
    "expression": AssetOutputs(block_datasets=(EXPRESSION_DATASET,)),
    "expression_by_gene": AssetOutputs(files=(EXPRESSION_BY_GENE_MANIFEST,)),
    "gene_metrics": AssetOutputs(files=(table(GENE_METRICS_TABLE), table(GENE_WINDOWS_TABLE))),
    "gene_coexpression": AssetOutputs(files=(table(COEXPRESSION_TABLE),)),
    "sample_labels": AssetOutputs(files=("labels/sample_labels.parquet",), inputs=("labels",)),
    "sample_splits": AssetOutputs(files=("labels/sample_splits.parquet",), frozen=True),
    "feature_space": AssetOutputs(files=("model/feature_space.npz",), frozen=True),
    "sample_features": AssetOutputs(files=("model/sample_features.parquet",)),
    "label_classifier": AssetOutputs(
        files=("model/random_forest.skops", "model/random_forest.json"), frozen=True
    ),
    "predictions": AssetOutputs(files=("model/predictions.parquet",)),
    "model_evaluation": AssetOutputs(files=("model/model_evaluation.parquet",), frozen=True),
    "gan_model": AssetOutputs(files=("model/gan.pt", "model/gan.json"), frozen=True),
    "synthetic_samples": AssetOutputs(files=("model/synthetic_samples.parquet",), frozen=True),
    "augmented_training_set": AssetOutputs(
        files=("model/augmented_training_set.parquet",), frozen=True
    ),
    "rf_gan_augmented": AssetOutputs(
        files=("model/rf_gan_augmented.skops", "model/rf_gan_augmented.json"), frozen=True
    ),
    "gan_evaluation": AssetOutputs(files=("model/gan_evaluation.parquet",), frozen=True),
    "warehouse_catalog": AssetOutputs(files=("warehouse.duckdb",)),
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
