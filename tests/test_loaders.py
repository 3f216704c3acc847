import codecs
import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from loaders import event_keys, landing
from loaders import load as load_module
from loaders.event_keys import key_function_fingerprint
from loaders.faults import FAULT_ENV
from loaders.load import LOAD_STEPS, load_file, load_files
from loaders.paths import WarehousePaths
from loaders.readers import UnreadableFileError, read_jsonl
from loaders.schema import (
    AUDIT_SCHEMA,
    EVENT_KEY_SCHEMA,
    LANDED_EVENT_SCHEMA,
    MAX_RECORD_BYTES,
    QUARANTINE_REASONS,
    QUARANTINE_SCHEMA,
)

from .conftest import REPO, event, write_jsonl


def landed(paths: WarehousePaths, name: str = "events") -> list[dict]:
    con = duckdb.connect()
    glob = str(paths.loads / "*" / f"{name}.parquet")
    return con.execute(f"select * from read_parquet('{glob}') order by all").fetch_df().to_dict("records")


BIG = "x" * (1024 * 1024 + 10)


def nested(depth: int) -> dict:
    """Properties whose objects and arrays nest ``depth`` deep (the object itself is 1)."""
    value: object = 1
    for level in range(depth - 1):
        value = [value] if level % 2 else {"k": value}
    return {"deep": value}


NESTED_65 = nested(65)
REASON_CASES = {
    "record_too_large": json.dumps(event("big", properties={"text": BIG})),
    "invalid_json": '{"event_id": "a", ',
    "not_an_object": "[1, 2]",
    "missing_field:event_id": json.dumps(event("", session_id="s")),
    "missing_field:session_id": json.dumps({k: v for k, v in event("a").items() if k != "session_id"}),
    "missing_field:event_type": json.dumps(event("a", event_type=None)),
    "missing_field:timestamp": json.dumps(event("a", timestamp="")),
    "invalid_type:event_id": json.dumps(event(7)),
    "invalid_type:session_id": json.dumps(event("a", session_id=["s"])),
    "invalid_type:user_id": json.dumps(event("a", user_id=12)),
    "invalid_type:event_type": json.dumps(event("a", event_type=3)),
    "invalid_type:timestamp": json.dumps(event("a", timestamp=True)),
    "invalid_type:channel": json.dumps(event("a", channel={"x": 1})),
    "invalid_type:agent_version": json.dumps(event("a", properties={"agent_version": "v" * 129})),
    "invalid_type:properties": json.dumps(event("a", properties=NESTED_65)),
    "unknown_event_type": json.dumps(event("a", event_type="Message_Sent")),
    "invalid_timestamp": json.dumps(event("a", timestamp="2024-13-45T99:00:00Z")),
    "timestamp_out_of_range": json.dumps(event("a", timestamp="1999-12-31T23:59:59Z")),
    "properties_not_object": json.dumps(event("a", properties="{}")),
    "missing_property:test_name": json.dumps(
        event("a", event_type="experiment_exposure", properties={"variant": "b"})
    ),
    "missing_property:variant": json.dumps(
        event("a", event_type="experiment_exposure", properties={"test_name": "t", "variant": ""})
    ),
}


def test_every_reason_has_a_case() -> None:
    assert set(REASON_CASES) == set(QUARANTINE_REASONS)


@pytest.mark.parametrize("reason", sorted(REASON_CASES))
def test_each_quarantine_reason(reason: str, warehouse: WarehousePaths, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [event("good"), REASON_CASES[reason]])
    result = load_file(path, warehouse)
    assert (result.records_read, result.records_accepted, result.records_quarantined) == (2, 1, 1)
    [row] = landed(warehouse, "quarantine")
    assert row["reason"] == reason
    assert row["record_number"] == 2
    assert row["raw_record"] == REASON_CASES[reason]
    assert row["source_file"] == str(path.resolve())


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ('{"event_id": "a", "session_id": "s", "event_type": "message_sent", '
         '"timestamp": "2024-05-01T10:00:00Z", "properties": {"latency_ms": NaN}}', "invalid_json"),
        ('{"event_id": "a", "session_id": "s", "event_type": "message_sent", '
         '"timestamp": "2024-05-01T10:00:00Z", "properties": {"x": [-Infinity]}}', "invalid_json"),
        ('{"event_id": "a", "session_id": "s", "event_type": "message_sent", '
         '"timestamp": "2024-05-01T10:00:00Z", "properties": {"cost_usd": 1e400}}', "invalid_json"),
        ('{"event_id": "a", "session_id": "s", "event_type": "message_sent", '
         '"timestamp": "2024-05-01T10:00:00Z", "properties": {"x": [1,\t-99E+307]}}', "invalid_json"),
        ('{"event_id": "a", "session_id": "s", "event_type": "message_sent", "timestamp": NaN}',
         "invalid_json"),
        (json.dumps(event("a", channel="c" * 129)), "invalid_type:channel"),
        (json.dumps(event("a", properties={"deep": "@"}))
         .replace('"@"', '[' * 10_000 + ']' * 10_000), "invalid_type:properties"),
    ],
)
def test_what_json_does_not_allow_is_quarantined(record, reason, warehouse, tmp_path) -> None:
    load_file(write_jsonl(tmp_path / "in.jsonl", [event("good"), record]), warehouse)
    [row] = landed(warehouse, "quarantine")
    assert row["reason"] == reason


