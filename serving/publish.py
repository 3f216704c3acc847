"""Publish the marts as a read-only DuckDB snapshot that BI tools, the report and the API open.

Each build whose blocking checks passed writes a new snapshot file beside the old ones and
then points ``serving/analytics.duckdb`` (a symbolic link) at it with one atomic rename. A
reader that opened the previous snapshot keeps it (its file stays on disk until the next
publish after that), so readers never block a build and never see half of one. Each snapshot
has its own file name, so a new connection always opens the current one, even in a process
that still holds a connection to an older one.

Every snapshot also carries ``audit.build_history``, one row per published build with the
upper bound of the loads it covers, and ``audit.semantic_manifest``, the metric definitions
it was built with (the serving side computes every metric from them).

Readers open a snapshot attached as the catalog ``warehouse``, the name the dbt models and the
semantic layer use for the warehouse, so that SQL compiled from the semantic layer runs on it
unchanged.
"""

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from loaders.faults import reached
from loaders.paths import WarehousePaths

PUBLISHED_SCHEMAS = ("marts",)
# Published besides the marts, with the columns readers may see (server paths stay behind).
PUBLISHED_AUDIT = {"audit.load_audit": "* exclude (source_path)"}
# What each publish records about itself (see below).
BUILD_RECORDS = ("audit.build_history", "audit.semantic_manifest")
# The catalog name of the working warehouse file, which dbt's relations and so the compiled
# metric SQL carry.
CATALOG = "warehouse"
# How many snapshots stay on disk: the current one and the one before, for readers that
# resolved the link just before it moved.
KEPT_SNAPSHOTS = 2


class SnapshotUnavailableError(RuntimeError):
    """Nothing is published yet, or the published snapshot cannot be read."""


@dataclass(frozen=True)
class BuildRecord:
    run_id: str
    started_at: datetime
    full_refresh: bool
    project_digest: str = ""


@dataclass(frozen=True)
class PublishedBuild:
    """What the current snapshot covers: loads up to `landed_until`, built from the dbt
    project whose files hash to `project_digest`."""

    landed_until: datetime | None
    project_digest: str
    published_at: datetime


def serving_link(paths: WarehousePaths) -> Path:
    # Not "marts.duckdb": DuckDB names the catalog after the file, and a catalog called
    # marts would make every `marts.<table>` reference ambiguous for BI tools.
    return paths.serving / "analytics.duckdb"


def current_snapshot(paths: WarehousePaths) -> Path | None:
    """The snapshot file the link points at now, or None before the first publish."""
    link = serving_link(paths)
    if not link.exists():
        return None
    return link.resolve()


def connect_snapshot(paths: WarehousePaths) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the current snapshot (opened by its own file name),
    attached as ``warehouse``."""
    snapshot = current_snapshot(paths)
    if snapshot is None:
        raise SnapshotUnavailableError(
            f"nothing is published at {serving_link(paths)} yet; run `chat-analytics build`"
        )
    return open_snapshot(snapshot)


def open_snapshot(snapshot: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to one snapshot file, attached as ``warehouse``."""
    con = duckdb.connect()
    try:
        # A query past DuckDB's 2 s threshold would otherwise draw a progress bar on stdout,
        # into the JSON of `chat-analytics dashboard --json` (seen at 100M events).
        con.execute("set enable_progress_bar = false")
        con.execute(f"attach '{snapshot}' as {CATALOG} (read_only)")
        con.execute(f"use {CATALOG}")
    except (duckdb.Error, OSError) as error:
        con.close()
        raise SnapshotUnavailableError(
            f"the published snapshot {snapshot} cannot be read: {error}"
        ) from error
    return con


def latest_published_build(paths: WarehousePaths) -> PublishedBuild | None:
    """The build the current snapshot comes from (None before the first publish)."""
    if current_snapshot(paths) is None:
        return None
    with connect_snapshot(paths) as con:
        cursor = con.execute("select * from audit.build_history order by published_at desc limit 1")
        row = cursor.fetchone()
        if row is None:
            return None
        record = dict(zip([c[0] for c in cursor.description], row, strict=True))
    return PublishedBuild(
        record["landed_until"], record.get("project_digest") or "", record["published_at"]
    )


def published_landed_until(paths: WarehousePaths) -> datetime | None:
    """The load-time bound of the latest published build (None: nothing published)."""
    build = latest_published_build(paths)
    return build.landed_until if build else None


