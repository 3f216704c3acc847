"""What a failed `dbt build` says about its failures, read from its run_results.json. Pure: a
file in, lines out. Dagster reports a failed dbt step as "the dbt CLI process ... failed", so
the build's summary names the failed nodes and dbt's reasons from here."""

import json
from pathlib import Path

FAILED_STATUSES = ("error", "fail")
MESSAGE_CHARS = 300


def failed_dbt_nodes(run_results: Path, written_since: float) -> list[str]:
    """Each node that errored or failed, as ``<resource type> <name>: <dbt's message>``, from
    the run_results.json that dbt wrote at or after ``written_since`` (a POSIX time): an older
    one is a previous run's, and a dbt that died before writing one leaves nothing to read."""
    try:
        if run_results.stat().st_mtime < written_since:
            return []
        results = json.loads(run_results.read_text(encoding="utf-8")).get("results", [])
    except (OSError, ValueError):
        return []
    failed = []
    for result in results:
        if result.get("status") not in FAILED_STATUSES:
            continue
        # <resource type>.<package>.<name>[.<hash>]
        parts = str(result.get("unique_id", "")).split(".")
        resource_type, name = parts[0], parts[2] if len(parts) > 2 else "node"
        message = " ".join(
            line.strip() for line in (result.get("message") or "").splitlines() if line.strip()
        )
        if len(message) > MESSAGE_CHARS:
            message = message[: MESSAGE_CHARS - 3] + "..."
        failed.append(f"{resource_type} {name}: {message or result['status']}")
    return failed
