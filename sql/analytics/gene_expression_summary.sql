-- How is one gene expressed across all samples? Distribution of its normalized values and raw
-- counts' companions, for the gene(s) with symbol $symbol (symbols can repeat: one row per
-- Ensembl id). Reads the gene-clustered copy, so it touches one row group, not every block.
-- Usage: archs4 sql -f sql/analytics/gene_expression_summary.sql --param symbol=GAPDH
WITH gene AS (
    SELECT gene_idx, ensembl_id, symbol FROM genes WHERE symbol = $symbol AND has_length
)
SELECT
    g.symbol,
    g.ensembl_id,
    count(*) AS samples,
    round(min(e.value), 4) AS min,
    round(quantile_cont(e.value, 0.25), 4) AS q25,
    round(median(e.value), 4) AS median,
    round(quantile_cont(e.value, 0.75), 4) AS q75,
    round(quantile_cont(e.value, 0.95), 4) AS p95,
    round(max(e.value), 4) AS max,
    round(avg(e.value), 4) AS mean
FROM expression_by_gene AS e
JOIN gene AS g USING (gene_idx)
GROUP BY ALL
ORDER BY g.ensembl_id
