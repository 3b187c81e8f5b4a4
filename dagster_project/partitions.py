"""Partitions: one dynamic partition per sample block, so a new release appends blocks.

The block assets share the pool `sample_blocks`: its limit is the number of blocks processed
at once (`make run` sets it to ARCHS4_WORKERS within the memory budget; the UI shows it under
Deployment > Concurrency), and runs waiting for a slot stay queued.
"""

import dagster as dg

SAMPLE_BLOCKS = "sample_blocks"
BLOCK_POOL = "sample_blocks"

sample_blocks = dg.DynamicPartitionsDefinition(name=SAMPLE_BLOCKS)
