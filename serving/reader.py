"""The API's access to the published snapshot: one read-only database per snapshot file, shared
by the requests, and the answers already computed from it.

A snapshot file never changes once published (a build publishes a new file and moves the link),
so an answer computed from one stays true for as long as the link points at that file. Each
request still asks the link which file is current: a publish shows in the next request."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import duckdb

from loaders.paths import WarehousePaths

from .publish import CATALOG, SnapshotUnavailableError, current_snapshot, open_snapshot

ANSWERS_KEPT = 512  # per snapshot; an answer is a few kilobytes


class NothingPublishedError(SnapshotUnavailableError):
    """No build has published a snapshot yet."""


class SnapshotReader:
    def __init__(self, paths: WarehousePaths) -> None:
        self._paths = paths
        self._lock = threading.Lock()
        self._snapshot: Path | None = None
        self._database: duckdb.DuckDBPyConnection | None = None
        self._previous: duckdb.DuckDBPyConnection | None = None
        self._answers: OrderedDict[Hashable, Any] = OrderedDict()

    def connect(self) -> tuple[Path, duckdb.DuckDBPyConnection]:
        """The current snapshot file and a connection of its own to it (close it when done)."""
        snapshot = current_snapshot(self._paths)
        if snapshot is None:
            raise NothingPublishedError(
                "the warehouse has not been built yet; run `chat-analytics build`")
        with self._lock:
            if snapshot != self._snapshot:
                database = open_snapshot(snapshot)
                # Closing a database closes its cursors: the previous one stays open so that
                # requests still reading it finish there (a publish keeps that file on disk).
                self._previous, self._database = self._database, database
                self._snapshot = snapshot
                self._answers.clear()
            assert self._database is not None
            cursor = self._database.cursor()
        cursor.execute(f"use {CATALOG}")
        return snapshot, cursor

    def answer(self, snapshot: Path, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The answer to `key` on `snapshot`, computed once while that snapshot is current."""
        with self._lock:
            if snapshot == self._snapshot and key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        value = compute()
        with self._lock:
            if snapshot == self._snapshot:
                self._answers[key] = value
                while len(self._answers) > ANSWERS_KEPT:
                    self._answers.popitem(last=False)
        return value
