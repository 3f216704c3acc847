{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_affected_session_dates('session_date') }}",
    )
}}

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

session_steps as (

    select * from {{ ref('fct_session_funnel_steps') }}

),

reached_per_day as (

    select
        sessions.session_date,
        session_steps.funnel_name,
        session_steps.step_order,
        count(*) as sessions_reached
    from session_steps
    inner join sessions on session_steps.session_id = sessions.session_id
    where session_steps.is_reached
    group by sessions.session_date, session_steps.funnel_name, session_steps.step_order

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
