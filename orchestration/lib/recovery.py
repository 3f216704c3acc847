"""What a killed build leaves behind, and how the next build clears it.

Called by the build that takes the lock after a holder died without releasing it. DuckDB
itself needs nothing: it rolls back the dead writer's open transaction when the file is next
opened, and the landing zone's unfinished loads are removed by the next load.
"""

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from loaders.paths import WarehousePaths

from .locks import Holder
from .warehouse_file import partial_compaction_files

CHILD_EXIT_TIMEOUT_SECONDS = 30.0


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    try:
        return state.read_text().split()[2] != "Z"  # a zombie writes nothing
    except (OSError, IndexError):
        return True


def stop_orphaned_children(dead: Holder) -> list[int]:
    """Kill the dead build's dbt process if it still runs, and wait until it is gone: it may
    still hold the DuckDB file open for writing. A pid that now belongs to another program is
    left alone."""
    stopped = []
    for pid in dead.child_pids:
        if not _alive(pid) or "dbt" not in _command_line(pid):
            continue
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + CHILD_EXIT_TIMEOUT_SECONDS
        while _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the killed build's dbt process {pid} does not exit")
            time.sleep(0.05)
        stopped.append(pid)
    return stopped


def remove_partial_snapshots(paths: WarehousePaths) -> list[str]:
    """Serving files a publish was writing when it died (and their write-ahead logs)."""
    removed = []
    if paths.serving.exists():
        for partial in sorted(paths.serving.glob(".analytics-*")):
            partial.unlink(missing_ok=True)
            removed.append(partial.name)
    return removed


def recover(
    paths: WarehousePaths,
    dead: Holder,
    fail_run: Callable[[str], bool],
) -> list[str]:
    """Clear what the dead holder left; returns one line per thing done, for the log."""
    done = [f"the previous build ({dead.describe()}) was killed; recovering"]
    for pid in stop_orphaned_children(dead):
        done.append(f"stopped its dbt process {pid}")
    if dead.run_id and fail_run(dead.run_id):
        done.append(f"marked Dagster run {dead.run_id} failed and freed its slots")
    for name in remove_partial_snapshots(paths):
        done.append(f"removed the unfinished snapshot {name}")
    for partial in partial_compaction_files(paths):
        partial.unlink()
        done.append(f"removed the unfinished rewrite of the warehouse file {partial.name}")
    return done