def test_limits_are_inclusive_and_strings_are_not_structure(warehouse, tmp_path) -> None:
    """64 levels, 128-character names and NaN, brackets or 1e400 inside strings are fine."""
    fine = [
        event("deep", properties=nested(64)),
        event("names", channel="c" * 128, properties={"agent_version": "v" * 128}),
        event("text", properties={"text": "NaN Infinity 1e400 [[[[{{{{" * 20, "big": 1e300}),
    ]
    result = load_file(write_jsonl(tmp_path / "in.jsonl", fine), warehouse)
    assert (result.records_accepted, result.records_quarantined) == (3, 0)


def test_only_numbers_shaped_like_huge_ones_are_sent_to_python() -> None:
    """The text test that picks records for the Python check: every number JSON cannot hold
    in a double passes it; ids that merely contain a digit, an "e" and three digits do not."""
    import duckdb

    from loaders.validation import HUGE_EXPONENT_PATTERN

    def picked(text: str) -> bool:
        return duckdb.execute("select regexp_matches(?, ?)", [text, HUGE_EXPONENT_PATTERN]).fetchone()[0]

    for huge in ('{"a": 1e309}', '{"a":[0, -1.5E+999]}', '[2e400]', '1e400', '{"a":\t99e307}'):
        assert picked(huge), huge
    ids = '{"event_id": "0ed08a32-4e12-4167-9e11-ada8394cf76c", "session_id": "s-1e400", "n": 1e30}'
    assert not picked(ids)


def test_structure_helpers() -> None:
    from loaders.validation import has_non_finite_number, nesting_depth

    assert nesting_depth('{"a": [1, {"b": "]]]]"}]}') == 3
    assert nesting_depth("1") == 0
    assert nesting_depth(json.dumps(nested(64))) == 64
    assert has_non_finite_number('{"a": 1e309}')
    assert has_non_finite_number('[-Infinity]')
    assert not has_non_finite_number('{"a": "NaN", "b": 1.5e308, "c": -2e-400}')


def test_a_conflicting_duplicate_is_counted_and_kept(warehouse, tmp_path) -> None:
    first = load_file(write_jsonl(tmp_path / "a.jsonl", [event("e1"), event("e2")]), warehouse)
    assert first.records_conflicting == 0
    later = [
        event("e1"),  # the same event again: a plain duplicate
        event("e2", session_id="other"),  # same id, other content: a conflict
        event("e3"),
        event("e3", event_type="message_received"),  # conflicts with its copy in this file
    ]
    result = load_file(write_jsonl(tmp_path / "b.jsonl", later), warehouse)
    assert (result.records_accepted, result.records_duplicate, result.records_conflicting) == (1, 3, 2)
    assert "duplicate 3 (2 conflicting)" in result.summary()
    conflicts = landed(warehouse, "conflicts")
    assert sorted((row["event_id"], row["record_number"]) for row in conflicts) == [("e2", 2), ("e3", 4)]
    assert {row["session_id"] for row in conflicts if row["event_id"] == "e2"} == {"other"}
    [audit] = [row for row in landed(warehouse, "audit") if row["load_id"] == result.load_id]
    assert audit["records_conflicting"] == 2
    # the first accepted copy is the one that stays
    kept = {row["event_id"]: row["session_id"] for row in landed(warehouse)}
    assert kept == {"e1": "s1", "e2": "s1", "e3": "s1"}


