"""The marts against an independent pandas computation of their documented definitions, and incremental
builds against a full refresh."""

import json
import random
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from loaders.generate import GeneratorConfig, generate
from loaders.load import load_file
from loaders.paths import WarehousePaths

from .conftest import dbt

MARTS = {
    "marts.fct_sessions": ["session_id"],
    "marts.fct_agent_metrics_daily": ["metric_date", "channel", "agent_version"],
    "marts.fct_conversation_scores": ["session_id"],
    "marts.fct_funnel_daily": ["session_date", "funnel_name", "step_order"],
    "marts.fct_fallback_topics_daily": ["session_date", "topic"],
    "marts.fct_session_funnel_steps": ["session_id", "funnel_name", "step_order"],
    "marts.fct_session_fallback_topics": ["session_id", "topic"],
    "marts.fct_ab_exposures": ["test_name", "session_id"],
    "marts.fct_ab_results": ["test_name", "variant", "metric"],
}


def read_table(home: Path, table: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        frame = con.execute(f"select * from {table} order by {', '.join(MARTS[table])}").df()
    for column in ("session_date", "metric_date"):
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
                "user_id": users.iloc[0] if len(users) else None,
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
    columns = [c for c in expected.columns if c != "messages"]
    assert_columns_equal(actual, expected, columns)


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
