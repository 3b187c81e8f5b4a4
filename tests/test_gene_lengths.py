"""Tests for archs4.gene_lengths: real GENCODE/Ensembl excerpts checked against lengths worked
out by hand, malformed GTFs, and a randomized comparison with a plain-Python reference."""

from __future__ import annotations

import gzip
import random
import shutil
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from archs4.gene_lengths import (
    GtfError,
    attach_lengths,
    gene_lengths_from_gtf,
    strip_version,
    strip_version_expr,
)

GTF_DATA = Path(__file__).parent / "data" / "gtf"
# GENCODE release 19, gene DDX11L1 with all its transcripts (from gffutils' test data).
GENCODE_EXCERPT = GTF_DATA / "gencode_excerpt.gtf"
# Ensembl GRCh37 head: DDX11L1, WASH7P, MIR1302-10, FAM138A (from gtfparse's test data).
ENSEMBL_EXCERPT = GTF_DATA / "ensembl_grch37_excerpt.gtf"

# DDX11L1 (ENSG00000223972.4 in GENCODE 19), exonic length of each transcript:
# ENST00000456328: (12227-11869+1) + (12721-12613+1) + (14409-13221+1) = 359 + 109 + 1189 = 1657
# ENST00000515242: (12227-11872+1) + (12721-12613+1) + (14412-13225+1) = 356 + 109 + 1188 = 1653
# ENST00000518655: (12227-11874+1) + (12721-12595+1) + (13655-13403+1) + (14409-13661+1)
#                = 354 + 127 + 253 + 749 = 1483
# ENST00000450305: (12057-12010+1) + (12227-12179+1) + (12697-12613+1) + (13052-12975+1)
#                  + (13374-13221+1) + (13670-13453+1) = 48 + 49 + 85 + 78 + 154 + 218 = 632
# longest: ENST00000456328, 1657
DDX11L1_LONGEST_BP = 1657

# Union of all 16 DDX11L1 exons, merged:
# 11869-12227 (11872-12227, 11874-12227, 12010-12057, 12179-12227 lie inside) = 359
# 12595-12721 (12613-12721, 12613-12697 inside)                               = 127
# 12975-13052                                                                  = 78
# 13221-14412 (13225-14412 extends 13221-14409; 13221-13374, 13403-13655,
#              13453-13670, 13661-14409 inside)                                 = 1192
# 359 + 127 + 78 + 1192 = 1756
DDX11L1_UNION_BP = 1756


