-- View `sample_labels`: one row per (sample, label, source): tissue-system and cell-line-group
-- labels from the metadata vocabulary (`metadata`) or an ARCHS4 label download (`import`).
CREATE OR REPLACE VIEW sample_labels AS
SELECT * FROM ${labels_sample_labels}
