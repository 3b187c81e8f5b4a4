-- Metadata search of the Python API (`archs4.open().search`), archs4py's `meta.meta`: every
-- sample whose metadata matches the regular expression $term, case-insensitively, in any of the
-- chosen fields. ${matches} is replaced by an OR of `regexp_matches("<column>", $term, 'i')`
-- over the chosen columns, whose names come from archs4.sample_fields, never from user text.
-- $remove_sc keeps only samples whose single-cell probability is below 0.5, as archs4py does
-- (a sample without a probability is dropped then, as `NaN < 0.5` is false in archs4py).
SELECT *
FROM samples
WHERE (${matches})
  AND (NOT $remove_sc OR single_cell_probability < 0.5)
ORDER BY sample_idx
