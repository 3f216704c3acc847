"""A small SDK for chat applications: typed events, a buffered collector, A/B assignment."""

import atexit
import hashlib
import json
import os
import re
import threading
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .paths import WarehousePaths
from .schema import EventType

__all__ = ["ChatEvent", "EventCollector", "EventType", "assign_variant"]

DEFAULT_BUFFER_SIZE = 50
# The collector's file names; its files appear in the inbox whole, so they need no settling.
SDK_FILE_NAME = re.compile(r"events-\d{8}T\d{12}-[0-9a-f]{8}\.jsonl")


def is_sdk_file(path: Path) -> bool:
    return SDK_FILE_NAME.fullmatch(path.name) is not None


def assign_variant(session_id: str, test_name: str, variants: Sequence[str]) -> str:
    """Deterministic assignment: sha256 of ``"{test_name}:{session_id}"`` modulo the arm count."""
    if not variants:
        raise ValueError(f"test {test_name!r}: at least one variant is required")
    digest = hashlib.sha256(f"{test_name}:{session_id}".encode()).hexdigest()
    return variants[int(digest, 16) % len(variants)]


@dataclass(frozen=True)
class ChatEvent:
    session_id: str
    event_type: EventType
    properties: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    channel: str | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if not self.session_id:
            raise ValueError("session_id must be a non-empty string")
        object.__setattr__(self, "event_type", EventType(self.event_type))
        if self.event_type is EventType.EXPERIMENT_EXPOSURE:
            for name in ("test_name", "variant"):
                if not self.properties.get(name):
                    raise ValueError(f"experiment_exposure events need properties.{name}")

    def to_record(self) -> dict[str, Any]:
        stamp = self.timestamp
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        record: dict[str, Any] = {
            "event_id": self.event_id,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "event_type": self.event_type.value,
            "timestamp": stamp.isoformat(),
            "properties": self.properties,
        }
        if self.channel is not None:
            record["channel"] = self.channel
        return record


class EventCollector:
    """Buffers events and writes each full buffer as one JSON-lines file into the inbox.

    Files appear in the inbox only complete (written under a dot-name, then renamed), so a
    loader never reads half a batch. Buffered events are flushed on ``close()``, when the
    collector is used as a context manager, and at interpreter exit.
    """

    def __init__(
        self,
        inbox: Path | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.inbox = Path(inbox) if inbox is not None else WarehousePaths.from_env().inbox
        self.buffer_size = buffer_size
        self._buffer: list[ChatEvent] = []
        self._lock = threading.Lock()
        self._closed = False
        self.files_written: list[Path] = []
        self._finalizer = weakref.finalize(self, EventCollector._flush_at_exit, weakref.ref(self))
        atexit.register(self._finalizer)

    @staticmethod
    def _flush_at_exit(reference: "weakref.ReferenceType[EventCollector]") -> None:
        collector = reference()
        if collector is not None:
            collector.flush()

    def track(self, event: ChatEvent) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the collector is closed")
            self._buffer.append(event)
            if len(self._buffer) >= self.buffer_size:
                self._write_locked()

    def flush(self) -> Path | None:
        with self._lock:
            return self._write_locked()

    def close(self) -> None:
        with self._lock:
            self._write_locked()
            self._closed = True

    def __enter__(self) -> "EventCollector":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_locked(self) -> Path | None:
        if not self._buffer:
            return None
        self.inbox.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"events-{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
        partial = self.inbox / f".{name}.partial"
        with partial.open("w", encoding="utf-8") as handle:
            for event in self._buffer:
                handle.write(json.dumps(event.to_record(), ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        target = self.inbox / name
        os.rename(partial, target)
        self._buffer.clear()
        self.files_written.append(target)
        return target
