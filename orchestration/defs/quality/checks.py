"""Python asset checks. ERROR checks are blocking: a failure stops publication to the serving
file; WARN checks are reported and never block."""

import os

import dagster as dg

from orchestration import quality
from orchestration.resources import WarehouseResource, utc_now

QUARANTINE_WARN_SHARE = float(os.environ.get("CHAT_ANALYTICS_QUARANTINE_WARN_SHARE", "0.01"))
QUARANTINE_BLOCK_SHARE = float(os.environ.get("CHAT_ANALYTICS_QUARANTINE_BLOCK_SHARE", "0.05"))
FRESHNESS_MAX_HOURS = float(os.environ.get("CHAT_ANALYTICS_FRESHNESS_MAX_HOURS", "48"))

LOAD_AUDIT = dg.AssetKey(["audit", "load_audit"])
SESSIONS = dg.AssetKey(["marts", "fct_sessions"])
DAILY_METRICS = dg.AssetKey(["marts", "fct_agent_metrics_daily"])
SCORES = dg.AssetKey(["marts", "fct_conversation_scores"])


def _result(
    measurement: quality.Measurement,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    **threshold: float | str,
) -> dg.AssetCheckResult:
    """Observed value and thresholds (or other figures) become the check's metadata."""
    observed = measurement.observed
    return dg.AssetCheckResult(
        passed=measurement.passed,
        severity=severity,
        description=measurement.detail,
        metadata={
            "observed": dg.MetadataValue.float(float(observed)) if observed is not None else None,
            **threshold,
        },
    )


@dg.asset_check(
    asset=LOAD_AUDIT,
    blocking=True,
    description="Every loaded file reconciles: records read = accepted + duplicates + quarantined.",
)
def load_reconciliation(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        return _result(quality.unreconciled_loads(con), threshold=0)


@dg.asset_check(
    asset=LOAD_AUDIT,
    blocking=True,
    description=(
        "Share of quarantined records in the latest load: a warning above "
        f"{QUARANTINE_WARN_SHARE:.0%}, blocking publication above {QUARANTINE_BLOCK_SHARE:.0%}."
    ),
)
def quarantine_share(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        blocking = quality.latest_quarantine_share(con, QUARANTINE_BLOCK_SHARE)
    share = blocking.observed
    within_warning = share is None or share <= QUARANTINE_WARN_SHARE
    measurement = quality.Measurement(within_warning, share, blocking.detail)
    severity = dg.AssetCheckSeverity.ERROR if not blocking.passed else dg.AssetCheckSeverity.WARN
    return _result(
        measurement, severity, warn_above=QUARANTINE_WARN_SHARE, block_above=QUARANTINE_BLOCK_SHARE
    )


@dg.asset_check(
    asset=SESSIONS,
    description=f"The latest event is at most {FRESHNESS_MAX_HOURS:g} hours old (warning).",
)
def event_freshness(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        measurement = quality.hours_since_latest_event(con, utc_now())
    fresh = measurement.observed is not None and measurement.observed <= FRESHNESS_MAX_HOURS
    measurement = quality.Measurement(fresh, measurement.observed, measurement.detail)
    return _result(measurement, dg.AssetCheckSeverity.WARN, max_hours=FRESHNESS_MAX_HOURS)


@dg.asset_check(
    asset=DAILY_METRICS,
    description=(
        "Sessions of the latest day against the same weekday over the trailing 4 weeks: "
        "robust z-score (median, MAD) within 3.5 (warning)."
    ),
)
def session_volume_anomaly(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        measurement = quality.volume_robust_z(con)
    return _result(measurement, dg.AssetCheckSeverity.WARN, max_abs_z=3.5)


@dg.asset_check(
    asset=DAILY_METRICS,
    blocking=True,
    description="Escalation, resolution, conversion and feedback rates lie within [0, 1].",
)
def rates_within_bounds(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        return _result(quality.values_out_of_range(con, "marts.fct_agent_metrics_daily"), threshold=0)


@dg.asset_check(
    asset=SCORES,
    blocking=True,
    description="Every conversation score lies within [0, 100].",
)
def scores_within_bounds(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        return _result(quality.values_out_of_range(con, "marts.fct_conversation_scores"), threshold=0)


@dg.asset_check(
    asset=DAILY_METRICS,
    description=(
        "Feedback response rate of eligible sessions over the latest 7 days lies in 15-25 % "
        "(warning: outside it, feedback prompts are too rare or too pushy)."
    ),
)
def feedback_response_rate_in_band(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        measurement = quality.feedback_response_rate(con)
    return _result(measurement, dg.AssetCheckSeverity.WARN, low=0.15, high=0.25)


AB_TESTS = dg.AssetKey(["marts", "fct_ab_tests"])
AB_EXPOSURES = dg.AssetKey(["marts", "fct_ab_exposures"])


@dg.asset_check(
    asset=AB_TESTS,
    blocking=True,
    description=(
        "No test shows a sample-ratio mismatch (chi-square p below 0.001): its results "
        "would not be trustworthy."
    ),
)
def ab_sample_ratio(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        measurement = quality.srm_mismatches(con)
        contamination = quality.contamination_rates(con)
    contamination_metadata = {f"contamination_rate.{name}": rate for name, rate in contamination.items()}
    return _result(measurement, threshold=0.001, **contamination_metadata)


@dg.asset_check(
    asset=AB_EXPOSURES,
    description=(
        "Variants re-derived with the SDK rule (sha256 of test_name:session_id modulo the "
        "seed's variants in alphabetical order) agree with the exposures (warning; mismatches "
        "counted per test)."
    ),
)
def ab_assignment_integrity(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        measurement = quality.assignment_mismatches(con)
    return _result(measurement, dg.AssetCheckSeverity.WARN, threshold=0)
