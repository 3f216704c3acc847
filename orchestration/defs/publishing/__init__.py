import dagster as dg

from .assets import serving_marts

defs = dg.Definitions(assets=[serving_marts])