def sized_record(event_id: str, size: int) -> str:
    """A valid event whose JSON text is exactly `size` bytes."""
    stub = json.dumps(event(event_id, properties={"text": ""}))
    return json.dumps(event(event_id, properties={"text": "x" * (size - len(stub))}))


@pytest.mark.parametrize("line_break", ["\n", "\r\n"])
def test_size_limit_is_exact_and_ignores_the_line_break(
    line_break: str, warehouse: WarehousePaths, tmp_path: Path
) -> None:
    at_limit, over_limit = sized_record("at", MAX_RECORD_BYTES), sized_record("over", MAX_RECORD_BYTES + 1)
    assert (len(at_limit), len(over_limit)) == (MAX_RECORD_BYTES, MAX_RECORD_BYTES + 1)
    path = tmp_path / "sizes.jsonl"
    path.write_bytes((at_limit + line_break + over_limit + line_break).encode())
    result = load_file(path, warehouse)
    assert (result.records_accepted, result.records_quarantined) == (1, 1)
    [row] = landed(warehouse, "quarantine")
    assert (row["reason"], row["record_number"], row["raw_record"]) == (
        "record_too_large", 2, over_limit,
    )


def test_first_rule_in_spec_order_wins(warehouse: WarehousePaths, tmp_path: Path) -> None:
    # missing session_id comes before the invalid event_id type and the bad timestamp
    record = json.dumps({"event_id": 5, "event_type": "nope", "timestamp": "bad"})
    load_file(write_jsonl(tmp_path / "in.jsonl", [record]), warehouse)
    assert landed(warehouse, "quarantine")[0]["reason"] == "missing_field:session_id"


def test_future_timestamp_limit_is_24_hours_after_load(warehouse, tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(hours=23)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=25)).isoformat()
    load_file(
        write_jsonl(tmp_path / "in.jsonl", [event("a", timestamp=soon), event("b", timestamp=later)]),
        warehouse,
    )
    assert [r["event_id"] for r in landed(warehouse)] == ["a"]
    assert landed(warehouse, "quarantine")[0]["reason"] == "timestamp_out_of_range"


def test_duplicates_within_a_file_and_across_loads(warehouse, tmp_path) -> None:
    first = write_jsonl(
        tmp_path / "a.jsonl", [event("e1", channel="web"), event("e2"), event("e1", channel="app")]
    )
    result = load_file(first, warehouse)
    assert (result.records_accepted, result.records_duplicate) == (2, 1)
    second = write_jsonl(tmp_path / "b.jsonl", [event("e2"), event("e3"), event("e3")])
    result = load_file(second, warehouse)
    assert (result.records_read, result.records_accepted, result.records_duplicate) == (3, 1, 2)
    rows = landed(warehouse)
    assert sorted(r["event_id"] for r in rows) == ["e1", "e2", "e3"]
    assert next(r for r in rows if r["event_id"] == "e1")["channel"] == "web"


def test_a_batch_deduplicates_against_earlier_loads_and_its_own_files(warehouse, tmp_path) -> None:
    load_file(write_jsonl(tmp_path / "earlier.jsonl", [event("e1")]), warehouse)
    files = [
        write_jsonl(tmp_path / "a.jsonl", [event("e1"), event("e2")]),
        write_jsonl(tmp_path / "b.jsonl", [event("e2"), event("e3")]),
        write_jsonl(tmp_path / "c.jsonl", [event("e3"), event("e1"), event("e4")]),
    ]
    results = list(load_files(files, warehouse))
    assert [(r.records_accepted, r.records_duplicate) for r in results] == [(1, 1), (1, 1), (1, 2)]
    assert sorted(r["event_id"] for r in landed(warehouse)) == ["e1", "e2", "e3", "e4"]


def test_a_batch_commits_in_groups_with_one_audit_row_per_file(warehouse, tmp_path) -> None:
    files = [write_jsonl(tmp_path / f"f{n}.jsonl", [event(f"e{n}"), event(f"x{n}")]) for n in range(4)]
    same = tmp_path / "same-as-f1.jsonl"
    same.write_bytes(files[1].read_bytes())
    results = list(load_files([*files, same], warehouse))
    commits = [p for p in warehouse.loads.iterdir() if p.name != landing.EMPTY_LOAD_ID]
    assert len(commits) == 1
    audit = landed(warehouse, "audit")
    assert sorted(r["load_id"] for r in audit) == sorted(r.load_id for r in results[:4])
    assert len({r["loaded_at"] for r in audit}) == 1
    assert results[4].skipped_as_already_loaded and results[4].previous_load_id == results[1].load_id
    by_load = {r["load_id"]: r["source_file"] for r in landed(warehouse)}
    assert {by_load[r.load_id] for r in results[:4]} == {str(f.resolve()) for f in files}


