"""`make bench`: time and peak memory of each stage at several sample counts, next to
references measured in the same run, with the scaling of time and memory in N.

Each size gets its own demo file (generated first, not timed) and warehouse; each stage runs in
a fresh process (`benchmarks.stages`) so its peak memory is its own. Results are printed as one
table and written to `benchmarks/results/latest.{json,md}` with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

from archs4.demo_data import write_demo_dataset

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "work"
RESULTS = ROOT / "results"
STAGE_ORDER = [
    "plain_read",
    "register",
    "ingest",
    "target",
    "normalize",
    "by_gene",
    "metrics",
    "metrics_naive",
    "one_gene_query",
    "kernel_vs_qnorm",
]
SCALING_STAGES = ["plain_read", "ingest", "target", "normalize", "by_gene", "metrics"]
# Pairs of (stage, reference stage) whose time ratio is a goal.
RATIOS = [("ingest", "plain_read", "ingest / plain h5py read (goal <= 2)")]


def machine() -> dict:
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "python": platform.python_version(),
    }


# Gene chunks far below one chunk per layer, so the by-gene stages show their memory bound
# (a chunk of values) rather than the whole (small) layer.
GENE_CHUNK_VALUES = str(8 << 20)


def run_stage(stage: str, source: Path, warehouse: Path, block_size: int) -> dict:
    env = {**os.environ, "ARCHS4_GENE_CHUNK_VALUES": GENE_CHUNK_VALUES}
    if stage == "kernel_vs_qnorm":
        env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    command = [sys.executable, "-m", "benchmarks.stages", stage, str(source), str(warehouse)]
    output = subprocess.run(
        [*command, str(block_size)], check=True, capture_output=True, text=True, env=env
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def scaling_exponent(sizes: list[int], values: list[float]) -> float:
    """Slope of log(value) against log(N): 1 is linear."""
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument(
        "--sizes", default=os.environ.get("BENCH_SIZES", "1250,5000"), help="sample counts"
    )
    parser.add_argument("--genes", type=int, default=int(os.environ.get("BENCH_GENES", "20000")))
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep generated files")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    records: list[dict] = []
    for n_samples in sizes:
        case = WORK / f"n{n_samples}_g{args.genes}"
        shutil.rmtree(case, ignore_errors=True)
        started = time.perf_counter()
        paths = write_demo_dataset(case / "data", n_samples=n_samples, n_genes=args.genes, seed=1)
        print(f"generated {n_samples} x {args.genes} in {time.perf_counter() - started:.0f} s")
        stages = STAGE_ORDER + (["gan_training"] if n_samples == sizes[0] else [])
        for stage in stages:
            record = run_stage(stage, paths.h5, case / "warehouse", args.block_size)
            record.update(n_samples=n_samples, n_genes=args.genes)
            records.append(record)
            print(f"  {stage:16s} {record['seconds']:8.2f} s  {record['peak_rss_mb']:7.0f} MB")
        if not args.keep:
            shutil.rmtree(case, ignore_errors=True)

    table, summary = summarize(records, sizes)
    report = {"machine": machine(), "records": records, "summary": summary}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    markdown = (
        f"Machine: {report['machine']}\n\n"
        + tabulate(table, headers="keys", tablefmt="github", floatfmt=".3g")
        + "\n\n"
        + tabulate(summary, headers="keys", tablefmt="github", floatfmt=".3g")
        + "\n"
    )
    (RESULTS / "latest.md").write_text(markdown)
    print("\n" + markdown)
    return 0


def summarize(records: list[dict], sizes: list[int]) -> tuple[list[dict], list[dict]]:
    by = {(r["stage"], r["n_samples"]): r for r in records}
    table = []
    for record in records:
        row = {
            "N": record["n_samples"],
            "genes": record["n_genes"],
            "stage": record["stage"],
            "seconds": record["seconds"],
            "MB/s (uint32 counts)": record["counts_mb"] / record["seconds"],
            "peak MB": record["peak_rss_mb"],
        }
        if record["stage"] == "metrics_naive":
            metrics_seconds = by[("metrics", record["n_samples"])]["seconds"]
            row["MB/s (uint32 counts)"] = None
            row["note"] = (
                f"naive reference: {record['naive_seconds_measured']:.1f} s for "
                f"{record['naive_genes_measured']} genes, "
                f"{record['naive_seconds_all_genes']:.0f} s extrapolated to all; naive/streamed = "
                f"{record['naive_seconds_all_genes'] / metrics_seconds:.0f}x (goal >= 20); "
                f"max |diff| p95 {record['max_abs_diff_p95']:.1e}, "
                f"mean_cosine {record['max_abs_diff_mean_cosine']:.1e}"
            )
        if record["stage"] == "one_gene_query":
            row["seconds"] = record["one_gene_by_gene_seconds"]
            row["MB/s (uint32 counts)"] = None
            row["note"] = (
                f"one gene from the gene-clustered copy; full scan "
                f"{record['full_scan_seconds']:.3f} s "
                f"({record['full_scan_seconds'] / record['one_gene_by_gene_seconds']:.0f}x, "
                f"goal >= 20); one gene filtered from the block layer "
                f"{record['one_gene_blocks_seconds']:.3f} s"
            )
        if record["stage"] == "gan_training":
            row["MB/s (uint32 counts)"] = None
            row["note"] = f"default GAN ({record['epochs']} epochs) on 2,500 rows x 50 features"
        if record["stage"] == "kernel_vs_qnorm":
            row["seconds"] = record["ours_seconds"]
            row["MB/s (uint32 counts)"] = None
            row["note"] = (
                f"block {record['block_shape']}: qnorm {record['qnorm_seconds']:.3f} s, "
                f"ours/qnorm = {record['ours_seconds'] / record['qnorm_seconds']:.2f} (goal <= 1)"
            )
        table.append(row)
    summary = []
    for stage, reference, label in RATIOS:
        for n in sizes:
            ratio = by[(stage, n)]["seconds"] / by[(reference, n)]["seconds"]
            summary.append({"N": n, "figure": label, "value": ratio})
    if len(sizes) > 1:
        for stage in SCALING_STAGES:
            seconds = [by[(stage, n)]["seconds"] for n in sizes]
            memory = [by[(stage, n)]["peak_rss_mb"] for n in sizes]
            summary.append(
                {
                    "N": f"{sizes[0]}..{sizes[-1]}",
                    "figure": f"{stage}: time exponent in N (goal <= 1.1)",
                    "value": scaling_exponent(sizes, seconds),
                }
            )
            summary.append(
                {
                    "N": f"{sizes[0]}..{sizes[-1]}",
                    "figure": f"{stage}: peak memory largest/smallest N (goal <= 1.2)",
                    "value": memory[-1] / memory[0],
                }
            )
    return table, summary


if __name__ == "__main__":
    sys.exit(main())
