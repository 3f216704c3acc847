{{
    config(
        materialized=incremental_materialization(),
        unique_key='metric_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_user_dates_to_rebuild('metric_date') }}",
    )
}}

{#- One row per day with sessions of known users: active, new and returning users. Rebuilt for
    the days a touched user or a rebuilt session reaches (macros/users.sql). -#}

-- depends_on: {{ ref('int_sessions__user_keys') }}

with sessions as (

    select * from {{ ref('fct_sessions') }}
    where
        user_key is not null
    {% if is_incremental() %}
            and session_date in (
                {{ user_dates_to_rebuild(
                    'select distinct session_date as candidate_date from ' ~ ref('fct_sessions')
                ) }}
            )
        {% endif %}

),

users as (

    select * from {{ ref('fct_users') }}

),

active as (

    select
        session_date as metric_date,
        user_key,
        max(last_loaded_at) as last_loaded_at
    from sessions
    group by session_date, user_key

),

final as (

    select
        active.metric_date,
        count(*) as active_users,
        count(case when users.first_session_date = active.metric_date then 1 end) as new_users,
        count(case when users.first_session_date < active.metric_date then 1 end) as returning_users,
        max(active.last_loaded_at) as last_loaded_at
    from active
    inner join users on active.user_key = users.user_key
    group by active.metric_date

)

select * from final
