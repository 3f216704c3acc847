"""A self-contained HTML report (inline SVG, no scripts, works offline)."""

import html
import math
from pathlib import Path
from typing import Any

import duckdb

from .dashboard import Slice, dashboard, period_metrics
from .metrics import MetricQuery, semantic_layer

TREND_SERIES = (
    ("sessions", "Sessions", "{:,.0f}"),
    ("resolution_rate", "Resolution rate", "{:.1%}"),
    ("conversion_rate", "Conversion rate", "{:.1%}"),
    ("fallback_rate", "Fallback rate", "{:.1%}"),
    ("avg_satisfaction_score", "Satisfaction (1-5)", "{:.2f}"),
    ("avg_first_response_ms", "First response (ms)", "{:,.0f}"),
)
HEADLINES = (
    ("total_sessions", "Sessions", "{:,.0f}"),
    ("resolution_rate", "Resolution", "{:.1%}"),
    ("conversion_rate", "Conversion", "{:.1%}"),
    ("fallback_rate", "Fallback rate", "{:.1%}"),
    ("avg_satisfaction_score", "Satisfaction", "{:.2f}"),
    ("avg_first_response_ms", "First response", "{:,.0f} ms"),
    ("avg_session_duration_seconds", "Avg duration", "{:,.0f} s"),
    ("escalation_rate", "Escalation", "{:.1%}"),
)


TREND = MetricQuery(
    ("sessions", "resolution_rate", "conversion_rate", "fallback_rate", "avg_satisfaction_score",
     "avg_first_response_ms"),
    group_by=("metric_time__day",),
    order_by=("metric_time__day",),
)
SCORE_BANDS = MetricQuery(
    ("scored_sessions",),
    group_by=("conversation_score__overall_score_band",),
    order_by=("conversation_score__overall_score_band",),
)


def report_data(con: duckdb.DuckDBPyConnection, period: Slice) -> dict[str, Any]:
    layer = semantic_layer(con)
    data = dashboard(con, period)
    previous = period.previous()
    data["previous_metrics"] = period_metrics(con, previous) if previous else {}
    data["daily"] = [
        {"metric_date": _as_date(row["metric_time__day"]), **{m: row[m] for m in TREND.metrics}}
        for row in layer.query(con, TREND, **period.values())
    ]
    data["score_histogram"] = [
        {"bucket": int(row["conversation_score__overall_score_band"]),
         "sessions": int(row["scored_sessions"])}
        for row in layer.query(con, SCORE_BANDS, **period.values())
        if row["conversation_score__overall_score_band"] is not None
    ]
    return data


def _as_date(value: Any) -> Any:
    return value.date() if hasattr(value, "date") else value


def _fmt(template: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return template.format(value)


def _change(current: Any, previous: Any) -> str:
    if current is None or previous in (None, 0):
        return '<span class="delta">no previous period</span>'
    change = (current - previous) / abs(previous)
    direction = "up" if change > 0 else "down" if change < 0 else "flat"
    return f'<span class="delta {direction}">{change:+.1%} vs previous period</span>'


def _line_chart(series_key: str, title: str, template: str, daily: list[dict]) -> str:
    width, height, pad = 320, 140, 28
    points = [(row["metric_date"], row[series_key]) for row in daily if row[series_key] is not None]
    if not points:
        return f'<figure class="chart"><figcaption>{title}</figcaption><p>no data</p></figure>'
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
        f'<figure class="chart"><figcaption>{title}</figcaption>'
        f'<svg class="trend" data-series="{series_key}" data-points="{len(points)}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{title} per day">'
        f'<line class="axis" x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}"/>'
        f'<text x="2" y="{pad}">{html.escape(_fmt(template, high))}</text>'
        f'<text x="2" y="{height - pad}">{html.escape(_fmt(template, low))}</text>'
        f'<text x="{pad}" y="{height - 6}">{points[0][0]}</text>'
        f'<text x="{width - pad}" y="{height - 6}" text-anchor="end">{points[-1][0]}</text>'
        f'<polyline points="{polyline}"/>{dots}</svg></figure>'
    )


def _bars(items: list[tuple[str, float, str]], css_class: str, max_value: float | None = None) -> str:
    width, bar_height, label_width = 620, 26, 170
    top = max_value or max((v for _, v, _ in items), default=1) or 1
    rows = []
    for i, (label, value, note) in enumerate(items):
        length = (width - label_width - 120) * value / top
        y = i * (bar_height + 6)
        rows.append(
            f'<text x="0" y="{y + 18}">{html.escape(label)}</text>'
            f'<rect class="bar" x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 18}">{html.escape(note)}</text>'
        )
    total_height = max(len(items), 1) * (bar_height + 6)
    return (f'<svg class="{css_class}" data-bars="{len(items)}" viewBox="0 0 {width} {total_height}">'
            + "".join(rows) + "</svg>")


