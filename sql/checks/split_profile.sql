-- Profile of the study-grouped splits, one row per label, per study group and per GSE id
-- (`kind`): in how many splits each group and each GSE appears (must be 1), and for each label
-- how many samples of the training set (train samples `in_training_set`) carry it (must be at
-- least 1).
-- Parameters: $splits_file, $labels_file, $samples_glob.
WITH splits AS (
    SELECT * FROM read_parquet($splits_file)
),
gse AS (
    SELECT s.split, trim(unnest(string_split(m.series_id, ','))) AS gse
    FROM splits AS s
    JOIN read_parquet($samples_glob, hive_partitioning = false) AS m USING (sample_idx)
)
SELECT 'group' AS kind, "group"::VARCHAR AS name, count(DISTINCT split) AS n_splits,
    NULL::BIGINT AS n_train
FROM splits GROUP BY "group"
UNION ALL
SELECT 'gse', gse, count(DISTINCT split), NULL FROM gse GROUP BY gse
UNION ALL
SELECT 'label', l.label, NULL, count(DISTINCT l.sample_idx) FILTER (WHERE s.in_training_set)
FROM (SELECT DISTINCT sample_idx, label FROM read_parquet($labels_file)) AS l
LEFT JOIN splits AS s USING (sample_idx)
GROUP BY l.label
