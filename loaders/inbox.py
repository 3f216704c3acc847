"""The inbox: files wait there until they are complete, then are landed and archived.

A file is complete when it can no longer change under the loader:
- files the SDK writes appear whole (written under a dot-name, then renamed), so they are
  taken at once;
- any other file is taken once it has not been modified for a settle period, and a plain
  JSON-lines file must also end with a line break (a trailing partial line means its writer
  is not done), unless it has been left alone ten times as long.
Names starting with a dot are files still being written under the rename convention.
"""

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import landing
from .load import LoadResult, load_files
from .paths import WarehousePaths
from .readers import is_gzip, loadable_files
from .sdk import is_sdk_file

DEFAULT_SETTLE_SECONDS = 10.0
ABANDONED_LINE_FACTOR = 10


@dataclass(frozen=True)
class WaitingFile:
    path: Path
    reason: str


def _ends_with_line_break(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def incomplete_reason(path: Path, settle_seconds: float, now: float) -> str | None:
    """Why a loadable file is not complete yet, or None when it is."""
    if is_sdk_file(path):
        return None
    age = now - path.stat().st_mtime
    if age < settle_seconds:
        return f"modified {age:.0f} s ago; taken once unchanged for {settle_seconds:g} s"
    plain_json_lines = path.suffix.lower() in (".jsonl", ".ndjson", ".json") and not is_gzip(path)
    if (
        plain_json_lines
        and not _ends_with_line_break(path)
        and age < settle_seconds * ABANDONED_LINE_FACTOR
    ):
        return "its last line has no line break yet"
    return None


def scan_inbox(
    paths: WarehousePaths, settle_seconds: float = DEFAULT_SETTLE_SECONDS
) -> tuple[list[Path], list[WaitingFile]]:
    """Complete files (oldest name first) and files still waiting, with the reason."""
    if not paths.inbox.exists():
        return [], []
    now = time.time()
    complete, waiting = [], []
    for path in loadable_files(paths.inbox):
        try:
            reason = incomplete_reason(path, settle_seconds, now)
        except FileNotFoundError:  # renamed or removed while we looked
            continue
        if reason is None:
            complete.append(path)
        else:
            waiting.append(WaitingFile(path, reason))
    return complete, waiting


def waiting_note(paths: WarehousePaths, item: WaitingFile) -> str:
    """The line that tells the user a file stays in the inbox, and why."""
    return f"{item.path.relative_to(paths.inbox)}: not complete yet ({item.reason}); left in the inbox"


def land_inbox(
    paths: WarehousePaths,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    report: Callable[[str], None] = print,
) -> list[LoadResult]:
    """Land every complete file, then move it to the archive; say which files wait."""
    landing.ensure_landing(paths)
    files, waiting = scan_inbox(paths, settle_seconds)
    for item in waiting:
        report(waiting_note(paths, item))
    if not files:
        with landing.load_lock(paths):
            landing.remove_incomplete_loads(paths)
        return []
    results = []
    for path, result in zip(files, load_files(files, paths), strict=True):
        # Moved only after the load committed: a crash before this point leaves the file in
        # the inbox, and the next run skips it as already loaded (same sha256) and moves it.
        target = paths.archive / path.relative_to(paths.inbox)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        report(result.summary())
        results.append(result)
    return results
