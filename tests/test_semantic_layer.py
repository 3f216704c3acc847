"""The semantic layer is the one home of every metric: MetricFlow validates it against the
warehouse, `mf query` answers from it, the daily mart's rates and the dashboard follow an edit
of it, and hand-computed fixtures check its numbers."""

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from loaders.generate import GeneratorConfig, generate
from loaders.load import load_file, load_files
from loaders.paths import HOME_ENV, WarehousePaths
from serving.dashboard import Slice, dashboard
from serving.publish import BuildRecord, connect_snapshot, publish

from .conftest import REPO, event, write_jsonl

pytestmark = pytest.mark.slow  # each builds a warehouse

BIN = Path(sys.executable).parent


def run_dbt(project: Path, paths: WarehousePaths, *args: str) -> subprocess.CompletedProcess:
    """dbt on a project folder, writing its artifacts where builds of this warehouse do."""
    env = {**os.environ, HOME_ENV: str(paths.home), "DBT_PROFILES_DIR": str(REPO),
           "DBT_TARGET_PATH": str(paths.dbt_target)}
    done = subprocess.run([str(BIN / "dbt"), *args, "--project-dir", str(project)],
                          env=env, cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done


def build_and_publish(project: Path, paths: WarehousePaths) -> None:
    run_dbt(project, paths, "build", "--exclude", "resource_type:unit_test")
    publish(paths, BuildRecord("test", datetime(2026, 1, 1), False))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> WarehousePaths:
    paths = WarehousePaths(tmp_path_factory.mktemp("semantic") / "warehouse")
    folder = paths.home.parent / "events"
    manifest = generate(GeneratorConfig(days=3, sessions_per_day=60, seed=5, start=date(2026, 5, 4)), folder)
    for _ in load_files([folder / name for name in manifest.files], paths):
        pass
    build_and_publish(REPO / "dbt_project", paths)
    return paths


def mf(paths: WarehousePaths, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, HOME_ENV: str(paths.home), "DBT_PROFILES_DIR": str(REPO)}
    return subprocess.run([str(BIN / "mf"), *args], env=env, cwd=REPO / "dbt_project",
                          capture_output=True, text=True)


def test_metricflow_validates_the_semantic_layer_against_the_warehouse(generated) -> None:
    done = mf(generated, "validate-configs")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "ERRORS: 0" in done.stdout
    assert "Successfully validated metrics against data warehouse" in done.stdout


def test_the_readme_query_answers_from_the_one_definition(generated, tmp_path) -> None:
    out = tmp_path / "answer.csv"
    done = mf(generated, "query", "--metrics", "resolution_rate,conversion_rate",
              "--group-by", "metric_time__week,session__channel", "--csv", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    with duckdb.connect() as con:
        answer = con.execute(f"select * from read_csv('{out}') order by all").fetchall()
        con.execute(f"attach '{generated.database}' as warehouse (read_only)")
        expected = con.execute(
            """
            select date_trunc('week', session_date), channel,
                   1 - avg(case when is_escalated then 1.0 else 0.0 end),
                   avg(case when is_converted then 1.0 else 0.0 end)
            from warehouse.marts.fct_sessions group by all order by all
            """
        ).fetchall()
    assert len(answer) == len(expected) > 0
    for got, want in zip(answer, expected, strict=True):
        assert got[1] == want[1] and abs(got[2] - want[2]) < 1e-12 and abs(got[3] - want[3]) < 1e-12


def test_editing_a_metric_changes_the_mart_and_the_dashboard(generated, tmp_path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(REPO / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    definitions = project / "models" / "marts" / "core" / "fct_sessions.yml"
    text = definitions.read_text()
    edited = text.replace(
        "type_params: {numerator: converted_sessions, denominator: sessions}",
        "type_params: {numerator: escalated_sessions, denominator: sessions}",
    )
    assert edited != text
    definitions.write_text(edited)
    paths = WarehousePaths(tmp_path / "warehouse")
    shutil.copytree(generated.landing, paths.landing)
    build_and_publish(project, paths)
    with connect_snapshot(generated) as con:
        period = Slice(*con.execute(
            "select min(metric_date), max(metric_date) from marts.fct_agent_metrics_daily").fetchone())
        before = dashboard(con, period)["metrics"]
    with connect_snapshot(paths) as con:
        after = dashboard(con, period)["metrics"]
        mart = con.execute(
            "select count(*) from marts.fct_agent_metrics_daily "
            "where conversion_rate is distinct from escalation_rate").fetchone()[0]
    assert after["conversion_rate"] == pytest.approx(before["escalation_rate"], abs=1e-12)
    assert after["conversion_rate"] != pytest.approx(before["conversion_rate"], abs=1e-6)
    assert mart == 0  # the mart's rate column follows the definition too


def test_hand_computed_fixture(warehouse: WarehousePaths, tmp_path: Path) -> None:
    """Two days, computed by hand; the second day has no user message, no response and no
    rating, so its rates with those denominators are NULL."""
    records = [
        # day 1, s1 (web): 4 user messages, 2 fallbacks, escalated, converted, rated 5
        event("a1", session_id="s1", event_type="session_start", timestamp="2026-03-01T10:00:00Z",
              channel="web"),
        *[event(f"a{n}", session_id="s1", event_type="message_sent",
                timestamp=f"2026-03-01T10:0{n}:00Z", channel="web") for n in range(2, 6)],
        event("a6", session_id="s1", event_type="message_received", timestamp="2026-03-01T10:02:00.100Z"),
        event("a7", session_id="s1", event_type="fallback_triggered", timestamp="2026-03-01T10:06:00Z",
              properties={"topic": "billing"}),
        event("a8", session_id="s1", event_type="fallback_triggered", timestamp="2026-03-01T10:06:01Z",
              properties={"topic": "billing"}),
        event("a9", session_id="s1", event_type="escalation_requested", timestamp="2026-03-01T10:07:00Z"),
        event("a10", session_id="s1", event_type="conversion", timestamp="2026-03-01T10:08:00Z"),
        event("a11", session_id="s1", event_type="feedback_submitted", timestamp="2026-03-01T10:09:00Z",
              properties={"rating": 5}),
        # day 1, s2 (web): 1 user message answered after 300 ms, nothing else; lasts 30 s
        event("b1", session_id="s2", event_type="message_sent", timestamp="2026-03-01T12:00:00Z",
              channel="web"),
        event("b2", session_id="s2", event_type="message_received", timestamp="2026-03-01T12:00:00.300Z"),
        event("b3", session_id="s2", event_type="session_end", timestamp="2026-03-01T12:00:30Z"),
        # day 2, s3 (web): a start and an end, 10 s apart
        event("c1", session_id="s3", event_type="session_start", timestamp="2026-03-02T09:00:00Z",
              channel="web"),
        event("c2", session_id="s3", event_type="session_end", timestamp="2026-03-02T09:00:10Z"),
    ]
    load_file(write_jsonl(tmp_path / "fixture.jsonl", records), warehouse)
    build_and_publish(REPO / "dbt_project", warehouse)
    with connect_snapshot(warehouse) as con:
        day1 = dashboard(con, Slice(date(2026, 3, 1), date(2026, 3, 1)))["metrics"]
        day2 = dashboard(con, Slice(date(2026, 3, 2), date(2026, 3, 2)))["metrics"]
        both = dashboard(con, Slice(date(2026, 3, 1), date(2026, 3, 2)))["metrics"]
        mart = con.execute(
            "select metric_date, escalation_rate, fallback_rate, avg_first_response_ms, "
            "avg_satisfaction_score, avg_session_duration_seconds from marts.fct_agent_metrics_daily "
            "order by metric_date").fetchall()
    # s1 lasts 9 minutes (540 s), s2 30 s; first responses 100 ms and 300 ms
    assert day1 == pytest.approx({
        "total_sessions": 2, "avg_session_duration_seconds": (540 + 30) / 2,
        "avg_messages_per_session": 5 / 2, "resolution_rate": 0.5, "escalation_rate": 0.5,
        "fallback_rate": 2 / 5, "conversion_rate": 0.5, "avg_first_response_ms": (100 + 300) / 2,
        "avg_satisfaction_score": 5.0,
        # s1 escalated, so only s2 is contained; s2 has no evidence of resolution; no tokens
        "containment_rate": 0.5, "confirmed_resolution_rate": 0.0, "verified_resolution_rate": None,
        "total_cost_usd": 0.0, "cost_per_session": 0.0, "cost_per_resolved_session": None,
    })
    assert day2["total_sessions"] == 1 and day2["avg_session_duration_seconds"] == 10.0
    assert day2["fallback_rate"] is None and day2["avg_first_response_ms"] is None
    assert day2["avg_satisfaction_score"] is None and day2["escalation_rate"] == 0.0
    # a period's rate comes from summed parts, not from averaging the days' rates
    assert both["escalation_rate"] == pytest.approx(1 / 3)
    assert both["avg_session_duration_seconds"] == pytest.approx((540 + 30 + 10) / 3)
    assert mart[0][1:] == pytest.approx((0.5, 0.4, 200.0, 5.0, 285.0))
    assert mart[1][1:] == (0.0, None, None, None, 10.0)


def test_no_rate_formula_is_written_in_python() -> None:
    """Rates come from the semantic layer: no Python module divides sums in SQL."""
    division = re.compile(r"(sum|count)\([^)]*\)\s*/|nullif\(\s*sum", re.IGNORECASE)
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("serving", "orchestration", "cli", "loaders")
        for path in (REPO / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if division.search(line)
    ]
    assert offenders == []


def test_every_published_metric_has_a_label_and_a_description() -> None:
    manifest = json.loads((REPO / "dbt_project" / "target" / "semantic_manifest.json").read_text())
    missing = [m["name"] for m in manifest["metrics"] if not m.get("label") or not m.get("description")]
    assert missing == [], "\n".join(missing)
    names = {m["name"] for m in manifest["metrics"]}
    from serving.dashboard import FUNNEL, HEADLINE_METRICS, TOP_TOPICS
    from serving.report import SCORE_BANDS, TREND

    shown = {*HEADLINE_METRICS.values(), *FUNNEL.metrics, *TOP_TOPICS.metrics, *TREND.metrics,
             *SCORE_BANDS.metrics, "feedback_response_rate"}
    assert shown <= names


def test_every_published_column_is_documented(generated) -> None:
    """What BI readers see in the snapshot: every column of every table has a description."""
    manifest = json.loads((REPO / "dbt_project" / "target" / "manifest.json").read_text())
    documented = {
        (node["schema"], node["alias"]): {
            name: column.get("description", "") for name, column in node["columns"].items()
        }
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed")
    }
    missing = []
    with connect_snapshot(generated) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'warehouse' "
            "and (schema_name = 'marts' or table_name = 'load_audit') order by all").fetchall()
        for schema, table in tables:
            columns = [row[0] for row in con.execute(
                "select column_name from duckdb_columns() where database_name = 'warehouse' "
                "and schema_name = ? and table_name = ?", [schema, table]).fetchall()]
            docs = documented.get((schema, table), {})
            missing += [f"{schema}.{table}.{c}" for c in columns if not docs.get(c, "").strip()]
    assert len(tables) >= 15
    assert missing == [], "\n".join(missing)


def test_session_metrics_from_the_daily_rollup_equal_them_from_the_sessions(generated) -> None:
    """The dashboard's and the report's session metrics read fct_agent_metrics_daily; for every
    period and slice they equal MetricFlow's answer over fct_sessions, and a query the rollup
    cannot answer (distinct users, a session-only dimension) still reads the sessions."""
    from serving.dashboard import ALL_METRICS, USERS
    from serving.metrics import MetricQuery, SemanticLayer, semantic_layer
    from serving.report import BY_SLICE, TREND

    by_escalation = MetricQuery(("sessions", "conversion_rate"), group_by=("session__is_escalated",),
                                order_by=("session__is_escalated",))
    with connect_snapshot(generated) as con:
        rolled = semantic_layer(con)
        (manifest,) = con.execute("select manifest from audit.semantic_manifest").fetchone()
        sessions_only = SemanticLayer(manifest)
        first, last = con.execute(
            "select min(session_date), max(session_date) from marts.fct_sessions").fetchone()
        channel, version = con.execute(
            "select channel, coalesce(agent_version, 'unknown') from marts.fct_sessions "
            "group by all order by count(*) desc limit 1").fetchone()
        slices = [{"start": first, "end": last}, {"start": last, "end": last, "channel": channel},
                  {"start": first, "end": last, "channel": channel, "agent_version": version}]
        compared = 0
        for query in (ALL_METRICS, TREND, BY_SLICE):
            for values in slices:
                given = frozenset(values)
                assert "fct_agent_metrics_daily" in rolled.sql(query, given)
                assert "fct_sessions" not in rolled.sql(query, given)
                got, want = rolled.query(con, query, **values), sessions_only.query(con, query, **values)
                assert len(got) == len(want) > 0
                for got_row, want_row in zip(got, want, strict=True):
                    assert got_row.keys() == want_row.keys()
                    for name, value in want_row.items():
                        if isinstance(value, float):
                            assert got_row[name] == pytest.approx(value, rel=1e-12), name
                        else:
                            assert got_row[name] == value, name
                    compared += len(got_row)
        assert compared > 200
        for query, values in ((USERS, {"start": first, "end": last}), (by_escalation, {})):
            assert "fct_sessions" in rolled.sql(query, frozenset(values))
            assert rolled.query(con, query, **values) == sessions_only.query(con, query, **values)
        assert len(rolled.query(con, by_escalation)) == 2


def test_compiled_sql_is_reused_for_the_same_definitions_in_another_order(generated, tmp_path) -> None:
    """A partial parse writes the semantic models and metrics in another order than a full
    parse: the compiled SQL kept for one serves the other, and an edited metric compiles anew."""
    from serving.dashboard import ALL_METRICS
    from serving.metrics import SemanticLayer

    with connect_snapshot(generated) as con:
        (manifest_json,) = con.execute("select manifest from audit.semantic_manifest").fetchone()
    manifest = json.loads(manifest_json)
    reordered = {key: list(reversed(value)) if isinstance(value, list) else value
                 for key, value in manifest.items()}
    assert json.dumps(reordered) != manifest_json
    cache = tmp_path / "compiled"
    SemanticLayer(manifest_json, sql_cache=cache).sql(ALL_METRICS, frozenset())
    (kept,) = cache.glob("*.json")
    sql = json.loads(kept.read_text())
    assert len(sql) == 1

    again = SemanticLayer(json.dumps(reordered), sql_cache=cache)
    assert again.sql(ALL_METRICS, frozenset()) == next(iter(sql.values()))
    assert list(cache.glob("*.json")) == [kept]

    edited = {**manifest, "metrics": [
        {**metric, "description": "edited"} if metric["name"] == "fallback_rate" else metric
        for metric in manifest["metrics"]]}
    SemanticLayer(json.dumps(edited), sql_cache=cache).sql(ALL_METRICS, frozenset())
    assert len(list(cache.glob("*.json"))) == 2
