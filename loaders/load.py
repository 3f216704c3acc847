"""Load files into the landing zone: read, validate, deduplicate, write, commit, audit."""

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from queue import Queue

import duckdb
import numpy as np
import pyarrow as pa

from . import landing
from .event_keys import LANDED_KEYS, LandedKeys, event_key_columns, write_event_keys
from .faults import reached
from .paths import WarehousePaths, sql_string
from .readers import detect_format, read_records
from .schema import AUDIT_SCHEMA, DUCKDB_TYPES
from .validation import classify_sql, register_functions

LOAD_STEPS = ("read", "validated", "events_written", "quarantine_written", "audit_written")
SCRATCH_MEMORY_LIMIT = "1GB"
STORE_BYTES = 16 * 1024 * 1024
# A group of files is validated as one table and committed in one step: enough input to keep
# every core busy and to spread the fixed cost of a commit, little enough to stay in memory.
GROUP_BYTES = 64 * 1024 * 1024
GROUP_FILES = 500
# Row groups smaller than DuckDB's default (122,880 rows) let a group's events be written on
# every core: 216k events took 290 ms in two groups, 185 ms in five.
EVENTS_ROW_GROUP_ROWS = 50_000
# zstd's fastest level: the landed events come out the same size as at its default level
# (1.2M events: 39 MB either way), written in 0.61 s instead of 0.71 s.
EVENTS_COMPRESSION = "compression zstd, compression_level 1"
# What "the same event" means for a repeated event_id: every field the marts read.
CONTENT_DIGEST = "hash(session_id, user_id, event_type, event_timestamp, channel, properties)"

ProgressCallback = Callable[[int], None]
FileProgressCallback = Callable[[Path, int], None]


