"""``chat-analytics-dbt``: dbt as the build's child, bound to the build's life and warehouse.

The build runs dbt through this command (Dagster's dbt resource takes it as its executable):
- the kernel kills it the moment its parent dies (``PR_SET_PDEATHSIG``), so a build killed
  with ``kill -9`` leaves no dbt behind still writing to the warehouse;
- the build keeps dbt's target folder in the warehouse home (``<home>/dbt/target``), so the
  home is known from ``DBT_TARGET_PATH`` and dbt's profile gets it as an absolute path,
  wherever the build was started from;
- dbt's log file (``<home>/dbt/target/dbt.log``) is kept at info level unless
  ``DBT_LOG_LEVEL_FILE`` says otherwise.
"""

import ctypes
import gc
import os
import signal
import sys
from pathlib import Path

from loaders.paths import HOME_ENV

PR_SET_PDEATHSIG = 1
TARGET_ENV = "DBT_TARGET_PATH"
LOG_LEVEL_FILE_ENV = "DBT_LOG_LEVEL_FILE"


def home_of_target(target: Path) -> Path:
    """The warehouse home of a target folder ``<home>/dbt/target``."""
    return target.parent.parent


def main() -> None:
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the signal was armed
        sys.exit(1)
    target = Path(os.environ.get(TARGET_ENV, "")).resolve()
    if target.parts[-2:] == ("dbt", "target"):
        os.environ[HOME_ENV] = str(home_of_target(target))
    # At debug level dbt writes every statement to its log file: about 20,000 lines and 1.3 s
    # of a 20 s daily build. Set DBT_LOG_LEVEL_FILE=debug to see the statements and timings.
    os.environ.setdefault(LOG_LEVEL_FILE_ENV, "info")
    # dbt runs in this process, as its own command would: once dbt-core is imported, its
    # objects are frozen, so that the collector does not scan them again while the build runs
    # (about half a second of a new day's build).
    from dbt.cli.main import cli

    gc.freeze()
    sys.argv[0] = str(Path(sys.executable).parent / "dbt")
    sys.exit(cli())


if __name__ == "__main__":
    main()
