"""One build at a time: DuckDB allows a single writer per file."""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from loaders.paths import WarehousePaths


class BuildInProgressError(RuntimeError):
    """Another process is building this warehouse."""


@contextmanager
def exclusive_build_lock(paths: WarehousePaths, wait_seconds: float = 0.0) -> Iterator[None]:
    paths.home.mkdir(parents=True, exist_ok=True)
    lock_path = paths.home / ".build.lock"
    with lock_path.open("a+") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown process"
                    raise BuildInProgressError(
                        f"another build is writing {paths.database} ({holder}); "
                        f"waited {wait_seconds:g} s. Try again when it has finished."
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
