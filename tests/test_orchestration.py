"""The Dagster definitions, the daily job run in-process, checks that block publication,
safe concurrent use, and `dagster dev` answering on a loopback port."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from loaders.generate import GeneratorConfig, generate
from loaders.load import load_files
from loaders.paths import HOME_ENV, WarehousePaths
from orchestration.dbt_child import dbt_standby
from orchestration.defs.transformation.assets import DbtBuildConfig, dbt_build_args
from orchestration.lib.locks import BUILD_BUSY_EXIT_CODE
from orchestration.project import dbt_child_executable
from serving.publish import serving_link

from .conftest import REPO, build, settle

EXPECTED_ASSETS = [
    "audit/conflicting_duplicates",
    "audit/load_audit",
    "audit/quarantined_events",
    "intermediate/int_ab__arm_stats_daily",
    "intermediate/int_ab__arms",
    "intermediate/int_ab__inference",
    "intermediate/int_ab__inference_daily",
    "intermediate/int_sessions__latency_samples",
    "intermediate/int_sessions__tool_calls",
    "intermediate/int_sessions__user_keys",
    "intermediate/int_users__active_weeks",
    "landing/audit",
    "landing/conflicts",
    "landing/events",
    "landing/quarantine",
    "marts/dim_dates",
    "marts/experiments",
    "marts/fct_ab_exposures",
    "marts/fct_ab_results",
    "marts/fct_ab_results_daily",
    "marts/fct_ab_tests",
    "marts/fct_ab_variant_stats",
    "marts/fct_agent_metrics_daily",
    "marts/fct_conversation_scores",
    "marts/fct_fallback_topics_daily",
    "marts/fct_funnel_daily",
    "marts/fct_funnel_slices_daily",
    "marts/fct_latency_sketch_daily",
    "marts/fct_session_fallback_topics",
    "marts/fct_session_funnel_steps",
    "marts/fct_session_outcomes",
    "marts/fct_sessions",
    "marts/fct_tool_calls_daily",
    "marts/fct_user_retention_weekly",
    "marts/fct_users",
    "marts/fct_users_daily",
    "marts/funnel_steps",
    "serving/marts",
    "serving/report",
    "staging/stg_landing__events",
]
PYTHON_CHECKS = [
    "audit/load_audit:quarantine_share",
    "marts/fct_ab_exposures:ab_assignment_integrity",
    "marts/fct_ab_tests:ab_sample_ratio",
    "marts/fct_agent_metrics_daily:feedback_response_rate_in_band",
    "marts/fct_agent_metrics_daily:session_volume_anomaly",
    "marts/fct_sessions:event_freshness",
]


def test_definitions_graph_snapshot() -> None:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == EXPECTED_ASSETS
    checks = sorted(key.to_user_string() for key in graph.asset_check_keys)
    assert [c for c in checks if c in PYTHON_CHECKS] == PYTHON_CHECKS
    dbt_checks = [c for c in checks if c not in PYTHON_CHECKS]
    # dbt tests appear as asset checks (one per model test in the project)
    assert len(dbt_checks) >= 30
    assert "marts/fct_sessions:unique_fct_sessions_session_id" in dbt_checks
    assert [job.name for job in defs.jobs if not job.name.startswith("__")] == ["daily_build"]
    daily, weekly = defs.schedules
    assert (daily.name, daily.cron_schedule, daily.execution_timezone) == (
        "daily_build_schedule",
        "0 2 * * *",
        "UTC",
    )
    assert (weekly.name, weekly.cron_schedule) == ("all_rows_test_schedule", "0 4 * * 0")
    assert weekly.job.name == "daily_build"
    [sensor] = defs.sensors
    assert sensor.name == "inbox_sensor" and sensor.minimum_interval_seconds == 60
    landing = graph.get(dg.AssetKey(["staging", "stg_landing__events"]))
    assert dg.AssetKey(["landing", "events"]) in landing.parent_keys


def test_dbt_build_args() -> None:
    assert dbt_build_args(DbtBuildConfig()) == ["build", "--exclude", "resource_type:unit_test"]
    assert dbt_build_args(DbtBuildConfig(full_refresh=True)) == [
        "build", "--exclude", "resource_type:unit_test", "--full-refresh"
    ]
    assert dbt_build_args(DbtBuildConfig(test_all_rows=True)) == [
        "build", "--exclude", "resource_type:unit_test", "--vars", '{"test_all_rows": true}'
    ]


def test_assignment_check_reads_the_exposures_new_loads_touched() -> None:
    from loaders.sdk import assign_variant
    from orchestration.lib.quality import assignment_mismatches

    arms = ["control", "treatment"]
    right = {s: assign_variant(s, "t", arms) for s in ("s1", "s2", "s3", "s4")}
    wrong = {s: next(a for a in arms if a != v) for s, v in right.items()}
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.experiments as select 't' as test_name, unnest(?) as variant", [arms])
    con.execute(
        "create table marts.fct_ab_exposures (test_name varchar, session_id varchar, "
        "variant varchar, last_loaded_at timestamp)"
    )
    exposures = [  # one wrong variant before the published build, two after it
        ("t", "s1", wrong["s1"], datetime(2026, 1, 1)),
        ("t", "s2", right["s2"], datetime(2026, 1, 1)),
        ("t", "s3", wrong["s3"], datetime(2026, 1, 3)),
        ("t", "s4", wrong["s4"], datetime(2026, 1, 3)),
    ]
    con.executemany("insert into marts.fct_ab_exposures values (?, ?, ?, ?)", exposures)
    since_published = assignment_mismatches(con, datetime(2026, 1, 2))
    assert (since_published.passed, since_published.observed) == (False, 2)
    assert since_published.detail.startswith("2 of 2 exposures")
    everything = assignment_mismatches(con, None)
    assert (everything.observed, everything.detail.startswith("3 of 4 exposures")) == (3, True)
    assert assignment_mismatches(con, datetime(2026, 1, 4)).passed


def test_the_dbt_standby_runs_the_first_command_and_relays_its_streams_and_status(
    tmp_path: Path,
) -> None:
    def dbt(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [dbt_child_executable(), *args], capture_output=True, text=True, timeout=120
        )

    # a saved manifest cut short (a build writing it meanwhile) only spoils the warm-up
    (tmp_path / "partial_parse.msgpack").write_bytes(b"\x8f\xa5nodes")
    with dbt_standby(dbt_child_executable(), tmp_path) as standby:
        usage_error = dbt("--no-such-option")
        # the standby ran it and ended with it: no one killed it
        assert standby.wait(timeout=60) == 2
        assert usage_error.returncode == 2
        assert "No such option" in usage_error.stderr  # its standard error was the command's
        # the standby serves one command: the next runs dbt itself
        version = dbt("--version")
        assert version.returncode == 0, version.stderr
        assert "Core:" in version.stdout


def test_dbt_run_by_the_standby_ends_without_warnings_on_standard_error(tmp_path: Path) -> None:
    """dbt's adapter takes named semaphores, which the standby's quick exit would leave to
    multiprocessing's resource tracker, and the tracker reports them as leaked on the
    command's standard error: the build's terminal."""
    target = tmp_path / "dbt" / "target"
    with dbt_standby(dbt_child_executable(), target) as standby:
        shown = subprocess.run(
            [dbt_child_executable(), "show", "--inline", "select 1 as one"],
            cwd=REPO / "dbt_project", capture_output=True, text=True, timeout=300,
            env=dict(os.environ, DBT_TARGET_PATH=str(target), DBT_PROFILES_DIR=str(REPO),
                     CHAT_ANALYTICS_HOME=str(tmp_path)),
        )
        assert standby.wait(timeout=60) == 0  # the standby ran it
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    assert shown.stderr == ""


@pytest.mark.parametrize(("setting", "expected"), [(None, "2.7 GiB"), ("1500MB", "1.3 GiB")])
def test_dbt_opens_the_warehouse_with_the_configured_memory_limit(
    tmp_path: Path, setting: str | None, expected: str
) -> None:
    """3GB by default (fct_sessions' aggregate stays in memory at 16M events);
    CHAT_ANALYTICS_DUCKDB_MEMORY_LIMIT sets another. DuckDB reports it in GiB."""
    env = {key: value for key, value in os.environ.items() if key != "CHAT_ANALYTICS_DUCKDB_MEMORY_LIMIT"}
    if setting is not None:
        env["CHAT_ANALYTICS_DUCKDB_MEMORY_LIMIT"] = setting
    env.update(DBT_TARGET_PATH=str(tmp_path / "target"), DBT_LOG_PATH=str(tmp_path / "target"),
               DBT_PROFILES_DIR=str(REPO), CHAT_ANALYTICS_HOME=str(tmp_path), DBT_LOG_FORMAT="json")
    shown = subprocess.run(
        [dbt_child_executable(), "show", "--inline", "select current_setting('memory_limit') as memory_limit",
         "--output", "json"],
        cwd=REPO / "dbt_project", env=env, capture_output=True, text=True, timeout=300,
    )
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    events = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
    previews = [event["data"]["preview"] for event in events if "preview" in event.get("data", {})]
    assert previews and json.loads(previews[0]) == [{"memory_limit": expected}]


@pytest.mark.parametrize("file_level", ["info", "debug"])
def test_dbt_log_file_holds_the_statements_at_debug_level_only(tmp_path: Path, file_level: str) -> None:
    target = tmp_path / "dbt" / "target"
    env = dict(os.environ, DBT_TARGET_PATH=str(target), DBT_LOG_PATH=str(target),
               DBT_LOG_LEVEL_FILE=file_level, DBT_PROFILES_DIR=str(REPO), DBT_LOG_FORMAT="json")
    shown = subprocess.run(
        [dbt_child_executable(), "show", "--inline", "select 41 + 1 as answer_to_the_question"],
        cwd=REPO / "dbt_project", env=env, capture_output=True, text=True, timeout=300,
    )
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    levels = [json.loads(line)["info"]["level"] for line in shown.stdout.splitlines() if line.startswith("{")]
    assert levels and "debug" not in levels  # standard output stays at info level
    log = (target / "dbt.log").read_text()
    assert "Running with dbt" in log
    assert ("answer_to_the_question" in log) == (file_level == "debug")


def test_dbt_events_built_by_their_constructors_equal_those_parse_dict_builds(monkeypatch) -> None:
    from dbt.adapters.events.types import SQLQuery
    from dbt.events.types import NodeFinished
    from dbt_common.events import base_types
    from google.protobuf import json_format

    from orchestration.dbt_child import _build_events_with_constructors

    parse_dict = json_format.ParseDict
    parsed: list[str] = []

    def counting_parse_dict(js: dict, message, **options):
        parsed.append(type(message).__name__)
        return parse_dict(js, message, **options)

    monkeypatch.setattr(base_types, "ParseDict", base_types.ParseDict)  # restored afterwards
    monkeypatch.setattr(json_format, "ParseDict", counting_parse_dict)
    _build_events_with_constructors()
    node_info = {
        "node_path": "marts/core/fct_sessions.sql", "node_name": "fct_sessions",
        "unique_id": "model.chat_analytics.fct_sessions", "resource_type": "model",
        "materialized": "incremental", "node_status": "started", "node_started_at": "",
        "node_finished_at": "", "meta": {"owner": "analytics", "tier": 1},
        "node_relation": {"database": "warehouse", "schema": "marts", "alias": "fct_sessions",
                          "relation_name": '"warehouse"."marts"."fct_sessions"'},
        "node_checksum": "5df3b297",
    }
    query = {"conn_name": "model.chat_analytics.fct_sessions", "sql": "select 1", "node_info": node_info}
    finished = {
        "node_info": node_info,
        "run_result": {
            "status": "success", "message": "OK", "thread": "Thread-1", "execution_time": 0.25,
            "num_failures": 0, "adapter_response": {"_message": "OK", "rows_affected": 3},
            # timestamps as text: only ParseDict reads them
            "timing_info": [{"name": "compile", "started_at": "2026-11-28T09:00:00.123456Z",
                             "completed_at": "2026-11-28T09:00:00.223456Z"}],
        },
    }
    sql_query = SQLQuery(**query)
    assert parsed == []  # built by the message's constructor
    assert sql_query.pb_msg == parse_dict(query, type(sql_query.pb_msg)())
    parsed.clear()
    node_finished = NodeFinished(**finished)
    assert parsed == ["NodeFinished"]
    assert node_finished.pb_msg == parse_dict(finished, type(node_finished.pb_msg)())
    assert node_finished.pb_msg.run_result.timing_info[0].started_at.nanos == 123456000


def test_a_dbt_command_whose_caller_dies_dies_with_it(tmp_path: Path) -> None:
    with dbt_standby(dbt_child_executable(), tmp_path) as standby:
        # `dbt init` asks for a project name on standard input, and waits
        caller = subprocess.Popen(
            [dbt_child_executable(), "init", "--skip-profile-setup"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        # handed over: the standby's standard input is the caller's pipe, not /dev/null
        deadline = time.monotonic() + 60
        while os.readlink(f"/proc/{standby.pid}/fd/0") == os.devnull:
            assert time.monotonic() < deadline and standby.poll() is None
            time.sleep(0.1)
        time.sleep(1)
        assert standby.poll() is None  # dbt waits for an answer
        caller.kill()
        caller.wait()
        assert standby.wait(timeout=30) == -signal.SIGKILL


def test_inbox_sensor_fires_only_on_new_files(warehouse: WarehousePaths) -> None:
    from orchestration.defs.automation.sensors import inbox_sensor
    from orchestration.resources import WarehouseResource

    resources = {"warehouse": WarehouseResource(home=str(warehouse.home))}
    with dg.build_sensor_context(resources=resources) as context:
        assert isinstance(inbox_sensor(context), dg.SkipReason)
    warehouse.inbox.mkdir(parents=True)
    (warehouse.inbox / ".partial.jsonl").write_text("{}\n")
    with dg.build_sensor_context(resources=resources) as context:
        assert isinstance(inbox_sensor(context), dg.SkipReason)
    batch = warehouse.inbox / "batch.jsonl"
    batch.write_text("{}\n")
    with dg.build_sensor_context(resources=resources) as context:
        skipped = inbox_sensor(context)
    assert isinstance(skipped, dg.SkipReason) and "not complete yet" in skipped.skip_message
    settled = time.time() - 60
    os.utime(batch, (settled, settled))
    with dg.build_sensor_context(resources=resources) as context:
        request = inbox_sensor(context)
    assert isinstance(request, dg.RunRequest) and request.run_key.startswith("inbox-")


def _generate_into_inbox(paths: WarehousePaths, seed: int, days: int, start) -> None:
    generate(
        GeneratorConfig(days=days, sessions_per_day=40, seed=seed, start=start), paths.inbox / f"seed-{seed}"
    )
    settle(paths.inbox)


def _serving_counts(paths: WarehousePaths) -> dict[str, int]:
    with duckdb.connect(str(serving_link(paths)), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select schema_name || '.' || table_name from duckdb_tables() order by 1"
            ).fetchall()
        ]
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


@pytest.fixture(scope="module")
def built_home(tmp_path_factory) -> WarehousePaths:
    home = tmp_path_factory.mktemp("orchestration") / "warehouse"
    paths = WarehousePaths(home)
    previous = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(home)
    start = datetime.now(UTC).date() - timedelta(days=5)
    _generate_into_inbox(paths, seed=1, days=4, start=start)
    assert build(paths) == 0
    yield paths
    if previous is None:
        os.environ.pop(HOME_ENV, None)
    else:
        os.environ[HOME_ENV] = previous

@pytest.mark.slow

def test_daily_job_builds_twice_and_publishes(built_home: WarehousePaths, capsys) -> None:
    paths = built_home
    first = _serving_counts(paths)
    assert first["marts.fct_sessions"] > 100
    assert not list(paths.inbox.rglob("*.jsonl"))
    assert list(paths.archive.rglob("*.jsonl"))
    # a second, incremental run with one more day of traffic
    _generate_into_inbox(paths, seed=2, days=1, start=datetime.now(UTC).date() - timedelta(days=1))
    assert build(paths) == 0
    second = _serving_counts(paths)
    assert second["marts.fct_sessions"] > first["marts.fct_sessions"]
    with duckdb.connect(str(paths.database), read_only=True) as con:
        (sessions,) = con.execute("select count(*) from marts.fct_sessions").fetchone()
    assert second["marts.fct_sessions"] == sessions
    assert second["audit.load_audit"] == first["audit.load_audit"] + 1
    # dbt's log file keeps the build's story, not every statement
    dbt_log = (paths.dbt_target / "dbt.log").read_text()
    assert "Finished running" in dbt_log
    assert '"level": "debug"' not in dbt_log

@pytest.mark.slow
def test_the_command_line_build_leaves_dbt_core_to_the_dbt_process(built_home: WarehousePaths) -> None:
    """`chat-analytics build` runs dagster-dbt without dbt-core in its own process; the build
    still runs every dbt node and check, and publishes."""
    paths = built_home
    before = _serving_counts(paths)
    _generate_into_inbox(paths, seed=3, days=1, start=datetime.now(UTC).date() - timedelta(days=1))
    code = (
        "import json, sys\n"
        "from cli.main import main\n"
        "code = main(['build'])\n"
        "imported = sorted(name for name, module in sys.modules.items()\n"
        "                  if name.startswith('dbt.') and module is not None)\n"
        "print(json.dumps({'exit_code': code, 'dbt_modules': imported}))\n"
    )
    env = {**os.environ, HOME_ENV: str(paths.home)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"exit_code": 0, "dbt_modules": []}, result.stdout[-3000:]
    after = _serving_counts(paths)
    assert after["marts.fct_sessions"] > before["marts.fct_sessions"]
    assert after["audit.load_audit"] == before["audit.load_audit"] + 1
    with duckdb.connect(str(paths.database), read_only=True) as con:
        (sessions,) = con.execute("select count(*) from marts.fct_sessions").fetchone()
    assert after["marts.fct_sessions"] == sessions


@pytest.mark.slow

def test_a_broken_load_blocks_publication(built_home: WarehousePaths, capsys) -> None:
    paths = built_home
    before = serving_link(paths).read_bytes()
    paths.inbox.mkdir(exist_ok=True)
    now = datetime.now(UTC).isoformat()
    lines = [
        json.dumps(
            {"event_id": f"ok-{i}", "session_id": "x", "event_type": "session_start", "timestamp": now}
        )
        for i in range(90)
    ]
    lines += ["not json"] * 10
    (paths.inbox / "broken.jsonl").write_text("\n".join(lines) + "\n")
    settle(paths.inbox)
    assert build(paths) == 1
    error = capsys.readouterr().err
    assert "blocking check 'quarantine_share' on audit/load_audit: worst of 1 new loads" in error
    assert "10 of 100 records quarantined" in error
    assert serving_link(paths).read_bytes() == before
    # the bad load keeps blocking until someone accepts it, once
    assert build(paths) == 1
    assert build(paths, accept_quarantine=True) == 0
    assert "warning: check 'quarantine_share'" in capsys.readouterr().out
    assert build(paths) == 0

@pytest.mark.slow
def test_a_build_tests_the_rows_it_wrote_and_the_weekly_build_every_row(
    built_home: WarehousePaths, capsys
) -> None:
    paths = built_home
    with duckdb.connect(str(paths.database)) as con:
        # a row an earlier build wrote and tested, broken behind the warehouse's back
        broken, duration, channel = con.execute(
            "select session_id, duration_seconds, channel from marts.fct_sessions "
            "order by last_loaded_at, session_id limit 1"
        ).fetchone()
        con.execute(
            "update marts.fct_sessions set duration_seconds = -1, channel = null where session_id = ?",
            [broken],
        )
    try:
        _generate_into_inbox(paths, seed=4, days=1, start=datetime.now(UTC).date())
        capsys.readouterr()
        assert build(paths) == 0  # the new rows pass; the broken row is not among them
        assert build(paths, test_all_rows=True) == 1
        errors = capsys.readouterr().err
        assert "within_range_fct_sessions_duration_seconds" in errors
        # the not-null columns of a model are checked in one test, which counts the NULLs
        assert "not_null_columns_fct_sessions_session_id__session_date__channel" in errors
    finally:
        with duckdb.connect(str(paths.database)) as con:
            con.execute(
                "update marts.fct_sessions set duration_seconds = ?, channel = ? where session_id = ?",
                [duration, channel, broken],
            )
    assert build(paths, test_all_rows=True) == 0


@pytest.mark.slow

def test_a_second_build_is_refused_while_one_runs(built_home: WarehousePaths, capsys) -> None:
    paths = built_home
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from loaders.paths import WarehousePaths\n"
            "from orchestration.lib.locks import build_lock\n"
            f"with build_lock(WarehousePaths(__import__('pathlib').Path({str(paths.home)!r}))):\n"
            "    print('locked', flush=True); time.sleep(60)\n",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert build(paths) == BUILD_BUSY_EXIT_CODE
        assert f"another build of {paths.home} is running (pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_a_build_that_dbt_fails_names_the_failed_test_and_dbts_reason(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """A load whose audit no longer adds up (edited after its commit) fails dbt's
    every_load_reconciles test: the summary says which dbt node failed and why, not only that
    the dbt process did."""
    paths = WarehousePaths(tmp_path / "warehouse")
    monkeypatch.setenv(HOME_ENV, str(paths.home))
    start = datetime.now(UTC).date() - timedelta(days=2)
    generate(GeneratorConfig(days=1, sessions_per_day=20, seed=3, start=start), tmp_path / "events")
    list(load_files(sorted((tmp_path / "events").glob("*.jsonl")), paths))
    (audit,) = [path for path in paths.loads.glob("*/audit.parquet") if "empty" not in path.parent.name]
    edited = tmp_path / "audit.parquet"
    with duckdb.connect() as con:
        con.execute(
            f"copy (select * replace (records_read + 1 as records_read) from read_parquet('{audit}')) "
            f"to '{edited}' (format parquet)"
        )
    shutil.copyfile(edited, audit)
    assert build(paths) == 1
    error = capsys.readouterr().err
    assert (
        "build failed: step 'dbt_models' failed: dbt test every_load_reconciles: "
        "Got 1 result, configured to fail if != 0"
    ) in error
    assert "The dbt CLI process" not in error
    assert not serving_link(paths).exists()


@pytest.mark.slow
def test_a_reader_keeps_its_snapshot_during_a_build(built_home: WarehousePaths) -> None:
    paths = built_home
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys\n"
            f"con = duckdb.connect({str(serving_link(paths))!r}, read_only=True)\n"
            "query = 'select count(*), sum(sessions) from marts.fct_agent_metrics_daily'\n"
            "count = lambda: con.execute(query).fetchone()\n"
            "print(count(), flush=True)\n"
            "sys.stdin.readline()\n"
            "print(count(), flush=True)\n",
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = reader.stdout.readline().strip()
        # a seed of its own: the module's other tests land seeds 1 to 4, and a seed's event ids
        # repeat whatever the day, so their copies would change nothing on a quiet weekday
        _generate_into_inbox(paths, seed=5, days=1, start=datetime.now(UTC).date() - timedelta(days=2))
        assert build(paths) == 0
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == first
    finally:
        reader.kill()
        reader.wait()
    with duckdb.connect(str(serving_link(paths)), read_only=True) as con:
        now = con.execute("select count(*), sum(sessions) from marts.fct_agent_metrics_daily").fetchone()
    assert str(now) != first


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

@pytest.mark.slow

def test_dagster_dev_serves_the_asset_graph(tmp_path: Path) -> None:
    port = _free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path), **{HOME_ENV: str(tmp_path / "wh")})
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-m",
            "orchestration.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql",
                    data=query,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    payload = json.load(response)
                nodes = payload["data"]["assetNodes"]
                if nodes:
                    break
            except (OSError, KeyError, TypeError):
                pass
            assert time.monotonic() < deadline, "dagster dev did not answer within 120 s"
            time.sleep(1)
        keys = sorted("/".join(node["assetKey"]["path"]) for node in nodes)
        assert keys == EXPECTED_ASSETS
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    shutil.rmtree(tmp_path, ignore_errors=True)
