"""The dashboard of SPEC section 3, computed from the marts' additive columns."""

import argparse
import json
import sys
from datetime import date
from typing import Any

import duckdb

from loaders.paths import WarehousePaths

from .serving import serving_file

METRIC_SQL = """
select
    sum(sessions) as total_sessions,
    sum(total_duration_seconds) / nullif(sum(sessions), 0) as avg_session_duration_seconds,
    sum(user_messages) / nullif(sum(sessions), 0) as avg_messages_per_session,
    1 - sum(escalated_sessions) / nullif(sum(sessions), 0) as resolution_rate,
    sum(escalated_sessions) / nullif(sum(sessions), 0) as escalation_rate,
    sum(fallback_count) / nullif(sum(user_messages), 0) as fallback_rate,
    sum(converted_sessions) / nullif(sum(sessions), 0) as conversion_rate,
    sum(total_first_response_ms) / nullif(sum(first_response_sessions), 0)
        as avg_first_response_ms,
    sum(total_rating) / nullif(sum(rated_sessions), 0) as avg_satisfaction_score
from marts.fct_agent_metrics_daily
where metric_date between ? and ?
"""


class DashboardError(Exception):
    """A request the dashboard cannot answer, with the reason."""


def dashboard(con: duckdb.DuckDBPyConnection, start: date, end: date) -> dict[str, Any]:
    if end < start:
        raise DashboardError(f"--end {end} is before --start {start}")
    cursor = con.execute(METRIC_SQL, [start, end])
    names = [column[0] for column in cursor.description]
    metrics = dict(zip(names, cursor.fetchone(), strict=True))
    if not metrics["total_sessions"]:
        raise DashboardError(f"no sessions between {start} and {end}")
    metrics["total_sessions"] = int(metrics["total_sessions"])
    metrics = {key: (float(v) if isinstance(v, float | int) and key != "total_sessions" else v)
               for key, v in metrics.items()}
    steps = con.execute(
        """
        select step_name, sum(sessions_reached)
        from marts.fct_funnel_daily
        where funnel_name = 'default' and session_date between ? and ?
        group by step_order, step_name
        order by step_order
        """,
        [start, end],
    ).fetchall()
    funnel = []
    previous: int | None = None
    for name, reached in steps:
        reached = int(reached)
        dropoff = None
        if previous:
            dropoff = round((1 - reached / previous) * 100, 2)
        funnel.append({"name": name, "sessionCount": reached, "dropoffRate": dropoff})
        previous = reached
    topics = con.execute(
        """
        select topic, sum(fallback_count) as fallbacks
        from marts.fct_fallback_topics_daily
        where session_date between ? and ?
        group by topic
        order by fallbacks desc, topic
        limit 10
        """,
        [start, end],
    ).fetchall()
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "metrics": metrics,
        "funnel": funnel,
        "top_fallback_topics": [{"topic": t, "count": int(c)} for t, c in topics],
        "ab_tests": ab_tests(con),
    }


def ab_tests(con: duckdb.DuckDBPyConnection, metric: str = "conversion_rate") -> list[dict]:
    """Every test with its primary metric per variant (results cover the whole test)."""
    cursor = con.execute(
        """
        select
            results.test_name, results.variant, results.is_control, results.exposed_sessions,
            results.units, results.mean, results.ci_low, results.ci_high, results.rel_lift,
            results.rel_lift_ci_low, results.rel_lift_ci_high, results.p_value,
            results.always_valid_p_value, results.chance_to_win, results.enough_data,
            results.srm_p_value, tests.contamination_rate
        from marts.fct_ab_results as results
        left join marts.fct_ab_tests as tests using (test_name)
        where results.metric = ?
        order by results.test_name, results.is_control desc, results.variant
        """,
        [metric],
    )
    names = [column[0] for column in cursor.description]
    tests: dict[str, dict] = {}
    for row in cursor.fetchall():
        record = dict(zip(names, row, strict=True))
        test = tests.setdefault(record["test_name"], {
            "test_name": record["test_name"],
            "metric": metric,
            "srm_p_value": record["srm_p_value"],
            "srm_status": "mismatch" if (record["srm_p_value"] or 1) < 0.001 else "ok",
            "contamination_rate": record["contamination_rate"],
            "variants": [],
        })
        test["variants"].append({
            key: record[key] for key in (
                "variant", "is_control", "exposed_sessions", "units", "mean", "ci_low",
                "ci_high", "rel_lift", "rel_lift_ci_low", "rel_lift_ci_high", "p_value",
                "always_valid_p_value", "chance_to_win", "enough_data",
            )
        })
    return list(tests.values())


def _connect(paths: WarehousePaths) -> duckdb.DuckDBPyConnection:
    """The published serving snapshot, never the build's working file."""
    published = serving_file(paths)
    if not published.exists():
        raise DashboardError(
            f"nothing published at {published}; run `chat-analytics build` first"
        )
    return duckdb.connect(str(published), read_only=True)


def run_dashboard(args: argparse.Namespace) -> int:
    paths = WarehousePaths.from_env()
    try:
        with _connect(paths) as con:
            data = dashboard(con, args.start, args.end)
    except DashboardError as error:
        print(f"chat-analytics dashboard: error: {error}", file=sys.stderr)
        return 2
    if args.html:
        raise SystemExit("chat-analytics dashboard: --html is not available yet")
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_text(data)
    return 0


def _print_text(data: dict[str, Any]) -> None:
    period = data["period"]
    print(f"Chat agent dashboard, {period['start']} to {period['end']}")
    for key, value in data["metrics"].items():
        shown = "n/a" if value is None else (f"{value:,.4g}" if isinstance(value, float) else value)
        print(f"  {key:<32} {shown}")
    print("  funnel:")
    for step in data["funnel"]:
        drop = "" if step["dropoffRate"] is None else f"  (drop-off {step['dropoffRate']}%)"
        print(f"    {step['name']:<18} {step['sessionCount']:>8}{drop}")
    print("  top fallback topics:")
    for topic in data["top_fallback_topics"]:
        print(f"    {topic['topic']:<20} {topic['count']:>6}")
    for test in data["ab_tests"]:
        print(f"  A/B test {test['test_name']} ({test['metric']}, SRM {test['srm_status']}):")
        for arm in test["variants"]:
            lift = "" if arm["rel_lift"] is None else (
                f"  lift {arm['rel_lift']:+.1%}  p {arm['p_value']:.3g}"
                f"  always-valid p {arm['always_valid_p_value']:.3g}"
            )
            enough = "" if arm["enough_data"] else "  (not enough data yet)"
            print(f"    {arm['variant']:<12} {arm['mean']:.2%} of {arm['units']}{lift}{enough}")


def print_summary(paths: WarehousePaths) -> int:
    with _connect(paths) as con:
        first, last = con.execute(
            "select min(metric_date), max(metric_date) from marts.fct_agent_metrics_daily"
        ).fetchone()
        if first is None:
            print("the warehouse holds no sessions yet")
            return 0
        _print_text(dashboard(con, first, last))
    return 0
