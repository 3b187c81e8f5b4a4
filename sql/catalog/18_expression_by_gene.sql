-- View `expression_by_gene`: the rows of `expression` clustered by gene (one file per run of
-- genes, all samples of a gene together): the fast way to ask about one gene across all samples.
CREATE OR REPLACE VIEW expression_by_gene AS
SELECT sample_idx, gene_idx, value
FROM ${normalized_expression_by_gene}
