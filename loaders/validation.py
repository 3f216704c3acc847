"""The validation ladder of the raw event contract as one DuckDB query over ``raw_records``
(the records of one or more files: file_number, record_number, raw).

Each record gets at most one reason: the first rule it breaks, in the contract's order. The
query is set-based so that a million records validate in about a second; a loop in Python
would not. Two rules DuckDB's JSON parser cannot judge (it reads NaN, Infinity and numbers
beyond a double, and any nesting depth) run in Python, on the few records a cheap text test
marks as candidates.
"""

import re

import duckdb

from .schema import (
    EVENT_TYPES,
    MAX_FUTURE_HOURS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_PROPERTIES_DEPTH,
    MAX_RECORD_BYTES,
    MIN_TIMESTAMP,
)

EXTRACTED_FIELDS = (
    "event_id",
    "session_id",
    "user_id",
    "event_type",
    "timestamp",
    "channel",
    "properties",
)
# The one property the ladder looks at (its length); after the fields in json_type's list.
AGENT_VERSION_PATH = '$."properties"."agent_version"'

# ISO-8601 date, optional time with fraction, optional Z or offset (none means UTC).
ISO_TIMESTAMP_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)
EPOCH_MS_PATTERN = r"^-?\d{1,16}$"
NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"
# A number with an exponent of three digits or more, where JSON puts a value: first, or after
# a colon, comma or bracket. Text inside strings rarely has that shape; ids such as UUIDs
# often have a digit, an "e" and three digits (a fifth of UUID records), and sending each to
# Python tripled the cost of validation.
HUGE_EXPONENT_PATTERN = r"(^|[:,\[])\s*-?[0-9]+(\.[0-9]+)?[eE]\+?[0-9]{3}"
EXPONENT_PATTERN = r"[eE]\+?[0-9]{3}"  # what every huge exponent contains
MAX_ABS_EPOCH_MS = 10**15


# A JSON string literal, escapes included: what is inside one is text, not structure.
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_BRACKET = re.compile(r"[\[\]{}]")


def has_non_finite_number(text: str) -> bool:
    """NaN, Infinity, or a number no double can hold (1e400): JSON has none of them."""
    structure = _STRING_LITERAL.sub('""', text)
    if "NaN" in structure or "Infinity" in structure:
        return True
    return any(float(number) in (float("inf"), float("-inf")) for number in _NUMBER.findall(structure))


def nesting_depth(text: str) -> int:
    """How deep objects and arrays nest in a JSON text (an empty object is 1)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING_LITERAL.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """The Python halves of the ladder, callable from ``classify_sql``."""
    con.create_function(
        "has_non_finite_number", has_non_finite_number, [duckdb.sqltypes.VARCHAR], duckdb.sqltypes.BOOLEAN
    )
    con.create_function("nesting_depth", nesting_depth, [duckdb.sqltypes.VARCHAR], duckdb.sqltypes.INTEGER)


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + value + "'" for value in values) + ")"


def _missing(field: str) -> str:
    return f"(t_{field} is null or t_{field} = 'NULL' or (t_{field} = 'VARCHAR' and s_{field} = ''))"


def _present(field: str) -> str:
    return f"(t_{field} is not null and t_{field} <> 'NULL')"


def classify_sql(load_time_literal: str) -> str:
    """Select every raw record with its reason (NULL when valid) and its typed fields."""
    paths = ", ".join(f"'$.\"{field}\"'" for field in EXTRACTED_FIELDS)
    # field_types[1] is the type of the record itself (path '$'); the fields follow it.
    typed_columns = ",\n        ".join(
        f"field_types[{index + 2}] as t_{field}, field_values.{field} as s_{field}"
        for index, field in enumerate(EXTRACTED_FIELDS)
    )
    struct = (
        "{"
        + ", ".join(
            f'"{field}": "{"JSON" if field == "properties" else "VARCHAR"}"'
            for field in EXTRACTED_FIELDS
        )
        + "}"
    )
    exposure_missing = [
        f"when event_type_ok = 'experiment_exposure' and coalesce("
        f"json_type(properties_json, '$.{name}') <> 'VARCHAR' "
        f"or json_extract_string(properties_json, '$.{name}') = '', true) "
        f"then 'missing_property:{name}'"
        for name in ("test_name", "variant")
    ]
    return f"""
