"""Tests of the demo dataset generator: ARCHS4 layout, determinism, block independence, the GTF,
the truth table and the label download directory. Small sizes keep them fast; the label
frequencies are checked at the default size on the sample plan alone (no counts needed)."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

import h5py
import numpy as np
import pytest

from archs4.demo_data import (
    ALL_LABELS,
    BIOSOURCES,
    CELL_LINE_LABELS,
    TISSUE_LABELS,
    DemoPaths,
    build_gene_table,
    label_sample_counts,
    plan_samples,
    write_demo_dataset,
)
from archs4.demo_data.genes import _made_up_symbols
from archs4.demo_data.realism import ORIGINAL, DemoRealism
from archs4.demo_data.samples import SamplePlan
from archs4.demo_data.tables import _LABEL_MARKERS

N_SAMPLES = 300
N_GENES = 400
SEED = 11

SAMPLE_STRING_KEYS = (
    "geo_accession", "series_id", "title", "source_name_ch1", "characteristics_ch1",
    "organism_ch1", "molecule_ch1", "library_strategy", "library_source", "library_selection",
    "platform_id", "instrument_model", "extract_protocol_ch1", "data_processing",
    "submission_date", "last_update_date", "status", "type", "relation",
)  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoPaths:
    out = tmp_path_factory.mktemp("demo")
    return write_demo_dataset(out, n_samples=N_SAMPLES, n_genes=N_GENES, seed=SEED, block_size=70)


def strings(handle: h5py.File, key: str) -> list[str]:
    return [v.decode() for v in handle[key][()]]


def gtf_lines(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt") as text:
        return [line.rstrip("\n").split("\t") for line in text if not line.startswith("#")]


def attribute(fields: list[str], key: str) -> str | None:
    match = re.search(rf'(?:^|; ){key} "?([^";]+)"?;', fields[8])
    return match.group(1) if match else None


def read_truth(path: Path) -> dict[str, dict[str, bool]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "gsm\tlabel\tnamed_in_metadata"
    truth: dict[str, dict[str, bool]] = defaultdict(dict)
    for line in lines[1:]:
        gsm, label, named = line.split("\t")
        assert named in ("true", "false")
        truth[gsm][label] = named == "true"
    return truth


def normalized(text: str) -> str:
    """Upper case without spaces or punctuation, as the pipeline's keyword matching sees text."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_identical_outputs_and_another_seed_differs(
    demo: DemoPaths, tmp_path: Path
) -> None:
    again = write_demo_dataset(
        tmp_path / "again", n_samples=N_SAMPLES, n_genes=N_GENES, seed=SEED, block_size=70
    )
    other = write_demo_dataset(
        tmp_path / "other", n_samples=N_SAMPLES, n_genes=N_GENES, seed=SEED + 1, block_size=70
    )
    with h5py.File(demo.h5) as first, h5py.File(again.h5) as second, h5py.File(other.h5) as third:
        np.testing.assert_array_equal(first["data/expression"][()], second["data/expression"][()])
        for group in ("meta/genes", "meta/samples", "meta/info"):
            assert set(first[group]) == set(second[group])
            for key in first[group]:
                assert np.array_equal(first[group][key][()], second[group][key][()]), key
        assert not np.array_equal(first["data/expression"][()], third["data/expression"][()])
        assert strings(first, "meta/samples/title") != strings(third, "meta/samples/title")
    assert gzip.decompress(demo.gtf.read_bytes()) == gzip.decompress(again.gtf.read_bytes())
    assert demo.gtf.read_bytes() == again.gtf.read_bytes()  # gzip header without a timestamp
    assert demo.truth.read_bytes() == again.truth.read_bytes()
    assert demo.truth.read_bytes() != other.truth.read_bytes()
    files = sorted(p.relative_to(demo.labels_dir) for p in demo.labels_dir.rglob("*.tsv"))
    assert files == sorted(p.relative_to(again.labels_dir) for p in again.labels_dir.rglob("*.tsv"))
    for name in files:
        assert (demo.labels_dir / name).read_bytes() == (again.labels_dir / name).read_bytes()


