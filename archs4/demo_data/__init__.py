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

How hard the labels are is set by ``realism`` (``realism.DemoRealism``: label-signal strength,
study batch-effect size, the largest share of a label one study may hold). The default,
``CALIBRATED``, puts the original work's random-split against study-split gap at the published
figure for real compendia; ``ORIGINAL`` is the demo as it was before (byte-identical).

Determinism and scale: every random quantity comes from its own ``numpy.random.default_rng``
stream keyed by (seed, purpose[, study or sample index]), never by Python's ``hash``. A sample's
counts come from its own stream, so they do not depend on ``block_size`` or on the other
samples of its block; only O(samples) and O(genes) vectors are held, the matrix is generated
and written block by block, with chunk compression spread over threads (numpy's samplers and
zlib release the GIL).

Modules, in the order the data flow through them:

* ``tables``: the label names (from ``assets/label_vocabulary.yaml``) and the data tables
  (``assets/demo/*.yaml``: label shares, cell-line and tissue spellings, genes, text pools);
* ``realism``: the knobs of label signal, batch effects and study spread, and their presets;
* ``streams``: the random stream of each purpose;
* ``biosources``: the tissues and cell lines studies profile, and their true labels;
* ``samples``: the sample plan (studies, biosources, conditions, accessions, library sizes);
* ``gene_models``, ``genes``: transcript models and gene positions; the gene table;
* ``metadata_text``: the GEO text fields of every sample;
* ``counts``: the expression model and the per-block count draws;
* ``hdf5``, ``gtf``, ``label_files``: the writers of each output;
* ``dataset``: :func:`write_demo_dataset`, which runs them all.
"""

from archs4.demo_data.biosources import BIOSOURCES, Biosource
from archs4.demo_data.dataset import DemoPaths, write_demo_dataset
from archs4.demo_data.gene_models import TranscriptModel
from archs4.demo_data.genes import GeneTable, build_gene_table
from archs4.demo_data.hdf5 import LAYOUTS
from archs4.demo_data.realism import CALIBRATED, ORIGINAL, DemoRealism
from archs4.demo_data.samples import SamplePlan, label_sample_counts, plan_samples
from archs4.demo_data.tables import ALL_LABELS, CELL_LINE_LABELS, TISSUE_LABELS

__all__ = [
    "ALL_LABELS",
    "BIOSOURCES",
    "CALIBRATED",
    "CELL_LINE_LABELS",
    "LAYOUTS",
    "ORIGINAL",
    "TISSUE_LABELS",
    "Biosource",
    "DemoPaths",
    "DemoRealism",
    "GeneTable",
    "SamplePlan",
    "TranscriptModel",
    "build_gene_table",
    "label_sample_counts",
    "plan_samples",
    "write_demo_dataset",
]
