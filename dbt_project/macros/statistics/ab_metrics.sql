{#-
    The A/B test metrics, defined once: each session's value (NULL: the metric is not defined
    for the session), whether it is binary (variance p(1 - p)), the data an arm needs before
    its verdict counts (`enough_data`): successes for conversion, exposed sessions otherwise,
    and which way is better (none: neither, as for the number of messages). Every A/B model
    and test reads this list.
-#}
{% macro ab_metrics() -%}
    {{ return([
        {
            'name': 'conversion_rate',
            'value': 'case when sessions.is_converted then 1.0e0 else 0.0e0 end',
            'is_binary': true,
            'enough': 'successes',
            'higher_is_better': true,
        },
        {
            'name': 'resolution_rate',
            'value': 'case when sessions.is_escalated then 0.0e0 else 1.0e0 end',
            'is_binary': true,
            'enough': 'exposed',
            'higher_is_better': true,
        },
        {
            'name': 'avg_satisfaction',
            'value': 'cast(sessions.rating as double)',
            'is_binary': false,
            'enough': 'exposed',
            'higher_is_better': true,
        },
        {
            'name': 'user_messages',
            'value': 'cast(sessions.user_messages as double)',
            'is_binary': false,
            'enough': 'exposed',
            'higher_is_better': none,
        },
    ]) }}
{%- endmacro %}


{#- The metric names as a SQL list, for `metric in (...)`. -#}
{% macro ab_metric_names(binary_only=false) -%}
    {%- set names = [] -%}
    {%- for metric in ab_metrics() if metric.is_binary or not binary_only -%}
        {%- do names.append("'" ~ metric.name ~ "'") -%}
    {%- endfor -%}
    ({{ names | join(', ') }})
{%- endmacro %}


{#- One row per A/B metric: the grid every arm's statistics are reported on. An inline table,
    not a union: Spark fails to ship a union of literal rows to its tasks in these plans. -#}
{% macro ab_metric_rows() -%}
    {%- set rows = [] -%}
    {%- for metric in ab_metrics() -%}
        {%- set better = 'cast(null as boolean)' if metric.higher_is_better is none else metric.higher_is_better -%}
        {%- do rows.append("('" ~ metric.name ~ "', " ~ better ~ ")") -%}
    {%- endfor %}
    select *
    from (values {{ rows | join(', ') }}) as ab_metric_list (metric, is_higher_better)
{%- endmacro %}


{#- A digest of the metric definitions: stored with the per-day arm statistics, so that
    changing a metric rebuilds every day of them. -#}
{% macro ab_definition_version() -%}
    '{{ local_md5(tojson(ab_metrics())) [:12] }}'
{%- endmacro %}


{#- Exposure days whose arm statistics may have changed since this model's watermark: the days
    inside the span of a rebuilt session (its metrics, its first exposure or its contamination
    may have changed), or every day when the metric definitions changed. `candidate_dates` is a
    query of one column, candidate_date. -#}
{% macro exposure_dates_to_rebuild(candidate_dates) -%}
    {{ dates_in_touched_spans(candidate_dates) }}
    union
    select candidates.candidate_date as affected_date
    from ({{ candidate_dates }}) as candidates
    where exists (
        select 1 from {{ this }} as stored
        where stored.definition_version <> {{ ab_definition_version() }}
    )
{%- endmacro %}


{#- Pre-hook of int_ab__arm_stats_daily: clear the stored days to rebuild, so a day whose every
    exposure moved or became contaminated is cleared too. -#}
{% macro delete_exposure_dates_to_rebuild() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where exposure_date in (
            {{ exposure_dates_to_rebuild('select distinct exposure_date as candidate_date from ' ~ this) }}
        )
    {%- endif -%}
{%- endmacro %}
