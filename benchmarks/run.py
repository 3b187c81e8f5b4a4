"""`make bench`: time and peak memory of each stage at several sample counts, next to
references measured in the same run, with the scaling of time and memory in N.

Each size gets its own demo file (generated first, not timed) and warehouse; each stage runs in
a fresh process (`benchmarks.stages`) so its peak memory is its own. Results are printed as one
table and written to `benchmarks/results/latest.{json,md}` with the machine's description.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

from archs4.demo_data import ORIGINAL, write_demo_dataset
from archs4.splits import DEFAULT_MAX_TRAIN_SAMPLES
from benchmarks.report import (
    access_figures,
    api_table,
    coexpression_table,
    disk_figures,
    disk_table,
    figure,
    gene_access_table,
    kernel_figures,
    kernel_table,
    query_scaling_figures,
    sample_access_table,
    scaling_exponent,
)

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
    "block_checks",
    "by_gene",
    "metrics",
    "coexpression",
    "catalog",
    "metrics_naive",
    "one_gene_query",
    "coexpression_queries",
    "sample_access",
    "gene_access",
    "api_tasks",
    "kernel_vs_qnorm",
    "normalize_forms",
    "p95_forms",
    "features",
    "classifier",
    "baseline",
    "gan_training",
    "curve_point",
    # Last: what the build stages left on disk.
    "disk",
]
# The model stages see 50 features per sample whatever the number of genes.
GENE_INDEPENDENT = {"classifier", "gan_training", "curve_point"}
SCALING_STAGES = [
    "plain_read",
    "ingest",
    "target",
    "normalize",
    "block_checks",
    "by_gene",
    "metrics",
    "features",
    "classifier",
    "gan_training",
]
# Pairs of (stage, reference stage) whose time ratio is a goal.
RATIOS = [("ingest", "plain_read", "ingest / plain h5py read", ("<=", 2))]
# The full human release the projection is for.
FULL_SAMPLES, FULL_GENES = 900_000, 67_000
MB = 1 << 20
# Stages a full build runs once (the references and the query are not part of it).
BUILD_STAGES = [
    "register",
    "ingest",
    "target",
    "normalize",
    "block_checks",
    "by_gene",
    "metrics",
    "coexpression",
    "catalog",
    "features",
    "classifier",
    "baseline",
    "gan_training",
]
# The reference a full build is compared with: reading the whole matrix once with h5py.
REFERENCE_STAGE = "plain_read"
# Stages timed on one core, as the product runs them (one block per core).
SINGLE_CORE_STAGES = {"kernel_vs_qnorm", "normalize_forms", "p95_forms"}
SINGLE_CORE_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
}


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
    """Run one stage in a fresh process; its JSON record (its stderr is shown if it fails)."""
    env = {**os.environ, "ARCHS4_GENE_CHUNK_VALUES": GENE_CHUNK_VALUES}
    if stage in SINGLE_CORE_STAGES:
        env.update(SINGLE_CORE_ENV)
    command = [sys.executable, "-m", "benchmarks.stages", stage, str(source), str(warehouse)]
    output = subprocess.run(
        [*command, str(block_size)], check=False, capture_output=True, text=True, env=env
    )
    if output.returncode != 0:
        sys.stderr.write(output.stderr)
        output.check_returncode()
    return json.loads(output.stdout.strip().splitlines()[-1])


def _parser() -> argparse.ArgumentParser:
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
        "--results",
        type=Path,
        default=RESULTS,
        help="directory of latest.{json,md} (default benchmarks/results; another one keeps a "
        "small trial run from replacing the full run's report)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: write the report again from the records of latest.json",
    )
    return parser


# The bench-only dependency the access-path stages compare the warehouse with.
ARCHS4PY_VERSION = "1.0.4"


def check_bench_dependencies() -> None:
    """Fail before the first case, not an hour in, when archs4py is missing or another one."""
    try:
        found = importlib.metadata.version("archs4py")
    except importlib.metadata.PackageNotFoundError:
        found = None
    if found != ARCHS4PY_VERSION:
        raise SystemExit(
            f"the bench compares the warehouse with archs4py {ARCHS4PY_VERSION}, found "
            f"{found or 'none'}: pip install archs4py=={ARCHS4PY_VERSION} into this environment"
        )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    results: Path = args.results
    if args.render:
        stored = json.loads((results / "latest.json").read_text())
        genes = stored.get("genes", args.genes)  # older reports did not record it
        write_report(stored["records"], genes, stored["machine"], stored["command"], results)
        return 0
    check_bench_dependencies()

    sizes = [int(s) for s in args.sizes.split(",")]
    cases = [(n, args.genes, STAGE_ORDER) for n in sizes]
    # The gene-count cases run right after the smallest one: every kind of case is measured
    # once before the long ones.
    cases[1:1] = [
        (sizes[0], genes, [s for s in STAGE_ORDER if s not in GENE_INDEPENDENT])
        for genes in (int(g) for g in args.gene_sizes.split(",") if g)
    ]
    records: list[dict] = []
    results.mkdir(parents=True, exist_ok=True)
    (results / PARTIAL).unlink(missing_ok=True)
    for n_samples, n_genes, stages in cases:
        case = WORK / f"n{n_samples}_g{n_genes}"
        shutil.rmtree(case, ignore_errors=True)
        started = time.perf_counter()
        # The original demo: the performance figures stay comparable with earlier runs.
        paths = write_demo_dataset(
            case / "data", n_samples=n_samples, n_genes=n_genes, seed=1, realism=ORIGINAL
        )
        print(f"generated {n_samples} x {n_genes} in {time.perf_counter() - started:.0f} s")
        for stage in stages:
            record = run_stage(stage, paths.h5, case / "warehouse", args.block_size)
            record.update(n_samples=n_samples, n_genes=n_genes)
            records.append(record)
            with (results / PARTIAL).open("a") as partial:  # what a crash leaves measured
                partial.write(json.dumps(record) + "\n")
            print(f"  {stage:16s} {record['seconds']:8.2f} s  {record['peak_rss_mb']:7.0f} MB")
        if not args.keep:
            shutil.rmtree(case, ignore_errors=True)
    command = " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])])
    write_report(records, args.genes, machine(), command, results)
    (results / PARTIAL).unlink()
    return 0


SAMPLE_ACCESS_TITLE = (
    "Sample-wise access: the full profiles of 100 GSMs (seeded random over all samples) as a "
    "genes x samples matrix, best of 3 (archs4py: one run)"
)
GENE_ACCESS_TITLE = "Gene-wise access: one gene across all samples, best of 3 (archs4py: one run)"
KERNELS_TITLE = (
    "Kernels on the same data: numpy against its DuckDB SQL and Polars forms, best of 3 "
    "(normalize: one counts block file to normalized values; p95: the gene-clustered copy to "
    "every gene's p95)"
)
API_TITLE = (
    "Python API against archs4py 1.0.4 (same answers asserted; archs4py's gene and "
    "co-expression tasks timed on at most 500 samples and extrapolated)"
)
COEXPRESSION_TITLE = (
    "Gene co-expression: the stored top k (build: read the gene-clustered copy, then correlate "
    "in blocks) and `archs4 coexpressed -k 20` exactly over all samples (one streamed SQL pass) "
    "or looked up in the stored table, each the mean over 3 genes of the best of 3"
)
DISK_TITLE = (
    "Disk: bytes per value (value = one entry of the source genes x samples matrix), after the "
    "build stages"
)


def _markdown_table(title: str, rows: list[dict]) -> str:
    """A titled GitHub table, or nothing when the run has no such rows."""
    if not rows:
        return ""
    table = tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3g")
    return f"{title}\n\n{table}\n\n"


def write_report(
    records: list[dict], genes: int, machine: dict, command: str, results: Path = RESULTS
) -> None:
    """Print the tables and write them to `results`/latest.{json,md}."""
    sizes = sorted({r["n_samples"] for r in records if r["n_genes"] == genes})
    gene_sizes = sorted({r["n_genes"] for r in records} - {genes})
    by = {(r["stage"], r["n_samples"], r["n_genes"]): r for r in records}
    table, summary = summarize(records, sizes, genes)
    projection = project(records, sizes, genes, gene_sizes[-1] if gene_sizes else None)
    goals = projection_goals(projection)
    tables = {
        SAMPLE_ACCESS_TITLE: sample_access_table(by),
        GENE_ACCESS_TITLE: gene_access_table(by),
        API_TITLE: api_table(by),
        KERNELS_TITLE: kernel_table(by),
        COEXPRESSION_TITLE: coexpression_table(by),
        DISK_TITLE: disk_table(by),
    }
    report = {
        "machine": machine,
        "command": command,
        "genes": genes,
        "records": records,
        "summary": summary,
        "tables": tables,
        "projection": projection,
        "projection_goals": goals,
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / "latest.json").write_text(json.dumps(report, indent=2))
    markdown = (
        f"Command: `{command}`\n\nMachine: {machine}\n\n"
        + _markdown_table("Stages:", table)
        + _markdown_table("Goals and scaling:", summary)
        + "".join(_markdown_table(f"{title}:", rows) for title, rows in tables.items())
        + _markdown_table(
            f"Projection for {FULL_GENES:,} genes x {FULL_SAMPLES:,} samples on this machine:",
            projection,
        )
        + _markdown_table("Projection goals:", goals)
    )
    (results / "latest.md").write_text(markdown)
    print("\n" + markdown)


def _access_note(record: dict) -> str:
    """The note of the access-path stages' rows (details: the access tables)."""
    if record["stage"] == "sample_access":
        warehouse = record["warehouse_counts_seconds"]
        return (
            f"100 GSMs' counts through DuckDB; archs4py {record['archs4py_seconds']:.2f} s "
            f"({record['archs4py_seconds'] / warehouse:.1f}x), h5py "
            f"{record['h5py_seconds']:.2f} s; expression "
            f"{record['warehouse_expression_seconds']:.3f} s; counts equal archs4py's and h5py's"
        )
    warehouse = record["warehouse_by_gene_seconds"]
    return (
        f"one gene from expression_by_gene through DuckDB; archs4py "
        f"{record['archs4py_seconds']:.1f} s ({record['archs4py_seconds'] / warehouse:.0f}x), "
        f"h5py row {record['h5py_seconds']:.3f} s; counts (block layer) "
        f"{record['warehouse_counts_seconds']:.3f} s, equal archs4py's and h5py's"
    )


