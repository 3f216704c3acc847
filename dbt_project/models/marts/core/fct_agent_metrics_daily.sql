{{
    config(
        materialized=incremental_materialization(),
        unique_key='metric_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_affected_session_dates('metric_date') }}",
    )
}}

{#- The sessions semantic model's measures, pre-aggregated per day, channel and agent version,
    and its metrics over them: both rendered from their one definition (fct_sessions.yml). -#}
{%- set measures = [
    ('sessions', 'bigint'),
    ('total_duration_seconds', 'double'),
    ('user_messages', 'bigint'),
    ('escalated_sessions', 'bigint'),
    ('fallback_count', 'bigint'),
    ('converted_sessions', 'bigint'),
    ('first_response_sessions', 'bigint'),
    ('total_first_response_ms', 'bigint'),
    ('rated_sessions', 'bigint'),
    ('total_rating', 'bigint'),
    ('feedback_eligible_sessions', 'bigint'),
    ('feedback_eligible_responded', 'bigint'),
] -%}
{%- set rates = [
    'avg_session_duration_seconds',
    'avg_messages_per_session',
    'escalation_rate',
    'resolution_rate',
    'fallback_rate',
    'conversion_rate',
    'avg_first_response_ms',
    'avg_satisfaction_score',
    'feedback_response_rate',
] -%}

with sessions as (

    select * from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
        where session_date in ({{ affected_session_dates() }})
    {% endif %}

),

additive as (

    select
        session_date as metric_date,
        channel,
        coalesce(agent_version, 'unknown') as agent_version,
        {% for name, data_type in measures %}
        cast({{ measure_aggregate(name) }} as {{ data_type }}) as {{ name }},
        {% endfor %}
        max(last_loaded_at) as last_loaded_at
    from sessions
    group by session_date, channel, coalesce(agent_version, 'unknown')

),

final as (

    select
        -- grain
        metric_date,
        channel,
        agent_version,

        -- additive columns
        {% for name, _ in measures %}
        {{ name }},
        {% endfor %}

        -- rates, from the additive columns
        {% for rate in rates %}
        cast({{ metric_over_measure_columns(rate) }} as double) as {{ rate }},
        {% endfor %}

        -- lineage
        last_loaded_at

    from additive

)

select * from final
