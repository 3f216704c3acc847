"""The pieces that keep builds safe, one by one: the build lock and its holder record, the
inbox's notion of a complete file, and the measurements behind the Python asset checks."""

import os
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from loaders.inbox import incomplete_reason, scan_inbox
from loaders.paths import WarehousePaths
from orchestration.lib import locks, quality
from orchestration.lib.recovery import remove_partial_snapshots, stop_orphaned_children
from orchestration.lib.warehouse_file import PARTIAL_NAME, compact_if_sparse

from .conftest import REPO, event, settle, write_jsonl


def test_the_lock_names_its_holder_and_is_reentrant(warehouse: WarehousePaths) -> None:
    with locks.build_lock(warehouse) as lock:
        assert locks.acquire(warehouse) is lock  # the same process takes it again
        lock.release()
        lock.update(run_id="run-1", child_pids=[123])
        holder = locks.Holder.parse((warehouse.home / ".build.lock").read_text())
        assert (holder.pid, holder.run_id, holder.child_pids) == (os.getpid(), "run-1", [123])
        other = subprocess.run(
            [sys.executable, "-c",
             "from pathlib import Path\nfrom loaders.paths import WarehousePaths\n"
             "from orchestration.lib.locks import acquire\n"
             f"acquire(WarehousePaths(Path({str(warehouse.home)!r})), wait_seconds=0.5)"],
            cwd=REPO, capture_output=True, text=True,
        )
        assert other.returncode != 0
        assert f"pid {os.getpid()}" in other.stderr and "Dagster run run-1" in other.stderr
        assert "after waiting 0.5 s" in other.stderr
    assert (warehouse.home / ".build.lock").read_text() == ""
    assert locks.held_lock(warehouse) is None


def test_a_holder_killed_with_the_lock_is_seen_as_dead(warehouse: WarehousePaths) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom pathlib import Path\nfrom loaders.paths import WarehousePaths\n"
         "from orchestration.lib.locks import acquire\n"
         f"lock = acquire(WarehousePaths(Path({str(warehouse.home)!r})))\n"
         "lock.update(run_id='dead-run')\nprint('held', flush=True)\ntime.sleep(60)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    with locks.build_lock(warehouse) as lock:  # the kernel released it at once
        assert lock.dead_holder is not None
        assert (lock.dead_holder.pid, lock.dead_holder.run_id) == (holder.pid, "dead-run")


def test_recovery_stops_only_the_dead_builds_dbt(warehouse: WarehousePaths, tmp_path: Path) -> None:
    # a stand-in for an orphaned dbt: a process whose command line names dbt
    script = tmp_path / "dbt"
    script.write_text("import time\ntime.sleep(60)\n")
    orphan = subprocess.Popen([sys.executable, str(script)])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = locks.Holder(pid=999_999, started_at="earlier", child_pids=[orphan.pid, bystander.pid])
        assert stop_orphaned_children(dead) == [orphan.pid]
        assert orphan.wait(timeout=5) == -9
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    warehouse.serving.mkdir(parents=True)
    (warehouse.serving / ".analytics-abc.duckdb").write_text("")
    (warehouse.serving / ".analytics-abc.duckdb.wal").write_text("")
    (warehouse.serving / "analytics-1.duckdb").write_text("")
    assert remove_partial_snapshots(warehouse) == [".analytics-abc.duckdb", ".analytics-abc.duckdb.wal"]
    assert [p.name for p in warehouse.serving.iterdir()] == ["analytics-1.duckdb"]


def warehouse_contents(database: Path) -> dict:
    with duckdb.connect(str(database), read_only=True) as con:
        return {
            "rows": con.execute("select * from marts.facts order by id").fetchall(),
            "view": con.execute("select * from marts.sampled_facts order by id").fetchall(),
            "comments": con.execute(
                "select table_name, column_name, comment from duckdb_columns() "
                "where schema_name = 'marts' order by all").fetchall(),
        }


