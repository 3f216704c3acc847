"""Dashboard JSON, CLI errors, the HTML report in headless Chromium, and the HTTP API."""

import html
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from loaders.paths import HOME_ENV, WarehousePaths
from serving.dashboard import Slice, dashboard
from serving.publish import connect_snapshot

from .conftest import REPO

pytestmark = pytest.mark.slow  # each builds a warehouse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _period(paths: WarehousePaths) -> tuple[date, date]:
    with connect_snapshot(paths) as con:
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
    assert set(data) == {"period", "metrics", "funnel", "top_fallback_topics", "ab_tests", "latency",
                         "tools", "users"}
    assert set(data["latency"]) == {"first_response", "agent_message"}
    assert set(data["latency"]["first_response"]) == {"p50", "p90", "p99"}
    assert set(data["users"]) == {"active_users", "new_users", "returning_users"}
    assert data["tools"] and set(data["tools"][0]) == {"tool", "calls", "failures", "failure_rate"}
    assert set(data["metrics"]) == {
        "containment_rate",
        "confirmed_resolution_rate",
        "verified_resolution_rate",
        "total_cost_usd",
        "cost_per_session",
        "cost_per_resolved_session",
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
def test_html_report_reads_right_in_chromium(published: WarehousePaths, tmp_path: Path) -> None:
    assert (published.home / "reports" / "latest.html").exists(), "the Dagster report asset writes it"
    _, last = _period(published)
    start = last - timedelta(days=3)  # four days, with four days before them to compare with
    report = tmp_path / "report.html"
    subprocess.run(
        [sys.executable, "-m", "cli.main", "dashboard", "--start", str(start), "--end", str(last),
         "--html", str(report)],
        cwd=REPO, check=True, capture_output=True, env={**os.environ, HOME_ENV: str(published.home)},
    )
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
    ]
    screenshot = tmp_path / "report.png"
    shot = subprocess.run(
        [CHROMIUM, *flags, "--window-size=1200,3400", f"--screenshot={screenshot}", report.as_uri()],
        check=True, capture_output=True, text=True, timeout=120,
    )
    assert screenshot.stat().st_size > 50_000
    assert "Uncaught" not in shot.stderr and "SyntaxError" not in shot.stderr  # no script errors
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", report.as_uri()],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))
    # what a person reads
    for phrase in ("Chat agent report", "Resolution rate", "Average first response",
                   "Channels and agent versions", "In time order", "Converted at all",
                   "Top fallback topics", "greeting_test", "Control: control", "chance to win"):
        assert phrase in text, phrase
    verdicts = r"Not enough data: about [\d,]+ more sessions per arm|wins|loses|No difference yet"
    assert re.search(verdicts, text)
    trends = re.findall(r'<svg class="trend" data-series="(\w+)" data-points="(\d+)"', dom)
    assert [name for name, _ in trends] == [
        "sessions", "resolution_rate", "conversion_rate", "fallback_rate", "avg_satisfaction_score",
        "avg_first_response_ms", "confirmed_resolution_rate", "cost_per_session", "p50", "p90", "p99",
    ]
    assert all(int(points) == 4 for _, points in trends)
    for phrase in ("Outcome ladder", "Verified (no return)", "Latency percentiles",
                   "Tools that fail most", "weekly retention", "cohort week", "Cost per resolved session"):
        assert phrase in text, phrase
    assert re.search(r'<svg class="funnel" data-bars="5"', dom)
    assert re.search(r'<svg class="topics" data-bars="10"', dom)
    assert re.search(r'<svg class="histogram" data-bars="10"', dom)
    assert re.search(r'<svg class="ab" data-arms="1"', dom) and '<line class="zero"' in dom
    # a change is coloured by whether it is good, not by its sign
    with connect_snapshot(published) as con:
        now = dashboard(con, Slice(start, last))["metrics"]
        before = dashboard(con, Slice(start - timedelta(days=4), start - timedelta(days=1)))["metrics"]
    for label, key, better_up in (("Escalation rate", "escalation_rate", False),
                                  ("Conversion rate", "conversion_rate", True)):
        card = re.search(rf'<div class="label">{label}</div>.*?<span class="delta (\w+)">', dom, re.S)
        if now[key] == before[key]:
            assert card.group(1) == "neutral"
        else:
            assert card.group(1) == ("good" if (now[key] > before[key]) == better_up else "bad"), label
    # rows lead to the sessions behind them
    links = re.findall(r'href="(/api/analytics/sessions\?[^"]+)"', dom)
    assert any("fallback_topic=billing" in link for link in links)
    assert any("channel=web" in link and "agent_version=" in link for link in links)
    assert "http://" not in dom.replace("http://www.w3.org", "")  # nothing fetched from outside
