"""`make rehearsal`: the real `make run`, end to end, on a generated release of at least 50,000
samples x 60,000 genes, measured.

The demo generator writes the file (ARCHS4 v2.6 layout, GTF and label lists) block by block;
then `python -m dagster_project.headless run` runs on it exactly as `make run` would, in a
fresh warehouse and Dagster instance, while this process samples the memory of the whole
process tree. Recorded in `benchmarks/results/rehearsal.json`: sizes, wall time, peak memory,
each stage's seconds (summed over its runs, from the Dagster instance), warehouse and source
bytes, the zero fraction of the counts, and the machine. The generated files are removed at
the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import dagster as dg
import duckdb
import psutil

from archs4.demo_data import ORIGINAL, write_demo_dataset
from benchmarks.disk import layer_bytes
from benchmarks.run import RESULTS, WORK, machine

SAMPLE_INTERVAL_SECONDS = 0.5


def peak_tree_rss(process: psutil.Process, stop: threading.Event, peak: list[int]) -> None:
    """Sample the summed RSS of `process` and its descendants until `stop` is set."""
    while not stop.is_set():
        try:
            tree = [process, *process.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in tree if p.is_running())
        except psutil.Error:
            rss = 0
        peak[0] = max(peak[0], rss)
        time.sleep(SAMPLE_INTERVAL_SECONDS)


def run_pipeline(env: dict[str, str], log: Path) -> tuple[float, int, int]:
    """Run the headless `make run`; returns (wall seconds, peak tree RSS bytes, exit code)."""
    started = time.perf_counter()
    with log.open("w") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "dagster_project.headless", "run"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        stop, peak = threading.Event(), [0]
        sampler = threading.Thread(
            target=peak_tree_rss, args=(psutil.Process(child.pid), stop, peak), daemon=True
        )
        sampler.start()
        code = child.wait()
        stop.set()
        sampler.join()
    return time.perf_counter() - started, peak[0], code


def stage_seconds(dagster_home: Path) -> dict[str, float]:
    """Seconds per asset, summed over its runs (blocks), from the instance's run records."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    seconds: dict[str, float] = defaultdict(float)
    with dg.DagsterInstance.get() as instance:
        for record in instance.get_run_records():
            run = record.dagster_run
            if record.start_time is None or record.end_time is None:
                continue
            names = sorted(key.to_user_string() for key in run.asset_selection or [])
            seconds[", ".join(names) or run.job_name] += record.end_time - record.start_time
    return {name: round(value, 1) for name, value in sorted(seconds.items())}


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def zero_fraction(warehouse: Path) -> float:
    glob = str(warehouse / "raw" / "counts" / "block=*" / "*.parquet")
    with duckdb.connect() as connection:
        row = connection.execute(
            "SELECT avg(CASE WHEN count = 0 THEN 1.0 ELSE 0.0 END) FROM read_parquet(?)", [glob]
        ).fetchone()
    return round(float(row[0]), 4) if row else float("nan")


def source_commit() -> str:
    """The commit the rehearsal ran (with `+dirty` when the work tree had changes)."""
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty=+dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
        check=False,
    )
    return run.stdout.strip() or "unknown"


def environment(work: Path, demo: Path) -> dict[str, str]:
    home = work / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).resolve().parent.parent / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHS4_")}
    return env | {
        "ARCHS4_SOURCE": str(demo / "human_gene_v2.6_demo.h5"),
        "ARCHS4_GTF": str(demo / "gencode.demo.annotation.gtf.gz"),
        "ARCHS4_LABELS": str(demo / "labels"),
        "ARCHS4_WAREHOUSE": str(work / "warehouse"),
        "ARCHS4_LOG_DIR": str(work / "logs"),
        "DAGSTER_HOME": str(home),
    }


def set_aside_interrupted_attempts(work: Path) -> list[dict[str, object]]:
    """Move an interrupted attempt's Dagster instance and log aside (numbered), and return
    every interrupted attempt's stage seconds, so a resumed rehearsal records them all."""
    number = len(list(work.glob("dagster.interrupted-*"))) + 1
    if (work / "dagster").is_dir():
        (work / "dagster").rename(work / f"dagster.interrupted-{number}")
        (work / "make_run.log").rename(work / f"make_run.interrupted-{number}.log")
    return [
        {"attempt": home.name, "stage_seconds": stage_seconds(home)}
        for home in sorted(work.glob("dagster.interrupted-*"))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rehearsal")
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--genes", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="run `make run` again on the release and warehouse an interrupted rehearsal left "
        "(with a fresh Dagster instance: the killed runs never finished in the old one)",
    )
    args = parser.parse_args(argv)
    work = WORK / "rehearsal"
    demo = work / "data"
    earlier: list[dict[str, object]] = []
    if args.resume:
        earlier = set_aside_interrupted_attempts(work)
        generate_seconds = None
    else:
        shutil.rmtree(work, ignore_errors=True)
        started = time.perf_counter()
        write_demo_dataset(
            demo, n_samples=args.samples, n_genes=args.genes, seed=args.seed, realism=ORIGINAL
        )
        generate_seconds = round(time.perf_counter() - started, 1)
    env = environment(work, demo)
    wall, peak, code = run_pipeline(env, work / "make_run.log")
    if code != 0:
        print((work / "make_run.log").read_text()[-3000:], file=sys.stderr)
        return code
    record = {
        "command": "make rehearsal",
        "n_samples": args.samples,
        "n_genes": args.genes,
        "generate_seconds": generate_seconds,
        "wall_seconds": round(wall, 1),
        "peak_rss_gb": round(peak / 1e9, 2),
        "warehouse_bytes": directory_bytes(work / "warehouse"),
        "layer_bytes": layer_bytes(work / "warehouse")[0],
        "source_bytes": (demo / "human_gene_v2.6_demo.h5").stat().st_size,
        "stage_seconds": stage_seconds(work / "dagster"),
        "counts_zero_fraction": zero_fraction(work / "warehouse"),
        "machine": machine(),
        "commit": source_commit(),
        "interrupted_attempts": earlier,
    }
    record["warehouse_over_source"] = round(record["warehouse_bytes"] / record["source_bytes"], 2)
    values = args.samples * args.genes
    record["bytes_per_value"] = {
        layer: round(size / values, 3) for layer, size in record["layer_bytes"].items()
    } | {"source": round(record["source_bytes"] / values, 3)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rehearsal.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
