import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loaders.faults import FAULT_ENV
from loaders.paths import HOME_ENV, WarehousePaths

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WarehousePaths:
    home = tmp_path / "warehouse"
    monkeypatch.setenv(HOME_ENV, str(home))
    return WarehousePaths(home)


def write_jsonl(path: Path, records: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def event(event_id: str, **overrides) -> dict:
    record = {
        "event_id": event_id,
        "session_id": "s1",
        "event_type": "message_sent",
        "timestamp": "2024-05-01T10:00:00Z",
    }
    record.update(overrides)
    return record


def settle(folder: Path, seconds_ago: float = 60.0) -> None:
    """Make files look finished a while ago: the inbox takes other tools' files only once they
    have been left alone for its settle period."""
    moment = time.time() - seconds_ago
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (moment, moment))


def build(paths: WarehousePaths, **options) -> int:
    """`chat-analytics build` in this process: the exit code, with the command's output."""
    from cli.main import run_build_command

    return run_build_command(paths, **options)


def compact_in_a_process(paths: WarehousePaths, fault: str, min_run: int) -> subprocess.CompletedProcess:
    """Compact the landing zone in a process of its own, which the fault point kills."""
    code = (
        "from loaders.compaction import compact_landing; from loaders.paths import WarehousePaths; "
        f"compact_landing(WarehousePaths.from_env(), min_run={min_run})"
    )
    env = dict(os.environ, **{FAULT_ENV: fault, HOME_ENV: str(paths.home)})
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)


def dbt(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{HOME_ENV: str(home), "DBT_PROFILES_DIR": str(REPO)})
    result = subprocess.run(
        [str(BIN / "dbt"), *args, "--project-dir", str(REPO / "dbt_project")],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO / "dbt_project",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> WarehousePaths:
    """Nine days of generated traffic, built and published once for every test that reads it."""
    from loaders.generate import GeneratorConfig, generate

    paths = WarehousePaths(tmp_path_factory.mktemp("published") / "warehouse")
    previous = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(paths.home)
    start = datetime.now(UTC).date() - timedelta(days=10)
    generate(GeneratorConfig(days=9, sessions_per_day=80, seed=11, start=start), paths.inbox / "gen")
    settle(paths.inbox)
    assert build(paths) == 0
    yield paths
    if previous is None:
        os.environ.pop(HOME_ENV, None)
    else:
        os.environ[HOME_ENV] = previous
