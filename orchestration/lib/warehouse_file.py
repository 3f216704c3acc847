"""Give the warehouse file's free space back to the disk.

DuckDB reuses the blocks a dropped table frees but never returns them: a full refresh, which
writes every table beside the one it replaces, leaves the file about twice the size of its
data for good (15.9M events: 727 MB, half of it free, against 365 MB rewritten). Every
publish copies the whole file, and the serving folder keeps two such copies. Rewriting the
file without its free blocks costs about as much as copying the data once (4.2 s there), so
it runs only when enough of the file is free.

The rewrite goes to a file of its own beside the warehouse, which replaces the warehouse with
one atomic rename once it is complete and on disk: a build killed before the rename leaves
the warehouse as it was, and the partial file is removed by the next build.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from loaders.faults import reached
from loaders.landing import fsync_folder
from loaders.paths import WarehousePaths, sql_string

PARTIAL_NAME = ".warehouse-compacting.duckdb"
MIB = 1024 * 1024
# as dbt's connection: the copy spills beyond it rather than grow past the memory budget
MEMORY_LIMIT = "2GB"


@dataclass(frozen=True)
class Compaction:
    mib_before: float
    mib_after: float
    free_share_before: float


def partial_compaction_files(paths: WarehousePaths) -> list[Path]:
    """What a rewrite that died left behind (the file and its write-ahead log)."""
    partial = paths.home / PARTIAL_NAME
    return [path for path in (partial, Path(f"{partial}.wal")) if path.exists()]


def compact_if_sparse(
    paths: WarehousePaths, min_free_share: float, min_free_mib: float
) -> Compaction | None:
    """Rewrite the warehouse file without its free blocks when at least ``min_free_share`` of
    it, and at least ``min_free_mib`` MiB, is free; None when it is left as it is. Called by
    the build that holds the build lock, after dbt has closed the file."""
    database = paths.database
    if not database.exists():
        return None
    for leftover in partial_compaction_files(paths):
        leftover.unlink()
    partial = paths.home / PARTIAL_NAME
    with duckdb.connect(str(database), config={"memory_limit": MEMORY_LIMIT}) as con:
        # past two seconds DuckDB would draw a progress bar into the build's output
        con.execute("set enable_progress_bar = false")
        # the write-ahead log folded in first: the rename below leaves no log beside the file
        con.execute("checkpoint")
        catalog = con.execute("select current_database()").fetchone()[0]
        block_size, total_blocks, free_blocks = con.execute(
            "select block_size, total_blocks, free_blocks from pragma_database_size() "
            "where database_name = ?",
            [catalog],
        ).fetchone()
        free_share = free_blocks / total_blocks if total_blocks else 0.0
        if free_share < min_free_share or free_blocks * block_size < min_free_mib * MIB:
            return None
        con.execute(f"attach {sql_string(str(partial))} as compacted")
        con.execute(f"copy from database {catalog} to compacted")
        con.execute("detach compacted")
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    reached("build:warehouse_compacted")
    mib_before = database.stat().st_size / MIB
    os.replace(partial, database)
    fsync_folder(paths.home)
    return Compaction(mib_before, database.stat().st_size / MIB, free_share)
