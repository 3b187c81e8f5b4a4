-- Which genes are strongly expressed but in unrelated samples? Genes in the top 10% by signal
-- (p95) whose highest-expressing samples have the least similar profiles (bottom 25% of
-- mean_cosine): candidates for context-specific expression, or for artefacts worth a look.
WITH cut AS (
    SELECT
        quantile_cont(p95, 0.90) AS signal_cut,
        quantile_cont(mean_cosine, 0.25) AS coherence_cut
    FROM gene_metrics
)
SELECT symbol, ensembl_id, biotype, round(p95, 4) AS p95, round(mean_cosine, 4) AS mean_cosine,
    p95_rank, mean_cosine_rank
FROM gene_metrics, cut
WHERE p95 >= signal_cut AND mean_cosine <= coherence_cut
ORDER BY p95 DESC, gene_idx
LIMIT 50
