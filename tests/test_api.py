"""The HTTP API through its HTTP interface: uvicorn serving the FastAPI app on a loopback port."""

import http.client
import json
import signal
import socket
import threading
import time
from datetime import date
from pathlib import Path

import pytest
import uvicorn

from loaders.paths import WarehousePaths
from serving.api import create_app
from serving.dashboard import Slice, dashboard
from serving.publish import connect_snapshot

pytestmark = pytest.mark.slow  # reads the built warehouse


class Api:
    def __init__(self, paths: WarehousePaths) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(create_app(paths), host="127.0.0.1", port=self.port, log_level="error",
                                server_header=False, h11_max_incomplete_event_size=64 * 1024)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)

    def request(self, method: str, path: str, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), body

    def json(self, path: str):
        status, headers, body = self.request("GET", path)
        assert headers["content-type"].startswith("application/json"), (status, body[:200])
        return status, json.loads(body)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def api(published: WarehousePaths):
    server = Api(published)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def period(published: WarehousePaths) -> tuple[date, date]:
    with connect_snapshot(published) as con:
        return con.execute("select min(session_date), max(session_date) from marts.fct_sessions").fetchone()


def test_dashboard_funnel_and_ab_tests(api: Api, published, period) -> None:
    first, last = period
    status, body = api.json(f"/api/analytics/dashboard?start={first}&end={last}")
    assert status == 200
    with connect_snapshot(published) as con:
        expected = dashboard(con, Slice(first, last))
    assert body["metrics"] == pytest.approx(expected["metrics"])
    assert body["funnel"] == expected["funnel"]
    status, funnel = api.json(f"/api/analytics/funnel?start={first}&end={last}")
    assert status == 200 and funnel["funnel"] == expected["funnel"]
    status, tests = api.json("/api/analytics/ab-tests")
    [test] = tests["ab_tests"]
    assert test["test_name"] == "greeting_test" and test["control_variant"] == "control"
    assert set(test["metrics"]) == {"conversion_rate", "resolution_rate", "avg_satisfaction", "user_messages"}


def test_openapi_docs_and_the_report(api: Api) -> None:
    status, spec = api.json("/openapi.json")
    assert status == 200
    paths = {"/api/analytics/dashboard", "/api/analytics/sessions", "/api/analytics/sessions/{session_id}"}
    assert paths <= set(spec["paths"])
    described = spec["components"]["schemas"]["Metrics"]["properties"]["conversion_rate"]
    assert described["description"] == "Converted sessions / sessions."
    status, headers, body = api.request("GET", "/docs")
    assert status == 200 and b"swagger" in body.lower()
    status, headers, body = api.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"<svg" in body
    assert "server" not in {name.lower() for name in headers}


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        ("/api/analytics/dashboard?start=yesterday&end=2026-01-01", 422, "start"),
        ("/api/analytics/dashboard?end=2026-01-01", 422, "start"),
        ("/api/analytics/dashboard?start=2026-02-10&end=2026-02-01", 422, "before"),
        ("/api/analytics/dashboard?start=0001-01-01&end=9999-12-31", 422, "outside"),
        ("/?start=0001-01-01&end=9999-12-31", 422, "within"),
        ("/api/analytics/sessions?limit=501", 422, "limit"),
        ("/api/analytics/sessions?sort=name", 422, "sort"),
        ("/api/analytics/sessions?cursor=garbage", 422, "cursor"),
        ("/api/analytics/nothing", 404, "Not Found"),
        ("/api/analytics/sessions/no-such-session", 404, "no such session"),
    ],
)
def test_errors_are_json(api: Api, path: str, status: int, needle: str) -> None:
    got, body = api.json(path)
    assert got == status
    assert needle in json.dumps(body)


def test_long_input_is_refused_without_being_echoed(api: Api) -> None:
    long_value = "x" * 129
    status, body = api.json(f"/api/analytics/dashboard?start=2026-01-01&end=2026-01-02&channel={long_value}")
    assert status == 422 and long_value not in json.dumps(body)
    assert body["detail"][0]["parameter"] == "channel"
    status, body = api.json(f"/api/analytics/sessions?channel={'y' * 10_000}")
    assert status == 414
    status, _, raw = api.request("GET", "/api/analytics/ab-tests", {"X-Big": "z" * 20_000})
    assert status == 431 and json.loads(raw)["detail"].startswith("request headers larger")


