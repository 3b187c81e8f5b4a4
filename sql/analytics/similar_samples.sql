-- Which samples are most like sample $sample_idx? The $k samples whose full normalized profiles
-- (every gene of `expression`) have the highest cosine similarity to it, with their labels and
-- predicted labels. One pass over `expression`: the query profile comes from its own block
-- (row-group statistics on sample_idx skip the others), then every sample's dot product and norm
-- are aggregated in a single scan joined to it. `archs4 similar GSM -k 10` runs this.
-- Parameters: $sample_idx, $k.
WITH query AS (
    SELECT gene_idx, value FROM expression WHERE sample_idx = $sample_idx
),
scores AS (
    SELECT
        e.sample_idx,
        sum(e.value::DOUBLE * q.value) AS dot,
        sqrt(sum(e.value::DOUBLE * e.value)) AS norm
    FROM expression AS e
    JOIN query AS q USING (gene_idx)
    GROUP BY e.sample_idx
),
ranked AS (
    SELECT
        s.sample_idx,
        coalesce(s.dot / nullif(s.norm * self.norm, 0), 0) AS cosine
    FROM scores AS s, (SELECT norm FROM scores WHERE sample_idx = $sample_idx) AS self
    WHERE s.sample_idx <> $sample_idx
    ORDER BY cosine DESC, s.sample_idx
    LIMIT $k
)
SELECT
    row_number() OVER (ORDER BY r.cosine DESC, r.sample_idx) AS rank,
    m.gsm,
    m.series_id,
    m.source_name,
    round(r.cosine, 6) AS cosine,
    (SELECT string_agg(DISTINCT l.label, ',' ORDER BY l.label)
     FROM sample_labels AS l WHERE l.sample_idx = r.sample_idx) AS labels,
    (SELECT string_agg(p.label, ',' ORDER BY p.label)
     FROM predictions AS p WHERE p.sample_idx = r.sample_idx AND p.predicted) AS predicted
FROM ranked AS r
JOIN samples AS m USING (sample_idx)
ORDER BY rank
