"""Every operational knob of the build, read once from the environment when the code location
loads (or the command line starts). Metric definitions and their thresholds are dbt vars, not
settings: they belong to the numbers, not to how the build runs."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

PREFIX = "CHAT_ANALYTICS_"


@dataclass(frozen=True)
class Settings:
    # Share of quarantined records in any load since the last published build: a warning
    # above the first, publication blocked above the second.
    quarantine_warn_share: float = 0.01
    quarantine_block_share: float = 0.05
    # The latest event may be this old before the freshness check warns.
    freshness_max_hours: float = 48.0
    # Sessions of the latest day against the same weekday of the trailing weeks.
    volume_max_abs_z: float = 3.5
    volume_weeks: int = 4
    # Expected band of the feedback response rate of eligible sessions (latest 7 days).
    feedback_band_low: float = 0.15
    feedback_band_high: float = 0.25
    # A build started while another runs: Dagster-launched runs wait this long for the lock
    # (the command line refuses at once unless told to wait).
    build_lock_wait_seconds: float = 900.0
    # The inbox sensor looks at most this often; files other than the SDK's are taken once
    # unchanged for the settle period.
    inbox_interval_seconds: int = 60
    inbox_settle_seconds: float = 10.0
    daily_cron: str = "0 2 * * *"
    # Once a week the build runs every dbt test on every row, not only the rows it wrote.
    all_rows_test_cron: str = "0 4 * * 0"
    # After landing, a run of at least compact_min_loads consecutive loads whose events are
    # each under compact_small_load_mib is rewritten as folders of up to compact_target_mib.
    compact_min_loads: int = 32
    compact_small_load_mib: float = 32.0
    compact_target_mib: float = 128.0
    # Before publishing, a warehouse file with at least this share of its blocks free, and
    # at least this many MiB, is rewritten without them (a full refresh frees about half).
    warehouse_compact_free_share: float = 0.4
    warehouse_compact_min_free_mib: float = 64.0
    # Dagster keeps the records of runs this recent (and always the latest few).
    run_retention_days: float = 7.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        """``CHAT_ANALYTICS_<NAME>`` overrides each field; a value that does not parse is an
        error naming the variable."""
        values = {}
        for field in fields(cls):
            name = PREFIX + field.name.upper()
            if name not in environ:
                continue
            kind = type(field.default)
            try:
                values[field.name] = kind(environ[name])
            except ValueError:
                raise ValueError(
                    f"{name}={environ[name]!r} is not a valid {kind.__name__}"
                ) from None
        return cls(**values)


settings = Settings.from_env()