def test_other_methods_get_405_with_allow(api: Api) -> None:
    for method in ("POST", "DELETE"):
        status, headers, body = api.request(method, "/api/analytics/ab-tests")
        assert status == 405 and headers["allow"] == "GET" and json.loads(body)["detail"]


def every_page(api: Api, query: str) -> list[dict]:
    """The sessions of a session-list query, following its cursor to the last page."""
    sessions: list[dict] = []
    cursor = None
    while True:
        status, page = api.json(query + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200
        sessions += page["sessions"]
        cursor = page["next_cursor"]
        if cursor is None:
            return sessions


def test_session_list_pages_without_gaps_and_filters(api: Api, published, period) -> None:
    first, last = period
    pages = every_page(api, f"/api/analytics/sessions?start={first}&end={last}&sort=overall_score&limit=97")
    seen = [s["session_id"] for s in pages]
    with connect_snapshot(published) as con:
        expected = [row[0] for row in con.execute(
            """
            select session_id
            from marts.fct_sessions left join marts.fct_conversation_scores using (session_id)
            order by coalesce(overall_score, 1e300), session_id
            """).fetchall()]
        escalated_web = {row[0] for row in con.execute(
            "select session_id from marts.fct_sessions where is_escalated and channel = 'web'").fetchall()}
        billing = {row[0] for row in con.execute(
            "select session_id from marts.fct_session_fallback_topics where topic = 'billing'").fetchall()}
    assert seen == expected
    status, page = api.json("/api/analytics/sessions?escalated=true&channel=web&limit=500")
    assert status == 200 and {s["session_id"] for s in page["sessions"]} == escalated_web
    status, page = api.json("/api/analytics/sessions?fallback_topic=billing&limit=500")
    assert status == 200 and {s["session_id"] for s in page["sessions"]} == billing
    status, page = api.json("/api/analytics/sessions?test_name=greeting_test&variant=treatment&min_score=50")
    assert status == 200 and page["sessions"] and all(s["overall_score"] >= 50 for s in page["sessions"])


def test_session_pages_by_start_time_carry_each_sessions_scores(api: Api, published, period) -> None:
    # the page is chosen before the scores are joined: every page must still be the next in
    # order and every row must carry its own session's scores
    first, last = period
    pages = every_page(api, f"/api/analytics/sessions?start={first}&end={last}&channel=web&limit=61")
    seen = [(s["session_id"], s["overall_score"], s["resolution_score"]) for s in pages]
    with connect_snapshot(published) as con:
        expected = [tuple(row) for row in con.execute(
            """
            select session_id, overall_score, resolution_score
            from marts.fct_sessions left join marts.fct_conversation_scores using (session_id)
            where channel = 'web'
            order by session_started_at desc, session_id desc
            """).fetchall()]
    assert len(seen) > 61
    assert seen == expected


def test_a_session_timeline_never_holds_message_text(api: Api, published) -> None:
    with connect_snapshot(published) as con:
        (session_id, events) = con.execute(
            "select session_id, event_count from marts.fct_sessions "
            "where user_messages > 2 order by session_id limit 1").fetchone()
    status, detail = api.json(f"/api/analytics/sessions/{session_id}")
    assert status == 200
    assert detail["session"]["session_id"] == session_id
    assert len(detail["timeline"]) == events
    assert [e["timestamp"] for e in detail["timeline"]] == sorted(e["timestamp"] for e in detail["timeline"])
    kinds = {e["event_type"] for e in detail["timeline"]}
    assert {"message_sent", "message_received"} <= kinds
    assert all("text" not in e["properties"] for e in detail["timeline"])
    assert any("latency_ms" in e["properties"] for e in detail["timeline"])
    assert detail["exposures"][0]["test_name"] == "greeting_test"


def test_a_session_timeline_reads_only_the_loads_that_hold_it(
    warehouse: WarehousePaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """s1's events come in the first and third of four loads: its timeline holds them all and
    reads the first three loads only; a load committed after the build is not in it."""
    from loaders import landing
    from loaders.compaction import compact_landing
    from loaders.landing import load_time_of
    from loaders.load import load_file
    from serving import sessions
    from serving.sessions import _event_files, session_detail

    from .conftest import build, compact_in_a_process, event, settle, write_jsonl

    def at(minute: int) -> str:
        return f"2026-03-01T10:{minute:02d}:00Z"

    loads = [
        [event("a1", session_id="s1", timestamp=at(1)), event("a2", session_id="s2", timestamp=at(2))],
        [event("b1", session_id="s3", timestamp=at(3))],
        [event("c1", session_id="s1", timestamp=at(0), event_type="session_start")],
        [event("d1", session_id="s4", timestamp=at(4))],
    ]
    for number, records in enumerate(loads):
        load_file(write_jsonl(tmp_path / f"load{number}.jsonl", records), warehouse)
    settle(warehouse.home)
    assert build(warehouse) == 0
    late = [event("e1", session_id="s1", timestamp=at(5))]
    load_file(write_jsonl(tmp_path / "late.jsonl", late), warehouse)
    folders = sorted(folder.name for folder in warehouse.loads.iterdir() if load_time_of(folder.name))
    assert len(folders) == 5
    with connect_snapshot(warehouse) as con:
        detail = session_detail(con, warehouse, "s1")
        bounds = con.execute("select session_id, first_loaded_at, last_loaded_at from marts.fct_sessions "
                             "order by session_id").fetchall()
        (landed_until,) = con.execute("select max(landed_until) from audit.build_history").fetchone()
    assert [e["event_id"] for e in detail["timeline"]] == ["c1", "a1"]
    read = {session: [Path(file).parent.name for file in _event_files(warehouse, first, last, landed_until)]
            for session, first, last in bounds}
    assert read == {"s1": folders[0:3], "s2": folders[0:1], "s3": folders[1:2], "s4": folders[3:4]}

    # a compaction killed before it removed the loads it holds: the timeline reads each event
    # once, from the compacted load, which is the only one of the three it reads
    killed = compact_in_a_process(warehouse, "compaction:removing", min_run=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with connect_snapshot(warehouse) as con:
        assert session_detail(con, warehouse, "s1") == detail
    [compacted] = [Path(file).parent for file in _event_files(warehouse, *bounds[0][1:], landed_until)]
    assert compacted.name.split("-")[1] == "compacted"

    # a compaction that commits and removes what the timeline had just listed: the read fails
    # on the vanished file, and the timeline lists the loads again
    load_file(write_jsonl(tmp_path / "later.jsonl", [event("f1", session_id="s9")]), warehouse)
    listings = []

    def listed_then_compacted(paths: WarehousePaths) -> list:
        listing = landing.visible_loads(paths)
        if not listings:
            assert compact_landing(paths, report=lambda _line: None, min_run=2)
        listings.append([load.folder for load in listing])
        return listing

    monkeypatch.setattr(sessions, "visible_loads", listed_then_compacted)
    with connect_snapshot(warehouse) as con:
        assert session_detail(con, warehouse, "s1") == detail
    assert compacted in listings[0] and not compacted.exists()
    assert len(listings) == 2 and compacted not in listings[1]


def test_without_a_build_503_and_with_a_broken_snapshot_500(tmp_path: Path, published) -> None:
    empty = Api(WarehousePaths(tmp_path / "empty"))
    try:
        status, body = empty.json("/api/analytics/ab-tests")
    finally:
        empty.stop()
    assert status == 503 and "not been built" in body["detail"]
    broken = WarehousePaths(tmp_path / "broken")
    broken.serving.mkdir(parents=True)
    (broken.serving / "analytics-1.duckdb").write_bytes(b"not a database" * 100)
    (broken.serving / "analytics.duckdb").symlink_to("analytics-1.duckdb")
    server = Api(broken)
    try:
        status, body = server.json("/api/analytics/ab-tests")
    finally:
        server.stop()
    assert status == 500 and "cannot be read" in body["detail"]


def test_the_serve_command_stops_cleanly_on_sigterm(published, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from .conftest import REPO

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)], cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "CHAT_ANALYTICS_HOME": str(published.home)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/api/analytics/ab-tests")
                assert connection.getresponse().status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, process.stdout.read() if process.poll() else "no answer"
                time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert process.stdout.read().strip().endswith("stopped")
    finally:
        if process.poll() is None:
            process.kill()
