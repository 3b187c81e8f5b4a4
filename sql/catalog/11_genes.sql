-- View `genes`: one row per gene of the source file (the gene dimension), keyed by `gene_idx`.
CREATE OR REPLACE VIEW genes AS
SELECT * FROM ${raw_genes}
