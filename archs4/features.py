"""The classifier's feature space: most variable genes, standardized, projected on a PCA.

What it computes. From the normalized expression of the TRAIN samples only (rows are
samples, columns genes in ``gene_idx`` order), ``fit_feature_space``:

1. keeps the ``n_top_genes`` genes with the largest variance over the train rows (ties go to
   the gene that comes first in ``gene_idx`` order, so the choice is reproducible);
2. standardizes them with the train mean and standard deviation (a gene that is constant on
   the train rows keeps a scale of 1, so it maps to 0 instead of dividing by zero);
3. fits a PCA (``sklearn.decomposition.PCA``, ``svd_solver="randomized"``, seeded) on the
   standardized train rows and keeps ``n_components`` components.

``FeatureSpace.transform`` applies the same three steps to any rows and returns
``(n, n_components)`` float32 scores named ``PC1`` .. ``PCk``.

Why this way. The feature space is chosen without labels, so no label information from any
split leaks into it, and without the validation and test rows, so nothing fitted sees them
(DESIGN.md, "Classification and evaluation"). Standardizing first keeps the few genes with a
huge dynamic range from owning the first components. Fifty components of two thousand genes
keep the Random Forest (and the GAN working in the same space) small and fast while
retaining the tissue structure of the profiles.

Blockwise. ``transform`` is applied to sample blocks of any size, and a sample's features
must not depend on the block it came with. The standardization is elementwise and the
parameters are frozen, so that holds by construction; the projection is a matrix product,
whose BLAS kernels sum in an order that depends on the number of rows (edge tiles, GEMV for a
single row), so a sample's last bits would differ between blocks. The projection therefore
runs on fixed-size chunks of ``_PROJECTION_CHUNK`` rows (the last one zero-padded): every row
goes through an identically shaped product, and its result is the same bit for bit whatever
block it arrives in.

Persistence. ``to_npz`` / ``FeatureSpace.from_npz`` store plain numeric and string arrays
only, read back with ``np.load(allow_pickle=False)``: the fitted space is a warehouse asset
that can be loaded from shared storage without executing anything.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from sklearn.decomposition import PCA

# Identifies the file layout written by to_npz; bump it when the stored arrays change.
FORMAT_NAME = "archs4.features.FeatureSpace"
FORMAT_VERSION = 1

# Rows projected per matrix product; every product has exactly this many rows (see the
# module docstring). 256 is a multiple of every BLAS register tile, and 256 x 2000 float64
# is 4 MB, small beside a sample block.
_PROJECTION_CHUNK = 256

_ARRAY_KEYS = (
    "gene_idx",
    "selected_columns",
    "gene_mean",
    "gene_scale",
    "pca_mean",
    "components",
    "explained_variance_ratio",
)


@dataclass(frozen=True, eq=False)
class FeatureSpace:
    """A fitted feature space; every array is frozen after fitting.

    ``gene_idx`` is the column order ``transform`` expects (all genes given to the fit),
    ``selected_columns`` the positions of the kept genes in that order, ``gene_mean`` and
    ``gene_scale`` their train mean and standard deviation, ``pca_mean`` and ``components``
    the PCA fitted on the standardized train rows.
    """

    gene_idx: np.ndarray
    selected_columns: np.ndarray
    gene_mean: np.ndarray
    gene_scale: np.ndarray
    pca_mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray
    n_train_samples: int
    seed: int

    def __post_init__(self) -> None:
        n_selected = len(self.selected_columns)
        n_components = self.components.shape[0] if self.components.ndim == 2 else -1
        if self.components.ndim != 2 or self.components.shape[1] != n_selected:
            raise ValueError(
                f"components must have shape (n_components, {n_selected}), "
                f"got {self.components.shape}"
            )
        for name in ("gene_mean", "gene_scale", "pca_mean"):
            if getattr(self, name).shape != (n_selected,):
                raise ValueError(f"{name} must have shape ({n_selected},)")
        if self.explained_variance_ratio.shape != (n_components,):
            raise ValueError(f"explained_variance_ratio must have shape ({n_components},)")
        if n_selected and (
            self.selected_columns.min() < 0 or self.selected_columns.max() >= len(self.gene_idx)
        ):
            raise ValueError("selected_columns must index into gene_idx")
        for name in _ARRAY_KEYS:
            getattr(self, name).setflags(write=False)

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def n_genes_in(self) -> int:
        """Number of columns ``transform`` expects."""
        return len(self.gene_idx)

    @property
    def selected_gene_idx(self) -> np.ndarray:
        """``gene_idx`` of the kept genes, in column order."""
        return self.gene_idx[self.selected_columns]

    @property
    def feature_names(self) -> list[str]:
        return [f"PC{i + 1}" for i in range(self.n_components)]

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """Features of ``matrix`` (n samples x all genes in ``gene_idx`` order) as
        ``(n, n_components)`` float32; a row's result depends on that row only."""
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_genes_in:
            raise ValueError(
                f"expected a (n_samples, {self.n_genes_in}) matrix in gene_idx order, "
                f"got shape {matrix.shape}"
            )
        n_rows = matrix.shape[0]
        features = np.empty((n_rows, self.n_components), dtype=np.float32)
        chunk = np.zeros((_PROJECTION_CHUNK, len(self.selected_columns)), dtype=np.float64)
        projection = self.components.T
        for start in range(0, n_rows, _PROJECTION_CHUNK):
            stop = min(start + _PROJECTION_CHUNK, n_rows)
            used = stop - start
            chunk[:used] = matrix[start:stop][:, self.selected_columns]
            chunk[:used] -= self.gene_mean
            chunk[:used] /= self.gene_scale
            chunk[:used] -= self.pca_mean
            # Zero the padding rows so they cannot hold NaN/inf left from a previous chunk
            # (their results are discarded, but a non-finite value could slow the kernel).
            chunk[used:] = 0.0
            features[start:stop] = (chunk @ projection)[:used]
        return features

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary for model cards and asset metadata."""
        ratio = self.explained_variance_ratio
        return {
            "method": "top-variance genes (train rows), standardized, randomized PCA",
            "n_genes_in": self.n_genes_in,
            "n_selected_genes": len(self.selected_columns),
            "n_components": self.n_components,
            "n_train_samples": self.n_train_samples,
            "seed": self.seed,
            "explained_variance_ratio_total": float(ratio.sum()),
            "explained_variance_ratio_first": [round(float(r), 6) for r in ratio[:10]],
        }

    def to_npz(self, target: str | os.PathLike[str] | BinaryIO) -> None:
        """Write the space as an ``.npz`` of plain arrays (no pickled objects).

        ``target`` is a path (written to a temporary name then renamed, so a crash never
        leaves a half file) or an open binary file, e.g. a warehouse ``atomic_file``.
        """
        buffer = io.BytesIO()
        np.savez(
            buffer,
            format_name=np.array(FORMAT_NAME),
            format_version=np.array(FORMAT_VERSION, dtype=np.int64),
            n_train_samples=np.array(self.n_train_samples, dtype=np.int64),
            seed=np.array(self.seed, dtype=np.int64),
            **{name: getattr(self, name) for name in _ARRAY_KEYS},
        )
        write_payload(target, buffer.getvalue())

    @classmethod
    def from_npz(cls, source: str | os.PathLike[str] | BinaryIO) -> FeatureSpace:
        """Read a space written by ``to_npz``; refuses pickled content (``allow_pickle=False``)."""
        name = source_name(source)
        if not isinstance(source, str | Path) and hasattr(source, "read_bytes"):
            source = io.BytesIO(source.read_bytes())  # a remote UPath
        with np.load(source, allow_pickle=False) as stored:
            missing = {"format_name", "format_version", *_ARRAY_KEYS} - set(stored.files)
            if missing:
                raise ValueError(f"{name}: not a feature space, missing {missing}")
            if str(stored["format_name"]) != FORMAT_NAME:
                raise ValueError(f"{name}: not a feature space file")
            version = int(stored["format_version"])
            if version != FORMAT_VERSION:
                raise ValueError(
                    f"{name}: feature space format {version}, this code reads {FORMAT_VERSION}"
                )
            arrays = {name: stored[name] for name in _ARRAY_KEYS}
            return cls(
                **arrays,
                n_train_samples=int(stored["n_train_samples"]),
                seed=int(stored["seed"]),
            )


def select_most_variable_genes(train_matrix: np.ndarray, n_top_genes: int) -> np.ndarray:
    """Positions (ascending) of the ``n_top_genes`` columns with the largest variance over
    the rows given; ties go to the earlier column."""
    variance = np.var(train_matrix, axis=0, dtype=np.float64)
    n_keep = min(n_top_genes, train_matrix.shape[1])
    # A stable sort of -variance keeps equal variances in column order.
    order = np.argsort(-variance, kind="stable")
    return np.sort(order[:n_keep]).astype(np.int64)


def fit_feature_space(
    train_matrix: np.ndarray,
    gene_idx: np.ndarray,
    *,
    n_top_genes: int = 2000,
    n_components: int = 50,
    seed: int = 0,
) -> FeatureSpace:
    """Fit the feature space on the TRAIN rows only (samples x genes, genes in ``gene_idx``
    order). No labels are used.

    ``n_top_genes`` is capped at the number of genes and ``n_components`` at
    ``min(n_train_samples, n_top_genes)`` (the most a PCA can have), so a small demo subset
    still gets a usable space; ``FeatureSpace.n_components`` tells what was kept.
    """
    train_matrix = np.asarray(train_matrix)
    gene_idx = np.asarray(gene_idx, dtype=np.int64)
    if train_matrix.ndim != 2:
        raise ValueError(f"train_matrix must be 2-D (samples x genes), got {train_matrix.shape}")
    n_samples, n_genes = train_matrix.shape
    if gene_idx.shape != (n_genes,):
        raise ValueError(
            f"gene_idx must have one entry per column ({n_genes}), got {gene_idx.shape}"
        )
    if n_samples < 2:
        raise ValueError(f"need at least 2 train samples, got {n_samples}")
    if n_top_genes < 1 or n_components < 1:
        raise ValueError("n_top_genes and n_components must be positive")
    if not np.isfinite(train_matrix).all():
        raise ValueError("train_matrix contains NaN or infinite values")

    selected_columns = select_most_variable_genes(train_matrix, n_top_genes)
    selected = train_matrix[:, selected_columns].astype(np.float64)
    gene_mean = selected.mean(axis=0)
    gene_scale = selected.std(axis=0)
    gene_scale[gene_scale == 0.0] = 1.0
    standardized = (selected - gene_mean) / gene_scale

    n_kept_components = min(n_components, n_samples, len(selected_columns))
    pca = PCA(n_components=n_kept_components, svd_solver="randomized", random_state=seed)
    pca.fit(standardized)
    return FeatureSpace(
        gene_idx=gene_idx.copy(),
        selected_columns=selected_columns,
        gene_mean=gene_mean,
        gene_scale=gene_scale,
        pca_mean=pca.mean_.astype(np.float64),
        components=pca.components_.astype(np.float64),
        explained_variance_ratio=pca.explained_variance_ratio_.astype(np.float64),
        n_train_samples=n_samples,
        seed=seed,
    )


def source_name(target: object) -> str:
    """How to name a path (its full string, a URL for remote storage) or an open file (its
    ``name`` when it has one) in an error message."""
    if hasattr(target, "read") or hasattr(target, "write"):
        return str(getattr(target, "name", "<binary stream>"))
    return str(target)


def read_payload(source: str | os.PathLike[str] | BinaryIO) -> bytes:
    """The bytes of an open binary file or of a path (local, or a UPath)."""
    if hasattr(source, "read"):
        return source.read()
    if hasattr(source, "read_bytes"):  # pathlib.Path and UPath, local or remote
        return source.read_bytes()
    return Path(source).read_bytes()


def write_payload(target: str | os.PathLike[str] | BinaryIO, payload: bytes) -> None:
    """Write ``payload`` to an open binary file, or atomically to a path."""
    if hasattr(target, "write"):
        target.write(payload)
        return
    if not isinstance(target, str | Path) and hasattr(target, "write_bytes"):
        # A remote UPath: object stores publish an upload whole, there is no half file.
        target.write_bytes(payload)
        return
    path = Path(target)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        temporary.write_bytes(payload)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
