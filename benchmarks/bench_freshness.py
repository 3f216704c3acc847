"""Freshness: from an event written through the SDK to its session in the published snapshot.

    .venv/bin/python benchmarks/bench_freshness.py --minutes 8

Runs `dagster dev` on a fresh warehouse (its inbox sensor on, every 60 s), writes a short
conversation through the SDK's EventCollector every few seconds, and polls the API for each
session until the published snapshot has it. Reports p50 / p95 / max of the delay (target:
p95 under 3 minutes). Writes benchmarks/results/freshness.json and freshness.md.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

from loaders.sdk import ChatEvent, EventCollector, EventType  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="how long to write events")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between conversations")
    parser.add_argument("--compact-min-loads", type=int, default=None,
                        help="compact runs of this many small loads (2: every build compacts)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    home = scratch / "warehouse"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_ANALYTICS_")},
           "CHAT_ANALYTICS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    if args.compact_min_loads is not None:
        env["CHAT_ANALYTICS_COMPACT_MIN_LOADS"] = str(args.compact_min_loads)
    # dagster.yaml (one run at a time, run monitoring) as `chat-analytics build` writes it
    subprocess.run([sys.executable, "-c", "from loaders.paths import WarehousePaths\n"
                    "from orchestration.runs import prepare_dagster_home\n"
                    "prepare_dagster_home(WarehousePaths.from_env())"], env=env, cwd=REPO, check=True)
    dagster = subprocess.Popen([str(BIN / "dagster"), "dev", "-m", "orchestration.definitions",
                                "-p", str(free_port())], env=env, cwd=REPO, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api_port = free_port()
    api = subprocess.Popen([str(BIN / "chat-analytics"), "serve", "--port", str(api_port)], env=env,
                           cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    written: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def write() -> None:
        with EventCollector(inbox=home / "inbox", buffer_size=4) as collector:
            number = 0
            deadline = time.monotonic() + args.minutes * 60
            while time.monotonic() < deadline:
                number += 1
                session = f"fresh-{number:05d}"
                now = datetime.now(UTC)
                for kind in (EventType.SESSION_START, EventType.MESSAGE_SENT,
                             EventType.MESSAGE_RECEIVED, EventType.SESSION_END):
                    collector.track(ChatEvent(session_id=session, event_type=kind, timestamp=now,
                                              user_id=f"user-{number % 50}", channel="web"))
                written[session] = time.time()  # the buffer of 4 is flushed: the file is in the inbox
                time.sleep(args.every)
        stop.set()

    writer = threading.Thread(target=write)
    writer.start()
    give_up: float | None = None
    try:
        while not (stop.is_set() and len(seen) == len(written)):
            for session, at in list(written.items()):
                if session in seen:
                    continue
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{api_port}/api/analytics/sessions/{session}", timeout=10
                    ) as response:
                        if response.status == 200:
                            seen[session] = time.time() - at
                except (urllib.error.URLError, OSError):
                    pass
            if stop.is_set():
                give_up = give_up or time.monotonic() + 600  # the last ones get ten minutes
                if time.monotonic() > give_up:
                    break
            time.sleep(2)
        # the numbers are written before the shutdown, which may wait for a run in flight
        delays = list(seen.values())
        result = {
            "sessions_written": len(written), "sessions_seen": len(seen),
            "p50_seconds": percentile(delays, 0.5) if delays else None,
            "p95_seconds": percentile(delays, 0.95) if delays else None,
            "max_seconds": max(delays) if delays else None,
            "compact_min_loads": args.compact_min_loads,
            "load_folders": sum(1 for _ in (home / "landing" / "loads").iterdir()) - 1,  # not the empty load
        }
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "freshness.json").write_text(json.dumps(result, indent=2))
        p50, p95, worst = (result[key] for key in ("p50_seconds", "p95_seconds", "max_seconds"))
        (RESULTS / "freshness.md").write_text(
            f"SDK event to published snapshot, inbox sensor every 60 s, {len(written)} sessions over "
            f"{args.minutes:g} minutes: p50 {p50:.0f} s, p95 {p95:.0f} s, max {worst:.0f} s "
            f"(target: p95 under 180 s); {len(seen)} of {len(written)} seen. "
            + (f"Every run of {args.compact_min_loads} small loads compacted; "
               if args.compact_min_loads is not None else "")
            + f"{result['load_folders']} load folders at the end.\n"
        )
        print(json.dumps(result, indent=2))
    finally:
        writer.join()
        api.terminate()
        os.killpg(dagster.pid, signal.SIGTERM)
        try:
            dagster.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a run in flight holds it up: the numbers are taken
            os.killpg(dagster.pid, signal.SIGKILL)
            dagster.wait()


if __name__ == "__main__":
    main()
