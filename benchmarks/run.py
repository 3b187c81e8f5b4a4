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
from archs4.splits import DEFAULT_MAX_TRAIN_SAMPLES

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "work"
RESULTS = ROOT / "results"
PARTIAL = "partial.jsonl"
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
    "features",
    "classifier",
    "gan_training",
]
# The model stages see 50 features per sample whatever the number of genes.
GENE_INDEPENDENT = {"classifier", "gan_training"}
SCALING_STAGES = [
    "plain_read",
    "ingest",
    "target",
    "normalize",
    "by_gene",
    "metrics",
    "features",
    "classifier",
    "gan_training",
]
# Pairs of (stage, reference stage) whose time ratio is a goal.
RATIOS = [("ingest", "plain_read", "ingest / plain h5py read (goal <= 2)")]
# The full human release the projection is for.
FULL_SAMPLES, FULL_GENES = 900_000, 67_000
# Stages a full build runs once (the references and the query are not part of it).
BUILD_STAGES = [
    "register",
    "ingest",
    "target",
    "normalize",
    "by_gene",
    "metrics",
    "features",
    "classifier",
    "gan_training",
]


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
        "--sizes", default=os.environ.get("BENCH_SIZES", "5000,20000,80000"), help="sample counts"
    )
    parser.add_argument("--genes", type=int, default=int(os.environ.get("BENCH_GENES", "20000")))
    parser.add_argument(
        "--gene-sizes",
        default=os.environ.get("BENCH_GENE_SIZES", "67000"),
        help="gene counts also run at the smallest sample count, for the scaling in genes",
    )
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep generated files")
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: write the report again from the records of latest.json",
    )
    args = parser.parse_args(argv)
    if args.render:
        stored = json.loads((RESULTS / "latest.json").read_text())
        write_report(stored["records"], args.genes, stored["machine"], stored["command"])
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    cases = [(n, args.genes, STAGE_ORDER) for n in sizes]
    # The gene-count cases run right after the smallest one: every kind of case is measured
    # once before the long ones.
    cases[1:1] = [
        (sizes[0], genes, [s for s in STAGE_ORDER if s not in GENE_INDEPENDENT])
        for genes in (int(g) for g in args.gene_sizes.split(",") if g)
    ]
    records: list[dict] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / PARTIAL).unlink(missing_ok=True)
    for n_samples, n_genes, stages in cases:
        case = WORK / f"n{n_samples}_g{n_genes}"
        shutil.rmtree(case, ignore_errors=True)
        started = time.perf_counter()
        paths = write_demo_dataset(case / "data", n_samples=n_samples, n_genes=n_genes, seed=1)
        print(f"generated {n_samples} x {n_genes} in {time.perf_counter() - started:.0f} s")
        for stage in stages:
            record = run_stage(stage, paths.h5, case / "warehouse", args.block_size)
            record.update(n_samples=n_samples, n_genes=n_genes)
            records.append(record)
            with (RESULTS / PARTIAL).open("a") as partial:  # what a crash leaves measured
                partial.write(json.dumps(record) + "\n")
            print(f"  {stage:16s} {record['seconds']:8.2f} s  {record['peak_rss_mb']:7.0f} MB")
        if not args.keep:
            shutil.rmtree(case, ignore_errors=True)
    command = " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])])
    write_report(records, args.genes, machine(), command)
    (RESULTS / PARTIAL).unlink()
    return 0


