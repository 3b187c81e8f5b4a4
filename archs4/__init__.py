"""Domain library for the ARCHS4 warehouse: pure functions on arrays, Arrow tables and Polars
frames, with no Dagster imports, so every step can be unit-tested and reused outside the
orchestrator."""
