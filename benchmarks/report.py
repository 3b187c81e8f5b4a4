"""Report tables and goal figures of the access-path, kernel-form and disk stages.

`benchmarks.run` prints these beside its stage table: one table per question (sample-wise and
gene-wise access, the kernels' SQL/Polars forms, bytes per value), each row one case (N
samples x genes) of the same run, and goal figures with a verdict ("goal met": yes/no, empty
where the goal is judged at another size). Records missing from a run (an older
`latest.json`) are skipped, not errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Key = tuple[str, int, int]
Records = dict[Key, dict]
Goal = tuple[str, float]  # ("<=" or ">=", threshold)

DISK_LAYERS = [
    ("counts", "raw/counts"),
    ("expression", "normalized/expression"),
    ("expression_by_gene", "normalized/expression_by_gene"),
    ("samples", "raw/samples"),
    ("metrics", "metrics"),
    ("model", "model"),
    ("other", "other"),
]
KERNEL_FORMS = [
    ("numpy", "numpy (1 thread)"),
    ("duckdb", "DuckDB SQL (1 thread)"),
    ("duckdb_all_cores", "DuckDB SQL (all cores)"),
    ("polars", "Polars (1 thread)"),
]
KERNELS = [("normalize_forms", "normalize one block"), ("p95_forms", "p95 of every gene")]


def scaling_exponent(sizes: list[int], values: list[float]) -> float:
    """Slope of log(value) against log(N): 1 is linear."""
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def figure(
    n: int | str,
    label: str,
    value: float | None,
    goal: Goal | None = None,
    *,
    judged: bool = True,
    where: str = "",
) -> dict[str, Any]:
    """One summary row; `label (goal op threshold[where])`, and whether the goal is met when
    it is `judged` at this row (a goal for the largest size is judged only there)."""
    text = label if goal is None else f"{label} (goal {goal[0]} {goal[1]:g}{where})"
    met = ""
    if goal is not None and judged and value is not None:
        passed = value <= goal[1] if goal[0] == "<=" else value >= goal[1]
        met = "yes" if passed else "no"
    return {"N": n, "figure": text, "value": value, "goal met": met}


def _cases(by: Records, stage: str) -> list[tuple[int, int]]:
    """(N, genes) of every case that ran `stage`, genes first then N."""
    return sorted({(n, g) for s, n, g in by if s == stage}, key=lambda case: (case[1], case[0]))


def sample_access_table(by: Records) -> list[dict[str, Any]]:
    """Sample-wise access: 100 GSMs' full profiles, warehouse against archs4py and h5py."""
    rows = []
    for n, genes in _cases(by, "sample_access"):
        r = by[("sample_access", n, genes)]
        rows.append(
            {
                "N": n,
                "genes": genes,
                "warehouse counts s": r["warehouse_counts_seconds"],
                "warehouse expression s": r["warehouse_expression_seconds"],
                "archs4py s": r["archs4py_seconds"],
                "h5py s": r["h5py_seconds"],
                "archs4py / warehouse": r["archs4py_seconds"] / r["warehouse_counts_seconds"],
                "h5py / warehouse": r["h5py_seconds"] / r["warehouse_counts_seconds"],
                "counts equal": "yes" if r["counts_equal_archs4py_and_h5py"] else "no",
            }
        )
    return rows


def gene_access_table(by: Records) -> list[dict[str, Any]]:
    """Gene-wise access: one gene across all samples, warehouse against archs4py and h5py."""
    rows = []
    for n, genes in _cases(by, "gene_access"):
        r = by[("gene_access", n, genes)]
        extrapolated = r["archs4py_samples_measured"] < n
        rows.append(
            {
                "N": n,
                "genes": genes,
                "expression_by_gene s": r["warehouse_by_gene_seconds"],
                "counts (block layer) s": r["warehouse_counts_seconds"],
                "archs4py s": r["archs4py_seconds"],
                "archs4py measured on": (
                    f"{r['archs4py_samples_measured']} samples, extrapolated"
                    if extrapolated
                    else "all samples"
                ),
                "h5py row s": r["h5py_seconds"],
                "archs4py / warehouse": r["archs4py_seconds"] / r["warehouse_by_gene_seconds"],
                "h5py / warehouse": r["h5py_seconds"] / r["warehouse_by_gene_seconds"],
            }
        )
    return rows


API_TASKS = ["search_then_genes", "profiles_100", "one_gene", "coexpression"]


def api_table(by: Records) -> list[dict[str, Any]]:
    """The Python API's everyday tasks against archs4py's, same answers, same run."""
    rows = []
    for n, genes in _cases(by, "api_tasks"):
        r = by[("api_tasks", n, genes)]
        for task in API_TASKS:
            api, reference = r[f"api_{task}_seconds"], r[f"archs4py_{task}_seconds"]
            rows.append(
                {
                    "N": n,
                    "genes": genes,
                    "task": task,
                    "API s": api,
                    "archs4py s": reference,
                    "archs4py / API (goal > 1)": reference / api,
                    "archs4py extrapolated": task in {"one_gene", "coexpression"}
                    and r["archs4py_samples_measured"] < n,
                }
            )
    return rows


def kernel_table(by: Records) -> list[dict[str, Any]]:
    """Each kernel form's time, ratio to numpy, peak memory and max |diff| against numpy."""
    rows = []
    for stage, kernel in KERNELS:
        for n, genes in _cases(by, stage):
            r = by[(stage, n, genes)]
            for form, name in KERNEL_FORMS:
                rows.append(
                    {
                        "N": n,
                        "genes": genes,
                        "kernel": kernel,
                        "form": name,
                        "seconds": r[f"{form}_seconds"],
                        "/ numpy": r[f"{form}_seconds"] / r["numpy_seconds"],
                        "peak MB": r[f"{form}_peak_mb"],
                        "max |diff| vs numpy": r.get(f"{form}_max_abs_diff"),
                    }
                )
    return rows


