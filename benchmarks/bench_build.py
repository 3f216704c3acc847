"""Warehouse benchmark: load, full build, incremental day, dashboard query, with baselines
measured in the same run.

    .venv/bin/python benchmarks/bench_build.py --events 10000000 --days 30

Steps (each in its own process, so peak RSS is per step):
  generate    N events over DAYS days plus one more day, 2 % of events arriving late
  load        the first DAYS files                      baseline: DuckDB read_json of them
  full build  dbt run --full-refresh                   baseline: one hand-written SQL for
                                                        fct_sessions + fct_agent_metrics_daily
  incremental load + dbt run of the extra day           target: <= 15 % of the full build
  no-op       dbt run again with nothing new            the fixed cost of any run
  dashboard   30-day dashboard on the serving snapshot  target: < 200 ms (median of 20)
  article     row-by-row executemany inserts and per-session scoring in Python, 100k events
Writes benchmarks/results/build.json and build.md.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent

MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
seconds = time.perf_counter() - started
if done.returncode:
    sys.stderr.write(done.stderr[-3000:])
    sys.exit(done.returncode)
print(json.dumps({"seconds": seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measure(command: list[str], env: dict[str, str], cwd: Path = REPO) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], env=env, cwd=cwd,
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{command[:3]} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def python_step(code: str, env: dict[str, str]) -> dict:
    return measure([sys.executable, "-c", code], env)


HAND_WRITTEN_SQL = """
create or replace table bench_sessions as
with events as (select * from read_parquet('{glob}')),
ordered as (
    select *, row_number() over (partition by session_id order by event_timestamp, event_id) as rn
    from events
),
sent as (select session_id, min(event_timestamp) as first_sent from events
         where event_type = 'message_sent' group by session_id),
response as (
    select sent.session_id, date_diff('millisecond', sent.first_sent, min(e.event_timestamp)) as ms
    from sent join events e on e.session_id = sent.session_id
      and e.event_type = 'message_received' and e.event_timestamp >= sent.first_sent
    group by sent.session_id, sent.first_sent
),
rating as (
    select session_id, arg_max(try_cast(json_extract_string(properties, '$.rating') as integer),
                               (event_timestamp, event_id)) as rating
    from events where event_type = 'feedback_submitted'
      and try_cast(json_extract_string(properties, '$.rating') as integer) between 1 and 5
    group by session_id
)
select o.session_id, cast(min(o.event_timestamp) as date) as session_date,
       max(case when o.rn = 1 then o.channel end) as channel,
       coalesce(arg_min(json_extract_string(o.properties, '$.agent_version'),
                        (o.event_timestamp, o.event_id))
                filter (where json_extract_string(o.properties, '$.agent_version') is not null),
                'unknown') as agent_version,
       date_diff('millisecond', min(o.event_timestamp), max(o.event_timestamp)) / 1000.0 as duration,
       count(*) filter (where o.event_type = 'message_sent') as user_messages,
       count(*) filter (where o.event_type = 'message_received') as agent_messages,
       count(*) filter (where o.event_type = 'fallback_triggered') as fallbacks,
       bool_or(o.event_type = 'escalation_requested') as escalated,
       bool_or(o.event_type = 'conversion') as converted,
       bool_or(o.event_type = 'feedback_submitted') as has_feedback,
       any_value(r.ms) as first_response_ms, any_value(g.rating) as rating
from ordered o left join response r using (session_id) left join rating g using (session_id)
group by o.session_id;
create or replace table bench_daily as
select session_date, channel, agent_version, count(*) as sessions, sum(duration),
       sum(user_messages), count(*) filter (where escalated), sum(fallbacks),
       count(*) filter (where converted), count(first_response_ms), sum(first_response_ms),
       count(rating), sum(rating),
       count(*) filter (where user_messages + agent_messages > 3),
       count(*) filter (where user_messages + agent_messages > 3 and has_feedback)
