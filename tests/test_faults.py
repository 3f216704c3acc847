"""Fault injection: builds racing loads, each other and `kill -9`, and files still being written.

Every trial starts from the same warehouse (two days loaded and built), does something that
goes wrong in production, lets the next build recover by itself, and then checks that nothing
was lost or landed twice, that the load audit reconciles, that no stray file or process is
left, and that every mart equals a full refresh of the same landed data, cell by cell.

`make test` runs one trial of each kind; `make faults` (CHAT_ANALYTICS_FAULT_TRIALS=all) runs
every trial below.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from loaders import landing
from loaders.faults import FAULT_ENV, PAUSE_FILE_ENV
from loaders.generate import GeneratorConfig, generate
from loaders.load import load_files
from loaders.paths import HOME_ENV, WarehousePaths
from orchestration.lib import locks
from orchestration.lib.locks import BUILD_BUSY_EXIT_CODE
from orchestration.lib.warehouse_file import PARTIAL_NAME

from .conftest import REPO, dbt

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ALL_TRIALS = os.environ.get("CHAT_ANALYTICS_FAULT_TRIALS") == "all"
STEP_TIMEOUT = 300  # seconds; no step of a trial may take longer, so nothing can hang


def trials(core: list, extended: list) -> list:
    return core + (extended if ALL_TRIALS else [])


@dataclass(frozen=True)
class Events:
    days: list[Path]  # one file per day, late events in later days' files
    unique_events: int


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Events:
    folder = tmp_path_factory.mktemp("fault-events")
    manifest = generate(
        GeneratorConfig(days=4, sessions_per_day=50, seed=77, start=date(2026, 4, 1), late_rate=0.05),
        folder,
    )
    return Events([folder / name for name in manifest.files], manifest.unique_events)


@pytest.fixture(scope="module")
def base_home(tmp_path_factory, events: Events) -> Path:
    """Days 1 and 2 loaded and built: the state every trial starts from."""
    paths = WarehousePaths(tmp_path_factory.mktemp("fault-base") / "warehouse")
    for _ in load_files(events.days[:2], paths):
        pass
    done = run_cli(paths, "build")
    assert done.returncode == 0, done.stdout
    return paths.home


@pytest.fixture
def home(base_home: Path, tmp_path: Path) -> WarehousePaths:
    copy = tmp_path / "warehouse"
    shutil.copytree(base_home, copy, symlinks=True)
    return WarehousePaths(copy)


def cli_env(paths: WarehousePaths, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_ANALYTICS_")}
    return {**env, HOME_ENV: str(paths.home), **extra}


def start_cli(paths: WarehousePaths, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env=cli_env(paths, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        output, _ = process.communicate(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"a step hung for {STEP_TIMEOUT} s:\n{output[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def run_cli(paths: WarehousePaths, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return finish(start_cli(paths, *args, **extra))


def wait_for(condition, what: str, timeout: float = STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def processes_using(home: Path) -> list[str]:
    """Live processes started for this warehouse (its home in their environment)."""
    marker = f"{HOME_ENV}={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().split()[2]
                if state != "Z":
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def landed_ids(paths: WarehousePaths) -> list[str]:
    with duckdb.connect() as con:
        return [row[0] for row in con.execute(
            f"select event_id from read_parquet('{paths.events_glob()}')").fetchall()]


def published_bound(paths: WarehousePaths):
    with duckdb.connect(str(paths.serving / "analytics.duckdb"), read_only=True) as con:
        return con.execute("select max(landed_until) from audit.build_history").fetchone()[0]


def load_time(paths: WarehousePaths, source: Path):
    with duckdb.connect() as con:
        return con.execute(
            f"select loaded_at from read_parquet('{paths.audit_glob()}') where source_file = ?",
            [str(source.resolve())],
        ).fetchone()[0]


def marts(database: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(database), read_only=True) as con:
        tables = [row[0] for row in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' order by 1"
        ).fetchall()]
        return {t: con.execute(f"select * from marts.{t} order by all").df() for t in tables}


def assert_same_tables(actual: dict, expected: dict, what: str) -> None:
    assert sorted(actual) == sorted(expected), what
    for table, frame in expected.items():
        assert len(frame) > 0 or table.startswith("fct_ab"), f"{table} is empty"
        pd.testing.assert_frame_equal(
            actual[table], frame, check_exact=False, rtol=0, atol=1e-9, obj=f"{what}: {table}"
        )


def assert_sound(paths: WarehousePaths, events: Events, tmp_path: Path) -> None:
    """Land whatever is still missing, build once more, and check every guarantee."""
    for _ in load_files(events.days, paths):  # files loaded before are skipped by content
        pass
    done = run_cli(paths, "build")
    assert done.returncode == 0, done.stdout[-3000:]
    # no event lost or landed twice
    ids = landed_ids(paths)
    assert len(ids) == len(set(ids)) == events.unique_events
    # the audit reconciles, file by file
    with duckdb.connect(str(paths.database), read_only=True) as con:
        unreconciled = con.execute(
            "select count(*) from audit.load_audit where not is_reconciled").fetchone()[0]
        read = con.execute("select sum(records_read) from audit.load_audit").fetchone()[0]
    assert unreconciled == 0
    assert read == sum(len(day.read_text().splitlines()) for day in events.days)
    # nothing stray
    assert (paths.home / ".build.lock").read_text() == ""
    assert not list(paths.landing_tmp.iterdir())
    assert not list(paths.serving.glob(".analytics-*"))
    assert not (paths.home / PARTIAL_NAME).exists()
    assert len(list(paths.serving.glob("analytics-*.duckdb"))) <= 2
    assert processes_using(paths.home) == []
    # the published snapshot is what the build checked, and equals a full refresh
    working = marts(paths.database)
    assert_same_tables(marts(paths.serving / "analytics.duckdb"), working, "serving vs working")
    reference = WarehousePaths(tmp_path / "reference")
    shutil.copytree(paths.landing, reference.landing)
    models_only = ("--exclude", "resource_type:test", "resource_type:unit_test")
    dbt(reference.home, "build", "--full-refresh", *models_only)
    assert_same_tables(working, marts(reference.database), "incremental vs full refresh")


def dbt_children(paths: WarehousePaths) -> list[int]:
    holder = locks.Holder.parse((paths.home / ".build.lock").read_text())
    return holder.child_pids if holder else []


@contextmanager
def frozen(pids: list[int]):
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def pause_file(tmp_path: Path) -> Path:
    return tmp_path / "paused"


# --- a load that commits while a build runs --------------------------------------------------

@pytest.mark.parametrize(
    "point",
    trials(
        ["build:dbt:fct_sessions"],
        ["build:landed", "build:dbt:stg_landing__events", "build:dbt:fct_session_fallback_topics",
         "build:dbt:fct_ab_exposures", "build:publish_written"],
    ),
)
def test_a_load_committing_during_a_build_goes_to_the_next_build(
    point: str, home: WarehousePaths, events: Events, tmp_path: Path
) -> None:
    for _ in load_files([events.days[2]], home):  # the build has new work of its own
        pass
    marker = pause_file(tmp_path)
    build = start_cli(home, "build", **{FAULT_ENV: f"pause@{point}", PAUSE_FILE_ENV: str(marker)})
    try:
        wait_for(lambda: marker.exists() or build.poll() is not None, f"the build to reach {point}")
        assert build.poll() is None, build.communicate()[0][-3000:]
        # dbt runs on while the build's process waits; stop it too, so that the load commits
        # between the models dbt has built and those it has yet to build
        with frozen(dbt_children(home)):
            for _ in load_files([events.days[3]], home):  # late events for sessions in work
                pass
    finally:
        marker.unlink(missing_ok=True)
    done = finish(build)
    assert done.returncode == 0, done.stdout[-3000:]
    if point == "build:landed":
        # dbt had not started: the window it fixes when it starts takes the load whole
        assert published_bound(home) >= load_time(home, events.days[3])
    else:
        # the build published what dbt fixed at its start: not the load that committed meanwhile
        assert load_time(home, events.days[2]) <= published_bound(home) < load_time(home, events.days[3])
    assert_sound(home, events, tmp_path)


# --- two builds at once ------------------------------------------------------------------------

@pytest.mark.parametrize("wait", trials([False], [True]))
def test_a_second_build_is_refused_or_waits(
    wait: bool, home: WarehousePaths, events: Events, tmp_path: Path
) -> None:
    for _ in load_files([events.days[2]], home):
        pass
    first = start_cli(home, "build")
    time.sleep(2)
    started = time.monotonic()
    second = run_cli(home, "build", *(["--wait"] if wait else []))
    if wait:
        assert second.returncode == 0, second.stdout[-3000:]
        assert first.poll() is not None  # it waited for the first to finish
    else:
        assert second.returncode == BUILD_BUSY_EXIT_CODE, second.stdout[-3000:]
        assert f"another build of {home.home} is running (pid {first.pid}" in second.stdout
        assert time.monotonic() - started < 30  # refused at once (start-up included)
    assert finish(first).returncode == 0
    assert_sound(home, events, tmp_path)


# --- kill -9 -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "point",
    trials(
        ["build:dbt:fct_agent_metrics_daily", "build:publish_written"],
        ["build:landed", "build:dbt:fct_sessions", "build:dbt:fct_funnel_daily",
         "build:dbt:fct_ab_results", "build:published"],
    ),
)
def test_a_build_killed_at_a_point_recovers(
    point: str, home: WarehousePaths, events: Events, tmp_path: Path
) -> None:
    for _ in load_files([events.days[2]], home):
        pass
    before = (home.serving / "analytics.duckdb").resolve()
    killed = run_cli(home, "build", **{FAULT_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    # its dbt died with it, and readers still see a whole snapshot
    wait_for(lambda: processes_using(home.home) == [], "the killed build's dbt to exit", 10)
    assert (home.serving / "analytics.duckdb").exists()
    if point != "build:published":
        assert (home.serving / "analytics.duckdb").resolve() == before
    recovered = run_cli(home, "build")
    assert recovered.returncode == 0, recovered.stdout[-3000:]
    assert "was killed; recovering" in recovered.stdout
    assert_sound(home, events, tmp_path)


# The trial's warehouse file is small: rewrite it whenever some of it is free.
REWRITE_SPARSE_FILE = {
    "CHAT_ANALYTICS_WAREHOUSE_COMPACT_FREE_SHARE": "0.1",
    "CHAT_ANALYTICS_WAREHOUSE_COMPACT_MIN_FREE_MIB": "0",
}


def test_a_full_refresh_killed_while_rewriting_the_warehouse_file_recovers(
    home: WarehousePaths, events: Events, tmp_path: Path
) -> None:
    for _ in load_files([events.days[2]], home):
        pass
    before = (home.serving / "analytics.duckdb").resolve()
    killed = run_cli(home, "build", "--full-refresh",
                     **{FAULT_ENV: "build:warehouse_compacted", **REWRITE_SPARSE_FILE})
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    # killed between writing the new file and putting it in place: nothing published
    assert (home.home / PARTIAL_NAME).exists()
    assert (home.serving / "analytics.duckdb").resolve() == before
    wait_for(lambda: processes_using(home.home) == [], "the killed build's dbt to exit", 10)
    sparse_bytes = home.database.stat().st_size
    recovered = run_cli(home, "build", **REWRITE_SPARSE_FILE)
    assert recovered.returncode == 0, recovered.stdout[-3000:]
    assert f"removed the unfinished rewrite of the warehouse file {PARTIAL_NAME}" in recovered.stdout
    # the full refresh left a sparse file, which the recovering build rewrote
    assert home.database.stat().st_size < sparse_bytes
    assert_sound(home, events, tmp_path)


# Every run of two or more small loads is compacted: the trial's loads are a few.
COMPACT_ALL = {"CHAT_ANALYTICS_COMPACT_MIN_LOADS": "2"}


@pytest.mark.parametrize(
    "point", trials(["compaction:committed"], ["compaction:staged", "compaction:removing"])
)
def test_a_build_killed_while_compacting_the_landing_zone_recovers(
    point: str, home: WarehousePaths, events: Events, tmp_path: Path
) -> None:
    for _ in load_files([events.days[2]], home):
        pass
    loads = landing.visible_loads(home)
    assert len(loads) == 2
    killed = run_cli(home, "build", **{FAULT_ENV: point, **COMPACT_ALL})
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    wait_for(lambda: processes_using(home.home) == [], "the killed build's dbt to exit", 10)
    recovered = run_cli(home, "build", **COMPACT_ALL)
    assert recovered.returncode == 0, recovered.stdout[-3000:]
    [compacted] = landing.visible_loads(home)
    assert (compacted.first, compacted.last) == (loads[0].first, loads[-1].last)
    assert sorted(folder.name for folder in home.loads.iterdir()) == [
        landing.EMPTY_LOAD_ID, compacted.folder.name]
    assert_sound(home, events, tmp_path)


@pytest.mark.parametrize("seed", trials([1], [2, 3, 4]))
def test_a_build_killed_at_a_random_moment_recovers(
    seed: int, home: WarehousePaths, events: Events, tmp_path: Path
) -> None:
    for _ in load_files([events.days[2]], home):
        pass
    build = start_cli(home, "build")
    time.sleep(random.Random(seed).uniform(1.0, 25.0))
    build.kill()
    finish(build)
    wait_for(lambda: processes_using(home.home) == [], "the killed build's dbt to exit", 10)
    assert_sound(home, events, tmp_path)


@pytest.mark.parametrize("step", trials(["events_written"], ["read", "audit_written"]))
def test_a_killed_load_leaves_nothing_and_the_build_goes_on(
    step: str, home: WarehousePaths, events: Events, tmp_path: Path
) -> None:
    killed = run_cli(home, "load", str(events.days[2]), **{FAULT_ENV: step})
    assert killed.returncode == -signal.SIGKILL
    assert len(landed_ids(home)) == len(set(landed_ids(home)))
    assert_sound(home, events, tmp_path)


# --- a file still being written ----------------------------------------------------------------

def test_a_file_still_being_written_stays_in_the_inbox(
    home: WarehousePaths, events: Events, tmp_path: Path
) -> None:
    lines = events.days[2].read_text().splitlines(keepends=True)
    target = home.inbox / "stream.jsonl"
    home.inbox.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    written = threading.Event()

    def write_slowly() -> None:
        with target.open("w") as handle:
            for number, line in enumerate(lines):
                if stop.is_set():
                    break
                # half a line first, the rest a moment later: a reader may catch either
                handle.write(line[: len(line) // 2])
                handle.flush()
                time.sleep(0.01)
                handle.write(line[len(line) // 2:])
                handle.flush()
                if number == 20:
                    written.set()
                time.sleep(0.02)
            written.set()

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        written.wait(timeout=30)
        done = run_cli(home, "build", CHAT_ANALYTICS_INBOX_SETTLE_SECONDS="2")
    finally:
        stop.set()
        writer.join()
    assert done.returncode == 0, done.stdout[-3000:]
    assert "stream.jsonl: not complete yet" in done.stdout
    assert target.exists() and not (home.archive / "stream.jsonl").exists()
    with duckdb.connect() as con:
        quarantined = con.execute(
            f"select count(*) from read_parquet('{home.quarantine_glob()}') "
            "where source_file like '%stream.jsonl'").fetchone()[0]
    assert quarantined == 0
    # finished and left alone, the file is taken whole
    with target.open("w") as handle:
        handle.writelines(lines)
    settled = time.time() - 60
    os.utime(target, (settled, settled))
    done = run_cli(home, "build", CHAT_ANALYTICS_INBOX_SETTLE_SECONDS="2")
    assert done.returncode == 0, done.stdout[-3000:]
    assert (home.archive / "stream.jsonl").exists()
    with duckdb.connect() as con:
        read = con.execute(
            f"select sum(records_read) from read_parquet('{home.audit_glob()}') "
            "where source_file like '%stream.jsonl'").fetchone()[0]
    assert read == len(lines)
    # the original file has the same bytes: it is recognised as loaded, and nothing is lost
    assert_sound(home, events, tmp_path)
