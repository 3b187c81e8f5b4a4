"""Hostile inputs against the real `make run` / `make update` command (issue #12, pipeline side).

Each case derives one defective input from a good small demo release (the HDF5 file, the GTF,
the label download directory or one `ARCHS4_*` variable) and runs
`python -m dagster_project.headless run|update` in a subprocess against a warehouse and a
Dagster instance already built from the good inputs. It proves, for every case:

- the run is refused with exit code 2 and exactly one line on standard error,
  `archs4 <command>: <reason> (details: <log>)`, whose reason names the file and the key, line
  or index (or the variable), with nothing on standard output, no Python traceback and no
  nanobind leak report; the named log exists and holds the traceback;
- the warehouse is byte-identical afterwards (SHA-256 of every file, and the same directory
  tree), and the Dagster instance has the same runs and block partitions;
- for a subset, a new warehouse root (and its Dagster home) stays absent / untouched.

Also: a successful run is clean (exit 0, "Built the warehouse", no traceback or leak report);
the registry cannot be poisoned (a refused malformed-GSM release, then the corrected file on the
same new warehouse and instance, builds normally); and the sensor and the schedule refuse a
defective release with a `SkipReason` that names the file, leaving the warehouse unchanged.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from archs4.demo_data import write_demo_dataset
from archs4.paths import PROJECT_ROOT
from archs4.settings import Settings
from dagster_project.automation import build_daily_update, build_release_sensor
from dagster_project.partitions import SAMPLE_BLOCKS
from dagster_project.resources import resources_from_settings

pytestmark = pytest.mark.slow

N_SAMPLES, N_GENES, SEED, BLOCK_SIZE = 300, 200, 3, 100  # three blocks of 100 samples
BUILD_TIMEOUT, REFUSAL_TIMEOUT = 1800, 180
GOOD_SETTINGS = {
    "ARCHS4_GAN_EPOCHS": "5",
    "ARCHS4_RF_TREES": "10",
    "ARCHS4_CURVE_SEEDS": "1",
    "ARCHS4_CURVE_GAN_EPOCHS": "3",
}
FORBIDDEN_OUTPUT = ("Traceback", "nanobind", "leaked")
GSM_KEY, SERIES_KEY = "meta/samples/geo_accession", "meta/samples/series_id"
PROBABILITY_KEY, ALIGNED_KEY = "meta/samples/singlecellprobability", "meta/samples/alignedreads"
GENE_ID_KEY, SYMBOL_KEY = "meta/genes/ensembl_gene", "meta/genes/symbol"
EXPRESSION_KEY = "data/expression"


# --- inputs, environment, command -----------------------------------------------------------


@dataclass(frozen=True)
class GoodInputs:
    h5: Path
    gtf: Path
    labels: Path
    gsms: list[str]


@dataclass(frozen=True)
class Built:
    """The module's good warehouse: where it is, and what it looked like once built."""

    inputs: GoodInputs
    root: Path
    home: Path
    result: subprocess.CompletedProcess[str]
    hashes: dict[str, str]
    state: tuple[int, list[str]]


@dataclass(frozen=True)
class Refusal:
    """A defective input: the variables that select it, and what the one line must name."""

    env: dict[str, str]
    names: list[str] = field(default_factory=list)


