{#- Weekly cohorts: the users whose first session fell in a week (starting Monday) and how
    many of them had a session each week after, up to the week of the latest session. -#}
with sessions as (

    select * from {{ ref('fct_sessions') }}
    where user_key is not null

),

users as (

    select
        user_key,
        cast({{ dbt.date_trunc('week', 'first_session_date') }} as date) as cohort_week
    from {{ ref('fct_users') }}

),

cohorts as (

    select
        cohort_week,
        count(*) as cohort_users
    from users
    group by cohort_week

),

latest as (

    select cast({{ dbt.date_trunc('week', 'max(session_date)') }} as date) as latest_week
    from sessions

),

week_numbers as (

    {{ day_offsets(520) }}

),

grid as (

    select
        cohorts.cohort_week,
        cohorts.cohort_users,
        week_numbers.day_offset as week_number
    from cohorts
    cross join latest
    inner join week_numbers
        on week_numbers.day_offset * 7 <= {{ dbt.datediff('cohorts.cohort_week', 'latest.latest_week', 'day') }}

),

activity as (

    select distinct
        users.cohort_week,
        users.user_key,
        cast(
            floor({{ dbt.datediff('users.cohort_week', 'sessions.session_date', 'day') }} / 7.0e0)
            as integer
        ) as week_number
    from sessions
    inner join users on sessions.user_key = users.user_key

),

final as (

    select
        grid.cohort_week,
        grid.week_number,
        grid.cohort_users,
        count(activity.user_key) as active_users
    from grid
    left join activity
        on
            grid.cohort_week = activity.cohort_week
            and grid.week_number = activity.week_number
    group by grid.cohort_week, grid.week_number, grid.cohort_users

)

select * from final
