"""Settings: every `ARCHS4_*` variable parsed and validated in one place, a bad one named; and
how a failure reaches the user (one line, the detail in a log)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from archs4.failures import InputError, failure_line, one_line
from archs4.settings import DEMO_LABELS, DEMO_SOURCE, VARIABLES, Settings, SettingsError
from dagster_project.run_log import run_log

PROJECT = Path(__file__).resolve().parent.parent


def test_defaults_without_variables() -> None:
    settings = Settings.from_env({"PATH": "/bin", "HOME": "/root"})
    assert settings == Settings()
    assert settings.is_demo
    assert settings.source_path == DEMO_SOURCE
    assert settings.labels_path == DEMO_LABELS


def test_values_are_parsed(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "ARCHS4_SOURCE": str(tmp_path / "h.h5"),
            "ARCHS4_BLOCK_SIZE": " 500 ",
            "ARCHS4_LENGTH_ADJUSTMENT": "subtract_log2",
            "ARCHS4_LOG_LEVEL": "debug",
            "ARCHS4_UPDATE_CRON": "15 4 * * 1",
            "ARCHS4_DASK_SCHEDULER": "tcp://127.0.0.1:8786",
            "ARCHS4_SPECIES": "mouse",
            "ARCHS4_LABELS": "",  # empty means unset
        }
    )
    assert settings.species == "mouse"
    assert settings.source == tmp_path / "h.h5"
    assert not settings.is_demo
    assert settings.labels_path is None  # no demo labels for a real source
    assert settings.block_size == 500
    assert settings.length_adjustment == "subtract_log2"
    assert settings.log_level == "DEBUG"
    assert settings.update_cron == "15 4 * * 1"
    assert settings.dask_scheduler == "tcp://127.0.0.1:8786"


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({"ARCHS4_WAREHOUSE": "wh"}).warehouse == tmp_path / "wh"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("ARCHS4_BLOCK_SIZE", "abc", "is not a whole number"),
        ("ARCHS4_BLOCK_SIZE", "0", "must be at least 1"),
        ("ARCHS4_BLOCK_SIZE", "-3", "must be at least 1"),
        ("ARCHS4_GENE_CHUNK_VALUES", "1.5", "is not a whole number"),
        ("ARCHS4_RF_TREES", "many", "is not a whole number"),
        ("ARCHS4_MAX_TRAIN_SAMPLES", "0", "must be at least 1"),
        ("ARCHS4_GAN_EPOCHS", "1e3", "is not a whole number"),
        ("ARCHS4_SENSOR_INTERVAL", "soon", "is not a whole number"),
        ("ARCHS4_LENGTH_ADJUSTMENT", "bogus", "must be one of divide, subtract_log2, none"),
        ("ARCHS4_LOG_LEVEL", "LOUD", "must be one of DEBUG"),
        ("ARCHS4_SENSOR_STATUS", "paused", "must be one of running, stopped"),
        ("ARCHS4_SPECIES", "zebrafish", "must be one of human, mouse"),
        ("ARCHS4_UPDATE_CRON", "daily", "is not a cron expression"),
        ("ARCHS4_DASK_SCHEDULER", "localhost", "must be a scheduler address"),
        ("ARCHS4_WAREHOUSE", "   ", "is empty"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})
    assert str(error.value).startswith(f"{variable}={value!r}: {problem}")
    assert isinstance(error.value, InputError)


def test_unknown_variable_is_refused_with_a_suggestion() -> None:
    with pytest.raises(SettingsError, match=r"ARCHS4_BLOCKSIZE: unknown variable; did you mean "):
        Settings.from_env({"ARCHS4_BLOCKSIZE": "10"})


def test_every_variable_is_a_field() -> None:
    fields = set(Settings.__dataclass_fields__)
    assert set(VARIABLES) == fields
    assert set(Settings().as_environment()) <= {f"ARCHS4_{name.upper()}" for name in fields}


def test_log_dir_from_env_never_raises(tmp_path: Path) -> None:
    assert Settings.log_dir_from_env({"ARCHS4_LOG_DIR": str(tmp_path)}) == tmp_path
    assert Settings.log_dir_from_env({"ARCHS4_LOG_DIR": " "}) == Settings().log_dir


def test_failure_line_names_a_log_with_the_traceback(tmp_path: Path) -> None:
    try:
        raise InputError("x.h5 [meta/samples/title]: one short\n  more detail")
    except InputError as error:
        line = failure_line("archs4 run", error, tmp_path / "logs")
    assert line.startswith("archs4 run: x.h5 [meta/samples/title]: one short (details: ")
    assert "\n" not in line
    log = Path(line.rsplit("(details: ", 1)[1].rstrip(")"))
    assert log.parent == tmp_path / "logs"
    text = log.read_text()
    assert "more detail" in text and "Traceback" in text


def test_one_line() -> None:
    assert one_line("first   line\n second") == "first line"
    assert one_line("\n\n") == "failed"


def test_run_log_captures_python_and_descriptor_output(tmp_path: Path) -> None:
    script = f"""
import os, sys
sys.path.insert(0, {str(PROJECT)!r})
from pathlib import Path
from dagster_project.run_log import run_log
with run_log(Path({str(tmp_path)!r}), "run") as log:
    print("python stdout")
    print("python stderr", file=sys.stderr)
    os.write(1, b"fd one\\n")
    os.write(2, b"fd two\\n")
    log.say("to the terminal")
print("after")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout == "to the terminal\nafter\n"
    assert done.stderr == ""
    (log,) = tmp_path.glob("run-*.log")
    text = log.read_text()
    for line in ("python stdout", "python stderr", "fd one", "fd two", "to the terminal"):
        assert line in text


def test_run_log_restores_streams_after_an_error(tmp_path: Path) -> None:
    before = os.fstat(1).st_ino, os.fstat(2).st_ino
    with pytest.raises(RuntimeError), run_log(tmp_path, "run"):
        raise RuntimeError("boom")
    assert (os.fstat(1).st_ino, os.fstat(2).st_ino) == before


def test_code_location_load_error_names_the_variable(tmp_path: Path) -> None:
    """What `make ui` shows: the code location fails to load, naming the variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHS4_")}
    env |= {"ARCHS4_BLOCK_SIZE": "abc", "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster = str(Path(sys.executable).parent / "dagster")
    done = subprocess.run(
        [dagster, "definitions", "validate"],  # the location of [tool.dg], from the cwd
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT,
    )
    assert done.returncode != 0
    assert "ARCHS4_BLOCK_SIZE='abc': is not a whole number" in done.stdout + done.stderr
