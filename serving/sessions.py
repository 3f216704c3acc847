"""From a number to the conversations behind it: the session list (filtered, sorted, paged
with a cursor) and one session with its scores, exposures and event timeline.

The list and the session read the published snapshot; the timeline reads the landed events of
the loads that snapshot covers (the landing files are immutable once committed), without the
text of any message.
"""

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from loaders.landing import visible_loads
from loaders.paths import WarehousePaths

MAX_PAGE = 500
# A compaction that commits between listing the loads and reading them moves their rows.
TIMELINE_ATTEMPTS = 3
# Sort keys a caller may name, and the column each sorts by.
SORTS = {
    "started_at": "sessions.session_started_at",
    "duration": "sessions.duration_seconds",
    "overall_score": "scores.overall_score",
    "user_messages": "sessions.user_messages",
}
# Properties that hold what a user or the agent wrote: never returned.
TEXT_PROPERTIES = ("text",)
SESSION_COLUMNS = (
    "session_id", "session_date", "channel", "agent_version", "session_started_at",
    "session_ended_at", "duration_seconds", "user_messages", "agent_messages",
    "first_response_ms", "fallback_count", "is_escalated", "is_converted", "rating",
    "has_feedback", "flows_started", "flows_completed", "tool_calls", "tool_failures",
)
SCORE_COLUMNS = (
    "resolution_score", "efficiency_score", "sentiment_score", "goal_completion_score",
    "overall_score",
)


class SessionQueryError(ValueError):
    """A session query that cannot be answered, with the reason (a bad cursor, say)."""


@dataclass(frozen=True)
class SessionFilters:
    start: date | None = None
    end: date | None = None
    channel: str | None = None
    agent_version: str | None = None
    escalated: bool | None = None
    converted: bool | None = None
    fallback_topic: str | None = None
    test_name: str | None = None
    variant: str | None = None
    min_score: float | None = None
    max_score: float | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []

        def add(clause: str, *values: Any) -> None:
            clauses.append(clause)
            params.extend(values)

        if self.start is not None:
            add("sessions.session_date >= ?", self.start)
        if self.end is not None:
            add("sessions.session_date <= ?", self.end)
        if self.channel is not None:
            add("sessions.channel = ?", self.channel)
        if self.agent_version is not None:
            add("coalesce(sessions.agent_version, 'unknown') = ?", self.agent_version)
        if self.escalated is not None:
            add("sessions.is_escalated = ?", self.escalated)
        if self.converted is not None:
            add("sessions.is_converted = ?", self.converted)
        if self.fallback_topic is not None:
            add("exists (select 1 from marts.fct_session_fallback_topics as topics "
                "where topics.session_id = sessions.session_id and topics.topic = ?)",
                self.fallback_topic)
        if self.test_name is not None or self.variant is not None:
            condition = "exposures.session_id = sessions.session_id and not exposures.is_contaminated"
            values = []
            if self.test_name is not None:
                condition += " and exposures.test_name = ?"
                values.append(self.test_name)
            if self.variant is not None:
                condition += " and exposures.variant = ?"
                values.append(self.variant)
            add(f"exists (select 1 from marts.fct_ab_exposures as exposures where {condition})", *values)
        if self.min_score is not None:
            add("scores.overall_score >= ?", self.min_score)
        if self.max_score is not None:
            add("scores.overall_score <= ?", self.max_score)
        return (" and ".join(clauses) or "true"), params


@dataclass
class SessionPage:
    sessions: list[dict[str, Any]]
    next_cursor: str | None
    sort: str
    limit: int
    filters: dict[str, Any] = field(default_factory=dict)


