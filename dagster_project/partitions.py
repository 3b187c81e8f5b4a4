"""Partitions: one dynamic partition per sample block, so a new release appends blocks."""

import dagster as dg

SAMPLE_BLOCKS = "sample_blocks"

sample_blocks = dg.DynamicPartitionsDefinition(name=SAMPLE_BLOCKS)
