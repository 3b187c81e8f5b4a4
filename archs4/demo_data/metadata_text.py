"""GEO metadata text of the demo's samples: titles, source names, characteristics and the
study-level fields (platform, protocols, dates, relations).

Each study writes its samples in one of a few lab styles, from its own random stream, drawing
spellings, treatments and protocols from the pools of ``assets/demo/metadata_text.yaml`` and
``assets/demo/biosources.yaml``. Why: metadata labelling must be tested on text as messy as
GEO's: a cell line named in the title only, a tissue in the characteristics only, case and
punctuation variants, and samples whose record names no tissue or cell line at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np

from archs4.demo_data.biosources import BIOSOURCES
from archs4.demo_data.samples import SamplePlan
from archs4.demo_data.streams import _rng, _Stream
from archs4.demo_data.tables import (
    _DATA_PROCESSING,
    _DISEASE_STATES,
    _EXTRACT_PROTOCOLS,
    _GENOTYPES,
    _PLATFORMS,
    _TIME_POINTS,
    _TREATMENTS,
    _words,
)

_SNAPSHOT_DAY = date(2024, 8, 20)  # the release's metadata snapshot: no later update dates
_MONTHS = _words("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec")


def _geo_date(day: date) -> str:
    return f"{_MONTHS[day.month - 1]} {day.day:02d} {day.year}"


def _messy(spelling: str, rng: np.random.Generator) -> str:
    """How one lab writes a name: mostly as given, sometimes lower or upper case."""
    draw = rng.random()
    if draw < 0.12:
        return spelling.lower()
    if draw < 0.18:
        return spelling.upper()
    return spelling


def _sample_texts(plan: SamplePlan, seed: int) -> dict[str, list[str]]:
    """GEO text fields of every sample, generated study by study from the study's own stream."""
    fields = ("title", "source_name_ch1", "characteristics_ch1", "molecule_ch1",
              "library_source", "library_selection", "platform_id", "instrument_model",
              "extract_protocol_ch1", "data_processing", "submission_date",
              "last_update_date", "status", "relation")  # fmt: skip
    texts: dict[str, list[str]] = {field: [] for field in fields}
    for study in range(len(plan.study_gse)):
        rng = _rng(seed, _Stream.STUDY_TEXT, study)
        first, size = int(plan.study_start[study]), int(plan.study_size[study])
        samples = range(first, first + size)
        for title, source, characteristics in _study_descriptions(plan, samples, rng):
            texts["title"].append(title)
            texts["source_name_ch1"].append(source)
            texts["characteristics_ch1"].append(characteristics)
        submitted = plan.study_submitted[study]
        released = submitted + timedelta(days=int(rng.integers(7, 400)))
        updated = min(released + timedelta(days=int(rng.integers(0, 1500))), _SNAPSHOT_DAY)
        in_use = [p for p in _PLATFORMS if p[2] <= submitted.year <= p[3]]
        platform, instrument, _, _ = in_use[rng.integers(len(in_use))]
        poly_a = rng.random() < 0.6
        single_cell = bool(plan.study_single_cell[study])
        study_values = {
            "molecule_ch1": "polyA RNA" if poly_a else "total RNA",
            "library_source": "transcriptomic single cell" if single_cell else "transcriptomic",
            "library_selection": "PolyA" if poly_a else "cDNA",
            "platform_id": platform,
            "instrument_model": instrument,
            "extract_protocol_ch1": _EXTRACT_PROTOCOLS[rng.integers(len(_EXTRACT_PROTOCOLS))],
            "data_processing": _DATA_PROCESSING[rng.integers(len(_DATA_PROCESSING))],
            "submission_date": _geo_date(submitted),
            "last_update_date": _geo_date(updated),
            "status": f"Public on {_geo_date(released)}",
        }
        for field, value in study_values.items():
            texts[field].extend([value] * size)
        texts["relation"].extend(
            f"BioSample: https://www.ncbi.nlm.nih.gov/biosample/SAMN{5_000_000 + 3 * s}"
            f"\tSRA: https://www.ncbi.nlm.nih.gov/sra?term=SRX{1_000_000 + 2 * s}"
            for s in samples
        )
    return texts


