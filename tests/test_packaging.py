"""A regular (non-editable) install works outside the checkout (issue #13).

The project is built as an sdist from a copy of the checkout (so the build writes nothing into
the checkout), and the sdist is installed with `pip install --target` (no network, no build
isolation: setuptools comes from this virtualenv), as `pip install archs4-warehouse` from an
index would: the sdist must carry `sql/` and `assets/`, and the wheel built from it must put them
inside the package. The installed code then runs in child processes started outside the
checkout with `python -S -P` and `PYTHONPATH` = the install, then this virtualenv's
site-packages for the dependencies: `-S` skips the virtualenv's `.pth` files, among them the
editable install of this checkout, and `-P` keeps the working directory off `sys.path`, so
nothing of the checkout is importable.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import setuptools

from archs4.cli import main

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parent.parent
# Local state next to the source, not part of it (ignored by git; some of it large).
NOT_SOURCE = {".git", ".venv", ".dagster", "data", "warehouse", "logs", "build", "benchmarks/work"}
NOT_SOURCE_ANYWHERE = ("__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache")
STATIC_DIRS = {"sql": "_sql", "assets": "_assets"}  # top-level directory -> installed name
TIMEOUT = 120


def _ignore(directory: str, names: list[str]) -> set[str]:
    relative = Path(directory).relative_to(CHECKOUT)
    ignored = set(shutil.ignore_patterns(*NOT_SOURCE_ANYWHERE)(directory, names))
    return ignored | {name for name in names if (relative / name).as_posix() in NOT_SOURCE}


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=TIMEOUT, **kwargs
    )


def _files(directory: Path) -> dict[str, Path]:
    """Every file under `directory` by its relative path (no hidden files, no caches)."""
    return {
        path.relative_to(directory).as_posix(): path
        for path in sorted(directory.rglob("*"))
        if path.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in path.parts)
    }


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as an sdist and installed (non-editable) into a temporary directory."""
    tmp = tmp_path_factory.mktemp("packaging")
    source, dist, target = tmp / "source", tmp / "dist", tmp / "site"
    shutil.copytree(CHECKOUT, source, ignore=_ignore, symlinks=True)
    build_sdist = (
        "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    )
    built = _run([sys.executable, "-c", build_sdist, str(dist)], cwd=source)
    assert built.returncode == 0, built.stderr
    (sdist,) = dist.glob("*.tar.gz")
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    installed = _run([*pip, "--no-index", "--quiet", "--target", str(target), str(sdist)], cwd=tmp)
    assert installed.returncode == 0, installed.stderr
    return target


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory that is not the checkout nor inside it."""
    return tmp_path_factory.mktemp("elsewhere")


def _run_installed(
    site_dir: Path, cwd: Path, arguments: list[str], **environ: str
) -> subprocess.CompletedProcess[str]:
    """`python -S -P <arguments>` with only the install and the dependencies importable."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("ARCHS4_", "PYTHON"))
    }
    dependencies = [p for p in site.getsitepackages() if Path(p).resolve() != CHECKOUT]
    env["PYTHONPATH"] = os.pathsep.join([str(site_dir), *dependencies])
    env["ARCHS4_LOG_DIR"] = str(cwd / "logs")
    env.update(environ)
    return _run([sys.executable, "-S", "-P", *arguments], cwd=cwd, env=env)


def test_every_package_is_listed():
    """`packages` is a list (a mapped package rules out `packages.find`): it misses none."""
    config = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = setuptools.find_packages(str(CHECKOUT), include=["archs4*", "dagster_project*"])
    assert set(found) <= set(config["packages"])
    mapped = {f"archs4.{name}": top for top, name in STATIC_DIRS.items()}
    assert config["package-dir"] == mapped
    assert set(mapped) <= set(config["packages"])


