"""Shared settings for the Dagster definitions, read from the environment."""

import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from loaders.paths import WarehousePaths

BUILD_LOCK_WAIT_SECONDS = float(os.environ.get("CHAT_ANALYTICS_BUILD_LOCK_WAIT_SECONDS", "0"))


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse lives; empty means `$CHAT_ANALYTICS_HOME` (default ./warehouse)."""

    home: str = ""

    def paths(self) -> WarehousePaths:
        if self.home:
            return WarehousePaths(Path(self.home).resolve())
        return WarehousePaths.from_env()

    def read_only(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.paths().database), read_only=True)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
