"""Locations of the dbt project and profiles, and the environment dbt runs with."""

import os
import sys
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
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def put_environment_on_path() -> None:
    """dagster-dbt looks dbt up on PATH (for example `dagster dev` preparing the manifest);
    a virtual environment that was not activated is not on it."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
