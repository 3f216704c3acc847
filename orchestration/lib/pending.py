"""Whether a build has anything to do: new complete files in the inbox, loads committed since
the published snapshot's bound, or a changed dbt project. Free of Dagster, so that asking
costs milliseconds."""

from loaders.inbox import scan_inbox, waiting_note
from loaders.landing import latest_load_time
from loaders.paths import WarehousePaths
from orchestration.lib.locks import lock_path
from orchestration.project import project_digest
from serving.publish import SnapshotUnavailableError, latest_published_build


def reason_to_skip(paths: WarehousePaths, settle_seconds: float) -> str | None:
    """Why a build would change nothing (a sentence for the user), or None when it would."""
    lock = lock_path(paths)
    if lock.exists() and lock.read_text().strip():
        return None  # a build runs (it will say so) or died (the next one recovers)
    complete, waiting = scan_inbox(paths, settle_seconds)
    if complete:
        return None
    # A file still being written is news the user needs even when there is nothing to build.
    notes = "".join(f"\n    {waiting_note(paths, item)}" for item in waiting)
    latest = latest_load_time(paths)
    if latest is None:
        return (
            f"nothing has been loaded yet: put event files into {paths.inbox} (or run "
            "`chat-analytics load PATH`), then build again" + notes
        )
    try:
        published = latest_published_build(paths)
    except SnapshotUnavailableError:
        return None
    if published is None or published.landed_until is None:
        return None
    if latest > published.landed_until or published.project_digest != project_digest():
        return None
    return (
        f"nothing new since the build published at {published.published_at:%Y-%m-%d %H:%M:%S} UTC "
        f"(loads up to {published.landed_until:%Y-%m-%d %H:%M:%S} UTC, same dbt project): "
        "the published marts are current; --full-refresh rebuilds anyway" + notes
    )
