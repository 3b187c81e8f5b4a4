"""Embedded demo dataset: a synthetic ARCHS4 release that looks real to the pipeline and a person.

`write_demo_dataset` writes, under one directory:

* ``human_gene_v2.6_demo.h5`` (or ``v2.2``): the ARCHS4 v2 gene-level HDF5 layout, i.e.
  ``data/expression`` (uint32, genes x samples, gzip chunks), ``meta/genes/*``,
  ``meta/samples/*`` (GEO metadata) and ``meta/info/*``, with the key names of that release;
* ``gencode.demo.annotation.gtf.gz``: a GENCODE-style annotation of the same genes (versioned
  ids, 1-6 transcripts sharing exons, CDS lines, ``_PAR_Y`` copies, ~3 % of the h5 genes
  missing), from which the pipeline derives gene lengths;
* ``labels_truth.tsv``: every sample's true labels (multi-hot over the 27 labels) and whether its
  metadata text names them;
* ``labels/``: incomplete label lists in the ARCHS4 tissue/cell-line download layout.

Why: the warehouse must run end to end on a laptop without the 40-60 GB real file, and label
prediction needs a known truth to be scored against. So the data carries the problems of the
real compendium: studies of heavy-tailed size with batch effects, imbalanced and multi-hot
labels, messy and sometimes uninformative metadata, duplicated gene symbols, genes without an
annotation, low-quality libraries and all-zero genes.

Counts are negative binomial (gamma-Poisson) draws whose mean is the library size times the
exonic length of the gene's longest transcript (the same lengths the GTF encodes) times
``exp(baseline + label marker programs + cell-line/tissue context + biosource + study batch +
treatment + sex)``, normalized per sample.

Determinism and scale: every random quantity comes from its own ``numpy.random.default_rng``
stream keyed by (seed, purpose[, study or sample index]), never by Python's ``hash``. A sample's
counts come from its own stream, so they do not depend on ``block_size`` or on the other
samples of its block; only O(samples) and O(genes) vectors are held, the matrix is generated
and written block by block, with chunk compression spread over threads (numpy's samplers and
zlib release the GIL).
"""

from __future__ import annotations

import gzip
import itertools
import os
import shutil
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum
from pathlib import Path

import h5py
import numpy as np

# --- labels and the tissues / cell lines behind them ------------------------------------------

CELL_LINE_LABELS: tuple[str, ...] = (
    "bone", "brain", "breast_mammary", "colon", "connective", "cervix", "endothelial", "kidney",
    "liver", "lung", "lymphoid", "muscle", "myeloid", "ovary", "pancreas", "placenta", "prostate",
    "skin",
)  # fmt: skip
TISSUE_LABELS: tuple[str, ...] = (
    "cardiovascular", "connective_tissue", "digestive", "immune", "integumentary", "muscular",
    "nervous", "respiratory", "urogenital",
)  # fmt: skip
ALL_LABELS: tuple[str, ...] = (*CELL_LINE_LABELS, *TISSUE_LABELS)
LAYOUTS: tuple[str, ...] = ("v2.2", "v2.6")

# Relative share of samples per label, loosely after ARCHS4's imbalance: blood/immune and brain
# tissue, lymphoid and myeloid lines are everywhere; brain cell lines are rare (~1 %).
_LABEL_SHARE: dict[str, float] = {
    "immune": 12, "nervous": 10, "lymphoid": 7, "digestive": 6, "myeloid": 5,
    "breast_mammary": 5, "urogenital": 5, "kidney": 4, "respiratory": 4, "cardiovascular": 4,
    "connective_tissue": 4, "liver": 3, "cervix": 3, "lung": 3, "integumentary": 3,
    "muscular": 3, "colon": 2.5, "prostate": 2.5, "bone": 1.5, "endothelial": 1.5, "skin": 1.5,
    "connective": 1.5, "ovary": 1.2, "pancreas": 1.2, "muscle": 1.0, "placenta": 1.0,
    "brain": 1.0,
}  # fmt: skip

# Cell lines per label: the label's usual disease/cell type, then one entry per cell line:
# "canonical|other spellings submitters use[@description when it differs]".
_CELL_LINES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bone": ("osteosarcoma", (
        "U2OS|U-2 OS|U2-OS|u2os", "Saos-2|SAOS2|Saos2", "MG-63|MG63",
        "hFOB 1.19|hFOB1.19@fetal osteoblast")),
    "brain": ("neuroblastoma", (
        "SH-SY5Y|SHSY5Y|SH SY5Y|sh-sy5y", "SK-N-SH|SKNSH|SK N SH",
        "U87|U-87 MG|U87MG@glioblastoma", "LN229|LN-229@glioblastoma", "T98G@glioblastoma")),
    "breast_mammary": ("breast adenocarcinoma", (
        "MCF7|MCF-7|mcf7|MCF 7", "MDA-MB-231|mda mb 231|MDA-MB231|MDAMB231", "T47D|T-47D|t47d",
        "MCF10A|MCF-10A@mammary epithelial cells", "BT-474|BT474", "SUM159|SUM-159PT")),
    "colon": ("colorectal carcinoma", (
        "HCT116|HCT-116|hct 116", "Caco-2|CACO2|caco2", "HT-29|HT29", "SW480|SW-480",
        "LoVo|LOVO", "DLD-1|DLD1")),
    "connective": ("fibroblast", (
        "IMR-90|IMR90", "BJ fibroblasts|BJ-5ta", "WI-38|WI38", "HT-1080|HT1080@fibrosarcoma")),
    "cervix": ("cervical adenocarcinoma", (
        "HeLa|Hela cells|HELA|HeLa S3|hela", "SiHa|SIHA@cervical squamous cell carcinoma",
        "CaSki|CASKI@cervical squamous cell carcinoma", "C-33A|C33A")),
    "endothelial": ("umbilical vein endothelial cells", (
        "HUVEC|HUVECs|huvec", "HMEC-1|HMEC1@microvascular endothelial cells",
        "EA.hy926|EAhy926")),
    "kidney": ("embryonic kidney", (
        "HEK293|HEK-293|HEK 293|293 cells", "HEK293T|293T|HEK-293T",
        "HK-2|HK2@proximal tubule epithelial cells", "786-O|786O@renal cell carcinoma",
        "Caki-1|CAKI1@renal cell carcinoma")),
    "liver": ("hepatocellular carcinoma", (
        "HepG2|HEPG2|Hep G2|hepg2", "Huh7|HuH-7|HUH7|Huh-7", "Hep3B|Hep 3B", "HepaRG|HEPARG")),
    "lung": ("lung adenocarcinoma", (
        "A549|A-549|a549", "H1299|NCI-H1299|NCIH1299@non-small cell lung cancer",
        "Calu-3|CALU3", "BEAS-2B|BEAS2B@bronchial epithelial cells", "PC-9|PC9",
        "H460|NCI-H460@large cell lung cancer")),
    "lymphoid": ("T cell leukemia", (
        "Jurkat|JURKAT|Jurkat T cells", "GM12878|GM-12878@B lymphoblastoid",
        "Raji|RAJI@Burkitt lymphoma", "Daudi|DAUDI@Burkitt lymphoma",
        "OCI-Ly1|OCILY1@diffuse large B cell lymphoma", "MM.1S|MM1S@multiple myeloma")),
    "muscle": ("skeletal myoblasts", (
        "HSMM|human skeletal muscle myoblasts", "LHCN-M2|LHCNM2",
        "RH30|SJCRH30@rhabdomyosarcoma", "A-204|A204@rhabdomyosarcoma")),
    "myeloid": ("acute myeloid leukemia", (
        "K562|K-562|k562@chronic myelogenous leukemia",
        "THP-1|THP1|thp-1@acute monocytic leukemia", "HL-60|HL60",
        "U937|U-937@histiocytic lymphoma", "MOLM-13|MOLM13", "MV4-11|MV411",
        "Kasumi-1|KASUMI1")),
    "ovary": ("ovarian adenocarcinoma", (
        "SKOV3|SK-OV-3|SKOV-3", "OVCAR-3|OVCAR3", "A2780", "OVCAR-8|OVCAR8", "CAOV3|Caov-3")),
    "pancreas": ("pancreatic carcinoma", (
        "PANC-1|Panc1|PANC1", "MIA PaCa-2|MIAPaCa2|MiaPaCa-2", "BxPC-3|BXPC3",
        "Capan-1|CAPAN1", "AsPC-1|ASPC1")),
    "placenta": ("choriocarcinoma", (
        "BeWo|BEWO", "JEG-3|JEG3", "HTR-8/SVneo|HTR8/SVneo|HTR8@trophoblast", "JAR cells")),
    "prostate": ("prostate carcinoma", (
        "LNCaP|LNCAP|LnCaP", "PC-3|PC3|pc3", "DU145|DU-145", "22Rv1|22RV1", "VCaP|VCAP",
        "C4-2B|C42B")),
    "skin": ("keratinocytes", (
        "HaCaT|HACAT", "A375|A-375@melanoma", "SK-MEL-28|SKMEL28@melanoma",
        "NHEK|normal human epidermal keratinocytes", "WM266-4|WM2664@melanoma")),
}  # fmt: skip

# Tissues per system label: "name|other ways submitters write it".
_TISSUES: dict[str, tuple[str, ...]] = {
    "cardiovascular": (
        "heart|left ventricle|cardiac tissue|heart tissue", "aorta|ascending aorta|aortic tissue",
        "coronary artery", "atrial appendage|right atrial appendage", "tibial artery"),
    "connective_tissue": (
        "adipose tissue|subcutaneous adipose tissue|visceral adipose|fat tissue",
        "articular cartilage|cartilage", "synovial tissue|synovium", "tendon|Achilles tendon"),
    "digestive": (
        "colon|colon mucosa|sigmoid colon|transverse colon",
        "stomach|gastric mucosa|gastric tissue", "liver|liver biopsy|liver tissue",
        "terminal ileum|ileum|small intestine", "esophagus|esophageal mucosa",
        "rectum|rectal mucosa", "duodenum|duodenal biopsy"),
    "immune": (
        "PBMC|PBMCs|peripheral blood mononuclear cells", "whole blood|blood|peripheral blood",
        "spleen", "lymph node", "tonsil", "CD4+ T cells|CD4 T cells",
        "CD14+ monocytes|monocytes", "thymus", "B cells|naive B cells", "NK cells"),
    "integumentary": (
        "skin|skin biopsy|lesional skin|non-lesional skin", "epidermis|epidermal sheet",
        "scalp skin", "hair follicle"),
    "muscular": (
        "skeletal muscle|muscle biopsy|vastus lateralis", "quadriceps muscle|quadriceps",
        "diaphragm"),
    "nervous": (
        "hippocampus|Hippocampus|hippocampal tissue",
        "prefrontal cortex|dorsolateral prefrontal cortex|frontal cortex",
        "cerebellum|cerebellar cortex", "spinal cord", "substantia nigra",
        "caudate nucleus|caudate", "brain|post-mortem brain", "dorsal root ganglion"),
    "respiratory": (
        "lung|lung tissue|lung parenchyma", "bronchial epithelium|bronchial brushing|bronchus",
        "nasal epithelium|nasal brushing", "trachea", "small airway epithelium|airway epithelium"),
    "urogenital": (
        "kidney|renal cortex|kidney biopsy", "urinary bladder|bladder", "testis|testes",
        "prostate tissue|prostate", "endometrium|endometrial tissue", "myometrium"),
}  # fmt: skip

