-- View `synthetic_samples`: the GAN's synthetic profiles for rare labels, one row per
-- (synthetic sample, feature of the classifier's feature space). Synthetic: never in
-- validation, test or any view of real samples.
CREATE OR REPLACE VIEW synthetic_samples AS
SELECT * FROM ${model_synthetic_samples}
