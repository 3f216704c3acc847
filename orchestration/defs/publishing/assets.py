import dagster as dg

from orchestration.defs.transformation.assets import dbt_models
from orchestration.locks import exclusive_build_lock
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
