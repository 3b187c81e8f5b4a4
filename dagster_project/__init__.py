"""Thin Dagster layer over the `archs4` domain library: assets, checks, resources and automation."""
