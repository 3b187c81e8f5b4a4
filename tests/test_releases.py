"""Which release file a source gives (archs4.releases): the newest by the version in its name,
of one species when ARCHS4 publishes human and mouse files side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from archs4.demo_data import write_demo_dataset
from archs4.failures import InputError
from archs4.preflight import RunInputs, check_inputs
from archs4.reader import species_in_name
from archs4.releases import newest_release, release_files
from archs4.warehouse import Warehouse


def release_directory(tmp_path: Path, names: list[str]) -> Path:
    directory = tmp_path / "releases"
    directory.mkdir()
    for name in names:
        (directory / name).write_bytes(b"")  # choosing a release reads names only
    (directory / "README.txt").write_text("not a release\n")
    return directory


def test_releases_are_ordered_by_version_not_by_name(tmp_path: Path) -> None:
    directory = release_directory(
        tmp_path, ["human_gene_v2.10.h5", "human_gene_v2.9.h5", "human_gene_v2.5.h5"]
    )
    assert [p.name for p in release_files(directory)] == [
        "human_gene_v2.5.h5",
        "human_gene_v2.9.h5",
        "human_gene_v2.10.h5",
    ]


def test_a_directory_of_both_species_needs_archs4_species(tmp_path: Path) -> None:
    directory = release_directory(
        tmp_path, ["human_gene_v2.5.h5", "human_gene_v2.6.h5", "mouse_gene_v2.6.h5"]
    )
    with pytest.raises(InputError, match=r"holds human and mouse releases; set ARCHS4_SPECIES"):
        newest_release(directory)
    assert newest_release(directory, "mouse").name == "mouse_gene_v2.6.h5"
    assert [p.name for p in release_files(directory, "human")] == [
        "human_gene_v2.5.h5",
        "human_gene_v2.6.h5",
    ]


def test_a_species_the_source_does_not_hold_is_refused_naming_both(tmp_path: Path) -> None:
    directory = release_directory(tmp_path, ["human_gene_v2.6.h5"])
    with pytest.raises(InputError, match=r"no mouse release \(ARCHS4_SPECIES=mouse; .* human\)"):
        newest_release(directory, "mouse")
    with pytest.raises(InputError, match="no mouse release"):
        newest_release(directory / "human_gene_v2.6.h5", "mouse")
    assert newest_release(directory, "human").name == "human_gene_v2.6.h5"


def test_a_name_without_species_counts_as_either(tmp_path: Path) -> None:
    directory = release_directory(tmp_path, ["gene_counts_v3.h5"])
    assert species_in_name(directory / "gene_counts_v3.h5") is None
    assert newest_release(directory, "mouse").name == "gene_counts_v3.h5"
    assert newest_release(directory).name == "gene_counts_v3.h5"


def test_the_run_checks_the_chosen_species_release(tmp_path: Path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_samples=60, n_genes=40, seed=1)
    directory = tmp_path / "releases"
    directory.mkdir()
    human = directory / "human_gene_v2.6.h5"
    human.write_bytes(demo.h5.read_bytes())
    (directory / "mouse_gene_v2.7.h5").write_bytes(b"not an HDF5 file")
    inputs = RunInputs(directory, demo.gtf, None, Warehouse.at(tmp_path / "warehouse"))
    with pytest.raises(InputError, match="ARCHS4_SPECIES"):
        check_inputs(inputs)
    checked = check_inputs(RunInputs(**{**vars(inputs), "species": "human"}))
    assert checked.release == human
    assert checked.info.n_samples == 60
    assert not (tmp_path / "warehouse").exists()
