"""Tests for archs4.labels: the shipped vocabulary on real-looking GEO metadata, the matching
mechanism on small hand-written vocabularies, the ARCHS4 label download reader, label import and
labelling quality.

The GEO strings below are written the way submitters write them (cell line names with and
without hyphens, lower case, tab-separated characteristics, compact titles), and the traps are
words in which a keyword hides once spaces and punctuation are removed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import IO, Any

import polars as pl
import pytest

from archs4.labels import (
    IMPORT_SOURCE,
    METADATA_SOURCE,
    LabelSourceError,
    LabelVocabulary,
    import_labels,
    labelling_quality,
    load_vocabulary,
    normalize_text,
    read_label_directory,
    read_truth_table,
)

CELL_LINE_GROUPS = (
    "bone", "brain", "breast_mammary", "colon", "connective", "cervix", "endothelial", "kidney",
    "liver", "lung", "lymphoid", "muscle", "myeloid", "ovary", "pancreas", "placenta", "prostate",
    "skin",
)  # fmt: skip
TISSUE_SYSTEMS = (
    "cardiovascular", "connective_tissue", "digestive", "immune", "integumentary", "muscular",
    "nervous", "respiratory", "urogenital",
)  # fmt: skip

# (source_name, characteristics, title) -> labels
GEO_CASES: list[tuple[str | None, str | None, str | None, set[str]]] = [
    # --- cell lines, as submitters spell them
    ("MDA-MB-231", "cell line: MDA-MB-231\ttreatment: DMSO", "MDA231_rep1", {"breast_mammary"}),
    ("mda mb 231 cells", "", "", {"breast_mammary"}),
    (
        "MCF 7",
        "cell line: MCF7\tcell type: breast adenocarcinoma",
        "MCF7_E2_24h",
        {"breast_mammary"},
    ),
    ("T-47D", "", "", {"breast_mammary"}),
    ("HeLa cells", "treatment: siControl", "HeLa_siCtrl_1", {"cervix"}),
    ("Hela S3", "", "", {"cervix"}),
    ("cultured cells", "", "HeLaS3-DMSO-2", {"cervix"}),
    ("SiHa", "cell type: cervical squamous cell carcinoma", "", {"cervix"}),
    ("SH-SY5Y", "cell line: SH-SY5Y\tcell type: neuroblastoma", "SHSY5Y_RA_d3", {"brain"}),
    ("sh sy5y", "", "", {"brain"}),
    ("U-87 MG", "", "", {"brain"}),
    ("glioblastoma", "cell line: U87MG", "", {"brain"}),
    ("Kelly", "cell line: Kelly", "Kelly_shMYCN_1", {"brain"}),
    ("HEK293T", "cell type: human embryonic kidney cells", "", {"kidney"}),
    ("HEK 293", "", "", {"kidney"}),
    ("293T cells", "transfection: empty vector", "", {"kidney"}),
    ("HK-2 cells", "cell type: proximal tubule epithelial cells", "", {"kidney"}),
    ("HepG2", "tissue: liver\tcell type: hepatocellular carcinoma", "", {"liver"}),
    ("Huh-7.5 cells", "infection: HCV", "", {"liver"}),
    ("A549", "cell line: A549\tcell type: lung adenocarcinoma", "A549_TGFb_48h", {"lung"}),
    ("NCI-H1299", "", "", {"lung"}),
    ("Jurkat T cells", "", "", {"lymphoid"}),
    ("GM12878", "cell type: B lymphoblastoid cell line", "", {"lymphoid"}),
    ("EBV-transformed lymphoblastoid cells", "", "", {"lymphoid"}),
    ("K-562", "", "", {"myeloid"}),
    ("THP-1 derived macrophages", "treatment: LPS 100 ng/ml", "", {"myeloid"}),
    ("MOLM-13", "", "", {"myeloid"}),
    ("HCT 116", "genotype: wild type", "HCT116_WT_1", {"colon"}),
    ("Caco-2 cells", "", "", {"colon"}),
    ("LNCaP", "treatment: R1881 1 nM", "", {"prostate"}),
    ("PC-3", "", "", {"prostate"}),
    ("22Rv1", "", "", {"prostate"}),
    ("HUVEC", "cell type: umbilical vein endothelial cells", "", {"endothelial"}),
    ("human umbilical vein endothelial cells", "", "", {"endothelial"}),
    ("U2OS", "", "", {"bone"}),
    ("Saos-2", "cell type: osteosarcoma", "", {"bone"}),
    ("RD-ES", "cell type: Ewing sarcoma", "", {"bone"}),
    ("C2C12 myotubes", "", "", {"muscle"}),
    ("RD cells", "cell type: embryonal rhabdomyosarcoma", "", {"muscle"}),
    ("primary human skeletal muscle myoblasts", "", "", {"muscle"}),
    ("HaCaT", "", "", {"skin"}),
    ("A375", "cell type: melanoma", "", {"skin"}),
    ("NHEK", "cell type: keratinocytes", "", {"skin"}),
    ("SKOV3", "", "", {"ovary"}),
    ("OVCAR-8", "", "", {"ovary"}),
    ("PANC-1", "cell type: pancreatic carcinoma", "", {"pancreas"}),
    ("MIA PaCa-2", "", "", {"pancreas"}),
    ("BeWo", "cell type: choriocarcinoma", "", {"placenta"}),
    ("HTR-8/SVneo", "", "", {"placenta"}),
    ("IMR-90", "cell type: fetal lung fibroblast", "", {"connective"}),
    ("BJ fibroblasts", "", "", {"connective"}),
    ("cultured cells", "", "BJfibroblasts-DMSO-1", {"connective"}),
    ("HUVEC and IMR-90 co-culture", "", "", {"endothelial", "connective"}),
    # --- tissues
    ("hippocampus", "tissue: hippocampus\tage: 54", "hippocampus_D12", {"nervous"}),
    ("post-mortem brain", "region: dorsolateral prefrontal cortex", "", {"nervous"}),
    ("motor neurons", "differentiated from: iPSC", "", {"nervous"}),
    ("left ventricle", "disease state: dilated cardiomyopathy", "", {"cardiovascular"}),
    ("iPSC-derived cardiomyocytes", "", "", {"cardiovascular"}),
    ("coronary artery", "", "", {"cardiovascular"}),
    ("sigmoid colon", "tissue: colon mucosa", "", {"digestive"}),
    ("liver biopsy", "diagnosis: NASH", "", {"digestive"}),
    ("terminal ileum", "disease: Crohn's disease", "", {"digestive"}),
    ("gallbladder", "", "", {"digestive"}),
    ("lung tissue", "smoking status: former", "", {"respiratory"}),
    ("bronchial brushing", "", "", {"respiratory"}),
    ("kidney biopsy", "", "", {"urogenital"}),
    ("renal cortex", "", "", {"urogenital"}),
    ("testis", "", "", {"urogenital"}),
    ("endometrium", "cycle phase: secretory", "", {"urogenital"}),
    ("lesional skin", "disease: psoriasis", "", {"integumentary"}),
    ("epidermis", "", "", {"integumentary"}),
    ("skeletal muscle biopsy", "tissue: vastus lateralis", "", {"muscular"}),
    ("quadriceps", "", "", {"muscular"}),
    ("PBMC", "disease state: healthy", "PBMC_donor3", {"immune"}),
    ("CD4+ T cells", "", "", {"immune"}),
    ("naive B cells", "", "", {"immune"}),
    ("whole blood", "", "", {"immune"}),
    ("monocyte-derived dendritic cells", "", "", {"immune"}),
    ("subcutaneous adipose tissue", "", "", {"connective_tissue"}),
    ("articular cartilage", "", "", {"connective_tissue"}),
    ("bone marrow-derived mesenchymal stromal cells", "", "", {"connective_tissue"}),
    # --- decisions of the vocabulary (documented in its header)
    ("skin fibroblast", "", "", {"integumentary", "connective_tissue"}),
    ("lung fibroblasts", "", "", {"respiratory", "connective_tissue"}),
    ("aortic smooth muscle cells", "", "", {"cardiovascular", "muscular"}),
    ("bronchoalveolar lavage", "", "", {"respiratory", "immune"}),
    ("MDA-MB-231 brain metastatic variant", "", "", {"breast_mammary"}),
    ("brain metastasis", "primary tumor: lung adenocarcinoma", "", {"nervous", "respiratory"}),
    ("T cells", "transduction: lentivirus produced in HEK293T cells", "", {"immune"}),
    ("embryonic stem cells", "culture: on irradiated fibroblast feeders", "", set()),
    # --- uninformative metadata
    ("sample 12", "replicate: 2\ttreatment: none", "sample 12", set()),
    ("control", "Sex: female\tage: 45", "control replicate 2", set()),
    ("patient 7", "individual: patient 7\ttime point: baseline", "patient 7 baseline", set()),
    ("total RNA", "genotype: wild type\tbatch: 2", "KO_rep1", set()),
    (None, None, None, set()),
    ("", "", "", set()),
]

# Words in which a keyword hides after normalization; none of them names a label.
TRAPS: list[tuple[str, str]] = [
    ("library: STANDARD protocol, THIRD batch", "RD (muscle) inside STANDARD, THIRD"),
    ("subject: 12", "BJ (connective) inside SUBJECT"),
    ("treatment: iron chelator", "HeLa (cervix) inside cHELAtor"),
    ("assay: colony formation", "colon (digestive) inside COLONY"),
    ("colonization with E. coli", "colon inside COLONIZATION"),
    ("notes: separated by semicolon", "colon inside SEMICOLON"),
    ("sample delivery date: 2019", "liver (digestive) inside deLIVERy"),
    ("submitter: Oliver Smith", "liver inside oLIVER"),
    ("cell fate: undetermined", "fat (connective_tissue) inside FATE"),
    ("medium: fatty acid free BSA", "fat inside FATTY"),
    ("treatment: EGF (epidermal growth factor)", "epidermis (integumentary) in EGF"),
    ("treatment: FGF2 (basic fibroblast growth factor)", "fibroblast in FGF"),
    ("treatment: HGF, hepatocyte growth factor", "hepatocyte (digestive) in HGF"),
    ("process: epithelial-mesenchymal transition", "mesenchymal (connective_tissue) in EMT"),
    ("tissue: adrenal gland", "renal (urogenital) inside adRENAL"),
    ("cells: patient cells", "T cell (immune) across patienT CELLs"),
    ("fraction: subcellular", "B cell (immune) inside suBCELLular"),
    ("marker: CD44 high", "CD4 (immune) inside CD44"),
    ("treatment: spermidine", "sperm (urogenital) inside SPERMidine"),
    ("cell line: CHO-K1 (Chinese hamster ovary)", "ovary (urogenital) for CHO cells"),
    ("staining: smooth muscle actin", "muscle (muscular) for alpha-SMA"),
    ("treatment: BDNF (brain-derived neurotrophic factor)", "brain (nervous) in BDNF"),
    ("region: endodermal lineage", "dermal (integumentary) inside enDODERMAL"),
    ("treatment: GM-CSF (granulocyte-macrophage colony-stimulating factor)", "immune in GM-CSF"),
    ("donor: D283", "D283 Med (brain) for a donor id"),
    ("condition: C4_2", "C4-2 (prostate) for a condition code"),
    ("exercise: workout", "RKO (colon) inside woRKOut"),
    ("gene: SUPT16H knockdown", "SUP-T1 (lymphoid) inside SUPT16H"),
    ("target: HK2 knockdown", "HK-2 (kidney) for the hexokinase gene"),
    ("name: Rajiv", "Raji (lymphoid) inside RAJIv"),
    ("virus: produced in HEK293T", "NHEK (skin) across produceD IN HEK"),
    ("knockdown: alpha-catenin", "HaCaT (skin) across alpHA CATenin"),
    ("note: cell lines kindly provided by Dr. X", "skin (integumentary) across lineS KINdly"),
    ("assay: cells kinetics", "skin across cellS KINetics"),
    ("dissection: scalpel", "scalp (integumentary) inside SCALPel"),
    ("study: data trial 3", "atrial (cardiovascular) across dATA TRIAL"),
]


@pytest.fixture(scope="module")
def vocabulary() -> LabelVocabulary:
    return load_vocabulary()


def write_vocabulary(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "vocabulary.yaml"
    path.write_text(textwrap.dedent(body))
    return path


# --- normalization -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MDA-MB-231", "MDAMB231"),
        ("mda mb 231", "MDAMB231"),
        ("HTR-8/SVneo", "HTR8SVNEO"),
        ("U-87 MG", "U87MG"),
        ("cell line: SK-N-BE(2)\tage: 2", "CELLLINESKNBE2AGE2"),
        ("snake_case__x", "SNAKECASEX"),  # underscore is punctuation
        ("Straße", "STRASSE"),  # full Unicode upper-casing
        ("", ""),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


# --- the shipped vocabulary --------------------------------------------------------------------


def test_vocabulary_has_the_27_labels_with_their_kinds(vocabulary: LabelVocabulary) -> None:
    assert vocabulary.labels == CELL_LINE_GROUPS + TISSUE_SYSTEMS
    assert vocabulary.labels_of_kind("cell_line") == CELL_LINE_GROUPS
    assert vocabulary.labels_of_kind("tissue") == TISSUE_SYSTEMS
    assert all(vocabulary.kind(label) == "cell_line" for label in CELL_LINE_GROUPS)
    assert all(vocabulary.kind(label) == "tissue" for label in TISSUE_SYSTEMS)
    assert all(len(vocabulary.keywords(label)) >= 5 for label in vocabulary.labels)
    with pytest.raises(KeyError, match="brainstem"):
        vocabulary.kind("brainstem")


@pytest.mark.parametrize(
    ("source_name", "characteristics", "title", "expected"),
    GEO_CASES,
    ids=[f"{case[0]}|{case[2]}" for case in GEO_CASES],
)
def test_geo_metadata_gets_the_expected_labels(
    vocabulary: LabelVocabulary,
    source_name: str | None,
    characteristics: str | None,
    title: str | None,
    expected: set[str],
) -> None:
    assert vocabulary.match(source_name, characteristics, title) == expected


def test_every_label_is_hit_by_some_case() -> None:
    hit = set().union(*(case[3] for case in GEO_CASES))
    assert hit == set(CELL_LINE_GROUPS + TISSUE_SYSTEMS)


@pytest.mark.parametrize(("characteristics", "why"), TRAPS, ids=[trap[1] for trap in TRAPS])
def test_keywords_hidden_inside_other_words_do_not_fire(
    vocabulary: LabelVocabulary, characteristics: str, why: str
) -> None:
    assert vocabulary.match("cells", characteristics, "rep1") == set(), why


def test_keywords_never_span_two_fields(vocabulary: LabelVocabulary) -> None:
    # "...HE" + "LA..." and "HEPG" + "2" only meet if fields were concatenated.
    assert vocabulary.match("the", "La", "x") == set()
    assert vocabulary.match("HepG", "2", "") == set()
    assert vocabulary.match("", "", "HepG2") == {"liver"}


def test_frame_labelling_matches_one_by_one_matching(vocabulary: LabelVocabulary) -> None:
    samples = pl.DataFrame(
        {
            "sample_idx": [100 + 3 * i for i in range(len(GEO_CASES))][::-1],
            "source_name": [case[0] for case in GEO_CASES],
            "characteristics": [case[1] for case in GEO_CASES],
            "title": [case[2] for case in GEO_CASES],
        }
    )
    labelled = vocabulary.label_samples(samples)
    assert labelled.columns == ["sample_idx", "label", "source"]
    assert labelled["sample_idx"].dtype == pl.Int64
    assert (labelled["source"] == METADATA_SOURCE).all()
    assert labelled.equals(labelled.sort("sample_idx", "label"))
    assert not labelled.select("sample_idx", "label").is_duplicated().any()
    by_sample = {
        row["sample_idx"]: set(row["label"])
        for row in labelled.group_by("sample_idx").agg("label").iter_rows(named=True)
    }
    for sample_idx, case in zip(samples["sample_idx"], GEO_CASES, strict=True):
        assert by_sample.get(sample_idx, set()) == case[3], case


# --- the matching mechanism on small vocabularies ----------------------------------------------


def test_boundaries_exceptions_and_exclude_if(tmp_path: Path) -> None:
    vocabulary = load_vocabulary(
        write_vocabulary(
            tmp_path,
            """
            labels:
              plain:
                kind: tissue
                keywords: [ab-c]
              starts:
                kind: tissue
                keywords: [{match: xy, boundary: start}]
              ends:
                kind: tissue
                keywords: [{match: pq, boundary: end}]
              whole:
                kind: tissue
                keywords: [{match: "k-9", boundary: word}]
              excepted:
                kind: tissue
                keywords: [{match: colon, except: [colony]}]
              vetoed:
                kind: tissue
                keywords: [lung]
                exclude_if: [{match: "no", boundary: word}]
            """,
        )
    )
    assert vocabulary.match("xABC", None, None) == {"plain"}  # substring, punctuation ignored
    assert vocabulary.match("a b c", None, None) == {"plain"}
    assert vocabulary.match("XYZ", None, None) == {"starts"}
    assert vocabulary.match("a-xyz", None, None) == {"starts"}
    assert vocabulary.match("axyz", None, None) == set()
    assert vocabulary.match("zzpq", None, None) == {"ends"}
    assert vocabulary.match("pqz", None, None) == set()
    assert vocabulary.match("K9", None, None) == {"whole"}
    assert vocabulary.match("dog: k 9 unit", None, None) == {"whole"}
    assert vocabulary.match("K9X", None, None) == set()
    assert vocabulary.match("colony", None, None) == set()
    assert vocabulary.match("colon; colony", None, None) == {"excepted"}  # per occurrence
    assert vocabulary.match("colonic", None, None) == {"excepted"}
    assert vocabulary.match("lung", None, None) == {"vetoed"}
    assert vocabulary.match("lung", "disease: no", None) == set()  # veto from any field
    assert vocabulary.match("lung", "nodule", None) == {"vetoed"}


def test_cell_line_suppresses_tissue_rule_can_be_turned_off(tmp_path: Path) -> None:
    body = """
        rules: {{cell_line_suppresses_tissue: {flag}}}
        labels:
          liver:
            kind: cell_line
            keywords: [HepG2]
          digestive:
            kind: tissue
            keywords: [liver]
        """
    with_rule = load_vocabulary(write_vocabulary(tmp_path, body.format(flag="true")))
    assert with_rule.match("HepG2", "tissue: liver", None) == {"liver"}
    assert with_rule.match("liver", None, None) == {"digestive"}
    without_rule = load_vocabulary(write_vocabulary(tmp_path, body.format(flag="false")))
    assert without_rule.match("HepG2", "tissue: liver", None) == {"liver", "digestive"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("labels: {a: {kind: organ, keywords: [x]}}", "kind must be one of"),
        ("labels: {a: {kind: tissue, keywords: []}}", "no keywords"),
        ("labels: {a: {kind: tissue}}", "expected a list"),
        ("labels: {a: {kind: tissue, keywords: ['--']}}", "no letter or digit"),
        ("labels: {a: {kind: tissue, keywords: [HeLa, he-la]}}", "normalizes like"),
        ("labels: {a: {kind: tissue, keywords: [{match: x, boundary: left}]}}", "boundary"),
        ("labels: {a: {kind: tissue, keywords: [{match: x, exclude: [y]}]}}", "needs 'match'"),
        ("labels: {a: {kind: tissue, keywords: [{match: colon, except: [comma]}]}}", "contain"),
        ("labels: {a: {kind: tissue, keywords: [x], synonyms: [y]}}", "unknown keys"),
        ("labels: {a: {kind: tissue, keywords: [x]}}\nextra: 1", "unknown top-level"),
        ("rules: {always_match: true}\nlabels: {a: {kind: tissue, keywords: [x]}}", "rules"),
        ("[]", "expected a mapping"),
        ("labels: {a: {kind: tissue, keywords: [x], exclude_if: [no]}}", "quote it"),
        ("labels: {a: {kind: tissue, keywords: [{match: yes}]}}", "quote it"),
    ],
)
def test_invalid_vocabularies_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    path = write_vocabulary(tmp_path, body)
    with pytest.raises(ValueError, match=message) as error:
        load_vocabulary(path)
    assert str(path) in str(error.value)


def test_missing_vocabulary_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.yaml"):
        load_vocabulary(tmp_path / "nowhere.yaml")


def test_label_samples_requires_its_columns(vocabulary: LabelVocabulary) -> None:
    with pytest.raises(ValueError, match="title"):
        vocabulary.label_samples(
            pl.DataFrame({"sample_idx": [0], "source_name": ["x"], "characteristics": ["y"]})
        )


# --- ARCHS4 label download directory -----------------------------------------------------------


def write_tsv(path: Path, header: list[str], body: bytes = b"GAPDH\t1\t2\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\t".join(header) + "\n").encode() + body)
    return path


def test_read_label_directory(tmp_path: Path, vocabulary: LabelVocabulary) -> None:
    root = tmp_path / "labels"
    hela = write_tsv(root / "cell_lines/cervix/HeLa.tsv", ["gene", "GSM1", "GSM2", "GSM2"])
    # Binary garbage and a 20 MB line after the header: never read, so neither decodes nor
    # costs anything.
    siha = write_tsv(
        root / "cell_lines/cervix/SiHa.tsv",
        ["GSM999", "GSM3", "", "GSM1"],
        body=b"\xff\xfe\x00garbage\x80\x81\n" + b"7\t" * 10_000_000 + b"\n",
    )
    brain = write_tsv(root / "tissue_types/nervous/brain.tsv", ["", "GSM4"])
    (root / "tissue_types/nervous/README.txt").write_text("not a label list")
    (root / "cell_lines/.DS_Store").write_text("")

    labels = read_label_directory(root, vocabulary)

    assert labels.columns == ["gsm", "label", "kind", "file"]
    assert labels.rows() == [
        ("GSM1", "cervix", "cell_line", str(hela)),
        ("GSM1", "cervix", "cell_line", str(siha)),
        ("GSM2", "cervix", "cell_line", str(hela)),
        ("GSM3", "cervix", "cell_line", str(siha)),
        ("GSM4", "nervous", "tissue", str(brain)),
    ]


def test_read_label_directory_reads_only_the_header_row(
    tmp_path: Path, vocabulary: LabelVocabulary, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_tsv(tmp_path / "labels/cell_lines/lung/a549.tsv", ["gene", "GSM7"])
    calls: list[str] = []
    original_open = Path.open

    class HeaderOnly:
        """A file handle that allows one readline and nothing else."""

        def __init__(self, handle: IO[bytes]) -> None:
            self.handle = handle

        def __enter__(self) -> HeaderOnly:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def readline(self, *args: object) -> bytes:
            calls.append("readline")
            return self.handle.readline(*args)

    def guarded_open(self: Path, *args: Any, **kwargs: Any) -> HeaderOnly | IO[Any]:
        handle = original_open(self, *args, **kwargs)
        return HeaderOnly(handle) if self == path else handle

    monkeypatch.setattr(Path, "open", guarded_open)
    assert read_label_directory(tmp_path / "labels", vocabulary)["gsm"].to_list() == ["GSM7"]
    assert calls == ["readline"]


def test_read_label_directory_errors(tmp_path: Path, vocabulary: LabelVocabulary) -> None:
    with pytest.raises(LabelSourceError, match="missing"):
        read_label_directory(tmp_path / "missing", vocabulary)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="cell_lines"):
        read_label_directory(empty, vocabulary)

    unknown = tmp_path / "unknown"
    write_tsv(unknown / "cell_lines/thyroid/x.tsv", ["gene", "GSM1"])
    with pytest.raises(ValueError, match=r"unknown label 'thyroid'") as error:
        read_label_directory(unknown, vocabulary)
    assert str(unknown / "cell_lines/thyroid") in str(error.value)

    misplaced = tmp_path / "misplaced"
    write_tsv(misplaced / "cell_lines/nervous/x.tsv", ["gene", "GSM1"])
    with pytest.raises(ValueError, match="tissue label"):
        read_label_directory(misplaced, vocabulary)

    no_gsm = tmp_path / "no_gsm"
    bad = write_tsv(no_gsm / "tissue_types/immune/pbmc.tsv", ["GSM5", "", " "])
    with pytest.raises(LabelSourceError, match="no GSM") as error:
        read_label_directory(no_gsm, vocabulary)
    assert str(bad) in str(error.value)

    malformed = tmp_path / "malformed"
    bad = write_tsv(malformed / "tissue_types/immune/pbmc.tsv", ["gene", "GSM5", "sample_x"])
    with pytest.raises(LabelSourceError, match=r"line 1, column 3: 'sample_x' is not a GSM"):
        read_label_directory(malformed, vocabulary)

    no_tsv = tmp_path / "no_tsv"
    (no_tsv / "cell_lines/lung").mkdir(parents=True)
    (no_tsv / "cell_lines/lung/README.txt").write_text("lists go here")
    with pytest.raises(LabelSourceError, match=r"cell_lines/lung: label directory holds no"):
        read_label_directory(no_tsv, vocabulary)


# --- import ------------------------------------------------------------------------------------


def test_import_labels_counts_unknown_gsms() -> None:
    directory_labels = pl.DataFrame(
        {
            "gsm": ["GSM1", "GSM2", "GSM9", "GSM1", "GSM8", "GSM9", "GSM1"],
            "label": ["cervix", "cervix", "cervix", "nervous", "nervous", "nervous", "cervix"],
            "kind": ["cell_line"] * 3 + ["tissue"] * 3 + ["cell_line"],
            "file": ["a.tsv"] * 3 + ["b.tsv"] * 3 + ["c.tsv"],
        }
    )
    samples = pl.DataFrame({"gsm": ["GSM1", "GSM2", "GSM3"], "sample_idx": [10, 11, 12]})

    labels, report = import_labels(directory_labels, samples)

    assert labels.rows() == [
        (10, "cervix", IMPORT_SOURCE),
        (10, "nervous", IMPORT_SOURCE),
        (11, "cervix", IMPORT_SOURCE),
    ]
    assert labels.columns == ["sample_idx", "label", "source"]
    assert report.n_rows == 7
    assert report.n_matched == 4
    assert report.n_unknown_gsms == 2  # GSM8, GSM9 (GSM9 twice)
    assert report.unknown_gsm_examples == ("GSM8", "GSM9")
    assert report.n_labels == 3
    assert report.per_label.rows() == [("cervix", 4, 3, 1), ("nervous", 3, 1, 2)]
    assert report.as_metadata()["n_unknown_gsms"] == 2


def test_import_labels_rejects_ambiguous_gsms() -> None:
    samples = pl.DataFrame({"gsm": ["GSM1", "GSM1"], "sample_idx": [1, 2]})
    directory_labels = pl.DataFrame({"gsm": ["GSM1"], "label": ["cervix"]})
    with pytest.raises(ValueError, match="not unique"):
        import_labels(directory_labels, samples)


# --- labelling quality -------------------------------------------------------------------------


def test_labelling_quality_by_hand() -> None:
    # Truth: samples 1-3 have metadata naming their labels, 4 does not, 5 has no label.
    truth = pl.DataFrame(
        {
            "sample_idx": [1, 1, 2, 3, 4],
            "label": ["brain", "nervous", "brain", "immune", "immune"],
            "named_in_metadata": [True, True, True, True, False],
        }
    )
    derived = pl.DataFrame(
        {
            "sample_idx": [1, 2, 2, 3, 5],
            "label": ["brain", "brain", "immune", "immune", "brain"],
            "source": ["metadata"] * 5,
        }
    )
    quality = labelling_quality(derived, truth)
    assert quality.columns == [
        "scope",
        "label",
        "n_truth",
        "n_derived",
        "true_positives",
        "precision",
        "recall",
        "f1",
    ]
    rows = {(row["scope"], row["label"]): row for row in quality.iter_rows(named=True)}

    # Named scope, samples 1-3. brain: derived {1,2}, true {1,2} -> P 1, R 1.
    # immune: derived {2,3}, true {3} -> P 1/2, R 1. nervous: derived {}, true {1} -> R 0.
    # ALL: derived 4, true 4, TP 3 -> P 3/4, R 3/4.
    expected_named = {
        "brain": (2, 2, 2, 1.0, 1.0),
        "immune": (1, 2, 1, 0.5, 1.0),
        "nervous": (1, 0, 0, None, 0.0),
        "ALL": (4, 4, 3, 0.75, 0.75),
    }
    # All samples add sample 4 (immune missed) and 5 (brain derived, no truth).
    # brain: derived 3, TP 2 -> P 2/3, R 1. immune: true 2, derived 2, TP 1 -> P 1/2, R 1/2.
    # ALL: true 5, derived 5, TP 3 -> P 3/5, R 3/5.
    expected_all = {
        "brain": (2, 3, 2, 2 / 3, 1.0),
        "immune": (2, 2, 1, 0.5, 0.5),
        "nervous": (1, 0, 0, None, 0.0),
        "ALL": (5, 5, 3, 0.6, 0.6),
    }
    for scope, expected in (("named_in_metadata", expected_named), ("all_samples", expected_all)):
        assert quality.filter(pl.col("scope") == scope)["label"].to_list() == list(expected)
        for label, (n_truth, n_derived, tp, precision, recall) in expected.items():
            row = rows[(scope, label)]
            assert (row["n_truth"], row["n_derived"], row["true_positives"]) == (
                n_truth,
                n_derived,
                tp,
            )
            assert row["precision"] == (pytest.approx(precision) if precision is not None else None)
            assert row["recall"] == pytest.approx(recall)
    assert rows[("named_in_metadata", "immune")]["f1"] == pytest.approx(2 / 3)
    assert rows[("named_in_metadata", "nervous")]["f1"] is None


def test_read_truth_table(tmp_path: Path) -> None:
    path = tmp_path / "labels_truth.tsv"
    path.write_text("gsm\tlabel\tnamed_in_metadata\nGSM1\tbrain\ttrue\nGSM2\timmune\tfalse\n")
    truth = read_truth_table(path)
    assert truth.rows() == [("GSM1", "brain", True), ("GSM2", "immune", False)]
    path.write_text("gsm\tlabel\tnamed_in_metadata\nGSM1\tbrain\tmaybe\n")
    with pytest.raises(ValueError, match="true/false"):
        read_truth_table(path)
