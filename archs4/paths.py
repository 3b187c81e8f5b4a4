"""Where the project's static inputs live: `sql/` (queries) and `assets/` (reference data).

`sql/` and `assets/` are top-level directories of the checkout and their only copy. A regular
(non-editable) install ships them inside the package, as `archs4/_sql/` and `archs4/_assets/`
(pyproject.toml maps the data-only packages `archs4._sql` and `archs4._assets` to them); a
checkout, plain or installed with `pip install -e .`, reads them where they are. The installed
copy is looked up first, through `importlib.resources`, then the checkout's: setuptools'
editable finder cannot expose a mapped package that has no `__init__.py` (pypa/setuptools#4943),
so in an editable install `archs4/_sql/` does not exist and the top-level `sql/` is the one.

`PROJECT_ROOT` is the directory the default locations are relative to (`warehouse/`,
`data/demo/`, see `archs4.settings`): the checkout when `archs4` is imported from one (plain or
editable), else, in a regular install, the working directory of the process when `archs4.paths`
was first imported (never the site-packages directory). Set `ARCHS4_WAREHOUSE` (and the other
`ARCHS4_*` paths) to not depend on it. Files of the checkout that are not `sql/` or `assets/`
(`dagster.yaml`, `docs/`) are only found under `PROJECT_ROOT` in a checkout.
"""

from importlib.resources import files
from pathlib import Path

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent
# Imported from a checkout (plain, or `pip install -e .`), not from a regular install.
IS_CHECKOUT = (_PACKAGE_PARENT / "pyproject.toml").is_file() and (_PACKAGE_PARENT / "sql").is_dir()


def _working_directory() -> Path:
    try:
        return Path.cwd()
    except OSError:  # the working directory was removed
        return _PACKAGE_PARENT


PROJECT_ROOT = _PACKAGE_PARENT if IS_CHECKOUT else _working_directory()


def _static_dir(installed_name: str, top_level_name: str) -> Path:
    """`archs4/<installed_name>/` of an install, else `<top_level_name>/` of the checkout."""
    installed = files("archs4") / installed_name
    if isinstance(installed, Path) and installed.is_dir():
        return installed.resolve()
    if IS_CHECKOUT:
        return _PACKAGE_PARENT / top_level_name
    # A broken install: return the path it should have, so errors name it.
    return Path(__file__).resolve().parent / installed_name


SQL_DIR = _static_dir("_sql", "sql")
ASSETS_DIR = _static_dir("_assets", "assets")


def read_sql(relative_path: str) -> str:
    """The text of `sql/<relative_path>`."""
    return (SQL_DIR / relative_path).read_text()
