"""The ``chat-analytics`` command line."""

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from .generate import GeneratorConfig, generate
from .load import load_files
from .paths import WarehousePaths
from .readers import UnreadableFileError, UnsupportedFileError, detect_format, loadable_files


class UsageError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


def _expand(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{raw}: no such file or folder")
        if path.is_dir():
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
    except PermissionError as error:
        raise UsageError(f"{error.filename}: cannot read the file ({error.strerror})") from error
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
    print(
        f"wrote {manifest.records_written:,} records ({manifest.unique_events:,} unique events, "
        f"{manifest.sessions:,} sessions, {manifest.duplicate_records:,} duplicates, "
        f"{manifest.late_events:,} late, {manifest.invalid_records:,} invalid) "
        f"in {len(manifest.files)} files under {args.out}"
    )
    return 0


def command_build(args: argparse.Namespace) -> int:
    from orchestration.run import run_build

    return run_build(full_refresh=args.full_refresh)


def command_demo(args: argparse.Namespace) -> int:
    from orchestration.run import run_demo

    return run_demo(days=args.days, sessions_per_day=args.sessions_per_day, seed=args.seed)


def command_dashboard(args: argparse.Namespace) -> int:
    from orchestration.dashboard import run_dashboard

    return run_dashboard(args)


def command_serve(args: argparse.Namespace) -> int:
    from orchestration.api import serve

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
    gen.add_argument("--duplicate-rate", type=_rate, default=0.01)
    gen.add_argument("--late-rate", type=_rate, default=0.02)
    gen.add_argument("--invalid-rate", type=_rate, default=0.005)
    gen.add_argument("--gzip", action="store_true", help="write .jsonl.gz files")
    gen.set_defaults(handler=command_generate)

    build = commands.add_parser("build", help="land the inbox, build every model, run every check")
    build.add_argument("--full-refresh", action="store_true")
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


if __name__ == "__main__":
    sys.exit(main())
