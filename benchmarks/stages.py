"""One benchmark stage, run in a fresh process so its peak memory is its own.

`python -m benchmarks.stages STAGE SOURCE WAREHOUSE BLOCK_SIZE` prints one JSON object with the
stage's wall time, peak resident memory (VmHWM) and stage-specific figures. The reference
stages (a plain h5py block read, `qnorm.quantile_normalize`) run on the same data in the same
benchmark run, so every ratio compares like with like on this machine. So do the stages kept
in their own modules: the access paths against archs4py and h5py (`benchmarks.access_paths`),
the kernels' SQL and Polars forms (`benchmarks.kernel_forms`) and the bytes on disk of every
layer (`benchmarks.disk`).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from archs4.blocks import block_plans, read_registry
from archs4.budget import default_budget_bytes
from archs4.by_gene import build_expression_by_gene, iter_gene_chunks
from archs4.catalog import connect_read_only
from archs4.coexpression import coexpressed, compute_gene_coexpression
from archs4.datasets import (
    COEXPRESSION_TABLE,
    COUNTS_DATASET,
    EXPRESSION_BY_GENE_DATASET,
    EXPRESSION_DATASET,
    GENE_METRICS_TABLE,
    GENES_TABLE,
    QN_TARGET_TABLE,
    SAMPLES_DATASET,
)
from archs4.expression import (
    accumulate_target,
    normalize_stored_block,
    read_target,
    recomputed_sample_idx,
    write_target,
)
from archs4.ingest import genes_table, ingest_block, register_release
from archs4.labels import read_truth_table
from archs4.metrics_table import compute_gene_metrics
from archs4.settings import Settings
from archs4.splits import DEFAULT_MAX_TRAIN_SAMPLES, mark_training_set, split_by_study, study_groups
from archs4.training_data import (
    features_of_all_samples,
    fit_feature_space_on_samples,
    label_matrix,
)
from archs4.warehouse import Warehouse
from benchmarks.access_paths import gene_access, sample_access
from benchmarks.api_tasks import api_tasks
from benchmarks.disk import BENCH_ONLY_FILES, disk
from benchmarks.kernel_forms import normalize_forms, p95_forms
from benchmarks.measure import measured
from dagster_project.resources import check_queries

MB = 1 << 20


def _peak_rss_mb() -> float:
    """This process's own peak resident memory. Not ru_maxrss: Linux carries it over from the
    parent through fork and exec, so every stage would report at least the runner's size."""
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _counts_mb(source: Path) -> float:
    with h5py.File(source, "r") as handle:
        n_genes, n_samples = handle["data/expression"].shape
    return n_genes * n_samples * 4 / MB


