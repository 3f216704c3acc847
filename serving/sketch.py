"""Quantiles from DDSketch buckets (fct_latency_sketch_daily): the rows of any period and any
slice add up per bucket, and the q-quantile is the value of the smallest bucket whose
cumulative count exceeds floor(q (n - 1)), within the sketch's relative accuracy (1 %) of the
exact value."""

import math
from collections.abc import Iterable

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def quantile(buckets: Iterable[tuple[int, float, int]], q: float) -> float | None:
    """`buckets`: (bucket, its value, samples), in any order and with repeats."""
    counts: dict[int, list] = {}
    for bucket, value, samples in buckets:
        entry = counts.setdefault(bucket, [value, 0])
        entry[1] += samples
    total = sum(samples for _, samples in counts.values())
    if total == 0:
        return None
    rank = math.floor(q * (total - 1))
    cumulative = 0
    for bucket in sorted(counts):
        value, samples = counts[bucket]
        cumulative += samples
        if cumulative > rank:
            return float(value)
    raise AssertionError("unreachable: the cumulative count reaches the total")


def percentiles(buckets: list[tuple[int, float, int]]) -> dict[str, float | None]:
    return {name: quantile(buckets, q) for name, q in QUANTILES.items()}
