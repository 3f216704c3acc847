"""The SQL probability macros against scipy on dense grids (max error under 1e-9)."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy import stats

from .conftest import REPO

BIN = Path(sys.executable).parent


def compile_inline(sql: str, home: Path) -> str:
    env = dict(os.environ, CHAT_ANALYTICS_HOME=str(home), DBT_PROFILES_DIR=str(REPO))
    done = subprocess.run(
        [str(BIN / "dbt"), "compile", "--quiet", "--inline", sql],
        cwd=REPO / "dbt_project",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def evaluate(tmp_path_factory):
    home = tmp_path_factory.mktemp("stats")

    def run(expressions: dict[str, str], grid: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = ", ".join(f"{expr} as {name}" for name, expr in expressions.items())
        sql = compile_inline(f"select {columns} from grid", home)
        con = duckdb.connect()
        import pyarrow as pa

        con.register("grid", pa.table({k: pa.array(v) for k, v in grid.items()}))
        table = con.execute(sql).fetchnumpy()
        return {name: np.asarray(table[name], dtype=float) for name in expressions}

    return run


def test_normal_cdf_and_pdf(evaluate) -> None:
    x = np.linspace(-40, 40, 20001)
    out = evaluate({"cdf": "{{ normal_cdf('x') }}", "pdf": "{{ normal_pdf('x') }}"}, {"x": x})
    assert np.max(np.abs(out["cdf"] - stats.norm.cdf(x))) < 1e-14
    assert np.max(np.abs(out["pdf"] - stats.norm.pdf(x))) < 1e-15


def test_normal_quantile(evaluate) -> None:
    p = np.concatenate(
        [
            np.linspace(1e-12, 1e-3, 2000),
            np.linspace(1e-3, 1 - 1e-3, 20000),
            1 - np.linspace(1e-12, 1e-3, 2000),
        ]
    )
    start = evaluate({"q": "{{ normal_quantile_start('p') }}"}, {"p": p})["q"]
    refined = evaluate({"q": "{{ normal_quantile_refine('q0', 'p') }}"}, {"q0": start, "p": p})["q"]
    assert np.max(np.abs(refined - stats.norm.ppf(p))) < 1e-9


def test_normal_quantile_of_an_expression(evaluate) -> None:
    """The A/B inference passes p as SQL text, `1.0e0 - alpha / 2.0e0`: the macros must read it
    as one value in every branch, the upper tail (alpha under 0.0485) included."""
    alpha = np.concatenate([np.linspace(1e-6, 0.0485, 500), np.linspace(0.0485, 0.5, 500)])
    p_text = "1.0e0 - alpha / 2.0e0"
    start = evaluate({"q": f"{{{{ normal_quantile_start('{p_text}') }}}}"}, {"alpha": alpha})["q"]
    refined = evaluate(
        {"q": f"{{{{ normal_quantile_refine('q0', '{p_text}') }}}}"}, {"q0": start, "alpha": alpha}
    )["q"]
    assert np.max(np.abs(refined - stats.norm.ppf(1 - alpha / 2))) < 1e-9


T_CDF_DFS = [*range(1, 21), 10.5, 12.25, 25.7, 30, 47.3, 100, 333.3, 5000, 1e6]
# Non-integer df from 30 on: below that the t CDF itself is good to 1e-9 only, which the
# flat far tails (p near 0.0005) magnify in the quantile.
T_QUANTILE_DFS = [1, 2, 3, 5, 9, 14, 20, 30.5, 33.3, 120, 4000]


def test_t_cdf(evaluate) -> None:
    """Integer df 1..20 exactly; any df from 10 on, integer or not, by Hill's expansion."""
    t_one = np.concatenate([np.linspace(-30, 30, 3001), [0.0, 1e-9, -1e-9]])
    t = np.tile(t_one, len(T_CDF_DFS))
    df = np.repeat(np.array(T_CDF_DFS, dtype=float), len(t_one))
    out = evaluate({"cdf": "{{ t_cdf('t', 'df') }}", "pdf": "{{ t_pdf('t', 'df') }}"}, {"t": t, "df": df})
    assert np.max(np.abs(out["cdf"] - stats.t.cdf(t, df))) < 1e-9
    assert np.max(np.abs(out["pdf"] - stats.t.pdf(t, df))) < 1e-9

@pytest.mark.slow

def test_t_quantile(evaluate) -> None:
    p_one = np.linspace(0.0005, 0.9995, 1999)
    p = np.tile(p_one, len(T_QUANTILE_DFS))
    df = np.repeat(np.array(T_QUANTILE_DFS, dtype=float), len(p_one))
    x = evaluate(
        {"x": "{{ t_quantile_start('z', 'p', 'df') }}"}, {"z": stats.norm.ppf(p), "p": p, "df": df}
    )["x"]
    for _ in range(4):
        x = evaluate({"x": "{{ t_quantile_refine('x', 'p', 'df') }}"}, {"x": x, "p": p, "df": df})["x"]
    assert np.max(np.abs(x - stats.t.ppf(p, df))) < 1e-9


def test_chi_square_survival(evaluate) -> None:
    x = np.tile(np.linspace(0.0, 80.0, 1601), 20)
    k = np.repeat(np.arange(1, 21), 1601)
    out = evaluate({"q": "{{ chi_square_sf('x', 'k') }}"}, {"x": x, "k": k})["q"]
    assert np.max(np.abs(out - stats.chi2.sf(x, k))) < 1e-9