def test_a_sparse_warehouse_file_is_rewritten_without_its_free_blocks(
    warehouse: WarehousePaths,
) -> None:
    warehouse.home.mkdir(parents=True)
    with duckdb.connect(str(warehouse.database)) as con:
        con.execute("create schema marts")
        # hashes: they do not compress, so the dropped table's blocks are most of the file
        con.execute("create table marts.facts as select range as id, hash(range) as value "
                    "from range(1000000)")
        con.execute("create table marts.replaced as select hash(range) as value from range(3000000)")
        con.execute("create view marts.sampled_facts as select * from warehouse.marts.facts "
                    "where id % 100000 = 0")
        con.execute("comment on column marts.facts.value is 'a hash of the id'")
    (warehouse.home / PARTIAL_NAME).write_bytes(b"left by a killed build")
    # nothing is free yet: the file stays as it is (and a dead rewrite's file goes)
    assert compact_if_sparse(warehouse, 0.1, 0) is None
    assert not (warehouse.home / PARTIAL_NAME).exists()
    with duckdb.connect(str(warehouse.database)) as con:
        con.execute("drop table marts.replaced")  # as a full refresh drops the old tables
    contents = warehouse_contents(warehouse.database)
    sparse_bytes = warehouse.database.stat().st_size
    assert compact_if_sparse(warehouse, 0.1, 1024) is None  # not enough MiB free to bother
    assert warehouse.database.stat().st_size == sparse_bytes
    compaction = compact_if_sparse(warehouse, 0.1, 0)
    assert compaction is not None and compaction.free_share_before > 0.5
    assert warehouse.database.stat().st_size < sparse_bytes / 2
    assert compaction.mib_after * 1024 * 1024 == warehouse.database.stat().st_size
    assert warehouse_contents(warehouse.database) == contents
    assert ("facts", "value", "a hash of the id") in contents["comments"]
    assert not (warehouse.home / PARTIAL_NAME).exists()
    assert not Path(f"{warehouse.database}.wal").exists()


def test_a_file_is_complete_when_settled_or_written_by_the_sdk(tmp_path: Path) -> None:
    now = time.time()
    fresh = write_jsonl(tmp_path / "fresh.jsonl", [event("a")])
    assert "unchanged for 10 s" in incomplete_reason(fresh, 10, now)
    assert incomplete_reason(fresh, 10, now + 11) is None
    partial = tmp_path / "partial.jsonl"
    partial.write_text('{"event_id": "a"}\n{"event_id": ')
    assert incomplete_reason(partial, 10, now + 11) == "its last line has no line break yet"
    assert incomplete_reason(partial, 10, now + 101) is None  # its writer has long gone
    sdk = write_jsonl(tmp_path / "events-20260101T000000000000-0123abcd.jsonl", [event("a")])
    assert incomplete_reason(sdk, 10, now) is None


def test_scan_inbox_sorts_complete_from_waiting(warehouse: WarehousePaths) -> None:
    warehouse.inbox.mkdir(parents=True)
    write_jsonl(warehouse.inbox / "old.jsonl", [event("a")])
    settle(warehouse.inbox)
    write_jsonl(warehouse.inbox / "new.jsonl", [event("b")])
    (warehouse.inbox / ".hidden.jsonl").write_text("")
    (warehouse.inbox / "notes.txt").write_text("")
    complete, waiting = scan_inbox(warehouse, settle_seconds=10)
    assert [p.name for p in complete] == ["old.jsonl"]
    assert [w.path.name for w in waiting] == ["new.jsonl"]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("create schema audit; create schema marts")
    yield connection
    connection.close()