def _coexpression_note(record: dict) -> str:
    """The note of the co-expression stages' rows (details: the co-expression table)."""
    if record["stage"] == "coexpression":
        return (
            f"stored top {record['top_k']} of {record['genes_with_variance']} genes over "
            f"{record['samples_used']} samples: read {record['read_seconds']:.1f} s, "
            f"correlate {record['correlate_seconds']:.1f} s"
        )
    return (
        f"coexpressed -k 20: exact SQL {record['exact_seconds']:.2f} s, stored lookup "
        f"{record['lookup_seconds']:.3f} s; max |diff| by rank "
        f"{record['max_abs_diff_by_rank']:.1e} over {record['samples_used']} samples"
    )


def _model_note(record: dict) -> str:
    """The note of the feature, classifier, baseline and GAN stages' rows."""
    stage = record["stage"]
    if stage == "features":
        return (
            f"{record['labelled']} labelled samples, training set {record['train_rows']} "
            f"(cap {DEFAULT_MAX_TRAIN_SAMPLES}); feature space fitted on it, features of every "
            "sample"
        )
    if stage == "classifier":
        return (
            f"Random Forest, 300 trees, on {record['train_rows']} training rows "
            f"({record['tree_nodes']:,} tree nodes)"
        )
    if stage == "baseline":
        return (
            f"{record['labelled']} labelled samples (cap {DEFAULT_MAX_TRAIN_SAMPLES}): "
            f"{'; '.join(record['fits'])}; {record['test_rows']} test rows predicted block by "
            "block"
        )
    return f"GAN, {record['epochs']} epochs, on {record['train_rows']} training rows"


