"""The dashboard: the headline metrics, the funnel, the top fallback topics and the A/B tests
of a period, for every session or a slice (channel, agent version).

Every number is a metric of the semantic layer (serving.metrics), asked for by name; none is
computed here. A/B statistics are read from fct_ab_results, where the warehouse computes them.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import duckdb

from .metrics import MetricQuery, semantic_layer
from .sketch import percentiles

# The dashboard's keys and the metrics behind them.
HEADLINE_METRICS = {
    "total_sessions": "sessions",
    "avg_session_duration_seconds": "avg_session_duration_seconds",
    "avg_messages_per_session": "avg_messages_per_session",
    "resolution_rate": "resolution_rate",
    "escalation_rate": "escalation_rate",
    "fallback_rate": "fallback_rate",
    "conversion_rate": "conversion_rate",
    "avg_first_response_ms": "avg_first_response_ms",
    "avg_satisfaction_score": "avg_satisfaction_score",
}
# Beyond the nine: the outcome ladder and cost, in the same `metrics` block.
LADDER_METRICS = {
    "containment_rate": "containment_rate",
    "confirmed_resolution_rate": "confirmed_resolution_rate",
    "verified_resolution_rate": "verified_resolution_rate",
    "total_cost_usd": "total_cost_usd",
    "cost_per_session": "cost_per_session",
    "cost_per_resolved_session": "cost_per_resolved_session",
}
METRICS = {**HEADLINE_METRICS, **LADDER_METRICS}
HEADLINES = MetricQuery(tuple(HEADLINE_METRICS.values()))
ALL_METRICS = MetricQuery(tuple(METRICS.values()))
LATENCY = MetricQuery(
    ("latency_samples",),
    group_by=("latency_cell__latency_kind", "latency_cell__bucket", "latency_cell__bucket_value_ms"),
    dimensions=(("channel", "latency_cell__channel"), ("agent_version", "latency_cell__agent_version")),
)
LATENCY_KINDS = ("first_response", "agent_message")
TOOLS = MetricQuery(
    ("tool_calls", "tool_failures", "tool_failure_rate"),
    group_by=("tool_day__tool_name",),
    order_by=("-tool_failures", "tool_day__tool_name"),
    limit=10,
    dimensions=(("channel", "tool_day__channel"), ("agent_version", "tool_day__agent_version")),
)
USERS = MetricQuery(("active_users", "new_users", "returning_users"))
FUNNEL = MetricQuery(
    ("funnel_sessions", "funnel_dropoff_rate"),
    group_by=("funnel_step__step_order", "funnel_step__step_name"),
    order_by=("funnel_step__step_order",),
    dimensions=(("channel", "funnel_step__channel"), ("agent_version", "funnel_step__agent_version")),
)
TOP_TOPICS = MetricQuery(
    ("topic_fallbacks",),
    group_by=("fallback__topic",),
    order_by=("-topic_fallbacks", "fallback__topic"),
    limit=10,
)
AB_RESULT_COLUMNS = (
    "variant", "is_control", "exposed_sessions", "units", "mean", "ci_low", "ci_high",
    "abs_diff", "abs_diff_ci_low", "abs_diff_ci_high", "rel_lift", "rel_lift_ci_low",
    "rel_lift_ci_high", "p_value", "always_valid_p_value", "chance_to_win", "is_significant",
    "minimum_detectable_effect", "enough_data", "additional_sessions_per_arm", "is_higher_better",
)
# The earliest and latest dates a period may name: DuckDB's dates go further, but no chat
# event can lie outside these.
EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(2999, 12, 31)


class DashboardError(Exception):
    """A request the dashboard cannot answer, with the reason."""


class Slice:
    """A period of session dates and an optional channel / agent_version filter."""

    def __init__(
        self, start: date, end: date, channel: str | None = None, agent_version: str | None = None
    ) -> None:
        if end < start:
            raise DashboardError(f"end {end} is before start {start}")
        for name, value in (("start", start), ("end", end)):
            if not EARLIEST_DATE <= value <= LATEST_DATE:
                raise DashboardError(f"{name} {value} is outside {EARLIEST_DATE} .. {LATEST_DATE}")
        self.start, self.end = start, end
        self.channel, self.agent_version = channel, agent_version

    @property
    def filtered(self) -> bool:
        return self.channel is not None or self.agent_version is not None

    def values(self) -> dict[str, Any]:
        """The slice as metric-query parameters (None: no filter)."""
        return {
            "start": self.start,
            "end": self.end,
            "channel": self.channel,
            "agent_version": self.agent_version,
        }

    def previous(self) -> "Slice | None":
        """The period of the same length just before, or None before the earliest date."""
        length = (self.end - self.start).days + 1
        if (self.start - EARLIEST_DATE).days < length:
            return None
        return Slice(self.start - timedelta(days=length), self.start - timedelta(days=1),
                     self.channel, self.agent_version)


def known_values(con: duckdb.DuckDBPyConnection, column: str) -> list[str]:
    return [row[0] for row in con.execute(
        f"select distinct {column} from marts.fct_agent_metrics_daily order by 1").fetchall()]


def validate_filters(con: duckdb.DuckDBPyConnection, period: Slice) -> None:
    for name, column, value in (
        ("channel", "channel", period.channel),
        ("agent version", "agent_version", period.agent_version),
    ):
        if value is None:
            continue
        known = known_values(con, column)
        if value not in known:
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise DashboardError(f"unknown {name} {shown!r}; known: {', '.join(known)}")


def period_metrics(con: duckdb.DuckDBPyConnection, period: Slice) -> dict[str, Any]:
    layer = semantic_layer(con)
    [row] = layer.query(con, ALL_METRICS, **period.values()) or [{}]
    metrics = {key: row.get(metric) for key, metric in METRICS.items()}
    metrics["total_sessions"] = int(metrics["total_sessions"] or 0)
    return {key: float(value) if isinstance(value, float | int) and key != "total_sessions" else value
            for key, value in metrics.items()}


def funnel(con: duckdb.DuckDBPyConnection, period: Slice, funnel_name: str = "default") -> list:
    rows = semantic_layer(con).query(con, FUNNEL, funnel_name=funnel_name, **period.values())
    reached = {row["funnel_step__step_order"]: row for row in rows}
    steps = con.execute(
        "select step_order, step_name from marts.funnel_steps where funnel_name = ? order by step_order",
        [funnel_name],
    ).fetchall()
    result = []
    for order, name in steps:
        row = reached.get(order, {})
        dropoff = row.get("funnel_dropoff_rate")
        result.append({
            "name": name,
            "sessionCount": int(row.get("funnel_sessions") or 0),
            # the metric is a fraction; the dashboard shows percent
            "dropoffRate": None if order == 1 or dropoff is None else round(dropoff * 100, 2),
        })
    return result


def top_fallback_topics(con: duckdb.DuckDBPyConnection, period: Slice) -> list:
    rows = semantic_layer(con).query(con, TOP_TOPICS, **period.values())
    return [{"topic": row["fallback__topic"], "count": int(row["topic_fallbacks"])} for row in rows]


def latency(con: duckdb.DuckDBPyConnection, period: Slice) -> dict[str, Any]:
    """p50 / p90 / p99 (ms) of the first response and of agent messages, from the sketches."""
    rows = semantic_layer(con).query(con, LATENCY, **period.values())
    by_kind: dict[str, list] = {}
    for row in rows:
        by_kind.setdefault(row["latency_cell__latency_kind"], []).append(
            (int(row["latency_cell__bucket"]), row["latency_cell__bucket_value_ms"],
             int(row["latency_samples"]))
        )
    return {kind: percentiles(by_kind.get(kind, [])) for kind in LATENCY_KINDS}


def tools(con: duckdb.DuckDBPyConnection, period: Slice) -> list[dict[str, Any]]:
    """The tools that failed most often in the period."""
    return [
        {"tool": row["tool_day__tool_name"], "calls": int(row["tool_calls"]),
         "failures": int(row["tool_failures"]), "failure_rate": row["tool_failure_rate"]}
        for row in semantic_layer(con).query(con, TOOLS, **period.values())
    ]


def users(con: duckdb.DuckDBPyConnection, period: Slice) -> dict[str, Any]:
    """Active, new and returning users of the period (users span channels: not sliced)."""
    [row] = semantic_layer(con).query(con, USERS, start=period.start, end=period.end)
    return {key: int(row[key] or 0) for key in USERS.metrics}


def ab_tests(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every test with each of its metrics per variant (results cover the whole test)."""
    cursor = con.execute(
        f"""
        select
            results.test_name, results.metric, results.srm_p_value, results.is_srm_mismatch,
            tests.contamination_rate, tests.control_variant,
            {', '.join(f'results.{column}' for column in AB_RESULT_COLUMNS)}
        from marts.fct_ab_results as results
        left join marts.fct_ab_tests as tests using (test_name)
        order by results.test_name, results.metric, results.is_control desc, results.variant
        """
    )
    names = [column[0] for column in cursor.description]
    tests: dict[str, dict] = {}
    for row in cursor.fetchall():
        record = dict(zip(names, row, strict=True))
        test = tests.setdefault(record["test_name"], {
            "test_name": record["test_name"],
            "control_variant": record["control_variant"],
            "srm_p_value": record["srm_p_value"],
            "srm_status": "mismatch" if record["is_srm_mismatch"] else "ok",
            "contamination_rate": record["contamination_rate"],
            "metrics": {},
        })
        arms = test["metrics"].setdefault(record["metric"], [])
        arms.append({column: record[column] for column in AB_RESULT_COLUMNS})
    for test in tests.values():
        # the primary metric first, as the dashboard's contract lists it
        test["metric"] = "conversion_rate"
        test["variants"] = test["metrics"].get("conversion_rate", [])
    return list(tests.values())


