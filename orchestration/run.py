"""`chat-analytics build` and `demo`: the daily job, run in-process."""

import sys

from dbt.cli.main import dbtRunner

from loaders.generate import GeneratorConfig, generate
from loaders.paths import WarehousePaths

from .inbox import land_inbox
from .project import dbt_build_args, export_warehouse_env


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run_build(full_refresh: bool = False, paths: WarehousePaths | None = None) -> int:
    paths = paths or WarehousePaths.from_env()
    export_warehouse_env(paths)
    _step(f"land inbox ({paths.inbox})")
    try:
        results = land_inbox(paths, report=lambda line: print(f"    {line}", flush=True))
    except Exception as error:  # a failed step is named, not dumped as a traceback
        print(f"build failed in step 'land inbox': {error}", file=sys.stderr)
        return 1
    _step(f"landed {len(results)} file(s); dbt build{' --full-refresh' if full_refresh else ''}")
    outcome = dbtRunner().invoke(dbt_build_args(full_refresh=full_refresh))
    if not outcome.success:
        failed = []
        if outcome.result is not None:
            failed = [
                result.node.name
                for result in outcome.result.results
                if str(result.status) in ("error", "fail")
            ]
        detail = ", ".join(failed) if failed else str(outcome.exception)
        print(f"build failed in step 'dbt build': {detail}", file=sys.stderr)
        return 1
    _step(f"build complete: {paths.database}")
    return 0


def run_demo(days: int, sessions_per_day: int, seed: int) -> int:
    from .dashboard import print_summary

    paths = WarehousePaths.from_env()
    _step(f"generate {days} days x ~{sessions_per_day} sessions into {paths.inbox}")
    manifest = generate(
        GeneratorConfig(days=days, sessions_per_day=sessions_per_day, seed=seed),
        paths.inbox / f"demo-seed-{seed}",
    )
    (paths.inbox / f"demo-seed-{seed}" / "manifest.json").rename(
        paths.home / f"demo-seed-{seed}-manifest.json"
    )
    print(f"    {manifest.records_written:,} records in {len(manifest.files)} files")
    status = run_build(paths=paths)
    if status != 0:
        return status
    return print_summary(paths)


def main() -> None:
    sys.exit(run_build(full_refresh="--full-refresh" in sys.argv[1:]))


if __name__ == "__main__":
    main()


