"""The DDSketch bound: every quantile within 1 % of the exact value, heavy tails included,
against exact quantiles over random data (numpy), with the bucket rule the warehouse uses."""

import math

import numpy as np
import pytest

from serving.sketch import quantile

ACCURACY = 0.01
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)


def sketch(values: np.ndarray) -> list[tuple[int, float, int]]:
    """Buckets as fct_latency_sketch_daily holds them (macros/sketches.sql)."""
    buckets = np.where(values < 1, 0, np.ceil(np.log(np.maximum(values, 1)) / math.log(GAMMA))).astype(int)
    keys, counts = np.unique(buckets, return_counts=True)
    return [
        (int(k), 0.0 if k == 0 else 2 * GAMMA**k / (GAMMA + 1), int(n))
        for k, n in zip(keys, counts, strict=True)
    ]


DISTRIBUTIONS = {
    "lognormal": lambda rng, n: rng.lognormal(6.5, 0.6, n),
    "lognormal heavy": lambda rng, n: rng.lognormal(5.0, 2.5, n),
    "pareto 1.1": lambda rng, n: (rng.pareto(1.1, n) + 1) * 50,
    "pareto 0.6": lambda rng, n: (rng.pareto(0.6, n) + 1) * 10,
    "mixture": lambda rng, n: np.concatenate(
        [rng.lognormal(6, 0.3, n - n // 20), rng.pareto(1.2, n // 20) * 1e5]),
    "integers": lambda rng, n: rng.integers(1, 5000, n).astype(float),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_every_quantile_within_one_percent(name: str) -> None:
    rng = np.random.default_rng(20_261_126)
    worst = 0.0
    for size in (1, 7, 100, 10_000, 200_000):
        values = DISTRIBUTIONS[name](rng, size)
        exact = np.sort(values)
        rows = sketch(values)
        for q in (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
            truth = exact[math.floor(q * (size - 1))]
            got = quantile(rows, q)
            # bucket 0 holds every value up to 1 ms and reads as 0 (ln 1 = 0): the bound holds above
            if truth > 1:
                error = abs(got - truth) / truth
                worst = max(worst, error)
                assert error <= ACCURACY, (name, size, q, got, truth)
    assert worst > ACCURACY / 4  # the bound is approached, so the check has teeth


def test_sketches_merge_by_adding_buckets() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.lognormal(6, 1, 5_000), rng.lognormal(7, 0.5, 3_000)
    merged = sketch(a) + sketch(b)  # rows of two slices, buckets repeated
    whole = np.sort(np.concatenate([a, b]))
    for q in (0.5, 0.9, 0.99):
        truth = whole[math.floor(q * (len(whole) - 1))]
        assert abs(quantile(merged, q) - truth) <= ACCURACY * truth
    assert quantile([], 0.5) is None
