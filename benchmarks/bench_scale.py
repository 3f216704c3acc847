"""Cost against history: `chat-analytics build` end to end, as users and the schedule run it.

    .venv/bin/python benchmarks/bench_scale.py                      # 1.4M, 5.7M and 17M events
    .venv/bin/python benchmarks/bench_scale.py --events 100000000 --name scale-100m

For each size: 14 days of history (N events) plus one new day of 20,000 sessions. Measured,
each step in its own process (peak RSS per step):
  full         load the 14 days and build (end to end, every check, publish, report)
               baseline, same run: DuckDB read_json of the files + the hand-written SQL of
               bench_build.py for fct_sessions and fct_agent_metrics_daily
  new day      the new day's file settled in the inbox, then `chat-analytics build`
  nothing new  `chat-analytics build` again
  queries      dashboard (30 days) in process; every API endpoint over HTTP: first request,
               one client, 8 concurrent clients computing answers, 8 repeating one request
  batch load   a day like the new one (new ids) split in 30 files: loader against read_json
               of the same files
Writes benchmarks/results/<name>.json and <name>.md (name: scale unless --name says
otherwise); each step's figures are printed as it ends, so a long run that dies still tells
how far it got.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import HAND_WRITTEN_SQL, measure

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
HISTORY_DAYS = 14
NEW_DAY_SESSIONS = 20_000
BATCH_FILES = 30
EVENTS_PER_SESSION = 11.5  # what the generator produces on average
DEFAULT_SIZES = (1_400_000, 5_700_000, 17_000_000)

GENERATE = """
import sys
from datetime import date
from pathlib import Path
from loaders.generate import GeneratorConfig, generate
days, per_day, seed = (int(value) for value in sys.argv[1:4])
generate(GeneratorConfig(days=days, sessions_per_day=per_day, seed=seed,
                         start=date.fromisoformat(sys.argv[4]), late_rate=0.02), Path(sys.argv[5]))
"""

BASELINE = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("create table raw as select * from read_json(?, format = 'newline_delimited', "
            "columns = {event_id: 'VARCHAR', session_id: 'VARCHAR', user_id: 'VARCHAR', "
            "event_type: 'VARCHAR', timestamp: 'VARCHAR', channel: 'VARCHAR', properties: 'JSON'}, "
            "ignore_errors = true)", [sys.argv[2]])
con.execute("create table events as select event_id, session_id, event_type, "
            "try_cast(timestamp as timestamp) as event_timestamp, channel, properties::varchar as properties "
            "from raw where try_cast(timestamp as timestamp) is not null")
con.execute("copy events to '" + sys.argv[3] + "' (format parquet)")
con.execute(open(sys.argv[4]).read().format(glob=sys.argv[3]))
"""

READ_JSON = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("create table raw as select * from read_json(?, format = 'newline_delimited', "
            "ignore_errors = true)", [sys.argv[2]])
"""


def cli(*args: str) -> list[str]:
    return [str(BIN / "chat-analytics"), *args]


def split_lines(files: list[Path], folder: Path, parts: int) -> None:
    """The lines of ``files``, in order, as ``parts`` files of nearly equal line counts."""
    lines = [line for path in files for line in path.open(encoding="utf-8")]
    size = -(-len(lines) // parts)
    folder.mkdir(parents=True)
    for part in range(parts):
        (folder / f"part-{part:02d}.jsonl").write_text("".join(lines[part * size:(part + 1) * size]),
                                                       encoding="utf-8")


def settle(folder: Path) -> None:
    moment = time.time() - 120
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (moment, moment))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def query_latencies(home: Path, env: dict[str, str]) -> dict:
    """The dashboard in process, then every endpoint over HTTP under 8 concurrent clients."""
    code = f"""
