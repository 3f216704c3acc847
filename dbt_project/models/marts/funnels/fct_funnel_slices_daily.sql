{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_affected_session_dates('session_date') }}",
    )
}}

{#- The funnel steps' sessions per day, channel and agent version: the semantic layer's funnel
    metrics read this table, not the session grain, so a funnel question costs as much for a
    year as for a day. -#}

with funnel_steps as (

    select * from {{ ref('funnel_steps') }}

),

sessions as (

    select
        session_id,
        session_date,
        channel,
        coalesce(agent_version, 'unknown') as agent_version,
        last_loaded_at
    from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
        where session_date in ({{ affected_session_dates() }})
    {% endif %}

),

session_steps as (

    select * from {{ ref('fct_session_funnel_steps') }}

),

step_counts as (

    -- a session has a row for each step it reached and for the step after its last
    select
        sessions.session_date,
        sessions.channel,
        sessions.agent_version,
        session_steps.funnel_name,
        session_steps.step_order,
        count(case when session_steps.is_reached then 1 end) as sessions_reached,
        count(case when session_steps.step_order > 1 then 1 end) as sessions_entering
    from session_steps
    inner join sessions on session_steps.session_id = sessions.session_id
    group by
        sessions.session_date,
        sessions.channel,
        sessions.agent_version,
        session_steps.funnel_name,
        session_steps.step_order

),

slices as (

    select
        session_date,
        channel,
        agent_version,
        max(last_loaded_at) as last_loaded_at
    from sessions
    group by session_date, channel, agent_version

),

final as (

    -- every step for every slice with sessions, so drop-off can be read at zero counts too
    select
        slices.session_date,
        slices.channel,
        slices.agent_version,
        funnel_steps.funnel_name,
        funnel_steps.step_order,
        funnel_steps.step_name,
        coalesce(step_counts.sessions_reached, 0) as sessions_reached,
        coalesce(step_counts.sessions_entering, 0) as sessions_entering,
        slices.last_loaded_at
    from slices
    cross join funnel_steps
    left join step_counts
        on
            slices.session_date = step_counts.session_date
            and slices.channel = step_counts.channel
            and slices.agent_version = step_counts.agent_version
            and funnel_steps.funnel_name = step_counts.funnel_name
            and funnel_steps.step_order = step_counts.step_order

)

select * from final
