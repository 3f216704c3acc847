"""How a metric's value reads, by the unit its definition declares (meta.unit in the semantic
layer): one place for the terminal table and the HTML report."""

import math
from typing import Any

FORMATS = {
    "percent": "{:.1%}",
    "count": "{:,.0f}",
    "milliseconds": "{:,.0f} ms",
    "seconds": "{:,.0f} s",
    "score": "{:.2f}",
    "number": "{:,.2f}",
    "usd": "${:,.4f}",
    "tokens": "{:,.0f}",
}


def format_value(value: Any, unit: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return FORMATS.get(unit or "number", "{}").format(value)


def change_class(current: Any, previous: Any, better: str | None) -> tuple[str, str]:
    """(css class, text) of a change against the previous period, judged by whether the
    metric is better up or down, not by the change's sign."""
    if current is None or previous in (None, 0):
        return "none", "no previous period"
    change = (current - previous) / abs(previous)
    text = f"{change:+.1%} vs previous period"
    if change == 0 or better not in ("up", "down"):
        return "neutral", text
    improved = (change > 0) == (better == "up")
    return ("good" if improved else "bad"), text
