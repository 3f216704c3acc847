"""Many small loads: what a build costs before and after the landing zone is compacted.

    .venv/bin/python benchmarks/bench_compaction.py              # 1,000 loads
    .venv/bin/python benchmarks/bench_compaction.py --loads 3000

A stream lands a load every time the inbox sensor looks (every minute): 1,440 small loads a
day. History here: one day of 20,000 sessions split in N files, each landed as a load of its
own, then built once with compaction off. Measured, each step in its own process:
  uncompacted    a new small load settled in the inbox, `chat-analytics build` with compaction
                 off (twice)
  compaction     the same with compaction on: the build compacts the N + 2 loads first
  compacted      a new small load, `chat-analytics build` (twice)
  scan           a count of the landed events over the landing zone's glob, before and after
The ratio is the uncompacted build's time against the compacted one's, both in this run.
Writes benchmarks/results/compaction.json and compaction.md.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import measure
from bench_scale import GENERATE, cli, settle, split_lines

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SESSIONS = 20_000
NEW_LOADS = 5  # three builds with compaction off or on, two after it

LOAD_EACH = """
import sys
from pathlib import Path
from loaders.load import load_file
from loaders.paths import WarehousePaths
paths = WarehousePaths.from_env()
for path in sorted(Path(sys.argv[1]).iterdir()):
    load_file(path, paths)
"""

SCAN = """
import duckdb, json, time
from loaders.paths import WarehousePaths
paths = WarehousePaths.from_env()
con = duckdb.connect()
times = []
for _ in range(5):
    started = time.perf_counter()
    con.execute("select count(*) from read_parquet(?)", [paths.events_glob()]).fetchall()
    times.append(time.perf_counter() - started)
print(json.dumps({"seconds": sorted(times)[2], "folders": sum(1 for _ in paths.loads.iterdir())}))
"""


def run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, env=env, cwd=REPO, check=True, capture_output=True, text=True)


def build_with_a_new_load(part: Path, home: Path, env: dict[str, str]) -> dict:
    inbox = home / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / part.name
    target.write_bytes(part.read_bytes())
    settle(inbox)
    return measure(cli("build"), env)


def scan(env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", SCAN], env=env, cwd=REPO, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=1000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-compaction-") as scratch_name:
        scratch = Path(scratch_name)
        home = scratch / "warehouse"
        base = dict(os.environ, CHAT_ANALYTICS_HOME=str(home))
        off = dict(base, CHAT_ANALYTICS_COMPACT_MIN_LOADS=str(10**9))
        events = scratch / "events"
        run([sys.executable, "-c", GENERATE, "2", str(SESSIONS), "7", date(2026, 3, 1).isoformat(),
             str(events)], base)
        days = sorted(events.glob("*.jsonl"))
        split_lines(days[:1], scratch / "history", options.loads)
        split_lines(days[1:], scratch / "new", options.loads)
        new_parts = sorted((scratch / "new").iterdir())[:NEW_LOADS]

        started = time.perf_counter()
        run([sys.executable, "-c", LOAD_EACH, str(scratch / "history")], off)
        loading = time.perf_counter() - started
        print(f"landed {options.loads:,} loads in {loading:.1f} s", flush=True)
        run(cli("build"), off)
        report = {"loads": options.loads, "sessions": SESSIONS, "landing_seconds": round(loading, 1)}
        report["scan_uncompacted"] = scan(off)
        report["uncompacted"] = [build_with_a_new_load(part, home, off) for part in new_parts[:2]]
        print("uncompacted", report["uncompacted"], report["scan_uncompacted"], flush=True)
        report["compaction"] = build_with_a_new_load(new_parts[2], home, base)
        print("compaction", report["compaction"], flush=True)
        report["compacted"] = [build_with_a_new_load(part, home, base) for part in new_parts[3:]]
        report["scan_compacted"] = scan(base)
        print("compacted", report["compacted"], report["scan_compacted"], flush=True)
    write(report)


def write(report: dict) -> None:
    def seconds(runs: list[dict]) -> str:
        return " / ".join(f"{run['seconds']:.1f}" for run in runs)

    uncompacted = min(run["seconds"] for run in report["uncompacted"])
    compacted = min(run["seconds"] for run in report["compacted"])
    report["ratio"] = round(uncompacted / compacted, 2)
    (RESULTS / "compaction.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        f"History: one day of {report['sessions']:,} sessions landed as {report['loads']:,} loads "
        f"({report['landing_seconds']} s). A build = `chat-analytics build` after one more small load.",
        "",
        "| landing zone | folders | scan of every landed event (s) | build after a small load (s) |",
        "| --- | ---: | ---: | ---: |",
        f"| uncompacted | {report['scan_uncompacted']['folders']:,} | "
        f"{report['scan_uncompacted']['seconds']:.3f} | {seconds(report['uncompacted'])} |",
        f"| compacted | {report['scan_compacted']['folders']:,} | "
        f"{report['scan_compacted']['seconds']:.3f} | {seconds(report['compacted'])} |",
        "",
        "The build that compacted them (after one more small load, with compaction on): "
        f"{report['compaction']['seconds']:.1f} s.",
        f"Uncompacted against compacted build: {report['ratio']} times.",
    ]
    (RESULTS / "compaction.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
