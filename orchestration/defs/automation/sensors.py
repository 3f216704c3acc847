import hashlib

import dagster as dg

from loaders.inbox import scan_inbox
from orchestration.resources import WarehouseResource
from orchestration.settings import settings

from .jobs import daily_build_job


def inbox_run_key(names_and_sizes: list[tuple[str, int]]) -> str:
    """One run per distinct set of waiting files, so a slow build is not requested twice."""
    digest = hashlib.sha256(repr(sorted(names_and_sizes)).encode()).hexdigest()
    return f"inbox-{digest[:16]}"


@dg.sensor(
    name="inbox_sensor",
    job=daily_build_job,
    minimum_interval_seconds=settings.inbox_interval_seconds,
    description="Starts the build when complete files wait in the inbox.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def inbox_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    inbox = warehouse.paths().inbox
    complete, still_written = scan_inbox(warehouse.paths(), settings.inbox_settle_seconds)
    if not complete:
        if still_written:
            return dg.SkipReason(f"{len(still_written)} files in the inbox are not complete yet")
        return dg.SkipReason("the inbox is empty")
    listing = [(str(path.relative_to(inbox)), path.stat().st_size) for path in complete]
    return dg.RunRequest(
        run_key=inbox_run_key(listing),
        tags={"trigger": "inbox", "files": str(len(listing))},
    )
