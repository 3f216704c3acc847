import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.project import dbt_executable

from .assets import dbt_models, dbt_project

defs = dg.Definitions(
    assets=[dbt_models],
    resources={"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())},
)
