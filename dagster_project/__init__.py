"""Thin Dagster layer over the `archs4` domain library: assets, checks, resources and automation."""

import warnings

import dagster as dg

# Block-partitioned asset checks are a Dagster preview feature (1.13); the warehouse relies on
# them to validate each block where it is written, so the warning is expected.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