def new_home(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return path


def run_env(
    inputs: GoodInputs, root: Path, home: Path, logs: Path, overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """The child environment: no inherited `ARCHS4_*` variable, the good inputs, `overrides`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARCHS4_")}
    env.update(
        {
            "ARCHS4_SOURCE": str(inputs.h5),
            "ARCHS4_GTF": str(inputs.gtf),
            "ARCHS4_LABELS": str(inputs.labels),
            "ARCHS4_WAREHOUSE": str(root),
            "ARCHS4_LOG_DIR": str(logs),
            "ARCHS4_BLOCK_SIZE": str(BLOCK_SIZE),
            **GOOD_SETTINGS,
            "DAGSTER_HOME": str(home),
            "GX_ANALYTICS_ENABLED": "false",
        }
    )
    env.update(overrides or {})
    return env


def headless(
    command: str, env: dict[str, str], timeout: float = REFUSAL_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.headless", command],
        env=env,
        check=False,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root` (directories listed too); empty when absent."""
    if not root.exists():
        return {}
    if root.is_file():
        return {".": sha256(root)}
    return {
        str(path.relative_to(root)): "<dir>" if path.is_dir() else sha256(path)
        for path in sorted(root.rglob("*"))
    }


def instance_state(home: Path) -> tuple[int, list[str]]:
    """Runs recorded by the Dagster instance of `home`, and its block partitions."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return instance.get_runs_count(), sorted(instance.get_dynamic_partitions(SAMPLE_BLOCKS))


def names(text: str, fragment: str) -> bool:
    """`fragment` occurs in `text`, not followed by a digit ("index 7" is not "index 70")."""
    return re.search(re.escape(fragment) + r"(?!\d)", text) is not None


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    for stream in (result.stdout, result.stderr):
        for word in FORBIDDEN_OUTPUT:
            assert word not in stream, f"{word!r} printed:\n{stream}"


def assert_refused(
    result: subprocess.CompletedProcess[str], command: str, fragments: list[str]
) -> str:
    """Exit 2, one line naming every fragment, a detail log holding the traceback; the reason."""
    output = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 2, output
    assert result.stdout == "", output
    assert_clean(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, output
    line = re.fullmatch(rf"archs4 {command}: (.+) \(details: (.+)\)", lines[0])
    assert line is not None, output
    reason, log = line[1], Path(line[2])
    missing = [fragment for fragment in fragments if not names(reason, fragment)]
    assert not missing, f"the line does not name {missing}: {lines[0]}"
    assert log.is_file(), output
    assert "Traceback" in log.read_text(), f"{log} holds no detail"
    return reason


# --- defective sources ------------------------------------------------------------------------

Edit = Callable[[Path], list[str]]  # edits a copy of the good release; what the line must name
Build = Callable[[GoodInputs, Path], Refusal]


def read_texts(path: Path, key: str) -> list[str]:
    with h5py.File(path, "r") as handle:
        return [value.decode() for value in handle[key][:]]


def read_numbers(path: Path, key: str) -> np.ndarray:
    with h5py.File(path, "r") as handle:
        return handle[key][:]


def replace(path: Path, key: str, data: list[str] | np.ndarray) -> None:
    """Replace dataset `key` by `data` (a list is written as variable-length UTF-8 text)."""
    with h5py.File(path, "r+") as handle:
        del handle[key]
        if isinstance(data, list):
            text = np.array(data, dtype=object)
            handle.create_dataset(key, data=text, dtype=h5py.string_dtype())
        else:
            handle.create_dataset(key, data=data)


def set_text(key: str, index: int, value: str) -> Edit:
    def edit(path: Path) -> list[str]:
        values = read_texts(path, key)
        values[index] = value
        replace(path, key, values)
        return [key, f"index {index}"]

    return edit


def duplicate_text(key: str, first: int, copy: int) -> Edit:
    def edit(path: Path) -> list[str]:
        values = read_texts(path, key)
        values[copy] = values[first]
        replace(path, key, values)
        return [key, values[first]]

    return edit


def set_number(key: str, index: int, value: float) -> Edit:
    def edit(path: Path) -> list[str]:
        values = read_numbers(path, key)
        values = values.astype(np.result_type(values, np.asarray(value)))
        values[index] = value
        replace(path, key, values)
        return [key, f"index {index}"]

    return edit


def shorten(key: str) -> Edit:
    def edit(path: Path) -> list[str]:
        replace(path, key, read_texts(path, key)[:-1])
        return [key]

    return edit


def lengthen_numbers(key: str) -> Edit:
    def edit(path: Path) -> list[str]:
        values = read_numbers(path, key)
        replace(path, key, np.concatenate([values, values[:1]]))
        return [key]

    return edit


def probability_as_text(index: int, value: str) -> Edit:
    def edit(path: Path) -> list[str]:
        texts = [f"{p:.4f}" for p in read_numbers(path, PROBABILITY_KEY)]
        texts[index] = value
        replace(path, PROBABILITY_KEY, np.array([t.encode() for t in texts], dtype="S8"))
        return [PROBABILITY_KEY, f"index {index}"]

    return edit


def float_expression(path: Path) -> list[str]:
    counts = read_numbers(path, EXPRESSION_KEY)
    with h5py.File(path, "r+") as handle:
        del handle[EXPRESSION_KEY]
        floats = counts.astype(np.float32)
        handle.create_dataset(EXPRESSION_KEY, data=floats, chunks=(N_GENES, BLOCK_SIZE))
    return [EXPRESSION_KEY]


def source_case(edit: Edit) -> Build:
    def build(good: GoodInputs, tmp: Path) -> Refusal:
        path = tmp / "human_gene_v2.6_defective.h5"
        shutil.copyfile(good.h5, path)
        return Refusal({"ARCHS4_SOURCE": str(path)}, [str(path), *edit(path)])

    return build


def truncated_source(good: GoodInputs, tmp: Path) -> Refusal:
    path = tmp / "human_gene_v2.6_truncated.h5"
    data = good.h5.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return Refusal({"ARCHS4_SOURCE": str(path)}, [str(path)])


def empty_source(good: GoodInputs, tmp: Path) -> Refusal:
    path = tmp / "human_gene_v2.6_empty.h5"
    path.touch()
    return Refusal({"ARCHS4_SOURCE": str(path)}, [str(path)])


def directory_without_release(good: GoodInputs, tmp: Path) -> Refusal:
    path = tmp / "releases"
    path.mkdir()
    (path / "README.txt").write_text("the releases go here\n")
    return Refusal({"ARCHS4_SOURCE": str(path)}, [str(path)])


def directory_of_two_species(good: GoodInputs, tmp: Path) -> Refusal:
    path = tmp / "releases"
    path.mkdir()
    shutil.copyfile(good.h5, path / "human_gene_v2.6.h5")
    shutil.copyfile(good.h5, path / "mouse_gene_v2.6.h5")
    return Refusal({"ARCHS4_SOURCE": str(path)}, [str(path), "ARCHS4_SPECIES"])


def species_not_in_directory(good: GoodInputs, tmp: Path) -> Refusal:
    path = tmp / "releases"
    path.mkdir()
    shutil.copyfile(good.h5, path / "human_gene_v2.6.h5")
    return Refusal(
        {"ARCHS4_SOURCE": str(path), "ARCHS4_SPECIES": "mouse"}, [str(path), "ARCHS4_SPECIES"]
    )


def missing_source(good: GoodInputs, tmp: Path) -> Refusal:
    path = tmp / "nowhere" / "human_gene_v2.6.h5"
    return Refusal({"ARCHS4_SOURCE": str(path)}, [str(path)])


# --- defective GTFs ---------------------------------------------------------------------------

LineEdit = Callable[[list[str]], list[str]]  # the 9 fields of the first exon line -> new fields


def set_field(column: int, value: str) -> LineEdit:
    """Set GTF column `column` (1-based, as the GTF specification counts)."""

    def edit(fields: list[str]) -> list[str]:
        return [value if number == column else f for number, f in enumerate(fields, start=1)]

    return edit


def reversed_exon(fields: list[str]) -> list[str]:
    return [*fields[:3], str(int(fields[4]) + 10), *fields[4:]]


def without_gene_id(fields: list[str]) -> list[str]:
    return [*fields[:8], re.sub(r'gene_id "[^"]*";\s*', "", fields[8])]


def eight_columns(fields: list[str]) -> list[str]:
    return fields[:8]


def gtf_case(edit: LineEdit, *problem: str) -> Build:
    """Edit the first exon line of the good GTF; the line must name the file and that line."""

    def build(good: GoodInputs, tmp: Path) -> Refusal:
        lines = gzip.decompress(good.gtf.read_bytes()).decode().split("\n")
        index = next(i for i, line in enumerate(lines) if line.split("\t")[2:3] == ["exon"])
        lines[index] = "\t".join(edit(lines[index].split("\t")))
        path = tmp / "gencode.defective.annotation.gtf.gz"
        path.write_bytes(gzip.compress("\n".join(lines).encode()))
        return Refusal({"ARCHS4_GTF": str(path)}, [str(path), f"line {index + 1}", *problem])

    return build


def truncated_gtf(good: GoodInputs, tmp: Path) -> Refusal:
    path = tmp / "gencode.truncated.annotation.gtf.gz"
    data = good.gtf.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return Refusal({"ARCHS4_GTF": str(path)}, [str(path)])


def missing_gtf(good: GoodInputs, tmp: Path) -> Refusal:
    path = tmp / "gencode.v44.annotation.gtf.gz"
    return Refusal({"ARCHS4_GTF": str(path)}, [str(path)])


# --- defective label directories --------------------------------------------------------------

LabelEdit = Callable[[Path], list[str]]  # edits a copy of the label directory


def header_cell(value: str) -> LabelEdit:
    def edit(root: Path) -> list[str]:
        tsv = sorted(root.glob("cell_lines/*/*.tsv"))[0]
        header, rest = tsv.read_text().split("\n", 1)
        cells = header.split("\t")
        cells[1] = value
        tsv.write_text("\t".join(cells) + "\n" + rest)
        return [str(tsv), "line 1", "column 2"]

    return edit


def label_without_tsv(root: Path) -> list[str]:
    directory = sorted(root.glob("tissue_types/*"))[0]
    for tsv in directory.glob("*.tsv"):
        tsv.unlink()
    (directory / "notes.txt").write_text("moved elsewhere\n")
    return [str(directory)]


def unknown_label(root: Path) -> list[str]:
    source = sorted(root.glob("cell_lines/*/*.tsv"))[0]
    directory = root / "cell_lines" / "unicorn"
    directory.mkdir()
    shutil.copyfile(source, directory / "unicorn.tsv")
    return [str(directory)]


def tissue_under_cell_lines(root: Path) -> list[str]:
    directory = root / "cell_lines" / "nervous"
    (root / "tissue_types" / "nervous").rename(directory)
    return [str(directory)]


def labels_case(edit: LabelEdit) -> Build:
    def build(good: GoodInputs, tmp: Path) -> Refusal:
        root = tmp / "labels"
        shutil.copytree(good.labels, root)
        return Refusal({"ARCHS4_LABELS": str(root)}, edit(root))

    return build


def labels_file(good: GoodInputs, tmp: Path) -> Refusal:
    path = tmp / "labels.tsv"
    shutil.copyfile(sorted(good.labels.glob("cell_lines/*/*.tsv"))[0], path)
    return Refusal({"ARCHS4_LABELS": str(path)}, [str(path)])


# --- bad variables ----------------------------------------------------------------------------


def setting(name: str, value: str, shown: tuple[str, ...] | None = None) -> Build:
    """`name=value`; the line names the variable and `shown` (default: the value)."""

    def build(good: GoodInputs, tmp: Path) -> Refusal:
        return Refusal({name: value}, [name, *((value,) if shown is None else shown)])

    return build


CASES: dict[str, Build] = {
    "source-title-one-short": source_case(shorten("meta/samples/title")),
    "source-probability-too-long": source_case(lengthen_numbers(PROBABILITY_KEY)),
    "source-gsm-SRR": source_case(set_text(GSM_KEY, 7, "SRR5551234")),
    "source-gsm-duplicate": source_case(duplicate_text(GSM_KEY, 3, 9)),
    "source-gsm-empty": source_case(set_text(GSM_KEY, 5, "")),
    "source-series-malformed": source_case(set_text(SERIES_KEY, 11, "GSE12x")),
    "source-ensembl-FOO1": source_case(set_text(GENE_ID_KEY, 4, "FOO1")),
    "source-ensembl-duplicate": source_case(duplicate_text(GENE_ID_KEY, 2, 6)),
    "source-alignedreads-negative": source_case(set_number(ALIGNED_KEY, 13, -5)),
    "source-probability-1.5": source_case(set_number(PROBABILITY_KEY, 17, 1.5)),
    "source-probability-text": source_case(probability_as_text(19, "high")),
    "source-symbol-one-short": source_case(shorten(SYMBOL_KEY)),
    "source-expression-float": source_case(float_expression),
    "source-truncated": truncated_source,
    "source-empty-file": empty_source,
    "source-directory-without-h5": directory_without_release,
    "source-directory-of-two-species": directory_of_two_species,
    "source-species-not-in-directory": species_not_in_directory,
    "source-missing": missing_source,
    "gtf-start-negative": gtf_case(set_field(4, "-5")),
    "gtf-start-after-end": gtf_case(reversed_exon),
    "gtf-start-zero": gtf_case(set_field(4, "0")),
    "gtf-start-not-integer": gtf_case(set_field(4, "84025.5")),
    "gtf-exon-without-gene_id": gtf_case(without_gene_id, "gene_id"),
    "gtf-eight-columns": gtf_case(eight_columns),
    "gtf-gzip-truncated": truncated_gtf,
    "gtf-missing": missing_gtf,
    "labels-header-SRR123": labels_case(header_cell("SRR123")),
    "labels-header-GSM12a": labels_case(header_cell("GSM12a")),
    "labels-directory-without-tsv": labels_case(label_without_tsv),
    "labels-unknown-label": labels_case(unknown_label),
    "labels-tissue-under-cell_lines": labels_case(tissue_under_cell_lines),
    "labels-path-is-a-file": labels_file,
}
# One bad value of every numeric or choice variable: (variable, value, what the line shows).
BAD_VALUES: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("ARCHS4_BLOCK_SIZE", "abc", None),
    ("ARCHS4_BLOCK_SIZE", "0", None),
    ("ARCHS4_BLOCK_SIZE", "-3", None),
    ("ARCHS4_WORKERS", "0", None),
    ("ARCHS4_MEMORY_GB", "lots", None),
    ("ARCHS4_LENGTH_ADJUSTMENT", "bogus", None),
    ("ARCHS4_GENE_CHUNK_VALUES", "1.5", None),
    ("ARCHS4_RF_TREES", "x", None),
    ("ARCHS4_MAX_TRAIN_SAMPLES", "0", None),
    ("ARCHS4_GAN_EPOCHS", "  ", ()),  # blank is a value; empty (`VAR=`) means unset
    ("ARCHS4_CURVE_LABELS", "all", None),
    ("ARCHS4_CURVE_SEEDS", "0", None),
    ("ARCHS4_CURVE_GAN_EPOCHS", "1e2", None),
    ("ARCHS4_SENSOR_INTERVAL", "soon", None),
    ("ARCHS4_SENSOR_STATUS", "paused", None),
    ("ARCHS4_SPECIES", "zebrafish", None),
    ("ARCHS4_UPDATE_CRON", "daily", None),
    ("ARCHS4_LOG_LEVEL", "LOUD", None),
    ("ARCHS4_DASK_SCHEDULER", "localhost", None),
    ("ARCHS4_API_MAX_VALUES", "many", None),
    ("ARCHS4_COEXPRESSION_SAMPLES", "1", None),
    ("ARCHS4_CHECK_RECOMPUTED_SAMPLES", "all", None),
    ("ARCHS4_BLOCKSIZE", "10", ("ARCHS4_BLOCK_SIZE",)),  # misspelled: "did you mean"
]
CASES |= {f"env-{name}={value}": setting(name, value, shown) for name, value, shown in BAD_VALUES}
UPDATE_CASES = [
    "source-gsm-SRR",
    "source-directory-of-two-species",
    "source-title-one-short",
    "source-truncated",
    "gtf-start-negative",
    "labels-header-SRR123",
    "env-ARCHS4_BLOCK_SIZE=abc",
]
FRESH_CASES = [
    "source-gsm-duplicate",
    "source-probability-1.5",
    "source-missing",
    "gtf-start-zero",
    "gtf-gzip-truncated",
    "labels-unknown-label",
    "env-ARCHS4_BLOCKSIZE=10",
]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_inputs(tmp_path_factory: pytest.TempPathFactory) -> GoodInputs:
    paths = write_demo_dataset(
        tmp_path_factory.mktemp("good_inputs"), n_samples=N_SAMPLES, n_genes=N_GENES, seed=SEED
    )
    return GoodInputs(paths.h5, paths.gtf, paths.labels_dir, read_texts(paths.h5, GSM_KEY))


@pytest.fixture(scope="module")
def built(good_inputs: GoodInputs, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The module's good warehouse and Dagster instance, built by the real command right after
    a refused release on the same new warehouse and instance (the poisoning scenario: the
    malformed GSM is refused, the corrected file at the same path then builds normally)."""
    tmp = tmp_path_factory.mktemp("good_warehouse")
    root, home = tmp / "warehouse", new_home(tmp / "dagster")
    env = run_env(good_inputs, root, home, tmp / "logs")
    good_bytes = good_inputs.h5.read_bytes()
    set_text(GSM_KEY, 7, "SRR5551234")(good_inputs.h5)
    refused = headless("run", env)
    good_inputs.h5.write_bytes(good_bytes)  # corrected in place
    assert_refused(refused, "run", [str(good_inputs.h5), GSM_KEY, "index 7"])
    assert not root.exists()
    result = headless("run", env, timeout=BUILD_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    return Built(good_inputs, root, home, result, tree_hashes(root), instance_state(home))


def refuse(
    case: str, command: str, inputs: GoodInputs, *, root: Path, home: Path, tmp: Path
) -> Refusal:
    """Run `command` with the defect of `case`; assert it is refused as the contract says."""
    refusal = CASES[case](inputs, tmp)
    env = run_env(inputs, root, home, tmp / "logs", refusal.env)
    assert_refused(headless(command, env), command, refusal.names)
    return refusal


# --- tests ------------------------------------------------------------------------------------


def assert_built(result: subprocess.CompletedProcess[str], root: Path) -> None:
    """Exit 0, "Built the warehouse at <root>" and an existing run log, nothing unclean."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert_clean(result)
    assert f"Built the warehouse at {root}" in output, output
    log = re.search(r"\(run log: (.+)\)", output)
    assert log is not None and Path(log[1]).is_file(), output


def test_a_successful_run_is_clean(built: Built) -> None:
    assert_built(built.result, built.root)
    runs, partitions = built.state
    assert runs > 0 and partitions == ["000000", "000001", "000002"]


@pytest.mark.parametrize("case", CASES)
def test_refused_and_the_warehouse_is_unchanged(case: str, built: Built, tmp_path: Path) -> None:
    refuse(case, "run", built.inputs, root=built.root, home=built.home, tmp=tmp_path)
    assert tree_hashes(built.root) == built.hashes
    assert instance_state(built.home) == built.state


@pytest.mark.parametrize("case", UPDATE_CASES)
def test_update_refuses_the_same(case: str, built: Built, tmp_path: Path) -> None:
    refuse(case, "update", built.inputs, root=built.root, home=built.home, tmp=tmp_path)
    assert tree_hashes(built.root) == built.hashes
    assert instance_state(built.home) == built.state


@pytest.mark.parametrize("case", FRESH_CASES)
def test_a_new_warehouse_stays_absent(case: str, good_inputs: GoodInputs, tmp_path: Path) -> None:
    root, home = tmp_path / "new" / "warehouse", new_home(tmp_path / "dagster")
    refuse(case, "run", good_inputs, root=root, home=home, tmp=tmp_path)
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in home.iterdir()) == ["dagster.yaml"]  # no instance storage


def test_a_warehouse_root_that_is_a_file(built: Built, tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    root.write_text("not a directory\n")
    before = sha256(root)
    env = run_env(built.inputs, root, built.home, tmp_path / "logs")
    assert_refused(headless("run", env), "run", [str(root), "ARCHS4_WAREHOUSE"])
    assert sha256(root) == before
    assert instance_state(built.home) == built.state


def test_every_numeric_or_choice_variable_has_a_bad_value_case() -> None:
    typed = {
        f"ARCHS4_{name.upper()}"
        for name, spec in Settings.__dataclass_fields__.items()
        if "Path" not in str(spec.type)
    }
    assert typed <= {name for name, _, _ in BAD_VALUES}


def test_an_empty_variable_means_unset() -> None:
    assert Settings.from_env({"ARCHS4_GAN_EPOCHS": ""}).gan_epochs == Settings().gan_epochs


def test_a_refused_release_cannot_poison_the_registry(built: Built) -> None:
    """After the refused release (see `built`), the corrected file built every sample, in
    blocks of the configured size, none of one sample."""
    registry = pq.read_table(built.root / "raw" / "sample_registry.parquet").to_pydict()
    assert sorted(registry["gsm"]) == sorted(built.inputs.gsms)
    sizes = {block: registry["block"].count(block) for block in set(registry["block"])}
    assert sizes == {"000000": 100, "000001": 100, "000002": 100}
    with duckdb.connect(str(built.root / "warehouse.duckdb"), read_only=True) as connection:
        n_samples = connection.execute("SELECT count(*) FROM samples").fetchall()
    assert n_samples == [(N_SAMPLES,)]
    assert built.state[1] == sorted(sizes)


def test_the_sensor_and_the_schedule_refuse_a_defective_release(
    built: Built, tmp_path: Path
) -> None:
    refusal = CASES["source-gsm-SRR"](built.inputs, tmp_path)
    env = run_env(built.inputs, built.root, built.home, tmp_path / "logs", refusal.env)
    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("ARCHS4_")})
    resources = resources_from_settings(settings)
    with dg.DagsterInstance.from_config(str(built.home)) as instance:
        sensor = build_release_sensor(settings)
        schedule = build_daily_update(settings)
        results = [
            sensor(dg.build_sensor_context(instance=instance, resources=resources)),
            schedule(dg.build_schedule_context(instance=instance, resources=resources)),
        ]
    for result in results:
        assert isinstance(result, dg.SkipReason), result
        message = result.skip_message or ""
        assert message.startswith("inputs refused"), message
        assert all(names(message, fragment) for fragment in refusal.names), message
    assert tree_hashes(built.root) == built.hashes
    assert instance_state(built.home) == built.state


def corrupt_a_chunk(path: Path, first_sample: int) -> None:
    """Overwrite bytes inside the stored (compressed) chunk holding `first_sample`'s counts:
    a defect the pre-run check cannot see without reading the whole matrix."""
    with h5py.File(path, "r") as handle:
        dataset = handle[EXPRESSION_KEY]
        chunk = next(
            dataset.id.get_chunk_info(i)
            for i in range(dataset.id.get_num_chunks())
            if dataset.id.get_chunk_info(i).chunk_offset[1] == first_sample
        )
    with path.open("r+b") as raw:
        raw.seek(chunk.byte_offset + chunk.size // 3)
        raw.write(b"\xff" * 64)


def test_a_corrupt_chunk_fails_its_block_naming_the_file_and_key(
    good_inputs: GoodInputs, tmp_path: Path
) -> None:
    """Found only when its block is read: the run stops there with one line naming the file
    and key (the reader's error, not the HDF5 library's), the blocks before stay committed, and
    the corrected file resumes on the same warehouse."""
    source = tmp_path / "human_gene_v2.6.h5"
    shutil.copyfile(good_inputs.h5, source)
    corrupt_a_chunk(source, 2 * BLOCK_SIZE)
    root, home = tmp_path / "warehouse", new_home(tmp_path / "dagster")
    env = run_env(good_inputs, root, home, tmp_path / "logs", {"ARCHS4_SOURCE": str(source)})
    failed = headless("run", env, timeout=BUILD_TIMEOUT)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert_clean(failed)
    (line,) = failed.stderr.splitlines()
    assert f"{source} [{EXPRESSION_KEY}]: cannot read" in line, line
    assert "block 000002" in line and "(details: " in line, line
    committed = sorted(p.parent.name for p in (root / "raw" / "samples").glob("*/part.parquet"))
    assert committed == ["block=000000", "block=000001"]
    shutil.copyfile(good_inputs.h5, source)  # corrected in place
    assert_built(headless("run", env, timeout=BUILD_TIMEOUT), root)
