"""The Dagster code location: the per-domain definitions merged into one."""

import dagster as dg

from orchestration.defs import automation, ingestion, publishing, quality, transformation
from orchestration.resources import BuildLockResource, WarehouseResource

defs = dg.Definitions.merge(
    ingestion.defs,
    transformation.defs,
    publishing.defs,
    quality.defs,
    automation.defs,
    dg.Definitions(
        resources={"warehouse": WarehouseResource(), "build_lock": BuildLockResource()},
        # One process runs the steps one after another: DuckDB allows a single writer.
        executor=dg.in_process_executor,
    ),
)