def _forms_note(record: dict) -> str:
    """The note of the kernel-form stages' rows: each SQL/Polars form against numpy."""
    ratios = ", ".join(
        f"{form} {record[f'{form}_seconds'] / record['numpy_seconds']:.1f}x "
        f"(|diff| {record[f'{form}_max_abs_diff']:.0e})"
        for form in ("duckdb", "duckdb_all_cores", "polars")
    )
    return f"numpy {record['numpy_seconds']:.3f} s; / numpy: {ratios}"


def _disk_note(record: dict) -> str:
    """The note of the disk stage's row: the whole warehouse against its source."""
    per_value = record["bytes_per_value"]
    return (
        f"warehouse {per_value['warehouse']:.2f} B/value = "
        f"{record['warehouse_over_source']:.2f}x the source ({per_value['source']:.2f} "
        f"B/value); absent: {', '.join(record['layers_absent']) or 'none'}"
    )


_NOTE_BY_STAGE = {
    "catalog": lambda record: f"views: {', '.join(record['views'])}",
    "sample_access": _access_note,
    "gene_access": _access_note,
    "normalize_forms": _forms_note,
    "p95_forms": _forms_note,
    "coexpression": _coexpression_note,
    "coexpression_queries": _coexpression_note,
    "disk": _disk_note,
    "features": _model_note,
    "classifier": _model_note,
    "baseline": _model_note,
    "gan_training": _model_note,
}