with sized as (
    -- A JSON line keeps its line break here (JSON ignores it); it is stripped only where it
    -- counts, because trimming every line costs more than validating it.
    select
        file_number,
        record_number,
        raw,
        -- CASE, not AND: DuckDB would trim every record (40% of the classification's time)
        case
            when strlen(raw) > {MAX_RECORD_BYTES}
                then strlen(rtrim(raw, chr(10) || chr(13))) > {MAX_RECORD_BYTES}
            else false
        end as is_too_large
    from raw_records
),

parsed as (
    select
        *,
        not is_too_large and json_valid(raw) as is_json
    from sized
),

strict as (
    -- DuckDB reads NaN, Infinity and 1e400; JSON has none of them. Only records that mention
    -- one are checked, in Python.
    select
        * replace (
            -- CASE, not AND: only CASE keeps DuckDB from calling Python on every row
            is_json and not case
                when contains(raw, 'NaN') or contains(raw, 'Infinity')
                    -- the exponent alone first: a third of the cost of the whole pattern
                    or (regexp_matches(raw, '{EXPONENT_PATTERN}')
                        and regexp_matches(raw, '{HUGE_EXPONENT_PATTERN}'))
                    then coalesce(has_non_finite_number(raw), false)
                else false
            end as is_json
        )
    from parsed
),

non_blank as (
    -- A blank line is never valid JSON, so only the invalid ones need the slower test.
    select *
    from strict
    where is_json or regexp_matches(raw, '\\S')
),

typed as (
    select
        file_number,
        record_number,
        raw,
        is_too_large,
        is_json,
        case when is_json then json_type(raw, ['$', {paths}, '{AGENT_VERSION_PATH}']) end as field_types,
        -- a record cannot nest deeper than it has opening brackets: count them first
        is_json and strlen(raw) - strlen(replace(replace(raw, '{{', ''), '[', '')) > {MAX_PROPERTIES_DEPTH}
            as may_nest_too_deep
    from non_blank
),

objects as (
    select
        *,
        coalesce(field_types[1] = 'OBJECT', false) as is_object
    from typed
),

decoded as (
    select
        *,
        case when is_object then from_json(raw, '{struct}') end as field_values
    from objects
),

fields as (
    select
        file_number,
        record_number,
        raw,
        is_too_large,
        is_json,
        is_object,
        {typed_columns},
        field_types[{len(EXTRACTED_FIELDS) + 2}] as t_agent_version,
        case
            when may_nest_too_deep and field_values.properties is not null
                then nesting_depth(field_values.properties) > {MAX_PROPERTIES_DEPTH}
            else false
        end as is_nested_too_deep
    from decoded
),

timestamps as (
    select
        *,
        s_event_type as event_type_ok,
        case
            when t_properties is null or t_properties = 'NULL' then '{{}}'::json
            when t_properties = 'OBJECT' then s_properties
        end as properties_json,
        case
            when t_timestamp in {NUMBER_TYPES}
                then try_cast(s_timestamp as double)
            when t_timestamp = 'VARCHAR' and regexp_full_match(s_timestamp, '{EPOCH_MS_PATTERN}')
                then try_cast(s_timestamp as double)
        end as epoch_ms,
        case
            when t_timestamp = 'VARCHAR' and regexp_full_match(s_timestamp, '{ISO_TIMESTAMP_PATTERN}')
                then case
                    -- Already UTC: the plain cast reads the same instant at half the cost.
                    when ends_with(s_timestamp, 'Z') then try_cast(s_timestamp as timestamp)
                    else try_cast(try_cast(s_timestamp as timestamptz) as timestamp)
                end
        end as iso_timestamp
    from fields
),

resolved as (
    select
        *,
        case
            when epoch_ms is not null and abs(epoch_ms) < {MAX_ABS_EPOCH_MS}e0
                then make_timestamp(cast(round(epoch_ms * 1000e0) as bigint))
            else iso_timestamp
        end as event_timestamp,
        epoch_ms is not null and abs(epoch_ms) >= {MAX_ABS_EPOCH_MS}e0 as is_absurd_epoch
    from timestamps
),

classified as (
    select
        *,
        case
            when is_too_large then 'record_too_large'
            when not is_json then 'invalid_json'
            when not is_object then 'not_an_object'
            when {_missing("event_id")} then 'missing_field:event_id'
            when {_missing("session_id")} then 'missing_field:session_id'
            when {_missing("event_type")} then 'missing_field:event_type'
            when {_missing("timestamp")} then 'missing_field:timestamp'
            when t_event_id <> 'VARCHAR' or length(s_event_id) > {MAX_ID_CHARS}
                then 'invalid_type:event_id'
            when t_session_id <> 'VARCHAR' or length(s_session_id) > {MAX_ID_CHARS}
                then 'invalid_type:session_id'
            when {_present("user_id")} and t_user_id <> 'VARCHAR' then 'invalid_type:user_id'
            when t_event_type <> 'VARCHAR' then 'invalid_type:event_type'
            when t_timestamp not in ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')
                then 'invalid_type:timestamp'
            when {_present("channel")} and (t_channel <> 'VARCHAR' or length(s_channel) > {MAX_NAME_CHARS})
                then 'invalid_type:channel'
            -- read from the properties' text, a fraction of the record's: a fifth of the cost
            when t_agent_version = 'VARCHAR'
                and length(json_extract_string(s_properties, '$."agent_version"')) > {MAX_NAME_CHARS}
                then 'invalid_type:agent_version'
            when is_nested_too_deep then 'invalid_type:properties'
            when s_event_type not in {_sql_list(EVENT_TYPES)} then 'unknown_event_type'
            when is_absurd_epoch then 'timestamp_out_of_range'
            when event_timestamp is null then 'invalid_timestamp'
            when event_timestamp < timestamp '{MIN_TIMESTAMP}'
                or event_timestamp > {load_time_literal} + interval {MAX_FUTURE_HOURS} hour
                then 'timestamp_out_of_range'
            when properties_json is null then 'properties_not_object'
            {exposure_missing[0]}
            {exposure_missing[1]}
        end as reason
    from resolved
)

select
    file_number,
    record_number,
    case when reason is not null then rtrim(raw, chr(10) || chr(13)) end as raw,
    reason,
    s_event_id as event_id,
    s_session_id as session_id,
    nullif(s_user_id, '') as user_id,
    s_event_type as event_type,
    event_timestamp,
    coalesce(nullif(lower(trim(s_channel)), ''), 'unknown') as channel,
    properties_json::varchar as properties
from classified
"""
