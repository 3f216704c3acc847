"""One build at a time, end to end: an exclusive lock on ``$CHAT_ANALYTICS_HOME/.build.lock``.

The lock is an ``flock``, so the kernel releases it when its holder dies, however it dies. The
file also describes its holder (pid, start time, Dagster run, dbt child). A holder that finishes
cleanly empties the file; a description still there when the next build takes the lock is a
holder that was killed, and tells that build what to clean up.
"""

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from loaders.paths import WarehousePaths

BUILD_BUSY_EXIT_CODE = 75  # EX_TEMPFAIL: try again later


class BuildInProgressError(RuntimeError):
    """Another process holds the build lock of this warehouse."""


@dataclass
class Holder:
    pid: int
    started_at: str
    run_id: str | None = None
    child_pids: list[int] = field(default_factory=list)

    def describe(self) -> str:
        run = f", Dagster run {self.run_id}" if self.run_id else ""
        return f"pid {self.pid}, started {self.started_at}{run}"

    @classmethod
    def parse(cls, text: str) -> "Holder | None":
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                started_at=str(data["started_at"]),
                run_id=data.get("run_id"),
                child_pids=[int(pid) for pid in data.get("child_pids", [])],
            )
        except (ValueError, KeyError, TypeError):
            return None


class BuildLock:
    """The held lock. Re-entrant within a process: the command line takes it before it starts
    the Dagster run, and the run's resource takes it again without blocking on itself."""

    _held: dict[Path, "BuildLock"] = {}  # noqa: RUF012  one registry per process

    def __init__(self, path: Path, handle: IO[str], holder: Holder, dead: Holder | None) -> None:
        self.path = path
        self._handle = handle
        self.holder = holder
        self.dead_holder = dead
        self._depth = 1

    def update(self, *, run_id: str | None = None, child_pids: list[int] | None = None) -> None:
        if run_id is not None:
            self.holder.run_id = run_id
        if child_pids is not None:
            self.holder.child_pids = child_pids
        self._write()

    def _write(self) -> None:
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(asdict(self.holder)))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def release(self) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        del BuildLock._held[self.path]
        try:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.flush()
        finally:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


def lock_path(paths: WarehousePaths) -> Path:
    return paths.home / ".build.lock"


def acquire(paths: WarehousePaths, wait_seconds: float | None = 0.0) -> BuildLock:
    """Take the build lock, or raise BuildInProgressError naming the holder.

    ``wait_seconds`` 0 refuses at once; None waits as long as it takes.
    """
    path = lock_path(paths)
    held = BuildLock._held.get(path)
    if held is not None:
        held._depth += 1
        return held
    paths.home.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = Holder.parse(handle.read())
                    who = holder.describe() if holder else "a process that has not described itself yet"
                    waited = f" after waiting {wait_seconds:g} s" if wait_seconds else ""
                    raise BuildInProgressError(
                        f"another build of {paths.home} is running ({who}); refused{waited}. "
                        "Run again when it has finished, or pass --wait."
                    ) from None
                time.sleep(0.2)
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    dead = Holder.parse(handle.read())
    holder = Holder(pid=os.getpid(), started_at=f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    lock = BuildLock(path, handle, holder, dead)
    lock._write()
    BuildLock._held[path] = lock
    return lock


@contextmanager
def build_lock(paths: WarehousePaths, wait_seconds: float | None = 0.0) -> Iterator[BuildLock]:
    lock = acquire(paths, wait_seconds)
    try:
        yield lock
    finally:
        lock.release()


def held_lock(paths: WarehousePaths) -> BuildLock | None:
    """The lock this process holds on the warehouse, if any."""
    return BuildLock._held.get(lock_path(paths))
