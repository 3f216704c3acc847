"""The resources every run shares: where the warehouse lives, and the build lock."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from loaders.paths import WarehousePaths

from .dbt_child import standby_pid
from .lib.locks import BuildLock
from .runs import acquire_build, prune_run_history
from .settings import settings


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse lives; empty means `$CHAT_ANALYTICS_HOME` (default ./warehouse)."""

    home: str = ""
    # Publish even when a load since the last published build has too many quarantined
    # records (after someone has looked at them): the check then warns instead of blocking.
    accept_quarantine: bool = False

    def paths(self) -> WarehousePaths:
        if self.home:
            return WarehousePaths(Path(self.home).resolve())
        return WarehousePaths.from_env()

    def read_only(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.paths().database), read_only=True)


class BuildLockResource(dg.ConfigurableResource):
    """Holds the warehouse's build lock from the start of a run to its end, so that landing,
    dbt, the checks and publishing of one build never interleave with another's. A run that
    finds the lock taken waits up to ``wait_seconds``, then fails naming the holder."""

    home: str = ""
    wait_seconds: float = settings.build_lock_wait_seconds
    _lock: BuildLock | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        paths = WarehouseResource(home=self.home).paths()
        self._lock = acquire_build(paths, self.wait_seconds, context.run_id, report=context.log.info)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is None:
            return
        try:
            if context.instance is not None and not context.instance.is_ephemeral:
                prune_run_history(context.instance, settings.run_retention_days)
        finally:
            self._lock.release()
            self._lock = None

    def record_child(self, pid: int | None) -> None:
        """The dbt process the build runs now, for the next build to stop if this one dies
        (with the standby it hands dbt over to, if the build started one)."""
        if self._lock is not None:
            pids = [] if pid is None else [pid, standby_pid()]
            self._lock.update(child_pids=[p for p in pids if p is not None])


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
