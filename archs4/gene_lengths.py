"""Gene lengths from a GENCODE or Ensembl GTF, for the length adjustment of expression.

The warehouse divides (or log-adjusts) quantile-normalized expression by each gene's length in
kilobases (DESIGN.md, "Gene length"), so every gene needs one length in base pairs. The length
is the exonic length of the gene's longest transcript: for each transcript, the sum of
``end - start + 1`` over its exon lines (GTF coordinates are 1-based and inclusive), then the
maximum over the gene's transcripts. Unlike the union of all exons (which no single RNA
molecule has) or the genomic span (which counts introns), that is the length of a real mature
transcript. A GTF without transcript ids cannot give it; then, and only when asked for
explicitly, the length is the size of the union of the gene's exon intervals instead, and the
``length_method`` column says so.

Genes are keyed like ARCHS4 keys them: by Ensembl gene id without its version suffix
(``ENSG00000141510.18`` -> ``ENSG00000141510``). GENCODE gives the chrY copies of
pseudo-autosomal genes the chrX gene's id plus ``_PAR_Y``; that marker is kept, so the chrY
copy becomes ``ENSG00000182378_PAR_Y`` and never overwrites the chrX gene.

A GENCODE comprehensive GTF is about 1.5 GB and 3.4M lines, so it is scanned lazily with Polars'
streaming CSV reader (``.gtf.gz`` included: Polars decompresses gzip while streaming). Exon rows
are selected before anything else, and only their ``gene_id``/``transcript_id`` are pulled out of
the attribute column with vectorized regexes, so memory follows the exon rows' ids rather than
the file. Anything that makes a length untrustworthy (wrong column count, non-integer or
non-positive coordinates, an exon ending before it starts, no exons, exons without ids) raises
`GtfError` naming the file and, where it can, the first offending line.
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path
from typing import IO, Any, Literal

import polars as pl

from archs4.failures import InputError

LengthMethod = Literal["longest_transcript", "union_exons"]
LENGTH_METHODS: tuple[LengthMethod, ...] = ("longest_transcript", "union_exons")

GTF_COLUMNS = (
    "seqname",
    "source",
    "feature",
    "start",
    "end",
    "score",
    "strand",
    "frame",
    "attribute",
)
# Every column is read as text: a non-integer start/end then becomes a GtfError that names the
# line, instead of a Polars parse error that names neither the file nor the line.
GTF_SCHEMA: dict[str, pl.DataType] = {name: pl.String() for name in GTF_COLUMNS}

# A version is a dot and digits at the end of the id; GENCODE's GRCh37 back-mapped releases add
# a remap counter after it (ENSG00000223972.5_2), which is not part of the gene either. The
# `_PAR_Y` marker that may follow is captured and put back. The same pattern serves Python's
# `re` and Polars' Rust regex engine, so `strip_version` and `strip_version_expr` cannot drift.
VERSION_SUFFIX_PATTERN = r"\.[0-9]+(?:_[0-9]+)?(_PAR_Y)?$"


def _attribute_value_pattern(key: str) -> str:
    # The key must open the attribute column or follow a ';' or a space, so `gene_id` never
    # matches inside another key such as StringTie's `ref_gene_id`. GENCODE and Ensembl quote the
    # values; an unquoted value is accepted too. An empty value (`transcript_id "";`) does not
    # match, so it counts as missing.
    return rf'(?:^|[;\s]){key}\s+"?([^";\s]+)'


GENE_ID_PATTERN = _attribute_value_pattern("gene_id")
TRANSCRIPT_ID_PATTERN = _attribute_value_pattern("transcript_id")

# Index of a record among the file's data lines (comment lines are not counted), used to find
# the file line of a bad record when reporting it.
_ROW = "_data_row"
_PROBLEM = "_problem"
_LINE_PREVIEW_CHARS = 160
_GZIP_MAGIC = b"\x1f\x8b"

OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "ensembl_id": pl.String(),
    "length_bp": pl.Int64(),
    "n_transcripts": pl.Int32(),
    "length_method": pl.String(),
}


class GtfError(InputError):
    """A GTF that cannot give trustworthy gene lengths.

    The message names the file, what is wrong, and where possible the first offending line
    (number and text).
    """


def strip_version(ensembl_id: str) -> str:
    """Drop the version suffix of an Ensembl gene id, keeping a `_PAR_Y` marker.

    ``ENSG00000141510.18`` -> ``ENSG00000141510``;
    ``ENSG00000182378.14_PAR_Y`` -> ``ENSG00000182378_PAR_Y``;
    an id without a version is returned unchanged.
    """
    return re.sub(VERSION_SUFFIX_PATTERN, r"\1", ensembl_id)


def strip_version_expr(column: str) -> pl.Expr:
    """`strip_version` as a Polars expression on `column` (nulls stay null)."""
    return pl.col(column).cast(pl.String).str.replace(VERSION_SUFFIX_PATTERN, "${1}")


def gene_lengths_from_gtf(
    path: Path, *, method: LengthMethod = "longest_transcript"
) -> pl.DataFrame:
    """One length per gene of a GENCODE or Ensembl GTF (``.gtf`` or ``.gtf.gz``).

    Returns columns ``ensembl_id`` (version stripped, `_PAR_Y` kept), ``length_bp`` (Int64),
    ``n_transcripts`` (Int32: distinct transcript ids on the gene's exon lines, 0 when the GTF
    has none) and ``length_method`` (the `method` used), one row per gene, sorted by
    ``ensembl_id``.

    ``method="longest_transcript"`` (the warehouse's definition) requires a ``transcript_id`` on
    every exon line; ``method="union_exons"`` measures the union of each gene's exon intervals
    and accepts exon lines without transcript ids.

    Raises FileNotFoundError when `path` does not exist and GtfError when the file is not a
    usable GTF.
    """
    if method not in LENGTH_METHODS:
        raise ValueError(f"method must be one of {LENGTH_METHODS}, got {method!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GTF file not found: {path}")

    exons = _read_exon_rows(path, keep_seqname=method == "union_exons")
    _check_exon_ids(path, exons, method)
    if method == "longest_transcript":
        lengths = _longest_transcript_lengths(exons)
    else:
        lengths = _union_exon_lengths(exons)
    return (
        lengths.with_columns(length_method=pl.lit(method, dtype=pl.String))
        .select(pl.col(name).cast(dtype) for name, dtype in OUTPUT_SCHEMA.items())
        .sort("ensembl_id")
    )


def attach_lengths(genes: pl.DataFrame, lengths: pl.DataFrame) -> pl.DataFrame:
    """Add ``length_bp`` and ``has_length`` to `genes`, matching on the version-less Ensembl id.

    `genes` has an ``ensembl_id`` column as found in an ARCHS4 file (a version suffix, if any, is
    ignored for matching); `lengths` is the output of `gene_lengths_from_gtf`. Returns `genes`
    in the same row order with ``length_bp`` (Int64, null for genes the GTF lacks) and
    ``has_length`` (Boolean).
    """
    if "ensembl_id" not in genes.columns:
        raise ValueError(f"genes needs an 'ensembl_id' column, has {genes.columns}")
    already_there = [name for name in ("length_bp", "has_length") if name in genes.columns]
    if already_there:
        raise ValueError(f"genes already has column(s) {already_there}; drop them first")
    missing = [name for name in ("ensembl_id", "length_bp") if name not in lengths.columns]
    if missing:
        raise ValueError(
            f"lengths lacks column(s) {missing}; expected gene_lengths_from_gtf output"
        )

    key = "_gene_length_key"
    lookup = lengths.select(
        strip_version_expr("ensembl_id").alias(key), pl.col("length_bp").cast(pl.Int64)
    )
    duplicated = lookup.filter(pl.col(key).is_duplicated())[key].unique().sort()
    if len(duplicated) > 0:
        raise ValueError(
            f"lengths has {len(duplicated)} ensembl_id(s) more than once after stripping "
            f"versions, e.g. {duplicated.head(3).to_list()}"
        )
    return (
        genes.with_columns(strip_version_expr("ensembl_id").alias(key))
        .join(lookup, on=key, how="left", maintain_order="left")
        .drop(key)
        .with_columns(has_length=pl.col("length_bp").is_not_null())
    )


# --- reading -------------------------------------------------------------------------------


def _scan_gtf(path: Path) -> pl.LazyFrame:
    return pl.scan_csv(
        path,
        separator="\t",
        has_header=False,
        comment_prefix="#",
        # Attributes hold '"'; with quoting on, a quote would swallow the tabs that follow it.
        quote_char=None,
        schema=GTF_SCHEMA,
        row_index_name=_ROW,
        # Binary garbage should reach our column checks and get a readable message.
        encoding="utf8-lossy",
    )


def _read_exon_rows(path: Path, *, keep_seqname: bool) -> pl.DataFrame:
    """Exon rows as (row, gene_id, transcript_id, start, end[, seqname]), validated.

    One streaming pass keeps the exon rows plus any malformed row (rare), so the checks cost no
    second read of a large file.
    """
    start = pl.col("start").cast(pl.Int64, strict=False)
    end = pl.col("end").cast(pl.Int64, strict=False)
    # Polars yields an all-null row for a blank line, and nulls for the missing trailing fields
    # of a short line (an empty attribute column also reads as null). Naming all nine columns
    # here also matters: Polars only rejects a line with more than nine fields when every column
    # of the schema is projected.
    blank = pl.all_horizontal(pl.col(name).is_null() for name in GTF_COLUMNS)
    problem = (
        pl.when(blank)
        .then(None)
        .when(pl.col("attribute").is_null())
        .then(pl.lit("columns"))
        .when(start.is_null() | end.is_null())
        .then(pl.lit("coordinates"))
        .when(start < 1)
        .then(pl.lit("nonpositive"))
        .when((pl.col("feature") == "exon") & (end < start))
        .then(pl.lit("reversed"))
    )
    columns = [
        pl.col(_ROW),
        pl.col(_PROBLEM),
        pl.col("attribute").str.extract(GENE_ID_PATTERN, 1).alias("gene_id"),
        pl.col("attribute").str.extract(TRANSCRIPT_ID_PATTERN, 1).alias("transcript_id"),
        start.alias("start"),
        end.alias("end"),
    ]
    if keep_seqname:
        columns.append(pl.col("seqname"))
    query = (
        _scan_gtf(path)
        .with_columns(problem.alias(_PROBLEM))
        .filter((pl.col("feature") == "exon") | pl.col(_PROBLEM).is_not_null())
        .select(columns)
    )
    try:
        rows = query.collect(engine="streaming")
    except PermissionError:
        raise
    except (pl.exceptions.PolarsError, OSError) as error:
        # OSError: Polars reports a truncated or corrupt gzip stream as one.
        raise _unreadable_gtf_error(path, error) from error

    problems = rows.filter(pl.col(_PROBLEM).is_not_null())
    if len(problems) > 0:
        raise _malformed_record_error(path, problems.sort(_ROW).row(0, named=True))
    if len(rows) == 0:
        raise _no_exons_error(path)
    return rows.drop(_PROBLEM)


def _check_exon_ids(path: Path, exons: pl.DataFrame, method: LengthMethod) -> None:
    without_gene = exons.filter(pl.col("gene_id").is_null())
    if len(without_gene) > 0:
        line_number, line = _data_line(path, int(without_gene[_ROW].min()))
        raise _gtf_error(
            path,
            f"{len(without_gene)} of {len(exons)} exon lines have no gene_id attribute, "
            f"so they cannot be assigned to a gene",
            line_number=line_number,
            line=line,
        )
    if method == "union_exons":
        return
    without_transcript = exons.filter(pl.col("transcript_id").is_null())
    if len(without_transcript) > 0:
        line_number, line = _data_line(path, int(without_transcript[_ROW].min()))
        raise _gtf_error(
            path,
            f"{len(without_transcript)} of {len(exons)} exon lines have no transcript_id "
            f"attribute, so the longest transcript of their genes is unknown; pass "
            f"method='union_exons' to measure the union of each gene's exons instead",
            line_number=line_number,
            line=line,
        )


# --- lengths -------------------------------------------------------------------------------


def _longest_transcript_lengths(exons: pl.DataFrame) -> pl.DataFrame:
    # Sum per transcript under the raw gene id first: the version strip then runs on ~250K
    # transcripts instead of ~1.6M exons.
    transcripts = exons.group_by("gene_id", "transcript_id").agg(
        exonic_bp=(pl.col("end") - pl.col("start") + 1).sum()
    )
    return (
        transcripts.with_columns(ensembl_id=strip_version_expr("gene_id"))
        .group_by("ensembl_id")
        .agg(
            length_bp=pl.col("exonic_bp").max(),
            n_transcripts=pl.col("transcript_id").n_unique(),
        )
    )


def _union_exon_lengths(exons: pl.DataFrame) -> pl.DataFrame:
    """Size of the union of each gene's exon intervals (overlapping and adjacent ones merged).

    Intervals are merged per chromosome as well, so a gene id that (against the format) spans
    two chromosomes never has chrX and chrY coordinates merged.
    """
    genes = exons.with_columns(ensembl_id=strip_version_expr("gene_id"))
    region = ["ensembl_id", "seqname"]
    merged = (
        genes.sort([*region, "start"])
        # An interval opens a new merged block when it starts past everything seen so far in
        # its region (+1: an interval starting right after the reach is adjacent, so it joins).
        .with_columns(reach=pl.col("end").cum_max().shift(1).over(region))
        .with_columns(
            opens_block=pl.col("reach").is_null() | (pl.col("start") > pl.col("reach") + 1)
        )
        .with_columns(block=pl.col("opens_block").cum_sum().over(region))
        .group_by([*region, "block"])
        .agg(block_start=pl.col("start").min(), block_end=pl.col("end").max())
    )
    union_bp = merged.group_by("ensembl_id").agg(
        length_bp=(pl.col("block_end") - pl.col("block_start") + 1).sum()
    )
    transcript_counts = genes.group_by("ensembl_id").agg(
        n_transcripts=pl.col("transcript_id").drop_nulls().n_unique()
    )
    return union_bp.join(transcript_counts, on="ensembl_id", how="left")


# --- error reporting -----------------------------------------------------------------------


def _gtf_error(
    path: Path, problem: str, *, line_number: int | None = None, line: str | None = None
) -> GtfError:
    where = f"{path}, line {line_number}" if line_number is not None else f"{path}"
    message = f"{where}: {problem}"
    if line is not None:
        shown = line if len(line) <= _LINE_PREVIEW_CHARS else line[:_LINE_PREVIEW_CHARS] + "..."
        message += f"\n  the line: {shown!r}"
    return GtfError(message)


def _open_text(path: Path) -> IO[str]:
    # By content rather than by name, as Polars does: a gzip file may lack the .gz suffix.
    with path.open("rb") as raw:
        magic = raw.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="\n")
    return path.open("r", encoding="utf-8", errors="replace", newline="\n")


def _data_line(path: Path, data_row: int) -> tuple[int | None, str | None]:
    """File line number (1-based) and text of the `data_row`-th non-comment line.

    Only runs when reporting an error, so a Python pass over the file is affordable.
    """
    seen = 0
    with _open_text(path) as text:
        for line_number, line in enumerate(text, start=1):
            if line.startswith("#"):
                continue
            if seen == data_row:
                return line_number, line.rstrip("\r\n")
            seen += 1
    return None, None


def _first_line_without_nine_fields(path: Path) -> tuple[int, str, int] | None:
    with _open_text(path) as text:
        for line_number, line in enumerate(text, start=1):
            record = line.rstrip("\r\n")
            if record.startswith("#") or not record:
                continue
            n_fields = record.count("\t") + 1
            if n_fields != len(GTF_COLUMNS):
                return line_number, record, n_fields
    return None


def _wrong_field_count_error(path: Path, line_number: int, line: str, n_fields: int) -> GtfError:
    return _gtf_error(
        path,
        f"not a GTF record: expected {len(GTF_COLUMNS)} tab-separated columns, found {n_fields}",
        line_number=line_number,
        line=line,
    )


def _unreadable_gtf_error(path: Path, error: Exception) -> GtfError:
    # Polars refuses rows with more fields than the schema (and a first row with fewer); find
    # the culprit ourselves, since Polars' message names neither the file nor the line.
    try:
        culprit = _first_line_without_nine_fields(path)
    except (OSError, EOFError, zlib.error):
        culprit = None
    if culprit is not None:
        return _wrong_field_count_error(path, *culprit)
    return _gtf_error(path, f"cannot be read as a tab-separated GTF ({error})")


def _malformed_record_error(path: Path, record: dict[str, Any]) -> GtfError:
    line_number, line = _data_line(path, int(record[_ROW]))
    kind = record[_PROBLEM]
    if kind == "columns" and line is not None:
        n_fields = line.count("\t") + 1
        if n_fields != len(GTF_COLUMNS):
            return _wrong_field_count_error(path, line_number or 0, line, n_fields)
        return _gtf_error(
            path,
            "not a GTF record: the attribute column (9th) is empty",
            line_number=line_number,
            line=line,
        )
    if kind == "reversed":
        problem = "exon ends before it starts (end < start)"
    elif kind == "nonpositive":
        problem = "start (column 4) must be at least 1: GTF coordinates are 1-based"
    else:
        problem = "not a GTF record: start and end (columns 4 and 5) must be integers"
    return _gtf_error(path, problem, line_number=line_number, line=line)


def _no_exons_error(path: Path) -> GtfError:
    n_records = (
        _scan_gtf(path)
        .filter(pl.col("seqname").is_not_null())
        .select(pl.len())
        .collect(engine="streaming")
        .item()
    )
    if n_records == 0:
        return _gtf_error(path, "no GTF records: the file is empty or holds only comment lines")
    return _gtf_error(
        path,
        f"no exon lines among {n_records} records (no line has 'exon' in the feature column), "
        f"so no gene length can be computed",
    )
