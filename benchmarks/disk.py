"""Disk: bytes per value of every warehouse layer and of the source HDF5 file.

Why: the warehouse keeps the counts, the normalized layer and its gene-clustered copy (three
copies of the matrix) where the source keeps one; the goal is a whole warehouse of at most 3x
the source at the rehearsal size. A "value" is one entry of the source matrix (genes x
samples), so every layer's bytes per value is comparable with the source's and across sizes.

Measured after the build stages of the case ran, on what they wrote. The bench's warehouse is
not a full build: it has `raw/counts`, `raw/samples`, `raw/sample_registry`, `raw/genes`
(written by the co-expression queries' stage), `reference/qn_target`, `normalized/expression`,
`normalized/expression_by_gene`, `metrics/gene_metrics`, `metrics/gene_coexpression` and the
catalog (`warehouse.duckdb`), but no `metrics/gene_windows`, labels or model layers (their
stages keep their results in memory or in a bench-only file, which is not counted). Absent
layers are recorded as absent.
"""

from __future__ import annotations

from pathlib import Path

import h5py

from archs4.warehouse import TEMPORARY_PREFIX, Warehouse

# Files the bench stages leave in the warehouse root for later stages (not warehouse data):
# `benchmarks.stages.TRAINING_SET_FILE`.
BENCH_ONLY_FILES = frozenset({"bench_training_set.npz"})

# Reported layers: a path relative to the root, or a directory whose whole tree is the layer.
# A file or directory belongs to the longest layer it lies under ("x/y", "x/y/...", "x/y.*").
LAYERS = [
    "raw/counts",
    "normalized/expression",
    "normalized/expression_by_gene",
    "raw/samples",
    "metrics",
    "model",
]
OTHER = "other"


def layer_of(relative: str) -> str:
    """The reported layer a warehouse file belongs to (OTHER for registry, target, catalog...)."""
    matches = [
        layer
        for layer in LAYERS
        if relative == layer or relative.startswith((f"{layer}/", f"{layer}."))
    ]
    return max(matches, key=len) if matches else OTHER


def layer_bytes(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Bytes of each reported layer (0 when absent) and of each file counted in OTHER,
    over committed files (no temporaries, no bench-only files)."""
    sizes = dict.fromkeys([*LAYERS, OTHER], 0)
    other: dict[str, int] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or path.name.startswith(TEMPORARY_PREFIX):
            continue
        if relative in BENCH_ONLY_FILES:
            continue
        layer = layer_of(relative)
        sizes[layer] += path.stat().st_size
        if layer == OTHER:
            other[relative] = path.stat().st_size
    return sizes, other


def disk(source: Path, warehouse: Warehouse, _block_size: int) -> dict:
    """Bytes and bytes per value of the source and of each layer, and warehouse / source."""
    with h5py.File(source, "r") as handle:
        n_genes, n_samples = handle["data/expression"].shape
    values = n_genes * n_samples
    sizes, other = layer_bytes(Path(warehouse.root.path))
    total = sum(sizes.values())
    source_bytes = source.stat().st_size
    return {
        "values": values,
        "source_bytes": source_bytes,
        "source_bytes_per_value": source_bytes / values,
        "warehouse_bytes": total,
        "warehouse_over_source": total / source_bytes,
        "layers_present": [layer for layer in LAYERS if sizes[layer]],
        "layers_absent": [layer for layer in LAYERS if not sizes[layer]],
        "other_files": other,
        "bytes": {**sizes, "warehouse": total},
        "bytes_per_value": {
            **{layer: size / values for layer, size in sizes.items()},
            "warehouse": total / values,
            "source": source_bytes / values,
        },
    }