from bench_sessions group by all;
"""

ARTICLE_CODE = """
import json, sqlite3, sys
from itertools import islice
from collections import defaultdict
source = sys.argv[1]
con = sqlite3.connect(sys.argv[2])
con.execute('create table events (event_id text primary key, session_id text, event_type text, '
            'timestamp text, properties text)')
with open(source) as handle:
    rows = []
    for line in islice(handle, 100000):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if not isinstance(e, dict):
            continue
        rows.append((e.get('event_id'), e.get('session_id'), e.get('event_type'),
                     str(e.get('timestamp')), json.dumps(e.get('properties') or {})))
for row in rows:  # the article inserts row by row
    con.executemany('insert or ignore into events values (?, ?, ?, ?, ?)', [row])
con.commit()
sessions = defaultdict(list)
for session_id, event_type, properties in con.execute(
        'select session_id, event_type, properties from events order by timestamp'):
    sessions[session_id].append((event_type, json.loads(properties)))
scores = {}
for session_id, events in sessions.items():
    user = sum(t == 'message_sent' for t, _ in events)
    escalated = any(t == 'escalation_requested' for t, _ in events)
    converted = any(t in ('conversion', 'flow_completed') for t, _ in events)
    efficiency = None if user == 0 else 100 if user <= 3 else max(0, 100 - 10 * (user - 3))
    parts = [(0.3, 0 if escalated else 100), (0.3, 100 if converted else 0)]
    if efficiency is not None:
        parts.append((0.2, efficiency))
    scores[session_id] = sum(w * v for w, v in parts) / sum(w for w, _ in parts)