# Sources that truly carry two labels: (spellings, labels, kind, description).
_TWO_LABEL_SOURCES: tuple[tuple[str, tuple[str, str], str, str], ...] = (
    ("dermal fibroblasts|skin fibroblasts|fibroblasts from skin",
     ("integumentary", "connective_tissue"), "tissue", ""),
    ("lung fibroblasts|pulmonary fibroblasts", ("respiratory", "connective_tissue"), "tissue", ""),
    ("esophagus muscularis|esophageal muscularis", ("digestive", "muscular"), "tissue", ""),
    ("aortic smooth muscle cells|aortic smooth muscle", ("cardiovascular", "muscular"),
     "tissue", ""),
    ("intestinal lamina propria|lamina propria lymphocytes", ("digestive", "immune"),
     "tissue", ""),
    ("bronchoalveolar lavage|BAL macrophages", ("respiratory", "immune"), "tissue", ""),
    ("HUVEC-fibroblast co-culture|HUVEC and IMR-90 co-culture", ("endothelial", "connective"),
     "cell_line", "endothelial-fibroblast co-culture"),
)  # fmt: skip

# A cell-line label shares part of the expression program of the tissue system it comes from,
# which makes e.g. brain lines vs nervous tissue a realistic, not a trivial, distinction.
_RELATED_SYSTEM: dict[str, str] = {
    "bone": "connective_tissue", "brain": "nervous", "colon": "digestive",
    "connective": "connective_tissue", "cervix": "urogenital", "endothelial": "cardiovascular",
    "kidney": "urogenital", "liver": "digestive", "lung": "respiratory", "lymphoid": "immune",
    "muscle": "muscular", "myeloid": "immune", "ovary": "urogenital", "pancreas": "digestive",
    "placenta": "urogenital", "prostate": "urogenital", "skin": "integumentary",
}  # fmt: skip
_RELATED_PROGRAM_WEIGHT = 0.35
_FEMALE_LINE_LABELS = frozenset({"breast_mammary", "cervix", "ovary", "placenta"})


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

# --- real gene symbols ------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated names, so long symbol lists read like the tables they are."""
    return tuple(text.split())


# Marker genes per label (real symbols); each label's program up-regulates them.
_LABEL_MARKERS: dict[str, str] = {
    "bone": "RUNX2 SP7 ALPL BGLAP SPP1 IBSP COL1A1 SATB2 PTH1R MMP13",
    "brain": "SOX2 NES PHOX2B HAND2 GAP43 DCX TUBB3 ASCL1 CHGA DBH TH ELAVL4 STMN2",
    "breast_mammary": "ESR1 PGR GATA3 KRT8 KRT18 KRT19 TFF1 FOXA1 XBP1 ERBB2 AGR2 SCGB2A2 MUC1",
    "colon": "CDX1 CDX2 VIL1 LGALS4 CDH17 KRT20 CEACAM5 TFF3 EPCAM OLFM4 LGR5",
    "connective": "COL1A1 COL1A2 COL3A1 FN1 THY1 PDGFRB DCN LUM POSTN FAP TWIST1 PRRX1",
    "cervix": "KRT17 KRT7 S100A2 LAMB3 CDKN2A KRT5 MUC4 SLPI",
    "endothelial": "PECAM1 CDH5 VWF KDR TEK ESAM CLDN5 EMCN ERG FLT1 TIE1 NOS3",
    "kidney": "PAX8 PAX2 LHX1 HNF1B CDH6 LRP2 CUBN LIN28B",
    "liver": "ALB APOA1 APOA2 APOB TTR SERPINA1 FGB FGA AFP HP TF AHSG",
    "lung": "NKX2-1 SFTPB NAPSA SFTA2 CEACAM6 MUC5AC SCGB3A2 LPCAT1 KRT7",
    "lymphoid": "CD19 MS4A1 CD79A CD79B PAX5 CD3E CD3D CD2 LCK ZAP70 IGHM BLK TCF7",
    "muscle": "DES MYOD1 MYOG MYF5 CHRNA1 MYH3 CDH15 TNNT1 ACTA2",
    "myeloid": "CD33 MPO LYZ CSF1R SPI1 CD14 ITGAM CEBPA ELANE HBG1 GATA1 TAL1",
    "ovary": "WT1 MUC16 MSLN FOLR1 PAX8 SOX17 CLDN16 LCN2",
    "pancreas": "KRT19 PDX1 SOX9 S100P CLDN18 GATA6 MSLN CFTR",
    "placenta": "CGA CGB3 GATA3 TFAP2A TFAP2C PSG1 PSG4 HLA-G ERVW-1 PGF KISS1",
    "prostate": "KLK3 KLK2 AR NKX3-1 TMPRSS2 FOLH1 HOXB13 STEAP2 ACP3 SPDEF",
    "skin": "KRT14 KRT5 TP63 SFN MITF PMEL TYR MLANA DCT SOX10 KRT6A",
    "cardiovascular": "MYH6 MYH7 TNNT2 NPPA NPPB ACTC1 MYL7 MYL4 RYR2 MYH11 ELN CNN1",
    "connective_tissue": "ADIPOQ LEP PLIN1 FABP4 LPL CIDEA COL2A1 ACAN COMP PRG4 CFD DCN",
    "digestive": "MUC2 LGALS4 TFF1 PGC GKN1 FABP1 APOA4 CLDN18 LCT KRT20 VIL1 ALB CDX2",
    "immune": "PTPRC CD3E CD4 CD8A CD14 LYZ S100A8 S100A9 HBB HBA1 MS4A1 NKG7 GZMB CCR7 FCGR3A",
    "integumentary": "KRT1 KRT10 KRT14 KRT5 LOR FLG IVL DSC1 KRT2 SPRR1A LCE1A DCD",
    "muscular": "ACTA1 MYH1 MYH2 MYH7 CKM MB TNNT1 TNNT3 TTN MYL1 MYLPF DES NEB",
    "nervous": "GFAP SNAP25 MBP SYT1 GAD1 NEFL PLP1 OLIG2 AQP4 SLC17A7 GRIN1 STMN2 CAMK2A NRGN",
    "respiratory": "SFTPC SFTPB SFTPA1 SFTPA2 AGER NAPSA SCGB1A1 SCGB3A1 FOXJ1 MUC5B LAMP3",
    "urogenital": "UMOD SLC34A1 NPHS1 NPHS2 PAX8 PAX2 UPK1B UPK3A UPK2 PRM1 PRM2 TNP1",
}
_HOUSEKEEPING = _words(
    "GAPDH ACTB B2M EEF1A1 RPLP0 RPL13A RPS18 TPT1 FTL FTH1 TMSB4X UBC HSP90AB1 PPIA TUBB "
    "MALAT1 NEAT1 EEF2 RPL3 RPS6 PKM ENO1 LDHA HNRNPA1 YWHAZ"
)
_PROLIFERATION = _words("MKI67 TOP2A CCNB1 CDK1 BIRC5 MCM2 PCNA E2F1 AURKA CENPF TYMS")
_TISSUE_CONTEXT = _words("HBB HBA1 HBA2 COL1A2 COL3A1 SPARC IGFBP7 C7 MGP CD74 HLA-DRA")
_OTHER_REAL = _words(
    "TP53 MYC EGFR KRAS PTEN RB1 CDKN1A BRCA1 BRCA2 VEGFA HIF1A STAT3 NFKB1 JUN FOS EGR1 IL6 "
    "TNF IL1B CXCL8 CCL2 NOTCH1 WNT5A CTNNB1 SMAD4 TGFB1 MTOR AKT1 PIK3CA BRAF NRAS MAPK1 MAPK3 "
    "ATM CHEK2 MDM2 BCL2 BAX CASP3 VIM CDH1 CDH2 SNAI1 ZEB1 TWIST2 HLA-A HLA-B HLA-C IFIT1 "
    "ISG15 MX1 STAT1 IRF7 HSPA1A HSPA5 ATF4 DDIT3 SQSTM1 LMNA NPM1 NCL HMGB1 TERT DNMT1 EZH2 "
    "KMT2A ARID1A SMARCA4 CREBBP EP300 YAP1 SOX4 KLF4 POU5F1 NANOG LIN28A INS GCG "
    "H19 MEG3 HOTAIR PVT1 GAS5 SNHG1 KCNQ1OT1 TUG1 RN7SK RN7SL1 RNU1-1 RNU2-1 SNORD3A MIR21 "
    "GAPDHP1 PTENP1 EEF1A1P5 RPL13AP5"
)
_MITOCHONDRIAL: dict[str, int] = {  # gene -> exon length (bp), in chrM order
    "MT-RNR1": 954, "MT-RNR2": 1559, "MT-ND1": 956, "MT-ND2": 1042, "MT-CO1": 1542,
    "MT-CO2": 684, "MT-ATP8": 207, "MT-ATP6": 681, "MT-CO3": 784, "MT-ND3": 346,
    "MT-ND4L": 297, "MT-ND4": 1378, "MT-ND5": 1812, "MT-ND6": 525, "MT-CYB": 1141,
}  # fmt: skip
_Y_LINKED = _words("RPS4Y1 DDX3Y KDM5D UTY EIF1AY ZFY USP9Y")
# Pseudo-autosomal genes: annotated on chrX and again as `<id>.<v>_PAR_Y` copies on chrY.
_PSEUDOAUTOSOMAL = ("PLCXD1", "CD99", "SHOX")
# Ids and chromosomes of a few well-known genes, so a person recognizes them; the rest get
# generated ids on a chromosome drawn at random.
_KNOWN_GENES: dict[str, tuple[str, str]] = {
    "TP53": ("ENSG00000141510", "chr17"), "GAPDH": ("ENSG00000111640", "chr12"),
    "ACTB": ("ENSG00000075624", "chr7"), "ALB": ("ENSG00000163631", "chr4"),
    "EGFR": ("ENSG00000146648", "chr7"), "MYC": ("ENSG00000136997", "chr8"),
    "BRCA1": ("ENSG00000012048", "chr17"), "BRCA2": ("ENSG00000139618", "chr13"),
    "KRAS": ("ENSG00000133703", "chr12"), "PTEN": ("ENSG00000171862", "chr10"),
    "XIST": ("ENSG00000229807", "chrX"), "MALAT1": ("ENSG00000251562", "chr11"),
    "PTPRC": ("ENSG00000081237", "chr1"), "CD4": ("ENSG00000010610", "chr12"),
    "GFAP": ("ENSG00000131095", "chr17"), "ESR1": ("ENSG00000091831", "chr6"),
    "B2M": ("ENSG00000166710", "chr15"), "AR": ("ENSG00000169083", "chrX"),
    "KLK3": ("ENSG00000142515", "chr19"), "HBB": ("ENSG00000244734", "chr11"),
    "INS": ("ENSG00000254647", "chr11"), "VIM": ("ENSG00000026025", "chr10"),
    "CDH1": ("ENSG00000039068", "chr16"), "EPCAM": ("ENSG00000119888", "chr2"),
    "EEF1A1": ("ENSG00000156508", "chr6"), "KRT14": ("ENSG00000186847", "chr17"),
    "CD19": ("ENSG00000177455", "chr16"), "PLCXD1": ("ENSG00000182378", "chrX"),
    "CD99": ("ENSG00000002586", "chrX"), "SHOX": ("ENSG00000185960", "chrX"),
    "MT-RNR1": ("ENSG00000211459", "chrM"), "MT-RNR2": ("ENSG00000210082", "chrM"),
    "MT-ND1": ("ENSG00000198888", "chrM"), "MT-ND2": ("ENSG00000198763", "chrM"),
    "MT-CO1": ("ENSG00000198804", "chrM"), "MT-CO2": ("ENSG00000198712", "chrM"),
    "MT-ATP8": ("ENSG00000228253", "chrM"), "MT-ATP6": ("ENSG00000198899", "chrM"),
    "MT-CO3": ("ENSG00000198938", "chrM"), "MT-ND3": ("ENSG00000198840", "chrM"),
    "MT-ND4L": ("ENSG00000212907", "chrM"), "MT-ND4": ("ENSG00000198886", "chrM"),
    "MT-ND5": ("ENSG00000198786", "chrM"), "MT-ND6": ("ENSG00000198695", "chrM"),
    "MT-CYB": ("ENSG00000198727", "chrM"),
}  # fmt: skip
_REAL_BIOTYPES: dict[str, str] = {
    **dict.fromkeys(_words("MALAT1 NEAT1 XIST H19 MEG3 HOTAIR PVT1 GAS5 SNHG1 KCNQ1OT1"), "lncRNA"),
    "TUG1": "lncRNA",
    **dict.fromkeys(_words("GAPDHP1 PTENP1 EEF1A1P5 RPL13AP5"), "processed_pseudogene"),
    "MT-RNR1": "Mt_rRNA", "MT-RNR2": "Mt_rRNA", "RN7SK": "misc_RNA", "RN7SL1": "misc_RNA",
    "RNU1-1": "snRNA", "RNU2-1": "snRNA", "SNORD3A": "snoRNA", "MIR21": "miRNA",
}  # fmt: skip
# Biotype mix of all genes (GENCODE names); generated genes fill what the real ones leave.
_BIOTYPE_MIX: dict[str, float] = {
    "protein_coding": 0.70, "lncRNA": 0.16, "processed_pseudogene": 0.055,
    "unprocessed_pseudogene": 0.015, "misc_RNA": 0.02, "snRNA": 0.015, "snoRNA": 0.01,
    "miRNA": 0.01, "TEC": 0.005,
}  # fmt: skip
_SINGLE_EXON_BIOTYPES = frozenset(
    {"processed_pseudogene", "misc_RNA", "snRNA", "snoRNA", "miRNA", "Mt_rRNA"}
)
# ARCHS4's repeated symbols mostly come from Rfam families annotated many times over.
_FAMILY_SYMBOL = {"misc_RNA": "Y_RNA", "snRNA": "U6", "snoRNA": "U3"}
_CHROMOSOMES: tuple[str, ...] = (*(f"chr{i}" for i in range(1, 23)), "chrX", "chrY", "chrM")
# Relative gene density of each chromosome, roughly as in GENCODE (chrY/chrM get their genes
# from the named lists above, so they take few or no generated ones).
_CHROMOSOME_WEIGHT: tuple[float, ...] = (
    2000, 1250, 1080, 750, 880, 1040, 930, 690, 780, 740, 1310, 1040, 320, 610, 600, 860, 1190,
    270, 1470, 550, 240, 450, 840, 15, 0,
)  # fmt: skip
_PAR1_END = 2_781_479  # GRCh38: PAR1 spans chrX/chrY 10,001-2,781,479 on both

