"""Domain library for the ARCHS4 warehouse: pure functions on arrays, Arrow tables and Polars
frames, with no Dagster imports, so every step can be unit-tested and reused outside the
orchestrator."""

from typing import Any

# `archs4.open` and friends are imported on first use: the Dagster layer and the command line
# import `archs4.<module>` constantly and should not pay for pandas, rnanorm and anndata.
_API_NAMES = {
    "open": "archs4.api",
    "ReadOnlyWarehouse": "archs4.api",
    "MatrixTooLargeError": "archs4.api",
    "SampleLookupError": "archs4.api",
    "aggregate_duplicate_genes": "archs4.count_normalization",
    "filter_genes": "archs4.count_normalization",
    "normalize_counts": "archs4.count_normalization",
}


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        import importlib

        return getattr(importlib.import_module(_API_NAMES[name]), name)
    raise AttributeError(f"module 'archs4' has no attribute {name!r}")
