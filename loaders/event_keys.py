"""Event keys: what deduplication compares, and the index of every landed one.

An event's key is the MD5 of its id in two 64-bit halves. Each committed load keeps its
events' keys, with a digest of their content, in its own ``event_keys.parquet``: written
before the commit and committed with the load, it is the source of truth.

The key index (``landing/event_keys.duckdb``) holds the same keys in one DuckDB table, so
that a batch compares its keys with every landed one by scanning a native table instead of
reading one Parquet file per load (16M keys: 65 ms, against 650 ms to read them). Writing it
costs a checkpoint that grows with its size (0.25 to 0.5 s at 16M keys), so it is written
seldom: the keys of loads committed since are read from their files, and move into the index
once they are a tenth of it. It is derived data and heals itself:

- it lists the load folders it holds, each with its keys file's size and time; a committed
  load it does not list is read from its file (a load killed before its keys were merged is
  one of them);
- it is emptied and filled again when a load it holds changed or went away, when the key
  function changed, or when the file cannot be opened.

Only the loader opens it, and only while it holds the load lock.
"""

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import duckdb

from .faults import reached
from .paths import WarehousePaths, sql_string

KEY_FUNCTION_PROBE = "chat-analytics event key"
INDEX = "key_index"
INDEXED_KEYS = f"{INDEX}.event_keys"
PENDING_KEYS = "pending_event_keys"
LANDED_KEYS = "landed_event_keys"
MERGE_SHARE = 0.1
# Up to this size the index is read into DuckDB's buffer pool while the batch's files are read,
# which leaves a core idle; past it (half the loader's memory limit) the blocks would only
# evict each other before the duplicate check reads them.
PRELOAD_BYTES = 512 * 1024 * 1024
KEY_ROW_BYTES = 24  # two key halves and the content digest, eight bytes each


def event_key_columns(event_id: str) -> str:
    """An event id's key: its 128-bit MD5 in two 64-bit halves. Distinct ids share a key with
    odds of about 1e-21 among a billion events."""
    return (
        f"cast(md5_number({event_id}) >> 64 as ubigint) as event_key_high, "
        f"cast(md5_number({event_id}) & {2**64 - 1} as ubigint) as event_key_low"
    )


def key_function_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """What this DuckDB makes of a fixed id: keys written by a DuckDB that answers otherwise
    (an upgrade that changed ``md5_number``) would not match, so they are written again."""
    high, low = con.execute(
        f"select {event_key_columns('event_id')} from (select ? as event_id)", [KEY_FUNCTION_PROBE]
    ).fetchone()
    return f"{high:016x}{low:016x}"


def write_event_keys(
    con: duckdb.DuckDBPyConnection, events_file: Path, keys_file: Path, digest: str = "content_digest"
) -> None:
    con.execute(
        f"copy (select {event_key_columns('event_id')}, {digest} as content_digest "
        f"from read_parquet({sql_string(str(events_file))})) "
        f"to {sql_string(str(keys_file))} (format parquet, compression zstd)"
    )


