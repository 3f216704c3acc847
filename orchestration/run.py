"""`chat-analytics build` and `demo`: the daily Dagster job, executed in-process."""

import os
import sys

import dagster as dg

from loaders.generate import GeneratorConfig, generate
from loaders.paths import WarehousePaths

from .project import export_warehouse_env
from .serving import serving_file

DAGSTER_YAML = """\
# Written by chat-analytics. One run at a time: DuckDB allows a single writer.
concurrency:
  runs:
    max_concurrent_runs: 1
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def prepare_dagster_home(paths: WarehousePaths) -> None:
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    config = paths.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)


def build_run_config(full_refresh: bool, log_level: str = "WARNING") -> dict:
    return {
        "ops": {"dbt_models": {"config": {"full_refresh": full_refresh}}},
        "loggers": {"console": {"config": {"log_level": log_level}}},
    }


def summarize(result: dg.ExecuteInProcessResult) -> list[str]:
    """Problems that make the build fail: failed steps and failed ERROR-severity checks."""
    problems = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause  # the user-code error, not Dagster's wrapper
            message = error.message.strip().splitlines()[0] if error else "failed"
            problems.append(f"step '{event.step_key}' failed: {message}")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                key = evaluation.asset_check_key
                problems.append(
                    f"blocking check '{key.name}' on {key.asset_key.to_user_string()} failed: "
                    f"{evaluation.description or ''}".rstrip(": ")
                )
    return problems


def _print_steps(result: dg.ExecuteInProcessResult) -> None:
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            print(f"    ok       {event.step_key}")
        elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            print(f"    skipped  {event.step_key}")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                level = evaluation.severity.value.lower()
                key = evaluation.asset_check_key
                print(f"    {level:<8} check {key.name} on {key.asset_key.to_user_string()}")


def run_build(full_refresh: bool = False, paths: WarehousePaths | None = None) -> int:
    paths = paths or WarehousePaths.from_env()
    export_warehouse_env(paths)
    prepare_dagster_home(paths)
    from .definitions import defs

    job = defs.resolve_job_def("daily_build")
    _step(f"daily_build{' (full refresh)' if full_refresh else ''} on {paths.home}")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            run_config=build_run_config(full_refresh), instance=instance, raise_on_error=False
        )
    _print_steps(result)
    problems = summarize(result)
    if problems:
        for problem in problems:
            print(f"build failed: {problem}", file=sys.stderr)
        return 1
    _step(f"build complete; marts published to {serving_file(paths)}")
    return 0


def run_demo(days: int, sessions_per_day: int, seed: int) -> int:
    from .dashboard import print_summary

    paths = WarehousePaths.from_env()
    _step(f"generate {days} days x ~{sessions_per_day} sessions into {paths.inbox}")
    target = paths.inbox / f"demo-seed-{seed}"
    manifest = generate(
        GeneratorConfig(days=days, sessions_per_day=sessions_per_day, seed=seed), target
    )
    (target / "manifest.json").rename(paths.home / f"demo-seed-{seed}-manifest.json")
    print(f"    {manifest.records_written:,} records in {len(manifest.files)} files")
    status = run_build(paths=paths)
    if status != 0:
        return status
    return print_summary(paths)
