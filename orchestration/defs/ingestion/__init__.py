import dagster as dg

from .assets import land_inbox_asset

defs = dg.Definitions(assets=[land_inbox_asset])
