{#- One row per day with sessions of known users: active, new and returning users. -#}
with sessions as (

    select * from {{ ref('fct_sessions') }}
    where user_key is not null

),

users as (

    select * from {{ ref('fct_users') }}

),

active as (

    select distinct
        sessions.session_date as metric_date,
        sessions.user_key
    from sessions

),

final as (

    select
        active.metric_date,
        count(*) as active_users,
        count(case when users.first_session_date = active.metric_date then 1 end) as new_users,
        count(case when users.first_session_date < active.metric_date then 1 end) as returning_users
    from active
    inner join users on active.user_key = users.user_key
    group by active.metric_date

)

select * from final
