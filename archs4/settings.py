"""Every `ARCHS4_*` environment variable, read and validated in one place.

A mistyped value (`ARCHS4_BLOCK_SIZE=abc`, `ARCHS4_LENGTH_ADJUSTMENT=bogus`) or a mistyped name
(`ARCHS4_BLOCKSIZE`) would otherwise surface hours later, or never, as a traceback that names
neither. `Settings.from_env` parses every variable once, checks its type and range, and raises
`SettingsError` naming the variable and its value; the rest of the code takes a `Settings`
object and reads no environment itself.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from archs4.budget import default_budget_bytes
from archs4.failures import InputError
from archs4.paths import PROJECT_ROOT

DEMO_DIR = PROJECT_ROOT / "data" / "demo"
DEMO_SOURCE = DEMO_DIR / "human_gene_v2.6_demo.h5"
DEMO_GTF = DEMO_DIR / "gencode.demo.annotation.gtf.gz"
DEMO_LABELS = DEMO_DIR / "labels"
DEMO_LABELS_TRUTH = DEMO_DIR / "labels_truth.tsv"
PREFIX = "ARCHS4_"
LENGTH_ADJUSTMENTS = ("divide", "subtract_log2", "none")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SENSOR_STATUSES = ("running", "stopped")
CURVE_LABEL_SETS = ("brain", "rare")
SPECIES = ("human", "mouse")
DEFAULT_LOG_DIR = Path("~/.local/state/archs4/logs").expanduser()


class SettingsError(InputError):
    """An `ARCHS4_*` variable with a value the warehouse cannot use; names the variable."""


def _path(value: str) -> Path:
    if not value.strip():
        raise ValueError("is empty")
    return Path(value).expanduser().absolute()


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError("is not a whole number") from None
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number

    return parse


_positive_int = _int_at_least(1)


def _positive_float(value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise ValueError("is not a number") from None
    if not number > 0 or number == float("inf"):
        raise ValueError("must be a positive number")
    return number


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(value: str) -> str:
        normalized = value.strip().upper() if upper else value.strip()
        if normalized not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return normalized

    return parse


def _cron(value: str) -> str:
    # Dagster's own schedule validation, through its public API: the schedule this value becomes
    # accepts exactly what this accepts.
    import dagster as dg

    try:
        dg.ScheduleDefinition(name="validate", cron_schedule=value.strip(), job_name="validate")
    except dg.DagsterInvalidDefinitionError:
        raise ValueError("is not a cron expression (five fields, e.g. '0 3 * * *')") from None
    return value.strip()


def _dask_address(value: str) -> str:
    if "://" not in value or not value.split("://", 1)[1]:
        raise ValueError("must be a scheduler address such as tcp://host:8786")
    return value.strip()


@dataclass(frozen=True)
class Variable:
    name: str
    parse: Callable[[str], Any]
    help: str


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        Variable("source", _path, "an ARCHS4 gene-level .h5 file or a directory of them"),
        Variable(
            "species",
            _choice(SPECIES),
            "the species of ARCHS4_SOURCE's releases this warehouse builds (needed when it "
            "holds both)",
        ),
        Variable("gtf", _path, "a GENCODE/Ensembl GTF (.gtf or .gtf.gz)"),
        Variable("labels", _path, "an ARCHS4 tissue/cell-line label download directory"),
        Variable("labels_truth", _path, "a ground-truth label table (gsm, label, ...)"),
        Variable("warehouse", _path, "the warehouse root"),
        Variable("log_dir", _path, "where failure details and run logs are written"),
        Variable("block_size", _positive_int, "samples per block"),
        Variable("workers", _positive_int, "block runs at once (default: the CPU count)"),
        Variable("memory_gb", _positive_float, "memory budget of the block workers, in GB"),
        Variable("length_adjustment", _choice(LENGTH_ADJUSTMENTS), "gene-length adjustment"),
        Variable("gene_chunk_values", _positive_int, "values per gene chunk"),
        Variable("log_level", _choice(LOG_LEVELS, upper=True), "log level of the run logs"),
        Variable("rf_trees", _positive_int, "trees of the Random Forest"),
        Variable("max_train_samples", _positive_int, "train samples the models are fitted on"),
        Variable("dask_scheduler", _dask_address, "a Dask scheduler address"),
        Variable("gan_epochs", _positive_int, "GAN training epochs"),
        Variable(
            "curve_labels",
            _choice(CURVE_LABEL_SETS),
            "labels of the augmentation curve: brain, or brain and every rare label",
        ),
        Variable("curve_seeds", _positive_int, "seeds of each point of the augmentation curve"),
        Variable("curve_gan_epochs", _positive_int, "epochs of each GAN of the curve"),
        Variable("sensor_interval", _positive_int, "seconds between release_sensor ticks"),
        Variable("sensor_status", _choice(SENSOR_STATUSES), "default status of release_sensor"),
        Variable("update_cron", _cron, "cron of the daily_update schedule"),
        Variable("api_max_values", _positive_int, "largest matrix the Python API returns"),
        Variable(
            "check_recomputed_samples",
            _positive_int,
            "samples per block whose expression values the blocking check recomputes in SQL",
        ),
        Variable(
            "coexpression_samples",
            _int_at_least(2),  # a correlation needs two samples
            "samples the stored gene co-expression is computed over",
        ),
    ]
}


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one process. `None` means "not set": the demo's file,
    a default, or nothing (see each property)."""

    source: Path | None = None
    species: str | None = None
    gtf: Path | None = None
    labels: Path | None = None
    labels_truth: Path | None = None
    warehouse: Path = PROJECT_ROOT / "warehouse"
    log_dir: Path = DEFAULT_LOG_DIR
    block_size: int = 2000
    workers: int | None = None
    memory_gb: float | None = None
    length_adjustment: str = "divide"
    gene_chunk_values: int = 64 << 20
    log_level: str = "INFO"
    rf_trees: int = 300
    max_train_samples: int = 20000
    dask_scheduler: str | None = None
    gan_epochs: int = 600
    # The default curve (brain, 3 seeds, 50-epoch GANs) costs ~12 min on the demo; the full
    # setting is ARCHS4_CURVE_LABELS=rare ARCHS4_CURVE_SEEDS=5 (README, "Learning curve").
    curve_labels: str = "brain"
    curve_seeds: int = 3
    curve_gan_epochs: int = 50
    sensor_interval: int = 300
    sensor_status: str = "running"
    update_cron: str = "0 3 * * *"
    # 250M values: 1 GB of float32, a few times that while a DataFrame is built.
    api_max_values: int = 250_000_000
    # 100 of a 2,000-sample block of 60,000 genes (the rehearsal's): the check takes 19 s on one
    # thread instead of 118 s recomputing every sample (5.5 min beside the other block workers),
    # against ~1 min of normalization.
    check_recomputed_samples: int = 100
    # 20,000 samples: 5.4 GB of float32 at 67,000 genes (archs4.coexpression).
    coexpression_samples: int = 20_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse every `ARCHS4_*` variable of `environ` (default: the process environment)."""
        environ = os.environ if environ is None else environ
        known = {f"{PREFIX}{name.upper()}": name for name in VARIABLES}
        values: dict[str, Any] = {}
        for key, raw in environ.items():
            if not key.startswith(PREFIX):
                continue
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise SettingsError(f"{key}: unknown variable{hint} (known: {', '.join(known)})")
            if raw == "":
                continue  # an empty variable means "not set", as in make's `VAR=`
            name = known[key]
            try:
                values[name] = VARIABLES[name].parse(raw)
            except ValueError as problem:
                raise SettingsError(f"{key}={raw!r}: {problem} ({VARIABLES[name].help})") from None
        return cls(**values)

    @staticmethod
    def log_dir_from_env(environ: Mapping[str, str] | None = None) -> Path:
        """`ARCHS4_LOG_DIR` alone, never raising: where to log that the other settings failed."""
        raw = (os.environ if environ is None else environ).get(f"{PREFIX}LOG_DIR", "")
        try:
            return _path(raw)
        except ValueError:
            return DEFAULT_LOG_DIR

    @property
    def is_demo(self) -> bool:
        """True when no source is set: the embedded demo dataset (and its labels) is used."""
        return self.source is None

    @property
    def source_path(self) -> Path:
        return self.source or DEMO_SOURCE

    @property
    def gtf_path(self) -> Path:
        return self.gtf or DEMO_GTF

    @property
    def labels_path(self) -> Path | None:
        return self.labels or (DEMO_LABELS if self.is_demo else None)

    @property
    def labels_truth_path(self) -> Path | None:
        return self.labels_truth or (DEMO_LABELS_TRUTH if self.is_demo else None)

    @property
    def worker_count(self) -> int:
        """`ARCHS4_WORKERS`, by default one per CPU core."""
        return self.workers or os.cpu_count() or 1

    @property
    def memory_budget_bytes(self) -> int:
        """`ARCHS4_MEMORY_GB`, by default 3/4 of the machine's memory, at most 90% of what is
        available when the command starts."""
        if self.memory_gb is not None:
            return int(self.memory_gb * 1e9)
        return default_budget_bytes()

    def as_environment(self) -> dict[str, str]:
        """The variables that reproduce these settings (for child processes and logs)."""
        return {
            f"{PREFIX}{field.name.upper()}": str(getattr(self, field.name))
            for field in fields(self)
            if getattr(self, field.name) is not None
        }
