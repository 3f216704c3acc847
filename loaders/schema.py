"""The raw event contract: event types, quarantine reasons in their order, landing columns."""

from enum import StrEnum

import pyarrow as pa

MAX_RECORD_BYTES = 1024 * 1024
MAX_ID_CHARS = 128
# channel and properties.agent_version become dimensions; longer values are not names.
MAX_NAME_CHARS = 128
# JSON nesting of properties beyond this is no event a chat application sends.
MAX_PROPERTIES_DEPTH = 64
MIN_TIMESTAMP = "2000-01-01"
MAX_FUTURE_HOURS = 24


class EventType(StrEnum):
    SESSION_START = "session_start"
    SESSION_END = "session_end"
    MESSAGE_SENT = "message_sent"
    MESSAGE_RECEIVED = "message_received"
    TOOL_CALLED = "tool_called"
    FALLBACK_TRIGGERED = "fallback_triggered"
    ESCALATION_REQUESTED = "escalation_requested"
    CONVERSION = "conversion"
    FEEDBACK_SUBMITTED = "feedback_submitted"
    BUTTON_CLICKED = "button_clicked"
    FLOW_STARTED = "flow_started"
    FLOW_COMPLETED = "flow_completed"
    FLOW_ABANDONED = "flow_abandoned"
    EXPERIMENT_EXPOSURE = "experiment_exposure"


EVENT_TYPES: tuple[str, ...] = tuple(member.value for member in EventType)

# Checked in this order; the first that applies is the record's one reason.
REQUIRED_FIELDS = ("event_id", "session_id", "event_type", "timestamp")
QUARANTINE_REASONS: tuple[str, ...] = (
    "record_too_large",
    "invalid_json",
    "not_an_object",
    *(f"missing_field:{field}" for field in REQUIRED_FIELDS),
    *(
        f"invalid_type:{field}"
        for field in (
            "event_id", "session_id", "user_id", "event_type", "timestamp", "channel",
            "agent_version", "properties",
        )
    ),
    "unknown_event_type",
    "invalid_timestamp",
    "timestamp_out_of_range",
    "properties_not_object",
    "missing_property:test_name",
    "missing_property:variant",
)

LANDED_EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        ("event_type", pa.string()),
        ("event_timestamp", pa.timestamp("us")),
        ("channel", pa.string()),
        ("properties", pa.string()),
        ("load_id", pa.string()),
        ("loaded_at", pa.timestamp("us")),
        ("source_file", pa.string()),
        ("record_number", pa.int64()),
        ("content_digest", pa.uint64()),
    ]
)

# Later copies of an accepted event_id whose content differs from the first copy: counted as
# duplicates (the first copy wins) and kept here, so that the disagreement can be inspected.
# A load's index of its accepted events, read whole by later loads to deduplicate: an event
# id's 128-bit MD5 in two halves (fixed-width numbers read many times faster than the ids) and
# the content digest that decides whether a repeat conflicts.
EVENT_KEY_SCHEMA = pa.schema(
    [
        ("event_key_high", pa.uint64()),
        ("event_key_low", pa.uint64()),
        ("content_digest", pa.uint64()),
    ]
)

CONFLICT_SCHEMA = pa.schema(
    [
        ("load_id", pa.string()),
        ("source_file", pa.string()),
        ("record_number", pa.int64()),
        ("event_id", pa.string()),
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        ("event_type", pa.string()),
        ("event_timestamp", pa.timestamp("us")),
        ("channel", pa.string()),
        ("properties", pa.string()),
        ("loaded_at", pa.timestamp("us")),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("load_id", pa.string()),
        ("source_file", pa.string()),
        ("record_number", pa.int64()),
        ("reason", pa.string()),
        ("raw_record", pa.string()),
        ("loaded_at", pa.timestamp("us")),
    ]
)

AUDIT_SCHEMA = pa.schema(
    [
        ("load_id", pa.string()),
        ("source_file", pa.string()),
        ("file_format", pa.string()),
        ("file_sha256", pa.string()),
        ("file_bytes", pa.int64()),
        ("records_read", pa.int64()),
        ("records_accepted", pa.int64()),
        ("records_duplicate", pa.int64()),
        ("records_quarantined", pa.int64()),
        ("records_conflicting", pa.int64()),
        ("started_at", pa.timestamp("us")),
        ("loaded_at", pa.timestamp("us")),
    ]
)

DUCKDB_TYPES = {
    pa.string(): "varchar",
    pa.int64(): "bigint",
    pa.uint64(): "ubigint",
    pa.timestamp("us"): "timestamp",
}