def _ab_chart(test: dict) -> str:
    arms = [a for a in test["variants"] if a["mean"] is not None and a["ci_low"] is not None]
    if not arms:
        return "<p>no exposures yet</p>"
    width, row_height, label_width = 620, 34, 130
    low = min(a["ci_low"] for a in arms)
    high = max(a["ci_high"] for a in arms)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return label_width + (value - low) / span * (width - label_width - 40)

    rows = []
    for i, arm in enumerate(arms):
        y = i * row_height + 18
        rows.append(
            f'<text x="0" y="{y + 4}">{html.escape(arm["variant"])}</text>'
            f'<line class="ci" x1="{x(arm["ci_low"]):.1f}" y1="{y}" x2="{x(arm["ci_high"]):.1f}" y2="{y}"/>'
            f'<circle class="mean" cx="{x(arm["mean"]):.1f}" cy="{y}" r="5"/>'
        )
    body = "".join(rows)
    table_rows = "".join(
        "<tr>"
        f"<td>{html.escape(a['variant'])}{' (control)' if a['is_control'] else ''}</td>"
        f"<td>{_fmt('{:.2%}', a['mean'])}</td>"
        f"<td>{_fmt('{:.2%}', a['ci_low'])} to {_fmt('{:.2%}', a['ci_high'])}</td>"
        f"<td>{_fmt('{:+.1%}', a['rel_lift'])}</td>"
        f"<td>{_fmt('{:.3g}', a['p_value'])}</td>"
        f"<td>{_fmt('{:.3g}', a['always_valid_p_value'])}</td>"
        f"<td>{'yes' if a['enough_data'] else 'not yet'}</td>"
        "</tr>"
        for a in test["variants"]
    )
    return (
        f'<svg class="ab" data-arms="{len(arms)}" viewBox="0 0 {width} {len(arms) * row_height + 6}">'
        f"{body}</svg>"
        "<table><tr><th>variant</th><th>conversion</th><th>95% CI</th><th>lift</th>"
        "<th>p-value</th><th>always-valid p</th><th>enough data</th></tr>"
        f"{table_rows}</table>"
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1080px; color: #1d2330; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #dde; }
.headlines { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; }
.card { background: #f4f6fb; border-radius: 8px; padding: 10px 14px; }
.card .value { font-size: 22px; font-weight: 600; } .card .label { color: #556; font-size: 13px; }
.delta { font-size: 12px; color: #667; } .delta.up { color: #17803d; } .delta.down { color: #b3261e; }
.charts { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
figure.chart { margin: 0; background: #fafbfd; border: 1px solid #e4e7ef; border-radius: 8px; padding: 6px; }
figcaption { font-size: 13px; color: #445; }
svg text { font-size: 10px; fill: #556; }
svg.trend polyline { fill: none; stroke: #2f6fdd; stroke-width: 2; }
svg.trend circle { fill: #2f6fdd; } svg .axis { stroke: #ccd; }
svg .bar { fill: #5b8def; } svg.histogram .bar { fill: #8a6fdf; }
svg.ab .ci { stroke: #2f6fdd; stroke-width: 3; } svg.ab .mean { fill: #1d2330; }
table { border-collapse: collapse; font-size: 13px; margin-top: 6px; }
td, th { padding: 3px 10px; border-bottom: 1px solid #e4e7ef; text-align: left; }
"""


def render_html(data: dict[str, Any]) -> str:
    metrics, previous = data["metrics"], data["previous_metrics"]
    period = data["period"]
    scope = ""
    if data.get("filters"):
        scope = " (" + ", ".join(f"{k} {v}" for k, v in data["filters"].items() if v) + ")"
    cards = "".join(
        f'<div class="card"><div class="label">{label}</div>'
        f'<div class="value">{html.escape(_fmt(template, metrics.get(key)))}</div>'
        f"{_change(metrics.get(key), previous.get(key))}</div>"
        for key, label, template in HEADLINES
    )
    trends = "".join(_line_chart(k, t, f, data["daily"]) for k, t, f in TREND_SERIES)
    funnel_items = [
        (step["name"], step["sessionCount"],
         f"{step['sessionCount']:,}" + ("" if step["dropoffRate"] is None
                                        else f"  (drop-off {step['dropoffRate']}%)"))
        for step in data["funnel"]
    ]
    topic_items = [(t["topic"], t["count"], f"{t['count']:,}") for t in data["top_fallback_topics"]]
    buckets = {row["bucket"]: row["sessions"] for row in data["score_histogram"]}
    histogram_items = [
        (f"{b * 10}-{b * 10 + 10}", buckets.get(b, 0), f"{buckets.get(b, 0):,}") for b in range(10)
    ]
    ab_sections = "".join(
        f"<h3>{html.escape(test['test_name'])} &middot; {test['metric']} &middot; "
        f"sample ratio {'MISMATCH' if test['srm_status'] == 'mismatch' else 'ok'} "
        f"(p = {_fmt('{:.3g}', test['srm_p_value'])})</h3>{_ab_chart(test)}"
        for test in data["ab_tests"]
    ) or "<p>No experiments yet.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat agent report {period['start']} to {period['end']}</title>
<style>{STYLE}</style></head>
<body>
<h1>Chat agent report, {period['start']} to {period['end']}{html.escape(scope)}</h1>
<section class="headlines">{cards}</section>
<h2>Daily trends</h2><section class="charts">{trends}</section>
<h2>Funnel</h2>{_bars(funnel_items, "funnel")}
<h2>Top fallback topics</h2>{_bars(topic_items, "topics")}
<h2>A/B tests</h2>{ab_sections}
<h2>Conversation score distribution (overall score)</h2>{_bars(histogram_items, "histogram")}
</body></html>
"""


def write_report(data: dict[str, Any], path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(render_html(data), encoding="utf-8")
    partial.replace(target)
    return target


def markdown_summary(data: dict[str, Any]) -> str:
    metrics = data["metrics"]
    lines = [f"**{data['period']['start']} to {data['period']['end']}**", "",
             "| metric | value |", "| --- | --- |"]
    lines += [f"| {label} | {_fmt(template, metrics.get(key))} |" for key, label, template in HEADLINES]
    for test in data["ab_tests"]:
        for arm in test["variants"]:
            if not arm["is_control"]:
                lines.append(
                    f"| A/B {test['test_name']} {arm['variant']} lift | "
                    f"{_fmt('{:+.1%}', arm['rel_lift'])} (always-valid p "
                    f"{_fmt('{:.3g}', arm['always_valid_p_value'])}) |"
                )
    return "\n".join(lines)