def _encode_cursor(sort: str, value: Any, session_id: str) -> str:
    if isinstance(value, datetime | date):
        value = value.isoformat()
    raw = json.dumps([sort, value, session_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, value, session_id = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as error:
        raise SessionQueryError("cursor is not one this API gave out") from error
    if cursor_sort != sort:
        raise SessionQueryError(f"cursor belongs to sort {cursor_sort!r}, not {sort!r}")
    if sort.lstrip("-") == "started_at" and value is not None:
        value = datetime.fromisoformat(value)
    return value, str(session_id)


def list_sessions(
    con: duckdb.DuckDBPyConnection,
    filters: SessionFilters,
    sort: str = "-started_at",
    limit: int = 50,
    cursor: str | None = None,
) -> SessionPage:
    """Sessions matching the filters, `limit` at a time, in the sort order (ties and NULLs
    ordered by session_id, so pages never overlap or skip)."""
    key = sort.lstrip("-")
    if key not in SORTS:
        raise SessionQueryError(f"sort must be one of {', '.join(sorted(SORTS))} (prefix - for descending)")
    if not 1 <= limit <= MAX_PAGE:
        raise SessionQueryError(f"limit must be between 1 and {MAX_PAGE}")
    descending = sort.startswith("-")
    column = SORTS[key]
    # NULL scores sort last either way: coalesce to a value beyond every real one
    beyond = "-1e300" if descending else "1e300"
    order_value = f"coalesce({column}, {beyond})" if key == "overall_score" else column
    where, params = filters.where()
    if cursor is not None:
        value, session_id = _decode_cursor(cursor, sort)
        comparison = "<" if descending else ">"
        where += f" and ({order_value}, sessions.session_id) {comparison} (?, ?)"
        params += [value, session_id]
    direction = "desc" if descending else "asc"
    columns = ", ".join(f"sessions.{c}" for c in SESSION_COLUMNS)
    page_columns = ", ".join(f"page.{c}" for c in SESSION_COLUMNS)
    scores = ", ".join(f"scores.{c}" for c in SCORE_COLUMNS)
    # The page is chosen before the scores are joined to it, unless a score sorts or filters:
    # joining every session's scores first costs a hash join over the whole history (about
    # 300 ms at 1.3M sessions), the page's own scores a few ms.
    scores_needed = key == "overall_score" or filters.min_score is not None or filters.max_score is not None
    scores_join = "left join marts.fct_conversation_scores as scores using (session_id)"
    cursor_result = con.execute(
        f"""
        with page as (
            select {columns}, {order_value} as sort_value
            from marts.fct_sessions as sessions
            {scores_join if scores_needed else ""}
            where {where}
            order by sort_value {direction}, sessions.session_id {direction}
            limit {limit + 1}
        )
        select {page_columns}, {scores}, page.sort_value
        from page
        {scores_join}
        order by page.sort_value {direction}, page.session_id {direction}
        """,
        params,
    )
    names = [c[0] for c in cursor_result.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor_result.fetchall()]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode_cursor(sort, last["sort_value"], last["session_id"])
    for row in rows:
        row.pop("sort_value")
    return SessionPage(rows, next_cursor, sort, limit)


def _without_text(properties: str | None) -> dict[str, Any]:
    values = json.loads(properties) if properties else {}
    for name in TEXT_PROPERTIES:
        values.pop(name, None)
    return values


def _event_files(
    paths: WarehousePaths, first: datetime | None, last: datetime, landed_until: datetime
) -> list[str]:
    """The events files of the loads that hold a session's events: those whose load times
    meet the span between its first and last loaded event, not every load of the history;
    every load's for a snapshot built before first_loaded_at existed."""
    last = min(last, landed_until)
    return [
        str(load.folder / "events.parquet")
        for load in visible_loads(paths)
        if first is None or (load.first <= last and first <= load.last)
    ]


def _timeline(
    con: duckdb.DuckDBPyConnection,
    paths: WarehousePaths,
    record: dict[str, Any],
    session_id: str,
    landed_until: datetime,
) -> list[tuple]:
    for attempt in range(TIMELINE_ATTEMPTS):
        files = _event_files(paths, record["first_loaded_at"], record["last_loaded_at"], landed_until)
        if not files:
            return []
        try:
            return con.execute(
                """
                select event_id, event_type, event_timestamp, properties
                from read_parquet(?, union_by_name = true)
                -- the load times bound the row groups read: a compacted load holds a long span
                where session_id = ? and loaded_at between coalesce(?, loaded_at) and ?
                order by event_timestamp, event_id
                """,
                [files, session_id, record["first_loaded_at"], min(record["last_loaded_at"], landed_until)],
            ).fetchall()
        except duckdb.IOException:
            # a compaction removed a load it had just taken in: its rows are in the
            # compacted load, which the next listing finds
            if attempt == TIMELINE_ATTEMPTS - 1 or all(Path(file).exists() for file in files):
                raise
    return []


def session_detail(
    con: duckdb.DuckDBPyConnection, paths: WarehousePaths, session_id: str
) -> dict[str, Any] | None:
    columns = ", ".join(f"sessions.{c}" for c in SESSION_COLUMNS)
    scores = ", ".join(f"scores.{c}" for c in SCORE_COLUMNS)
    query = f"""
        select {columns}, {scores}, {{loads}}
        from marts.fct_sessions as sessions
        left join marts.fct_conversation_scores as scores using (session_id)
        where sessions.session_id = ?
        """
    try:
        cursor = con.execute(query.format(
            loads="sessions.first_loaded_at, sessions.last_loaded_at"), [session_id])
    except duckdb.BinderException:  # a snapshot built before first_loaded_at existed
        cursor = con.execute(query.format(
            loads="null as first_loaded_at, sessions.last_loaded_at"), [session_id])
    row = cursor.fetchone()
    if row is None:
        return None
    record = dict(zip([c[0] for c in cursor.description], row, strict=True))
    session = {name: record[name] for name in SESSION_COLUMNS}
    exposures_cursor = con.execute(
        "select test_name, variant, first_exposed_at, is_contaminated from marts.fct_ab_exposures "
        "where session_id = ? order by test_name",
        [session_id],
    )
    exposure_names = [c[0] for c in exposures_cursor.description]
    # fetched before the next query: a DuckDB connection has one open result at a time
    exposures = [dict(zip(exposure_names, r, strict=True)) for r in exposures_cursor.fetchall()]
    (landed_until,) = con.execute("select max(landed_until) from audit.build_history").fetchone()
    events = _timeline(con, paths, record, session_id, landed_until)
    return {
        "session": session,
        "scores": {name: record[name] for name in SCORE_COLUMNS},
        "exposures": exposures,
        "timeline": [
            {"event_id": event_id, "event_type": kind, "timestamp": at,
             "properties": _without_text(properties)}
            for event_id, kind, at, properties in events
        ],
    }
