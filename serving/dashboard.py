"""The dashboard of SPEC section 3, computed from the published marts' additive columns.

Every number reads the serving snapshot, never the build's working file. Period metrics are
recomputed from additive columns (sums of numerators over sums of denominators).
"""

from datetime import date, timedelta
from typing import Any

import duckdb

METRIC_SELECT = """
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
"""


class DashboardError(Exception):
    """A request the dashboard cannot answer, with the reason."""


class Slice:
    """Period and optional channel / agent_version filter, as SQL and parameters."""

    def __init__(
        self, start: date, end: date, channel: str | None = None, agent_version: str | None = None
    ) -> None:
        if end < start:
            raise DashboardError(f"end {end} is before start {start}")
        self.start, self.end = start, end
        self.channel, self.agent_version = channel, agent_version

    @property
    def filtered(self) -> bool:
        return self.channel is not None or self.agent_version is not None

    def where(self, date_column: str, table: str = "") -> tuple[str, list]:
        prefix = f"{table}." if table else ""
        clauses, params = [f"{prefix}{date_column} between ? and ?"], [self.start, self.end]
        if self.channel is not None:
            clauses.append(f"{prefix}channel = ?")
            params.append(self.channel)
        if self.agent_version is not None:
            clauses.append(f"coalesce({prefix}agent_version, 'unknown') = ?")
            params.append(self.agent_version)
        return " and ".join(clauses), params

    def previous(self) -> "Slice":
        length = (self.end - self.start).days + 1
        return Slice(self.start - timedelta(days=length), self.start - timedelta(days=1),
                     self.channel, self.agent_version)


def validate_filters(con: duckdb.DuckDBPyConnection, period: Slice) -> None:
    if period.channel is not None:
        known = [r[0] for r in con.execute(
            "select distinct channel from marts.fct_agent_metrics_daily order by 1").fetchall()]
        if period.channel not in known:
            raise DashboardError(
                f"unknown channel {period.channel!r}; known channels: {', '.join(known)}")
    if period.agent_version is not None:
        known = [r[0] for r in con.execute(
            "select distinct agent_version from marts.fct_agent_metrics_daily order by 1"
        ).fetchall()]
        if period.agent_version not in known:
            raise DashboardError(
                f"unknown agent version {period.agent_version!r}; known: {', '.join(known)}")


def period_metrics(con: duckdb.DuckDBPyConnection, period: Slice) -> dict[str, Any]:
    where, params = period.where("metric_date")
    cursor = con.execute(f"select {METRIC_SELECT} from marts.fct_agent_metrics_daily where {where}",
                         params)
    names = [column[0] for column in cursor.description]
    metrics = dict(zip(names, cursor.fetchone(), strict=True))
    metrics["total_sessions"] = int(metrics["total_sessions"] or 0)
    return {k: (float(v) if isinstance(v, float | int) and k != "total_sessions" else v)
            for k, v in metrics.items()}


def funnel(con: duckdb.DuckDBPyConnection, period: Slice, funnel_name: str = "default") -> list:
    if period.filtered:
        where, params = period.where("session_date", "sessions")
        rows = con.execute(
            f"""
            select funnel_steps.step_name, count(steps.session_id)
            from marts.funnel_steps as funnel_steps
            left join (
                select steps.*
                from marts.fct_session_funnel_steps as steps
                inner join marts.fct_sessions as sessions using (session_id)
                where {where}
            ) as steps
                on funnel_steps.funnel_name = steps.funnel_name
                and funnel_steps.step_order = steps.step_order
            where funnel_steps.funnel_name = ?
            group by funnel_steps.step_order, funnel_steps.step_name
            order by funnel_steps.step_order
            """,
            [*params, funnel_name],
        ).fetchall()
    else:
        rows = con.execute(
            """
            select step_name, sum(sessions_reached)
            from marts.fct_funnel_daily
            where funnel_name = ? and session_date between ? and ?
            group by step_order, step_name
            order by step_order
            """,
            [funnel_name, period.start, period.end],
        ).fetchall()
    steps, previous = [], None
    for name, reached in rows:
        reached = int(reached or 0)
        dropoff = round((1 - reached / previous) * 100, 2) if previous else None
        steps.append({"name": name, "sessionCount": reached, "dropoffRate": dropoff})
        previous = reached
    return steps


def top_fallback_topics(con: duckdb.DuckDBPyConnection, period: Slice, limit: int = 10) -> list:
    if period.filtered:
        where, params = period.where("session_date", "sessions")
        sql = f"""
            select topics.topic, sum(topics.fallback_count) as fallbacks
            from marts.fct_session_fallback_topics as topics
            inner join marts.fct_sessions as sessions using (session_id)
            where {where}
            group by topics.topic
            order by fallbacks desc, topics.topic
            limit {int(limit)}
        """
    else:
        sql = f"""
            select topic, sum(fallback_count) as fallbacks
            from marts.fct_fallback_topics_daily
            where session_date between ? and ?
            group by topic
            order by fallbacks desc, topic
            limit {int(limit)}
        """
        params = [period.start, period.end]
    return [{"topic": t, "count": int(c)} for t, c in con.execute(sql, params).fetchall()]


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


def dashboard(con: duckdb.DuckDBPyConnection, period: Slice) -> dict[str, Any]:
    validate_filters(con, period)
    metrics = period_metrics(con, period)
    if not metrics["total_sessions"]:
        raise DashboardError(f"no sessions between {period.start} and {period.end}")
    data: dict[str, Any] = {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "metrics": metrics,
        "funnel": funnel(con, period),
        "top_fallback_topics": top_fallback_topics(con, period),
        "ab_tests": ab_tests(con),
    }
    if period.filtered:
        data["filters"] = {"channel": period.channel, "agent_version": period.agent_version}
    return data


def data_range(con: duckdb.DuckDBPyConnection) -> tuple[date | None, date | None]:
    return con.execute(
        "select min(metric_date), max(metric_date) from marts.fct_agent_metrics_daily"
    ).fetchone()
