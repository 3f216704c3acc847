{{
    config(
        materialized=incremental_materialization(),
        unique_key='user_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_users_left_without_sessions() }}",
    )
}}

{#- One row per user and week (starting Monday) with a session of theirs, rebuilt from all of
    their sessions for the users a rebuilt session names (macros/users.sql). The weekly
    retention counts these rows, which are far fewer than the sessions. -#}

-- depends_on: {{ ref('int_sessions__user_keys') }}

with sessions as (

    select
        sessions.user_key,
        sessions.session_date,
        sessions.last_loaded_at
    from {{ ref('fct_sessions') }} as sessions
    {% if is_incremental() %}
        inner join ({{ users_of_rebuilt_sessions() }}) as touched
            on sessions.user_key = touched.user_key
    {% endif %}
    where sessions.user_key is not null

),

session_weeks as (

    select
        user_key,
        cast({{ dbt.date_trunc('week', 'session_date') }} as date) as active_week,
        last_loaded_at
    from sessions

),

users as (

    select
        user_key,
        min(active_week) as cohort_week,
        max(last_loaded_at) as last_loaded_at
    from session_weeks
    group by user_key

),

active_weeks as (

    select distinct
        user_key,
        active_week
    from session_weeks

),

final as (

    select
        active_weeks.user_key,
        active_weeks.active_week,
        users.cohort_week,
        cast(
            floor({{ dbt.datediff('users.cohort_week', 'active_weeks.active_week', 'day') }} / 7.0e0)
            as integer
        ) as week_number,
        users.last_loaded_at
    from active_weeks
    inner join users on active_weeks.user_key = users.user_key

)

select * from final