def plain_read(source: Path, _warehouse: Warehouse, block_size: int) -> dict:
    """The floor for ingest: read every block of the matrix with h5py, nothing else."""
    with h5py.File(source, "r") as handle:
        dataset = handle["data/expression"]
        chunk = dataset.chunks[1] if dataset.chunks else 1
        step = -(-block_size // chunk) * chunk
        checksum = 0
        for start in range(0, dataset.shape[1], step):
            checksum += int(dataset[:, start : start + step].sum(dtype=np.uint64))
    return {"total_count": checksum}


def register(source: Path, warehouse: Warehouse, block_size: int) -> dict:
    """Once per release: validate the file, checksum it, diff its GSMs, register blocks."""
    registration = register_release(warehouse, source, block_size)
    return {"blocks": len(registration.new_blocks)}


def ingest(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """Every block: read from HDF5, write samples and counts Parquet."""
    total = 0
    for plan in block_plans(read_registry(warehouse)):
        total += ingest_block(warehouse, plan.block).count_total
    return {"total_count": total}


def target(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    blocks = warehouse.blocks_present(COUNTS_DATASET)
    stored = write_target(warehouse, accumulate_target(warehouse, blocks))
    return {"n_samples": stored.n_samples}


def normalize(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    stored = read_target(warehouse)
    assert stored is not None
    lengths = np.full(stored.values.size, 1500.0)
    rows = 0
    for block in warehouse.blocks_present(COUNTS_DATASET):
        rows += normalize_stored_block(warehouse, block, stored, lengths, "divide").rows
    return {"rows": rows}


def block_checks(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """The blocking block checks' DuckDB queries on every block, as `make run` runs them after
    each block's assets (`dagster_project.defs.raw`, `dagster_project.defs.normalized`): the counts
    profile, the block's GSMs in other blocks, and the expression profile recomputing the
    default ARCHS4_CHECK_RECOMPUTED_SAMPLES samples per block. The GX validation of the
    profiles (one row per sample) and the run's own overhead are not timed."""
    settings = Settings.from_env()
    recompute, queries_resource = settings.check_recomputed_samples, check_queries(settings)
    n_genes = int(read_target(warehouse).values.size)  # type: ignore[union-attr]
    timings = {"counts": 0.0, "samples": 0.0, "expression": 0.0}
    with tempfile.TemporaryDirectory() as scratch:
        # The lengths `normalize` divided by (1,500 bp for every gene).
        genes_file = str(Path(scratch) / "genes.parquet")
        lengths = {"gene_idx": np.arange(n_genes, dtype=np.int32), "length_bp": [1500] * n_genes}
        pq.write_table(pa.table(lengths), genes_file)
        for plan in block_plans(read_registry(warehouse)):
            block = plan.block
            counts = str(warehouse.block_path(COUNTS_DATASET, block))
            queries = {
                "counts": ("counts_block_profile", {
                    "counts_file": counts,
                    "samples_file": str(warehouse.block_path(SAMPLES_DATASET, block)),
                }),
                "samples": ("gsm_in_other_blocks", {
                    "samples_glob": warehouse.dataset_glob(SAMPLES_DATASET), "block": block,
                }),
                "expression": ("expression_block_profile", {
                    "counts_file": counts,
                    "expression_file": str(warehouse.block_path(EXPRESSION_DATASET, block)),
                    "target_file": str(warehouse.table_path(QN_TARGET_TABLE)),
                    "genes_file": genes_file,
                    "method": "divide",
                    "recomputed_samples": recomputed_sample_idx(plan, recompute),
                }),
            }  # fmt: skip
            for check, (query, parameters) in queries.items():
                started = time.perf_counter()
                profile = queries_resource.frame(query, **parameters)
                timings[check] += time.perf_counter() - started
                if check == "expression":  # timing a failing check would mean nothing
                    assert profile["max_relative_error"].max() <= 1e-5, f"block {block}"
    return {f"{check}_check_seconds": round(t, 2) for check, t in timings.items()} | {
        "recomputed_samples_per_block": recompute
    }


def _expression_genes(warehouse: Warehouse) -> tuple[list[str], np.ndarray, int]:
    """Blocks, genes and sample count of the expression layer (from one file and footers)."""
    blocks = warehouse.blocks_present(EXPRESSION_DATASET)
    _, _, gene_idx = warehouse.read_long_block(EXPRESSION_DATASET, blocks[0], "value")
    rows = sum(
        pq.read_metadata(str(warehouse.block_path(EXPRESSION_DATASET, b))).num_rows for b in blocks
    )
    return blocks, gene_idx, rows // gene_idx.size


def by_gene(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """The gene-clustered copy of expression (the transpose of the block layer)."""
    blocks, gene_idx, n_samples = _expression_genes(warehouse)
    values_per_chunk = Settings.from_env().gene_chunk_values
    chunks = build_expression_by_gene(
        warehouse, blocks, gene_idx, n_samples, values_per_chunk=values_per_chunk
    )
    return {"gene_chunks": len(chunks)}


def metrics(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    blocks, gene_idx, _ = _expression_genes(warehouse)
    genes = pl.DataFrame(
        {
            "gene_idx": gene_idx.astype(np.int32),
            "ensembl_id": [f"G{g}" for g in gene_idx],
            "symbol": [f"G{g}" for g in gene_idx],
            "biotype": ["x"] * gene_idx.size,
        }
    )
    result = compute_gene_metrics(warehouse, blocks, genes)
    warehouse.write_table(result.metrics.to_arrow(), warehouse.table_path(GENE_METRICS_TABLE))
    return {"genes": result.metrics.height}


def coexpression(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """The stored gene co-expression as the asset computes it: the configured sample cap
    (ARCHS4_COEXPRESSION_SAMPLES), the default top k and memory budget."""
    settings = Settings.from_env()
    result = compute_gene_coexpression(
        warehouse,
        max_samples=settings.coexpression_samples,
        budget_bytes=default_budget_bytes(),
    )
    warehouse.write_table(result.table, warehouse.table_path(COEXPRESSION_TABLE))
    return {
        "max_samples": settings.coexpression_samples,
        "samples_used": result.n_samples,
        "genes_with_variance": result.table.num_rows // max(result.top_k, 1),
        "top_k": result.top_k,
        "read_seconds": result.read_seconds,
        "correlate_seconds": result.correlate_seconds,
    }


QUERY_GENES = 3


def coexpression_queries(source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """`archs4 coexpressed GENE -k 20` both ways on the read-only connection the command
    opens, for QUERY_GENES genes spread over the gene order, each best of 3: the exact streamed
    SQL and the lookup of the stored top k; and how far their correlations are apart at each
    rank (0 up to float32 rounding when the stored table used every sample). Writes the gene
    table first (`raw/genes`, as the `genes` asset would; the bench has no GTF, so every gene
    has the bench's length): both paths name the genes."""
    genes = genes_table(source)
    lengths = {"length_bp": np.full(genes.num_rows, 1500), "has_length": [True] * genes.num_rows}
    for name, column in lengths.items():
        genes = genes.append_column(name, pa.array(column))
    warehouse.write_table(genes, warehouse.table_path(GENES_TABLE))
    stored = pq.read_table(
        str(warehouse.table_path(COEXPRESSION_TABLE)), columns=["gene_idx", "n_samples"]
    )
    candidates = np.unique(stored["gene_idx"].to_numpy())
    chosen = candidates[np.linspace(0, candidates.size - 1, QUERY_GENES).astype(int)]
    exact, lookup, differences = [], [], []
    with connect_read_only(warehouse) as connection:
        for gene in chosen.tolist():
            exact.append(measured(lambda g=gene: coexpressed(connection, g, 20, exact=True)))
            lookup.append(measured(lambda g=gene: coexpressed(connection, g, 20)))
            assert lookup[-1].result.schema.metadata == {b"source": b"gene_coexpression"}
            values = [m.result["correlation"].to_numpy() for m in (exact[-1], lookup[-1])]
            differences.append(float(np.abs(values[0] - values[1]).max()))
    return {
        "exact_seconds": float(np.mean([m.seconds for m in exact])),
        "exact_peak_mb": max(m.peak_mb or 0.0 for m in exact),
        "lookup_seconds": float(np.mean([m.seconds for m in lookup])),
        "lookup_peak_mb": max(m.peak_mb or 0.0 for m in lookup),
        "query_genes": chosen.tolist(),
        "samples_used": int(stored["n_samples"][0].as_py()),
        "max_abs_diff_by_rank": max(differences),
    }


def catalog(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """The DuckDB catalog (`warehouse.duckdb`) over the layers present, as the catalog asset
    builds it: the access-path stages query the warehouse through it."""
    from archs4.catalog import build_catalog

    views = build_catalog(warehouse)
    return {"views": sorted(views)}


NAIVE_GENES = 100


def metrics_naive(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """The naive reference on the first NAIVE_GENES genes, checked against the streamed result
    and extrapolated to all genes (its cost is linear in the number of genes computed): per
    gene a full sort for p95 and the window, then the 100 window samples' full profiles
    gathered and their 100 x 100 cosine matrix. The whole float64 matrix would not fit at the
    largest sizes, so only what the reference reads is loaded: the first genes' rows and the
    window samples' full columns (a no-op for its arithmetic, which is what is timed)."""
    from tests.references import naive_mean_pairwise_cosine, naive_window_positions

    first_values, sample_idx, _ = next(iter_gene_chunks(warehouse))
    rows = first_values[:NAIVE_GENES].astype(np.float64)
    windows = [naive_window_positions(row, sample_idx) for row in rows]
    columns = np.unique(np.concatenate(windows))
    profiles = np.vstack([values[:, columns] for values, _, _ in iter_gene_chunks(warehouse)])
    profiles = profiles.astype(np.float64)
    started = time.perf_counter()
    p95, mean_cosine = np.empty(len(rows)), np.empty(len(rows))
    for gene, row in enumerate(rows):
        p95[gene] = np.percentile(row, 95)
        window = np.searchsorted(columns, naive_window_positions(row, sample_idx))
        mean_cosine[gene] = naive_mean_pairwise_cosine(profiles[:, window].T)
    seconds = time.perf_counter() - started
    stored = pl.read_parquet(str(warehouse.table_path(GENE_METRICS_TABLE))).head(len(rows))
    return {
        "naive_seconds_measured": seconds,
        "naive_genes_measured": len(rows),
        "naive_seconds_all_genes": seconds * profiles.shape[0] / len(rows),
        "max_abs_diff_p95": float(np.abs(stored["p95"].to_numpy() - p95).max()),
        "max_abs_diff_mean_cosine": float(
            np.abs(stored["mean_cosine"].to_numpy() - mean_cosine).max()
        ),
    }


def one_gene_query(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """A one-gene question, three ways: full scan of the block layer, filter on the block
    layer (row-group pruning within each block file), filter on the gene-clustered copy."""
    import duckdb

    blocks_glob = warehouse.dataset_glob(EXPRESSION_DATASET)
    chunks_glob = warehouse.dataset_glob(EXPRESSION_BY_GENE_DATASET, "chunk")
    queries = {
        "full_scan": f"SELECT gene_idx, avg(value) FROM read_parquet('{blocks_glob}') "
        "GROUP BY gene_idx",
        "one_gene_blocks": f"SELECT avg(value) FROM read_parquet('{blocks_glob}') "
        "WHERE gene_idx = 1234",
        "one_gene_by_gene": f"SELECT avg(value) FROM read_parquet('{chunks_glob}') "
        "WHERE gene_idx = 1234",
    }
    timings = {}
    with duckdb.connect() as connection:
        for name, query in queries.items():
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                connection.execute(query).fetchall()
                best = min(best, time.perf_counter() - started)
            timings[f"{name}_seconds"] = best
    return timings


TRAINING_SET_FILE = "bench_training_set.npz"
assert TRAINING_SET_FILE in BENCH_ONLY_FILES  # the disk stage does not count it


def features(source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """The model layer up to its features, as the assets compute it: labels (the demo's true
    labels, so every sample is labelled: the worst case), study-grouped splits, the training
    set (capped at DEFAULT_MAX_TRAIN_SAMPLES), the feature space fitted on it, and every
    sample's features. Saves the training rows for the classifier and GAN stages."""
    samples = pl.read_parquet(
        warehouse.dataset_glob(SAMPLES_DATASET), columns=["sample_idx", "gsm", "series_id"]
    )
    labels = (
        read_truth_table(source.parent / "labels_truth.tsv")
        .join(samples.select("gsm", "sample_idx"), on="gsm")
        .select("sample_idx", "label")
    )
    splits = mark_training_set(
        split_by_study(study_groups(samples), labels),
        labels,
        max_samples=DEFAULT_MAX_TRAIN_SAMPLES,
    )
    train = np.sort(splits.filter(pl.col("in_training_set"))["sample_idx"].to_numpy())
    space = fit_feature_space_on_samples(
        warehouse, train, n_top_genes=2000, n_components=50, seed=0
    )
    ids, all_features = features_of_all_samples(warehouse, space)
    labelled, truth = label_matrix(labels, sorted(labels["label"].unique().to_list()))
    np.savez(
        (warehouse.root / TRAINING_SET_FILE).path,
        features=all_features[np.searchsorted(ids, train)],
        labels=truth[np.searchsorted(labelled, train)],
        labelled=labelled,
        truth=truth,
        test=np.sort(splits.filter(pl.col("split") == "test")["sample_idx"].to_numpy()),
    )
    return {"train_rows": int(train.size), "labelled": int(labelled.size)}


def _training_set(warehouse: Warehouse) -> tuple[np.ndarray, np.ndarray]:
    with np.load((warehouse.root / TRAINING_SET_FILE).path, allow_pickle=False) as stored:
        return stored["features"], stored["labels"]


def classifier(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """The product's Random Forest (300 trees, balanced per bootstrap sample) on the training
    set of the features stage."""
    from archs4.classifier import train_random_forest

    train_features, train_labels = _training_set(warehouse)
    model = train_random_forest(train_features, train_labels)
    nodes = sum(tree.tree_.node_count for tree in model.estimators_)
    return {"train_rows": int(train_features.shape[0]), "tree_nodes": int(nodes)}


def baseline(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """`model_evaluation`'s two fits of the original configuration on all genes (training rows
    capped at DEFAULT_MAX_TRAIN_SAMPLES) and their test rows predicted block by block: its
    memory grows with N up to the cap and is flat beyond it."""
    from archs4.baseline import original_configuration_evaluations

    with np.load((warehouse.root / TRAINING_SET_FILE).path, allow_pickle=False) as stored:
        labelled, truth, test = stored["labelled"], stored["truth"], stored["test"]
    fits: list[str] = []
    original_configuration_evaluations(
        warehouse,
        labelled=labelled,
        truth=truth,
        test=test,
        label_names=[f"label_{i}" for i in range(truth.shape[1])],
        seed=0,
        max_train_samples=DEFAULT_MAX_TRAIN_SAMPLES,
        log=fits.append,
    )
    return {"labelled": int(labelled.size), "test_rows": int(test.size), "fits": fits}


def gan_training(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """The default GAN (``GanConfig()``) on the training set of the features stage: its cost
    is epochs x training rows, so it is bounded by the training-set cap, not by N."""
    from archs4.gan import GanConfig, train_gan

    train_features, train_labels = _training_set(warehouse)
    trained = train_gan(train_features.astype(np.float32), train_labels, GanConfig())
    return {"train_rows": int(train_features.shape[0]), "epochs": trained.config.epochs}


def curve_point(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """One point of `augmentation_curve` at its default cost (a GAN of the default curve epochs
    on the training set, then the five methods' 100-tree forests), for the most frequent label
    with all its rows. Its cost is bounded like the GAN's; the default curve is about 15 such
    points. A quarter of the training rows stand in for validation and test: the stage times
    the work, it does not score it."""
    from archs4.augmentation import LabelledRows
    from archs4.augmentation_curve import CurveConfig, TrainStudies, augmentation_curve
    from archs4.gan import GanConfig
    from archs4.settings import Settings

    features, labels = _training_set(warehouse)
    held_out = np.arange(features.shape[0]) % 4 == 0
    rows = np.arange(int((~held_out).sum()))  # every train row its own study
    train = LabelledRows(features[~held_out].astype(np.float32), labels[~held_out], rows)
    studies = TrainStudies(train, n_studies=np.ones_like(rows))
    names = [f"label_{i}" for i in range(labels.shape[1])]
    label = names[int(np.argmax(train.labels.sum(axis=0)))]
    config = CurveConfig(
        labels=(label,),
        n_real=(),
        seeds=(0,),
        gan=GanConfig(epochs=Settings().curve_gan_epochs),
    )
    held = LabelledRows(features[held_out].astype(np.float32), labels[held_out])
    curve = augmentation_curve(studies, held, held, names, config)
    points = curve.select("n_real", "seed").unique().height
    return {"train_rows": train.n_rows, "points": points, "gan_epochs": config.gan.epochs}


def kernel_vs_qnorm(_source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """Per-block normalization kernel against qnorm on the same block, single core."""
    import qnorm

    from archs4.quantile_norm import normalize_block

    stored = read_target(warehouse)
    assert stored is not None
    block = warehouse.blocks_present(COUNTS_DATASET)[0]
    counts, _, _ = warehouse.read_long_block(COUNTS_DATASET, block, "count")
    lengths = np.full(counts.shape[0], 1500.0)
    ours, reference = [], []
    for _ in range(3):
        started = time.perf_counter()
        normalize_block(counts, stored.values, lengths)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        qnorm.quantile_normalize(np.log2(counts + 1.0), axis=1, ncpus=1)
        reference.append(time.perf_counter() - started)
    return {
        "block_shape": list(counts.shape),
        "ours_seconds": min(ours),
        "qnorm_seconds": min(reference),
    }


STAGES = {
    "plain_read": plain_read,
    "register": register,
    "ingest": ingest,
    "target": target,
    "normalize": normalize,
    "block_checks": block_checks,
    "by_gene": by_gene,
    "metrics": metrics,
    "coexpression": coexpression,
    "catalog": catalog,
    "metrics_naive": metrics_naive,
    "one_gene_query": one_gene_query,
    "coexpression_queries": coexpression_queries,
    "sample_access": sample_access,
    "gene_access": gene_access,
    "api_tasks": api_tasks,
    "kernel_vs_qnorm": kernel_vs_qnorm,
    "normalize_forms": normalize_forms,
    "p95_forms": p95_forms,
    "features": features,
    "classifier": classifier,
    "baseline": baseline,
    "gan_training": gan_training,
    "curve_point": curve_point,
    "disk": disk,
}


def main() -> None:
    stage, source, root, block_size = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    started = time.perf_counter()
    figures = STAGES[stage](source, Warehouse.at(root), block_size)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "stage": stage,
                "seconds": seconds,
                "peak_rss_mb": _peak_rss_mb(),
                "counts_mb": _counts_mb(source),
                **figures,
            }
        )
    )


if __name__ == "__main__":
    main()
