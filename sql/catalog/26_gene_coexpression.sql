-- View `gene_coexpression`: for each gene of `expression` with variance, its top partners by
-- Pearson correlation of normalized values (`rank` 1 = most correlated, the gene itself left
-- out), computed once over `n_samples` samples (all of them up to ARCHS4_COEXPRESSION_SAMPLES,
-- else a seeded subset: README, "Gene co-expression"), with both genes' Ensembl ids and symbols.
CREATE OR REPLACE VIEW gene_coexpression AS
SELECT
    c.gene_idx,
    g.ensembl_id,
    g.symbol,
    c."rank",
    c.partner_gene_idx,
    p.ensembl_id AS partner_ensembl_id,
    p.symbol AS partner_symbol,
    c.correlation,
    c.n_samples
FROM ${metrics_gene_coexpression} AS c
JOIN ${raw_genes} AS g ON g.gene_idx = c.gene_idx
JOIN ${raw_genes} AS p ON p.gene_idx = c.partner_gene_idx