@dataclass(frozen=True)
class LoadResult:
    source_file: str
    load_id: str | None
    records_read: int
    records_accepted: int
    records_duplicate: int
    records_quarantined: int
    records_conflicting: int = 0
    skipped_as_already_loaded: bool = False
    previous_load_id: str | None = None
    quarantine_reasons: tuple[tuple[str, int], ...] = ()

    def summary(self) -> str:
        if self.skipped_as_already_loaded:
            return (
                f"{self.source_file}: skipped, identical content already loaded "
                f"(load {self.previous_load_id})"
            )
        conflicting = f" ({self.records_conflicting:,} conflicting)" if self.records_conflicting else ""
        reasons = ""
        if self.quarantine_reasons:
            counted = ", ".join(f"{reason} {count:,}" for reason, count in self.quarantine_reasons)
            reasons = f" ({counted}; the records are in audit.quarantined_events, load {self.load_id})"
        return (
            f"{self.source_file}: read {self.records_read:,}, accepted {self.records_accepted:,}, "
            f"duplicate {self.records_duplicate:,}{conflicting}, "
            f"quarantined {self.records_quarantined:,}{reasons}"
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _prefetched(batches: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """Read ahead in a thread; errors in the reader surface here, in the caller."""
    queue: Queue = Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for batch in batches:
                queue.put(batch)
        except BaseException as error:  # handed over to the consuming thread
            queue.put(error)
        queue.put(done)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    while (item := queue.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
    worker.join()


def _timestamp_literal(value: datetime) -> str:
    return f"timestamp '{value.isoformat(sep=' ')}'"


def load_file(
    path: Path,
    paths: WarehousePaths | None = None,
    progress: ProgressCallback | None = None,
) -> LoadResult:
    per_file = (lambda _path, records: progress(records)) if progress else None
    (result,) = load_files([path], paths, progress=per_file)
    return result


def load_files(
    files: Iterable[Path],
    paths: WarehousePaths | None = None,
    progress: FileProgressCallback | None = None,
) -> Iterator[LoadResult]:
    """Load files in order, yielding each file's result once it is committed.

    Files are taken in groups of consecutive files (up to ``GROUP_BYTES`` of input or
    ``GROUP_FILES`` files): a group is validated and deduplicated as one table, on every core,
    and committed in one step, with one audit row per file. Loading small files one by one
    would spend most of its time on per-file overhead. A file that cannot be read ends its
    group: the files before it commit, then its error is raised.

    The batch holds the load lock throughout, so the event keys of earlier loads are read once
    and then kept up to date in memory: deduplicating the n-th group does not rescan the loads
    before it.
    """
    paths = paths or WarehousePaths.from_env()
    files = [Path(path) for path in files]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    with landing.load_lock(paths):
        landing.remove_incomplete_loads(paths)
        landing.ensure_landing(paths)
        batch = _LoadBatch(paths)
        try:
            for group in _groups(files):
                yield from _load_group(group, paths, batch, progress)
            batch.finish()
        finally:
            batch.close()


def _groups(files: list[Path]) -> Iterator[list[Path]]:
    group: list[Path] = []
    group_bytes = 0
    for path in files:
        size = path.stat().st_size
        if group and (group_bytes + size > GROUP_BYTES or len(group) == GROUP_FILES):
            yield group
            group, group_bytes = [], 0
        group.append(path)
        group_bytes += size
    if group:
        yield group


class _LoadBatch:
    """The scratch DuckDB connection of a batch, and the event keys of every committed load
    (the key index with the keys of the loads it lacks, then extended as the batch commits)."""

    def __init__(self, paths: WarehousePaths) -> None:
        self.paths = paths
        self.con = _scratch_connection(paths)
        self._reader = ThreadPoolExecutor(max_workers=1)
        self.hashing = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
        self._keys: Future[LandedKeys] | None = None

    def start_reading_landed_keys(self) -> Future[LandedKeys]:
        """Open the landed keys in the background: reading and classifying a group leaves a
        core free for it. A batch of files that were all loaded before never opens them."""
        if self._keys is None:
            self._keys = self._reader.submit(self._open_landed_keys, self.con.cursor())
        return self._keys

    def _open_landed_keys(self, con: duckdb.DuckDBPyConnection) -> LandedKeys:
        try:
            keys = LandedKeys(con, self.paths)
            keys.preload(con)
            return keys
        finally:
            con.close()

    def landed_keys(self) -> str:
        """The keys of every landed event, with the digest of its content (NULL for loads
        written before digests were kept: conflicts with those are not judged)."""
        self.start_reading_landed_keys().result()
        return LANDED_KEYS

    def add_accepted(self, committed: Path) -> None:
        """Called once a load has committed: its accepted events are landed from now on."""
        self.start_reading_landed_keys().result().add_committed_load(self.con, committed)

    def finish(self) -> None:
        """After the batch's last commit: merge its keys into the index when that is due."""
        if self._keys is not None:
            reached("committed")
            self._keys.result().merge_if_due(self.con)

    def close(self) -> None:
        # A failed group may leave the keys still being read: wait, then close.
        if self._keys is not None:
            self._keys.exception()
        self._reader.shutdown()
        self.hashing.shutdown()
        self.con.close()


def _scratch_connection(paths: WarehousePaths) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"temp_directory": str(paths.scratch)})
    con.execute(f"set memory_limit = '{SCRATCH_MEMORY_LIMIT}'")
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    register_functions(con)
    return con


@dataclass
class _GroupFile:
    """A file of a group that is loaded (not skipped as already loaded)."""

    file_number: int
    path: Path
    file_format: str
    content_hash: str
    source_file: str
    started_at: datetime | None = None
    stored_records: int = 0
    load_id: str = ""


class _ReadFailure(Exception):
    def __init__(self, file_number: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.file_number = file_number
        self.error = error


def _load_group(
    group: list[Path],
    paths: WarehousePaths,
    batch: _LoadBatch,
    progress: FileProgressCallback | None,
) -> Iterator[LoadResult]:
    con = batch.con
    # hashlib lets go of the GIL on large reads: the group's files are hashed on every core
    hashes = list(batch.hashing.map(file_sha256, group))
    previous = landing.previous_loads_with_hashes(con, paths, hashes)
    to_load: list[_GroupFile] = []
    first_copy: dict[str, _GroupFile] = {}
    for number, (path, content_hash) in enumerate(zip(group, hashes, strict=True)):
        if content_hash not in previous and content_hash not in first_copy:
            item = _GroupFile(number, path, detect_format(path), content_hash, str(path.resolve()))
            first_copy[content_hash] = item
            to_load.append(item)
    failure: _ReadFailure | None = None
    counts: dict[int, tuple[int, ...]] = {}
    reasons: dict[int, tuple[tuple[str, int], ...]] = {}
    if to_load:
        batch.start_reading_landed_keys()
    try:
        failure = _read(batch, to_load, progress)
        if failure is not None:
            to_load = [item for item in to_load if item.file_number < failure.file_number]
        if to_load:
            load_time = landing.next_load_time(paths)
            for item in to_load:
                item.load_id = landing.new_load_id(load_time, item.content_hash)
            con.execute(
                "create table group_files (file_number integer, load_id varchar, source_file varchar)"
            )
            con.executemany(
                "insert into group_files values (?, ?, ?)",
                [[item.file_number, item.load_id, item.source_file] for item in to_load],
            )
            staged = landing.staging_folder(paths, to_load[0].load_id)
            counts = _land(batch, load_time, staged)
            for number, reason, count in con.execute(
                "select file_number, reason, count(*) from classified where reason is not null "
                "group by all order by file_number, count(*) desc, reason"
            ).fetchall():
                reasons[number] = (*reasons.get(number, ()), (reason, int(count)))
            reached("audit_written")
            _write_audit(con, staged, to_load, counts, load_time)
            committed = landing.commit(paths, staged)
            batch.add_accepted(committed)
    finally:
        con.execute("drop view if exists accepted")
        for table in ("raw_records", "classified", "duplicates", "group_files"):
            con.execute(f"drop table if exists {table}")
    loaded = {item.file_number: item for item in to_load}
    for number, (path, content_hash) in enumerate(zip(group, hashes, strict=True)):
        if failure is not None and number >= failure.file_number:
            raise failure.error
        source_file = str(path.resolve())
        if number in loaded:
            item = loaded[number]
            yield LoadResult(
                source_file, item.load_id, *counts[number], quarantine_reasons=reasons.get(number, ())
            )
        else:
            earlier = previous.get(content_hash) or first_copy[content_hash].load_id
            yield LoadResult(source_file, None, 0, 0, 0, 0, 0, True, earlier)


def _group_batches(to_load: list[_GroupFile]) -> Iterator[tuple[int, pa.Table | None]]:
    """Every file's record batches in turn, each file opened by a ``None`` batch."""
    for item in to_load:
        yield item.file_number, None
        try:
            for records in read_records(item.path, item.file_format):
                yield item.file_number, records
        except Exception as error:
            raise _ReadFailure(item.file_number, error) from error


def _read(
    batch: _LoadBatch,
    to_load: list[_GroupFile],
    progress: FileProgressCallback | None,
) -> _ReadFailure | None:
    """Store the group's records in ``raw_records``, each file's in order. A file that cannot
    be read is dropped from the table, with the files after it, and its failure returned."""
    con = batch.con
    # The reader thread parses the next batch, of this file or the next, while DuckDB stores
    # what came before (it releases the GIL); classification then runs once over the stored
    # table. Batches are stored STORE_BYTES at a time, since each insert has a fixed cost
    # (30 files of 2 MB: 150 ms one by one, 57 ms as one insert).
    con.execute("create table raw_records (file_number integer, record_number bigint, raw varchar)")
    by_number = {item.file_number: item for item in to_load}
    unstored: list[tuple[int, pa.Table]] = []
    unstored_bytes = 0

    def store() -> None:
        nonlocal unstored_bytes
        if not unstored:
            return
        numbered = pa.concat_tables(
            [
                records.select(["record_number", "raw"]).add_column(
                    0, "file_number", _filled_int32(number, records.num_rows)
                )
                for number, records in unstored
            ],
            promote_options="permissive",
        )
        con.register("incoming", numbered)
        con.execute("insert into raw_records select file_number, record_number, raw from incoming")
        con.unregister("incoming")
        for number, records in unstored:
            item = by_number[number]
            item.stored_records += records.num_rows
            if progress:
                progress(item.path, item.stored_records)
        unstored.clear()
        unstored_bytes = 0

    try:
        for number, records in _prefetched(_group_batches(to_load)):
            if records is None:
                by_number[number].started_at = datetime.now(UTC).replace(tzinfo=None)
                continue
            unstored.append((number, records))
            unstored_bytes += records.nbytes
            if unstored_bytes >= STORE_BYTES:
                store()
        store()
    except _ReadFailure as failure:
        # the files before the failed one are loaded: what was read of them is stored
        unstored[:] = [(number, records) for number, records in unstored if number < failure.file_number]
        store()
        con.execute("delete from raw_records where file_number >= ?", [failure.file_number])
        return failure
    return None


def _filled_int32(value: int, length: int) -> pa.Array:
    # from a buffer: converting Python or NumPy values makes pyarrow import pandas
    return pa.Array.from_buffers(
        pa.int32(), length, [None, pa.py_buffer(np.full(length, value, np.int32))]
    )


def _land(batch: _LoadBatch, load_time: datetime, staged: Path) -> dict[int, tuple[int, ...]]:
    """Classify ``raw_records``, deduplicate, and write the group's files into ``staged``:
    each file's counts read, accepted, duplicate, quarantined and conflicting (of the
    duplicates). A record repeated within the group keeps its first copy, in file order."""
    con = batch.con
    # Row order is carried by (file_number, record_number) from here on; dropping DuckDB's
    # order guarantee lets it classify and write Parquet on every core.
    con.execute("set preserve_insertion_order = false")
    con.execute(f"create table classified as {classify_sql(_timestamp_literal(load_time))}")
    con.execute("drop table raw_records")
    reached("read")

    # Duplicates are few, so only their positions (and whether their content disagrees with
    # the copy that won) are stored; accepted events are the valid records without one, read
    # straight from ``classified``.
    con.execute(
        f"""
        create table duplicates as
        with valid as (
            select (file_number, record_number) as position, event_id
            from classified
            where reason is null
        ),
        first_copies as (
            select event_id, min(position) as first_position, count(*) as copies
            from valid
            group by event_id
        ),
        keyed as (
            select event_id, {event_key_columns("event_id")}
            from first_copies
        ),
        landed_candidates as materialized (
            -- A semi join on one key column first: it keeps the hash table on the group's side
            -- and runs in a third of the time of the two-column join over every landed key.
            -- Materialized, or DuckDB folds it into that join (240k keys against 16M landed:
            -- 190 ms as one join, 55 ms in two steps).
            select landed.*
            from {batch.landed_keys()} as landed
            semi join keyed on landed.event_key_high = keyed.event_key_high
        ),
        earlier_loads as (
            select keyed.event_id, any_value(landed.content_digest) as landed_digest
            from keyed
            inner join landed_candidates as landed
                on keyed.event_key_high = landed.event_key_high
                and keyed.event_key_low = landed.event_key_low
            group by keyed.event_id
        ),
        repeated as (
            select
                classified.file_number,
                classified.record_number,
                (classified.file_number, classified.record_number) as position,
                classified.event_id,
                {CONTENT_DIGEST} as digest,
                first_copies.first_position,
                earlier_loads.event_id is not null as landed_before,
                earlier_loads.landed_digest
            from classified
            inner join first_copies on classified.event_id = first_copies.event_id
            left join earlier_loads on classified.event_id = earlier_loads.event_id
            where
                classified.reason is null
                and (first_copies.copies > 1 or earlier_loads.event_id is not null)
        ),
        winners as (
            select
                event_id,
                case
                    when bool_or(landed_before) then any_value(landed_digest)
                    else arg_min(digest, position)
                end as winning_digest
            from repeated
            group by event_id
        )
        select
            repeated.file_number,
            repeated.record_number,
            coalesce(repeated.digest <> winners.winning_digest, false) as is_conflicting
        from repeated
        inner join winners on repeated.event_id = winners.event_id
        where repeated.landed_before or repeated.position <> repeated.first_position
        """
    )
    con.execute(
        "create view accepted as "
        f"select classified.*, {CONTENT_DIGEST} as content_digest from classified "
        "anti join duplicates using (file_number, record_number) where classified.reason is null"
    )
    reached("validated")
    loaded_at = _timestamp_literal(load_time)
    events_file = sql_string(str(staged / "events.parquet"))
    con.execute(
        f"""
        copy (
            select
                accepted.event_id, accepted.session_id, accepted.user_id, accepted.event_type,
                accepted.event_timestamp, accepted.channel, accepted.properties,
                group_files.load_id, {loaded_at} as loaded_at, group_files.source_file,
                accepted.record_number, accepted.content_digest
            from accepted
            inner join group_files using (file_number)
        ) to {events_file} (format parquet, {EVENTS_COMPRESSION}, row_group_size {EVENTS_ROW_GROUP_ROWS})
        """
    )
    write_event_keys(con, staged / "events.parquet", staged / "event_keys.parquet")
    reached("events_written")
    quarantine_file = sql_string(str(staged / "quarantine.parquet"))
    con.execute(
        f"""
        copy (
            select
                group_files.load_id,
                group_files.source_file,
                classified.record_number,
                classified.reason,
                classified.raw as raw_record,
                {loaded_at} as loaded_at
            from classified
            inner join group_files using (file_number)
            where classified.reason is not null
        ) to {quarantine_file} (format parquet, compression zstd)
        """
    )
    reached("quarantine_written")
    conflicts_file = sql_string(str(staged / "conflicts.parquet"))
    con.execute(
        f"""
        copy (
            select
                group_files.load_id,
                group_files.source_file,
                classified.record_number,
                classified.event_id,
                classified.session_id,
                classified.user_id,
                classified.event_type,
                classified.event_timestamp,
                classified.channel,
                classified.properties,
                {loaded_at} as loaded_at
            from classified
            inner join group_files using (file_number)
            semi join duplicates
                on classified.file_number = duplicates.file_number
                and classified.record_number = duplicates.record_number
                and duplicates.is_conflicting
        ) to {conflicts_file} (format parquet, compression zstd)
        """
    )
    counts = {}
    for number, read, quarantined, duplicate, conflicting in con.execute(
        """
        with per_file_duplicates as (
            select file_number, count(*) as duplicate, count(*) filter (where is_conflicting) as conflicting
            from duplicates
            group by file_number
        ),
        per_file_records as (
            select file_number, count(*) as read, count(*) filter (where reason is not null) as quarantined
            from classified
            group by file_number
        )
        select
            group_files.file_number,
            coalesce(per_file_records.read, 0),
            coalesce(per_file_records.quarantined, 0),
            coalesce(per_file_duplicates.duplicate, 0),
            coalesce(per_file_duplicates.conflicting, 0)
        from group_files
        left join per_file_records using (file_number)
        left join per_file_duplicates using (file_number)
        """
    ).fetchall():
        accepted = read - quarantined - duplicate
        counts[number] = (int(read), int(accepted), int(duplicate), int(quarantined), int(conflicting))
    return counts


def _write_audit(
    con: duckdb.DuckDBPyConnection,
    staged: Path,
    loaded: list[_GroupFile],
    counts: dict[int, tuple[int, ...]],
    load_time: datetime,
) -> None:
    """One audit row per file of the group."""
    rows = []
    for item in loaded:
        read, accepted, duplicate, quarantined, conflicting = counts[item.file_number]
        row = {
            "load_id": item.load_id,
            "source_file": item.source_file,
            "file_format": item.file_format,
            "file_sha256": item.content_hash,
            "file_bytes": item.path.stat().st_size,
            "records_read": read,
            "records_accepted": accepted,
            "records_duplicate": duplicate,
            "records_quarantined": quarantined,
            "records_conflicting": conflicting,
            "started_at": item.started_at,
            "loaded_at": load_time,
        }
        rows.extend(row[field.name] for field in AUDIT_SCHEMA)
    # Written by DuckDB: building the rows with pyarrow would import pandas, a third of a
    # second per load. A VALUES list keeps the columns nullable, as in every other load.
    values = "(" + ", ".join(f"cast(? as {DUCKDB_TYPES[field.type]})" for field in AUDIT_SCHEMA) + ")"
    names = ", ".join(field.name for field in AUDIT_SCHEMA)
    audit_file = sql_string(str(staged / "audit.parquet"))
    con.execute(
        f"copy (select * from (values {', '.join([values] * len(loaded))}) as audit_row({names})) "
        f"to {audit_file} (format parquet)",
        rows,
    )
