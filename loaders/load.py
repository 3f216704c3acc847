"""Load one file into the landing zone: read, validate, deduplicate, write, commit, audit."""

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from queue import Queue

import duckdb
import pyarrow as pa

from . import landing
from .faults import reached
from .paths import WarehousePaths
from .readers import detect_format, read_records
from .schema import AUDIT_SCHEMA, DUCKDB_TYPES
from .validation import classify_sql, register_functions

LOAD_STEPS = ("read", "validated", "events_written", "quarantine_written", "audit_written")
SCRATCH_MEMORY_LIMIT = "1GB"
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


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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
    """Load files in order, each committed on its own, yielding each file's result.

    The batch holds the load lock throughout, so the event ids of earlier loads are read once
    and then kept up to date in memory: deduplicating the n-th file does not rescan the n - 1
    loads before it.
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
            for path in files:
                yield _load_one(path, paths, batch, progress)
        finally:
            batch.close()


class _LoadBatch:
    """The scratch DuckDB connection of a batch, and the event ids of every committed load
    (read from the landing zone on first use, then extended as the batch commits)."""

    def __init__(self, paths: WarehousePaths) -> None:
        self.paths = paths
        self.con = _scratch_connection(paths)
        self.loaded = False

    def landed_ids(self) -> str:
        """Event ids with the digest of their landed content (NULL for loads written before
        digests were kept: conflicts with those are not judged)."""
        if not self.loaded:
            self.con.execute(
                "create table landed_ids as select event_id, content_digest "
                f"from read_parquet({_sql_string(self.paths.events_glob())}, union_by_name = true)"
            )
            self.loaded = True
        return "landed_ids"

    def add_accepted(self, committed: Path) -> None:
        """Called once a load has committed: its accepted ids are landed from now on."""
        self.landed_ids()
        events_file = _sql_string(str(committed / "events.parquet"))
        self.con.execute(
            f"insert into landed_ids select event_id, content_digest from read_parquet({events_file})"
        )

    def close(self) -> None:
        self.con.close()


def _scratch_connection(paths: WarehousePaths) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"temp_directory": str(paths.scratch)})
    con.execute(f"set memory_limit = '{SCRATCH_MEMORY_LIMIT}'")
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    register_functions(con)
    return con


def _load_one(
    path: Path,
    paths: WarehousePaths,
    batch: _LoadBatch,
    progress: FileProgressCallback | None,
) -> LoadResult:
    file_format = detect_format(path)
    source_file = str(path.resolve())
    content_hash = file_sha256(path)
    previous = landing.previous_load_with_hash(batch.con, paths, content_hash)
    if previous is not None:
        return LoadResult(source_file, None, 0, 0, 0, 0, 0, True, previous)
    started_at = datetime.now(UTC).replace(tzinfo=None)
    try:
        _read(batch, path, file_format, progress)
        load_time = landing.next_load_time(paths)
        load_id = landing.new_load_id(load_time, content_hash)
        staged = landing.staging_folder(paths, load_id)
        counts = _land(batch, source_file, load_id, load_time, staged)
        reasons = tuple(
            (reason, int(count))
            for reason, count in batch.con.execute(
                "select reason, count(*) from classified where reason is not null "
                "group by reason order by count(*) desc, reason"
            ).fetchall()
        )
        reached("audit_written")
        _write_audit(
            batch.con, staged, load_id, source_file, file_format, content_hash,
            path.stat().st_size, counts, started_at, load_time,
        )
        committed = landing.commit(paths, staged)
        batch.add_accepted(committed)
    finally:
        batch.con.execute("drop view if exists accepted")
        for table in ("raw_records", "classified", "duplicates"):
            batch.con.execute(f"drop table if exists {table}")
    return LoadResult(source_file, load_id, *counts, quarantine_reasons=reasons)


def _read(
    batch: _LoadBatch,
    path: Path,
    file_format: str,
    progress: FileProgressCallback | None,
) -> None:
    """Store the file's records in ``raw_records``, in order."""
    con = batch.con
    # The reader thread parses the next batch while DuckDB stores this one (it releases
    # the GIL); classification then runs once over the stored table, in parallel.
    con.execute("set preserve_insertion_order = true")
    con.execute("create table raw_records (record_number bigint, raw varchar)")
    seen = 0
    for records in _prefetched(read_records(path, file_format)):
        con.register("incoming", records)
        con.execute("insert into raw_records select record_number, raw from incoming")
        con.unregister("incoming")
        seen += records.num_rows
        if progress:
            progress(path, seen)