class LandedKeys:
    """Every landed event's key, for one load batch (which holds the load lock): the index's
    table, plus the keys of the loads committed since it was last merged, in memory."""

    def __init__(self, con: duckdb.DuckDBPyConnection, paths: WarehousePaths) -> None:
        """Attach the index to ``con``'s database and read what it lacks. The index is
        emptied first if a load it holds changed or went away, or the key function changed."""
        self.paths = paths
        fingerprint = key_function_fingerprint(con)
        _write_missing_keys_files(con, paths, fingerprint)
        _attach(con, paths.key_index)
        landed = {
            load.name: _signature(load / "event_keys.parquet")
            for load in paths.loads.iterdir()
            if (load / "event_keys.parquet").exists()
        }
        held = dict(con.execute(f"select load_folder, keys_file from {INDEX}.indexed_loads").fetchall())
        stored = con.execute(f"select max(key_function) from {INDEX}.key_function").fetchone()[0]
        if stored != fingerprint or any(landed.get(name) != signature for name, signature in held.items()):
            _in_one_transaction(con, [
                (f"delete from {INDEXED_KEYS}", []),
                (f"delete from {INDEX}.indexed_loads", []),
                (f"delete from {INDEX}.key_function", []),
                (f"insert into {INDEX}.key_function values (?)", [fingerprint]),
            ])
            held = {}
        self.indexed_rows = con.execute(f"select count(*) from {INDEXED_KEYS}").fetchone()[0]
        self.pending = {name: signature for name, signature in landed.items() if name not in held}
        con.execute(f"create table {PENDING_KEYS} as select * from {INDEXED_KEYS} limit 0")
        if self.pending:
            con.execute(f"insert into {PENDING_KEYS} select * from read_parquet(?)", [self._files()])
        con.execute(
            f"create view {LANDED_KEYS} as "
            f"select * from {INDEXED_KEYS} union all select * from {PENDING_KEYS}"
        )

    def preload(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the index's blocks now, so the duplicate check reads memory rather than the
        file. At 16M keys the check takes 170 ms instead of 300 ms, and a 30-file batch about
        60 ms less in all: reading the files leaves a core idle, classifying them does not."""
        if self.indexed_rows * KEY_ROW_BYTES <= PRELOAD_BYTES:
            # bit_xor needs every value: min/max would be answered from the block statistics
            con.execute(
                "select bit_xor(event_key_high), bit_xor(event_key_low), bit_xor(content_digest) "
                f"from {INDEXED_KEYS}"
            ).fetchall()

    def add_committed_load(self, con: duckdb.DuckDBPyConnection, committed: Path) -> None:
        """Count a load that has just committed as landed."""
        self.pending[committed.name] = _signature(committed / "event_keys.parquet")
        con.execute(f"insert into {PENDING_KEYS} select * from read_parquet(?)",
                    [str(committed / "event_keys.parquet")])

    def merge_if_due(self, con: duckdb.DuckDBPyConnection) -> None:
        """Move the pending keys into the index once they are a tenth of it: writing the index
        costs a checkpoint that grows with its size, so it is done seldom, and a batch reads
        at most a tenth of the landed keys from Parquet."""
        pending_rows = con.execute(f"select count(*) from {PENDING_KEYS}").fetchone()[0]
        if not self.pending or pending_rows < MERGE_SHARE * self.indexed_rows:
            return
        # the keys and the list of their loads in one transaction: the index never holds
        # half a load, and a load it lacks is read again by the next batch
        _in_one_transaction(con, [
            (f"insert into {INDEXED_KEYS} select * from {PENDING_KEYS}", []),
            (f"insert into {INDEX}.indexed_loads select * from (select unnest(?), unnest(?))",
             [list(self.pending), list(self.pending.values())]),
        ], before_commit=lambda: reached("merging_keys"))
        con.execute(f"checkpoint {INDEX}")
        con.execute(f"delete from {PENDING_KEYS}")
        self.indexed_rows += pending_rows
        self.pending = {}

    def _files(self) -> list[str]:
        return [str(self.paths.loads / name / "event_keys.parquet") for name in self.pending]


def replace_loads_in_index(
    con: duckdb.DuckDBPyConnection, paths: WarehousePaths, members: list[str], compacted: Path
) -> None:
    """A compaction committed: its loads' keys are the compacted load's now. The index lists
    the compacted load in place of its members (taking in the keys of members it lacked),
    instead of finding held loads gone and being filled again from every keys file."""
    if not paths.key_index.exists():
        return
    _attach(con, paths.key_index)
    try:
        held = {name for (name,) in con.execute(
            f"select load_folder from {INDEX}.indexed_loads where load_folder in (select unnest(?))",
            [members],
        ).fetchall()}
        if not held:  # the compacted load is read from its keys file, as any new load
            return
        lacking = [str(paths.loads / name / "event_keys.parquet") for name in members if name not in held]
        statements = [
            (f"insert into {INDEXED_KEYS} select * from read_parquet(?)", [lacking]),
        ] if lacking else []
        _in_one_transaction(con, [
            *statements,
            (f"delete from {INDEX}.indexed_loads where load_folder in (select unnest(?))", [members]),
            (f"insert into {INDEX}.indexed_loads values (?, ?)",
             [compacted.name, _signature(compacted / "event_keys.parquet")]),
        ])
    finally:
        con.execute(f"detach database {INDEX}")


def _attach(con: duckdb.DuckDBPyConnection, index_file: Path) -> None:
    try:
        _attach_and_create(con, index_file)
    except duckdb.Error:
        # Derived data: a file this DuckDB cannot open (damaged, or written by another
        # version) is removed, and the index is built again from the loads' keys files.
        with contextlib.suppress(duckdb.Error):
            con.execute(f"detach database if exists {INDEX}")
        for leftover in (index_file, index_file.with_name(index_file.name + ".wal")):
            leftover.unlink(missing_ok=True)
        _attach_and_create(con, index_file)


def _attach_and_create(con: duckdb.DuckDBPyConnection, index_file: Path) -> None:
    con.execute(f"attach if not exists {sql_string(str(index_file))} as {INDEX}")
    con.execute(
        f"create table if not exists {INDEXED_KEYS} "
        "(event_key_high ubigint, event_key_low ubigint, content_digest ubigint)"
    )
    con.execute(f"create table if not exists {INDEX}.indexed_loads (load_folder varchar, keys_file varchar)")
    con.execute(f"create table if not exists {INDEX}.key_function (key_function varchar)")


def _in_one_transaction(
    con: duckdb.DuckDBPyConnection,
    statements: list[tuple[str, list]],
    before_commit: Callable[[], None] | None = None,
) -> None:
    con.execute("begin transaction")
    try:
        for statement, parameters in statements:
            con.execute(statement, parameters)
        if before_commit is not None:
            before_commit()
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def _signature(keys_file: Path) -> str:
    """What changes when a keys file is written again."""
    status = keys_file.stat()
    return f"{status.st_size}:{status.st_mtime_ns}"


def _write_missing_keys_files(
    con: duckdb.DuckDBPyConnection, paths: WarehousePaths, fingerprint: str
) -> None:
    """Give every committed load a keys file made by this DuckDB's key function: once for
    loads committed before keys were kept, and all again if the function changed. Each file is
    written aside and renamed, and the fingerprint goes last, so a killed load only leaves
    work for the next one."""
    marker = paths.landing / "event_keys.fingerprint"
    if not marker.exists() or marker.read_text() != fingerprint:
        for keys_file in paths.loads.glob("*/event_keys.parquet"):
            keys_file.unlink()
    for load in paths.loads.iterdir():
        events, keys_file = load / "events.parquet", load / "event_keys.parquet"
        if events.exists() and not keys_file.exists():
            partial = load / ".event_keys.parquet"
            columns = con.execute("select name from parquet_schema(?)", [str(events)]).fetchall()
            digest = "content_digest" if ("content_digest",) in columns else "cast(null as ubigint)"
            write_event_keys(con, events, partial, digest)
            with partial.open("rb") as handle:
                os.fsync(handle.fileno())
            os.rename(partial, keys_file)
    if not marker.exists() or marker.read_text() != fingerprint:
        partial_marker = marker.with_name(f".{marker.name}")
        partial_marker.write_text(fingerprint)
        os.rename(partial_marker, marker)
