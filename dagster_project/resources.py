"""Resources: every external thing the assets touch (the release file, the warehouse storage,
the DuckDB catalog), configured from validated settings (`archs4.settings`) so `make run`,
`make ui` and the tests share one definition."""

import os
import tempfile
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import polars as pl
from pydantic import Field

from archs4.budget import default_budget_bytes
from archs4.by_gene import DEFAULT_VALUES_PER_CHUNK
from archs4.catalog import build_catalog, connect_read_only
from archs4.coexpression import DEFAULT_MAX_SAMPLES, DEFAULT_TOP_K
from archs4.gene_lengths import LengthMethod, gene_lengths_from_gtf
from archs4.paths import read_sql
from archs4.preflight import RunInputs
from archs4.quantile_norm import LengthAdjustment
from archs4.reader import Archs4Source, open_archs4
from archs4.releases import newest_release
from archs4.settings import Settings
from archs4.splits import DEFAULT_MAX_TRAIN_SAMPLES
from archs4.warehouse import Warehouse

DEFAULT_BLOCK_SIZE = Settings.block_size


class Archs4SourceResource(dg.ConfigurableResource):
    """The ARCHS4 gene-level release file the warehouse is built from."""

    path: str = Field(
        description="An ARCHS4 gene-level .h5 file, or a directory of release files (the "
        "newest by the version in its name is used)."
    )
    species: str | None = Field(
        default=None,
        description="human or mouse: the releases of `path` this warehouse builds (needed "
        "when the directory holds both species' files).",
    )
    block_size: int = Field(
        default=DEFAULT_BLOCK_SIZE,
        description="Samples per block (rounded up to whole HDF5 sample chunks).",
    )

    def release_path(self) -> Path:
        """The release file to build from: the file itself, or the newest of the directory."""
        return newest_release(Path(self.path), self.species)

    def open(self) -> Archs4Source:
        return open_archs4(self.release_path())


class GeneAnnotationResource(dg.ConfigurableResource):
    """The GENCODE/Ensembl GTF that gives each gene its longest-transcript length."""

    path: str = Field(description="A GTF file (.gtf or .gtf.gz) matching the release's genes.")
    length_method: LengthMethod = Field(
        default="longest_transcript",
        description="longest_transcript (the contract); union_exons only for GTFs without "
        "transcript ids, and recorded as such.",
    )

    def lengths(self) -> pl.DataFrame:
        return gene_lengths_from_gtf(Path(self.path), method=self.length_method)


class NormalizationResource(dg.ConfigurableResource):
    """How quantile-normalized values are adjusted for gene length, and how much of each
    block the blocking check recomputes."""

    length_adjustment: LengthAdjustment = Field(
        default="divide",
        description="divide: qn / (length_bp / 1000) (the original description); "
        "subtract_log2: qn - log2(length_bp / 1000); none: qn.",
    )
    check_recomputed_samples: int = Field(
        default=100,
        description="Samples per block whose values the blocking `expression` check recomputes "
        "in SQL (all of a smaller block, else evenly spaced ones). Every sample's row count, "
        "finiteness and gene lengths are checked whatever this is.",
    )


class LabelSourcesResource(dg.ConfigurableResource):
    """Where sample labels come from besides the metadata vocabulary (assets/)."""

    directory: str | None = Field(
        default=None,
        description="An ARCHS4 label download directory (<root>/<cell_lines|tissue_types>/"
        "<label>/*.tsv), or none.",
    )
    truth_path: str | None = Field(
        default=None,
        description="A ground-truth table (gsm, label, named_in_metadata) to measure the "
        "labelling against; the demo dataset ships one.",
    )


class ClassifierResource(dg.ConfigurableResource):
    """Parameters of the feature space and the Random Forest."""

    n_top_genes: int = Field(default=2000, description="Most variable genes (train rows) kept.")
    n_components: int = Field(default=50, description="Principal components used as features.")
    n_estimators: int = Field(default=300, description="Trees of the Random Forest.")
    max_train_samples: int = Field(
        default=DEFAULT_MAX_TRAIN_SAMPLES,
        description="Train samples the models are fitted on (a seeded subset keeping rare "
        "labels whole when the train split is larger): bounds the forest's memory.",
    )
    seed: int = Field(default=0, description="Seed of splits, PCA and forests.")


