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
    ('contained_sessions', 'bigint'),
    ('resolved_sessions', 'bigint'),
    ('verified_sessions', 'bigint'),
    ('recontacted_resolved_sessions', 'bigint'),
    ('total_tokens_in', 'bigint'),
    ('total_tokens_out', 'bigint'),
    ('total_cost_usd', 'double'),
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
    'containment_rate',
    'confirmed_resolution_rate',
    'verified_resolution_rate',
    'cost_per_session',
    'cost_per_resolved_session',
] -%}

with {% if is_incremental() -%}
affected_dates as (

    -- the dates to rebuild, as one list that both tables below are filtered by before they
    -- are joined (joined first, DuckDB hashes every session's outcome of the history)
    {{ affected_session_dates() }}
    union
    select changed.session_date
    from {{ ref('fct_sessions') }} as changed
    where changed.session_id in ({{ sessions_with_changed_outcomes(
        ref('fct_session_outcomes'),
        'select distinct outcome_definition_version as definition_version from ' ~ this
    ) }})

),

{% endif -%}
outcomes as (

    select * from {{ ref('fct_session_outcomes') }}
    {% if is_incremental() -%}
        where session_date in (select affected_dates.affected_date from affected_dates)
    {%- endif %}

),

sessions as (

    -- the measures of both semantic models read these columns, so both tables are here
    select
        sessions.*,
        outcomes.is_contained,
        outcomes.is_resolved,
        outcomes.verification,
        outcomes.definition_version
    from {{ ref('fct_sessions') }} as sessions
    inner join outcomes on sessions.session_id = outcomes.session_id
    {% if is_incremental() -%}
        where sessions.session_date in (select affected_dates.affected_date from affected_dates)
    {%- endif %}

),

additive as (

    select
        session_date as metric_date,
        channel,
        coalesce(agent_version, 'unknown') as agent_version,
        {% for name, data_type in measures %}
        cast({{ measure_aggregate(name) }} as {{ data_type }}) as {{ name }},
        {% endfor %}
        max(definition_version) as outcome_definition_version,
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
        outcome_definition_version,
        last_loaded_at

    from additive

)

select * from final
