"""The Python API's parts on small data, without a warehouse: pruned reads of long files, gene
name lookup, and the subset normalizations against archs4py's `utils` on the same matrix."""

from __future__ import annotations

import io

import archs4py.utils
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import qnorm

from archs4.count_normalization import aggregate_duplicate_genes, filter_genes, normalize_counts
from archs4.gene_lookup import GeneLookupError, resolve_gene_ids
from archs4.long_reads import place_rows, read_rows


def long_file(n_genes: int, n_samples: int, *, sample_major: bool, rows_per_group: int) -> bytes:
    genes, samples = np.meshgrid(np.arange(n_genes), np.arange(n_samples), indexing="ij")
    if sample_major:
        genes, samples = genes.T, samples.T
    table = pa.table(
        {
            "sample_idx": pa.array(samples.ravel(), pa.int32()),
            "gene_idx": pa.array(genes.ravel(), pa.int32()),
            "value": pa.array((genes * 1000 + samples).ravel().astype(np.float32)),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=rows_per_group)
    return buffer.getvalue()


class CountingFile(io.BytesIO):
    """A file that counts the bytes read from it, to see which row groups were skipped."""

    read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data


@pytest.mark.parametrize("sample_major", [False, True])
def test_read_rows_keeps_exactly_the_wanted_rows(sample_major):
    data = long_file(40, 30, sample_major=sample_major, rows_per_group=60)
    samples, genes = np.array([29, 3, 17]), np.array([0, 39, 12])
    table = read_rows(io.BytesIO(data), "value", sample_idx=samples, gene_idx=genes)
    matrix = place_rows([table], "value", genes, samples, np.dtype(np.float32))
    np.testing.assert_array_equal(matrix, genes[:, None] * 1000.0 + samples[None, :])
    everything = read_rows(io.BytesIO(data), "value")
    assert everything.num_rows == 40 * 30


@pytest.mark.parametrize("sample_major", [False, True])
def test_read_rows_skips_row_groups_that_cannot_hold_the_ids(sample_major):
    data = long_file(2000, 50, sample_major=sample_major, rows_per_group=5000)  # 20 groups
    whole, one = CountingFile(data), CountingFile(data)
    read_rows(whole, "value")
    wanted = {"sample_idx": np.array([7])} if sample_major else {"gene_idx": np.array([7])}
    assert read_rows(one, "value", **wanted).num_rows == (2000 if sample_major else 50)
    # Gene-major, one group holds gene 7; sample-major, the 2,000 rows of sample 7 span one.
    assert one.read_bytes < whole.read_bytes / 5


def test_place_rows_refuses_missing_values():
    table = read_rows(io.BytesIO(long_file(4, 3, sample_major=False, rows_per_group=5)), "value")
    with pytest.raises(ValueError, match="incomplete"):
        place_rows([table], "value", np.arange(4), np.arange(4), np.dtype(np.float32))


GENES = pl.DataFrame(
    {
        "gene_idx": [0, 1, 2, 3],
        "ensembl_id": ["ENSG01", "ENSG02", "ENSG03", "ENSG04"],
        "symbol": ["TP53", "SPATA46", "SPATA46", "Gapdh"],
    },
    schema={"gene_idx": pl.Int32, "ensembl_id": pl.String, "symbol": pl.String},
)


def test_genes_resolve_by_symbol_ensembl_id_or_index():
    assert resolve_gene_ids(GENES, ["TP53", "ENSG04.12", 2]).tolist() == [0, 3, 2]
    assert resolve_gene_ids(GENES, ["tp53", "GAPDH"]).tolist() == [0, 3]  # other case, unique
    assert resolve_gene_ids(GENES, ["SPATA46"]).tolist() == [1, 2]  # every match
    with pytest.raises(GeneLookupError, match="ENSG02, ENSG03"):
        resolve_gene_ids(GENES, ["SPATA46"], unique=True)
    with pytest.raises(GeneLookupError, match="NOPE, 9"):
        resolve_gene_ids(GENES, ["NOPE", 9, "TP53"])


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    values = rng.negative_binomial(2, 0.01, size=(300, 25)).astype(np.uint32)
    values[rng.random(values.shape) < 0.3] = 0
    symbols = [f"G{i % 280}" for i in range(300)]  # 20 duplicated symbols
    return pd.DataFrame(values, index=pd.Index(symbols), columns=[f"GSM{i}" for i in range(25)])


@pytest.mark.parametrize("method", ["log_quantile", "quantile", "cpm"])
def test_subset_normalizations_equal_archs4py(counts, method):
    expected = archs4py.utils.normalize(counts, method)
    pd.testing.assert_frame_equal(normalize_counts(counts, method), expected)


def test_log_quantile_is_qnorm_of_logs(counts):
    expected = qnorm.quantile_normalize(np.log2(1 + counts.to_numpy(dtype=float)))
    np.testing.assert_allclose(normalize_counts(counts).to_numpy(), expected, rtol=1e-6)


def test_log_trimmed_mean_is_archs4py_tmm(counts):
    pd.testing.assert_frame_equal(
        normalize_counts(counts, "log_trimmed_mean"), archs4py.utils.normalize(counts, "tmm")
    )


def test_tmm_scales_library_sizes_as_edger_does(counts):
    """TMM of a matrix whose second half repeats the first at twice the depth, except for one
    highly expressed gene: CPM with TMM factors removes the depth, not the outlier."""
    base = counts.iloc[:, :10].to_numpy(dtype=float) + 1
    doubled = base * 2
    doubled[0] *= 50  # one gene soaks up reads in the deeper samples
    frame = pd.DataFrame(np.hstack([base, doubled]))
    tmm = normalize_counts(frame, "tmm").to_numpy()
    cpm = normalize_counts(frame, "cpm").to_numpy()
    rest = slice(1, None)

    def depth_error(values: np.ndarray) -> float:
        return float(np.median(np.abs(np.log(values[rest, 10:] / values[rest, :10]))))

    # Precision weights differ with depth, so TMM is not exact here; it is far closer than CPM.
    assert depth_error(tmm) < depth_error(cpm) / 3


def test_gene_utilities_equal_archs4py(counts):
    pd.testing.assert_frame_equal(
        aggregate_duplicate_genes(counts), archs4py.utils.aggregate_duplicate_genes(counts)
    )
    pd.testing.assert_frame_equal(filter_genes(counts), archs4py.utils.filter_genes(counts))
    pd.testing.assert_frame_equal(
        filter_genes(counts, 50, 0.5, aggregate=False),
        archs4py.utils.filter_genes(counts, 50, 0.5, aggregate=False),
    )
