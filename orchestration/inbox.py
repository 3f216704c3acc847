"""Land what waits in the inbox, then move each landed file to the archive."""

import shutil
from collections.abc import Callable
from pathlib import Path

from loaders.landing import ensure_landing
from loaders.load import LoadResult, load_files
from loaders.paths import WarehousePaths
from loaders.readers import loadable_files


def pending_files(paths: WarehousePaths) -> list[Path]:
    """Complete files in the inbox, oldest name first; dot-files are still being written."""
    if not paths.inbox.exists():
        return []
    return loadable_files(paths.inbox)


def land_inbox(
    paths: WarehousePaths, report: Callable[[str], None] = print
) -> list[LoadResult]:
    ensure_landing(paths)
    results = []
    files = pending_files(paths)
    for path, result in zip(files, load_files(files, paths), strict=True):
        # Moved only after the load committed: a crash before this point leaves the file in
        # the inbox, and the next run skips it as already loaded (same sha256) and moves it.
        target = paths.archive / path.relative_to(paths.inbox)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        report(result.summary())
        results.append(result)
    return results
