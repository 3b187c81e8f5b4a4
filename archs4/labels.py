"""Tissue and cell-line labels of ARCHS4 samples, and how well metadata labelling works.

What it computes. Multi-hot labels over the 27 labels of the original work (18 cell-line groups,
9 tissue systems; DESIGN.md, "Labels"), from two sources:

* ``metadata``: :class:`LabelVocabulary` (``assets/label_vocabulary.yaml``) maps keywords to
  labels; they are matched on each sample's ``source_name``, ``characteristics`` and ``title``
  after normalizing text as ARCHS4's own tissue presets do (upper case, spaces and punctuation
  removed, :func:`normalize_text`). Short keywords that would hide inside ordinary words after
  that normalization ("RD" in "STANDARD", "HeLa" in "chelator") carry word boundaries and
  exceptions; the YAML header documents every form and rule.
* ``import``: a directory in the ARCHS4 download layout,
  ``<root>/<cell_lines|tissue_types>/<label>/*.tsv``, where every GSM in a TSV's header row
  belongs to that label (:func:`read_label_directory`, :func:`import_labels`). Only header rows
  are read: the files are expression tables that can be large.

:func:`labelling_quality` scores labels against a ground truth (the demo's
``labels_truth.tsv``) as per-label and micro-averaged precision and recall.

Why it is built this way. Matching has to label ~1,000,000 samples in seconds, so nothing
loops over samples in Python. Each sample's three fields become one "spaced" text (upper case,
punctuation runs made single spaces, so it still knows where words start and end) and one
"squashed" text (spaces removed too: the ARCHS4 normalization). One Aho-Corasick scan of the
squashed texts for all keywords of all labels (Polars ``str.extract_many``) finds every
candidate (sample, keyword); plain keywords are matched by that alone, and keywords with word
boundaries or exceptions are then checked by a regular expression on the spaced text of their
few candidate samples only: 1,000,000 samples of ~100 characters of metadata take about 4 s on
2 cores. Single samples (:meth:`LabelVocabulary.match`) go through the same code, so the two
paths cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import polars as pl
import yaml

from archs4.failures import InputError
from archs4.paths import ASSETS_DIR

DEFAULT_VOCABULARY_PATH = ASSETS_DIR / "label_vocabulary.yaml"

LabelKind = Literal["cell_line", "tissue"]
Boundary = Literal["none", "start", "end", "word"]
LABEL_KINDS: tuple[str, ...] = get_args(LabelKind)
BOUNDARIES: tuple[str, ...] = get_args(Boundary)

METADATA_SOURCE = "metadata"
IMPORT_SOURCE = "import"
OVERALL_LABEL = "ALL"
TEXT_COLUMNS: tuple[str, ...] = ("source_name", "characteristics", "title")

# ARCHS4 download layout: directory name -> label kind.
KIND_DIRECTORIES: dict[str, LabelKind] = {"cell_lines": "cell_line", "tissue_types": "tissue"}
GSM_PATTERN = re.compile(r"^GSM\d+$")
QUALITY_SCOPES: tuple[str, ...] = ("named_in_metadata", "all_samples")

# "Punctuation" is anything but a letter or a digit (underscore included). Python's `\W` and
# Rust's `[^\p{L}\p{N}]` (what Polars runs) draw that line the same way.
_NON_ALPHANUMERIC = re.compile(r"[\W_]+")
# Polars spelling; newlines survive, they separate fields (a newline inside a field therefore
# also stops a keyword, which costs nothing: GEO fields are single lines).
_NOT_TEXT_OR_FIELD_BREAK = r"[^\p{L}\p{N}\n]+"

# The spaced text: each field upper-cased, every run of punctuation/space made one space, padded
# with a space on both sides, fields joined by a newline. A keyword's letters may be separated by
# at most one space (the squashed ARCHS4 rule), never by a newline, so no match spans fields.
# Except-phrases are masked with `_MASK`, which is neither alphanumeric nor a space, so nothing
# can match across a masked phrase either, but it still counts as a word boundary.
_FIELD_SEPARATOR = "\n"
_MASK = "|"
_WORD_BOUNDARY = "[ \n|]"
_SPACED = "spaced_text"
_SQUASHED = "squashed_text"
_ALLOWED_KEYWORD_KEYS = frozenset({"match", "boundary", "except"})
_ALLOWED_LABEL_KEYS = frozenset({"kind", "keywords", "exclude_if"})
_ALLOWED_RULES = frozenset({"cell_line_suppresses_tissue"})


def normalize_text(text: str) -> str:
    """``text`` upper-cased with spaces and punctuation removed, as ARCHS4's tissue presets
    compare metadata: ``normalize_text("MDA-MB 231") == "MDAMB231"``."""
    return _NON_ALPHANUMERIC.sub("", text.upper())


class LabelSourceError(InputError):
    """A label download directory that cannot be read as the ARCHS4 layout; names the path."""


@dataclass(frozen=True)
class Keyword:
    """One vocabulary keyword: its text, normalized form, word boundary and exceptions."""

    text: str
    normalized: str
    boundary: Boundary = "none"
    exceptions: tuple[str, ...] = ()  # normalized except-phrases

    @property
    def is_plain(self) -> bool:
        """Matched as a bare substring of the normalized text (the fast Aho-Corasick path)."""
        return self.boundary == "none" and not self.exceptions

    def pattern(self) -> str:
        """Regular expression of this keyword over the spaced text."""
        body = _spaced_pattern(self.normalized)
        if self.boundary in ("start", "word"):
            body = _WORD_BOUNDARY + body
        if self.boundary in ("end", "word"):
            body = body + _WORD_BOUNDARY
        return body


@dataclass(frozen=True)
class LabelDefinition:
    """A label, its kind, the keywords that identify it and those that veto it."""

    name: str
    kind: LabelKind
    keywords: tuple[Keyword, ...]
    exclude_if: tuple[Keyword, ...] = ()


class LabelVocabulary:
    """The label vocabulary: labels in file order, their kinds and keywords, and the matcher.

    Build it with :func:`load_vocabulary`; use :meth:`label_samples` for frames of samples and
    :meth:`match` for one sample.
    """

    def __init__(
        self,
        definitions: Sequence[LabelDefinition],
        *,
        cell_line_suppresses_tissue: bool = True,
        source: str = "<memory>",
    ) -> None:
        if not definitions:
            raise ValueError(f"{source}: the vocabulary defines no label")
        names = [definition.name for definition in definitions]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"{source}: labels defined twice: {duplicated}")
        self._definitions = {definition.name: definition for definition in definitions}
        self.cell_line_suppresses_tissue = cell_line_suppresses_tissue
        self.source = source
        self._matcher = _VocabularyMatcher(definitions)

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names in vocabulary order."""
        return tuple(self._definitions)

    def kind(self, label: str) -> LabelKind:
        """``"cell_line"`` or ``"tissue"``; KeyError for a label outside the vocabulary."""
        return self.definition(label).kind

    def definition(self, label: str) -> LabelDefinition:
        try:
            return self._definitions[label]
        except KeyError:
            raise KeyError(f"unknown label {label!r} (not in {self.source})") from None

    def keywords(self, label: str) -> tuple[Keyword, ...]:
        return self.definition(label).keywords

    def labels_of_kind(self, kind: LabelKind) -> tuple[str, ...]:
        return tuple(name for name, d in self._definitions.items() if d.kind == kind)

    def match(
        self, source_name: str | None, characteristics: str | None, title: str | None
    ) -> set[str]:
        """Labels the metadata of one sample names (the same code path as
        :meth:`label_samples`, so the two always agree)."""
        one_sample = pl.DataFrame(
            {
                "sample_idx": [0],
                "source_name": [source_name],
                "characteristics": [characteristics],
                "title": [title],
            },
            schema={"sample_idx": pl.Int64, **dict.fromkeys(TEXT_COLUMNS, pl.String)},
        )
        return set(self.label_samples(one_sample)["label"].to_list())

    def label_samples(self, samples: pl.DataFrame) -> pl.DataFrame:
        """Metadata labels of every sample: long rows ``sample_idx, label, source`` with
        ``source = "metadata"``, one per (sample, label), sorted by sample then label.

        ``samples`` needs ``sample_idx, source_name, characteristics, title``; nulls are empty
        text. Vectorized: one keyword-set scan of all rows, then regex checks of the few candidate
        rows of the keywords that have boundaries or exceptions."""
        _require_columns(samples, ("sample_idx", *TEXT_COLUMNS), "samples")
        fired = self._matcher.fired_labels(samples)  # row, label
        if self.cell_line_suppresses_tissue:
            # A cell line is not a tissue sample, whatever organ its description names.
            is_cell_line = pl.col("label").is_in(self.labels_of_kind("cell_line"))
            fired = fired.filter(is_cell_line | ~is_cell_line.any().over("row"))
        row_sample_idx = samples.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), pl.col("sample_idx")
        )
        return (
            fired.join(row_sample_idx, on="row")
            .select("sample_idx", "label", pl.lit(METADATA_SOURCE).alias("source"))
            .sort("sample_idx", "label")
        )


