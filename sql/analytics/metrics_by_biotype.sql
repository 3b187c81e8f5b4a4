-- How do signal and coherence differ between gene biotypes (protein coding, lncRNA, ...)?
SELECT
    biotype,
    count(*) AS genes,
    round(median(p95), 4) AS median_p95,
    round(quantile_cont(p95, 0.9), 4) AS p90_of_p95,
    round(median(mean_cosine), 4) AS median_mean_cosine
FROM gene_metrics
GROUP BY biotype
ORDER BY genes DESC