def test_quarantine_is_judged_per_load_since_the_last_publication(con) -> None:
    con.execute(
        """
        create table audit.load_audit as select * from (values
            ('l1', 'old.jsonl', 100, 90, timestamp '2026-01-01 00:00:00'),
            ('l2', 'bad.jsonl', 100, 59, timestamp '2026-01-02 00:00:00'),
            ('l3', 'clean.jsonl', 1000, 0, timestamp '2026-01-03 00:00:00'),
            ('l4', 'empty.jsonl', 0, 0, timestamp '2026-01-04 00:00:00')
        ) as t(load_id, source_file, records_read, records_quarantined, loaded_at)
        """
    )
    # a bad load followed by a clean one still fails
    failing = quality.quarantine_since(con, datetime(2026, 1, 1, 12), 0.05)
    assert not failing.passed and failing.observed == pytest.approx(0.59)
    assert "bad.jsonl" in failing.detail and "59 of 100" in failing.detail
    # once published past it, only later loads count
    assert quality.quarantine_since(con, datetime(2026, 1, 2, 12), 0.05).passed
    assert quality.quarantine_since(con, datetime(2026, 1, 5), 0.05).observed is None
    assert not quality.quarantine_since(con, None, 0.05).passed  # never published: every load


def test_robust_z_handles_a_history_without_spread() -> None:
    assert quality.robust_z(10.0, [10.0, 10.0, 10.0]) == 0.0
    assert quality.robust_z(11.0, [10.0, 10.0, 10.0]) == float("inf")
    assert quality.robust_z(9.0, [10.0, 10.0, 10.0]) == float("-inf")
    # median 10, MAD 1: z = (14 - 10) / 1.4826
    assert quality.robust_z(14.0, [9.0, 10.0, 11.0]) == pytest.approx(4 / 1.4826)


def test_volume_check_compares_the_same_weekday(con) -> None:
    con.execute(
        """
        create table marts.fct_agent_metrics_daily as
        select d::date as metric_date, case when d = date '2026-03-29' then 300 else 100 end as sessions
        from range(date '2026-02-22', date '2026-03-30', interval 1 day) as t(d)
        """
    )
    flagged = quality.volume_robust_z(con, weeks=4, max_abs_z=3.5)
    assert not flagged.passed and flagged.observed == float("inf")
    assert quality.volume_robust_z(con, weeks=4, max_abs_z=float("inf")).passed


def test_feedback_band_edges(con) -> None:
    con.execute(
        "create table marts.fct_agent_metrics_daily as select date '2026-01-01' as metric_date, "
        "15 as feedback_eligible_responded, 100 as feedback_eligible_sessions"
    )
    assert quality.feedback_response_rate(con, 0.15, 0.25).passed  # the band is inclusive
    assert not quality.feedback_response_rate(con, 0.16, 0.25).passed


def test_srm_check_reads_the_flag_dbt_computed(con) -> None:
    con.execute(
        """
        create table marts.fct_ab_tests as select * from (values
            ('a', 0.0004::double, true), ('b', 0.2::double, false), ('c', null, false)
        ) as t(test_name, srm_p_value, is_srm_mismatch)
        """
    )
    measured = quality.srm_mismatches(con)
    assert not measured.passed and measured.observed == pytest.approx(0.0004)
    assert measured.detail == "sample-ratio mismatch in a (p = 0.0004)"
    con.execute("update marts.fct_ab_tests set is_srm_mismatch = false")
    assert quality.srm_mismatches(con).passed


