"""The label-free feature space (archs4.features): fitted on train rows only, applied blockwise
with results independent of the block, stored as plain arrays and read back without pickle."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from archs4.features import FeatureSpace, fit_feature_space

N_SAMPLES = 600
N_GENES = 200
N_TRAIN = 400
N_TOP_GENES = 40
N_COMPONENTS = 10
# Warehouse gene indices need not be 0..G-1; an offset and stride catch position/id mix-ups.
GENE_IDX = np.arange(N_GENES, dtype=np.int64) * 3 + 7
# Genes that vary strongly on the train rows only, and genes that vary on the test rows only.
TRAIN_VARIABLE = np.arange(100, 100 + N_TOP_GENES)
TEST_VARIABLE = np.arange(0, N_TOP_GENES)


def expression(seed: int = 0) -> np.ndarray:
    """Samples x genes, log-like values; the variable genes differ between train and test."""
    rng = np.random.default_rng(seed)
    matrix = 5.0 + rng.normal(scale=0.3, size=(N_SAMPLES, N_GENES))
    matrix[:N_TRAIN, TRAIN_VARIABLE] += rng.normal(scale=3.0, size=(N_TRAIN, N_TOP_GENES))
    test_rows = N_SAMPLES - N_TRAIN
    matrix[N_TRAIN:, TEST_VARIABLE] += rng.normal(scale=10.0, size=(test_rows, N_TOP_GENES))
    return matrix


def fitted(matrix: np.ndarray) -> FeatureSpace:
    return fit_feature_space(
        matrix[:N_TRAIN], GENE_IDX, n_top_genes=N_TOP_GENES, n_components=N_COMPONENTS, seed=3
    )


def assert_same_space(left: FeatureSpace, right: FeatureSpace) -> None:
    for name in (
        "gene_idx",
        "selected_columns",
        "gene_mean",
        "gene_scale",
        "pca_mean",
        "components",
        "explained_variance_ratio",
    ):
        np.testing.assert_array_equal(getattr(left, name), getattr(right, name), err_msg=name)
    assert (left.n_train_samples, left.seed) == (right.n_train_samples, right.seed)


def test_selection_uses_the_train_rows_only() -> None:
    matrix = expression()
    space = fitted(matrix)

    # The kept genes are the most variable ones on the train rows...
    np.testing.assert_array_equal(space.selected_columns, TRAIN_VARIABLE)
    np.testing.assert_array_equal(space.selected_gene_idx, GENE_IDX[TRAIN_VARIABLE])
    # ...while over all rows the test-only genes would win: the data tells the two apart.
    all_rows_top = np.sort(np.argsort(-matrix.var(axis=0))[:N_TOP_GENES])
    np.testing.assert_array_equal(all_rows_top, TEST_VARIABLE)

    # Rewriting the test rows entirely changes nothing in the fitted space.
    rewritten = matrix.copy()
    rewritten[N_TRAIN:] = np.random.default_rng(99).normal(
        scale=50.0, size=(N_SAMPLES - N_TRAIN, N_GENES)
    )
    assert_same_space(space, fitted(rewritten))


def test_transform_is_standardize_then_pca_of_the_train_rows() -> None:
    matrix = expression()
    space = fitted(matrix)
    train_selected = matrix[:N_TRAIN, TRAIN_VARIABLE]
    scaler = StandardScaler().fit(train_selected)
    reference_pca = PCA(n_components=N_COMPONENTS, svd_solver="randomized", random_state=3)
    reference_pca.fit(scaler.transform(train_selected))
    expected = reference_pca.transform(scaler.transform(matrix[:, TRAIN_VARIABLE]))

    features = space.transform(matrix)

    assert features.dtype == np.float32
    assert features.shape == (N_SAMPLES, N_COMPONENTS)
    assert space.feature_names == [f"PC{i}" for i in range(1, N_COMPONENTS + 1)]
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        space.explained_variance_ratio, reference_pca.explained_variance_ratio_, rtol=1e-10
    )


@pytest.mark.parametrize("block_size", [1, 7, 255, 256, 257, 599])
def test_transform_blockwise_equals_all_at_once(block_size: int) -> None:
    matrix = expression()
    space = fitted(matrix)
    all_at_once = space.transform(matrix)

    blockwise = np.vstack(
        [
            space.transform(matrix[start : start + block_size])
            for start in range(0, N_SAMPLES, block_size)
        ]
    )

    # Bit for bit: a sample's features never depend on the rows it arrives with.
    np.testing.assert_array_equal(blockwise, all_at_once)


def test_transform_does_not_depend_on_row_order() -> None:
    matrix = expression()
    space = fitted(matrix)
    order = np.random.default_rng(5).permutation(N_SAMPLES)
    np.testing.assert_array_equal(space.transform(matrix[order]), space.transform(matrix)[order])


def test_transform_rejects_a_matrix_with_other_genes() -> None:
    space = fitted(expression())
    with pytest.raises(ValueError, match="gene_idx order"):
        space.transform(np.zeros((3, N_GENES - 1)))


def test_npz_round_trip_is_exact_and_needs_no_pickle(tmp_path: Path) -> None:
    matrix = expression()
    space = fitted(matrix)
    path = tmp_path / "feature_space.npz"

    space.to_npz(path)

    with np.load(path, allow_pickle=False) as stored:
        for name in stored.files:
            # Reading an object array would raise here; every array is plain data.
            assert stored[name].dtype != object, name
    loaded = FeatureSpace.from_npz(path)
    assert_same_space(space, loaded)
    np.testing.assert_array_equal(loaded.transform(matrix), space.transform(matrix))
    assert not list(tmp_path.glob(".tmp-*")), "the temporary file was left behind"

    # Open binary files work too (a warehouse atomic_file, object storage).
    buffer = io.BytesIO()
    space.to_npz(buffer)
    buffer.seek(0)
    assert_same_space(space, FeatureSpace.from_npz(buffer))


def test_from_npz_refuses_pickled_objects(tmp_path: Path) -> None:
    space = fitted(expression())
    path = tmp_path / "tampered.npz"
    arrays = {
        name: getattr(space, name)
        for name in (
            "gene_idx",
            "selected_columns",
            "gene_mean",
            "gene_scale",
            "pca_mean",
            "explained_variance_ratio",
        )
    }
    # An object array is stored as a pickle, which np.load(allow_pickle=False) refuses.
    components = np.empty(space.components.shape, dtype=object)
    components[...] = space.components
    np.savez(
        path,
        format_name=np.array("archs4.features.FeatureSpace"),
        format_version=np.array(1),
        n_train_samples=np.array(space.n_train_samples),
        seed=np.array(space.seed),
        components=components,
        **arrays,
    )
    with pytest.raises(ValueError, match="allow_pickle"):
        FeatureSpace.from_npz(path)


def test_small_train_sets_cap_genes_and_components() -> None:
    matrix = expression()[:, :30]
    space = fit_feature_space(matrix[:12], GENE_IDX[:30], n_top_genes=2000, n_components=50)
    assert len(space.selected_columns) == 30
    assert space.n_components == 12
    assert space.transform(matrix).shape == (N_SAMPLES, 12)


def test_constant_genes_do_not_divide_by_zero() -> None:
    matrix = expression()[:, :20]
    matrix[:, 3] = 1.0  # constant everywhere
    space = fit_feature_space(matrix[:N_TRAIN], GENE_IDX[:20], n_top_genes=20, n_components=5)
    assert np.isfinite(space.transform(matrix)).all()