@pytest.mark.parametrize("store_bytes", [1, load_module.STORE_BYTES], ids=["each-batch", "default"])
def test_a_broken_file_ends_its_group_after_the_files_before_it_commit(
    warehouse, tmp_path, monkeypatch, store_bytes
) -> None:
    # stored batch by batch, the good file is in the scratch table before the broken one is
    # read; by default both are still in memory when the read fails
    monkeypatch.setattr(load_module, "STORE_BYTES", store_bytes)
    good = write_jsonl(tmp_path / "a.jsonl", [event("e1")])
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"PAR1 but no footer")
    after = write_jsonl(tmp_path / "c.jsonl", [event("e2")])
    loaded = []
    with pytest.raises(UnreadableFileError, match=r"b\.parquet"):
        for result in load_files([good, broken, after], warehouse):
            loaded.append(result)
    assert [r.source_file for r in loaded] == [str(good.resolve())]
    assert [r["event_id"] for r in landed(warehouse)] == ["e1"]
    assert [r["source_file"] for r in landed(warehouse, "audit")] == [str(good.resolve())]
    [result] = list(load_files([after], warehouse))
    assert result.records_accepted == 1


@pytest.mark.parametrize("store_bytes", [1, load_module.STORE_BYTES], ids=["each-batch", "default"])
def test_progress_counts_each_files_records_as_they_are_stored(
    warehouse, tmp_path, monkeypatch, store_bytes
) -> None:
    monkeypatch.setattr(load_module, "STORE_BYTES", store_bytes)
    files = [
        write_jsonl(tmp_path / "a.jsonl", [event(f"a{n}") for n in range(3)]),
        write_jsonl(tmp_path / "b.jsonl", [event(f"b{n}") for n in range(5)]),
    ]
    reported: list[tuple[str, int]] = []
    results = list(load_files(files, warehouse, progress=lambda path, n: reported.append((path.name, n))))
    assert reported == [("a.jsonl", 3), ("b.jsonl", 5)]
    assert [r.records_accepted for r in results] == [3, 5]
    assert sorted(r["record_number"] for r in landed(warehouse)) == [1, 1, 2, 2, 3, 3, 4, 5]


def test_loads_from_before_event_keys_were_kept_still_deduplicate(warehouse, tmp_path) -> None:
    first = load_file(write_jsonl(tmp_path / "a.jsonl", [event("e1"), event("e2")]), warehouse)
    folder = warehouse.loads / first.load_id
    (folder / "event_keys.parquet").unlink()
    # the oldest loads kept no content digest either: their repeats are never judged conflicting
    con = duckdb.connect()
    events = str(folder / "events.parquet")
    con.execute(
        f"copy (select * exclude (content_digest) from read_parquet('{events}')) "
        f"to '{events}.old' (format parquet)"
    )
    Path(f"{events}.old").replace(events)
    later = [event("e1"), event("e2", session_id="other"), event("e3")]
    result = load_file(write_jsonl(tmp_path / "b.jsonl", later), warehouse)
    assert (result.records_accepted, result.records_duplicate, result.records_conflicting) == (1, 2, 0)
    assert (folder / "event_keys.parquet").exists()
    again = load_file(write_jsonl(tmp_path / "c.jsonl", [event("e3", session_id="other")]), warehouse)
    assert (again.records_duplicate, again.records_conflicting) == (1, 1)


