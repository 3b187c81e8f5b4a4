"""The tissues and cell lines the demo's studies profile (:data:`BIOSOURCES`) and their labels.

Built from the tables of ``assets/demo/biosources.yaml``: one :class:`Biosource` per cell line,
tissue and two-label source, in that order (cell lines and tissues in label order), with the
spellings submitters use. A sample's true labels are those of its biosource, so this is the
ground truth the label prediction is scored against.
"""

from __future__ import annotations

from dataclasses import dataclass

from archs4.demo_data.tables import _CELL_LINES, _TISSUES, _TWO_LABEL_SOURCES, ALL_LABELS


@dataclass(frozen=True)
class Biosource:
    """A tissue or cell line a study profiles: its true labels and how submitters spell it."""

    name: str
    spellings: tuple[str, ...]
    labels: tuple[str, ...]
    kind: str  # "cell_line" or "tissue"
    description: str  # disease or cell type written next to a cell line; "" for tissues


def _build_biosources() -> tuple[Biosource, ...]:
    sources: list[Biosource] = []
    for label, (default_description, entries) in _CELL_LINES.items():
        for entry in entries:
            spelled, _, description = entry.partition("@")
            spellings = tuple(spelled.split("|"))
            sources.append(
                Biosource(
                    spellings[0],
                    spellings,
                    (label,),
                    "cell_line",
                    description or default_description,
                )
            )
    for label, entries in _TISSUES.items():
        for entry in entries:
            spellings = tuple(entry.split("|"))
            sources.append(Biosource(spellings[0], spellings, (label,), "tissue", ""))
    for entry, labels, kind, description in _TWO_LABEL_SOURCES:
        spellings = tuple(entry.split("|"))
        sources.append(Biosource(spellings[0], spellings, labels, kind, description))
    return tuple(sources)


BIOSOURCES: tuple[Biosource, ...] = _build_biosources()
_LABEL_INDEX: dict[str, int] = {label: i for i, label in enumerate(ALL_LABELS)}
