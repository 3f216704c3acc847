import hashlib
import os

import dagster as dg

from orchestration.inbox import pending_files
from orchestration.resources import WarehouseResource

from .jobs import daily_build_job

INBOX_MIN_INTERVAL_SECONDS = int(os.environ.get("CHAT_ANALYTICS_INBOX_INTERVAL_SECONDS", "60"))


def inbox_run_key(names_and_sizes: list[tuple[str, int]]) -> str:
    """One run per distinct set of waiting files, so a slow build is not requested twice."""
    digest = hashlib.sha256(repr(sorted(names_and_sizes)).encode()).hexdigest()
    return f"inbox-{digest[:16]}"


@dg.sensor(
    name="inbox_sensor",
    job=daily_build_job,
    minimum_interval_seconds=INBOX_MIN_INTERVAL_SECONDS,
    description="Starts the build when complete files wait in the inbox.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def inbox_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    waiting = pending_files(warehouse.paths())
    if not waiting:
        return dg.SkipReason("the inbox is empty")
    listing = [(str(path.relative_to(warehouse.paths().inbox)), path.stat().st_size) for path in waiting]
    return dg.RunRequest(
        run_key=inbox_run_key(listing),
        tags={"trigger": "inbox", "files": str(len(listing))},
    )
