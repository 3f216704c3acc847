"""A self-contained HTML report (inline SVG, no scripts, works offline): the headlines with
their change judged good or bad, daily trends, every channel and agent version, the funnel in
time order, fallback topics, A/B verdicts and the score distribution. Rows link to the
sessions behind them (the API's session list). Every number comes from the semantic layer;
labels, units and which way is better come from the metrics' definitions."""

import html
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import duckdb

from .dashboard import (
    HEADLINE_METRICS,
    HEADLINES,
    LADDER_METRICS,
    LATENCY,
    METRICS,
    Slice,
    dashboard,
    period_metrics,
)
from .formatting import change_class, format_value
from .metrics import MetricQuery, semantic_layer
from .sketch import percentiles

TREND = MetricQuery(
    ("sessions", "resolution_rate", "conversion_rate", "fallback_rate", "avg_satisfaction_score",
     "avg_first_response_ms", "confirmed_resolution_rate", "cost_per_session"),
    group_by=("metric_time__day",),
    order_by=("metric_time__day",),
)
LADDER = MetricQuery(
    ("sessions", "contained_sessions", "resolved_sessions", "verified_sessions",
     "recontacted_resolved_sessions"),
)
LATENCY_TREND = MetricQuery(
    ("latency_samples",),
    group_by=("metric_time__day", "latency_cell__bucket", "latency_cell__bucket_value_ms"),
    dimensions=LATENCY.dimensions,
)
RETENTION = MetricQuery(
    ("retention_rate", "cohort_size"),
    group_by=("metric_time__week", "cohort_week_number__week_number"),
    order_by=("metric_time__week", "cohort_week_number__week_number"),
)
RETENTION_COHORTS = 8
SCORE_BANDS = MetricQuery(
    ("scored_sessions",),
    group_by=("conversation_score__overall_score_band",),
    order_by=("conversation_score__overall_score_band",),
)
BY_SLICE = MetricQuery(
    HEADLINES.metrics,
    group_by=("session__channel", "session__agent_version"),
    order_by=("session__channel", "session__agent_version"),
)
CONVERTED = MetricQuery(("converted_sessions", "conversion_rate"))
SESSIONS_LINK = "/api/analytics/sessions"
AB_METRIC_LABELS = {
    "conversion_rate": "conversion", "resolution_rate": "resolution",
    "avg_satisfaction": "satisfaction", "user_messages": "user messages",
}


def report_data(con: duckdb.DuckDBPyConnection, period: Slice) -> dict[str, Any]:
    layer = semantic_layer(con)
    values = period.values()
    data = dashboard(con, period)
    previous = period.previous()
    data["previous_metrics"] = period_metrics(con, previous) if previous else {}
    data["daily"] = [
        {"metric_date": _as_date(row["metric_time__day"]), **{m: row[m] for m in TREND.metrics}}
        for row in layer.query(con, TREND, **values)
    ]
    data["score_histogram"] = [
        {"bucket": int(row["conversation_score__overall_score_band"]),
         "sessions": int(row["scored_sessions"])}
        for row in layer.query(con, SCORE_BANDS, **values)
        if row["conversation_score__overall_score_band"] is not None
    ]
    data["by_slice"] = layer.query(con, BY_SLICE, **values)
    [converted] = layer.query(con, CONVERTED, **values)
    data["converted"] = converted
    [data["ladder"]] = layer.query(con, LADDER, **values)
    daily_buckets: dict[Any, list] = {}
    for row in layer.query(con, LATENCY_TREND, latency_kind="first_response", **values):
        daily_buckets.setdefault(_as_date(row["metric_time__day"]), []).append(
            (int(row["latency_cell__bucket"]), row["latency_cell__bucket_value_ms"],
             int(row["latency_samples"])))
    data["first_response_daily"] = [
        {"metric_date": day, **percentiles(buckets)} for day, buckets in sorted(daily_buckets.items())
    ]
    retention = layer.query(con, RETENTION)
    weeks = {
        row["metric_time__week"] for row in retention
        if _as_date(row["metric_time__week"]) <= period.end
    }
    cohorts = sorted(weeks)[-RETENTION_COHORTS:]
    data["retention"] = [
        {"cohort_week": _as_date(row["metric_time__week"]),
         "week_number": int(row["cohort_week_number__week_number"]),
         "cohort_users": int(row["cohort_size"]), "retention_rate": row["retention_rate"]}
        for row in retention if row["metric_time__week"] in cohorts
    ]
    data["presentation"] = {
        name: {"label": layer.label(name), **layer.meta(name)}
        for name in {*METRICS.values(), *TREND.metrics}
    }
    return data


