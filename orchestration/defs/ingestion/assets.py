import dagster as dg

from loaders.compaction import compact_landing
from loaders.faults import reached
from loaders.inbox import land_inbox
from loaders.load import LoadResult
from orchestration.resources import BuildLockResource, WarehouseResource
from orchestration.settings import settings

# The dbt sources of the landing zone; dagster-dbt maps source('landing', x) to these keys.
LANDING_KEYS = [
    dg.AssetKey(["landing", name]) for name in ("events", "quarantine", "conflicts", "audit")
]


MIB = 1024 * 1024

# One line per file landed or left waiting; the command line prints it.
LANDING_REPORT = "report"


def _totals(results: list[LoadResult]) -> dict[str, int]:
    return {
        "files_landed": sum(not r.skipped_as_already_loaded for r in results),
        "files_skipped_as_loaded": sum(r.skipped_as_already_loaded for r in results),
        "records_read": sum(r.records_read for r in results),
        "records_accepted": sum(r.records_accepted for r in results),
        "records_duplicate": sum(r.records_duplicate for r in results),
        "records_conflicting": sum(r.records_conflicting for r in results),
        "records_quarantined": sum(r.records_quarantined for r in results),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name="ingestion",
            kinds={"parquet"},
            description=(
                "Landing zone Parquet written by the loaders: accepted events, quarantined "
                "records, conflicting duplicates and the per-file load audit."
            ),
        )
        for key in LANDING_KEYS
    ],
    name="land_inbox",
)
def land_inbox_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, build_lock: BuildLockResource
):
    """Land every complete file waiting in the inbox, then move it to the archive; files still
    being written stay for the next build."""
    lines: list[str] = []

    def report(line: str) -> None:
        context.log.info(line)
        lines.append(line)

    results = land_inbox(warehouse.paths(), settings.inbox_settle_seconds, report=report)
    # Under the build lock, before dbt reads the landing zone: see loaders.compaction.
    compactions = compact_landing(
        warehouse.paths(),
        report=report,
        small_load_bytes=int(settings.compact_small_load_mib * MIB),
        compacted_bytes=int(settings.compact_target_mib * MIB),
        min_run=settings.compact_min_loads,
    )
    reached("build:landed")
    metadata = {
        **_totals(results),
        "loads_compacted": sum(compaction.loads for compaction in compactions),
        LANDING_REPORT: dg.MetadataValue.text("\n".join(lines)),
    }
    for key in LANDING_KEYS:
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
