"""The marts against an independent pandas computation of their documented definitions, and incremental
builds against a full refresh."""

import hashlib
import json
import math
import random
import shutil
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from loaders.generate import GeneratorConfig, generate
from loaders.load import load_file
from loaders.paths import WarehousePaths

from .conftest import dbt, event, write_jsonl

MARTS = {
    "marts.fct_sessions": ["session_id"],
    "marts.fct_agent_metrics_daily": ["metric_date", "channel", "agent_version"],
    "marts.fct_conversation_scores": ["session_id"],
    "marts.fct_funnel_daily": ["session_date", "funnel_name", "step_order"],
    "marts.fct_funnel_slices_daily": [
        "session_date", "channel", "agent_version", "funnel_name", "step_order",
    ],
    "marts.fct_fallback_topics_daily": ["session_date", "topic"],
    "marts.fct_session_funnel_steps": ["session_id", "funnel_name", "step_order"],
    "marts.fct_session_fallback_topics": ["session_id", "topic"],
    "marts.fct_ab_exposures": ["test_name", "session_id"],
    "marts.fct_ab_results": ["test_name", "variant", "metric"],
    "marts.fct_ab_results_daily": ["as_of_date", "test_name", "variant", "metric"],
    "marts.fct_session_outcomes": ["session_id"],
    "marts.fct_tool_calls_daily": ["metric_date", "channel", "agent_version", "tool_name"],
    "marts.fct_latency_sketch_daily": ["metric_date", "channel", "agent_version", "latency_kind", "bucket"],
    "marts.fct_users": ["user_key"],
    "marts.fct_users_daily": ["metric_date"],
    "marts.fct_user_retention_weekly": ["cohort_week", "week_number"],
}
DEMO_SALT = "chat-analytics-demo-salt"
WINDOW = pd.Timedelta(days=7)


def user_key(user_id):
    return None if user_id is None else hashlib.sha256((DEMO_SALT + user_id).encode()).hexdigest()[:16]


def user_number(key):
    return None if key is None else int.from_bytes(bytes.fromhex(key), "big", signed=True)


