-- Does the gene-clustered copy of `expression` hold exactly its rows? Genes whose row count or
-- value sum differs between the block files and the gene-chunk files (must be none).
-- Parameters: $blocks_glob, $chunks_glob.
WITH by_block AS (
    SELECT gene_idx, count(*) AS n, sum(value::DOUBLE) AS total
    FROM read_parquet($blocks_glob, hive_partitioning = false)
    GROUP BY gene_idx
),
by_gene AS (
    SELECT gene_idx, count(*) AS n, sum(value::DOUBLE) AS total
    FROM read_parquet($chunks_glob, hive_partitioning = false)
    GROUP BY gene_idx
)
SELECT coalesce(b.gene_idx, g.gene_idx) AS gene_idx, b.n AS block_rows, g.n AS chunk_rows
FROM by_block AS b
FULL OUTER JOIN by_gene AS g USING (gene_idx)
WHERE b.n IS DISTINCT FROM g.n
    OR abs(b.total - g.total) > 1e-6 * greatest(abs(b.total), 1)
ORDER BY gene_idx
LIMIT 50
