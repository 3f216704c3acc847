"""Publish the marts to a read-only serving file that BI tools open.

The new snapshot is written to a temporary file beside the serving file and renamed over it.
A reader that opened the old file keeps reading that file (the rename does not touch its
inode), so BI tools never block a build and never see half of one.
"""

import os
import uuid
from pathlib import Path

import duckdb

from loaders.paths import WarehousePaths

PUBLISHED_SCHEMAS = ("marts",)
PUBLISHED_EXTRA_TABLES = ("audit.load_audit",)


def serving_file(paths: WarehousePaths) -> Path:
    # Not "marts.duckdb": DuckDB names the catalog after the file, and a catalog called
    # marts would make every `marts.<table>` reference ambiguous for BI tools.
    return paths.serving / "analytics.duckdb"


def publish(paths: WarehousePaths) -> dict[str, int]:
    paths.serving.mkdir(parents=True, exist_ok=True)
    target = serving_file(paths)
    partial = paths.serving / f".analytics-{uuid.uuid4().hex}.duckdb"
    row_counts: dict[str, int] = {}
    try:
        con = duckdb.connect(str(partial))
        try:
            con.execute(f"attach '{paths.database}' as warehouse (read_only)")
            tables = con.execute(
                """
                select schema_name || '.' || table_name
                from duckdb_tables()
                where database_name = 'warehouse' and schema_name in ?
                union all
                select schema_name || '.' || view_name
                from duckdb_views()
                where database_name = 'warehouse'
                    and schema_name || '.' || view_name in ?
                order by 1
                """,
                [list(PUBLISHED_SCHEMAS), list(PUBLISHED_EXTRA_TABLES)],
            ).fetchall()
            for (name,) in tables:
                schema, table = name.split(".")
                con.execute(f"create schema if not exists {schema}")
                con.execute(f"create table {schema}.{table} as select * from warehouse.{name}")
                (count,) = con.execute(f"select count(*) from {schema}.{table}").fetchone()
                row_counts[name] = int(count)
            con.execute("detach warehouse")
            con.execute("checkpoint")
        finally:
            con.close()
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return row_counts