def test_keys_from_another_key_function_are_written_again(warehouse, tmp_path) -> None:
    first = load_file(write_jsonl(tmp_path / "a.jsonl", [event("e1")]), warehouse)
    keys = warehouse.loads / first.load_id / "event_keys.parquet"
    # as if a DuckDB whose md5_number answered otherwise had written them
    con = duckdb.connect()
    con.execute(
        "copy (select xor(event_key_high, 1) as event_key_high, event_key_low, content_digest "
        f"from read_parquet('{keys}')) to '{keys}.other' (format parquet)"
    )
    Path(f"{keys}.other").replace(keys)
    (warehouse.landing / "event_keys.fingerprint").write_text("another key function")
    result = load_file(write_jsonl(tmp_path / "b.jsonl", [event("e1"), event("e2")]), warehouse)
    assert (result.records_accepted, result.records_duplicate) == (1, 1)
    assert (warehouse.landing / "event_keys.fingerprint").read_text() == key_function_fingerprint(con)


def indexed_loads(paths: WarehousePaths) -> list[str]:
    con = duckdb.connect(str(paths.key_index), read_only=True)
    try:
        return [row[0] for row in con.execute("select load_folder from indexed_loads order by 1").fetchall()]
    finally:
        con.close()


def test_keys_reach_the_index_in_bulk_and_count_as_landed_before(warehouse, tmp_path, monkeypatch) -> None:
    first = load_file(write_jsonl(tmp_path / "a.jsonl", [event("e1"), event("e2")]), warehouse)
    # an empty index takes the first load in at once
    assert first.load_id in indexed_loads(warehouse)
    monkeypatch.setattr(event_keys, "MERGE_SHARE", 10.0)
    second = load_file(write_jsonl(tmp_path / "b.jsonl", [event("e3")]), warehouse)
    # not a tenth of the index yet: read from its keys file by the loads after it
    assert second.load_id not in indexed_loads(warehouse)
    third = load_file(write_jsonl(tmp_path / "c.jsonl", [event("e1"), event("e3"), event("e4")]), warehouse)
    assert (third.records_accepted, third.records_duplicate) == (1, 2)
    monkeypatch.setattr(event_keys, "MERGE_SHARE", 0.1)
    load_file(write_jsonl(tmp_path / "d.jsonl", [event("e5")]), warehouse)
    assert {second.load_id, third.load_id} <= set(indexed_loads(warehouse))
    again = load_file(write_jsonl(tmp_path / "e.jsonl", [event(f"e{i}") for i in range(1, 7)]), warehouse)
    assert (again.records_accepted, again.records_duplicate) == (1, 5)


@pytest.mark.parametrize("damage", ["removed", "garbage", "load_gone"])
def test_a_lost_or_stale_key_index_is_built_again(damage, warehouse, tmp_path) -> None:
    first = load_file(write_jsonl(tmp_path / "a.jsonl", [event("e1"), event("e2")]), warehouse)
    gone = load_file(write_jsonl(tmp_path / "b.jsonl", [event("e3")]), warehouse)
    if damage == "removed":
        warehouse.key_index.unlink()
    elif damage == "garbage":
        warehouse.key_index.write_bytes(b"not a database" * 1000)
    else:
        # a load the index holds is no longer landed: its events must not count as duplicates
        landing.shutil.rmtree(warehouse.loads / gone.load_id)
    result = load_file(write_jsonl(tmp_path / "c.jsonl", [event("e1"), event("e3")]), warehouse)
    expected = (1, 1) if damage == "load_gone" else (0, 2)
    assert (result.records_accepted, result.records_duplicate) == expected
    assert first.load_id in indexed_loads(warehouse)
    assert (gone.load_id in indexed_loads(warehouse)) == (damage != "load_gone")