def _new_stage_note(record: dict) -> str:
    """The note of a stage whose row carries one (empty for the others)."""
    note = _NOTE_BY_STAGE.get(record["stage"])
    return note(record) if note else ""


def _row(record: dict, by: dict) -> dict:
    """One table row: time, throughput, peak memory and the stage's own figures."""
    row = {
        "N": record["n_samples"],
        "genes": record["n_genes"],
        "stage": record["stage"],
        "seconds": record["seconds"],
        "MB/s (uint32 counts)": record["counts_mb"] / record["seconds"],
        "peak MB": record["peak_rss_mb"],
        "note": _new_stage_note(record),
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
    if stage == "coexpression_queries":
        row["seconds"] = record["exact_seconds"]
    if stage == "kernel_vs_qnorm":
        row["seconds"] = record["ours_seconds"]
        row["note"] = (
            f"block {record['block_shape']}: qnorm {record['qnorm_seconds']:.3f} s, "
            f"ours/qnorm = {record['ours_seconds'] / record['qnorm_seconds']:.2f} (goal <= 1)"
        )
    return row


def goal_figures(by: dict, sizes: list[int], genes: int) -> list[dict]:
    """The speed goals at every size: ratios against the references of the same run."""
    figures = []
    for n in sizes:
        at = (n, genes)
        naive = by[("metrics_naive", *at)]
        query = by[("one_gene_query", *at)]
        kernel = by[("kernel_vs_qnorm", *at)]
        for stage, reference, label, goal in RATIOS:
            ratio = by[(stage, *at)]["seconds"] / by[(reference, *at)]["seconds"]
            figures.append(figure(n, label, ratio, goal))
        figures += [
            figure(
                n,
                "normalization kernel / qnorm, same block",
                kernel["ours_seconds"] / kernel["qnorm_seconds"],
                ("<=", 1),
            ),
            figure(
                n,
                "naive metrics / streamed metrics",
                naive["naive_seconds_all_genes"] / by[("metrics", *at)]["seconds"],
                (">=", 20),
            ),
            figure(
                n,
                "full scan / one-gene query",
                query["full_scan_seconds"] / query["one_gene_by_gene_seconds"],
                (">=", 20),
            ),
        ]
    return (
        figures
        + access_figures(by, sizes, genes)
        + kernel_figures(by, sizes, genes)
        + disk_figures(by, sizes, genes)
    )


def scaling_figures(by: dict, sizes: list[int], genes: int) -> list[dict]:
    """Time exponents in N (all sizes, and the two largest) and peak memory ratios."""
    figures = []
    span = f"{sizes[0]}..{sizes[-1]}"
    for stage in SCALING_STAGES:
        seconds = [by[(stage, n, genes)]["seconds"] for n in sizes]
        memory = [by[(stage, n, genes)]["peak_rss_mb"] for n in sizes]
        figures += [
            figure(
                span, f"{stage}: time exponent in N", scaling_exponent(sizes, seconds), ("<=", 1.1)
            ),
            figure(
                f"{sizes[-2]}..{sizes[-1]}",
                f"{stage}: time exponent in N, two largest sizes",
                scaling_exponent(sizes[-2:], seconds[-2:]),
            ),
            figure(
                span,
                f"{stage}: peak memory largest/smallest N",
                memory[-1] / memory[0],
                ("<=", 1.2),
            ),
        ]
    return figures + query_scaling_figures(by, sizes, genes)


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
                    figure(
                        sizes[0],
                        f"{stage}: time exponent in genes, {genes}..{other}",
                        gene_exponent(by, stage, sizes[0], genes, other),
                    )
                )
    return table, summary


