-- The samples of one GEO series, for the Python API (`archs4.open().series`). `series_id`
-- lists every series a sample belongs to ("GSE1,GSE2"), so the series is matched as one element
-- of that list: archs4py compares the whole text and misses samples shared by several series.
-- Parameter: $gse.
SELECT *
FROM samples
WHERE list_contains(string_split(series_id, ','), $gse)
ORDER BY sample_idx
