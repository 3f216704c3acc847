"""The API's snapshot reader: one computation per answer and snapshot, and a publish (the link
moving to a new file) shows in the next request, while a request on the old file finishes."""

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from loaders.paths import WarehousePaths
from serving.reader import NothingPublishedError, SnapshotReader


def publish(paths: WarehousePaths, name: str, value: int) -> None:
    paths.serving.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(paths.serving / name)) as con:
        con.execute("create schema marts; create table marts.numbers as select ? as value", [value])
    link = paths.serving / "analytics.duckdb"
    staged = paths.serving / "analytics.duckdb.new"
    staged.symlink_to(name)
    staged.replace(link)


def read_value(reader: SnapshotReader, calls: list[int]) -> int:
    snapshot, con = reader.connect()
    try:
        def compute() -> int:
            calls.append(1)
            return con.execute("select value from marts.numbers").fetchone()[0]
        return reader.answer(snapshot, "value", compute)
    finally:
        con.close()


def test_an_answer_is_computed_once_per_snapshot(tmp_path: Path) -> None:
    paths = WarehousePaths(tmp_path / "home")
    reader = SnapshotReader(paths)
    with pytest.raises(NothingPublishedError):
        reader.connect()
    publish(paths, "analytics-1.duckdb", 1)
    calls: list[int] = []
    assert [read_value(reader, calls) for _ in range(3)] == [1, 1, 1]
    assert len(calls) == 1
    publish(paths, "analytics-2.duckdb", 2)
    assert read_value(reader, calls) == 2 and len(calls) == 2


def test_a_request_on_the_previous_snapshot_finishes_there(tmp_path: Path) -> None:
    paths = WarehousePaths(tmp_path / "home")
    reader = SnapshotReader(paths)
    publish(paths, "analytics-1.duckdb", 1)
    old_snapshot, old = reader.connect()
    publish(paths, "analytics-2.duckdb", 2)
    calls: list[int] = []
    assert read_value(reader, calls) == 2
    # still open and reading its own file; its answer is not kept for the newer snapshot
    assert reader.answer(old_snapshot, "value", lambda: old.execute(
        "select value from marts.numbers").fetchone()[0]) == 1
    old.close()
    assert read_value(reader, calls) == 2 and len(calls) == 1


def test_a_snapshot_connection_draws_no_progress_bar(tmp_path: Path) -> None:
    # DuckDB draws its progress bar on stdout for queries past 2 s; in the CLI's JSON output
    # it would corrupt what the caller reads. Checked in a process of its own, as the CLI
    # runs (pytest's capture changes DuckDB's default).
    snapshot = tmp_path / "snapshot.duckdb"
    duckdb.connect(str(snapshot)).close()
    code = (
        "import sys; from pathlib import Path; from serving.publish import open_snapshot; "
        "con = open_snapshot(Path(sys.argv[1])); "
        "print(con.execute(\"select current_setting('enable_progress_bar')\").fetchone()[0])"
    )
    done = subprocess.run([sys.executable, "-c", code, str(snapshot)], capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "False"