def _land(
    batch: _LoadBatch,
    source_file: str,
    load_id: str,
    load_time: datetime,
    staged: Path,
) -> tuple[int, int, int, int, int]:
    """Classify ``raw_records``, deduplicate, and write the load's files into ``staged``:
    counts read, accepted, duplicate, quarantined and conflicting (of the duplicates)."""
    con = batch.con
    # Row order is carried by record_number from here on; dropping DuckDB's order
    # guarantee lets it classify and write Parquet on every core.
    con.execute("set preserve_insertion_order = false")
    con.execute(f"create table classified as {classify_sql(_timestamp_literal(load_time))}")
    con.execute("drop table raw_records")
    reached("read")

    # Duplicates are few, so only their record numbers (and whether their content disagrees
    # with the copy that won) are stored; accepted events are the valid records without one,
    # read straight from ``classified``.
    con.execute(
        f"""
        create table duplicates as
        with first_copies as (
            select event_id, min(record_number) as first_record_number, count(*) as copies
            from classified
            where reason is null
            group by event_id
        ),
        earlier_loads as (
            select landed.event_id, any_value(landed.content_digest) as landed_digest
            from {batch.landed_ids()} as landed
            semi join first_copies on landed.event_id = first_copies.event_id
            group by landed.event_id
        ),
        repeated as (
            select
                classified.record_number,
                classified.event_id,
                {CONTENT_DIGEST} as digest,
                first_copies.first_record_number,
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
                    else arg_min(digest, record_number)
                end as winning_digest
            from repeated
            group by event_id
        )
        select
            repeated.record_number,
            coalesce(repeated.digest <> winners.winning_digest, false) as is_conflicting
        from repeated
        inner join winners on repeated.event_id = winners.event_id
        where repeated.landed_before or repeated.record_number <> repeated.first_record_number
        """
    )
    con.execute(
        "create view accepted as "
        f"select *, {CONTENT_DIGEST} as content_digest from classified where reason is null "
        "and record_number not in (select record_number from duplicates)"
    )
    reached("validated")
    load_columns = (
        f"{_sql_string(load_id)} as load_id, "
        f"{_timestamp_literal(load_time)} as loaded_at, "
        f"{_sql_string(source_file)} as source_file"
    )
    events_file = _sql_string(str(staged / "events.parquet"))
    con.execute(
        f"""
        copy (
            select
                event_id, session_id, user_id, event_type, event_timestamp, channel,
                properties, {load_columns}, record_number, content_digest
            from accepted
        ) to {events_file} (format parquet, compression zstd)
        """
    )
    reached("events_written")
    quarantine_file = _sql_string(str(staged / "quarantine.parquet"))
    con.execute(
        f"""
        copy (
            select
                {_sql_string(load_id)} as load_id,
                {_sql_string(source_file)} as source_file,
                record_number,
                reason,
                raw as raw_record,
                {_timestamp_literal(load_time)} as loaded_at
            from classified
            where reason is not null
        ) to {quarantine_file} (format parquet, compression zstd)
        """
    )
    reached("quarantine_written")
    conflicts_file = _sql_string(str(staged / "conflicts.parquet"))
    con.execute(
        f"""
        copy (
            select
                {_sql_string(load_id)} as load_id,
                {_sql_string(source_file)} as source_file,
                classified.record_number,
                classified.event_id,
                classified.session_id,
                classified.user_id,
                classified.event_type,
                classified.event_timestamp,
                classified.channel,
                classified.properties,
                {_timestamp_literal(load_time)} as loaded_at
            from classified
            semi join duplicates
                on classified.record_number = duplicates.record_number and duplicates.is_conflicting
        ) to {conflicts_file} (format parquet, compression zstd)
        """
    )
    read, quarantined, duplicate, conflicting = con.execute(
        "select count(*), count(*) filter (where reason is not null), "
        "(select count(*) from duplicates), "
        "(select count(*) from duplicates where is_conflicting) from classified"
    ).fetchone()
    accepted = read - quarantined - duplicate
    return int(read), int(accepted), int(duplicate), int(quarantined), int(conflicting)


def _write_audit(
    con: duckdb.DuckDBPyConnection,
    staged: Path,
    load_id: str,
    source_file: str,
    file_format: str,
    content_hash: str,
    file_bytes: int,
    counts: tuple[int, int, int, int, int],
    started_at: datetime,
    load_time: datetime,
) -> None:
    read, accepted, duplicate, quarantined, conflicting = counts
    row = {
        "load_id": load_id,
        "source_file": source_file,
        "file_format": file_format,
        "file_sha256": content_hash,
        "file_bytes": file_bytes,
        "records_read": read,
        "records_accepted": accepted,
        "records_duplicate": duplicate,
        "records_quarantined": quarantined,
        "records_conflicting": conflicting,
        "started_at": started_at,
        "loaded_at": load_time,
    }
    # Written by DuckDB: building the row with pyarrow would import pandas, a third of a
    # second per load. A VALUES list keeps the columns nullable, as in every other load.
    values = ", ".join(f"cast(? as {DUCKDB_TYPES[field.type]})" for field in AUDIT_SCHEMA)
    names = ", ".join(field.name for field in AUDIT_SCHEMA)
    audit_file = _sql_string(str(staged / "audit.parquet"))
    con.execute(
        f"copy (select * from (values ({values})) as audit_row({names})) "
        f"to {audit_file} (format parquet)",
        [row[field.name] for field in AUDIT_SCHEMA],
    )
