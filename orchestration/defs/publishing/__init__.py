import dagster as dg

from .assets import html_report, serving_marts

defs = dg.Definitions(assets=[serving_marts, html_report])
