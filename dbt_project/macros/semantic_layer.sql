{#-
    The semantic layer is the one home of every measure and metric. The daily marts do not
    restate them: they pre-aggregate the sessions' measures by name and compute their rate
    columns from the metric definitions, both read here from dbt's graph when the model
    compiles. Changing a metric in its YAML changes the mart, the dashboard and `mf query`.
-#}

{% macro semantic_measure(measure_name) -%}
    {%- for semantic_model in graph.semantic_models.values() -%}
        {%- for measure in semantic_model.measures if measure.name == measure_name -%}
            {{ return(measure) }}
        {%- endfor -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("no measure named " ~ measure_name ~ " in any semantic model") }}
{%- endmacro %}


{% macro semantic_metric(metric_name) -%}
    {%- set metric = graph.metrics.get('metric.' ~ project_name ~ '.' ~ metric_name) -%}
    {%- if metric is none -%}
        {{ exceptions.raise_compiler_error("no metric named " ~ metric_name) }}
    {%- endif -%}
    {{ return(metric) }}
{%- endmacro %}


{#- A measure aggregated over the rows of its semantic model's table, as MetricFlow would. -#}
{% macro measure_aggregate(measure_name) -%}
    {%- if not execute -%}
        {{ return('null') }}
    {%- endif -%}
    {%- set measure = semantic_measure(measure_name) -%}
    {%- set expression = measure.expr or measure.name -%}
    {%- if measure.agg == 'sum' -%}
        sum({{ expression }})
    {%- elif measure.agg == 'sum_boolean' -%}
        sum(case when {{ expression }} then 1 else 0 end)
    {%- elif measure.agg == 'count' -%}
        count({{ expression }})
    {%- elif measure.agg == 'count_distinct' -%}
        count(distinct {{ expression }})
    {%- elif measure.agg in ('min', 'max') -%}
        {{ measure.agg }}({{ expression }})
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "measure " ~ measure_name ~ ": aggregation " ~ measure.agg ~ " is not additive") }}
    {%- endif -%}
{%- endmacro %}


{#- A metric over one row of pre-aggregated measures (columns named after the measures):
    simple metrics are their measure's column, ratios divide (NULL for a zero denominator),
    derived metrics substitute their inputs into their expression. -#}
{% macro metric_over_measure_columns(metric_name) -%}
    {%- if not execute -%}
        {{ return('null') }}
    {%- endif -%}
    {%- set metric = semantic_metric(metric_name) -%}
    {%- set params = metric.type_params -%}
    {%- if metric.filter or (params.measure and params.measure.filter) -%}
        {{ exceptions.raise_compiler_error("metric " ~ metric_name ~ " has a filter; it needs rows, not columns") }}
    {%- endif -%}
    {%- if metric.type == 'simple' -%}
        {{ params.measure.name }}
    {%- elif metric.type == 'ratio' -%}
        {{ safe_divide(
            metric_over_measure_columns(params.numerator.name),
            metric_over_measure_columns(params.denominator.name)
        ) }}
    {%- elif metric.type == 'derived' -%}
        {%- set expression = namespace(text=params.expr) -%}
        {%- for input in params.metrics -%}
            {%- set expression.text = modules.re.sub(
                '\\b' ~ (input.alias or input.name) ~ '\\b',
                '(' ~ metric_over_measure_columns(input.name) ~ ')',
                expression.text
            ) -%}
        {%- endfor -%}
        {{ expression.text }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("metric " ~ metric_name ~ ": type " ~ metric.type ~ " is not a rate") }}
    {%- endif -%}
{%- endmacro %}
