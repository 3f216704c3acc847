"""Locations of the dbt project and profiles, and the environment dbt runs with."""

import os
from pathlib import Path

from loaders.paths import HOME_ENV, WarehousePaths

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT_PROFILES_DIR = Path(os.environ.get("DBT_PROFILES_DIR", REPO_ROOT))


def export_warehouse_env(paths: WarehousePaths) -> None:
    """dbt reads the warehouse location from the environment (profiles.yml, sources)."""
    os.environ[HOME_ENV] = str(paths.home)
    os.environ.setdefault("DBT_PROFILES_DIR", str(DBT_PROFILES_DIR))


def dbt_executable() -> str:
    """The dbt installed beside this interpreter, whatever PATH says."""
    import sys

    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"
