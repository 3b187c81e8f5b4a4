"""How hard the demo's labels are: the strength of the label signal, the size of the study
batch effects, and how much of a label one study may hold.

Why: a classifier scored on a random per-sample split learns each study's batch effects along
with the labels, and on a study-grouped split it has to generalize to studies it has never
seen, so the gap between the two splits measures how much study effects matter. On real
compendia that gap is large: Heil, Crawford & Greene (2023) report recount3 tissue
prediction falling from about 0.80 to about 0.48 balanced accuracy between a sample-wise and a
study-wise split (the figure issue #16 cites), a drop of 0.32.
The original demo shows a gap of 0.056 in f1_samples (0.947 against 0.891), and its rare labels
sit in one or two large studies each, so no method can be tested on few studies of a label.

`ORIGINAL` keeps the demo as it was (every earlier figure stays reproducible with it);
`CALIBRATED`, the default, was set with `benchmarks/calibrate_demo.py` from the original
configuration's split gap alone, by the grid point nearest the published figure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoRealism:
    """Documented knobs of the demo generator; 1.0 everywhere is the original demo."""

    # Multiplies every label's marker program (log-scale shift of its marker genes).
    label_signal: float = 1.0
    # Multiplies each study's batch-effect standard deviation (drawn in 0.15-0.45 on the log
    # scale, per gene, shared by the study's samples).
    study_batch: float = 1.0
    # The largest share of a label's samples one study may take (studies are assigned largest
    # first); 1.0 is no cap. Below it, a label's samples spread over more, smaller studies.
    max_study_share: float = 1.0


ORIGINAL = DemoRealism()
# Measured by `python -m benchmarks.calibrate_demo` (benchmarks/results/demo_calibration.json;
# the pipeline's labels and normalization, means over 3 split seeds): the original
# configuration scores f1_samples 0.812 on a random split and 0.527 on the study-grouped split
# (f1_macro 0.776 and 0.475), against the published 0.80 and 0.48; the original demo scores
# 0.943 and 0.851. Brain spans 9 studies instead of 4. (A first calibration, 3.0 instead of
# 2.5, had been measured on the true labels without the GTF's gene filter; the pipeline then
# measured a wider gap than that proxy, so the proxy was made the pipeline's and the grid
# point nearest the published figure re-chosen, by the split gap alone.)
CALIBRATED = DemoRealism(label_signal=1.0, study_batch=2.5, max_study_share=0.25)
DEFAULT_REALISM = CALIBRATED
