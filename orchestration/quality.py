"""Data-quality measurements behind the Dagster asset checks. Pure: a DuckDB connection in,
numbers out; the Dagster wiring (thresholds, severities) lives in defs/quality."""

from dataclasses import dataclass
from datetime import datetime
from statistics import median

import duckdb


@dataclass(frozen=True)
class Measurement:
    passed: bool
    observed: float | int | None
    detail: str


def unreconciled_loads(con: duckdb.DuckDBPyConnection) -> Measurement:
    loads, broken = con.execute(
        "select count(*), count(*) filter (where not is_reconciled) from audit.load_audit"
    ).fetchone()
    return Measurement(broken == 0, int(broken), f"{broken} of {loads} loads do not reconcile")


def latest_quarantine_share(
    con: duckdb.DuckDBPyConnection, threshold: float
) -> Measurement:
    row = con.execute(
        """
        select load_id, records_read, records_quarantined
        from audit.load_audit
        where records_read > 0
        order by loaded_at desc
        limit 1
        """
    ).fetchone()
    if row is None:
        return Measurement(True, None, "no load with records yet")
    load_id, read, quarantined = row
    share = quarantined / read
    return Measurement(
        share <= threshold,
        share,
        f"load {load_id}: {quarantined} of {read} records quarantined ({share:.2%})",
    )


def hours_since_latest_event(con: duckdb.DuckDBPyConnection, now: datetime) -> Measurement:
    (latest,) = con.execute("select max(session_ended_at) from marts.fct_sessions").fetchone()
    if latest is None:
        return Measurement(False, None, "no sessions in the warehouse")
    hours = (now - latest).total_seconds() / 3600
    return Measurement(True, hours, f"latest event at {latest:%Y-%m-%d %H:%M} UTC")


def volume_robust_z(con: duckdb.DuckDBPyConnection, weeks: int = 4) -> Measurement:
    """Sessions of the latest day against the same weekday in the trailing weeks:
    z = (x - median) / (1.4826 * MAD)."""
    rows = con.execute(
        """
        with daily as (
            select metric_date, sum(sessions) as sessions
            from marts.fct_agent_metrics_daily
            group by metric_date
        ),
        latest as (select max(metric_date) as day from daily)
        select daily.metric_date, daily.sessions, daily.metric_date = latest.day as is_latest
        from daily, latest
        where daily.metric_date = latest.day
            or (daily.metric_date < latest.day
                and daily.metric_date >= latest.day - ? * 7
                and dayofweek(daily.metric_date) = dayofweek(latest.day))
        """,
        [weeks],
    ).fetchall()
    latest = [sessions for _, sessions, is_latest in rows if is_latest]
    history = [float(sessions) for _, sessions, is_latest in rows if not is_latest]
    if not latest or len(history) < 2:
        return Measurement(True, None, f"{len(history)} earlier same-weekday days: too few to judge")
    center = median(history)
    mad = median(abs(value - center) for value in history)
    z = _robust_z(latest[0], center, mad)
    return Measurement(abs(z) <= 3.5, z, f"{latest[0]} sessions against a median of {center:g}")


def _robust_z(value: float, center: float, mad: float) -> float:
    if mad == 0:  # a perfectly steady history: any change is infinitely surprising
        return 0.0 if value == center else float("inf")
    return (value - center) / (1.4826 * mad)


RANGE_RULES = (
    ("marts.fct_agent_metrics_daily", "escalation_rate", 0, 1),
    ("marts.fct_agent_metrics_daily", "resolution_rate", 0, 1),
    ("marts.fct_agent_metrics_daily", "conversion_rate", 0, 1),
    ("marts.fct_agent_metrics_daily", "feedback_response_rate", 0, 1),
    ("marts.fct_conversation_scores", "resolution_score", 0, 100),
    ("marts.fct_conversation_scores", "efficiency_score", 0, 100),
    ("marts.fct_conversation_scores", "sentiment_score", 0, 100),
    ("marts.fct_conversation_scores", "goal_completion_score", 0, 100),
    ("marts.fct_conversation_scores", "overall_score", 0, 100),
)


def values_out_of_range(con: duckdb.DuckDBPyConnection, table_name: str) -> Measurement:
    outside = 0
    offenders = []
    for table, column, low, high in RANGE_RULES:
        if table != table_name:
            continue
        (count,) = con.execute(
            f"select count(*) from {table} where {column} < {low} or {column} > {high}"
        ).fetchone()
        if count:
            offenders.append(f"{table}.{column}: {count}")
        outside += count
    return Measurement(outside == 0, outside, "; ".join(offenders) or "all rates and scores in range")


def feedback_response_rate(con: duckdb.DuckDBPyConnection, days: int = 7) -> Measurement:
    responded, eligible = con.execute(
        """
        select sum(feedback_eligible_responded), sum(feedback_eligible_sessions)
        from marts.fct_agent_metrics_daily
        where metric_date > (select max(metric_date) from marts.fct_agent_metrics_daily) - ?
        """,
        [days],
    ).fetchone()
    if not eligible:
        return Measurement(True, None, "no feedback-eligible sessions")
    rate = float(responded) / float(eligible)
    return Measurement(
        0.15 <= rate <= 0.25, rate, f"{responded} of {eligible} eligible sessions gave feedback"
    )


def srm_mismatches(con: duckdb.DuckDBPyConnection, threshold: float = 0.001) -> Measurement:
    rows = con.execute(
        "select test_name, srm_p_value from marts.fct_ab_tests where srm_p_value is not null"
    ).fetchall()
    failing = [f"{name} (p = {p:.3g})" for name, p in rows if p < threshold]
    lowest = min((p for _, p in rows), default=None)
    detail = "sample-ratio mismatch in " + ", ".join(failing) if failing else (
        f"{len(rows)} tests without sample-ratio mismatch"
    )
    return Measurement(not failing, lowest, detail)


def assignment_mismatches(con: duckdb.DuckDBPyConnection) -> Measurement:
    """Re-derive each exposure's variant with the SDK rule, for tests listed in the seed
    (variants in alphabetical order)."""
    from loaders.sdk import assign_variant

    arms: dict[str, list[str]] = {}
    for test_name, variant in con.execute(
        "select test_name, variant from marts.experiments order by test_name, variant"
    ).fetchall():
        arms.setdefault(test_name, []).append(variant)
    checked = mismatched = 0
    per_test: dict[str, int] = {}
    cursor = con.execute(
        "select test_name, session_id, variant from marts.fct_ab_exposures where test_name in ?",
        [list(arms)],
    )
    while batch := cursor.fetchmany(50_000):
        for test_name, session_id, variant in batch:
            checked += 1
            if assign_variant(session_id, test_name, arms[test_name]) != variant:
                mismatched += 1
                per_test[test_name] = per_test.get(test_name, 0) + 1
    detail = (
        f"{mismatched} of {checked} exposures disagree with sha256 assignment"
        + (": " + ", ".join(f"{t} {n}" for t, n in sorted(per_test.items())) if per_test else "")
    )
    return Measurement(mismatched == 0, mismatched, detail)


def contamination_rates(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    return {
        name: float(rate or 0.0)
        for name, rate in con.execute(
            "select test_name, contamination_rate from marts.fct_ab_tests order by test_name"
        ).fetchall()
    }
