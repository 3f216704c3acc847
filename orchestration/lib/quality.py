"""Data-quality measurements behind the Dagster asset checks. Pure: a DuckDB connection and
thresholds in, a measurement out; severities and wiring live in defs/quality. What dbt tests
already assert (keys, ranges, reconciliation) is not measured again here."""

from dataclasses import dataclass
from datetime import datetime
from statistics import median

import duckdb

MAD_TO_SIGMA = 1.4826  # makes the median absolute deviation estimate a normal sigma


@dataclass(frozen=True)
class Measurement:
    passed: bool
    observed: float | int | None
    detail: str


def quarantine_since(
    con: duckdb.DuckDBPyConnection, since: datetime | None, threshold: float
) -> Measurement:
    """The worst quarantine share of the loads committed after ``since`` (every load when
    None): each load is judged on its own, so a bad file is not hidden by a clean one."""
    rows = con.execute(
        """
        select load_id, source_file, records_read, records_quarantined,
               records_quarantined / records_read as share
        from audit.load_audit
        where records_read > 0 and (cast(? as timestamp) is null or loaded_at > ?)
        order by share desc, loaded_at
        """,
        [since, since],
    ).fetchall()
    if not rows:
        return Measurement(True, None, "no new load with records since the last published build")
    load_id, source_file, read, quarantined, share = rows[0]
    over = sum(1 for row in rows if row[4] > threshold)
    detail = (
        f"worst of {len(rows)} new loads: {source_file} (load {load_id}), {quarantined:,} of "
        f"{read:,} records quarantined ({share:.2%})"
    )
    if over:
        detail += (
            f"; {over} loads above {threshold:.0%}: see audit.quarantined_events for the records"
        )
    return Measurement(over == 0, share, detail)


def hours_since_latest_event(con: duckdb.DuckDBPyConnection, now: datetime) -> Measurement:
    (latest,) = con.execute("select max(session_ended_at) from marts.fct_sessions").fetchone()
    if latest is None:
        return Measurement(False, None, "no sessions in the warehouse")
    hours = (now - latest).total_seconds() / 3600
    return Measurement(True, hours, f"latest event at {latest:%Y-%m-%d %H:%M} UTC")


def robust_z(value: float, history: list[float]) -> float:
    """(value - median) / (1.4826 MAD) against the history. A history with no spread makes
    any change infinitely surprising, and no change no surprise at all."""
    center = median(history)
    mad = median(abs(point - center) for point in history)
    if mad == 0:
        return 0.0 if value == center else float("inf") if value > center else float("-inf")
    return (value - center) / (MAD_TO_SIGMA * mad)


def volume_robust_z(con: duckdb.DuckDBPyConnection, weeks: int, max_abs_z: float) -> Measurement:
    """Sessions of the latest day against the same weekday in the trailing weeks."""
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
    z = robust_z(float(latest[0]), history)
    return Measurement(
        abs(z) <= max_abs_z, z, f"{latest[0]:,} sessions against a median of {median(history):g}"
    )


def feedback_response_rate(
    con: duckdb.DuckDBPyConnection, low: float, high: float, days: int = 7
) -> Measurement:
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
        low <= rate <= high, rate, f"{responded:,} of {eligible:,} eligible sessions gave feedback"
    )


def srm_mismatches(con: duckdb.DuckDBPyConnection) -> Measurement:
    """Tests flagged with a sample-ratio mismatch (the cut-off is the dbt var ab_srm_alpha)."""
    rows = con.execute(
        "select test_name, srm_p_value, is_srm_mismatch from marts.fct_ab_tests "
        "where srm_p_value is not null order by test_name"
    ).fetchall()
    failing = [f"{name} (p = {p:.3g})" for name, p, mismatch in rows if mismatch]
    lowest = min((p for _, p, _ in rows), default=None)
    detail = "sample-ratio mismatch in " + ", ".join(failing) if failing else (
        f"{len(rows)} tests without sample-ratio mismatch"
    )
    return Measurement(not failing, lowest, detail)


def assignment_mismatches(
    con: duckdb.DuckDBPyConnection, since: datetime | None = None
) -> Measurement:
    """Re-derive each exposure's variant with the SDK rule, for tests listed in the seed
    (variants in alphabetical order): the exposures an event loaded after ``since`` touched
    (every exposure when None), so the check's cost follows the new data, not the history."""
    from loaders.sdk import assign_variant

    arms: dict[str, list[str]] = {}
    for test_name, variant in con.execute(
        "select test_name, variant from marts.experiments order by test_name, variant"
    ).fetchall():
        arms.setdefault(test_name, []).append(variant)
    checked = mismatched = 0
    per_test: dict[str, int] = {}
    cursor = con.execute(
        """
        select test_name, session_id, variant
        from marts.fct_ab_exposures
        where test_name in ? and (cast(? as timestamp) is null or last_loaded_at > ?)
        """,
        [list(arms), since, since],
    )
    while batch := cursor.fetchmany(50_000):
        for test_name, session_id, variant in batch:
            checked += 1
            if assign_variant(session_id, test_name, arms[test_name]) != variant:
                mismatched += 1
                per_test[test_name] = per_test.get(test_name, 0) + 1
    detail = (
        f"{mismatched:,} of {checked:,} exposures disagree with sha256 assignment"
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