def write_gtf(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def gtf_line(seqname: str, feature: str, start: int, end: int, attributes: str) -> str:
    return "\t".join([seqname, "HAVANA", feature, str(start), str(end), ".", "+", ".", attributes])


def exon(
    gene_id: str, transcript_id: str | None, start: int, end: int, seqname: str = "chr1"
) -> str:
    attributes = f'gene_id "{gene_id}";'
    if transcript_id is not None:
        attributes += f' transcript_id "{transcript_id}";'
    attributes += ' gene_type "protein_coding";'
    return gtf_line(seqname, "exon", start, end, attributes)


# --- real excerpts -------------------------------------------------------------------------


def test_gencode_excerpt_gives_the_longest_transcript_worked_out_by_hand() -> None:
    lengths = gene_lengths_from_gtf(GENCODE_EXCERPT)

    expected = pl.DataFrame(
        {
            "ensembl_id": ["ENSG00000223972"],
            "length_bp": [DDX11L1_LONGEST_BP],
            "n_transcripts": [4],
            "length_method": ["longest_transcript"],
        },
        schema={
            "ensembl_id": pl.String,
            "length_bp": pl.Int64,
            "n_transcripts": pl.Int32,
            "length_method": pl.String,
        },
    )
    assert_frame_equal(lengths, expected)


def test_gzipped_gencode_excerpt_gives_the_same_lengths(tmp_path: Path) -> None:
    gzipped = tmp_path / "gencode_excerpt.gtf.gz"
    with GENCODE_EXCERPT.open("rb") as plain, gzip.open(gzipped, "wb") as packed:
        shutil.copyfileobj(plain, packed)

    assert_frame_equal(gene_lengths_from_gtf(gzipped), gene_lengths_from_gtf(GENCODE_EXCERPT))


def test_gencode_excerpt_union_of_exons_worked_out_by_hand() -> None:
    lengths = gene_lengths_from_gtf(GENCODE_EXCERPT, method="union_exons")

    assert lengths.rows() == [("ENSG00000223972", DDX11L1_UNION_BP, 4, "union_exons")]


def test_ensembl_excerpt_without_chr_prefix_and_with_gene_biotype() -> None:
    lengths = gene_lengths_from_gtf(ENSEMBL_EXCERPT)

    # DDX11L1: the same four transcripts as in GENCODE 19 above -> 1657.
    # WASH7P (ENSG00000227232):
    #   ENST00000438504: 50 + 154 + 112 + 147 + 141 + 132 + 202 + 159 + 44 + 106 + 69 + 467 = 1783
    #     (29370-29321+1, 24891-24738+1, 18379-18268+1, 18061-17915+1, 17742-17602+1,
    #      17364-17233+1, 17055-16854+1, 16765-16607+1, 15947-15904+1, 15901-15796+1,
    #      15038-14970+1, 14829-14363+1)
    #   ENST00000541675: 153 + 102 + 147 + 137 + 7 + 132 + 202 + 69 + 467 = 1416
    #   ENST00000423562: 50 + 154 + 147 + 137 + 136 + 198 + 159 + 152 + 69 + 467 = 1669
    #   ENST00000488147: 37 + 154 + 99 + 147 + 137 + 136 + 198 + 159 + 152 + 34 + 98 = 1351
    #   ENST00000538476: 273 + 155 + 99 + 147 + 141 + 132 + 198 + 18 + 139 + 44 + 106 + 39 + 92
    #                  = 1583
    #   longest: ENST00000438504, 1783
    # FAM138A (ENSG00000237613):
    #   ENST00000417324: (36081-35721+1) + (35481-35277+1) + (35174-34554+1) = 361 + 205 + 621
    #                  = 1187
    #   ENST00000461467: (36073-35721+1) + (35481-35245+1) = 353 + 237 = 590
    # MIR1302-10 (ENSG00000243485):
    #   ENST00000473358: (30039-29554+1) + (30667-30564+1) + (31097-30976+1) = 486 + 104 + 122
    #                  = 712
    #   ENST00000469289: (30667-30267+1) + (31109-30976+1) = 401 + 134 = 535
    #   ENST00000607096: 30503-30366+1 = 138
    assert lengths.rows() == [
        ("ENSG00000223972", 1657, 4, "longest_transcript"),
        ("ENSG00000227232", 1783, 5, "longest_transcript"),
        ("ENSG00000237613", 1187, 2, "longest_transcript"),
        ("ENSG00000243485", 712, 3, "longest_transcript"),
    ]


# --- ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stripped"),
    [
        ("ENSG00000141510.18", "ENSG00000141510"),
        ("ENSG00000141510", "ENSG00000141510"),
        ("ENSG00000182378.14_PAR_Y", "ENSG00000182378_PAR_Y"),
        ("ENSG00000182378_PAR_Y", "ENSG00000182378_PAR_Y"),
        ("ENSMUSG00000000001.5", "ENSMUSG00000000001"),
        # GENCODE GRCh37 back-mapped releases append a remap counter to the version.
        ("ENSG00000223972.5_2", "ENSG00000223972"),
        ("", ""),
    ],
)
def test_strip_version_and_its_expression_agree(raw: str, stripped: str) -> None:
    assert strip_version(raw) == stripped
    frame = pl.DataFrame({"id": [raw]})
    assert frame.select(strip_version_expr("id")).item() == stripped


def test_strip_version_expr_keeps_nulls() -> None:
    frame = pl.DataFrame({"id": [None, "ENSG00000141510.18"]}, schema={"id": pl.String})
    assert frame.select(strip_version_expr("id"))["id"].to_list() == [None, "ENSG00000141510"]


def test_par_y_copy_is_a_gene_of_its_own(tmp_path: Path) -> None:
    gtf = write_gtf(
        tmp_path / "par.gtf",
        [
            "##provider: GENCODE",
            exon("ENSG00000182378.14", "ENST00000381192.10", 100, 199, seqname="chrX"),
            exon("ENSG00000182378.14", "ENST00000381192.10", 300, 349, seqname="chrX"),
            exon("ENSG00000182378.14_PAR_Y", "ENST00000381192.10_PAR_Y", 100, 119, seqname="chrY"),
        ],
    )

    lengths = gene_lengths_from_gtf(gtf)

    # chrX: (199-100+1) + (349-300+1) = 100 + 50 = 150; chrY copy: 119-100+1 = 20
    assert lengths.select("ensembl_id", "length_bp").rows() == [
        ("ENSG00000182378", 150),
        ("ENSG00000182378_PAR_Y", 20),
    ]


# --- GTFs without transcript ids -----------------------------------------------------------