# --- tunable fractions ------------------------------------------------------------------------

_DUPLICATED_SYMBOL_FRACTION = 0.03
_PLACEHOLDER_SYMBOL_FRACTION = 0.02
_MISSING_FROM_GTF_FRACTION = 0.03
_GTF_ONLY_FRACTION = 0.01  # GENCODE has genes ARCHS4 lacks; the pipeline must ignore them
_ALL_ZERO_GENE_FRACTION = 0.01
_LOW_QUALITY_FRACTION = 0.02
_MULTI_SERIES_FRACTION = 0.03
_UNINFORMATIVE_STUDY_PROBABILITY = 0.22
_UNINFORMATIVE_SAMPLE_PROBABILITY = 0.03
_SINGLE_CELL_STUDY_PROBABILITY = 0.04
_LISTED_IN_DOWNLOAD_PROBABILITY = 0.5
# Real libraries hold ~5-40M reads over ~60K genes; scale so per-gene counts look real.
_READS_PER_GENE = 20e6 / 60_000
_EXPRESSION_CHUNK_ROWS = 2000
_EXPRESSION_CHUNK_COLUMNS = 100
_GZIP_LEVEL = 4


class _Stream(IntEnum):
    """One independent random stream per purpose, so adding draws to one leaves others alone."""

    STUDIES = 1
    GENES = 2
    GENE_MODELS = 3
    GTF_IDS = 4
    PROGRAMS = 5
    BIOSOURCE_EFFECT = 6
    STUDY_EFFECT = 7
    STUDY_TEXT = 8
    SAMPLE_COUNTS = 9
    DOWNLOAD_LISTS = 10
    QC_FIELDS = 11


def _rng(seed: int, stream: _Stream, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(stream), *index])


# --- public API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPaths:
    h5: Path  # <out>/human_gene_v2.6_demo.h5   (name includes the layout version)
    gtf: Path  # <out>/gencode.demo.annotation.gtf.gz
    truth: Path  # <out>/labels_truth.tsv
    labels_dir: Path  # <out>/labels   (ARCHS4 download layout)


