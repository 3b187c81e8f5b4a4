-- View `counts`: raw Kallisto gene counts in long format, one row per (sample, gene), zeros
-- included, exactly as in the source matrix. Files are sorted by gene within each block.
CREATE OR REPLACE VIEW counts AS
SELECT sample_idx, gene_idx, "count", block
FROM ${raw_counts}
