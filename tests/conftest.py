"""Shared fixtures: a small warehouse built once per session from an ARCHS4-layout file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import h5py
import numpy as np
import pytest

from archs4.demo_data import write_demo_dataset
from dagster_project.headless import materialize_everything
from dagster_project.resources import (
    Archs4SourceResource,
    AugmentationResource,
    CheckQueryResource,
    ClassifierResource,
    CoexpressionResource,
    DuckDBCatalogResource,
    GeneAnnotationResource,
    LabelSourcesResource,
    NormalizationResource,
    WarehouseResource,
)
from tests.archs4_files import example_counts, write_archs4_file, write_gtf

N_GENES, N_SAMPLES, BLOCK_SIZE = 45, 47, 10
# Block boundaries follow each file's HDF5 chunking, so they may differ between layouts.
SOURCE_COLUMNS_DIFFERING_BY_FILE = {"source_path", "source_version", "block"}


def resources_for(source: Path, gtf: Path, root: Path, method: str = "divide") -> dict:
    return {
        "source": Archs4SourceResource(path=str(source), block_size=BLOCK_SIZE),
        "annotation": GeneAnnotationResource(path=str(gtf)),
        "normalization": NormalizationResource(length_adjustment=method),  # type: ignore[arg-type]
        "warehouse": WarehouseResource(root=str(root)),
        "coexpression": CoexpressionResource(),
        "catalog": DuckDBCatalogResource(warehouse_root=str(root)),
        "label_sources": LabelSourcesResource(),
        "classifier": ClassifierResource(n_estimators=100),
        # The smallest curve that still has two points and two seeds (the default: ~12 min).
        "augmentation": AugmentationResource(
            evaluation_trees=30, curve_n_real=[5], curve_seeds=2, curve_gan_epochs=5, curve_trees=20
        ),
        "check_queries": CheckQueryResource(),
    }


def build(tmp: Path, name: str, counts: np.ndarray, **layout) -> tuple[Path, dict[str, int]]:
    """Write `counts` as an ARCHS4 file plus a GTF and materialize the whole graph."""
    source = write_archs4_file(tmp / f"{name}.h5", counts, **layout)
    expected_lengths = write_gtf(tmp / "genes.gtf", counts.shape[0])
    root = tmp / f"warehouse_{name}"
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_everything(instance, resources_for(source, tmp / "genes.gtf", root))
    return root, expected_lengths


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory):
    """(tmp dir, source counts, warehouse root, expected gene lengths by Ensembl id)."""
    tmp = tmp_path_factory.mktemp("pipeline")
    counts = example_counts(N_GENES, N_SAMPLES, seed=3)
    root, lengths = build(tmp, "human_gene_v2.6", counts, layout="v2.6", chunks=(20, 5))
    return tmp, counts, root, lengths


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The whole graph on the default demo dataset, built once per session (a few minutes):
    (demo paths, warehouse root, the source counts, the blocks). Shared by every module that
    compares the demo warehouse with an independent reference."""
    tmp = tmp_path_factory.mktemp("demo")
    # The default demo size: the classifier comparison needs enough studies per label.
    paths = write_demo_dataset(tmp / "data")
    root = tmp / "warehouse"
    resources = resources_for(paths.h5, paths.gtf, root)
    resources["source"] = Archs4SourceResource(path=str(paths.h5), block_size=1000)
    resources["label_sources"] = LabelSourcesResource(
        directory=str(paths.labels_dir), truth_path=str(paths.truth)
    )
    with dg.DagsterInstance.ephemeral() as instance:
        blocks = materialize_everything(instance, resources)
        target = (root / "reference" / "qn_target.parquet").read_bytes()
        registry = (root / "raw" / "sample_registry.parquet").read_bytes()
        # A second full run registers no new block and keeps the frozen target as it was.
        assert materialize_everything(instance, resources) == blocks
        assert (root / "reference" / "qn_target.parquet").read_bytes() == target
        assert (root / "raw" / "sample_registry.parquet").read_bytes() == registry
    with h5py.File(paths.h5, "r") as handle:
        counts = handle["data/expression"][:]
    return paths, root, counts, blocks
