-- View `qn_target`: the frozen quantile-normalization target, one row per rank (1 = smallest):
-- the mean over all samples of the rank-th smallest log2(count + 1).
CREATE OR REPLACE VIEW qn_target AS
SELECT "rank", value FROM ${reference_qn_target}
