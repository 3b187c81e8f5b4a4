-- View `expression`: normalized expression in long format, one row per (sample, gene) for the
-- genes that have a length: log2(count + 1), quantile-normalized against `qn_target`, then
-- adjusted for the gene's length (default: divided by its length in kb).
CREATE OR REPLACE VIEW expression AS
SELECT sample_idx, gene_idx, value, block
FROM ${normalized_expression}