def publish(paths: WarehousePaths, build: BuildRecord) -> dict[str, int]:
    paths.serving.mkdir(parents=True, exist_ok=True)
    previous = current_snapshot(paths)
    partial = paths.serving / f".analytics-{uuid.uuid4().hex}.duckdb"
    row_counts: dict[str, int] = {}
    try:
        # A byte copy of the warehouse file, then trimmed to what is published: the copy runs
        # at disk speed, where re-inserting every mart row cost a second per 1.5M events.
        _checkpoint(paths.database)
        shutil.copyfile(paths.database, partial)
        with duckdb.connect() as con:
            con.execute(f"attach '{partial}' as {CATALOG}")
            con.execute(f"use {CATALOG}")
            _record_build(con, previous, build)
            _record_semantic_manifest(con, paths)
            row_counts = _keep_published(con)
            con.execute("use memory")
            con.execute(f"detach {CATALOG}")
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        reached("build:publish_written")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        snapshot = paths.serving / f"analytics-{stamp}-{uuid.uuid4().hex[:8]}.duckdb"
        os.rename(partial, snapshot)
        _point_link_at(paths, snapshot)
    finally:
        partial.unlink(missing_ok=True)
        Path(f"{partial}.wal").unlink(missing_ok=True)
    reached("build:published")
    _remove_old_snapshots(paths)
    return row_counts


def _checkpoint(database: Path) -> None:
    """Fold a write-ahead log left beside the warehouse file into it, so that the file alone
    holds every committed change (dbt's last connection normally does this as it closes)."""
    if Path(f"{database}.wal").exists():
        with duckdb.connect(str(database)) as con:
            con.execute("checkpoint")


def _keep_published(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Drop from the copy what is not published, turn the published audit views into tables
    (with the columns readers may see), and count the published rows."""
    for name, columns in PUBLISHED_AUDIT.items():
        schema, view = name.split(".")
        con.execute(f"create table {schema}.published_{view} as select {columns} from {name}")
        con.execute(f"drop view {name}")
        con.execute(f"alter table {schema}.published_{view} rename to {view}")
    kept = {*PUBLISHED_AUDIT, *BUILD_RECORDS}
    objects = con.execute(
        """
        select 'table', schema_name, table_name from duckdb_tables() where database_name = ?
        union all
        select 'view', schema_name, view_name from duckdb_views()
        where database_name = ? and not internal
        """,
        [CATALOG, CATALOG],
    ).fetchall()
    for kind, schema, name in objects:
        if schema not in PUBLISHED_SCHEMAS and f"{schema}.{name}" not in kept:
            con.execute(f'drop {kind} if exists "{schema}"."{name}"')
    for (schema,) in con.execute(
        "select schema_name from duckdb_schemas() where database_name = ? and not internal",
        [CATALOG],
    ).fetchall():
        if schema not in (*PUBLISHED_SCHEMAS, "audit", "main"):
            con.execute(f'drop schema "{schema}" cascade')
    return {
        f"{schema}.{name}": int(con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0])
        for kind, schema, name in objects
        if schema in PUBLISHED_SCHEMAS or f"{schema}.{name}" in PUBLISHED_AUDIT
    }


def _record_build(
    con: duckdb.DuckDBPyConnection, previous: Path | None, build: BuildRecord
) -> None:
    con.execute("create schema if not exists audit")
    con.execute(
        """
        create table audit.build_history (
            run_id varchar,
            landed_until timestamp,
            full_refresh boolean,
            project_digest varchar,
            started_at timestamp,
            published_at timestamp
        )
        """
    )
    if previous is not None:
        con.execute(f"attach '{previous}' as previous (read_only)")
        has_history = con.execute(
            "select count(*) from duckdb_tables() where database_name = 'previous' "
            "and schema_name = 'audit' and table_name = 'build_history'"
        ).fetchone()[0]
        if has_history:
            con.execute(
                "insert into audit.build_history by name select * from previous.audit.build_history"
            )
        con.execute("detach previous")
    con.execute(
        """
        insert into audit.build_history
        select ?, (select landed_until from warehouse.audit.build_window), ?, ?, ?, ?
        """,
        [build.run_id, build.full_refresh, build.project_digest, build.started_at,
         datetime.now(UTC).replace(tzinfo=None)],
    )


def _record_semantic_manifest(con: duckdb.DuckDBPyConnection, paths: WarehousePaths) -> None:
    manifest = paths.dbt_target / "semantic_manifest.json"
    con.execute("create table audit.semantic_manifest (manifest varchar)")
    con.execute("insert into audit.semantic_manifest values (?)", [manifest.read_text()])


def _point_link_at(paths: WarehousePaths, snapshot: Path) -> None:
    link = serving_link(paths)
    pending = paths.serving / f".analytics-link-{uuid.uuid4().hex}"
    os.symlink(snapshot.name, pending)
    os.replace(pending, link)
    descriptor = os.open(paths.serving, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_old_snapshots(paths: WarehousePaths) -> None:
    current = current_snapshot(paths)
    snapshots = sorted(paths.serving.glob("analytics-*.duckdb"))
    for old in snapshots[:-KEPT_SNAPSHOTS]:
        if old != current:
            old.unlink(missing_ok=True)
