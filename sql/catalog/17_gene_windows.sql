-- View `gene_windows`: the 100 samples (all, when fewer) around each gene's 95th-percentile rank,
-- in window order (position 0 = lowest value), whose profiles `gene_metrics.mean_cosine` compares.
CREATE OR REPLACE VIEW gene_windows AS
SELECT * FROM ${metrics_gene_windows}
