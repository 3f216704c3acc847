"""The same dbt project on Spark (dbt-spark, pyspark in local mode) gives the same marts as on
DuckDB: counts exactly, floats to 1e-9."""

import math
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from loaders.generate import GeneratorConfig, generate
from loaders.load import load_file
from loaders.paths import WarehousePaths

from .conftest import REPO

pytestmark = [pytest.mark.spark, pytest.mark.slow]

GRAINS = {
    "experiments": ["test_name", "variant"],
    "funnel_steps": ["funnel_name", "step_order"],
    "fct_sessions": ["session_id"],
    "fct_agent_metrics_daily": ["metric_date", "channel", "agent_version"],
    "fct_conversation_scores": ["session_id"],
    "fct_funnel_daily": ["session_date", "funnel_name", "step_order"],
    "fct_funnel_slices_daily": ["session_date", "channel", "agent_version", "funnel_name", "step_order"],
    "fct_session_funnel_steps": ["session_id", "funnel_name", "step_order"],
    "fct_fallback_topics_daily": ["session_date", "topic"],
    "fct_session_fallback_topics": ["session_id", "topic"],
    "fct_ab_exposures": ["test_name", "session_id"],
    "fct_ab_variant_stats": ["test_name", "variant", "metric"],
    "fct_ab_results": ["test_name", "variant", "metric"],
    "fct_ab_results_daily": ["as_of_date", "test_name", "variant", "metric"],
    "fct_ab_tests": ["test_name"],
    "fct_session_outcomes": ["session_id"],
    "fct_tool_calls_daily": ["metric_date", "channel", "agent_version", "tool_name"],
    "fct_latency_sketch_daily": ["metric_date", "channel", "agent_version", "latency_kind", "bucket"],
    "fct_users": ["user_key"],
    "fct_users_daily": ["metric_date"],
    "fct_user_retention_weekly": ["cohort_week", "week_number"],
    "dim_dates": ["date_day"],
}


def _dbt(home: Path, target: str) -> None:
    env = dict(
        os.environ, CHAT_ANALYTICS_HOME=str(home), DBT_PROFILES_DIR=str(REPO), CHAT_ANALYTICS_TARGET=target
    )
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "build",
            "--exclude",
            "resource_type:unit_test",
            "--target-path",
            f"target-{target}-test",
            "--log-path",
            str(home / f"logs-{target}"),
        ],
        cwd=REPO / "dbt_project",
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:]


def _rows(con: duckdb.DuckDBPyConnection, relation: str, grain: list[str]) -> tuple[list, list]:
    cursor = con.execute(f"select * from {relation} order by {', '.join(grain)}")
    return [c[0] for c in cursor.description], cursor.fetchall()


def _same(left: object, right: object) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, float) or isinstance(right, float):
        if math.isnan(float(left)) and math.isnan(float(right)):
            return True
        return abs(float(left) - float(right)) <= 1e-9 * max(1.0, abs(float(right)))
    return left == right


@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime")
def test_spark_builds_the_same_marts_as_duckdb(tmp_path: Path) -> None:
    home = tmp_path / "warehouse"
    paths = WarehousePaths(home)
    manifest = generate(
        GeneratorConfig(days=4, sessions_per_day=700, seed=17, start=date(2026, 4, 6)),
        tmp_path / "events",
    )
    for name in manifest.files:
        load_file(tmp_path / "events" / name, paths)
    _dbt(home, "duckdb")
    _dbt(home, "spark")
    warehouse = home / "spark" / "warehouse"
    with duckdb.connect(str(paths.database), read_only=True) as con:
        (sessions,) = con.execute("select count(*) from marts.fct_sessions").fetchone()
        assert sessions > 2000
        for table, grain in GRAINS.items():
            columns, expected = _rows(con, f"marts.{table}", grain)
            spark_files = f"read_parquet('{warehouse}/marts.db/{table}/*.parquet')"
            spark_columns, actual = _rows(con, spark_files, grain)
            assert spark_columns == columns, table
            assert len(actual) == len(expected) > 0, table
            for row_number, (left, right) in enumerate(zip(actual, expected, strict=True)):
                for column, a, b in zip(columns, left, right, strict=True):
                    assert _same(a, b), (table, row_number, column, a, b)
