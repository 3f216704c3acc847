"""Metrics from their one definition: the dbt semantic layer, compiled to SQL by MetricFlow.

The dashboard, the report and the API name the metrics they want; MetricFlow turns the
semantic manifest of the published snapshot into SQL. A query's shape (metrics, grouping,
which filters) is compiled once and cached; its values (dates, channel, ...) are bound as
parameters, so a request costs one DuckDB query. The manifest travels with the snapshot
(``audit.semantic_manifest``), so every number is computed with the definitions of the build
that published it. Session metrics are answered from their daily rollup when the query allows
(serving.rollup): a few hundred rows instead of one per session, the same formulas.
"""

import contextlib
import hashlib
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb

from .rollup import ROLLUP_SCHEMA, ROLLUP_TABLE, rollup_manifest

# The dimension each filter parameter constrains (a query may name others, for semantic
# models that reach channel and agent version without the session entity).
DIMENSIONS = {
    "latency_kind": "latency_cell__latency_kind",
    "channel": "session__channel",
    "agent_version": "session__agent_version",
    "funnel_name": "funnel_step__funnel_name",
    "test_name": "ab_exposure__test_name",
}
TIME_FILTERS = {
    "start": "{{ TimeDimension('metric_time', 'day') }} >= '__start__'",
    "end": "{{ TimeDimension('metric_time', 'day') }} <= '__end__'",
}


class MetricError(ValueError):
    """A metric query the semantic layer cannot answer (an unknown metric, for example)."""


@dataclass(frozen=True)
class MetricQuery:
    metrics: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    limit: int | None = None
    # (parameter, dimension) pairs overriding DIMENSIONS for this query
    dimensions: tuple[tuple[str, str], ...] = ()

    def where(self, parameter: str) -> str:
        if parameter in TIME_FILTERS:
            return TIME_FILTERS[parameter]
        dimension = dict(self.dimensions).get(parameter) or DIMENSIONS.get(parameter)
        if dimension is None:
            raise MetricError(f"no filter named {parameter}")
        return f"{{{{ Dimension('{dimension}') }}}} = '__{parameter}__'"


def _canonical(manifest: dict[str, Any]) -> str:
    """The manifest as text, its lists of named objects (semantic models, metrics, saved
    queries) in name order: dbt writes them in parse order, which differs between a full and a
    partial parse of the same project, and the compiled SQL does not depend on it."""
    return json.dumps(
        {
            key: sorted(value, key=lambda item: item["name"])
            if isinstance(value, list) and all(isinstance(item, dict) and "name" in item for item in value)
            else value
            for key, value in manifest.items()
        },
        sort_keys=True,
    )