def _as_date(value: Any) -> Any:
    return value.date() if hasattr(value, "date") else value


def _link(period: dict, **filters: Any) -> str:
    query = {"start": period["start"], "end": period["end"],
             **{k: v for k, v in filters.items() if v is not None}}
    return f"{SESSIONS_LINK}?{urlencode(query)}"


def _line_chart(key: str, title: str, unit: str | None, daily: list[dict]) -> str:
    width, height, pad = 320, 140, 28
    points = [(row["metric_date"], row[key]) for row in daily if row[key] is not None]
    if not points:
        return f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption><p>no data</p></figure>'
    values = [float(v) for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or (abs(high) or 1.0)
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    coordinates = [
        (pad + i * step, height - pad - (float(v) - low) / span * (height - 2 * pad))
        for i, (_, v) in enumerate(points)
    ]
    polyline = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>' for x, y in coordinates)
    return (
        f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption>'
        f'<svg class="trend" data-series="{key}" data-points="{len(points)}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)} per day">'
        f'<line class="axis" x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}"/>'
        f'<text x="2" y="{pad}">{html.escape(format_value(high, unit))}</text>'
        f'<text x="2" y="{height - pad}">{html.escape(format_value(low, unit))}</text>'
        f'<text x="{pad}" y="{height - 6}">{points[0][0]}</text>'
        f'<text x="{width - pad}" y="{height - 6}" text-anchor="end">{points[-1][0]}</text>'
        f'<polyline points="{polyline}"/>{dots}</svg></figure>'
    )


def _bars(items: list[tuple[str, float, str, str | None]], css_class: str) -> str:
    """Horizontal bars: (label, value, note, link)."""
    width, bar_height, label_width = 620, 26, 170
    top = max((v for _, v, _, _ in items), default=1) or 1
    rows = []
    for i, (label, value, note, link) in enumerate(items):
        length = (width - label_width - 150) * value / top
        y = i * (bar_height + 6)
        text = html.escape(label)
        if link:
            text = f'<a href="{html.escape(link)}">{text}</a>'
        rows.append(
            f'<text x="0" y="{y + 18}">{text}</text>'
            f'<rect class="bar" x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 18}">{html.escape(note)}</text>'
        )
    total_height = max(len(items), 1) * (bar_height + 6)
    return (f'<svg class="{css_class}" data-bars="{len(items)}" viewBox="0 0 {width} {total_height}">'
            + "".join(rows) + "</svg>")


def _ladder(ladder: dict, period: dict) -> str:
    sessions = ladder["sessions"] or 0
    steps = [
        ("Sessions", sessions, None),
        ("Contained (no escalation)", ladder["contained_sessions"] or 0, None),
        ("Resolved (evidence)", ladder["resolved_sessions"] or 0, None),
        ("Verified (no return)", ladder["verified_sessions"] or 0, None),
    ]
    items = [
        (label, count, f"{count:,}" + (f"  ({count / sessions:.1%} of sessions)" if sessions else ""),
         link)
        for label, count, link in steps
    ]
    recontacted = ladder["recontacted_resolved_sessions"] or 0
    settled = (ladder["verified_sessions"] or 0) + recontacted
    pending = (ladder["resolved_sessions"] or 0) - settled
    note = (
        f"<p class=\"note\">Of the resolved sessions, {recontacted:,} came back within the "
        f"recontact window (not verified) and {pending:,} are still inside it or have no user "
        "to follow.</p>"
    )
    return _bars(items, "ladder") + note


def _latency(latency: dict, daily: list[dict]) -> str:
    cards = []
    for kind, label in (("first_response", "First response"), ("agent_message", "Agent message")):
        values = latency.get(kind, {})
        cells = " &middot; ".join(
            f"{name} {format_value(values.get(name), 'milliseconds')}" for name in ("p50", "p90", "p99")
        )
        cards.append(f'<div class="card"><div class="label">{label} latency</div>'
                     f'<div class="value small">{cells}</div></div>')
    trends = "".join(
        _line_chart(name, f"First response {name} per day", "milliseconds", daily)
        for name in ("p50", "p90", "p99")
    )
    return f'<section class="headlines">{"".join(cards)}</section><section class="charts">{trends}</section>'


def _tools(tools: list[dict], period: dict) -> str:
    if not tools:
        return "<p>No tool calls in the period.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(t['tool'])}</td><td class=\"num\">{t['calls']:,}</td>"
        f"<td class=\"num\">{t['failures']:,}</td>"
        f"<td class=\"num\">{format_value(t['failure_rate'], 'percent')}</td></tr>"
        for t in tools
    )
    return ("<table class=\"tools\"><tr><th>tool</th><th class=\"num\">calls</th>"
            "<th class=\"num\">failures</th><th class=\"num\">failure rate</th></tr>"
            f"{rows}</table>")