@pytest.mark.parametrize("step", ["committed", "merging_keys"])
def test_a_load_killed_before_its_keys_reach_the_index_still_counts(step, warehouse, tmp_path) -> None:
    load_file(write_jsonl(tmp_path / "before.jsonl", [event("e0")]), warehouse)
    path = write_jsonl(tmp_path / "crash.jsonl", [event("e1"), event("e2")])
    env = dict(os.environ, **{FAULT_ENV: step, "CHAT_ANALYTICS_HOME": str(warehouse.home)})
    killed = subprocess.run(
        [sys.executable, "-m", "cli.main", "load", str(path)], env=env, cwd=REPO, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL
    # the load committed; its keys did not reach the index
    assert sorted(r["event_id"] for r in landed(warehouse)) == ["e0", "e1", "e2"]
    [crashed] = [r["load_id"] for r in landed(warehouse, "audit") if r["source_file"] == str(path.resolve())]
    assert crashed not in indexed_loads(warehouse)
    after = write_jsonl(tmp_path / "after.jsonl", [event("e1"), event("e2"), event("e3")])
    result = load_file(after, warehouse)
    assert (result.records_accepted, result.records_duplicate) == (1, 2)
    assert crashed in indexed_loads(warehouse)


def test_a_quarantined_copy_does_not_block_a_later_valid_one(warehouse, tmp_path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [event("e1", timestamp="bad"), event("e1")])
    result = load_file(path, warehouse)
    assert (result.records_accepted, result.records_quarantined, result.records_duplicate) == (1, 1, 0)


def test_reloading_the_same_content_changes_nothing(warehouse, tmp_path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [event("e1"), event("e2")])
    load_file(path, warehouse)
    before = sorted(p.name for p in warehouse.loads.iterdir())
    copy = tmp_path / "renamed.jsonl"
    copy.write_bytes(path.read_bytes())
    result = load_file(copy, warehouse)
    assert result.skipped_as_already_loaded
    assert "skipped" in result.summary()
    assert sorted(p.name for p in warehouse.loads.iterdir()) == before


def test_empty_and_blank_files(warehouse, tmp_path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert load_file(empty, warehouse).records_read == 0
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n" + json.dumps(event("e1")) + "\n\n")
    result = load_file(blank, warehouse)
    assert (result.records_read, result.records_accepted) == (1, 1)
    assert landed(warehouse)[0]["record_number"] == 3
    audit = landed(warehouse, "audit")
    assert sorted(r["records_read"] for r in audit) == [0, 1]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("cut.jsonl.gz", gzip.compress(b'{"event_id": "e1"}\n' * 50)[:-20]),
        ("fake.jsonl", b"\x1f\x8b not really gzip\n"),
        ("fake.parquet", b"PAR1 but no footer"),
    ],
)
def test_a_broken_file_is_named_and_nothing_lands(name, content, warehouse, tmp_path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=name):
        load_file(path, warehouse)
    assert landed(warehouse) == []
    assert [r["records_read"] for r in landed(warehouse, "audit")] == []
    # The next good file loads as if the broken one had never been tried.
    assert load_file(write_jsonl(tmp_path / "good.jsonl", [event("e1")]), warehouse).records_accepted == 1


@pytest.mark.parametrize("name", ["bom.jsonl", "bom.jsonl.gz", "bom.csv"])
def test_a_byte_order_mark_is_not_part_of_the_first_record(name, warehouse, tmp_path) -> None:
    if name.endswith(".csv"):
        text = "event_id,session_id,event_type,timestamp\nb1,s1,session_start,2024-05-01T10:00:00Z\n"
    else:
        text = json.dumps(event("b1")) + "\n"
    data = codecs.BOM_UTF8 + text.encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    result = load_file(path, warehouse)
    assert (result.records_read, result.records_accepted) == (1, 1)
    assert landed(warehouse)[0]["record_number"] == 1


def test_landed_files_have_the_declared_columns(warehouse, tmp_path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [event("e1"), "oops"])
    load_id = load_file(path, warehouse).load_id
    for name, schema in (
        ("events", LANDED_EVENT_SCHEMA),
        ("event_keys", EVENT_KEY_SCHEMA),
        ("quarantine", QUARANTINE_SCHEMA),
        ("audit", AUDIT_SCHEMA),
    ):
        written = pq.read_schema(warehouse.loads / load_id / f"{name}.parquet")
        # Names and types, not nullability: DuckDB marks constant columns as required.
        assert [(f.name, f.type) for f in written] == [(f.name, f.type) for f in schema], name


def test_gzip_unicode_and_timestamp_forms(warehouse, tmp_path) -> None:
    records = [
        event("naive", timestamp="2024-05-01T10:00:00", properties={"text": "héllo 👋 日本"}),
        event("offset", timestamp="2024-05-01T12:00:00+02:00", channel="  WhatsApp "),
        event("epoch", timestamp=1714557600000, channel=""),
        event("zulu", timestamp="2024-05-01T10:00:00.123Z", user_id=""),
    ]
    path = tmp_path / "in.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    assert load_file(path, warehouse).records_accepted == 4
    rows = {r["event_id"]: r for r in landed(warehouse)}
    for name in ("naive", "offset", "epoch"):
        assert str(rows[name]["event_timestamp"]) == "2024-05-01 10:00:00"
    assert str(rows["zulu"]["event_timestamp"]) == "2024-05-01 10:00:00.123000"
    assert rows["offset"]["channel"] == "whatsapp"
    assert rows["epoch"]["channel"] == "unknown"
    assert rows["zulu"]["user_id"] is None
    assert json.loads(rows["naive"]["properties"])["text"] == "héllo 👋 日本"


