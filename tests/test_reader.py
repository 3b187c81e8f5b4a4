"""The ARCHS4 reader on every key variant, and its errors on bad input."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from archs4.reader import Archs4FormatError, SampleRange, is_valid_series_list, open_archs4
from tests.archs4_files import LAYOUTS, example_counts, write_archs4_file


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("fixed_length_strings", [False, True])
def test_every_layout_reads_the_same(tmp_path: Path, layout: str, fixed_length_strings: bool):
    counts = example_counts()
    path = write_archs4_file(
        tmp_path / f"human_gene_{layout}.h5",
        counts,
        layout=layout,
        fixed_length_strings=fixed_length_strings,
    )
    with open_archs4(path) as source:
        assert source.info.version == layout.removeprefix("v")
        assert (source.info.n_genes, source.info.n_samples) == counts.shape
        assert (source.info.chunk_genes, source.info.chunk_samples) == (10, 5)
        assert source.info.species == "human"
        genes = source.genes().to_pydict()
        assert genes["ensembl_id"][:2] == ["ENSG00000000000", "ENSG00000000001"]
        assert genes["symbol"][0] == genes["symbol"][-2] == "GENE0"
        meta = source.sample_metadata(SampleRange(0, counts.shape[1]))
        assert meta["gsm"].to_pylist()[0] == "GSM2000000"
        assert meta["series_id"].to_pylist()[3] == "GSE100,GSE903"
        assert meta["aligned_reads"].to_pylist() == counts.sum(axis=0).tolist()
        assert meta["characteristics"].to_pylist()[1] == "tissue: t1\tage: 21"
        np.testing.assert_allclose(
            meta["single_cell_probability"].to_numpy(), np.linspace(0, 1, 25)
        )
        blocks = list(source.iter_blocks(7))
    # 7 rounds up to 10, two whole chunks of 5 samples
    assert [(rows.start, rows.stop) for rows, _ in blocks] == [(0, 10), (10, 20), (20, 25)]
    assert np.array_equal(np.hstack([block for _, block in blocks]), counts)
    assert all(block.dtype == np.uint32 and block.flags.c_contiguous for _, block in blocks)


def test_probability_stored_as_text_and_contiguous_matrix(tmp_path: Path):
    counts = example_counts(n_samples=6)
    path = write_archs4_file(
        tmp_path / "x.h5", counts, chunks=None, probability_as_text=True, layout="v2.2"
    )
    with open_archs4(path) as source:
        assert source.info.chunk_samples == 1  # contiguous: any block size is aligned
        assert source.aligned_block_size(4) == 4
        meta = source.sample_metadata(SampleRange(2, 4))
        assert meta["single_cell_probability"].to_pylist() == pytest.approx([0.4, 0.6])
        assert np.array_equal(source.read_counts(SampleRange(2, 4)), counts[:, 2:4])


def test_version_from_file_name_when_meta_info_is_missing(tmp_path: Path):
    path = write_archs4_file(tmp_path / "mouse_gene_v2.1.2.h5", example_counts(), layout="v2.1.2")
    with open_archs4(path) as source:
        assert source.info.version == "2.1.2"
        assert source.info.species == "mouse"


def test_series_list_pattern():
    assert is_valid_series_list("GSE1")
    assert is_valid_series_list("GSE12,GSE345")
    assert not is_valid_series_list("GSE12,")
    assert not is_valid_series_list("GSM12")
    assert not is_valid_series_list("")


# -- bad input ------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.h5"):
        open_archs4(tmp_path / "nothere.h5")


def test_empty_file(tmp_path: Path):
    path = tmp_path / "empty.h5"
    path.touch()
    with pytest.raises(Archs4FormatError, match=r"empty\.h5.*empty"):
        open_archs4(path)


def test_not_hdf5(tmp_path: Path):
    path = tmp_path / "notes.h5"
    path.write_text("gene\tGSM1\nTP53\t5\n")
    with pytest.raises(Archs4FormatError, match=r"notes\.h5.*not a readable HDF5"):
        open_archs4(path)


def test_truncated_file(tmp_path: Path):
    path = write_archs4_file(tmp_path / "full.h5", example_counts(200, 60), chunks=(50, 5))
    truncated = tmp_path / "truncated.h5"
    data = path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(Archs4FormatError, match=r"truncated\.h5"), open_archs4(truncated) as source:
        for _ in source.iter_blocks(10):
            pass


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("data/expression", r"\[data/expression\]: missing required key"),
        ("meta/samples/geo_accession", r"\[meta/samples/geo_accession\]: missing"),
        ("meta/genes/ensembl_gene", r"\[meta/genes/ensembl_gene\]: missing required key"),
        ("meta/genes/symbol", r"\[meta/genes/symbol\]: missing required key"),
        ("meta/samples/series_id", r"\[meta/samples/series_id\]: missing"),
    ],
)
def test_missing_keys(tmp_path: Path, key: str, message: str):
    path = write_archs4_file(tmp_path / "k.h5", example_counts())
    with h5py.File(path, "a") as handle:
        del handle[key]
    with pytest.raises(Archs4FormatError, match=message):
        open_archs4(path)


def test_wrong_dtype(tmp_path: Path):
    path = write_archs4_file(tmp_path / "f.h5", example_counts().astype(np.float32))
    with pytest.raises(Archs4FormatError, match=r"f\.h5 \[data/expression\]: dtype float32"):
        open_archs4(path)


def test_samples_by_genes_orientation(tmp_path: Path):
    counts = example_counts(30, 25)
    path = write_archs4_file(tmp_path / "t.h5", counts)
    with h5py.File(path, "a") as handle:
        del handle["data/expression"]
        handle.create_dataset("data/expression", data=counts.T)
    with pytest.raises(Archs4FormatError, match="samples x genes"):
        open_archs4(path)


def test_metadata_length_mismatch(tmp_path: Path):
    path = write_archs4_file(tmp_path / "m.h5", example_counts())
    with h5py.File(path, "a") as handle:
        titles = handle["meta/samples/series_id"][:-1]
        del handle["meta/samples/series_id"]
        handle.create_dataset("meta/samples/series_id", data=titles)
    with pytest.raises(Archs4FormatError, match=r"\[meta/samples/series_id\]: has shape \(24,\)"):
        open_archs4(path)


def test_empty_matrix(tmp_path: Path):
    path = tmp_path / "z.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("data/expression", shape=(0, 0), dtype=np.uint32)
        for key in ("meta/genes/ensembl_gene", "meta/genes/symbol"):
            handle.create_dataset(key, shape=(0,), dtype=h5py.string_dtype())
        for key in ("meta/samples/geo_accession", "meta/samples/series_id"):
            handle.create_dataset(key, shape=(0,), dtype=h5py.string_dtype())
    with pytest.raises(Archs4FormatError, match="empty matrix"):
        open_archs4(path)


def test_duplicate_gsms(tmp_path: Path):
    gsms = [f"GSM{i}" for i in range(25)]
    gsms[17] = "GSM4"
    path = write_archs4_file(tmp_path / "d.h5", example_counts(), gsms=gsms)
    with pytest.raises(
        Archs4FormatError, match=r"\[meta/samples/geo_accession\]: 1 duplicate GSM.*GSM4"
    ):
        open_archs4(path)


def test_read_outside_the_matrix(tmp_path: Path):
    path = write_archs4_file(tmp_path / "o.h5", example_counts())
    with open_archs4(path) as source, pytest.raises(IndexError, match="outside"):
        source.read_counts(SampleRange(20, 30))
