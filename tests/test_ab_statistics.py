"""A/B inference in SQL against GrowthBook's published vectors, scipy, and simulation."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from .conftest import REPO

BIN = Path(sys.executable).parent
COLUMNS = [
    "test_name",
    "variant",
    "metric",
    "n",
    "sum_value",
    "sum_squares",
    "exposed_sessions",
    "weight",
    "is_control",
]


@pytest.fixture(scope="module")
def infer(tmp_path_factory):
    home = tmp_path_factory.mktemp("ab")
    cache: dict[str, str] = {}

    def run(rows: pa.Table, partition_by: tuple[str, ...] = ()) -> list[dict]:
        key = ",".join(partition_by)
        if key not in cache:
            sql = (
                "with ab_input as (select * from arms_input), "
                f"{{{{ ab_inference('ab_input', {list(partition_by)!r}) }}}} "
                "select * from inference"
            )
            env = dict(os.environ, CHAT_ANALYTICS_HOME=str(home), DBT_PROFILES_DIR=str(REPO))
            cache[key] = subprocess.run(
                [str(BIN / "dbt"), "compile", "--quiet", "--inline", sql],
                cwd=REPO / "dbt_project",
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        con = duckdb.connect()
        con.register("arms_input", rows)
        cursor = con.execute(cache[key])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    return run


def arms(*rows) -> pa.Table:
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(COLUMNS)})


def test_growthbook_welch_vector(infer) -> None:
    result = infer(
        arms(
            ("t", "control", "revenue", 3407, 1396.87, 52377.9767, 3407, 0.5, True),
            ("t", "treatment", "revenue", 3461, 2422.7, 134698.29, 3461, 0.5, False),
        )
    )
    control, treatment = sorted(result, key=lambda r: r["variant"])
    assert control["p_value"] is None and control["abs_diff"] is None
    assert control["always_valid_p_value"] is None
    assert treatment["abs_diff"] == pytest.approx(0.29, abs=1e-12)
    assert abs(treatment["p_value"] - 0.020158402643587) < 1e-9
    assert abs(treatment["abs_diff_ci_low"] - 0.0453778925593) < 1e-9
    assert abs(treatment["abs_diff_ci_high"] - 0.5346221074407) < 1e-9
    assert abs(treatment["rel_lift"] - 0.70732) < 1e-5
    assert abs(treatment["rel_lift_ci_low"] - -0.0352600890661) < 1e-9
    assert abs(treatment["rel_lift_ci_high"] - 1.4498942354076) < 1e-9
    assert treatment["is_significant"] is True


@pytest.mark.parametrize(
    ("counts", "weights", "expected"),
    [
        ([1000, 1200], [0.5, 0.5], 2.0079e-05),
        ([310, 98], [0.75, 0.25], 0.647434186),
        ([500, 500, 600], [0.34, 0.33, 0.33], 0.000592638),
    ],
)
def test_growthbook_srm_vectors(infer, counts, weights, expected) -> None:
    rows = [
        ("t", f"v{i}", "conversion_rate", c, 0.0, 0.0, c, w, i == 0)
        for i, (c, w) in enumerate(zip(counts, weights, strict=True))
    ]
    result = infer(arms(*rows))
    assert result[0]["srm_p_value"] == pytest.approx(expected, rel=1e-4)
    assert (
        abs(
            result[0]["srm_p_value"]
            - stats.chisquare(counts, np.array(weights) / sum(weights) * sum(counts)).pvalue
        )
        < 1e-9
    )


@pytest.mark.parametrize("arm_count", [2, 3, 4, 5, 6])
def test_srm_matches_scipy_with_unequal_weights(infer, arm_count: int) -> None:
    rng = np.random.default_rng(arm_count)
    weights = rng.uniform(0.5, 3.0, arm_count)
    counts = rng.integers(200, 2000, arm_count)
    rows = [
        ("t", f"v{i}", "conversion_rate", int(c), 0.0, 0.0, int(c), float(w), i == 0)
        for i, (c, w) in enumerate(zip(counts, weights, strict=True))
    ]
    expected = stats.chisquare(counts, weights / weights.sum() * counts.sum()).pvalue
    assert abs(infer(arms(*rows))[0]["srm_p_value"] - expected) < 1e-9


def test_welch_matches_scipy_on_random_samples(infer) -> None:
    rng = np.random.default_rng(7)
    rows, samples = [], {}
    for test in range(25):
        control = rng.gamma(2.0, 3.0, rng.integers(5, 400))
        treatment = rng.gamma(2.0, 3.3, rng.integers(5, 400))
        samples[f"t{test}"] = (control, treatment)
        for variant, values, is_control in (("a", control, True), ("b", treatment, False)):
            rows.append(
                (
                    f"t{test}",
                    variant,
                    "spend",
                    len(values),
                    float(values.sum()),
                    float((values**2).sum()),
                    len(values),
                    0.5,
                    is_control,
                )
            )
    for row in infer(arms(*rows)):
        if row["is_control"]:
            continue
        control, treatment = samples[row["test_name"]]
        welch = stats.ttest_ind(treatment, control, equal_var=False)
        assert abs(row["p_value"] - welch.pvalue) < 1e-9 or row["welch_df"] < 10
        se = np.sqrt(treatment.var(ddof=1) / len(treatment) + control.var(ddof=1) / len(control))
        t_crit = stats.t.ppf(0.975, welch.df)
        assert abs(row["welch_df"] - welch.df) < 1e-6
        if row["welch_df"] >= 30:
            assert abs(row["abs_diff_ci_high"] - (row["abs_diff"] + t_crit * se)) < 1e-9
        assert abs(row["chance_to_win"] - stats.norm.cdf(row["abs_diff"] / se)) < 1e-12


def _simulate(rng, experiments: int, days: int, per_day: int, rates: tuple[float, float]):
    """Cumulative binary statistics of many experiments, one row per arm and day."""
    rows = {name: [] for name in [*COLUMNS, "as_of_date"]}
    for experiment in range(experiments):
        totals = {"a": [0, 0], "b": [0, 0]}
        for day in range(days):
            for variant, rate in zip(("a", "b"), rates, strict=True):
                conversions = rng.binomial(per_day, rate)
                totals[variant][0] += per_day
                totals[variant][1] += conversions
                n, s = totals[variant]
                for name, value in zip(
                    [*COLUMNS, "as_of_date"],
                    [
                        f"e{experiment}",
                        variant,
                        "conversion_rate",
                        n,
                        float(s),
                        float(s),
                        n,
                        0.5,
                        variant == "a",
                        day,
                    ],
                    strict=True,
                ):
                    rows[name].append(value)
    return pa.table(rows)


def test_aa_simulation_and_peeking(infer) -> None:
    rng = np.random.default_rng(2024)
    table = _simulate(rng, experiments=400, days=20, per_day=150, rates=(0.1, 0.1))
    results = [r for r in infer(table, ("as_of_date",)) if not r["is_control"]]
    final = [r for r in results if r["as_of_date"] == 19]
    false_positive = np.mean([r["p_value"] < 0.05 for r in final])
    assert 0.03 <= false_positive <= 0.07
    ever_ordinary = {r["test_name"] for r in results if r["p_value"] < 0.05}
    ever_always_valid = {r["test_name"] for r in results if r["always_valid_p_value"] < 0.05}
    assert len(ever_ordinary) / 400 > 0.12
    assert len(ever_always_valid) / 400 <= 0.05


def test_known_lift_is_detected(infer) -> None:
    rng = np.random.default_rng(99)
    table = _simulate(rng, experiments=20, days=20, per_day=400, rates=(0.10, 0.13))
    final = [r for r in infer(table, ("as_of_date",)) if not r["is_control"] and r["as_of_date"] == 19]
    assert np.mean([r["p_value"] < 0.05 for r in final]) >= 0.9
    assert np.mean([r["always_valid_p_value"] < 0.05 for r in final]) >= 0.8
    assert np.mean([r["rel_lift_ci_low"] < 0.3 < r["rel_lift_ci_high"] for r in final]) >= 0.8
