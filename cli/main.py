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

from loaders.generate import GeneratorConfig, generate, write_manifest
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
    manifest = generate(config, Path(args.out))
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
) -> int:
    from orchestration.execution import HomeNotWritableError, run_build
    from serving.publish import serving_link

    _step(f"daily_build{' (full refresh)' if full_refresh else ''} on {paths.home}")
    try:
        outcome = run_build(
            paths, full_refresh, wait_seconds, accept_quarantine, report=lambda line: print(f"    {line}")
        )
    except HomeNotWritableError as error:
        raise UsageError(str(error)) from None
    _print_build(outcome)
    if outcome.exit_code == 0:
        _step(f"build complete; marts published to {serving_link(paths)}")
    return outcome.exit_code


def command_build(args: argparse.Namespace) -> int:
    return run_build_command(
        WarehousePaths.from_env(), args.full_refresh, args.wait, args.accept_quarantine
    )


def command_demo(args: argparse.Namespace) -> int:
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
    from serving.publish import SnapshotUnavailableError, connect_snapshot

    paths = WarehousePaths.from_env()
    try:
        period = Slice(args.start, args.end, args.channel, args.agent_version)
        with connect_snapshot(paths) as con:
            if args.html:
                from serving.report import report_data, write_report

                write_report(report_data(con, period), args.html)
                print(f"wrote {args.html}")
                return 0
            data = dashboard(con, period)
    except (DashboardError, SnapshotUnavailableError) as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_text(data)
    return 0


def print_text(data: dict[str, Any]) -> None:
    period = data["period"]
    print(f"Chat agent dashboard, {period['start']} to {period['end']}")
    for key, value in data["metrics"].items():
        shown = "n/a" if value is None else (f"{value:,.4g}" if isinstance(value, float) else value)
        print(f"  {key:<32} {shown}")
    print("  funnel:")
    for step in data["funnel"]:
        drop = "" if step["dropoffRate"] is None else f"  (drop-off {step['dropoffRate']}%)"
        print(f"    {step['name']:<18} {step['sessionCount']:>8}{drop}")
    print("  top fallback topics:")
    for topic in data["top_fallback_topics"]:
        print(f"    {topic['topic']:<20} {topic['count']:>6}")
    for test in data["ab_tests"]:
        print(f"  A/B test {test['test_name']} ({test['metric']}, SRM {test['srm_status']}):")
        for arm in test["variants"]:
            lift = "" if arm["rel_lift"] is None else (
                f"  lift {arm['rel_lift']:+.1%}  p {arm['p_value']:.3g}"
                f"  always-valid p {arm['always_valid_p_value']:.3g}"
            )
            enough = "" if arm["enough_data"] else "  (not enough data yet)"
            mean = "n/a" if arm["mean"] is None else f"{arm['mean']:.2%}"
            print(f"    {arm['variant']:<12} {mean} of {arm['units']}{lift}{enough}")


def print_summary(paths: WarehousePaths) -> int:
    from serving.dashboard import Slice, dashboard, data_range
    from serving.publish import connect_snapshot

    with connect_snapshot(paths) as con:
        first, last = data_range(con)
        if first is None:
            print("the warehouse holds no sessions yet")
            return 0
        print_text(dashboard(con, Slice(first, last)))
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
    rate = float(value)
    if not 0 <= rate < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a rate in [0, 1)")
    return rate


def _wait(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a number of seconds >= 0")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-analytics", description="Chat analytics warehouse on DuckDB, dbt and Dagster."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    load = commands.add_parser("load", help="validate and land event files")
    load.add_argument("paths", nargs="+", help="files or folders")
    load.set_defaults(handler=command_load)

    gen = commands.add_parser("generate", help="write realistic synthetic events")
    gen.add_argument("--days", type=int, default=7)
    gen.add_argument("--sessions-per-day", type=int, default=200)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--start", type=_date, default=None, help="first day (default: N days ago)")
    gen.add_argument("--out", required=True)
    gen.add_argument("--manifest", help="also write the exact counts as JSON to this file")
    gen.add_argument("--duplicate-rate", type=_rate, default=0.01)
    gen.add_argument("--late-rate", type=_rate, default=0.02)
    gen.add_argument("--invalid-rate", type=_rate, default=0.005)
    gen.add_argument("--gzip", action="store_true", help="write .jsonl.gz files")
    gen.set_defaults(handler=command_generate)

    build = commands.add_parser("build", help="land the inbox, build every model, run every check")
    build.add_argument("--full-refresh", action="store_true")
    build.add_argument(
        "--wait", nargs="?", type=_wait, const=None, default=0.0, metavar="SECONDS",
        help="when another build runs, wait for it (at most SECONDS; without a number, as long "
        "as it takes) instead of refusing at once with exit code 75",
    )
    build.add_argument(
        "--accept-quarantine", action="store_true",
        help="publish even if a new load has too many quarantined records (after looking at them)",
    )
    build.set_defaults(handler=command_build)

    demo = commands.add_parser("demo", help="generate, load, build and show the dashboard")
    demo.add_argument("--days", type=int, default=14)
    demo.add_argument("--sessions-per-day", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=command_demo)

    dashboard = commands.add_parser("dashboard", help="the dashboard for a period")
    dashboard.add_argument("--start", type=_date, required=True)
    dashboard.add_argument("--end", type=_date, required=True)
    dashboard.add_argument("--channel", help="only sessions of this channel")
    dashboard.add_argument("--agent-version", help="only sessions of this agent version")
    output = dashboard.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--html", metavar="FILE")
    dashboard.set_defaults(handler=command_dashboard)

    serve = commands.add_parser("serve", help="read-only HTTP API and HTML report")
    serve.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    serve.add_argument("--port", type=int, default=8000)
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
    except OSError as error:
        paths = WarehousePaths.from_env()
        print(f"chat-analytics {args.command}: error: {describe_os_error(error, paths)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
