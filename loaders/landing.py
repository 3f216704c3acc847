"""The landing zone's commit protocol.

A load writes its Parquet files (events, their keys, quarantine, conflicts, audit) into a private folder
under ``landing/_incomplete`` and then renames that folder into ``landing/loads`` in one step.
The rename is the commit: readers either see the whole load or none of it, and a load killed at
any earlier point leaves only an incomplete folder that the next load removes. One commit may
hold a group of files, each with its own load id and audit row; they share the load time, which
names the folder (after the first file's load id). Loads take an
exclusive file lock so that deduplication against earlier loads sees every committed load; they
never touch the DuckDB warehouse file, so building and BI reads never wait for them. A
compacted load (see ``compaction``) holds a span of load times and supersedes the loads in it.
"""

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .paths import WarehousePaths
from .schema import (
    AUDIT_SCHEMA,
    CONFLICT_SCHEMA,
    EVENT_KEY_SCHEMA,
    LANDED_EVENT_SCHEMA,
    QUARANTINE_SCHEMA,
)

EMPTY_LOAD_ID = "00000000T000000000000-empty"
COMPACTED = "compacted"
# The files of every load; readers glob each name across loads.
LOAD_FILES = {
    "events": LANDED_EVENT_SCHEMA,
    "event_keys": EVENT_KEY_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
    "conflicts": CONFLICT_SCHEMA,
    "audit": AUDIT_SCHEMA,
}


@contextmanager
def load_lock(paths: WarehousePaths) -> Iterator[None]:
    paths.landing.mkdir(parents=True, exist_ok=True)
    with paths.load_lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_landing(paths: WarehousePaths) -> None:
    """Create the layout, with one empty load so that readers' globs always match a file
    (a landing zone from an earlier version gets the files it lacks there)."""
    for folder in (paths.loads, paths.landing_tmp, paths.inbox, paths.archive, paths.scratch):
        folder.mkdir(parents=True, exist_ok=True)
    empty = paths.loads / EMPTY_LOAD_ID
    if empty.exists():
        for name, schema in LOAD_FILES.items():
            if not (empty / f"{name}.parquet").exists():
                _write_empty(empty / f"{name}.parquet", schema)
        return
    staging = paths.landing_tmp / EMPTY_LOAD_ID
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, schema in LOAD_FILES.items():
        _write_empty(staging / f"{name}.parquet", schema)
    fsync_folder(staging)
    os.rename(staging, empty)
    fsync_folder(paths.loads)


def _write_empty(path: Path, schema: pa.Schema) -> None:
    # Written aside and renamed: a reader never sees a half-written footer.
    partial = path.with_name(f".{path.name}")
    # from_batches, not schema.empty_table(): that one makes pyarrow import pandas.
    pq.write_table(pa.Table.from_batches([], schema=schema), partial)
    os.rename(partial, path)


def remove_incomplete_loads(paths: WarehousePaths) -> list[str]:
    """Remove what killed loads and compactions left behind: unfinished folders, and the
    loads a committed compaction holds but had not removed yet. Call only while holding the
    load lock."""
    removed = []
    if paths.landing_tmp.exists():
        for leftover in sorted(paths.landing_tmp.iterdir()):
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover.name)
    superseded = superseded_loads(paths)
    for folder in superseded:
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    if superseded:
        fsync_folder(paths.loads)
    return removed


def committed_load_ids(paths: WarehousePaths) -> list[str]:
    if not paths.loads.exists():
        return []
    return sorted(p.name for p in paths.loads.iterdir() if (p / "audit.parquet").exists())


def previous_loads_with_hashes(
    con: duckdb.DuckDBPyConnection, paths: WarehousePaths, file_hashes: list[str]
) -> dict[str, str]:
    """The first load of each content hash that was loaded before."""
    rows = con.execute(
        "select file_sha256, min(load_id) from read_parquet(?) "
        "where file_sha256 in (select unnest(?)) group by file_sha256",
        [paths.audit_glob(), file_hashes],
    ).fetchall()
    return dict(rows)


