-- View `sample_splits`: one row per labelled sample: its study group (samples sharing any GSE)
-- and its split (`train`, `validation` or `test`); a study group lies wholly in one split.
CREATE OR REPLACE VIEW sample_splits AS
SELECT * FROM ${labels_sample_splits}
