-- Which genes carry the most signal? The 20 genes with the highest 95th-percentile normalized
-- expression (p95), with their coherence (mean cosine of the 100 samples around it).
SELECT p95_rank, symbol, ensembl_id, biotype, round(p95, 4) AS p95,
    round(mean_cosine, 4) AS mean_cosine, mean_cosine_rank
FROM gene_metrics
ORDER BY p95 DESC, gene_idx
LIMIT 20