LOAD_TIME_FORMAT = "%Y%m%dT%H%M%S%f"


def load_time_of(load_id: str) -> datetime | None:
    """A load's commit time, from its id (None for the empty load)."""
    try:
        return datetime.strptime(load_id.split("-", 1)[0], LOAD_TIME_FORMAT)
    except ValueError:
        return None


def compacted_load_name(first: datetime, last: datetime) -> str:
    """A compacted load is named after its last load time, like a load, so that the latest
    load time still reads from the names alone; its first load time follows."""
    return f"{last.strftime(LOAD_TIME_FORMAT)}-{COMPACTED}-{first.strftime(LOAD_TIME_FORMAT)}"


def load_span(name: str) -> tuple[datetime, datetime] | None:
    """The first and last load time a load folder holds (one time for a load, a range for a
    compacted load); None for the empty load."""
    last = load_time_of(name)
    if last is None:
        return None
    kind, _, first = name.split("-", 1)[1].partition("-")
    if kind == COMPACTED:
        return datetime.strptime(first, LOAD_TIME_FORMAT), last
    return last, last


@dataclass(frozen=True)
class LandedLoad:
    folder: Path
    first: datetime
    last: datetime


def _spanned_loads(paths: WarehousePaths) -> list[LandedLoad]:
    if not paths.loads.exists():
        return []
    loads = []
    for folder in paths.loads.iterdir():
        if (span := load_span(folder.name)) is not None:
            loads.append(LandedLoad(folder, *span))
    return sorted(loads, key=lambda load: (load.first, load.last))


def _visible_and_superseded(paths: WarehousePaths) -> tuple[list[LandedLoad], list[LandedLoad]]:
    loads = _spanned_loads(paths)
    compacted = [load for load in loads if load.first != load.last]
    visible, superseded = [], []
    for load in loads:
        is_superseded = any(
            other.folder != load.folder and other.first <= load.first and load.last <= other.last
            for other in compacted
        )
        (superseded if is_superseded else visible).append(load)
    return visible, superseded


def visible_loads(paths: WarehousePaths) -> list[LandedLoad]:
    """The committed loads in load-time order, without the empty load and without the loads a
    compacted load holds: a compaction killed after its commit leaves both for a moment, and
    readers that take no lock read the compacted copy only."""
    return _visible_and_superseded(paths)[0]


def superseded_loads(paths: WarehousePaths) -> list[Path]:
    return [load.folder for load in _visible_and_superseded(paths)[1]]


def latest_load_time(paths: WarehousePaths) -> datetime | None:
    """The load time of the latest committed load, from the folder names alone."""
    if not paths.loads.exists():
        return None
    times = [load_time_of(entry.name) for entry in paths.loads.iterdir()]
    return max((t for t in times if t is not None), default=None)


def next_load_time(paths: WarehousePaths) -> datetime:
    """A load time later than every committed load's, so load time is a safe watermark."""
    now = datetime.now(UTC).replace(tzinfo=None)
    latest = latest_load_time(paths)
    if latest is not None and latest >= now:
        return latest + timedelta(microseconds=1)
    return now


def new_load_id(load_time: datetime, file_sha256: str) -> str:
    return load_time.strftime(LOAD_TIME_FORMAT) + "-" + file_sha256[:12]


def staging_folder(paths: WarehousePaths, load_id: str) -> Path:
    folder = paths.landing_tmp / load_id
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def commit(paths: WarehousePaths, staged: Path) -> Path:
    for child in staged.iterdir():
        with child.open("rb") as handle:
            os.fsync(handle.fileno())
    fsync_folder(staged)
    target = paths.loads / staged.name
    os.rename(staged, target)
    fsync_folder(paths.loads)
    return target


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
