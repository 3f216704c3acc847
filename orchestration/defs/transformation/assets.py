from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.locks import exclusive_build_lock
from orchestration.project import (
    DBT_PROFILES_DIR,
    DBT_PROJECT_DIR,
    export_warehouse_env,
    put_environment_on_path,
)
from orchestration.resources import BUILD_LOCK_WAIT_SECONDS, WarehouseResource

put_environment_on_path()
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROFILES_DIR)
dbt_project.prepare_if_dev()


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False


class WarehouseTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: dict) -> str | None:
        path = Path(dbt_resource_props.get("original_file_path", ""))
        parts = path.parts
        if len(parts) > 1 and parts[0] == "models":
            return parts[1]
        return "seeds" if dbt_resource_props.get("resource_type") == "seed" else None


def dbt_build_args(config: DbtBuildConfig) -> list[str]:
    """dbt's arguments for the daily build; pure, unit-tested."""
    return ["build", "--full-refresh"] if config.full_refresh else ["build"]


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(),
    pool="duckdb_writer",
)
def dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
) -> Iterator:
    paths = warehouse.paths()
    export_warehouse_env(paths)
    with exclusive_build_lock(paths, BUILD_LOCK_WAIT_SECONDS):
        yield from dbt.cli(dbt_build_args(config), context=context).stream()
