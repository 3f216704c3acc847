"""The ``chat-analytics`` command line: the top of the house. It may import every package;
none imports it."""

import argparse
import errno
import json
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from loaders.generate import GeneratorConfig, generate, planned_files, write_manifest
from loaders.load import load_files
from loaders.paths import WarehousePaths
from loaders.readers import (
    UnreadableFileError,
    UnsupportedFileError,
    detect_format,
    loadable_files,
    skipped_files,
)


class UsageError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def describe_os_error(error: OSError, paths: WarehousePaths) -> str:
    """Say whether reading an input or writing the warehouse failed, and why, in words."""
    reason = os.strerror(error.errno) if error.errno else str(error)
    target = Path(error.filename) if error.filename else None
    if error.errno == errno.ENOSPC:
        return f"cannot write to {target or paths.home}: {reason}; free some space and run again"
    if target is not None and paths.home in (target, *target.parents):
        return f"cannot write to the warehouse home {paths.home} ({reason}): {target}"
    if target is not None:
        return f"{target}: cannot read the file ({reason})"
    return reason


def _expand(raw_paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in raw_paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{raw}: no such file or folder")
        if path.is_dir():
            for skipped, why in skipped_files(path):
                print(f"skipped {skipped}: {why}", file=sys.stderr)
            files.extend(loadable_files(path))
        else:
            detect_format(path)
            files.append(path)
    return files


def command_load(args: argparse.Namespace) -> int:
    paths = WarehousePaths.from_env()
    files = _expand(args.paths)
    if not files:
        raise UsageError("no loadable files (.jsonl, .ndjson, .csv, .parquet, optionally .gz)")

    def progress(path: Path, records: int) -> None:
        if records >= 500_000:
            print(f"  {path.name}: {records:,} records read", file=sys.stderr, flush=True)

    try:
        for number, result in enumerate(load_files(files, paths, progress=progress), start=1):
            print(f"[{number}/{len(files)}] {result.summary()}", flush=True)
    except OSError as error:
        raise UsageError(describe_os_error(error, paths)) from error
    except duckdb.IOException as error:  # DuckDB's own writes (the landed Parquet files)
        raise UsageError(f"cannot write the load into {paths.landing}: {error}") from error
    return 0


def command_generate(args: argparse.Namespace) -> int:
    config = GeneratorConfig(
        days=args.days,
        sessions_per_day=args.sessions_per_day,
        seed=args.seed,
        start=args.start,
        duplicate_rate=args.duplicate_rate,
        late_rate=args.late_rate,
        invalid_rate=args.invalid_rate,
        gzip_output=args.gzip,
    )
    out = Path(args.out)
    replaced = [name for name in planned_files(config) if (out / name).exists()]
    if replaced:
        shown = ", ".join(replaced[:3]) + (f" and {len(replaced) - 3} more" if len(replaced) > 3 else "")
        print(f"replacing {len(replaced)} files of an earlier run in {out}: {shown}")
    manifest = generate(config, out)
    if args.manifest:
        write_manifest(manifest, Path(args.manifest))
    print(
        f"wrote {manifest.records_written:,} records ({manifest.unique_events:,} unique events, "
        f"{manifest.sessions:,} sessions, {manifest.duplicate_records:,} duplicates, "
        f"{manifest.late_events:,} late, {manifest.invalid_records:,} invalid) "
        f"in {len(manifest.files)} files under {args.out}"
    )
    return 0


def _print_build(outcome: Any) -> None:
    for line in outcome.landing_report:
        print(f"    {line}")
    for warning in outcome.warnings:
        print(f"    warning: {warning}")
    for problem in outcome.problems:
        print(f"build failed: {problem}", file=sys.stderr)


def run_build_command(
    paths: WarehousePaths,
    full_refresh: bool = False,
    wait_seconds: float | None = 0.0,
    accept_quarantine: bool = False,
    test_all_rows: bool = False,
) -> int:
    from orchestration.lib.pending import reason_to_skip
    from orchestration.settings import settings
    from serving.publish import serving_link

    if not (full_refresh or accept_quarantine or test_all_rows):
        reason = reason_to_skip(paths, settings.inbox_settle_seconds)
        if reason is not None:
            _step(f"daily_build on {paths.home}: {reason}")
            return 0
    from orchestration.dbt_child import dbt_standby
    from orchestration.project import dbt_child_executable

    _step(f"daily_build{' (full refresh)' if full_refresh else ''} on {paths.home}")
    # dbt-core is imported by the standby while this process imports Dagster and lands
    with dbt_standby(dbt_child_executable(), paths.dbt_target):
        from orchestration.execution import HomeNotWritableError, run_build

        try:
            outcome = run_build(
                paths,
                full_refresh,
                wait_seconds,
                accept_quarantine,
                report=lambda line: print(f"    {line}"),
                test_all_rows=test_all_rows,
            )
        except HomeNotWritableError as error:
            raise UsageError(str(error)) from None
    _print_build(outcome)
    if outcome.exit_code == 0:
        _step(f"build complete; marts published to {serving_link(paths)}")
    return outcome.exit_code


def keep_dbt_core_out_of_this_process() -> None:
    """Called before Dagster is imported. dbt runs in a process of its own (the standby):
    this one only starts it and reads its events. dagster-dbt imports dbt-core whenever it
    can, for types it also defines itself when dbt-core is absent, and that import was 0.8 s
    of every build. A process that already imported dagster-dbt keeps it as it is."""
    if "dagster_dbt" not in sys.modules:
        # None in sys.modules makes `import dbt.version` fail, which is how dagster-dbt
        # learns that dbt-core is not importable
        sys.modules.setdefault("dbt.version", None)  # type: ignore[arg-type]


def command_build(args: argparse.Namespace) -> int:
    keep_dbt_core_out_of_this_process()
    return run_build_command(
        WarehousePaths.from_env(), args.full_refresh, args.wait, args.accept_quarantine, args.test_all_rows
    )


def command_demo(args: argparse.Namespace) -> int:
    keep_dbt_core_out_of_this_process()
    paths = WarehousePaths.from_env()
    generated = paths.home / "demo" / f"seed-{args.seed}"
    _step(f"generate {args.days} days x ~{args.sessions_per_day} sessions into {generated}")
    manifest = generate(
        GeneratorConfig(days=args.days, sessions_per_day=args.sessions_per_day, seed=args.seed),
        generated,
    )
    print(f"    {manifest.records_written:,} records in {len(manifest.files)} files")
    _step("load")
    for result in load_files([generated / name for name in manifest.files], paths):
        print(f"    {result.summary()}")
    status = run_build_command(paths)
    if status != 0:
        return status
    return print_summary(paths)


def command_dashboard(args: argparse.Namespace) -> int:
    from serving.dashboard import DashboardError, Slice, dashboard
    from serving.metrics import semantic_layer
    from serving.publish import SnapshotUnavailableError, connect_snapshot

    paths = WarehousePaths.from_env()
    try:
        period = Slice(args.start, args.end, args.channel, args.agent_version)
        with connect_snapshot(paths) as con:
            if args.html:
                from serving.report import report_data, write_report

                folder = Path(args.html).resolve().parent
                if not folder.is_dir():
                    raise UsageError(f"--html {args.html}: the folder {folder} does not exist")
                write_report(report_data(con, period), args.html)
                print(f"wrote {args.html}")
                return 0
            data = dashboard(con, period)
            if args.json:
                print(json.dumps(data, indent=2, default=str))
            else:
                print_text(data, semantic_layer(con))
    except (DashboardError, SnapshotUnavailableError) as error:
        raise UsageError(str(error)) from None
    return 0


def print_text(data: dict[str, Any], layer: Any) -> None:
    """The dashboard as a table: labels and units from the metrics' definitions."""
    from serving.dashboard import HEADLINE_METRICS, LADDER_METRICS
    from serving.formatting import format_value

    period = data["period"]
    scope = "".join(f", {k} {v}" for k, v in (data.get("filters") or {}).items() if v)
    print(f"Chat agent dashboard, {period['start']} to {period['end']}{scope}")
    print()
    for key, metric in {**HEADLINE_METRICS, **LADDER_METRICS}.items():
        unit = layer.meta(metric).get("unit")
        print(f"  {layer.label(metric):<32} {format_value(data['metrics'][key], unit):>14}")
    print()
    print(f"  {'Latency (ms)':<32} {'p50':>8} {'p90':>8} {'p99':>8}")
    for kind, values in data["latency"].items():
        cells = " ".join(f"{format_value(values[name], 'count'):>8}" for name in ("p50", "p90", "p99"))
        print(f"    {kind.replace('_', ' '):<30} {cells}")
    print()
    users = data["users"]
    print(f"  Users (all channels): {users['active_users']:,} active, {users['new_users']:,} new, "
          f"{users['returning_users']:,} returning")
    if data["tools"]:
        print()
        print(f"  {'Tools that fail most':<32} {'calls':>8} {'failures':>9} {'rate':>7}")
        for tool in data["tools"]:
            print(f"    {tool['tool']:<30} {tool['calls']:>8,} {tool['failures']:>9,} "
                  f"{format_value(tool['failure_rate'], 'percent'):>7}")
    print()
    print(f"  {'Funnel (in time order)':<32} {'sessions':>14}   drop-off")
    for step in data["funnel"]:
        drop = "" if step["dropoffRate"] is None else f"{step['dropoffRate']:.1f}%"
        print(f"    {step['name']:<30} {step['sessionCount']:>14,}   {drop:>8}")
    print()
    print(f"  {'Top fallback topics':<32} {'fallbacks':>14}")
    for topic in data["top_fallback_topics"]:
        print(f"    {topic['topic']:<30} {topic['count']:>14,}")
    for test in data["ab_tests"]:
        print()
        print(f"  A/B test {test['test_name']} (conversion rate; sample ratio {test['srm_status']})")
        for arm in test["variants"]:
            control = " (control)" if arm["is_control"] else ""
            mean = format_value(arm["mean"], "percent")
            lift = "" if arm["rel_lift"] is None else (
                f"  lift {arm['rel_lift']:+.1%}, p {arm['p_value']:.3g}, "
                f"always-valid p {arm['always_valid_p_value']:.3g}"
            )
            enough = "" if arm["enough_data"] else "  (not enough data yet)"
            print(f"    {arm['variant'] + control:<30} {mean:>14} of {arm['units']:,}{lift}{enough}")


def print_summary(paths: WarehousePaths) -> int:
    from serving.dashboard import Slice, dashboard, data_range
    from serving.metrics import semantic_layer
    from serving.publish import connect_snapshot

    with connect_snapshot(paths) as con:
        first, last = data_range(con)
        if first is None:
            print("the warehouse holds no sessions yet")
            return 0
        print_text(dashboard(con, Slice(first, last)), semantic_layer(con))
    return 0


def command_serve(args: argparse.Namespace) -> int:
    from serving.api import serve

    serve(args.host, args.port)
    return 0


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from error


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= rate < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a rate in [0, 1)")
    return rate


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a whole number of at least 1")
    return number


def _wait(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a number of seconds >= 0")
    return seconds


HOME_NOTE = (
    "The warehouse lives in $CHAT_ANALYTICS_HOME (default ./warehouse): the DuckDB file, the "
    "landing zone, the inbox, the published snapshot and Dagster's home."
)


def _command(commands, name: str, summary: str, description: str, example: str):
    return commands.add_parser(
        name,
        help=summary,
        description=f"{description}\n\n{HOME_NOTE}",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-analytics",
        description="Chat analytics warehouse on DuckDB, dbt and Dagster.\n\n" + HOME_NOTE,
        epilog="example:\n  chat-analytics demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    load = _command(
        commands, "load", "validate and land event files",
        "Validate and land event files (JSON lines .jsonl/.ndjson, CSV, Parquet; JSON lines and "
        "CSV may be gzipped). Prints read / accepted / duplicate / quarantined per file and the "
        "quarantine reasons; a file whose content was loaded before is skipped.",
        "chat-analytics load events/2026-05-01.jsonl more-events/",
    )
    load.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, or folders to load every event file of"
    )
    load.set_defaults(handler=command_load)

    gen = _command(
        commands, "generate", "write realistic synthetic events",
        "Write realistic synthetic chat events: one file per day, with duplicates, late events "
        "and invalid records at the given rates.",
        "chat-analytics generate --days 14 --sessions-per-day 300 --seed 7 --out events/",
    )
    gen.add_argument("--days", type=_positive, default=7, help="days of traffic (default 7)")
    gen.add_argument("--sessions-per-day", type=_positive, default=200,
                     help="mean sessions per weekday (default 200)")
    gen.add_argument("--seed", type=int, default=1, help="random seed: same seed, same events (default 1)")
    gen.add_argument("--start", type=_date, default=None, metavar="YYYY-MM-DD",
                     help="first day (default: DAYS days before today)")
    gen.add_argument("--out", required=True, metavar="DIR", help="folder to write the files into")
    gen.add_argument("--manifest", metavar="FILE", help="also write the exact counts as JSON to FILE")
    gen.add_argument("--duplicate-rate", type=_rate, default=0.01, metavar="RATE",
                     help="share of events written twice, in [0, 1) (default 0.01)")
    gen.add_argument("--late-rate", type=_rate, default=0.02, metavar="RATE",
                     help="share of events written into a later day's file (default 0.02)")
    gen.add_argument("--invalid-rate", type=_rate, default=0.005, metavar="RATE",
                     help="share of invalid records added (default 0.005)")
    gen.add_argument("--gzip", action="store_true", help="write .jsonl.gz files")
    gen.set_defaults(handler=command_generate)

    build = _command(
        commands, "build", "land the inbox, build every model, run every check, publish",
        "The daily Dagster job in this process: land the complete files waiting in the inbox, "
        "build every dbt model with its tests, run every check, and publish the snapshot and the "
        "HTML report when no blocking check failed. Exit codes: 0 published, 1 a step or blocking "
        "check failed (named), 75 another build runs.",
        "chat-analytics build --wait 600",
    )
    build.add_argument("--full-refresh", action="store_true",
                       help="rebuild every incremental model from all landed data")
    build.add_argument(
        "--test-all-rows", action="store_true",
        help="run every dbt test on every row (a build otherwise tests the rows it wrote; the "
        "weekly schedule and --full-refresh test every row)",
    )
    build.add_argument(
        "--wait", nargs="?", type=_wait, const=None, default=0.0, metavar="SECONDS",
        help="when another build runs, wait for it (at most SECONDS; without a number, as long "
        "as it takes) instead of refusing at once",
    )
    build.add_argument(
        "--accept-quarantine", action="store_true",
        help="publish even if a load since the last published build has too many quarantined "
        "records (once someone has looked at them)",
    )
    build.set_defaults(handler=command_build)

    demo = _command(
        commands, "demo", "generate, load, build and show the dashboard",
        "Generate synthetic traffic, load it, build and print the dashboard of every day.",
        "chat-analytics demo --days 14 --sessions-per-day 300",
    )
    demo.add_argument("--days", type=_positive, default=14, help="days of traffic (default 14)")
    demo.add_argument("--sessions-per-day", type=_positive, default=300,
                      help="mean sessions per weekday (default 300)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.set_defaults(handler=command_demo)

    dashboard = _command(
        commands, "dashboard", "the dashboard for a period",
        "The dashboard of the sessions that started between START and END (UTC dates, both "
        "included), read from the published snapshot: a table, JSON, or the HTML report.",
        "chat-analytics dashboard --start 2026-05-01 --end 2026-05-31 --channel web",
    )
    dashboard.add_argument("--start", type=_date, required=True, metavar="YYYY-MM-DD", help="first day")
    dashboard.add_argument("--end", type=_date, required=True, metavar="YYYY-MM-DD", help="last day")
    dashboard.add_argument("--channel", help="only sessions of this channel (default: all)")
    dashboard.add_argument("--agent-version", help="only sessions of this agent version (default: all)")
    output = dashboard.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    output.add_argument(
        "--html", metavar="FILE", help="write the HTML report to FILE (its folder must exist)"
    )
    dashboard.set_defaults(handler=command_dashboard)

    serve = _command(
        commands, "serve", "read-only HTTP API and HTML report",
        "Serve the read-only HTTP API (FastAPI) over the published snapshot: /api/analytics/..., "
        "the report at /, documentation at /docs. Stops cleanly on Ctrl-C or SIGTERM.",
        "chat-analytics serve --port 8000",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(handler=command_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (UsageError, UnsupportedFileError, UnreadableFileError, FileNotFoundError) as error:
        print(f"chat-analytics {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of our output went away (`| head`): nothing to say
        sys.stderr.close()
        return 0
    except OSError as error:
        paths = WarehousePaths.from_env()
        print(f"chat-analytics {args.command}: error: {describe_os_error(error, paths)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
