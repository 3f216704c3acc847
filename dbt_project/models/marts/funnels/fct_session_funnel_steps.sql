{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

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

events as (

    select * from {{ ref('stg_landing__events') }}

),

step_events as (

    select
        events.session_id,
        funnel_steps.funnel_name,
        funnel_steps.step_order,
        events.event_timestamp,
        events.loaded_at
    from events
    inner join funnel_steps
        on
            events.event_type = funnel_steps.event_type
            and (
                funnel_steps.property_name is null
                or {{ json_text_dynamic('events.properties', 'funnel_steps.property_name') }}
                = funnel_steps.property_value
            )
    {% if is_incremental() %}
        where events.session_id in ({{ sessions_rebuilt_since_watermark() }})
    {% endif %}

),

session_loads as (

    -- a session's lineage is its row in fct_sessions, already rebuilt for touched sessions
    select
        session_id,
        session_date,
        last_loaded_at
    from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
        where session_id in (select step_events.session_id from step_events)
    {% endif %}

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
        {{ step }} as step_order,
        reached_at
    from reached_step_{{ step }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

attempts as (

    -- every step a session reached, and the next step of the last one it reached (when the
    -- funnel has one): sessions that reached step k-1 are the ones that could reach step k
    select
        funnel_name,
        session_id,
        step_order,
        reached_at
    from reached
    union all
    select
        previous_step.funnel_name,
        previous_step.session_id,
        next_step.step_order,
        cast(null as timestamp) as reached_at
    from reached as previous_step
    inner join funnel_steps as next_step
        on
            previous_step.funnel_name = next_step.funnel_name
            and previous_step.step_order + 1 = next_step.step_order
    left join reached as next_reached
        on
            previous_step.funnel_name = next_reached.funnel_name
            and previous_step.session_id = next_reached.session_id
            and next_step.step_order = next_reached.step_order
    where next_reached.session_id is null

),

final as (

    select
        attempts.session_id,
        attempts.funnel_name,
        attempts.step_order,
        funnel_steps.step_name,
        session_loads.session_date,
        attempts.reached_at is not null as is_reached,
        attempts.reached_at,
        session_loads.last_loaded_at
    from attempts
    inner join session_loads on attempts.session_id = session_loads.session_id
    inner join funnel_steps
        on
            attempts.funnel_name = funnel_steps.funnel_name
            and attempts.step_order = funnel_steps.step_order

)

select * from final