class SemanticLayer:
    """MetricFlow over one semantic manifest, and over its rollup manifest (serving.rollup)
    for the queries that one can answer; ``rollup_columns`` are the rollup table's columns.

    Compiled SQL is kept in ``sql_cache`` (a folder), one file per manifest and MetricFlow
    version: a process that finds its queries there answers them without starting MetricFlow
    (about 2 s to load the manifest and a few hundred ms per query shape)."""

    def __init__(
        self,
        manifest_json: str,
        sql_cache: Path | None = None,
        rollup_columns: frozenset[str] = frozenset(),
    ) -> None:
        manifest = json.loads(manifest_json)
        self._manifests = {"full": manifest_json}
        self._metrics = {metric["name"]: metric for metric in manifest["metrics"]}
        rollup = rollup_manifest(manifest, rollup_columns)
        self._rollup_metrics = frozenset(metric["name"] for metric in (rollup or {}).get("metrics", ()))
        if rollup is not None:
            self._manifests["rollup"] = json.dumps(rollup)
        self._engines: dict[str, Any] = {}
        self._cache_file: Path | None = None
        self._compiled: dict[str, str] = {}
        self._compiling = threading.Lock()  # one MetricFlow compile at a time per layer
        if sql_cache is not None:
            key = hashlib.sha256(
                f"{version('metricflow')}\n{_canonical(manifest)}\n{sorted(rollup_columns)}".encode()
            ).hexdigest()
            self._cache_file = sql_cache / f"{key[:32]}.json"
            try:
                self._compiled = json.loads(self._cache_file.read_text())
            except (OSError, ValueError):
                self._compiled = {}

    def _metricflow(self, manifest_name: str) -> Any:
        if manifest_name not in self._engines:
            # MetricFlow logs every plan it builds at INFO; the serving side has no use for it.
            logging.getLogger("metricflow").setLevel(logging.WARNING)
            logging.getLogger("metricflow_semantics").setLevel(logging.WARNING)
            from metricflow.engine.metricflow_engine import MetricFlowEngine
            from metricflow_semantics.model.dbt_manifest_parser import (
                parse_manifest_from_dbt_generated_manifest,
            )
            from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

            manifest = parse_manifest_from_dbt_generated_manifest(self._manifests[manifest_name])
            self._engines[manifest_name] = MetricFlowEngine(
                SemanticManifestLookup(manifest), _CompileOnlyClient()
            )
        return self._engines[manifest_name]

    def metric(self, name: str) -> dict[str, Any]:
        if name not in self._metrics:
            raise MetricError(f"no metric named {name!r} in the semantic layer")
        return self._metrics[name]

    def label(self, name: str) -> str:
        return self.metric(name).get("label") or name

    def meta(self, name: str) -> dict[str, Any]:
        """The metric's presentation hints: `unit` and which way is `better` (up, down, none)."""
        return dict((self.metric(name).get("config") or {}).get("meta") or {})

    def sql(self, query: MetricQuery, filters: frozenset[str]) -> str:
        """The query's SQL, with ``$name`` parameters for the given filters."""
        key = repr((query, sorted(filters)))
        if key in self._compiled:
            return self._compiled[key]
        with self._compiling:
            return self._compile(key, query, filters)

    def _compile(self, key: str, query: MetricQuery, filters: frozenset[str]) -> str:
        statement = None
        if set(query.metrics) <= self._rollup_metrics:
            # a dimension the rollup does not keep makes MetricFlow refuse: then the sessions
            with contextlib.suppress(MetricError):
                statement = self._explain("rollup", query, filters)
        if statement is None:
            statement = self._explain("full", query, filters)
        for name in filters:
            statement = statement.replace(f"'__{name}__'", f"${name}")
        self._compiled[key] = statement
        self._keep_compiled()
        return statement

    def _explain(self, manifest_name: str, query: MetricQuery, filters: frozenset[str]) -> str:
        from metricflow.engine.metricflow_engine import MetricFlowQueryRequest

        request = MetricFlowQueryRequest.create(
            metric_names=list(query.metrics),
            group_by_names=list(query.group_by),
            order_by_names=list(query.order_by) or None,
            limit=query.limit,
            where_constraints=[query.where(name) for name in sorted(filters)] or None,
        )
        try:
            return self._metricflow(manifest_name).explain(request).sql_statement.sql
        except Exception as error:  # MetricFlow's errors have many classes; all mean "cannot"
            raise MetricError(str(error).strip().splitlines()[0]) from error

    def _keep_compiled(self) -> None:
        """Write the compiled SQL for the next process (atomically; a snapshot on a read-only
        disk simply compiles again)."""
        if self._cache_file is None:
            return
        with contextlib.suppress(OSError):
            self._cache_file.parent.mkdir(exist_ok=True)
            with contextlib.suppress(OSError, ValueError):  # what other processes compiled
                self._compiled = {**json.loads(self._cache_file.read_text()), **self._compiled}
            pending = self._cache_file.with_name(f".{self._cache_file.name}.{uuid.uuid4().hex}")
            pending.write_text(json.dumps(self._compiled))
            os.replace(pending, self._cache_file)
            kept = sorted(self._cache_file.parent.glob("*.json"), key=lambda f: f.stat().st_mtime)
            for stale in kept[:-KEPT_LAYERS]:
                stale.unlink(missing_ok=True)

    def query(
        self, con: duckdb.DuckDBPyConnection, query: MetricQuery, **values: date | str | None
    ) -> list[dict[str, Any]]:
        """Rows of the metric query; a value of None means no filter on that parameter."""
        given = {name: value for name, value in values.items() if value is not None}
        cursor = con.execute(self.sql(query, frozenset(given)), given)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class _CompileOnlyClient:
    """What MetricFlow needs of a SQL client to compile for DuckDB; the SQL runs elsewhere."""

    def __init__(self) -> None:
        from metricflow.protocols.sql_client import SqlEngine
        from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer

        self.sql_engine_type = SqlEngine.DUCKDB
        self.sql_plan_renderer = DuckDbSqlPlanRenderer()

    def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
        return f"${bind_parameter_key}"


_LAYERS: dict[str, SemanticLayer] = {}
KEPT_LAYERS = 4
SQL_CACHE = "compiled-metrics"  # next to the snapshots


def semantic_layer(con: duckdb.DuckDBPyConnection) -> SemanticLayer:
    """The semantic layer the open snapshot was published with, built once per snapshot file
    (each publish writes a new file, so the file's path names its manifest)."""
    (path,) = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    layer = _LAYERS.get(path) if path else None
    if layer is None:
        row = con.execute("select manifest from audit.semantic_manifest").fetchone()
        if row is None:
            raise MetricError("the snapshot carries no semantic manifest")
        rollup_columns = frozenset(name for (name,) in con.execute(
            "select column_name from information_schema.columns"
            " where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [ROLLUP_SCHEMA, ROLLUP_TABLE],
        ).fetchall())
        layer = SemanticLayer(
            row[0], Path(path).parent / SQL_CACHE if path else None, rollup_columns
        )
        if path:
            if len(_LAYERS) >= KEPT_LAYERS:
                _LAYERS.pop(next(iter(_LAYERS)))
            _LAYERS[path] = layer
    return layer