def _study_descriptions(
    plan: SamplePlan, samples: range, rng: np.random.Generator
) -> Iterator[tuple[str, str, str]]:
    """(title, source_name, characteristics) per sample of one study, in that lab's style."""
    style = int(rng.integers(4))
    spellings = {
        int(b): _messy(BIOSOURCES[b].spellings[rng.integers(len(BIOSOURCES[b].spellings))], rng)
        for b in np.unique(plan.biosource[samples.start : samples.stop])
    }
    perturbation_key, (control, perturbed) = (
        ("treatment", _TREATMENTS[rng.integers(len(_TREATMENTS))])
        if rng.random() < 0.6
        else ("genotype", _GENOTYPES[rng.integers(len(_GENOTYPES))])
    )
    healthy, diseased = _DISEASE_STATES[rng.integers(len(_DISEASE_STATES))]
    time = _TIME_POINTS[rng.integers(len(_TIME_POINTS))]
    uninformative_style = int(rng.integers(6))
    first_donor = int(rng.integers(1, 400))  # donors numbered within the study
    # replicates are numbered within each (biosource, condition) group, so titles are unique
    replicates_so_far: Counter[tuple[int, int]] = Counter()
    for position, sample in enumerate(samples):
        group = (int(plan.biosource[sample]), int(plan.condition[sample]))
        replicates_so_far[group] += 1
        replicate = replicates_so_far[group]
        donor = f"D{first_donor + position}"
        age = int(rng.integers(18, 90))
        sex = "male" if plan.male[sample] else "female"
        if not plan.named_in_metadata[sample]:
            yield _uninformative_text(
                uninformative_style,
                number=position + 1,
                replicate=replicate,
                sex=sex,
                age=age,
                rng=rng,
            )
            continue
        source = BIOSOURCES[int(plan.biosource[sample])]
        name = spellings[int(plan.biosource[sample])]
        compact = name.replace(" ", "").replace("-", "") if rng.random() < 0.5 else name
        if source.kind == "cell_line":
            value = perturbed if plan.condition[sample] else control
            yield _cell_line_text(
                style,
                name=name,
                compact=compact,
                description=source.description,
                condition=f"{perturbation_key}: {value}",
                replicate=replicate,
                time=time,
            )
        else:
            state = diseased if plan.condition[sample] else healthy
            yield _tissue_text(
                style, name=name, compact=compact, state=state, donor=donor, sex=sex, age=age
            )


def _cell_line_text(
    style: int,
    *,
    name: str,
    compact: str,
    description: str,
    condition: str,
    replicate: int,
    time: str,
) -> tuple[str, str, str]:
    """(title, source_name, characteristics) of a cell-line sample; style 2 names the line in
    the title only."""
    value = condition.partition(": ")[2]
    short_condition = value.split(maxsplit=1)[0].replace("-", "")
    if style == 0:
        characteristics = f"cell line: {name}\t{condition}\ttime: {time}"
        return f"{compact}_{short_condition}_rep{replicate}", f"{name} cells", characteristics
    if style == 1:
        characteristics = f"cell line: {name}\tcell type: {description}\t{condition}"
        return (
            f"{name} {value} replicate {replicate}",
            description,
            characteristics,
        )
    if style == 2:
        return (
            f"{compact}-{short_condition}-{replicate}",
            "cultured cells",
            f"{condition}\ttime: {time}",
        )
    return f"{compact}_{short_condition}{replicate}", name, f"cell line: {name}\t{condition}"


def _tissue_text(
    style: int, *, name: str, compact: str, state: str, donor: str, sex: str, age: int
) -> tuple[str, str, str]:
    """(title, source_name, characteristics) of a tissue sample; style 3 names the tissue in
    the characteristics only."""
    if style == 0:
        characteristics = f"tissue: {name}\tage: {age}\tSex: {sex}\tdisease state: {state}"
        return f"{compact}_{donor}", name[0].upper() + name[1:], characteristics
    if style == 1:
        characteristics = f"tissue: {name}\tindividual: {donor}\tgender: {sex}"
        return f"{name} {state} {donor}", f"human {name}", characteristics
    if style == 2:
        characteristics = f"donor: {donor}\tdiagnosis: {state}\tage (years): {age}"
        return f"{donor}_{compact}", name, characteristics
    return f"{donor} {state}", "tissue", f"tissue: {name}\tsex: {sex}\tage: {age}"


def _uninformative_text(
    style: int, *, number: int, replicate: int, sex: str, age: int, rng: np.random.Generator
) -> tuple[str, str, str]:
    """Metadata that names no tissue or cell line (the series summary would, but it is not in
    the sample record). Words are chosen so no tissue name hides inside them."""
    visit = int(rng.integers(1, 4))
    if style == 0:
        return f"sample {number}", "total RNA", f"replicate: {replicate}\ttreatment: none"
    if style == 1:
        return f"control replicate {number}", "control", f"Sex: {sex}\tage: {age}"
    if style == 2:
        characteristics = f"individual: patient {number}\ttime point: baseline"
        return f"patient {number} baseline", f"patient {number}", characteristics
    if style == 3:
        return f"S{number}", "cells", f"genotype: wild type\tbatch: {visit}"
    if style == 4:
        genotype = "KO" if number % 2 else "WT"
        return f"{genotype}_rep{(number + 1) // 2}", "primary sample", f"time: day {visit}"
    return f"donor {number} visit {visit}", "untreated", f"age: {age}\tSex: {sex}"
