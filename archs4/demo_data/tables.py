"""The demo generator's data tables: label names, label shares, biosources, genes, text pools.

The 27 label names and their kinds come from ``assets/label_vocabulary.yaml``, read with
:func:`archs4.labels.load_vocabulary`, so the project defines them once; the demo orders them
cell-line labels first, then tissue labels, each in vocabulary order. Every other table is data
under ``assets/demo/`` (located through :mod:`archs4.paths`, so an installed package reads its
``archs4/_assets/demo/``): ``labels.yaml`` (label shares, related tissue systems, cell-line sex),
``biosources.yaml`` (cell lines and tissues and their spellings), ``genes.yaml`` (real genes,
markers, biotypes, chromosomes, symbol templates) and ``metadata_text.yaml`` (GEO text pools).

Why: the tables are a third of the generator and are read, reviewed and extended as data.
Tables keyed by label must name exactly the vocabulary's labels; the loader checks it, so a
label added to the vocabulary cannot silently go missing from the demo. The constants below keep
the shapes the generator uses (tuples, dicts in file order), read once at import.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from archs4.labels import load_vocabulary
from archs4.paths import ASSETS_DIR

DEMO_ASSETS_DIR = ASSETS_DIR / "demo"


def _read(name: str) -> dict[str, Any]:
    path = DEMO_ASSETS_DIR / name
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping of tables")
    return document


def _by_label(
    document: dict[str, Any], key: str, labels: Iterable[str], path: Path
) -> dict[str, Any]:
    """`document[key]`, a mapping keyed by exactly `labels`, reordered to `labels`' order."""
    table, labels = document[key], tuple(labels)
    if set(table) != set(labels):
        missing, unknown = sorted(set(labels) - set(table)), sorted(set(table) - set(labels))
        raise ValueError(
            f"{path}: {key!r} must list the labels of the label vocabulary; "
            f"missing {missing}, unknown {unknown}"
        )
    return {label: table[label] for label in labels}


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated names, so long symbol lists read like the tables they are."""
    return tuple(text.split())


def _pairs(rows: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(first), str(second)) for first, second in rows)


# --- labels -----------------------------------------------------------------------------------

_VOCABULARY = load_vocabulary()
CELL_LINE_LABELS: tuple[str, ...] = _VOCABULARY.labels_of_kind("cell_line")
TISSUE_LABELS: tuple[str, ...] = _VOCABULARY.labels_of_kind("tissue")
ALL_LABELS: tuple[str, ...] = (*CELL_LINE_LABELS, *TISSUE_LABELS)

_LABELS_PATH = DEMO_ASSETS_DIR / "labels.yaml"
_labels = _read("labels.yaml")
# Relative share of samples per label.
_LABEL_SHARE: dict[str, float] = {
    label: float(share)
    for label, share in _by_label(_labels, "label_share", ALL_LABELS, _LABELS_PATH).items()
}
# Cell-line label -> the tissue system whose expression program it partly shares.
_RELATED_SYSTEM: dict[str, str] = dict(_labels["related_system"])
_FEMALE_LINE_LABELS = frozenset(_labels["female_line_labels"])
_MALE_LINE_LABELS = frozenset(_labels["male_line_labels"])

# --- biosources -------------------------------------------------------------------------------

_BIOSOURCES_PATH = DEMO_ASSETS_DIR / "biosources.yaml"
_biosources = _read("biosources.yaml")
# Cell lines per label: the label's usual disease/cell type, then one entry per cell line:
# "canonical|other spellings submitters use[@description when it differs]".
_CELL_LINES: dict[str, tuple[str, tuple[str, ...]]] = {
    label: (str(entry["description"]), tuple(entry["lines"]))
    for label, entry in _by_label(
        _biosources, "cell_lines", CELL_LINE_LABELS, _BIOSOURCES_PATH
    ).items()
}
# Tissues per system label: "name|other ways submitters write it".
_TISSUES: dict[str, tuple[str, ...]] = {
    label: tuple(entries)
    for label, entries in _by_label(_biosources, "tissues", TISSUE_LABELS, _BIOSOURCES_PATH).items()
}
# Sources that truly carry two labels: (spellings, labels, kind, description).
_TWO_LABEL_SOURCES: tuple[tuple[str, tuple[str, str], str, str], ...] = tuple(
    (
        str(entry["spellings"]),
        (str(entry["labels"][0]), str(entry["labels"][1])),
        str(entry["kind"]),
        str(entry.get("description", "")),
    )
    for entry in _biosources["two_label_sources"]
)

# --- genes ------------------------------------------------------------------------------------

_GENES_PATH = DEMO_ASSETS_DIR / "genes.yaml"
_genes = _read("genes.yaml")
# Marker genes per label (space-separated real symbols).
_LABEL_MARKERS: dict[str, str] = _by_label(_genes, "label_markers", ALL_LABELS, _GENES_PATH)
_HOUSEKEEPING = _words(_genes["housekeeping"])
_PROLIFERATION = _words(_genes["proliferation"])
_TISSUE_CONTEXT = _words(_genes["tissue_context"])
_OTHER_REAL = _words(_genes["other_real"])
_MITOCHONDRIAL: dict[str, int] = {  # gene -> exon length (bp), in chrM order
    str(symbol): int(length) for symbol, length in _genes["mitochondrial"].items()
}
_Y_LINKED = _words(_genes["y_linked"])
_PSEUDOAUTOSOMAL = _words(_genes["pseudoautosomal"])
_KNOWN_GENES: dict[str, tuple[str, str]] = {  # symbol -> (Ensembl id, chromosome)
    str(symbol): (str(ensembl_id), str(chrom))
    for symbol, (ensembl_id, chrom) in _genes["known_genes"].items()
}
_REAL_BIOTYPES: dict[str, str] = {
    symbol: str(biotype)
    for biotype, symbols in _genes["real_biotypes"].items()
    for symbol in _words(symbols)
}
# Biotype mix of all genes (GENCODE names); generated genes fill what the real ones leave.
_BIOTYPE_MIX: dict[str, float] = {
    str(biotype): float(share) for biotype, share in _genes["biotype_mix"].items()
}
_FAMILY_SYMBOL: dict[str, str] = dict(_genes["family_symbol"])
_CHROMOSOMES: tuple[str, ...] = tuple(_genes["chromosome_weight"])
_CHROMOSOME_WEIGHT: tuple[float, ...] = tuple(
    float(weight) for weight in _genes["chromosome_weight"].values()
)
# Templates for made-up symbols in the style of HGNC names; {pc} is a protein-coding symbol.
_SYMBOL_TEMPLATES: dict[str, tuple[str, ...]] = {
    str(biotype): tuple(templates) for biotype, templates in _genes["symbol_templates"].items()
}

# --- sample metadata text ---------------------------------------------------------------------

_text = _read("metadata_text.yaml")
_TREATMENTS = _pairs(_text["treatments"])
_GENOTYPES = _pairs(_text["genotypes"])
_DISEASE_STATES = _pairs(_text["disease_states"])
_TIME_POINTS: tuple[str, ...] = tuple(_text["time_points"])
_EXTRACT_PROTOCOLS: tuple[str, ...] = tuple(
    "\t".join(lines) for lines in _text["extract_protocols"]
)
_DATA_PROCESSING: tuple[str, ...] = tuple("\t".join(lines) for lines in _text["data_processing"])
# (GPL, instrument, first year used, last year used)
_PLATFORMS: tuple[tuple[str, str, int, int], ...] = tuple(
    (str(gpl), str(instrument), int(first), int(last))
    for gpl, instrument, first, last in _text["platforms"]
)
