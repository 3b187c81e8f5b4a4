-- View `blocks`: one row per sample block, with the release file, version and checksum it was
-- read from and its run of source columns (derived from the sample registry).
CREATE OR REPLACE VIEW blocks AS
SELECT
    block,
    any_value(source_path) AS source_path,
    any_value(source_version) AS source_version,
    any_value(source_checksum) AS source_checksum,
    min(source_column) AS column_start,
    max(source_column) + 1 AS column_stop,
    min(sample_idx) AS sample_idx_start,
    count(*) AS n_samples
FROM ${raw_sample_registry}
GROUP BY block
ORDER BY block