def _projected_coexpression(
    by: dict, stage: str, sizes: list[int], genes: int, _more_genes: int
) -> dict[str, Any]:
    """The stored co-expression's projected hours and peak GB, from its largest-N case (whose
    samples are capped, as a full release's are): reading scales with the values (samples x
    genes), the correlations with genes^2 x the samples used, the memory with genes x the
    samples used (float32)."""
    measured = by[(stage, sizes[-1], genes)]
    used = min(FULL_SAMPLES, measured["max_samples"])
    read = measured["read_seconds"] * (FULL_SAMPLES / sizes[-1]) * (FULL_GENES / genes)
    correlate = (
        measured["correlate_seconds"]
        * (FULL_GENES / genes) ** 2
        * (used / measured["samples_used"])
    )
    extra_bytes = 4 * (FULL_GENES * used - genes * measured["samples_used"])
    return {
        "stage": stage,
        "exponent in N": None,
        "exponent in genes": None,
        "hours": (read + correlate) / 3600,
        "peak GB": (measured["peak_rss_mb"] + extra_bytes / MB) / 1024,
    }


def _projected_stage(
    by: dict, stage: str, sizes: list[int], genes: int, more_genes: int
) -> dict[str, Any]:
    """One stage's projected hours and peak GB (the method: see `project`)."""
    smallest, largest = sizes[0], sizes[-1]
    at_largest = by[(stage, largest, genes)]
    scale = 1.0
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
        * scale
        * (FULL_SAMPLES / largest) ** max(n_exponent, floor)
        * (FULL_GENES / genes) ** max(g_exponent, floor)
    )
    return {
        "stage": stage,
        "exponent in N": n_exponent,
        "exponent in genes": g_exponent,
        "hours": seconds / 3600,
        "peak GB": memory / 1024,
    }


# Stages whose cost does not follow the exponents fitted over the bench's sizes.
PROJECTIONS = {"coexpression": _projected_coexpression}
TOTAL_ROW = "total (stages one after the other)"
REFERENCE_ROW = f"{REFERENCE_STAGE} (reference, not in the total: h5py reads every block once)"


def project(
    records: list[dict], sizes: list[int], genes: int, more_genes: int | None
) -> list[dict]:
    """Time and peak memory of a full build at FULL_GENES x FULL_SAMPLES, stage by stage, and
    of the plain h5py read of the whole matrix projected the same way (the reference).

    Time: the stage's time at the largest N, scaled by the sample ratio to the power of its
    exponent between the two largest sizes and by the gene ratio to the power of its exponent
    between the gene counts measured at the smallest N, both at least 1 for the data stages.
    Peak memory: the peak at the most genes measured, times the stage's memory ratio from the
    smallest to the largest N (the memory per block does not depend on N). The model stages
    work on the capped training set of 50 features: their cost at the largest size is taken as
    is once the cap is reached, and scaled linearly up to the cap before. So is the stored
    co-expression, over its capped samples (`_projected_coexpression`). A build stage the run
    did not measure (an older `latest.json`) is left out.
    """
    if len(sizes) < 2 or more_genes is None:
        return []
    by = {(r["stage"], r["n_samples"], r["n_genes"]): r for r in records}
    rows = [
        PROJECTIONS.get(stage, _projected_stage)(by, stage, sizes, genes, more_genes)
        for stage in BUILD_STAGES
        if (stage, sizes[-1], genes) in by
    ]
    rows.append(
        {
            "stage": TOTAL_ROW,
            "exponent in N": None,
            "exponent in genes": None,
            "hours": sum(row["hours"] for row in rows),
            "peak GB": max(row["peak GB"] for row in rows),
        }
    )
    reference = _projected_stage(by, REFERENCE_STAGE, sizes, genes, more_genes)
    rows.append({**reference, "stage": REFERENCE_ROW})
    return rows


def projection_goals(projection: list[dict]) -> list[dict]:
    """The full-release goals: build time over the plain read's, and peak memory."""
    if not projection:
        return []
    rows = {row["stage"]: row for row in projection}
    total, reference = rows[TOTAL_ROW], rows[REFERENCE_ROW]
    full = f"{FULL_GENES:,} x {FULL_SAMPLES:,}"
    return [
        figure(
            full,
            "projected build hours / projected plain h5py read hours",
            total["hours"] / reference["hours"],
            ("<=", 12),
        ),
        figure(full, "projected peak memory of the build, GB", total["peak GB"], ("<=", 8)),
    ]


if __name__ == "__main__":
    sys.exit(main())
