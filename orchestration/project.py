"""The dbt project: where it lives, the command the build runs it with, and a manifest that
follows its files (editing a model needs no manual `dbt parse`)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT_PROFILES_DIR = REPO_ROOT
MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
PROJECT_FILE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".md")
PROJECT_FOLDERS = ("models", "macros", "seeds", "tests", "analyses", "snapshots")


def venv_command(name: str) -> str:
    """A command installed beside this interpreter, whatever PATH says."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def dbt_child_executable() -> str:
    """dbt wrapped to die with the build that starts it (see orchestration.dbt_child)."""
    return venv_command("chat-analytics-dbt")


def _project_files() -> list[Path]:
    files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROFILES_DIR / "profiles.yml"]
    for folder in PROJECT_FOLDERS:
        root = DBT_PROJECT_DIR / folder
        if root.exists():
            files += [p for p in root.rglob("*") if p.suffix in PROJECT_FILE_SUFFIXES]
    return files


def project_digest() -> str:
    """A digest of every file that shapes what a build produces (models, macros, seeds,
    metric definitions, dbt_project.yml, profiles.yml): a build is due when it changes."""
    digest = hashlib.sha256()
    for path in sorted(_project_files()):
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def manifest_is_current() -> bool:
    if not MANIFEST.exists():
        return False
    built = MANIFEST.stat().st_mtime
    return all(path.stat().st_mtime <= built for path in _project_files())


def ensure_manifest() -> Path:
    """Parse the project when a file changed since the manifest was written (milliseconds
    when nothing did), so that the Dagster definitions always match the models."""
    if not manifest_is_current():
        env = {**os.environ, "DBT_PROFILES_DIR": str(DBT_PROFILES_DIR)}
        result = subprocess.run(
            [venv_command("dbt"), "parse", "--quiet"],
            cwd=DBT_PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                "the dbt project does not parse:\n" + (result.stdout + result.stderr)[-4000:]
            )
    return MANIFEST