def write_demo_dataset(
    out_dir: Path,
    *,
    n_samples: int = 4000,
    n_genes: int = 2500,
    seed: int = 7,
    layout: str = "v2.6",
    block_size: int = 1000,
) -> DemoPaths:
    """Write the demo ARCHS4 file, its GTF, the true labels and the label download directory.

    Same arguments give identical expression data and identical text files. Each output is
    written under a temporary name and renamed into place, so a crash never leaves a half file
    under a final name.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    if n_samples < 1 or n_genes < 1 or block_size < 1:
        raise ValueError("n_samples, n_genes and block_size must be positive")
    if seed < 0:
        raise ValueError("seed must be non-negative (it keys numpy SeedSequence streams)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = DemoPaths(
        h5=out_dir / f"human_gene_{layout}_demo.h5",
        gtf=out_dir / "gencode.demo.annotation.gtf.gz",
        truth=out_dir / "labels_truth.tsv",
        labels_dir=out_dir / "labels",
    )
    genes = build_gene_table(n_genes, seed)
    plan = plan_samples(n_samples, seed)
    _write_gtf(paths.gtf, genes, seed)
    preview_rows = _preview_gene_rows(genes)
    preview_counts = _write_h5(
        paths.h5,
        genes,
        plan,
        layout=layout,
        seed=seed,
        block_size=block_size,
        preview_rows=preview_rows,
    )
    _write_truth(paths.truth, plan)
    preview_symbols = [genes.symbol[row] for row in preview_rows]
    _write_label_lists(paths.labels_dir, plan, seed, preview_symbols, preview_counts)
    return paths


# --- genes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptModel:
    """One transcript: exons as (start, end) offsets from the gene start, ascending, inclusive."""

    biotype: str
    exons: tuple[tuple[int, int], ...]
    cds: tuple[int, int] | None  # CDS as [start, end) in spliced, 5'->3' coordinates

    @property
    def exonic_length(self) -> int:
        return sum(end - start + 1 for start, end in self.exons)


@dataclass(frozen=True)
class GeneTable:
    """The annotated genes: the first `n_h5` rows are the h5's genes in file order (sorted by
    Ensembl id); the rest exist only in the GTF."""

    n_h5: int
    ensembl_id: list[str]  # without version, as ARCHS4 stores it
    version: np.ndarray
    symbol: list[str]
    biotype: list[str]
    chrom: list[str]
    strand: list[str]
    start: np.ndarray  # 1-based genomic start of the gene
    transcripts: list[tuple[TranscriptModel, ...]]
    length_bp: np.ndarray  # exonic length of the longest transcript
    in_gtf: np.ndarray
    pseudoautosomal: np.ndarray  # also annotated on chrY as a `_PAR_Y` copy
    role: list[str]  # housekeeping / marker / proliferation / context / y_linked / ... / ""


def build_gene_table(n_genes: int, seed: int) -> GeneTable:
    """Genes with ids, symbols, biotypes, positions and transcript models."""
    rng = _rng(seed, _Stream.GENES)
    n_extra = round(_GTF_ONLY_FRACTION * n_genes)
    real = _real_gene_selection(n_genes)
    real_symbols = [symbol for symbol, _ in real]
    made_up_biotypes = _made_up_biotypes(real_symbols, n_genes - len(real) + n_extra, rng)
    symbols = real_symbols + _made_up_symbols(made_up_biotypes, real_symbols, rng)
    biotypes = [_REAL_BIOTYPES.get(s, "protein_coding") for s in real_symbols] + made_up_biotypes
    roles = [role for _, role in real] + [""] * len(made_up_biotypes)
    n_total = n_genes + n_extra
    ids = _ensembl_ids(symbols, rng)
    is_extra = np.zeros(n_total, dtype=bool)
    is_extra[n_genes:] = True
    _duplicate_and_placeholder_symbols(
        symbols, biotypes=biotypes, ids=ids, roles=roles, is_extra=is_extra, rng=rng
    )

    # h5 genes in Ensembl id order, then the GTF-only genes
    order = sorted(range(n_genes), key=lambda g: ids[g]) + list(range(n_genes, n_total))
    ids = [ids[g] for g in order]
    symbols = [symbols[g] for g in order]
    biotypes = [biotypes[g] for g in order]
    roles = [roles[g] for g in order]

    chroms = _chromosomes(symbols, roles, rng)
    model_rng = _rng(seed, _Stream.GENE_MODELS)
    transcripts = [
        _gene_model(biotype, model_rng, _MITOCHONDRIAL.get(symbol))
        for biotype, symbol in zip(biotypes, symbols, strict=True)
    ]
    strands = ["-" if flip else "+" for flip in model_rng.random(n_total) < 0.5]
    pseudoautosomal = np.array([s in _PSEUDOAUTOSOMAL for s in symbols], dtype=bool)
    starts = _place_genes(chroms, symbols, transcripts, pseudoautosomal, model_rng)
    in_gtf = np.ones(n_total, dtype=bool)
    droppable = np.flatnonzero(~pseudoautosomal[:n_genes])
    n_missing = min(round(_MISSING_FROM_GTF_FRACTION * n_genes), droppable.size)
    in_gtf[rng.choice(droppable, size=n_missing, replace=False)] = False
    return GeneTable(
        n_h5=n_genes,
        ensembl_id=ids,
        version=rng.integers(1, 20, size=n_total),
        symbol=symbols,
        biotype=biotypes,
        chrom=chroms,
        strand=strands,
        start=starts,
        transcripts=transcripts,
        length_bp=np.array([max(t.exonic_length for t in ts) for ts in transcripts], np.int64),
        in_gtf=in_gtf,
        pseudoautosomal=pseudoautosomal,
        role=roles,
    )


def _made_up_biotypes(
    real_symbols: Sequence[str], n_made_up: int, rng: np.random.Generator
) -> list[str]:
    """Biotypes of the generated genes, so that with the (mostly coding) real genes the whole
    table follows `_BIOTYPE_MIX`."""
    names = list(_BIOTYPE_MIX)
    real = Counter(_REAL_BIOTYPES.get(s, "protein_coding") for s in real_symbols)
    wanted = np.array([_BIOTYPE_MIX[b] for b in names]) * (len(real_symbols) + n_made_up)
    room = np.maximum(wanted - np.array([real[b] for b in names]), 0.0) + 1e-9
    return [names[i] for i in rng.choice(len(names), size=n_made_up, p=room / room.sum())]


def _real_gene_selection(n_genes: int) -> list[tuple[str, str]]:
    """(symbol, role) of the real genes used, at most half of the genes, most important first:
    pseudo-autosomal, mitochondrial, sex-linked, housekeeping, then label markers taken
    round-robin so every label keeps some when there is little room."""
    ordered: dict[str, str] = {}

    def take(symbols: Sequence[str], role: str) -> None:
        for symbol in symbols:
            ordered.setdefault(symbol, role)

    take(_PSEUDOAUTOSOMAL, "pseudoautosomal")
    take(list(_MITOCHONDRIAL), "mitochondrial")
    take(["XIST"], "x_inactivation")
    take(_Y_LINKED, "y_linked")
    take(_HOUSEKEEPING, "housekeeping")
    marker_lists = [_LABEL_MARKERS[label].split() for label in ALL_LABELS]
    for rank in range(max(len(markers) for markers in marker_lists)):
        take([markers[rank] for markers in marker_lists if rank < len(markers)], "marker")
    take(_PROLIFERATION, "proliferation")
    take(_TISSUE_CONTEXT, "context")
    take(_OTHER_REAL, "other")
    return list(ordered.items())[: n_genes // 2]


# Templates for made-up symbols in the style of HGNC names; {pc} is a protein-coding symbol.
_SYMBOL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "protein_coding": (
        "ZNF{n3}", "TMEM{n3}", "CCDC{n3}", "FAM{n3}{L}", "SLC{n2}A{n1}", "KLHL{n2}", "ANKRD{n2}",
        "LRRC{n2}", "C{chr}orf{n2}", "PRR{n2}", "TBC1D{n2}", "RNF{n3}", "ZBTB{n2}", "USP{n2}",
        "KIAA{n4}", "SPATA{n2}", "TTC{n2}", "WDR{n2}", "ARHGAP{n2}", "ZC3H{n2}", "DNAJC{n2}",
        "GPR{n3}", "OR{n1}{L}{n1}", "PCDHB{n1}", "TRIM{n2}", "KCNJ{n1}", "PPP1R{n2}"),
    "lncRNA": ("LINC{n5}", "{pc}-AS1", "{pc}-DT", "AC{n6}.{n1}", "AL{n6}.{n1}"),
    "processed_pseudogene": ("RPL{n2}P{n2}", "RPS{n2}P{n2}", "{pc}P{n1}"),
    "unprocessed_pseudogene": ("{pc}P{n1}", "{pc}P{n2}"),
    "misc_RNA": ("RN7SL{n3}P", "RN7SKP{n3}", "RNY{n1}P{n2}"),
    "snRNA": ("RNU6-{n3}P", "RNU1-{n2}P", "RNU4-{n2}P"),
    "snoRNA": ("SNORD{n3}", "SNORA{n2}"),
    "miRNA": ("MIR{n4}", "MIR{n3}{L}"),
    "TEC": ("AC{n6}.{n1}", "AL{n6}.{n1}"),
}  # fmt: skip


_MAX_SYMBOL_DRAWS = 50


def _made_up_symbols(
    biotypes: Sequence[str], real_symbols: Sequence[str], rng: np.random.Generator
) -> list[str]:
    """Unique HGNC-style symbols; antisense lncRNAs and pseudogenes are named after protein
    coding genes. Pools are lists in a fixed order, never iterated sets, whose order would
    follow Python's per-process string hashing."""
    taken = set(real_symbols)
    protein_coding = [s for s in real_symbols if _REAL_BIOTYPES.get(s) is None] or ["GENE"]
    symbols: list[str] = []
    for biotype in biotypes:
        templates = _SYMBOL_TEMPLATES[biotype]
        for draw in itertools.count(1):
            fields = {
                "n1": rng.integers(1, 10), "n2": rng.integers(1, 60), "n3": rng.integers(100, 800),
                "n4": rng.integers(1000, 2000), "n5": f"{rng.integers(100, 2900):05d}",
                "n6": f"{rng.integers(1000, 999_999):06d}", "L": "ABCDEFGHJK"[rng.integers(10)],
                "chr": rng.integers(1, 23), "pc": protein_coding[rng.integers(len(protein_coding))],
            }  # fmt: skip
            symbol = templates[rng.integers(len(templates))].format(**fields)
            if symbol not in taken:
                break
            if draw == _MAX_SYMBOL_DRAWS:
                # The biotype's templates are nearly used up (a few hundred names each for
                # small RNAs, reached near 40,000 genes): number the last draw instead.
                numbered = (f"{symbol}-{n}" for n in itertools.count(2))
                symbol = next(name for name in numbered if name not in taken)
                break
        taken.add(symbol)
        symbols.append(symbol)
        if biotype == "protein_coding":
            protein_coding.append(symbol)
    return symbols


def _ensembl_ids(symbols: Sequence[str], rng: np.random.Generator) -> list[str]:
    known = {_KNOWN_GENES[s][0] for s in symbols if s in _KNOWN_GENES}
    pool = rng.choice(np.arange(1, 320_000), size=len(symbols) + len(known), replace=False)
    fresh = (f"ENSG{number:011d}" for number in pool if f"ENSG{number:011d}" not in known)
    return [_KNOWN_GENES[s][0] if s in _KNOWN_GENES else next(fresh) for s in symbols]


