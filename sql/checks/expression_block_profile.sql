-- Per-sample profile of one block of `expression`: is every value what quantile normalization
-- against the frozen target says it must be? Recomputed here independently of the Python
-- kernel: each gene's rank within its sample comes from `counts` (tied counts share the mean of
-- the target over their ranks), and the stored value has its length adjustment undone.
-- Every sample's rows are counted; the values are recomputed for the samples listed in
-- $recomputed_samples (sample_idx values) only: recomputing all 2,000 samples of a 60,000-gene
-- block takes 118 s on one thread (100 of them: 19 s), twice the normalization itself.
-- Parameters: $counts_file, $expression_file, $target_file, $genes_file, $method,
-- $recomputed_samples.
WITH target AS (
    SELECT rank, sum(value) OVER (ORDER BY rank) AS cumulative
    FROM read_parquet($target_file)
),
ranked AS (
    SELECT
        sample_idx,
        gene_idx,
        rank() OVER (PARTITION BY sample_idx ORDER BY "count") AS first_rank,
        count(*) OVER (PARTITION BY sample_idx, "count") AS tied
    FROM read_parquet($counts_file)
    WHERE list_contains($recomputed_samples, sample_idx)
),
expected AS (
    SELECT
        r.sample_idx,
        r.gene_idx,
        (high.cumulative - coalesce(low.cumulative, 0)) / r.tied AS qn
    FROM ranked AS r
    JOIN target AS high ON high.rank = r.first_rank + r.tied - 1
    LEFT JOIN target AS low ON low.rank = r.first_rank - 1
),
observed AS (
    SELECT
        e.sample_idx,
        e.gene_idx,
        e.value,
        g.length_bp,
        CASE $method
            WHEN 'divide' THEN e.value * (g.length_bp / 1000.0)
            WHEN 'subtract_log2' THEN e.value + log2(g.length_bp / 1000.0)
            ELSE e.value
        END AS qn
    FROM read_parquet($expression_file) AS e
    LEFT JOIN read_parquet($genes_file) AS g USING (gene_idx)
)
SELECT
    o.sample_idx,
    list_contains($recomputed_samples, o.sample_idx)::INTEGER AS recomputed,
    count(*) AS n_rows,
    count(*) FILTER (WHERE o.value IS NULL OR NOT isfinite(o.value)) AS n_not_finite,
    count(*) FILTER (WHERE o.length_bp IS NULL) AS n_without_length,
    -- Rows of a recomputed sample that have no recomputed value.
    CASE WHEN list_contains($recomputed_samples, o.sample_idx)
        THEN count(*) - count(x.qn) ELSE 0 END AS n_not_recomputed,
    max(abs(o.qn - x.qn) / greatest(abs(x.qn), 1e-9)) AS max_relative_error
FROM observed AS o
LEFT JOIN expected AS x USING (sample_idx, gene_idx)
GROUP BY o.sample_idx
ORDER BY o.sample_idx
