"""Dashboard JSON, CLI errors, the HTML report in headless Chromium, and the HTTP API."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from loaders.generate import GeneratorConfig, generate
from loaders.paths import HOME_ENV, WarehousePaths
from serving.api import make_handler
from serving.dashboard import Slice, dashboard
from serving.publish import connect_snapshot, serving_link

from .conftest import REPO, build, settle

pytestmark = pytest.mark.slow  # each builds a warehouse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> WarehousePaths:
    paths = WarehousePaths(tmp_path_factory.mktemp("dashboard") / "warehouse")
    previous = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(paths.home)
    start = datetime.now(UTC).date() - timedelta(days=10)
    generate(GeneratorConfig(days=9, sessions_per_day=80, seed=11, start=start), paths.inbox / "gen")
    settle(paths.inbox)
    assert build(paths) == 0
    yield paths
    if previous is None:
        os.environ.pop(HOME_ENV, None)
    else:
        os.environ[HOME_ENV] = previous


def _period(paths: WarehousePaths) -> tuple[date, date]:
    with duckdb.connect(str(serving_link(paths)), read_only=True) as con:
        return con.execute("select min(session_date), max(session_date) from marts.fct_sessions").fetchone()


def test_dashboard_matches_the_session_mart(published: WarehousePaths) -> None:
    first, last = _period(published)
    start = first + timedelta(days=2)
    with connect_snapshot(published) as con:
        data = dashboard(con, Slice(start, last))
        sessions = con.execute(
            "select * from marts.fct_sessions where session_date between ? and ?", [start, last]
        ).df()
        web = con.execute(
            "select * from marts.fct_sessions where session_date between ? and ? and channel = 'web'",
            [start, last],
        ).df()
        filtered = dashboard(con, Slice(start, last, channel="web"))
    metrics = data["metrics"]
    assert metrics["total_sessions"] == len(sessions)
    assert metrics["conversion_rate"] == pytest.approx(sessions["is_converted"].mean(), abs=1e-12)
    assert metrics["escalation_rate"] == pytest.approx(sessions["is_escalated"].mean(), abs=1e-12)
    assert metrics["fallback_rate"] == pytest.approx(
        sessions["fallback_count"].sum() / sessions["user_messages"].sum(), abs=1e-12
    )
    assert metrics["avg_satisfaction_score"] == pytest.approx(sessions["rating"].mean(), abs=1e-12)
    assert data["funnel"][0]["sessionCount"] == len(sessions)
    assert data["funnel"][0]["dropoffRate"] is None
    for earlier, later in zip(data["funnel"], data["funnel"][1:], strict=False):
        expected = round((1 - later["sessionCount"] / earlier["sessionCount"]) * 100, 2)
        assert later["dropoffRate"] == expected
    assert len(data["top_fallback_topics"]) == 10
    counts = [t["count"] for t in data["top_fallback_topics"]]
    assert counts == sorted(counts, reverse=True)
    assert data["ab_tests"][0]["test_name"] == "greeting_test"
    assert filtered["metrics"]["total_sessions"] == len(web)
    assert filtered["funnel"][0]["sessionCount"] == len(web)
    assert filtered["metrics"]["conversion_rate"] == pytest.approx(web["is_converted"].mean(), abs=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2026-02-10", "--end", "2026-02-01"], "is before start"),
        (["--start", "2026-02-30", "--end", "2026-03-01"], "is not a date"),
        (["--start", "2001-01-01", "--end", "2001-01-31"], "no sessions between"),
        (["--start", "2026-01-01", "--end", "2026-12-31", "--channel", "fax"], "unknown channel 'fax'"),
    ],
)
def test_dashboard_cli_errors(published: WarehousePaths, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "dashboard", *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_dashboard_cli_json(published: WarehousePaths) -> None:
    first, last = _period(published)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "dashboard",
            "--start",
            str(first),
            "--end",
            str(last),
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(done.stdout)
    assert set(data) == {"period", "metrics", "funnel", "top_fallback_topics", "ab_tests"}
    assert set(data["metrics"]) == {
        "total_sessions",
        "avg_session_duration_seconds",
        "avg_messages_per_session",
        "resolution_rate",
        "escalation_rate",
        "fallback_rate",
        "conversion_rate",
        "avg_first_response_ms",
        "avg_satisfaction_score",
    }
    assert set(data["funnel"][0]) == {"name", "sessionCount", "dropoffRate"}


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_html_report_draws_its_charts_in_chromium(published: WarehousePaths, tmp_path: Path) -> None:
    report = published.home / "reports" / "latest.html"
    assert report.exists(), "the Dagster report asset writes it after each build"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1200,2400", f"--screenshot={screenshot}", report.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert screenshot.stat().st_size > 50_000
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", report.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    trends = re.findall(r'<svg class="trend" data-series="(\w+)" data-points="(\d+)"', dom)
    assert [name for name, _ in trends] == [
        "sessions",
        "resolution_rate",
        "conversion_rate",
        "fallback_rate",
        "avg_satisfaction_score",
        "avg_first_response_ms",
    ]
    assert all(int(points) >= 8 for _, points in trends)
    polylines = re.findall(r'<polyline points="([^"]+)"', dom)
    assert len(polylines) == 6 and all(len(p.split()) >= 8 for p in polylines)
    assert re.search(r'<svg class="funnel" data-bars="5"', dom)
    assert re.search(r'<svg class="topics" data-bars="10"', dom)
    assert re.search(r'<svg class="histogram" data-bars="10"', dom)
    assert re.search(r'<svg class="ab" data-arms="2"', dom)
    assert len(re.findall(r'<line class="ci"', dom)) == 2
    assert "http://" not in dom.replace("http://www.w3.org", "")  # nothing fetched from outside


@pytest.fixture
def api(published: WarehousePaths):
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(published))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_api_endpoints(api: str, published: WarehousePaths) -> None:
    first, last = _period(published)
    status, kind, body = _get(f"{api}/api/analytics/dashboard?start={first}&end={last}")
    assert status == 200 and kind == "application/json"
    with connect_snapshot(published) as con:
        expected = dashboard(con, Slice(first, last))
    assert json.loads(body)["metrics"] == expected["metrics"]
    status, _, body = _get(f"{api}/api/analytics/funnel?start={first}&end={last}")
    assert status == 200 and json.loads(body)["funnel"] == expected["funnel"]
    status, _, body = _get(f"{api}/api/analytics/ab-tests")
    assert status == 200 and json.loads(body)["ab_tests"][0]["test_name"] == "greeting_test"
    status, kind, body = _get(f"{api}/")
    assert status == 200 and kind.startswith("text/html") and b'<svg class="trend"' in body
    status, _, body = _get(f"{api}/api/analytics/dashboard?start=yesterday&end={last}")
    assert status == 422 and "is not a date" in json.loads(body)["detail"]
    status, _, body = _get(f"{api}/api/analytics/dashboard?start={last}&end={first}")
    assert status == 422 and "before" in json.loads(body)["detail"]
    status, _, body = _get(f"{api}/api/analytics/dashboard?end={last}")
    assert status == 422 and "'start' is required" in json.loads(body)["detail"]


def test_api_without_a_build_answers_503(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(WarehousePaths(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _, body = _get(f"http://127.0.0.1:{server.server_port}/api/analytics/ab-tests")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 503 and "not been built" in json.loads(body)["detail"]
