-- Per-sample profile of one block of `counts`: does every sample of the block have one row per
-- gene, no nulls, no negative counts, and a total equal to the source matrix's column sum?
-- Parameters: $counts_file, $samples_file (the block's two Parquet files).
-- A sample missing from either file appears with nulls, which the suite rejects.
WITH profile AS (
    SELECT
        sample_idx,
        count(*) AS n_rows,
        count(*) - count("count") AS n_null,
        min("count") AS min_count,
        sum("count")::BIGINT AS total_count
    FROM read_parquet($counts_file)
    GROUP BY sample_idx
)
SELECT
    coalesce(p.sample_idx, s.sample_idx) AS sample_idx,
    p.n_rows,
    p.n_null,
    p.min_count,
    p.total_count,
    s.total_count AS source_total
FROM profile AS p
FULL OUTER JOIN read_parquet($samples_file) AS s USING (sample_idx)
ORDER BY sample_idx
