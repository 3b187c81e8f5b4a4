-- Which genes are co-expressed with gene $gene_idx? The $k genes whose normalized values
-- (`expression`) have the highest Pearson correlation with its values over all samples, exactly.
-- One streamed pass over the gene-clustered copy: the gene's values come from its own row group,
-- then every other gene's rows are joined to them by sample and aggregated with `corr()`, one
-- aggregate state per gene, so memory is O(samples + genes), never genes x genes. A gene with
-- the same value in every sample has no correlation (DuckDB's corr() is NaN there): such genes
-- are left out, and a constant $gene_idx gives no rows. `archs4 coexpressed GENE --exact` runs
-- this (without --exact, the stored top-k of `gene_coexpression` answers when it can).
-- Parameters: $gene_idx, $k.
WITH query AS (
    SELECT sample_idx, value FROM expression_by_gene WHERE gene_idx = $gene_idx
),
correlations AS (
    SELECT e.gene_idx, corr(e.value, q.value) AS correlation
    FROM expression_by_gene AS e
    JOIN query AS q USING (sample_idx)
    WHERE e.gene_idx <> $gene_idx
    GROUP BY e.gene_idx
),
ranked AS (
    SELECT gene_idx, correlation
    FROM correlations
    WHERE NOT isnan(correlation)
    ORDER BY correlation DESC, gene_idx
    LIMIT $k
)
SELECT
    row_number() OVER (ORDER BY r.correlation DESC, r.gene_idx) AS rank,
    r.gene_idx,
    g.ensembl_id,
    g.symbol,
    r.correlation
FROM ranked AS r
JOIN genes AS g USING (gene_idx)
ORDER BY rank
