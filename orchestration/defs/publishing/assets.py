from datetime import timedelta

import dagster as dg

from orchestration.dashboard import Slice, connect_serving, data_range
from orchestration.defs.transformation.assets import dbt_models
from orchestration.locks import exclusive_build_lock
from orchestration.report import markdown_summary, report_data, write_report
from orchestration.resources import BUILD_LOCK_WAIT_SECONDS, WarehouseResource
from orchestration.serving import publish, serving_file


@dg.asset(
    key=["serving", "marts"],
    deps=[dbt_models],
    group_name="publishing",
    kinds={"duckdb"},
    pool="duckdb_writer",
    description=(
        "Read-only snapshot of the marts for BI tools, replaced atomically after a build "
        "whose blocking checks passed."
    ),
)
def serving_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    paths = warehouse.paths()
    with exclusive_build_lock(paths, BUILD_LOCK_WAIT_SECONDS):
        row_counts = publish(paths)
    context.log.info(f"published {len(row_counts)} tables to {serving_file(paths)}")
    return dg.MaterializeResult(
        metadata={
            "path": str(serving_file(paths)),
            **{f"rows.{name}": count for name, count in row_counts.items()},
        }
    )


@dg.asset(
    key=["serving", "report"],
    deps=[serving_marts],
    group_name="publishing",
    kinds={"html"},
    description=(
        "Self-contained HTML report of the last 30 days with data, regenerated after each "
        "successful publication; its summary shows in the materialization."
    ),
)
def html_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    paths = warehouse.paths()
    with connect_serving(paths) as con:
        first, last = data_range(con)
        if last is None:
            return dg.MaterializeResult(metadata={"summary": dg.MetadataValue.md("No sessions yet.")})
        period = Slice(max(first, last - timedelta(days=29)), last)
        data = report_data(con, period)
    target = write_report(data, paths.home / "reports" / "latest.html")
    context.log.info(f"wrote {target}")
    return dg.MaterializeResult(
        metadata={
            "path": str(target),
            "summary": dg.MetadataValue.md(markdown_summary(data)),
        }
    )
