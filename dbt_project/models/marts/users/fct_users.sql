{#- One row per pseudonymous user. Rebuilt whole: a user is as wide as their history. -#}
with sessions as (

    select * from {{ ref('fct_sessions') }}
    where user_key is not null

),

outcomes as (

    select * from {{ ref('fct_session_outcomes') }}

),

final as (

    select
        sessions.user_key,
        min(sessions.session_date) as first_session_date,
        max(sessions.session_date) as last_session_date,
        count(*) as sessions,
        count(case when outcomes.is_resolved then 1 end) as resolved_sessions,
        count(case when sessions.is_converted then 1 end) as converted_sessions
    from sessions
    inner join outcomes on sessions.session_id = outcomes.session_id
    group by sessions.user_key

)

select * from final