def dashboard(con: duckdb.DuckDBPyConnection, period: Slice) -> dict[str, Any]:
    validate_filters(con, period)
    metrics = period_metrics(con, period)
    if not metrics["total_sessions"]:
        raise DashboardError(f"no sessions between {period.start} and {period.end}")
    # The distinct count of users reads one row per session and takes as long as the rest
    # together; it runs on a cursor of its own meanwhile (a cursor shares the database).
    users_cursor = con.cursor()
    users_cursor.execute(f"use {current_catalog(con)}")
    with users_cursor, ThreadPoolExecutor(1) as pool:
        active_users = pool.submit(users, users_cursor, period)
        data: dict[str, Any] = {
            "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
            "metrics": metrics,
            "funnel": funnel(con, period),
            "top_fallback_topics": top_fallback_topics(con, period),
            "ab_tests": ab_tests(con),
            "latency": latency(con, period),
            "tools": tools(con, period),
            "users": active_users.result(),
        }
    if period.filtered:
        data["filters"] = {"channel": period.channel, "agent_version": period.agent_version}
    return data


def current_catalog(con: duckdb.DuckDBPyConnection) -> str:
    (name,) = con.execute("select current_database()").fetchone()
    return name


def data_range(con: duckdb.DuckDBPyConnection) -> tuple[date | None, date | None]:
    return con.execute(
        "select min(metric_date), max(metric_date) from marts.fct_agent_metrics_daily"
    ).fetchone()