def read_table(home: Path, table: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        frame = con.execute(f"select * from {table} order by {', '.join(MARTS[table])}").df()
    for column in ("session_date", "metric_date", "first_session_date", "last_session_date", "cohort_week"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> WarehousePaths:
    home = tmp_path_factory.mktemp("marts")
    paths = WarehousePaths(home / "warehouse")
    manifest = generate(
        GeneratorConfig(days=4, sessions_per_day=120, seed=42, start=date(2026, 3, 1)),
        home / "events",
    )
    for name in manifest.files:
        load_file(home / "events" / name, paths)
    dbt(paths.home, "build")
    return paths


def reference_sessions(paths: WarehousePaths) -> pd.DataFrame:
    """fct_sessions as its documentation defines it, written from the text in plain pandas."""
    with duckdb.connect() as con:
        events = con.execute(f"select * from read_parquet('{paths.events_glob()}')").df()
    props = events["properties"].map(json.loads)

    def text(key):
        return props.map(lambda p: p.get(key) if isinstance(p.get(key), str) else None)

    events["agent_version"] = text("agent_version")
    events["success"] = props.map(lambda p: p.get("success") if isinstance(p.get("success"), bool) else None)
    events["thumbs"] = text("thumbs")

    def amount(p, key, integral):
        value = p.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return 0
        return 0 if integral and not float(value).is_integer() else value

    received = events["event_type"] == "message_received"
    for key, integral in (("tokens_in", True), ("tokens_out", True), ("cost_usd", False)):
        events[key] = [amount(p, key, integral) if r else 0 for p, r in zip(props, received, strict=True)]

    def valid_rating(p):
        value = p.get("rating")
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float) and float(value).is_integer() and 1 <= value <= 5:
            return int(value)
        if isinstance(value, str) and value.strip().isdigit() and 1 <= int(value) <= 5:
            return int(value)
        return None

    events["valid_rating"] = [
        valid_rating(p) if t == "feedback_submitted" else None
        for p, t in zip(props, events["event_type"], strict=True)
    ]
    events = events.sort_values(["session_id", "event_timestamp", "event_id"])
    rows = []
    for session_id, group in events.groupby("session_id", sort=True):
        kinds = group["event_type"]
        sent = group[kinds == "message_sent"]["event_timestamp"]
        received = group[kinds == "message_received"]["event_timestamp"]
        first_response = None
        if len(sent):
            after = received[received >= sent.min()]
            if len(after):
                first_response = int((after.min() - sent.min()) / pd.Timedelta(milliseconds=1))
        rated = group[group["valid_rating"].notna()].sort_values(
            ["event_timestamp", "event_id"], ascending=False
        )
        versions = group["agent_version"].dropna()
        users = group["user_id"].dropna()
        start, end = group["event_timestamp"].min(), group["event_timestamp"].max()
        messages = int((kinds == "message_sent").sum() + (kinds == "message_received").sum())
        rows.append(
            {
                "session_id": session_id,
                "user_key": user_key(users.iloc[0] if len(users) else None),
                "session_date": start.date(),
                "channel": group["channel"].iloc[0],
                "agent_version": versions.iloc[0] if len(versions) else None,
                "duration_seconds": (end - start) / pd.Timedelta(milliseconds=1) / 1000,
                "user_messages": int((kinds == "message_sent").sum()),
                "agent_messages": int((kinds == "message_received").sum()),
                "first_response_ms": first_response,
                "fallback_count": int((kinds == "fallback_triggered").sum()),
                "is_escalated": bool((kinds == "escalation_requested").any()),
                "is_converted": bool((kinds == "conversion").any()),
                "conversion_count": int((kinds == "conversion").sum()),
                "rating": int(rated["valid_rating"].iloc[0]) if len(rated) else None,
                "has_feedback": bool((kinds == "feedback_submitted").any()),
                "flows_started": int((kinds == "flow_started").sum()),
                "flows_completed": int((kinds == "flow_completed").sum()),
                "flows_abandoned": int((kinds == "flow_abandoned").sum()),
                "tool_calls": int((kinds == "tool_called").sum()),
                "tool_failures": int(((kinds == "tool_called") & (group["success"] == False)).sum()),  # noqa: E712
                "has_session_end": bool((kinds == "session_end").any()),
                "has_thumbs_up": bool(((kinds == "feedback_submitted") & (group["thumbs"] == "up")).any()),
                "tokens_in": int(group["tokens_in"].sum()),
                "tokens_out": int(group["tokens_out"].sum()),
                "cost_usd": float(group["cost_usd"].sum()),
                "session_started_at": start,
                "session_ended_at": end,
                "messages": messages,
            }
        )
    return pd.DataFrame(rows)


def assert_columns_equal(actual: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        left, right = actual[column].tolist(), expected[column].tolist()
        for index, (a, e) in enumerate(zip(left, right, strict=True)):
            a_missing = a is None or (isinstance(a, float) and np.isnan(a)) or a is pd.NA
            e_missing = e is None or (isinstance(e, float) and np.isnan(e)) or e is pd.NA
            assert a_missing == e_missing, (column, index, a, e)
            if a_missing:
                continue
            if isinstance(e, float):
                assert abs(float(a) - e) <= 1e-9, (column, index, a, e)
            else:
                assert a == e, (column, index, a, e)


def test_sessions_match_the_reference(built: WarehousePaths) -> None:
    expected = reference_sessions(built)
    actual = read_table(built.home, "marts.fct_sessions")
    assert len(actual) == len(expected) > 400
    columns = [c for c in expected.columns if c not in ("messages", "session_started_at", "session_ended_at")]
    assert_columns_equal(actual, expected, columns)
    assert actual["user_key"].notna().sum() > 300  # pseudonyms, never a raw id
    with duckdb.connect(str(built.database), read_only=True) as con:
        numbers = con.execute("select user_key, user_number from marts.fct_sessions").fetchall()
        assert [number for _, number in numbers] == [user_number(key) for key, _ in numbers]
        assert {number < 0 for _, number in numbers if number is not None} == {True, False}
        raw = con.execute(
            "select count(*) from duckdb_columns() where schema_name = 'marts' and column_name = 'user_id'"
        ).fetchone()[0]
    assert raw == 0


def reference_outcomes(s: pd.DataFrame) -> pd.DataFrame:
    """The outcome ladder as documented, with the default vars."""
    latest = s["session_ended_at"].max()
    rows = []
    by_user = {key: group for key, group in s[s["user_key"].notna()].groupby("user_key")}
    for r in s.itertuples():
        if r.is_escalated:
            evidence = None
        elif r.is_converted:
            evidence = "conversion"
        elif r.flows_completed > 0:
            evidence = "flow_completed"
        elif (r.rating is not None and not pd.isna(r.rating) and r.rating >= 4) or r.has_thumbs_up:
            evidence = "positive_feedback"
        else:
            evidence = None
        known_user = isinstance(r.user_key, str)
        recontacted = None
        if known_user:
            others = by_user[r.user_key]
            later = others[(others["session_started_at"] > r.session_started_at)
                           & (others["session_started_at"] <= r.session_ended_at + WINDOW)]
            recontacted = len(later) > 0
        if evidence is None:
            verification = None
        elif not known_user:
            verification = "unverifiable"
        elif recontacted:
            verification = "recontacted"
        elif r.session_ended_at + WINDOW > latest:
            verification = "pending"
        else:
            verification = "verified"
        rows.append({"session_id": r.session_id, "is_contained": not r.is_escalated,
                     "resolution_evidence": evidence, "is_resolved": evidence is not None,
                     "recontacted": recontacted, "verification": verification})
    return pd.DataFrame(rows).sort_values("session_id").reset_index(drop=True)


def test_outcomes_users_and_cost_match_the_reference(built: WarehousePaths) -> None:
    s = reference_sessions(built).sort_values("session_id").reset_index(drop=True)
    expected = reference_outcomes(s)
    actual = read_table(built.home, "marts.fct_session_outcomes")
    assert_columns_equal(actual, expected, list(expected.columns[1:]))
    assert set(actual["verification"].dropna()) >= {"pending", "unverifiable"}
    assert actual["definition_version"].unique().tolist() == [hashlib.sha256(
        b'{"positive_rating_min":4,"recontact_window_days":7,'
        b'"resolution_evidence":["conversion","flow_completed","positive_feedback"]}').hexdigest()[:12]]
    # users
    known = s[s["user_key"].notna()]
    users = known.groupby("user_key").agg(
        first_session_date=("session_date", "min"), last_session_date=("session_date", "max"),
        sessions=("session_id", "size"), converted_sessions=("is_converted", "sum"),
    ).reset_index()
    actual_users = read_table(built.home, "marts.fct_users")
    assert_columns_equal(actual_users, users, list(users.columns))
    firsts = dict(zip(users["user_key"], users["first_session_date"], strict=True))
    daily = []
    for day, group in known.groupby("session_date"):
        active = set(group["user_key"])
        new = sum(firsts[u] == day for u in active)
        daily.append({"active_users": len(active), "new_users": new, "returning_users": len(active) - new})
    assert_columns_equal(read_table(built.home, "marts.fct_users_daily"), pd.DataFrame(daily),
                         ["active_users", "new_users", "returning_users"])
    # cost and outcomes in the daily mart
    merged = s.merge(expected, on="session_id")
    merged["agent_version"] = merged["agent_version"].fillna("unknown")
    grouped = merged.groupby(["session_date", "channel", "agent_version"], sort=True)
    want = pd.DataFrame({
        "contained_sessions": grouped["is_contained"].sum(),
        "resolved_sessions": grouped["is_resolved"].sum(),
        "verified_sessions": grouped["verification"].apply(lambda v: int((v == "verified").sum())),
        "total_cost_usd": grouped["cost_usd"].sum(),
        "total_tokens_out": grouped["tokens_out"].sum(),
    }).reset_index(drop=True)
    want["cost_per_session"] = want["total_cost_usd"] / grouped.size().to_numpy()
    got = read_table(built.home, "marts.fct_agent_metrics_daily")
    assert_columns_equal(got, want, list(want.columns))


def test_tools_and_latency_sketches_match_the_events(built: WarehousePaths) -> None:
    from serving.sketch import quantile

    with duckdb.connect() as con:
        con.execute(f"attach '{built.database}' as warehouse (read_only)")
        calls = con.execute(
            """
            select s.session_date, s.channel, coalesce(s.agent_version, 'unknown'),
                   coalesce(nullif(lower(trim(e.properties ->> 'tool_name')), ''), 'unknown') as tool,
                   count(*), count(*) filter (where e.properties ->> 'success' = 'false'),
                   count(distinct e.session_id)
            from read_parquet(?) as e join warehouse.marts.fct_sessions as s using (session_id)
            where e.event_type = 'tool_called' group by all order by all
            """, [built.events_glob()]).fetchall()
        mart = con.execute(
            "select metric_date, channel, agent_version, tool_name, calls, failures, sessions "
            "from warehouse.marts.fct_tool_calls_daily order by all").fetchall()
        assert calls == mart and len(mart) > 10
        for kind, source in (
            ("first_response", "select first_response_ms as v, channel from warehouse.marts.fct_sessions "
                               "where first_response_ms is not null"),
            ("agent_message",
             "select cast(e.properties ->> 'latency_ms' as double) as v, s.channel "
             "from read_parquet(?) as e join warehouse.marts.fct_sessions s using (session_id) "
             "where e.event_type = 'message_received' and e.properties ->> 'latency_ms' is not null"),
        ):
            values = con.execute(source, [built.events_glob()] if "?" in source else []).fetchall()
            buckets = con.execute(
                "select bucket, bucket_value_ms, samples, channel "
                "from warehouse.marts.fct_latency_sketch_daily where latency_kind = ?", [kind]).fetchall()
            for channel in (None, "web"):
                exact = sorted(v for v, c in values if channel is None or c == channel)
                rows = [(b, val, n) for b, val, n, c in buckets if channel is None or c == channel]
                assert sum(n for _, _, n in rows) == len(exact)
                for q in (0.5, 0.9, 0.99):
                    truth = exact[math.floor(q * (len(exact) - 1))]
                    assert abs(quantile(rows, q) - truth) <= 0.01 * truth, (kind, channel, q)


def test_daily_metrics_match_the_reference(built: WarehousePaths) -> None:
    s = reference_sessions(built)
    s["agent_version"] = s["agent_version"].fillna("unknown")
    s["eligible"] = s["messages"] > 3
    rows = []
    for (_day, _channel, _version), g in s.groupby(["session_date", "channel", "agent_version"], sort=True):
        n = len(g)
        responded = g["first_response_ms"].notna()
        rated = g["rating"].notna()
        eligible = g["eligible"]
        rows.append(
            {
                "sessions": n,
                "user_messages": int(g["user_messages"].sum()),
                "escalation_rate": g["is_escalated"].sum() / n,
                "resolution_rate": 1 - g["is_escalated"].sum() / n,
                "conversion_rate": g["is_converted"].sum() / n,
                "avg_session_duration_seconds": g["duration_seconds"].sum() / n,
                "avg_messages_per_session": g["user_messages"].sum() / n,
                "fallback_rate": (g["fallback_count"].sum() / g["user_messages"].sum())
                if g["user_messages"].sum()
                else None,
                "avg_first_response_ms": (g.loc[responded, "first_response_ms"].sum() / responded.sum())
                if responded.sum()
                else None,
                "avg_satisfaction_score": (g.loc[rated, "rating"].sum() / rated.sum())
                if rated.sum()
                else None,
                "feedback_response_rate": ((eligible & g["has_feedback"]).sum() / eligible.sum())
                if eligible.sum()
                else None,
            }
        )
    expected = pd.DataFrame(rows)
    actual = read_table(built.home, "marts.fct_agent_metrics_daily")
    assert len(actual) == len(expected)
    assert_columns_equal(actual, expected, list(expected.columns))


def test_scores_funnel_and_topics_match_the_reference(built: WarehousePaths) -> None:
    s = reference_sessions(built).sort_values("session_id").reset_index(drop=True)
    resolution = np.where(s["is_escalated"], 0.0, 100.0)
    efficiency = [
        None if m == 0 else 100.0 if m <= 3 else max(0.0, 100.0 - 10 * (m - 3)) for m in s["user_messages"]
    ]
    sentiment = [None if pd.isna(r) else (r - 1) * 25.0 for r in s["rating"]]
    goal = np.where(s["is_converted"] | (s["flows_completed"] > 0), 100.0, 0.0)
    overall = []
    for r, e, t, g in zip(resolution, efficiency, sentiment, goal, strict=True):
        parts = (
            [(0.3, r), (0.3, g)]
            + ([(0.2, e)] if e is not None else [])
            + ([(0.2, t)] if t is not None else [])
        )
        overall.append(sum(w * v for w, v in parts) / sum(w for w, _ in parts))
    expected = pd.DataFrame(
        {
            "resolution_score": resolution,
            "efficiency_score": efficiency,
            "sentiment_score": sentiment,
            "goal_completion_score": goal,
            "overall_score": overall,
        }
    )
    actual = read_table(built.home, "marts.fct_conversation_scores")
    assert_columns_equal(actual, expected, list(expected.columns))

    with duckdb.connect() as con:
        events = con.execute(f"select * from read_parquet('{built.events_glob()}')").df()
    starts = dict(zip(s["session_id"], s["session_date"], strict=True))
    steps = ["session_start", "message_sent", "flow_started", "flow_completed", "conversion"]
    reached: dict = {}
    for session_id, group in events.groupby("session_id"):
        at = None
        for order, kind in enumerate(steps, start=1):
            times = group.loc[group["event_type"] == kind, "event_timestamp"]
            if at is not None:
                times = times[times >= at]
            if not len(times):
                break
            at = times.min()
            key = (starts[session_id], order)
            reached[key] = reached.get(key, 0) + 1
    funnel = read_table(built.home, "marts.fct_funnel_daily")
    for row in funnel.itertuples():
        assert row.sessions_reached == reached.get((row.session_date, row.step_order), 0)
    assert funnel["sessions_reached"].sum() == sum(reached.values())

    fallbacks = events[events["event_type"] == "fallback_triggered"].copy()

    def topic(p):
        p = json.loads(p)
        for key in ("topic", "intent"):
            value = p.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().lower()
        return "unknown"

    fallbacks["topic"] = fallbacks["properties"].map(topic)
    fallbacks["session_date"] = fallbacks["session_id"].map(starts)
    expected_topics = (
        fallbacks.groupby(["session_date", "topic"])
        .agg(fallback_count=("event_id", "size"), sessions=("session_id", "nunique"))
        .reset_index()
    )
    actual_topics = read_table(built.home, "marts.fct_fallback_topics_daily")
    assert_columns_equal(actual_topics, expected_topics, ["topic", "fallback_count", "sessions"])


def snapshot(home: Path) -> dict[str, pd.DataFrame]:
    return {table: read_table(home, table) for table in MARTS}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [101, 202, 303])
def test_incremental_batches_equal_a_full_refresh(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    manifest = generate(
        GeneratorConfig(
            days=4,
            sessions_per_day=40,
            seed=seed,
            start=date(2026, 2, 1),
            duplicate_rate=0.03,
            late_rate=0.05,
        ),
        tmp_path / "events",
    )
    lines = [
        line for name in manifest.files for line in (tmp_path / "events" / name).read_text().splitlines()
    ]
    lines += rng.sample(lines, 30)  # duplicates that arrive in other batches
    rng.shuffle(lines)
    paths = WarehousePaths(tmp_path / "warehouse")
    batches = [lines[i::5] for i in range(5)]
    for number, batch in enumerate(batches):
        path = tmp_path / f"batch-{number}.jsonl"
        path.write_text("\n".join(batch) + "\n")
        load_file(path, paths)
        dbt(paths.home, "build" if number == 0 else "run")
    incremental = snapshot(paths.home)
    dbt(paths.home, "run")
    rerun = snapshot(paths.home)
    dbt(paths.home, "run", "--full-refresh")
    full = snapshot(paths.home)
    for table in MARTS:
        assert len(full[table]) > 0
        pd.testing.assert_frame_equal(
            incremental[table], full[table], check_exact=False, rtol=0, atol=1e-9, obj=table
        )
        pd.testing.assert_frame_equal(rerun[table], incremental[table], check_exact=True, obj=table)


USERS_MARTS = ["marts.fct_users", "marts.fct_users_daily", "marts.fct_user_retention_weekly"]


def test_users_follow_a_session_handed_to_another_user(tmp_path: Path) -> None:
    """Late, earlier events hand session s1 from alice to carol, then to bob, and the two builds
    in between die after fct_sessions, before the users models: the next build drops alice,
    moves bob's first day back, clears the day alice was active, and equals a full refresh."""
    paths = WarehousePaths(tmp_path / "warehouse")

    def load(number: int, records: list[dict]) -> None:
        load_file(write_jsonl(tmp_path / f"batch-{number}.jsonl", records), paths)

    def named(event_id: str, session_id: str, at: str, user_id: str, kind: str = "message_sent") -> dict:
        return {"event_id": event_id, "session_id": session_id, "event_type": kind,
                "timestamp": at, "user_id": user_id}

    load(0, [
        named("a1", "s1", "2026-03-02T10:00:00Z", "alice", "session_start"),
        named("a2", "s1", "2026-03-02T10:05:00Z", "alice"),
        named("b1", "s2", "2026-03-04T09:00:00Z", "bob", "session_start"),
        named("b2", "s2", "2026-03-04T09:01:00Z", "bob"),
    ])
    dbt(paths.home, "build")
    assert set(read_table(paths.home, "marts.fct_users")["user_key"]) == {user_key("alice"), user_key("bob")}
    retention_columns = ["cohort_week", "week_number", "cohort_users", "active_users"]
    retention = read_table(paths.home, "marts.fct_user_retention_weekly")[retention_columns]
    assert retention.values.tolist() == [[date(2026, 3, 2), 0, 2, 2]]
    load(1, [named("c1", "s1", "2026-03-02T09:59:00Z", "carol")])
    dbt(paths.home, "run", "--select", "fct_sessions")
    load(2, [named("b3", "s1", "2026-03-01T23:58:00Z", "bob")])
    dbt(paths.home, "run", "--select", "fct_sessions")
    dbt(paths.home, "run")

    incremental = {table: read_table(paths.home, table) for table in USERS_MARTS}
    users = incremental["marts.fct_users"].set_index("user_key")
    assert list(users.index) == [user_key("bob")]
    assert users.loc[user_key("bob"), "first_session_date"] == date(2026, 3, 1)
    assert users.loc[user_key("bob"), "sessions"] == 2
    daily = incremental["marts.fct_users_daily"]
    assert daily[["metric_date", "active_users", "new_users", "returning_users"]].values.tolist() == [
        [date(2026, 3, 1), 1, 1, 0],
        [date(2026, 3, 4), 1, 0, 1],
    ]
    # bob's first session moved to Sunday 1 March, so his cohort is the week before, and
    # alice's cohort is gone with her
    retention = incremental["marts.fct_user_retention_weekly"][retention_columns]
    assert retention.values.tolist() == [[date(2026, 2, 23), 0, 1, 1], [date(2026, 2, 23), 1, 1, 1]]
    dbt(paths.home, "run", "--full-refresh")
    for table in USERS_MARTS:
        pd.testing.assert_frame_equal(incremental[table], read_table(paths.home, table), obj=table)


@pytest.mark.slow
def test_outcomes_move_as_time_passes_and_users_return(tmp_path: Path) -> None:
    """Ten days arriving day by day (late events a day or more later): sessions resolved early
    are pending until the window has passed in the data, then verified, or recontacted when
    their user comes back; every incremental build still equals a full refresh."""
    manifest = generate(
        GeneratorConfig(days=10, sessions_per_day=30, seed=9, start=date(2026, 3, 2), late_rate=0.05),
        tmp_path / "events",
    )
    paths = WarehousePaths(tmp_path / "warehouse")
    history: dict[str, list[str | None]] = {}
    for number, name in enumerate(manifest.files):
        load_file(tmp_path / "events" / name, paths)
        dbt(paths.home, "build" if number == 0 else "run")
        outcomes = read_table(paths.home, "marts.fct_session_outcomes")
        for session_id, state in zip(outcomes["session_id"], outcomes["verification"], strict=True):
            history.setdefault(session_id, []).append(None if pd.isna(state) else state)
    incremental = snapshot(paths.home)
    dbt(paths.home, "run", "--full-refresh")
    full = snapshot(paths.home)
    for table in MARTS:
        pd.testing.assert_frame_equal(
            incremental[table], full[table], check_exact=False, rtol=0, atol=1e-9, obj=table
        )
    moved = {(states[0], states[-1]) for states in history.values() if states[0] != states[-1]}
    assert ("pending", "verified") in moved
    assert ("pending", "recontacted") in moved


def test_ab_results_through_the_pipeline_match_scipy(built: WarehousePaths) -> None:
    """The generator's experiment, loaded and built, against scipy on the session mart."""
    from scipy import stats

    with duckdb.connect(str(built.database), read_only=True) as con:
        sessions = con.execute(
            """
            select exposures.variant, sessions.is_converted, sessions.is_escalated,
                   sessions.user_messages, sessions.rating
            from marts.fct_ab_exposures as exposures
            inner join marts.fct_sessions as sessions using (session_id)
            where exposures.test_name = 'greeting_test' and not exposures.is_contaminated
            """
        ).df()
        results = con.execute(
            "select * from marts.fct_ab_results where test_name = 'greeting_test'"
        ).df()
        (contaminated,) = con.execute(
            "select count(*) from marts.fct_ab_exposures where is_contaminated").fetchone()
    assert contaminated == 0
    values = {
        "conversion_rate": sessions["is_converted"].astype(float),
        "resolution_rate": 1.0 - sessions["is_escalated"].astype(float),
        "user_messages": sessions["user_messages"].astype(float),
        "avg_satisfaction": sessions["rating"].astype(float),
    }
    for metric, column in values.items():
        control = column[sessions["variant"] == "control"].dropna().to_numpy()
        treatment = column[sessions["variant"] == "treatment"].dropna().to_numpy()
        binary = metric in ("conversion_rate", "resolution_rate")
        var_c = control.mean() * (1 - control.mean()) if binary else control.var(ddof=1)
        var_t = treatment.mean() * (1 - treatment.mean()) if binary else treatment.var(ddof=1)
        se = np.sqrt(var_t / len(treatment) + var_c / len(control))
        df = (var_t / len(treatment) + var_c / len(control)) ** 2 / (
            (var_t / len(treatment)) ** 2 / (len(treatment) - 1)
            + (var_c / len(control)) ** 2 / (len(control) - 1))
        diff = treatment.mean() - control.mean()
        row = results[(results["metric"] == metric) & (results["variant"] == "treatment")].iloc[0]
        assert row["units"] == len(treatment)
        assert abs(row["mean"] - treatment.mean()) < 1e-12
        assert abs(row["abs_diff"] - diff) < 1e-12
        assert abs(row["p_value"] - 2 * stats.t.sf(abs(diff / se), df)) < 1e-9
        if not binary:
            welch = stats.ttest_ind(treatment, control, equal_var=False)
            assert abs(row["p_value"] - welch.pvalue) < 1e-9
        t_crit = stats.t.ppf(0.975, df)
        assert abs(row["abs_diff_ci_low"] - (diff - t_crit * se)) < 1e-9
        assert abs(row["chance_to_win"] - stats.norm.cdf(diff / se)) < 1e-12
    counts = sessions["variant"].value_counts()
    srm = stats.chisquare([counts["control"], counts["treatment"]]).pvalue
    assert abs(results["srm_p_value"].iloc[0] - srm) < 1e-9


def test_user_number_reads_the_key_as_a_signed_integer(tmp_path: Path) -> None:
    from .test_statistics_macros import compile_inline

    keys = ["0000000000000000", "0000000000000001", "7fffffffffffffff", "8000000000000000",
            "ffffffffffffffff", "a3f1c2d4e5b60789", "3c9d0e1f2a4b5c6d"]
    sql = compile_inline("select key, {{ user_number('key') }} as number from keys", tmp_path)
    with duckdb.connect() as con:
        con.execute("create table keys as select unnest(?) as key", [keys])
        answer = dict(con.execute(sql).fetchall())
    assert answer == {key: user_number(key) for key in keys}
    assert answer["8000000000000000"] == -(2**63) and answer["ffffffffffffffff"] == -1


def test_the_catalog_carries_the_docs_and_a_rebuild_rewrites_only_stale_comments(tmp_path: Path) -> None:
    """BI tools read each model's documentation as DuckDB comments. After a first build every
    documented relation and column carries its description; when an incremental model takes
    new rows, only the comments that no longer match are written again."""
    paths = WarehousePaths(tmp_path / "warehouse")
    target, logs = tmp_path / "target", tmp_path / "logs"

    def build_day(number: int) -> list[str]:
        """Land a day of one session, build it, and return the comment statements dbt ran
        for fct_sessions."""
        day = f"2024-05-0{number}"
        session = {"session_id": f"s{number}"}
        load_file(write_jsonl(tmp_path / f"day-{number}.jsonl", [
            event(f"start-{number}", **session, event_type="session_start", timestamp=f"{day}T10:00:00Z"),
            event(f"message-{number}", **session, timestamp=f"{day}T10:01:00Z"),
        ]), paths)
        shutil.rmtree(logs, ignore_errors=True)
        dbt(paths.home, "build", "--exclude", "resource_type:unit_test", "--target-path", str(target),
            "--log-path", str(logs), "--log-level-file", "debug", "--log-format-file", "json")
        statements = []
        for line in (logs / "dbt.log").read_text().splitlines():
            record = json.loads(line)["data"]
            if record.get("node_info", {}).get("node_name") == "fct_sessions" and "sql" in record:
                statements += [part.strip() for part in record["sql"].split(";") if "comment on" in part]
        return statements

    first = build_day(1)
    manifest = json.loads((target / "manifest.json").read_text())["nodes"]
    with duckdb.connect(str(paths.database), read_only=True) as con:
        tables = dict(con.execute(
            "select schema_name || '.' || table_name, comment from duckdb_tables() union all "
            "select schema_name || '.' || view_name, comment from duckdb_views() where not internal"
        ).fetchall())
        columns = dict(con.execute(
            "select schema_name || '.' || table_name || '.' || column_name, comment from duckdb_columns()"
        ).fetchall())
    models = [node for node in manifest.values() if node["resource_type"] == "model"]
    documented = [node for node in models if node["description"]]
    assert len(documented) == len(models) > 20
    for node in documented:
        relation = f"{node['schema']}.{node['alias']}"
        assert tables[relation] == node["description"], relation
        for name, column in node["columns"].items():
            assert (columns[f"{relation}.{name}"] or "") == column["description"], f"{relation}.{name}"
    assert len(first) == 1 + len(manifest["model.chat_analytics.fct_sessions"]["columns"])

    with duckdb.connect(str(paths.database)) as con:
        con.execute("comment on column marts.fct_sessions.channel is 'edited by hand'")
    second = build_day(2)
    assert len(second) == 1 and "marts.fct_sessions.channel" in second[0].replace('"', "")
    with duckdb.connect(str(paths.database), read_only=True) as con:
        channel = con.execute(
            "select comment from duckdb_columns() where schema_name = 'marts' "
            "and table_name = 'fct_sessions' and column_name = 'channel'"
        ).fetchone()[0]
    assert channel == manifest["model.chat_analytics.fct_sessions"]["columns"]["channel"]["description"]
