"""`chat-analytics build`: the daily Dagster job, executed in this process, end to end under
the warehouse's build lock."""

import errno
import gc
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from loaders.paths import WarehousePaths

from .lib.dbt_results import failed_dbt_nodes
from .lib.locks import BUILD_BUSY_EXIT_CODE, BuildInProgressError
from .runs import acquire_build, prepare_dagster_home

DBT_STEP = "dbt_models"


class HomeNotWritableError(OSError):
    """The warehouse home cannot be written: nothing can be built there."""


@dataclass(frozen=True)
class BuildOutcome:
    exit_code: int
    run_id: str | None
    problems: list[str]
    warnings: list[str]
    landing_report: list[str]


def check_home_writable(paths: WarehousePaths) -> None:
    probe = paths.home / f".write-probe-{os.getpid()}"
    try:
        paths.home.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        advice = (
            "free some space" if error.errno == errno.ENOSPC
            else "point CHAT_ANALYTICS_HOME at a writable folder"
        )
        raise HomeNotWritableError(
            error.errno, f"cannot write to the warehouse home {paths.home} ({reason}); {advice}"
        ) from None


def build_run_config(
    paths: WarehousePaths,
    full_refresh: bool,
    accept_quarantine: bool = False,
    log_level: str = "CRITICAL",
    test_all_rows: bool = False,
) -> dict:
    home = str(paths.home)
    return {
        "ops": {"dbt_models": {"config": {"full_refresh": full_refresh, "test_all_rows": test_all_rows}}},
        "resources": {
            "warehouse": {"config": {"home": home, "accept_quarantine": accept_quarantine}},
            "build_lock": {"config": {"home": home}},
        },
        "loggers": {"console": {"config": {"log_level": log_level}}},
    }


def _root_message(error) -> str:
    while error is not None and error.cause is not None:
        error = error.cause  # the user-code error, not Dagster's wrapper
    return error.message.strip().splitlines()[0] if error else "failed"


def summarize(
    result: dg.ExecuteInProcessResult, dbt_failures: Callable[[], list[str]] = list
) -> tuple[list[str], list[str]]:
    """Problems that fail the build (failed steps, failed blocking checks) and warnings
    (failed non-blocking checks), each with its reason. A failed dbt step is told by the dbt
    nodes that failed (``dbt_failures``, asked only then), when dbt got as far as naming them."""
    problems, warnings = [], []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            message = _root_message(event.step_failure_data.error)
            if "DagsterAssetCheckFailedError" in message:  # reported as the check itself
                continue
            failed_nodes = dbt_failures() if event.step_key == DBT_STEP else []
            if failed_nodes:
                problems += [f"step '{DBT_STEP}' failed: dbt {node}" for node in failed_nodes]
            else:
                problems.append(f"step '{event.step_key}' failed: {message}")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if evaluation.passed:
                continue
            key = evaluation.asset_check_key
            line = f"check '{key.name}' on {key.asset_key.to_user_string()}: {evaluation.description or ''}"
            if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                problems.append("blocking " + line.rstrip(": "))
            else:
                warnings.append(line.rstrip(": "))
    return problems, warnings


def landing_report(result: dg.ExecuteInProcessResult) -> list[str]:
    """What the landing step said about each file (landed, skipped, left waiting)."""
    from .defs.ingestion.assets import LANDING_KEYS, LANDING_REPORT

    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == LANDING_KEYS[0] and LANDING_REPORT in materialization.metadata:
            text = materialization.metadata[LANDING_REPORT].value
            return [line for line in text.splitlines() if line]
    return []


def run_build(
    paths: WarehousePaths,
    full_refresh: bool = False,
    wait_seconds: float | None = 0.0,
    accept_quarantine: bool = False,
    report: Callable[[str], None] = print,
    test_all_rows: bool = False,
) -> BuildOutcome:
    check_home_writable(paths)
    prepare_dagster_home(paths)  # for `dagster dev` on this home: one run at a time, monitored
    run_id = str(uuid.uuid4())
    started = time.time()
    try:
        lock = acquire_build(paths, wait_seconds, run_id, report=report)
    except BuildInProgressError as busy:
        return BuildOutcome(BUILD_BUSY_EXIT_CODE, None, [str(busy)], [], [])
    try:
        from .definitions import defs

        # Dagster, dagster-dbt and dbt-core are now imported: objects that live as long as the
        # process. Frozen, the collector stops scanning them again on every full collection
        # and at exit (about half a second of a new day's build).
        gc.freeze()
        # An ephemeral instance: the command line's runs leave no Dagster records behind (the
        # published snapshot records each build), and storing a few hundred events in
        # SQLite one transaction at a time would cost more than the build itself.
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def("daily_build").execute_in_process(
                run_config=build_run_config(
                    paths, full_refresh, accept_quarantine, test_all_rows=test_all_rows
                ),
                instance=instance,
                raise_on_error=False,
                run_id=run_id,
            )
    finally:
        lock.release()
    problems, warnings = summarize(
        result, lambda: failed_dbt_nodes(paths.dbt_target / "run_results.json", written_since=started)
    )
    return BuildOutcome(1 if problems else 0, run_id, problems, warnings, landing_report(result))
