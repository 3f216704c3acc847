"""Dagster runs of one warehouse: their instance, the build lock with recovery from a killed
build, and how long run records are kept."""

import shutil
from datetime import UTC, datetime, timedelta

import dagster as dg

from loaders.paths import WarehousePaths

from .lib import locks, recovery

DAGSTER_YAML = """\
# Written by chat-analytics. One run at a time (the build lock enforces it for every kind of
# launch; the queue keeps `dagster dev` from starting runs that would only wait for it), and
# run workers that die are detected and their runs marked failed.
concurrency:
  runs:
    max_concurrent_runs: 1
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
telemetry:
  enabled: false
"""
KEPT_RECENT_RUNS = 10


def prepare_dagster_home(paths: WarehousePaths) -> None:
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    config = paths.dagster_home / "dagster.yaml"
    if not config.exists() or config.read_text() != DAGSTER_YAML:
        config.write_text(DAGSTER_YAML)


def warehouse_instance(paths: WarehousePaths) -> dg.DagsterInstance:
    prepare_dagster_home(paths)
    return dg.DagsterInstance.from_config(str(paths.dagster_home))


def fail_dead_run(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Mark a run whose process died as failed and free what it held; False if it had ended."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.is_finished:
        return False
    instance.report_run_failed(
        run, message="The build process was killed; the next build recovered its warehouse."
    )
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return True


def acquire_build(
    paths: WarehousePaths,
    wait_seconds: float | None,
    run_id: str | None,
    report=print,
) -> locks.BuildLock:
    """Take the build lock (re-entrant in this process); if its last holder was killed, clear
    what it left first. Raises locks.BuildInProgressError naming a live holder."""
    lock = locks.acquire(paths, wait_seconds)
    try:
        if lock.dead_holder is not None:
            dead, lock.dead_holder = lock.dead_holder, None

            def fail_run(dead_run_id: str) -> bool:
                with warehouse_instance(paths) as instance:
                    return fail_dead_run(instance, dead_run_id)

            for line in recovery.recover(paths, dead, fail_run):
                report(line)
            # dbt may have died writing its artifacts; the next run parses afresh.
            shutil.rmtree(paths.dbt_target, ignore_errors=True)
        if run_id is not None and lock.holder.run_id != run_id:
            lock.update(run_id=run_id)
    except BaseException:
        lock.release()
        raise
    return lock


def prune_run_history(instance: dg.DagsterInstance, retention_days: float) -> int:
    """Delete the records of finished runs older than the retention, keeping the latest few:
    Dagster's storage then grows with the retention, not with the number of builds."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)

    def created(record: dg.RunRecord) -> datetime:
        stamp = record.create_timestamp
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)

    finished = [record for record in instance.get_run_records() if record.dagster_run.is_finished]
    finished.sort(key=created, reverse=True)
    deleted = 0
    for record in finished[KEPT_RECENT_RUNS:]:
        if created(record) < cutoff:
            instance.delete_run(record.dagster_run.run_id)
            deleted += 1
    return deleted
