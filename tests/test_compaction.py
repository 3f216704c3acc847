"""Compaction of the landing zone keeps every landed row, the audit and deduplication, and a
compaction killed at any point leaves readers the same rows."""

import signal
from pathlib import Path

import duckdb
import pytest

from loaders import landing
from loaders.compaction import compact_landing, plan
from loaders.load import load_file
from loaders.paths import WarehousePaths

from .conftest import compact_in_a_process, event, write_jsonl

KILL_POINTS = ("compaction:staged", "compaction:committed", "compaction:removing")


def landed_rows(paths: WarehousePaths, folders: list[Path] | None = None) -> dict[str, list]:
    """Every row of every kind of landing file, sorted; of the given load folders, or of every
    folder there is (what a reader that globs the landing zone sees)."""
    with duckdb.connect() as con:
        rows = {}
        for kind in landing.LOAD_FILES:
            files = (
                [str(folder / f"{kind}.parquet") for folder in folders]
                if folders is not None
                else str(paths.loads / "*" / f"{kind}.parquet")
            )
            found = con.execute("select * from read_parquet(?, union_by_name = true)", [files]).fetchall()
            rows[kind] = sorted(found, key=repr)
        return rows


def visible_rows(paths: WarehousePaths) -> dict[str, list]:
    return landed_rows(paths, [paths.loads / landing.EMPTY_LOAD_ID] + [
        load.folder for load in landing.visible_loads(paths)])


def small_loads(paths: WarehousePaths, tmp_path: Path, count: int, prefix: str = "") -> list[Path]:
    """``count`` loads of one file each: five events, a copy of an event of the load before
    (a duplicate; every third one with other content, a conflict) and a line that is not JSON."""
    files = []
    for number in range(count):
        records = [event(f"{prefix}e{number}_{index}", session_id=f"s{number}") for index in range(5)]
        if number:
            earlier = event(f"{prefix}e{number - 1}_0", session_id=f"s{number - 1}")
            if number % 3 == 0:
                earlier["channel"] = "other"
            records.append(earlier)
        path = write_jsonl(tmp_path / f"{prefix}load{number}.jsonl", [*records, "not json"])
        load_file(path, paths)
        files.append(path)
    return files


def indexed_loads(paths: WarehousePaths) -> list[str]:
    with duckdb.connect(str(paths.key_index), read_only=True) as con:
        return [row[0] for row in con.execute("select load_folder from indexed_loads order by 1").fetchall()]


def folder_names(paths: WarehousePaths) -> list[str]:
    return sorted(folder.name for folder in paths.loads.iterdir() if folder.name != landing.EMPTY_LOAD_ID)


def test_compaction_keeps_every_row_the_audit_and_deduplication(warehouse, tmp_path) -> None:
    files = small_loads(warehouse, tmp_path, 12)
    members = folder_names(warehouse)
    before = landed_rows(warehouse)
    assert len(before["conflicts"]) == 3 and len(before["quarantine"]) == 12
    sizes = [(warehouse.loads / name / "events.parquet").stat().st_size for name in members]

    done = compact_landing(warehouse, report=lambda _line: None, min_run=4,
                           compacted_bytes=6 * max(sizes))
    assert [compaction.loads for compaction in done] == [6, 6]
    assert sum(compaction.rows["events"] for compaction in done) == len(before["events"])
    names = folder_names(warehouse)
    assert names == sorted(compaction.folder for compaction in done)
    # each compacted load is named after the span of load times it holds
    spans = [landing.load_span(name) for name in names]
    assert spans == [(landing.load_time_of(members[0]), landing.load_time_of(members[5])),
                     (landing.load_time_of(members[6]), landing.load_time_of(members[11]))]
    assert landing.latest_load_time(warehouse) == landing.load_time_of(members[-1])
    assert landed_rows(warehouse) == before
    assert not list(warehouse.landing_tmp.iterdir())
    # the key index lists the compacted loads in place of their members: nothing to rebuild
    assert set(names) <= set(indexed_loads(warehouse))
    assert not set(members) & set(indexed_loads(warehouse))

    # a file loaded before is still known by its content, and its events by their keys
    again = load_file(files[3], warehouse)
    assert again.skipped_as_already_loaded
    assert again.previous_load_id == members[3]
    mixed = load_file(write_jsonl(tmp_path / "mixed.jsonl", [event("e3_1", session_id="s3"), event("new")]),
                      warehouse)
    assert (mixed.records_accepted, mixed.records_duplicate) == (1, 1)

    # small compacted loads are compacted again with the loads after them
    small_loads(warehouse, tmp_path, 4, prefix="late")
    expected = landed_rows(warehouse)
    [again_done] = compact_landing(warehouse, report=lambda _line: None, min_run=4)
    assert again_done.loads == 2 + 1 + 4
    assert folder_names(warehouse) == [again_done.folder]
    assert landed_rows(warehouse) == expected


def test_only_runs_of_enough_small_loads_are_compacted(warehouse, tmp_path) -> None:
    small_loads(warehouse, tmp_path, 3, prefix="a")
    big = [event(f"big{index}", properties={"pad": "x" * 2000}) for index in range(40)]
    load_file(write_jsonl(tmp_path / "big.jsonl", big), warehouse)
    small_loads(warehouse, tmp_path, 5, prefix="b")
    loads = landing.visible_loads(warehouse)
    big_bytes = (loads[3].folder / "events.parquet").stat().st_size
    chunks = plan(loads, small_load_bytes=big_bytes, min_run=4)
    # the big load ends the first run, which is too short; the second is compacted whole
    assert [[load.folder for load in chunk] for chunk in chunks] == [[load.folder for load in loads[4:]]]
    assert plan(loads, small_load_bytes=big_bytes + 1, min_run=4) == [loads]
    assert plan(loads, small_load_bytes=big_bytes, min_run=6) == []


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_compaction_killed_at_any_point_leaves_readers_the_same_rows(point, warehouse, tmp_path) -> None:
    small_loads(warehouse, tmp_path, 6)
    members = folder_names(warehouse)
    before = landed_rows(warehouse)
    killed = compact_in_a_process(warehouse, point, min_run=4)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # readers that take no lock see each row once, in the members or in the compacted load
    assert visible_rows(warehouse) == before
    if point != "compaction:staged":
        assert [load.first != load.last for load in landing.visible_loads(warehouse)] == [True]
    # the next holder of the load lock finishes the compaction or discards it
    result = load_file(write_jsonl(tmp_path / "next.jsonl", [event("e2_1", session_id="s2"), event("n1")]),
                       warehouse)
    assert (result.records_accepted, result.records_duplicate) == (1, 1)
    assert not list(warehouse.landing_tmp.iterdir())
    assert landing.superseded_loads(warehouse) == []
    after = landed_rows(warehouse)
    assert len(after["events"]) == len(before["events"]) + 1
    assert all(after[kind] == before[kind] for kind in ("quarantine", "conflicts"))
    remaining = folder_names(warehouse)
    assert (set(members) <= set(remaining)) == (point == "compaction:staged")
