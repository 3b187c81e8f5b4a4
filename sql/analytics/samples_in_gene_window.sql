-- Which samples make up a gene's coherence window? The samples around the 95th-percentile rank
-- of gene $symbol whose pairwise profile similarity `gene_metrics.mean_cosine` averages, with
-- their value for the gene and their GEO metadata.
-- Usage: archs4 sql -f sql/analytics/samples_in_gene_window.sql --param symbol=GAPDH
WITH gene AS (
    SELECT gene_idx, ensembl_id FROM genes WHERE symbol = $symbol AND has_length
)
SELECT
    g.ensembl_id,
    w.window_position,
    s.gsm,
    s.series_id,
    s.source_name,
    round(e.value, 4) AS value
FROM gene_windows AS w
JOIN gene AS g USING (gene_idx)
JOIN samples AS s USING (sample_idx)
JOIN expression_by_gene AS e ON e.gene_idx = w.gene_idx AND e.sample_idx = w.sample_idx
ORDER BY g.ensembl_id, w.window_position
