"""The Dagster code location: per-domain definitions merged into one."""

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.defs.automation.jobs import daily_build_job
from orchestration.defs.automation.schedules import daily_build_schedule
from orchestration.defs.automation.sensors import inbox_sensor
from orchestration.defs.ingestion.assets import land_inbox_asset
from orchestration.defs.publishing.assets import serving_marts
from orchestration.defs.quality import checks
from orchestration.defs.transformation.assets import dbt_models, dbt_project
from orchestration.project import dbt_executable
from orchestration.resources import WarehouseResource

ingestion = dg.Definitions(assets=[land_inbox_asset])
transformation = dg.Definitions(assets=[dbt_models])
publishing = dg.Definitions(assets=[serving_marts])
quality = dg.Definitions(asset_checks=dg.load_asset_checks_from_modules([checks]))
automation = dg.Definitions(
    jobs=[daily_build_job], schedules=[daily_build_schedule], sensors=[inbox_sensor]
)

defs = dg.Definitions.merge(
    ingestion,
    transformation,
    publishing,
    quality,
    automation,
    dg.Definitions(
        resources={
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
            "warehouse": WarehouseResource(),
        },
        # One process runs the steps one after another: DuckDB allows a single writer.
        executor=dg.in_process_executor,
    ),
)