def _retention(retention: list[dict]) -> str:
    if not retention:
        return "<p>No users to follow yet.</p>"
    cohorts = sorted({row["cohort_week"] for row in retention})
    weeks = max(row["week_number"] for row in retention) + 1
    cell = {(row["cohort_week"], row["week_number"]): row for row in retention}
    header = "".join(f'<th class="num">week {w}</th>' for w in range(weeks))
    body = []
    for cohort in cohorts:
        users = next(row["cohort_users"] for row in retention if row["cohort_week"] == cohort)
        cells = []
        for week in range(weeks):
            row = cell.get((cohort, week))
            if row is None:
                cells.append("<td></td>")
                continue
            rate = row["retention_rate"] or 0.0
            cells.append(f'<td class="num" style="background: rgba(47,111,221,{0.08 + 0.8 * rate:.2f})">'
                         f"{format_value(rate, 'percent')}</td>")
        body.append(f"<tr><td>{cohort}</td><td class=\"num\">{users:,}</td>{''.join(cells)}</tr>")
    return (f'<table class="retention"><tr><th>cohort week</th><th class="num">users</th>{header}</tr>'
            + "".join(body) + "</table>")


def _verdict(arms: list[dict], metric: str) -> str:
    """One plain sentence for a test's metric: which arm wins, no difference yet, or how much
    data is missing."""
    treatments = [a for a in arms if not a["is_control"]]
    if not treatments:
        return "no variant besides the control has been exposed yet"
    label = AB_METRIC_LABELS.get(metric, metric)
    if any(not a["enough_data"] for a in treatments):
        needed = max(a["additional_sessions_per_arm"] or 0 for a in arms)
        return f"not enough data: about {needed:,.0f} more sessions per arm"
    significant = [a for a in treatments if a["is_significant"]]
    if not significant:
        return f"no difference yet in {label}"
    best = max(significant, key=lambda a: a["abs_diff"] * (1 if a["is_higher_better"] is not False else -1))
    direction = "higher" if best["abs_diff"] > 0 else "lower"
    if best["is_higher_better"] is None:
        return f"{best['variant']} has {direction} {label} ({best['rel_lift']:+.1%})"
    wins = (best["abs_diff"] > 0) == best["is_higher_better"]
    return (f"{best['variant']} {'wins' if wins else 'loses'} on {label}: "
            f"{direction} by {abs(best['rel_lift']):.1%} (p = {best['p_value']:.3g})")


