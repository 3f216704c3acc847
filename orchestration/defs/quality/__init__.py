import dagster as dg

from . import checks

defs = dg.Definitions(asset_checks=dg.load_asset_checks_from_modules([checks]))
