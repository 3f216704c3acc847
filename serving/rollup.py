"""The session metrics answered from their daily rollup instead of one row per session.

fct_agent_metrics_daily holds, per day, channel and agent version, one column per additive
measure of the session semantic models, aggregated by the measure's own definition
(dbt_project/macros/semantic_layer.sql). A sum of those columns over days and slices equals
the measure over the sessions, so a metric built only from such measures can be answered from
a few hundred rows instead of a million.

``rollup_manifest`` derives, from the published semantic manifest, a second manifest in which
those measures are sums of the rollup's columns and the metrics built from them are unchanged
(same names, same formulas). MetricFlow compiles against it the queries it can answer; every
other query (a count of distinct users, a dimension the rollup lacks) compiles against the
full manifest. Nothing of a metric's definition is restated here. The derived manifest shares
the published one's objects (it is only serialised, never changed).
"""

from typing import Any

ROLLUP_SCHEMA, ROLLUP_TABLE = "marts", "fct_agent_metrics_daily"
# The semantic models whose measures the rollup aggregates (its source rows: a session and
# its outcome), the rollup's time column and the dimensions it keeps, by their names there.
ROLLED_UP_MODELS = ("sessions", "session_outcomes")
ROLLUP_TIME_COLUMN = "metric_date"
ROLLUP_DIMENSIONS = ("channel", "agent_version")
# Aggregations whose values over parts add up to the value over the whole.
ADDITIVE = frozenset({"sum", "count", "sum_boolean"})
METRIC_TYPES = frozenset({"simple", "ratio", "derived"})


def rollup_manifest(manifest: dict[str, Any], columns: frozenset[str]) -> dict[str, Any] | None:
    """The manifest whose one semantic model is the rollup, with the metrics it can answer;
    None when the rollup lacks a column it needs or answers no metric."""
    models = {model["name"]: model for model in manifest["semantic_models"]}
    if not set(ROLLED_UP_MODELS) <= models.keys():
        return None
    if not {ROLLUP_TIME_COLUMN, *ROLLUP_DIMENSIONS} <= columns:
        return None
    sessions = models[ROLLED_UP_MODELS[0]]
    measures = [
        {**measure, "agg": "sum", "expr": measure["name"],
         "agg_params": None, "agg_time_dimension": None}
        for name in ROLLED_UP_MODELS
        for measure in models[name]["measures"]
        if measure["agg"] in ADDITIVE
        and measure.get("non_additive_dimension") is None
        and measure["name"] in columns
    ]
    metrics = _answerable(manifest["metrics"], {measure["name"] for measure in measures})
    if not metrics:
        return None
    relation = sessions["node_relation"]
    dimensions = {dimension["name"]: dimension for dimension in sessions["dimensions"]}
    time_dimension = sessions["defaults"]["agg_time_dimension"]
    rollup = {
        **sessions,
        "name": f"{ROLLED_UP_MODELS[0]}_rollup",
        "description": f"The additive session measures per day and slice ({ROLLUP_TABLE}).",
        "node_relation": {
            **relation,
            "alias": ROLLUP_TABLE,
            "schema_name": ROLLUP_SCHEMA,
            "relation_name": f'"{relation["database"]}"."{ROLLUP_SCHEMA}"."{ROLLUP_TABLE}"',
        },
        # The rollup's rows are not sessions, but the session metrics' dimensions are named
        # through the session entity (session__channel); the entity is never joined here.
        "entities": [{**sessions["entities"][0], "expr": ROLLUP_TIME_COLUMN}],
        "dimensions": [
            {**dimensions[time_dimension], "expr": ROLLUP_TIME_COLUMN},
            *({**dimensions[name], "expr": None} for name in ROLLUP_DIMENSIONS),
        ],
        "measures": measures,
    }
    return {**manifest, "semantic_models": [rollup], "metrics": metrics, "saved_queries": []}


def _answerable(metrics: list[dict[str, Any]], measures: set[str]) -> list[dict[str, Any]]:
    """The metrics computed from these measures alone, without filters (a filter may name a
    dimension the rollup does not keep)."""
    by_name = {metric["name"]: metric for metric in metrics}
    answerable: dict[str, bool] = {}

    def check(name: str) -> bool:
        if name not in answerable:
            answerable[name] = False  # a cycle is not answerable
            metric = by_name.get(name)
            answerable[name] = metric is not None and _unfiltered(metric) and all(
                measure["name"] in measures and not measure.get("filter")
                for measure in metric["type_params"]["input_measures"]
            ) and all(check(inputs["name"]) for inputs in _input_metrics(metric))
        return answerable[name]

    return [metric for metric in metrics if check(metric["name"])]


def _unfiltered(metric: dict[str, Any]) -> bool:
    params = metric["type_params"]
    return (
        metric["type"] in METRIC_TYPES
        and not metric.get("filter")
        and not (params.get("measure") or {}).get("filter")
        and not any(inputs.get("filter") or inputs.get("offset_window") or inputs.get("offset_to_grain")
                    for inputs in _input_metrics(metric))
    )


def _input_metrics(metric: dict[str, Any]) -> list[dict[str, Any]]:
    params = metric["type_params"]
    ratio_sides = [params[side] for side in ("numerator", "denominator") if params.get(side)]
    return [*(params.get("metrics") or []), *ratio_sides]
