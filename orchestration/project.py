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


def dbt_build_args(full_refresh: bool = False, select: str | None = None) -> list[str]:
    """The arguments of the daily dbt build; pure, so it is unit-tested."""
    args = [
        "build",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROFILES_DIR),
    ]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args.extend(["--select", select])
    return args
