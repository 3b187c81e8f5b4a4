-- View `gan_evaluation`: one row per (rare label or 'ALL_RARE', metric): fidelity of the
-- synthetic rows (mean_correlation, variance_correlation, mmd, c2st_auroc, nn_distance_ratio;
-- and for 'ALL_RARE' c2st_auroc_pooled, one test on every rare label's rows together)
-- and usefulness on the real test split (f1_mean/<method>, f1_std/<method>,
-- average_precision_mean/<method>, average_precision_std/<method>).
CREATE OR REPLACE VIEW gan_evaluation AS
SELECT * FROM ${model_gan_evaluation}