def load_vocabulary(path: Path | str = DEFAULT_VOCABULARY_PATH) -> LabelVocabulary:
    """Read and validate the YAML vocabulary; errors name the file and the faulty entry."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label vocabulary {path} does not exist")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("labels"), dict):
        raise ValueError(f"{path}: expected a mapping with a 'labels' mapping")
    unknown_top = sorted(set(document) - {"version", "rules", "labels"})
    if unknown_top:
        raise ValueError(f"{path}: unknown top-level keys {unknown_top}")
    rules = document.get("rules") or {}
    if not isinstance(rules, dict) or set(rules) - _ALLOWED_RULES:
        raise ValueError(f"{path}: 'rules' may only set {sorted(_ALLOWED_RULES)}, got {rules!r}")
    definitions = [
        _parse_label(str(name), entry, path) for name, entry in document["labels"].items()
    ]
    return LabelVocabulary(
        definitions,
        cell_line_suppresses_tissue=bool(rules.get("cell_line_suppresses_tissue", True)),
        source=str(path),
    )


# --- ARCHS4 label downloads ---------------------------------------------------------------------


def read_label_directory(
    root: Path | str, vocabulary: LabelVocabulary | None = None
) -> pl.DataFrame:
    """Label memberships from an ARCHS4 download directory: columns ``gsm, label, kind, file``.

    Layout ``<root>/<cell_lines|tissue_types>/<label>/*.tsv``; every GSM (``^GSM\\d+$``) in a
    TSV's header row after the first column belongs to ``label``. Only the header row of each
    file is read. Hidden entries and non-TSV files inside label directories are skipped; the
    label of a directory must be in the vocabulary and of the kind its parent says.
    """
    root = Path(root)
    if not root.exists():
        raise LabelSourceError(f"label directory {root} does not exist")
    if not root.is_dir():
        raise LabelSourceError(f"label directory {root} is not a directory")
    vocabulary = vocabulary or load_vocabulary()
    kind_directories = [root / name for name in KIND_DIRECTORIES if (root / name).is_dir()]
    if not kind_directories:
        raise LabelSourceError(f"{root}: neither {' nor '.join(KIND_DIRECTORIES)} directory found")
    rows: dict[str, list[str]] = {"gsm": [], "label": [], "kind": [], "file": []}
    for kind_directory in kind_directories:
        kind = KIND_DIRECTORIES[kind_directory.name]
        for label_directory in sorted(kind_directory.iterdir()):
            if label_directory.name.startswith("."):
                continue
            label = label_directory.name
            if not label_directory.is_dir():
                raise LabelSourceError(
                    f"{label_directory}: expected a label directory, found a file"
                )
            if label not in vocabulary.labels:
                raise LabelSourceError(
                    f"{label_directory}: unknown label {label!r} (not in {vocabulary.source})"
                )
            if vocabulary.kind(label) != kind:
                raise LabelSourceError(
                    f"{label_directory}: label {label!r} is a {vocabulary.kind(label)} label, "
                    f"not a {kind} one"
                )
            tsvs = [t for t in sorted(label_directory.glob("*.tsv")) if not t.name.startswith(".")]
            if not tsvs:
                raise LabelSourceError(f"{label_directory}: label directory holds no .tsv file")
            for tsv in tsvs:
                for gsm in header_gsms(tsv):
                    rows["gsm"].append(gsm)
                    rows["label"].append(label)
                    rows["kind"].append(kind)
                    rows["file"].append(str(tsv))
    return pl.DataFrame(rows, schema=dict.fromkeys(rows, pl.String)).sort("label", "gsm", "file")


def header_gsms(tsv: Path) -> list[str]:
    """Distinct GSM ids of a TSV's header row, in order, first column excluded. Reads the
    first line only; LabelSourceError naming the file (and column) when the row holds no GSM
    or a cell that is not one: a mistyped id would otherwise drop its sample silently."""
    with tsv.open("rb") as handle:
        header = handle.readline()
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        raise LabelSourceError(f"{tsv}, line 1: the header row is not UTF-8 text") from None
    cells = [cell.strip().strip('"') for cell in text.rstrip("\r\n").split("\t")[1:]]
    for column, cell in enumerate(cells, start=2):
        if cell and not GSM_PATTERN.match(cell):
            raise LabelSourceError(
                f"{tsv}, line 1, column {column}: {cell[:40]!r} is not a GSM accession"
            )
    found = list(dict.fromkeys(cell for cell in cells if cell))
    if not found:
        raise LabelSourceError(f"{tsv}, line 1: the header row holds no GSM id")
    return found


@dataclass(frozen=True, eq=False)
class ImportReport:
    """What an import found: rows read, rows matched to warehouse samples, and the GSMs the
    warehouse does not know (counted and shown, never silently dropped)."""

    n_rows: int  # (gsm, label, file) rows of the download directory
    n_matched: int  # of those, rows whose GSM is a warehouse sample
    n_unknown_gsms: int  # distinct GSMs not in the warehouse
    unknown_gsm_examples: tuple[str, ...]  # up to 10 of them, sorted
    n_labels: int  # distinct (sample, label) rows produced
    per_label: pl.DataFrame  # label, n_rows, n_matched, n_unknown_gsms

    def as_metadata(self) -> dict[str, Any]:
        """Plain values for logs and Dagster metadata."""
        return {
            "n_rows": self.n_rows,
            "n_matched": self.n_matched,
            "n_unknown_gsms": self.n_unknown_gsms,
            "unknown_gsm_examples": list(self.unknown_gsm_examples),
            "n_labels": self.n_labels,
            "per_label": self.per_label.to_dicts(),
        }


def import_labels(
    directory_labels: pl.DataFrame, samples: pl.DataFrame, *, n_examples: int = 10
) -> tuple[pl.DataFrame, ImportReport]:
    """Map downloaded label lists (:func:`read_label_directory`) onto warehouse samples.

    Returns ``sample_idx, label, source`` rows (``source = "import"``, one per (sample, label),
    sorted) and an :class:`ImportReport` counting the GSMs the warehouse does not hold."""
    _require_columns(directory_labels, ("gsm", "label"), "directory_labels")
    _require_columns(samples, ("gsm", "sample_idx"), "samples")
    if samples["gsm"].is_duplicated().any():
        raise ValueError("samples: gsm is not unique, so a GSM cannot be mapped to one sample")
    joined = directory_labels.select("gsm", "label").join(
        samples.select("gsm", "sample_idx"), on="gsm", how="left"
    )
    known = pl.col("sample_idx").is_not_null()
    unknown_gsms = joined.filter(~known)["gsm"].unique().sort()
    per_label = (
        joined.group_by("label")
        .agg(
            pl.len().alias("n_rows"),
            known.sum().alias("n_matched"),
            pl.col("gsm").filter(~known).n_unique().alias("n_unknown_gsms"),
        )
        .with_columns(pl.col("n_rows", "n_matched", "n_unknown_gsms").cast(pl.Int64))
        .sort("label")
    )
    labels = (
        joined.filter(known)
        .select("sample_idx", "label", pl.lit(IMPORT_SOURCE).alias("source"))
        .unique(["sample_idx", "label"])
        .sort("sample_idx", "label")
    )
    report = ImportReport(
        n_rows=joined.height,
        n_matched=int(joined.select(known.sum()).item()),
        n_unknown_gsms=unknown_gsms.len(),
        unknown_gsm_examples=tuple(unknown_gsms.head(n_examples).to_list()),
        n_labels=labels.height,
        per_label=per_label,
    )
    return labels, report


# --- quality against a ground truth -------------------------------------------------------------


def read_truth_table(path: Path | str) -> pl.DataFrame:
    """The demo's ``labels_truth.tsv``: ``gsm, label, named_in_metadata`` (bool)."""
    truth = pl.read_csv(path, separator="\t", schema_overrides={"named_in_metadata": pl.String})
    _require_columns(truth, ("gsm", "label", "named_in_metadata"), str(path))
    flag = pl.col("named_in_metadata").str.strip_chars().str.to_lowercase()
    truthy, falsy = ["true", "1", "yes", "t"], ["false", "0", "no", "f"]
    if not truth.select(flag.is_in(truthy + falsy).all()).item():
        raise ValueError(f"{path}: named_in_metadata must hold true/false values")
    return truth.with_columns(flag.is_in(truthy).alias("named_in_metadata"))


def labelling_quality(derived: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Precision and recall of ``derived`` (sample_idx, label) against ``truth`` (sample_idx,
    label, named_in_metadata), per label and over all labels (``label = 'ALL'``, micro-averaged:
    pooled true/false positives and false negatives).

    Two scopes (column ``scope``):

    * ``named_in_metadata``: only samples whose metadata names their labels (any truth row of
      the sample with ``named_in_metadata`` true); what metadata labelling can be expected to
      find.
    * ``all_samples``: every sample; the truth is taken as complete, so a derived label on a
      sample without truth rows is a false positive.

    Columns: ``scope, label, n_truth, n_derived, true_positives, precision, recall, f1``;
    precision/recall/f1 are null when undefined (nothing derived, nothing true)."""
    _require_columns(derived, ("sample_idx", "label"), "derived")
    _require_columns(truth, ("sample_idx", "label", "named_in_metadata"), "truth")
    derived_pairs = derived.select("sample_idx", "label").unique()
    truth_pairs = truth.select("sample_idx", "label").unique()
    named_samples = truth.filter(pl.col("named_in_metadata")).select("sample_idx").unique()
    named_scope, all_scope = QUALITY_SCOPES
    scopes = {
        named_scope: (
            derived_pairs.join(named_samples, on="sample_idx", how="semi"),
            truth_pairs.join(named_samples, on="sample_idx", how="semi"),
        ),
        all_scope: (derived_pairs, truth_pairs),
    }
    tables = [
        _precision_recall(scope, derived_in_scope, truth_in_scope)
        for scope, (derived_in_scope, truth_in_scope) in scopes.items()
    ]
    return pl.concat(tables)


def _precision_recall(scope: str, derived: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    both = derived.join(truth, on=["sample_idx", "label"], how="inner")
    counts = (
        pl.concat(
            [
                truth.group_by("label").agg(pl.len().alias("n_truth")),
                derived.group_by("label").agg(pl.len().alias("n_derived")),
                both.group_by("label").agg(pl.len().alias("true_positives")),
            ],
            how="diagonal",
        )
        .group_by("label")
        .agg(pl.col("n_truth", "n_derived", "true_positives").sum().cast(pl.Int64))
        .sort("label")
    )
    overall = counts.select(
        pl.lit(OVERALL_LABEL).alias("label"), pl.col("n_truth", "n_derived", "true_positives").sum()
    )
    table = pl.concat([counts, overall.cast(counts.schema)])
    tp = pl.col("true_positives").cast(pl.Float64)
    precision = pl.when(pl.col("n_derived") > 0).then(tp / pl.col("n_derived"))
    recall = pl.when(pl.col("n_truth") > 0).then(tp / pl.col("n_truth"))
    return table.select(
        pl.lit(scope).alias("scope"),
        "label",
        "n_truth",
        "n_derived",
        "true_positives",
        precision.alias("precision"),
        recall.alias("recall"),
    ).with_columns(
        pl.when(pl.col("precision") + pl.col("recall") > 0)
        .then(2 * pl.col("precision") * pl.col("recall") / (pl.col("precision") + pl.col("recall")))
        .when(pl.col("precision").is_not_null() & pl.col("recall").is_not_null())
        .then(0.0)
        .alias("f1")
    )


# --- vocabulary parsing and matching internals --------------------------------------------------


def _parse_label(name: str, entry: object, path: Path) -> LabelDefinition:
    where = f"{path}: label {name!r}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with kind and keywords")
    unknown = sorted(set(entry) - _ALLOWED_LABEL_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}")
    kind = entry.get("kind")
    if kind not in LABEL_KINDS:
        raise ValueError(f"{where}: kind must be one of {LABEL_KINDS}, got {kind!r}")
    keywords = _parse_keywords(entry.get("keywords"), f"{where} keywords")
    if not keywords:
        raise ValueError(f"{where}: no keywords")
    exclude_if = _parse_keywords(entry.get("exclude_if") or [], f"{where} exclude_if")
    return LabelDefinition(name, kind, keywords, exclude_if)


def _parse_keywords(entries: object, where: str) -> tuple[Keyword, ...]:
    if not isinstance(entries, list):
        raise ValueError(f"{where}: expected a list")
    keywords = tuple(_parse_keyword(entry, where) for entry in entries)
    seen: dict[tuple[str, str, tuple[str, ...]], str] = {}
    for keyword in keywords:
        key = (keyword.normalized, keyword.boundary, keyword.exceptions)
        if key in seen:
            raise ValueError(
                f"{where}: {keyword.text!r} normalizes like {seen[key]!r} ({keyword.normalized})"
            )
        seen[key] = keyword.text
    return keywords


def _parse_keyword(entry: object, where: str) -> Keyword:
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - _ALLOWED_KEYWORD_KEYS)
        if unknown or "match" not in entry:
            raise ValueError(f"{where}: {entry!r} needs 'match' and may only set boundary, except")
        text = _keyword_text(entry["match"], where)
        boundary = entry.get("boundary", "none")
        exceptions = entry.get("except", [])
        if not isinstance(exceptions, list):
            raise ValueError(f"{where}: 'except' of {text!r} must be a list")
        exceptions = [_keyword_text(exception, where) for exception in exceptions]
    else:
        text, boundary, exceptions = _keyword_text(entry, where), "none", []
    if boundary not in BOUNDARIES:
        raise ValueError(f"{where}: boundary of {text!r} must be one of {BOUNDARIES}")
    normalized = normalize_text(text)
    if not normalized:
        raise ValueError(f"{where}: keyword {text!r} has no letter or digit")
    normalized_exceptions = tuple(sorted({normalize_text(e) for e in exceptions}))
    if any(normalized not in exception for exception in normalized_exceptions):
        # An exception that does not contain the keyword could never overlap a match of it.
        raise ValueError(f"{where}: every 'except' phrase of {text!r} must contain it")
    return Keyword(text, normalized, boundary, normalized_exceptions)


def _keyword_text(value: object, where: str) -> str:
    # YAML reads unquoted yes/no/on/off as booleans and 1e5 as a float: demand quotes there.
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{where}: keyword {value!r} is not text; quote it in the YAML")


def _spaced_pattern(normalized: str) -> str:
    """Regex matching ``normalized`` in spaced text: one optional space between characters."""
    return " ?".join(re.escape(character) for character in normalized)


def _alternation(patterns: Iterable[str]) -> str:
    return "(?:" + "|".join(sorted(set(patterns))) + ")"


def _spaced_text() -> pl.Expr:
    """The spaced text of a sample: ``" F1 \\n F2 \\n F3 "`` for its three text fields, upper
    case, each run of other characters than letters, digits and newlines made one space."""
    separator = pl.lit(f" {_FIELD_SEPARATOR} ")
    fields = [pl.col(column).cast(pl.String).fill_null("") for column in TEXT_COLUMNS]
    raw = pl.concat_str(
        [pl.lit(" "), fields[0], separator, fields[1], separator, fields[2], pl.lit(" ")]
    )
    return raw.str.to_uppercase().str.replace_all(_NOT_TEXT_OR_FIELD_BREAK, " ")


class _VocabularyMatcher:
    """Which labels fire for which rows, in two vectorized passes.

    1. One Aho-Corasick scan (``str.extract_many``) of the squashed text for every keyword of
       every label finds candidate (row, keyword) pairs; plain keywords are thereby matched.
    2. Keywords with a boundary or exceptions are verified by their regular expression over the
       spaced text of their candidate rows only, one keyword at a time. Candidates are a small
       share of the rows, so the regex engines never scan the whole column.

    A label fires for a row when one of its keywords matches and none of its ``exclude_if``
    keywords does.
    """

    def __init__(self, definitions: Sequence[LabelDefinition]) -> None:
        entries = [
            (definition.name, role, keyword)
            for definition in definitions
            for role, keywords in (
                ("keyword", definition.keywords),
                ("exclude", definition.exclude_if),
            )
            for keyword in keywords
        ]
        self._keywords = [keyword for _, _, keyword in entries]
        self._patterns = sorted({keyword.normalized for keyword in self._keywords})
        self._entries = pl.DataFrame(
            {
                "normalized": [keyword.normalized for keyword in self._keywords],
                "entry": list(range(len(entries))),
                "label": [label for label, _, _ in entries],
                "role": [role for _, role, _ in entries],
                "plain": [keyword.is_plain for keyword in self._keywords],
            },
            schema={
                "normalized": pl.String,
                "entry": pl.Int64,
                "label": pl.String,
                "role": pl.String,
                "plain": pl.Boolean,
            },
        )
        self._verifiers = {
            entry: _verifier(keyword)
            for entry, keyword in enumerate(self._keywords)
            if not keyword.is_plain
        }

    def fired_labels(self, samples: pl.DataFrame) -> pl.DataFrame:
        """``row, label`` pairs (row = position in ``samples``) of the labels that fire."""
        texts = samples.select(_spaced_text().alias(_SPACED)).with_columns(
            pl.col(_SPACED).str.replace_all(" ", "", literal=True).alias(_SQUASHED)
        )
        candidates = (
            texts.select(
                pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
                pl.col(_SQUASHED)
                .str.extract_many(self._patterns, overlapping=True)
                .list.unique()
                .alias("normalized"),
            )
            .explode("normalized")
            .drop_nulls("normalized")
            .join(self._entries, on="normalized")
        )
        confirmed = [candidates.filter(pl.col("plain")).select("row", "entry")]
        spaced_texts = texts.get_column(_SPACED)
        to_verify = candidates.filter(~pl.col("plain")).select("row", "entry")
        for (entry,), pairs in to_verify.group_by("entry"):
            mask, pattern = self._verifiers[int(entry)]
            text = spaced_texts.gather(pairs.get_column("row"))
            if mask is not None:
                text = text.str.replace_all(mask, _MASK)
            confirmed.append(pairs.filter(text.str.contains(pattern)))
        matched = (
            pl.concat(confirmed)
            .join(self._entries.select("entry", "label", "role"), on="entry")
            .select("row", "label", "role")
            .unique()
        )
        keyword_hits = matched.filter(pl.col("role") == "keyword").select("row", "label")
        vetoes = matched.filter(pl.col("role") == "exclude").select("row", "label")
        return keyword_hits.join(vetoes, on=["row", "label"], how="anti")


def _verifier(keyword: Keyword) -> tuple[str | None, str]:
    """(mask regex of the keyword's exceptions or None, the keyword's regex)."""
    mask = None
    if keyword.exceptions:
        mask = _alternation(_spaced_pattern(exception) for exception in keyword.exceptions)
    return mask, keyword.pattern()


def _require_columns(frame: pl.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing} (has {frame.columns})")