@pytest.fixture
def gtf_without_transcript_ids(tmp_path: Path) -> Path:
    return write_gtf(
        tmp_path / "no_transcripts.gtf",
        [
            "#!genome-build toy",
            gtf_line("1", "gene", 1, 400, 'gene_id "ENSG00000000001.3"; gene_biotype "lncRNA";'),
            exon("ENSG00000000001.3", None, 1, 100, seqname="1"),
            exon("ENSG00000000001.3", None, 51, 150, seqname="1"),
            exon("ENSG00000000001.3", None, 151, 160, seqname="1"),
            exon("ENSG00000000001.3", None, 301, 400, seqname="1"),
            exon("ENSG00000000002.1", None, 1000, 1009, seqname="2"),
            exon("ENSG00000000002.1", None, 1000, 1009, seqname="2"),
        ],
    )


def test_exons_without_transcript_id_raise_naming_file_and_first_line(
    gtf_without_transcript_ids: Path,
) -> None:
    with pytest.raises(GtfError) as raised:
        gene_lengths_from_gtf(gtf_without_transcript_ids)

    message = str(raised.value)
    assert str(gtf_without_transcript_ids) in message
    assert "transcript_id" in message
    # Line 1 is a comment and line 2 the gene line: the first exon is line 3.
    assert "line 3" in message
    assert "6 of 6 exon lines" in message
    assert "union_exons" in message


def test_union_of_exons_is_accepted_without_transcript_ids(
    gtf_without_transcript_ids: Path,
) -> None:
    lengths = gene_lengths_from_gtf(gtf_without_transcript_ids, method="union_exons")

    # ENSG00000000001: 1-100 and 51-150 overlap -> 1-150; 151-160 is adjacent -> 1-160 (160 bp);
    #   301-400 (100 bp); 160 + 100 = 260. The gene line (1-400) is not an exon.
    # ENSG00000000002: the same 1000-1009 exon twice -> 10 bp.
    assert lengths.rows() == [
        ("ENSG00000000001", 260, 0, "union_exons"),
        ("ENSG00000000002", 10, 0, "union_exons"),
    ]


def test_some_exons_without_transcript_id_still_raise(tmp_path: Path) -> None:
    gtf = write_gtf(
        tmp_path / "partial.gtf",
        [
            exon("ENSG00000000001.1", "ENST00000000001.1", 1, 10),
            exon("ENSG00000000001.1", "ENST00000000001.1", 21, 30),
            "# a comment in the middle of the records",
            exon("ENSG00000000001.1", None, 41, 50),
        ],
    )

    with pytest.raises(GtfError, match=r"line 4: 1 of 3 exon lines have no transcript_id"):
        gene_lengths_from_gtf(gtf)


# --- malformed files -----------------------------------------------------------------------