print(len(rows), len(scores))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch warehouse")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    home = scratch / "warehouse"
    env = dict(os.environ, CHAT_ANALYTICS_HOME=str(home), DBT_PROFILES_DIR=str(REPO))
    per_day = max(1, round(args.events / args.days / 11.6))  # about 11.6 events per session
    start = date.today() - timedelta(days=args.days + 2)
    report: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                               f"Python {platform.python_version()}",
                    "events_requested": args.events, "days": args.days}

    report["generate"] = python_step(
        "from pathlib import Path; from datetime import date\n"
        "from loaders.generate import GeneratorConfig, generate, write_manifest\n"
        f"manifest = generate(GeneratorConfig(days={args.days + 1}, sessions_per_day={per_day}, "
        f"seed=1, start=date.fromisoformat('{start}'), late_rate=0.02), Path('{scratch / 'events'}'))\n"
        f"write_manifest(manifest, Path('{scratch / 'manifest.json'}'))",
        env)
    manifest = json.loads((scratch / "manifest.json").read_text())
    files = [scratch / "events" / name for name in manifest["files"]]
    base_files, new_day = files[:-1], files[-1]
    report["events_generated"] = manifest["records_written"]

    report["load"] = python_step(
        "from pathlib import Path\nfrom loaders.load import load_files\n"
        f"for _ in load_files([Path(f) for f in {[str(f) for f in base_files]!r}]): pass", env)
    # Into a table in a database file, as in bench_load.py: the loader's output is on disk too.
    report["load_baseline_read_json"] = python_step(
        f"import duckdb\ncon = duckdb.connect('{scratch / 'read_json.duckdb'}')\n"
        f"con.execute(\"create table t as select * from read_json({[str(f) for f in base_files]!r}, "
        "format='newline_delimited', ignore_errors=true)\")", env)

    dbt = [str(BIN / "dbt")]
    project = ["--project-dir", str(REPO / "dbt_project"), "--profiles-dir", str(REPO)]
    measure([*dbt, "seed", *project], env)
    report["full_build"] = measure([*dbt, "run", "--full-refresh", *project], env)
    report["full_build_tests"] = measure([*dbt, "test", *project], env)
    glob = home / "landing" / "loads" / "*" / "events.parquet"
    report["build_baseline_hand_sql"] = python_step(
        f"import duckdb\ncon = duckdb.connect('{scratch / 'hand.duckdb'}')\n"
        "con.execute(\"set TimeZone='UTC'\")\n"
        f"con.execute({HAND_WRITTEN_SQL.format(glob=glob)!r})", env)

    report["incremental_load"] = python_step(
        f"from pathlib import Path\nfrom loaders.load import load_file\nload_file(Path('{new_day}'))",
        env)
    report["incremental_build"] = measure([*dbt, "run", *project], env)
    # The fixed cost of a run: the same command again, with nothing new to process.
    report["noop_build"] = measure([*dbt, "run", *project], env)

    report["publish"] = python_step(
        "from loaders.paths import WarehousePaths\nfrom orchestration.serving import publish\n"
        "publish(WarehousePaths.from_env())", env)
    report["dashboard"] = json.loads(subprocess.run(
        [sys.executable, "-c",
         "import json, statistics, time\nfrom loaders.paths import WarehousePaths\n"
         "from orchestration.dashboard import Slice, connect_serving, dashboard, data_range\n"
         "paths = WarehousePaths.from_env()\ntimes = []\n"
         "with connect_serving(paths) as con:\n"
         "    first, last = data_range(con)\n"
         "    period = Slice(max(first, last - __import__('datetime').timedelta(days=29)), last)\n"
         "    for _ in range(20):\n"
         "        t = time.perf_counter(); dashboard(con, period); times.append(time.perf_counter() - t)\n"
         "print(json.dumps({'median_ms': statistics.median(times) * 1000, 'max_ms': max(times) * 1000}))"],
        env=env, cwd=REPO, capture_output=True, text=True, check=True).stdout)

    report["article_100k"] = python_step(
        ARTICLE_CODE.replace("sys.argv[1]", repr(str(base_files[0])))
        .replace("sys.argv[2]", repr(str(scratch / "article.sqlite"))), env)

    loaded = report["events_generated"]
    report["ratios"] = {
        "load_speed_vs_read_json": report["load_baseline_read_json"]["seconds"]
        / report["load"]["seconds"],
        "full_build_vs_hand_sql": report["full_build"]["seconds"]
        / report["build_baseline_hand_sql"]["seconds"],
        "incremental_vs_full_build": report["incremental_build"]["seconds"]
        / report["full_build"]["seconds"],
        "noop_vs_full_build": report["noop_build"]["seconds"] / report["full_build"]["seconds"],
        "pipeline_events_per_s_vs_article": (
            loaded / (report["load"]["seconds"] + report["full_build"]["seconds"]))
        / (100_000 / report["article_100k"]["seconds"]),
    }
    report["targets"] = {
        "load_speed_vs_read_json": ">= 0.5", "full_build_vs_hand_sql": "<= 2",
        "incremental_vs_full_build": "<= 0.15", "peak_rss_mib": "< 4096",
        "dashboard_median_ms": "< 200",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "build.json").write_text(json.dumps(report, indent=2))
    rows = [(name, report[name]) for name in (
        "generate", "load", "load_baseline_read_json", "full_build", "full_build_tests",
        "build_baseline_hand_sql", "incremental_load", "incremental_build", "noop_build", "publish",
        "article_100k")]
    lines = [f"Machine: {report['machine']}; {loaded:,} events over {args.days} days + 1.", "",
             "| step | seconds | peak RSS MiB |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {m['seconds']:.1f} | {m['peak_rss_mib']:.0f} |" for name, m in rows]
    lines += ["", f"Dashboard query (30 days): median {report['dashboard']['median_ms']:.1f} ms, "
              f"max {report['dashboard']['max_ms']:.1f} ms", "", "| ratio | value | target |",
              "| --- | ---: | --- |"]
    lines += [f"| {k} | {v:.2f} | {report['targets'].get(k, '')} |"
              for k, v in report["ratios"].items()]
    (RESULTS / "build.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not args.keep:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
