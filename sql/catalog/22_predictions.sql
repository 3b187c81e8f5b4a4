-- View `predictions`: one row per (unlabelled sample, label): the Random Forest's probability
-- and its decision at the label's threshold tuned on the validation split.
CREATE OR REPLACE VIEW predictions AS
SELECT * FROM ${model_predictions}