def test_outputs_do_not_depend_on_python_string_hashing(tmp_path: Path) -> None:
    """Two interpreters with different PYTHONHASHSEED (set iteration order differs) agree."""
    script = (
        "import sys; from pathlib import Path; from archs4.demo_data import write_demo_dataset; "
        "write_demo_dataset(Path(sys.argv[1]), n_samples=60, n_genes=150, seed=3, block_size=25)"
    )
    for hash_seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / hash_seed)],
            check=True,
            env=environment,
            cwd=Path(__file__).resolve().parents[1],
        )
    first, second = tmp_path / "1", tmp_path / "2"
    for name in ("gencode.demo.annotation.gtf.gz", "labels_truth.tsv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    with (
        h5py.File(first / "human_gene_v2.6_demo.h5") as one,
        h5py.File(second / "human_gene_v2.6_demo.h5") as two,
    ):
        np.testing.assert_array_equal(one["data/expression"][()], two["data/expression"][()])
        for key in ("meta/genes/symbol", "meta/genes/ensembl_gene", "meta/samples/title"):
            assert strings(one, key) == strings(two, key), key


def test_block_size_does_not_change_the_data(demo: DemoPaths, tmp_path: Path) -> None:
    """The fixture wrote blocks of 70 samples (not aligned with the 100-sample chunks)."""
    one_block = write_demo_dataset(
        tmp_path, n_samples=N_SAMPLES, n_genes=N_GENES, seed=SEED, block_size=10_000
    )
    with h5py.File(demo.h5) as blocked, h5py.File(one_block.h5) as whole:
        np.testing.assert_array_equal(blocked["data/expression"][()], whole["data/expression"][()])
        np.testing.assert_array_equal(
            blocked["meta/samples/alignedreads"][()], whole["meta/samples/alignedreads"][()]
        )


def test_rewriting_replaces_outputs_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    for seed in (1, 2):
        paths = write_demo_dataset(tmp_path, n_samples=40, n_genes=60, seed=seed, block_size=15)
    leftovers = [p.name for p in tmp_path.rglob("*") if "tmp" in p.name or ".old" in p.name]
    assert leftovers == []
    truth_gsms = set(read_truth(paths.truth))
    for tsv in paths.labels_dir.rglob("*.tsv"):  # the seed-1 lists are gone, not merged
        assert set(tsv.read_text().splitlines()[0].split("\t")[1:]) <= truth_gsms