GOOD_EXON = exon("ENSG00000000001.1", "ENST00000000001.1", 1, 10)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"", r"no GTF records: the file is empty", id="empty"),
        pytest.param(b"##format: gtf\n#!genome-build x\n", r"no GTF records", id="only-comments"),
        pytest.param(
            (gtf_line("chr1", "gene", 1, 10, 'gene_id "G.1";') + "\n").encode(),
            r"no exon lines among 1 records",
            id="no-exons",
        ),
        pytest.param(
            b"gene,length\nTP53,2512\n",
            r"line 1: not a GTF record: expected 9 tab-separated columns, found 1",
            id="csv",
        ),
        pytest.param(
            b">chr1\nACGTACGTACGT\n", r"line 1: .*expected 9 tab-separated columns", id="fasta"
        ),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
            r"expected 9 tab-separated columns",
            id="binary",
        ),
        pytest.param(
            (GOOD_EXON + "\n" + GOOD_EXON + "\textra\n").encode(),
            r"line 2: not a GTF record: expected 9 tab-separated columns, found 10",
            id="too-many-columns",
        ),
        pytest.param(
            (GOOD_EXON + "\n" + "\t".join(GOOD_EXON.split("\t")[:8]) + "\n").encode(),
            r"line 2: not a GTF record: expected 9 tab-separated columns, found 8",
            id="too-few-columns",
        ),
        pytest.param(
            (
                "#c\n" + GOOD_EXON + "\n" + GOOD_EXON.replace("\t1\t10\t", "\t1\tten\t") + "\n"
            ).encode(),
            r"line 3: not a GTF record: start and end \(columns 4 and 5\) must be integers",
            id="non-integer-end",
        ),
        pytest.param(
            (GOOD_EXON + "\n" + GOOD_EXON.replace("\t1\t10\t", "\t2.5\t10\t") + "\n").encode(),
            r"line 2: .*must be integers",
            id="fractional-start",
        ),
        pytest.param(
            (GOOD_EXON.replace("\t1\t10\t", "\t10\t1\t") + "\n").encode(),
            r"line 1: exon ends before it starts",
            id="reversed-exon",
        ),
        pytest.param(
            (
                GOOD_EXON + "\n" + gtf_line("chr1", "exon", 5, 9, 'transcript_id "T.1";') + "\n"
            ).encode(),
            r"line 2: 1 of 2 exon lines have no gene_id",
            id="exon-without-gene-id",
        ),
    ],
)
def test_malformed_gtf_raises_gtf_error_naming_the_file(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "broken.gtf"
    path.write_bytes(content)

    with pytest.raises(GtfError, match=expected) as raised:
        gene_lengths_from_gtf(path)
    assert str(raised.value).startswith(str(path))


def test_malformed_gzipped_gtf_reports_the_line_too(tmp_path: Path) -> None:
    path = tmp_path / "broken.gtf.gz"
    bad_line = GOOD_EXON.replace("\t1\t10\t", "\tone\t10\t")
    path.write_bytes(gzip.compress(f"##h\n{GOOD_EXON}\n{bad_line}\n".encode()))

    with pytest.raises(GtfError, match=r"broken\.gtf\.gz, line 3: .*must be integers"):
        gene_lengths_from_gtf(path)


def test_truncated_gzip_raises_gtf_error(tmp_path: Path) -> None:
    path = tmp_path / "truncated.gtf.gz"
    packed = gzip.compress(GENCODE_EXCERPT.read_bytes())
    path.write_bytes(packed[: len(packed) // 2])

    with pytest.raises(GtfError, match=r"truncated\.gtf\.gz: cannot be read"):
        gene_lengths_from_gtf(path)


def test_blank_lines_are_skipped_and_do_not_shift_reported_line_numbers(tmp_path: Path) -> None:
    second_exon = exon("ENSG00000000001.1", "ENST00000000001.1", 21, 30)
    gtf = write_gtf(tmp_path / "blank.gtf", ["#h", GOOD_EXON, "", second_exon, ""])
    # (10-1+1) + (30-21+1) = 20
    assert gene_lengths_from_gtf(gtf)["length_bp"].to_list() == [20]

    bad_exon = second_exon.replace("\t21\t30\t", "\t21\tx\t")
    write_gtf(gtf, ["#h", GOOD_EXON, "", "#c", "", bad_exon])
    with pytest.raises(GtfError, match=r"blank\.gtf, line 6: .*must be integers"):
        gene_lengths_from_gtf(gtf)


def test_gene_id_inside_another_key_is_not_taken_for_the_gene_id(tmp_path: Path) -> None:
    # StringTie writes ref_gene_id; only a real gene_id key may name the gene.
    gtf = write_gtf(
        tmp_path / "stringtie.gtf",
        [gtf_line("chr1", "exon", 1, 10, 'transcript_id "T1"; ref_gene_id "ENSG00000000009";')],
    )

    with pytest.raises(GtfError, match="no gene_id"):
        gene_lengths_from_gtf(gtf)


def test_missing_file_raises_file_not_found_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "gencode.gtf.gz"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        gene_lengths_from_gtf(missing)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        gene_lengths_from_gtf(GENCODE_EXCERPT, method="genomic_span")  # type: ignore[arg-type]


# --- attach_lengths ------------------------------------------------------------------------


def test_attach_lengths_keeps_order_matches_versions_and_flags_missing_genes() -> None:
    lengths = pl.DataFrame(
        {
            "ensembl_id": ["ENSG00000000001", "ENSG00000000002", "ENSG00000182378_PAR_Y"],
            "length_bp": [1500, 20, 700],
            "n_transcripts": [2, 1, 1],
            "length_method": ["longest_transcript"] * 3,
        }
    )
    genes = pl.DataFrame(
        {
            "gene_idx": [0, 1, 2, 3, 4],
            "ensembl_id": [
                "ENSG00000000002.7",  # versioned in the ARCHS4 file
                "ENSG00000099999",  # absent from the GTF
                "ENSG00000000001",
                "ENSG00000182378",  # only its PAR_Y copy has a length
                None,
            ],
            "symbol": ["B", "Z", "A", "PLCXD1", None],
        }
    )

    attached = attach_lengths(genes, lengths)

    assert attached.columns == ["gene_idx", "ensembl_id", "symbol", "length_bp", "has_length"]
    assert attached["gene_idx"].to_list() == [0, 1, 2, 3, 4]
    assert attached["ensembl_id"].to_list() == genes["ensembl_id"].to_list()
    assert attached["length_bp"].to_list() == [20, None, 1500, None, None]
    assert attached["has_length"].to_list() == [True, False, True, False, False]
    assert attached.schema["length_bp"] == pl.Int64
    assert attached.schema["has_length"] == pl.Boolean


def test_attach_lengths_from_a_real_gtf() -> None:
    genes = pl.DataFrame({"ensembl_id": ["ENSG00000227232.5", "ENSG00000223972.5", "ENSG1"]})

    attached = attach_lengths(genes, gene_lengths_from_gtf(ENSEMBL_EXCERPT))

    assert attached.rows() == [
        ("ENSG00000227232.5", 1783, True),
        ("ENSG00000223972.5", 1657, True),
        ("ENSG1", None, False),
    ]


def test_attach_lengths_refuses_ambiguous_lengths() -> None:
    lengths = pl.DataFrame({"ensembl_id": ["ENSG1.1", "ENSG1.2"], "length_bp": [10, 20]})
    with pytest.raises(ValueError, match="more than once"):
        attach_lengths(pl.DataFrame({"ensembl_id": ["ENSG1"]}), lengths)


# --- randomized comparison with a plain-Python reference -----------------------------------


def random_gtf_lines(rng: random.Random) -> tuple[list[str], list[tuple[str, str, int, int]]]:
    """A shuffled GTF with random genes, transcripts and exons, plus its exon records."""
    lines: list[str] = []
    exon_records: list[tuple[str, str, int, int]] = []
    for gene_number in range(1, rng.randint(2, 12)):
        gene_id = f"ENSG{gene_number:011d}.{rng.randint(1, 20)}"
        if rng.random() < 0.15:
            gene_id += "_PAR_Y"
        seqname = "chrY" if gene_id.endswith("_PAR_Y") else rng.choice(["chr1", "chr2", "3"])
        gene_attributes = f'gene_id "{gene_id}"; gene_type "protein_coding";'
        lines.append(gtf_line(seqname, "gene", 1, 10_000, gene_attributes))
        for transcript_number in range(rng.randint(1, 5)):
            transcript_id = f"ENST{gene_number:06d}{transcript_number:05d}.{rng.randint(1, 3)}"
            attributes = f'{gene_attributes} transcript_id "{transcript_id}"; level 2;'
            lines.append(gtf_line(seqname, "transcript", 1, 10_000, attributes))
            for _ in range(rng.randint(1, 6)):
                start = rng.randint(1, 3_000)
                end = start + rng.randint(0, 400)
                exon_records.append((gene_id, transcript_id, start, end))
                lines.append(gtf_line(seqname, "exon", start, end, attributes))
                if rng.random() < 0.5:  # a CDS inside the exon must not count
                    lines.append(gtf_line(seqname, "CDS", start, end, attributes))
    rng.shuffle(lines)
    lines.insert(0, "##description: randomized test GTF")
    lines.insert(rng.randint(1, len(lines)), "#!a comment between records")
    return lines, exon_records


def reference_lengths(
    exon_records: list[tuple[str, str, int, int]],
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Longest transcript, union of exons (by counting positions) and transcript counts."""
    transcript_bp: dict[tuple[str, str], int] = defaultdict(int)
    covered: dict[str, set[int]] = defaultdict(set)
    for gene_id, transcript_id, start, end in exon_records:
        gene = strip_version(gene_id)
        transcript_bp[gene, transcript_id] += end - start + 1
        covered[gene].update(range(start, end + 1))
    longest: dict[str, int] = {}
    n_transcripts: dict[str, int] = defaultdict(int)
    for (gene, _), bp in transcript_bp.items():
        longest[gene] = max(longest.get(gene, 0), bp)
        n_transcripts[gene] += 1
    union = {gene: len(positions) for gene, positions in covered.items()}
    return longest, union, dict(n_transcripts)


@pytest.mark.parametrize("seed", range(8))
def test_random_gtf_matches_a_plain_python_reference(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines, exon_records = random_gtf_lines(rng)
    gtf = write_gtf(tmp_path / f"random_{seed}.gtf", lines)
    longest, union, n_transcripts = reference_lengths(exon_records)

    by_transcript = gene_lengths_from_gtf(gtf)
    by_union = gene_lengths_from_gtf(gtf, method="union_exons")

    expected_genes = sorted(longest)
    assert by_transcript["ensembl_id"].to_list() == expected_genes
    assert by_transcript["length_bp"].to_list() == [longest[gene] for gene in expected_genes]
    assert by_transcript["n_transcripts"].to_list() == [n_transcripts[g] for g in expected_genes]
    assert by_union["ensembl_id"].to_list() == expected_genes
    assert by_union["length_bp"].to_list() == [union[gene] for gene in expected_genes]