def test_csv_with_quoted_json_properties(warehouse, tmp_path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "event_id,session_id,user_id,event_type,timestamp,channel,properties\n"
        'c1,s1,,message_sent,2024-05-01T10:00:00Z,web,"{""text"": ""a, b"", ""latency_ms"": 5}"\n'
        "c2,s1,u1,conversion,1714557600000,,\n"
        'c3,s1,,conversion,2024-05-01T10:00:00Z,web,"not json"\n',
        encoding="utf-8",
    )
    result = load_file(path, warehouse)
    assert (result.records_read, result.records_accepted, result.records_quarantined) == (3, 2, 1)
    rows = {r["event_id"]: r for r in landed(warehouse)}
    assert json.loads(rows["c1"]["properties"]) == {"text": "a, b", "latency_ms": 5}
    assert rows["c2"]["properties"] == "{}"
    quarantined = landed(warehouse, "quarantine")[0]
    assert (quarantined["reason"], quarantined["record_number"]) == ("properties_not_object", 3)


def test_parquet_input(warehouse, tmp_path) -> None:
    path = tmp_path / "in.parquet"
    table = pa.table(
        {
            "event_id": ["p1", "p2"],
            "session_id": ["s1", None],
            "event_type": ["session_start", "session_end"],
            "timestamp": ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"],
            "properties": ['{"agent_version": "v1"}', None],
        }
    )
    pq.write_table(table, path)
    result = load_file(path, warehouse)
    assert (result.records_accepted, result.records_quarantined) == (1, 1)
    assert landed(warehouse, "quarantine")[0]["reason"] == "missing_field:session_id"


def test_a_group_of_json_lines_csv_and_parquet_files_is_validated_as_one(
    warehouse, tmp_path
) -> None:
    # their records are stored together (JSON lines as large strings, the others as strings)
    jsonl = write_jsonl(tmp_path / "a.jsonl", [event("j1"), event("shared"), "not json"])
    csv = tmp_path / "b.csv"
    csv.write_text(
        "event_id,session_id,event_type,timestamp\n"
        "c1,s1,message_sent,2024-05-01T10:00:00Z\nshared,s1,message_sent,2024-05-01T10:00:00Z\n",
        encoding="utf-8",
    )
    parquet = tmp_path / "c.parquet"
    pq.write_table(
        pa.table({"event_id": ["p1"], "session_id": ["s1"], "event_type": ["message_sent"],
                  "timestamp": ["2024-05-01T10:00:00Z"]}),
        parquet,
    )
    results = list(load_files([jsonl, csv, parquet], warehouse))
    assert [(r.records_read, r.records_accepted, r.records_duplicate, r.records_quarantined)
            for r in results] == [(3, 2, 0, 1), (2, 1, 1, 0), (1, 1, 0, 0)]
    assert len({r.load_id for r in results}) == 3
    by_file = {r["event_id"]: (r["source_file"], r["record_number"]) for r in landed(warehouse)}
    assert by_file == {
        "j1": (str(jsonl.resolve()), 1), "shared": (str(jsonl.resolve()), 2),
        "c1": (str(csv.resolve()), 1), "p1": (str(parquet.resolve()), 1),
    }


def reference_lines(data: bytes) -> list[str]:
    """What a plain text reader sees: lines split at LF only, each keeping its break, and
    no byte order mark."""
    pieces = data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="replace").split("\n")
    return [piece + "\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


line_bytes = st.one_of(
    st.text(
        alphabet=st.characters(exclude_characters="\n", exclude_categories=["Cs"]), max_size=40
    ).map(str.encode),
    st.binary(max_size=40).map(lambda raw: raw.replace(b"\n", b"")),  # invalid UTF-8 too
)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(line_bytes, max_size=30),
    final_break=st.booleans(),
    block_bytes=st.integers(1, 64),
    compress=st.booleans(),
)
def test_jsonl_reader_matches_a_plain_line_split(
    lines, final_break, block_bytes, compress, tmp_path_factory
) -> None:
    # Tiny blocks put line breaks, multi-byte characters and over-long lines at block edges.
    data = b"\n".join(lines) + (b"\n" if final_break and lines else b"")
    assume(compress or not data.startswith(b"\x1f\x8b"))  # that is a broken gzip file
    path = tmp_path_factory.mktemp("read") / "in.jsonl"
    path.write_bytes(gzip.compress(data) if compress else data)
    tables = list(read_jsonl(path, block_bytes))
    raw = [text for table in tables for text in table.column("raw").to_pylist()]
    numbers = [n for table in tables for n in table.column("record_number").to_pylist()]
    assert raw == reference_lines(data)
    assert numbers == list(range(1, len(raw) + 1))


