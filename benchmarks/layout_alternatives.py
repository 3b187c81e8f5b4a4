"""Bytes per value of one stored block under alternative layouts (the disk goal's evidence).

`python -m benchmarks.layout_alternatives COUNTS_BLOCK EXPRESSION_BLOCK` re-encodes one
`counts` and one `expression` block file of a built warehouse (for the README's figures: block
000000 of `make rehearsal --keep`, 60,000 genes x 2,000 samples) in memory, in each candidate
layout, and writes `benchmarks/results/layout_alternatives.json`:

- today's layout (gene-major, delta-encoded ids, byte-stream-split values, zstd 1), zstd 9, and
  sample-major order (what a constant-time query of a few samples' full profiles needs);
- a "level code" for `expression`: each value's dense rank among its sample's distinct counts,
  from which the exact value follows through a per-sample table of levels (see README, "Disk").
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.run import RESULTS

ROW_GROUP_SAMPLES = 16  # sample-major row groups of whole samples
LEVEL_TABLE_BYTES = 12  # (count uint32, qn float64) per distinct count of a sample, raw


def _bytes(table: pa.Table, **options: object) -> int:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)  # type: ignore[arg-type]
    return buffer.tell()


def layouts(path: Path, value: str) -> dict[str, float]:
    """Bytes per value of the block at `path` as stored and re-encoded in each layout."""
    table = pq.read_table(path)
    n = table.num_rows
    n_genes = max_id(table, "gene_idx") + 1
    today = {
        "compression": "zstd",
        "compression_level": 1,
        "use_dictionary": False,
        "column_encoding": {
            "sample_idx": "DELTA_BINARY_PACKED",
            "gene_idx": "DELTA_BINARY_PACKED",
            value: "BYTE_STREAM_SPLIT",
        },
    }
    sample_major = table.sort_by([("sample_idx", "ascending"), ("gene_idx", "ascending")])
    sizes = {
        "stored_file": path.stat().st_size,
        "gene_major_bss_zstd1": _bytes(table, **today),
        "gene_major_bss_zstd9": _bytes(table, **{**today, "compression_level": 9}),
        "sample_major_bss_zstd1": _bytes(
            sample_major, **today, row_group_size=n_genes * ROW_GROUP_SAMPLES
        ),
    }
    return {name: round(size / n, 3) for name, size in sizes.items()}


def max_id(table: pa.Table, column: str) -> int:
    return int(np.max(table.column(column).to_numpy()))


def level_code(counts_path: Path) -> dict[str, float]:
    """The level code of a counts block: its compressed size and its level table's."""
    table = pq.read_table(counts_path)
    n_genes = max_id(table, "gene_idx") + 1
    counts = table.column("count").to_numpy().reshape(n_genes, -1)  # gene-major block
    codes = np.empty(counts.shape, dtype=np.uint16)
    n_levels = 0
    for column in range(counts.shape[1]):
        distinct, codes[:, column] = np.unique(counts[:, column], return_inverse=True)
        n_levels += distinct.size
    coded = pa.table({"level": pa.array(codes.ravel())})
    options = {"compression": "zstd", "compression_level": 3, "use_dictionary": False}
    encoded = _bytes(coded, **options, column_encoding={"level": "BYTE_STREAM_SPLIT"})
    return {
        "codes_uint16_bss_zstd3": round(encoded / counts.size, 3),
        "level_table_12_bytes_per_level_uncompressed": round(
            n_levels * LEVEL_TABLE_BYTES / counts.size, 3
        ),
        "levels_per_sample": round(n_levels / counts.shape[1], 1),
        "zero_fraction": round(float((counts == 0).mean()), 4),
    }


def main(argv: list[str]) -> None:
    counts_path, expression_path = Path(argv[0]), Path(argv[1])
    record = {
        "counts": layouts(counts_path, "count"),
        "expression": layouts(expression_path, "value"),
        "level_code": level_code(counts_path),
        "command": "python -m benchmarks.layout_alternatives COUNTS_BLOCK EXPRESSION_BLOCK",
        "blocks": [str(counts_path), str(expression_path)],
    }
    (RESULTS / "layout_alternatives.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