def _lift_plot(arms: list[dict]) -> str:
    """The relative lift of each variant against the control with its interval, on an axis
    with the zero line."""
    treated = [a for a in arms if not a["is_control"] and a["rel_lift_ci_low"] is not None]
    if not treated:
        return "<p>no interval yet</p>"
    width, row_height, label_width, pad = 620, 34, 130, 24
    low = min(0.0, *(a["rel_lift_ci_low"] for a in treated))
    high = max(0.0, *(a["rel_lift_ci_high"] for a in treated))
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return label_width + (value - low) / span * (width - label_width - pad)

    height = len(treated) * row_height + 30
    parts = [
        f'<line class="axis" x1="{label_width}" y1="{height - 22}" x2="{width - pad}" y2="{height - 22}"/>',
        f'<line class="zero" x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" y2="{height - 22}"/>',
        f'<text x="{x(0):.1f}" y="{height - 8}" text-anchor="middle">0</text>',
        f'<text x="{label_width}" y="{height - 8}">{low:+.0%}</text>',
        f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">{high:+.0%}</text>',
    ]
    for i, arm in enumerate(treated):
        y = i * row_height + 18
        parts.append(
            f'<text x="0" y="{y + 4}">{html.escape(arm["variant"])}</text>'
            f'<line class="ci" x1="{x(arm["rel_lift_ci_low"]):.1f}" y1="{y}" '
            f'x2="{x(arm["rel_lift_ci_high"]):.1f}" y2="{y}"/>'
            f'<circle class="mean" cx="{x(arm["rel_lift"]):.1f}" cy="{y}" r="5"/>'
        )
    return (f'<svg class="ab" data-arms="{len(treated)}" viewBox="0 0 {width} {height}" '
            'role="img" aria-label="relative lift against the control">' + "".join(parts) + "</svg>")


def _ab_section(test: dict, period: dict) -> str:
    control = test["control_variant"]
    header = (
        f"<h3>{html.escape(test['test_name'])}</h3>"
        f"<p class=\"verdict\">{html.escape(_verdict(test['variants'], 'conversion_rate').capitalize())}.</p>"
        f"<p>Control: <b>{html.escape(control or 'none')}</b> &middot; sample ratio "
        f"{'MISMATCH' if test['srm_status'] == 'mismatch' else 'ok'} "
        f"(p = {format_value(test['srm_p_value'], 'score').replace('.00', '')}) &middot; "
        f"contamination {format_value(test['contamination_rate'], 'percent')}</p>"
    )
    rows = []
    for metric, arms in test["metrics"].items():
        unit = "percent" if metric in ("conversion_rate", "resolution_rate") else "score"
        for arm in arms:
            if arm["is_control"]:
                continue
            link = _link(period, test_name=test["test_name"], variant=arm["variant"])
            rows.append(
                "<tr>"
                f"<td>{html.escape(AB_METRIC_LABELS.get(metric, metric))}</td>"
                f'<td><a href="{html.escape(link)}">{html.escape(arm["variant"])}</a></td>'
                f"<td>{format_value(arm['mean'], unit)}</td>"
                f"<td>{format_value(next((a['mean'] for a in arms if a['is_control']), None), unit)}</td>"
                f"<td>{format_value(arm['rel_lift'], 'percent')}</td>"
                f"<td>{format_value(arm['rel_lift_ci_low'], 'percent')} to "
                f"{format_value(arm['rel_lift_ci_high'], 'percent')}</td>"
                f"<td>{format_value(arm['chance_to_win'], 'percent')}</td>"
                f"<td>{format_value(arm['p_value'], 'score')}</td>"
                f"<td>{format_value(arm['always_valid_p_value'], 'score')}</td>"
                f"<td>{html.escape(_verdict(arms, metric))}</td>"
                "</tr>"
            )
    table = (
        "<table class=\"ab-metrics\"><tr><th>metric</th><th>variant</th><th>variant mean</th>"
        "<th>control mean</th><th>lift</th><th>95% interval</th><th>chance to win</th>"
        "<th>p-value</th><th>always-valid p</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
    )
    plot = _lift_plot(test["variants"])
    return f"{header}<h4>Conversion: relative lift against the control</h4>{plot}{table}"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1080px; color: #1d2330; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #dde; }
