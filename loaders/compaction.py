"""Compaction of the landing zone: runs of small loads become one load folder.

The inbox sensor lands whatever arrived every minute, so a stream of events makes about 1,440
loads a day, each a folder of small Parquet files. Every reader of the landing zone opens
every folder's files (about 0.1 ms each per query), so a year of such loads would cost each
query of a build a minute whatever the build changes. Compaction rewrites a run of small
loads, in load-time order, as one folder that holds their rows unchanged: every event keeps
its load id, load time, source file and record number, every file keeps its audit row, so
deduplication, the audit and every incremental model read the same rows as before.

The commit is the rename of the compacted folder into ``landing/loads``, as for a load. Its
name carries the span of load times it holds (``<last>-compacted-<first>``): from then on the
loads inside that span are superseded, readers that take no lock skip them, and the next
holder of the load lock removes what a killed compaction had not removed yet. Compaction runs
in the build job only, under the build lock (no dbt reads the landing zone meanwhile) and the
load lock (no load commits or deduplicates meanwhile).
"""

import shutil
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from . import landing
from .event_keys import replace_loads_in_index
from .faults import reached
from .landing import LOAD_FILES, LandedLoad
from .load import EVENTS_COMPRESSION, EVENTS_ROW_GROUP_ROWS
from .paths import WarehousePaths, sql_string

# A load whose events file is under this size is small: a minute of a stream, or one file.
SMALL_LOAD_BYTES = 32 * 1024 * 1024
# A compacted folder is closed once its events reach this size (a day of a busy stream).
COMPACTED_BYTES = 128 * 1024 * 1024
# Fewer consecutive small loads are left as they are: rewriting them would cost more than
# they cost readers.
MIN_RUN = 32
SCRATCH_MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class Compaction:
    folder: str
    loads: int
    rows: dict[str, int]

    def summary(self) -> str:
        return f"compacted {self.loads:,} loads ({self.rows['events']:,} events) into {self.folder}"


def _events_bytes(load: LandedLoad) -> int:
    return (load.folder / "events.parquet").stat().st_size


def _is_small(load: LandedLoad, small_load_bytes: int) -> bool:
    # a load from before every kind of file was kept is left alone: its keys file is written
    # by the next load, and its missing files have no rows to carry
    return all((load.folder / f"{kind}.parquet").exists() for kind in LOAD_FILES) and (
        _events_bytes(load) < small_load_bytes
    )


def plan(
    loads: list[LandedLoad],
    small_load_bytes: int = SMALL_LOAD_BYTES,
    compacted_bytes: int = COMPACTED_BYTES,
    min_run: int = MIN_RUN,
) -> list[list[LandedLoad]]:
    """Runs of at least ``min_run`` consecutive small loads, cut into chunks of up to
    ``compacted_bytes`` of events (a chunk of one load is left alone)."""
    runs: list[list[LandedLoad]] = [[]]
    for load in loads:
        if _is_small(load, small_load_bytes):
            runs[-1].append(load)
        elif runs[-1]:
            runs.append([])
    chunks = []
    for run in runs:
        if len(run) < min_run:
            continue
        chunk: list[LandedLoad] = []
        chunk_bytes = 0
        for load in run:
            size = _events_bytes(load)
            if chunk and chunk_bytes + size > compacted_bytes:
                chunks.append(chunk)
                chunk, chunk_bytes = [], 0
            chunk.append(load)
            chunk_bytes += size
        chunks.append(chunk)
    return [chunk for chunk in chunks if len(chunk) > 1]


def compact_landing(
    paths: WarehousePaths,
    report: Callable[[str], None] = print,
    small_load_bytes: int = SMALL_LOAD_BYTES,
    compacted_bytes: int = COMPACTED_BYTES,
    min_run: int = MIN_RUN,
) -> list[Compaction]:
    """Compact every run of small loads. Call only under the build lock: dbt reads the landing
    zone without the load lock."""
    done = []
    with landing.load_lock(paths):
        landing.remove_incomplete_loads(paths)
        chunks = plan(landing.visible_loads(paths), small_load_bytes, compacted_bytes, min_run)
        if not chunks:
            return done
        con = duckdb.connect(config={"temp_directory": str(paths.scratch)})
        try:
            con.execute(f"set memory_limit = '{SCRATCH_MEMORY_LIMIT}'")
            for chunk in chunks:
                compaction = _compact(con, paths, chunk)
                report(compaction.summary())
                done.append(compaction)
        finally:
            con.close()
    return done


def _compact(con: duckdb.DuckDBPyConnection, paths: WarehousePaths, chunk: list[LandedLoad]) -> Compaction:
    name = landing.compacted_load_name(chunk[0].first, chunk[-1].last)
    staged = landing.staging_folder(paths, name)
    rows = {}
    for kind in LOAD_FILES:
        members = [str(load.folder / f"{kind}.parquet") for load in chunk]
        written = staged / f"{kind}.parquet"
        options = (
            f"{EVENTS_COMPRESSION}, row_group_size {EVENTS_ROW_GROUP_ROWS}"
            if kind == "events" else "compression zstd"
        )
        # Files are read in the order listed, rows in their order: the events stay in load
        # time order, so row groups still let readers skip what a build has seen.
        con.execute(
            f"copy (select * from read_parquet(?, union_by_name = true)) "
            f"to {sql_string(str(written))} (format parquet, {options})",
            [members],
        )
        rows[kind] = _row_count(con, [str(written)])
        expected = _row_count(con, members)
        if rows[kind] != expected:
            raise RuntimeError(
                f"compacting {len(chunk)} loads into {name}: {kind} has {rows[kind]:,} rows, "
                f"its loads {expected:,}; nothing was changed"
            )
    reached("compaction:staged")
    committed = landing.commit(paths, staged)
    reached("compaction:committed")
    replace_loads_in_index(con, paths, [load.folder.name for load in chunk], committed)
    for number, load in enumerate(chunk):
        if number == len(chunk) // 2:
            reached("compaction:removing")
        shutil.rmtree(load.folder)
    landing.fsync_folder(paths.loads)
    return Compaction(name, len(chunk), rows)


def _row_count(con: duckdb.DuckDBPyConnection, files: list[str]) -> int:
    return con.execute(
        "select coalesce(sum(num_rows), 0) from parquet_file_metadata(?)", [files]
    ).fetchone()[0]