@pytest.mark.parametrize("data", [codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\n", b"\n", b""])
def test_jsonl_reader_on_files_without_records(data, tmp_path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(data)
    raw = [text for table in read_jsonl(path) for text in table.column("raw").to_pylist()]
    assert raw == reference_lines(data)


@pytest.mark.parametrize("block_bytes", [1000, 100_000, 200_000, 1 << 20])
def test_jsonl_reader_keeps_lines_longer_than_a_block(block_bytes, tmp_path) -> None:
    lines = [b"a\n", b"x" * 300_000 + b"\n", b"b\n", b"y" * 70_000 + b"\n"]
    lines += [b"z\n"] * 150_000 + [b"c"]
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"".join(lines))
    raw = [text for table in read_jsonl(path, block_bytes) for text in table.column("raw").to_pylist()]
    assert raw == [line.decode() for line in lines]


good_line = st.builds(
    lambda i, t: json.dumps(event(f"e{i}", event_type=t)),
    st.integers(0, 30),
    st.sampled_from(["message_sent", "conversion", "session_start"]),
)
bad_line = st.sampled_from([v for k, v in REASON_CASES.items() if k != "record_too_large"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.one_of(good_line, bad_line), max_size=25), min_size=1, max_size=3))
def test_every_record_is_accounted_for(batches, tmp_path_factory) -> None:
    home = tmp_path_factory.mktemp("wh")
    paths = WarehousePaths(home)
    accepted_total = 0
    for number, lines in enumerate(batches):
        path = write_jsonl(home / f"in{number}.jsonl", [*lines, f"# batch {number}"])
        result = load_file(path, paths)
        assert result.records_read == len(lines) + 1
        assert result.records_read == (
            result.records_accepted + result.records_duplicate + result.records_quarantined
        )
        accepted_total += result.records_accepted
    ids = [r["event_id"] for r in landed(paths)]
    assert len(ids) == len(set(ids)) == accepted_total


@pytest.mark.parametrize("step", LOAD_STEPS)
def test_a_load_killed_at_any_step_leaves_all_or_nothing(step, warehouse, tmp_path) -> None:
    load_file(write_jsonl(tmp_path / "before.jsonl", [event("e0")]), warehouse)
    records = [event(f"e{i}") for i in range(1, 200)] + [event("e5"), "oops"]
    path = write_jsonl(tmp_path / "crash.jsonl", records)
    env = dict(os.environ, **{FAULT_ENV: step, "CHAT_ANALYTICS_HOME": str(warehouse.home)})
    killed = subprocess.run(
        [sys.executable, "-m", "cli.main", "load", str(path)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL
    assert sorted(r["event_id"] for r in landed(warehouse)) == ["e0"]
    result = load_file(path, warehouse)
    assert (
        result.records_read,
        result.records_accepted,
        result.records_duplicate,
        result.records_quarantined,
    ) == (201, 199, 1, 1)
    assert len(landed(warehouse)) == 200
    assert not any(warehouse.landing_tmp.iterdir())


def run_load_command(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "load", *map(str, paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


def test_cli_reports_counts_and_missing_paths(warehouse, tmp_path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [event("e1"), event("e1"), "bad"])
    done = run_load_command(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "read 3, accepted 1, duplicate 1, quarantined 1" in done.stdout
    assert path.name in done.stdout
    missing = run_load_command(tmp_path / "nope.jsonl")
    assert missing.returncode == 2
    assert "nope.jsonl: no such file or folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"event_id": "e1"}\n')[:-8])
    unreadable = run_load_command(broken)
    assert unreadable.returncode == 2
    assert "broken.jsonl.gz: cannot be read as JSON lines" in unreadable.stderr
    assert "Traceback" not in unreadable.stderr