h3 { font-size: 15px; margin-bottom: 4px; } h4 { font-size: 13px; color: #445; }
.headlines { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; }
.card { background: #f4f6fb; border-radius: 8px; padding: 10px 14px; }
.card .value { font-size: 22px; font-weight: 600; } .card .label { color: #556; font-size: 13px; }
.card .value.small { font-size: 15px; } svg.ladder .bar { fill: #2f9e6e; }
.delta { font-size: 12px; color: #667; } .delta.good { color: #17803d; } .delta.bad { color: #b3261e; }
.charts { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
figure.chart { margin: 0; background: #fafbfd; border: 1px solid #e4e7ef; border-radius: 8px; padding: 6px; }
figcaption { font-size: 13px; color: #445; }
svg text { font-size: 10px; fill: #556; } svg a text, svg a { fill: #2456b3; }
svg.trend polyline { fill: none; stroke: #2f6fdd; stroke-width: 2; }
svg.trend circle { fill: #2f6fdd; } svg .axis { stroke: #99a; }
svg .zero { stroke: #b3261e; stroke-dasharray: 3 3; }
svg .bar { fill: #5b8def; } svg.histogram .bar { fill: #8a6fdf; }
svg.ab .ci { stroke: #2f6fdd; stroke-width: 3; } svg.ab .mean { fill: #1d2330; }
table { border-collapse: collapse; font-size: 13px; margin-top: 6px; }
td, th { padding: 3px 10px; border-bottom: 1px solid #e4e7ef; text-align: left; }
td.num, th.num { text-align: right; } .note { color: #556; font-size: 13px; }
p.verdict { font-weight: 600; }
"""


def render_html(data: dict[str, Any]) -> str:
    metrics, previous = data["metrics"], data["previous_metrics"]
    presentation = data["presentation"]
    period = data["period"]
    filters = data.get("filters") or {}
    scope = "".join(f", {k} {v}" for k, v in filters.items() if v)

    def describe(key: str) -> tuple[str, str | None, str | None]:
        info = presentation[METRICS.get(key, key)]
        return info["label"], info.get("unit"), info.get("better")

    cards = []
    for key in (*HEADLINE_METRICS, *LADDER_METRICS):
        label, unit, better = describe(key)
        css, text = change_class(metrics.get(key), previous.get(key), better)
        cards.append(
            f'<div class="card"><div class="label">{html.escape(label)}</div>'
            f'<div class="value">{html.escape(format_value(metrics.get(key), unit))}</div>'
            f'<span class="delta {css}">{html.escape(text)}</span></div>'
        )
    trends = "".join(
        _line_chart(m, presentation[m]["label"], presentation[m].get("unit"), data["daily"])
        for m in TREND.metrics
    )
    slice_header = "".join(f'<th class="num">{html.escape(describe(k)[0])}</th>' for k in HEADLINE_METRICS)
    slice_rows = []
    for row in data["by_slice"]:
        channel, version = row["session__channel"], row["session__agent_version"]
        link = _link(period, channel=channel, agent_version=version)
        cells = "".join(
            f'<td class="num">{format_value(row[metric], describe(key)[1])}</td>'
            for key, metric in HEADLINE_METRICS.items()
        )
        slice_rows.append(f'<tr><td><a href="{html.escape(link)}">{html.escape(channel)}</a></td>'
                          f"<td>{html.escape(version)}</td>{cells}</tr>")
    funnel_items = [
        (step["name"], step["sessionCount"],
         f"{step['sessionCount']:,}" + ("" if step["dropoffRate"] is None
                                        else f"  (drop-off {step['dropoffRate']:.1f}%)"), None)
        for step in data["funnel"]
    ]
    converted = data["converted"]
    topic_items = [
        (t["topic"], t["count"], f"{t['count']:,}", _link(period, fallback_topic=t["topic"]))
        for t in data["top_fallback_topics"]
    ]
    buckets = {row["bucket"]: row["sessions"] for row in data["score_histogram"]}
    histogram_items = [
        (f"{b * 10}-{b * 10 + 10}", buckets.get(b, 0), f"{buckets.get(b, 0):,}",
         _link(period, min_score=b * 10, max_score=b * 10 + 10))
        for b in range(10)
    ]
    ab_sections = "".join(_ab_section(test, period) for test in data["ab_tests"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat agent report {period['start']} to {period['end']}</title>
<style>{STYLE}</style></head>
<body>
<h1>Chat agent report, {period['start']} to {period['end']}{html.escape(scope)}</h1>
<p class="note">Sessions that started in the period (UTC). Changes compare with the period of the
same length before it, green when better and red when worse. Names and rows link to the
sessions behind them (<a href="{html.escape(_link(period, **filters))}">all sessions of the period</a>).</p>
<section class="headlines">{''.join(cards)}</section>
<h2>Daily trends</h2><section class="charts">{trends}</section>
<h2>Outcome ladder</h2>
<p class="note">From the weakest evidence to the strongest: kept by the agent, resolved with
evidence (a conversion, a completed flow, positive feedback), and verified: the user did not
come back within the recontact window.</p>
{_ladder(data["ladder"], period)}
<h2>Latency percentiles</h2>{_latency(data["latency"], data["first_response_daily"])}
<h2>Tools that fail most</h2>{_tools(data["tools"], period)}
<h2>Users: weekly retention</h2>
<p class="note">{data["users"]["active_users"]:,} active users in the period, {data["users"]["new_users"]:,}
new and {data["users"]["returning_users"]:,} returning (all channels). Each row is the users whose
first session fell in that week; each cell the share of them with a session that many weeks later.</p>
{_retention(data["retention"])}
<h2>Channels and agent versions</h2>
<table class="slices"><tr><th>channel</th><th>agent version</th>{slice_header}</tr>
{''.join(slice_rows)}</table>
<h2>Funnel</h2>
<p class="note">In time order: a session reaches a step only with a matching event at or after the
time it reached the step before. Converted at all, in any order:
<b>{converted['converted_sessions'] or 0:,}</b> sessions
({format_value(converted['conversion_rate'], 'percent')} of sessions); the funnel's last step
counts only those that converted after completing a flow.</p>
{_bars(funnel_items, "funnel")}
<h2>Top fallback topics</h2>{_bars(topic_items, "topics")}
<h2>A/B tests</h2>{ab_sections or "<p>No experiments yet.</p>"}
<h2>Conversation score distribution (overall score)</h2>{_bars(histogram_items, "histogram")}
</body></html>
"""


def write_report(data: dict[str, Any], path: str | Path) -> Path:
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(render_html(data), encoding="utf-8")
    partial.replace(target)
    return target


def markdown_summary(data: dict[str, Any]) -> str:
    metrics, presentation = data["metrics"], data["presentation"]
    lines = [f"**{data['period']['start']} to {data['period']['end']}**", "",
             "| metric | value |", "| --- | --- |"]
    for key, metric in HEADLINE_METRICS.items():
        info = presentation[metric]
        lines.append(f"| {info['label']} | {format_value(metrics.get(key), info.get('unit'))} |")
    for test in data["ab_tests"]:
        lines.append(f"| A/B {test['test_name']} | {_verdict(test['variants'], 'conversion_rate')} |")
    return "\n".join(lines)


def default_period(first: date, last: date, days: int = 30) -> Slice:
    """The report's default period: the last `days` days with data."""
    return Slice(max(first, last - timedelta(days=days - 1)), last)
