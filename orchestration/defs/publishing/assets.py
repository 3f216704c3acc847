from datetime import UTC

import dagster as dg

from orchestration.defs.transformation.assets import dbt_models, is_full_refresh
from orchestration.lib.warehouse_file import compact_if_sparse
from orchestration.project import project_digest
from orchestration.resources import BuildLockResource, WarehouseResource
from orchestration.settings import settings
from serving.dashboard import data_range
from serving.publish import BuildRecord, connect_snapshot, publish, serving_link
from serving.report import default_period, markdown_summary, report_data, write_report


def _build_record(context: dg.AssetExecutionContext) -> BuildRecord:
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = record.create_timestamp if record else None
    if started is not None and started.tzinfo is not None:
        started = started.astimezone(UTC).replace(tzinfo=None)
    return BuildRecord(context.run.run_id, started, is_full_refresh(context.run), project_digest())


@dg.asset(
    key=["serving", "marts"],
    deps=[dbt_models],
    group_name="publishing",
    kinds={"duckdb"},
    description=(
        "Read-only snapshot of the marts for BI tools, the report and the API, replaced "
        "atomically after a build whose blocking checks passed."
    ),
)
def serving_marts(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, build_lock: BuildLockResource
):
    paths = warehouse.paths()
    # first: a snapshot is a byte copy of the file, free blocks included
    compaction = compact_if_sparse(
        paths,
        settings.warehouse_compact_free_share,
        settings.warehouse_compact_min_free_mib,
    )
    compacted = {}
    if compaction is not None:
        context.log.info(
            f"rewrote the warehouse file without its free blocks ({compaction.free_share_before:.0%} "
            f"of it): {compaction.mib_before:,.0f} -> {compaction.mib_after:,.0f} MiB"
        )
        compacted = {"warehouse_file_mib_before": compaction.mib_before,
                     "warehouse_file_mib_after": compaction.mib_after}
    row_counts = publish(paths, _build_record(context))
    context.log.info(f"published {len(row_counts)} tables to {serving_link(paths)}")
    return dg.MaterializeResult(
        metadata={
            "path": str(serving_link(paths)),
            **compacted,
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
def html_report(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, build_lock: BuildLockResource
):
    paths = warehouse.paths()
    with connect_snapshot(paths) as con:
        first, last = data_range(con)
        if last is None:
            return dg.MaterializeResult(metadata={"summary": dg.MetadataValue.md("No sessions yet.")})
        data = report_data(con, default_period(first, last))
    reports = paths.home / "reports"
    reports.mkdir(exist_ok=True)
    target = write_report(data, reports / "latest.html")
    context.log.info(f"wrote {target}")
    return dg.MaterializeResult(
        metadata={
            "path": str(target),
            "summary": dg.MetadataValue.md(markdown_summary(data)),
        }
    )
