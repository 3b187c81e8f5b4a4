-- Is the stored top-k co-expression well formed? One row per gene of `gene_coexpression`: its
-- rows, ranks and partners, their correlation range, partners that are the gene itself or a gene
-- without stored partners (one that does not vary), ranks out of correlation order, and pairs
-- whose reverse pair is stored with another value (the suite `gene_coexpression` validates it).
-- Parameters: $table.
WITH stored AS (
    SELECT gene_idx, "rank", partner_gene_idx, correlation FROM read_parquet($table)
),
stored_genes AS (
    SELECT DISTINCT gene_idx FROM stored
),
ordered AS (
    SELECT
        *,
        lag(correlation) OVER (PARTITION BY gene_idx ORDER BY "rank") AS previous_correlation
    FROM stored
)
SELECT
    o.gene_idx,
    count(*) AS n_rows,
    min(o."rank") AS min_rank,
    max(o."rank") AS max_rank,
    count(DISTINCT o."rank") AS n_ranks,
    count(DISTINCT o.partner_gene_idx) AS n_partners,
    min(o.correlation) AS min_correlation,
    max(o.correlation) AS max_correlation,
    count(*) FILTER (WHERE o.partner_gene_idx = o.gene_idx) AS self_partners,
    count(*) FILTER (WHERE g.gene_idx IS NULL) AS partners_without_variance,
    count(*) FILTER (WHERE o.correlation > o.previous_correlation) AS misordered,
    count(*) FILTER (WHERE r.correlation <> o.correlation) AS asymmetric
FROM ordered AS o
LEFT JOIN stored_genes AS g ON g.gene_idx = o.partner_gene_idx
LEFT JOIN stored AS r ON r.gene_idx = o.partner_gene_idx AND r.partner_gene_idx = o.gene_idx
GROUP BY o.gene_idx
ORDER BY o.gene_idx