def coexpression_table(by: Records) -> list[dict[str, Any]]:
    """Gene co-expression per case: the stored top k's build (its two phases and peak memory)
    and `archs4 coexpressed -k 20` both ways, with how far their correlations are apart."""
    rows = []
    for n, genes in _cases(by, "coexpression"):
        build = by[("coexpression", n, genes)]
        queries = by.get(("coexpression_queries", n, genes))
        row: dict[str, Any] = {
            "N": n,
            "genes": genes,
            "samples used": build["samples_used"],
            "build s": build["seconds"],
            "read s": build["read_seconds"],
            "correlate s": build["correlate_seconds"],
            "build peak MB": build["peak_rss_mb"],
        }
        if queries:
            row.update(
                {
                    "exact SQL s": queries["exact_seconds"],
                    "exact SQL peak MB": queries["exact_peak_mb"],
                    "stored lookup s": queries["lookup_seconds"],
                    "exact / lookup": queries["exact_seconds"] / queries["lookup_seconds"],
                    "max |diff| by rank": queries["max_abs_diff_by_rank"],
                }
            )
        rows.append(row)
    return rows


def disk_table(by: Records) -> list[dict[str, Any]]:
    """Bytes per value (value = one entry of the source genes x samples matrix) per layer."""
    rows = []
    for n, genes in _cases(by, "disk"):
        r = by[("disk", n, genes)]
        per_value = r["bytes_per_value"]
        rows.append(
            {
                "N": n,
                "genes": genes,
                "source h5": per_value["source"],
                **{name: per_value[layer] for name, layer in DISK_LAYERS},
                "warehouse": per_value["warehouse"],
                "warehouse / source": r["warehouse_over_source"],
                "warehouse GB": r["warehouse_bytes"] / 1e9,
            }
        )
    return rows


def access_figures(by: Records, sizes: list[int], genes: int) -> list[dict[str, Any]]:
    """archs4py and h5py against the warehouse at every size; the goals hold at the largest."""
    rows = []
    paths = (  # stage, warehouse time, what is compared, its goal, the h5py comparison
        ("sample_access", "warehouse_counts_seconds", "100 GSMs: archs4py / warehouse "
         "(DuckDB, counts)", 5, "100 GSMs: plain h5py / warehouse"),
        ("gene_access", "warehouse_by_gene_seconds", "one gene: archs4py / warehouse "
         "(DuckDB, expression_by_gene)", 100, "one gene: plain h5py row / warehouse"),
    )  # fmt: skip
    for n in sizes:
        for stage, key, label, goal, h5py_label in paths:
            record = by.get((stage, n, genes))
            if not record:
                continue
            warehouse = record[key]
            rows += [
                figure(
                    n,
                    label,
                    record["archs4py_seconds"] / warehouse,
                    (">=", goal),
                    judged=n == sizes[-1],
                    where=" at the largest N",
                ),
                figure(n, h5py_label, record["h5py_seconds"] / warehouse),
            ]
    return rows


def kernel_figures(by: Records, sizes: list[int], genes: int) -> list[dict[str, Any]]:
    """The SQL and Polars forms' time over numpy's, single core, at every size."""
    rows = []
    for n in sizes:
        for stage, kernel in KERNELS:
            record = by.get((stage, n, genes))
            if record:
                for form in ("duckdb", "polars"):
                    name = dict(KERNEL_FORMS)[form]
                    ratio = record[f"{form}_seconds"] / record["numpy_seconds"]
                    rows.append(figure(n, f"{kernel}: {name} / numpy", ratio))
    return rows


def disk_figures(by: Records, sizes: list[int], genes: int) -> list[dict[str, Any]]:
    """Whole warehouse bytes over the source file's. The goal holds at the rehearsal size
    (`make rehearsal`, which records its own bytes); here it is judged at the bench's largest
    N, the nearest size the bench measures."""
    return [
        figure(
            n,
            "whole warehouse / source HDF5 bytes",
            by[("disk", n, genes)]["warehouse_over_source"],
            ("<=", 3),
            judged=n == sizes[-1],
            where=" at the rehearsal size; judged at the largest N",
        )
        for n in sizes
        if ("disk", n, genes) in by
    ]


# (stage, seconds key, label) of the warehouse queries whose time must not grow with N.
QUERY_SCALING = [
    ("sample_access", "warehouse_counts_seconds", "100 GSMs, counts"),
    ("sample_access", "warehouse_expression_seconds", "100 GSMs, expression"),
    ("gene_access", "warehouse_by_gene_seconds", "one gene, expression_by_gene"),
    ("gene_access", "warehouse_counts_seconds", "one gene, counts (block layer)"),
]


def query_scaling_figures(by: Records, sizes: list[int], genes: int) -> list[dict[str, Any]]:
    """Time exponents in N of the warehouse queries (all sizes: goal <= 0.2; two largest)."""
    rows = []
    for stage, key, label in QUERY_SCALING:
        if len(sizes) < 2 or not all((stage, n, genes) in by for n in sizes):
            continue
        seconds = [by[(stage, n, genes)][key] for n in sizes]
        rows += [
            figure(
                f"{sizes[0]}..{sizes[-1]}",
                f"warehouse query {label}: time exponent in N",
                scaling_exponent(sizes, seconds),
                ("<=", 0.2),
            ),
            figure(
                f"{sizes[-2]}..{sizes[-1]}",
                f"warehouse query {label}: time exponent in N, two largest sizes",
                scaling_exponent(sizes[-2:], seconds[-2:]),
            ),
        ]
    return rows
