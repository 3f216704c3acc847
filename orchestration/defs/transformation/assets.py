from collections.abc import Iterator
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from packaging.version import Version

from loaders.faults import reached
from orchestration.project import (
    DBT_PROFILES_DIR,
    DBT_PROJECT_DIR,
    dbt_child_executable,
    ensure_manifest,
)
from orchestration.resources import BuildLockResource, WarehouseResource

ensure_manifest()
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROFILES_DIR)


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    # Test every row of every model, not only the rows this build wrote (weekly; a full
    # refresh always does).
    test_all_rows: bool = False


class WarehouseTranslator(DagsterDbtTranslator):
    LAYERS = ("staging", "intermediate", "marts", "audit")

    def get_group_name(self, dbt_resource_props: dict) -> str | None:
        path = Path(dbt_resource_props.get("original_file_path", ""))
        parts = path.parts
        if len(parts) > 1 and parts[0] == "models":
            return parts[1]
        return "seeds" if dbt_resource_props.get("resource_type") == "seed" else None

    def get_asset_key(self, dbt_resource_props: dict) -> dg.AssetKey:
        """<layer>/<model>: the layer is the model's folder (an intermediate model is keyed as
        intermediate, though it lives in the staging schema); sources keep their own keys."""
        if dbt_resource_props.get("resource_type") == "model":
            layer = self.get_group_name(dbt_resource_props)
            if layer in self.LAYERS:
                return dg.AssetKey([layer, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_description(self, dbt_resource_props: dict) -> str:
        # The model's documentation, without the raw SQL dagster-dbt appends by default.
        return dbt_resource_props.get("description") or dbt_resource_props["name"]


def is_full_refresh(run: dg.DagsterRun) -> bool:
    """Whether the run's dbt build is a full refresh, as its run config says."""
    config = run.run_config.get("ops", {}).get("dbt_models", {}).get("config", {})
    return bool(config.get("full_refresh", False))


def dbt_build_args(config: DbtBuildConfig) -> list[str]:
    """dbt's arguments for the daily build; pure, unit-tested. Unit tests check the models'
    logic on fixtures, not the day's data: the test suite runs them, the daily build does not."""
    args = ["build", "--exclude", "resource_type:unit_test"]
    if config.test_all_rows:
        args += ["--vars", '{"test_all_rows": true}']
    return [*args, "--full-refresh"] if config.full_refresh else args


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(),
)
def dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    build_lock: BuildLockResource,
    config: DbtBuildConfig,
) -> Iterator:
    """Every dbt model, seed and test, built by one `dbt build` over the loads committed when
    it starts (see macros/build_window.sql)."""
    paths = warehouse.paths()
    paths.dbt_target.mkdir(parents=True, exist_ok=True)
    invocation = dbt.cli(dbt_build_args(config), context=context, target_path=paths.dbt_target)
    build_lock.record_child(invocation.process.pid)
    for event in invocation.stream():
        yield event
        if isinstance(event, dg.Output):
            # The fault suite's points inside dbt: just after each model is built.
            # (the output is named <layer>__<model>, and model names hold "__" themselves)
            reached(f"build:dbt:{event.output_name.split('__', 1)[-1]}")
    build_lock.record_child(None)


class WarehouseDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without two costs this project does not need: it asks the dbt
    executable for its version (a second dbt start-up) and builds an in-process dbt adapter
    before dbt starts (about 6 s), which only serves fetching column metadata."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_resource() -> DbtCliResource:
    return WarehouseDbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(DBT_PROFILES_DIR),
        dbt_executable=dbt_child_executable(),
    )
