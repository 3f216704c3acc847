"""``chat-analytics-dbt``: dbt as the build's child, bound to the build's life and warehouse.

The build runs dbt through this command (Dagster's dbt resource takes it as its executable):
- the kernel kills it the moment its parent dies (``PR_SET_PDEATHSIG``), so a build killed
  with ``kill -9`` leaves no dbt behind still writing to the warehouse;
- the build keeps dbt's target folder in the warehouse home (``<home>/dbt/target``), so the
  home is known from ``DBT_TARGET_PATH`` and dbt's profile gets it as an absolute path,
  wherever the build was started from;
- dbt's log file (``<home>/dbt/target/dbt.log``) is kept at info level unless
  ``DBT_LOG_LEVEL_FILE`` says otherwise.

Importing dbt-core takes two seconds or more, and a build used to pay them after landing
the inbox, once its dbt step started. ``chat-analytics build`` therefore starts a standby
first (``dbt_standby``): the same command, which imports dbt while the build imports Dagster
and lands the inbox, then waits. When the dbt step starts this command, it hands its
arguments, environment, working folder and standard streams over to the standby, which
runs dbt with them, and relays its signals and exit status. A standby serves one dbt
command; without one (``dagster dev``, a second command) dbt runs here as before.

While it waits, the standby also builds what dbt otherwise builds on first use in each
process (``_warm_up``): the JSON schemas that validate the project and profile, and, from
the build's last saved manifest, the manifest's (de)serialisers and the macros' compiled
templates. Nothing read there reaches the command: it runs with its own arguments and
environment, parses the project itself, and finds these already built.
"""

import argparse
import contextlib
import ctypes
import gc
import json
import multiprocessing.util
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from loaders.paths import HOME_ENV

PR_SET_PDEATHSIG = 1
TARGET_ENV = "DBT_TARGET_PATH"
LOG_LEVEL_FILE_ENV = "DBT_LOG_LEVEL_FILE"
# "<socket name> <pid>" of the build's standby, for the dbt step's command to find it
STANDBY_ENV = "CHAT_ANALYTICS_DBT_STANDBY"
STANDBY_FLAG = "--standby"
MAX_REQUEST_BYTES = 1 << 20


def home_of_target(target: Path) -> Path:
    """The warehouse home of a target folder ``<home>/dbt/target``."""
    return target.parent.parent


def _standby() -> tuple[str, int] | None:
    """The socket name and pid of this build's dbt standby, if it has one."""
    spec = os.environ.get(STANDBY_ENV, "").split()
    return (spec[0], int(spec[1])) if len(spec) == 2 else None


def standby_pid() -> int | None:
    """The pid of this build's dbt standby, if it has one: the process that runs dbt."""
    standby = _standby()
    return standby[1] if standby else None