def _duplicate_and_placeholder_symbols(
    symbols: list[str],
    *,
    biotypes: Sequence[str],
    ids: Sequence[str],
    roles: Sequence[str],
    is_extra: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Give ~3 % of the h5 genes a symbol another gene also has (different ids, same symbol),
    and ~2 % their own Ensembl id as symbol, as ARCHS4 does for unnamed genes."""
    n_h5 = int((~is_extra).sum())
    generated = [g for g in range(n_h5) if not roles[g]]
    rng.shuffle(generated)
    n_duplicated = round(_DUPLICATED_SYMBOL_FRACTION * n_h5)
    n_placeholder = round(_PLACEHOLDER_SYMBOL_FRACTION * n_h5)
    # same-biotype genes side by side, so groups rarely mix biotypes
    duplicated = sorted(generated[:n_duplicated], key=lambda g: biotypes[g])
    # Groups of two or three genes share the first member's symbol, or an Rfam family name
    # like Y_RNA when the first member is a small RNA.
    position = 0
    while position + 1 < len(duplicated):
        size = 3 if rng.random() < 0.25 and position + 3 <= len(duplicated) else 2
        group = duplicated[position : position + size]
        shared = _FAMILY_SYMBOL.get(biotypes[group[0]], symbols[group[0]])
        for gene in group:
            symbols[gene] = shared
        position += size
    # Unnamed genes are mostly lncRNAs, pseudogenes and TECs.
    rest = generated[n_duplicated:]
    unnamed_first = sorted(rest, key=lambda g: biotypes[g] == "protein_coding")
    for gene in unnamed_first[:n_placeholder]:
        symbols[gene] = ids[gene]


def _chromosomes(
    symbols: Sequence[str], roles: Sequence[str], rng: np.random.Generator
) -> list[str]:
    weights = np.array(_CHROMOSOME_WEIGHT, dtype=float)
    drawn = rng.choice(len(_CHROMOSOMES), size=len(symbols), p=weights / weights.sum())
    chroms = []
    for symbol, role, index in zip(symbols, roles, drawn, strict=True):
        if symbol in _KNOWN_GENES:
            chroms.append(_KNOWN_GENES[symbol][1])
        elif role == "y_linked":
            chroms.append("chrY")
        else:
            chroms.append(_CHROMOSOMES[index])
    return chroms


_ALTERNATIVE_TRANSCRIPT_TYPES = (
    "protein_coding",
    "retained_intron",
    "nonsense_mediated_decay",
    "protein_coding_CDS_not_defined",
)


def _gene_model(
    biotype: str, rng: np.random.Generator, mitochondrial_length: int | None = None
) -> tuple[TranscriptModel, ...]:
    """Transcripts of one gene: candidate exons laid out along the gene, a canonical transcript
    skipping the cassette exons, and alternative ones that include some of them, skip others,
    retain an intron or end at an earlier polyA site. Offsets are in transcription order
    (0 = transcription start); `_place_genes` never needs to know the strand."""
    if mitochondrial_length is not None:
        return (TranscriptModel(biotype, ((0, mitochondrial_length - 1),), None),)
    if biotype in _SINGLE_EXON_BIOTYPES:
        length = {
            "processed_pseudogene": int(rng.integers(300, 2000)),
            "misc_RNA": int(rng.integers(80, 350)),
            "snRNA": int(rng.integers(100, 200)),
            "snoRNA": int(rng.integers(70, 250)),
            "miRNA": int(rng.integers(60, 110)),
        }.get(biotype, int(rng.integers(100, 1000)))
        return (TranscriptModel(biotype, ((0, length - 1),), None),)
    coding = biotype == "protein_coding"
    if coding:
        n_candidates = int(np.clip(1 + rng.poisson(7), 1, 18))
        n_transcripts = int(np.clip(1 + rng.binomial(5, 0.4), 1, 6))
    elif biotype == "lncRNA":
        n_candidates = int(rng.integers(1, 7))
        n_transcripts = int(rng.integers(1, 4))
    else:
        n_candidates = int(rng.integers(1, 5))
        n_transcripts = 1
    exon_lengths = np.clip(rng.lognormal(np.log(140), 0.5, n_candidates), 40, 2000).astype(int)
    exon_lengths[0] = int(rng.integers(80, 400))
    exon_lengths[-1] = int(np.clip(rng.lognormal(np.log(1000), 0.7), 150, 8000))  # 3' UTR
    introns = np.clip(rng.lognormal(np.log(1500), 1.2, n_candidates), 80, 60_000).astype(int)
    starts = np.concatenate(([0], np.cumsum(exon_lengths[:-1] + introns[:-1])))
    candidates = [(int(s), int(s + n - 1)) for s, n in zip(starts, exon_lengths, strict=True)]
    internal = np.arange(1, n_candidates - 1)
    cassette = set(internal[rng.random(internal.size) < 0.2].tolist())
    canonical = [i for i in range(n_candidates) if i not in cassette][:15]
    chosen: list[list[tuple[int, int]]] = [[candidates[i] for i in canonical]]
    for _ in range(n_transcripts - 1):
        keep = [
            i
            for i in range(n_candidates)
            if rng.random() < (0.5 if i in cassette else 0.8) or i in (0, n_candidates - 1)
        ]
        first = int(rng.integers(0, max(1, len(keep) // 3)))  # alternative promoter
        exons = [candidates[i] for i in keep[first:]][:15]
        if len(exons) > 2 and rng.random() < 0.25:  # retained intron
            at = int(rng.integers(0, len(exons) - 1))
            exons[at : at + 2] = [(exons[at][0], exons[at + 1][1])]
        if rng.random() < 0.3:  # earlier polyA site shortens the last exon
            start, end = exons[-1]
            exons[-1] = (start, start + max(30, int((end - start) * rng.uniform(0.2, 0.8))))
        if exons not in chosen:
            chosen.append(exons)
    models = []
    for k, exons in enumerate(chosen):
        kind = biotype
        if coding and k > 0:
            kind = str(rng.choice(_ALTERNATIVE_TRANSCRIPT_TYPES, p=[0.55, 0.2, 0.1, 0.15]))
        spliced = sum(end - start + 1 for start, end in exons)
        cds = None
        if kind in ("protein_coding", "nonsense_mediated_decay") and spliced > 400:
            cds_start = int(rng.integers(30, 150))
            cds_end = cds_start + 3 * ((spliced - cds_start - int(rng.integers(60, 200))) // 3)
            cds = (cds_start, cds_end) if cds_end - cds_start >= 90 else None
        models.append(TranscriptModel(kind, tuple(exons), cds))
    return tuple(models)


def _place_genes(
    chroms: Sequence[str],
    symbols: Sequence[str],
    transcripts: Sequence[tuple[TranscriptModel, ...]],
    pseudoautosomal: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """1-based gene starts: genes laid out one after another with intergenic gaps, in random
    order per chromosome; pseudo-autosomal genes first on chrX (inside PAR1, where their chrY
    copies get the same coordinates), mitochondrial genes in their chrM order."""
    spans = np.array([max(end for t in ts for _, end in t.exons) + 1 for ts in transcripts])
    starts = np.zeros(len(chroms), dtype=np.int64)
    for chrom in _CHROMOSOMES:
        genes = [g for g, c in enumerate(chroms) if c == chrom]
        if not genes:
            continue
        if chrom == "chrM":
            mitochondrial_order = list(_MITOCHONDRIAL)
            genes.sort(key=lambda g: mitochondrial_order.index(symbols[g]))
            cursor = 577  # the 15 genes (~14 kb) fit in chrM's 16,569 bp
            for gene in genes:
                starts[gene] = cursor
                cursor += spans[gene] + int(rng.integers(1, 60))
            continue
        genes = [genes[i] for i in rng.permutation(len(genes))]
        genes.sort(key=lambda g: not pseudoautosomal[g])
        cursor = 60_000 + int(rng.integers(0, 100_000))
        for gene in genes:
            if chrom in ("chrX", "chrY") and not pseudoautosomal[gene]:
                cursor = max(cursor, _PAR1_END + 20_000)
            starts[gene] = cursor
            gap = rng.lognormal(np.log(15_000), 1.0)
            if pseudoautosomal[gene]:
                gap = min(gap, 20_000.0)  # stay inside PAR1
            cursor += spans[gene] + int(gap)
    return starts


# --- studies, samples and their labels ---------------------------------------------------------


@dataclass(frozen=True)
class SamplePlan:
    """Who every sample is: its study, biosource(s), condition and true labels. Every field is
    a per-sample or per-study vector, so the plan stays small whatever the size."""

    gsm: list[str]
    study: np.ndarray  # study index of each sample; samples of a study are contiguous
    biosource: np.ndarray  # index into BIOSOURCES
    condition: np.ndarray  # 0 control, 1 perturbed (treatment, knockdown or disease)
    male: np.ndarray
    named_in_metadata: np.ndarray  # the metadata text names the sample's tissue / cell line
    depth: np.ndarray  # library size relative to a typical library (median ~1)
    study_gse: list[str]
    study_superseries: list[str]  # "" or the GSE of a SuperSeries the study belongs to
    study_start: np.ndarray  # first sample of each study
    study_size: np.ndarray
    study_submitted: list[date]
    study_single_cell: np.ndarray

    @property
    def n_samples(self) -> int:
        return len(self.gsm)

    def series_id(self, sample: int) -> str:
        study = int(self.study[sample])
        superseries = self.study_superseries[study]
        own = self.study_gse[study]
        return f"{own},{superseries}" if superseries else own

    def labels_of(self, sample: int) -> tuple[str, ...]:
        return BIOSOURCES[int(self.biosource[sample])].labels

    def label_matrix(self) -> np.ndarray:
        """Multi-hot truth, samples x ALL_LABELS."""
        per_source = np.zeros((len(BIOSOURCES), len(ALL_LABELS)), dtype=bool)
        for b, source in enumerate(BIOSOURCES):
            per_source[b, [_LABEL_INDEX[label] for label in source.labels]] = True
        return per_source[self.biosource]


def plan_samples(n_samples: int, seed: int) -> SamplePlan:
    """Studies of heavy-tailed size, their biosources (so that label frequencies follow
    `_LABEL_SHARE`), accession numbers, dates, conditions and library sizes."""
    rng = _rng(seed, _Stream.STUDIES)
    sizes = _study_sizes(n_samples, rng)
    n_studies = sizes.size
    sources, informative = _assign_biosources(sizes, rng)
    study_start = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    study = np.repeat(np.arange(n_studies), sizes)

    biosource = np.empty(n_samples, dtype=np.int32)
    condition = np.zeros(n_samples, dtype=np.int8)
    for s in range(n_studies):
        first, size = int(study_start[s]), int(sizes[s])
        split = first + (size + 1) // 2  # a second biosource takes the second half
        biosource[first:split] = sources[s][0]
        biosource[split : first + size] = sources[s][-1]
        if rng.random() < 0.7:  # the other studies profile a single condition
            replicates = int(rng.integers(1, 5))
            condition[first : first + size] = (np.arange(size) // replicates) % 2
    male = _sample_sex(biosource, rng)
    named = np.repeat(informative, sizes) & (
        rng.random(n_samples) >= _UNINFORMATIVE_SAMPLE_PROBABILITY
    )

    depth = np.repeat(rng.normal(0.0, 0.45, n_studies), sizes) + rng.normal(0.0, 0.3, n_samples)
    low_quality = rng.random(n_samples) < _LOW_QUALITY_FRACTION
    tiny = np.exp(rng.uniform(np.log(5e-4), np.log(1e-2), n_samples))
    depth = np.exp(depth) * np.where(low_quality, tiny, 1.0)

    gsm_numbers = _accession_numbers(sizes, rng)
    # GSE numbers stay in the real range (~10,000-250,000) whatever the number of studies;
    # all even, so a SuperSeries can take the odd number after one
    gse_gap = max(2, 120_000 // n_studies)
    gse_numbers = 10_000 + np.cumsum(rng.integers(1, gse_gap, n_studies) * 2)
    superseries = _superseries(sizes, gse_numbers, rng)
    first_day = date(2011, 1, 3)
    span = (date(2024, 6, 28) - first_day).days
    days = np.sort(rng.integers(0, span, n_studies))
    return SamplePlan(
        gsm=[f"GSM{number}" for number in gsm_numbers],
        study=study,
        biosource=biosource,
        condition=condition,
        male=male,
        named_in_metadata=named,
        depth=depth,
        study_gse=[f"GSE{number}" for number in gse_numbers],
        study_superseries=superseries,
        study_start=study_start,
        study_size=sizes,
        study_submitted=[first_day + timedelta(days=int(d)) for d in days],
        study_single_cell=rng.random(n_studies) < _SINGLE_CELL_STUDY_PROBABILITY,
    )


def label_sample_counts(plan: SamplePlan) -> dict[str, int]:
    """Number of samples carrying each label."""
    return dict(zip(ALL_LABELS, plan.label_matrix().sum(axis=0).tolist(), strict=True))


def _study_sizes(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Log-normal sizes: most studies have 2-20 samples, ~1 % have 100 or more."""
    cap = max(2, n_samples // 8)
    sizes: list[int] = []
    total = 0
    while total < n_samples:
        size = int(np.clip(round(np.exp(rng.normal(1.6, 1.3))), 2, cap))
        size = min(size, n_samples - total)
        sizes.append(size)
        total += size
    if len(sizes) > 1 and sizes[-1] < 2:  # no one-sample study at the end: merge it
        last = sizes.pop()
        sizes[-1] += last
    return np.array(sizes, dtype=np.int64)


def _assign_biosources(
    sizes: np.ndarray, rng: np.random.Generator
) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Biosources of each study, filling per-label quotas: the largest studies go first, each to
    a label with room for it (chance in proportion to the room left). Returns the biosources
    and whether each study's metadata names them; the largest study of each label always does,
    so every label is discoverable from metadata."""
    share = np.array([_LABEL_SHARE[label] for label in ALL_LABELS])
    room = share / share.sum() * sizes.sum()
    by_label = [[b for b, s in enumerate(BIOSOURCES) if label in s.labels] for label in ALL_LABELS]
    named_label = np.zeros(len(ALL_LABELS), dtype=bool)
    sources: list[tuple[int, ...]] = [()] * sizes.size
    informative = np.ones(sizes.size, dtype=bool)
    for study in np.argsort(-sizes, kind="stable"):
        size = int(sizes[study])
        fits = np.flatnonzero(room >= 0.5 * size)
        if fits.size:
            label = int(rng.choice(fits, p=room[fits] / room[fits].sum()))
        else:
            label = int(np.argmax(room))
        candidates = by_label[label]
        # Earlier entries are the commonly used ones (MCF7 before SUM159); two-label sources
        # are rarer than single-label ones.
        weights = np.array([
            0.35 if len(BIOSOURCES[b].labels) > 1 else 1.0 / (rank + 1) ** 0.7
            for rank, b in enumerate(candidates)
        ])  # fmt: skip
        picked = [candidates[rng.choice(len(candidates), p=weights / weights.sum())]]
        if size >= 4 and len(candidates) > 1 and rng.random() < 0.3:
            others = [b for b in candidates if b != picked[0]]
            picked.append(others[rng.integers(len(others))])
        sources[study] = tuple(picked)
        half = (size + 1) // 2
        for b, n in zip(picked, [half, size - half] if len(picked) > 1 else [size], strict=True):
            for name in BIOSOURCES[b].labels:
                room[_LABEL_INDEX[name]] -= n
        labels = [_LABEL_INDEX[name] for b in picked for name in BIOSOURCES[b].labels]
        informative[study] = rng.random() >= _UNINFORMATIVE_STUDY_PROBABILITY or not all(
            named_label[labels]
        )
        if informative[study]:
            named_label[labels] = True
    return sources, informative


def _sample_sex(biosource: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Donor sex for tissues; fixed per cell line (female lines for breast, cervix, ovary and
    placenta, male for prostate, alternating otherwise)."""
    line_male = np.array([
        s.labels[0] == "prostate" or (s.labels[0] not in _FEMALE_LINE_LABELS and b % 2 == 1)
        for b, s in enumerate(BIOSOURCES)
    ])  # fmt: skip
    is_line = np.array([s.kind == "cell_line" for s in BIOSOURCES])
    donor_male = rng.random(biosource.size) < 0.5
    return np.where(is_line[biosource], line_male[biosource], donor_male)


def _accession_numbers(sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Increasing GSM numbers from 1,000,000: consecutive within a study (with rare skips),
    gaps between studies."""
    steps = np.ones(int(sizes.sum()), dtype=np.int64)
    steps[rng.random(steps.size) < 0.02] = 2
    study_first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    steps[study_first] = rng.integers(1, max(2, min(3000, 5_000_000 // sizes.size)), sizes.size)
    return 1_000_000 + np.cumsum(steps) - 1


def _superseries(sizes: np.ndarray, gse_numbers: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Pairs of consecutive studies grouped under a SuperSeries until ~3 % of the samples carry
    two GSE ids (ARCHS4 writes them comma-joined). A SuperSeries gets the odd number after the
    later study's (all study numbers are even), so it never collides."""
    superseries = [""] * sizes.size
    budget = round(_MULTI_SERIES_FRACTION * sizes.sum())
    for first in rng.permutation(max(0, sizes.size - 1)):
        pair_size = int(sizes[first] + sizes[first + 1])
        if budget <= 0:
            break
        if superseries[first] or superseries[first + 1] or pair_size > budget + 2:
            continue
        superseries[first] = superseries[first + 1] = f"GSE{gse_numbers[first + 1] + 1}"
        budget -= pair_size
    return superseries


# --- sample metadata text ----------------------------------------------------------------------

_TREATMENTS = (
    ("DMSO", "JQ1 500 nM"), ("vehicle", "dexamethasone 100 nM"),
    ("untreated", "TNF-alpha 10 ng/ml"), ("untreated", "LPS 100 ng/ml"),
    ("DMSO", "doxorubicin 1 uM"), ("vehicle", "estradiol 10 nM"),
    ("normoxia", "hypoxia 1% O2"), ("untreated", "IFN-gamma 100 U/ml"),
    ("control", "TGF-beta1 5 ng/ml"), ("DMSO", "palbociclib 1 uM"),
)  # fmt: skip
_GENOTYPES = (
    ("shControl", "shRNA knockdown"), ("siControl", "siRNA knockdown"),
    ("sgNT", "CRISPR knockout"), ("empty vector", "overexpression"), ("wild type", "knockout"),
)  # fmt: skip
_DISEASE_STATES = (("healthy", "disease"), ("control", "patient"), ("normal", "tumor"))
_EXTRACT_PROTOCOLS = (
    "Total RNA was extracted with the RNeasy Mini Kit (Qiagen) according to the manufacturer's "
    "instructions.\tLibraries were prepared with the TruSeq Stranded mRNA kit (Illumina).",
    "RNA was isolated using TRIzol reagent (Invitrogen).\tPoly(A) RNA libraries were built with "
    "the NEBNext Ultra II Directional RNA Library Prep Kit.",
    "Total RNA was purified with the miRNeasy kit (Qiagen) including on-column DNase digestion."
    "\tRibosomal RNA was depleted with Ribo-Zero Gold before library construction.",
    "Cells were lysed in QIAzol and RNA extracted with chloroform.\tLibraries: KAPA mRNA "
    "HyperPrep.",
)  # fmt: skip
_DATA_PROCESSING = (
    "Reads were aligned to GRCh38 with STAR 2.7.3a\tGene counts were obtained with featureCounts"
    "\tGenome_build: GRCh38\tSupplementary_files_format_and_content: tab-delimited raw counts",
    "Adapters trimmed with Trim Galore\tTranscript abundance estimated with Salmon 1.4"
    "\tGenome_build: GRCh38 (GENCODE v33)\tSupplementary_files_format_and_content: TPM matrix",
    "Reads mapped with HISAT2 to hg19\tCounts per gene with HTSeq-count\tGenome_build: hg19",
    "bcl2fastq conversion\tkallisto quantification against GENCODE v29\tGenome_build: GRCh38",
)  # fmt: skip
# (GPL, instrument, first year used, last year used)
_PLATFORMS = (
    ("GPL11154", "Illumina HiSeq 2000", 2011, 2016),
    ("GPL16791", "Illumina HiSeq 2500", 2013, 2019),
    ("GPL18573", "Illumina NextSeq 500", 2014, 2024),
    ("GPL20301", "Illumina HiSeq 4000", 2016, 2021),
    ("GPL21290", "Illumina HiSeq 3000", 2016, 2019),
    ("GPL24676", "Illumina NovaSeq 6000", 2018, 2024),
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
    time = ("6h", "24 h", "48hr", "day 3")[rng.integers(4)]
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


# --- expression model -------------------------------------------------------------------------


@dataclass(frozen=True)
class _CountModel:
    """Everything per gene the counts depend on; per-study and per-biosource effects are
    regenerated from their own streams when a block needs them."""

    log_base: np.ndarray  # baseline log abundance common to all samples
    length_kb: np.ndarray  # longest-transcript length, the same as the GTF encodes
    expressed: np.ndarray  # False for the ~1 % of genes that are all-zero
    y_linked: np.ndarray  # chrY genes outside PAR1: silent in female samples
    xist: np.ndarray  # one-hot XIST row (all False when absent)
    dispersion: np.ndarray  # negative binomial dispersion, 0.1-0.5
    programs: np.ndarray  # (len(ALL_LABELS), genes) label marker programs
    culture: np.ndarray  # cell-line context (proliferation up, stroma/blood down)
    tissue: np.ndarray  # tissue context (stroma, blood and immune infiltrate up)


def _count_model(genes: GeneTable, seed: int) -> _CountModel:
    rng = _rng(seed, _Stream.PROGRAMS)
    n = genes.n_h5
    symbols = genes.symbol[:n]
    roles = np.array(genes.role[:n], dtype=object)
    biotypes = np.array(genes.biotype[:n], dtype=object)
    log_base = _baseline_abundance(roles, biotypes, rng)
    row_of = {symbol: g for g, symbol in enumerate(symbols)}
    generated = np.flatnonzero(roles == "")  # random program members and silent genes
    programs = np.zeros((len(ALL_LABELS), n))
    for label_index, label in enumerate(ALL_LABELS):
        markers = [row_of[s] for s in _LABEL_MARKERS[label].split() if s in row_of]
        programs[label_index, markers] = np.clip(rng.normal(3.0, 0.8, len(markers)), 1.5, None)
        up = rng.choice(
            generated, size=min(generated.size, max(3, round(0.015 * n))), replace=False
        )
        down = rng.choice(
            generated, size=min(generated.size, max(1, round(0.007 * n))), replace=False
        )
        programs[label_index, up] += rng.normal(1.6, 0.6, up.size)
        programs[label_index, down] -= np.abs(rng.normal(1.3, 0.4, down.size))
    culture = np.zeros(n)
    tissue = np.zeros(n)
    culture[[row_of[s] for s in _PROLIFERATION if s in row_of]] = 1.5
    tissue[[row_of[s] for s in _TISSUE_CONTEXT if s in row_of]] = 1.5
    context = rng.choice(generated, size=min(generated.size, round(0.02 * n)), replace=False)
    tissue[context] += rng.normal(0.0, 0.8, context.size)
    culture -= 0.5 * tissue
    expressed = np.ones(n, dtype=bool)
    silent = rng.choice(
        generated, size=min(generated.size, round(_ALL_ZERO_GENE_FRACTION * n)), replace=False
    )
    expressed[silent] = False
    # Low-abundance genes are noisier between samples, as in real RNA-seq.
    dispersion = np.clip(0.1 + 0.4 / (1.0 + np.exp(log_base)) + rng.normal(0, 0.03, n), 0.1, 0.5)
    return _CountModel(
        log_base=log_base,
        length_kb=genes.length_bp[:n] / 1000.0,
        expressed=expressed,
        y_linked=np.array([c == "chrY" for c in genes.chrom[:n]]) & ~genes.pseudoautosomal[:n],
        xist=np.array([s == "XIST" for s in symbols]),
        dispersion=dispersion,
        programs=programs,
        culture=culture,
        tissue=tissue,
    )


def _baseline_abundance(
    roles: np.ndarray, biotypes: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Log abundance common to all samples. Left-skewed, as real expression is: a ceiling
    that housekeeping and mitochondrial genes sit above, and a long tail of low genes; a
    third of the generated genes are barely expressed anywhere (mostly zeros), and
    non-coding biotypes sit lower. Label markers start low so their programs decide."""
    offset = {"protein_coding": 0.0, "lncRNA": -2.5, "processed_pseudogene": -3.5,
              "unprocessed_pseudogene": -3.0, "TEC": -3.0}  # fmt: skip
    log_base = (
        np.array([offset.get(b, -1.5) for b in biotypes]) + 2.0 - rng.gamma(2.0, 1.3, roles.size)
    )
    barely = (roles == "") & (rng.random(roles.size) < 0.35)
    log_base[barely] -= 4.5
    log_base[roles == "marker"] -= 1.5
    for role, level in (("housekeeping", 4.5), ("mitochondrial", 5.0)):
        chosen = roles == role
        log_base[chosen] = level + rng.normal(0.0, 0.5, int(chosen.sum()))
    return log_base


def _biosource_effect(seed: int, biosource: int, n_genes: int) -> np.ndarray:
    """What sets one cell line or tissue apart from the others of its label (~1 % of genes)."""
    rng = _rng(seed, _Stream.BIOSOURCE_EFFECT, biosource)
    effect = np.zeros(n_genes)
    genes = rng.choice(n_genes, size=max(1, round(0.01 * n_genes)), replace=False)
    effect[genes] = rng.normal(0.0, 1.0, genes.size)
    return effect


def _study_effects(seed: int, study: int, n_genes: int) -> tuple[np.ndarray, np.ndarray]:
    """A study's batch effect (per-gene log-normal noise shared by its samples) and the effect
    of its perturbation (treatment, knockdown or disease) on ~1 % of genes."""
    rng = _rng(seed, _Stream.STUDY_EFFECT, study)
    batch = rng.normal(0.0, rng.uniform(0.15, 0.45), n_genes)
    perturbation = np.zeros(n_genes)
    genes = rng.choice(n_genes, size=max(1, round(0.01 * n_genes)), replace=False)
    perturbation[genes] = rng.normal(0.0, 1.0, genes.size)
    return batch, perturbation


def _mean_profile(
    model: _CountModel,
    biosource: int,
    *,
    batch: np.ndarray,
    perturbation: np.ndarray | None,
    male: bool,
    seed: int,
) -> np.ndarray:
    """Expected fraction of a library each gene takes, for one (study, biosource, condition,
    sex) group: abundance x longest-transcript length, normalized to sum to 1."""
    source = BIOSOURCES[biosource]
    log_mean = model.log_base + batch + _biosource_effect(seed, biosource, model.log_base.size)
    for label in source.labels:
        log_mean = log_mean + model.programs[_LABEL_INDEX[label]]
        if label in _RELATED_SYSTEM:
            log_mean = (
                log_mean
                + _RELATED_PROGRAM_WEIGHT * model.programs[_LABEL_INDEX[_RELATED_SYSTEM[label]]]
            )
    log_mean = log_mean + (model.culture if source.kind == "cell_line" else model.tissue)
    if perturbation is not None:
        log_mean = log_mean + perturbation
    log_mean = log_mean + np.where(model.xist, -6.0 if male else 3.0, 0.0)
    weight = np.exp(log_mean - log_mean.max()) * model.length_kb
    weight[~model.expressed] = 0.0
    if not male:
        weight[model.y_linked] = 0.0
    total = weight.sum()
    return weight / total if total > 0 else weight


def _count_block(
    plan: SamplePlan,
    model: _CountModel,
    *,
    start: int,
    stop: int,
    seed: int,
    pool: ThreadPoolExecutor,
) -> np.ndarray:
    """Counts of samples start..stop-1 as a (samples, genes) uint32 array.

    Samples sharing study, biosource, condition and sex share one mean profile. Each sample
    then draws gamma-Poisson (= negative binomial) counts from its own stream, so its counts
    are the same whatever block it falls in; the draws run on the thread pool."""
    n_genes = model.log_base.size
    profiles: dict[tuple[int, int, int, bool], np.ndarray] = {}
    study_effects: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    profile_of_sample = []
    for sample in range(start, stop):
        study = int(plan.study[sample])
        key = (
            study,
            int(plan.biosource[sample]),
            int(plan.condition[sample]),
            bool(plan.male[sample]),
        )
        if key not in profiles:
            if study not in study_effects:
                study_effects[study] = _study_effects(seed, study, n_genes)
            batch, perturbation = study_effects[study]
            profiles[key] = _mean_profile(
                model,
                key[1],
                batch=batch,
                perturbation=perturbation if key[2] else None,
                male=key[3],
                seed=seed,
            )
        profile_of_sample.append(profiles[key])
    counts = np.empty((stop - start, n_genes), dtype=np.uint32)
    gamma_shape = 1.0 / model.dispersion

    def draw(offset: int) -> None:
        sample = start + offset
        rng = _rng(seed, _Stream.SAMPLE_COUNTS, sample)
        library_size = plan.depth[sample] * _READS_PER_GENE * n_genes
        scale = profile_of_sample[offset] * (library_size * model.dispersion)
        counts[offset] = rng.poisson(rng.standard_gamma(gamma_shape) * scale)

    list(pool.map(draw, range(stop - start)))
    return counts


# --- HDF5 -------------------------------------------------------------------------------------


class _ExpressionWriter:
    """Appends sample columns to ``data/expression`` as whole compressed chunks.

    h5py compresses chunks one at a time in the writing thread, holding the GIL. Compressing
    with zlib (HDF5's gzip filter is zlib's deflate stream) on the thread pool, which zlib
    allows by releasing the GIL, and storing the chunks as they are uses every core. Columns
    that do not yet fill a chunk wait for the next block, so any block size gives the same
    chunks."""

    def __init__(self, dataset: h5py.Dataset, pool: ThreadPoolExecutor) -> None:
        self._dataset = dataset
        self._pool = pool
        self._rows, self._columns = dataset.chunks
        self._pending = np.zeros((0, dataset.shape[0]), dtype=np.uint32)
        self._next_column = 0

    def append(self, samples_by_genes: np.ndarray) -> None:
        if self._pending.shape[0]:
            samples_by_genes = np.concatenate([self._pending, samples_by_genes])
        whole = samples_by_genes.shape[0] // self._columns * self._columns
        self._write(samples_by_genes[:whole])
        self._pending = samples_by_genes[whole:].copy()

    def close(self) -> None:
        if self._pending.shape[0]:
            self._write(self._pending)
            self._pending = self._pending[:0]
        if self._next_column != self._dataset.shape[1]:
            raise RuntimeError("expression matrix incompletely written")

    def _write(self, samples_by_genes: np.ndarray) -> None:
        n_samples, n_genes = samples_by_genes.shape
        tiles = [
            (row, column)
            for column in range(0, n_samples, self._columns)
            for row in range(0, n_genes, self._rows)
        ]

        def compress(tile: tuple[int, int]) -> bytes:
            row, column = tile
            # Edge chunks are stored full size, zero padded, as HDF5 itself stores them.
            chunk = np.zeros((self._rows, self._columns), dtype=np.uint32)
            part = samples_by_genes[column : column + self._columns, row : row + self._rows].T
            chunk[: part.shape[0], : part.shape[1]] = part
            return zlib.compress(chunk, _GZIP_LEVEL)

        for (row, column), data in zip(tiles, self._pool.map(compress, tiles), strict=True):
            self._dataset.id.write_direct_chunk((row, self._next_column + column), data)
        self._next_column += n_samples


def _write_h5(
    path: Path,
    genes: GeneTable,
    plan: SamplePlan,
    *,
    layout: str,
    seed: int,
    block_size: int,
    preview_rows: Sequence[int],
) -> np.ndarray:
    """Write the HDF5 file; returns the counts of the preview genes (preview genes x samples)."""
    n_genes, n_samples = genes.n_h5, plan.n_samples
    model = _count_model(genes, seed)
    aligned = np.zeros(n_samples, dtype=np.int64)
    preview = np.zeros((len(preview_rows), n_samples), dtype=np.uint32)
    chunks = (min(n_genes, _EXPRESSION_CHUNK_ROWS), min(n_samples, _EXPRESSION_CHUNK_COLUMNS))
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with (
            h5py.File(temporary, "w") as handle,
            ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
        ):
            expression = handle.create_dataset(
                "data/expression",
                shape=(n_genes, n_samples),
                dtype=np.uint32,
                chunks=chunks,
                compression="gzip",
                compression_opts=_GZIP_LEVEL,
                shuffle=False,
            )
            writer = _ExpressionWriter(expression, pool)
            for start in range(0, n_samples, block_size):
                stop = min(n_samples, start + block_size)
                counts = _count_block(plan, model, start=start, stop=stop, seed=seed, pool=pool)
                aligned[start:stop] = counts.sum(axis=1, dtype=np.int64)
                preview[:, start:stop] = counts[:, list(preview_rows)].T
                writer.append(counts)
            writer.close()
            _write_gene_meta(handle, genes, layout)
            _write_sample_meta(handle, plan, layout, seed, aligned)
            _write_info(handle, layout)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return preview


_STRING = h5py.string_dtype("utf-8")


def _write_strings(group: h5py.Group, key: str, values: Sequence[str]) -> None:
    group.create_dataset(key, data=np.array(values, dtype=object), dtype=_STRING)


def _write_gene_meta(handle: h5py.File, genes: GeneTable, layout: str) -> None:
    group = handle.create_group("meta/genes")
    id_key, symbol_key = (
        ("ensembl_gene", "symbol") if layout == "v2.6" else ("ensembl_gene_id", "gene_symbol")
    )
    _write_strings(group, id_key, genes.ensembl_id[: genes.n_h5])
    _write_strings(group, symbol_key, genes.symbol[: genes.n_h5])
    _write_strings(group, "biotype", genes.biotype[: genes.n_h5])


def _write_sample_meta(
    handle: h5py.File, plan: SamplePlan, layout: str, seed: int, aligned: np.ndarray
) -> None:
    group = handle.create_group("meta/samples")
    n = plan.n_samples
    rng = _rng(seed, _Stream.QC_FIELDS)
    single_cell = np.repeat(plan.study_single_cell, plan.study_size)
    probability = np.where(single_cell, rng.beta(8.0, 1.5, n), rng.beta(0.6, 30.0, n))
    mapping_rate = rng.uniform(0.55, 0.95, n)
    texts = _sample_texts(plan, seed)
    _write_strings(group, "geo_accession", plan.gsm)
    _write_strings(group, "series_id", [plan.series_id(s) for s in range(n)])
    for key in ("title", "source_name_ch1", "characteristics_ch1"):
        _write_strings(group, key, texts[key])
    _write_strings(group, "organism_ch1", ["Homo sapiens"] * n)
    _write_strings(group, "molecule_ch1", texts["molecule_ch1"])
    _write_strings(group, "library_strategy", ["RNA-Seq"] * n)
    for key in ("library_source", "library_selection", "platform_id", "instrument_model",
                "extract_protocol_ch1", "data_processing", "submission_date",
                "last_update_date", "status"):  # fmt: skip
        _write_strings(group, key, texts[key])
    _write_strings(group, "type", ["SRA"] * n)
    _write_strings(group, "relation", texts["relation"])
    group.create_dataset("singlecellprobability", data=probability.astype(np.float64))
    group.create_dataset("readstotal", data=np.ceil(aligned / mapping_rate).astype(np.int64))
    aligned_key = "alignedreads" if layout == "v2.6" else "readsaligned"
    group.create_dataset(aligned_key, data=aligned)


def _write_info(handle: h5py.File, layout: str) -> None:
    group = handle.create_group("meta/info")
    values = {
        "version": layout.removeprefix("v"),
        # A fixed date per layout, so same arguments give the same file.
        "creation-date": {"v2.2": "2023-03-20", "v2.6": "2024-08-26"}[layout],
        "author": "archs4.demo_data (synthetic demo release)",
        "contact": "see the project README",
        "laboratory": "synthetic data in the layout of the Ma'ayan Laboratory's ARCHS4",
    }
    for key, value in values.items():
        group.create_dataset(key, data=value, dtype=_STRING)


# --- GTF --------------------------------------------------------------------------------------

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


def _gene_lines(
    genes: GeneTable,
    g: int,
    par_y: bool,
    ids: Sequence[tuple[str, str | None]],
    exon_ids: dict[tuple[int, int], str],
) -> list[str]:
    """GTF lines of one gene (or of its chrY copy when `par_y`): gene, then per transcript the
    transcript line and its exons in 5'->3' order, each exon followed by its CDS part."""
    suffix = "_PAR_Y" if par_y else ""
    chrom = "chrY" if par_y else genes.chrom[g]
    strand = genes.strand[g]
    start0 = int(genes.start[g])
    symbol, biotype = genes.symbol[g], genes.biotype[g]
    gene_id = f"{genes.ensembl_id[g]}.{genes.version[g]}{suffix}"
    transcripts = genes.transcripts[g]
    span = max(end for t in transcripts for _, end in t.exons) + 1
    tags = ' tag "PAR";' if genes.pseudoautosomal[g] else ""
    level = 2 if biotype in ("protein_coding", "lncRNA") else 3
    source = "HAVANA" if level == 2 else "ENSEMBL"

    def genomic(offset_start: int, offset_end: int) -> tuple[int, int]:
        # Offsets run 5'->3'; on the minus strand the gene's 5' end is its highest coordinate.
        if strand == "+":
            return start0 + offset_start, start0 + offset_end
        return start0 + span - 1 - offset_end, start0 + span - 1 - offset_start

    gene_attributes = f'gene_id "{gene_id}"; gene_type "{biotype}"; gene_name "{symbol}";'
    lines = [
        f"{chrom}\t{source}\tgene\t{start0}\t{start0 + span - 1}\t.\t{strand}\t.\t"
        f"{gene_attributes} level {level};{tags}\n"
    ]
    for k, (transcript, (transcript_id, protein_id)) in enumerate(
        zip(transcripts, ids, strict=True)
    ):
        transcript_attributes = (
            f'gene_id "{gene_id}"; transcript_id "{transcript_id}{suffix}"; gene_type "{biotype}"; '
            f'gene_name "{symbol}"; transcript_type "{transcript.biotype}"; '
            f'transcript_name "{symbol}-{201 + k}";'
        )
        basic = ' tag "basic"; tag "Ensembl_canonical";' if k == 0 else ' tag "basic";'
        first, last = genomic(transcript.exons[0][0], transcript.exons[-1][1])
        lines.append(
            f"{chrom}\t{source}\ttranscript\t{first}\t{last}\t.\t{strand}\t.\t"
            f'{transcript_attributes} level {level}; transcript_support_level "{1 + k % 3}";'
            f"{basic}{tags}\n"
        )
        spliced = 0
        for number, (offset_start, offset_end) in enumerate(transcript.exons, start=1):
            exon_start, exon_end = genomic(offset_start, offset_end)
            exon_id = exon_ids[(offset_start, offset_end)]
            exon_attributes = (
                f"{transcript_attributes} exon_number {number}; "
                f'exon_id "{exon_id}{suffix}"; level {level};'
            )
            lines.append(
                f"{chrom}\t{source}\texon\t{exon_start}\t{exon_end}\t.\t{strand}\t.\t"
                f"{exon_attributes}{basic}{tags}\n"
            )
            length = offset_end - offset_start + 1
            if transcript.cds is not None:
                cds_from = max(spliced, transcript.cds[0])
                cds_to = min(spliced + length, transcript.cds[1])
                if cds_from < cds_to:
                    cds_start, cds_end = genomic(
                        offset_start + cds_from - spliced, offset_start + cds_to - spliced - 1
                    )
                    phase = (3 - (cds_from - transcript.cds[0]) % 3) % 3
                    lines.append(
                        f"{chrom}\t{source}\tCDS\t{cds_start}\t{cds_end}\t.\t{strand}\t{phase}\t"
                        f'{exon_attributes} protein_id "{protein_id}{suffix}";{basic}{tags}\n'
                    )
            spliced += length
    return lines


# --- truth and label download lists ------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8", newline="\n")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_truth(path: Path, plan: SamplePlan) -> None:
    lines = ["gsm\tlabel\tnamed_in_metadata\n"]
    for sample in range(plan.n_samples):
        named = "true" if plan.named_in_metadata[sample] else "false"
        lines.extend(f"{plan.gsm[sample]}\t{label}\t{named}\n" for label in plan.labels_of(sample))
    _write_text(path, "".join(lines))


def _preview_gene_rows(genes: GeneTable) -> list[int]:
    """A few well-known genes whose counts fill the rows of the label download files."""
    row_of = {symbol: g for g, symbol in enumerate(genes.symbol[: genes.n_h5])}
    rows = [row_of[s] for s in ("GAPDH", "ACTB", "B2M", "EEF1A1", "TPT1") if s in row_of]
    return rows or list(range(min(5, genes.n_h5)))


def _write_label_lists(
    labels_dir: Path,
    plan: SamplePlan,
    seed: int,
    preview_symbols: Sequence[str],
    preview_counts: np.ndarray,
) -> None:
    """``labels/<cell_lines|tissue_types>/<label>/<label>.tsv``: an expression table whose header
    row lists the label's samples. Like the real downloads the lists are incomplete: only
    samples whose metadata names the label, and about half of those. Labels with no listed
    sample get no file."""
    listed = (
        _rng(seed, _Stream.DOWNLOAD_LISTS).random(plan.n_samples) < _LISTED_IN_DOWNLOAD_PROBABILITY
    )
    truth = plan.label_matrix()
    staging = labels_dir.with_name(f".{labels_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for label_index, label in enumerate(ALL_LABELS):
        samples = np.flatnonzero(truth[:, label_index] & plan.named_in_metadata & listed)
        if samples.size == 0:
            continue
        kind = "cell_lines" if label in CELL_LINE_LABELS else "tissue_types"
        directory = staging / kind / label
        directory.mkdir(parents=True)
        lines = ["\t".join(["gene", *(plan.gsm[s] for s in samples)]) + "\n"]
        for symbol, counts in zip(preview_symbols, preview_counts, strict=True):
            lines.append("\t".join([symbol, *map(str, counts[samples].tolist())]) + "\n")
        (directory / f"{label}.tsv").write_text("".join(lines), encoding="utf-8", newline="\n")
    staging.mkdir(exist_ok=True)
    # A directory cannot replace a non-empty one in one rename: move the old one aside first.
    retired = labels_dir.with_name(f".{labels_dir.name}.old")
    shutil.rmtree(retired, ignore_errors=True)
    if labels_dir.exists():
        labels_dir.rename(retired)
    staging.replace(labels_dir)
    shutil.rmtree(retired, ignore_errors=True)