def test_rejects_unknown_layout(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layout"):
        write_demo_dataset(tmp_path, n_samples=10, n_genes=10, layout="v3")


# --- HDF5 layout --------------------------------------------------------------------------------


# layout: (gene id key, symbol key, aligned reads key)
LAYOUT_KEYS = {
    "v2.6": ("ensembl_gene", "symbol", "alignedreads"),
    "v2.2": ("ensembl_gene_id", "gene_symbol", "readsaligned"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUT_KEYS))
def test_hdf5_layout(tmp_path: Path, layout: str) -> None:
    gene_id_key, symbol_key, aligned_key = LAYOUT_KEYS[layout]
    (other_layout,) = set(LAYOUT_KEYS) - {layout}
    other_keys = LAYOUT_KEYS[other_layout]
    n_samples, n_genes = 150, 2100  # more genes than one chunk row band
    paths = write_demo_dataset(
        tmp_path, n_samples=n_samples, n_genes=n_genes, layout=layout, block_size=64
    )
    assert paths.h5.name == f"human_gene_{layout}_demo.h5"
    with h5py.File(paths.h5) as handle:
        expression = handle["data/expression"]
        assert expression.dtype == np.uint32
        assert expression.shape == (n_genes, n_samples)  # genes are rows
        assert expression.chunks == (2000, 100)
        assert expression.compression == "gzip"
        assert expression.compression_opts == 4
        assert not expression.shuffle
        assert set(handle["meta/genes"]) == {gene_id_key, symbol_key, "biotype"}
        for key in (gene_id_key, symbol_key, "biotype"):
            dataset = handle[f"meta/genes/{key}"]
            assert dataset.shape == (n_genes,)
            assert h5py.check_string_dtype(dataset.dtype).encoding == "utf-8"
            assert h5py.check_string_dtype(dataset.dtype).length is None  # variable length
        samples = handle["meta/samples"]
        for key in SAMPLE_STRING_KEYS:
            assert samples[key].shape == (n_samples,), key
            assert h5py.check_string_dtype(samples[key].dtype).encoding == "utf-8", key
        assert samples["singlecellprobability"].dtype == np.float64
        assert samples["readstotal"].dtype == np.int64
        assert samples[aligned_key].dtype == np.int64
        for key in other_keys:
            assert key not in samples and key not in handle["meta/genes"]
        info = handle["meta/info"]
        assert info["version"][()].decode() == layout.removeprefix("v")
        assert set(info) == {"version", "creation-date", "author", "contact", "laboratory"}
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", info["creation-date"][()].decode())
        counts = expression[()]
        # the last, partial chunk row band and chunk column are written in full
        assert counts[2000:, 100:].sum() > 0


def test_sample_and_gene_metadata_look_like_archs4(demo: DemoPaths) -> None:
    with h5py.File(demo.h5) as handle:
        gsms = strings(handle, "meta/samples/geo_accession")
        series = strings(handle, "meta/samples/series_id")
        ids = strings(handle, "meta/genes/ensembl_gene")
        symbols = strings(handle, "meta/genes/symbol")
        biotypes = strings(handle, "meta/genes/biotype")
        characteristics = strings(handle, "meta/samples/characteristics_ch1")
        probability = handle["meta/samples/singlecellprobability"][()]
        assert set(strings(handle, "meta/samples/organism_ch1")) == {"Homo sapiens"}
        assert set(strings(handle, "meta/samples/library_strategy")) == {"RNA-Seq"}
        assert set(strings(handle, "meta/samples/type")) == {"SRA"}
        assert all(p.startswith("GPL") for p in strings(handle, "meta/samples/platform_id"))
    assert len(set(gsms)) == N_SAMPLES
    numbers = [int(g.removeprefix("GSM")) for g in gsms]
    assert numbers == sorted(numbers) and numbers[0] >= 1_000_000
    assert all(re.fullmatch(r"GSE\d+(,GSE\d+)?", s) for s in series)
    joined = sum("," in s for s in series)
    assert 0 < joined < 0.1 * N_SAMPLES
    assert all(re.fullmatch(r"ENSG\d{11}", i) for i in ids) and len(set(ids)) == N_GENES
    assert ids == sorted(ids)
    symbol_counts = Counter(symbols)
    repeated = sum(1 for s in symbols if symbol_counts[s] > 1)
    assert 0.015 * N_GENES <= repeated <= 0.05 * N_GENES
    assert 0 < sum(s == i for s, i in zip(symbols, ids, strict=True)) <= 0.04 * N_GENES
    assert {"GAPDH", "ACTB", "CD99", "MT-CO1"} <= set(symbols)
    assert 0.6 < biotypes.count("protein_coding") / N_GENES < 0.8
    assert {"lncRNA", "processed_pseudogene"} <= set(biotypes)
    assert sum("\t" in c for c in characteristics) > 0.8 * N_SAMPLES
    assert all(re.fullmatch(r"([^:\t]+: [^\t]+)(\t[^:\t]+: [^\t]+)*", c) for c in characteristics)
    assert probability.min() >= 0 and probability.max() <= 1
    assert np.median(probability) < 0.1


# --- counts -------------------------------------------------------------------------------------


def test_aligned_reads_are_column_sums(demo: DemoPaths) -> None:
    with h5py.File(demo.h5) as handle:
        counts = handle["data/expression"][()]
        aligned = handle["meta/samples/alignedreads"][()]
        total = handle["meta/samples/readstotal"][()]
    np.testing.assert_array_equal(aligned, counts.sum(axis=0, dtype=np.int64))
    assert np.all(total >= aligned)


def test_counts_have_zeros_low_quality_samples_and_silent_genes(demo: DemoPaths) -> None:
    with h5py.File(demo.h5) as handle:
        counts = handle["data/expression"][()]
    assert 0.15 < (counts == 0).mean() < 0.8
    silent_genes = int((counts.sum(axis=1) == 0).sum())
    assert 1 <= silent_genes <= 0.06 * N_GENES  # ~1 % by design, a few more when this small
    library = counts.sum(axis=0)
    assert 1 <= (library < 0.05 * np.median(library)).sum() <= 0.06 * N_SAMPLES


def test_counts_follow_labels_and_gene_lengths(demo: DemoPaths) -> None:
    """Marker genes are higher in samples carrying their label, and among the genes of one
    baseline level, longer genes collect more reads."""
    plan = plan_samples(N_SAMPLES, SEED)
    genes = build_gene_table(N_GENES, SEED)
    with h5py.File(demo.h5) as handle:
        counts = handle["data/expression"][()].astype(float)
    per_million = counts / np.maximum(counts.sum(axis=0), 1) * 1e6
    truth = plan.label_matrix()
    from archs4.demo_data.tables import _LABEL_MARKERS

    row_of = {s: g for g, s in enumerate(genes.symbol[: genes.n_h5])}
    higher, total = 0, 0
    for index, label in enumerate(ALL_LABELS):
        if truth[:, index].sum() < 5:
            continue
        for symbol in _LABEL_MARKERS[label].split():
            if symbol in row_of:
                values = np.log1p(per_million[row_of[symbol]])
                higher += values[truth[:, index]].mean() > values[~truth[:, index]].mean()
                total += 1
    assert total >= 20 and higher / total > 0.85
    mean_expression = per_million.mean(axis=1)
    expressed = mean_expression > 0
    correlation = np.corrcoef(
        np.log(genes.length_bp[: genes.n_h5][expressed]), np.log(mean_expression[expressed])
    )[0, 1]
    assert correlation > 0.1


# --- labels -------------------------------------------------------------------------------------


def test_every_label_is_frequent_enough_at_the_default_size() -> None:
    plan = plan_samples(4000, 7)
    counts = label_sample_counts(plan)
    assert set(counts) == set(ALL_LABELS) and len(ALL_LABELS) == 27
    assert min(counts.values()) >= 8
    assert 0.005 <= counts["brain"] / 4000 <= 0.02
    assert counts["immune"] > 5 * counts["brain"]
    truth = plan.label_matrix()
    named = plan.named_in_metadata
    assert 0.7 < named.mean() < 0.9
    assert all((truth[:, i] & named).sum() >= 1 for i in range(len(ALL_LABELS)))
    assert 0.01 < (truth.sum(axis=1) == 2).mean() < 0.2
    assert truth.sum(axis=1).min() >= 1


def test_studies_are_heavy_tailed_and_share_their_biosources() -> None:
    plan = plan_samples(4000, 7)
    sizes = plan.study_size
    assert sizes.sum() == 4000
    assert np.median(sizes) <= 10 and (sizes >= 100).sum() >= 1 and (sizes <= 20).mean() > 0.8
    for study in range(sizes.size):
        first = plan.study_start[study]
        assert len(set(plan.biosource[first : first + sizes[study]].tolist())) <= 2


def test_truth_matches_the_plan_and_metadata_names_the_truth(demo: DemoPaths) -> None:
    plan = plan_samples(N_SAMPLES, SEED)
    truth = read_truth(demo.truth)
    with h5py.File(demo.h5) as handle:
        gsms = strings(handle, "meta/samples/geo_accession")
        text = [
            normalized(" ".join(fields))
            for fields in zip(
                strings(handle, "meta/samples/title"),
                strings(handle, "meta/samples/source_name_ch1"),
                strings(handle, "meta/samples/characteristics_ch1"),
                strict=True,
            )
        ]
    assert list(truth) == gsms
    for sample, gsm in enumerate(gsms):
        assert set(truth[gsm]) == set(plan.labels_of(sample))
        named = set(truth[gsm].values())
        assert named == {bool(plan.named_in_metadata[sample])}
        spellings = {normalized(s) for s in BIOSOURCES[plan.biosource[sample]].spellings}
        mentioned = any(spelling in text[sample] for spelling in spellings)
        assert mentioned == named.pop(), (gsm, text[sample])


def test_label_directory_lists_only_true_named_samples(demo: DemoPaths) -> None:
    truth = read_truth(demo.truth)
    listed_total = 0
    named_total = sum(named for labels in truth.values() for named in labels.values())
    kinds = {"cell_lines": set(CELL_LINE_LABELS), "tissue_types": set(TISSUE_LABELS)}
    for kind, labels in kinds.items():
        for directory in (demo.labels_dir / kind).iterdir():
            assert directory.name in labels
            rows = (directory / f"{directory.name}.tsv").read_text().splitlines()
            header = rows[0].split("\t")
            assert header[0] == "gene" and len(header) > 1
            for gsm in header[1:]:
                assert truth[gsm].get(directory.name) is True, (gsm, directory.name)
            for row in rows[1:]:
                fields = row.split("\t")
                assert len(fields) == len(header) and all(f.isdigit() for f in fields[1:])
            listed_total += len(header) - 1
    assert 0.3 * named_total < listed_total < 0.7 * named_total


# --- GTF ----------------------------------------------------------------------------------------


def test_gtf_is_gencode_style(demo: DemoPaths) -> None:
    with gzip.open(demo.gtf, "rt") as text:
        header = [line for line in text if line.startswith("##")]
    assert any(line.startswith("##description:") for line in header)
    assert any(line.startswith("##provider: GENCODE") for line in header)
    rows = gtf_lines(demo.gtf)
    assert all(len(fields) == 9 for fields in rows)
    assert {fields[2] for fields in rows} >= {"gene", "transcript", "exon", "CDS"}
    order = [f"chr{i}" for i in range(1, 23)] + ["chrX", "chrY", "chrM"]
    genes = [fields for fields in rows if fields[2] == "gene"]
    keys = [(order.index(fields[0]), int(fields[3])) for fields in genes]
    assert keys == sorted(keys)
    assert {fields[0] for fields in genes} >= {"chr1", "chrX", "chrY", "chrM"}
    for fields in rows:
        assert re.fullmatch(r"ENSG\d{11}\.\d+(_PAR_Y)?", attribute(fields, "gene_id") or "")
        if fields[2] == "exon":
            assert re.fullmatch(
                r"ENST\d{11}\.\d+(_PAR_Y)?", attribute(fields, "transcript_id") or ""
            )
            assert attribute(fields, "exon_number") is not None


def test_gtf_covers_the_h5_genes_with_par_y_copies_and_gaps(demo: DemoPaths) -> None:
    rows = gtf_lines(demo.gtf)
    gene_rows = [fields for fields in rows if fields[2] == "gene"]
    gtf_ids = {attribute(fields, "gene_id") for fields in gene_rows}
    par_y = {i for i in gtf_ids if i and i.endswith("_PAR_Y")}
    assert len(par_y) >= 2
    for fields in gene_rows:
        if attribute(fields, "gene_id").endswith("_PAR_Y"):
            assert fields[0] == "chrY" and int(fields[4]) <= 2_781_479
    stripped = {re.sub(r"\.\d+(_PAR_Y)?$", "", i) for i in gtf_ids}
    assert {re.sub(r"\.\d+_PAR_Y$", "", i) for i in par_y} <= stripped
    transcripts_of: dict[str, set[str]] = defaultdict(set)
    for fields in rows:
        if fields[2] == "exon":
            transcripts_of[attribute(fields, "gene_id")].add(attribute(fields, "transcript_id"))
    for copy in par_y:  # the chrY copy is the chrX gene with `_PAR_Y` on every id
        original = copy.removesuffix("_PAR_Y")
        assert {t.removesuffix("_PAR_Y") for t in transcripts_of[copy]} == transcripts_of[original]
    with h5py.File(demo.h5) as handle:
        ids = strings(handle, "meta/genes/ensembl_gene")
        symbols = strings(handle, "meta/genes/symbol")
    missing = [i for i in ids if i not in stripped]
    assert 0.015 * N_GENES <= len(missing) <= 0.05 * N_GENES
    assert len(stripped - set(ids)) >= 1  # GENCODE also has genes ARCHS4 lacks
    name_of = {
        re.sub(r"\.\d+$", "", attribute(f, "gene_id")): attribute(f, "gene_name") for f in gene_rows
    }
    assert all(name_of[i] == s for i, s in zip(ids, symbols, strict=True) if i in name_of)


def test_gtf_lengths_are_the_lengths_behind_the_counts(demo: DemoPaths) -> None:
    """Longest-transcript exonic length from the exon lines equals the length the counts were
    drawn with; it differs from the exon union for genes whose transcripts differ."""
    exons: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for fields in gtf_lines(demo.gtf):
        if fields[2] == "exon":
            gene = attribute(fields, "gene_id")
            exons[gene][attribute(fields, "transcript_id")].append((int(fields[3]), int(fields[4])))
    genes = build_gene_table(N_GENES, SEED)
    expected = {
        f"{genes.ensembl_id[g]}.{genes.version[g]}": int(genes.length_bp[g])
        for g in range(genes.n_h5)
    }
    differs = 0
    for gene, transcripts in exons.items():
        for intervals in transcripts.values():
            ordered = sorted(intervals)
            assert all(a[1] < b[0] for a, b in pairwise(ordered))
        longest = max(sum(e - s + 1 for s, e in t) for t in transcripts.values())
        covered = set()
        for intervals in transcripts.values():
            for s, e in intervals:
                covered.update(range(s, e + 1))
        differs += len(covered) != longest
        plain = gene.removesuffix("_PAR_Y")
        if plain in expected:
            assert longest == expected[plain], gene
    assert differs >= 0.1 * len(exons)
    assert max(len(t) for t in exons.values()) <= 6
    assert max(len(i) for t in exons.values() for i in t.values()) <= 15


def test_made_up_symbols_stay_unique_beyond_a_biotypes_name_space():
    # snoRNA templates give 759 names; asking for more must neither loop nor repeat one.
    symbols = _made_up_symbols(["snoRNA"] * 900, ["GAPDH"], np.random.default_rng(0))
    assert len(set(symbols)) == 900 and "GAPDH" not in symbols


# --- realism ------------------------------------------------------------------------------------


def _h5_digest(paths: DemoPaths) -> str:
    return hashlib.sha256(paths.h5.read_bytes()).hexdigest()


# sha256 of `write_demo_dataset(dir, n_samples=300, n_genes=400)`'s HDF5 file as written by the
# generator before the realism knobs existed (commit c078d7d).
OLD_DEMO_H5_SHA256 = "654b5c8ccd60598fa91b8b6d86ce8807115111068402e0c790a16d5a59e72627"


def test_the_original_realism_is_the_old_demo(tmp_path: Path) -> None:
    """`ORIGINAL` (1.0 everywhere) is the old demo byte for byte, so its figures stay
    reproducible; the calibrated default is a different demo."""
    original = write_demo_dataset(tmp_path / "old", n_samples=300, n_genes=400, realism=ORIGINAL)
    assert _h5_digest(original) == OLD_DEMO_H5_SHA256
    calibrated = write_demo_dataset(tmp_path / "new", n_samples=300, n_genes=400)
    assert _h5_digest(calibrated) != OLD_DEMO_H5_SHA256


def test_a_study_share_cap_spreads_each_label_over_more_studies() -> None:
    def studies_per_label(plan) -> np.ndarray:
        truth = plan.label_matrix()
        return np.array([np.unique(plan.study[truth[:, i]]).size for i in range(truth.shape[1])])

    uncapped = plan_samples(4000, 7, max_study_share=1.0)
    capped = plan_samples(4000, 7, max_study_share=0.25)
    assert capped.study_size.tolist() == uncapped.study_size.tolist()  # the same studies
    assert (studies_per_label(capped) >= 4).all()  # no label in fewer than 1 / 0.25 studies
    assert studies_per_label(capped).sum() > studies_per_label(uncapped).sum()
    brain = ALL_LABELS.index("brain")
    assert studies_per_label(capped)[brain] > studies_per_label(uncapped)[brain]


def test_batch_effects_and_label_signal_move_the_counts_as_documented(tmp_path: Path) -> None:
    """A larger study batch spreads the studies' mean profiles apart; no label signal removes
    the markers' lead."""

    def log_cpm(realism: DemoRealism, name: str) -> tuple[np.ndarray, SamplePlan]:
        paths = write_demo_dataset(tmp_path / name, n_samples=600, n_genes=600, realism=realism)
        with h5py.File(paths.h5, "r") as handle:
            counts = handle["data/expression"][:].astype(np.float64)
        return np.log1p(counts / counts.sum(axis=0) * 1e6), plan_samples(600, 7, 1.0)

    def between_study_spread(values: np.ndarray, plan: SamplePlan) -> float:
        means = np.stack([values[:, plan.study == s].mean(axis=1) for s in np.unique(plan.study)])
        return float(means.std(axis=0).mean())

    base, plan = log_cpm(ORIGINAL, "base")
    batchy, _ = log_cpm(DemoRealism(study_batch=3.0), "batchy")
    assert between_study_spread(batchy, plan) > 1.2 * between_study_spread(base, plan)
    silent, _ = log_cpm(DemoRealism(label_signal=0.0), "silent")
    genes = build_gene_table(600, 7)
    row_of = {symbol: g for g, symbol in enumerate(genes.symbol[: genes.n_h5])}
    truth = plan.label_matrix()

    def marker_lead(values: np.ndarray) -> float:
        leads = [
            values[row_of[symbol], truth[:, i]].mean() - values[row_of[symbol], ~truth[:, i]].mean()
            for i, label in enumerate(ALL_LABELS)
            if truth[:, i].sum() >= 5
            for symbol in _LABEL_MARKERS[label].split()
            if symbol in row_of
        ]
        return float(np.mean(leads))

    assert marker_lead(base) > 1.0 and abs(marker_lead(silent)) < 0.5 * marker_lead(base)
