"""Where the warehouse keeps its files: everything lives under ``$CHAT_ANALYTICS_HOME``."""

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "CHAT_ANALYTICS_HOME"
DEFAULT_HOME = "warehouse"


@dataclass(frozen=True)
class WarehousePaths:
    """The layout of one warehouse home. Nothing here touches the disk."""

    home: Path

    @classmethod
    def from_env(cls) -> "WarehousePaths":
        return cls(Path(os.environ.get(HOME_ENV, DEFAULT_HOME)).resolve())

    @property
    def database(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def loads(self) -> Path:
        """One committed folder per load: events, quarantine and audit Parquet files."""
        return self.landing / "loads"

    @property
    def landing_tmp(self) -> Path:
        """Loads being written; renamed into ``loads`` as a whole when complete."""
        return self.landing / "_incomplete"

    @property
    def load_lock(self) -> Path:
        return self.landing / ".load.lock"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def serving(self) -> Path:
        return self.home / "serving"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def dbt_target(self) -> Path:
        """dbt's target folder for builds of this warehouse (artifacts, partial parse, logs)."""
        return self.home / "dbt" / "target"

    @property
    def scratch(self) -> Path:
        return self.home / "tmp"

    def events_glob(self) -> str:
        return str(self.loads / "*" / "events.parquet")

    @property
    def key_index(self) -> Path:
        """The index of every landed event's key (derived from the loads; see event_keys)."""
        return self.landing / "event_keys.duckdb"

    def quarantine_glob(self) -> str:
        return str(self.loads / "*" / "quarantine.parquet")

    def audit_glob(self) -> str:
        return str(self.loads / "*" / "audit.parquet")


def sql_string(value: str) -> str:
    """Text (a path, mostly) as a SQL string literal, for statements that take no parameter
    in that place (COPY ... TO, ATTACH)."""
    return "'" + value.replace("'", "''") + "'"
