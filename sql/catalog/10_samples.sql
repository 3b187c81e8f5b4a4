-- View `samples`: one row per sample in the warehouse (every ingested block), with its GEO
-- metadata, the source column it came from and the block it lives in.
CREATE OR REPLACE VIEW samples AS
SELECT * FROM ${raw_samples}
