-- View `augmentation_curve`: one row per (label, n_real, method, seed, metric): the label's
-- test F1 and average_precision when only about n_real of its real train rows are kept (whole
-- study groups, fewest studies first), for each method (none, class_weights,
-- random_oversampling, smote, gan retrained per n_real and seed), plus the counts behind them
-- (n_real_kept, n_studies_kept, rows_added). n_real of "all" is the label's full train count.
CREATE OR REPLACE VIEW augmentation_curve AS
SELECT * FROM ${model_augmentation_curve}