class AugmentationResource(dg.ConfigurableResource):
    """How the rare labels are augmented and the augmentation evaluated."""

    epochs: int = Field(default=600, description="GAN training epochs.")
    rare_fraction: float = Field(
        default=0.05, description="Labels with at most this share of the train rows are rare."
    )
    evaluation_seeds: int = Field(default=3, description="Seeds of the usefulness comparison.")
    evaluation_trees: int = Field(default=100, description="Trees of each compared forest.")
    curve_labels: str = Field(
        default="brain",
        description="Labels of `augmentation_curve`: `brain`, or `rare` (brain and every rare "
        "label).",
    )
    curve_n_real: list[int] = Field(
        default=[5, 10, 20, 50],
        description="Real train rows of the label kept at each point (all of them is added).",
    )
    curve_seeds: int = Field(default=3, description="Seeds of each point of the curve.")
    curve_gan_epochs: int = Field(default=50, description="Epochs of each GAN of the curve.")
    curve_trees: int = Field(default=100, description="Trees of each forest of the curve.")


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse root (local or shared storage; fsspec URL or path)."""

    root: str = Field(description="Root directory of the Parquet layers and the catalog.")
    gene_chunk_values: int = Field(
        default=DEFAULT_VALUES_PER_CHUNK,
        description="Values per gene chunk of `expression_by_gene`: the memory of the "
        "gene-clustered copy and the gene metrics, whatever the number of samples.",
    )

    def get(self) -> Warehouse:
        return Warehouse.at(self.root)


class CoexpressionResource(dg.ConfigurableResource):
    """How the stored gene co-expression (`gene_coexpression`) is computed."""

    max_samples: int = Field(
        default=DEFAULT_MAX_SAMPLES,
        description="Samples the correlations are computed over: all of them up to this many, "
        "else a seeded subset of this size (ARCHS4_COEXPRESSION_SAMPLES).",
    )
    top_k: int = Field(default=DEFAULT_TOP_K, description="Partners stored per gene.")
    memory_budget_bytes: int | None = Field(
        default=None,
        description="Memory the genes x samples float32 matrix must fit in, with its working "
        "memory (fewer samples when it would not); none: the default budget "
        "(archs4.budget), taken when the asset runs.",
    )

    def budget_bytes(self) -> int:
        """The memory budget in bytes (the default one unless set)."""
        return self.memory_budget_bytes or default_budget_bytes()


class CheckQueryResource(dg.ConfigurableResource):
    """DuckDB for the checks' queries (`sql/checks/`): one worker's share of the memory budget
    and of the cores, spilling to a fresh temporary directory beyond it.

    Block checks run beside the other block workers; with DuckDB's default (80% of the
    machine's memory each), two checks and two normalizations took 21 of 24 GB in the
    rehearsal's normalization stage.
    """

    memory_limit_mb: int = Field(default=1024, description="DuckDB's memory_limit, in MiB.")
    threads: int = Field(default=1, description="DuckDB's threads.")

    def connection_config(self) -> dict[str, str | int]:
        spill = Path(tempfile.gettempdir()) / f"archs4-check-{uuid.uuid4().hex}"
        return {
            "memory_limit": f"{self.memory_limit_mb}MiB",
            "threads": self.threads,
            "temp_directory": str(spill),
        }

    def frame(self, name: str, **parameters: object) -> pd.DataFrame:
        """The result of `sql/checks/<name>.sql` with its `$parameters` bound."""
        with duckdb.connect(config=self.connection_config()) as connection:
            return connection.sql(read_sql(f"checks/{name}.sql"), params=parameters).df()


def check_queries(settings: Settings) -> CheckQueryResource:
    """One worker's share (`ARCHS4_WORKERS`) of `ARCHS4_MEMORY_GB` (at least 256 MiB) and of
    the cores."""
    workers = settings.worker_count
    return CheckQueryResource(
        memory_limit_mb=max(settings.memory_budget_bytes // workers >> 20, 256),
        threads=max(1, (os.cpu_count() or 1) // workers),
    )


class DuckDBCatalogResource(dg.ConfigurableResource):
    """The DuckDB catalog of views over the warehouse: one writer, many read-only readers."""

    warehouse_root: str

    def rebuild(self) -> dict[str, int]:
        return build_catalog(Warehouse.at(self.warehouse_root))

    def read_only(self) -> duckdb.DuckDBPyConnection:
        return connect_read_only(Warehouse.at(self.warehouse_root))


def label_sources(settings: Settings) -> LabelSourcesResource:
    labels, truth = settings.labels_path, settings.labels_truth_path
    return LabelSourcesResource(
        directory=str(labels) if labels else None, truth_path=str(truth) if truth else None
    )


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Every resource, configured from validated settings."""
    root = str(Warehouse.at(str(settings.warehouse)).root)
    return {
        "source": Archs4SourceResource(
            path=str(settings.source_path),
            species=settings.species,
            block_size=settings.block_size,
        ),
        "annotation": GeneAnnotationResource(path=str(settings.gtf_path)),
        "normalization": NormalizationResource(
            length_adjustment=settings.length_adjustment,  # type: ignore[arg-type]
            check_recomputed_samples=settings.check_recomputed_samples,
        ),
        "warehouse": WarehouseResource(root=root, gene_chunk_values=settings.gene_chunk_values),
        "label_sources": label_sources(settings),
        "augmentation": AugmentationResource(
            epochs=settings.gan_epochs,
            curve_labels=settings.curve_labels,
            curve_seeds=settings.curve_seeds,
            curve_gan_epochs=settings.curve_gan_epochs,
        ),
        "classifier": ClassifierResource(
            n_estimators=settings.rf_trees, max_train_samples=settings.max_train_samples
        ),
        "coexpression": CoexpressionResource(
            max_samples=settings.coexpression_samples,
            memory_budget_bytes=settings.memory_budget_bytes,
        ),
        "catalog": DuckDBCatalogResource(warehouse_root=root),
        "check_queries": check_queries(settings),
    }


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """Every resource, configured from the `ARCHS4_*` variables (SettingsError names a bad one)."""
    return resources_from_settings(Settings.from_env())


def run_inputs(
    source: Archs4SourceResource,
    annotation: GeneAnnotationResource,
    label_sources: LabelSourcesResource,
    warehouse: WarehouseResource,
) -> RunInputs:
    """What a run reads and writes, for `archs4.preflight.check_inputs`."""
    return RunInputs(
        source=Path(source.path),
        gtf=Path(annotation.path),
        labels=Path(label_sources.directory) if label_sources.directory else None,
        warehouse=warehouse.get(),
        length_method=annotation.length_method,
        species=source.species,
    )