@contextmanager
def mounted(folder: Path, size: str):
    """A small file system of its own (tmpfs), to make a home read-only or full for real."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_ANALYTICS_")}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO, text=True,
                          capture_output=True, env={**env, "CHAT_ANALYTICS_HOME": str(home)})


def test_a_read_only_home_is_named_as_such(tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "events.jsonl", [event("a")])
    with mounted(tmp_path / "ro", "4m") as root:
        (root / "warehouse" / "inbox").mkdir(parents=True)
        write_jsonl(root / "warehouse" / "inbox" / "waiting.jsonl", [event("w")])  # work to do
        settle(root / "warehouse" / "inbox")
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        built = run_cli(root / "warehouse", "build")
        loaded = run_cli(root / "warehouse", "load", str(events))
    assert built.returncode == 2 and "Traceback" not in built.stderr
    assert f"cannot write to the warehouse home {root / 'warehouse'} (Read-only file system)" in built.stderr
    assert loaded.returncode == 2 and "Traceback" not in loaded.stderr
    assert "cannot write to the warehouse home" in loaded.stderr
    assert "Read-only file system" in loaded.stderr and "cannot read" not in loaded.stderr


def test_a_full_disk_is_named_as_such(tmp_path: Path) -> None:
    # random text: the landed Parquet cannot compress it below the file system's size
    big = [event(f"e{i}", properties={"text": os.urandom(1000).hex()}) for i in range(3000)]
    events = write_jsonl(tmp_path / "events.jsonl", big)
    with mounted(tmp_path / "small", "2m") as root:
        loaded = run_cli(root / "warehouse", "load", str(events))
        leftovers = list((root / "warehouse" / "landing" / "loads").iterdir())
        write_jsonl(root / "warehouse" / "inbox" / "waiting.jsonl", [event("w")])  # work to do
        settle(root / "warehouse" / "inbox")
        # fill what is left (the failed load's key index takes some of it)
        for filler in ("filler", "filler2"):
            with suppress(OSError):
                (root / filler).write_bytes(b"\0" * 2 * 1024 * 1024)
        built = run_cli(root / "warehouse", "build")
    assert loaded.returncode != 0 and "Traceback" not in loaded.stderr
    assert "No space left on device" in loaded.stderr
    assert [p.name for p in leftovers] == ["00000000T000000000000-empty"]  # nothing half-landed
    assert built.returncode != 0 and "Traceback" not in built.stderr
    assert "No space left on device" in built.stderr


def run_dbt(home: Path, *args: str) -> subprocess.CompletedProcess:
    """dbt as the build runs it: the unit tests' fixtures hold the default vars."""
    args = (*args, "--exclude", "resource_type:unit_test")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_ANALYTICS_")}
    env.update(CHAT_ANALYTICS_HOME=str(home), DBT_PROFILES_DIR=str(REPO),
               DBT_TARGET_PATH=str(home / "dbt" / "target"))
    return subprocess.run([str(Path(sys.executable).parent / "dbt"), *args], cwd=REPO / "dbt_project",
                          env=env, capture_output=True, text=True, timeout=600)


def overall_scores(home: Path) -> dict[str, float]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        scores = con.execute("select session_id, overall_score from marts.fct_conversation_scores")
        return dict(scores.fetchall())


def test_an_incremental_build_under_changed_definition_vars_is_refused(tmp_path: Path) -> None:
    """A var that rows are computed under once (a score weight) cannot change under an
    incremental build: the marts would mix both definitions. A full refresh takes it."""
    home = tmp_path / "warehouse"
    events = write_jsonl(tmp_path / "day.jsonl", [
        event("a1", session_id="a", event_type="message_sent"),
        event("a2", session_id="a", event_type="escalation_requested"),
        event("b1", session_id="b", event_type="message_sent"),
        event("b2", session_id="b", event_type="conversion"),
    ])
    loaded = run_cli(home, "load", str(events))
    assert loaded.returncode == 0, loaded.stderr
    first = run_dbt(home, "build")
    assert first.returncode == 0, first.stdout[-3000:]
    before = overall_scores(home)

    changed = '{"score_weight_efficiency": 0.3, "score_weight_sentiment": 0.1}'  # still sum to 1
    refused = run_dbt(home, "build", "--vars", changed)
    assert refused.returncode != 0
    assert "score_weight_efficiency 0.2 -> 0.3, score_weight_sentiment 0.2 -> 0.1" in refused.stdout
    assert "chat-analytics build --full-refresh" in refused.stdout
    assert overall_scores(home) == before  # no model ran

    rebuilt = run_dbt(home, "build", "--full-refresh", "--vars", changed)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    after = overall_scores(home)
    assert after.keys() == before.keys() and after != before
    assert run_dbt(home, "build", "--vars", changed).returncode == 0  # recorded: incremental again
    assert "score_weight_efficiency 0.3 -> 0.2" in run_dbt(home, "build").stdout