def test_static_files_ship_as_package_data(site_dir: Path, outside: Path):
    script = (
        "import json, sys, archs4, archs4.paths as p\n"
        "print(json.dumps({'archs4': archs4.__file__, 'sql': str(p.SQL_DIR),"
        " 'assets': str(p.ASSETS_DIR), 'root': str(p.PROJECT_ROOT), 'path': sys.path,"
        " 'finders': [repr(f) for f in sys.meta_path]}))"
    )
    ran = _run_installed(site_dir, outside, ["-c", script])
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    assert Path(seen["archs4"]).is_relative_to(site_dir)
    assert not any("__editable__" in finder for finder in seen["finders"])
    assert not any(Path(p).resolve() in (CHECKOUT, CHECKOUT / "tests") for p in seen["path"] if p)
    assert Path(seen["root"]) == outside  # an install's defaults are relative to the cwd
    for top, name in STATIC_DIRS.items():
        installed_dir = site_dir / "archs4" / name
        assert Path(seen[top]) == installed_dir
        checkout_files, installed_files = _files(CHECKOUT / top), _files(installed_dir)
        assert checkout_files, top
        assert sorted(installed_files) == sorted(checkout_files)
        for relative, path in checkout_files.items():
            assert installed_files[relative].read_bytes() == path.read_bytes(), relative


def test_archs4_sql_runs_outside_the_checkout(
    site_dir: Path, outside: Path, built, monkeypatch: pytest.MonkeyPatch, capsys
):
    counts, root = built[1], built[2]
    script = str(site_dir / "bin" / "archs4")  # the console script pip wrote
    query = ["sql", "SELECT count(*) AS n FROM genes", "--format", "csv"]
    ran = _run_installed(site_dir, outside, [script, *query], ARCHS4_WAREHOUSE=str(root))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ['"n"', str(counts.shape[0])]

    # A query file of the installed copy, run by `python -m archs4.cli`: the same result as
    # the checkout's file run in this process.
    relative = "analytics/metrics_by_biotype.sql"
    installed_sql = site_dir / "archs4" / "_sql" / relative
    arguments = ["-m", "archs4.cli", "sql", "-f", str(installed_sql), "--format", "csv"]
    ran = _run_installed(site_dir, outside, arguments, ARCHS4_WAREHOUSE=str(root))
    assert ran.returncode == 0, ran.stderr
    monkeypatch.setenv("ARCHS4_WAREHOUSE", str(root))
    assert main(["sql", "-f", str(CHECKOUT / "sql" / relative), "--format", "csv"]) == 0
    expected = capsys.readouterr().out
    assert len(expected.splitlines()) > 1
    assert ran.stdout == expected


def test_archs4_similar_runs_outside_the_checkout(site_dir: Path, outside: Path, built):
    script = str(site_dir / "bin" / "archs4")
    arguments = [script, "similar", "GSM2000004", "-k", "3", "--format", "csv"]
    ran = _run_installed(site_dir, outside, arguments, ARCHS4_WAREHOUSE=str(built[2]))
    assert ran.returncode == 0, ran.stderr
    assert len(ran.stdout.splitlines()) == 4


def test_installed_definitions_load_the_checkouts_graph(site_dir: Path, outside: Path, tmp_path):
    """What a cluster worker does with a regular install: no pyproject.toml to find, yet the
    `defs/` folder loads, with the same assets and checks as the checkout."""
    from dagster_project.definitions import build_definitions

    listing = (
        "from dagster_project.definitions import build_definitions; "
        "graph = build_definitions().resolve_asset_graph(); "
        "print(sorted(k.to_user_string() for k in graph.get_all_asset_keys())); "
        "print(sorted(c.name for c in graph.asset_check_keys))"
    )
    ran = _run_installed(
        site_dir, outside, ["-c", listing], ARCHS4_WAREHOUSE=str(tmp_path / "warehouse")
    )
    assert ran.returncode == 0, ran.stderr
    graph = build_definitions().resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    checks = sorted(c.name for c in graph.asset_check_keys)
    assert ran.stdout.splitlines()[-2:] == [str(keys), str(checks)]