def write_report(records: list[dict], genes: int, machine: dict, command: str) -> None:
    """Print the tables and write them to results/latest.{json,md}."""
    sizes = sorted({r["n_samples"] for r in records if r["n_genes"] == genes})
    gene_sizes = sorted({r["n_genes"] for r in records} - {genes})
    table, summary = summarize(records, sizes, genes)
    projection = project(records, sizes, genes, gene_sizes[-1] if gene_sizes else None)
    report = {
        "machine": machine,
        "command": command,
        "records": records,
        "summary": summary,
        "projection": projection,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    markdown = (
        f"Command: `{command}`\n\nMachine: {machine}\n\n"
        + tabulate(table, headers="keys", tablefmt="github", floatfmt=".3g")
        + "\n\n"
        + tabulate(summary, headers="keys", tablefmt="github", floatfmt=".3g")
        + "\n\n"
        + f"Projection for {FULL_GENES:,} genes x {FULL_SAMPLES:,} samples on this machine:\n\n"
        + tabulate(projection, headers="keys", tablefmt="github", floatfmt=".3g")
        + "\n"
    )
    (RESULTS / "latest.md").write_text(markdown)
    print("\n" + markdown)


def _row(record: dict, by: dict) -> dict:
    """One table row: time, throughput, peak memory and the stage's own figures."""
    row = {
        "N": record["n_samples"],
        "genes": record["n_genes"],
        "stage": record["stage"],
        "seconds": record["seconds"],
        "MB/s (uint32 counts)": record["counts_mb"] / record["seconds"],
        "peak MB": record["peak_rss_mb"],
        "note": "",
    }
    stage, key = record["stage"], (record["n_samples"], record["n_genes"])
    if stage not in {"plain_read", "register", "ingest", "target", "normalize", "by_gene"}:
        row["MB/s (uint32 counts)"] = None
    if stage == "metrics_naive":
        metrics_seconds = by[("metrics", *key)]["seconds"]
        row["note"] = (
            f"naive reference: {record['naive_seconds_measured']:.1f} s for "
            f"{record['naive_genes_measured']} genes, "
            f"{record['naive_seconds_all_genes']:.0f} s extrapolated to all; naive/streamed = "
            f"{record['naive_seconds_all_genes'] / metrics_seconds:.0f}x (goal >= 20); "
            f"max |diff| p95 {record['max_abs_diff_p95']:.1e}, "
            f"mean_cosine {record['max_abs_diff_mean_cosine']:.1e}"
        )
    if stage == "one_gene_query":
        row["seconds"] = record["one_gene_by_gene_seconds"]
        row["note"] = (
            f"one gene from the gene-clustered copy; full scan "
            f"{record['full_scan_seconds']:.3f} s "
            f"({record['full_scan_seconds'] / record['one_gene_by_gene_seconds']:.0f}x, "
            f"goal >= 20); one gene filtered from the block layer "
            f"{record['one_gene_blocks_seconds']:.3f} s"
        )
    if stage == "kernel_vs_qnorm":
        row["seconds"] = record["ours_seconds"]
        row["note"] = (
            f"block {record['block_shape']}: qnorm {record['qnorm_seconds']:.3f} s, "
            f"ours/qnorm = {record['ours_seconds'] / record['qnorm_seconds']:.2f} (goal <= 1)"
        )
    if stage == "features":
        row["note"] = (
            f"{record['labelled']} labelled samples, training set {record['train_rows']} "
            f"(cap {DEFAULT_MAX_TRAIN_SAMPLES}); feature space fitted on it, features of every "
            "sample"
        )
    if stage == "classifier":
        row["note"] = (
            f"Random Forest, 300 trees, on {record['train_rows']} training rows "
            f"({record['tree_nodes']:,} tree nodes)"
        )
    if stage == "gan_training":
        row["note"] = f"GAN, {record['epochs']} epochs, on {record['train_rows']} training rows"
    return row


def goal_figures(by: dict, sizes: list[int], genes: int) -> list[dict]:
    """The speed goals at every size: ratios against the references of the same run."""
    figures = []
    for n in sizes:
        at = (n, genes)
        naive = by[("metrics_naive", *at)]
        query = by[("one_gene_query", *at)]
        kernel = by[("kernel_vs_qnorm", *at)]
        for stage, reference, label in RATIOS:
            ratio = by[(stage, *at)]["seconds"] / by[(reference, *at)]["seconds"]
            figures.append({"N": n, "figure": label, "value": ratio})
        figures += [
            {
                "N": n,
                "figure": "normalization kernel / qnorm, same block (goal <= 1)",
                "value": kernel["ours_seconds"] / kernel["qnorm_seconds"],
            },
            {
                "N": n,
                "figure": "naive metrics / streamed metrics (goal >= 20)",
                "value": naive["naive_seconds_all_genes"] / by[("metrics", *at)]["seconds"],
            },
            {
                "N": n,
                "figure": "full scan / one-gene query (goal >= 20)",
                "value": query["full_scan_seconds"] / query["one_gene_by_gene_seconds"],
            },
        ]
    return figures


def scaling_figures(by: dict, sizes: list[int], genes: int) -> list[dict]:
    """Time exponents in N (all sizes, and the two largest) and peak memory ratios."""
    figures = []
    span = f"{sizes[0]}..{sizes[-1]}"
    for stage in SCALING_STAGES:
        seconds = [by[(stage, n, genes)]["seconds"] for n in sizes]
        memory = [by[(stage, n, genes)]["peak_rss_mb"] for n in sizes]
        figures += [
            {
                "N": span,
                "figure": f"{stage}: time exponent in N (goal <= 1.1)",
                "value": scaling_exponent(sizes, seconds),
            },
            {
                "N": f"{sizes[-2]}..{sizes[-1]}",
                "figure": f"{stage}: time exponent in N, two largest sizes",
                "value": scaling_exponent(sizes[-2:], seconds[-2:]),
            },
            {
                "N": span,
                "figure": f"{stage}: peak memory largest/smallest N (goal <= 1.2)",
                "value": memory[-1] / memory[0],
            },
        ]
    return figures


def gene_exponent(by: dict, stage: str, n: int, genes: int, more_genes: int) -> float:
    if stage in GENE_INDEPENDENT:
        return 0.0
    return scaling_exponent(
        [genes, more_genes],
        [by[(stage, n, genes)]["seconds"], by[(stage, n, more_genes)]["seconds"]],
    )


def summarize(records: list[dict], sizes: list[int], genes: int) -> tuple[list[dict], list[dict]]:
    by = {(r["stage"], r["n_samples"], r["n_genes"]): r for r in records}
    table = [_row(record, by) for record in records]
    summary = goal_figures(by, sizes, genes)
    if len(sizes) > 1:
        summary += scaling_figures(by, sizes, genes)
    more_genes = sorted({r["n_genes"] for r in records} - {genes})
    for other in more_genes:
        for stage in SCALING_STAGES:
            if stage not in GENE_INDEPENDENT:
                summary.append(
                    {
                        "N": sizes[0],
                        "figure": f"{stage}: time exponent in genes, {genes}..{other}",
                        "value": gene_exponent(by, stage, sizes[0], genes, other),
                    }
                )
    return table, summary


def project(
    records: list[dict], sizes: list[int], genes: int, more_genes: int | None
) -> list[dict]:
    """Time and peak memory of a full build at FULL_GENES x FULL_SAMPLES, stage by stage.

    Time: the stage's time at the largest N, scaled by the sample ratio to the power of its
    exponent between the two largest sizes and by the gene ratio to the power of its exponent
    between the gene counts measured at the smallest N, both at least 1 for the data stages.
    Peak memory: the peak at the most genes measured, times the stage's memory ratio from the
    smallest to the largest N (the memory per block does not depend on N). The model stages
    work on the capped training set of 50 features: their cost at the largest size is taken as
    is once the cap is reached, and scaled linearly up to the cap before.
    """
    if len(sizes) < 2 or more_genes is None:
        return []
    by = {(r["stage"], r["n_samples"], r["n_genes"]): r for r in records}
    smallest, largest = sizes[0], sizes[-1]
    rows = []
    for stage in BUILD_STAGES:
        at_largest = by[(stage, largest, genes)]
        if stage in GENE_INDEPENDENT:
            # Linear in training rows up to the cap (a bound: forests grow as n log n, with
            # nodes, and so memory, linear in n).
            scale = max(DEFAULT_MAX_TRAIN_SAMPLES / at_largest["train_rows"], 1.0)
            n_exponent = g_exponent = 0.0
            # Only the forest's memory grows with its rows; the GAN's networks do not.
            memory = at_largest["peak_rss_mb"] * (scale if stage == "classifier" else 1.0)
        else:
            before = by[(stage, sizes[-2], genes)]
            n_exponent = scaling_exponent(
                [sizes[-2], largest], [before["seconds"], at_largest["seconds"]]
            )
            g_exponent = gene_exponent(by, stage, smallest, genes, more_genes)
            growth = at_largest["peak_rss_mb"] / by[(stage, smallest, genes)]["peak_rss_mb"]
            memory = by[(stage, smallest, more_genes)]["peak_rss_mb"] * growth
        # Sub-linear fits reflect fixed costs that large inputs amortize: at least linear is
        # assumed, for the data stages, in both samples and genes.
        floor = 0.0 if stage in GENE_INDEPENDENT else 1.0
        seconds = (
            at_largest["seconds"]
            * (scale if stage in GENE_INDEPENDENT else 1.0)
            * (FULL_SAMPLES / largest) ** max(n_exponent, floor)
            * (FULL_GENES / genes) ** max(g_exponent, floor)
        )
        rows.append(
            {
                "stage": stage,
                "exponent in N": n_exponent,
                "exponent in genes": g_exponent,
                "hours": seconds / 3600,
                "peak GB": memory / 1024,
            }
        )
    rows.append(
        {
            "stage": "total (stages one after the other)",
            "exponent in N": None,
            "exponent in genes": None,
            "hours": sum(row["hours"] for row in rows),
            "peak GB": max(row["peak GB"] for row in rows),
        }
    )
    return rows


if __name__ == "__main__":
    sys.exit(main())
