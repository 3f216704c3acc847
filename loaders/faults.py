"""Named points where the fault-injection suite stops a load or a build.

``CHAT_ANALYTICS_FAULT_AT=<point>`` kills the process at that point, as ``kill -9`` would;
``CHAT_ANALYTICS_FAULT_AT=pause@<point>`` creates the file named by
``CHAT_ANALYTICS_FAULT_PAUSE_FILE`` there and waits until someone removes it, so that a test
can act (commit a load, start a second build) at a known point. Unset, every point is a no-op.
"""

import os
import signal
import time
from pathlib import Path

FAULT_ENV = "CHAT_ANALYTICS_FAULT_AT"
PAUSE_FILE_ENV = "CHAT_ANALYTICS_FAULT_PAUSE_FILE"
MAX_PAUSE_SECONDS = 300.0


def reached(point: str) -> None:
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    action, _, target = wanted.rpartition("@")
    if target != point:
        return
    if action == "pause":
        _pause(Path(os.environ[PAUSE_FILE_ENV]))
    else:
        os.kill(os.getpid(), signal.SIGKILL)


def _pause(marker: Path) -> None:
    marker.write_text(str(os.getpid()))
    deadline = time.monotonic() + MAX_PAUSE_SECONDS
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
