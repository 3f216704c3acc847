"""Python asset checks: what dbt's tests cannot express. ERROR checks block publication to
the serving snapshot; WARN checks are reported and never block."""

import dagster as dg

from orchestration.defs.transformation.assets import is_full_refresh
from orchestration.lib import quality
from orchestration.resources import WarehouseResource, utc_now
from orchestration.settings import settings
from serving.publish import published_landed_until

LOAD_AUDIT = dg.AssetKey(["audit", "load_audit"])
SESSIONS = dg.AssetKey(["marts", "fct_sessions"])
DAILY_METRICS = dg.AssetKey(["marts", "fct_agent_metrics_daily"])
AB_TESTS = dg.AssetKey(["marts", "fct_ab_tests"])
AB_EXPOSURES = dg.AssetKey(["marts", "fct_ab_exposures"])


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
    description=(
        "Share of quarantined records in each load since the last published build: a warning "
        f"above {settings.quarantine_warn_share:.0%}, blocking publication above "
        f"{settings.quarantine_block_share:.0%} (`chat-analytics build --accept-quarantine` "
        "publishes anyway, once the records have been looked at)."
    ),
)
def quarantine_share(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    since = published_landed_until(warehouse.paths())
    with warehouse.read_only() as con:
        blocking = quality.quarantine_since(con, since, settings.quarantine_block_share)
    share = blocking.observed
    within_warning = share is None or share <= settings.quarantine_warn_share
    measurement = quality.Measurement(within_warning, share, blocking.detail)
    blocks = not blocking.passed and not warehouse.accept_quarantine
    return _result(
        measurement,
        dg.AssetCheckSeverity.ERROR if blocks else dg.AssetCheckSeverity.WARN,
        warn_above=settings.quarantine_warn_share,
        block_above=settings.quarantine_block_share,
        accepted=str(warehouse.accept_quarantine),
    )


@dg.asset_check(
    asset=SESSIONS,
    description=f"The latest event is at most {settings.freshness_max_hours:g} hours old (warning).",
)
def event_freshness(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        measurement = quality.hours_since_latest_event(con, utc_now())
    fresh = measurement.observed is not None and measurement.observed <= settings.freshness_max_hours
    measurement = quality.Measurement(fresh, measurement.observed, measurement.detail)
    return _result(measurement, dg.AssetCheckSeverity.WARN, max_hours=settings.freshness_max_hours)


@dg.asset_check(
    asset=DAILY_METRICS,
    description=(
        f"Sessions of the latest day against the same weekday over the trailing "
        f"{settings.volume_weeks} weeks: robust z-score (median, MAD) within "
        f"{settings.volume_max_abs_z:g} (warning)."
    ),
)
def session_volume_anomaly(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        measurement = quality.volume_robust_z(con, settings.volume_weeks, settings.volume_max_abs_z)
    return _result(measurement, dg.AssetCheckSeverity.WARN, max_abs_z=settings.volume_max_abs_z)


@dg.asset_check(
    asset=DAILY_METRICS,
    description=(
        "Feedback response rate of eligible sessions over the latest 7 days lies in "
        f"{settings.feedback_band_low:.0%}-{settings.feedback_band_high:.0%} (warning: outside "
        "it, feedback prompts are too rare or too pushy)."
    ),
)
def feedback_response_rate_in_band(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        measurement = quality.feedback_response_rate(
            con, settings.feedback_band_low, settings.feedback_band_high
        )
    return _result(
        measurement,
        dg.AssetCheckSeverity.WARN,
        low=settings.feedback_band_low,
        high=settings.feedback_band_high,
    )


@dg.asset_check(
    asset=AB_TESTS,
    blocking=True,
    description=(
        "No test shows a sample-ratio mismatch (its chi-square p-value below the dbt var "
        "ab_srm_alpha): its results would not be trustworthy."
    ),
)
def ab_sample_ratio(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.read_only() as con:
        measurement = quality.srm_mismatches(con)
        contamination = quality.contamination_rates(con)
    contamination_metadata = {f"contamination_rate.{name}": rate for name, rate in contamination.items()}
    return _result(measurement, **contamination_metadata)


@dg.asset_check(
    asset=AB_EXPOSURES,
    description=(
        "Variants re-derived with the SDK rule (sha256 of test_name:session_id modulo the "
        "seed's variants in alphabetical order) agree with the exposures that loads since the "
        "last published build touched, every exposure on a full refresh (warning; mismatches "
        "counted per test)."
    ),
)
def ab_assignment_integrity(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    since = None if is_full_refresh(context.run) else published_landed_until(warehouse.paths())
    with warehouse.read_only() as con:
        measurement = quality.assignment_mismatches(con, since)
    return _result(measurement, dg.AssetCheckSeverity.WARN, threshold=0)
