-- Which GSMs of one block of `samples` already appear in another block? (must be none: a sample
-- is ingested once, whatever the number of releases that contain it)
-- Parameters: $samples_glob (all blocks), $block (the block checked).
SELECT gsm, list(DISTINCT block ORDER BY block) AS blocks
FROM read_parquet($samples_glob)
GROUP BY gsm
HAVING count(*) > 1 AND bool_or(block = $block)
ORDER BY gsm
LIMIT 20
