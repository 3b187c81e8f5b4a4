-- View `gene_metrics`: one row per gene of `expression`: `p95` (the 95th percentile of its
-- values, the signal) and `mean_cosine` (the mean pairwise cosine similarity of the full profiles
-- of the 100 samples around its 95th-percentile rank, the coherence), with ranks (1 = highest).
CREATE OR REPLACE VIEW gene_metrics AS
SELECT * FROM ${metrics_gene_metrics}
