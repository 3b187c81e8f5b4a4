-- Profile of `predictions`, one row per predicted sample: how many label rows it has (must be
-- the vocabulary's size), its smallest and largest probability (must lie in [0, 1]), and
-- whether it also has a label (must not: predictions are for unlabelled samples only).
-- Parameters: $predictions_file, $labels_file.
SELECT
    p.sample_idx,
    count(*) AS n_rows,
    min(p.probability) AS min_probability,
    max(p.probability) AS max_probability,
    bool_or(l.sample_idx IS NOT NULL) AS has_label
FROM read_parquet($predictions_file) AS p
LEFT JOIN (SELECT DISTINCT sample_idx FROM read_parquet($labels_file)) AS l USING (sample_idx)
GROUP BY p.sample_idx