import json, time
from datetime import timedelta
from loaders.paths import WarehousePaths
from pathlib import Path
from serving.dashboard import Slice, dashboard, data_range
from serving.publish import connect_snapshot
paths = WarehousePaths(Path({str(home)!r}))
times = []
for _ in range(41):
    started = time.perf_counter()
    with connect_snapshot(paths) as con:
        first, last = data_range(con)
        dashboard(con, Slice(max(first, last - timedelta(days=29)), last))
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps(times))  # the first includes loading the semantic manifest
"""
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                          text=True, check=True)
    in_process = json.loads(done.stdout.strip().splitlines()[-1])
    port = 18_000 + os.getpid() % 1000
    server = subprocess.Popen(cli("serve", "--port", str(port)), env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/analytics/ab-tests", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        period = json.loads(urllib.request.urlopen(
            f"{base}/api/analytics/sessions?limit=80&sort=-started_at", timeout=30).read())
        last = date.fromisoformat(period["sessions"][0]["session_date"])
        session_ids = [session["session_id"] for session in period["sessions"]]

        def since(days: int) -> str:
            return f"start={last - timedelta(days=29 + days)}&end={last}"

        # 80 requests of one shape, each with parameters of its own (every answer computed),
        # then one parameter set 80 times (answered from the snapshot's cache after the first)
        shapes = {
            "dashboard": [f"/api/analytics/dashboard?{since(k)}" for k in range(80)],
            "funnel": [f"/api/analytics/funnel?{since(k)}" for k in range(80)],
            "sessions": [f"/api/analytics/sessions?{since(k)}&channel=web&limit=100" for k in range(80)],
            "session": [f"/api/analytics/sessions/{session_id}" for session_id in session_ids],
            "ab-tests": ["/api/analytics/ab-tests"],
        }

        def get(path: str) -> float:
            started = time.perf_counter()
            urllib.request.urlopen(base + path, timeout=60).read()
            return (time.perf_counter() - started) * 1000

        over_http = {}
        for name, paths in shapes.items():
            timings: dict = {"first_ms": get(paths[0])}
            if len(paths) > 1:
                alone = [get(path) for path in paths[1:11]]
                timings["one_client_computed"] = {"p50_ms": percentile(alone, 0.5),
                                                  "p99_ms": percentile(alone, 0.99)}
                with ThreadPoolExecutor(8) as pool:
                    computed = list(pool.map(get, paths[11:] or paths))
                timings["computed"] = {"p50_ms": percentile(computed, 0.5),
                                       "p99_ms": percentile(computed, 0.99)}
            with ThreadPoolExecutor(8) as pool:
                repeated = list(pool.map(get, [paths[0]] * 80))
            timings["repeated"] = {"p50_ms": percentile(repeated, 0.5), "p99_ms": percentile(repeated, 0.99)}
            over_http[name] = timings
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"dashboard_in_process": {"first_ms": in_process[0], "p50_ms": percentile(in_process[1:], 0.5),
                                     "p99_ms": percentile(in_process[1:], 0.99)},
            "http_8_clients": over_http}


def run_size(events: int, scratch: Path) -> dict:
    home = scratch / "warehouse"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_ANALYTICS_")},
           "CHAT_ANALYTICS_HOME": str(home)}
    per_day = max(1, round(events / HISTORY_DAYS / EVENTS_PER_SESSION))
    start = date.today() - timedelta(days=HISTORY_DAYS + 1)
    history, new_day = scratch / "history", scratch / "new-day"
    result: dict = {"events_requested": events}

    def step(name: str, command: list[str]) -> None:
        result[name] = measure(command, env)
        print(f"  {name}: {result[name]['seconds']:.1f} s, peak RSS {result[name]['peak_rss_mib']:,.0f} MiB",
              flush=True)

    step("generate", [sys.executable, "-c", GENERATE, str(HISTORY_DAYS), str(per_day), "1",
                      start.isoformat(), str(history)])
    measure([sys.executable, "-c", GENERATE, "1", str(NEW_DAY_SESSIONS), "2",
             (start + timedelta(days=HISTORY_DAYS)).isoformat(), str(new_day)], env)
    files = sorted(history.glob("*.jsonl"))
    result["history_events"] = sum(1 for f in files for _ in f.open())
    step("full_load", cli("load", str(history)))
    step("full_build", cli("build"))
    result["full_end_to_end_seconds"] = result["full_load"]["seconds"] + result["full_build"]["seconds"]
    sql = scratch / "hand.sql"
    sql.write_text(HAND_WRITTEN_SQL)
    step("baseline", [sys.executable, "-c", BASELINE, str(scratch / "baseline.duckdb"),
                      str(history / "*.jsonl"), str(scratch / "baseline.parquet"), str(sql)])
    # one new day, through the inbox as the schedule would take it
    (home / "inbox").mkdir(exist_ok=True)
    for path in new_day.glob("*.jsonl"):
        path.rename(home / "inbox" / path.name)
    settle(home / "inbox")
    step("new_day_build", cli("build"))
    step("noop_build", cli("build"))
    result["queries"] = query_latencies(home, env)
    print(f"  queries: {json.dumps(result['queries'])}", flush=True)
    # a 30-file batch: a day like the new one (its date, new ids), split in 30 files; dated
    # in the past, since records more than a day ahead are quarantined, and the batch should
    # measure landing events rather than writing the quarantine
    batch = scratch / "batch"
    measure([sys.executable, "-c", GENERATE, "1", str(NEW_DAY_SESSIONS), "3",
             (start + timedelta(days=HISTORY_DAYS)).isoformat(), str(scratch / "batch-day")], env)
    split_lines(sorted((scratch / "batch-day").glob("*.jsonl")), batch, BATCH_FILES)
    step("batch_load", cli("load", str(batch)))
    step("batch_read_json", [sys.executable, "-c", READ_JSON, str(scratch / "rj.duckdb"),
                             str(batch / "*.jsonl")])
    return result


def report(runs: list[dict]) -> tuple[dict, str]:
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
             f"History: {HISTORY_DAYS} days; new day: {NEW_DAY_SESSIONS:,} sessions. "
             "End to end = `chat-analytics build` as a user runs it.", "",
             "| history events | full load + build (s) | baseline (s) | ratio | + one new day (s) | "
             "nothing new (s) | peak RSS (MiB) | dashboard p99 (ms) | API dashboard p99, 8 clients (ms) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in runs:
        rss = max(run[step]["peak_rss_mib"] for step in
                  ("full_load", "full_build", "new_day_build", "noop_build"))
        ratio = run["full_end_to_end_seconds"] / run["baseline"]["seconds"]
        batch = run["batch_read_json"]["seconds"] / run["batch_load"]["seconds"]
        run["ratios"] = {"full_vs_baseline": ratio, "batch_load_vs_read_json": batch}
        lines.append(
            f"| {run['history_events']:,} | {run['full_end_to_end_seconds']:.1f} | "
            f"{run['baseline']['seconds']:.1f} | {ratio:.2f} | {run['new_day_build']['seconds']:.1f} | "
            f"{run['noop_build']['seconds']:.1f} | {rss:,.0f} | "
            f"{run['queries']['dashboard_in_process']['p99_ms']:.0f} | "
            f"{run['queries']['http_8_clients']['dashboard']['computed']['p99_ms']:.0f} |")
    lines += ["", "API over HTTP, largest size (ms): the first request; 10 requests one at a time, "
              "each with its own parameters; 8 concurrent clients with parameters of their own "
              "(every answer computed); 8 concurrent clients repeating one request (answered from "
              "the snapshot's cache).", "",
              "| endpoint | first | one client p50 / p99 | 8 clients computed p50 / p99 | "
              "8 clients repeated p50 / p99 |", "| --- | ---: | ---: | ---: | ---: |"]

    def pair(times: dict | None) -> str:
        return f"{times['p50_ms']:.0f} / {times['p99_ms']:.0f}" if times else "n/a"

    for name, times in runs[-1]["queries"]["http_8_clients"].items():
        lines.append(f"| {name} | {times['first_ms']:.0f} | {pair(times.get('one_client_computed'))} | "
                     f"{pair(times.get('computed'))} | {pair(times['repeated'])} |")
    lines += ["", "30-file batch load (speed against read_json of the same files): "
              + ", ".join(f"{r['ratios']['batch_load_vs_read_json']:.2f}" for r in runs)]
    if len(runs) > 1:
        flat = runs[-1]["new_day_build"]["seconds"] / runs[0]["new_day_build"]["seconds"]
        lines.append(f"One new day, largest against smallest history: {flat:.2f} times.")
    return {"machine": platform.machine(), "runs": runs}, "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders")
    parser.add_argument("--name", default="scale",
                        help="results file name, without extension (default: scale)")
    args = parser.parse_args()
    runs = []
    for events in args.events:
        with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=os.environ.get("TMPDIR")) as scratch:
            print(f"== {events:,} events of history", flush=True)
            runs.append(run_size(events, Path(scratch)))
            print(json.dumps(runs[-1], indent=1), flush=True)
            if args.keep:
                subprocess.run(["cp", "-r", scratch, scratch + "-kept"], check=False)
    data, table = report(runs)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(data, indent=2))
    (RESULTS / f"{args.name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
