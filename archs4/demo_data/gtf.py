"""The demo's GENCODE-style annotation, ``gencode.demo.annotation.gtf.gz``.

Gene, transcript, exon and CDS lines with versioned ids, sorted by chromosome and position,
with chrY ``_PAR_Y`` copies of the pseudo-autosomal genes and ~3 % of the HDF5 genes left out.
Why: the pipeline derives gene lengths (longest transcript's exonic length) from a GTF, and
must handle what real ones hold: shared exons, ``_PAR_Y`` ids, genes the HDF5 lacks and genes
the GTF lacks. The gzip header carries no timestamp, so same arguments give the same bytes.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archs4.demo_data.gene_models import TranscriptModel
from archs4.demo_data.genes import GeneTable
from archs4.demo_data.streams import _rng, _Stream
from archs4.demo_data.tables import _CHROMOSOMES

_GTF_HEADER = (
    "##description: evidence-based annotation of the human genome (GRCh38), version 44 "
    "(Ensembl 110) - synthetic demo subset written by archs4.demo_data\n"
    "##provider: GENCODE\n"
    "##contact: gencode-help@ebi.ac.uk\n"
    "##format: gtf\n"
    "##date: 2023-03-29\n"
)


def _write_gtf(path: Path, genes: GeneTable, seed: int) -> None:
    """GENCODE-style gzip GTF: gene, transcript, exon and CDS lines, sorted by chromosome and
    position, with chrY `_PAR_Y` copies of the pseudo-autosomal genes. Genes flagged
    `in_gtf=False` are left out."""
    rng = _rng(seed, _Stream.GTF_IDS)  # ids only; positions come from the gene table
    transcript_ids = _id_counter(rng, "ENST", 200_000)
    exon_ids = _id_counter(rng, "ENSE", 1_000_000)
    protein_ids = _id_counter(rng, "ENSP", 200_000)
    records: list[tuple[int, int, int, bool]] = []  # (chromosome rank, start, gene, PAR_Y copy)
    rank = {chrom: i for i, chrom in enumerate(_CHROMOSOMES)}
    # Ids are drawn per gene before sorting, so a `_PAR_Y` copy reuses its chrX gene's ids
    # (GENCODE appends the suffix to the same ENSG/ENST/ENSE ids).
    transcript_and_protein_ids: list[list[tuple[str, str | None]]] = []
    exon_ids_of_gene: list[dict[tuple[int, int], str]] = []
    for g in range(len(genes.ensembl_id)):
        transcript_and_protein_ids.append(
            [
                (next(transcript_ids), next(protein_ids) if t.cds else None)
                for t in genes.transcripts[g]
            ]
        )
        # exons shared by transcripts keep one exon id, as in GENCODE
        exon_ids_of_gene.append(
            {
                exon: next(exon_ids)
                for exon in sorted({e for t in genes.transcripts[g] for e in t.exons})
            }
        )
        if not genes.in_gtf[g]:
            continue
        records.append((rank[genes.chrom[g]], int(genes.start[g]), g, False))
        if genes.pseudoautosomal[g]:
            records.append((rank["chrY"], int(genes.start[g]), g, True))
    records.sort()
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with (
            temporary.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as out,
        ):
            out.write(_GTF_HEADER.encode())
            for _, _, g, par_y in records:
                lines = _gene_lines(
                    genes, g, par_y, transcript_and_protein_ids[g], exon_ids_of_gene[g]
                )
                out.write("".join(lines).encode())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _id_counter(rng: np.random.Generator, prefix: str, first: int) -> Iterator[str]:
    number = first + int(rng.integers(0, 1000))
    while True:
        yield f"{prefix}{number:011d}.{int(rng.integers(1, 9))}"
        number += int(rng.integers(1, 30))


@dataclass(frozen=True)
class _GtfGene:
    """What every GTF line of one gene (or of its chrY `_PAR_Y` copy) shares."""

    chrom: str
    source: str  # HAVANA or ENSEMBL
    strand: str
    start0: int  # 1-based genomic start
    span: int  # bp from the gene's first to its last base
    level: int
    suffix: str  # "_PAR_Y" for a chrY copy, else ""
    tags: str  # ' tag "PAR";' for pseudo-autosomal genes
    gene_id: str  # versioned, with the suffix
    symbol: str
    biotype: str

    @classmethod
    def of(cls, genes: GeneTable, g: int, par_y: bool) -> _GtfGene:
        level = 2 if genes.biotype[g] in ("protein_coding", "lncRNA") else 3
        suffix = "_PAR_Y" if par_y else ""
        return cls(
            chrom="chrY" if par_y else genes.chrom[g],
            source="HAVANA" if level == 2 else "ENSEMBL",
            strand=genes.strand[g],
            start0=int(genes.start[g]),
            span=max(end for t in genes.transcripts[g] for _, end in t.exons) + 1,
            level=level,
            suffix=suffix,
            tags=' tag "PAR";' if genes.pseudoautosomal[g] else "",
            gene_id=f"{genes.ensembl_id[g]}.{genes.version[g]}{suffix}",
            symbol=genes.symbol[g],
            biotype=genes.biotype[g],
        )

    def genomic(self, offset_start: int, offset_end: int) -> tuple[int, int]:
        """Genomic (start, end) of a 5'->3' offset range; on the minus strand the gene's 5'
        end is its highest coordinate."""
        if self.strand == "+":
            return self.start0 + offset_start, self.start0 + offset_end
        last = self.start0 + self.span - 1
        return last - offset_end, last - offset_start

    def line(self, feature: str, start: int, end: int, frame: str, attributes: str) -> str:
        """One GTF line of this gene: `frame` is "." or a CDS phase."""
        columns = (self.chrom, self.source, feature, start, end, ".", self.strand, frame)
        return "\t".join(map(str, columns)) + f"\t{attributes}\n"


def _gene_lines(
    genes: GeneTable,
    g: int,
    par_y: bool,
    ids: Sequence[tuple[str, str | None]],
    exon_ids: dict[tuple[int, int], str],
) -> list[str]:
    """GTF lines of one gene (or of its chrY copy when `par_y`): gene, then per transcript the
    transcript line and its exons in 5'->3' order, each exon followed by its CDS part."""
    gene = _GtfGene.of(genes, g, par_y)
    gene_attributes = (
        f'gene_id "{gene.gene_id}"; gene_type "{gene.biotype}"; gene_name "{gene.symbol}";'
    )
    lines = [
        gene.line(
            "gene",
            gene.start0,
            gene.start0 + gene.span - 1,
            ".",
            f"{gene_attributes} level {gene.level};{gene.tags}",
        )
    ]
    for k, (transcript, (transcript_id, protein_id)) in enumerate(
        zip(genes.transcripts[g], ids, strict=True)
    ):
        lines.extend(
            _transcript_lines(
                gene,
                k,
                transcript,
                transcript_id=transcript_id,
                protein_id=protein_id,
                exon_ids=exon_ids,
            )
        )
    return lines


def _transcript_lines(
    gene: _GtfGene,
    k: int,
    transcript: TranscriptModel,
    *,
    transcript_id: str,
    protein_id: str | None,
    exon_ids: dict[tuple[int, int], str],
) -> list[str]:
    """The transcript line of the gene's `k`-th transcript, then its exons, each followed by
    the exon's CDS part."""
    suffix, level, tags = gene.suffix, gene.level, gene.tags
    transcript_attributes = (
        f'gene_id "{gene.gene_id}"; transcript_id "{transcript_id}{suffix}"; '
        f'gene_type "{gene.biotype}"; gene_name "{gene.symbol}"; '
        f'transcript_type "{transcript.biotype}"; transcript_name "{gene.symbol}-{201 + k}";'
    )
    basic = ' tag "basic"; tag "Ensembl_canonical";' if k == 0 else ' tag "basic";'
    first, last = gene.genomic(transcript.exons[0][0], transcript.exons[-1][1])
    lines = [
        gene.line(
            "transcript",
            first,
            last,
            ".",
            f'{transcript_attributes} level {level}; transcript_support_level "{1 + k % 3}";'
            f"{basic}{tags}",
        )
    ]
    spliced = 0
    for number, (offset_start, offset_end) in enumerate(transcript.exons, start=1):
        exon_start, exon_end = gene.genomic(offset_start, offset_end)
        exon_attributes = (
            f"{transcript_attributes} exon_number {number}; "
            f'exon_id "{exon_ids[(offset_start, offset_end)]}{suffix}"; level {level};'
        )
        lines.append(
            gene.line("exon", exon_start, exon_end, ".", f"{exon_attributes}{basic}{tags}")
        )
        length = offset_end - offset_start + 1
        cds_part = _cds_part(transcript, spliced, length)
        if cds_part is not None:
            cds_from, cds_to, phase = cds_part
            cds_start, cds_end = gene.genomic(
                offset_start + cds_from - spliced, offset_start + cds_to - spliced - 1
            )
            attributes = f'{exon_attributes} protein_id "{protein_id}{suffix}";{basic}{tags}'
            lines.append(gene.line("CDS", cds_start, cds_end, str(phase), attributes))
        spliced += length
    return lines


def _cds_part(
    transcript: TranscriptModel, spliced: int, length: int
) -> tuple[int, int, int] | None:
    """The part [from, to) of the transcript's CDS, in spliced coordinates, inside the exon
    that covers spliced positions [spliced, spliced + length), and its phase; None when they
    do not overlap."""
    if transcript.cds is None:
        return None
    cds_from = max(spliced, transcript.cds[0])
    cds_to = min(spliced + length, transcript.cds[1])
    if cds_from >= cds_to:
        return None
    return cds_from, cds_to, (3 - (cds_from - transcript.cds[0]) % 3) % 3
