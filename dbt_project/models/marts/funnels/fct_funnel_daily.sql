{{
    config(
        materialized='incremental',
        unique_key='session_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() %}delete from {{ this }} where session_date in ("
            ~ "{{ affected_session_dates() }}){% endif %}"
        ],
    )
}}

-- depends_on: {{ ref('stg_landing__events') }}

{#- Steps are unrolled up to the longest funnel in the seed, read when the model runs.
    Unit tests see the seed as a CTE, and linting compiles before any seed exists: both get
    10 steps, which is harmless (steps beyond a funnel's last match nothing). -#}
{%- set max_steps = 10 -%}
{%- set steps_relation = ref('funnel_steps') -%}
{%- if execute and not (steps_relation | string).startswith('__dbt__cte__') -%}
{%- set seeded = adapter.get_relation(
    database=steps_relation.database,
    schema=steps_relation.schema,
    identifier=steps_relation.identifier,
) -%}
{%- if seeded is not none -%}
{%- set longest = run_query('select max(step_order) from ' ~ seeded) -%}
{%- set max_steps = (longest.columns[0].values()[0] or 1) | int -%}
{%- endif -%}
{%- endif %}

with funnel_steps as (

    select * from {{ ref('funnel_steps') }}

),

sessions as (

    select
        session_id,
        session_date,
        last_loaded_at
    from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
    where session_date in ({{ affected_session_dates() }})
    {% endif %}

),

step_events as (

    select
        events.session_id,
        funnel_steps.funnel_name,
        funnel_steps.step_order,
        events.event_timestamp
    from {{ ref('stg_landing__events') }} as events
    inner join sessions on events.session_id = sessions.session_id
    inner join funnel_steps
        on
            events.event_type = funnel_steps.event_type
            and (
                funnel_steps.property_name is null
                or {{ json_text_dynamic('events.properties', 'funnel_steps.property_name') }}
                = funnel_steps.property_value
            )

),

reached_step_1 as (

    select
        funnel_name,
        session_id,
        min(event_timestamp) as reached_at
    from step_events
    where step_order = 1
    group by funnel_name, session_id

),
{% for step in range(2, max_steps + 1) %}
reached_step_{{ step }} as (

    -- reached when a matching event comes at or after the time step {{ step - 1 }} was reached
    select
        step_events.funnel_name,
        step_events.session_id,
        min(step_events.event_timestamp) as reached_at
    from step_events
    inner join reached_step_{{ step - 1 }} as previous_step
        on
            step_events.funnel_name = previous_step.funnel_name
            and step_events.session_id = previous_step.session_id
            and step_events.event_timestamp >= previous_step.reached_at
    where step_events.step_order = {{ step }}
    group by step_events.funnel_name, step_events.session_id

),
{% endfor %}

reached as (
    {% for step in range(1, max_steps + 1) %}
    select
        funnel_name,
        session_id,
        {{ step }} as step_order
    from reached_step_{{ step }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

reached_per_day as (

    select
        sessions.session_date,
        reached.funnel_name,
        reached.step_order,
        count(*) as sessions_reached
    from reached
    inner join sessions on reached.session_id = sessions.session_id
    group by sessions.session_date, reached.funnel_name, reached.step_order

),

session_days as (

    select
        session_date,
        max(last_loaded_at) as last_loaded_at
    from sessions
    group by session_date

),

final as (

    -- every step on every day with sessions, so drop-off can be read at zero counts too
    select
        session_days.session_date,
        funnel_steps.funnel_name,
        funnel_steps.step_order,
        funnel_steps.step_name,
        coalesce(reached_per_day.sessions_reached, 0) as sessions_reached,
        session_days.last_loaded_at
    from session_days
    cross join funnel_steps
    left join reached_per_day
        on
            session_days.session_date = reached_per_day.session_date
            and funnel_steps.funnel_name = reached_per_day.funnel_name
            and funnel_steps.step_order = reached_per_day.step_order

)

select * from final
