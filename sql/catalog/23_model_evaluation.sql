-- View `model_evaluation`: one row per (model, label or 'ALL', metric) on the test split:
-- `random_forest` (ours), `rf_gan_augmented` (ours retrained on the GAN-augmented training
-- set), `baseline_original` (the original configuration, same test split) and
-- `baseline_original_random_split` (the original configuration on its own random split).
CREATE OR REPLACE VIEW model_evaluation AS
SELECT * FROM ${model_model_evaluation}
