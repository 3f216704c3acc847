import dagster as dg

daily_build_job = dg.define_asset_job(
    name="daily_build",
    selection=dg.AssetSelection.all(),
    description=(
        "Land the inbox, build every dbt model with its tests, run every check, and publish "
        "the marts when no blocking check failed."
    ),
)
