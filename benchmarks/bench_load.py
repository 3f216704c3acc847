"""Load benchmark: our loader against DuckDB's own read_json of the same file, in one run.

    .venv/bin/python benchmarks/bench_load.py --events 1000000 --rounds 3
    .venv/bin/python benchmarks/bench_load.py --ids sdk      # ids as the SDK writes them

The generator numbers its ids (e1-000000001); the SDK writes UUIDs as 32 hex digits, whose
text the validation treats differently, so both kinds are measured (--ids).

Writes benchmarks/results/load.json and load.md (load-sdk-ids.* with --ids sdk). Each side
runs in its own process so that peak RSS is measured per side. The sides alternate for a few
rounds, each into a fresh warehouse after the disk has settled (sync), and the medians are
compared: a single pair of runs on a shared two-core machine varies by a fifth either way.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GENERATED_ID = re.compile(rb'"([es][0-9]+-[0-9]+)"')


def _as_sdk_ids(text: bytes) -> bytes:
    """Event and session ids rewritten as the SDK writes them: 32 hex digits (here the MD5 of
    the generated id, so that a session keeps one id and a duplicate keeps its copy's)."""
    return GENERATED_ID.sub(
        lambda match: b'"' + hashlib.md5(match.group(1)).hexdigest().encode() + b'"', text
    )


def _child(kind: str, source: str, home: str) -> None:
    started = time.perf_counter()
    if kind == "loader":
        from loaders.load import load_file
        from loaders.paths import WarehousePaths

        result = load_file(Path(source), WarehousePaths(Path(home)))
        records = result.records_read
    else:
        import duckdb

        Path(home).mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(Path(home) / "baseline.duckdb"))
        con.execute(
            f"create table events as select * from read_json('{source}', "
            "format = 'newline_delimited', ignore_errors = true)"
        )
        records = con.execute("select count(*) from events").fetchone()[0]
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "records": records, "peak_rss_mib": peak_mib}))


def _run(kind: str, source: Path, home: Path) -> dict:
    os.sync()  # the previous run's writes are not flushed during this one
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(source), str(home)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median_run(runs: list[dict]) -> dict:
    return {
        "seconds": statistics.median(run["seconds"] for run in runs),
        "each_seconds": [round(run["seconds"], 2) for run in runs],
        "records": runs[0]["records"],
        "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
    }


def _listed(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ids", choices=("generated", "sdk"), default="generated")
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    from loaders.generate import GeneratorConfig, generate

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        days = 10
        per_day = max(1, args.events // (days * 12))
        manifest = generate(GeneratorConfig(days=days, sessions_per_day=per_day, seed=1,
                                            start=date(2026, 1, 1)), work / "gen")
        source = work / "events.jsonl"
        with source.open("wb") as out:
            for name in manifest.files:
                text = (work / "gen" / name).read_bytes()
                out.write(_as_sdk_ids(text) if args.ids == "sdk" else text)
        baseline_runs, loader_runs = [], []
        for round_number in range(args.rounds):
            baseline_runs.append(_run("baseline", source, work / f"baseline{round_number}"))
            loader_runs.append(_run("loader", source, work / f"warehouse{round_number}"))
        file_mib = round(source.stat().st_size / 2**20, 1)
    baseline, loader = _median_run(baseline_runs), _median_run(loader_runs)
    report = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "records": loader["records"],
        "ids": args.ids,
        "file_mib": file_mib,
        "rounds": args.rounds,
        "loader": loader,
        "read_json_baseline": baseline,
        "events_per_second": loader["records"] / loader["seconds"],
        "speed_ratio_vs_read_json": baseline["seconds"] / loader["seconds"],
        "targets": {"speed_ratio_vs_read_json": ">= 0.5", "peak_rss_mib": "< 2048"},
    }
    RESULTS.mkdir(exist_ok=True)
    name = "load" if args.ids == "generated" else "load-sdk-ids"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{name}.md").write_text(
        f"Ids: {args.ids}; {file_mib} MiB of JSON lines.\n\n"
        "| measure | loader | DuckDB read_json |\n|---|---|---|\n"
        f"| seconds, median of {args.rounds} | {loader['seconds']:.2f} | "
        f"{baseline['seconds']:.2f} |\n"
        f"| seconds, each run | {_listed(loader['each_seconds'])} | "
        f"{_listed(baseline['each_seconds'])} |\n"
        f"| peak RSS MiB, highest | {loader['peak_rss_mib']:.0f} | {baseline['peak_rss_mib']:.0f} |\n"
        f"| records | {loader['records']:,} | {baseline['records']:,} |\n\n"
        f"speed ratio (read_json time / loader time): {report['speed_ratio_vs_read_json']:.2f}\n"
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