@contextmanager
def dbt_standby(executable: str, target: Path) -> Iterator[subprocess.Popen]:
    """A standby for the dbt command the build is about to run, for as long as it runs;
    ``target`` is the build's dbt target folder, whose saved manifest warms it up."""
    name = f"chat-analytics-dbt-{os.getpid()}-{uuid.uuid4().hex}"
    # The socket listens before the standby starts: a command that comes early waits for it.
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind("\0" + name)  # an abstract name: nothing on disk to clean up
        listener.listen(1)
        standby = subprocess.Popen(
            [executable, STANDBY_FLAG, str(listener.fileno()), str(target)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=[listener.fileno()],
            # Out of the terminal's process group: a Ctrl-C reaches dbt once, forwarded by
            # the command that handed it over, as it reached dbt when dbt was that command.
            process_group=0,
        )
    os.environ[STANDBY_ENV] = f"{name} {standby.pid}"
    try:
        yield standby
    finally:
        del os.environ[STANDBY_ENV]
        if standby.poll() is None:  # never handed a command (the build had no dbt step)
            standby.kill()
        standby.wait()


def _die_with_parent() -> None:
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the signal was armed
        sys.exit(1)


def _import_dbt() -> Callable[[], object]:
    from dbt.cli.main import cli

    # Once dbt-core is imported, its objects are frozen, so that the collector does not scan
    # them again while the build runs (about half a second of a new day's build).
    gc.freeze()
    return cli


# The project's macros first, then its adapter's, then dbt's: those a build calls most.
MACRO_PACKAGE_ORDER = ("dbt_duckdb", "dbt")


def _warm_up(target: Path, stop: threading.Event) -> None:
    """Build dbt's lazily built schemas, manifest (de)serialisers and macro templates (see the
    module's notes), until ``stop`` is set."""
    try:
        from dbt.adapters.duckdb.credentials import DuckDBCredentials
        from dbt.artifacts.resources.v1.config import Hook
        from dbt.contracts import project
        from dbt.contracts.graph.manifest import Manifest
        from dbt.contracts.selection import SelectorFile
        from dbt.flags import set_flags
        from dbt.parser.manifest import extended_mashumuro_decoder
        from dbt_common.clients.jinja import template_cache

        for validated in (
            project.ProjectFlags, project.Project, project.PackageConfig, project.Configuration,
            project.ProfileConfig, SelectorFile, Hook, DuckDBCredentials,
        ):
            validated.json_schema()  # cached per class
        saved = target / "partial_parse.msgpack"
        if stop.is_set() or not saved.is_file():
            return
        manifest = Manifest.from_msgpack(saved.read_bytes(), decoder=extended_mashumuro_decoder)
        # writing reads one flag; the command sets every flag anew when it starts
        set_flags(argparse.Namespace(SEND_ANONYMOUS_USAGE_STATS=False))
        manifest.writable_manifest().to_dict(omit_none=False, context={"artifact": True})
        # Templates are cached by their text: a macro the project has changed since is
        # compiled anew by the command, under its new text.
        for macro in sorted(manifest.macros.values(), key=_macro_priority):
            if stop.is_set():
                return
            template_cache.get_node_template(macro)
    except Exception:  # only a head start: the command does all of this itself
        return


def _macro_priority(macro: object) -> int:
    package = getattr(macro, "package_name", "")
    return MACRO_PACKAGE_ORDER.index(package) + 1 if package in MACRO_PACKAGE_ORDER else 0


def _format_only_lines_kept() -> None:
    """dbt formats each event as a line for each of its loggers (the JSON lines on standard
    output that Dagster reads, the text of the log file) and only then lets Python's logging
    drop the lines below the logger's level. Every SQL statement is thus formatted twice, at
    debug level, and thrown away at the info level: about a second of dbt's time in a new
    day's build. Here a line is formatted only when its logger keeps it; what is written is
    unchanged."""
    from dbt_common.events import logger as event_logger

    write_line = event_logger._Logger.write_line

    def write_kept_line(self: event_logger._Logger, msg: object) -> None:
        python_logger = self._python_logger
        # dbt's own map from its event levels to Python's
        level = event_logger._log_level_map.get(msg.info.level)  # type: ignore[attr-defined]
        if (
            python_logger is not None
            and level is not None
            and not event_logger._is_print_event(msg)  # sent at error level
            and not python_logger.isEnabledFor(level)
        ):
            return
        write_line(self, msg)

    event_logger._Logger.write_line = write_kept_line


def _build_events_with_constructors() -> None:
    """dbt builds every event's protocol buffer message from a dict with protobuf's
    ``ParseDict``, which is written in Python: about 4,000 events in a new day's build, 0.8 s
    of dbt's time under its one GIL, whether the event is logged or not. The message's own
    constructor (in C) takes the same dict and builds the same message; a dict it does not
    take (a timestamp given as text, a name it does not know) goes to ``ParseDict`` as before,
    which also keeps dbt's handling of a dict that does not parse."""
    from dbt_common.events import base_types
    from google.protobuf.json_format import ParseDict
    from google.protobuf.message import Message

    def parse_dict(js: dict, message: Message, **options: object) -> Message:
        if not options:
            try:
                return type(message)(**js)
            except (AttributeError, TypeError, ValueError):
                pass
        return ParseDict(js, message, **options)

    base_types.ParseDict = parse_dict


def _run_dbt(cli: Callable[[], object], args: list[str]) -> int:
    _format_only_lines_kept()
    _build_events_with_constructors()
    target = Path(os.environ.get(TARGET_ENV, "")).resolve()
    if target.parts[-2:] == ("dbt", "target"):
        os.environ[HOME_ENV] = str(home_of_target(target))
    # At debug level dbt writes every statement to its log file: about 20,000 lines and 1.3 s
    # of a 20 s daily build. Set DBT_LOG_LEVEL_FILE=debug to see the statements and timings.
    os.environ.setdefault(LOG_LEVEL_FILE_ENV, "info")
    sys.argv = [str(Path(sys.executable).parent / "dbt"), *args]
    try:
        cli()
    except SystemExit as done:
        code = done.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    return 0


def _hand_over(args: list[str]) -> int | None:
    """Run dbt in the build's standby; None when there is none to take it."""
    standby = _standby()
    if standby is None:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.connect("\0" + standby[0])
        environment = {key: value for key, value in os.environ.items() if key != STANDBY_ENV}
        request = json.dumps({"args": args, "env": environment, "cwd": os.getcwd()}).encode()
        socket.send_fds(connection, [request], [0, 1, 2])
        accepted = connection.recv(64)
    except OSError:  # gone, or already serving another command
        accepted = b""
    if not accepted:
        connection.close()
        return None
    runner = int(accepted)
    for forwarded in (signal.SIGINT, signal.SIGTERM):
        signal.signal(forwarded, lambda number, _frame: os.kill(runner, number))
    status = connection.recv(64)
    if not status:
        print(f"dbt (pid {runner}) ended without an exit status", file=sys.stderr)
        return 1
    return int(status)


def _stand_by(listening: int, target: Path) -> None:
    listener = socket.socket(fileno=listening)
    cli = _import_dbt()
    stop_warming = threading.Event()
    warming = threading.Thread(target=_warm_up, args=(target, stop_warming), daemon=True)
    warming.start()
    connection, _ = listener.accept()
    listener.close()  # one command: a later one runs dbt itself
    stop_warming.set()  # it stops after its current step: a macro, or reading the manifest
    warming.join()
    gc.freeze()
    request, streams, _flags, _address = socket.recv_fds(connection, MAX_REQUEST_BYTES, 3)
    request = json.loads(request)
    for number, stream in enumerate(streams):
        os.dup2(stream, number)
        os.close(stream)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    try:
        connection.sendall(str(os.getpid()).encode())
    except OSError:  # the command is gone before dbt started
        os._exit(1)
    # dbt dies with the command that handed it over, as it would as that command's child
    finished = threading.Event()
    threading.Thread(target=_die_when_closed, args=(connection, finished), daemon=True).start()
    code = _run_dbt(cli, request["args"])
    sys.stdout.flush()
    sys.stderr.flush()
    finished.set()
    # dbt's connection locks are named semaphores, unlinked by finalizers that os._exit
    # skips: run them, or multiprocessing's resource tracker reports the semaphores as leaked
    # on the build's terminal
    multiprocessing.util._run_finalizers(0)
    with contextlib.suppress(OSError):  # the command may be gone by now
        connection.sendall(str(code).encode())
    os._exit(code)


def _die_when_closed(connection: socket.socket, finished: threading.Event) -> None:
    connection.recv(1)  # the command sends nothing more: this returns when it is gone
    if not finished.is_set():
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    _die_with_parent()
    args = sys.argv[1:]
    if args[:1] == [STANDBY_FLAG]:
        _stand_by(int(args[1]), Path(args[2]))
        return
    code = _hand_over(args)
    if code is None:
        code = _run_dbt(_import_dbt(), args)
    sys.exit(code)


if __name__ == "__main__":
    main()
